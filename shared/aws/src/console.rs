//! The console's wiring on AWS: where it is served, the identity provider,
//! who may enter, and the key its sessions are signed with, read once at
//! cold start. Settings (environment):
//!
//! - `MILEPOST_CONSOLE_URL`: where the console is served (its sign-in
//!   callback is `<url>/sign-in/callback`, registered with the provider).
//! - `MILEPOST_OIDC_ISSUER`, `MILEPOST_OIDC_CLIENT_ID`: the provider and the
//!   console's client there; `MILEPOST_OIDC_CLIENT_SECRET_PARAM`: the SSM
//!   parameter (SecureString) holding the client's secret, unless the
//!   client is public.
//! - `MILEPOST_CONSOLE_ACCESS_PARAM`: the SSM parameter holding who may
//!   enter as what (`milepost_app::console::Access`, JSON), or
//!   `MILEPOST_CONSOLE_ACCESS`, the same JSON inline.
//! - `MILEPOST_CONSOLE_SESSION_KEY_PARAM`: the SSM parameter (SecureString)
//!   holding the key sessions are signed with, at least 32 bytes.
//! - Local runs only (`MILEPOST_LOCAL=1`): `MILEPOST_LOCAL_OIDC_CLIENT_SECRET`
//!   for the secret, and a random session key unless
//!   `MILEPOST_LOCAL_CONSOLE_SESSION_KEY` gives one.

use std::sync::Arc;

use aws_config::SdkConfig;
use milepost_app::console::{Access, Console, SessionKey, SignIn};
use milepost_app::Services;

use crate::oidc::OpenIdProvider;
use crate::WiringError;

/// One SSM parameter's value, decrypted.
async fn parameter(sdk: &SdkConfig, name: &str) -> Result<String, WiringError> {
    let out = aws_sdk_ssm::Client::new(sdk)
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| WiringError::Console(format!("SSM parameter {name}: {}", e.into_service_error())))?;
    Ok(out.parameter.and_then(|p| p.value).unwrap_or_default())
}

/// The console over `services`, as the environment configures it.
pub async fn console_from_env(sdk: &SdkConfig, services: &Services) -> Result<Console, WiringError> {
    console_from(sdk, services, |name| {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    })
    .await
}

/// `console_from_env` with the environment given (for tests).
pub async fn console_from(
    sdk: &SdkConfig,
    services: &Services,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Console, WiringError> {
    let required =
        |variable: &'static str, hint: &'static str| env(variable).ok_or(WiringError::Missing { variable, hint });
    let local = env("MILEPOST_LOCAL").as_deref() == Some("1");
    let console_url = required("MILEPOST_CONSOLE_URL", ": where the console is served")?;
    if !local && !console_url.starts_with("https://") {
        return Err(WiringError::Console(format!(
            "MILEPOST_CONSOLE_URL must be an https:// URL (sessions travel in Secure cookies), not {console_url:?}"
        )));
    }
    let issuer = required("MILEPOST_OIDC_ISSUER", ": the identity provider's issuer URL")?;
    let client_id = required(
        "MILEPOST_OIDC_CLIENT_ID",
        ": the console's client id at the identity provider",
    )?;
    // The SSM parameters side by side: each is a round trip on the cold-start
    // path. Local runs take the secret and the key from the environment.
    let read = |name: Option<String>| async move {
        match name {
            Some(name) => parameter(sdk, &name).await.map(Some),
            None => Ok(None),
        }
    };
    let (client_secret, access_listed, session_key) = tokio::join!(
        read(env("MILEPOST_OIDC_CLIENT_SECRET_PARAM").filter(|_| !local)),
        read(env("MILEPOST_CONSOLE_ACCESS_PARAM")),
        read(env("MILEPOST_CONSOLE_SESSION_KEY_PARAM").filter(|_| !local)),
    );
    let client_secret = if local {
        env("MILEPOST_LOCAL_OIDC_CLIENT_SECRET")
    } else {
        client_secret?.map(|s| s.trim().to_string())
    };
    let access = match (access_listed?, env("MILEPOST_CONSOLE_ACCESS")) {
        (Some(listed), _) => listed,
        (None, Some(inline)) => inline,
        (None, None) => {
            return Err(WiringError::Missing {
                variable: "MILEPOST_CONSOLE_ACCESS_PARAM",
                hint: ": who may enter the console, as what (or MILEPOST_CONSOLE_ACCESS inline)",
            })
        }
    };
    let access = Access::parse(&access).map_err(WiringError::Console)?;
    let sessions = if local {
        match env("MILEPOST_LOCAL_CONSOLE_SESSION_KEY") {
            Some(key) => SessionKey::new(key.as_bytes()),
            None => Some(SessionKey::random()),
        }
    } else {
        let key = session_key?.ok_or(WiringError::Missing {
            variable: "MILEPOST_CONSOLE_SESSION_KEY_PARAM",
            hint: ": the SSM parameter holding the key sessions are signed with",
        })?;
        SessionKey::new(key.trim().as_bytes())
    }
    .ok_or_else(|| WiringError::Console("the console's session key is shorter than 32 bytes".into()))?;
    let provider =
        OpenIdProvider::new(&issuer, &client_id, client_secret).map_err(|e| WiringError::Console(e.to_string()))?;
    Ok(services.console(
        sessions,
        SignIn::OpenId {
            provider: Arc::new(provider),
            access,
            console_url,
        },
    ))
}
