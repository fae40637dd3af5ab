//! `milepost maps simulate`: an account history (the files `milepost
//! discover` reads) replayed through the real pipeline — ingestion, the
//! scheduled sweep, the playbook's steps, on the embedded adapters under a
//! virtual clock, hour by hour — once under the maps in use and once under
//! proposed ones, and what each would have done, side by side: misses,
//! playbooks started, customer emails, CSM tasks and hours, leadership
//! escalations, ARR flagged, and, from the renewal outcomes, how well a miss
//! warned of churn (precision and recall) and how many renewed customers
//! were written to.
//!
//! What a history cannot say is left out and said so: manual milestones
//! (their confirmations are not in an event export) are not tracked, and
//! nobody acts on a task (so the playbook runs its course on every miss).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use chrono::{Duration, NaiveDate, TimeZone, Utc};
use milepost_app::ports::{Mailer, MapStore, SendError};
use milepost_app::sweep::SweepOptions;
use milepost_app::{Config, Services};
use milepost_discovery::input::{self, AccountRecord, Outcome};
use milepost_domain::{
    Account, AccountId, Contact, Criterion, DomainEvent, EmailAddress, EmailKind, Group, MilestoneMap, OutgoingEmail,
    ProductEvent, Stage, Timestamp,
};
use milepost_embedded::{InMemoryStore, LocalWorkflowRunner, RecordingPublisher, VirtualClock};
use serde::Serialize;

/// What `milepost maps simulate` was asked.
pub struct SimulateOptions {
    pub accounts: PathBuf,
    pub events: PathBuf,
    /// The maps in use: files, or directories of them.
    pub current: Vec<PathBuf>,
    /// The maps proposed instead.
    pub proposed: Vec<PathBuf>,
    /// A CSM's minutes per task, for the hours the tasks cost.
    pub minutes_per_task: u32,
}

pub use milepost_domain::map_review::Figures;

/// One account under one set of maps.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AccountFigures {
    pub misses: u64,
    /// A miss due before the renewal decision.
    pub flagged: bool,
    /// A customer email before the renewal decision.
    pub contacted: bool,
}

/// One set of maps' run.
#[derive(Clone, Debug, Serialize)]
pub struct SetResult {
    pub maps: Vec<String>,
    pub total: Figures,
    pub segments: BTreeMap<String, Figures>,
    pub misses_by_milestone: BTreeMap<String, u64>,
    /// Every email the pipeline sent, by kind (the team's and the customer's).
    pub emails_by_kind: BTreeMap<&'static str, u64>,
    /// Manual milestones the maps hold, not simulated.
    pub manual_not_simulated: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct AccountLine {
    pub account_id: String,
    pub segment: String,
    pub outcome: &'static str,
    pub decision_date: NaiveDate,
    pub current: AccountFigures,
    pub proposed: AccountFigures,
}

/// Both runs, and what they ran on.
#[derive(Clone, Debug, Serialize)]
pub struct Simulation {
    pub accounts: usize,
    /// Events of known accounts read from the export.
    pub events: usize,
    /// Of those, the ones no milestone of either set reads: not replayed
    /// (they would change an account's activity, which no figure counts).
    pub events_unread: usize,
    pub events_skipped: usize,
    pub from: NaiveDate,
    pub until: NaiveDate,
    pub minutes_per_task: u32,
    pub current: SetResult,
    pub proposed: SetResult,
    pub per_account: Vec<AccountLine>,
    pub not_simulated: Vec<String>,
}

/// The history, read once for both runs.
struct History {
    accounts: Vec<AccountRecord>,
    /// In time order: the events some milestone reads.
    events: Vec<ProductEvent>,
    /// Events of known accounts no milestone of either set reads: not
    /// replayed. They would only add to an account's activity, which the
    /// emails' wording and the health score show and no figure counts.
    unread: usize,
    skipped: usize,
}

/// What the pipeline sent: how many of each kind, and each account's
/// emails (kind and date). Nothing else of an email is kept.
#[derive(Clone, Default)]
struct Sent {
    by_kind: BTreeMap<&'static str, u64>,
    by_account: HashMap<AccountId, Vec<(EmailKind, Timestamp)>>,
}

/// A mailer that only counts (`Sent`).
#[derive(Default)]
struct CountingMailer {
    sent: Mutex<Sent>,
}

#[async_trait::async_trait]
impl Mailer for CountingMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, SendError> {
        let mut sent = self.sent.lock().expect("counting mailer");
        *sent.by_kind.entry(email.kind.as_str()).or_default() += 1;
        sent.by_account
            .entry(email.account_id.clone())
            .or_default()
            .push((email.kind, email.date));
        Ok(format!("simulated-{}", email.key.as_str()))
    }
}

/// Emails that go to the customer's people.
fn to_the_customer(kind: EmailKind) -> bool {
    matches!(
        kind,
        EmailKind::Outreach | EmailKind::FollowUp | EmailKind::ExecSponsor | EmailKind::HeadsUpChampion
    )
}

fn read_maps(paths: &[PathBuf]) -> Result<Vec<MilestoneMap>> {
    let files = milepost_maps::files::map_files(paths).context("listing the map files")?;
    anyhow::ensure!(!files.is_empty(), "no map files in {paths:?}");
    match milepost_maps::files::read_maps(&files).context("reading the map files")? {
        Ok(maps) => Ok(maps),
        Err(problems) => {
            let said: Vec<String> = problems.iter().map(ToString::to_string).collect();
            anyhow::bail!("the maps are not valid:\n  {}", said.join("\n  "))
        }
    }
}

/// The maps without their manual milestones (which an event history cannot
/// reach), and the ids left out.
fn without_manual(maps: Vec<MilestoneMap>) -> (Vec<MilestoneMap>, Vec<String>) {
    let mut left_out = BTreeSet::new();
    let maps = maps
        .into_iter()
        .map(|mut map| {
            map.milestones.retain(|m| {
                let manual = matches!(m.criterion, Criterion::Manual);
                if manual {
                    left_out.insert(m.id.clone());
                }
                !manual
            });
            map
        })
        .collect();
    (maps, left_out.into_iter().collect())
}

/// Each event's numeric properties the maps' criteria read: an export's
/// `value` is given to each.
fn measured_properties(maps: &[&MilestoneMap]) -> HashMap<String, Vec<String>> {
    let mut found: HashMap<String, BTreeSet<String>> = HashMap::new();
    for m in maps.iter().flat_map(|map| &map.milestones) {
        if let Criterion::MetricThreshold { event, property, .. } = &m.criterion {
            found.entry(event.clone()).or_default().insert(property.clone());
        }
    }
    found.into_iter().map(|(e, p)| (e, p.into_iter().collect())).collect()
}

/// The events some milestone of `maps` reads.
fn events_read_by(maps: &[&MilestoneMap]) -> std::collections::HashSet<Box<[u8]>> {
    // An agreed outcome reads an account's success plan, which a history
    // has none of: such a milestone tracks nothing here and reads no event.
    maps.iter()
        .flat_map(|map| &map.milestones)
        .filter_map(|m| m.criterion.event())
        .map(|e| Box::from(e.as_bytes()))
        .collect()
}

fn read_history(opts: &SimulateOptions, maps: &[&MilestoneMap]) -> Result<History> {
    let (accounts, problems) = input::read_accounts(&opts.accounts)?;
    anyhow::ensure!(
        problems.count == 0,
        "{} bad account row(s), the first: {}",
        problems.count,
        problems
            .shown
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    );
    anyhow::ensure!(!accounts.is_empty(), "{}: no accounts", opts.accounts.display());
    let known: HashMap<&[u8], &AccountId> = accounts
        .iter()
        .map(|a| (a.account_id.as_str().as_bytes(), &a.account_id))
        .collect();
    let properties = measured_properties(maps);
    let read_by = events_read_by(maps);
    let mut events = Vec::new();
    let mut unread = 0;
    let problems = input::for_each_event(&opts.events, |e| {
        let Some(account) = known.get(e.account_id) else {
            return Err(milepost_discovery::error::RowProblem(
                "an account not in the accounts file".into(),
            ));
        };
        if !read_by.contains(e.event) {
            unread += 1;
            return Ok(());
        }
        let name = String::from_utf8_lossy(e.event).into_owned();
        let mut props = serde_json::Map::new();
        if let (Some(value), Some(names)) = (e.value, properties.get(&name)) {
            for p in names {
                props.insert(p.clone(), serde_json::json!(value));
            }
        }
        events.push(ProductEvent {
            id: format!("sim-{}", e.line),
            account_id: (*account).clone(),
            event: name,
            timestamp: e.timestamp,
            user_id: e.user_id.map(str::to_string),
            properties: props,
        });
        Ok(())
    })?;
    events.sort_by(|a, b| (a.timestamp, &a.id).cmp(&(b.timestamp, &b.id)));
    Ok(History {
        accounts,
        events,
        unread,
        skipped: problems.count,
    })
}

/// An account as the history gives it, with stand-in people (no email goes
/// anywhere: they are counted).
fn account_of(record: &AccountRecord, index: usize) -> Account {
    let person = |role: &str| {
        Contact::parse(role, &format!("{role}@customer-{index}.example")).expect("a stand-in address is valid")
    };
    let team =
        |role: &str| Contact::parse(role, &format!("{role}@vendor.example")).expect("a stand-in address is valid");
    Account {
        id: record.account_id.clone(),
        name: format!("Customer {index}"),
        segment: record.segment,
        contract_start: record.contract_start,
        renewal_date: record.decision_date,
        tenure_year: record.tenure_year,
        arr: record.arr.unwrap_or(0),
        licensed_seats: record.licensed_seats.unwrap_or(0),
        primary_contact: person("champion"),
        csm: team("csm"),
        cs_leader_email: EmailAddress::parse("cs-leadership@vendor.example").expect("a valid address"),
        exec_sponsor: Some(person("sponsor")),
        timezone: chrono_tz::UTC,
        goal: None,
        traits_at: None,
        contacts: BTreeMap::new(),
        renewals: Vec::new(),
        domain: None,
        hubspot_company_id: None,
        success_plan: None,
    }
}

fn midnight(d: NaiveDate) -> Timestamp {
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight"))
}

/// What the pipeline did under one set of maps.
struct Run {
    events: Vec<DomainEvent>,
    sent: Sent,
}

async fn run_once(history: &History, maps: &[MilestoneMap], from: Timestamp, until: Timestamp) -> Result<Run> {
    let store = Arc::new(InMemoryStore::new());
    let publisher = Arc::new(RecordingPublisher::default());
    let runner = Arc::new(LocalWorkflowRunner::new());
    let clock = Arc::new(VirtualClock::new(from));
    let mailer = Arc::new(CountingMailer::default());
    let services = Services {
        store: store.clone(),
        mailer: mailer.clone(),
        events: publisher.clone(),
        workflows: runner.clone(),
        clock: clock.clone(),
        config: Config {
            accounts_at_once: 1,
            ..Config::default()
        },
        links: None,
    };
    for map in maps {
        store.put_map(map).await?;
    }
    let (ingestion, playbook, scheduled) = (services.ingestion(), services.playbook(), services.scheduled_run());
    let mut arrivals: Vec<(Timestamp, usize)> = history
        .accounts
        .iter()
        .enumerate()
        .map(|(i, a)| (midnight(a.contract_start), i))
        .collect();
    arrivals.sort();
    let (mut next_arrival, mut next_event) = (0, 0);
    let mut now = from;
    while now <= until {
        clock.set(now);
        while next_arrival < arrivals.len() && arrivals[next_arrival].0 <= now {
            let i = arrivals[next_arrival].1;
            ingestion.upsert_account(&account_of(&history.accounts[i], i)).await?;
            next_arrival += 1;
        }
        while next_event < history.events.len() && history.events[next_event].timestamp < now {
            ingestion.apply_event(&history.events[next_event]).await?;
            next_event += 1;
        }
        scheduled.run(&SweepOptions::default()).await?;
        runner.run_due(&playbook, now).await;
        now += Duration::hours(1);
    }
    let sent = mailer.sent.lock().expect("counting mailer").clone();
    Ok(Run {
        events: publisher.events(),
        sent,
    })
}

fn tally(
    history: &History,
    run: &Run,
    minutes_per_task: u32,
) -> (
    Figures,
    BTreeMap<String, Figures>,
    BTreeMap<String, u64>,
    Vec<AccountFigures>,
) {
    let index: HashMap<&AccountId, usize> = history
        .accounts
        .iter()
        .enumerate()
        .map(|(i, a)| (&a.account_id, i))
        .collect();
    let mut per_account = vec![AccountFigures::default(); history.accounts.len()];
    let mut segments: BTreeMap<String, Figures> = BTreeMap::new();
    let mut by_milestone: BTreeMap<String, u64> = BTreeMap::new();
    let segment_of = |i: usize| history.accounts[i].segment.as_str().to_string();
    for e in &run.events {
        match e {
            DomainEvent::MilestoneMissed {
                account_id,
                milestone_id,
                due_at,
                arr_at_risk,
                group,
                ..
            } => {
                let Some(&i) = index.get(account_id) else { continue };
                let f = segments.entry(segment_of(i)).or_default();
                f.misses += 1;
                f.arr_flagged += arr_at_risk;
                if *group == Group::Playbook {
                    f.playbooks_started += 1;
                }
                *by_milestone.entry(milestone_id.clone()).or_default() += 1;
                per_account[i].misses += 1;
                if due_at.date_naive() < history.accounts[i].decision_date {
                    per_account[i].flagged = true;
                }
            }
            DomainEvent::EscalationStageCompleted {
                account_id,
                stage: Stage::Leadership,
                ..
            } => {
                if let Some(&i) = index.get(account_id) {
                    segments.entry(segment_of(i)).or_default().leadership_escalations += 1;
                }
            }
            DomainEvent::TaskOpened { account_id, .. } => {
                if let Some(&i) = index.get(account_id) {
                    segments.entry(segment_of(i)).or_default().csm_tasks += 1;
                }
            }
            _ => {}
        }
    }
    for (account_id, emails) in &run.sent.by_account {
        let Some(&i) = index.get(account_id) else { continue };
        let f = segments.entry(segment_of(i)).or_default();
        for (kind, at) in emails {
            if to_the_customer(*kind) {
                f.customer_emails += 1;
                if at.date_naive() < history.accounts[i].decision_date {
                    per_account[i].contacted = true;
                }
            }
        }
    }
    for (i, a) in history.accounts.iter().enumerate() {
        let f = segments.entry(segment_of(i)).or_default();
        f.accounts += 1;
        let mine = &per_account[i];
        match a.outcome {
            Outcome::Churned => {
                f.churned += 1;
                f.churned_flagged += u64::from(mine.flagged);
            }
            Outcome::Renewed => {
                f.renewed += 1;
                f.renewed_flagged += u64::from(mine.flagged);
                f.renewed_contacted += u64::from(mine.contacted);
            }
        }
    }
    let mut total = Figures::default();
    for f in segments.values_mut() {
        finish(f, minutes_per_task);
        add(&mut total, f);
    }
    finish(&mut total, minutes_per_task);
    (total, segments, by_milestone, per_account)
}

fn add(total: &mut Figures, f: &Figures) {
    total.accounts += f.accounts;
    total.misses += f.misses;
    total.playbooks_started += f.playbooks_started;
    total.customer_emails += f.customer_emails;
    total.csm_tasks += f.csm_tasks;
    total.leadership_escalations += f.leadership_escalations;
    total.arr_flagged += f.arr_flagged;
    total.churned += f.churned;
    total.churned_flagged += f.churned_flagged;
    total.renewed += f.renewed;
    total.renewed_flagged += f.renewed_flagged;
    total.renewed_contacted += f.renewed_contacted;
}

/// The figures worked out of the counts.
fn finish(f: &mut Figures, minutes_per_task: u32) {
    f.csm_hours = (f.csm_tasks * u64::from(minutes_per_task)) as f64 / 60.0;
    let flagged = f.churned_flagged + f.renewed_flagged;
    f.precision = (flagged > 0).then(|| f.churned_flagged as f64 / flagged as f64);
    f.recall = (f.churned > 0).then(|| f.churned_flagged as f64 / f.churned as f64);
}

/// Runs the history under both sets of maps.
pub async fn simulate(opts: &SimulateOptions) -> Result<Simulation> {
    let (current, manual_current) = without_manual(read_maps(&opts.current)?);
    let (proposed, manual_proposed) = without_manual(read_maps(&opts.proposed)?);
    let all: Vec<&MilestoneMap> = current.iter().chain(&proposed).collect();
    let history = read_history(opts, &all)?;
    let from = history
        .accounts
        .iter()
        .map(|a| a.contract_start)
        .min()
        .expect("accounts");
    let until = history
        .accounts
        .iter()
        .map(|a| a.decision_date)
        .max()
        .expect("accounts");
    let (start, end) = (midnight(from) + Duration::hours(1), midnight(until) + Duration::days(1));
    let mut results = Vec::new();
    let mut accounts = Vec::new();
    for (paths, maps, manual) in [
        (&opts.current, &current, manual_current),
        (&opts.proposed, &proposed, manual_proposed),
    ] {
        let run = run_once(&history, maps, start, end).await?;
        let (total, segments, misses_by_milestone, per_account) = tally(&history, &run, opts.minutes_per_task);
        accounts.push(per_account);
        results.push(SetResult {
            maps: paths.iter().map(|p| p.display().to_string()).collect(),
            total,
            segments,
            misses_by_milestone,
            emails_by_kind: run.sent.by_kind.clone(),
            manual_not_simulated: manual,
        });
    }
    let proposed_result = results.pop().expect("two runs");
    let current_result = results.pop().expect("two runs");
    let (proposed_accounts, current_accounts) = (accounts.pop().expect("two"), accounts.pop().expect("two"));
    let per_account = history
        .accounts
        .iter()
        .zip(current_accounts.into_iter().zip(proposed_accounts))
        .map(|(a, (current, proposed))| AccountLine {
            account_id: a.account_id.to_string(),
            segment: a.segment.as_str().to_string(),
            outcome: match a.outcome {
                Outcome::Renewed => "renewed",
                Outcome::Churned => "churned",
            },
            decision_date: a.decision_date,
            current,
            proposed,
        })
        .collect();
    Ok(Simulation {
        accounts: history.accounts.len(),
        events: history.events.len() + history.unread,
        events_unread: history.unread,
        events_skipped: history.skipped,
        from,
        until,
        minutes_per_task: opts.minutes_per_task,
        current: current_result,
        proposed: proposed_result,
        per_account,
        not_simulated: vec![
            "manual milestones: their confirmations are not in an event export".into(),
            "what people do: no task is closed, snoozed or dismissed, so every playbook runs its course".into(),
        ],
    })
}

/// What the quarterly review keeps of a simulation: both sets' totals and what they ran on.
pub fn kept(s: &Simulation, at: chrono::DateTime<chrono::Utc>) -> milepost_domain::map_review::KeptComparison {
    milepost_domain::map_review::KeptComparison {
        kept_at: at,
        current_maps: s.current.maps.iter().map(|m| last_part(m)).collect(),
        proposed_maps: s.proposed.maps.iter().map(|m| last_part(m)).collect(),
        accounts: s.accounts as u64,
        from: s.from,
        until: s.until,
        minutes_per_task: s.minutes_per_task,
        current: s.current.total.clone(),
        proposed: s.proposed.total.clone(),
    }
}

/// A path's last part ("proposed" of "/home/alice/maps/proposed/"): what it
/// was, not where it lies on someone's machine.
fn last_part(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map_or_else(|| path.to_string(), |n| n.to_string_lossy().into_owned())
}

/// The side-by-side table: every account, then each segment.
pub fn render_table(s: &Simulation) -> String {
    let mut out = format!(
        "{} accounts, {} events ({} read by no milestone, not replayed), {} to {}; a CSM task counted as {} minutes\n",
        s.accounts, s.events, s.events_unread, s.from, s.until, s.minutes_per_task
    );
    let mut section = |title: String, c: &Figures, p: &Figures| {
        out.push_str(&format!(
            "\n{title}\n{:<36} {:>14} {:>14} {:>12}\n",
            "", "current", "proposed", "change"
        ));
        for (what, a, b, d) in milepost_app::email::compared(c, p) {
            out.push_str(&format!("{what:<36} {a:>14} {b:>14} {d:>12}\n"));
        }
    };
    section("All segments".into(), &s.current.total, &s.proposed.total);
    let names: BTreeSet<&String> = s.current.segments.keys().chain(s.proposed.segments.keys()).collect();
    let empty = Figures::default();
    for name in names {
        section(
            name.replace('_', "-"),
            s.current.segments.get(name).unwrap_or(&empty),
            s.proposed.segments.get(name).unwrap_or(&empty),
        );
    }
    out.push_str("\nNot simulated:\n");
    for n in &s.not_simulated {
        out.push_str(&format!("  {n}\n"));
    }
    let manual: BTreeSet<&String> = s
        .current
        .manual_not_simulated
        .iter()
        .chain(&s.proposed.manual_not_simulated)
        .collect();
    if !manual.is_empty() {
        out.push_str(&format!(
            "  manual milestones left out: {}\n",
            manual.into_iter().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    out
}

/// A chart of the counts that cost people time or reach customers, current
/// beside proposed (SVG, no script).
pub fn render_chart(s: &Simulation) -> String {
    let (c, p) = (&s.current.total, &s.proposed.total);
    let bars = [
        ("Misses", c.misses, p.misses),
        ("Customer emails", c.customer_emails, p.customer_emails),
        ("CSM tasks", c.csm_tasks, p.csm_tasks),
        (
            "Leadership escalations",
            c.leadership_escalations,
            p.leadership_escalations,
        ),
        ("Churned flagged", c.churned_flagged, p.churned_flagged),
        ("Renewed flagged", c.renewed_flagged, p.renewed_flagged),
    ];
    let most = bars.iter().map(|(_, a, b)| (*a).max(*b)).max().unwrap_or(0).max(1) as f64;
    // The longest bar and its figure fit the 640-wide picture.
    let width = 380.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 640 {}\" font-family=\"sans-serif\" font-size=\"13\" role=\"img\" aria-label=\"The maps in use and the proposed maps, side by side\">\n<rect width=\"640\" height=\"{}\" fill=\"#fff\"/>\n<rect x=\"180\" y=\"8\" width=\"12\" height=\"12\" fill=\"#52606d\"/><text x=\"198\" y=\"19\">current</text><rect x=\"270\" y=\"8\" width=\"12\" height=\"12\" fill=\"#1d4ed8\"/><text x=\"288\" y=\"19\">proposed</text>\n",
        bars.len() * 44 + 36,
        bars.len() * 44 + 36
    );
    for (i, (name, a, b)) in bars.iter().enumerate() {
        let y = 32 + i * 44;
        let (wa, wb) = (*a as f64 / most * width, *b as f64 / most * width);
        svg.push_str(&format!(
            "<text x=\"0\" y=\"{}\">{name}</text>\n<rect x=\"180\" y=\"{y}\" width=\"{wa:.1}\" height=\"16\" fill=\"#52606d\"/><text x=\"{:.1}\" y=\"{}\">{a}</text>\n<rect x=\"180\" y=\"{}\" width=\"{wb:.1}\" height=\"16\" fill=\"#1d4ed8\"/><text x=\"{:.1}\" y=\"{}\">{b}</text>\n",
            y + 22,
            184.0 + wa,
            y + 13,
            y + 18,
            184.0 + wb,
            y + 31
        ));
    }
    svg.push_str("</svg>\n");
    svg
}

/// Writes `text` to `path`, saying which file failed.
pub fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
