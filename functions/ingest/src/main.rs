//! Milepost Lambda `ingest`: wiring only. Configuration (environment):
//! `MILEPOST_TABLE`, `MILEPOST_BUS`, `MILEPOST_STATE_MACHINE_ARN` (optional
//! until the escalation state machine is deployed), the webhook secrets and
//! the tracking API's write keys (see `milepost_aws::secrets`).

use lambda_http::{run, service_fn, Error, Request};
use milepost_ingest::handle;

#[tokio::main]
async fn main() -> Result<(), Error> {
    milepost_aws::lambda::init_logging();
    let sdk = milepost_aws::lambda::sdk_config().await?;
    let (ingestion, config) = milepost_ingest::from_env(&sdk).await?;
    run(service_fn(|request: Request| {
        let (ingestion, config) = (&ingestion, &config);
        async move { Ok::<_, Error>(handle(ingestion, config, request).await) }
    }))
    .await
}
