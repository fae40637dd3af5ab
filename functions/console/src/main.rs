//! Milepost Lambda `console`: wiring only. Every route of the web console on
//! the HTTP API (`GET /`, `ANY /{proxy+}`; the webhook's and the links'
//! routes are more specific and stay theirs). Configuration (environment):
//! `MILEPOST_TABLE`, `MILEPOST_BUS`, `MILEPOST_STATE_MACHINE_ARN` (to stop an
//! escalation a confirmation ends), `milepost_app::Config::from_env`'s
//! settings, and the console's own (`milepost_aws::console`).

use lambda_http::{run, service_fn, Error, Request};
use milepost_console::handle;

#[tokio::main]
async fn main() -> Result<(), Error> {
    milepost_aws::lambda::init_logging();
    let sdk = milepost_aws::lambda::sdk_config().await?;
    let services = milepost_aws::services_from_env(&sdk, milepost_aws::LinkKey::Skip).await?;
    let console = milepost_aws::console::console_from_env(&sdk, &services).await?;
    run(service_fn(|request: Request| {
        let console = &console;
        async move { Ok::<_, Error>(handle(console, request).await) }
    }))
    .await
}
