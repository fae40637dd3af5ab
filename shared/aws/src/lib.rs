//! Production adapters over the AWS SDK — the DynamoDB store, SES mailer,
//! EventBridge publisher, Step Functions workflows, webhook secrets — and the
//! Lambda wiring that builds each use case from them. Every client honours
//! `AWS_ENDPOINT_URL`, which is how tests and local runs point them at the
//! local emulator.

pub mod console;
pub mod dynamo;
pub mod eventbridge;
pub mod hubspot_api;
pub mod lambda;
mod lazy_client;
pub mod oidc;
pub mod secrets;
pub mod ses;
pub mod slack_api;
pub mod step_functions;
pub mod webhook_poster;

pub use dynamo::{DynamoStore, Meter};
pub use eventbridge::EventBridgePublisher;
pub use lazy_client::LazyClient;
pub use ses::SesMailer;
pub use step_functions::StepFunctionsWorkflows;

use std::sync::Arc;

use milepost_app::actions::Actions;
use milepost_app::clock::SystemClock;
use milepost_app::services::Services;
use milepost_app::Config;

/// The CLI's SDK configuration: credentials and region from the default
/// provider chains (environment, profiles, SSO, instance roles). The
/// functions use `lambda::sdk_config`. Throttling and transient errors are
/// retried by the SDK with exponential backoff and jitter (standard mode,
/// three attempts), so callers see only what persists.
pub async fn sdk_config() -> aws_config::SdkConfig {
    sdk_defaults().load().await
}

fn sdk_defaults() -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(3))
}

/// What a process needs from its environment and did not get.
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    #[error("{variable} is not set{hint}")]
    Missing { variable: &'static str, hint: &'static str },
    #[error(transparent)]
    Setting(#[from] milepost_app::config::ConfigError),
    #[error("reading the action-link key")]
    LinkKey(#[source] secrets::SecretsError),
    /// The console's settings or secrets are not usable.
    #[error("the console: {0}")]
    Console(String),
    /// The functions' HTTPS client could not be built with its trust roots.
    #[error("the TLS configuration of the functions' HTTPS client")]
    Tls(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Whether a process reads the action-link key at its cold start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkKey {
    /// It sends no email with links and shows no page (ingest, the weekly digest).
    Skip,
    /// Read where configured (`MILEPOST_ACTIONS_KEY_PARAM`): emails carry
    /// links only then.
    IfConfigured,
}

fn required(variable: &'static str, hint: &'static str) -> Result<String, WiringError> {
    std::env::var(variable)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or(WiringError::Missing { variable, hint })
}

/// The DynamoDB store named by `MILEPOST_TABLE`, for the CLI and the functions.
pub fn store_from_env(config: &aws_config::SdkConfig) -> Result<DynamoStore, WiringError> {
    let table = required(
        "MILEPOST_TABLE",
        " (source .milepost-local.env, or export the stack's table name)",
    )?;
    Ok(DynamoStore::new(aws_sdk_dynamodb::Client::new(config), table))
}

/// Every port of one process on AWS, built once per cold start: the table
/// (`MILEPOST_TABLE`), the bus (`MILEPOST_BUS`), the state machine
/// (`MILEPOST_STATE_MACHINE_ARN`, empty until deployed), SES under
/// `MILEPOST_SES_CONFIGURATION_SET`, the settings (`Config::from_env`, read
/// once) and, as `link_key` asks, the action-link key (one SSM read). The
/// SES, EventBridge and Step Functions clients are built on first use. Each use
/// case is cut from the result (`Services::ingestion`, ...).
pub async fn services_from_env(sdk: &aws_config::SdkConfig, link_key: LinkKey) -> Result<Services, WiringError> {
    let config = Config::from_env()?;
    let links = match link_key {
        LinkKey::Skip => None,
        LinkKey::IfConfigured => secrets::load_link_signer(sdk, |name| std::env::var(name).ok())
            .await
            .map_err(WiringError::LinkKey)?
            .map(|signer| config.links(signer)),
    };
    Ok(Services {
        store: Arc::new(store_from_env(sdk)?),
        mailer: Arc::new(SesMailer::lazy(
            sdk,
            std::env::var("MILEPOST_SES_CONFIGURATION_SET").ok(),
        )),
        events: Arc::new(EventBridgePublisher::new(
            LazyClient::new(sdk, aws_sdk_eventbridge::Client::new),
            required("MILEPOST_BUS", "")?,
        )),
        workflows: Arc::new(StepFunctionsWorkflows::new(
            LazyClient::new(sdk, aws_sdk_sfn::Client::new),
            std::env::var("MILEPOST_STATE_MACHINE_ARN").unwrap_or_default(),
        )),
        clock: Arc::new(SystemClock),
        config,
        links,
    })
}

/// What the sweep needs beyond the other processes: the state machine it starts.
pub fn require_state_machine() -> Result<(), WiringError> {
    required("MILEPOST_STATE_MACHINE_ARN", " (the sweep starts escalations)").map(|_| ())
}

/// People's actions on AWS: the action-link key is required.
pub fn actions_of(services: &Services) -> Result<Actions, WiringError> {
    services.actions().ok_or(WiringError::Missing {
        variable: "MILEPOST_ACTIONS_KEY_PARAM",
        hint: ": the actions function needs the key that signs links",
    })
}
