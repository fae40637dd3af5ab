//! Who is signed in to the console: a session in a signed cookie (HMAC-SHA256
//! over its exact bytes, checked in constant time before anything in it is
//! read), with a fresh random id at every sign-in, an expiry, and a CSRF
//! token derived from the id for every form.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Duration;
use hmac::{Hmac, Mac};
use milepost_domain::Timestamp;
use rand::RngCore;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The cookie's name. `__Host-` (Secure, path `/`, no domain) where the
/// console is served over HTTPS; plain on the loopback development server.
pub const COOKIE: &str = "__Host-milepost-session";
pub const DEV_COOKIE: &str = "milepost-session";
/// The sign-in in flight, between leaving for the identity provider and coming back.
pub const PENDING_COOKIE: &str = "__Host-milepost-sign-in";
pub const DEV_PENDING_COOKIE: &str = "milepost-sign-in";

/// What a session cookie's and a sign-in cookie's signatures cover first,
/// so one is never taken for the other.
const SESSION_LABEL: &[u8] = b"milepost-session-v1\0";
const PENDING_LABEL: &[u8] = b"milepost-sign-in-v1\0";

/// How long a sign-in lasts.
pub const SESSION_HOURS: i64 = 12;

/// What a person may do in the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Sees everything, changes nothing.
    Viewer,
    /// Sees everything; acts on their own tasks and accounts, as themself.
    Csm,
    /// Acts on any task or account, as themself.
    Lead,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Csm => "csm",
            Role::Lead => "lead",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Role::Viewer => "Viewer",
            Role::Csm => "CSM",
            Role::Lead => "CS lead",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        [Role::Viewer, Role::Csm, Role::Lead]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// The signed-in person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewer {
    /// The session's id: random, new at every sign-in.
    pub sid: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub expires_at: Timestamp,
}

impl Viewer {
    /// A new session for a person who just signed in at `now`.
    pub fn signed_in(email: &str, name: &str, role: Role, now: Timestamp) -> Viewer {
        let mut id = [0u8; 18];
        rand::rng().fill_bytes(&mut id);
        Viewer {
            sid: URL_SAFE_NO_PAD.encode(id),
            email: email.trim().to_ascii_lowercase(),
            name: name.to_string(),
            role,
            expires_at: now + Duration::hours(SESSION_HOURS),
        }
    }

    /// Whether this person is `email` (addresses compared as the stores keep them).
    pub fn is(&self, email: &str) -> bool {
        self.email.eq_ignore_ascii_case(email.trim())
    }
}

/// Signs and opens session cookies, and derives each session's CSRF token.
#[derive(Clone)]
pub struct SessionKey {
    key: Vec<u8>,
}

// The key never reaches a log, even through `{:?}`.
impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

/// Why a cookie does not stand for a session: each means "sign in again".
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("no session")]
    Missing,
    #[error("not a session this console signed")]
    Forged,
    #[error("the session has expired")]
    Expired,
}

impl SessionKey {
    /// A key of at least 32 bytes; `None` for a shorter one.
    pub fn new(key: &[u8]) -> Option<SessionKey> {
        (key.len() >= 32).then(|| SessionKey { key: key.to_vec() })
    }

    /// A random key, for a console whose sessions end with its process (`make console`).
    pub fn random() -> SessionKey {
        let mut key = vec![0u8; 32];
        rand::rng().fill_bytes(&mut key);
        SessionKey { key }
    }

    fn mac(&self, label: &[u8], data: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        mac.update(label);
        mac.update(data);
        mac
    }

    /// `value` sealed under `label`: `v1.<payload>.<signature>`, base64url,
    /// the signature an HMAC over the label and the payload's exact bytes.
    fn seal_as<T: Serialize>(&self, label: &[u8], value: &T) -> String {
        let payload = serde_json::to_vec(value).expect("a sealed value serialises");
        let signature = self.mac(label, &payload).finalize().into_bytes();
        format!(
            "v1.{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(signature)
        )
    }

    /// What `sealed` holds, if this key sealed it under `label`, whole
    /// (checked in constant time before the payload is read).
    fn open_as<T: DeserializeOwned>(&self, label: &[u8], sealed: &str) -> Result<T, SessionError> {
        let mut parts = sealed.split('.');
        let (Some("v1"), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SessionError::Forged);
        };
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| SessionError::Forged)?;
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| SessionError::Forged)?;
        self.mac(label, &payload)
            .verify_slice(&signature)
            .map_err(|_| SessionError::Forged)?;
        serde_json::from_slice(&payload).map_err(|_| SessionError::Forged)
    }

    /// The session cookie's value for `viewer`.
    pub fn seal(&self, viewer: &Viewer) -> String {
        self.seal_as(SESSION_LABEL, viewer)
    }

    /// The session `value` stands for at `now`: signed by this key, whole, not expired.
    pub fn open(&self, value: &str, now: Timestamp) -> Result<Viewer, SessionError> {
        let viewer: Viewer = self.open_as(SESSION_LABEL, value)?;
        if viewer.expires_at <= now {
            return Err(SessionError::Expired);
        }
        Ok(viewer)
    }

    /// The sign-in cookie's value for `pending` (a session is never one).
    pub fn seal_pending(&self, pending: &super::sign_in::Pending) -> String {
        self.seal_as(PENDING_LABEL, pending)
    }

    /// The sign-in in flight `value` stands for at `now`.
    pub fn open_pending(&self, value: &str, now: Timestamp) -> Result<super::sign_in::Pending, SessionError> {
        let pending: super::sign_in::Pending = self.open_as(PENDING_LABEL, value)?;
        if pending.expires_at <= now {
            return Err(SessionError::Expired);
        }
        Ok(pending)
    }

    /// The CSRF token of `viewer`'s session, for its forms.
    pub fn csrf_token(&self, viewer: &Viewer) -> String {
        URL_SAFE_NO_PAD.encode(
            self.mac(b"milepost-csrf\0", viewer.sid.as_bytes())
                .finalize()
                .into_bytes(),
        )
    }

    /// Whether `token` is `viewer`'s CSRF token (constant time).
    pub fn csrf_ok(&self, viewer: &Viewer, token: &str) -> bool {
        let Ok(token) = URL_SAFE_NO_PAD.decode(token) else {
            return false;
        };
        self.mac(b"milepost-csrf\0", viewer.sid.as_bytes())
            .verify_slice(&token)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn now() -> Timestamp {
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
    }

    #[test]
    fn a_sealed_session_opens_until_it_expires_and_not_after() {
        let key = SessionKey::random();
        let viewer = Viewer::signed_in("Maya@Vendor.example", "Maya", Role::Csm, now());
        let cookie = key.seal(&viewer);
        assert_eq!(key.open(&cookie, now()), Ok(viewer.clone()));
        assert_eq!(viewer.email, "maya@vendor.example");
        assert_eq!(
            key.open(&cookie, now() + Duration::hours(SESSION_HOURS)),
            Err(SessionError::Expired)
        );
    }

    #[test]
    fn a_changed_or_foreign_cookie_is_refused() {
        let key = SessionKey::random();
        let viewer = Viewer::signed_in("maya@vendor.example", "Maya", Role::Csm, now());
        let cookie = key.seal(&viewer);
        assert_eq!(SessionKey::random().open(&cookie, now()), Err(SessionError::Forged));
        // The same session made a lead by hand, signature kept.
        let (_, rest) = cookie.split_once('.').unwrap();
        let (_, signature) = rest.split_once('.').unwrap();
        let lead = Viewer {
            role: Role::Lead,
            ..viewer.clone()
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&lead).unwrap());
        assert_eq!(
            key.open(&format!("v1.{payload}.{signature}"), now()),
            Err(SessionError::Forged)
        );
        for junk in ["", "v1", "v1..", "v2.a.b", "v1.a.b.c", &format!("{cookie}x")] {
            assert!(key.open(junk, now()).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn every_sign_in_gets_a_fresh_session_and_its_own_csrf_token() {
        let key = SessionKey::random();
        let first = Viewer::signed_in("maya@vendor.example", "Maya", Role::Csm, now());
        let second = Viewer::signed_in("maya@vendor.example", "Maya", Role::Csm, now());
        assert_ne!(first.sid, second.sid);
        let token = key.csrf_token(&first);
        assert!(key.csrf_ok(&first, &token));
        assert!(!key.csrf_ok(&second, &token), "a token is its session's only");
        assert!(!key.csrf_ok(&first, ""));
        assert!(SessionKey::new(&[0u8; 31]).is_none(), "a short key is no key");
    }
}
