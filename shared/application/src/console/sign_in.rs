//! Signing in with the team's identity provider: OpenID Connect's
//! authorization code flow with PKCE. The provider is a port
//! (`IdentityProvider`): its adapter discovers the issuer, makes the
//! authorization URL with a fresh state, nonce and PKCE challenge,
//! exchanges the code and verifies the ID token (signature against the
//! issuer's keys, issuer, audience, expiry, nonce) with a well-kept crate.
//! This module is the flow between the two legs: what is kept (sealed in a
//! short-lived cookie), what is checked, and who may enter as what.

use async_trait::async_trait;
use milepost_domain::Timestamp;
use serde::{Deserialize, Serialize};

use super::session::Role;
use crate::ports::BoxError;

/// How long a sign-in may take between leaving for the provider and coming back.
pub const PENDING_MINUTES: i64 = 10;

/// What the first leg made: where to send the browser, and what the second leg checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Started {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// Who the provider says signed in, from an ID token it verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub email: String,
    pub name: Option<String>,
    /// `Some(false)`: the provider says the address is not verified.
    pub email_verified: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The provider could not be reached, or answered what is not OpenID Connect.
    #[error("the identity provider could not be reached")]
    Unavailable(#[source] BoxError),
    /// The provider refused the code, or its ID token did not verify.
    #[error("the sign-in was not accepted")]
    Refused(#[source] BoxError),
}

/// The team's identity provider, at the edge.
#[async_trait]
pub trait IdentityProvider: Send + Sync {
    /// The authorization URL for a new sign-in coming back to `redirect_uri`.
    async fn start(&self, redirect_uri: &str) -> Result<Started, IdentityError>;
    /// The person `code` stands for, its ID token verified against `pending`'s nonce.
    async fn finish(&self, code: &str, pending: &Pending, redirect_uri: &str) -> Result<Identity, IdentityError>;
}

/// A sign-in between its two legs, sealed in a cookie of its own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    /// Where to go once signed in (a relative path of ours).
    pub return_to: String,
    pub expires_at: Timestamp,
}

/// Who may enter, and as what: the admin's list (in SSM or the
/// deployment's settings), as JSON.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Access {
    /// Anyone signing in with an address at one of these domains enters as a viewer.
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    #[serde(default)]
    pub leads: Vec<String>,
    #[serde(default)]
    pub csms: Vec<String>,
    /// Viewers outside the allowed domains.
    #[serde(default)]
    pub viewers: Vec<String>,
}

impl Access {
    /// The list as the admin wrote it; the field at fault when it is not one.
    pub fn parse(json: &str) -> Result<Access, String> {
        serde_json::from_str(json).map_err(|e| format!("the console's access list: {e}"))
    }

    /// The role of `email`: the one it is listed with (the highest, if
    /// listed twice), else viewer at an allowed domain, else none.
    pub fn role_of(&self, email: &str) -> Option<Role> {
        let email = email.trim();
        let listed = |list: &[String]| list.iter().any(|e| e.trim().eq_ignore_ascii_case(email));
        if listed(&self.leads) {
            return Some(Role::Lead);
        }
        if listed(&self.csms) {
            return Some(Role::Csm);
        }
        let domain = email.rsplit_once('@').map(|(_, d)| d)?;
        if listed(&self.viewers)
            || self
                .allowed_domains
                .iter()
                .any(|d| d.trim().trim_start_matches('@').eq_ignore_ascii_case(domain))
        {
            return Some(Role::Viewer);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listed_person_gets_their_role_and_an_allowed_domain_a_viewer() {
        let access = Access::parse(
            r#"{"allowed_domains": ["vendor.example"], "leads": ["Lee@Vendor.example"], "csms": ["maya@vendor.example"], "viewers": ["auditor@outside.example"]}"#,
        )
        .unwrap();
        assert_eq!(access.role_of("lee@vendor.example"), Some(Role::Lead));
        assert_eq!(access.role_of("maya@vendor.example"), Some(Role::Csm));
        assert_eq!(access.role_of("anyone@vendor.example"), Some(Role::Viewer));
        assert_eq!(access.role_of("auditor@outside.example"), Some(Role::Viewer));
        assert_eq!(access.role_of("someone@outside.example"), None);
        assert_eq!(access.role_of("vendor.example"), None, "no address, no entry");
        assert_eq!(
            access.role_of("x@evil-vendor.example"),
            None,
            "a domain is matched whole"
        );
        assert!(Access::parse(r#"{"lead": []}"#).unwrap_err().contains("lead"));
    }
}
