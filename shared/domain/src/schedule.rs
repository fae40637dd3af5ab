//! When each escalation step runs. Every step gets an absolute timestamp,
//! computed once from the miss time and the reader's timezone, so the
//! workflow waits on timestamps (tests compress time by overriding waits) and
//! no email lands at night.

use chrono::{Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Timelike, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::Timestamp;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlaybookTiming {
    /// Offsets of the three day-1 touches (email, in-app, follow-up) from the day-1 start.
    pub day1_offsets_minutes: [u32; 3],
    /// Local hour the working day starts; day-1 touches never start before it.
    pub day_start_hour: u32,
    /// Local hour after which day 1 moves to the next day, so all touches fit in working hours.
    pub latest_day1_start_hour: u32,
    /// Local hour for the day-3 and day-5 steps.
    pub later_stage_hour: u32,
    /// Day (counting day 1 as the first) of the CSM task and of the leadership escalation.
    pub csm_day: u32,
    pub leadership_day: u32,
    /// Days after the leadership escalation that leadership has to act before
    /// the escalation lapses.
    pub lapse_after_days: u32,
    /// Count days as business days, skipping Saturdays and Sundays.
    pub business_days: bool,
}

impl Default for PlaybookTiming {
    fn default() -> Self {
        PlaybookTiming {
            day1_offsets_minutes: [0, 120, 300],
            day_start_hour: 9,
            latest_day1_start_hour: 12,
            later_stage_hour: 10,
            csm_day: 3,
            leadership_day: 5,
            lapse_after_days: 2,
            business_days: false,
        }
    }
}

/// Absolute times of every playbook step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationSchedule {
    pub outreach_email_at: Timestamp,
    pub in_app_at: Timestamp,
    pub follow_up_at: Timestamp,
    pub csm_task_at: Timestamp,
    pub leadership_at: Timestamp,
    /// When the escalation ends as lapsed if the customer has not caught up.
    pub lapses_at: Timestamp,
}

impl EscalationSchedule {
    pub fn compute(missed_at: Timestamp, tz: Tz, timing: &PlaybookTiming) -> Self {
        let local = missed_at.with_timezone(&tz);
        let today = local.date_naive();
        let working_today = !timing.business_days || is_weekday(today);
        let day1_start =
            if working_today && local.hour() >= timing.day_start_hour && local.hour() < timing.latest_day1_start_hour {
                missed_at
            } else {
                let day = if working_today && local.hour() < timing.day_start_hour {
                    today
                } else {
                    next_day(today, timing.business_days)
                };
                at_local(tz, day, timing.day_start_hour)
            };
        let day1 = day1_start.with_timezone(&tz).date_naive();
        let offset = |i: usize| day1_start + Duration::minutes(i64::from(timing.day1_offsets_minutes[i]));
        let nth_day = |n: u32| {
            let mut d = day1;
            for _ in 1..n {
                d = next_day(d, timing.business_days);
            }
            at_local(tz, d, timing.later_stage_hour)
        };
        EscalationSchedule {
            outreach_email_at: offset(0),
            in_app_at: offset(1),
            follow_up_at: offset(2),
            csm_task_at: nth_day(timing.csm_day),
            leadership_at: nth_day(timing.leadership_day),
            lapses_at: nth_day(timing.leadership_day + timing.lapse_after_days),
        }
    }

    /// The schedule of a vendor-side miss: nothing goes to the customer, so
    /// day 1 is its owner's task, opened when day 1 starts; day 5 and the
    /// lapse stay where they were.
    pub fn vendor_side(self) -> Self {
        let day1 = self.outreach_email_at;
        EscalationSchedule {
            in_app_at: day1,
            follow_up_at: day1,
            csm_task_at: day1,
            ..self
        }
    }
}

pub(crate) fn is_weekday(d: NaiveDate) -> bool {
    !matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

fn next_day(d: NaiveDate, business_days: bool) -> NaiveDate {
    let mut next = d.succ_opt().expect("date in range");
    while business_days && !is_weekday(next) {
        next = next.succ_opt().expect("date in range");
    }
    next
}

/// `hour`:00 local time on `day`; in a DST gap, the first valid instant after it.
pub(crate) fn at_local(tz: Tz, day: NaiveDate, hour: u32) -> Timestamp {
    let mut naive = day.and_time(NaiveTime::from_hms_opt(hour, 0, 0).expect("valid hour"));
    loop {
        if let Some(t) = tz.from_local_datetime(&naive).earliest() {
            return t.to_utc();
        }
        naive += Duration::minutes(30);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn utc(s: &str) -> Timestamp {
        s.parse::<chrono::DateTime<Utc>>().unwrap()
    }

    #[test]
    fn a_vendor_side_miss_opens_its_task_when_day_one_starts_and_keeps_day_five() {
        let customer =
            EscalationSchedule::compute(utc("2026-03-02T18:30:00Z"), chrono_tz::UTC, &PlaybookTiming::default());
        let vendor = customer.clone().vendor_side();
        assert_eq!(
            vendor.csm_task_at,
            utc("2026-03-03T09:00:00Z"),
            "day 1's working day start"
        );
        assert_eq!(
            (vendor.in_app_at, vendor.follow_up_at),
            (vendor.outreach_email_at, vendor.outreach_email_at)
        );
        assert_eq!(
            (vendor.leadership_at, vendor.lapses_at),
            (customer.leadership_at, customer.lapses_at)
        );
    }

    #[test]
    fn a_miss_during_working_hours_starts_day_one_at_once() {
        let s = EscalationSchedule::compute(
            utc("2026-03-02T10:15:00Z"),
            chrono_tz::Europe::London,
            &PlaybookTiming::default(),
        );
        assert_eq!(s.outreach_email_at, utc("2026-03-02T10:15:00Z"));
        assert_eq!(s.in_app_at, utc("2026-03-02T12:15:00Z"));
        assert_eq!(s.follow_up_at, utc("2026-03-02T15:15:00Z"));
        assert_eq!(s.csm_task_at, utc("2026-03-04T10:00:00Z"));
        assert_eq!(s.leadership_at, utc("2026-03-06T10:00:00Z"));
    }

    #[test]
    fn a_miss_at_night_waits_for_the_readers_morning() {
        // 02:00 UTC is 21:00 the day before in New York.
        let s = EscalationSchedule::compute(
            utc("2026-03-03T02:00:00Z"),
            chrono_tz::America::New_York,
            &PlaybookTiming::default(),
        );
        assert_eq!(s.outreach_email_at, utc("2026-03-03T14:00:00Z")); // 09:00 EST
        for t in [
            s.outreach_email_at,
            s.in_app_at,
            s.follow_up_at,
            s.csm_task_at,
            s.leadership_at,
        ] {
            let h = t.with_timezone(&chrono_tz::America::New_York).hour();
            assert!((9..18).contains(&h), "{t} is {h}:00 local");
        }
    }

    #[test]
    fn business_days_skip_the_weekend() {
        let timing = PlaybookTiming {
            business_days: true,
            ..PlaybookTiming::default()
        };
        // Friday 2026-03-06 at 16:00 UTC (after the latest day-1 start).
        let s = EscalationSchedule::compute(utc("2026-03-06T16:00:00Z"), chrono_tz::UTC, &timing);
        assert_eq!(s.outreach_email_at, utc("2026-03-09T09:00:00Z")); // Monday
        assert_eq!(s.csm_task_at, utc("2026-03-11T10:00:00Z")); // Wednesday
        assert_eq!(s.leadership_at, utc("2026-03-13T10:00:00Z")); // Friday
        let calendar =
            EscalationSchedule::compute(utc("2026-03-06T16:00:00Z"), chrono_tz::UTC, &PlaybookTiming::default());
        assert_eq!(calendar.outreach_email_at, utc("2026-03-07T09:00:00Z")); // Saturday
    }

    #[test]
    fn steps_are_in_order() {
        let tz = chrono_tz::Asia::Tokyo;
        for hour in 0..24 {
            let s = EscalationSchedule::compute(
                utc("2026-06-10T00:00:00Z") + Duration::hours(hour),
                tz,
                &PlaybookTiming::default(),
            );
            assert!(s.outreach_email_at < s.in_app_at);
            assert!(s.in_app_at < s.follow_up_at);
            assert!(s.follow_up_at < s.csm_task_at);
            assert!(s.csm_task_at < s.leadership_at);
            assert!(s.leadership_at < s.lapses_at);
        }
    }
}
