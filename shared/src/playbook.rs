//! The escalation playbook's steps: the handlers the `outreach`, `csm-task` and
//! `escalate` Lambdas call, and the local workflow runner sequences in the demo.
//!
//! Every step first checks whether the milestone has been reached and, if so,
//! ends the escalation as recovered without sending anything. Every side effect
//! is idempotent: emails go through the send ledger, tasks and log entries are
//! created under deterministic keys, so a retried step repeats nothing.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::activity::RecentEvent;
use crate::domain::health::{health, Health};
use crate::domain::{
    Account, AccountId, DomainEvent, EscalationSchedule, IllegalTransition, Stage, Timestamp, TrackedMilestone,
};
use crate::email::{self, EmailKind, OutgoingEmail, RenderError};
use crate::ports::{SendError, SendRecord, StoreError};
use crate::Services;

/// The input of one escalation: what the sweep starts and every step receives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationRequest {
    pub execution: String,
    pub account_id: AccountId,
    pub milestone_id: String,
    pub due_at: Timestamp,
    pub missed_at: Timestamp,
    pub schedule: EscalationSchedule,
}

/// Step Functions execution names: 1–80 of `[A-Za-z0-9_-]`. Derived from the
/// account, milestone and due time, so a repeated start is a no-op; the hash
/// keeps ids that sanitise alike (`a.b`, `a_b`) apart.
pub fn execution_name(account: &AccountId, milestone_id: &str, due_at: Timestamp) -> String {
    let full = format!("{}\u{0}{}\u{0}{}", account, milestone_id, due_at.timestamp());
    let hash = hex_prefix(&Sha256::digest(full.as_bytes()), 12);
    let readable: String = format!("{}-{}", account, milestone_id)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(80 - 1 - hash.len())
        .collect();
    format!("{readable}-{hash}")
}

fn hex_prefix(bytes: &[u8], n: usize) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()[..n].to_string()
}

/// The steps of the playbook, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    OutreachEmail,
    InAppMessage,
    FollowUpEmail,
    CsmTask,
    Leadership,
    /// Ends the escalation as lapsed if the customer never caught up.
    Finish,
}

impl Step {
    pub const ALL: [Step; 6] = [
        Step::OutreachEmail,
        Step::InAppMessage,
        Step::FollowUpEmail,
        Step::CsmTask,
        Step::Leadership,
        Step::Finish,
    ];

    pub fn stage(self) -> Option<Stage> {
        match self {
            Step::OutreachEmail | Step::InAppMessage | Step::FollowUpEmail => Some(Stage::Outreach),
            Step::CsmTask => Some(Stage::CsmTask),
            Step::Leadership => Some(Stage::Leadership),
            Step::Finish => None,
        }
    }

    /// When the step is due, from the schedule.
    pub fn due(self, s: &EscalationSchedule) -> Timestamp {
        match self {
            Step::OutreachEmail => s.outreach_email_at,
            Step::InAppMessage => s.in_app_at,
            Step::FollowUpEmail => s.follow_up_at,
            Step::CsmTask => s.csm_task_at,
            Step::Leadership => s.leadership_at,
            Step::Finish => s.lapses_at,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Step::OutreachEmail => "outreach_email",
            Step::InAppMessage => "in_app_message",
            Step::FollowUpEmail => "follow_up_email",
            Step::CsmTask => "csm_task",
            Step::Leadership => "leadership",
            Step::Finish => "finish",
        }
    }

    /// The step that completes a stage, after which `EscalationStageCompleted` is published.
    fn completes_stage(self) -> bool {
        matches!(self, Step::FollowUpEmail | Step::CsmTask | Step::Leadership)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    /// Go on to the next step.
    Continue,
    /// The customer caught up: end the escalation, send nothing more.
    Recovered,
}

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
    Illegal(#[from] IllegalTransition),
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
        }
    }
}

/// A CSM task created on day 3, with the context a CSM needs to act.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CsmTask {
    pub id: String,
    pub status: TaskStatus,
    pub account_id: AccountId,
    pub account_name: String,
    pub milestone_id: String,
    pub milestone_name: String,
    pub owner_email: String,
    pub owner_name: String,
    pub created_at: Timestamp,
    pub due_at: Timestamp,
    pub target: String,
    pub current: String,
    pub health: Health,
    pub arr_at_risk: u64,
    pub recommended_intervention: String,
    pub recent_activity: Vec<RecentEvent>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Open,
    Done,
}

/// One line of an account's escalation history. No personal data: ids and what happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationLogEntry {
    /// Unique per thing that happened; a retry appends nothing.
    pub key: String,
    pub account_id: AccountId,
    pub milestone_id: String,
    pub execution: String,
    pub at: Timestamp,
    pub step: Step,
    pub detail: String,
}

/// Runs one step of an escalation.
pub async fn run_step(services: &Services, req: &EscalationRequest, step: Step) -> Result<StepOutcome, StepError> {
    let store = &services.store;
    let now = services.clock.now();
    let mut milestone = load_milestone(services, req).await?;
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
            changed |= milestone.escalate(next)?;
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
                &services.config,
                &account,
                &milestone,
                kind,
                send_key(req, step, "customer"),
                now,
            )?;
            send_logged(services, req, step, now, &mail).await?;
        }
        Step::InAppMessage => {
            let activity = store.activity(&account.id).await?;
            let mut users = activity.recent_users();
            users.truncate(20);
            let facts = email::MilestoneFacts::new(&services.config, &account, &milestone);
            services
                .events
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
            log(services, req, step, now, "in-app message requested".to_string()).await?;
        }
        Step::CsmTask => {
            let task = build_task(services, req, &account, &milestone, now).await?;
            if store.create_task(&task).await? {
                log(services, req, step, now, "CSM task opened".to_string()).await?;
            }
            let mail = email::csm_task(
                &services.config,
                &account,
                &milestone,
                &task,
                send_key(req, step, "csm"),
                now,
            )?;
            send_logged(services, req, step, now, &mail).await?;
        }
        Step::Leadership => {
            let report = account_health(services, &account, now).await?;
            let tried = store.log_of(&account.id).await?;
            let tried: Vec<_> = tried
                .into_iter()
                .filter(|e| e.execution == req.execution && e.step != Step::Leadership)
                .collect();
            let leader = crate::domain::Contact::new("Customer Success leadership", account.cs_leader_email.clone());
            let mut recipients = vec![(leader, EmailKind::Leadership, "leader")];
            if milestone.policy.exec_sponsor {
                if let Some(sponsor) = &account.exec_sponsor {
                    recipients.push((sponsor.clone(), EmailKind::ExecSponsor, "sponsor"));
                }
            }
            for (to, kind, who) in recipients {
                let mail = email::leadership(
                    &services.config,
                    &account,
                    &milestone,
                    &report,
                    &tried,
                    &to,
                    kind,
                    send_key(req, step, who),
                    now,
                )?;
                send_logged(services, req, step, now, &mail).await?;
            }
        }
        Step::Finish => {
            if milestone.finish()? {
                store.update_milestone(&milestone).await?;
                log(
                    services,
                    req,
                    step,
                    now,
                    "escalation lapsed without recovery".to_string(),
                )
                .await?;
            }
        }
    }

    if step.completes_stage() {
        let stage = step.stage().expect("stage steps have a stage");
        services
            .events
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

async fn load_milestone(services: &Services, req: &EscalationRequest) -> Result<TrackedMilestone, StepError> {
    services
        .store
        .get_milestone(&req.account_id, &req.milestone_id)
        .await?
        .ok_or_else(|| StepError::UnknownMilestone(req.milestone_id.clone()))
}

pub async fn account_health(services: &Services, account: &Account, now: Timestamp) -> Result<Health, StepError> {
    let milestones = services.store.milestones_of(&account.id).await?;
    let activity = services.store.activity(&account.id).await?;
    Ok(health(&milestones, &activity, account.licensed_seats, now))
}

async fn build_task(
    services: &Services,
    req: &EscalationRequest,
    account: &Account,
    m: &TrackedMilestone,
    now: Timestamp,
) -> Result<CsmTask, StepError> {
    let activity = services.store.activity(&account.id).await?;
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
        health: account_health(services, account, now).await?,
        arr_at_risk: m.arr_at_risk(account.arr),
        recommended_intervention: m.playbook.csm.clone(),
        recent_activity: activity.recent.iter().rev().cloned().collect(),
    })
}

fn send_key(req: &EscalationRequest, step: Step, recipient: &str) -> String {
    format!("{}:{}:{}", req.execution, step.as_str(), recipient)
}

/// Sends an email once (see `send_once`) and records what became of it in the escalation log.
async fn send_logged(
    services: &Services,
    req: &EscalationRequest,
    step: Step,
    now: Timestamp,
    mail: &OutgoingEmail,
) -> Result<(), StepError> {
    let result = send_once(services, mail).await?;
    log(
        services,
        req,
        step,
        now,
        format!("{} email {}", mail.kind.label(), result.describe()),
    )
    .await
}

/// What became of one email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendResult {
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

/// Sends an email at most once per key: the key is claimed before sending,
/// settled after; a transient failure gives the claim back so a retry can send.
pub async fn send_once(services: &Services, mail: &OutgoingEmail) -> Result<SendResult, StepError> {
    let ledger = &services.store;
    if let Some(existing) = ledger.claim_send(&mail.key).await? {
        return Ok(match existing {
            SendRecord::Rejected { reason } => SendResult::Rejected(reason),
            _ => SendResult::AlreadySent,
        });
    }
    match services.mailer.send(mail).await {
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

async fn log(
    services: &Services,
    req: &EscalationRequest,
    step: Step,
    at: Timestamp,
    detail: String,
) -> Result<(), StepError> {
    let key = format!("{}:{}:{}", req.execution, step.as_str(), detail);
    services
        .store
        .append_log(&EscalationLogEntry {
            key,
            account_id: req.account_id.clone(),
            milestone_id: req.milestone_id.clone(),
            execution: req.execution.clone(),
            at,
            step,
            detail,
        })
        .await?;
    Ok(())
}
