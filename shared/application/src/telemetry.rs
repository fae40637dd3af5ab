//! Metrics as CloudWatch embedded-metric-format records: printed as log
//! lines, CloudWatch turns them into metrics without an API call. Ids and
//! counts only, never names or email addresses.

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
