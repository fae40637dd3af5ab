//! Milepost Lambda `integrations`: wiring only. An EventBridge rule on
//! Milepost's bus hands it every domain event, each delivered at once to
//! the webhook endpoints that want it; a schedule (`{"part": "retries"}`,
//! every minute) sends the deliveries whose retry is due.
//! Configuration (environment): `MILEPOST_TABLE`.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use milepost_app::clock::SystemClock;
use milepost_app::webhooks::Webhooks;
use milepost_aws::webhook_poster::HttpWebhookPoster;

#[tokio::main]
async fn main() -> Result<(), Error> {
    milepost_aws::lambda::init_logging();
    let sdk = milepost_aws::lambda::sdk_config().await?;
    let store = milepost_aws::store_from_env(&sdk)?;
    let poster = HttpWebhookPoster::new()?;
    let webhooks = Webhooks {
        store: &store,
        poster: &poster,
        clock: &SystemClock,
    };
    run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let webhooks = &webhooks;
        async move {
            let deadline = milepost_integrations::deadline_at(event.context.deadline);
            Ok::<_, Error>(milepost_integrations::handle(webhooks, &event.payload, deadline).await?)
        }
    }))
    .await
}
