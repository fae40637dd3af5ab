//! Email addresses as Milepost keeps them: each one exactly one RFC 5322
//! addr-spec, parsed (by the `email_address` crate), never pattern-matched.
//! `pat@acme.example>, <leak@evil.example` is not an address, nor is one
//! carrying CR/LF or a display name: an `EmailAddress` can only be built by
//! the parser, so whatever reaches a mailer names a single mailbox.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// The longest address accepted: RFC 5321's limit for a path.
pub const MAX_ADDRESS_BYTES: usize = 254;

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("must be a single email address such as pat@example.com ({0})")]
pub struct AddressError(String);

impl EmailAddress {
    /// Parses exactly one addr-spec. Surrounding blanks are trimmed; a display
    /// name, a list, a domain literal, a quoted local part, or any control or
    /// blank character inside is refused.
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        let text = text.trim();
        if text.len() > MAX_ADDRESS_BYTES {
            return Err(AddressError(format!("longer than {MAX_ADDRESS_BYTES} bytes")));
        }
        if let Some(c) = text.chars().find(|c| c.is_control() || c.is_whitespace()) {
            return Err(AddressError(format!("contains {:?}", c)));
        }
        // A quoted local part may hold `,` `<` `>` legally; no customer address needs one.
        if text.contains(['"', '<', '>', ',', ';']) {
            return Err(AddressError(
                "contains a quote, angle bracket, comma or semicolon".into(),
            ));
        }
        let options = email_address::Options::default()
            .without_display_text()
            .without_domain_literal()
            .with_required_tld();
        let parsed =
            email_address::EmailAddress::parse_with_options(text, options).map_err(|e| AddressError(e.to_string()))?;
        Ok(EmailAddress(parsed.email().to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for EmailAddress {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        EmailAddress::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// Debug redacts: addresses are personal data and must not reach logs by a stray `{:?}`.
impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EmailAddress(<redacted>)")
    }
}

impl PartialEq<str> for EmailAddress {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for EmailAddress {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_plain_address_is_accepted_and_trimmed() {
        for good in ["pat@acme.example", " pat.o'neil+cs@mail.acme.co.uk ", "a@b.io"] {
            let parsed = EmailAddress::parse(good).unwrap_or_else(|e| panic!("{good}: {e}"));
            assert_eq!(parsed.as_str(), good.trim());
        }
    }

    #[test]
    fn lists_display_names_and_header_injection_are_refused() {
        for bad in [
            "pat@acme.example>, <leak@evil.example",
            "pat@acme.example, leak@evil.example",
            "Pat <pat@acme.example>",
            "pat@acme.example\r\nBcc: leak@evil.example",
            "pat@acme.example\nBcc:leak@evil.example",
            "\"pat,leak\"@acme.example",
            "pat@[10.0.0.1]",
            "pat@localhost",
            "pat",
            "@acme.example",
            "pat@@acme.example",
            "pat acme@acme.example",
            "",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "accepted {bad:?}");
        }
        let long = format!("{}@acme.example", "p".repeat(300));
        assert!(EmailAddress::parse(&long).is_err());
    }

    #[test]
    fn stored_addresses_are_parsed_again_when_read() {
        assert!(serde_json::from_str::<EmailAddress>("\"pat@acme.example\"").is_ok());
        assert!(serde_json::from_str::<EmailAddress>("\"a@b.example, c@d.example\"").is_err());
        assert_eq!(
            format!("{:?}", EmailAddress::parse("pat@acme.example").unwrap()),
            "EmailAddress(<redacted>)"
        );
    }
}
