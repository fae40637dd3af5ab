//! A customer contact who asked for no more email. Every customer-facing
//! send checks this first; mail to our own people (tasks, leadership) does
//! not, since an unsubscribe link is only ever in customer mail.

use serde::{Deserialize, Serialize};

use crate::{EmailAddress, Timestamp};

/// How the contact asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionSource {
    /// Their mail client's one-click unsubscribe (RFC 8058: a POST to the
    /// `List-Unsubscribe` address, with no page in between).
    OneClick,
    /// The unsubscribe page the email's footer links to.
    Page,
}

impl SuppressionSource {
    pub fn label(self) -> &'static str {
        match self {
            SuppressionSource::OneClick => "one-click unsubscribe",
            SuppressionSource::Page => "unsubscribe page",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppression {
    pub email: EmailAddress,
    pub at: Timestamp,
    pub source: SuppressionSource,
    /// The account whose email carried the link, for the record.
    pub account_id: crate::AccountId,
}

/// The form an address is compared and stored in: addresses differ in case
/// only by accident, and a contact who unsubscribed as `Maya@` is also
/// `maya@`. Only `suppression_key` makes one.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SuppressionKey(String);

impl SuppressionKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SuppressionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The key `email`'s suppression is kept under.
pub fn suppression_key(email: &EmailAddress) -> SuppressionKey {
    SuppressionKey(email.as_str().to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stored form: a suppression written before is found by the same key.
    #[test]
    fn an_address_is_kept_under_its_lowercase_form() {
        let email = EmailAddress::parse("Maya.Thompson@Vendor.example").unwrap();
        assert_eq!(suppression_key(&email).as_str(), "maya.thompson@vendor.example");
        let same = EmailAddress::parse("maya.thompson@vendor.example").unwrap();
        assert_eq!(suppression_key(&email), suppression_key(&same));
    }
}
