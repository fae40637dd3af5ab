//! `milepost discover --from-store`: the same statistics on Milepost's own
//! records instead of exported events. Each account with a renewal decision
//! (its latest) is a cohort member: renewed, expanded or contracted count as
//! renewed, churned as churned. Each milestone Milepost tracked for it, due
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
use super::input::{AccountRecord, Outcome};

/// What one tracked milestone leaves for the judgement: small, so 100,000 accounts fit.
struct Tracked {
    account: AccountId,
    candidate: u32,
    due_at: Timestamp,
    reached_at: Option<Timestamp>,
}

/// Folds accounts and tracked milestones in, in any order, then `finish`es.
#[derive(Default)]
pub struct RecordsBuilder {
    accounts: Vec<AccountRecord>,
    candidates: Vec<Candidate>,
    tracked: Vec<Tracked>,
    /// Accounts without a renewal decision yet: in no cohort.
    pub undecided: usize,
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
    pub accounts: Vec<AccountRecord>,
    pub candidates: Vec<Candidate>,
    pub judgements: Vec<Judgement>,
    pub undecided: usize,
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
        self.accounts.push(AccountRecord {
            account_id: account.id.clone(),
            segment: account.segment,
            contract_start: account.contract_start,
            decision_date: latest.decision_date,
            outcome: if latest.outcome.retained() {
                Outcome::Renewed
            } else {
                Outcome::Churned
            },
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
        if m.expansion().is_some() {
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
            if t.due_at > decided || t.due_at < starts {
                not_judged += 1;
                continue;
            }
            judgements.push(Judgement {
                account: a as u32,
                candidate: t.candidate,
                achieved_on_day: t
                    .reached_at
                    .filter(|r| *r <= t.due_at && *r >= starts)
                    .map(|r| day_number(starts, r)),
            });
        }
        Records {
            accounts: self.accounts,
            candidates: self.candidates,
            judgements,
            undecided: self.undecided,
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
}
