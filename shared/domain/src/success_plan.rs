//! A customer's success plan: the outcomes they agreed with their CSM. Each
//! is measured (a numeric property of one product event, e.g.
//! `outcome.measured`'s `cost_savings_pct`), runs from a baseline to a target
//! by a date, with checkpoints on the way (given, or the straight line from
//! baseline to target at the end of each quarter of the plan), and names who
//! agreed to it on the customer's side. A plan is kept as versions: a
//! change is a new version, never an edit of the last.

use chrono::{Datelike, Months, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::account_id::AccountId;
use crate::field_error::FieldError;
use crate::numbers::storable;
use crate::Timestamp;

/// Most outcomes one plan holds: a plan is what a customer agreed to, not a
/// metrics catalogue.
pub const MAX_OUTCOMES: usize = 10;
/// Most checkpoints one outcome holds.
pub const MAX_CHECKPOINTS: usize = 24;
/// Longest text of an outcome (its title, who agreed), in bytes.
pub const MAX_TEXT: usize = 200;

/// A point on the way: by `on`, the measure at `value` (or better).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub on: NaiveDate,
    pub value: f64,
}

/// Where the measure comes from: the numeric `property` of `event`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Measure {
    pub event: String,
    pub property: String,
}

/// One outcome the customer agreed to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgreedOutcome {
    /// Its id within the plan (`logistics_costs`).
    pub id: String,
    /// In the customer's words ("Lower annual logistics costs").
    pub title: String,
    pub measure: Measure,
    /// What the values count (`%`, `hours`, `USD`).
    pub unit: String,
    pub baseline: f64,
    pub target: f64,
    pub starts_on: NaiveDate,
    pub by: NaiveDate,
    /// Given checkpoints; none: the straight line, quarter by quarter.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checkpoints: Vec<Checkpoint>,
    /// Who agreed to it on the customer's side ("Dana Chen, VP Operations").
    pub agreed_by: String,
}

/// Whether the outcome is reached by the measure going up or down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
}

impl AgreedOutcome {
    pub fn direction(&self) -> Direction {
        if self.target >= self.baseline {
            Direction::Up
        } else {
            Direction::Down
        }
    }

    /// Whether `value` is at or past `goal` in the outcome's direction.
    pub fn meets(&self, value: f64, goal: f64) -> bool {
        match self.direction() {
            Direction::Up => value >= goal,
            Direction::Down => value <= goal,
        }
    }

    /// Its checkpoints, in date order, the target on `by` last: the given
    /// ones, or the straight line from baseline to target at the end of
    /// each quarter (three months) of the plan.
    pub fn checkpoints(&self) -> Vec<Checkpoint> {
        let mut points = if self.checkpoints.is_empty() {
            let span = (self.by - self.starts_on).num_days().max(1) as f64;
            (1..)
                .map(|q| self.starts_on.checked_add_months(Months::new(3 * q)))
                .take_while(|d| d.is_some_and(|d| d < self.by))
                .flatten()
                .map(|on| Checkpoint {
                    on,
                    value: self.baseline
                        + (self.target - self.baseline) * ((on - self.starts_on).num_days() as f64 / span),
                })
                .collect()
        } else {
            self.checkpoints.clone()
        };
        points.retain(|c| c.on < self.by);
        points.sort_by_key(|c| c.on);
        points.push(Checkpoint {
            on: self.by,
            value: self.target,
        });
        points
    }

    /// The first checkpoint on or after `on`: the pace the outcome is held to then.
    pub fn next_checkpoint(&self, on: NaiveDate) -> Option<Checkpoint> {
        self.checkpoints().into_iter().find(|c| c.on >= on)
    }

    /// The last checkpoint whose date has come by `on`, and whether `value`
    /// (the latest measure) meets it: `None` before the first.
    pub fn behind_pace(&self, value: Option<f64>, on: NaiveDate) -> Option<(Checkpoint, bool)> {
        let due = self.checkpoints().into_iter().rev().find(|c| c.on <= on)?;
        let behind = value.is_none_or(|v| !self.meets(v, due.value));
        Some((due, behind))
    }

    /// The plan as the customer agreed it, in one sentence for emails and
    /// pages: "Lower annual logistics costs: from 100 USD to 70 USD by
    /// 31 Dec 2026, agreed with Dana Chen, VP Operations".
    pub fn words(&self) -> String {
        format!(
            "{}: from {} to {} by {}, agreed with {}",
            self.title,
            amount(self.baseline, &self.unit),
            amount(self.target, &self.unit),
            self.by.format("%-d %b %Y"),
            self.agreed_by
        )
    }
}

/// A value with its unit, as people write it ("5%", "70 USD", "12.5 hours").
pub fn amount(value: f64, unit: &str) -> String {
    let number = if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    };
    match unit {
        "" => number,
        "%" => format!("{number}%"),
        unit => format!("{number} {unit}"),
    }
}

/// One version of an account's plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SuccessPlan {
    pub account_id: AccountId,
    /// 1 for the first; each change is the next.
    pub version: u32,
    pub outcomes: Vec<AgreedOutcome>,
    pub set_at: Timestamp,
    /// Who set it on our side (a person's address, or `import:<file>`).
    pub set_by: String,
}

impl SuccessPlan {
    pub fn outcome(&self, id: &str) -> Option<&AgreedOutcome> {
        self.outcomes.iter().find(|o| o.id == id)
    }

    /// The outcome a milestone measured by `event`'s `property` speaks to:
    /// the one measured so, else (a milestone measured otherwise, or by
    /// nothing: `None`) the plan's first.
    pub fn outcome_for(&self, measured: Option<(&str, &str)>) -> Option<&AgreedOutcome> {
        measured
            .and_then(|(event, property)| {
                self.outcomes
                    .iter()
                    .find(|o| o.measure.event == event && o.measure.property == property)
            })
            .or_else(|| self.outcomes.first())
    }
}

fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn is_event_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic())
}

const STORABLE: &str = "must be a number from 1e-130 to 9.99e125 in magnitude, or 0";

/// Every problem of `outcomes` as a plan, each with the field at fault
/// (`outcomes[1].target`); none when it may be kept.
pub fn check(outcomes: &[AgreedOutcome]) -> Vec<FieldError> {
    let mut problems = Vec::new();
    if outcomes.is_empty() {
        problems.push(FieldError::new("outcomes", "a plan needs at least one outcome"));
    }
    if outcomes.len() > MAX_OUTCOMES {
        problems.push(FieldError::new(
            "outcomes",
            format!("at most {MAX_OUTCOMES} outcomes to a plan, not {}", outcomes.len()),
        ));
    }
    for (i, o) in outcomes.iter().enumerate() {
        let field = |name: &str| format!("outcomes[{i}].{name}");
        let mut bad = |name: &str, message: String| problems.push(FieldError::new(&field(name), message));
        if !is_id(&o.id) {
            bad(
                "id",
                format!("{:?}: lowercase letters, digits and _ only, at most 64", o.id),
            );
        } else if outcomes[..i].iter().any(|p| p.id == o.id) {
            bad("id", format!("{:?} is in the plan twice", o.id));
        }
        for (name, text) in [("title", &o.title), ("agreed_by", &o.agreed_by)] {
            if text.trim().is_empty() {
                bad(name, "must not be empty".into());
            } else if text.len() > MAX_TEXT || text.chars().any(char::is_control) {
                bad(name, format!("at most {MAX_TEXT} bytes, one line"));
            }
        }
        if !is_event_name(&o.measure.event) {
            bad("event", format!("{:?} is not an event name", o.measure.event));
        }
        if !is_event_name(&o.measure.property) {
            bad("property", format!("{:?} is not a property name", o.measure.property));
        }
        if o.unit.len() > 16 || o.unit.chars().any(char::is_control) {
            bad("unit", "at most 16 bytes".into());
        }
        for (name, v) in [("baseline", o.baseline), ("target", o.target)] {
            if !storable(v) {
                bad(name, STORABLE.into());
            }
        }
        if o.baseline == o.target {
            bad("target", "must differ from the baseline".into());
        }
        if o.by <= o.starts_on {
            bad("by", format!("{} is not after starts_on {}", o.by, o.starts_on));
        } else if o.by.year() > o.starts_on.year() + 10 {
            bad("by", "at most ten years after starts_on".into());
        }
        if o.checkpoints.len() > MAX_CHECKPOINTS {
            bad("checkpoints", format!("at most {MAX_CHECKPOINTS}"));
        }
        for (j, c) in o.checkpoints.iter().enumerate() {
            let at = format!("checkpoints[{j}]");
            if c.on <= o.starts_on || c.on >= o.by {
                bad(&at, format!("{} is not between starts_on and by", c.on));
            } else if !storable(c.value) {
                bad(&at, format!("its value: {STORABLE}"));
            } else if o.checkpoints[..j].iter().any(|p| p.on == c.on) {
                bad(&at, format!("{} is given twice", c.on));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome() -> AgreedOutcome {
        AgreedOutcome {
            id: "logistics_costs".into(),
            title: "Lower annual logistics costs".into(),
            measure: Measure {
                event: "outcome.measured".into(),
                property: "cost_savings_pct".into(),
            },
            unit: "%".into(),
            baseline: 0.0,
            target: 30.0,
            starts_on: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            by: NaiveDate::from_ymd_opt(2027, 1, 1).unwrap(),
            checkpoints: Vec::new(),
            agreed_by: "Dana Chen, VP Operations".into(),
        }
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn checkpoints_are_the_straight_line_each_quarter_unless_given() {
        let points = outcome().checkpoints();
        let dates: Vec<NaiveDate> = points.iter().map(|c| c.on).collect();
        assert_eq!(
            dates,
            [day(2026, 4, 1), day(2026, 7, 1), day(2026, 10, 1), day(2027, 1, 1)]
        );
        // 90 of 365 days: 30% × 90/365.
        assert!((points[0].value - 30.0 * 90.0 / 365.0).abs() < 1e-9);
        assert_eq!(points[3].value, 30.0, "the target, on its date");
        // Given: "5% by month 3 of a 30% annual goal".
        let given = AgreedOutcome {
            checkpoints: vec![Checkpoint {
                on: day(2026, 4, 1),
                value: 5.0,
            }],
            ..outcome()
        };
        assert_eq!(
            given.checkpoints(),
            [
                Checkpoint {
                    on: day(2026, 4, 1),
                    value: 5.0
                },
                Checkpoint {
                    on: day(2027, 1, 1),
                    value: 30.0
                }
            ]
        );
    }

    #[test]
    fn behind_pace_is_the_last_checkpoint_come_against_the_latest_measure() {
        let o = AgreedOutcome {
            checkpoints: vec![Checkpoint {
                on: day(2026, 4, 1),
                value: 5.0,
            }],
            ..outcome()
        };
        assert_eq!(o.behind_pace(Some(1.0), day(2026, 3, 31)), None, "no checkpoint yet");
        // "expected savings of 5% within the first 3 months, but only 2.5% achieved".
        let (due, behind) = o.behind_pace(Some(2.5), day(2026, 4, 2)).unwrap();
        assert_eq!((due.value, behind), (5.0, true));
        assert!(
            !o.behind_pace(Some(5.0), day(2026, 4, 2)).unwrap().1,
            "5% by its day is on pace"
        );
        assert!(
            o.behind_pace(None, day(2026, 4, 2)).unwrap().1,
            "nothing measured is behind"
        );
        // Lower is better when the target is below the baseline (hours to close the books).
        let down = AgreedOutcome {
            baseline: 10.0,
            target: 3.0,
            unit: "days".into(),
            checkpoints: vec![],
            ..outcome()
        };
        assert_eq!(down.direction(), Direction::Down);
        let (due, behind) = down.behind_pace(Some(8.0), day(2026, 4, 2)).unwrap();
        assert!(due.value < 10.0 && due.value > 8.0 && !behind, "{due:?}");
    }

    #[test]
    fn a_plan_is_worded_as_agreed() {
        assert_eq!(
            outcome().words(),
            "Lower annual logistics costs: from 0% to 30% by 1 Jan 2027, agreed with Dana Chen, VP Operations"
        );
        assert_eq!(amount(12.5, "hours"), "12.5 hours");
        assert_eq!(amount(70.0, "USD"), "70 USD");
    }

    #[test]
    fn every_problem_is_named_with_its_field() {
        assert!(check(&[outcome()]).is_empty());
        let bad = AgreedOutcome {
            id: "Logistics Costs".into(),
            title: " ".into(),
            target: 0.0,
            by: day(2025, 1, 1),
            checkpoints: vec![Checkpoint {
                on: day(2028, 1, 1),
                value: 1.0,
            }],
            ..outcome()
        };
        let fields: Vec<String> = check(&[outcome(), bad, outcome()])
            .into_iter()
            .map(|p| p.field)
            .collect();
        assert_eq!(
            fields,
            [
                "outcomes[1].id",
                "outcomes[1].title",
                "outcomes[1].target",
                "outcomes[1].by",
                "outcomes[1].checkpoints[0]",
                "outcomes[2].id"
            ]
        );
        assert_eq!(check(&[])[0].field, "outcomes");
    }
}
