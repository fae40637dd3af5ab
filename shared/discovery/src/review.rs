//! `--review`: the annual look at a map in use. Its milestones whose ratio
//! has fallen below 1.5 no longer tell renewals from churn; candidates above
//! 2.0 that it lacks probably should be in it.

use milepost_domain::discovery::Ratio;
pub use milepost_domain::map_review::Verdict;
use milepost_domain::MilestoneMap;
use serde::Serialize;

use super::report::Row;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    /// The reviewed map's scope.
    pub segment: &'static str,
    pub tenure: &'static str,
    pub milestone: String,
    pub name: String,
    pub verdict: Verdict,
    pub ratio: Option<Ratio>,
    pub ratio_ci: Option<(f64, Ratio)>,
    pub renewed_n: u64,
    pub churned_n: u64,
    pub small_cohort: bool,
}

/// Findings for each map in `reviewed`, judged on the rows of its own scope
/// (its segment or `all`, its tenure or `all`): weak milestones first.
pub fn review(reviewed: &[MilestoneMap], rows: &[Row]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for map in reviewed {
        let segment = map.segment.as_str();
        let tenure = map.tenure.map_or("all", |t| t.as_str());
        for row in rows.iter().filter(|r| r.segment == segment && r.tenure == tenure) {
            let Some(verdict) = Verdict::of(map.milestone(&row.milestone).is_some(), row.comparison.class) else {
                continue;
            };
            let c = &row.comparison;
            findings.push(Finding {
                segment,
                tenure,
                milestone: row.milestone.clone(),
                name: row.name.clone(),
                verdict,
                ratio: c.ratio,
                ratio_ci: c.ratio_ci,
                renewed_n: c.renewed_n,
                churned_n: c.churned_n,
                small_cohort: c.small_cohort,
            });
        }
    }
    // Rows come sorted by ratio; keep that order within each verdict.
    findings.sort_by_key(|f| f.verdict != Verdict::Weak);
    findings
}

pub fn render_table(findings: &[Finding]) -> String {
    if findings.is_empty() {
        return "review: no milestone in the reviewed map(s) is weak (ratio < 1.5), and no candidate outside them is strong (> 2.0)\n".to_string();
    }
    let mut out = String::from("review:\n");
    for f in findings {
        let ratio = super::report::ratio(f.ratio);
        let ci = match f.ratio_ci {
            Some(_) => format!(", 95% CI {}", super::report::ratio_interval(f.ratio_ci)),
            None => String::new(),
        };
        let small = if f.small_cohort { ", small cohort" } else { "" };
        let what = match f.verdict {
            Verdict::Weak => "weak: ratio under 1.5, reconsider it",
            Verdict::StrongCandidate => "strong candidate not in the map: ratio over 2.0, consider adding it",
        };
        out.push_str(&format!(
            "  {scope}  {id}  {what} (ratio {ratio}{ci}; {r} renewed, {c} churned{small})\n",
            scope = if f.tenure == "all" {
                f.segment.to_string()
            } else {
                format!("{} {}", f.segment, f.tenure)
            },
            id = f.milestone,
            r = f.renewed_n,
            c = f.churned_n,
        ));
    }
    out
}
