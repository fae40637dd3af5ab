//! From judgements to the rows `milepost discover` prints: per milestone, per
//! segment and overall, per tenure and over both.

use std::collections::BTreeMap;

use milepost_domain::discovery::{cumulative_by_month, Class, Cohorts, Comparison, Ratio};
use milepost_domain::{Segment, Tenure};
use serde::Serialize;

use super::evaluate::{Candidate, Judgement};
use super::input::{AccountRecord, CohortSplit, Outcome};

/// One milestone in one scope.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    pub milestone: String,
    pub name: String,
    /// A segment, or `all`.
    pub segment: &'static str,
    /// `first_year`, `multi_year`, or `all`.
    pub tenure: &'static str,
    #[serde(flatten)]
    pub comparison: Comparison,
    /// Cumulative achievement rate by the end of months 1–12, per cohort (for the chart).
    #[serde(skip)]
    pub renewed_by_month: [f64; 12],
    #[serde(skip)]
    pub churned_by_month: [f64; 12],
}

impl Row {
    pub fn is_overall(&self) -> bool {
        self.segment == "all" && self.tenure == "all"
    }
}

#[derive(Default)]
struct Tally {
    cohorts: Cohorts,
    renewed_days: Vec<u32>,
    churned_days: Vec<u32>,
}

/// The rows of every milestone, sorted by ratio (unbounded first, rows
/// without a ratio last), then milestone, segment and tenure.
pub fn rows(accounts: &[AccountRecord], candidates: &[Candidate], judgements: &[Judgement]) -> Vec<Row> {
    // (milestone, segment, tenure); `None` is "all".
    type Scope = (String, Option<Segment>, Option<Tenure>);
    let mut tallies: BTreeMap<Scope, Tally> = BTreeMap::new();
    // A milestone with several definitions goes by the name of its first.
    let mut names: BTreeMap<&str, &str> = BTreeMap::new();
    for c in candidates {
        names.entry(&c.id).or_insert(&c.name);
    }
    for j in judgements {
        let account = &accounts[j.account as usize];
        let candidate = &candidates[j.candidate as usize];
        let tenure = Tenure::from_year(account.tenure_year);
        for segment in [Some(account.segment), None] {
            for tenure in [Some(tenure), None] {
                let tally = tallies.entry((candidate.id.clone(), segment, tenure)).or_default();
                let (n, achieved, days) = match account.outcome {
                    Outcome::Renewed => (
                        &mut tally.cohorts.renewed_n,
                        &mut tally.cohorts.renewed_achieved,
                        &mut tally.renewed_days,
                    ),
                    Outcome::Churned => (
                        &mut tally.cohorts.churned_n,
                        &mut tally.cohorts.churned_achieved,
                        &mut tally.churned_days,
                    ),
                };
                *n += 1;
                if let Some(day) = j.achieved_on_day {
                    *achieved += 1;
                    days.push(day);
                }
            }
        }
    }
    let mut rows: Vec<Row> = tallies
        .into_iter()
        .map(|((milestone, segment, tenure), t)| Row {
            name: names.get(milestone.as_str()).copied().unwrap_or_default().to_string(),
            segment: segment.map_or("all", Segment::as_str),
            tenure: tenure.map_or("all", Tenure::as_str),
            comparison: Comparison::new(t.cohorts, &t.renewed_days, &t.churned_days),
            renewed_by_month: cumulative_by_month(t.cohorts.renewed_n, &t.renewed_days),
            churned_by_month: cumulative_by_month(t.cohorts.churned_n, &t.churned_days),
            milestone,
        })
        .collect();
    rows.sort_by(|a, b| {
        let key = |r: &Row| r.comparison.ratio.map_or(f64::NEG_INFINITY, Ratio::sort_key);
        key(b)
            .total_cmp(&key(a))
            .then_with(|| a.milestone.cmp(&b.milestone))
            .then_with(|| scope_order(a.segment).cmp(&scope_order(b.segment)))
            .then_with(|| scope_order(a.tenure).cmp(&scope_order(b.tenure)))
    });
    rows
}

/// `all` before the parts, the parts in their usual order.
fn scope_order(scope: &str) -> usize {
    ["all", "enterprise", "mid_market", "smb", "first_year", "multi_year"]
        .iter()
        .position(|s| *s == scope)
        .unwrap_or(usize::MAX)
}

fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "–".to_string(), |r| format!("{:.1}%", r * 100.0))
}

/// A ratio as people read it: two decimals, `unbounded`, or `–` when there is none.
pub fn ratio(r: Option<Ratio>) -> String {
    r.map_or_else(|| "–".to_string(), |r| r.to_string())
}

/// A ratio's interval as people read it, `–` when there is none.
pub fn ratio_interval(ci: Option<(f64, Ratio)>) -> String {
    ci.map_or_else(|| "–".to_string(), |(lo, hi)| format!("{lo:.2}–{hi}"))
}

/// A field or column named for the renewal cohorts, named for `cohorts`:
/// `renewed_n` is `expanded_n` comparing expansion.
fn field_name(name: &str, cohorts: CohortSplit) -> String {
    let (first, second) = cohorts.names();
    if let Some(rest) = name.strip_prefix("renewed_") {
        format!("{first}_{rest}")
    } else if let Some(rest) = name.strip_prefix("churned_") {
        format!("{second}_{rest}")
    } else if name == CohortSplit::Renewal.risk_name() {
        cohorts.risk_name().to_string()
    } else {
        name.to_string()
    }
}

/// A row as JSON (`serde_json::to_value`) with its fields named for `cohorts`.
pub fn relabel(row: serde_json::Value, cohorts: CohortSplit) -> serde_json::Value {
    match row {
        serde_json::Value::Object(fields) => fields
            .into_iter()
            .map(|(name, value)| (field_name(&name, cohorts), value))
            .collect(),
        other => other,
    }
}

/// The table on stdout.
pub fn render_table(rows: &[Row], cohorts: CohortSplit) -> String {
    let (first, second) = cohorts.names();
    let (first, second) = (first.replace('_', " "), second.replace('_', " "));
    let header = [
        "milestone",
        "segment",
        "tenure",
        first.as_str(),
        second.as_str(),
        "ratio",
        "95% CI",
        "class",
        "risk if missed",
        "diverges",
    ];
    let mut cells: Vec<[String; 10]> = Vec::new();
    for r in rows {
        let c = &r.comparison;
        let small = if c.small_cohort { "*" } else { "" };
        cells.push([
            r.milestone.clone(),
            r.segment.to_string(),
            r.tenure.to_string(),
            format!("{}/{} {}", c.renewed_achieved, c.renewed_n, percent(c.renewed_rate)),
            format!("{}/{} {}", c.churned_achieved, c.churned_n, percent(c.churned_rate)),
            format!("{}{small}", ratio(c.ratio)),
            ratio_interval(c.ratio_ci),
            c.class.map_or("–", Class::as_str).to_string(),
            c.churn_risk_if_missed
                .map_or_else(|| "–".to_string(), |r| format!("{r}×")),
            c.divergence_month
                .map_or_else(|| "–".to_string(), |m| format!("month {m}")),
        ]);
    }
    let mut widths = header.map(|h| h.chars().count());
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            let pad = w - cell.chars().count();
            // Text left, figures right.
            if i < 3 || i == 7 {
                out.push_str(cell);
                out.push_str(&" ".repeat(pad));
            } else {
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            }
            out.push_str("  ");
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(&header.map(String::from));
    for row in &cells {
        out.push_str(&line(row));
    }
    if rows.iter().any(|r| r.comparison.small_cohort) {
        out.push_str(&format!(
            "* a cohort has fewer than {} accounts: read its ratio with its interval\n",
            milepost_domain::discovery::SMALL_COHORT
        ));
    }
    if cohorts == CohortSplit::Expansion {
        out.push_str(
            "risk if missed: how much likelier an account that missed the milestone was to renew without expanding\n",
        );
    }
    out
}

/// `--format csv`: the JSON fields as columns; an interval is `low..high`.
pub fn render_csv(rows: &[Row], cohorts: CohortSplit) -> crate::error::Result<String> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let header = [
        "milestone",
        "name",
        "segment",
        "tenure",
        "renewed_n",
        "renewed_achieved",
        "churned_n",
        "churned_achieved",
        "renewed_rate",
        "renewed_rate_ci",
        "churned_rate",
        "churned_rate_ci",
        "ratio",
        "ratio_ci",
        "class",
        "churn_risk_if_missed",
        "divergence_month",
        "small_cohort",
    ];
    out.write_record(header.map(|h| field_name(h, cohorts)))?;
    let number = |x: Option<f64>| x.map(|x| x.to_string()).unwrap_or_default();
    let ratio = |r: Option<Ratio>| match r {
        Some(Ratio::Finite(x)) => x.to_string(),
        Some(Ratio::Unbounded) => "unbounded".to_string(),
        None => String::new(),
    };
    let interval = |ci: Option<(f64, f64)>| ci.map(|(lo, hi)| format!("{lo}..{hi}")).unwrap_or_default();
    for r in rows {
        let c = &r.comparison;
        out.write_record([
            r.milestone.clone(),
            r.name.clone(),
            r.segment.to_string(),
            r.tenure.to_string(),
            c.renewed_n.to_string(),
            c.renewed_achieved.to_string(),
            c.churned_n.to_string(),
            c.churned_achieved.to_string(),
            number(c.renewed_rate),
            interval(c.renewed_rate_ci),
            number(c.churned_rate),
            interval(c.churned_rate_ci),
            ratio(c.ratio),
            c.ratio_ci
                .map(|(lo, hi)| format!("{lo}..{}", ratio(Some(hi))))
                .unwrap_or_default(),
            c.class.map(|k| format!("{k:?}").to_lowercase()).unwrap_or_default(),
            ratio(c.churn_risk_if_missed),
            c.divergence_month.map(|m| m.to_string()).unwrap_or_default(),
            c.small_cohort.to_string(),
        ])?;
    }
    String::from_utf8(out.into_inner()?).map_err(|e| crate::DiscoverError::Output(e.into()))
}
