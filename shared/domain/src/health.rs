//! Account health, 0–100, with a 30-day trend and the factors behind it.
//!
//! The formula, so a CSM can check it by hand:
//!
//! ```text
//! score = 100 × Σ_c W_c·v_c / Σ_c W_c    over the components c that apply
//!
//! milestones  W = 60   v = (Σ_i w_i·credit_i + w̄) / (Σ_i w_i + w̄) over milestones due by
//!                      then (or reached early); w_i = phase weight × ARR weight
//!                      (phase weight: onboarding 1, adoption 1.5, value 2, renewal 2);
//!                      credit: reached on time 1, reached late 0.6, overdue 0;
//!                      w̄ = the mean w_i: the benefit of the doubt worth one milestone.
//! activity    W = 25   v = 1 if last active ≤ 2 days ago, falling linearly to 0
//!                      at 30 days; never active: 0.
//! outcomes    W = 15   v = mean over the account's agreed outcomes (its success plan:
//!                      each outcome's first checkpoint not reached yet, else its
//!                      last) or, without a plan, the map's metric-threshold
//!                      milestones, of
//!                      1 − max(0, share of its time elapsed − progress towards target)
//!                      (only when the account tracks any).
//! trend = score today − score 30 days ago (for accounts younger than that, at
//!         the end of their first week), the same formula on the state as it was then.
//! ```
//! Each component's shortfall is split into factors (a missed milestone, days
//! of silence, an outcome behind target) with the points it costs, so the score
//! explains itself.

use chrono::Duration;
use serde::{Deserialize, Serialize};

use super::activity::AccountActivity;
use super::tracked::AsOf;
use super::{Criterion, Progress, Timestamp, TrackedMilestone};

const MILESTONE_WEIGHT: f64 = 60.0;
const ACTIVITY_WEIGHT: f64 = 25.0;
const OUTCOME_WEIGHT: f64 = 15.0;
const LATE_CREDIT: f64 = 0.6;
const FRESH_DAYS: f64 = 2.0;
const SILENT_DAYS: f64 = 30.0;
pub const TREND_DAYS: i64 = 30;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Factor {
    pub description: String,
    /// Points this factor costs the score (negative) or, for the summary, earns.
    pub points: i32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub score: u8,
    /// Change over the last 30 days.
    pub trend: i32,
    /// The largest contributors, biggest first.
    pub factors: Vec<Factor>,
}

impl Health {
    pub fn trend_word(&self) -> &'static str {
        trend_word(self.trend)
    }
}

/// A 30-day change in words: five points either way is a trend.
pub fn trend_word(trend: i32) -> &'static str {
    match trend {
        t if t >= 5 => "improving",
        t if t <= -5 => "declining",
        _ => "steady",
    }
}

/// Scores an account at `now` with its trend and top factors. The trend
/// compares with 30 days ago, or with the end of the first week for an
/// account younger than that (before it, there is nothing to compare with).
pub fn health(
    milestones: &[TrackedMilestone],
    activity: &AccountActivity,
    licensed_seats: u32,
    now: Timestamp,
) -> Health {
    // A growth milestone not reached is no sign of risk: expansion ones do not count.
    let milestones: Vec<&TrackedMilestone> = milestones.iter().filter(|m| m.expansion().is_none()).collect();
    let milestones = milestones.as_slice();
    let (score, mut factors) = score_at(milestones, activity, licensed_seats, now);
    let first_week = milestones
        .iter()
        .map(|m| m.starts_at())
        .min()
        .map(|s| s + Duration::days(7));
    let then = first_week.map_or(now - Duration::days(TREND_DAYS), |w| {
        (now - Duration::days(TREND_DAYS)).max(w).min(now)
    });
    let (before, _) = score_at(milestones, activity, licensed_seats, then);
    factors.sort_by(|a, b| a.points.cmp(&b.points).then(a.description.cmp(&b.description)));
    factors.truncate(3);
    Health {
        score: score.round() as u8,
        trend: score.round() as i32 - before.round() as i32,
        factors,
    }
}

fn score_at(
    milestones: &[&TrackedMilestone],
    activity: &AccountActivity,
    licensed_seats: u32,
    at: Timestamp,
) -> (f64, Vec<Factor>) {
    let outcome_milestones = outcome_milestones(milestones, at);
    let total_weight = MILESTONE_WEIGHT
        + ACTIVITY_WEIGHT
        + if outcome_milestones.is_empty() {
            0.0
        } else {
            OUTCOME_WEIGHT
        };
    let scale = |component_weight: f64| 100.0 * component_weight / total_weight;
    let mut factors = Vec::new();

    // Milestones, with the benefit of the doubt worth one average milestone so a
    // single early miss does not read as a lost account.
    let weight = |m: &TrackedMilestone| m.phase().health_weight() * m.arr_weight().max(0.01);
    let prior = if milestones.is_empty() {
        1.0
    } else {
        milestones.iter().copied().map(weight).sum::<f64>() / milestones.len() as f64
    };
    let mut weight_sum = prior;
    let mut credited = prior;
    let mut shortfalls = Vec::new();
    for m in milestones {
        let w = weight(m);
        let credit = match m.status_as_of(at) {
            AsOf::NotDue => continue,
            AsOf::OnTime => 1.0,
            AsOf::Late => LATE_CREDIT,
            AsOf::Overdue => 0.0,
        };
        weight_sum += w;
        credited += w * credit;
        if credit < 1.0 {
            shortfalls.push((m, w * (1.0 - credit)));
        }
    }
    let milestone_value = credited / weight_sum;
    for (m, lost) in shortfalls {
        let verb = if m.reached_at().is_some_and(|r| r <= at) {
            "reached late"
        } else {
            "overdue"
        };
        factors.push(Factor {
            description: format!("{} {verb}", m.name()),
            points: -(scale(MILESTONE_WEIGHT) * lost / weight_sum).round() as i32,
        });
    }

    let (activity_value, activity_factors) = activity_part(activity, at, scale(ACTIVITY_WEIGHT));
    factors.extend(activity_factors);
    let (outcome_value, outcome_factors) = outcome_part(&outcome_milestones, licensed_seats, at, scale(OUTCOME_WEIGHT));
    factors.extend(outcome_factors);

    let score = scale(MILESTONE_WEIGHT) * milestone_value
        + scale(ACTIVITY_WEIGHT) * activity_value
        + if outcome_milestones.is_empty() {
            0.0
        } else {
            scale(OUTCOME_WEIGHT) * outcome_value
        };
    factors.retain(|f| f.points != 0);
    (score.clamp(0.0, 100.0), factors)
}

/// Activity recency: 1 while fresh, falling to 0 once silent; `points`: the
/// part of the score it is worth.
fn activity_part(activity: &AccountActivity, at: Timestamp, points: f64) -> (f64, Vec<Factor>) {
    let mut factors = Vec::new();
    let activity_value = match activity.last_active_as_of(at) {
        None => 0.0,
        Some(day) => {
            let idle = (at.date_naive() - day).num_days() as f64;
            (1.0 - (idle - FRESH_DAYS).max(0.0) / (SILENT_DAYS - FRESH_DAYS)).clamp(0.0, 1.0)
        }
    };
    if activity_value < 1.0 {
        let description = match activity.last_active_as_of(at) {
            None => "No product activity yet".to_string(),
            Some(day) => format!("No product activity for {} days", (at.date_naive() - day).num_days()),
        };
        factors.push(Factor {
            description,
            points: -(points * (1.0 - activity_value)).round() as i32,
        });
    }
    (activity_value, factors)
}

/// What the outcome part reads at `at`: the account's own plan when it has
/// one, each agreed outcome by its first checkpoint not reached by then
/// (else its last: all reached); the map's metric thresholds when it has none.
fn outcome_milestones<'m>(milestones: &[&'m TrackedMilestone], at: Timestamp) -> Vec<&'m TrackedMilestone> {
    let mut by_outcome: std::collections::BTreeMap<(&str, &str), Vec<&'m TrackedMilestone>> = Default::default();
    for &m in milestones {
        if let Some(c) = m.checkpoint() {
            by_outcome.entry((&c.milestone, &c.outcome)).or_default().push(m);
        }
    }
    if by_outcome.is_empty() {
        return milestones
            .iter()
            .copied()
            .filter(|m| matches!(m.criterion(), Criterion::MetricThreshold { .. }))
            .collect();
    }
    by_outcome
        .into_values()
        .filter_map(|mut points| {
            points.sort_by_key(|m| m.due_at());
            let open = points.iter().find(|m| m.reached_at().is_none_or(|r| r > at));
            open.or(points.last()).copied()
        })
        .collect()
}

/// Outcomes: progress towards each target against the pace its due date
/// asks for; `points`: the part of the score they are worth.
fn outcome_part(
    outcome_milestones: &[&TrackedMilestone],
    licensed_seats: u32,
    at: Timestamp,
    points: f64,
) -> (f64, Vec<Factor>) {
    let mut factors = Vec::new();
    let mut outcome_value = 0.0;
    for m in outcome_milestones {
        let reached = if m.reached_at().is_some_and(|r| r <= at) {
            1.0
        } else {
            match m.progress() {
                Progress::Metric { best: Some(b), .. } if b.at <= at => {
                    m.progress().fraction(m.criterion(), licensed_seats)
                }
                _ => 0.0,
            }
        };
        let span = (m.due_at() - m.starts_at()).num_seconds().max(1) as f64;
        let expected = ((at - m.starts_at()).num_seconds() as f64 / span).clamp(0.0, 1.0);
        // The documented pace: behind by the share of its time gone less the
        // share of its target reached, and never less than nothing.
        let behind = (expected - reached).max(0.0);
        let share = 1.0 / outcome_milestones.len() as f64;
        outcome_value += (1.0 - behind) * share;
        let lost = -(points * behind * share).round() as i32;
        if lost < 0 {
            factors.push(Factor {
                description: format!(
                    "{}: {:.0}% of the target so far, with {:.0}% of the time to its due date gone",
                    m.name(),
                    reached * 100.0,
                    expected * 100.0
                ),
                points: lost,
            });
        }
    }
    (outcome_value, factors)
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::{Account, AccountId, MilestoneDef, ProductEvent};

    fn account() -> Account {
        crate::fixtures::account("a", crate::fixtures::date(2026, 1, 1))
    }

    fn milestones(criteria: &[(&str, u32, Criterion)]) -> Vec<TrackedMilestone> {
        let defs: Vec<MilestoneDef> = criteria
            .iter()
            .map(|(id, due, c)| MilestoneDef {
                expansion: None,
                moved_by: None,
                name: format!("Milestone {id}"),
                arr_weight: Some(0.2),
                discovered_weight: None,
                ..crate::fixtures::milestone_def(id, *due, c.clone())
            })
            .collect();
        let map = crate::fixtures::map_of(defs.clone());
        defs.iter()
            .map(|d| TrackedMilestone::new(&account(), &map, d))
            .collect()
    }

    fn day(n: i64) -> Timestamp {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap() + Duration::days(n)
    }

    fn active_on(days: &[i64]) -> AccountActivity {
        let mut a = AccountActivity::new(AccountId::new("a"));
        for d in days {
            a.record(&ProductEvent {
                id: format!("e{d}"),
                account_id: AccountId::new("a"),
                event: "x".into(),
                timestamp: day(*d),
                user_id: None,
                properties: Default::default(),
            });
        }
        a
    }

    fn count(event: &str) -> Criterion {
        Criterion::EventCount {
            event: event.into(),
            min: 1,
            window_days: None,
        }
    }

    #[test]
    fn an_active_account_with_nothing_due_is_fully_healthy() {
        let ms = milestones(&[("m1", 30, count("x"))]);
        let h = health(&ms, &active_on(&[9, 10]), 10, day(10));
        assert_eq!(h.score, 100);
        assert!(h.factors.is_empty());
    }

    #[test]
    fn an_overdue_milestone_costs_points_and_is_named_as_the_top_factor() {
        let ms = milestones(&[("m1", 10, count("x")), ("m2", 40, count("y"))]);
        let h = health(&ms, &active_on(&[19, 20]), 10, day(20));
        // Milestones are 60 of 85 points (no outcomes tracked). One overdue against the
        // one-milestone benefit of the doubt halves them: 100 × (30 + 25) / 85.
        assert_eq!(h.score, 65);
        assert_eq!(h.factors[0].description, "Milestone m1 overdue");
        assert_eq!(h.factors[0].points, -35);
        // A second overdue milestone costs more.
        let worse = health(&ms, &active_on(&[49, 50]), 10, day(50));
        assert_eq!(worse.score, (100.0 * (60.0 / 3.0 + 25.0) / 85.0_f64).round() as u8);
    }

    #[test]
    fn silence_lowers_the_score_and_the_trend_shows_the_decline() {
        let ms = milestones(&[("m1", 60, count("x"))]);
        let busy = health(&ms, &active_on(&[1, 2, 3, 4, 5]), 10, day(5));
        let quiet = health(&ms, &active_on(&[1, 2, 3, 4, 5]), 10, day(40));
        assert_eq!(busy.score, 100);
        assert!(quiet.score < busy.score);
        assert!(quiet.trend < 0, "{quiet:?}");
        assert_eq!(quiet.trend_word(), "declining");
        assert!(
            quiet.factors[0]
                .description
                .starts_with("No product activity for 35 days"),
            "{:?}",
            quiet.factors
        );
    }

    #[test]
    fn reaching_a_milestone_late_earns_partial_credit() {
        let mut ms = milestones(&[("m1", 10, count("x"))]);
        ms[0].reached_at = Some(day(12));
        ms[0].status = crate::MilestoneStatus::Recovered;
        let h = health(&ms, &active_on(&[20]), 10, day(20));
        let milestone_value = (0.2 * LATE_CREDIT + 0.2) / 0.4;
        assert_eq!(
            h.score,
            (100.0 * (60.0 * milestone_value + 25.0) / 85.0_f64).round() as u8
        );
        assert_eq!(h.factors[0].description, "Milestone m1 reached late");
    }

    #[test]
    fn outcome_progress_counts_against_the_pace_of_its_due_date() {
        let target = Criterion::MetricThreshold {
            event: "o".into(),
            property: "p".into(),
            op: crate::CompareOp::Gte,
            value: 10.0,
        };
        let mut ms = milestones(&[("goal", 90, target)]);
        let obs = crate::Observation {
            at: day(5),
            event_id: "m".into(),
            user_id: None,
            value: Some(5.0),
        };
        ms[0].observe(&obs, 10).unwrap();
        // Half way to the target on day 5 of 90 is ahead of pace.
        assert_eq!(health(&ms, &active_on(&[5]), 10, day(5)).score, 100);
        // Still half way at noon on day 63 (63.5 of 90 days, 71% of the time,
        // gone): 21 points behind the pace, 15 × 0.21 ≈ 3 lost.
        let h = health(&ms, &active_on(&[63]), 10, day(63));
        assert_eq!(h.score, 97);
        assert_eq!(
            h.factors[0].description,
            "Milestone goal: 50% of the target so far, with 71% of the time to its due date gone"
        );
        assert_eq!(h.factors[0].points, -3);
        // Reaching the target earns it all back.
        let done = crate::Observation {
            at: day(61),
            event_id: "n".into(),
            user_id: None,
            value: Some(10.0),
        };
        ms[0].observe(&done, 10).unwrap();
        assert_eq!(health(&ms, &active_on(&[61]), 10, day(61)).score, 100);
    }

    /// Issue 36: with a success plan, the outcome part reads the customer's
    /// own checkpoints, each outcome by its next one, not the map's default
    /// threshold.
    #[test]
    fn the_outcome_part_reads_the_accounts_own_plan_by_its_next_checkpoint() {
        use crate::fixtures::date;
        use crate::{AgreedOutcome, Checkpoint, Measure, SuccessPlan};
        let mut planned = account();
        planned.success_plan = Some(SuccessPlan {
            account_id: planned.id.clone(),
            version: 1,
            outcomes: vec![AgreedOutcome {
                id: "costs".into(),
                title: "Lower costs".into(),
                measure: Measure {
                    event: "outcome.measured".into(),
                    property: "costs".into(),
                },
                unit: "%".into(),
                baseline: 0.0,
                target: 30.0,
                starts_on: date(2026, 1, 1),
                by: date(2027, 1, 1),
                checkpoints: vec![
                    Checkpoint {
                        on: date(2026, 4, 1),
                        value: 10.0,
                    },
                    Checkpoint {
                        on: date(2026, 7, 1),
                        value: 20.0,
                    },
                ],
                agreed_by: "Dana".into(),
            }],
            set_at: day(0),
            set_by: "maya@vendor.example".into(),
        });
        let threshold = Criterion::MetricThreshold {
            event: "outcome.measured".into(),
            property: "default_savings".into(),
            op: crate::CompareOp::Gte,
            value: 5.0,
        };
        let mut ms = milestones(&[("savings", 90, threshold)]);
        let mut def = crate::fixtures::milestone_def("on_pace", 0, Criterion::AgreedOutcome);
        def.name = "On pace".into();
        let map = crate::fixtures::map_of(vec![def.clone()]);
        ms.extend(TrackedMilestone::checkpoints_of(&planned, &map, &def));
        let measure = |ms: &mut Vec<TrackedMilestone>, value: f64, on: i64| {
            let event = ProductEvent {
                id: format!("m{on}"),
                account_id: AccountId::new("a"),
                event: "outcome.measured".into(),
                timestamp: day(on),
                user_id: None,
                properties: serde_json::json!({"costs": value}).as_object().unwrap().clone(),
            };
            for m in ms.iter_mut() {
                if let Some(obs) = m.criterion().observe(&event) {
                    m.observe(&obs, 10).unwrap();
                }
            }
        };
        measure(&mut ms, 2.0, 50);
        let h = health(&ms, &active_on(&[59]), 10, day(60));
        let outcome_factors: Vec<&str> = h
            .factors
            .iter()
            .map(|f| f.description.as_str())
            .filter(|d| d.contains("target"))
            .collect();
        assert_eq!(
            outcome_factors,
            ["On pace: Lower costs, 10% by 1 Apr 2026: 20% of the target so far, with 66% of the time to its due date gone"],
            "{h:?}"
        );
        measure(&mut ms, 12.0, 70);
        let h = health(&ms, &active_on(&[149]), 10, day(150));
        assert!(
            h.factors
                .iter()
                .any(|f| f.description.starts_with("On pace: Lower costs, 20% by 1 Jul 2026")),
            "April reached, July is the pace now: {h:?}"
        );
        assert!(
            !h.factors
                .iter()
                .any(|f| f.description.starts_with("Milestone savings:")),
            "the map's default threshold gave way to the plan: {h:?}"
        );
    }
}
