//! Milepost Lambda `ingest`: wiring only. Configuration (environment):
//! `MILEPOST_TABLE`, `MILEPOST_BUS`, `MILEPOST_STATE_MACHINE_ARN` (optional
//! until the escalation state machine is deployed), and the webhook secrets
//! (see `milepost::aws::secrets`).

use std::sync::Arc;

use lambda_http::{run, service_fn, Error, Request};
use milepost::aws::{secrets, DynamoStore, EventBridgePublisher, StepFunctionsWorkflows};
use milepost::embedded::{NoMailer, SystemClock};
use milepost::services::Config;
use milepost::Services;
use milepost_ingest::{handle, IngestConfig, WebhookSecrets};

fn required(name: &str) -> Result<String, Error> {
    std::env::var(name).map_err(|_| format!("{name} is not set").into())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    milepost::telemetry::init();
    let sdk = milepost::aws::sdk_config().await;
    let loaded = secrets::load(&sdk, |name| std::env::var(name).ok()).await?;
    let secrets = WebhookSecrets::new(&loaded.standard, &loaded.segment).map_err(|e| e.0)?;
    if !secrets.is_configured() {
        tracing::warn!("no webhook secret configured: unsigned requests are accepted");
    }
    let services = Services {
        store: Arc::new(DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            required("MILEPOST_TABLE")?,
        )),
        mailer: Arc::new(NoMailer),
        events: Arc::new(EventBridgePublisher::new(
            aws_sdk_eventbridge::Client::new(&sdk),
            required("MILEPOST_BUS")?,
        )),
        workflows: Arc::new(StepFunctionsWorkflows::new(
            aws_sdk_sfn::Client::new(&sdk),
            std::env::var("MILEPOST_STATE_MACHINE_ARN").unwrap_or_default(),
        )),
        clock: Arc::new(SystemClock),
        config: Config::default(),
    };
    let config = IngestConfig::new(secrets);
    run(service_fn(|request: Request| {
        let (services, config) = (&services, &config);
        async move { Ok::<_, Error>(handle(services, config, request).await) }
    }))
    .await
}
