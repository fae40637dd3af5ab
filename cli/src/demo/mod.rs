//! `milepost demo`: the whole pipeline on embedded adapters. A seeded customer
//! base sends its product events through the same ingest logic the Lambda
//! uses, the sweep runs every simulated hour, and every escalation runs to
//! its end; emails land in an outbox, tasks and a summary next to it.

pub mod generator;
pub mod people;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use chrono::Duration;
use indicatif::{ProgressBar, ProgressStyle};
use milepost_app::ingest::wire::parse_body;
use milepost_app::links::{LinkSigner, DEV_LINK_KEY};
use milepost_app::ports::Clock;
use milepost_app::ports::{AccountStore, Mailer, MapStore, MilestoneStore, SendError};
use milepost_app::sweep::SweepOptions;
use milepost_app::{Config, Services};
use milepost_domain::report::{ReportOptions, DEFAULT_WINDOW_DAYS};
use milepost_domain::{
    AccountId, Actor, CsmTask, DomainEvent, EmailKind, MilestoneStatus, OutgoingEmail, ProductEvent, Step, Timestamp,
    TrackedMilestone, CSM_ROLE,
};

use milepost_embedded::{InMemoryStore, LocalWorkflowRunner, OutboxMailer, RecordingPublisher, VirtualClock};
use rand::Rng;
use serde::Serialize;

use generator::{plan_accounts, rng_for, sim_start, AccountPlan};

/// Events per webhook request, as a product backend would batch them.
const BATCH_SIZE: usize = 100;
/// Share of requests delivered twice, as at-least-once webhooks do.
const REDELIVERY_ODDS: f64 = 0.03;

#[derive(Clone, Debug)]
pub struct DemoOptions {
    pub accounts: usize,
    pub days: u32,
    pub seed: u64,
    pub out: PathBuf,
    pub progress: bool,
    /// Write each email to the outbox (off only for scale runs).
    pub write_emails: bool,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            accounts: 300,
            days: 120,
            seed: 42,
            out: PathBuf::from("milepost-demo"),
            progress: true,
            write_emails: true,
        }
    }
}

/// The counts written to `summary.json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub accounts: usize,
    pub milestones_tracked: usize,
    pub achieved: usize,
    pub missed: usize,
    /// Misses held out of the playbook (the maps' `holdout`): the control group.
    pub missed_in_control: usize,
    pub recovered: usize,
    pub lapsed: usize,
    pub still_escalating: usize,
    pub pending: usize,
    /// Day-1 touches that reached the customer: outreach and follow-up
    /// emails sent on their own (not those folded into another outreach, nor
    /// those a pause, an unsubscribe or the contact policy held), and in-app
    /// messages asked of the product.
    pub day1_touches: usize,
    pub csm_tasks: usize,
    pub leadership_escalations: usize,
    /// After the playbook: owners reminded of a lapsed miss (at the maps'
    /// `lapsed_reminder_days`), tasks untouched past `task_sla_business_days`
    /// raised to their owner, and those raised on to the CS leader; each an
    /// email that went.
    pub lapsed_reminders: usize,
    pub tasks_over_sla: usize,
    pub tasks_raised_to_lead: usize,
    /// Misses under the CSM threshold: the customer steps only (tech-touch).
    pub kept_tech_touch: usize,
    /// Misses with a task but under the leadership threshold.
    pub kept_from_leadership: usize,
    /// Held-back lists sent, and the misses they listed (summary.json keeps
    /// the names of earlier versions).
    #[serde(rename = "owner_digests")]
    pub held_back_lists: usize,
    pub owner_digest_rows: usize,
    /// Heads-ups before a miss: to owners, and to customers' champions (one
    /// customer email may name several milestones).
    pub heads_ups_to_owners: usize,
    pub heads_ups_to_customers: usize,
    /// Milestones whose owner got a heads-up: reached by the due date after
    /// it, and missed anyway (the demo's customers do not read their email).
    pub heads_up_then_reached: usize,
    pub heads_up_then_missed: usize,
    pub emails_sent: u64,
    pub events_sent: usize,
    pub events_duplicate: usize,
    pub events_parked_then_applied: usize,
    /// The playbook's recoveries by where they came (`RecoveredAfter`, as
    /// `MilestoneRecovered.recovered_after` and `milepost report` say);
    /// the control group's are in `recovered` only.
    pub recovered_by_stage: BTreeMap<String, usize>,
    pub domain_events: BTreeMap<String, usize>,
    /// CSM tasks by their state at the end: open, snoozed, done, dismissed.
    pub tasks_by_state: BTreeMap<String, usize>,
    /// Closed tasks by why: completed, customer_recovered, milestone_confirmed, or a dismissal's reason.
    pub tasks_closed_by: BTreeMap<String, usize>,
    /// Tasks still open or snoozed whose milestone was reached: must be 0.
    pub tasks_open_after_recovery: usize,
    /// Tasks owned by a role the account has no contact for, so they went to its CSM.
    pub tasks_to_csm_for_lack_of_an_owner: usize,
    pub manual_confirmations: usize,
    /// What the people pressed in their emails, and how it went.
    pub buttons_pressed: BTreeMap<String, usize>,
    /// What `report.json` says the playbook adds to recovery, in words.
    pub playbook_uplift: String,
    /// Weekly leadership digests sent (Mondays 08:00 in the leader's timezone).
    pub weekly_digests: usize,
    /// Success plans set (`success-plans.json`), and their checkpoints as
    /// tracked milestones (the maps' `agreed_outcome`): how many, missed
    /// (behind pace on their date), reached on time, and reached late.
    pub success_plans: usize,
    pub checkpoints_tracked: usize,
    pub checkpoints_missed: usize,
    pub checkpoints_on_time: usize,
    pub checkpoints_reached_late: usize,
    /// The maps' expansion milestones tracked (apart from `achieved` and
    /// `pending`: they are never missed), the opportunities reaching them
    /// opened, and the yearly pipeline those add, each priced as it opened
    /// (unpriced ones counted apart).
    pub expansion_tracked: usize,
    pub expansion_opportunities: usize,
    pub expansion_pipeline_arr: u64,
    pub expansion_unpriced: usize,
    /// Owners emailed about an opportunity (the sweep's, once each).
    pub expansion_owners_told: usize,
}

/// Monday 08:00 in the leader's timezone: when the schedule runs the digest.
fn is_digest_time(now: Timestamp, tz: chrono_tz::Tz) -> bool {
    use chrono::{Datelike, Timelike};
    let local = now.with_timezone(&tz);
    local.weekday() == chrono::Weekday::Mon && local.hour() == 8
}

/// The playbook's mailer, counting what it sent by kind: what the summary
/// counts as a day-1 touch is an email that went.
struct KindTally {
    inner: Arc<dyn Mailer>,
    sent: std::sync::Mutex<BTreeMap<&'static str, usize>>,
}

impl KindTally {
    fn new(inner: Arc<dyn Mailer>) -> Self {
        KindTally {
            inner,
            sent: Default::default(),
        }
    }

    fn sent(&self, kind: EmailKind) -> usize {
        self.sent
            .lock()
            .expect("tally")
            .get(kind.as_str())
            .copied()
            .unwrap_or(0)
    }
}

#[async_trait::async_trait]
impl Mailer for KindTally {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, SendError> {
        let id = self.inner.send(email).await?;
        *self.sent.lock().expect("tally").entry(email.kind.as_str()).or_default() += 1;
        Ok(id)
    }
}

/// Counts emails without writing them, for scale runs.
struct CountingMailer(std::sync::atomic::AtomicU64);

#[async_trait::async_trait]
impl Mailer for CountingMailer {
    async fn send(&self, _email: &OutgoingEmail) -> Result<String, SendError> {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        Ok(format!("counted-{n}"))
    }
}

/// Where the run's emails go: the outbox and, for the weekly digest, a
/// folder beside it; or, without `write_emails`, only counted.
struct Mailers {
    outbox: Option<Arc<OutboxMailer>>,
    digest: Option<Arc<OutboxMailer>>,
    counter: Arc<CountingMailer>,
}

impl Mailers {
    fn new(opts: &DemoOptions, outbox_dir: &Path, digest_dir: &Path) -> Result<Self> {
        let folder = |dir: &Path| -> Result<Option<Arc<OutboxMailer>>> {
            if !opts.write_emails {
                return Ok(None);
            }
            let mailer = OutboxMailer::new(dir).with_context(|| format!("creating {}", dir.display()))?;
            Ok(Some(Arc::new(mailer)))
        };
        Ok(Mailers {
            outbox: folder(outbox_dir)?,
            digest: folder(digest_dir)?,
            counter: Arc::new(CountingMailer(Default::default())),
        })
    }

    fn playbook(&self) -> Arc<dyn Mailer> {
        match &self.outbox {
            Some(o) => o.clone(),
            None => self.counter.clone(),
        }
    }

    fn weekly_digest(&self) -> Arc<dyn Mailer> {
        match &self.digest {
            Some(o) => o.clone(),
            None => self.counter.clone(),
        }
    }

    /// Emails sent through the playbook's mailer.
    fn sent(&self) -> u64 {
        self.outbox.as_ref().map_or_else(
            || self.counter.0.load(std::sync::atomic::Ordering::Relaxed),
            |o| o.sent(),
        )
    }
}

fn progress_bar(opts: &DemoOptions) -> ProgressBar {
    let bar = if opts.progress {
        ProgressBar::new(u64::from(opts.days))
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] day {pos}/{len} ({elapsed})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message("simulating");
    bar
}

pub async fn run(opts: &DemoOptions) -> Result<Summary> {
    let outbox_dir = opts.out.join("outbox");
    let digest_dir = opts.out.join("digest");
    clear_outbox(&outbox_dir)?;
    clear_outbox(&digest_dir)?;
    std::fs::create_dir_all(&opts.out).with_context(|| format!("creating {}", opts.out.display()))?;

    let store = Arc::new(InMemoryStore::new());
    let publisher = Arc::new(RecordingPublisher::default());
    let runner = Arc::new(LocalWorkflowRunner::new());
    let clock = Arc::new(VirtualClock::new(sim_start()));
    let mailers = Mailers::new(opts, &outbox_dir, &digest_dir)?;
    let playbook_mail = Arc::new(KindTally::new(mailers.playbook()));
    // The embedded store runs in process: applying accounts side by side only adds tasks.
    let config = Config {
        accounts_at_once: 1,
        company_name: Some("Northwind Software".to_string()),
        // The team's emails link each account to its page in the console.
        console_url: Some("https://milepost.example.com".to_string()),
        ..Config::default()
    };
    let links = config.links(LinkSigner::new(DEV_LINK_KEY.as_bytes()).expect("the development key is long enough"));
    let services = Services {
        store: store.clone(),
        mailer: playbook_mail.clone(),
        events: publisher.clone(),
        workflows: runner.clone(),
        clock: clock.clone(),
        config,
        links: Some(links.clone()),
    };

    let (ingestion, playbook) = (services.ingestion(), services.playbook());
    // Nobody reads the console while the demo runs: its portfolio and
    // results are kept once, at the end.
    let scheduled = services.scheduled_run();
    let actions = services.actions().expect("the demo signs links");
    let weekly = milepost_app::weekly_digest::WeeklyDigest {
        mailer: mailers.weekly_digest(),
        ..services.weekly_digest()
    };
    let mut people = people::People::default();
    let maps = crate::example_maps::example_maps();
    for map in &maps {
        store.put_map(map).await?;
    }
    let plans = plan_accounts(opts.accounts, opts.seed, &maps);
    let mut manual: Vec<_> = plans
        .iter()
        .flat_map(|p| {
            p.manual_marks
                .iter()
                .map(move |(at, m)| (*at, p.account.id.clone(), m.clone()))
        })
        .collect();
    manual.sort();
    let mut appearances: Vec<_> = plans.iter().map(|p| (p.appears_at, p.index)).collect();
    appearances.sort();
    // Success plans, set by each account's CSM as `milepost outcomes set` does.
    let mut plan_sets: Vec<_> = plans
        .iter()
        .filter_map(|p| p.success_plan.as_ref().map(|s| (s.set_at, p.index)))
        .collect();
    plan_sets.sort();
    let mut next_plan = 0;

    let bar = progress_bar(opts);
    let mut summary = Summary::default();
    let mut redelivery_rng = rng_for(opts.seed, usize::MAX, 7);
    let (mut next_appearance, mut next_manual) = (0, 0);
    let mut day_events: Vec<ProductEvent> = Vec::new();
    let mut order: Vec<(Timestamp, usize)> = Vec::new();
    for day in 0..i64::from(opts.days) {
        day_events.clear();
        for plan in &plans {
            plan.events_on(day, opts.seed, &mut day_events);
            plan.measures_on(day, &mut day_events);
        }
        // Time order, ties in generation order: sort small keys, not the events.
        order.clear();
        order.extend(day_events.iter().enumerate().map(|(i, e)| (e.timestamp, i)));
        order.sort_unstable();
        summary.events_sent += day_events.len();
        let mut cursor = 0;
        for hour in 1..=24 {
            let now = sim_start() + Duration::days(day) + Duration::hours(hour);
            clock.set(now);
            while next_appearance < appearances.len() && appearances[next_appearance].0 <= now {
                let onboarded = ingestion
                    .upsert_account(&plans[appearances[next_appearance].1].account)
                    .await?;
                summary.events_parked_then_applied += onboarded.parked_applied;
                next_appearance += 1;
            }
            while next_plan < plan_sets.len() && plan_sets[next_plan].0 <= now {
                let p = &plans[plan_sets[next_plan].1];
                let outcomes = p.success_plan.as_ref().expect("listed above").outcomes.clone();
                let by = p.account.csm.email.to_string();
                milepost_app::success_plans::set_plan(store.as_ref(), &p.account.id, outcomes, &by, now).await?;
                summary.success_plans += 1;
                next_plan += 1;
            }
            let hour_end = cursor + order[cursor..].partition_point(|(t, _)| *t < now);
            let batches = order[cursor..hour_end].chunks(BATCH_SIZE);
            let batches = batches.map(|batch| batch.iter().map(|(_, i)| &day_events[*i]).collect());
            deliver(&ingestion, batches, &mut redelivery_rng, &mut summary).await?;
            cursor = hour_end;
            confirm_due(&ingestion, &store, &mut manual, &mut next_manual, now, &mut summary).await?;
            let ran = scheduled.run(&SweepOptions::default()).await?;
            summary.held_back_lists += ran.held_back_lists.sent;
            summary.owner_digest_rows += ran.held_back_lists.listed;
            summary.heads_ups_to_owners += ran.heads_ups.owners_told;
            summary.heads_ups_to_customers += ran.heads_ups.champions_told;
            summary.expansion_owners_told += ran.heads_ups.opportunities_told;
            runner.run_due(&playbook, now).await;
            if is_digest_time(now, services.config.leader_timezone) {
                summary.weekly_digests += weekly_digest(&weekly, opts, &digest_dir).await?;
            }
            // The people read their email: new tasks noticed, buttons pressed when due.
            people.notice(&store.tasks_opened_from(people.noticed), opts.seed);
            people.press_due(&actions, &links, now).await;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();

    let milestones = store.all_milestones();
    let tasks = store.all_tasks();
    tally(&mut summary, &store, &plans, &milestones, &tasks).await?;
    summary.buttons_pressed = people.pressed.clone();
    summary.emails_sent = mailers.sent();
    let events = publisher.events();
    for e in &events {
        *summary.domain_events.entry(e.detail_type().to_string()).or_default() += 1;
    }
    summary.day1_touches = playbook_mail.sent(EmailKind::Outreach)
        + playbook_mail.sent(EmailKind::FollowUp)
        + summary.domain_events.get("InAppMessageRequested").copied().unwrap_or(0);
    summary.lapsed_reminders = playbook_mail.sent(EmailKind::LapsedReminder);
    summary.tasks_over_sla = playbook_mail.sent(EmailKind::TaskOverSla);
    summary.tasks_raised_to_lead = playbook_mail.sent(EmailKind::TaskRaisedToLead);

    let report = write_outputs(opts, &store, clock.now(), &tasks, &events).await?;
    summary.playbook_uplift = report.overall().map_or_else(
        || "not measured: no misses whose window has closed".to_string(),
        crate::report_cmd::uplift_line,
    );
    write_json(&opts.out.join("summary.json"), &summary)?;
    Ok(summary)
}

/// What the run came to, from the store at its end: the
/// milestones by status, what the playbook did and held back, where the
/// recovered caught up, and the tasks by state.
async fn tally(
    summary: &mut Summary,
    store: &InMemoryStore,
    plans: &[AccountPlan],
    milestones: &[TrackedMilestone],
    tasks: &[CsmTask],
) -> Result<()> {
    summary.accounts = store.account_count();
    summary.milestones_tracked = milestones.len();
    for m in milestones {
        if m.expansion().is_some() {
            summary.expansion_tracked += 1;
            if let Some(o) = m.opportunity() {
                summary.expansion_opportunities += 1;
                match o.pipeline_arr() {
                    Some(arr) => summary.expansion_pipeline_arr = summary.expansion_pipeline_arr.saturating_add(arr),
                    None => summary.expansion_unpriced += 1,
                }
            }
            continue;
        }
        match m.status() {
            MilestoneStatus::Achieved => summary.achieved += 1,
            MilestoneStatus::Recovered => summary.recovered += 1,
            MilestoneStatus::Lapsed => summary.lapsed += 1,
            MilestoneStatus::Pending => summary.pending += 1,
            MilestoneStatus::Missed | MilestoneStatus::Escalating(_) => summary.still_escalating += 1,
        }
        if m.missed_at().is_some() {
            summary.missed += 1;
            summary.missed_in_control += usize::from(m.group() == Some(milepost_domain::Group::Control));
        }
        if m.checkpoint().is_some() {
            summary.checkpoints_tracked += 1;
            summary.checkpoints_missed += usize::from(m.missed_at().is_some());
            summary.checkpoints_on_time += usize::from(m.status() == MilestoneStatus::Achieved);
            summary.checkpoints_reached_late += usize::from(m.status() == MilestoneStatus::Recovered);
        }
    }
    // What the map's thresholds held back, as the escalation log says.
    let mut kept_from_leadership = std::collections::HashSet::new();
    let mut leader_told = std::collections::HashSet::new();
    let mut warned = std::collections::HashSet::new();
    for plan in plans {
        for entry in milepost_app::ports::EscalationLog::log_of(store, &plan.account.id).await? {
            if entry.key.contains(":heads_up:owner:") {
                warned.insert((entry.account_id.clone(), entry.milestone_id.clone()));
            }
            match (entry.step, entry.key.rsplit(':').next()) {
                (Some(Step::CsmTask), Some("held_back")) => summary.kept_tech_touch += 1,
                (Some(Step::Leadership), Some("held_back")) => {
                    summary.kept_from_leadership += 1;
                    kept_from_leadership.insert(entry.execution);
                }
                (Some(Step::Leadership), Some("tech_touch")) => {
                    kept_from_leadership.insert(entry.execution);
                }
                (Some(Step::Leadership), Some("leader")) if entry.key.ends_with(":leadership:email:leader") => {
                    leader_told.insert(entry.execution);
                }
                _ => {}
            }
        }
    }
    // Escalations whose leadership email went (alone or in the leader's
    // daily list), as their log says: the stage event follows when the step
    // is done with the sponsor's email, a business day later.
    summary.leadership_escalations = leader_told.len();
    for m in milestones {
        if warned.contains(&(m.account_id().clone(), m.milestone_id().to_owned())) {
            match m.status() {
                MilestoneStatus::Achieved => summary.heads_up_then_reached += 1,
                _ if m.missed_at().is_some() => summary.heads_up_then_missed += 1,
                _ => {}
            }
        }
    }
    // Where in the playbook each recovered customer caught up.
    for m in milestones.iter().filter(|m| m.status() == MilestoneStatus::Recovered) {
        if m.group() == Some(milepost_domain::Group::Control) {
            continue;
        }
        let from = m.reached_from().unwrap_or(MilestoneStatus::Missed);
        let when = milepost_domain::RecoveredAfter::of(from).label();
        *summary.recovered_by_stage.entry(when.to_string()).or_default() += 1;
    }
    summary.csm_tasks = tasks.len();
    let reached: std::collections::HashSet<(&str, &str)> = milestones
        .iter()
        .filter(|m| m.status().is_reached())
        .map(|m| (m.account_id().as_str(), m.milestone_id()))
        .collect();
    for task in tasks {
        *summary.tasks_by_state.entry(task.status().to_string()).or_default() += 1;
        if let Some(closed) = &task.closed() {
            *summary
                .tasks_closed_by
                .entry(closed.reason.as_str().to_string())
                .or_default() += 1;
        }
        if reached.contains(&(task.brief().account_id.as_str(), task.brief().milestone_id.as_str()))
            && task.status().is_live()
        {
            summary.tasks_open_after_recovery += 1;
        }
        if task.brief().owner_is_fallback {
            summary.tasks_to_csm_for_lack_of_an_owner += 1;
        }
    }
    Ok(())
}

/// The run's files beside the summary: its tasks, its domain events (one
/// JSON object a line) and what `milepost report --json` prints for it,
/// as of its end (returned).
async fn write_outputs(
    opts: &DemoOptions,
    store: &InMemoryStore,
    now: Timestamp,
    tasks: &[CsmTask],
    events: &[DomainEvent],
) -> Result<milepost_domain::report::Report> {
    write_json(&opts.out.join("tasks.json"), &tasks)?;
    write_json(&opts.out.join("success-plans.json"), &success_plans(store).await?)?;
    let mut lines = String::new();
    for e in events {
        lines.push_str(&e.detail().to_string());
        lines.push('\n');
    }
    std::fs::write(opts.out.join("domain-events.jsonl"), lines)?;

    // What `milepost report --json` prints for this run, as of its end.
    let checked = crate::report_cmd::Checked {
        options: ReportOptions {
            since: None,
            until: None,
            segment: None,
            success_plan: None,
            window_days: DEFAULT_WINDOW_DAYS,
            as_of: now,
        },
        unknown_segment: None,
    };
    let report = crate::report_cmd::build(store, checked).await?;
    std::fs::write(opts.out.join("report.json"), crate::report_cmd::to_json(&report))?;
    // What `milepost console` serves.
    milepost_app::portfolio_keeper::refresh_all(store, now).await?;
    milepost_app::console::keep_results(store, now).await?;
    std::fs::write(opts.out.join("store.json"), serde_json::to_vec(&store.snapshot(now))?)?;
    Ok(report)
}

/// Each success plan as it stands, beside its checkpoints as they went.
async fn success_plans(store: &InMemoryStore) -> Result<Vec<serde_json::Value>> {
    use milepost_app::ports::{MilestoneStore, SuccessPlanStore};
    let mut plans = store.success_plans().await?;
    plans.sort_by(|a, b| a.account_id.cmp(&b.account_id));
    let mut out = Vec::new();
    for plan in plans {
        let mut checkpoints: Vec<serde_json::Value> = store
            .milestones_of(&plan.account_id)
            .await?
            .iter()
            .filter(|m| m.checkpoint().is_some())
            .map(|m| {
                serde_json::json!({
                    "milestone_id": m.milestone_id(), "name": m.customer_title(), "due_at": m.due_at(),
                    "status": m.status().to_string(), "missed": m.missed_at().is_some(), "reached_at": m.reached_at(),
                })
            })
            .collect();
        checkpoints.sort_by_key(|c| c["due_at"].as_str().unwrap_or_default().to_string());
        out.push(serde_json::json!({ "plan": plan, "checkpoints": checkpoints }));
    }
    Ok(out)
}

/// Delivers each batch as a webhook body arrives, through the same parser;
/// some twice, as senders redeliver.
async fn deliver(
    ingestion: &milepost_app::ingest::Ingestion,
    batches: impl Iterator<Item = Vec<&ProductEvent>>,
    redelivery_rng: &mut impl Rng,
    summary: &mut Summary,
) -> Result<()> {
    for batch in batches {
        let body = serde_json::to_vec(&batch)?;
        let deliveries = if redelivery_rng.random_bool(REDELIVERY_ODDS) {
            2
        } else {
            1
        };
        for _ in 0..deliveries {
            let report = ingestion.ingest(parse_body(&body)?).await?;
            summary.events_duplicate += report.duplicates;
            anyhow::ensure!(
                report.rejected.is_empty(),
                "demo events were rejected: {:?}",
                report.rejected
            );
        }
    }
    Ok(())
}

/// The manual milestones due by `now`, confirmed by their owners (by role);
/// one whose account is not onboarded yet waits an hour.
async fn confirm_due(
    ingestion: &milepost_app::ingest::Ingestion,
    store: &InMemoryStore,
    manual: &mut [(Timestamp, AccountId, String)],
    next_manual: &mut usize,
    now: Timestamp,
    summary: &mut Summary,
) -> Result<()> {
    while *next_manual < manual.len() && manual[*next_manual].0 <= now {
        let (at, account, milestone) = &manual[*next_manual];
        if let Some(found) = store.get_account(account).await? {
            // The milestone's owner confirms it (in the demo, always its owner by role).
            let role = store
                .get_milestone(account, milestone)
                .await?
                .map_or_else(|| CSM_ROLE.to_string(), |m| m.owner().to_owned());
            let by = Actor::person(found.owner(&role).contact);
            ingestion.confirm_manual(account, milestone, &by, None, *at).await?;
            summary.manual_confirmations += 1;
        } else {
            // The account is not onboarded yet: the CSM confirms it an hour later.
            manual[*next_manual].0 = now + Duration::hours(1);
            manual.sort();
            continue;
        }
        *next_manual += 1;
    }
    Ok(())
}

/// The schedule's Monday 08:00: the weekly digest, and beside its email
/// the figures `milepost report --json --since … --until …` printed then.
/// Returns how many digests went (0 or 1).
async fn weekly_digest(
    weekly: &milepost_app::weekly_digest::WeeklyDigest,
    opts: &DemoOptions,
    digest_dir: &Path,
) -> Result<usize> {
    let outcome = weekly.run().await?;
    if let (true, Some(week_report)) = (opts.write_emails, &outcome.week_report) {
        std::fs::write(
            digest_dir.join(format!("week-{}.report.json", outcome.week.since)),
            crate::report_cmd::to_json(week_report),
        )?;
    }
    Ok(usize::from(
        outcome.result == milepost_app::weekly_digest::DigestResult::Sent,
    ))
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Removes the emails of an earlier run, and nothing else.
fn clear_outbox(dir: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let path = entry?.path();
        if matches!(path.extension().and_then(|e| e.to_str()), Some("eml" | "html" | "json")) {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
}

/// The short table printed after a run.
pub fn render_table(s: &Summary, out: &Path) -> String {
    let state = |k: &str| s.tasks_by_state.get(k).copied().unwrap_or(0).to_string();
    let rows: [(&str, String); 28] = [
        ("accounts", s.accounts.to_string()),
        ("milestones tracked", s.milestones_tracked.to_string()),
        ("achieved", s.achieved.to_string()),
        ("missed", s.missed.to_string()),
        ("  in the control group", s.missed_in_control.to_string()),
        ("  recovered", s.recovered.to_string()),
        ("  lapsed", s.lapsed.to_string()),
        ("  still escalating", s.still_escalating.to_string()),
        ("day-1 touches", s.day1_touches.to_string()),
        ("CSM tasks", s.csm_tasks.to_string()),
        ("  done", state("done")),
        ("  dismissed", state("dismissed")),
        ("  snoozed", state("snoozed")),
        ("  open", state("open")),
        ("manual confirmations", s.manual_confirmations.to_string()),
        ("leadership escalations", s.leadership_escalations.to_string()),
        ("reminders after a lapse", s.lapsed_reminders.to_string()),
        (
            "untouched tasks raised",
            format!("{} ({} on to a lead)", s.tasks_over_sla, s.tasks_raised_to_lead),
        ),
        (
            "kept under thresholds",
            (s.kept_tech_touch + s.kept_from_leadership).to_string(),
        ),
        (
            "  in owner digests",
            format!("{} ({} sent)", s.owner_digest_rows, s.held_back_lists),
        ),
        (
            "heads-ups before a miss",
            format!("{} ({} to customers)", s.heads_ups_to_owners, s.heads_ups_to_customers),
        ),
        (
            "  then reached / missed",
            format!("{} / {}", s.heads_up_then_reached, s.heads_up_then_missed),
        ),
        ("success plans", s.success_plans.to_string()),
        (
            "  checkpoints missed",
            format!(
                "{} of {} ({} met on time, {} late)",
                s.checkpoints_missed, s.checkpoints_tracked, s.checkpoints_on_time, s.checkpoints_reached_late
            ),
        ),
        (
            "expansion opportunities",
            format!(
                "{} of {} tracked, {} a year in pipeline ({} unpriced); {} owners emailed",
                s.expansion_opportunities,
                s.expansion_tracked,
                milepost_app::email::fmt_money(s.expansion_pipeline_arr),
                s.expansion_unpriced,
                s.expansion_owners_told
            ),
        ),
        ("emails sent", s.emails_sent.to_string()),
        ("weekly digests", s.weekly_digests.to_string()),
        (
            "events (duplicates)",
            format!("{} ({})", s.events_sent, s.events_duplicate),
        ),
    ];
    let mut table = String::from("Milepost demo\n");
    for (label, value) in rows {
        table.push_str(&format!("  {label:<24}{value:>10}\n"));
    }
    table.push_str(&format!(
        "\nRecovery uplift of the playbook vs the control group: {}\n",
        s.playbook_uplift
    ));
    table.push_str(&format!(
        "\nOutbox: {}/outbox   Digests: {}/digest   Tasks: {}/tasks.json   Summary: {}/summary.json   Report: {}/report.json\n",
        out.display(),
        out.display(),
        out.display(),
        out.display(),
        out.display()
    ));
    table
}
