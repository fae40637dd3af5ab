//! Milepost Lambda `actions`: wiring only. `GET`/`POST /v1/actions/{token}`
//! on the HTTP API, and `POST /v1/slack/interactions` where Slack is set up.
//! Configuration (environment): `MILEPOST_TABLE`, `MILEPOST_BUS`,
//! `MILEPOST_STATE_MACHINE_ARN` (to stop an escalation a confirmation ends),
//! `MILEPOST_ACTIONS_KEY_PARAM` (the link key, required),
//! `milepost_app::Config::from_env`'s settings, and for Slack
//! `MILEPOST_SLACK_TOKEN_PARAM` and `MILEPOST_SLACK_SIGNING_SECRET_PARAM`.

use lambda_http::{run, service_fn, Error, Request};
use milepost_actions::handle;
use milepost_app::ports::SlackApi;
use milepost_app::slack::interactions::SlackInteractions;

#[tokio::main]
async fn main() -> Result<(), Error> {
    milepost_aws::lambda::init_logging();
    let sdk = milepost_aws::lambda::sdk_config().await?;
    let services = milepost_aws::services_from_env(&sdk, milepost_aws::LinkKey::IfConfigured).await?;
    let actions = milepost_aws::actions_of(&services)?;
    let slack = milepost_aws::slack_api::slack_interactivity_from_env(&sdk, |name| std::env::var(name).ok()).await?;
    let interactions = slack.as_ref().map(|(api, secret)| {
        let api: &dyn SlackApi = api;
        (
            SlackInteractions {
                store: &*services.store,
                events: &*services.events,
                api,
                clock: &*services.clock,
                secret,
            },
            api,
        )
    });
    run(service_fn(|request: Request| {
        let (actions, interactions) = (&actions, interactions.as_ref());
        async move {
            if milepost_actions::slack::is_slack(&request) {
                let slack = interactions.map(|(i, api)| (i, *api));
                return Ok::<_, Error>(milepost_actions::slack::handle(slack, request).await);
            }
            Ok::<_, Error>(handle(actions, request).await)
        }
    }))
    .await
}
