//! What an account did recently: the days it was active and its latest events.
//! Like criterion progress, it depends only on the set of events seen.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::{AccountId, ProductEvent, Timestamp};

/// How many days of activity history are kept (the health trend looks back 30).
pub const ACTIVE_DAYS_KEPT: i64 = 90;
/// How many recent events are kept for CSM context.
pub const RECENT_EVENTS_KEPT: usize = 10;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RecentEvent {
    pub at: Timestamp,
    pub id: String,
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountActivity {
    pub account_id: AccountId,
    pub active_days: BTreeSet<NaiveDate>,
    /// The latest events, oldest first.
    pub recent: BTreeSet<RecentEvent>,
}

impl AccountActivity {
    pub fn new(account_id: AccountId) -> Self {
        AccountActivity {
            account_id,
            ..Default::default()
        }
    }

    pub fn record(&mut self, event: &ProductEvent) {
        self.active_days.insert(event.timestamp.date_naive());
        if let Some(&latest) = self.active_days.last() {
            let cutoff = latest - chrono::Duration::days(ACTIVE_DAYS_KEPT);
            self.active_days.retain(|d| *d > cutoff);
        }
        self.recent.insert(RecentEvent {
            at: event.timestamp,
            id: event.id.clone(),
            event: event.event.clone(),
            user_id: event.user_id.clone(),
        });
        while self.recent.len() > RECENT_EVENTS_KEPT {
            self.recent.pop_first();
        }
    }

    /// The last day with activity on or before `at`.
    pub fn last_active_as_of(&self, at: Timestamp) -> Option<NaiveDate> {
        self.active_days.range(..=at.date_naive()).next_back().copied()
    }

    /// Distinct users among the recent events, newest first.
    pub fn recent_users(&self) -> Vec<String> {
        let mut users = Vec::new();
        for e in self.recent.iter().rev() {
            if let Some(u) = &e.user_id {
                if !users.contains(u) {
                    users.push(u.clone());
                }
            }
        }
        users
    }
}
