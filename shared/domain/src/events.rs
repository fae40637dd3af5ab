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
    EscalationStageCompleted {
        account_id: AccountId,
        milestone_id: String,
        execution: String,
        stage: Stage,
        completed_at: Timestamp,
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
        /// Product user ids to show it to; empty means every user of the account.
        user_ids: Vec<String>,
        title: String,
        body: String,
        link: String,
    },
}

impl DomainEvent {
    /// The EventBridge `detail-type`.
    pub fn detail_type(&self) -> &'static str {
        match self {
            DomainEvent::MilestoneAchieved { .. } => "MilestoneAchieved",
            DomainEvent::MilestoneMissed { .. } => "MilestoneMissed",
            DomainEvent::EscalationStageCompleted { .. } => "EscalationStageCompleted",
            DomainEvent::MilestoneRecovered { .. } => "MilestoneRecovered",
            DomainEvent::InAppMessageRequested { .. } => "InAppMessageRequested",
            DomainEvent::TaskOpened { .. } => "TaskOpened",
            DomainEvent::TaskSnoozed { .. } => "TaskSnoozed",
            DomainEvent::TaskReopened { .. } => "TaskReopened",
            DomainEvent::TaskClosed { .. } => "TaskClosed",
            DomainEvent::ManualMilestoneConfirmed { .. } => "ManualMilestoneConfirmed",
            DomainEvent::CustomerEmailsPaused { .. } => "CustomerEmailsPaused",
        }
    }
}
