//! Product events coming in, and domain events going out to the bus.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{AccountId, Phase, Segment, Stage, Timestamp};

/// A product event in Milepost's own shape; Segment payloads are converted to it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProductEvent {
    /// Unique per event; the dedupe key.
    pub id: String,
    pub account_id: AccountId,
    /// The event name, e.g. `workflow.completed`.
    pub event: String,
    /// When it happened (not when it was sent).
    pub timestamp: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub properties: Map<String, Value>,
}

/// What Milepost tells the rest of the company, on the EventBridge bus.
/// Carries ids and figures only: no names or email addresses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum DomainEvent {
    MilestoneAchieved {
        account_id: AccountId,
        milestone_id: String,
        segment: Segment,
        phase: Phase,
        due_at: Timestamp,
        achieved_at: Timestamp,
    },
    MilestoneMissed {
        account_id: AccountId,
        milestone_id: String,
        segment: Segment,
        phase: Phase,
        due_at: Timestamp,
        arr_at_risk: u64,
        /// `playbook`, or `control`: held out, no playbook runs.
        group: crate::Group,
    },
    /// A stage of the playbook acted (its emails, in-app message or task;
    /// those a pause, an unsubscribe or the contact policy held included).
    EscalationStageCompleted {
        account_id: AccountId,
        milestone_id: String,
        execution: String,
        stage: Stage,
        completed_at: Timestamp,
    },
    /// A stage of the playbook did not act, and why: a rule on completed
    /// stages never counts it.
    EscalationStageSkipped {
        account_id: AccountId,
        milestone_id: String,
        execution: String,
        stage: Stage,
        reason: StageSkip,
        skipped_at: Timestamp,
    },
    MilestoneRecovered {
        account_id: AccountId,
        milestone_id: String,
        due_at: Timestamp,
        /// When the customer caught up.
        recovered_at: Timestamp,
        /// The same instant, under the name `MilestoneAchieved` uses
        /// (kept for rules written before `recovered_at`).
        achieved_at: Timestamp,
        /// The miss's group; none for a miss announced before groups existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<crate::Group>,
        /// The escalation stage reached before the customer caught up, if one had started.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stage_reached: Option<Stage>,
        /// Where in the playbook the customer caught up (`RecoveredAfter`,
        /// as `summary.json` and `milepost report` count it); none in the control group.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recovered_after: Option<crate::RecoveredAfter>,
    },
    /// The playbook ended and the customer had not caught up: the miss is
    /// lapsed (the after-playbook reminders follow; reaching the milestone
    /// still recovers it).
    MilestoneLapsed {
        account_id: AccountId,
        milestone_id: String,
        execution: String,
        lapsed_at: Timestamp,
    },
    /// A CSM task opened for the milestone's owner (by role; no names or addresses).
    TaskOpened {
        account_id: AccountId,
        milestone_id: String,
        task_id: String,
        owner_role: String,
        opened_at: Timestamp,
    },
    /// A snoozed task is open again (its snooze ended); its owner is reminded.
    TaskReopened {
        account_id: AccountId,
        milestone_id: String,
        task_id: String,
        reopened_at: Timestamp,
    },
    /// Its owner put the task off until `until`; it opens again then.
    TaskSnoozed {
        account_id: AccountId,
        milestone_id: String,
        task_id: String,
        until: Timestamp,
    },
    TaskClosed {
        account_id: AccountId,
        milestone_id: String,
        task_id: String,
        /// `done` or `dismissed`.
        status: String,
        /// `completed`, `customer_recovered`, `milestone_confirmed`, or the
        /// dismissal's reason (`not_relevant`, `customer_churning`, `duplicate`, `other`).
        reason: String,
        /// For a task done by its owner: what they got done (`plan_agreed`, ...).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        outcome: Option<String>,
        closed_at: Timestamp,
    },
    /// An expansion milestone was reached: an opportunity is open for the
    /// role the map names, worth `pipeline_arr` a year (none: unpriced).
    ExpansionReady {
        account_id: AccountId,
        milestone_id: String,
        segment: Segment,
        owner_role: String,
        adds: u32,
        unit: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unit_price: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pipeline_arr: Option<u64>,
        /// What the owner is asked to do (the map's `expansion.play`: internal).
        play: String,
        /// The milestone's window end, as on `MilestoneAchieved`: with the
        /// ids, what makes this opportunity this one.
        due_at: Timestamp,
        /// When the milestone was reached.
        ready_at: Timestamp,
    },
    /// Someone confirmed a manual milestone (the reached event follows).
    ManualMilestoneConfirmed {
        account_id: AccountId,
        milestone_id: String,
        confirmed_at: Timestamp,
    },
    /// Automated customer email for the account is paused until `until`.
    CustomerEmailsPaused { account_id: AccountId, until: Timestamp },
    /// Asks the product to show a message in-app; the product subscribes to it.
    InAppMessageRequested {
        account_id: AccountId,
        milestone_id: String,
        /// The escalation asking (one message per escalation; absent before 0.2).
        #[serde(default)]
        execution: String,
        /// Product user ids to show it to; empty means every user of the account.
        user_ids: Vec<String>,
        title: String,
        body: String,
        link: String,
    },
}

/// Why a playbook stage did not act.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageSkip {
    /// A vendor-side milestone: day 1's touches would go to the customer.
    VendorSide,
    /// The ARR at risk is under the map's `min_arr_at_risk` for the stage:
    /// the miss went to its owner's held-back list instead.
    BelowArrThreshold,
}

impl DomainEvent {
    /// The consumer's dedupe key: derived from what makes the event this
    /// event (its type and the ids and instants naming the change, never
    /// figures that a later delivery might read differently), so every
    /// delivery of one event, a resend after a lost answer or the next
    /// sweep's announcement of what a failure left owed, carries the same
    /// id, and two events never share one. A UUID-shaped string (the first
    /// 128 bits of SHA-256 of the identity).
    pub fn event_id(&self) -> String {
        use sha2::{Digest, Sha256};
        let ms = |t: &Timestamp| t.timestamp_millis().to_string();
        let identity: Vec<String> = match self {
            DomainEvent::MilestoneAchieved {
                account_id,
                milestone_id,
                due_at,
                ..
            }
            | DomainEvent::MilestoneMissed {
                account_id,
                milestone_id,
                due_at,
                ..
            }
            | DomainEvent::MilestoneRecovered {
                account_id,
                milestone_id,
                due_at,
                ..
            } => vec![account_id.to_string(), milestone_id.clone(), ms(due_at)],
            DomainEvent::MilestoneLapsed { execution, .. } => vec![execution.clone()],
            DomainEvent::EscalationStageCompleted { execution, stage, .. }
            | DomainEvent::EscalationStageSkipped { execution, stage, .. } => {
                vec![execution.clone(), stage.number().to_string()]
            }
            DomainEvent::TaskOpened { task_id, .. } | DomainEvent::TaskClosed { task_id, .. } => vec![task_id.clone()],
            DomainEvent::TaskReopened {
                task_id, reopened_at, ..
            } => vec![task_id.clone(), ms(reopened_at)],
            DomainEvent::TaskSnoozed { task_id, until, .. } => vec![task_id.clone(), ms(until)],
            DomainEvent::ManualMilestoneConfirmed {
                account_id,
                milestone_id,
                confirmed_at,
            } => vec![account_id.to_string(), milestone_id.clone(), ms(confirmed_at)],
            // As its reached event: a late older event may move `ready_at`.
            DomainEvent::ExpansionReady {
                account_id,
                milestone_id,
                due_at,
                ..
            } => vec![account_id.to_string(), milestone_id.clone(), ms(due_at)],
            DomainEvent::CustomerEmailsPaused { account_id, until } => vec![account_id.to_string(), ms(until)],
            DomainEvent::InAppMessageRequested {
                account_id,
                milestone_id,
                execution,
                ..
            } => vec![account_id.to_string(), milestone_id.clone(), execution.clone()],
        };
        let mut hash = Sha256::new();
        hash.update(self.detail_type().as_bytes());
        for part in &identity {
            // Length-prefixed: no two identities hash the same bytes.
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
        let h = hex::encode(&hash.finalize()[..16]);
        format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
    }

    /// The event as the bus carries it: its fields, `type`, and `event_id`.
    pub fn detail(&self) -> Value {
        let mut detail = serde_json::to_value(self).expect("a domain event serialises");
        if let Value::Object(fields) = &mut detail {
            fields.insert("event_id".into(), Value::String(self.event_id()));
        }
        detail
    }

    /// Every `detail_type`, as an endpoint's list of the events it wants names them.
    pub const TYPES: [&'static str; 14] = [
        "MilestoneAchieved",
        "MilestoneMissed",
        "EscalationStageCompleted",
        "EscalationStageSkipped",
        "MilestoneRecovered",
        "MilestoneLapsed",
        "InAppMessageRequested",
        "TaskOpened",
        "TaskSnoozed",
        "TaskReopened",
        "TaskClosed",
        "ManualMilestoneConfirmed",
        "CustomerEmailsPaused",
        "ExpansionReady",
    ];

    /// The EventBridge `detail-type`.
    pub fn detail_type(&self) -> &'static str {
        match self {
            DomainEvent::MilestoneAchieved { .. } => "MilestoneAchieved",
            DomainEvent::MilestoneMissed { .. } => "MilestoneMissed",
            DomainEvent::EscalationStageCompleted { .. } => "EscalationStageCompleted",
            DomainEvent::EscalationStageSkipped { .. } => "EscalationStageSkipped",
            DomainEvent::MilestoneRecovered { .. } => "MilestoneRecovered",
            DomainEvent::MilestoneLapsed { .. } => "MilestoneLapsed",
            DomainEvent::InAppMessageRequested { .. } => "InAppMessageRequested",
            DomainEvent::TaskOpened { .. } => "TaskOpened",
            DomainEvent::TaskSnoozed { .. } => "TaskSnoozed",
            DomainEvent::TaskReopened { .. } => "TaskReopened",
            DomainEvent::TaskClosed { .. } => "TaskClosed",
            DomainEvent::ManualMilestoneConfirmed { .. } => "ManualMilestoneConfirmed",
            DomainEvent::CustomerEmailsPaused { .. } => "CustomerEmailsPaused",
            DomainEvent::ExpansionReady { .. } => "ExpansionReady",
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use super::*;
    use crate::Group;

    fn missed(account: &str, milestone: &str, days: i64, arr_at_risk: u64) -> DomainEvent {
        DomainEvent::MilestoneMissed {
            account_id: AccountId::new(account),
            milestone_id: milestone.into(),
            segment: Segment::Enterprise,
            phase: Phase::Onboarding,
            due_at: Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap() + Duration::days(days),
            arr_at_risk,
            group: Group::Playbook,
        }
    }

    #[test]
    fn an_event_keeps_its_id_on_every_delivery_and_no_two_events_share_one() {
        let event = missed("acme", "first", 0, 10_000);
        let id = event.event_id();
        assert_eq!(id.len(), 36, "UUID-shaped: {id}");
        assert_eq!(event.clone().event_id(), id);
        assert_eq!(event.detail()["event_id"], id.as_str(), "the bus carries it");
        assert_eq!(
            missed("acme", "first", 0, 99_000).event_id(),
            id,
            "a figure read again later (the ARR changed) is still the same miss"
        );
        let others = [
            missed("acme", "second", 0, 10_000),
            missed("acme2", "first", 0, 10_000),
            missed("acme", "first", 1, 10_000),
            // Shifted parts must not collide: "ab"+"c" vs "a"+"bc".
            missed("acmef", "irst", 0, 10_000),
        ];
        for other in &others {
            assert_ne!(other.event_id(), id, "{other:?}");
        }
        let recovered = DomainEvent::MilestoneRecovered {
            account_id: AccountId::new("acme"),
            milestone_id: "first".into(),
            due_at: Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap(),
            recovered_at: Utc.with_ymd_and_hms(2026, 3, 4, 0, 0, 0).unwrap(),
            achieved_at: Utc.with_ymd_and_hms(2026, 3, 4, 0, 0, 0).unwrap(),
            group: None,
            stage_reached: None,
            recovered_after: None,
        };
        assert_ne!(recovered.event_id(), id, "the type is part of the identity");
    }
}
