//! Renewal outcomes: what a customer decided when its contract came up, from
//! a `group` call's `renewal_outcome` trait or `milepost renewals import`.
//! What the report and `milepost discover` compare milestones against.

use std::fmt;

use crate::Timestamp;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// What the customer decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RenewalDecision {
    Renewed,
    Churned,
    /// Renewed for more.
    Expanded,
    /// Renewed for less.
    Contracted,
}

impl RenewalDecision {
    pub const ALL: [RenewalDecision; 4] = [
        RenewalDecision::Renewed,
        RenewalDecision::Churned,
        RenewalDecision::Expanded,
        RenewalDecision::Contracted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RenewalDecision::Renewed => "renewed",
            RenewalDecision::Churned => "churned",
            RenewalDecision::Expanded => "expanded",
            RenewalDecision::Contracted => "contracted",
        }
    }

    /// The names as senders write them, whatever their case or surrounding space.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// Whether the customer stayed (renewed, expanded or contracted).
    pub fn retained(self) -> bool {
        self != RenewalDecision::Churned
    }

    /// For error messages: `renewed, churned, expanded or contracted`.
    pub fn expected() -> &'static str {
        "renewed, churned, expanded or contracted"
    }
}

impl fmt::Display for RenewalDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One renewal decision of an account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewalOutcome {
    pub decision_date: NaiveDate,
    pub outcome: RenewalDecision,
    /// ARR after the decision, where the sender gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arr_after: Option<u64>,
}

/// The most outcomes one account keeps (one a renewal, so decades): what
/// bounds the profile's size. The oldest go first.
pub const MAX_RENEWALS: usize = 50;

/// What recording an outcome did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// New for its decision date.
    Added,
    /// Another outcome for the same date was replaced: the latest word stands.
    Replaced,
    /// Exactly this was recorded already: nothing changed.
    Unchanged,
}

/// Records `outcome` in `renewals` (see `Account::record_renewal`): one per
/// decision date, in date order, the latest word for a date standing, at
/// most `MAX_RENEWALS`.
/// Whether a renewal decided on `decision` settles the ARR at risk of a miss
/// announced at `missed_at`, as of `at`: decided since the miss, by then.
/// The report and the leader's list of lapsed misses both ask this.
pub fn settles(decision: NaiveDate, missed_at: Timestamp, at: Timestamp) -> bool {
    decision >= missed_at.date_naive() && decision <= at.date_naive()
}

pub fn record(renewals: &mut Vec<RenewalOutcome>, outcome: RenewalOutcome) -> Recorded {
    match renewals.binary_search_by_key(&outcome.decision_date, |r| r.decision_date) {
        Ok(i) if renewals[i] == outcome => Recorded::Unchanged,
        Ok(i) => {
            renewals[i] = outcome;
            Recorded::Replaced
        }
        Err(i) => {
            renewals.insert(i, outcome);
            if renewals.len() > MAX_RENEWALS {
                renewals.remove(0);
            }
            Recorded::Added
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn outcome(day: u32, outcome: RenewalDecision) -> RenewalOutcome {
        RenewalOutcome {
            decision_date: date(2027, 1, day),
            outcome,
            arr_after: None,
        }
    }

    #[test]
    fn one_outcome_per_decision_date_in_date_order_and_the_latest_word_stands() {
        let mut a = Vec::new();
        assert_eq!(record(&mut a, outcome(20, RenewalDecision::Renewed)), Recorded::Added);
        assert_eq!(record(&mut a, outcome(3, RenewalDecision::Churned)), Recorded::Added);
        assert_eq!(
            record(&mut a, outcome(20, RenewalDecision::Renewed)),
            Recorded::Unchanged,
            "a redelivery changes nothing"
        );
        let expanded = RenewalOutcome {
            arr_after: Some(30_000),
            ..outcome(20, RenewalDecision::Expanded)
        };
        assert_eq!(record(&mut a, expanded.clone()), Recorded::Replaced);
        let dates: Vec<_> = a.iter().map(|r| r.decision_date).collect();
        assert_eq!(dates, [date(2027, 1, 3), date(2027, 1, 20)]);
        assert_eq!(a.last(), Some(&expanded));
    }

    #[test]
    fn an_account_keeps_its_latest_outcomes_only() {
        let mut a = Vec::new();
        for n in 0..(MAX_RENEWALS as u32 + 5) {
            let day = date(2000, 1, 1) + chrono::Duration::days(i64::from(n) * 365);
            record(
                &mut a,
                RenewalOutcome {
                    decision_date: day,
                    outcome: RenewalDecision::Renewed,
                    arr_after: None,
                },
            );
        }
        assert_eq!(a.len(), MAX_RENEWALS);
        assert_eq!(a[0].decision_date, date(2000, 1, 1) + chrono::Duration::days(5 * 365));
    }

    #[test]
    fn decisions_parse_as_senders_write_them() {
        assert_eq!(RenewalDecision::parse(" Churned "), Some(RenewalDecision::Churned));
        assert_eq!(RenewalDecision::parse("EXPANDED"), Some(RenewalDecision::Expanded));
        assert_eq!(RenewalDecision::parse("lost"), None);
        assert!(!RenewalDecision::Churned.retained() && RenewalDecision::Contracted.retained());
    }
}
