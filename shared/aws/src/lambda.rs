//! What every Lambda function shares: JSON logs for CloudWatch, and the
//! playbook functions' runtime loop.

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use milepost_app::config::ConfigError;
use milepost_app::escalation::invocation::{handle, PlaybookFunction, StepInvocation};

use crate::WiringError;

/// Which certificates the functions' HTTPS client trusts, from
/// `MILEPOST_TLS_ROOTS`: `aws` (the default) the roots every AWS endpoint
/// chains to, built in; `system` the system's trust store (`SSL_CERT_FILE`,
/// `SSL_CERT_DIR`), for a network that inspects TLS with its own CA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrustRoots {
    Aws,
    System,
}

impl TrustRoots {
    pub fn from_env(value: Option<&str>) -> Result<Self, ConfigError> {
        match value.map(str::trim) {
            None | Some("") | Some("aws") => Ok(TrustRoots::Aws),
            Some("system") => Ok(TrustRoots::System),
            Some(other) => Err(ConfigError {
                variable: "MILEPOST_TLS_ROOTS",
                problem: format!("is {other:?}: expected `aws` or `system`"),
            }),
        }
    }
}

/// Amazon Trust Services' roots, the only CAs an AWS endpoint's certificate chains to.
pub const AWS_ROOTS_PEM: &str = include_str!("aws-roots.pem");

/// The SDK configuration of a function, built once per cold start: as
/// `sdk_config`, but with what Lambda always provides taken straight from
/// it (credentials and region from the environment, no provider chain to
/// build) and, by default, five trust roots instead of the system's ~150,
/// which cost ~2 ms of every cold start to decode.
pub async fn sdk_config() -> Result<aws_config::SdkConfig, WiringError> {
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
    let roots = TrustRoots::from_env(std::env::var("MILEPOST_TLS_ROOTS").ok().as_deref())?;
    let store = match roots {
        TrustRoots::Aws => TrustStore::empty()
            .with_native_roots(false)
            .with_pem_certificate(AWS_ROOTS_PEM.as_bytes()),
        TrustRoots::System => TrustStore::default(),
    };
    let tls = TlsContext::builder()
        .with_trust_store(store)
        .build()
        .map_err(|e| WiringError::Tls(e.into()))?;
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(tls)
        .build_https();
    Ok(super::sdk_defaults()
        .http_client(http)
        .credentials_provider(aws_config::environment::EnvironmentVariableCredentialsProvider::new())
        .region(aws_config::environment::EnvironmentVariableRegionProvider::new())
        .load()
        .await)
}

/// Logging for the Lambdas: JSON lines (what CloudWatch and Logs Insights
/// read), level from `RUST_LOG` (default `info`). Each line carries the
/// fields of the span it was written in (account, milestone, step: ids
/// only), never names or email addresses.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .without_time() // CloudWatch stamps every line
        .init();
}

/// Runs the playbook function `function` under the Lambda runtime until the
/// environment shuts down. An invocation's error reaches Step Functions under
/// its `error_type`, the name the state machine's Retry and Catch match on.
pub async fn serve_playbook(function: PlaybookFunction) -> Result<(), lambda_runtime::Error> {
    init_logging();
    let sdk = sdk_config().await?;
    let steps = super::services_from_env(&sdk, super::LinkKey::IfConfigured)
        .await?
        .playbook();
    // `make local` only: the executor's compressed playbook time, per step.
    let local_clock = std::env::var("MILEPOST_PLAYBOOK_CLOCK").is_ok_and(|v| v == "local");
    lambda_runtime::run(service_fn(|event: LambdaEvent<StepInvocation>| {
        let steps = match event.payload.playbook_now.filter(|_| local_clock) {
            Some(now) => milepost_app::escalation::PlaybookSteps {
                clock: std::sync::Arc::new(milepost_app::clock::FixedClock(now)),
                ..steps.clone()
            },
            None => steps.clone(),
        };
        async move {
            handle(&steps, function, &event.payload).await.map_err(|e| Diagnostic {
                error_type: e.error_type().to_string(),
                error_message: e.to_string(),
            })
        }
    }))
    .await
}
