//! Slack's request signatures (v0): `X-Slack-Signature` is `v0=` and the hex
//! HMAC-SHA256, under the app's signing secret, of `v0:<X-Slack-Request-
//! Timestamp>:<body>`; a request more than five minutes from now either way
//! is refused (a replay). Checked in constant time, before the body is parsed.

use hmac::{Hmac, Mac};
use milepost_domain::Timestamp;
use sha2::Sha256;

/// How far a request's timestamp may be from now, either way.
pub const TOLERANCE_SECONDS: i64 = 5 * 60;

/// Why a request is not Slack's.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SlackSignatureError {
    #[error("no X-Slack-Request-Timestamp or X-Slack-Signature header")]
    Missing,
    #[error("X-Slack-Request-Timestamp is not a Unix time")]
    BadTimestamp,
    #[error("the request is more than five minutes old or ahead (a replay?)")]
    Stale,
    #[error("the signature does not match")]
    Mismatch,
}

/// The app's signing secret (Basic Information → App Credentials).
#[derive(Clone)]
pub struct SlackSigningSecret(Vec<u8>);

impl std::fmt::Debug for SlackSigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SlackSigningSecret(..)")
    }
}

impl SlackSigningSecret {
    pub fn new(secret: &str) -> Option<Self> {
        let secret = secret.trim();
        (!secret.is_empty()).then(|| SlackSigningSecret(secret.as_bytes().to_vec()))
    }

    fn mac(&self, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(b"v0:");
        mac.update(timestamp.as_bytes());
        mac.update(b":");
        mac.update(body);
        mac
    }

    /// `v0=<hex>` for `body` sent at `timestamp`, as Slack signs it.
    pub fn sign(&self, timestamp: &str, body: &[u8]) -> String {
        format!("v0={}", hex::encode(self.mac(timestamp, body).finalize().into_bytes()))
    }

    /// Whether Slack sent `body` with these header values, at `now`.
    pub fn verify(
        &self,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
        now: Timestamp,
    ) -> Result<(), SlackSignatureError> {
        let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
            return Err(SlackSignatureError::Missing);
        };
        let sent: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| SlackSignatureError::BadTimestamp)?;
        if now.timestamp().abs_diff(sent) > TOLERANCE_SECONDS as u64 {
            return Err(SlackSignatureError::Stale);
        }
        let given = signature
            .strip_prefix("v0=")
            .and_then(|h| hex::decode(h).ok())
            .ok_or(SlackSignatureError::Mismatch)?;
        // `verify_slice` compares in constant time.
        self.mac(timestamp, body)
            .verify_slice(&given)
            .map_err(|_| SlackSignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    /// Slack's own worked example ("Verifying requests from Slack").
    const DOC_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const DOC_TIMESTAMP: &str = "1531420618";
    const DOC_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const DOC_SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn at(unix: i64) -> Timestamp {
        Utc.timestamp_opt(unix, 0).unwrap()
    }

    #[test]
    fn slacks_published_example_signs_and_verifies() {
        let secret = SlackSigningSecret::new(DOC_SECRET).unwrap();
        assert_eq!(secret.sign(DOC_TIMESTAMP, DOC_BODY.as_bytes()), DOC_SIGNATURE);
        let now = at(1531420618 + 60);
        assert_eq!(
            secret.verify(Some(DOC_TIMESTAMP), Some(DOC_SIGNATURE), DOC_BODY.as_bytes(), now),
            Ok(())
        );
    }

    #[test]
    fn a_forged_stale_or_unsigned_request_is_refused() {
        let secret = SlackSigningSecret::new(DOC_SECRET).unwrap();
        let now = at(1531420618);
        let body = DOC_BODY.as_bytes();
        let verify = |ts: Option<&str>, sig: Option<&str>, body: &[u8], now| secret.verify(ts, sig, body, now);
        assert_eq!(
            verify(None, Some(DOC_SIGNATURE), body, now),
            Err(SlackSignatureError::Missing)
        );
        assert_eq!(
            verify(Some(DOC_TIMESTAMP), None, body, now),
            Err(SlackSignatureError::Missing)
        );
        assert_eq!(
            verify(Some("yesterday"), Some(DOC_SIGNATURE), body, now),
            Err(SlackSignatureError::BadTimestamp)
        );
        assert_eq!(
            verify(Some(DOC_TIMESTAMP), Some(DOC_SIGNATURE), body, at(1531420618 + 301)),
            Err(SlackSignatureError::Stale)
        );
        assert_eq!(
            verify(Some(DOC_TIMESTAMP), Some(DOC_SIGNATURE), body, at(1531420618 - 301)),
            Err(SlackSignatureError::Stale)
        );
        let mut tampered = body.to_vec();
        tampered[0] = b'T';
        assert_eq!(
            verify(Some(DOC_TIMESTAMP), Some(DOC_SIGNATURE), &tampered, now),
            Err(SlackSignatureError::Mismatch)
        );
        assert_eq!(
            verify(Some(DOC_TIMESTAMP), Some("v0=zz"), body, now),
            Err(SlackSignatureError::Mismatch)
        );
        assert_eq!(
            verify(
                Some(DOC_TIMESTAMP),
                Some(&DOC_SIGNATURE.replace("v0=", "v1=")),
                body,
                now
            ),
            Err(SlackSignatureError::Mismatch)
        );
        let other = SlackSigningSecret::new("another-secret").unwrap();
        assert_eq!(
            other.verify(Some(DOC_TIMESTAMP), Some(DOC_SIGNATURE), body, now),
            Err(SlackSignatureError::Mismatch)
        );
        assert!(
            SlackSigningSecret::new("  ").is_none(),
            "an empty secret would sign nothing"
        );
    }
}
