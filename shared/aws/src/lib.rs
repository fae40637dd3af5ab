//! Production adapters over the AWS SDK — the DynamoDB store, SES mailer,
//! EventBridge publisher, Step Functions workflows, webhook secrets — and the
//! Lambda wiring that builds each use case from them. Every client honours
//! `AWS_ENDPOINT_URL`, which is how tests and local runs point them at the
//! local emulator.

pub mod dynamo;
pub mod eventbridge;
pub mod lambda;
mod lazy_client;
pub mod secrets;
pub mod ses;
pub mod step_functions;

pub use dynamo::DynamoStore;
pub use eventbridge::EventBridgePublisher;
pub use lazy_client::LazyClient;
pub use ses::SesMailer;
pub use step_functions::StepFunctionsWorkflows;

use std::sync::Arc;

use milepost_app::actions::Actions;
use milepost_app::clock::SystemClock;
use milepost_app::digests::OwnerDigests;
use milepost_app::escalation::PlaybookSteps;
use milepost_app::heads_up::HeadsUps;
use milepost_app::ingest::Ingestion;
use milepost_app::links::ActionLinks;
use milepost_app::reminders::TaskReminders;
use milepost_app::sweep::Sweeper;
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

fn var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

/// The DynamoDB store named by `MILEPOST_TABLE`, for the CLI and the functions.
pub fn store_from_env(config: &aws_config::SdkConfig) -> Result<DynamoStore, String> {
    let table = std::env::var("MILEPOST_TABLE").map_err(|_| {
        "MILEPOST_TABLE is not set (source .milepost-local.env, or export the stack's table name)".to_string()
    })?;
    Ok(DynamoStore::new(aws_sdk_dynamodb::Client::new(config), table))
}

/// The bus named by `MILEPOST_BUS`.
fn publisher_from_env(config: &aws_config::SdkConfig) -> Result<EventBridgePublisher, String> {
    Ok(EventBridgePublisher::new(
        LazyClient::new(config, aws_sdk_eventbridge::Client::new),
        var("MILEPOST_BUS")?,
    ))
}

/// The escalation state machine named by `MILEPOST_STATE_MACHINE_ARN` (empty when unset).
fn workflows_from_env(config: &aws_config::SdkConfig) -> StepFunctionsWorkflows {
    StepFunctionsWorkflows::new(
        LazyClient::new(config, aws_sdk_sfn::Client::new),
        std::env::var("MILEPOST_STATE_MACHINE_ARN").unwrap_or_default(),
    )
}

/// Ingestion on AWS, named by the environment: `MILEPOST_TABLE`,
/// `MILEPOST_BUS`, `MILEPOST_STATE_MACHINE_ARN` (to stop escalations; may be
/// unset until the state machine is deployed) and `Config::from_env`'s settings.
pub fn ingestion_from_env(config: &aws_config::SdkConfig) -> Result<Ingestion, String> {
    Ok(Ingestion {
        store: Arc::new(store_from_env(config)?),
        events: Arc::new(publisher_from_env(config)?),
        workflows: Arc::new(workflows_from_env(config)),
        clock: Arc::new(SystemClock),
        config: Config::from_env()?,
    })
}

/// The sweep on AWS: `MILEPOST_TABLE`, `MILEPOST_BUS` and `MILEPOST_STATE_MACHINE_ARN` (required).
pub fn sweeper_from_env(config: &aws_config::SdkConfig) -> Result<Sweeper, String> {
    var("MILEPOST_STATE_MACHINE_ARN")?;
    Ok(Sweeper {
        store: Arc::new(store_from_env(config)?),
        events: Arc::new(publisher_from_env(config)?),
        workflows: Arc::new(workflows_from_env(config)),
        clock: Arc::new(SystemClock),
        timing: Config::from_env()?.timing,
    })
}

/// The SES mailer, under the configuration set named by `MILEPOST_SES_CONFIGURATION_SET`.
fn mailer_from_env(config: &aws_config::SdkConfig) -> SesMailer {
    SesMailer::new(
        aws_sdk_sesv2::Client::new(config),
        std::env::var("MILEPOST_SES_CONFIGURATION_SET").ok(),
    )
}

/// The day-3 email's action links: signed with the key `secrets::load_link_signer`
/// reads, pointing at `MILEPOST_ACTIONS_URL`. `None` without a key.
async fn links_from_env(config: &aws_config::SdkConfig, settings: &Config) -> Result<Option<ActionLinks>, String> {
    let signer = secrets::load_link_signer(config, |name| std::env::var(name).ok())
        .await
        .map_err(|e| e.to_string())?;
    Ok(signer.map(|signer| settings.links(signer)))
}

/// The playbook's steps on AWS, sending through SES: `MILEPOST_TABLE`,
/// `MILEPOST_BUS`, the action-link key and `Config::from_env`'s settings.
pub async fn playbook_from_env(config: &aws_config::SdkConfig) -> Result<PlaybookSteps, String> {
    let settings = Config::from_env()?;
    Ok(PlaybookSteps {
        store: Arc::new(store_from_env(config)?),
        mailer: Arc::new(mailer_from_env(config)),
        events: Arc::new(publisher_from_env(config)?),
        clock: Arc::new(SystemClock),
        links: links_from_env(config, &settings).await?,
        config: settings,
    })
}

/// Task reminders on AWS (the sweep sends them): as the playbook's steps.
pub async fn reminders_from_env(config: &aws_config::SdkConfig) -> Result<TaskReminders, String> {
    let settings = Config::from_env()?;
    Ok(TaskReminders {
        store: Arc::new(store_from_env(config)?),
        mailer: Arc::new(mailer_from_env(config)),
        events: Arc::new(publisher_from_env(config)?),
        clock: Arc::new(SystemClock),
        links: links_from_env(config, &settings).await?,
        config: settings,
    })
}

/// Owners' digests on AWS (the sweep sends them), through SES.
pub fn digests_from_env(config: &aws_config::SdkConfig) -> Result<OwnerDigests, String> {
    Ok(OwnerDigests {
        store: Arc::new(store_from_env(config)?),
        mailer: Arc::new(mailer_from_env(config)),
        clock: Arc::new(SystemClock),
        config: Config::from_env()?,
    })
}

/// The weekly leadership digest on AWS (its own scheduled function), through SES.
pub fn weekly_digest_from_env(
    config: &aws_config::SdkConfig,
) -> Result<milepost_app::weekly_digest::WeeklyDigest, String> {
    Ok(milepost_app::weekly_digest::WeeklyDigest {
        store: Arc::new(store_from_env(config)?),
        mailer: Arc::new(mailer_from_env(config)),
        clock: Arc::new(SystemClock),
        config: Config::from_env()?,
    })
}

/// Heads-ups before a miss on AWS (the sweep sends them), through SES,
/// with the champion's unsubscribe link signed by the action-link key.
pub async fn heads_ups_from_env(config: &aws_config::SdkConfig) -> Result<HeadsUps, String> {
    let settings = Config::from_env()?;
    Ok(HeadsUps {
        store: Arc::new(store_from_env(config)?),
        mailer: Arc::new(mailer_from_env(config)),
        clock: Arc::new(SystemClock),
        links: links_from_env(config, &settings).await?,
        config: settings,
    })
}

/// Settling emails of unknown outcome on AWS (the sweep runs it): the
/// table's ledger and SES's receipts, SES to send again or probe.
pub fn settler_from_env(config: &aws_config::SdkConfig) -> Result<milepost_app::settle::SendSettler, String> {
    let settings = Config::from_env()?;
    Ok(milepost_app::settle::SendSettler {
        store: Arc::new(store_from_env(config)?),
        mailer: Arc::new(mailer_from_env(config)),
        clock: Arc::new(SystemClock),
        sender: settings.sender,
    })
}

/// People's actions on AWS: ingestion's settings, and the action-link key, which is required.
pub async fn actions_from_env(config: &aws_config::SdkConfig) -> Result<Actions, String> {
    let ingestion = ingestion_from_env(config)?;
    let links = links_from_env(config, &ingestion.config)
        .await?
        .ok_or("MILEPOST_ACTIONS_KEY_PARAM is not set: the actions function needs the key that signs links")?;
    Ok(Actions {
        store: Arc::new(store_from_env(config)?),
        events: Arc::new(publisher_from_env(config)?),
        clock: Arc::new(SystemClock),
        signer: links.signer,
        page_urls: milepost_app::actions::PageUrls {
            actions: std::env::var("MILEPOST_ACTIONS_URL")
                .ok()
                .filter(|u| !u.trim().is_empty()),
            unsubscribe: std::env::var("MILEPOST_UNSUBSCRIBE_URL")
                .ok()
                .filter(|u| !u.trim().is_empty()),
        },
        ingestion,
    })
}
