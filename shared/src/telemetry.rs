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

/// The CloudWatch namespace of Milepost's metrics.
pub const METRICS_NAMESPACE: &str = "Milepost";

/// One CloudWatch embedded-metric-format record of `metrics` (name, unit,
/// value): printed as a log line, CloudWatch turns it into metrics without an
/// API call.
pub fn emf_record(timestamp_millis: i64, metrics: &[(&str, &str, serde_json::Value)]) -> serde_json::Value {
    let mut record = serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_millis,
            "CloudWatchMetrics": [{
                "Namespace": METRICS_NAMESPACE,
                "Dimensions": [[]],
                "Metrics": metrics.iter().map(|(name, unit, _)| serde_json::json!({"Name": name, "Unit": unit})).collect::<Vec<_>>(),
            }],
        },
    });
    for (name, _, value) in metrics {
        record[*name] = value.clone();
    }
    record
}
