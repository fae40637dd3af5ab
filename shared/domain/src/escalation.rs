//! An escalation: one run of a map's playbook for one missed milestone (a
//! Step Functions execution, or the demo's local run), its steps, and the
//! lines it leaves on the account's escalation log.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::actor::Actor;
use crate::csm_task::CsmTask;
use crate::{AccountId, EscalationSchedule, Stage, Timestamp};

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

/// Business days leadership has, after its email naming a miss, to hold the
/// customer's executive sponsor's email about it.
pub const SPONSOR_NOTICE_BUSINESS_DAYS: u32 = 1;

/// When the executive sponsor's email about a miss may go, leadership having
/// been told of it at `leadership_told_at`: a business day later, in the
/// account's timezone (the sponsor's contact policy may hold it longer).
pub fn sponsor_email_at(leadership_told_at: Timestamp, tz: chrono_tz::Tz) -> Timestamp {
    crate::after_playbook::add_business_days(leadership_told_at, SPONSOR_NOTICE_BUSINESS_DAYS, tz)
}

/// The steps of an escalation, in order. A stage has one or more steps.
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
    /// After the lapse: the owner's reminders and the raise of an untouched
    /// task, each when it falls due (`AfterPlaybook::duties`); the step runs
    /// again for the next, and ends the escalation after the last.
    AfterLapse,
}

impl Step {
    pub const ALL: [Step; 7] = [
        Step::OutreachEmail,
        Step::InAppMessage,
        Step::FollowUpEmail,
        Step::CsmTask,
        Step::Leadership,
        Step::Finish,
        Step::AfterLapse,
    ];

    pub fn stage(self) -> Option<Stage> {
        match self {
            Step::OutreachEmail | Step::InAppMessage | Step::FollowUpEmail => Some(Stage::Outreach),
            Step::CsmTask => Some(Stage::CsmTask),
            Step::Leadership => Some(Stage::Leadership),
            Step::Finish | Step::AfterLapse => None,
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
            // It runs at the lapse, and defers itself to each duty's time.
            Step::Finish | Step::AfterLapse => s.lapses_at,
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
            Step::AfterLapse => "after_lapse",
        }
    }

    /// The step that completes a stage, after which `EscalationStageCompleted` is published.
    pub fn completes_stage(self) -> bool {
        matches!(self, Step::FollowUpEmail | Step::CsmTask | Step::Leadership)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepOutcome {
    /// Go on to the next step.
    Continue,
    /// The customer caught up: end the escalation, send nothing more.
    Recovered,
    /// The contact policy holds the step's customer email back: run the step
    /// again at this instant (what was done already is not done twice).
    Deferred(Timestamp),
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
    /// The escalation step it belongs to; none for what happened outside a
    /// step (a manual milestone confirmed, customer email paused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<Step>,
    pub detail: String,
    /// Who did it, when a person did: their name and address stay in the store (never in logs or on the bus).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Actor>,
}

impl EscalationLogEntry {
    /// The entry for `what` (a fixed name: `email:csm`, `task_opened`,
    /// `failed`, ...) of `step` in `request`'s escalation. The key is built
    /// from the names only, never from `detail`, so rewording a message does
    /// not make a running escalation log it again.
    pub fn new(request: &EscalationRequest, step: Step, what: &str, at: Timestamp, detail: String) -> Self {
        EscalationLogEntry {
            key: format!("{}:{}:{what}", request.execution, step.as_str()),
            account_id: request.account_id.clone(),
            milestone_id: request.milestone_id.clone(),
            execution: request.execution.clone(),
            at,
            step: Some(step),
            detail,
            by: None,
        }
    }

    /// The entry for a change of `task`, `what` naming it (`snoozed`,
    /// `done`, ...). The time is part of the key: a task may be snoozed twice.
    pub fn for_task(task: &CsmTask, what: &str, at: Timestamp, by: &Actor, detail: String) -> Self {
        EscalationLogEntry {
            key: format!(
                "{}:{}:task:{what}:{}",
                task.execution(),
                Step::CsmTask.as_str(),
                at.timestamp_millis()
            ),
            account_id: task.brief().account_id.clone(),
            milestone_id: task.brief().milestone_id.clone(),
            execution: task.execution().to_string(),
            at,
            step: Some(Step::CsmTask),
            detail,
            by: (*by != Actor::Milepost).then(|| by.clone()),
        }
    }

    /// An entry outside any step: `what` (`confirmed`, `paused`, ...) done to
    /// `milestone_id` (or the account), keyed by the time it happened.
    /// The key under which leadership holding the sponsor's email of
    /// `execution` is logged: one hold per escalation, however often pressed.
    pub fn sponsor_hold_key(execution: &str) -> String {
        format!("{execution}:{}:sponsor_held", Step::Leadership.as_str())
    }

    /// The entry of `by` holding the executive sponsor's day-5 email of `task`'s escalation.
    pub fn sponsor_held(task: &CsmTask, at: Timestamp, by: &Actor) -> Self {
        EscalationLogEntry {
            key: Self::sponsor_hold_key(task.execution()),
            account_id: task.brief().account_id.clone(),
            milestone_id: task.brief().milestone_id.clone(),
            execution: task.execution().to_string(),
            at,
            step: Some(Step::Leadership),
            detail: format!("the executive sponsor's email held by {}", by.display()),
            by: Some(by.clone()),
        }
    }

    /// A person's note on an account (the console's), keyed by the form that
    /// sent it: the same form posted twice is kept once.
    pub fn account_note(account_id: &AccountId, form_id: &str, at: Timestamp, by: &Actor, text: &str) -> Self {
        EscalationLogEntry {
            key: format!("{account_id}::note:{form_id}"),
            account_id: account_id.clone(),
            milestone_id: String::new(),
            execution: String::new(),
            at,
            step: None,
            detail: format!("note by {}: {text}", by.display()),
            by: (*by != Actor::Milepost).then(|| by.clone()),
        }
    }

    pub fn outside_steps(
        account_id: &AccountId,
        milestone_id: &str,
        execution: Option<&str>,
        what: &str,
        at: Timestamp,
        by: &Actor,
        detail: String,
    ) -> Self {
        EscalationLogEntry {
            key: format!("{account_id}:{milestone_id}:{what}:{}", at.timestamp_millis()),
            account_id: account_id.clone(),
            milestone_id: milestone_id.to_string(),
            execution: execution.unwrap_or_default().to_string(),
            at,
            step: None,
            detail,
            by: (*by != Actor::Milepost).then(|| by.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::{EscalationSchedule, PlaybookTiming};

    #[test]
    fn a_log_entrys_key_names_the_thing_not_its_wording() {
        let at = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
        let request = EscalationRequest {
            execution: "acme-first-0123456789ab".into(),
            account_id: AccountId::new("acme"),
            milestone_id: "first".into(),
            due_at: at,
            missed_at: at,
            schedule: EscalationSchedule::compute(at, chrono_tz::UTC, &PlaybookTiming::default()),
        };
        let sent = EscalationLogEntry::new(&request, Step::CsmTask, "email:csm", at, "CSM task email sent".into());
        let reworded = EscalationLogEntry::new(&request, Step::CsmTask, "email:csm", at, "Emailed the CSM".into());
        assert_eq!(sent.key, "acme-first-0123456789ab:csm_task:email:csm");
        assert_eq!(sent.key, reworded.key, "rewording a message must not log it again");
        let other = EscalationLogEntry::new(&request, Step::CsmTask, "task_opened", at, "CSM task email sent".into());
        assert_ne!(sent.key, other.key, "two things of one step are two entries");
    }
}
