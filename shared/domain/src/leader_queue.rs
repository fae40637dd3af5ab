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

/// A miss whose playbook lapsed without the customer catching up: the
/// leader's daily email lists these after its escalations, largest ARR at
/// risk first, until the customer catches up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LapsedMiss {
    pub execution: String,
    pub account_id: AccountId,
    pub milestone_id: String,
    pub arr_at_risk: u64,
    pub lapsed_at: Timestamp,
}

/// At most this many lapsed misses are kept per leader (the oldest go first).
pub const LAPSED_KEPT: usize = 500;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderQueue {
    pub leader: EmailAddress,
    #[serde(default)]
    pub waiting: Vec<QueuedEscalation>,
    /// Lapsed misses of the leader's accounts (queues stored before: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lapsed: Vec<LapsedMiss>,
    #[serde(default)]
    pub version: u64,
}

impl LeaderQueue {
    pub fn new(leader: EmailAddress) -> Self {
        LeaderQueue {
            leader,
            waiting: Vec::new(),
            lapsed: Vec::new(),
            version: 0,
        }
    }

    /// Adds a lapsed miss unless it is listed already; whether it was added.
    /// Past `LAPSED_KEPT`, the one that lapsed longest ago goes.
    pub fn add_lapsed(&mut self, miss: LapsedMiss) -> bool {
        if self.lapsed.iter().any(|m| m.execution == miss.execution) {
            return false;
        }
        self.lapsed.push(miss);
        if self.lapsed.len() > LAPSED_KEPT {
            if let Some(oldest) = self
                .lapsed
                .iter()
                .enumerate()
                .min_by_key(|(_, m)| m.lapsed_at)
                .map(|(i, _)| i)
            {
                self.lapsed.remove(oldest);
            }
        }
        true
    }

    /// The lapsed misses, largest ARR at risk first (then the longest lapsed).
    pub fn lapsed_ranked(&self) -> Vec<LapsedMiss> {
        let mut ranked = self.lapsed.clone();
        ranked.sort_by(|a, b| {
            (b.arr_at_risk, a.lapsed_at, &a.execution).cmp(&(a.arr_at_risk, b.lapsed_at, &b.execution))
        });
        ranked
    }

    /// Drops the lapsed misses of these executions (caught up, or gone).
    pub fn remove_lapsed(&mut self, executions: &[String]) -> bool {
        let before = self.lapsed.len();
        self.lapsed.retain(|m| !executions.contains(&m.execution));
        self.lapsed.len() != before
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

    #[test]
    fn lapsed_misses_are_listed_once_each_ranked_by_arr_and_bounded() {
        let mut q = LeaderQueue::new(EmailAddress::parse("lead@vendor.example").unwrap());
        let miss = |execution: &str, arr: u64, day: i64| LapsedMiss {
            execution: execution.into(),
            account_id: AccountId::new("a"),
            milestone_id: "m".into(),
            arr_at_risk: arr,
            lapsed_at: chrono::DateTime::UNIX_EPOCH + Duration::days(day),
        };
        assert!(q.add_lapsed(miss("l1", 5_000, 10)));
        assert!(q.add_lapsed(miss("l2", 9_000, 11)));
        assert!(
            !q.add_lapsed(miss("l1", 5_000, 12)),
            "a step run again lists nothing twice"
        );
        let order: Vec<String> = q.lapsed_ranked().into_iter().map(|m| m.execution).collect();
        assert_eq!(order, ["l2", "l1"]);
        assert!(q.remove_lapsed(&["l2".into()]));
        assert!(!q.remove_lapsed(&["l2".into()]));
        for i in 0..LAPSED_KEPT {
            q.add_lapsed(miss(&format!("x{i}"), 1, 20 + i as i64));
        }
        assert_eq!(q.lapsed.len(), LAPSED_KEPT);
        assert!(
            q.lapsed.iter().all(|m| m.execution != "l1"),
            "the longest lapsed went first"
        );
    }
}
