//! `milepost discover --from-store`: the same statistics on Milepost's own
//! records instead of exported events. Each account with a renewal decision
//! (its latest) is a cohort member: renewed, expanded or contracted count as
//! renewed, churned as churned; or, comparing expansion (`CohortSplit::
//! Expansion`), expanded against renewed or contracted, churned in neither. Each milestone Milepost tracked for it, due
//! on or before that decision, is a candidate the account achieved when it
//! was reached by its due date — the discover definition, with the
//! milestone's own due date — on the day counted from the contract start. A
//! milestone reached late (recovered) or never was not achieved. Manual
//! milestones count too: their confirmation is their achievement, which
//! exported events cannot show.

use std::collections::HashMap;

use chrono::{Duration, NaiveTime};
use milepost_domain::{Account, AccountId, Timestamp, TrackedMilestone};

use super::evaluate::{Candidate, Judgement};
use super::input::{AccountRecord, CohortSplit};

/// What one tracked milestone leaves for the judgement: small, so 100,000 accounts fit.
struct Tracked {
    account: AccountId,
    candidate: u32,
    due_at: Timestamp,
    reached_at: Option<Timestamp>,
    /// An expansion milestone: judged up to its due date or the decision,
    /// whichever comes first (it is due a year in, after most decisions).
    expansion: bool,
}

/// Folds accounts and tracked milestones in, in any order, then `finish`es.
#[derive(Default)]
pub struct RecordsBuilder {
    accounts: Vec<AccountRecord>,
    candidates: Vec<Candidate>,
    tracked: Vec<Tracked>,
    /// Accounts without a renewal decision yet: in no cohort.
    pub undecided: usize,
    /// The two cohorts compared (renewed vs churned by default).
    pub cohorts: CohortSplit,
    /// Accounts whose decision puts them in neither (churned, under `CohortSplit::Expansion`).
    pub not_in_cohorts: usize,
    /// Only accounts with (`true`) or without (`false`) a success plan as
    /// it stands; none: every account.
    pub success_plan: Option<bool>,
    /// Accounts the `success_plan` filter left out.
    pub left_out: usize,
    /// Success plan checkpoints passed by: each is its account's own target.
    pub checkpoints_left_out: usize,
}

/// The cohorts and judgements `report::rows` takes.
pub struct Records {
    pub cohorts: CohortSplit,
    pub accounts: Vec<AccountRecord>,
    pub candidates: Vec<Candidate>,
    pub judgements: Vec<Judgement>,
    pub undecided: usize,
    /// Accounts whose decision puts them in neither cohort (`RecordsBuilder::not_in_cohorts`).
    pub not_in_cohorts: usize,
    /// Milestones due after their account's decision (or before its contract): not judged.
    pub not_judged: usize,
    /// Accounts left out by `RecordsBuilder::success_plan`.
    pub left_out: usize,
    /// Success plan checkpoints passed by (`RecordsBuilder::checkpoints_left_out`).
    pub checkpoints_left_out: usize,
}

fn midnight(day: chrono::NaiveDate) -> Timestamp {
    day.and_time(NaiveTime::MIN).and_utc()
}

/// Whole days from `from` to `to`, rounded up, at least 1 (as discover counts them).
fn day_number(from: Timestamp, to: Timestamp) -> u32 {
    ((to - from).num_seconds().max(0) as u64).div_ceil(86_400).max(1) as u32
}

impl RecordsBuilder {
    pub fn add_account(&mut self, account: &Account) {
        if self
            .success_plan
            .is_some_and(|want| account.success_plan.is_some() != want)
        {
            self.left_out += 1; // its milestones find no account, and are in no cohort
            return;
        }
        let Some(latest) = account.renewals.iter().max_by_key(|r| r.decision_date) else {
            self.undecided += 1;
            return;
        };
        let Some(outcome) = self.cohorts.cohort_of(latest.outcome) else {
            self.not_in_cohorts += 1;
            return;
        };
        self.accounts.push(AccountRecord {
            account_id: account.id.clone(),
            segment: account.segment,
            contract_start: account.contract_start,
            decision_date: latest.decision_date,
            decision: latest.outcome,
            outcome,
            arr: Some(account.arr),
            tenure_year: account.tenure_year,
            licensed_seats: Some(account.licensed_seats),
        });
    }

    pub fn add_milestone(&mut self, m: &TrackedMilestone) {
        // A success plan's checkpoint is the account's own target on its own
        // date: no cohort shares it, so there is nothing to compare.
        if m.checkpoint().is_some() {
            self.checkpoints_left_out += 1;
            return;
        }
        // A growth signal, never missed: not judged against renewal and churn.
        if m.expansion().is_some() && !self.cohorts.judges_expansion_milestones() {
            return;
        }
        // Each account's own due date judges it; the candidate's due days
        // (from the milestone's start) only describe it.
        let index = match self
            .candidates
            .iter()
            .position(|c| c.id == m.milestone_id() && &c.criterion == m.criterion())
        {
            Some(i) => i,
            None => {
                self.candidates.push(Candidate {
                    id: m.milestone_id().to_owned(),
                    name: m.name().to_owned(),
                    criterion: m.criterion().clone(),
                    due_days: day_number(m.starts_at(), m.due_at()),
                });
                self.candidates.len() - 1
            }
        };
        self.tracked.push(Tracked {
            account: m.account_id().clone(),
            candidate: index as u32,
            due_at: m.due_at(),
            reached_at: m.reached_at(),
            expansion: m.expansion().is_some(),
        });
    }

    pub fn finish(self) -> Records {
        let index: HashMap<&AccountId, usize> = self
            .accounts
            .iter()
            .enumerate()
            .map(|(i, a)| (&a.account_id, i))
            .collect();
        let mut judgements = Vec::new();
        let mut not_judged = 0;
        for t in &self.tracked {
            // Milestones of accounts with no decision are in no cohort.
            let Some(&a) = index.get(&t.account) else {
                continue;
            };
            let account = &self.accounts[a];
            let starts = midnight(account.contract_start);
            // "On or before the decision date": up to the end of that day.
            let decided = midnight(account.decision_date) + Duration::days(1) - Duration::nanoseconds(1);
            let by = match t.expansion {
                true => t.due_at.min(decided),
                false => t.due_at,
            };
            if by > decided || t.due_at < starts {
                not_judged += 1;
                continue;
            }
            judgements.push(Judgement {
                account: a as u32,
                candidate: t.candidate,
                achieved_on_day: t
                    .reached_at
                    .filter(|r| *r <= by && *r >= starts)
                    .map(|r| day_number(starts, r)),
            });
        }
        Records {
            cohorts: self.cohorts,
            accounts: self.accounts,
            candidates: self.candidates,
            judgements,
            undecided: self.undecided,
            not_in_cohorts: self.not_in_cohorts,
            not_judged,
            left_out: self.left_out,
            checkpoints_left_out: self.checkpoints_left_out,
        }
    }
}

#[cfg(test)]
mod tests {
    use milepost_domain::fixtures::{account, date};
    use milepost_domain::{MilestoneStatus, RenewalDecision, RenewalOutcome};

    use super::*;
    use crate::input::Outcome;

    const MAP: &str = "segment: all
milestones:
  - id: first
    name: First
    customer_title: First
    phase: onboarding
    due_days: 30
    owner: csm
    criterion: {kind: event_count, event: a, min: 1}
    playbook: {outreach: o, csm: c, leadership: l}
";

    #[test]
    fn on_time_is_reached_by_the_due_date_counted_in_days_from_the_contract_start() {
        let map = milepost_maps::load_map("m.yaml", MAP).unwrap();
        let mut b = RecordsBuilder::default();
        let reached = |id: &str, after_start: Option<Duration>| {
            let mut a = account(id, date(2025, 1, 6));
            a.renewals.push(RenewalOutcome {
                decision_date: date(2026, 1, 5),
                outcome: RenewalDecision::Contracted,
                arr_after: None,
            });
            let mut m = TrackedMilestone::new(&a, &map, &map.milestones[0]);
            let seeded = milepost_domain::seed::milestone(&mut m).status(MilestoneStatus::Achieved);
            if let Some(d) = after_start {
                seeded.reached(midnight(a.contract_start) + d, None);
            }
            (a, m)
        };
        let cases = [
            ("hour-one", Some(Duration::hours(1))),
            ("day-two", Some(Duration::hours(25))),
            ("late", Some(Duration::days(31))),
            ("never", None),
        ];
        for (id, at) in cases {
            let (a, m) = reached(id, at);
            // Milestones before their account: the scan's order is not promised.
            b.add_milestone(&m);
            b.add_account(&a);
        }
        b.add_account(&account("undecided", date(2025, 1, 6)));
        let records = b.finish();
        assert_eq!((records.undecided, records.not_judged), (1, 0));
        assert!(
            records.accounts.iter().all(|a| a.outcome == Outcome::Renewed),
            "contracted is retained"
        );
        let days: Vec<Option<u32>> = records.judgements.iter().map(|j| j.achieved_on_day).collect();
        assert_eq!(days, [Some(1), Some(2), None, None]);
    }

    /// Issue 36: comparing expansion, an expanded account is in the first
    /// cohort, renewed and contracted ones in the second, a churned one in
    /// neither (counted); expansion milestones are judged, as they are not
    /// against renewal.
    #[test]
    fn expansion_cohorts_judge_expansion_milestones_and_leave_churn_out() {
        const GROWTH: &str = "segment: all
milestones:
  - {id: grow, name: Grow, phase: expansion, owner: ae, criterion: {kind: event_count, event: g, min: 1}, expansion: {adds: 5, unit: seats, play: p}}
";
        let map = milepost_maps::load_map("g.yaml", GROWTH).unwrap();
        // Decided on day 329, before the expansion milestone's due date (day 360).
        let decided = |id: &str, outcome: RenewalDecision, reached: Option<i64>| {
            let mut a = account(id, date(2025, 1, 6));
            a.renewals.push(RenewalOutcome {
                decision_date: date(2025, 12, 1),
                outcome,
                arr_after: None,
            });
            let mut m = TrackedMilestone::new(&a, &map, &map.milestones[0]);
            if let Some(day) = reached {
                let seeded = milepost_domain::seed::milestone(&mut m).status(MilestoneStatus::Achieved);
                seeded.reached(midnight(a.contract_start) + Duration::days(day), None);
            }
            (a, m)
        };
        let accounts = [
            decided("up", RenewalDecision::Expanded, Some(100)),
            // Reached after the decision: not by then.
            decided("flat", RenewalDecision::Renewed, Some(340)),
            decided("down", RenewalDecision::Contracted, None),
            decided("gone", RenewalDecision::Churned, Some(50)),
        ];
        for (cohorts, judged) in [(CohortSplit::Renewal, 0), (CohortSplit::Expansion, 3)] {
            let mut b = RecordsBuilder {
                cohorts,
                ..RecordsBuilder::default()
            };
            for (a, m) in &accounts {
                b.add_account(a);
                b.add_milestone(m);
            }
            let records = b.finish();
            assert_eq!(records.judgements.len(), judged, "{cohorts:?}");
            assert_eq!(records.not_judged, 0, "judged up to the decision, before its due date");
            let days: Vec<Option<u32>> = records.judgements.iter().map(|j| j.achieved_on_day).collect();
            if cohorts == CohortSplit::Expansion {
                assert_eq!(days, [Some(100), None, None]);
            }
            let cohort: Vec<(&str, Outcome)> = records
                .accounts
                .iter()
                .map(|a| (a.account_id.as_str(), a.outcome))
                .collect();
            match cohorts {
                CohortSplit::Renewal => {
                    assert_eq!(records.not_in_cohorts, 0);
                    assert_eq!(cohort[3], ("gone", Outcome::Churned));
                }
                CohortSplit::Expansion => {
                    assert_eq!(records.not_in_cohorts, 1, "the churned account");
                    assert_eq!(
                        cohort,
                        [
                            ("up", Outcome::Renewed),
                            ("flat", Outcome::Churned),
                            ("down", Outcome::Churned)
                        ]
                    );
                }
            }
        }
    }
}
