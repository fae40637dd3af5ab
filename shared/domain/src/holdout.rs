//! The control group: a share of misses gets no playbook at all, so that
//! `milepost report` can tell what the playbook itself recovers from what
//! customers would have recovered anyway.
//!
//! Which misses are held out is a pure function of (account, milestone, due
//! time): a redelivered event, two overlapping sweeps or a re-run agree
//! without coordinating. Accounts above the map's `holdout_max_arr` are never
//! held out: nobody experiments on the biggest customers.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{AccountId, Timestamp};

/// Which arm of the experiment a miss is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    /// The playbook runs (day 1, 3, 5).
    Playbook,
    /// Held out: no playbook, tracked for recovery like the rest.
    Control,
}

impl Group {
    pub fn as_str(self) -> &'static str {
        match self {
            Group::Playbook => "playbook",
            Group::Control => "control",
        }
    }
}

/// The share held out and the ARR above which nobody is.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Holdout {
    /// Share of misses with no playbook, 0 to `MAX_HOLDOUT`.
    #[serde(default)]
    pub share: f64,
    /// Accounts whose ARR is above this are always in the playbook group.
    #[serde(default = "default_max_arr")]
    pub max_arr: u64,
}

/// The most a map may hold out: past half, the playbook is the experiment's minority.
pub const MAX_HOLDOUT: f64 = 0.5;

/// ARR above which no account is held out, unless the map says otherwise:
/// the mid-market ceiling of most SaaS companies' segments.
pub const DEFAULT_HOLDOUT_MAX_ARR: u64 = 100_000;

fn default_max_arr() -> u64 {
    DEFAULT_HOLDOUT_MAX_ARR
}

impl Default for Holdout {
    fn default() -> Self {
        Holdout {
            share: 0.0,
            max_arr: DEFAULT_HOLDOUT_MAX_ARR,
        }
    }
}

impl Holdout {
    /// The group of a miss of `milestone_id` due at `due_at` on an account with `arr`.
    pub fn group_of(&self, account: &AccountId, milestone_id: &str, due_at: Timestamp, arr: u64) -> Group {
        if self.share > 0.0 && arr <= self.max_arr && draw(account, milestone_id, due_at) < self.share {
            Group::Control
        } else {
            Group::Playbook
        }
    }
}

/// A uniform draw in [0, 1) fixed by the miss: the first 8 bytes of
/// SHA-256(account ␀ milestone ␀ due time in seconds) over 2^64.
pub fn draw(account: &AccountId, milestone_id: &str, due_at: Timestamp) -> f64 {
    let key = format!("holdout\u{0}{account}\u{0}{milestone_id}\u{0}{}", due_at.timestamp());
    let digest = Sha256::digest(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // 53 bits: exactly representable in an f64.
    (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use super::*;

    fn due(i: i64) -> Timestamp {
        Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap() + Duration::days(i)
    }

    #[test]
    fn the_same_miss_always_lands_in_the_same_group() {
        let rule = Holdout {
            share: 0.3,
            ..Holdout::default()
        };
        for i in 0..200 {
            let account = AccountId(format!("acct-{i}"));
            let first = rule.group_of(&account, "first_workflow", due(i % 7), 10_000);
            for _ in 0..3 {
                assert_eq!(rule.group_of(&account, "first_workflow", due(i % 7), 10_000), first);
            }
        }
    }

    #[test]
    fn about_the_share_is_held_out() {
        let rule = Holdout {
            share: 0.1,
            ..Holdout::default()
        };
        let n: i32 = 20_000;
        let control = (0..n)
            .filter(|i| {
                let account = AccountId(format!("acct-{i:05}"));
                rule.group_of(&account, "integration", due(i64::from(i % 30)), 50_000) == Group::Control
            })
            .count();
        // 0.1 ± 4 standard errors (sd of a share: sqrt(0.1·0.9/20000) ≈ 0.0021).
        let share = control as f64 / f64::from(n);
        assert!((share - 0.1).abs() < 0.0085, "held out {share}");
    }

    #[test]
    fn big_accounts_and_a_zero_share_are_never_held_out() {
        let rule = Holdout {
            share: 0.5,
            max_arr: 100_000,
        };
        let off = Holdout::default();
        for i in 0..500 {
            let account = AccountId(format!("acct-{i}"));
            assert_eq!(rule.group_of(&account, "m", due(0), 100_001), Group::Playbook);
            assert_eq!(off.group_of(&account, "m", due(0), 1), Group::Playbook);
        }
        // At the limit itself, accounts take part.
        assert!(
            (0..500).any(|i| rule.group_of(&AccountId(format!("acct-{i}")), "m", due(0), 100_000) == Group::Control)
        );
    }

    #[test]
    fn milestones_and_due_times_draw_independently() {
        let account = AccountId("acct-1".into());
        let draws: Vec<f64> = (0..50).map(|i| draw(&account, "m", due(i))).collect();
        let mut sorted = draws.clone();
        sorted.sort_by(f64::total_cmp);
        sorted.dedup();
        assert_eq!(sorted.len(), draws.len(), "every due time draws its own number");
        assert_ne!(draw(&account, "a", due(0)), draw(&account, "b", due(0)));
        assert!(draws.iter().all(|d| (0.0..1.0).contains(d)));
    }
}
