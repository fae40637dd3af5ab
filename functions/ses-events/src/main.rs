//! Milepost Lambda `ses-events`: wiring only. An EventBridge rule on the
//! default bus hands it SES's sending events for the playbook's
//! configuration set (those tagged `milepost-send`); it keeps each as a
//! receipt the sweep settles emails of unknown outcome from. Configuration
//! (environment): `MILEPOST_TABLE`.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    milepost_aws::lambda::init_logging();
    let sdk = milepost_aws::lambda::sdk_config().await?;
    let store = milepost_aws::store_from_env(&sdk)?;
    run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let store = &store;
        async move {
            Ok::<_, Error>(serde_json::to_value(
                milepost_ses_events::handle(store, &event.payload).await?,
            )?)
        }
    }))
    .await
}
