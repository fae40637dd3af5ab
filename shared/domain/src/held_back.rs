//! Misses too small for the CSM or leadership stage, waiting for their
//! held-back list. A map's `min_arr_at_risk` keeps a small miss tech-touch
//! (the customer steps only) or keeps it from leadership; its owner still
//! hears of it, once, in one email a weekday morning that lists everything
//! held back since the last one.
//!
//! A held-back list is sent in three writes, so a crash or an overlapping sweep
//! sends nothing twice and drops nothing: the entries waiting are marked
//! with the day (`assign`), the email for that day goes once (its send key
//! names owner and day), then the day's entries are removed (`remove_day`).

use chrono::{Datelike, Duration, NaiveDate, Timelike, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::{AccountId, Contact, Timestamp};

/// The ARR at risk a miss needs for the CSM stage and for the leadership
/// stage (the map's `min_arr_at_risk`; 0, the default, lets every miss through).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArrThresholds {
    #[serde(default)]
    pub csm_task: u64,
    #[serde(default)]
    pub leadership: u64,
}

/// Which stages a miss under the thresholds skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeldBack {
    /// Under the CSM threshold: no task, no leadership; the customer steps only.
    TaskAndLeadership,
    /// A task was opened; under the leadership threshold, leadership is not told.
    Leadership,
}

impl ArrThresholds {
    /// What a miss with this ARR at risk skips; `None`: every stage runs.
    pub fn held_back(&self, arr_at_risk: u64) -> Option<HeldBack> {
        if arr_at_risk < self.csm_task {
            Some(HeldBack::TaskAndLeadership)
        } else if arr_at_risk < self.leadership {
            Some(HeldBack::Leadership)
        } else {
            None
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldMiss {
    pub execution: String,
    pub account_id: AccountId,
    pub milestone_id: String,
    pub arr_at_risk: u64,
    pub held_back: HeldBack,
    pub queued_at: Timestamp,
    /// The day of the list that lists it, once one is being sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest_of: Option<NaiveDate>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldBackList {
    pub owner: Contact,
    #[serde(default)]
    pub waiting: Vec<HeldMiss>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sent_on: Option<NaiveDate>,
    #[serde(default)]
    pub version: u64,
}

/// A held-back list goes on weekdays from this hour, in the CS team's timezone.
pub const DIGEST_HOUR: u32 = 9;

impl HeldBackList {
    pub fn new(owner: Contact) -> Self {
        HeldBackList {
            owner,
            waiting: Vec::new(),
            last_sent_on: None,
            version: 0,
        }
    }

    /// Adds the miss unless it waits already; whether it was added.
    pub fn add(&mut self, miss: HeldMiss) -> bool {
        if self.waiting.iter().any(|w| w.execution == miss.execution) {
            return false;
        }
        self.waiting.push(miss);
        true
    }

    /// The day whose list is to be sent now, if any: one being sent
    /// already (finish it), or today's, on a weekday from 09:00 in `tz`,
    /// once a day, when something waits.
    pub fn due_day(&self, now: Timestamp, tz: Tz) -> Option<NaiveDate> {
        if let Some(day) = self.waiting.iter().filter_map(|w| w.digest_of).min() {
            return Some(day);
        }
        let local = now.with_timezone(&tz);
        let today = local.date_naive();
        let weekday = !matches!(local.weekday(), Weekday::Sat | Weekday::Sun);
        (weekday && local.hour() >= DIGEST_HOUR && self.last_sent_on != Some(today) && !self.waiting.is_empty())
            .then_some(today)
    }

    /// Marks everything waiting and not yet in a held-back list for `day`'s; whether anything changed.
    pub fn assign(&mut self, day: NaiveDate) -> bool {
        let mut changed = self.last_sent_on != Some(day);
        self.last_sent_on = Some(day);
        for w in self.waiting.iter_mut().filter(|w| w.digest_of.is_none()) {
            w.digest_of = Some(day);
            changed = true;
        }
        changed
    }

    /// `day`'s entries, largest ARR at risk first (then oldest).
    pub fn of_day(&self, day: NaiveDate) -> Vec<HeldMiss> {
        let mut listed: Vec<HeldMiss> = self
            .waiting
            .iter()
            .filter(|w| w.digest_of == Some(day))
            .cloned()
            .collect();
        listed.sort_by(|a, b| {
            (b.arr_at_risk, a.queued_at, &a.execution).cmp(&(a.arr_at_risk, b.queued_at, &b.execution))
        });
        listed
    }

    /// Drops `day`'s entries (sent, or nothing left to tell), and any that
    /// waited implausibly long (a month); whether anything changed.
    pub fn remove_day(&mut self, day: NaiveDate, now: Timestamp) -> bool {
        let before = self.waiting.len();
        self.waiting
            .retain(|w| w.digest_of != Some(day) && w.queued_at > now - Duration::days(30));
        self.waiting.len() != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EmailAddress;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32, h: u32) -> Timestamp {
        chrono::Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
    }

    fn miss(execution: &str, arr: u64, queued_at: Timestamp) -> HeldMiss {
        HeldMiss {
            execution: execution.into(),
            account_id: AccountId::new("a"),
            milestone_id: "m".into(),
            arr_at_risk: arr,
            held_back: HeldBack::TaskAndLeadership,
            queued_at,
            digest_of: None,
        }
    }

    #[test]
    fn thresholds_hold_back_the_stages_a_small_miss_does_not_need() {
        let t = ArrThresholds {
            csm_task: 1_000,
            leadership: 2_500,
        };
        assert_eq!(t.held_back(999), Some(HeldBack::TaskAndLeadership));
        assert_eq!(t.held_back(1_000), Some(HeldBack::Leadership));
        assert_eq!(t.held_back(2_499), Some(HeldBack::Leadership));
        assert_eq!(t.held_back(2_500), None);
        assert_eq!(
            ArrThresholds::default().held_back(0),
            None,
            "the default lets every miss through"
        );
    }

    #[test]
    fn a_digest_goes_once_a_weekday_morning_and_a_half_sent_one_is_finished_first() {
        let owner = Contact::new("Maya", EmailAddress::parse("maya@vendor.example").unwrap());
        let mut d = HeldBackList::new(owner);
        let tz = chrono_tz::Europe::Berlin;
        // Friday 4 Dec 2026, 07:00 UTC is 08:00 in Berlin: too early.
        assert_eq!(d.due_day(at(2026, 12, 4, 7), tz), None, "nothing waits");
        assert!(d.add(miss("e1", 500, at(2026, 12, 3, 12))));
        assert!(
            !d.add(miss("e1", 500, at(2026, 12, 3, 13))),
            "a retried step adds nothing"
        );
        assert!(d.add(miss("e2", 900, at(2026, 12, 3, 14))));
        assert_eq!(d.due_day(at(2026, 12, 4, 7), tz), None, "before 09:00 local");
        let friday = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
        assert_eq!(d.due_day(at(2026, 12, 4, 8), tz), Some(friday));
        assert!(d.assign(friday));
        assert!(!d.assign(friday), "assigning twice changes nothing");
        // Something held back after the list was assigned waits for the next one.
        assert!(d.add(miss("e3", 2_000, at(2026, 12, 4, 9))));
        let listed: Vec<_> = d.of_day(friday).into_iter().map(|m| m.execution).collect();
        assert_eq!(listed, ["e2", "e1"], "largest ARR at risk first, e3 not in it");
        assert_eq!(
            d.due_day(at(2026, 12, 4, 15), tz),
            Some(friday),
            "until removed, finish it"
        );
        assert!(d.remove_day(friday, at(2026, 12, 4, 9)));
        assert_eq!(d.due_day(at(2026, 12, 4, 15), tz), None, "one a day");
        assert_eq!(d.due_day(at(2026, 12, 5, 10), tz), None, "not on Saturday");
        let monday = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        assert_eq!(d.due_day(at(2026, 12, 7, 8), tz), Some(monday));
        assert!(d.assign(monday));
        assert_eq!(d.of_day(monday).len(), 1);
    }
}
