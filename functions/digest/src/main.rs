//! Milepost Lambda `digest`: wiring only. Triggered by an EventBridge
//! Scheduler schedule, Mondays 08:00 in the CS leader's timezone: the week's
//! digest to CS leadership, once. Configuration (environment):
//! `MILEPOST_TABLE`, `MILEPOST_SES_CONFIGURATION_SET` and
//! `milepost_app::Config::from_env`'s settings (`MILEPOST_CS_LEADER_EMAIL`,
//! `MILEPOST_LEADER_TIMEZONE`).

use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    milepost_aws::lambda::init_logging();
    let sdk = milepost_aws::lambda::sdk_config().await?;
    let digest = milepost_aws::services_from_env(&sdk, milepost_aws::LinkKey::Skip)
        .await?
        .weekly_digest();
    run(service_fn(|_: LambdaEvent<serde_json::Value>| {
        let digest = &digest;
        async move { Ok::<_, Error>(serde_json::to_value(milepost_digest::send(digest).await?)?) }
    }))
    .await
}
