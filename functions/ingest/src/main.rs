//! Milepost Lambda `ingest`: wiring only. Configuration (environment):
//! `MILEPOST_TABLE`, `MILEPOST_BUS`, `MILEPOST_STATE_MACHINE_ARN` (optional
//! until the escalation state machine is deployed), and the webhook secrets
//! (see `milepost::aws::secrets`).

use lambda_http::{run, service_fn, Error, Request};
use milepost::aws::secrets;
use milepost_ingest::{handle, IngestConfig, WebhookSecrets};

#[tokio::main]
async fn main() -> Result<(), Error> {
    milepost::telemetry::init();
    let sdk = milepost::aws::sdk_config().await;
    let loaded = secrets::load(&sdk, |name| std::env::var(name).ok()).await?;
    let secrets = WebhookSecrets::new(&loaded.standard, &loaded.segment).map_err(|e| e.0)?;
    if !secrets.is_configured() {
        tracing::warn!("no webhook secret configured: unsigned requests are accepted");
    }
    let services = milepost::aws::services_from_env(&sdk)?;
    let config = IngestConfig::new(secrets);
    run(service_fn(|request: Request| {
        let (services, config) = (&services, &config);
        async move { Ok::<_, Error>(handle(services, config, request).await) }
    }))
    .await
}
