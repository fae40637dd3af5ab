//! Milepost Lambda `sweep`: wiring only. Triggered by an EventBridge schedule.
//! Configuration (environment): `MILEPOST_TABLE`, `MILEPOST_BUS`,
//! `MILEPOST_STATE_MACHINE_ARN`.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use milepost_sweep::deadline_instant;

#[tokio::main]
async fn main() -> Result<(), Error> {
    milepost_aws::lambda::init_logging();
    let sdk = milepost_aws::sdk_config().await;
    let sweeper = milepost_aws::sweeper_from_env(&sdk)?;
    run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let sweeper = &sweeper;
        async move {
            let report = milepost_sweep::run(sweeper, deadline_instant(event.context.deadline)).await?;
            Ok::<_, Error>(serde_json::to_value(report)?)
        }
    }))
    .await
}
