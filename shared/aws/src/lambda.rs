//! What every Lambda function shares: JSON logs for CloudWatch, and the
//! playbook functions' runtime loop.

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use milepost_app::escalation::invocation::{handle, PlaybookFunction, StepInvocation};

/// Logging for the Lambdas: JSON lines (what CloudWatch and Logs Insights
/// read), level from `RUST_LOG` (default `info`). Each line carries the
/// fields of the span it was written in (account, milestone, step: ids
/// only), never names or email addresses.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .without_time() // CloudWatch stamps every line
        .init();
}

/// Runs the playbook function `function` under the Lambda runtime until the
/// environment shuts down. An invocation's error reaches Step Functions under
/// its `error_type`, the name the state machine's Retry and Catch match on.
pub async fn serve_playbook(function: PlaybookFunction) -> Result<(), lambda_runtime::Error> {
    init_logging();
    let sdk = super::sdk_config().await;
    let steps = super::playbook_from_env(&sdk).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<StepInvocation>| {
        let steps = &steps;
        async move {
            handle(steps, function, &event.payload).await.map_err(|e| Diagnostic {
                error_type: e.error_type().to_string(),
                error_message: e.to_string(),
            })
        }
    }))
    .await
}
