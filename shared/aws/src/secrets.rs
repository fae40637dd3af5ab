//! Webhook secrets, read once at cold start from SSM Parameter Store or
//! Secrets Manager, named by environment variables — never taken from plain
//! environment values in production.
//!
//! - `MILEPOST_WEBHOOK_SECRET_PARAM` / `MILEPOST_SEGMENT_SECRET_PARAM`: an SSM
//!   parameter (SecureString) holding one secret, or several separated by
//!   whitespace or commas while a key is rotated.
//! - `MILEPOST_WEBHOOK_SECRET_ARN` / `MILEPOST_SEGMENT_SECRET_ARN`: a Secrets
//!   Manager secret with the same content.
//! - `MILEPOST_WRITE_KEYS_PARAM` / `MILEPOST_WRITE_KEYS_ARN`: the tracking
//!   API's write keys (what the Segment and RudderStack SDKs send), the same way.
//! - Local runs only (`MILEPOST_LOCAL=1`): `MILEPOST_LOCAL_WEBHOOK_SECRET`,
//!   `MILEPOST_LOCAL_SEGMENT_SECRET` and `MILEPOST_LOCAL_WRITE_KEY`, with
//!   development defaults when unset.
//!
//! The key that signs action links is read the same way: the SSM parameter
//! named by `MILEPOST_ACTIONS_KEY_PARAM` (`MILEPOST_LOCAL_ACTIONS_KEY`, with
//! a development default, in local runs). At least 16 bytes.

use aws_config::SdkConfig;

/// The development secrets `make local` uses when none are given; documented in the README.
pub const DEV_WEBHOOK_SECRET: &str = "whsec_bWlsZXBvc3QtbG9jYWwtZGV2ZWxvcG1lbnQ=";
pub const DEV_SEGMENT_SECRET: &str = "milepost-local-segment-secret";
pub const DEV_WRITE_KEY: &str = "milepost-local-write-key";

#[derive(Debug, Default, PartialEq, Eq)]
pub struct LoadedSecrets {
    pub standard: Vec<String>,
    pub segment: Vec<String>,
    /// The tracking API's write keys.
    pub write_keys: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("loading webhook secrets: {0}")]
pub struct SecretsError(pub String);

fn split(value: &str) -> Vec<String> {
    value
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// A configured secret that holds nothing usable (blanks, separators) stops
/// the function at cold start: configured means "check signatures", and a
/// blank value must never silently turn that into "accept anything".
fn usable(secrets: Vec<String>, name: &str) -> Result<Vec<String>, SecretsError> {
    if secrets.is_empty() {
        return Err(SecretsError(format!(
            "{name} is configured but holds no secret (only blanks or separators): put the secret in it, or unset the variable naming it"
        )));
    }
    Ok(secrets)
}

pub async fn load(config: &SdkConfig, env: impl Fn(&str) -> Option<String>) -> Result<LoadedSecrets, SecretsError> {
    if env("MILEPOST_LOCAL").as_deref() == Some("1") {
        return Ok(LoadedSecrets {
            standard: split(&env("MILEPOST_LOCAL_WEBHOOK_SECRET").unwrap_or_else(|| DEV_WEBHOOK_SECRET.into())),
            segment: split(&env("MILEPOST_LOCAL_SEGMENT_SECRET").unwrap_or_else(|| DEV_SEGMENT_SECRET.into())),
            write_keys: split(&env("MILEPOST_LOCAL_WRITE_KEY").unwrap_or_else(|| DEV_WRITE_KEY.into())),
        });
    }
    let ssm = aws_sdk_ssm::Client::new(config);
    let sm = aws_sdk_secretsmanager::Client::new(config);
    let fetch = |param: Option<String>, arn: Option<String>| {
        let (ssm, sm) = (ssm.clone(), sm.clone());
        async move {
            if let Some(name) = param.filter(|p| !p.is_empty()) {
                let out = ssm
                    .get_parameter()
                    .name(&name)
                    .with_decryption(true)
                    .send()
                    .await
                    .map_err(|e| SecretsError(format!("SSM parameter {name}: {}", e.into_service_error())))?;
                return usable(
                    split(out.parameter.and_then(|p| p.value).as_deref().unwrap_or("")),
                    &name,
                );
            }
            if let Some(arn) = arn.filter(|a| !a.is_empty()) {
                let out = sm
                    .get_secret_value()
                    .secret_id(&arn)
                    .send()
                    .await
                    .map_err(|e| SecretsError(format!("secret {arn}: {}", e.into_service_error())))?;
                return usable(split(out.secret_string().unwrap_or("")), &arn);
            }
            Ok(Vec::new())
        }
    };
    // All at once: each is a round trip on the cold-start path.
    let (standard, segment, write_keys) = tokio::join!(
        fetch(env("MILEPOST_WEBHOOK_SECRET_PARAM"), env("MILEPOST_WEBHOOK_SECRET_ARN")),
        fetch(env("MILEPOST_SEGMENT_SECRET_PARAM"), env("MILEPOST_SEGMENT_SECRET_ARN")),
        fetch(env("MILEPOST_WRITE_KEYS_PARAM"), env("MILEPOST_WRITE_KEYS_ARN")),
    );
    Ok(LoadedSecrets {
        standard: standard?,
        segment: segment?,
        write_keys: write_keys?,
    })
}

/// The value of the SSM parameter `name` (a SecureString, decrypted); the
/// error names the parameter.
pub(crate) async fn ssm_parameter(config: &SdkConfig, name: &str) -> Result<String, String> {
    let out = aws_sdk_ssm::Client::new(config)
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| format!("SSM parameter {name}: {}", e.into_service_error()))?;
    Ok(out.parameter.and_then(|p| p.value).unwrap_or_default())
}

/// The action-link signer, if a key is configured. A configured key that is
/// blank or shorter than 16 bytes stops the function at cold start: links
/// signed with no real key would be forgeable.
pub async fn load_link_signer(
    config: &SdkConfig,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<milepost_app::links::LinkSigner>, SecretsError> {
    let key = if env("MILEPOST_LOCAL").as_deref() == Some("1") {
        Some(env("MILEPOST_LOCAL_ACTIONS_KEY").unwrap_or_else(|| milepost_app::links::DEV_LINK_KEY.to_string()))
    } else if let Some(name) = env("MILEPOST_ACTIONS_KEY_PARAM").filter(|p| !p.is_empty()) {
        Some(ssm_parameter(config, &name).await.map_err(SecretsError)?)
    } else {
        None
    };
    key.map(|k| {
        milepost_app::links::LinkSigner::new(k.trim().as_bytes()).ok_or_else(|| {
            SecretsError(
                "the action-link key is configured but shorter than 16 bytes: put a long random key in it".into(),
            )
        })
    })
    .transpose()
}
