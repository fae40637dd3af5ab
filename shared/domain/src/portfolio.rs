//! The console's portfolio: the accounts with open misses, ranked by the ARR
//! they put at risk, each with the stage its furthest playbook has reached.
//! "At risk" is the report's rule (`report`'s `at_risk`): missed, not caught
//! up, no renewal decision since; so the portfolio's totals are
//! `milepost report`'s `at_risk` figures for the same moment.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::{Account, AccountId, Group, MilestoneStatus, Segment, Stage, Timestamp, TrackedMilestone};

/// Where an open miss stands: how far its playbook has gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissStage {
    /// In the control group: no playbook runs (`holdout`).
    Control,
    /// Missed, its playbook not started yet (the next sweep starts it).
    Starting,
    Day1,
    Day3,
    Day5,
    /// The playbook ended and the customer has not caught up.
    Lapsed,
}

impl MissStage {
    /// Every stage, in the order the portfolio counts them.
    pub const ALL: [MissStage; 6] = [
        MissStage::Day1,
        MissStage::Day3,
        MissStage::Day5,
        MissStage::Lapsed,
        MissStage::Starting,
        MissStage::Control,
    ];

    /// The stage of `m`, if it is an open miss.
    pub fn of(m: &TrackedMilestone) -> Option<MissStage> {
        match m.status() {
            MilestoneStatus::Missed if m.group() == Some(Group::Control) => Some(MissStage::Control),
            MilestoneStatus::Missed => Some(MissStage::Starting),
            MilestoneStatus::Escalating(Stage::Outreach) => Some(MissStage::Day1),
            MilestoneStatus::Escalating(Stage::CsmTask) => Some(MissStage::Day3),
            MilestoneStatus::Escalating(Stage::Leadership) => Some(MissStage::Day5),
            MilestoneStatus::Lapsed => Some(MissStage::Lapsed),
            MilestoneStatus::Pending | MilestoneStatus::Achieved | MilestoneStatus::Recovered => None,
        }
    }

    /// Its name in a URL's query.
    pub fn as_str(self) -> &'static str {
        match self {
            MissStage::Control => "control",
            MissStage::Starting => "starting",
            MissStage::Day1 => "day1",
            MissStage::Day3 => "day3",
            MissStage::Day5 => "day5",
            MissStage::Lapsed => "lapsed",
        }
    }

    pub fn parse(s: &str) -> Option<MissStage> {
        MissStage::ALL.into_iter().find(|stage| stage.as_str() == s)
    }

    /// As people read it.
    pub fn label(self) -> &'static str {
        match self {
            MissStage::Control => "Control group",
            MissStage::Starting => "Starting",
            MissStage::Day1 => "Day 1 outreach",
            MissStage::Day3 => "Day 3 CSM task",
            MissStage::Day5 => "Day 5 leadership",
            MissStage::Lapsed => "Lapsed",
        }
    }

    /// How far along it is, for "the account's furthest stage": a control
    /// miss has no playbook, so any other stage is further.
    fn rank(self) -> u8 {
        match self {
            MissStage::Control => 0,
            MissStage::Starting => 1,
            MissStage::Day1 => 2,
            MissStage::Day3 => 3,
            MissStage::Day5 => 4,
            MissStage::Lapsed => 5,
        }
    }
}

/// One open miss of a portfolio row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenMiss {
    pub milestone_id: String,
    pub name: String,
    pub stage: MissStage,
    pub due_at: Timestamp,
    /// Whole days since it was due, at the portfolio's moment.
    pub days_overdue: i64,
    pub arr_at_risk: u64,
}

/// One account with open misses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PortfolioRow {
    pub account_id: AccountId,
    pub name: String,
    pub segment: Segment,
    /// The account's CSM: who owns it (a miss's task may go to another role).
    pub owner_name: String,
    pub owner_email: String,
    /// What its health is scored against (`health::health`).
    pub licensed_seats: u32,
    pub arr_at_risk: u64,
    pub renewal_date: NaiveDate,
    /// The furthest stage of its misses.
    pub stage: MissStage,
    /// The most days any of its misses is overdue.
    pub days_overdue: i64,
    /// Most ARR at risk first.
    pub misses: Vec<OpenMiss>,
    /// Its health when the row was kept (`health::health`); none until scored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<RowHealth>,
}

/// An account's health score and its 30-day change, as a row keeps them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowHealth {
    pub score: u8,
    pub trend: i32,
}

impl RowHealth {
    pub fn trend_word(&self) -> &'static str {
        crate::health::trend_word(self.trend)
    }
}

impl From<&crate::health::Health> for RowHealth {
    fn from(h: &crate::health::Health) -> Self {
        RowHealth {
            score: h.score,
            trend: h.trend,
        }
    }
}

/// How the portfolio is ordered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PortfolioSort {
    #[default]
    ArrAtRisk,
    DaysOverdue,
    Renewal,
    Name,
}

impl PortfolioSort {
    pub const ALL: [PortfolioSort; 4] = [
        PortfolioSort::ArrAtRisk,
        PortfolioSort::DaysOverdue,
        PortfolioSort::Renewal,
        PortfolioSort::Name,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PortfolioSort::ArrAtRisk => "arr",
            PortfolioSort::DaysOverdue => "overdue",
            PortfolioSort::Renewal => "renewal",
            PortfolioSort::Name => "name",
        }
    }

    pub fn parse(s: &str) -> Option<PortfolioSort> {
        PortfolioSort::ALL.into_iter().find(|sort| sort.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            PortfolioSort::ArrAtRisk => "ARR at risk",
            PortfolioSort::DaysOverdue => "Days overdue",
            PortfolioSort::Renewal => "Renewal date",
            PortfolioSort::Name => "Account name",
        }
    }
}

/// Which rows the portfolio shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortfolioFilter {
    pub segment: Option<Segment>,
    /// The account's CSM, by address.
    pub owner: Option<String>,
    pub stage: Option<MissStage>,
}

impl PortfolioFilter {
    fn keeps(&self, row: &PortfolioRow) -> bool {
        self.segment.is_none_or(|s| s == row.segment)
            && self
                .owner
                .as_deref()
                .is_none_or(|o| o.eq_ignore_ascii_case(&row.owner_email))
            && self.stage.is_none_or(|s| row.misses.iter().any(|m| m.stage == s))
    }
}

/// The whole portfolio at a moment: every row, before filters.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Portfolio {
    pub rows: Vec<PortfolioRow>,
}

impl Portfolio {
    /// The accounts of `open_misses` (milestones from the store's open-miss
    /// index; anything else is ignored) at `now`, most ARR at risk first.
    /// A miss whose account is not in `accounts` is left out (the account
    /// was removed), as the report leaves it out.
    pub fn build(
        accounts: &HashMap<AccountId, Arc<Account>>,
        open_misses: &[TrackedMilestone],
        now: Timestamp,
    ) -> Portfolio {
        let mut rows: HashMap<&AccountId, PortfolioRow> = HashMap::new();
        for m in open_misses {
            let (Some(stage), Some(missed_at)) = (MissStage::of(m), m.missed_at()) else {
                continue;
            };
            let Some(account) = accounts.get(m.account_id()) else {
                continue;
            };
            if missed_at > now
                || account
                    .renewals
                    .iter()
                    .any(|r| crate::renewal::settles(r.decision_date, missed_at, now))
            {
                continue;
            }
            let miss = OpenMiss {
                milestone_id: m.milestone_id().to_owned(),
                name: m.name().to_owned(),
                stage,
                due_at: m.due_at(),
                days_overdue: (now - m.due_at()).num_days().max(0),
                arr_at_risk: m.arr_at_risk(account.arr),
            };
            let row = rows.entry(m.account_id()).or_insert_with(|| PortfolioRow {
                account_id: account.id.clone(),
                name: account.name.clone(),
                segment: account.segment,
                owner_name: account.csm.name.clone(),
                owner_email: account.csm.email.to_string(),
                licensed_seats: account.licensed_seats,
                arr_at_risk: 0,
                renewal_date: account.renewal_date,
                stage,
                days_overdue: 0,
                misses: Vec::new(),
                health: None,
            });
            row.arr_at_risk = row.arr_at_risk.saturating_add(miss.arr_at_risk);
            row.days_overdue = row.days_overdue.max(miss.days_overdue);
            if stage.rank() > row.stage.rank() {
                row.stage = stage;
            }
            row.misses.push(miss);
        }
        let mut rows: Vec<PortfolioRow> = rows.into_values().collect();
        for row in &mut rows {
            row.misses.sort_by(|a, b| {
                b.arr_at_risk
                    .cmp(&a.arr_at_risk)
                    .then(a.due_at.cmp(&b.due_at))
                    .then(a.milestone_id.cmp(&b.milestone_id))
            });
        }
        rows.sort_by(|a, b| b.arr_at_risk.cmp(&a.arr_at_risk).then(a.account_id.cmp(&b.account_id)));
        Portfolio { rows }
    }

    /// The portfolio of rows kept earlier (`Portfolio::build`'s, one account
    /// at a time or all at once) as it reads at `now`: days overdue counted
    /// again from each miss's due time, most ARR at risk first.
    pub fn from_kept(mut rows: Vec<PortfolioRow>, now: Timestamp) -> Portfolio {
        for row in &mut rows {
            for miss in &mut row.misses {
                miss.days_overdue = (now - miss.due_at).num_days().max(0);
            }
            row.days_overdue = row.misses.iter().map(|m| m.days_overdue).max().unwrap_or(0);
        }
        rows.sort_by(|a, b| b.arr_at_risk.cmp(&a.arr_at_risk).then(a.account_id.cmp(&b.account_id)));
        Portfolio { rows }
    }

    /// ARR at risk over every row.
    pub fn arr_at_risk(&self) -> u64 {
        self.rows.iter().map(|r| r.arr_at_risk).fold(0, u64::saturating_add)
    }

    /// Open misses over every row.
    pub fn misses(&self) -> usize {
        self.rows.iter().map(|r| r.misses.len()).sum()
    }

    /// Open misses by stage, over every row, in `MissStage::ALL`'s order.
    pub fn misses_by_stage(&self) -> Vec<(MissStage, usize)> {
        MissStage::ALL
            .into_iter()
            .map(|stage| {
                let n = self
                    .rows
                    .iter()
                    .flat_map(|r| &r.misses)
                    .filter(|m| m.stage == stage)
                    .count();
                (stage, n)
            })
            .collect()
    }

    /// The rows `filter` keeps, in `sort`'s order.
    pub fn view(&self, filter: &PortfolioFilter, sort: PortfolioSort) -> Vec<&PortfolioRow> {
        let mut rows: Vec<&PortfolioRow> = self.rows.iter().filter(|r| filter.keeps(r)).collect();
        match sort {
            PortfolioSort::ArrAtRisk => {} // built in this order
            PortfolioSort::DaysOverdue => {
                rows.sort_by_key(|r| (Reverse(r.days_overdue), Reverse(r.arr_at_risk), r.account_id.clone()))
            }
            PortfolioSort::Renewal => {
                rows.sort_by_key(|r| (r.renewal_date, Reverse(r.arr_at_risk), r.account_id.clone()))
            }
            PortfolioSort::Name => rows.sort_by_key(|r| (r.name.to_lowercase(), r.account_id.clone())),
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use super::*;
    use crate::renewal::{RenewalDecision, RenewalOutcome};
    use crate::{fixtures, Criterion};

    fn at(day: u32) -> Timestamp {
        Utc.with_ymd_and_hms(2026, 3, day, 12, 0, 0).unwrap()
    }

    fn account(id: &str, arr: u64) -> Account {
        Account {
            arr,
            ..fixtures::account(id, fixtures::date(2026, 1, 1))
        }
    }

    fn accounts(list: &[Account]) -> HashMap<AccountId, Arc<Account>> {
        list.iter().map(|a| (a.id.clone(), Arc::new(a.clone()))).collect()
    }

    /// `id` of `account`, due on `due` and (unless pending) missed a quarter of an hour later, now `status`.
    fn milestone(account: &Account, id: &str, due: Timestamp, status: MilestoneStatus) -> TrackedMilestone {
        let def = fixtures::milestone_def(
            id,
            30,
            Criterion::EventCount {
                event: "a".into(),
                min: 1,
                window_days: None,
            },
        );
        let map = fixtures::map_of(vec![def.clone()]);
        let mut m = TrackedMilestone::new(account, &map, &def);
        crate::seed::milestone(&mut m).due_at(due).status(status);
        if status != MilestoneStatus::Pending {
            crate::seed::milestone(&mut m).missed(due + Duration::minutes(15), Some(Group::Playbook));
        }
        m
    }

    #[test]
    fn rows_rank_by_arr_at_risk_and_take_their_furthest_stage() {
        let big = account("big", 200_000);
        let small = account("small", 10_000);
        let misses = [
            milestone(&big, "first", at(2), MilestoneStatus::Escalating(Stage::CsmTask)),
            milestone(&big, "second", at(4), MilestoneStatus::Escalating(Stage::Outreach)),
            milestone(&small, "first", at(1), MilestoneStatus::Lapsed),
            milestone(&small, "second", at(20), MilestoneStatus::Pending),
        ];
        let portfolio = Portfolio::build(&accounts(&[small, big]), &misses, at(10));

        let names: Vec<&str> = portfolio.rows.iter().map(|r| r.account_id.as_str()).collect();
        assert_eq!(names, ["big", "small"]);
        assert_eq!(portfolio.rows[0].stage, MissStage::Day3);
        assert_eq!(portfolio.rows[0].misses.len(), 2);
        assert_eq!(portfolio.rows[0].days_overdue, 8, "due 2 Mar, looked at 10 Mar");
        assert_eq!(portfolio.rows[1].stage, MissStage::Lapsed);
        assert_eq!(portfolio.misses(), 3, "the pending milestone is no miss");
        assert_eq!(
            portfolio.arr_at_risk(),
            portfolio
                .rows
                .iter()
                .flat_map(|r| &r.misses)
                .map(|m| m.arr_at_risk)
                .sum::<u64>()
        );
        let by_stage: HashMap<MissStage, usize> = portfolio.misses_by_stage().into_iter().collect();
        assert_eq!(
            (
                by_stage[&MissStage::Day1],
                by_stage[&MissStage::Day3],
                by_stage[&MissStage::Lapsed]
            ),
            (1, 1, 1)
        );
    }

    #[test]
    fn kept_rows_read_later_count_their_days_overdue_again_and_keep_their_order() {
        let big = account("big", 200_000);
        let small = account("small", 10_000);
        let misses = [
            milestone(&small, "first", at(1), MilestoneStatus::Lapsed),
            milestone(&big, "first", at(2), MilestoneStatus::Escalating(Stage::CsmTask)),
        ];
        let built = Portfolio::build(&accounts(&[small, big]), &misses, at(10));
        // Kept as JSON (the store's form), one account at a time in any order.
        let kept: Vec<PortfolioRow> = built
            .rows
            .iter()
            .rev()
            .map(|r| serde_json::from_value(serde_json::to_value(r).unwrap()).unwrap())
            .collect();
        let later = Portfolio::from_kept(kept, at(15));
        let names: Vec<&str> = later.rows.iter().map(|r| r.account_id.as_str()).collect();
        assert_eq!(names, ["big", "small"], "most ARR at risk first, as built");
        assert_eq!(later.rows[0].days_overdue, 13, "due 2 Mar, read on 15 Mar");
        assert_eq!(later.rows[0].misses[0].days_overdue, 13);
        assert_eq!(later.rows[1].days_overdue, 14);
        assert_eq!(
            (later.arr_at_risk(), later.misses()),
            (built.arr_at_risk(), built.misses())
        );
    }

    #[test]
    fn a_renewal_decided_after_a_miss_settles_it_as_the_report_does() {
        let mut renewed = account("renewed", 10_000);
        let m = milestone(&renewed, "first", at(2), MilestoneStatus::Lapsed);
        renewed.renewals.push(RenewalOutcome {
            decision_date: at(9).date_naive(),
            outcome: RenewalDecision::Renewed,
            arr_after: None,
        });
        let before = Portfolio::build(
            &accounts(std::slice::from_ref(&renewed)),
            std::slice::from_ref(&m),
            at(8),
        );
        assert_eq!(before.rows.len(), 1, "before the decision it is at risk");
        let after = Portfolio::build(&accounts(&[renewed]), &[m], at(10));
        assert!(after.rows.is_empty(), "the decision settled it");
    }

    #[test]
    fn filters_and_sorts_keep_every_row_they_should() {
        let a = Account {
            segment: Segment::Smb,
            ..account("a", 50_000)
        };
        let b = Account {
            segment: Segment::Enterprise,
            renewal_date: a.renewal_date - Duration::days(30),
            ..account("b", 90_000)
        };
        let misses = [
            milestone(&a, "first", at(1), MilestoneStatus::Escalating(Stage::Leadership)),
            milestone(&b, "first", at(5), MilestoneStatus::Escalating(Stage::Outreach)),
        ];
        let portfolio = Portfolio::build(&accounts(&[a, b]), &misses, at(10));
        let ids = |rows: Vec<&PortfolioRow>| rows.iter().map(|r| r.account_id.to_string()).collect::<Vec<_>>();
        let all = PortfolioFilter::default();
        assert_eq!(ids(portfolio.view(&all, PortfolioSort::ArrAtRisk)), ["b", "a"]);
        assert_eq!(ids(portfolio.view(&all, PortfolioSort::DaysOverdue)), ["a", "b"]);
        assert_eq!(ids(portfolio.view(&all, PortfolioSort::Renewal)), ["b", "a"]);
        assert_eq!(ids(portfolio.view(&all, PortfolioSort::Name)), ["a", "b"]);
        let smb = PortfolioFilter {
            segment: Some(Segment::Smb),
            ..PortfolioFilter::default()
        };
        assert_eq!(ids(portfolio.view(&smb, PortfolioSort::ArrAtRisk)), ["a"]);
        let day5 = PortfolioFilter {
            stage: Some(MissStage::Day5),
            ..PortfolioFilter::default()
        };
        assert_eq!(ids(portfolio.view(&day5, PortfolioSort::ArrAtRisk)), ["a"]);
        let nobody = PortfolioFilter {
            owner: Some("someone@else.example".into()),
            ..PortfolioFilter::default()
        };
        assert!(portfolio.view(&nobody, PortfolioSort::ArrAtRisk).is_empty());
        for stage in MissStage::ALL {
            assert_eq!(MissStage::parse(stage.as_str()), Some(stage));
        }
    }
}
