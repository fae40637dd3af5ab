//! How often and when Milepost may email one customer contact: at most one
//! automated email a day and three in any seven days (defaults), only on
//! business days inside business hours in the account's timezone. A send the
//! policy holds back is deferred to the next slot it allows, never dropped.
//!
//! The rule is a pure function of the contact's recent sends, so the demo's
//! runner and the Lambdas behind Step Functions decide alike.

use chrono::{Duration, TimeZone, Timelike};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::schedule::{at_local, is_weekday};
use crate::{EmailAddress, Timestamp};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContactPolicy {
    /// Automated emails one contact may get on one local calendar day.
    pub max_per_day: u32,
    /// Automated emails one contact may get in any seven days.
    pub max_per_week: u32,
    /// Local hours customer mail may go out: `[start, end)`.
    pub business_hours: (u32, u32),
    /// Only Monday to Friday.
    pub business_days_only: bool,
}

impl ContactPolicy {
    /// The policy for a reply in a thread the contact already has (day 1's
    /// follow-up to its outreach): one more email on the day, so the day-1
    /// conversation counts once against the daily cap; every email still
    /// counts against the weekly one, and business hours hold.
    pub fn for_reply(self) -> Self {
        ContactPolicy {
            max_per_day: self.max_per_day.saturating_add(1),
            ..self
        }
    }
}

impl Default for ContactPolicy {
    fn default() -> Self {
        ContactPolicy {
            max_per_day: 1,
            max_per_week: 3,
            business_hours: (9, 17),
            business_days_only: true,
        }
    }
}

/// Why a send waits, in words for the escalation log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeldBecause {
    OutsideBusinessHours,
    DailyLimit,
    WeeklyLimit,
}

impl HeldBecause {
    pub fn describe(self, policy: &ContactPolicy) -> String {
        match self {
            HeldBecause::OutsideBusinessHours => format!(
                "outside business hours ({:02}:00–{:02}:00{})",
                policy.business_hours.0,
                policy.business_hours.1,
                if policy.business_days_only {
                    ", Monday to Friday"
                } else {
                    ""
                }
            ),
            HeldBecause::DailyLimit => format!("the limit of {} a day", policy.max_per_day),
            HeldBecause::WeeklyLimit => format!("the limit of {} in seven days", policy.max_per_week),
        }
    }
}

/// When a send to a contact may go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    Now,
    /// Not before this instant, for the first reason that held it.
    Later(Timestamp, HeldBecause),
}

impl ContactPolicy {
    /// No limits: for `make local`, whose compressed playbook days the
    /// functions' real clocks do not follow.
    pub fn unlimited() -> Self {
        ContactPolicy {
            max_per_day: u32::MAX,
            max_per_week: u32::MAX,
            business_hours: (0, 24),
            business_days_only: false,
        }
    }

    /// The earliest instant at or after `now` at which one more email to a
    /// contact who was sent `sent` (any order) fits the policy in `tz`.
    pub fn slot(&self, sent: &[Timestamp], now: Timestamp, tz: Tz) -> Slot {
        let mut at = now;
        let mut first_reason = None;
        // Each round moves `at` forward to a day or an hour that can hold it:
        // a few dozen rounds at most, even with a full week.
        for _ in 0..64 {
            let (next, reason) = self.check(sent, at, tz);
            match next {
                None => {
                    return match first_reason {
                        None => Slot::Now,
                        Some(reason) => Slot::Later(at, reason),
                    }
                }
                Some(later) => {
                    first_reason.get_or_insert(reason.expect("a later slot has a reason"));
                    at = later;
                }
            }
        }
        Slot::Later(at, first_reason.unwrap_or(HeldBecause::WeeklyLimit))
    }

    /// `None` when `at` fits; otherwise an instant after it worth trying, and why.
    fn check(&self, sent: &[Timestamp], at: Timestamp, tz: Tz) -> (Option<Timestamp>, Option<HeldBecause>) {
        let local = tz.from_utc_datetime(&at.naive_utc());
        let day = local.date_naive();
        let (start, end) = self.business_hours;
        let workday = !self.business_days_only || is_weekday(day);
        if !workday || local.hour() >= end {
            return (
                Some(at_local(tz, self.next_day(day), start)),
                Some(HeldBecause::OutsideBusinessHours),
            );
        }
        if local.hour() < start {
            return (Some(at_local(tz, day, start)), Some(HeldBecause::OutsideBusinessHours));
        }
        let same_day = sent
            .iter()
            .filter(|t| tz.from_utc_datetime(&t.naive_utc()).date_naive() == day)
            .count();
        if same_day >= self.max_per_day as usize {
            return (
                Some(at_local(tz, self.next_day(day), start)),
                Some(HeldBecause::DailyLimit),
            );
        }
        let mut in_week: Vec<Timestamp> = sent
            .iter()
            .copied()
            .filter(|t| *t > at - Duration::days(7) && *t <= at)
            .collect();
        if in_week.len() >= self.max_per_week as usize {
            in_week.sort();
            // When enough of them have left the window.
            let free_at = in_week[in_week.len() - self.max_per_week as usize] + Duration::days(7);
            return (Some(free_at + Duration::seconds(1)), Some(HeldBecause::WeeklyLimit));
        }
        (None, None)
    }

    fn next_day(&self, day: chrono::NaiveDate) -> chrono::NaiveDate {
        let mut next = day.succ_opt().expect("date in range");
        while self.business_days_only && !is_weekday(next) {
            next = next.succ_opt().expect("date in range");
        }
        next
    }

    /// How far back a contact's sends matter.
    pub fn memory(&self) -> Duration {
        Duration::days(8)
    }
}

/// What Milepost remembers of one customer contact: the address (found by
/// its unsubscribe link's fingerprint) and the automated emails lately sent to it,
/// each under its send key so a retried send is not held by its own slot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactRecord {
    pub email: EmailAddress,
    #[serde(default)]
    pub sends: Vec<ContactSend>,
    #[serde(default)]
    pub version: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactSend {
    pub at: Timestamp,
    pub key: String,
}

impl ContactRecord {
    pub fn new(email: EmailAddress) -> Self {
        ContactRecord {
            email,
            sends: Vec::new(),
            version: 0,
        }
    }

    /// Claims a slot for the send `key` at `now` if the policy allows it:
    /// `Now` means it is recorded (save the record); a send already recorded
    /// under `key` is `Now` again without a second entry.
    pub fn claim(&mut self, key: &str, now: Timestamp, policy: &ContactPolicy, tz: Tz) -> Slot {
        if self.sends.iter().any(|s| s.key == key) {
            return Slot::Now;
        }
        let times: Vec<Timestamp> = self.sends.iter().map(|s| s.at).collect();
        let slot = policy.slot(&times, now, tz);
        if slot == Slot::Now {
            self.sends.retain(|s| s.at > now - policy.memory());
            self.sends.push(ContactSend {
                at: now,
                key: key.to_string(),
            });
        }
        slot
    }
}

/// `t`, or the next whole second after it.
pub fn whole_second_up(t: Timestamp) -> Timestamp {
    let down = t - Duration::nanoseconds(i64::from(t.timestamp_subsec_nanos()));
    if down == t {
        t
    } else {
        down + Duration::seconds(1)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Datelike, Utc};

    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse::<chrono::DateTime<Utc>>().unwrap()
    }

    const BERLIN: Tz = chrono_tz::Europe::Berlin;

    /// The weekday and time of `t` in `tz`: `Mon 09:00`.
    fn local_label(t: Timestamp, tz: Tz) -> String {
        let l = tz.from_utc_datetime(&t.naive_utc());
        format!("{} {:02}:{:02}", l.weekday(), l.hour(), l.minute())
    }

    #[test]
    fn mail_waits_for_the_contacts_business_hours_and_weekdays() {
        let p = ContactPolicy::default();
        // Wednesday 10:00 in Berlin (09:00 UTC in winter): now.
        assert_eq!(p.slot(&[], at("2026-02-04T09:00:00Z"), BERLIN), Slot::Now);
        // Wednesday 07:30 Berlin → 09:00 that day.
        assert_eq!(
            p.slot(&[], at("2026-02-04T06:30:00Z"), BERLIN),
            Slot::Later(at("2026-02-04T08:00:00Z"), HeldBecause::OutsideBusinessHours)
        );
        // Friday 17:00 Berlin → Monday 09:00.
        assert_eq!(
            p.slot(&[], at("2026-02-06T16:00:00Z"), BERLIN),
            Slot::Later(at("2026-02-09T08:00:00Z"), HeldBecause::OutsideBusinessHours)
        );
        // Saturday → Monday.
        let Slot::Later(t, _) = p.slot(&[], at("2026-02-07T12:00:00Z"), BERLIN) else {
            panic!()
        };
        assert_eq!(local_label(t, BERLIN), "Mon 09:00");
    }

    #[test]
    fn one_a_day_and_three_a_week_per_contact() {
        let p = ContactPolicy::default();
        let monday = at("2026-02-09T09:00:00Z");
        // Sent Monday 10:00 Berlin: the next goes Tuesday 09:00.
        assert_eq!(
            p.slot(&[monday], monday + Duration::hours(2), BERLIN),
            Slot::Later(at("2026-02-10T08:00:00Z"), HeldBecause::DailyLimit)
        );
        // Mon, Tue, Wed sent: Thursday and Friday are full for the week; the
        // next fits once Monday's has left the seven days (next Monday 10:00).
        let sent = [monday, monday + Duration::days(1), monday + Duration::days(2)];
        let Slot::Later(t, why) = p.slot(&sent, monday + Duration::days(3), BERLIN) else {
            panic!()
        };
        assert_eq!(why, HeldBecause::WeeklyLimit);
        assert_eq!(t.date_naive(), (monday + Duration::days(7)).date_naive());
        assert!(t > monday + Duration::days(7));
        assert_eq!(p.slot(&sent, t, BERLIN), Slot::Now);
    }

    #[test]
    fn a_claim_is_recorded_once_per_send_key_and_old_sends_are_forgotten() {
        let p = ContactPolicy::default();
        let mut record = ContactRecord::new(EmailAddress::parse("pat@acme.example").unwrap());
        let monday = at("2026-02-09T09:00:00Z");
        record.sends.push(ContactSend {
            at: monday - Duration::days(30),
            key: "old".into(),
        });
        assert_eq!(record.claim("e1:outreach", monday, &p, BERLIN), Slot::Now);
        assert_eq!(
            record.claim("e1:outreach", monday + Duration::hours(1), &p, BERLIN),
            Slot::Now,
            "a retry"
        );
        assert!(matches!(
            record.claim("e2:outreach", monday + Duration::hours(1), &p, BERLIN),
            Slot::Later(_, HeldBecause::DailyLimit)
        ));
        let keys: Vec<&str> = record.sends.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(
            keys,
            ["e1:outreach"],
            "the retry added nothing; the month-old send is gone"
        );
    }

    /// Whatever the history, the slot found fits the policy and nothing earlier from `now` does.
    #[test]
    fn the_slot_found_is_the_earliest_that_fits() {
        let p = ContactPolicy::default();
        let start = at("2026-03-02T00:00:00Z");
        let mut sent = Vec::new();
        let mut now = start;
        for step in 0..200 {
            now += Duration::minutes(97 + (step * 37 % 300));
            let Slot::Later(t, _) = p.slot(&sent, now, BERLIN) else {
                sent.push(now);
                continue;
            };
            assert_eq!(p.slot(&sent, t, BERLIN), Slot::Now, "{t}");
            let mut probe = now;
            while probe < t - Duration::minutes(30) {
                assert_ne!(p.slot(&sent, probe, BERLIN), Slot::Now, "{probe} fits before {t}");
                probe += Duration::minutes(30);
            }
            // The deferred send goes at its slot.
            sent.push(t);
            now = t;
        }
        assert!(sent.len() > 20, "{}", sent.len());
        for (i, a) in sent.iter().enumerate() {
            let local = |t: &Timestamp| BERLIN.from_utc_datetime(&t.naive_utc());
            assert!(
                is_weekday(local(a).date_naive()) && (9..17).contains(&local(a).hour()),
                "{a}"
            );
            let same_day = sent
                .iter()
                .filter(|b| local(b).date_naive() == local(a).date_naive())
                .count();
            assert_eq!(same_day, 1, "{a}");
            let week = sent[..=i].iter().filter(|b| **b > *a - Duration::days(7)).count();
            assert!(week <= 3, "{a}: {week} in seven days");
        }
    }
}
