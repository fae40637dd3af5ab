//! Milepost Lambda `actions`: wiring only. `GET`/`POST /v1/actions/{token}`
//! on the HTTP API. Configuration (environment): `MILEPOST_TABLE`,
//! `MILEPOST_BUS`, `MILEPOST_STATE_MACHINE_ARN` (to stop an escalation a
//! confirmation ends), `MILEPOST_ACTIONS_KEY_PARAM` (the link key, required)
//! and `milepost_app::Config::from_env`'s settings.

use lambda_http::{run, service_fn, Error, Request};
use milepost_actions::handle;

#[tokio::main]
async fn main() -> Result<(), Error> {
    milepost_aws::lambda::init_logging();
    let sdk = milepost_aws::lambda::sdk_config().await?;
    let services = milepost_aws::services_from_env(&sdk, milepost_aws::LinkKey::IfConfigured).await?;
    let actions = milepost_aws::actions_of(&services)?;
    run(service_fn(|request: Request| {
        let actions = &actions;
        async move { Ok::<_, Error>(handle(actions, request).await) }
    }))
    .await
}
