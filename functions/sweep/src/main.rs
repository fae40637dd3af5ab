//! Milepost Lambda `sweep`: wiring only. Triggered by an EventBridge schedule:
//! one sweep of due milestones, then the reminders of snoozes that are over,
//! the owners' digests that are due, the heads-ups before a miss, and the
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
    let sweeper = milepost_aws::sweeper_from_env(&sdk)?;
    let reminders = milepost_aws::reminders_from_env(&sdk).await?;
    let digests = milepost_aws::digests_from_env(&sdk)?;
    let heads_ups = milepost_aws::heads_ups_from_env(&sdk).await?;
    let settler = milepost_aws::settler_from_env(&sdk)?;
    run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let (sweeper, reminders, digests, heads_ups, settler) = (&sweeper, &reminders, &digests, &heads_ups, &settler);
        async move {
            let deadline = deadline_instant(event.context.deadline);
            let report = milepost_sweep::run(sweeper, deadline).await?;
            let reminded = milepost_sweep::remind(reminders).await?;
            let digested = milepost_sweep::send_digests(digests).await?;
            let warned = milepost_sweep::send_heads_ups(heads_ups, deadline).await?;
            let settled = milepost_sweep::settle_sends(settler).await?;
            Ok::<_, Error>(serde_json::json!({
                "sweep": report, "reminders": reminded, "digests": digested, "heads_ups": warned,
                "unknown_emails": {"confirmed": settled.confirmed, "resent": settled.resent,
                    "withheld": settled.withheld, "given_up": settled.given_up, "waiting": settled.waiting}
            }))
        }
    }))
    .await
}
