//! The Task states of the escalation state machine
//! (`infra/statemachine/escalation.asl.json`) and the three functions that
//! serve them: what a task receives, what it answers, and which errors the
//! state machine retries.
//!
//! A task either runs one playbook step (`playbook::run_step`) or, when the
//! state machine caught a step's failure, records that failure on the
//! account's escalation log so the playbook can go on.

use serde::{Deserialize, Serialize};

use crate::playbook::{run_step, EscalationLogEntry, EscalationRequest, Step, StepError, StepOutcome};
use crate::Services;

/// The payload the state machine sends: `{"step": ..., "request": ...}`, plus
/// `failure` (the caught error's name) when recording a failed step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskInput {
    pub step: Step,
    pub request: EscalationRequest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// What a task answers; the state machine's Choice states read `outcome`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskOutput {
    pub outcome: StepOutcome,
}

/// The Lambda functions that serve the playbook's tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlaybookFunction {
    /// Day 1: the two emails and the in-app message.
    Outreach,
    /// Day 3: the CSM task.
    CsmTask,
    /// Day 5, the end of the playbook, and recording caught failures.
    Escalate,
}

impl PlaybookFunction {
    pub fn name(self) -> &'static str {
        match self {
            PlaybookFunction::Outreach => "outreach",
            PlaybookFunction::CsmTask => "csm-task",
            PlaybookFunction::Escalate => "escalate",
        }
    }

    /// The function whose task runs `step` (failures are all recorded by `Escalate`).
    pub fn for_step(step: Step) -> Self {
        match step {
            Step::OutreachEmail | Step::InAppMessage | Step::FollowUpEmail => PlaybookFunction::Outreach,
            Step::CsmTask => PlaybookFunction::CsmTask,
            Step::Leadership | Step::Finish => PlaybookFunction::Escalate,
        }
    }
}

/// A task's failure. Its `error_type` becomes the error name the state
/// machine's Retry and Catch match on.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// Throttling, a passing fault, a lost write race: retried with backoff.
    #[error("{0}")]
    Transient(String),
    /// Retrying will not help; the state machine catches it, records it and goes on.
    #[error("{0}")]
    Failed(String),
    /// The payload is not one this function serves: a wiring mistake.
    #[error("{0}")]
    WrongFunction(String),
}

impl TaskError {
    pub const TRANSIENT: &'static str = "Milepost.Transient";
    pub const FAILED: &'static str = "Milepost.StepFailed";
    pub const WRONG_FUNCTION: &'static str = "Milepost.WrongFunction";

    pub fn error_type(&self) -> &'static str {
        match self {
            TaskError::Transient(_) => Self::TRANSIENT,
            TaskError::Failed(_) => Self::FAILED,
            TaskError::WrongFunction(_) => Self::WRONG_FUNCTION,
        }
    }
}

impl From<StepError> for TaskError {
    fn from(e: StepError) -> Self {
        match e {
            StepError::Transient(m) => TaskError::Transient(m),
            // A store outage is as passing as throttling.
            StepError::Store(m) => TaskError::Transient(m),
            other => TaskError::Failed(other.to_string()),
        }
    }
}

/// Runs one task of the state machine for `function`.
pub async fn handle(
    services: &Services,
    function: PlaybookFunction,
    input: &TaskInput,
) -> Result<TaskOutput, TaskError> {
    if let Some(failure) = &input.failure {
        if function != PlaybookFunction::Escalate {
            return Err(TaskError::WrongFunction(format!(
                "failures are recorded by the escalate function, not {}",
                function.name()
            )));
        }
        record_failure(services, &input.request, input.step, failure).await?;
        return Ok(TaskOutput {
            outcome: StepOutcome::Continue,
        });
    }
    let expected = PlaybookFunction::for_step(input.step);
    if expected != function {
        return Err(TaskError::WrongFunction(format!(
            "step {} belongs to the {} function, not {}",
            input.step.as_str(),
            expected.name(),
            function.name()
        )));
    }
    let outcome = run_step(services, &input.request, input.step).await?;
    tracing::info!(
        execution = %input.request.execution,
        step = input.step.as_str(),
        outcome = ?outcome,
        "playbook step done"
    );
    Ok(TaskOutput { outcome })
}

/// Notes on the account's escalation log that a step failed for good. Only
/// the error's name is kept: causes can quote addresses.
async fn record_failure(
    services: &Services,
    request: &EscalationRequest,
    step: Step,
    failure: &str,
) -> Result<(), TaskError> {
    let name: String = failure
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(80)
        .collect();
    tracing::error!(execution = %request.execution, step = step.as_str(), error = %name, "playbook step failed; recorded, playbook goes on");
    services
        .store
        .append_log(&EscalationLogEntry {
            key: format!("{}:{}:failed", request.execution, step.as_str()),
            account_id: request.account_id.clone(),
            milestone_id: request.milestone_id.clone(),
            execution: request.execution.clone(),
            at: services.clock.now(),
            step,
            detail: format!("{} failed ({name}); playbook went on", step.as_str()),
        })
        .await
        .map_err(|e| TaskError::Transient(e.to_string()))?;
    Ok(())
}
