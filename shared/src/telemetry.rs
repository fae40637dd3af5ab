//! Logging for the Lambdas: JSON lines (what CloudWatch and Logs Insights
//! read), level from `RUST_LOG` (default `info`). Log ids and counts only:
//! never names or email addresses.

pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_target(false)
        .without_time() // CloudWatch stamps every line
        .init();
}
