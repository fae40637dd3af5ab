//! Escalations waiting for a CS leader's email. A leader gets at most one
//! escalation email a day: the first escalation of a day goes out alone,
//! later ones wait here for the next day's email, which lists every waiting
//! escalation, ranked by ARR at risk.

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::{AccountId, ContactPolicy, EmailAddress, Timestamp};

/// How often a leader may get an escalation email: once a day, on weekdays
/// from 09:00 in the leaders' timezone.
pub const LEADER_POLICY: ContactPolicy = ContactPolicy {
    max_per_day: 1,
    max_per_week: u32::MAX,
    business_hours: (9, 17),
    business_days_only: true,
};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedEscalation {
    pub execution: String,
    pub account_id: AccountId,
    pub milestone_id: String,
    pub arr_at_risk: u64,
    pub queued_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderQueue {
    pub leader: EmailAddress,
    #[serde(default)]
    pub waiting: Vec<QueuedEscalation>,
    #[serde(default)]
    pub version: u64,
}

impl LeaderQueue {
    pub fn new(leader: EmailAddress) -> Self {
        LeaderQueue {
            leader,
            waiting: Vec::new(),
            version: 0,
        }
    }

    /// Adds the escalation unless it waits already; whether it was added.
    pub fn add(&mut self, entry: QueuedEscalation) -> bool {
        if self.waiting.iter().any(|e| e.execution == entry.execution) {
            return false;
        }
        self.waiting.push(entry);
        true
    }

    /// Waiting escalations, largest ARR at risk first (then oldest).
    pub fn ranked(&self) -> Vec<QueuedEscalation> {
        let mut ranked = self.waiting.clone();
        ranked.sort_by(|a, b| {
            (b.arr_at_risk, a.queued_at, &a.execution).cmp(&(a.arr_at_risk, b.queued_at, &b.execution))
        });
        ranked
    }

    /// Drops the escalations that were emailed (or need no email), and any
    /// that waited implausibly long (a month: their escalation is long over).
    pub fn remove(&mut self, executions: &[String], now: Timestamp) {
        self.waiting
            .retain(|e| !executions.contains(&e.execution) && e.queued_at > now - Duration::days(30));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(execution: &str, arr: u64, minutes: i64) -> QueuedEscalation {
        QueuedEscalation {
            execution: execution.into(),
            account_id: AccountId::new("a"),
            milestone_id: "m".into(),
            arr_at_risk: arr,
            queued_at: chrono::DateTime::UNIX_EPOCH + Duration::days(365) + Duration::minutes(minutes),
        }
    }

    #[test]
    fn escalations_wait_once_each_and_are_ranked_by_arr_at_risk() {
        let mut q = LeaderQueue::new(EmailAddress::parse("lead@vendor.example").unwrap());
        assert!(q.add(entry("e1", 5_000, 0)));
        assert!(q.add(entry("e2", 40_000, 1)));
        assert!(q.add(entry("e3", 5_000, -1)));
        assert!(!q.add(entry("e2", 1, 9)), "a retried step queues nothing");
        let order: Vec<String> = q.ranked().into_iter().map(|e| e.execution).collect();
        assert_eq!(order, ["e2", "e3", "e1"]);
        q.remove(&["e2".into()], chrono::DateTime::UNIX_EPOCH + Duration::days(366));
        assert_eq!(q.waiting.len(), 2);
    }
}
