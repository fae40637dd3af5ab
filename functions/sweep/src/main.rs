//! Milepost Lambda `sweep`: wiring only. Triggered by an EventBridge schedule.
//! Configuration (environment): `MILEPOST_TABLE`, `MILEPOST_BUS`,
//! `MILEPOST_STATE_MACHINE_ARN`.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use milepost_sweep::deadline_instant;

#[tokio::main]
async fn main() -> Result<(), Error> {
    milepost::telemetry::init();
    if std::env::var("MILEPOST_STATE_MACHINE_ARN").is_err() {
        return Err("MILEPOST_STATE_MACHINE_ARN is not set".into());
    }
    let sdk = milepost::aws::sdk_config().await;
    let services = milepost::aws::services_from_env(&sdk)?;
    run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let services = &services;
        async move {
            let report = milepost_sweep::run(services, deadline_instant(event.context.deadline)).await?;
            Ok::<_, Error>(serde_json::to_value(report)?)
        }
    }))
    .await
}
