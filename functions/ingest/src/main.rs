//! Milepost Lambda `ingest`: wiring only. Configuration (environment):
//! `MILEPOST_TABLE`, `MILEPOST_BUS`, `MILEPOST_STATE_MACHINE_ARN` (optional
//! until the escalation state machine is deployed), and the webhook secrets
//! (see `milepost_aws::secrets`).

use lambda_http::{run, service_fn, Error, Request};
use milepost_aws::secrets;
use milepost_ingest::{handle, IngestConfig, WebhookSecrets};

#[tokio::main]
async fn main() -> Result<(), Error> {
    milepost_aws::lambda::init_logging();
    let sdk = milepost_aws::lambda::sdk_config().await?;
    let loaded = secrets::load(&sdk, |name| std::env::var(name).ok()).await?;
    let secrets = WebhookSecrets::new(&loaded.standard, &loaded.segment).map_err(|e| e.0)?;
    if !secrets.is_configured() {
        tracing::warn!("no webhook secret configured: unsigned requests are accepted");
    }
    let ingestion = milepost_aws::ingestion_from_env(&sdk)?;
    let config = IngestConfig::new(secrets);
    run(service_fn(|request: Request| {
        let (ingestion, config) = (&ingestion, &config);
        async move { Ok::<_, Error>(handle(ingestion, config, request).await) }
    }))
    .await
}
