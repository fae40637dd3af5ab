//! How the escalation state machine (`infra/statemachine/escalation.asl.json`)
//! invokes the three playbook functions from its Task states: what an
//! invocation carries, what it answers, and the error names its Retry and
//! Catch blocks match on.
//!
//! An invocation either runs one playbook step (`PlaybookSteps::run_step`)
//! or, when the state machine caught a step's failure, records that failure
//! on the account's escalation log so the playbook can go on.

use milepost_domain::{EscalationRequest, Step, StepOutcome};
use serde::{Deserialize, Serialize};

use super::{PlaybookSteps, StepError};

/// The payload a Task state sends: `{"step": ..., "request": ...}`, plus
/// `failure` (the caught error's name) when recording a failed step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepInvocation {
    pub step: Step,
    pub request: EscalationRequest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// The playbook's time, as `make local`'s executor runs it compressed:
    /// read only by a function started with `MILEPOST_PLAYBOOK_CLOCK=local`,
    /// so a step that waits for a later time (a deferral, a duty after the
    /// lapse) sees that time come. The state machine never sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playbook_now: Option<milepost_domain::Timestamp>,
}

/// What an invocation answers; the state machine's Choice states read
/// `outcome`, and a deferral's Wait state `retry_at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepReply {
    pub outcome: ReplyOutcome,
    /// When `deferred`: when to run the step again. Always present (null
    /// otherwise): the state machine's ResultSelector reads the path.
    pub retry_at: Option<milepost_domain::Timestamp>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyOutcome {
    Continue,
    Recovered,
    Deferred,
}

impl From<StepOutcome> for StepReply {
    fn from(outcome: StepOutcome) -> Self {
        match outcome {
            StepOutcome::Continue => StepReply {
                outcome: ReplyOutcome::Continue,
                retry_at: None,
            },
            StepOutcome::Recovered => StepReply {
                outcome: ReplyOutcome::Recovered,
                retry_at: None,
            },
            StepOutcome::Deferred(at) => StepReply {
                outcome: ReplyOutcome::Deferred,
                // Whole seconds, up: a Wait's timestamp, and never before the slot.
                retry_at: Some(milepost_domain::contact_policy::whole_second_up(at)),
            },
        }
    }
}

/// The Lambda functions that serve the state machine's Task states.
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
            Step::Leadership | Step::Finish | Step::AfterLapse => PlaybookFunction::Escalate,
        }
    }
}

/// An invocation's failure. Its `error_type` becomes the error name the
/// state machine's Retry and Catch match on (see `retry`).
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
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

impl InvocationError {
    pub const TRANSIENT: &'static str = "Milepost.Transient";
    pub const FAILED: &'static str = "Milepost.StepFailed";
    pub const WRONG_FUNCTION: &'static str = "Milepost.WrongFunction";

    pub fn error_type(&self) -> &'static str {
        match self {
            InvocationError::Transient(_) => Self::TRANSIENT,
            InvocationError::Failed(_) => Self::FAILED,
            InvocationError::WrongFunction(_) => Self::WRONG_FUNCTION,
        }
    }
}

impl From<StepError> for InvocationError {
    fn from(e: StepError) -> Self {
        if Self::name_of(&e) == Self::FAILED {
            return InvocationError::Failed(e.to_string());
        }
        InvocationError::Transient(match e {
            StepError::Transient(m) => m,
            StepError::Store(e) => crate::ErrorChain(&e).to_string(),
            other => other.to_string(),
        })
    }
}

impl InvocationError {
    /// The error name a step's failure reaches Step Functions under: a store
    /// outage is as passing as throttling; anything else retrying cannot fix.
    pub fn name_of(e: &StepError) -> &'static str {
        match e {
            StepError::Transient(_) | StepError::Store(_) => Self::TRANSIENT,
            _ => Self::FAILED,
        }
    }
}

/// Serves one invocation of `function` by a Task state.
pub async fn handle(
    steps: &PlaybookSteps,
    function: PlaybookFunction,
    invocation: &StepInvocation,
) -> Result<StepReply, InvocationError> {
    if let Some(failure) = &invocation.failure {
        if function != PlaybookFunction::Escalate {
            return Err(InvocationError::WrongFunction(format!(
                "failures are recorded by the escalate function, not {}",
                function.name()
            )));
        }
        steps
            .record_failure(&invocation.request, invocation.step, failure)
            .await
            .map_err(|e| InvocationError::Transient(e.to_string()))?;
        return Ok(StepOutcome::Continue.into());
    }
    let expected = PlaybookFunction::for_step(invocation.step);
    if expected != function {
        return Err(InvocationError::WrongFunction(format!(
            "step {} belongs to the {} function, not {}",
            invocation.step.as_str(),
            expected.name(),
            function.name()
        )));
    }
    let outcome = steps.run_step(&invocation.request, invocation.step).await?;
    tracing::info!(
        execution = %invocation.request.execution,
        step = invocation.step.as_str(),
        outcome = ?outcome,
        "playbook step done"
    );
    Ok(outcome.into())
}
