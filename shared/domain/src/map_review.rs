//! The quarterly map review the leadership digest carries on the first
//! Monday of each quarter: what the kept discovery says of the maps in use
//! (milestones that no longer tell renewals from churn, strong candidates
//! the maps lack), and the simulator's comparison kept for proposed maps
//! (`milepost maps simulate --keep`). Plain values; the digest renders them.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::discovery::{Class, KeptDiscovery, Ratio};
use crate::report::Week;
use crate::MilestoneMap;

/// What the review says of one milestone (the same rule as `milepost
/// discover --review`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// In the map, ratio under 1.5: it barely tells renewals from churn.
    Weak,
    /// Not in the map, ratio over 2.0: it probably belongs in it.
    StrongCandidate,
}

impl Verdict {
    pub fn of(in_map: bool, class: Option<Class>) -> Option<Verdict> {
        match (in_map, class) {
            (true, Some(Class::Weak)) => Some(Verdict::Weak),
            (false, Some(Class::Strong)) => Some(Verdict::StrongCandidate),
            _ => None,
        }
    }
}

/// One finding of the review of a kept discovery against the maps in use.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MapFinding {
    /// The reviewed map's scope.
    pub segment: String,
    pub tenure: String,
    pub milestone: String,
    pub name: String,
    pub verdict: Verdict,
    pub ratio: Option<Ratio>,
    pub renewed_n: u64,
    pub churned_n: u64,
    pub small_cohort: bool,
}

/// A milestone of a map the kept discovery has no judged line for in the
/// map's scope (added since, or another file's ids): the review cannot
/// speak for it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Unjudged {
    pub segment: String,
    pub tenure: String,
    pub milestone: String,
    pub name: String,
}

/// `kept`'s findings for each of `maps` (in their scopes' order), judged on
/// the lines of the map's own scope: weak milestones first; and the maps'
/// milestones it did not judge (an agreed outcome's checkpoints never are).
pub fn review(kept: &KeptDiscovery, maps: &[MilestoneMap]) -> (Vec<MapFinding>, Vec<Unjudged>) {
    let mut maps: Vec<&MilestoneMap> = maps.iter().collect();
    maps.sort_by_key(|m| m.discovery_scope());
    let mut findings = Vec::new();
    let mut unjudged = Vec::new();
    for map in maps {
        let (segment, tenure) = map.discovery_scope();
        for def in map
            .milestones
            .iter()
            .filter(|d| !matches!(d.criterion, crate::Criterion::AgreedOutcome) && d.expansion.is_none())
        {
            let judged = kept
                .lines
                .iter()
                .any(|l| l.milestone == def.id && l.segment == segment && l.tenure == tenure && l.class.is_some());
            if !judged {
                unjudged.push(Unjudged {
                    segment: segment.to_string(),
                    tenure: tenure.to_string(),
                    milestone: def.id.clone(),
                    name: def.name.clone(),
                });
            }
        }
        for line in kept.lines.iter().filter(|l| l.segment == segment && l.tenure == tenure) {
            let Some(verdict) = Verdict::of(map.milestone(&line.milestone).is_some(), line.class) else {
                continue;
            };
            findings.push(MapFinding {
                segment: segment.to_string(),
                tenure: tenure.to_string(),
                milestone: line.milestone.clone(),
                name: line.name.clone(),
                verdict,
                ratio: line.ratio,
                renewed_n: line.renewed_n,
                churned_n: line.churned_n,
                small_cohort: line.small_cohort,
            });
        }
    }
    findings.sort_by_key(|f| f.verdict != Verdict::Weak);
    (findings, unjudged)
}

/// The quarter whose first digest goes on `week.sent_on` ("Q2 2026"): the
/// first Monday of January, April, July or October; none on other Mondays.
pub fn quarter_opened(week: &Week) -> Option<String> {
    let d = week.sent_on;
    (d.month() % 3 == 1 && d.day() <= 7).then(|| format!("Q{} {}", d.month() / 3 + 1, d.year()))
}

/// What one set of maps would have done over a replayed history, for every
/// account together or for one segment's (`milepost maps simulate`). A
/// figure added later reads as none from a comparison kept before.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Figures {
    pub accounts: u64,
    pub misses: u64,
    /// Misses whose playbook ran (the rest were the control group's).
    pub playbooks_started: u64,
    /// Emails to the customer's people: day 1's outreach and follow-up,
    /// day 5's to the executive sponsor, heads-ups to the champion.
    pub customer_emails: u64,
    pub csm_tasks: u64,
    pub csm_hours: f64,
    /// Misses whose playbook reached its day-5 leadership stage.
    pub leadership_escalations: u64,
    /// ARR at risk of the misses, as each was announced.
    pub arr_flagged: u64,
    pub churned: u64,
    /// Churned accounts with a miss due before their decision.
    pub churned_flagged: u64,
    pub renewed: u64,
    /// Renewed accounts with a miss due before their decision (false alarms).
    pub renewed_flagged: u64,
    /// Renewed accounts written to (a customer email) before their decision.
    pub renewed_contacted: u64,
    /// Of the accounts flagged before their decision, the share that churned.
    pub precision: Option<f64>,
    /// Of the churned accounts, the share flagged before their decision.
    pub recall: Option<f64>,
}

/// A simulator comparison kept for the quarterly review: the proposed maps
/// beside the maps in use, over the history replayed. The latest replaces
/// the one before.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeptComparison {
    pub kept_at: crate::Timestamp,
    /// What each run was given as its maps (`--current`, `--proposed`):
    /// the last part of each path, not where it lies on someone's machine.
    #[serde(default)]
    pub current_maps: Vec<String>,
    #[serde(default)]
    pub proposed_maps: Vec<String>,
    pub accounts: u64,
    pub from: NaiveDate,
    pub until: NaiveDate,
    pub minutes_per_task: u32,
    pub current: Figures,
    pub proposed: Figures,
}

/// What the first digest of a quarter reviews: the kept discovery's
/// findings on the maps in use, and the simulator's kept comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct QuarterlyReview {
    /// "Q2 2026".
    pub quarter: String,
    pub discovery: Option<KeptDiscovery>,
    pub findings: Vec<MapFinding>,
    /// The maps' milestones the kept discovery did not judge.
    pub unjudged: Vec<Unjudged>,
    pub comparison: Option<KeptComparison>,
    /// What could not be read (the weekly figures still go).
    pub unreadable: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn week(sent_on: NaiveDate) -> Week {
        Week {
            sent_on,
            since: sent_on - chrono::Duration::days(7),
            until: sent_on - chrono::Duration::days(1),
        }
    }

    #[test]
    fn the_first_monday_of_a_quarter_opens_it() {
        let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert_eq!(quarter_opened(&week(d(2026, 1, 5))).as_deref(), Some("Q1 2026"));
        assert_eq!(quarter_opened(&week(d(2026, 4, 6))).as_deref(), Some("Q2 2026"));
        assert_eq!(quarter_opened(&week(d(2026, 7, 6))).as_deref(), Some("Q3 2026"));
        assert_eq!(quarter_opened(&week(d(2026, 10, 5))).as_deref(), Some("Q4 2026"));
        // The second Monday of a quarter, and a Monday of its second month.
        assert_eq!(quarter_opened(&week(d(2026, 1, 12))), None);
        assert_eq!(quarter_opened(&week(d(2026, 2, 2))), None);
        // Every quarter has exactly one first Monday.
        let mondays = (0..52 * 3).map(|w| d(2025, 12, 29) + chrono::Duration::weeks(w));
        let opened: Vec<String> = mondays.filter_map(|m| quarter_opened(&week(m))).collect();
        assert_eq!(opened.len(), 12, "{opened:?}");
        let distinct: std::collections::BTreeSet<_> = opened.iter().collect();
        assert_eq!(distinct.len(), 12);
    }

    #[test]
    fn weak_milestones_of_the_map_and_strong_ones_it_lacks_are_found_in_its_scope() {
        let text = r#"{"milestones": [
            {"milestone": "first", "name": "First", "segment": "all", "tenure": "all", "renewed_n": 40, "churned_n": 12, "ratio": 1.1, "class": "weak"},
            {"milestone": "second", "name": "Second", "segment": "all", "tenure": "all", "renewed_n": 40, "churned_n": 12, "ratio": 3.0, "class": "strong"},
            {"milestone": "team", "name": "Team of three", "segment": "all", "tenure": "all", "renewed_n": 40, "churned_n": 12, "ratio": 2.6, "class": "strong"},
            {"milestone": "quiet", "name": "Quiet", "segment": "all", "tenure": "all", "renewed_n": 40, "churned_n": 12, "ratio": 1.2, "class": "weak"},
            {"milestone": "first", "name": "First", "segment": "smb", "tenure": "all", "renewed_n": 9, "churned_n": 3, "ratio": 1.0, "class": "weak", "small_cohort": true}
        ]}"#;
        let at = crate::fixtures::date(2026, 12, 1)
            .and_hms_opt(9, 0, 0)
            .unwrap()
            .and_utc();
        let kept = KeptDiscovery::from_json(text, "q3.json", at).unwrap();
        let map = crate::fixtures::map_of(vec![
            crate::fixtures::milestone_def("first", 10, crate::Criterion::Manual),
            crate::fixtures::milestone_def("second", 20, crate::Criterion::Manual),
        ]);
        let (found, unjudged) = review(&kept, &[map]);
        let said: Vec<(&str, Verdict)> = found.iter().map(|f| (f.milestone.as_str(), f.verdict)).collect();
        // "second" has a line and a class, but only a strong one in the map: nothing to say, judged.
        assert!(unjudged.is_empty(), "{unjudged:?}");
        // The smb line is not the all-segment map's scope; "quiet" is weak but in no map.
        assert_eq!(said, vec![("first", Verdict::Weak), ("team", Verdict::StrongCandidate)]);
        assert_eq!(
            (found[1].name.as_str(), found[1].ratio),
            ("Team of three", Some(Ratio::Finite(2.6)))
        );

        // A milestone added to the map since: not judged, and said to be so.
        let mut grown = crate::fixtures::map_of(vec![
            crate::fixtures::milestone_def("first", 10, crate::Criterion::Manual),
            crate::fixtures::milestone_def("new_one", 20, crate::Criterion::Manual),
        ]);
        grown.milestones[1].name = "New one".into();
        let (_, unjudged) = review(&kept, &[grown]);
        assert_eq!(
            unjudged.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(),
            ["New one"]
        );
    }
}
