//! `milepost report`: does the playbook work? Recovery of missed milestones
//! in the playbook group against the control group (the map's `holdout`),
//! churn by how an account's milestones went, and open tasks by owner.
//!
//! Definitions (the README's "Is it working?" states the same):
//!
//! - A **miss** counts in the period when its due date is in `[since, until]`
//!   and its **window** (`window_days` after the due date) has closed by
//!   `as_of`; misses whose window is still open are counted apart
//!   (`window_open`) and left out of every rate, so a recent miss that may
//!   still recover does not pull the rates down.
//! - **Recovered** means reached within the window: `reached_at − due_at ≤
//!   window_days`.
//! - **Recovery rate** `p = recovered / missed`, with its 95% Wilson score
//!   interval: centre `(p + z²/2n) / (1 + z²/n)`, half-width
//!   `z/(1 + z²/n) · √(p(1−p)/n + z²/4n²)`, `z = 1.96`.
//! - **Uplift** `d = p_playbook − p_control`, with Newcombe's hybrid score
//!   interval (his method 10) from the two Wilson intervals `[l₁, u₁]`,
//!   `[l₂, u₂]`: `[d − √((p₁−l₁)² + (u₂−p₂)²), d + √((u₁−p₁)² + (p₂−l₂)²)]`.
//! - **Small sample**: no interval yet, or an uplift interval wider than
//!   `ACTIONABLE_WIDTH` (20 percentage points): too wide to act on.
//! - **Churn** by account: `on_time` (every milestone due so far reached by
//!   its due date), `recovered` (some missed, every miss caught up), `lapsed`
//!   (a miss never caught up); the churn rate of each is churned decisions
//!   over all decisions in the period (the account's latest), and the ratio
//!   is a class's churn rate over `on_time`'s — the "missed milestones churn
//!   3.5× more" figure, measured on the user's own customers.
//! - **Activity** in the period: `new_misses`, misses due in `[since,
//!   until]` whatever their window (the rows count only closed windows);
//!   `recoveries`, misses caught up in the period whenever they were due;
//!   `open_escalations`, playbook misses whose customer has not caught up
//!   and whose playbook has not run out, as of `as_of`.
//! - **ARR at risk** at a time `t`: the sum over misses announced by `t`,
//!   not caught up by `t`, of the account's ARR × the milestone's weight,
//!   until the account's next renewal decision settles it. Given `now`
//!   (`as_of`) and at the start of the period (`since`, 00:00 UTC), with the
//!   accounts carrying most of it now. ARR is the account's current ARR.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, Duration, NaiveDate};
use serde::Serialize;

pub use crate::discovery::{newcombe, Rate};
use crate::{
    Account, AccountId, CsmTask, Group, MilestoneStatus, RecoveredAfter, RenewalDecision, Segment, Stage, TaskStatus,
    Timestamp, TrackedMilestone,
};

/// Recovery counted this many days after the due date, unless asked otherwise.
pub const DEFAULT_WINDOW_DAYS: u32 = 30;
/// How many accounts `at_risk.top_accounts` lists.
pub const TOP_AT_RISK: usize = 10;
/// The longest window a report takes.
pub const MAX_WINDOW_DAYS: u32 = 365;
/// An uplift interval wider than this (in rate units) is flagged as too wide to act on.
pub const ACTIONABLE_WIDTH: f64 = 0.20;

/// What a report covers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReportOptions {
    /// Misses due on or after this day (UTC); none: from the start.
    pub since: Option<NaiveDate>,
    /// Misses due on or before this day (UTC); none: up to `as_of`.
    pub until: Option<NaiveDate>,
    pub segment: Option<Segment>,
    /// Only accounts with (`true`) or without (`false`) a success plan as
    /// it stands; none: every account.
    pub success_plan: Option<bool>,
    pub window_days: u32,
    /// The report's "now": windows close by it, task ages run to it.
    pub as_of: Timestamp,
}

impl ReportOptions {
    fn due_in_period(&self, due: Timestamp) -> bool {
        let day = due.date_naive();
        self.since.is_none_or(|s| day >= s) && self.until.is_none_or(|u| day <= u)
    }
    fn decided_in_period(&self, day: NaiveDate) -> bool {
        self.since.is_none_or(|s| day >= s) && self.until.is_none_or(|u| day <= u) && day <= self.as_of.date_naive()
    }
    fn window(&self) -> Duration {
        Duration::days(i64::from(self.window_days))
    }
}

/// The week a digest covers: Monday to Sunday (UTC days, as the report's
/// `--since` and `--until` take them) before the Monday it is sent on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Week {
    /// The Monday the digest is for, in the leader's timezone.
    pub sent_on: NaiveDate,
    pub since: NaiveDate,
    pub until: NaiveDate,
}

impl Week {
    /// The week before the latest Monday on or before `now` in `tz`: a run
    /// late or again the same week digests the same week.
    pub fn before(now: Timestamp, tz: chrono_tz::Tz) -> Week {
        let today = now.with_timezone(&tz).date_naive();
        let monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
        Week {
            sent_on: monday,
            since: monday - Duration::days(7),
            until: monday - Duration::days(1),
        }
    }

    /// The report options giving this week's figures, as of `now`.
    pub fn options(&self, now: Timestamp) -> ReportOptions {
        ReportOptions {
            since: Some(self.since),
            until: Some(self.until),
            segment: None,
            success_plan: None,
            window_days: DEFAULT_WINDOW_DAYS,
            as_of: now,
        }
    }
}

/// Median days from due date to recovery of each group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct MedianDays {
    pub playbook: Option<f64>,
    pub control: Option<f64>,
}

/// One row: a milestone (or `all`) in a segment (or `all`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    pub milestone: String,
    pub segment: String,
    pub missed_playbook: u64,
    pub recovered_playbook: u64,
    pub missed_control: u64,
    pub recovered_control: u64,
    /// Misses in the period whose window is still open: in no rate yet.
    pub window_open: u64,
    pub recovery_rate_playbook: Option<Rate>,
    pub recovery_rate_control: Option<Rate>,
    /// `recovery_rate_playbook − recovery_rate_control`.
    pub uplift: Option<f64>,
    pub uplift_ci: Option<[f64; 2]>,
    pub small_sample: bool,
    /// Playbook recoveries by the last stage reached before the customer caught up.
    pub recovered_by_stage: ByStage,
    pub median_days_to_recover: MedianDays,
    /// ARR at risk of the row's misses (both groups), and of those recovered.
    pub arr_at_risk: u64,
    pub arr_recovered: u64,
}

/// Playbook recoveries by the last stage reached before the customer caught up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ByStage {
    pub before_day_1: u64,
    pub outreach: u64,
    pub csm_task: u64,
    pub leadership: u64,
    /// After the playbook's last stage, before the window closed.
    pub after_lapse: u64,
}

impl ByStage {
    fn count(&mut self, from: MilestoneStatus) {
        self.add(RecoveredAfter::of(from));
    }

    pub fn add(&mut self, after: RecoveredAfter) {
        *match after {
            RecoveredAfter::BeforeDay1 => &mut self.before_day_1,
            RecoveredAfter::Outreach => &mut self.outreach,
            RecoveredAfter::CsmTask => &mut self.csm_task,
            RecoveredAfter::Leadership => &mut self.leadership,
            RecoveredAfter::AfterLapse => &mut self.after_lapse,
        } += 1;
    }
}

/// Open and snoozed tasks by days since opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ByAge {
    pub days_0_2: u64,
    pub days_3_7: u64,
    pub days_8_14: u64,
    pub days_15_plus: u64,
}

impl ByAge {
    fn count(&mut self, days: i64) {
        *match days {
            ..=2 => &mut self.days_0_2,
            3..=7 => &mut self.days_3_7,
            8..=14 => &mut self.days_8_14,
            _ => &mut self.days_15_plus,
        } += 1;
    }
}

/// How an account's milestones went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Course {
    OnTime,
    Recovered,
    Lapsed,
}

impl Course {
    pub const ALL: [Course; 3] = [Course::OnTime, Course::Recovered, Course::Lapsed];
    pub fn as_str(self) -> &'static str {
        match self {
            Course::OnTime => "on_time",
            Course::Recovered => "recovered",
            Course::Lapsed => "lapsed",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChurnRow {
    pub accounts: Course,
    /// Accounts with a renewal decision in the period.
    pub decided: u64,
    pub churned: u64,
    pub churn_rate: Option<Rate>,
    /// This churn rate over the on-time accounts'.
    pub ratio_to_on_time: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaskRow {
    pub owner_email: String,
    pub owner_name: String,
    pub open: u64,
    pub snoozed: u64,
    pub by_age: ByAge,
    pub oldest_days: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub window_days: u32,
    pub as_of: Timestamp,
    pub since: Option<NaiveDate>,
    pub until: Option<NaiveDate>,
    pub segment: String,
    /// `with` or `without` a success plan, when the report was asked for one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success_plan: Option<&'static str>,
    /// What the reader should know: an empty period, an unknown segment, small samples.
    pub notes: Vec<String>,
    pub rows: Vec<Row>,
    pub churn: Vec<ChurnRow>,
    pub tasks: Vec<TaskRow>,
    pub activity: Activity,
    pub at_risk: AtRisk,
    /// How each `arr_weight: discovered` milestone of the stored maps is
    /// weighed: the measure and its method, or why the default stands in.
    pub worth: Vec<Worth>,
    /// Expansion opportunities opened in the period, and their pipeline.
    pub expansion: ExpansionPipeline,
}

/// Expansion opportunities opened in a period (an `expansion` milestone
/// reached), and the yearly revenue they would add, each priced when it
/// opened. Unpriced ones are counted, never guessed at.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ExpansionPipeline {
    pub opportunities: u64,
    pub pipeline_arr: u64,
    pub unpriced: u64,
    /// Per map milestone, most pipeline first.
    pub by_milestone: Vec<ExpansionRow>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ExpansionRow {
    pub milestone: String,
    pub name: String,
    pub unit: String,
    pub opportunities: u64,
    /// Units the opportunities add together.
    pub adds: u64,
    pub pipeline_arr: u64,
    pub unpriced: u64,
}

impl ExpansionPipeline {
    fn add(&mut self, milestone: &str, name: &str, o: &crate::Opportunity) {
        // Two maps may give one id different units: a row per milestone and unit.
        let row = match self
            .by_milestone
            .iter_mut()
            .position(|r| r.milestone == milestone && r.unit == o.unit)
        {
            Some(i) => &mut self.by_milestone[i],
            None => {
                self.by_milestone.push(ExpansionRow {
                    milestone: milestone.to_string(),
                    name: name.to_string(),
                    unit: o.unit.clone(),
                    ..ExpansionRow::default()
                });
                self.by_milestone.last_mut().expect("just pushed")
            }
        };
        row.opportunities += 1;
        row.adds += u64::from(o.adds);
        self.opportunities += 1;
        match o.pipeline_arr() {
            Some(arr) => {
                row.pipeline_arr = row.pipeline_arr.saturating_add(arr);
                self.pipeline_arr = self.pipeline_arr.saturating_add(arr);
            }
            None => {
                row.unpriced += 1;
                self.unpriced += 1;
            }
        }
    }
}

/// One map milestone whose ARR weight is measured (`arr_weight: discovered`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Worth {
    pub milestone: String,
    pub name: String,
    /// The map's segment and tenure (`all` when it leaves one open).
    pub map_segment: String,
    pub map_tenure: String,
    /// The share of ARR a miss puts at risk, and its 95% interval when measured.
    pub weight: f64,
    pub weight_ci: Option<[f64; 2]>,
    /// The measure behind it; none, and why, when the default stands in.
    pub measured: Option<crate::discovery::MeasuredWeight>,
    pub unmeasured: Option<String>,
}

/// How a measured weight is found, in words the report prints beside it.
pub const WORTH_METHOD: &str = "churn rate among decided accounts that missed it, less the churn rate among those that achieved it (95% interval: Newcombe's hybrid score), from the latest kept discovery; 0 when missers churn no more";

/// Misses by group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ByGroup {
    pub playbook: u64,
    pub control: u64,
}

impl ByGroup {
    pub fn total(&self) -> u64 {
        self.playbook + self.control
    }
    fn count(&mut self, group: Group) {
        *match group {
            Group::Playbook => &mut self.playbook,
            Group::Control => &mut self.control,
        } += 1;
    }
}

/// What happened in the period (see the module's definitions).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Activity {
    pub new_misses: ByGroup,
    pub recoveries: ByGroup,
    /// The playbook's recoveries in the period by where they came.
    pub recoveries_by_stage: ByStage,
    pub open_escalations: u64,
}

/// ARR at risk now and at the period's start (see the module's definitions).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AtRisk {
    pub arr_now: u64,
    pub misses_now: u64,
    pub accounts_now: u64,
    /// At `since`, 00:00 UTC; none when the period has no start.
    pub arr_at_start: Option<u64>,
    /// The `TOP_AT_RISK` accounts with most ARR at risk now, most first.
    pub top_accounts: Vec<AccountAtRisk>,
    /// The misses at risk now whose playbook lapsed: how many, their ARR,
    /// and the `TOP_AT_RISK` with most ARR at risk, most first.
    pub lapsed_misses: u64,
    pub lapsed_arr: u64,
    pub top_lapsed: Vec<LapsedAtRisk>,
    /// `arr_now` with each measured weight at its 95% interval's ends (a
    /// weight set by hand counts as itself at both); none when no miss at
    /// risk has a measured weight. With several measured milestones it is
    /// wider than a 95% interval of the sum.
    pub arr_now_range: Option<[u64; 2]>,
    /// Misses at risk now whose weight is measured (`arr_weight: discovered`).
    pub misses_now_measured: u64,
}

/// A miss at risk whose playbook lapsed without the customer catching up.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LapsedAtRisk {
    pub account_id: String,
    pub account_name: String,
    pub milestone_id: String,
    pub milestone_name: String,
    pub arr_at_risk: u64,
    /// When the playbook lapsed (none for misses that lapsed before this was kept).
    pub lapsed_at: Option<Timestamp>,
    /// Whole days since, as of the report.
    pub lapsed_days: Option<i64>,
    /// The account's CSM.
    pub owner: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AccountAtRisk {
    pub account_id: String,
    pub account_name: String,
    pub segment: String,
    pub arr_at_risk: u64,
    /// Its misses not caught up.
    pub misses: u64,
    /// The furthest any of them has gone.
    pub stage: Standing,
    /// The account's CSM.
    pub owner: String,
}

/// Where an open miss stands, least advanced first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// Held out: no playbook.
    Control,
    /// Missed, the playbook not started yet.
    Missed,
    Outreach,
    CsmTask,
    Leadership,
    /// The playbook has run out and the customer has not caught up.
    Lapsed,
}

impl Standing {
    fn of(group: Group, status: MilestoneStatus) -> Standing {
        match (group, status) {
            (_, MilestoneStatus::Lapsed) => Standing::Lapsed,
            (Group::Control, _) => Standing::Control,
            (_, MilestoneStatus::Escalating(Stage::Outreach)) => Standing::Outreach,
            (_, MilestoneStatus::Escalating(Stage::CsmTask)) => Standing::CsmTask,
            (_, MilestoneStatus::Escalating(Stage::Leadership)) => Standing::Leadership,
            _ => Standing::Missed,
        }
    }

    /// In words, for the digest.
    pub fn label(self) -> &'static str {
        match self {
            Standing::Control => "control group (no playbook)",
            Standing::Missed => "missed, playbook starting",
            Standing::Outreach => "day 1: customer outreach",
            Standing::CsmTask => "day 3: CSM task",
            Standing::Leadership => "day 5: leadership",
            Standing::Lapsed => "playbook over, not caught up",
        }
    }
}

impl Report {
    /// The all-milestones, all-segments row.
    pub fn overall(&self) -> Option<&Row> {
        overall(&self.rows)
    }
}

fn overall(rows: &[Row]) -> Option<&Row> {
    rows.iter().find(|r| r.milestone == "all" && r.segment == "all")
}

/// What a miss leaves for the report: small, so 100,000 accounts fit.
struct Miss {
    account: AccountId,
    milestone: String,
    group: Group,
    due_at: Timestamp,
    missed_at: Timestamp,
    status: MilestoneStatus,
    /// Reached at, and the status it was reached from.
    reached: Option<(Timestamp, MilestoneStatus)>,
    arr_weight: f64,
    arr_weight_range: Option<[f64; 2]>,
    /// Due in `[since, until]`: the rows and `new_misses` count it.
    in_period: bool,
    /// A lapsed miss's name and lapse time (only lapsed misses carry them).
    lapsed: Option<Box<(String, Option<Timestamp>)>>,
}

impl Miss {
    /// At risk at `t`: announced, not caught up, no renewal decision since.
    fn at_risk_at(&self, t: Timestamp, facts: &AccountFacts) -> bool {
        self.missed_at <= t
            && self.reached.is_none_or(|(at, _)| at > t)
            && !facts
                .decisions
                .iter()
                .any(|d| crate::renewal::settles(*d, self.missed_at, t))
    }
}

#[derive(Default)]
struct AccountFacts {
    segment: Option<Segment>,
    name: String,
    csm_name: String,
    arr: u64,
    /// Every renewal decision date: one settles the ARR at risk of earlier misses.
    decisions: Vec<NaiveDate>,
    latest_decision: Option<(NaiveDate, RenewalDecision)>,
    missed: bool,
    lapsed: bool,
    any_due: bool,
    /// It has a success plan as it stands.
    planned: bool,
}

struct OpenTask {
    account: AccountId,
    owner_email: String,
    owner_name: String,
    status: TaskStatus,
    created_at: Timestamp,
}

/// Folds accounts, milestones and tasks in, in any order, then `finish`es.
pub struct ReportBuilder {
    options: ReportOptions,
    misses: Vec<Miss>,
    /// Opportunities opened by expansion milestones: (account, milestone, name, opportunity).
    opportunities: Vec<(AccountId, String, String, crate::Opportunity)>,
    worth: Vec<Worth>,
    accounts: HashMap<AccountId, AccountFacts>,
    tasks: Vec<OpenTask>,
}

impl ReportBuilder {
    pub fn new(options: ReportOptions) -> Self {
        ReportBuilder {
            options,
            misses: Vec::new(),
            opportunities: Vec::new(),
            worth: Vec::new(),
            accounts: HashMap::new(),
            tasks: Vec::new(),
        }
    }

    pub fn add_account(&mut self, account: &Account) {
        let facts = self.accounts.entry(account.id.clone()).or_default();
        facts.segment = Some(account.segment);
        facts.name = account.name.clone();
        facts.csm_name = account.csm.name.clone();
        facts.arr = account.arr;
        facts.planned = account.success_plan.is_some();
        facts.decisions = account.renewals.iter().map(|r| r.decision_date).collect();
        facts.latest_decision = account
            .renewals
            .iter()
            .filter(|r| self.options.decided_in_period(r.decision_date))
            .max_by_key(|r| r.decision_date)
            .map(|r| (r.decision_date, r.outcome));
    }

    pub fn add_milestone(&mut self, m: &TrackedMilestone) {
        let opts = &self.options;
        // A growth milestone is never due or missed: it counts only as pipeline.
        if m.expansion().is_some() {
            if let Some(o) = m
                .opportunity()
                .filter(|o| o.opened_at <= opts.as_of && opts.due_in_period(o.opened_at))
            {
                self.opportunities.push((
                    m.account_id().clone(),
                    m.milestone_id().to_owned(),
                    m.name().to_owned(),
                    o.clone(),
                ));
            }
            return;
        }
        if m.due_at() > opts.as_of {
            return;
        }
        let facts = self.accounts.entry(m.account_id().clone()).or_default();
        facts.any_due = true;
        let Some(missed_at) = m.missed_at() else {
            return;
        };
        facts.missed = true;
        if !m.status().is_reached() {
            facts.lapsed = true;
        }
        self.misses.push(Miss {
            account: m.account_id().clone(),
            // A plan's checkpoints count under the map's milestone that made them.
            milestone: m.map_milestone_id().to_owned(),
            // Misses announced before groups existed all had the playbook.
            group: m.group().unwrap_or(Group::Playbook),
            due_at: m.due_at(),
            missed_at,
            status: m.status(),
            // A reach recorded without the status it came from (older records)
            // still ends the miss's risk; its stage counts as before day 1.
            reached: m
                .reached_at()
                .map(|at| (at, m.reached_from().unwrap_or(MilestoneStatus::Missed))),
            arr_weight: m.arr_weight(),
            arr_weight_range: m.arr_weight_range(),
            in_period: opts.due_in_period(m.due_at()),
            lapsed: (m.status() == MilestoneStatus::Lapsed).then(|| Box::new((m.name().to_owned(), m.lapsed_at()))),
        });
    }

    /// A stored map: its `arr_weight: discovered` milestones and how each is weighed.
    pub fn add_map(&mut self, map: &crate::MilestoneMap) {
        // A report on one segment states the weights its accounts' maps may give.
        if let (Some(wanted), crate::MapSegment::Only(s)) = (self.options.segment, map.segment) {
            if s != wanted {
                return;
            }
        }
        let (segment, tenure) = map.discovery_scope();
        for def in &map.milestones {
            let Some(discovered) = &def.discovered_weight else {
                continue;
            };
            self.worth.push(Worth {
                milestone: def.id.clone(),
                name: def.name.clone(),
                map_segment: segment.to_string(),
                map_tenure: tenure.to_string(),
                weight: def.arr_weight(),
                weight_ci: def.arr_weight_range(),
                measured: discovered.measured.clone(),
                unmeasured: discovered.unmeasured.clone(),
            });
        }
    }

    /// An open or snoozed task (others are ignored).
    pub fn add_task(&mut self, task: &CsmTask) {
        if task.status.is_live() {
            self.tasks.push(OpenTask {
                account: task.brief().account_id.clone(),
                owner_email: task.brief().owner_email.clone(),
                owner_name: task.brief().owner_name.clone(),
                status: task.status,
                created_at: task.created_at(),
            });
        }
    }

    pub fn finish(self) -> Report {
        let opts = &self.options;
        let mut cells: BTreeMap<(String, String), Cell> = BTreeMap::new();
        let mut activity = Activity::default();
        let start = opts.since.map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc());
        let mut arr_at_start: Option<u64> = start.map(|_| 0);
        let mut open_by_account: BTreeMap<&AccountId, (u64, u64, Standing)> = BTreeMap::new();
        let mut lapsed: Vec<LapsedAtRisk> = Vec::new();
        let (mut range_now, mut measured_now) = ([0u64; 2], 0u64);
        for miss in &self.misses {
            let facts = self.accounts.get(&miss.account);
            if !self.wanted(facts) {
                continue;
            }
            let facts = facts.expect("wanted accounts are known");
            let arr = (facts.arr as f64 * miss.arr_weight).round() as u64;
            if let Some((at, from)) = miss.reached {
                if at <= opts.as_of && opts.due_in_period(at) {
                    activity.recoveries.count(miss.group);
                    if miss.group == Group::Playbook {
                        activity.recoveries_by_stage.count(from);
                    }
                }
            }
            if miss.group == Group::Playbook
                && matches!(miss.status, MilestoneStatus::Missed | MilestoneStatus::Escalating(_))
            {
                activity.open_escalations += 1;
            }
            if miss.at_risk_at(opts.as_of, facts) {
                let standing = Standing::of(miss.group, miss.status);
                let entry = open_by_account.entry(&miss.account).or_insert((0, 0, standing));
                entry.0 = entry.0.saturating_add(arr);
                let ends = miss.arr_weight_range.unwrap_or([miss.arr_weight; 2]);
                for (total, w) in range_now.iter_mut().zip(ends) {
                    *total = total.saturating_add((facts.arr as f64 * w).round() as u64);
                }
                measured_now += u64::from(miss.arr_weight_range.is_some());
                entry.1 += 1;
                entry.2 = entry.2.max(standing);
                if let Some((name, lapsed_at)) = miss.lapsed.as_deref() {
                    lapsed.push(LapsedAtRisk {
                        account_id: miss.account.as_str().to_string(),
                        account_name: facts.name.clone(),
                        milestone_id: miss.milestone.clone(),
                        milestone_name: name.clone(),
                        arr_at_risk: arr,
                        lapsed_at: *lapsed_at,
                        lapsed_days: lapsed_at.map(|at| (opts.as_of.date_naive() - at.date_naive()).num_days()),
                        owner: facts.csm_name.clone(),
                    });
                }
            }
            if let (Some(start), Some(total)) = (start, arr_at_start.as_mut()) {
                if miss.at_risk_at(start, facts) {
                    *total = total.saturating_add(arr);
                }
            }
            if !miss.in_period {
                continue;
            }
            activity.new_misses.count(miss.group);
            let segment = facts.segment.expect("wanted accounts are known").as_str().to_string();
            for key in [
                (miss.milestone.clone(), segment.clone()),
                (miss.milestone.clone(), "all".to_string()),
                ("all".to_string(), segment.clone()),
                ("all".to_string(), "all".to_string()),
            ] {
                cells.entry(key).or_default().add(miss, arr, opts);
            }
        }
        let rows: Vec<Row> = cells.into_iter().map(|((m, s), cell)| cell.row(m, s)).collect();
        let mut top: Vec<AccountAtRisk> = open_by_account
            .iter()
            .map(|(id, (arr, misses, stage))| {
                let facts = &self.accounts[*id];
                AccountAtRisk {
                    account_id: id.as_str().to_string(),
                    account_name: facts.name.clone(),
                    segment: facts.segment.map_or("", Segment::as_str).to_string(),
                    arr_at_risk: *arr,
                    misses: *misses,
                    stage: *stage,
                    owner: facts.csm_name.clone(),
                }
            })
            .collect();
        let at_risk_now = AtRisk {
            arr_now: top.iter().map(|a| a.arr_at_risk).fold(0, u64::saturating_add),
            misses_now: top.iter().map(|a| a.misses).sum(),
            accounts_now: top.len() as u64,
            arr_at_start,
            top_accounts: {
                // Most ARR first, ties by account id: the same store gives the same list.
                top.sort_by(|a, b| b.arr_at_risk.cmp(&a.arr_at_risk).then(a.account_id.cmp(&b.account_id)));
                top.truncate(TOP_AT_RISK);
                top
            },
            lapsed_misses: lapsed.len() as u64,
            lapsed_arr: lapsed.iter().map(|l| l.arr_at_risk).fold(0, u64::saturating_add),
            arr_now_range: (measured_now > 0).then_some(range_now),
            misses_now_measured: measured_now,
            top_lapsed: {
                // Most ARR first, then the longest lapsed, then by ids: the same store gives the same list.
                lapsed.sort_by(|a, b| {
                    b.arr_at_risk
                        .cmp(&a.arr_at_risk)
                        .then(a.lapsed_at.cmp(&b.lapsed_at))
                        .then(a.account_id.cmp(&b.account_id))
                        .then(a.milestone_id.cmp(&b.milestone_id))
                });
                lapsed.truncate(TOP_AT_RISK);
                lapsed
            },
        };

        let mut expansion = ExpansionPipeline::default();
        for (account, milestone, name, o) in &self.opportunities {
            if self.wanted(self.accounts.get(account)) {
                expansion.add(milestone, name, o);
            }
        }
        expansion.by_milestone.sort_by(|a, b| {
            b.pipeline_arr
                .cmp(&a.pipeline_arr)
                .then(b.opportunities.cmp(&a.opportunities))
                .then(a.milestone.cmp(&b.milestone))
        });
        let churn = self.churn_rows();
        let tasks = self.task_rows();
        let notes = self.notes(&rows);
        Report {
            window_days: opts.window_days,
            as_of: opts.as_of,
            since: opts.since,
            until: opts.until,
            segment: opts.segment.map_or("all", Segment::as_str).to_string(),
            success_plan: opts.success_plan.map(plan_word),
            notes,
            rows,
            churn,
            tasks,
            activity,
            at_risk: at_risk_now,
            expansion,
            worth: {
                let mut worth = self.worth;
                worth.sort_by(|a, b| {
                    (&a.map_segment, &a.map_tenure, &a.milestone).cmp(&(&b.map_segment, &b.map_tenure, &b.milestone))
                });
                worth
            },
        }
    }

    /// Churn by how the account's milestones went (on time, recovered, lapsed).
    fn churn_rows(&self) -> Vec<ChurnRow> {
        let mut churn_counts: BTreeMap<Course, (u64, u64)> = BTreeMap::new();
        for facts in self.accounts.values().filter(|f| self.wanted(Some(f))) {
            let (Some((_, decision)), true) = (facts.latest_decision, facts.any_due) else {
                continue;
            };
            let course = match (facts.missed, facts.lapsed) {
                (_, true) => Course::Lapsed,
                (true, false) => Course::Recovered,
                (false, false) => Course::OnTime,
            };
            let entry = churn_counts.entry(course).or_default();
            entry.0 += 1;
            entry.1 += u64::from(!decision.retained());
        }
        let rate_of = |c: Course| churn_counts.get(&c).and_then(|(n, churned)| Rate::of(*churned, *n));
        let on_time = rate_of(Course::OnTime);
        Course::ALL
            .into_iter()
            .map(|course| {
                let (decided, churned) = churn_counts.get(&course).copied().unwrap_or_default();
                let churn_rate = rate_of(course);
                ChurnRow {
                    accounts: course,
                    decided,
                    churned,
                    churn_rate,
                    ratio_to_on_time: match (churn_rate, on_time) {
                        (Some(r), Some(base)) if base.rate > 0.0 => Some(r.rate / base.rate),
                        _ => None,
                    },
                }
            })
            .collect()
    }

    /// Open and snoozed tasks per owner, most first.
    fn task_rows(&self) -> Vec<TaskRow> {
        let opts = &self.options;
        let mut owners: BTreeMap<String, TaskRow> = BTreeMap::new();
        for task in &self.tasks {
            if !self.wanted(self.accounts.get(&task.account)) {
                continue;
            }
            let row = owners.entry(task.owner_email.clone()).or_insert_with(|| TaskRow {
                owner_email: task.owner_email.clone(),
                owner_name: task.owner_name.clone(),
                open: 0,
                snoozed: 0,
                by_age: ByAge::default(),
                oldest_days: 0,
            });
            match task.status {
                TaskStatus::Snoozed => row.snoozed += 1,
                _ => row.open += 1,
            }
            let age = (opts.as_of - task.created_at).num_days().max(0);
            row.by_age.count(age);
            row.oldest_days = row.oldest_days.max(age);
        }
        let mut tasks: Vec<TaskRow> = owners.into_values().collect();
        tasks.sort_by(|a, b| {
            (b.open + b.snoozed)
                .cmp(&(a.open + a.snoozed))
                .then(a.owner_email.cmp(&b.owner_email))
        });
        tasks
    }

    /// What a reader must know before reading the figures: nothing to
    /// report, a window still open, no control group, too few misses.
    fn notes(&self, rows: &[Row]) -> Vec<String> {
        let opts = &self.options;
        let mut notes = Vec::new();
        match overall(rows) {
            None => notes.push(match opts.segment {
                Some(s) if !self.accounts.values().any(|f| f.segment == Some(s)) => {
                    format!("no accounts in segment {s}: nothing to report")
                }
                _ if opts.success_plan.is_some() && !self.accounts.values().any(|f| self.wanted(Some(f))) => format!(
                    "no accounts {} a success plan: nothing to report",
                    opts.success_plan.map_or("with or without", plan_word)
                ),
                // Expansion opportunities may still have opened: their section says.
                _ => "no missed milestones in this period: no recovery to report".to_string(),
            }),
            Some(all) if all.missed_playbook + all.missed_control == 0 => notes.push(format!(
                "every miss in this period is under {} days old: its recovery window is still open",
                opts.window_days
            )),
            Some(all) if all.missed_control == 0 => notes.push(
                "no misses in the control group: set `holdout` in a map to measure the playbook's uplift".to_string(),
            ),
            Some(all) if all.small_sample => notes.push(format!(
                "the uplift's interval is wider than {:.0} points: too few misses to act on yet",
                ACTIONABLE_WIDTH * 100.0
            )),
            Some(_) => {}
        }
        notes
    }

    /// Whether the report covers `facts`'s account: in the segment asked
    /// for, or any segment, and with or without a plan as asked; an unknown
    /// account is filed under none.
    fn wanted(&self, facts: Option<&AccountFacts>) -> bool {
        let in_segment = match (self.options.segment, facts.and_then(|f| f.segment)) {
            (None, Some(_)) => true,
            (Some(want), Some(seg)) => want == seg,
            (_, None) => false,
        };
        in_segment
            && self
                .options
                .success_plan
                .is_none_or(|want| facts.is_some_and(|f| f.planned == want))
    }
}

/// `with` or `without` a success plan, as `milepost report --success-plan` takes it.
pub fn plan_word(planned: bool) -> &'static str {
    if planned {
        "with"
    } else {
        "without"
    }
}

#[derive(Default)]
struct Cell {
    missed: [u64; 2],
    recovered: [u64; 2],
    window_open: u64,
    by_stage: ByStage,
    days: [Vec<f64>; 2],
    arr_at_risk: u64,
    arr_recovered: u64,
}

impl Cell {
    fn add(&mut self, miss: &Miss, arr: u64, opts: &ReportOptions) {
        let window_end = miss.due_at + opts.window();
        if window_end > opts.as_of {
            // Counted once its window closes, recovered or not: counting early
            // recoveries now and the rest later would flatter every rate.
            self.window_open += 1;
            return;
        }
        let recovered_at = miss.reached.filter(|(at, _)| *at <= window_end);
        let g = usize::from(miss.group == Group::Control);
        self.missed[g] += 1;
        self.arr_at_risk = self.arr_at_risk.saturating_add(arr);
        if let Some((at, from)) = recovered_at {
            self.recovered[g] += 1;
            self.arr_recovered = self.arr_recovered.saturating_add(arr);
            self.days[g].push((at - miss.due_at).num_minutes() as f64 / (24.0 * 60.0));
            if miss.group == Group::Playbook {
                self.by_stage.count(from);
            }
        }
    }

    fn row(mut self, milestone: String, segment: String) -> Row {
        let playbook = Rate::of(self.recovered[0], self.missed[0]);
        let control = Rate::of(self.recovered[1], self.missed[1]);
        let (uplift, uplift_ci) = match (playbook, control) {
            (Some(p), Some(c)) => (Some(p.rate - c.rate), Some(newcombe(p, c))),
            _ => (None, None),
        };
        let small_sample = uplift_ci.is_none_or(|[low, high]| high - low > ACTIONABLE_WIDTH);
        let [pb_days, ctl_days] = &mut self.days;
        Row {
            milestone,
            segment,
            missed_playbook: self.missed[0],
            recovered_playbook: self.recovered[0],
            missed_control: self.missed[1],
            recovered_control: self.recovered[1],
            window_open: self.window_open,
            recovery_rate_playbook: playbook,
            recovery_rate_control: control,
            uplift,
            uplift_ci,
            small_sample,
            recovered_by_stage: self.by_stage,
            median_days_to_recover: MedianDays {
                playbook: median(pb_days),
                control: median(ctl_days),
            },
            arr_at_risk: self.arr_at_risk,
            arr_recovered: self.arr_recovered,
        }
    }
}

/// The median, rounded to a tenth of a day.
fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let m = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    Some((m * 10.0).round() / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newcombes_interval_matches_his_worked_example() {
        // Newcombe (1998), Statistics in Medicine 17:873, table II example (a):
        // 56/70 vs 48/80, difference 0.2000, method 10 interval 0.0524 to 0.3339.
        let ci = newcombe(Rate::of(56, 70).unwrap(), Rate::of(48, 80).unwrap());
        assert!((ci[0] - 0.0524).abs() < 5e-4, "{ci:?}");
        assert!((ci[1] - 0.3339).abs() < 5e-4, "{ci:?}");
        // Example (d): 10/10 vs 0/10, interval 0.6075 to 1.0000.
        let ci = newcombe(Rate::of(10, 10).unwrap(), Rate::of(0, 10).unwrap());
        assert!((ci[0] - 0.6075).abs() < 5e-4 && (ci[1] - 1.0).abs() < 1e-9, "{ci:?}");
    }

    use chrono::{TimeZone, Utc};

    #[test]
    fn a_week_is_the_monday_to_sunday_before_the_monday_in_the_leaders_timezone() {
        let tz: chrono_tz::Tz = "America/Los_Angeles".parse().unwrap();
        // Monday 30 Nov 2026, 08:00 in Los Angeles is 16:00 UTC.
        let monday_8am = Utc.with_ymd_and_hms(2026, 11, 30, 16, 0, 0).unwrap();
        let week = Week::before(monday_8am, tz);
        assert_eq!(week.sent_on, NaiveDate::from_ymd_opt(2026, 11, 30).unwrap());
        assert_eq!(week.since, NaiveDate::from_ymd_opt(2026, 11, 23).unwrap());
        assert_eq!(week.until, NaiveDate::from_ymd_opt(2026, 11, 29).unwrap());
        // A retry on Tuesday digests the same week.
        assert_eq!(Week::before(monday_8am + Duration::hours(30), tz), week);
        // Monday 05:00 UTC is still Sunday in Los Angeles: the week before.
        let sunday_la = Utc.with_ymd_and_hms(2026, 11, 30, 5, 0, 0).unwrap();
        assert_eq!(
            Week::before(sunday_la, tz).sent_on,
            NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
        );
    }

    fn miss(
        account: &crate::Account,
        id: &str,
        due: Timestamp,
        group: Group,
        status: MilestoneStatus,
    ) -> TrackedMilestone {
        use crate::Criterion;
        let def = crate::fixtures::milestone_def(
            id,
            30,
            Criterion::EventCount {
                event: "a".into(),
                min: 1,
                window_days: None,
            },
        );
        let map = crate::fixtures::map_of(vec![def.clone()]);
        let mut m = TrackedMilestone::new(account, &map, &def);
        m.due_at = due;
        m.missed_at = Some(due + Duration::minutes(15));
        m.group = Some(group);
        m.status = status;
        m.arr_weight = 1.0;
        m
    }

    #[test]
    fn activity_counts_the_weeks_misses_and_recoveries_and_arr_at_risk_is_settled_by_recovery_or_renewal() {
        use crate::fixtures::{account, date};
        let at = |d: u32, h: u32| Utc.with_ymd_and_hms(2026, 11, d, h, 0, 0).unwrap();
        let now = at(30, 8);
        let options = ReportOptions {
            since: Some(date(2026, 11, 23)),
            until: Some(date(2026, 11, 29)),
            segment: None,
            success_plan: None,
            window_days: 30,
            as_of: now,
        };
        let mut b = ReportBuilder::new(options);
        let (mut big, small, mut renewed) = (
            account("big", date(2026, 1, 1)),
            account("small", date(2026, 1, 1)),
            account("renewed", date(2026, 1, 1)),
        );
        big.arr = 100_000;
        renewed.arr = 50_000;
        renewed.renewals.push(crate::RenewalOutcome {
            decision_date: date(2026, 11, 25),
            outcome: crate::RenewalDecision::Renewed,
            arr_after: None,
        });
        for a in [&big, &small, &renewed] {
            b.add_account(a);
        }
        // Due this week, escalating: a new miss, open, at risk now but not at the week's start.
        b.add_milestone(&miss(
            &big,
            "new",
            at(24, 6),
            Group::Playbook,
            MilestoneStatus::Escalating(Stage::CsmTask),
        ));
        // Due long ago, recovered this week: a recovery, at risk at the start, not now.
        let mut back = miss(&small, "back", at(2, 6), Group::Control, MilestoneStatus::Recovered);
        back.reached_at = Some(at(26, 12));
        back.reached_from = Some(MilestoneStatus::Missed);
        b.add_milestone(&back);
        // Lapsed before the week: still at risk, until the account's renewal on the 25th.
        b.add_milestone(&miss(
            &renewed,
            "lapsed",
            at(1, 6),
            Group::Playbook,
            MilestoneStatus::Lapsed,
        ));
        let mut old = miss(
            &big,
            "old",
            at(3, 6),
            Group::Playbook,
            MilestoneStatus::Escalating(Stage::Leadership),
        );
        crate::seed::milestone(&mut old).lapsed(at(12, 10));
        b.add_milestone(&old);
        let r = b.finish();
        assert_eq!(
            r.activity.new_misses,
            ByGroup {
                playbook: 1,
                control: 0
            }
        );
        assert_eq!(
            r.activity.recoveries,
            ByGroup {
                playbook: 0,
                control: 1
            }
        );
        assert_eq!(
            r.activity.open_escalations, 1,
            "the lapsed and the recovered are not open"
        );
        assert_eq!(
            r.at_risk.arr_now, 200_000,
            "big's two misses; the renewal settled the lapsed one"
        );
        assert_eq!(r.at_risk.arr_at_start, Some(100_000 + 10_000 + 50_000));
        assert_eq!((r.at_risk.misses_now, r.at_risk.accounts_now), (2, 1));
        let top = &r.at_risk.top_accounts[0];
        assert_eq!((top.account_id.as_str(), top.stage), ("big", Standing::Lapsed));
        // The lapsed misses at risk: big's, not the renewed account's.
        assert_eq!((r.at_risk.lapsed_misses, r.at_risk.lapsed_arr), (1, 100_000));
        let lapsed = &r.at_risk.top_lapsed[0];
        assert_eq!(
            (
                lapsed.account_id.as_str(),
                lapsed.milestone_id.as_str(),
                lapsed.lapsed_days
            ),
            ("big", "old", Some(18))
        );
    }

    proptest::proptest! {
        /// ARRs anywhere up to `u64::MAX` (stored before ARR was bounded, or
        /// at the bound times many accounts) and any weights: the report
        /// never overflows, and its totals are the saturating sums of their parts.
        #[test]
        fn totals_of_extreme_arrs_saturate_and_never_overflow(
            arrs in proptest::collection::vec(
                proptest::prop_oneof![Just(u64::MAX), Just(crate::limits::MAX_ARR), 0u64..=u64::MAX],
                1..6,
            ),
            weights in proptest::collection::vec(0.0f64..=2.0, 1..6),
        ) {
            use crate::fixtures::{account, date};
            let at = |d: u32| Utc.with_ymd_and_hms(2026, 11, d, 6, 0, 0).unwrap();
            let options = ReportOptions {
                since: Some(date(2026, 11, 2)),
                until: Some(date(2026, 11, 29)),
                segment: None,
                success_plan: None,
                window_days: 7,
                as_of: at(30),
            };
            let mut b = ReportBuilder::new(options);
            let mut parts = Vec::new();
            for (i, arr) in arrs.iter().enumerate() {
                let mut a = account(&format!("a{i}"), date(2026, 1, 1));
                a.arr = *arr;
                b.add_account(&a);
                for (j, w) in weights.iter().enumerate() {
                    let mut m = miss(&a, &format!("m{j}"), at(3 + j as u32), Group::Playbook, MilestoneStatus::Lapsed);
                    m.arr_weight = *w;
                    parts.push((*arr as f64 * w).round() as u64);
                    b.add_milestone(&m);
                }
            }
            let r = b.finish();
            let expected = parts.iter().fold(0u64, |t, p| t.saturating_add(*p));
            proptest::prop_assert_eq!(r.at_risk.arr_now, expected);
            let all = r.rows.iter().find(|row| row.milestone == "all" && row.segment == "all").unwrap();
            proptest::prop_assert_eq!(all.arr_at_risk, expected);
        }
    }

    use proptest::strategy::Just;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&mut [7.26]), Some(7.3));
        assert_eq!(median(&mut []), None);
    }

    /// Issue 36: `success_plan` reports on accounts with, or without, a
    /// success plan; the two together are the whole, and a checkpoint miss
    /// counts under the map's milestone that made it.
    #[test]
    fn accounts_with_and_without_a_plan_are_reported_apart_and_add_up_to_the_whole() {
        use crate::fixtures::{account, date};
        let at = |d: u32| Utc.with_ymd_and_hms(2026, 6, d, 6, 0, 0).unwrap();
        let mut planned = account("planned", date(2026, 1, 1));
        planned.success_plan = Some(crate::SuccessPlan {
            account_id: planned.id.clone(),
            version: 1,
            outcomes: Vec::new(),
            set_at: at(1),
            set_by: "maya@vendor.example".into(),
        });
        let unplanned = account("unplanned", date(2026, 1, 1));
        let mut checkpoint = miss(
            &planned,
            "on_pace.costs.2026-06-02",
            at(2),
            Group::Playbook,
            MilestoneStatus::Lapsed,
        );
        checkpoint.checkpoint = Some(crate::PlanCheckpoint {
            milestone: "on_pace".into(),
            outcome: "costs".into(),
            on: date(2026, 6, 2),
            plan_version: 1,
        });
        let misses = [
            checkpoint,
            miss(&planned, "first", at(3), Group::Control, MilestoneStatus::Lapsed),
            miss(&unplanned, "first", at(3), Group::Playbook, MilestoneStatus::Lapsed),
            miss(&unplanned, "second", at(4), Group::Playbook, MilestoneStatus::Lapsed),
        ];
        let report = |success_plan: Option<bool>| {
            let mut b = ReportBuilder::new(ReportOptions {
                since: None,
                until: None,
                segment: None,
                success_plan,
                window_days: 14,
                as_of: at(30),
            });
            b.add_account(&planned);
            b.add_account(&unplanned);
            for m in &misses {
                b.add_milestone(m);
            }
            b.finish()
        };
        let all_row = |r: &Report| {
            r.rows
                .iter()
                .find(|row| row.milestone == "all" && row.segment == "all")
                .cloned()
                .unwrap()
        };
        let (all, with, without) = (report(None), report(Some(true)), report(Some(false)));
        assert_eq!(
            (with.success_plan, without.success_plan, all.success_plan),
            (Some("with"), Some("without"), None)
        );
        let misses_of = |r: &Report| {
            let row = all_row(r);
            (row.missed_playbook, row.missed_control)
        };
        assert_eq!(misses_of(&with), (1, 1));
        assert_eq!(misses_of(&without), (2, 0));
        assert_eq!(misses_of(&all), (3, 1), "the two parts make the whole");
        assert!(
            with.rows.iter().any(|r| r.milestone == "on_pace"),
            "the checkpoint counts under its map milestone: {:?}",
            with.rows.iter().map(|r| &r.milestone).collect::<Vec<_>>()
        );
        let nobody = {
            let mut b = ReportBuilder::new(ReportOptions {
                success_plan: Some(true),
                ..all_options(at(30))
            });
            b.add_account(&unplanned);
            b.finish()
        };
        assert_eq!(nobody.notes, ["no accounts with a success plan: nothing to report"]);
    }

    fn all_options(as_of: Timestamp) -> ReportOptions {
        ReportOptions {
            since: None,
            until: None,
            segment: None,
            success_plan: None,
            window_days: 14,
            as_of,
        }
    }
}

#[cfg(test)]
mod expansion_tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::fixtures::{account, date, map_of, milestone_def};
    use crate::{Criterion, ExpansionPlay, MilestoneDef, Phase};

    /// `id` reached on day `day` of November 2026 by `a`, as its map's expansion milestone.
    fn reached(
        a: &crate::Account,
        id: &str,
        unit: &str,
        unit_price: Option<u64>,
        day: Option<u32>,
    ) -> TrackedMilestone {
        let def = MilestoneDef {
            phase: Phase::Expansion,
            owner: "ae".into(),
            expansion: Some(ExpansionPlay {
                adds: 10,
                unit: unit.into(),
                unit_price,
                play: "p".into(),
            }),
            ..milestone_def(id, 365, Criterion::Manual)
        };
        let mut m = TrackedMilestone::new(a, &map_of(vec![def.clone()]), &def);
        if let Some(day) = day {
            m.status = MilestoneStatus::Achieved;
            m.reached_at = Some(Utc.with_ymd_and_hms(2026, 11, day, 12, 0, 0).unwrap());
            assert!(m.open_opportunity(a));
        }
        m
    }

    #[test]
    fn the_pipeline_counts_the_periods_opportunities_at_the_price_they_opened_at() {
        let (mut acme, mut globex, small) = (
            account("acme", date(2026, 1, 1)),
            account("globex", date(2026, 1, 1)),
            account("small", date(2026, 1, 1)),
        );
        (acme.arr, acme.licensed_seats) = (60_000, 50);
        (globex.arr, globex.licensed_seats) = (100_000, 20);
        (acme.segment, globex.segment) = (crate::Segment::MidMarket, crate::Segment::Enterprise);
        let milestones = [
            reached(&acme, "seats", "seats", None, Some(24)),
            reached(&globex, "seats", "seats", None, Some(25)),
            reached(&small, "plan", "plan_upgrades", Some(1_200), Some(26)),
            reached(&acme, "projects", "projects", None, Some(27)),
            // Before the week, and not reached at all: not this week's pipeline.
            reached(&globex, "plan", "plan_upgrades", Some(1_200), Some(2)),
            reached(&small, "seats", "seats", None, None),
        ];
        // A price rise after the opportunities opened changes nothing reported.
        acme.arr = 90_000;
        let report = |segment: Option<crate::Segment>| {
            let mut b = ReportBuilder::new(ReportOptions {
                since: Some(date(2026, 11, 23)),
                until: Some(date(2026, 11, 29)),
                segment,
                success_plan: None,
                window_days: 30,
                as_of: Utc.with_ymd_and_hms(2026, 11, 30, 8, 0, 0).unwrap(),
            });
            for a in [&acme, &globex, &small] {
                b.add_account(a);
            }
            for m in &milestones {
                b.add_milestone(m);
            }
            b.finish()
        };
        let all = report(None);
        let e = &all.expansion;
        // 10 seats at $1,200 and at $5,000, one $1,200 plan; the projects unpriced.
        assert_eq!(
            (e.opportunities, e.pipeline_arr, e.unpriced),
            (4, 12_000 + 50_000 + 12_000, 1)
        );
        let rows: Vec<(&str, u64, u64, u64)> = e
            .by_milestone
            .iter()
            .map(|r| (r.milestone.as_str(), r.opportunities, r.adds, r.pipeline_arr))
            .collect();
        assert_eq!(
            rows,
            [
                ("seats", 2, 20, 62_000),
                ("plan", 1, 10, 12_000),
                ("projects", 1, 10, 0)
            ]
        );
        // Never missed, never due: no miss, no ARR at risk, no churn cell.
        assert!(all.rows.is_empty() && all.at_risk.misses_now == 0, "{all:?}");
        let smb = report(Some(crate::Segment::Smb));
        assert_eq!((smb.expansion.opportunities, smb.expansion.pipeline_arr), (1, 12_000));
    }
}
