//! Webhook signatures: Standard Webhooks (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature`, `whsec_` secrets, 5-minute tolerance) and Segment's
//! `X-Signature` (hex HMAC-SHA1 of the body). Several secrets of each kind may
//! be configured at once, so keys can be rotated without downtime.
//! Comparisons are constant-time; a signature of the wrong length, or an
//! empty one, never matches.

use hmac::{Hmac, Mac};
use lambda_http::http::HeaderMap;
use sha1::Sha1;

const STANDARD_SIGNATURE: &str = "webhook-signature";
const STANDARD_TIMESTAMP: &str = "webhook-timestamp";
/// Standard Webhooks' tolerance either side of now.
const TIMESTAMP_TOLERANCE_SECONDS: i128 = 5 * 60;
const SEGMENT_SIGNATURE: &str = "x-signature";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// A secret is configured but the request carries no signature header.
    Unsigned,
    /// Standard Webhooks headers present but wrong, expired or not matching.
    BadStandardSignature(String),
    /// Segment's `X-Signature` does not match.
    BadSegmentSignature,
    /// A request that must carry Standard Webhooks headers (a confirmation) does not.
    StandardRequired,
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthError::Unsigned => f.write_str("the request is not signed: send Standard Webhooks headers (webhook-id, webhook-timestamp, webhook-signature) or Segment's X-Signature"),
            AuthError::BadStandardSignature(why) => write!(f, "the webhook signature is not valid: {why}"),
            AuthError::BadSegmentSignature => f.write_str("X-Signature does not match the body"),
            AuthError::StandardRequired => f.write_str("a confirmation must be signed with Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature): Segment's X-Signature carries no timestamp, so a captured request could be replayed for ever"),
        }
    }
}

impl AuthError {
    /// The header at fault.
    pub fn header(&self) -> &'static str {
        match self {
            AuthError::Unsigned | AuthError::BadStandardSignature(_) | AuthError::StandardRequired => {
                STANDARD_SIGNATURE
            }
            AuthError::BadSegmentSignature => "X-Signature",
        }
    }
}

#[derive(Default)]
pub struct WebhookSecrets {
    standard: Vec<standardwebhooks::Webhook>,
    segment: Vec<Vec<u8>>,
}

/// A webhook secret that is not one (its form is wrong), and why.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("a webhook secret: {0}")]
pub struct SecretError(pub String);

impl WebhookSecrets {
    /// No secret: every request is accepted unsigned (development only).
    pub fn none() -> Self {
        Self::default()
    }

    /// `standard`: `whsec_...` secrets; `segment`: Segment shared secrets. Empty strings are ignored.
    pub fn new<S: AsRef<str>>(standard: &[S], segment: &[S]) -> Result<Self, SecretError> {
        let mut secrets = WebhookSecrets::default();
        for s in standard
            .iter()
            .map(AsRef::as_ref)
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let webhook = standardwebhooks::Webhook::new(s)
                .map_err(|_| SecretError("a Standard Webhooks secret must be `whsec_` followed by base64".into()))?;
            secrets.standard.push(webhook);
        }
        secrets.segment = segment
            .iter()
            .map(AsRef::as_ref)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.as_bytes().to_vec())
            .collect();
        Ok(secrets)
    }

    pub fn is_configured(&self) -> bool {
        !self.standard.is_empty() || !self.segment.is_empty()
    }

    /// Checks a request that changes what people see (a confirmation): only
    /// a Standard Webhooks signature, whose signed timestamp bounds a replay
    /// to the five-minute tolerance, is accepted. Without any secret
    /// configured (development), unsigned requests pass as `verify` lets them.
    pub fn verify_timestamped(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), AuthError> {
        if !self.is_configured() {
            return Ok(());
        }
        if self.standard.is_empty() || !headers.contains_key(STANDARD_SIGNATURE) {
            return Err(AuthError::StandardRequired);
        }
        self.verify(headers, body)
    }

    /// Checks the request's signature against every configured secret.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), AuthError> {
        if !self.is_configured() {
            return Ok(());
        }
        if headers.contains_key(STANDARD_SIGNATURE) && !self.standard.is_empty() {
            // Checked here before the library sees it: any text, any integer
            // (i64::MIN included) gets a 401, never an overflow.
            check_timestamp(headers, chrono::Utc::now().timestamp())?;
            let mut last = String::new();
            for webhook in &self.standard {
                match webhook.verify(body, headers) {
                    Ok(()) => return Ok(()),
                    Err(e) => last = e.to_string(),
                }
            }
            return Err(AuthError::BadStandardSignature(last));
        }
        if let Some(given) = headers.get(SEGMENT_SIGNATURE).filter(|_| !self.segment.is_empty()) {
            let given = given
                .to_str()
                .ok()
                .and_then(|h| hex::decode(h.trim()).ok())
                .unwrap_or_default();
            for secret in &self.segment {
                let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC takes any key length");
                mac.update(body);
                // verify_slice is constant-time and fails on any length mismatch (empty included).
                if mac.verify_slice(&given).is_ok() {
                    return Ok(());
                }
            }
            return Err(AuthError::BadSegmentSignature);
        }
        Err(AuthError::Unsigned)
    }
}

/// The `webhook-timestamp` header: whole Unix seconds within five minutes of `now`.
fn check_timestamp(headers: &HeaderMap, now: i64) -> Result<(), AuthError> {
    let bad = |why: &str| AuthError::BadStandardSignature(format!("webhook-timestamp {why}"));
    let text = headers
        .get(STANDARD_TIMESTAMP)
        .ok_or_else(|| bad("is missing"))?
        .to_str()
        .map_err(|_| bad("is not text"))?;
    let at: i128 = text.trim().parse().map_err(|_| bad("must be whole Unix seconds"))?;
    if (i128::from(now) - at).abs() > TIMESTAMP_TOLERANCE_SECONDS {
        return Err(bad("is more than five minutes from now"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use lambda_http::http::HeaderValue;

    use super::*;

    fn segment_headers(signature: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-signature", HeaderValue::from_str(signature).unwrap());
        h
    }

    #[test]
    fn segment_signatures_match_the_published_hmac_sha1_vector() {
        // RFC 2104 HMAC-SHA1 of the classic pangram with key "key".
        let secrets = WebhookSecrets::new::<&str>(&[], &["key"]).unwrap();
        let body = b"The quick brown fox jumps over the lazy dog";
        let good = segment_headers("de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9");
        assert_eq!(secrets.verify(&good, body), Ok(()));
        let upper = segment_headers("DE7C9B85B8B78AA6BC8A7A36F70A90701C9DB4D9");
        assert_eq!(secrets.verify(&upper, body), Ok(()), "hex case does not matter");
        for bad in ["de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d8", "de7c9b85", "", "not hex"] {
            assert_eq!(
                secrets.verify(&segment_headers(bad), body),
                Err(AuthError::BadSegmentSignature),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn any_timestamp_header_is_answered_without_overflow() {
        let now = 1_800_000_000;
        let with = |ts: &str| {
            let mut h = HeaderMap::new();
            h.insert("webhook-timestamp", HeaderValue::from_str(ts).unwrap());
            check_timestamp(&h, now)
        };
        assert_eq!(with("1800000000"), Ok(()));
        assert_eq!(with("1800000299"), Ok(()));
        for bad in [
            "-9223372036854775808",
            "9223372036854775807",
            "99999999999999999999999999",
            "1800000000.5",
            "1e9",
            "",
            "soon",
            "1799999699",
        ] {
            assert!(
                matches!(with(bad), Err(AuthError::BadStandardSignature(_))),
                "{bad:?} was not refused"
            );
        }
        assert!(check_timestamp(&HeaderMap::new(), now).is_err());
    }

    #[test]
    fn a_malformed_standard_secret_is_refused_at_start_up() {
        assert!(WebhookSecrets::new(&["whsec_%%%"], &[]).is_err());
        assert!(!WebhookSecrets::new::<&str>(&["", "  "], &[""]).unwrap().is_configured());
    }
}
