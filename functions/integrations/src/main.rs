//! Milepost Lambda `integrations`: wiring only. An EventBridge rule on
//! Milepost's bus hands it every domain event: delivered at once to the
//! webhook endpoints that want it, and a task's events to Slack (where a bot
//! token is configured), and every account's events to HubSpot (where a
//! private app's token is configured); a schedule (`{"part": "retries"}`, every minute)
//! sends what is due again.
//! Configuration (environment): `MILEPOST_TABLE`; for Slack,
//! `MILEPOST_SLACK_TOKEN_PARAM`, `MILEPOST_SLACK_TEAM_CHANNEL`,
//! `MILEPOST_SLACK_FALLBACK_CHANNEL`, `MILEPOST_CONSOLE_URL`
//! (`milepost_aws::slack_api::slack_from_env`); for HubSpot,
//! `MILEPOST_HUBSPOT_TOKEN_PARAM` (`milepost_aws::hubspot_api::hubspot_from_env`).

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use milepost_app::clock::SystemClock;
use milepost_app::crm::CrmSyncs;
use milepost_app::slack::posts::SlackPosts;
use milepost_app::webhooks::Webhooks;
use milepost_aws::webhook_poster::HttpWebhookPoster;
use milepost_integrations::Integrations;

#[tokio::main]
async fn main() -> Result<(), Error> {
    milepost_aws::lambda::init_logging();
    let sdk = milepost_aws::lambda::sdk_config().await?;
    let store = milepost_aws::store_from_env(&sdk)?;
    let poster = HttpWebhookPoster::new()?;
    let slack = milepost_aws::slack_api::slack_from_env(&sdk, |name| std::env::var(name).ok()).await?;
    let hubspot = milepost_aws::hubspot_api::hubspot_from_env(&sdk, |name| std::env::var(name).ok()).await?;
    let webhooks = Webhooks {
        store: &store,
        poster: &poster,
        clock: &SystemClock,
    };
    let slack = slack.as_ref().map(|(api, settings)| SlackPosts {
        store: &store,
        api,
        clock: &SystemClock,
        settings,
    });
    let crm = hubspot.as_ref().map(|(api, settings)| CrmSyncs {
        store: &store,
        api,
        clock: &SystemClock,
        settings,
    });
    let to = Integrations {
        webhooks: &webhooks,
        slack: slack.as_ref(),
        crm: crm.as_ref(),
    };
    run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let to = &to;
        async move {
            let deadline = milepost_integrations::deadline_at(event.context.deadline);
            Ok::<_, Error>(milepost_integrations::handle(to, &event.payload, deadline).await?)
        }
    }))
    .await
}
