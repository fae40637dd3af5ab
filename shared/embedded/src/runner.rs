//! The local workflow runner: the embedded stand-in for Step Functions. It
//! sequences an escalation's steps by time and runs each with the same
//! `PlaybookSteps::run_step` the Lambda functions call. A failed step is
//! retried by the state machine's own Retry blocks (`escalation::retry`,
//! checked against the ASL file) and, once they give up, caught: the failure
//! is recorded on the escalation log as the state machine's Catch task does,
//! and the playbook goes on.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use async_trait::async_trait;
use milepost_app::escalation::invocation::InvocationError;
use milepost_app::escalation::retry::{retrier_for, STEP_RETRY};
use milepost_app::escalation::PlaybookSteps;
use milepost_app::ports::{StartOutcome, WorkflowError, WorkflowStarter};
use milepost_domain::{EscalationRequest, Stage, Step, StepOutcome, Timestamp};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    Running,
    /// The customer caught up; ended early.
    Recovered,
    /// Stopped from outside (ingestion saw the milestone reached).
    Stopped,
    /// Ran every step.
    Succeeded,
}

#[derive(Clone, Debug, Serialize)]
pub struct Execution {
    pub request: EscalationRequest,
    pub status: ExecutionStatus,
    /// Index into `Step::ALL` of the next step.
    pub next_step: usize,
    /// Retries of the next step so far.
    pub retries: u32,
    pub retry_at: Option<Timestamp>,
    /// Steps that failed for good and were caught.
    pub failed_steps: Vec<Step>,
    pub completed_steps: Vec<Step>,
}

impl Execution {
    fn next_due(&self) -> Option<Timestamp> {
        if self.status != ExecutionStatus::Running {
            return None;
        }
        let step = Step::ALL.get(self.next_step)?;
        let due = step.due(&self.request.schedule);
        Some(self.retry_at.map_or(due, |r| r.max(due)))
    }
}

#[derive(Default)]
pub struct LocalWorkflowRunner {
    state: Mutex<RunnerState>,
}

#[derive(Default)]
struct RunnerState {
    executions: BTreeMap<String, Execution>,
    /// (next step due, execution) for every running execution: the run queue.
    queue: BTreeSet<(Timestamp, String)>,
}

impl RunnerState {
    /// Re-files an execution in the run queue after it changed.
    fn requeue(&mut self, name: &str, previous_due: Option<Timestamp>) {
        if let Some(due) = previous_due {
            self.queue.remove(&(due, name.to_string()));
        }
        if let Some(due) = self.executions.get(name).and_then(Execution::next_due) {
            self.queue.insert((due, name.to_string()));
        }
    }
}

/// What one `run_due` call did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunReport {
    pub steps_run: usize,
    pub retries: usize,
    pub failures_caught: usize,
    /// Steps the contact policy put off (run again at their slot).
    pub deferrals: usize,
}

impl LocalWorkflowRunner {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn executions(&self) -> Vec<Execution> {
        self.lock().executions.values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RunnerState> {
        self.state.lock().expect("runner lock")
    }

    /// Runs every step due at or before `now`, in time order, until none is left.
    pub async fn run_due(&self, steps: &PlaybookSteps, now: Timestamp) -> RunReport {
        let mut report = RunReport::default();
        loop {
            // The lock is never held across a step: steps call back into the store and publisher.
            let (due, name, request, step) = {
                let state = self.lock();
                let Some((due, name)) = state.queue.first().cloned() else {
                    return report;
                };
                if due > now {
                    return report;
                }
                let e = &state.executions[&name];
                (due, name, e.request.clone(), Step::ALL[e.next_step])
            };
            let result = steps.run_step(&request, step).await;
            report.steps_run += 1;
            // What Step Functions would see: the error's name, and whether a Retry block still covers it.
            let retry_in = result.as_ref().err().and_then(|err| {
                let retries = self.lock().executions[&name].retries;
                retrier_for(InvocationError::name_of(err))
                    .filter(|r| retries < r.max_retries)
                    .map(|r| r.delay(retries + 1))
            });
            let caught = match (&result, retry_in) {
                (Err(err), None) => Some(InvocationError::name_of(err)),
                _ => None,
            };
            if let Some(failure) = caught {
                // The state machine's Catch: record the failure, then go on.
                // Should recording fail, the step runs again later.
                if let Err(e) = steps.record_failure(&request, step, failure).await {
                    tracing::warn!(execution = %name, error = %milepost_app::ErrorChain(&e), "could not record a failed step; retried");
                    let mut state = self.lock();
                    let e = state.executions.get_mut(&name).expect("execution exists");
                    e.retry_at = Some(now + STEP_RETRY.delay(1));
                    state.requeue(&name, Some(due));
                    continue;
                }
            }
            let mut state = self.lock();
            let e = state.executions.get_mut(&name).expect("execution exists");
            if e.status == ExecutionStatus::Running {
                match (result, retry_in) {
                    (Ok(StepOutcome::Recovered), _) => e.status = ExecutionStatus::Recovered,
                    (Ok(StepOutcome::Continue), _) => advance(e, step, false),
                    // As the state machine's Wait on `retry_at`: the same step, later.
                    (Ok(StepOutcome::Deferred(at)), _) => {
                        e.retries = 0;
                        e.retry_at = Some(at);
                        report.deferrals += 1;
                    }
                    (Err(_), Some(wait)) => {
                        e.retries += 1;
                        e.retry_at = Some(now + wait);
                        report.retries += 1;
                    }
                    (Err(_), None) => {
                        report.failures_caught += 1;
                        advance(e, step, true);
                    }
                }
            }
            state.requeue(&name, Some(due));
        }
    }
}

fn advance(e: &mut Execution, step: Step, failed: bool) {
    if failed {
        e.failed_steps.push(step);
    } else {
        e.completed_steps.push(step);
    }
    e.retries = 0;
    e.retry_at = None;
    e.next_step += 1;
    if e.next_step >= Step::ALL.len() {
        e.status = ExecutionStatus::Succeeded;
    }
}

#[async_trait]
impl WorkflowStarter for LocalWorkflowRunner {
    async fn start(&self, request: &EscalationRequest) -> Result<StartOutcome, WorkflowError> {
        let mut state = self.lock();
        if state.executions.contains_key(&request.execution) {
            return Ok(StartOutcome::AlreadyStarted);
        }
        state.executions.insert(
            request.execution.clone(),
            Execution {
                request: request.clone(),
                status: ExecutionStatus::Running,
                next_step: 0,
                retries: 0,
                retry_at: None,
                failed_steps: Vec::new(),
                completed_steps: Vec::new(),
            },
        );
        state.requeue(&request.execution, None);
        Ok(StartOutcome::Started)
    }

    async fn stop(&self, execution: &str, _stage_reached: Option<Stage>) -> Result<(), WorkflowError> {
        let mut state = self.lock();
        let Some(e) = state.executions.get_mut(execution) else {
            return Ok(());
        };
        let due = e.next_due();
        if e.status == ExecutionStatus::Running {
            e.status = ExecutionStatus::Stopped;
        }
        state.requeue(execution, due);
        Ok(())
    }
}
