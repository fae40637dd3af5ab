//! After the playbook: a miss that lapsed is not forgotten. Its owner is
//! reminded at the map's `lapsed_reminder_days` after the lapse, and a CSM
//! task nobody touched for `task_sla_business_days` after it opened is
//! raised once to its owner and, as many business days later, once to the
//! account's CS leader. The playbook's last step (`Step::AfterLapse`) does
//! each duty when it falls due, from the list `AfterPlaybook::duties` makes.

use chrono::{Duration, TimeZone};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::schedule::is_weekday;
use crate::Timestamp;

/// The map's rules for what follows a lapsed playbook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AfterPlaybook {
    /// Days after the lapse the owner is reminded, ascending.
    #[serde(default = "default_reminder_days")]
    pub lapsed_reminder_days: Vec<u32>,
    /// Business days an open task may go untouched before it is raised (0: never).
    #[serde(default = "default_task_sla")]
    pub task_sla_business_days: u32,
}

/// At most this many reminders after a lapse.
pub const MAX_LAPSED_REMINDERS: usize = 4;
/// The latest a reminder may be set, in days after the lapse.
pub const MAX_REMINDER_DAY: u32 = 365;
/// The longest task SLA a map may set, in business days.
pub const MAX_TASK_SLA: u32 = 60;

fn default_reminder_days() -> Vec<u32> {
    vec![14, 30]
}

fn default_task_sla() -> u32 {
    5
}

impl Default for AfterPlaybook {
    fn default() -> Self {
        AfterPlaybook {
            lapsed_reminder_days: default_reminder_days(),
            task_sla_business_days: default_task_sla(),
        }
    }
}

/// One thing owed to a lapsed miss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Duty {
    /// The task went untouched past its SLA: its owner is told so.
    TaskOverSla,
    /// Still untouched one SLA later: the CS leader is told.
    TaskToLead,
    /// The owner's reminder this many days after the lapse.
    LapsedReminder { days: u32 },
}

impl Duty {
    /// The part of its send and log keys that names it; stored, never changed.
    pub fn key_part(self) -> String {
        match self {
            Duty::TaskOverSla => "task_over_sla".into(),
            Duty::TaskToLead => "task_to_lead".into(),
            Duty::LapsedReminder { days } => format!("reminder_{days}d"),
        }
    }
}

/// What the duties of a miss depend on in its task, if it has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskFacts {
    pub opened_at: Timestamp,
    /// Open, and no person has acted on it (no snooze, no note, no close).
    pub untouched: bool,
    /// Its owner dismissed it: the owner is not reminded of the miss (a miss
    /// with no task, held back under the map's thresholds, is not either).
    pub dismissed: bool,
    /// Snoozed now: the owner asked for quiet, and is told again when the snooze ends.
    pub snoozed: bool,
}

/// Whether a duty is to be done now, given the task as it is now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Do,
    /// Not needed, and why (the task was acted on, dismissed or is
    /// snoozed: its snooze's end reminds the owner); recorded as such, never done later.
    NotNeeded(&'static str),
}

impl AfterPlaybook {
    /// Every duty of a miss that lapsed at `lapsed_at`, with when it falls
    /// due, earliest first. The SLA counts business days in the account's
    /// timezone from the task's opening; a raise due before the lapse falls
    /// due at the lapse (the playbook's own steps come first).
    pub fn duties(&self, lapsed_at: Timestamp, task_opened_at: Option<Timestamp>, tz: Tz) -> Vec<(Timestamp, Duty)> {
        let mut duties: Vec<(Timestamp, Duty)> = self
            .lapsed_reminder_days
            .iter()
            .map(|&days| {
                (
                    lapsed_at + Duration::days(i64::from(days)),
                    Duty::LapsedReminder { days },
                )
            })
            .collect();
        if let (Some(opened), sla @ 1..) = (task_opened_at, self.task_sla_business_days) {
            let over = add_business_days(opened, sla, tz);
            duties.push((over.max(lapsed_at), Duty::TaskOverSla));
            duties.push((add_business_days(over, sla, tz).max(lapsed_at), Duty::TaskToLead));
        }
        duties.sort();
        duties
    }
}

impl Duty {
    /// Whether this duty is done now, given the task (none: the miss opened no task).
    pub fn verdict(self, task: Option<&TaskFacts>) -> Verdict {
        match (self, task) {
            (Duty::TaskOverSla | Duty::TaskToLead, Some(t)) if t.untouched => Verdict::Do,
            (Duty::TaskOverSla | Duty::TaskToLead, _) => Verdict::NotNeeded("the task was acted on"),
            (Duty::LapsedReminder { .. }, None) => {
                Verdict::NotNeeded("no task: the map's thresholds held the miss back, to its owner's list")
            }
            (Duty::LapsedReminder { .. }, Some(t)) if t.dismissed => Verdict::NotNeeded("its owner dismissed the task"),
            (Duty::LapsedReminder { .. }, Some(t)) if t.snoozed => {
                Verdict::NotNeeded("the task is snoozed: its owner hears when the snooze ends")
            }
            (Duty::LapsedReminder { .. }, Some(_)) => Verdict::Do,
        }
    }
}

/// `n` business days after `t`, at the same local time (Saturdays and
/// Sundays skipped; a start on a weekend counts from the Monday).
pub fn add_business_days(t: Timestamp, n: u32, tz: Tz) -> Timestamp {
    let local = t.with_timezone(&tz);
    let mut day = local.date_naive();
    let mut left = n;
    while left > 0 {
        day = day.succ_opt().expect("date in range");
        if is_weekday(day) {
            left -= 1;
        }
    }
    let naive = day.and_time(local.time());
    tz.from_local_datetime(&naive)
        .earliest()
        .map_or(t + Duration::days(i64::from(n)), |l| l.to_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn utc(s: &str) -> Timestamp {
        s.parse::<chrono::DateTime<Utc>>().unwrap()
    }

    #[test]
    fn business_days_skip_the_weekend_in_the_accounts_timezone() {
        // Friday 10:00 in Sydney (Thursday 23:00 UTC) + 1 business day: Monday 10:00 Sydney.
        let friday = utc("2026-03-05T23:00:00Z");
        assert_eq!(
            add_business_days(friday, 1, chrono_tz::Australia::Sydney),
            utc("2026-03-08T23:00:00Z")
        );
        // In UTC the same instant is a Thursday: Friday.
        assert_eq!(
            add_business_days(friday, 1, chrono_tz::UTC),
            utc("2026-03-06T23:00:00Z")
        );
        assert_eq!(
            add_business_days(friday, 5, chrono_tz::UTC),
            utc("2026-03-12T23:00:00Z")
        );
    }

    #[test]
    fn the_duties_of_a_lapse_come_in_time_order_with_the_raises_no_earlier_than_the_lapse() {
        let rules = AfterPlaybook::default();
        let opened = utc("2026-03-04T10:00:00Z"); // Wednesday
        let lapsed = utc("2026-03-10T10:00:00Z"); // Tuesday
        let duties = rules.duties(lapsed, Some(opened), chrono_tz::UTC);
        assert_eq!(
            duties,
            [
                (utc("2026-03-11T10:00:00Z"), Duty::TaskOverSla),
                (utc("2026-03-18T10:00:00Z"), Duty::TaskToLead),
                (utc("2026-03-24T10:00:00Z"), Duty::LapsedReminder { days: 14 }),
                (utc("2026-04-09T10:00:00Z"), Duty::LapsedReminder { days: 30 }),
            ]
        );
        // A task opened long before the lapse is raised at the lapse, not before.
        let early = rules.duties(lapsed, Some(opened - Duration::days(30)), chrono_tz::UTC);
        assert_eq!(early[0], (lapsed, Duty::TaskOverSla));
        // No task, no raise; an SLA of 0 raises nothing.
        assert!(rules
            .duties(lapsed, None, chrono_tz::UTC)
            .iter()
            .all(|(_, d)| matches!(d, Duty::LapsedReminder { .. })));
        let never = AfterPlaybook {
            task_sla_business_days: 0,
            ..AfterPlaybook::default()
        };
        assert_eq!(never.duties(lapsed, Some(opened), chrono_tz::UTC).len(), 2);
    }

    #[test]
    fn a_raise_needs_an_untouched_task_and_a_reminder_respects_a_dismissal_and_a_snooze() {
        let opened_at = utc("2026-03-04T10:00:00Z");
        let task = |untouched, dismissed, snoozed| TaskFacts {
            opened_at,
            untouched,
            dismissed,
            snoozed,
        };
        assert_eq!(Duty::TaskOverSla.verdict(Some(&task(true, false, false))), Verdict::Do);
        assert!(matches!(
            Duty::TaskToLead.verdict(Some(&task(false, false, false))),
            Verdict::NotNeeded(_)
        ));
        assert!(matches!(Duty::TaskOverSla.verdict(None), Verdict::NotNeeded(_)));
        let reminder = Duty::LapsedReminder { days: 14 };
        assert!(
            matches!(reminder.verdict(None), Verdict::NotNeeded(_)),
            "a held-back miss has no task: it stays on its owner's held-back list"
        );
        assert_eq!(reminder.verdict(Some(&task(false, false, false))), Verdict::Do);
        assert!(matches!(
            reminder.verdict(Some(&task(false, true, false))),
            Verdict::NotNeeded(_)
        ));
        assert!(matches!(
            reminder.verdict(Some(&task(false, false, true))),
            Verdict::NotNeeded(_)
        ));
    }

    #[test]
    fn duty_keys_keep_their_stored_form() {
        assert_eq!(Duty::TaskOverSla.key_part(), "task_over_sla");
        assert_eq!(Duty::TaskToLead.key_part(), "task_to_lead");
        assert_eq!(Duty::LapsedReminder { days: 30 }.key_part(), "reminder_30d");
    }
}
