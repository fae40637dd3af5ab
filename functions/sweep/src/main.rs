//! Milepost Lambda `sweep`: wiring only. Triggered by an EventBridge schedule.
//! Configuration (environment): `MILEPOST_TABLE`, `MILEPOST_BUS`,
//! `MILEPOST_STATE_MACHINE_ARN`.

use std::sync::Arc;

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use milepost::aws::{DynamoStore, EventBridgePublisher, StepFunctionsWorkflows};
use milepost::embedded::{NoMailer, SystemClock};
use milepost::services::Config;
use milepost::Services;
use milepost_sweep::deadline_instant;

fn required(name: &str) -> Result<String, Error> {
    std::env::var(name).map_err(|_| format!("{name} is not set").into())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    milepost::telemetry::init();
    let sdk = milepost::aws::sdk_config().await;
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
            required("MILEPOST_STATE_MACHINE_ARN")?,
        )),
        clock: Arc::new(SystemClock),
        config: Config::default(),
    };
    run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let services = &services;
        async move {
            let report = milepost_sweep::run(services, deadline_instant(event.context.deadline)).await?;
            Ok::<_, Error>(serde_json::to_value(report)?)
        }
    }))
    .await
}
