//! The steps of an escalation: what the `outreach`, `csm-task` and `escalate`
//! Lambdas run for each Task state of the state machine, and what the demo's
//! local runner runs in process.
//!
//! Every step first checks whether the milestone has been reached and, if so,
//! ends the escalation as recovered without sending anything. Every side effect
//! is idempotent: emails go through the send ledger, tasks and log entries are
//! created under deterministic keys, so a retried step repeats nothing.

pub mod invocation;
pub mod retry;

use std::sync::Arc;

use milepost_domain::health::{health, Health};
use milepost_domain::{
    Account, Contact, CsmTask, DomainEvent, EmailKind, EscalationLogEntry, EscalationRequest, IllegalChange,
    OutgoingEmail, Stage, Step, StepOutcome, TaskStatus, Timestamp, TrackedMilestone,
};
use tracing::Instrument;

use crate::config::Config;
use crate::email::{self, RenderError};
use crate::ports::{Clock, EventPublisher, Mailer, PlaybookStore, SendError, SendRecord, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// Worth retrying: throttling, a passing fault, a lost write race.
    #[error("transient: {0}")]
    Transient(String),
    #[error("milestone {0} is not tracked")]
    UnknownMilestone(String),
    #[error("account {0} is unknown")]
    UnknownAccount(String),
    #[error(transparent)]
    Illegal(#[from] IllegalChange),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("store: {0}")]
    Store(String),
}

impl From<StoreError> for StepError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => StepError::Transient("write conflict".into()),
            StoreError::Backend(m) | StoreError::Invalid(m) => StepError::Store(m),
            StoreError::Illegal(change) => StepError::Illegal(change),
        }
    }
}

/// What became of one email.
#[derive(Clone, Debug, PartialEq, Eq)]
enum SendResult {
    Sent,
    /// Sent (or claimed) by an earlier attempt: not sent again.
    AlreadySent,
    /// Permanently rejected (bad or suppressed address): recorded, the playbook goes on.
    Rejected(String),
}

impl SendResult {
    fn describe(&self) -> String {
        match self {
            SendResult::Sent | SendResult::AlreadySent => "sent".to_string(),
            SendResult::Rejected(reason) => format!("rejected ({reason})"),
        }
    }
}

/// The playbook's steps over the ports they need: the store (milestones,
/// accounts, activity, tasks, the escalation log, the send ledger), the
/// mailer, the bus and the clock.
#[derive(Clone)]
pub struct PlaybookSteps {
    pub store: Arc<dyn PlaybookStore>,
    pub mailer: Arc<dyn Mailer>,
    pub events: Arc<dyn EventPublisher>,
    pub clock: Arc<dyn Clock>,
    pub config: Config,
}

impl PlaybookSteps {
    /// Runs one step of an escalation.
    pub async fn run_step(&self, req: &EscalationRequest, step: Step) -> Result<StepOutcome, StepError> {
        self.run_step_inner(req, step).instrument(step_span(req, step)).await
    }

    async fn run_step_inner(&self, req: &EscalationRequest, step: Step) -> Result<StepOutcome, StepError> {
        let store = &self.store;
        let now = self.clock.now();
        let mut milestone = self.load_milestone(req).await?;
        if milestone.status.is_reached() {
            return Ok(StepOutcome::Recovered);
        }
        let account = store
            .get_account(&req.account_id)
            .await?
            .ok_or_else(|| StepError::UnknownAccount(req.account_id.to_string()))?;

        if let Some(stage) = step.stage() {
            // Walk stage by stage, so a stage whose step failed and was caught is still recorded.
            let mut changed = false;
            while milestone.status.stage().is_none_or(|s| s < stage) {
                let next = milestone
                    .status
                    .stage()
                    .and_then(Stage::next)
                    .unwrap_or(Stage::Outreach);
                changed |= milestone
                    .enter_stage(next)
                    .map_err(|t| IllegalChange::of(&milestone, t))?;
            }
            if changed {
                // A lost race (the customer just caught up) is transient: the retry sees it.
                milestone.version = store.update_milestone(&milestone).await?;
            }
        }

        match step {
            Step::OutreachEmail | Step::FollowUpEmail => {
                let kind = if step == Step::OutreachEmail {
                    EmailKind::Outreach
                } else {
                    EmailKind::FollowUp
                };
                let mail = email::outreach(
                    &self.config,
                    &account,
                    &milestone,
                    kind,
                    send_key(req, step, "customer"),
                    now,
                )?;
                self.send_logged(req, step, "customer", now, &mail).await?;
            }
            Step::InAppMessage => {
                let activity = store.activity(&account.id).await?;
                let mut users = activity.recent_users();
                users.truncate(20);
                let facts = email::MilestoneFacts::new(&self.config, &account, &milestone);
                self.events
                    .publish(&[DomainEvent::InAppMessageRequested {
                        account_id: account.id.clone(),
                        milestone_id: milestone.milestone_id.clone(),
                        user_ids: users,
                        title: format!("Next step: {}", milestone.name),
                        body: format!("Target: {}. Today: {}.", facts.target, facts.current),
                        link: facts.link,
                    }])
                    .await
                    .map_err(|e| StepError::Transient(e.to_string()))?;
                self.log(req, step, "in_app", now, "in-app message requested".to_string())
                    .await?;
            }
            Step::CsmTask => {
                let task = self.build_task(req, &account, &milestone, now).await?;
                if store.create_task(&task).await? {
                    self.log(req, step, "task_opened", now, "CSM task opened".to_string())
                        .await?;
                }
                let mail = email::csm_task(
                    &self.config,
                    &account,
                    &milestone,
                    &task,
                    send_key(req, step, "csm"),
                    now,
                )?;
                self.send_logged(req, step, "csm", now, &mail).await?;
            }
            Step::Leadership => {
                let report = self.account_health(&account, now).await?;
                let tried = store.log_of(&account.id).await?;
                let tried: Vec<_> = tried
                    .into_iter()
                    .filter(|e| e.execution == req.execution && e.step != Step::Leadership)
                    .collect();
                let leader = Contact::new("Customer Success leadership", account.cs_leader_email.clone());
                let mut recipients = vec![(leader, EmailKind::Leadership, "leader")];
                if milestone.policy.exec_sponsor {
                    if let Some(sponsor) = &account.exec_sponsor {
                        recipients.push((sponsor.clone(), EmailKind::ExecSponsor, "sponsor"));
                    }
                }
                for (to, kind, who) in recipients {
                    let mail = email::leadership(
                        &self.config,
                        &account,
                        &milestone,
                        &report,
                        &tried,
                        &to,
                        kind,
                        send_key(req, step, who),
                        now,
                    )?;
                    self.send_logged(req, step, who, now, &mail).await?;
                }
            }
            Step::Finish => {
                if milestone.finish().map_err(|t| IllegalChange::of(&milestone, t))? {
                    store.update_milestone(&milestone).await?;
                    self.log(
                        req,
                        step,
                        "lapsed",
                        now,
                        "escalation lapsed without recovery".to_string(),
                    )
                    .await?;
                }
            }
        }

        if step.completes_stage() {
            let stage = step.stage().expect("stage steps have a stage");
            self.events
                .publish(&[DomainEvent::EscalationStageCompleted {
                    account_id: account.id.clone(),
                    milestone_id: milestone.milestone_id.clone(),
                    execution: req.execution.clone(),
                    stage,
                    completed_at: now,
                }])
                .await
                .map_err(|e| StepError::Transient(e.to_string()))?;
        }
        Ok(StepOutcome::Continue)
    }

    /// Notes on the account's escalation log that a step failed for good and
    /// the playbook went on: what the state machine's Catch runs, and what the
    /// demo's runner writes when it gives up on a step. Only the error's name
    /// (`failure`) is kept: causes can quote addresses.
    pub async fn record_failure(&self, req: &EscalationRequest, step: Step, failure: &str) -> Result<(), StoreError> {
        let name: String = failure
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            .take(80)
            .collect();
        let span = step_span(req, step);
        span.in_scope(|| tracing::error!(error = %name, "playbook step failed; recorded, playbook goes on"));
        let detail = format!("{} failed ({name}); playbook went on", step.as_str());
        let entry = EscalationLogEntry::new(req, step, "failed", self.clock.now(), detail);
        self.store.append_log(&entry).instrument(span).await?;
        Ok(())
    }

    async fn load_milestone(&self, req: &EscalationRequest) -> Result<TrackedMilestone, StepError> {
        self.store
            .get_milestone(&req.account_id, &req.milestone_id)
            .await?
            .ok_or_else(|| StepError::UnknownMilestone(req.milestone_id.clone()))
    }

    async fn account_health(&self, account: &Account, now: Timestamp) -> Result<Health, StepError> {
        let milestones = self.store.milestones_of(&account.id).await?;
        let activity = self.store.activity(&account.id).await?;
        Ok(health(&milestones, &activity, account.licensed_seats, now))
    }

    async fn build_task(
        &self,
        req: &EscalationRequest,
        account: &Account,
        m: &TrackedMilestone,
        now: Timestamp,
    ) -> Result<CsmTask, StepError> {
        let activity = self.store.activity(&account.id).await?;
        Ok(CsmTask {
            id: format!("{}:csm-task", req.execution),
            status: TaskStatus::Open,
            account_id: account.id.clone(),
            account_name: account.name.clone(),
            milestone_id: m.milestone_id.clone(),
            milestone_name: m.name.clone(),
            owner_email: account.csm.email.to_string(),
            owner_name: account.csm.name.clone(),
            created_at: now,
            due_at: m.due_at,
            target: m.criterion.describe_target(account.licensed_seats),
            current: m.progress.describe_current(&m.criterion, account.licensed_seats),
            health: self.account_health(account, now).await?,
            arr_at_risk: m.arr_at_risk(account.arr),
            recommended_intervention: m.playbook.csm.clone(),
            recent_activity: activity.recent.iter().rev().cloned().collect(),
        })
    }

    /// Sends an email once (see `send_once`) and records what became of it in
    /// the escalation log, under `email:<recipient>`.
    async fn send_logged(
        &self,
        req: &EscalationRequest,
        step: Step,
        recipient: &str,
        now: Timestamp,
        mail: &OutgoingEmail,
    ) -> Result<(), StepError> {
        let result = self.send_once(mail).await?;
        let detail = format!("{} email {}", mail.kind.label(), result.describe());
        self.log(req, step, &format!("email:{recipient}"), now, detail).await
    }

    /// Sends an email at most once per key: the key is claimed before sending,
    /// settled after; a transient failure gives the claim back so a retry can send.
    async fn send_once(&self, mail: &OutgoingEmail) -> Result<SendResult, StepError> {
        let ledger = &self.store;
        if let Some(existing) = ledger.claim_send(&mail.key).await? {
            return Ok(match existing {
                SendRecord::Rejected { reason } => SendResult::Rejected(reason),
                _ => SendResult::AlreadySent,
            });
        }
        match self.mailer.send(mail).await {
            Ok(message_id) => {
                ledger.settle_send(&mail.key, &SendRecord::Sent { message_id }).await?;
                Ok(SendResult::Sent)
            }
            Err(SendError::Transient(reason)) => {
                ledger.release_send(&mail.key).await?;
                Err(StepError::Transient(reason))
            }
            Err(SendError::Permanent(reason)) => {
                ledger
                    .settle_send(&mail.key, &SendRecord::Rejected { reason: reason.clone() })
                    .await?;
                tracing::warn!(key = %mail.key, kind = mail.kind.as_str(), "email rejected permanently");
                Ok(SendResult::Rejected(reason))
            }
        }
    }

    /// Appends `what` of `step` to the account's escalation log, once.
    async fn log(
        &self,
        req: &EscalationRequest,
        step: Step,
        what: &str,
        at: Timestamp,
        detail: String,
    ) -> Result<(), StepError> {
        self.store
            .append_log(&EscalationLogEntry::new(req, step, what, at, detail))
            .await?;
        Ok(())
    }
}

fn send_key(req: &EscalationRequest, step: Step, recipient: &str) -> String {
    format!("{}:{}:{}", req.execution, step.as_str(), recipient)
}

/// The span of one playbook step: ids only.
fn step_span(req: &EscalationRequest, step: Step) -> tracing::Span {
    tracing::info_span!(
        "playbook_step",
        execution = %req.execution,
        account_id = %req.account_id,
        milestone_id = %req.milestone_id,
        step = step.as_str()
    )
}
