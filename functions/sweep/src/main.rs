//! Milepost Lambda `sweep`: wiring only. Triggered by an EventBridge schedule:
//! one sweep of due milestones, then the reminders of snoozes that are over,
//! the held-back lists that are due, the heads-ups before a miss, and the
//! settling of emails of unknown outcome from SES's events.
//! Configuration (environment): `MILEPOST_TABLE`, `MILEPOST_BUS`,
//! `MILEPOST_STATE_MACHINE_ARN`, `MILEPOST_SES_CONFIGURATION_SET`,
//! `MILEPOST_ACTIONS_KEY_PARAM` and `milepost_app::Config::from_env`'s settings.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use milepost_sweep::deadline_instant;

#[tokio::main]
async fn main() -> Result<(), Error> {
    milepost_aws::lambda::init_logging();
    let sdk = milepost_aws::lambda::sdk_config().await?;
    milepost_aws::require_state_machine()?;
    let scheduled = milepost_aws::services_from_env(&sdk, milepost_aws::LinkKey::IfConfigured)
        .await?
        .scheduled_run();
    run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let scheduled = &scheduled;
        async move {
            let deadline = deadline_instant(event.context.deadline);
            Ok::<_, Error>(serde_json::to_value(milepost_sweep::run(scheduled, deadline).await?)?)
        }
    }))
    .await
}
