//! `traits.success_plan`: a `group` call setting the account's success plan,
//! an array of the outcomes the customer agreed, in the import file's
//! terms (`milepost outcomes import`):
//!
//! ```json
//! "success_plan": [{"id": "logistics_costs", "title": "Lower annual logistics costs",
//!   "event": "outcome.measured", "property": "cost_savings_pct", "unit": "%",
//!   "baseline": 0, "target": 30, "starts_on": "2026-01-05", "by": "2027-01-05",
//!   "checkpoints": [{"on": "2026-04-05", "value": 5}], "agreed_by": "Dana Chen, VP Operations"}]
//! ```
//!
//! The whole plan, each time: it replaces the one standing (kept as the next
//! version unless nothing changed). Every problem names its field
//! (`traits.success_plan[1].target`); the first refuses the call, before
//! anything is written.

use chrono::NaiveDate;
use serde_json::{Map, Value};

use milepost_domain::success_plan::check;
use milepost_domain::{AgreedOutcome, Checkpoint, FieldError, Measure};

const FIELD: &str = "traits.success_plan";
const KEYS: [&str; 11] = [
    "id",
    "title",
    "event",
    "property",
    "unit",
    "baseline",
    "target",
    "starts_on",
    "by",
    "checkpoints",
    "agreed_by",
];

/// The plan `value` states, or the first problem with it.
pub(super) fn parse(value: &Value) -> Result<Vec<AgreedOutcome>, FieldError> {
    let Value::Array(items) = value else {
        return Err(FieldError::new(FIELD, "must be an array of agreed outcomes"));
    };
    let outcomes = items
        .iter()
        .enumerate()
        .map(|(i, item)| outcome(i, item))
        .collect::<Result<Vec<_>, _>>()?;
    match check(&outcomes).into_iter().next() {
        // The domain names `outcomes[i].x`; the sender wrote `traits.success_plan[i].x`.
        Some(problem) => Err(FieldError::new(
            &problem.field.replacen("outcomes", FIELD, 1),
            problem.message,
        )),
        None => Ok(outcomes),
    }
}

fn outcome(i: usize, item: &Value) -> Result<AgreedOutcome, FieldError> {
    let at = |name: &str| format!("{FIELD}[{i}].{name}");
    let Value::Object(o) = item else {
        return Err(FieldError::new(&format!("{FIELD}[{i}]"), "must be an object"));
    };
    if let Some(unknown) = o.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(FieldError::new(
            &at(unknown),
            format!("is not a field of an agreed outcome (expected: {})", KEYS.join(", ")),
        ));
    }
    let text = |name: &str| -> Result<String, FieldError> {
        match o.get(name) {
            Some(Value::String(s)) => Ok(s.trim().to_string()),
            None | Some(Value::Null) => Err(FieldError::new(&at(name), "is required")),
            Some(_) => Err(FieldError::new(&at(name), "must be a string")),
        }
    };
    let number = |name: &str| number_of(o.get(name), &at(name));
    let date = |name: &str| date_of(o.get(name), &at(name));
    let checkpoints = match o.get("checkpoints") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(points)) => points
            .iter()
            .enumerate()
            .map(|(j, p)| checkpoint(p, &at(&format!("checkpoints[{j}]"))))
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(FieldError::new(
                &at("checkpoints"),
                "must be an array of {\"on\": date, \"value\": number}",
            ))
        }
    };
    Ok(AgreedOutcome {
        id: text("id")?,
        title: text("title")?,
        measure: Measure {
            event: text("event")?,
            property: text("property")?,
        },
        unit: match o.get("unit") {
            None | Some(Value::Null) => String::new(),
            Some(_) => text("unit")?,
        },
        baseline: number("baseline")?,
        target: number("target")?,
        starts_on: date("starts_on")?,
        by: date("by")?,
        checkpoints,
        agreed_by: text("agreed_by")?,
    })
}

fn checkpoint(p: &Value, at: &str) -> Result<Checkpoint, FieldError> {
    let Value::Object(p) = p else {
        return Err(FieldError::new(at, "must be {\"on\": date, \"value\": number}"));
    };
    let on = date_of(p.get("on"), &format!("{at}.on"))?;
    let value = number_of(p.get("value"), &format!("{at}.value"))?;
    Ok(Checkpoint { on, value })
}

fn number_of(v: Option<&Value>, at: &str) -> Result<f64, FieldError> {
    match v {
        Some(Value::Number(n)) => n.as_f64().ok_or_else(|| FieldError::new(at, "must be a number")),
        Some(Value::String(s)) => s.trim().parse().map_err(|_| FieldError::new(at, "must be a number")),
        None | Some(Value::Null) => Err(FieldError::new(at, "is required")),
        Some(_) => Err(FieldError::new(at, "must be a number")),
    }
}

fn date_of(v: Option<&Value>, at: &str) -> Result<NaiveDate, FieldError> {
    match v {
        Some(Value::String(s)) => NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map_err(|_| FieldError::new(at, "must be a date (YYYY-MM-DD)")),
        None | Some(Value::Null) => Err(FieldError::new(at, "is required")),
        Some(_) => Err(FieldError::new(at, "must be a date (YYYY-MM-DD)")),
    }
}

/// Helper for `parse_traits`: the plan the traits set, if they set one.
pub(super) fn of_traits(traits: &Map<String, Value>) -> Result<Option<Vec<AgreedOutcome>>, FieldError> {
    match traits.get("success_plan") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => parse(v).map(Some),
    }
}
