//! How a failed playbook step is retried: the Retry blocks every Task state
//! of the escalation state machine carries, as values. The state machine
//! (`infra/statemachine/escalation.asl.json`) and the demo's local runner
//! follow the same blocks; a test checks the file against `RETRIERS`.
//!
//! Step Functions semantics: `max_retries` retries after the first attempt,
//! the n-th after `interval × backoff_rate^(n-1)`, capped at `max_delay`,
//! with full jitter (a random wait up to that delay). The local runner waits
//! the full delay, so a demo run stays deterministic.

use chrono::Duration;

/// One Retry block.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Retrier {
    pub error_equals: &'static [&'static str],
    pub interval_seconds: u32,
    /// Retries after the first attempt (the ASL's `MaxAttempts`).
    pub max_retries: u32,
    pub backoff_rate: f64,
    pub max_delay_seconds: u32,
}

/// Lambda's own faults while invoking a function (throttling, a service
/// error): short and quick, they clear in seconds. They never happen in process.
pub const LAMBDA_SERVICE_RETRY: Retrier = Retrier {
    error_equals: &[
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
        "Lambda.ClientExecutionTimeoutException",
    ],
    interval_seconds: 2,
    max_retries: 6,
    backoff_rate: 2.0,
    max_delay_seconds: 60,
};

/// A step's own passing failure (`InvocationError::Transient`: throttling, a
/// store outage, a lost write race) or a timed-out invocation.
pub const STEP_RETRY: Retrier = Retrier {
    error_equals: &["Milepost.Transient", "States.Timeout"],
    interval_seconds: 30,
    max_retries: 5,
    backoff_rate: 2.0,
    max_delay_seconds: 600,
};

/// Every Task state's Retry, in order. What no block matches, or what is
/// left after the last retry, the Task's Catch records and the playbook goes on.
pub const RETRIERS: [Retrier; 2] = [LAMBDA_SERVICE_RETRY, STEP_RETRY];

/// The block that retries `error`, as Step Functions picks it: the first whose
/// `ErrorEquals` names it.
pub fn retrier_for(error: &str) -> Option<&'static Retrier> {
    RETRIERS.iter().find(|r| r.error_equals.contains(&error))
}

impl Retrier {
    /// The wait before retry `n` (1 for the first), before jitter.
    pub fn delay(&self, n: u32) -> Duration {
        let seconds = f64::from(self.interval_seconds) * self.backoff_rate.powi(n.saturating_sub(1) as i32);
        Duration::seconds(seconds.min(f64::from(self.max_delay_seconds)) as i64)
    }

    /// The block as the ASL file writes it.
    pub fn to_asl(&self) -> serde_json::Value {
        serde_json::json!({
            "ErrorEquals": self.error_equals,
            "IntervalSeconds": self.interval_seconds,
            "MaxAttempts": self.max_retries,
            "BackoffRate": self.backoff_rate,
            "MaxDelaySeconds": self.max_delay_seconds,
            "JitterStrategy": "FULL",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use milepost_domain::Step;

    const ASL: &str = include_str!("../../../../infra/statemachine/escalation.asl.json");

    #[test]
    fn every_task_state_of_the_state_machine_retries_as_the_policy_says() {
        let asl: serde_json::Value = serde_json::from_str(ASL).unwrap();
        let expected: Vec<serde_json::Value> = RETRIERS.iter().map(Retrier::to_asl).collect();
        let mut tasks = 0;
        for (name, state) in asl["States"].as_object().unwrap() {
            if state["Type"] != "Task" {
                continue;
            }
            tasks += 1;
            // Numbers compare as numbers: the ASL writes 2, the policy 2.0.
            let retry: Vec<serde_json::Value> = serde_json::from_value(state["Retry"].clone()).unwrap();
            assert_eq!(retry.len(), expected.len(), "{name}: Retry blocks");
            for (got, want) in retry.iter().zip(&expected) {
                for key in ["ErrorEquals", "JitterStrategy"] {
                    assert_eq!(got[key], want[key], "{name}: {key}");
                }
                for key in ["IntervalSeconds", "MaxAttempts", "BackoffRate", "MaxDelaySeconds"] {
                    assert_eq!(got[key].as_f64(), want[key].as_f64(), "{name}: {key}");
                }
            }
            assert_eq!(
                state["Catch"][0]["ErrorEquals"],
                serde_json::json!(["States.ALL"]),
                "{name}: every failure left after the retries is caught"
            );
        }
        assert_eq!(
            tasks,
            2 * Step::ALL.len(),
            "every step, each with its failure-recording task"
        );
    }

    #[test]
    fn retries_back_off_exponentially_up_to_the_cap() {
        let waits: Vec<i64> = (1..=STEP_RETRY.max_retries)
            .map(|n| STEP_RETRY.delay(n).num_seconds())
            .collect();
        assert_eq!(waits, [30, 60, 120, 240, 480]);
        assert_eq!(STEP_RETRY.delay(6).num_seconds(), 600, "capped at MaxDelaySeconds");
        assert_eq!(retrier_for("Milepost.Transient"), Some(&STEP_RETRY));
        assert_eq!(
            retrier_for("Lambda.TooManyRequestsException"),
            Some(&LAMBDA_SERVICE_RETRY)
        );
        assert_eq!(
            retrier_for("Milepost.StepFailed"),
            None,
            "a failure retrying cannot fix is caught at once"
        );
    }
}
