//! The smallest `lambda_runtime` function: the baseline `make bench` compares
//! the ingest binary's cold start with (built with the same profile).

use lambda_http::lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(|event: LambdaEvent<serde_json::Value>| async move {
        Ok::<_, Error>(event.payload)
    }))
    .await
}
