//! A CSM task: what day 3 of an escalation asks of the account's CSM, with
//! the context needed to act on it.

use serde::{Deserialize, Serialize};

use crate::activity::RecentEvent;
use crate::health::Health;
use crate::{AccountId, Timestamp};

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
