//! A CSM task: what day 3 of an escalation asks of the milestone's owner,
//! with the context needed to act on it, and its lifecycle.
//!
//! ```text
//!           ┌──snooze(until)──▶ snoozed ──wake (until passed)──┐
//!   open ◀──┴───────────────────────────────────────────────────┘
//!    │  done(outcome) · dismiss(reason) · auto-close (customer recovered,
//!    ▼  milestone confirmed), from open or snoozed
//!  done | dismissed          (final: a later action is "already closed")
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::activity::RecentEvent;
use crate::actor::Actor;
use crate::health::Health;
use crate::{AccountId, DomainEvent, FieldError, Timestamp};

/// What a task tells its owner: the account, the milestone and what to do,
/// written once when the escalation opens the task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskBrief {
    pub account_id: AccountId,
    pub account_name: String,
    pub milestone_id: String,
    pub milestone_name: String,
    /// The role that owns the milestone, and whether the task went to the CSM
    /// because no one holds that role on the account.
    #[serde(default = "csm_role")]
    pub owner_role: String,
    #[serde(default)]
    pub owner_is_fallback: bool,
    pub owner_email: String,
    pub owner_name: String,
    /// When the task was opened.
    pub created_at: Timestamp,
    pub due_at: Timestamp,
    pub target: String,
    pub current: String,
    pub health: Health,
    pub arr_at_risk: u64,
    pub recommended_intervention: String,
    /// The account's latest events that its milestones read, newest first.
    pub recent_activity: Vec<RecentEvent>,
    /// How many other recent events there were (page views and the like):
    /// counted, not listed. (Tasks opened before listed every event.)
    #[serde(default, skip_serializing_if = "is_zero")]
    pub other_activity: u64,
    /// Day 1's follow-up was not sent: the contact policy would have held it
    /// past the task.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub follow_up_not_sent: bool,
    /// By when it must be touched (its map's `task_sla_business_days` in the
    /// account's time zone), fixed when it opens; none on tasks opened before
    /// this was kept (then it is worked out from the milestone and account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla: Option<TaskSla>,
}

/// A task's service level, fixed when it opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskSla {
    /// Its map sets none (`task_sla_business_days: 0`).
    None,
    /// Past its SLA from this instant, if nobody has touched it.
    DueBy(Timestamp),
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A CSM task: its brief and its lifecycle. The lifecycle changes only
/// through `apply` (and the outbox through `queue_event`/`published`); the
/// fields are private to the domain crate. Stored flat, as it always was.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CsmTask {
    pub(crate) id: String,
    pub(crate) status: TaskStatus,
    #[serde(flatten)]
    pub(crate) brief: TaskBrief,
    /// While snoozed: when it opens again and its owner is told again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) snoozed_until: Option<Timestamp>,
    /// How it ended, once done or dismissed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) closed: Option<Closure>,
    /// What people wrote on it, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) notes: Vec<TaskNote>,
    /// When a person last acted on it (a snooze, a close, a note): a task
    /// never touched past its SLA is raised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) touched_at: Option<Timestamp>,
    /// Actions applied through a signed link, by the link's key, so the same
    /// link followed twice changes nothing the second time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) applied: Vec<AppliedAction>,
    /// Domain events of changes already saved and not yet published: saved
    /// with the change, published after, cleared last; the next touch
    /// publishes what a failed publish left here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) outbox: Vec<DomainEvent>,
    /// Optimistic-concurrency version: every store write expects the version
    /// it read, and the store sets it.
    #[serde(default)]
    pub version: u64,
}

fn csm_role() -> String {
    crate::account::CSM_ROLE.to_string()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Open,
    Snoozed,
    Done,
    Dismissed,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 4] = [
        TaskStatus::Open,
        TaskStatus::Snoozed,
        TaskStatus::Done,
        TaskStatus::Dismissed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Open => "open",
            TaskStatus::Snoozed => "snoozed",
            TaskStatus::Done => "done",
            TaskStatus::Dismissed => "dismissed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        TaskStatus::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Open or snoozed: someone still owes it work.
    pub fn is_live(self) -> bool {
        matches!(self, TaskStatus::Open | TaskStatus::Snoozed)
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a person got done when they mark a task done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    PlanAgreed,
    BlockerRemoved,
    TeamTrained,
    EscalatedInternally,
    Other,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [
        Outcome::PlanAgreed,
        Outcome::BlockerRemoved,
        Outcome::TeamTrained,
        Outcome::EscalatedInternally,
        Outcome::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::PlanAgreed => "plan_agreed",
            Outcome::BlockerRemoved => "blocker_removed",
            Outcome::TeamTrained => "team_trained",
            Outcome::EscalatedInternally => "escalated_internally",
            Outcome::Other => "other",
        }
    }

    /// How people say it.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::PlanAgreed => "plan agreed with the customer",
            Outcome::BlockerRemoved => "blocker removed",
            Outcome::TeamTrained => "customer's team trained",
            Outcome::EscalatedInternally => "escalated inside our company",
            Outcome::Other => "done",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// Why a person dismissed a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DismissReason {
    NotRelevant,
    CustomerChurning,
    Duplicate,
    Other,
}

impl DismissReason {
    pub const ALL: [DismissReason; 4] = [
        DismissReason::NotRelevant,
        DismissReason::CustomerChurning,
        DismissReason::Duplicate,
        DismissReason::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DismissReason::NotRelevant => "not_relevant",
            DismissReason::CustomerChurning => "customer_churning",
            DismissReason::Duplicate => "duplicate",
            DismissReason::Other => "other",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            DismissReason::NotRelevant => "not relevant",
            DismissReason::CustomerChurning => "customer is churning",
            DismissReason::Duplicate => "a duplicate",
            DismissReason::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        DismissReason::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Why a task closed: `TaskClosed`'s `reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// Its owner marked it done.
    Completed,
    /// Ingestion saw the milestone reached.
    CustomerRecovered,
    /// Someone confirmed the manual milestone.
    MilestoneConfirmed,
    /// Its owner dismissed it.
    Dismissed(DismissReason),
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Completed => "completed",
            CloseReason::CustomerRecovered => "customer_recovered",
            CloseReason::MilestoneConfirmed => "milestone_confirmed",
            CloseReason::Dismissed(r) => r.as_str(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closure {
    pub at: Timestamp,
    pub by: Actor,
    pub reason: CloseReason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskNote {
    pub at: Timestamp,
    pub by: Actor,
    pub text: String,
}

/// The longest note kept, in bytes: one line, not an essay.
pub const MAX_NOTE_BYTES: usize = 500;
/// How many notes and applied links one task keeps (the oldest go first).
pub const MAX_TASK_ENTRIES: usize = 20;

/// A note as a person typed it, made one clean line: control characters and
/// line breaks become spaces, blanks are trimmed; empty is none. Longer than
/// `MAX_NOTE_BYTES` is refused, naming the field.
pub fn clean_note(text: &str) -> Result<Option<String>, FieldError> {
    let line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.len() > MAX_NOTE_BYTES {
        return Err(FieldError::new(
            "note",
            format!("is {} bytes; a note may hold {MAX_NOTE_BYTES}", line.len()),
        ));
    }
    Ok((!line.is_empty()).then_some(line))
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedAction {
    pub key: String,
    pub at: Timestamp,
    pub by: Actor,
    pub action: String,
}

/// What someone (or Milepost) does to a task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskAction {
    Done {
        outcome: Outcome,
        note: Option<String>,
    },
    Snooze {
        until: Timestamp,
        note: Option<String>,
    },
    Dismiss {
        reason: DismissReason,
        note: Option<String>,
    },
    /// The snooze is over: open again (Milepost, from the sweep).
    Wake,
    /// The milestone was reached, or confirmed: nothing is left to do.
    AutoClose {
        reason: CloseReason,
    },
}

impl TaskAction {
    /// A short name, for the log and for applied links.
    pub fn name(&self) -> &'static str {
        match self {
            TaskAction::Done { .. } => "done",
            TaskAction::Snooze { .. } => "snooze",
            TaskAction::Dismiss { .. } => "dismiss",
            TaskAction::Wake => "wake",
            TaskAction::AutoClose { .. } => "auto_close",
        }
    }

    fn note(&self) -> Option<&str> {
        match self {
            TaskAction::Done { note, .. } | TaskAction::Snooze { note, .. } | TaskAction::Dismiss { note, .. } => {
                note.as_deref()
            }
            TaskAction::Wake | TaskAction::AutoClose { .. } => None,
        }
    }
}

/// What an action changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskChange {
    Closed(Closure),
    Snoozed {
        until: Timestamp,
    },
    Reopened,
    /// Nothing to do: the snooze is not over, or an automatic close found it closed.
    Unchanged,
}

/// Why an action was refused; nothing changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TaskRefusal {
    #[error("already closed ({status}) by {} on {at}", by.display())]
    AlreadyClosed {
        status: TaskStatus,
        by: Actor,
        at: Timestamp,
    },
    #[error("already done through this link by {} on {at}", by.display())]
    AlreadyApplied { action: String, by: Actor, at: Timestamp },
    #[error("a snooze must end in the future")]
    SnoozeInThePast,
}

impl CsmTask {
    /// An open task with `brief` (opened at its `created_at`).
    pub fn open(id: String, brief: TaskBrief) -> Self {
        CsmTask {
            id,
            status: TaskStatus::Open,
            brief,
            snoozed_until: None,
            closed: None,
            notes: Vec::new(),
            touched_at: None,
            applied: Vec::new(),
            outbox: Vec::new(),
            version: 0,
        }
    }

    /// Open, and no person has acted on it yet (tasks stored before this was
    /// recorded count a note or a link pressed by a person).
    pub fn untouched(&self) -> bool {
        self.status == TaskStatus::Open
            && self.touched_at.is_none()
            && self.notes.is_empty()
            && !self.applied.iter().any(|a| matches!(a.by, Actor::Person { .. }))
    }

    pub fn id(&self) -> &str {
        &self.id
    }
    pub fn status(&self) -> TaskStatus {
        self.status
    }
    pub fn brief(&self) -> &TaskBrief {
        &self.brief
    }
    pub fn created_at(&self) -> Timestamp {
        self.brief.created_at
    }
    pub fn snoozed_until(&self) -> Option<Timestamp> {
        self.snoozed_until
    }
    pub fn closed(&self) -> Option<&Closure> {
        self.closed.as_ref()
    }
    pub fn notes(&self) -> &[TaskNote] {
        &self.notes
    }
    pub fn applied(&self) -> &[AppliedAction] {
        &self.applied
    }
    pub fn outbox(&self) -> &[DomainEvent] {
        &self.outbox
    }

    /// Queues `event` to go out on the bus after the change that made it is saved.
    pub fn queue_event(&mut self, event: DomainEvent) {
        self.outbox.push(event);
    }

    /// The first `count` queued events went out.
    pub fn published(&mut self, count: usize) {
        self.outbox.drain(..count.min(self.outbox.len()));
    }

    /// Applies `action` by `by` at `at`. `link_key`, for an action from a
    /// signed link, makes the same link followed twice a refusal the second
    /// time (`AlreadyApplied`) instead of a second change.
    pub fn apply(
        &mut self,
        action: &TaskAction,
        by: &Actor,
        at: Timestamp,
        link_key: Option<&str>,
    ) -> Result<TaskChange, TaskRefusal> {
        if let Some(earlier) = link_key.and_then(|k| self.applied.iter().find(|a| a.key == k)) {
            return Err(TaskRefusal::AlreadyApplied {
                action: earlier.action.clone(),
                by: earlier.by.clone(),
                at: earlier.at,
            });
        }
        if let Some(closed) = &self.closed {
            return match action {
                // Reaching the milestone again, or a wake-up after a close, is no news.
                TaskAction::AutoClose { .. } | TaskAction::Wake => Ok(TaskChange::Unchanged),
                _ => Err(TaskRefusal::AlreadyClosed {
                    status: self.status,
                    by: closed.by.clone(),
                    at: closed.at,
                }),
            };
        }
        let change = match action {
            TaskAction::Done { outcome, .. } => self.close(by, at, CloseReason::Completed, Some(*outcome)),
            TaskAction::Dismiss { reason, .. } => self.close(by, at, CloseReason::Dismissed(*reason), None),
            TaskAction::AutoClose { reason } => self.close(by, at, *reason, None),
            TaskAction::Snooze { until, .. } => {
                if *until <= at {
                    return Err(TaskRefusal::SnoozeInThePast);
                }
                self.status = TaskStatus::Snoozed;
                self.snoozed_until = Some(*until);
                TaskChange::Snoozed { until: *until }
            }
            TaskAction::Wake => match self.snoozed_until {
                Some(until) if self.status == TaskStatus::Snoozed && until <= at => {
                    self.status = TaskStatus::Open;
                    self.snoozed_until = None;
                    TaskChange::Reopened
                }
                _ => return Ok(TaskChange::Unchanged),
            },
        };
        if matches!(by, Actor::Person { .. }) {
            self.touched_at = Some(at);
        }
        if let Some(text) = action.note() {
            push_bounded(
                &mut self.notes,
                TaskNote {
                    at,
                    by: by.clone(),
                    text: text.to_string(),
                },
            );
        }
        if let Some(key) = link_key {
            push_bounded(
                &mut self.applied,
                AppliedAction {
                    key: key.to_string(),
                    at,
                    by: by.clone(),
                    action: action.name().to_string(),
                },
            );
        }
        Ok(change)
    }

    /// The bus event of `change`, if it is one the bus hears about.
    pub fn event_of(&self, change: &TaskChange, at: Timestamp) -> Option<DomainEvent> {
        match change {
            TaskChange::Closed(c) => Some(DomainEvent::TaskClosed {
                account_id: self.brief.account_id.clone(),
                milestone_id: self.brief.milestone_id.clone(),
                task_id: self.id.clone(),
                status: self.status.as_str().to_string(),
                reason: c.reason.as_str().to_string(),
                outcome: c.outcome.map(|o| o.as_str().to_string()),
                closed_at: c.at,
            }),
            TaskChange::Snoozed { until } => Some(DomainEvent::TaskSnoozed {
                account_id: self.brief.account_id.clone(),
                milestone_id: self.brief.milestone_id.clone(),
                task_id: self.id.clone(),
                until: *until,
            }),
            TaskChange::Reopened => Some(DomainEvent::TaskReopened {
                account_id: self.brief.account_id.clone(),
                milestone_id: self.brief.milestone_id.clone(),
                task_id: self.id.clone(),
                reopened_at: at,
            }),
            TaskChange::Unchanged => None,
        }
    }

    /// `TaskOpened`, once, when the task is created (a snooze's end is `TaskReopened`).
    pub fn opened_event(&self, at: Timestamp) -> DomainEvent {
        DomainEvent::TaskOpened {
            account_id: self.brief.account_id.clone(),
            milestone_id: self.brief.milestone_id.clone(),
            task_id: self.id.clone(),
            owner_role: self.brief.owner_role.clone(),
            opened_at: at,
        }
    }

    fn close(&mut self, by: &Actor, at: Timestamp, reason: CloseReason, outcome: Option<Outcome>) -> TaskChange {
        self.status = match reason {
            CloseReason::Dismissed(_) => TaskStatus::Dismissed,
            _ => TaskStatus::Done,
        };
        self.snoozed_until = None;
        let closure = Closure {
            at,
            by: by.clone(),
            reason,
            outcome,
        };
        self.closed = Some(closure.clone());
        TaskChange::Closed(closure)
    }

    /// The escalation this task belongs to (its id is `<execution>:csm-task`).
    pub fn execution(&self) -> &str {
        self.id.strip_suffix(":csm-task").unwrap_or(&self.id)
    }

    /// The id of the task an escalation opens.
    pub fn id_for(execution: &str) -> String {
        format!("{execution}:csm-task")
    }
}

fn push_bounded<T>(entries: &mut Vec<T>, entry: T) {
    if entries.len() >= MAX_TASK_ENTRIES {
        entries.remove(0);
    }
    entries.push(entry);
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use super::*;
    use crate::health::Health;

    fn t0() -> Timestamp {
        Utc.with_ymd_and_hms(2026, 4, 20, 10, 0, 0).unwrap()
    }

    fn task() -> CsmTask {
        let mut task = CsmTask::open(
            "acme-first-0123456789ab:csm-task".into(),
            TaskBrief {
                follow_up_not_sent: false,
                sla: None,
                account_id: AccountId::new("acme"),
                account_name: "Acme".into(),
                milestone_id: "first".into(),
                milestone_name: "First".into(),
                owner_role: "csm".into(),
                owner_is_fallback: false,
                owner_email: "maya@vendor.example".into(),
                owner_name: "Maya Chen".into(),
                created_at: t0(),
                due_at: t0(),
                target: "1".into(),
                current: "0".into(),
                health: Health {
                    score: 50,
                    trend: 0,
                    factors: vec![],
                },
                arr_at_risk: 1000,
                recommended_intervention: "call".into(),
                recent_activity: vec![],
                other_activity: 0,
            },
        );
        task.version = 1;
        task
    }

    fn maya() -> Actor {
        Actor::Person {
            name: "Maya Chen".into(),
            email: "maya@vendor.example".into(),
        }
    }

    #[test]
    fn a_task_is_untouched_until_a_person_acts_on_it() {
        let mut t = task();
        assert!(t.untouched());
        t.apply(&TaskAction::Wake, &Actor::Milepost, t0(), None).unwrap();
        assert!(t.untouched(), "Milepost's own wake-up is not a person acting");
        let until = t0() + chrono::Duration::days(2);
        t.apply(&TaskAction::Snooze { until, note: None }, &maya(), t0(), None)
            .unwrap();
        t.apply(&TaskAction::Wake, &Actor::Milepost, until, None).unwrap();
        assert_eq!(t.status(), TaskStatus::Open);
        assert!(!t.untouched(), "snoozed once by its owner, with no note: touched");
    }

    #[test]
    fn done_closes_with_its_outcome_and_note_and_nothing_closes_it_twice() {
        let mut t = task();
        let done = TaskAction::Done {
            outcome: Outcome::PlanAgreed,
            note: Some("called the champion, SSO blocks the rollout".into()),
        };
        let change = t.apply(&done, &maya(), t0() + Duration::days(1), None).unwrap();
        assert!(matches!(
            change,
            TaskChange::Closed(Closure {
                reason: CloseReason::Completed,
                outcome: Some(Outcome::PlanAgreed),
                ..
            })
        ));
        assert_eq!(t.status, TaskStatus::Done);
        assert_eq!(t.notes[0].text, "called the champion, SSO blocks the rollout");
        for again in [
            done.clone(),
            TaskAction::Dismiss {
                reason: DismissReason::Duplicate,
                note: None,
            },
            TaskAction::Snooze {
                until: t0() + Duration::days(9),
                note: None,
            },
        ] {
            let refused = t.apply(&again, &maya(), t0() + Duration::days(2), None).unwrap_err();
            assert!(
                matches!(
                    refused,
                    TaskRefusal::AlreadyClosed {
                        status: TaskStatus::Done,
                        ..
                    }
                ),
                "{refused:?}"
            );
        }
        assert_eq!(
            t.apply(
                &TaskAction::AutoClose {
                    reason: CloseReason::CustomerRecovered
                },
                &Actor::Milepost,
                t0(),
                None
            ),
            Ok(TaskChange::Unchanged),
            "reaching the milestone after the task closed is no news"
        );
        assert_eq!(t.closed.as_ref().unwrap().reason, CloseReason::Completed);
    }

    #[test]
    fn a_snooze_ends_at_its_time_and_can_be_closed_meanwhile() {
        let mut t = task();
        let until = t0() + Duration::days(3);
        let snooze = TaskAction::Snooze { until, note: None };
        assert_eq!(t.apply(&snooze, &maya(), t0(), None), Ok(TaskChange::Snoozed { until }));
        assert_eq!(
            t.apply(&TaskAction::Wake, &Actor::Milepost, until - Duration::minutes(1), None),
            Ok(TaskChange::Unchanged)
        );
        assert_eq!(
            t.apply(&TaskAction::Wake, &Actor::Milepost, until, None),
            Ok(TaskChange::Reopened)
        );
        assert_eq!((t.status, t.snoozed_until), (TaskStatus::Open, None));
        assert_eq!(
            t.apply(&TaskAction::Wake, &Actor::Milepost, until, None),
            Ok(TaskChange::Unchanged),
            "woken once"
        );
        assert_eq!(
            t.apply(&snooze, &maya(), until, None),
            Err(TaskRefusal::SnoozeInThePast),
            "a snooze that would already be over"
        );
        let later = TaskAction::Snooze {
            until: until + Duration::days(7),
            note: None,
        };
        t.apply(&later, &maya(), until, None).unwrap();
        let closed = t
            .apply(
                &TaskAction::AutoClose {
                    reason: CloseReason::CustomerRecovered,
                },
                &Actor::Milepost,
                until,
                None,
            )
            .unwrap();
        assert!(matches!(closed, TaskChange::Closed(_)));
        assert_eq!(
            (t.status, t.snoozed_until),
            (TaskStatus::Done, None),
            "a snoozed task closes too"
        );
    }

    #[test]
    fn the_same_link_followed_twice_changes_nothing_the_second_time() {
        let mut t = task();
        let snooze = TaskAction::Snooze {
            until: t0() + Duration::days(7),
            note: None,
        };
        t.apply(&snooze, &maya(), t0(), Some("link-1")).unwrap();
        let again = t
            .apply(&snooze, &maya(), t0() + Duration::hours(1), Some("link-1"))
            .unwrap_err();
        assert!(
            matches!(again, TaskRefusal::AlreadyApplied { ref action, at, .. } if action == "snooze" && at == t0())
        );
        assert_eq!(
            t.snoozed_until,
            Some(t0() + Duration::days(7)),
            "not pushed back by the second follow"
        );
        // Another link is another action.
        t.apply(
            &TaskAction::Dismiss {
                reason: DismissReason::NotRelevant,
                note: None,
            },
            &maya(),
            t0(),
            Some("link-2"),
        )
        .unwrap();
        assert_eq!(t.status, TaskStatus::Dismissed);
    }

    #[test]
    fn notes_are_one_clean_line_of_bounded_length() {
        assert_eq!(
            clean_note("  called\nthe\tchampion \u{0007} "),
            Ok(Some("called the champion".into()))
        );
        assert_eq!(clean_note(" \n "), Ok(None));
        assert_eq!(clean_note(&"x".repeat(MAX_NOTE_BYTES + 1)).unwrap_err().field, "note");
        assert!(
            format!("{:?}", maya()).contains("redacted"),
            "no address in debug output"
        );
    }
}
