//! A heads-up before a miss: when a milestone is due within its map's
//! `warn_before_days` and its progress is behind the pace its due date asks
//! for, its owner hears of it once (and, where the map says so, the
//! customer's champion) while there is still time to act.
//!
//! Pace is linear over the milestone's time: with 60% of the days from the
//! contract start to the due date gone, 60% of the criterion should be done
//! (`Progress::fraction`). A milestone on pace is looked at again when the
//! pace would pass its progress, so the sweep reads it only when it can be
//! behind (see `TrackedMilestone::heads_up_index_at`).
//!
//! The same index carries an expansion milestone's opportunity, once it is
//! announced, until its owner is told of it: the sweep reads it at once (it
//! is kept under the milestone's start) and emails them.

use crate::{MilestoneStatus, Timestamp, TrackedMilestone};
use chrono::Duration;

/// How far behind a milestone is: shares of its criterion, 0 to 1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BehindPace {
    /// Done so far (`Progress::fraction`).
    pub done: f64,
    /// What the time gone asks for.
    pub expected: f64,
}

/// What the sweep should do about a milestone's heads-up now.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HeadsUpCheck {
    /// Behind pace inside the window: send the heads-up.
    Behind(BehindPace),
    /// An expansion milestone's opportunity, announced, that its owner has
    /// not been told of: tell them.
    TellOpportunity,
    /// Not now: look again at this instant (the window opens, or the pace
    /// would pass the progress made so far).
    LookAgainAt(Timestamp),
    /// No heads-up for this milestone, ever again (none asked for, already
    /// sent, reached, or due already: the playbook takes it from there).
    Never,
}

/// The least time before the sweep looks at an on-pace milestone again, so
/// one sweep never reads it twice.
const LOOK_AGAIN_AFTER: Duration = Duration::minutes(1);

impl TrackedMilestone {
    /// The time the heads-up index keeps this milestone under: when its
    /// window opens, or later when the sweep said to look again. `None`
    /// when it is out of the index: no rule, done, not pending, or the time
    /// would come only at or after the due date. An expansion milestone's
    /// opportunity is kept under the milestone's start (due at once) from
    /// its announcement until its owner is told.
    pub fn heads_up_index_at(&self) -> Option<Timestamp> {
        if self.opportunity().is_some() {
            return self.opportunity_untold().then(|| self.starts_at());
        }
        if self.status() != MilestoneStatus::Pending || self.heads_up_done() {
            return None;
        }
        self.heads_up_key_time().filter(|at| *at < self.due_at())
    }

    /// The heads-up index's time for this milestone, whatever its status:
    /// what an index entry written earlier is found under.
    pub fn heads_up_key_time(&self) -> Option<Timestamp> {
        if self.opportunity().is_some() {
            return Some(self.starts_at());
        }
        let rule = self.heads_up()?;
        let opens = self.due_at() - Duration::days(i64::from(rule.days_before));
        Some(self.heads_up_look_at().map_or(opens, |at| at.max(opens)))
    }

    /// Whether the heads-up is due at `now` (see `HeadsUpCheck`).
    pub fn heads_up_check(&self, now: Timestamp, licensed_seats: u32) -> HeadsUpCheck {
        if self.opportunity_untold() {
            return HeadsUpCheck::TellOpportunity;
        }
        let Some(rule) = self.heads_up() else {
            return HeadsUpCheck::Never;
        };
        if self.status() != MilestoneStatus::Pending || self.heads_up_done() || now >= self.due_at() {
            return HeadsUpCheck::Never;
        }
        let opens = self.due_at() - Duration::days(i64::from(rule.days_before));
        if now < opens {
            return HeadsUpCheck::LookAgainAt(opens);
        }
        let span = (self.due_at() - self.starts_at()).num_seconds();
        if span <= 0 {
            return HeadsUpCheck::Never;
        }
        let gone = (now - self.starts_at()).num_seconds().clamp(0, span);
        let expected = gone as f64 / span as f64;
        let done = self.progress().fraction(self.criterion(), licensed_seats);
        if done < expected {
            return HeadsUpCheck::Behind(BehindPace { done, expected });
        }
        // On pace: behind once the time gone passes the share done.
        let at = self.starts_at() + Duration::seconds((done * span as f64).ceil() as i64);
        HeadsUpCheck::LookAgainAt(at.max(now + LOOK_AGAIN_AFTER))
    }

    /// An opportunity announced on the bus whose owner has not heard of it.
    /// Told only once announced, so the email and the bus agree on when it
    /// opened (a late older event moves it until then).
    fn opportunity_untold(&self) -> bool {
        self.announced_reached() && self.opportunity().is_some_and(|o| !o.owner_told)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::account;
    use crate::{Criterion, HeadsUpRule, MilestoneDef, Observation, Playbook};

    fn milestone(min: u32, rule: Option<HeadsUpRule>) -> TrackedMilestone {
        let account = account("acme", crate::fixtures::date(2026, 1, 5));
        let def = MilestoneDef {
            expansion: None,
            moved_by: None,
            name: "Three reports shared".into(),
            heads_up: rule,
            playbook: Playbook {
                outreach: "Share a report".into(),
                csm: "Call them".into(),
                leadership: "Escalate".into(),
                sponsor: None,
                guides: vec![],
            },
            ..crate::fixtures::milestone_def(
                "reports",
                30,
                Criterion::EventCount {
                    event: "report.shared".into(),
                    min,
                    window_days: None,
                },
            )
        };
        let map = crate::fixtures::map_of(vec![def.clone()]);
        TrackedMilestone::new(&account, &map, &def)
    }

    fn share(m: &mut TrackedMilestone, id: &str, day: i64) {
        let obs = Observation {
            at: m.starts_at() + Duration::days(day),
            event_id: id.into(),
            user_id: None,
            value: None,
        };
        m.observe(&obs, 10).unwrap();
    }

    const FIVE_DAYS: Option<HeadsUpRule> = Some(HeadsUpRule {
        days_before: 5,
        champion: true,
    });

    #[test]
    fn a_milestone_behind_pace_inside_its_window_is_due_a_heads_up() {
        let mut m = milestone(3, FIVE_DAYS);
        let start = m.starts_at();
        let day = |d: i64| start + Duration::days(d);
        // Before the window: look again when it opens (five days before day 30).
        assert_eq!(m.heads_up_check(day(10), 10), HeadsUpCheck::LookAgainAt(day(25)));
        assert_eq!(m.heads_up_index_at(), Some(day(25)));
        // Two of three shared by day 26, with 26/30 of the time gone: behind.
        share(&mut m, "r1", 3);
        share(&mut m, "r2", 12);
        match m.heads_up_check(day(26), 10) {
            HeadsUpCheck::Behind(p) => {
                assert!((p.done - 2.0 / 3.0).abs() < 1e-9, "{p:?}");
                assert!((p.expected - 26.0 / 30.0).abs() < 1e-9, "{p:?}");
            }
            other => panic!("{other:?}"),
        }
        // Sent: never again, and out of the index.
        m.heads_up_done = true;
        assert_eq!(m.heads_up_check(day(27), 10), HeadsUpCheck::Never);
        assert_eq!(m.heads_up_index_at(), None);
    }

    #[test]
    fn a_milestone_on_pace_is_looked_at_again_when_the_pace_passes_it() {
        let mut m = milestone(
            2,
            Some(HeadsUpRule {
                days_before: 20,
                champion: false,
            }),
        );
        share(&mut m, "r1", 1);
        let now = m.starts_at() + Duration::days(12);
        // Half done with 12/30 gone: on pace until day 15.
        assert_eq!(
            m.heads_up_check(now, 10),
            HeadsUpCheck::LookAgainAt(m.starts_at() + Duration::days(15))
        );
        m.heads_up_look_at = Some(m.starts_at() + Duration::days(15));
        assert_eq!(m.heads_up_index_at(), Some(m.starts_at() + Duration::days(15)));
    }

    #[test]
    fn no_heads_up_without_a_rule_after_the_due_date_or_once_reached() {
        let m = milestone(1, None);
        assert_eq!(
            m.heads_up_check(m.due_at() - Duration::days(1), 10),
            HeadsUpCheck::Never
        );
        assert_eq!(m.heads_up_index_at(), None);

        let mut m = milestone(1, FIVE_DAYS);
        assert_eq!(m.heads_up_check(m.due_at(), 10), HeadsUpCheck::Never);
        // A look-again time at or past the due date leaves the index.
        m.heads_up_look_at = Some(m.due_at());
        assert_eq!(m.heads_up_index_at(), None);

        let mut m = milestone(1, FIVE_DAYS);
        share(&mut m, "r1", 2);
        assert!(m.status().is_reached());
        assert_eq!(
            m.heads_up_check(m.due_at() - Duration::days(1), 10),
            HeadsUpCheck::Never
        );
        assert_eq!(m.heads_up_index_at(), None);
        assert_eq!(m.heads_up_key_time(), Some(m.due_at() - Duration::days(5)));
    }
}
