//! Signed action links: the buttons of the day-3 email (Done, Snooze,
//! Dismiss, Confirm reached, Pause customer emails) and of a reminder, and
//! a customer contact's unsubscribe link.
//!
//! `v2.<base64url(payload)>.<base64url(MAC)>`: the payload is JSON naming
//! the action, its subject (a task id, or an account for an unsubscribe
//! link), a short fingerprint of the recipient's address (a link shows nobody's
//! address) and the expiry; the MAC is HMAC-SHA256, under a key from SSM, of
//! the exact bytes `v2.<base64url(payload)>`. A token has one encoding only
//! (fields in one order, no other field, canonical base64), so a token
//! re-encoded in any way is refused rather than read as a new link, and the
//! "already acted" key is derived from the verified claims. Structured,
//! signed bytes instead of a joined string: no separator to forge. The MAC
//! is checked before anything the token names is looked up, so a forged
//! link learns nothing of what exists.
//!
//! HMAC over our own small payload rather than a JWT or PASETO crate: one
//! algorithm, one key, no header to negotiate, and the canonical-form check
//! (which those formats leave to the reader) is what makes a link act once.
//!
//! First-format tokens (`v1.`, MAC over `v1|action|subject|address|expiry`)
//! are still read: unsubscribe links live a year and must keep working;
//! task links of that format are refused as outdated (README, upgrading).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration};
use hmac::{Hmac, Mac};
use milepost_domain::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// What a link asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LinkAction {
    #[serde(rename = "done")]
    Done,
    #[serde(rename = "snooze_3")]
    Snooze3,
    #[serde(rename = "snooze_7")]
    Snooze7,
    #[serde(rename = "dismiss")]
    Dismiss,
    #[serde(rename = "confirm")]
    Confirm,
    #[serde(rename = "pause")]
    Pause,
    /// A customer contact's unsubscribe link: its subject is the account
    /// whose email carried it; the recipient is the contact.
    #[serde(rename = "unsubscribe")]
    Unsubscribe,
    /// Leadership holding the customer's executive sponsor's day-5 email:
    /// its subject is the escalation's task; the recipient is the account's CS leader.
    #[serde(rename = "hold_sponsor")]
    HoldSponsor,
}

impl LinkAction {
    /// The task buttons, in the order the day-3 email shows them.
    pub const ALL: [LinkAction; 6] = [
        LinkAction::Done,
        LinkAction::Snooze3,
        LinkAction::Snooze7,
        LinkAction::Dismiss,
        LinkAction::Confirm,
        LinkAction::Pause,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LinkAction::Done => "done",
            LinkAction::Snooze3 => "snooze_3",
            LinkAction::Snooze7 => "snooze_7",
            LinkAction::Dismiss => "dismiss",
            LinkAction::Confirm => "confirm",
            LinkAction::Pause => "pause",
            LinkAction::Unsubscribe => "unsubscribe",
            LinkAction::HoldSponsor => "hold_sponsor",
        }
    }

    /// The button's words.
    pub fn label(self) -> &'static str {
        match self {
            LinkAction::Done => "Done",
            LinkAction::Snooze3 => "Snooze 3 days",
            LinkAction::Snooze7 => "Snooze 7 days",
            LinkAction::Dismiss => "Not relevant",
            LinkAction::Confirm => "Confirm reached",
            LinkAction::Pause => "Pause customer emails for this account (14 days)",
            LinkAction::Unsubscribe => "Unsubscribe",
            LinkAction::HoldSponsor => "Hold the sponsor email",
        }
    }

    /// What the confirmation page asks.
    pub fn question(self) -> &'static str {
        match self {
            LinkAction::Done => "Mark the task done?",
            LinkAction::Snooze3 => "Snooze the task for 3 days?",
            LinkAction::Snooze7 => "Snooze the task for 7 days?",
            LinkAction::Dismiss => "Dismiss the task as not relevant?",
            LinkAction::Confirm => "Confirm the milestone reached?",
            LinkAction::Pause => "Pause customer emails for 14 days?",
            LinkAction::Unsubscribe => "Stop these emails?",
            LinkAction::HoldSponsor => "Hold the email to the customer's executive sponsor?",
        }
    }

    /// For a snooze: how long.
    pub fn snooze_days(self) -> Option<i64> {
        match self {
            LinkAction::Snooze3 => Some(3),
            LinkAction::Snooze7 => Some(7),
            _ => None,
        }
    }
}

/// What a token claims, in the one order it is encoded in (the MAC covers
/// those exact bytes, so the order is part of the format).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    #[serde(rename = "a")]
    action: LinkAction,
    #[serde(rename = "s")]
    subject: String,
    /// The first 8 bytes of SHA-256 of the recipient's lowercased address, hex.
    #[serde(rename = "r")]
    recipient: String,
    #[serde(rename = "e")]
    expires: i64,
}

/// The longest subject a token may name: a task id or an account id, with room to spare.
const MAX_SUBJECT_BYTES: usize = 512;
/// The longest token worth decoding: a payload at `MAX_SUBJECT_BYTES` and its MAC fit.
const MAX_TOKEN_BYTES: usize = 1024;

/// A token whose MAC held and which has not expired: what it claims is what
/// Milepost signed, byte for byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenedLink {
    pub action: LinkAction,
    pub subject: String,
    pub expires_at: Timestamp,
    /// Derived from the verified claims: what makes following the link
    /// twice change nothing the second time. A token has one encoding, so
    /// one link has one key.
    pub key: String,
    address_fingerprint: String,
}

impl OpenedLink {
    /// The fingerprint of the address the link was made for (`address_fingerprint`).
    pub fn address_fingerprint(&self) -> &str {
        &self.address_fingerprint
    }

    /// Whether the link was made for `recipient` (the subject's owner now).
    pub fn check_recipient(&self, recipient: &str) -> Result<(), LinkError> {
        if self.address_fingerprint == address_fingerprint(recipient) {
            Ok(())
        } else {
            Err(LinkError::OtherRecipient)
        }
    }
}

/// A token of the first format (`v1.`), sent before links were signed over
/// their exact bytes. Its MAC covers the recipient's address, which the
/// token does not carry, so it can only be checked once the address is
/// found (`verify`); only unsubscribe links of that format are still honoured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegacyLink {
    pub action: LinkAction,
    pub subject: String,
    pub expires_at: Timestamp,
    address_fingerprint: String,
    mac: Vec<u8>,
}

impl LegacyLink {
    pub fn address_fingerprint(&self) -> &str {
        &self.address_fingerprint
    }

    /// Checks the link against the address it names (found by its fingerprint):
    /// the MAC in constant time, then the expiry. The v1 signed string joins
    /// its parts with `|` unescaped, so a subject or address holding one
    /// could be shifted into another: such links are refused.
    pub fn verify(&self, signer: &LinkSigner, recipient: &str, now: Timestamp) -> Result<OpenedLink, LinkError> {
        let recipient = recipient.to_lowercase();
        if self.subject.contains('|') || recipient.contains('|') {
            return Err(LinkError::Altered);
        }
        if address_fingerprint(&recipient) != self.address_fingerprint {
            return Err(LinkError::Altered);
        }
        let signed = format!(
            "v1|{}|{}|{recipient}|{}",
            self.action.as_str(),
            self.subject,
            self.expires_at.timestamp()
        );
        signer
            .mac(signed.as_bytes())
            .verify_slice(&self.mac)
            .map_err(|_| LinkError::Altered)?;
        if now >= self.expires_at {
            return Err(LinkError::Expired(self.expires_at));
        }
        Ok(OpenedLink {
            action: self.action,
            key: link_key(signed.as_bytes()),
            subject: self.subject.clone(),
            expires_at: self.expires_at,
            address_fingerprint: self.address_fingerprint.clone(),
        })
    }
}

/// What opening a token found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Opened {
    /// A current token, its MAC checked and not expired.
    Current(OpenedLink),
    /// A first-format token, decoded but not yet checked (`LegacyLink::verify`).
    Legacy(LegacyLink),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Not a link Milepost made, or not as it made it: cut short, mangled,
    /// re-encoded, or signed under another key. One answer for all, given
    /// before anything is looked up.
    #[error("this link can't be used")]
    Altered,
    /// Made for another person than the one who owns its subject now.
    #[error("this link was made for someone else")]
    OtherRecipient,
    #[error("this link expired on {0}")]
    Expired(Timestamp),
    /// A first-format task link: no longer honoured (see the upgrade notes).
    #[error("this link is from an older email")]
    Outdated,
}

/// Makes and opens links under one key.
#[derive(Clone)]
pub struct LinkSigner {
    key: Vec<u8>,
}

// The key never reaches a log, even through `{:?}`.
impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSigner(<key>)")
    }
}

/// The key `make local`, the demo and tests use when none is configured.
pub const DEV_LINK_KEY: &str = "milepost-local-action-links";

/// The current token format's prefix.
const V2: &str = "v2";

impl LinkSigner {
    /// A signer over `key`; `None` for a key too short to be one (under 16 bytes).
    pub fn new(key: &[u8]) -> Option<Self> {
        (key.len() >= 16).then(|| LinkSigner { key: key.to_vec() })
    }

    fn mac(&self, signed: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        mac.update(signed);
        mac
    }

    /// A token for `recipient` to do `action` on `subject` until `expires_at`:
    /// `v2.<base64url(payload)>.<base64url(HMAC-SHA256 of "v2.<base64url(payload)>")>`.
    pub fn mint(&self, action: LinkAction, subject: &str, recipient: &str, expires_at: Timestamp) -> String {
        let payload = Payload {
            action,
            subject: subject.to_string(),
            recipient: address_fingerprint(recipient),
            expires: expires_at.timestamp(),
        };
        let json = serde_json::to_vec(&payload).expect("a payload serialises");
        let signed = format!("{V2}.{}", URL_SAFE_NO_PAD.encode(json));
        let mac = self.mac(signed.as_bytes()).finalize().into_bytes();
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(mac))
    }

    /// Opens a token at `now`. A current token is checked whole before
    /// anything it names is looked up: one encoding only (canonical base64
    /// and JSON, no field unknown, missing or repeated), its MAC over those
    /// exact bytes in constant time, then its expiry. A first-format token is
    /// decoded as strictly and handed back to be checked against its address.
    pub fn open(&self, token: &str, now: Timestamp) -> Result<Opened, LinkError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(LinkError::Altered);
        }
        let mut parts = token.split('.');
        let (Some(version), Some(payload), Some(mac), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(LinkError::Altered);
        };
        let json = canonical_base64(payload)?;
        let mac = canonical_base64(mac)?;
        match version {
            V2 => {
                let signed = &token[..V2.len() + 1 + payload.len()];
                self.mac(signed.as_bytes())
                    .verify_slice(&mac)
                    .map_err(|_| LinkError::Altered)?;
                let claims = canonical_payload(&json)?;
                let expires_at = DateTime::from_timestamp(claims.expires, 0).ok_or(LinkError::Altered)?;
                if now >= expires_at {
                    return Err(LinkError::Expired(expires_at));
                }
                Ok(Opened::Current(OpenedLink {
                    action: claims.action,
                    subject: claims.subject,
                    expires_at,
                    key: link_key(&json),
                    address_fingerprint: claims.recipient,
                }))
            }
            "v1" => {
                let claims = canonical_payload(&json)?;
                Ok(Opened::Legacy(LegacyLink {
                    action: claims.action,
                    subject: claims.subject,
                    expires_at: DateTime::from_timestamp(claims.expires, 0).ok_or(LinkError::Altered)?,
                    address_fingerprint: claims.recipient,
                    mac,
                }))
            }
            _ => Err(LinkError::Altered),
        }
    }
}

/// Decodes base64url without padding, accepting only the one encoding
/// `mint` writes (no padding, no stray trailing bits).
fn canonical_base64(text: &str) -> Result<Vec<u8>, LinkError> {
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| LinkError::Altered)?;
    if URL_SAFE_NO_PAD.encode(&bytes) != text {
        return Err(LinkError::Altered);
    }
    Ok(bytes)
}

/// The claims of `json`, if it is exactly what `mint` writes for them.
fn canonical_payload(json: &[u8]) -> Result<Payload, LinkError> {
    let claims: Payload = serde_json::from_slice(json).map_err(|_| LinkError::Altered)?;
    let well_formed = claims.subject.len() <= MAX_SUBJECT_BYTES
        && claims.recipient.len() == 16
        && claims
            .recipient
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !well_formed || serde_json::to_vec(&claims).ok().as_deref() != Some(json) {
        return Err(LinkError::Altered);
    }
    Ok(claims)
}

/// A link's "already acted" key: from what was verified, never the token's text.
fn link_key(verified: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(b"milepost-link-key\0");
    hash.update(verified);
    hex::encode(&hash.finalize()[..16])
}

/// What a link carries instead of its recipient's address: the first 8
/// bytes of SHA-256 of the lowercased address, hex.
pub fn address_fingerprint(recipient: &str) -> String {
    hex::encode(&Sha256::digest(recipient.to_lowercase().as_bytes())[..8])
}

/// Where links point and how long they live.
#[derive(Clone, Debug)]
pub struct ActionLinks {
    pub signer: LinkSigner,
    /// The actions endpoint: `<base>/<token>` is a link (`…/v1/actions`).
    pub base_url: String,
    pub lifetime: Duration,
    /// The unsubscribe endpoint: `<base>/<token>` (`…/v1/unsubscribe`).
    pub unsubscribe_url: String,
    /// How long an unsubscribe link works: long, since people unsubscribe from old mail.
    pub unsubscribe_lifetime: Duration,
}

impl ActionLinks {
    /// The link for `recipient` to do `action` on `subject`, made at `now`.
    pub fn url(&self, action: LinkAction, subject: &str, recipient: &str, now: Timestamp) -> String {
        let token = self.signer.mint(action, subject, recipient, now + self.lifetime);
        format!("{}/{token}", self.base_url.trim_end_matches('/'))
    }

    /// The unsubscribe link for `recipient` of mail about `account`, made at
    /// `now`: in `List-Unsubscribe` (one-click POST) and the footer (a page).
    pub fn unsubscribe(&self, account: &str, recipient: &str, now: Timestamp) -> String {
        let token = self.signer.mint(
            LinkAction::Unsubscribe,
            account,
            recipient,
            now + self.unsubscribe_lifetime,
        );
        format!("{}/{token}", self.unsubscribe_url.trim_end_matches('/'))
    }
}

/// Default lifetime of an unsubscribe link: a year.
pub const UNSUBSCRIBE_LINK_DAYS: i64 = 365;

/// Default lifetime of a link: two weeks.
pub const LINK_DAYS: i64 = 14;

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn signer() -> LinkSigner {
        LinkSigner::new(b"a test key of some length").unwrap()
    }

    fn now() -> Timestamp {
        Utc.with_ymd_and_hms(2026, 4, 20, 10, 0, 0).unwrap()
    }

    fn current(opened: Result<Opened, LinkError>) -> Result<OpenedLink, LinkError> {
        match opened? {
            Opened::Current(link) => Ok(link),
            Opened::Legacy(_) => panic!("a legacy link"),
        }
    }

    #[test]
    fn a_minted_link_opens_until_it_expires_and_names_its_recipient() {
        let s = signer();
        let expires = now() + Duration::days(14);
        let token = s.mint(LinkAction::Snooze7, "acme-x:csm-task", "Maya@Vendor.example", expires);
        assert!(
            !token.contains("maya") && !token.contains("vendor"),
            "no address in a link: {token}"
        );
        let link = current(s.open(&token, now())).unwrap();
        assert_eq!(
            (link.action, link.subject.as_str()),
            (LinkAction::Snooze7, "acme-x:csm-task")
        );
        assert_eq!(link.check_recipient("maya@vendor.example"), Ok(()), "without case");
        assert_eq!(
            link.check_recipient("sam@vendor.example"),
            Err(LinkError::OtherRecipient),
            "the task belongs to someone else now"
        );
        assert_eq!(s.open(&token, expires), Err(LinkError::Expired(expires)));
        assert_eq!(
            current(s.open(&token, now())).unwrap().key,
            link.key,
            "one token, one key"
        );
        let other = s.mint(
            LinkAction::Snooze7,
            "acme-x:csm-task",
            "maya@vendor.example",
            expires - Duration::days(1),
        );
        assert_ne!(current(s.open(&other, now())).unwrap().key, link.key);
    }

    /// The payload of `token` rewritten by `edit`, the MAC kept.
    fn reencoded(token: &str, edit: impl Fn(&str) -> String) -> String {
        let [v, payload, mac]: [&str; 3] = token.split('.').collect::<Vec<_>>().try_into().unwrap();
        let json = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        format!("{v}.{}.{mac}", URL_SAFE_NO_PAD.encode(edit(&json)))
    }

    #[test]
    fn a_link_changed_or_re_encoded_in_any_way_is_refused_as_one() {
        let s = signer();
        let token = s.mint(
            LinkAction::Done,
            "acme-x:csm-task",
            "maya@vendor.example",
            now() + Duration::days(14),
        );
        let json = {
            let payload = token.split('.').nth(1).unwrap();
            String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
        };
        let other_r = address_fingerprint("sam@vendor.example");
        let cases: Vec<(&str, String)> = vec![
            ("action", reencoded(&token, |j| j.replace("\"done\"", "\"dismiss\""))),
            ("subject", reencoded(&token, |j| j.replace("acme-x", "globex-y"))),
            ("expiry", reencoded(&token, |j| j.replace(",\"e\":", ",\"e\":1"))),
            ("recipient", {
                let r = serde_json::from_str::<serde_json::Value>(&json).unwrap()["r"]
                    .as_str()
                    .unwrap()
                    .to_string();
                reencoded(&token, |j| j.replace(&r, &other_r))
            }),
            ("spacing", reencoded(&token, |j| j.replace(',', ", "))),
            (
                "key order",
                reencoded(&token, |j| {
                    let v: serde_json::Value = serde_json::from_str(j).unwrap();
                    format!(
                        "{{\"e\":{},\"r\":{},\"s\":{},\"a\":{}}}",
                        v["e"], v["r"], v["s"], v["a"]
                    )
                }),
            ),
            ("added field", reencoded(&token, |j| j.replace('}', ",\"x\":1}"))),
            (
                "repeated field",
                reencoded(&token, |j| j.replace('}', ",\"a\":\"done\"}")),
            ),
            ("padding", format!("{token}=")),
            ("mac", format!("{}A", &token[..token.len() - 1])),
            ("version", token.replacen("v2.", "v3.", 1)),
            ("cut short", token[..token.len() - 3].to_string()),
            ("extra part", format!("{token}.x")),
            ("empty", String::new()),
            ("huge", format!("v2.{}.AAAA", "A".repeat(4000))),
        ];
        for (what, forged) in &cases {
            assert_ne!(forged, &token, "{what}");
            assert_eq!(s.open(forged, now()), Err(LinkError::Altered), "{what}: {forged}");
        }
        let other_key = LinkSigner::new(b"another key, as long as that one").unwrap();
        assert_eq!(other_key.open(&token, now()), Err(LinkError::Altered));
        assert_eq!(
            s.open(&token, now() + Duration::days(400)),
            Err(LinkError::Expired(now() + Duration::days(14))),
            "expiry is told only once the MAC held"
        );
        assert!(LinkSigner::new(b"short").is_none(), "a key under 16 bytes is no key");
        assert_eq!(format!("{s:?}"), "LinkSigner(<key>)");
    }

    /// A token as the first format made it.
    fn v1_token(s: &LinkSigner, action: LinkAction, subject: &str, recipient: &str, expires: i64) -> String {
        let payload = Payload {
            action,
            subject: subject.to_string(),
            recipient: address_fingerprint(recipient),
            expires,
        };
        let payload = serde_json::to_string(&payload).unwrap();
        let signed = format!(
            "v1|{}|{subject}|{}|{expires}",
            action.as_str(),
            recipient.to_lowercase()
        );
        let mac = s.mac(signed.as_bytes()).finalize().into_bytes();
        format!("v1.{}.{}", URL_SAFE_NO_PAD.encode(payload), URL_SAFE_NO_PAD.encode(mac))
    }

    #[test]
    fn a_first_format_link_is_checked_against_its_address_and_cannot_be_shifted() {
        let s = signer();
        let expires = (now() + Duration::days(300)).timestamp();
        let token = v1_token(&s, LinkAction::Unsubscribe, "acme", "pat@acme.example", expires);
        let Ok(Opened::Legacy(link)) = s.open(&token, now()) else {
            panic!("a legacy link")
        };
        let opened = link.verify(&s, "Pat@acme.example", now()).unwrap();
        assert_eq!(
            (opened.action, opened.subject.as_str()),
            (LinkAction::Unsubscribe, "acme")
        );
        assert_eq!(link.verify(&s, "sam@acme.example", now()), Err(LinkError::Altered));

        // Sent to `evil|pat@…`; subject and digest shifted so the signed string reads the same for pat.
        let sent = v1_token(&s, LinkAction::Unsubscribe, "acme", "evil|pat@acme.example", expires);
        let payload = format!(
            "{{\"a\":\"unsubscribe\",\"s\":\"acme|evil\",\"r\":\"{}\",\"e\":{expires}}}",
            address_fingerprint("pat@acme.example")
        );
        let shifted = format!(
            "v1.{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            sent.rsplit('.').next().unwrap()
        );
        let Ok(Opened::Legacy(link)) = s.open(&shifted, now()) else {
            panic!("decodes")
        };
        assert_eq!(link.verify(&s, "pat@acme.example", now()), Err(LinkError::Altered));
        let Ok(Opened::Legacy(link)) = s.open(&sent, now()) else {
            panic!("decodes")
        };
        assert_eq!(
            link.verify(&s, "evil|pat@acme.example", now()),
            Err(LinkError::Altered),
            "an address with the separator is never trusted"
        );
    }
}
