//! The console's identity provider: any OpenID Connect issuer (Okta, Google
//! Workspace, Microsoft Entra ID, Cognito, `oidc-provider` in `make local`),
//! through the `openidconnect` crate. Discovery (metadata and signing keys)
//! is fetched on first use and again after an hour, or when an ID token does
//! not verify against the keys held (the issuer may have rotated them); the
//! ID token is verified by the crate: signature against the issuer's keys,
//! issuer, audience, expiry, and the sign-in's nonce. The HTTP client follows
//! no redirects (a discovery document that redirects is refused).

use std::time::{Duration, Instant};

use async_trait::async_trait;
use milepost_app::console::sign_in::{Identity, IdentityError, IdentityProvider, Pending, Started};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, Scope, TokenResponse,
};
use tokio::sync::Mutex;

/// How long discovered metadata and keys are used before they are fetched again.
const METADATA_TTL: Duration = Duration::from_secs(3600);

pub struct OpenIdProvider {
    issuer: IssuerUrl,
    client_id: ClientId,
    client_secret: Option<ClientSecret>,
    http: reqwest::Client,
    metadata: Mutex<Option<(Instant, CoreProviderMetadata)>>,
}

/// A setting the provider cannot work with.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OidcConfigError(String);

impl OpenIdProvider {
    /// A provider for `issuer` (its URL, as the ID tokens name it), the
    /// console's `client_id` and, for a confidential client, its secret.
    pub fn new(issuer: &str, client_id: &str, client_secret: Option<String>) -> Result<Self, OidcConfigError> {
        let issuer = IssuerUrl::new(issuer.trim_end_matches('/').to_string())
            .map_err(|e| OidcConfigError(format!("the OpenID issuer {issuer:?} is not a URL: {e}")))?;
        let tls = crate::webhook_poster::public_web_tls()
            .map_err(|e| OidcConfigError(format!("TLS for the OpenID issuer: {e}")))?;
        let http = reqwest::ClientBuilder::new()
            .use_preconfigured_tls(tls)
            // Following redirects would let a discovery document send us anywhere (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| OidcConfigError(format!("the HTTP client for the OpenID issuer: {e}")))?;
        Ok(OpenIdProvider {
            issuer,
            client_id: ClientId::new(client_id.to_string()),
            client_secret: client_secret.filter(|s| !s.is_empty()).map(ClientSecret::new),
            http,
            metadata: Mutex::new(None),
        })
    }

    /// The issuer's metadata and keys: the ones held, unless older than
    /// `METADATA_TTL` or `fresh` is asked for.
    async fn metadata(&self, fresh: bool) -> Result<CoreProviderMetadata, IdentityError> {
        let mut held = self.metadata.lock().await;
        if let Some((at, metadata)) = held.as_ref() {
            if !fresh && at.elapsed() < METADATA_TTL {
                return Ok(metadata.clone());
            }
        }
        let metadata = CoreProviderMetadata::discover_async(self.issuer.clone(), &self.http)
            .await
            .map_err(|e| IdentityError::Unavailable(Box::new(e)))?;
        *held = Some((Instant::now(), metadata.clone()));
        Ok(metadata)
    }

    fn redirect(redirect_uri: &str) -> Result<RedirectUrl, IdentityError> {
        RedirectUrl::new(redirect_uri.to_string()).map_err(|e| IdentityError::Unavailable(Box::new(e)))
    }

    /// The person of `code`, against `metadata`'s keys.
    async fn verify(
        &self,
        metadata: CoreProviderMetadata,
        code: &str,
        pending: &Pending,
        redirect_uri: &str,
    ) -> Result<Identity, IdentityError> {
        let refused = |e: String| IdentityError::Refused(e.into());
        let client = CoreClient::from_provider_metadata(metadata, self.client_id.clone(), self.client_secret.clone())
            .set_redirect_uri(Self::redirect(redirect_uri)?);
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| IdentityError::Unavailable(Box::new(e)))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| refused(format!("the token endpoint refused the code: {e}")))?;
        let id_token = token
            .id_token()
            .ok_or_else(|| refused("the token endpoint returned no ID token".into()))?;
        let claims = id_token
            .claims(&client.id_token_verifier(), &Nonce::new(pending.nonce.clone()))
            .map_err(|e| refused(format!("the ID token did not verify: {e}")))?;
        let email = claims
            .email()
            .ok_or_else(|| refused("the ID token names no email address (ask for the email scope)".into()))?;
        Ok(Identity {
            email: email.as_str().to_string(),
            name: claims.name().and_then(|n| n.get(None)).map(|n| n.as_str().to_string()),
            email_verified: claims.email_verified(),
        })
    }
}

#[async_trait]
impl IdentityProvider for OpenIdProvider {
    async fn start(&self, redirect_uri: &str) -> Result<Started, IdentityError> {
        let metadata = self.metadata(false).await?;
        let client = CoreClient::from_provider_metadata(metadata, self.client_id.clone(), self.client_secret.clone())
            .set_redirect_uri(Self::redirect(redirect_uri)?);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".to_string()))
            .add_scope(Scope::new("profile".to_string()))
            .set_pkce_challenge(challenge)
            .url();
        Ok(Started {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    async fn finish(&self, code: &str, pending: &Pending, redirect_uri: &str) -> Result<Identity, IdentityError> {
        let metadata = self.metadata(false).await?;
        match self.verify(metadata, code, pending, redirect_uri).await {
            // The code is spent either way; fresh keys only help the next sign-in.
            Err(IdentityError::Refused(e)) if e.to_string().starts_with("the ID token did not verify") => {
                self.metadata(true).await?;
                Err(IdentityError::Refused(e))
            }
            other => other,
        }
    }
}
