//! Signed action links: the buttons of the day-3 email (Done, Snooze,
//! Dismiss, Confirm reached, Pause customer emails) and of a reminder.
//!
//! A token names the action, its subject (a task id) and when it expires,
//! and carries a short digest of the recipient's address, so a link shows
//! nobody's address; its HMAC-SHA256, under a key from SSM, covers the
//! action, subject, the recipient's address itself and the expiry. Opening a
//! token checks its MAC against the subject's current owner, in constant
//! time: a link changed in any part, or made for someone else, is refused.
//!
//! `v1.<base64url(payload JSON)>.<base64url(MAC)>`

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

#[derive(Serialize, Deserialize)]
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

impl OpenedLink {
    /// The digest of the address the link was made for (`recipient_digest`).
    pub fn recipient_digest(&self) -> &str {
        &self.recipient_digest
    }
}

/// A token, decoded but not yet checked against its subject's owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenedLink {
    pub action: LinkAction,
    pub subject: String,
    pub expires_at: Timestamp,
    /// Unique to this token: what makes following it twice change nothing the second time.
    pub key: String,
    recipient_digest: String,
    mac: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Not a link Milepost made: cut short, mangled, or another version.
    #[error("this link is damaged")]
    Malformed,
    /// Well formed, but its MAC does not hold: a part of it was changed.
    #[error("this link has been altered")]
    Altered,
    /// Made for another person than the one who owns its subject now.
    #[error("this link was made for someone else")]
    OtherRecipient,
    #[error("this link expired on {0}")]
    Expired(Timestamp),
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

impl LinkSigner {
    /// A signer over `key`; `None` for a key too short to be one (under 16 bytes).
    pub fn new(key: &[u8]) -> Option<Self> {
        (key.len() >= 16).then(|| LinkSigner { key: key.to_vec() })
    }

    fn mac(&self, action: LinkAction, subject: &str, recipient: &str, expires: i64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        mac.update(
            format!(
                "v1|{}|{subject}|{}|{expires}",
                action.as_str(),
                recipient.to_lowercase()
            )
            .as_bytes(),
        );
        mac
    }

    /// A token for `recipient` to do `action` on `subject` until `expires_at`.
    pub fn mint(&self, action: LinkAction, subject: &str, recipient: &str, expires_at: Timestamp) -> String {
        let expires = expires_at.timestamp();
        let payload = Payload {
            action,
            subject: subject.to_string(),
            recipient: recipient_digest(recipient),
            expires,
        };
        let json = serde_json::to_vec(&payload).expect("a payload serialises");
        let mac = self.mac(action, subject, recipient, expires).finalize().into_bytes();
        format!("v1.{}.{}", URL_SAFE_NO_PAD.encode(json), URL_SAFE_NO_PAD.encode(mac))
    }

    /// Decodes a token; `verify` checks it.
    pub fn open(&self, token: &str) -> Result<OpenedLink, LinkError> {
        let mut parts = token.split('.');
        let (Some("v1"), Some(payload), Some(mac), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(LinkError::Malformed);
        };
        let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| LinkError::Malformed)?;
        let mac = URL_SAFE_NO_PAD.decode(mac).map_err(|_| LinkError::Malformed)?;
        let payload: Payload = serde_json::from_slice(&json).map_err(|_| LinkError::Malformed)?;
        let expires_at = DateTime::from_timestamp(payload.expires, 0).ok_or(LinkError::Malformed)?;
        let key = hex::encode(&Sha256::digest(token.as_bytes())[..16]);
        Ok(OpenedLink {
            action: payload.action,
            subject: payload.subject,
            expires_at,
            key,
            recipient_digest: payload.recipient,
            mac,
        })
    }

    /// Checks `link` for the subject's owner `recipient` at `now`: its MAC in
    /// constant time first, so a changed expiry reads as altered, then the expiry.
    pub fn verify(&self, link: &OpenedLink, recipient: &str, now: Timestamp) -> Result<(), LinkError> {
        let mac = self.mac(link.action, &link.subject, recipient, link.expires_at.timestamp());
        if mac.verify_slice(&link.mac).is_err() {
            return Err(if link.recipient_digest != recipient_digest(recipient) {
                LinkError::OtherRecipient
            } else {
                LinkError::Altered
            });
        }
        if now >= link.expires_at {
            return Err(LinkError::Expired(link.expires_at));
        }
        Ok(())
    }
}

/// What a link carries instead of its recipient's address: the first 8
/// bytes of SHA-256 of the lowercased address, hex.
pub fn recipient_digest(recipient: &str) -> String {
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

    #[test]
    fn a_minted_link_opens_for_its_recipient_until_it_expires() {
        let s = signer();
        let token = s.mint(
            LinkAction::Snooze7,
            "acme-x:csm-task",
            "Maya@Vendor.example",
            now() + Duration::days(14),
        );
        assert!(
            !token.contains("maya") && !token.contains("vendor"),
            "no address in a link: {token}"
        );
        let link = s.open(&token).unwrap();
        assert_eq!(
            (link.action, link.subject.as_str()),
            (LinkAction::Snooze7, "acme-x:csm-task")
        );
        assert_eq!(
            s.verify(&link, "maya@vendor.example", now()),
            Ok(()),
            "addresses compare without case"
        );
        assert_eq!(
            s.verify(&link, "maya@vendor.example", now() + Duration::days(14)),
            Err(LinkError::Expired(now() + Duration::days(14)))
        );
        assert_eq!(
            s.verify(&link, "sam@vendor.example", now()),
            Err(LinkError::OtherRecipient),
            "the task belongs to someone else now"
        );
        assert_eq!(s.open(&token).unwrap().key, link.key, "one token, one key");
        let other = s.mint(
            LinkAction::Snooze7,
            "acme-x:csm-task",
            "maya@vendor.example",
            now() + Duration::days(13),
        );
        assert_ne!(s.open(&other).unwrap().key, link.key);
    }

    #[test]
    fn a_link_changed_in_any_part_or_signed_with_another_key_is_refused() {
        let s = signer();
        let token = s.mint(
            LinkAction::Done,
            "acme-x:csm-task",
            "maya@vendor.example",
            now() + Duration::days(14),
        );
        let [v, payload, mac]: [&str; 3] = token.split('.').collect::<Vec<_>>().try_into().unwrap();
        let mut decoded: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        for (field, value) in [
            ("a", serde_json::json!("dismiss")),
            ("s", serde_json::json!("globex-y:csm-task")),
            ("e", serde_json::json!(now().timestamp() + 86400 * 365)),
        ] {
            let original = decoded[field].clone();
            decoded[field] = value;
            let forged = format!(
                "{v}.{}.{mac}",
                URL_SAFE_NO_PAD.encode(serde_json::to_vec(&decoded).unwrap())
            );
            let link = s.open(&forged).unwrap();
            assert_eq!(
                s.verify(&link, "maya@vendor.example", now()),
                Err(LinkError::Altered),
                "{field}"
            );
            decoded[field] = original;
        }
        let other_key = LinkSigner::new(b"another key, as long as that one").unwrap();
        let link = other_key.open(&token).unwrap();
        assert_eq!(
            other_key.verify(&link, "maya@vendor.example", now()),
            Err(LinkError::Altered)
        );
        for broken in [
            "",
            "v1",
            "v2.a.b",
            "v1.!!.b",
            &token[..token.len() - 3],
            &format!("{token}.x"),
        ] {
            let opened = s.open(broken);
            assert!(
                opened.is_err() || s.verify(&opened.unwrap(), "maya@vendor.example", now()).is_err(),
                "{broken:?} passed"
            );
        }
        assert!(LinkSigner::new(b"short").is_none(), "a key under 16 bytes is no key");
        assert_eq!(format!("{s:?}"), "LinkSigner(<key>)");
    }
}
