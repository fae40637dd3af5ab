//! Milepost Lambda `sweep`: wiring only. Triggered by an EventBridge schedule:
//! one sweep of due milestones, then the reminders of snoozes that are over,
//! the held-back lists that are due, the heads-ups before a miss, and the
//! settling of emails of unknown outcome from SES's events; by a second, the
//! console's keeping (`{"part": "console"}`).
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
    let services = milepost_aws::services_from_env(&sdk, milepost_aws::LinkKey::IfConfigured).await?;
    let (scheduled, keeping) = (services.scheduled_run(), services.console_keeping());
    run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let (scheduled, keeping) = (&scheduled, &keeping);
        async move {
            let deadline = deadline_instant(event.context.deadline);
            Ok::<_, Error>(milepost_sweep::handle(scheduled, keeping, &event.payload, deadline).await?)
        }
    }))
    .await
}
