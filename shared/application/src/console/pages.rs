//! The console's pages: what each shows, from the store, as views the
//! templates under `templates/console/` render (HTML escaped).

use std::collections::{BTreeSet, HashMap};

use askama::Template;
use chrono::NaiveDate;
use milepost_domain::csm_task::MAX_NOTE_BYTES;
use milepost_domain::health::health;
use milepost_domain::{
    Account, AccountId, Criterion, CsmTask, DismissReason, MilestoneStatus, MissStage, Outcome, Portfolio,
    PortfolioFilter, PortfolioSort, Segment, TaskSla, TaskStatus, Timestamp, TrackedMilestone,
};

use super::session::Viewer;
use super::{account_href, Console, Fields, Notice, Role, SignIn};
use crate::email::{fmt_date, fmt_day, fmt_money, standing, url_part};
use crate::ports::{AccountFolder, StoreResult};

/// Rows a portfolio or task page shows at a time.
pub const PAGE_ROWS: usize = 50;

/// What every page has around its content.
pub(super) struct Chrome {
    pub(super) title: String,
    /// Which part of the navigation is here.
    pub(super) section: &'static str,
    pub(super) signed_in: Option<SignedIn>,
    /// The development sign-in's warning, on every page.
    pub(super) development: bool,
    pub(super) notice: Option<&'static str>,
    /// This session's CSRF token, for every form (empty when signed out).
    pub(super) csrf: String,
}

pub(super) struct SignedIn {
    pub(super) name: String,
    pub(super) role: &'static str,
}

pub(super) fn chrome(
    console: &Console,
    viewer: Option<&Viewer>,
    title: impl Into<String>,
    section: &'static str,
) -> Chrome {
    Chrome {
        title: title.into(),
        section,
        signed_in: viewer.map(|v| SignedIn {
            name: v.name.clone(),
            role: v.role.label(),
        }),
        csrf: viewer.map(|v| console.sessions.csrf_token(v)).unwrap_or_default(),
        development: matches!(console.sign_in, SignIn::Development { .. }),
        notice: None,
    }
}

/// A one-time id for a form: the key its submission is recorded under.
fn form_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 12];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

pub(super) fn render(template: &impl Template) -> String {
    template
        .render()
        .unwrap_or_else(|e| format!("<!DOCTYPE html><title>Error</title><p>The page could not be drawn: {e}</p>"))
}

#[derive(Template)]
#[template(path = "console/message.html")]
struct MessageHtml<'a> {
    c: &'a Chrome,
    text: &'a str,
}

pub(super) fn message(console: &Console, viewer: Option<&Viewer>, title: &str, text: &str) -> String {
    render(&MessageHtml {
        c: &chrome(console, viewer, title, ""),
        text,
    })
}

#[derive(Template)]
#[template(path = "console/sign_in.html")]
struct SignInHtml<'a> {
    c: &'a Chrome,
    people: Vec<PersonView>,
    return_to: &'a str,
}

struct PersonView {
    name: String,
    email: String,
    role: &'static str,
}

pub(super) fn sign_in(console: &Console, people: &[super::Person], return_to: &str) -> String {
    let mut people: Vec<PersonView> = people
        .iter()
        .map(|p| PersonView {
            name: p.name.clone(),
            email: p.email.clone(),
            role: p.role.label(),
        })
        .collect();
    people.sort_by(|a, b| b.role.cmp(a.role).then(a.name.cmp(&b.name)));
    render(&SignInHtml {
        c: &chrome(console, None, "Sign in", ""),
        people,
        return_to,
    })
}

/// A choice of a `<select>`.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct Choice {
    pub(super) value: String,
    pub(super) label: String,
    pub(super) selected: bool,
}

pub(super) fn choices<'a>(all: impl IntoIterator<Item = (&'a str, String)>, current: Option<&str>) -> Vec<Choice> {
    all.into_iter()
        .map(|(value, label)| Choice {
            selected: current == Some(value),
            value: value.to_string(),
            label,
        })
        .collect()
}

pub(super) fn segment_label(s: Segment) -> &'static str {
    match s {
        Segment::Enterprise => "Enterprise",
        Segment::MidMarket => "Mid-market",
        Segment::Smb => "SMB",
    }
}

/// `72, declining (−8)`.
fn health_words(score: u8, trend: i32, word: &str) -> String {
    match trend {
        0 => format!("{score}, {word}"),
        t if t > 0 => format!("{score}, {word} (+{t})"),
        t => format!("{score}, {word} (\u{2212}{})", -t),
    }
}

struct StageCount {
    label: &'static str,
    count: usize,
    href: String,
}

struct PortfolioRowView {
    href: String,
    name: String,
    segment: &'static str,
    owner: String,
    stage: &'static str,
    stage_key: &'static str,
    misses: String,
    days_overdue: i64,
    health: String,
    renewal: String,
    arr_at_risk: String,
}

struct PortfolioView {
    /// When the kept portfolio was last refreshed as a whole, in words.
    as_of: String,
    accounts: usize,
    misses: usize,
    arr_at_risk: String,
    stages: Vec<StageCount>,
    segments: Vec<Choice>,
    owners: Vec<Choice>,
    stage_choices: Vec<Choice>,
    sorts: Vec<Choice>,
    mine: bool,
    rows: Vec<PortfolioRowView>,
    shown: String,
    prev: Option<String>,
    next: Option<String>,
}

#[derive(Template)]
#[template(path = "console/portfolio.html")]
struct PortfolioHtml<'a> {
    c: &'a Chrome,
    v: &'a PortfolioView,
}

/// The page `query` asks for of `rows` rows, `PAGE_ROWS` a page (the last
/// if it asks past it): the page, how many there are, and its first row.
fn page_of(query: &Fields, rows: usize) -> (usize, usize, usize) {
    let pages = rows.div_ceil(PAGE_ROWS).max(1);
    let page = query
        .get("page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .clamp(1, pages);
    let first = ((page - 1) * PAGE_ROWS).min(rows);
    (page, pages, first)
}

/// A query string of `pairs` (empty values left out).
pub(super) fn query_of(pairs: &[(&str, String)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        q.append_pair(k, v);
    }
    q.finish()
}

pub(super) async fn portfolio(
    console: &Console,
    viewer: &Viewer,
    query: &Fields,
    now: Timestamp,
) -> StoreResult<Option<String>> {
    let (portfolio, refreshed_at) = crate::portfolio_keeper::kept_portfolio(&*console.store, now).await?;
    let mine = query.get("mine") == Some("1");
    let filter = PortfolioFilter {
        segment: query.get("segment").and_then(|s| s.parse().ok()),
        owner: if mine {
            Some(viewer.email.clone())
        } else {
            query.get("owner").map(str::to_string)
        },
        stage: query.get("stage").and_then(MissStage::parse),
    };
    let sort = query.get("sort").and_then(PortfolioSort::parse).unwrap_or_default();
    let rows = portfolio.view(&filter, sort);
    let (page, pages, first) = page_of(query, rows.len());
    let shown_rows = &rows[first..(first + PAGE_ROWS).min(rows.len())];
    let mut views = Vec::with_capacity(shown_rows.len());
    for row in shown_rows {
        views.push(PortfolioRowView {
            href: account_href(&row.account_id),
            name: row.name.clone(),
            segment: segment_label(row.segment),
            owner: row.owner_name.clone(),
            stage: row.stage.label(),
            stage_key: row.stage.as_str(),
            misses: row
                .misses
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            days_overdue: row.days_overdue,
            health: row.health.map_or_else(
                || "not scored yet".to_string(),
                |h| health_words(h.score, h.trend, h.trend_word()),
            ),
            renewal: fmt_day(row.renewal_date),
            arr_at_risk: fmt_money(row.arr_at_risk),
        });
    }
    let kept = |page: usize| {
        query_of(&[
            (
                "segment",
                filter.segment.map(|s| s.as_str().to_string()).unwrap_or_default(),
            ),
            (
                "owner",
                if mine {
                    String::new()
                } else {
                    filter.owner.clone().unwrap_or_default()
                },
            ),
            (
                "stage",
                filter.stage.map(|s| s.as_str().to_string()).unwrap_or_default(),
            ),
            ("mine", if mine { "1".into() } else { String::new() }),
            (
                "sort",
                if sort == PortfolioSort::default() {
                    String::new()
                } else {
                    sort.as_str().to_string()
                },
            ),
            ("page", if page > 1 { page.to_string() } else { String::new() }),
        ])
    };
    let href = |page: usize| {
        let q = kept(page);
        if q.is_empty() {
            "/".to_string()
        } else {
            format!("/?{q}")
        }
    };
    let owners: BTreeSet<(String, String)> = portfolio
        .rows
        .iter()
        .map(|r| (r.owner_name.clone(), r.owner_email.clone()))
        .collect();
    let segment_now = filter.segment.map(|s| s.as_str());
    let stage_now = filter.stage.map(|s| s.as_str());
    let owner_now = if mine { None } else { filter.owner.as_deref() };
    let view = PortfolioView {
        as_of: match refreshed_at {
            Some(at) => format!(
                "As of {} UTC; refreshed every 15 minutes, and at once for what you confirm here.",
                at.format("%-d %b %Y, %H:%M")
            ),
            None => "Not kept yet: the sweep function fills it in within 15 minutes.".to_string(),
        },
        accounts: portfolio.rows.len(),
        misses: portfolio.misses(),
        arr_at_risk: fmt_money(portfolio.arr_at_risk()),
        stages: portfolio
            .misses_by_stage()
            .into_iter()
            .map(|(stage, count)| StageCount {
                label: stage.label(),
                count,
                href: format!("/?stage={}", stage.as_str()),
            })
            .collect(),
        segments: choices(
            Segment::ALL.iter().map(|s| (s.as_str(), segment_label(*s).to_string())),
            segment_now,
        ),
        owners: choices(
            owners.iter().map(|(name, email)| (email.as_str(), name.clone())),
            owner_now,
        ),
        stage_choices: choices(
            MissStage::ALL.iter().map(|s| (s.as_str(), s.label().to_string())),
            stage_now,
        ),
        sorts: choices(
            PortfolioSort::ALL.iter().map(|s| (s.as_str(), s.label().to_string())),
            Some(sort.as_str()),
        ),
        mine,
        shown: if rows.is_empty() {
            "No account matches.".to_string()
        } else {
            format!(
                "Accounts {}\u{2013}{} of {}",
                first + 1,
                first + shown_rows.len(),
                rows.len()
            )
        },
        prev: (page > 1).then(|| href(page - 1)),
        next: (page < pages).then(|| href(page + 1)),
        rows: views,
    };
    let mut c = chrome(console, Some(viewer), "Portfolio", "portfolio");
    c.notice = query.get("notice").and_then(Notice::parse).map(Notice::text);
    Ok(Some(render(&PortfolioHtml { c: &c, v: &view })))
}

struct MilestoneView {
    name: String,
    phase: String,
    due: String,
    reached: String,
    status: String,
    progress: String,
    /// Where its confirmation posts, for a manual milestone not reached.
    confirm: Option<String>,
}

/// The account's success plan as it stands, each outcome with its
/// checkpoints and how each stands.
struct PlanView {
    version: u32,
    set: String,
    outcomes: Vec<OutcomeView>,
}

struct OutcomeView {
    title: String,
    words: String,
    measured_by: String,
    checkpoints: Vec<CheckpointView>,
}

struct CheckpointView {
    on: String,
    value: String,
    status: String,
    progress: String,
}

/// `account`'s plan, each checkpoint beside the milestone tracking it, if
/// any: one dated before the plan was set, or under a map without an
/// `agreed_outcome` milestone, is not tracked, and says so.
fn plan_view(account: &Account, milestones: &[TrackedMilestone]) -> Option<PlanView> {
    let plan = account.success_plan.as_ref()?;
    let outcomes = plan
        .outcomes
        .iter()
        .map(|o| OutcomeView {
            title: o.title.clone(),
            words: o.words(),
            measured_by: format!("{}'s {}", o.measure.event, o.measure.property),
            checkpoints: o
                .checkpoints()
                .into_iter()
                .map(|c| {
                    let tracked = milestones
                        .iter()
                        .find(|m| m.checkpoint().is_some_and(|p| p.outcome == o.id && p.on == c.on));
                    let (status, progress) = match tracked {
                        Some(m) => (status_words(m), progress_words(m, account.licensed_seats)),
                        None if c.on < plan.set_at.date_naive() => (
                            "Not tracked: past when the plan was set".to_string(),
                            "\u{2014}".to_string(),
                        ),
                        None => (
                            "Not tracked: the map has no agreed-outcome milestone".to_string(),
                            "\u{2014}".to_string(),
                        ),
                    };
                    CheckpointView {
                        on: fmt_day(c.on),
                        value: milepost_domain::success_plan::amount(c.value, &o.unit),
                        status,
                        progress,
                    }
                })
                .collect(),
        })
        .collect();
    Some(PlanView {
        version: plan.version,
        set: format!("{} by {}", fmt_date(plan.set_at), plan.set_by),
        outcomes,
    })
}

struct LogView {
    at: String,
    milestone: String,
    what: String,
}

/// A sent email on the account's page.
struct EmailView {
    at: String,
    kind: &'static str,
    subject: String,
    to: String,
    href: String,
}

struct TaskView {
    /// Its place on the page: tells its form's fields from another's.
    n: usize,
    /// Its own page, where it is acted on.
    href: String,
    /// Its form shown open (on its own page, where acting is the point).
    open: bool,
    milestone: String,
    owner: String,
    standing: String,
    opened: String,
    may_act: bool,
    notes: Vec<String>,
    action_base: String,
}

/// One active day in the activity chart.
struct Bar {
    x: usize,
    title: String,
}

struct AccountView {
    name: String,
    facts: Vec<(&'static str, String)>,
    contacts: Vec<(String, String, String)>,
    health: String,
    factors: Vec<String>,
    arr_at_risk: String,
    paused: Option<String>,
    milestones: Vec<MilestoneView>,
    log: Vec<LogView>,
    emails: Vec<EmailView>,
    tasks: Vec<TaskView>,
    bars: Vec<Bar>,
    active_days: usize,
    chart_from: String,
    chart_to: String,
    renewals: Vec<String>,
    plan: Option<PlanView>,
    may_act: bool,
    form_id: String,
    here: String,
    pause_action: String,
    note_action: String,
    note_max: usize,
    outcomes: Vec<Choice>,
    reasons: Vec<Choice>,
}

#[derive(Template)]
#[template(path = "console/account.html")]
struct AccountHtml<'a> {
    c: &'a Chrome,
    v: &'a AccountView,
}

/// Days the activity chart covers, ending today.
const CHART_DAYS: i64 = 90;

fn progress_words(m: &TrackedMilestone, seats: u32) -> String {
    if matches!(m.criterion(), Criterion::Manual) {
        return "confirmed by a person".to_string();
    }
    let (current, target) = (
        m.progress().describe_current(m.criterion(), seats),
        m.criterion().describe_target(seats),
    );
    match m.criterion() {
        // A measure is not a count of its target: "best so far 6.5; target days_to_close <= 3".
        Criterion::MetricThreshold { .. } => format!("{current}; target {target}"),
        _ => format!("{current} of {target}"),
    }
}

fn status_words(m: &TrackedMilestone) -> String {
    if let Some(play) = m.expansion() {
        return match m.opportunity() {
            Some(o) => format!(
                "Opportunity opened for the {}: {}. The play: {}",
                crate::email::role_words(&o.for_role),
                crate::email::opportunity_words(o),
                play.play
            ),
            None => "Not reached yet: a growth signal, never missed".to_string(),
        };
    }
    match (m.status(), MissStage::of(m)) {
        (_, Some(MissStage::Lapsed)) => "Lapsed: the playbook ended, not reached".to_string(),
        (_, Some(stage)) => format!("Missed: {}", stage.label().to_lowercase()),
        (MilestoneStatus::Achieved, _) => "Reached on time".to_string(),
        (MilestoneStatus::Recovered, _) => "Reached late".to_string(),
        _ => "Not due yet".to_string(),
    }
}

pub(super) async fn account(
    console: &Console,
    viewer: &Viewer,
    id: &AccountId,
    query: &Fields,
    now: Timestamp,
) -> StoreResult<Option<String>> {
    let store = &console.store;
    let Some(AccountFolder {
        account,
        milestones,
        activity,
        log,
        pause,
        emails,
    }) = store.account_folder(id).await?
    else {
        return Ok(None);
    };
    let task_ids: Vec<String> = milestones
        .iter()
        .filter_map(|m| m.execution().map(CsmTask::id_for))
        .collect();
    let mut tasks = if task_ids.is_empty() {
        Vec::new()
    } else {
        store.tasks_by_id(&task_ids).await?
    };
    tasks.sort_by(|a, b| a.created_at().cmp(&b.created_at()).then(a.id().cmp(b.id())));
    let may_act = Console::may_act(viewer, &account);
    let h = health(&milestones, &activity, account.licensed_seats, now);
    let portfolio_row = {
        let open: Vec<TrackedMilestone> = milestones
            .iter()
            .filter(|m| MissStage::of(m).is_some())
            .cloned()
            .collect();
        let accounts = HashMap::from([(account.id.clone(), account.clone())]);
        Portfolio::build(&accounts, &open, now).rows.pop()
    };
    let href = account_href(id);
    let names: HashMap<&str, &str> = milestones.iter().map(|m| (m.milestone_id(), m.name())).collect();
    let today = now.with_timezone(&account.timezone).date_naive();
    let from = today - chrono::Duration::days(CHART_DAYS - 1);
    let days: Vec<NaiveDate> = activity.active_days.range(from..=today).copied().collect();
    let mut milestone_views: Vec<MilestoneView> = milestones
        .iter()
        .map(|m| MilestoneView {
            name: m.name().to_string(),
            phase: m.phase().to_string(),
            // A growth milestone has no due date: it is never missed.
            due: if m.expansion().is_some() {
                "never: a growth signal".to_string()
            } else {
                fmt_date(m.due_at())
            },
            reached: m
                .reached_at()
                .filter(|_| m.status().is_reached())
                .map(fmt_date)
                .unwrap_or_default(),
            status: status_words(m),
            progress: progress_words(m, account.licensed_seats),
            confirm: (may_act && matches!(m.criterion(), Criterion::Manual) && !m.status().is_reached())
                .then(|| format!("{href}/milestones/{}/confirm", url_part(m.milestone_id()))),
        })
        .collect();
    // As the timeline runs: by due date.
    let mut order: Vec<(Timestamp, usize)> = milestones.iter().enumerate().map(|(i, m)| (m.due_at(), i)).collect();
    order.sort();
    milestone_views = {
        let mut by_index: Vec<Option<MilestoneView>> = milestone_views.into_iter().map(Some).collect();
        order.into_iter().filter_map(|(_, i)| by_index[i].take()).collect()
    };
    let mut contacts: Vec<(String, String, String)> = account
        .contacts
        .iter()
        .map(|(role, c)| (role.replace('_', " "), c.name.clone(), c.email.to_string()))
        .collect();
    contacts.insert(
        0,
        (
            "primary contact".into(),
            account.primary_contact.name.clone(),
            account.primary_contact.email.to_string(),
        ),
    );
    if let Some(sponsor) = &account.exec_sponsor {
        contacts.push((
            "executive sponsor".into(),
            sponsor.name.clone(),
            sponsor.email.to_string(),
        ));
    }
    let view = AccountView {
        name: account.name.clone(),
        facts: vec![
            ("Segment", segment_label(account.segment).to_string()),
            ("ARR", fmt_money(account.arr)),
            ("Renewal", fmt_day(account.renewal_date)),
            ("Contract start", fmt_day(account.contract_start)),
            ("Contract year", account.tenure_year.to_string()),
            ("Seats", account.licensed_seats.to_string()),
            ("CSM", account.csm.name.clone()),
            ("CS leader", account.cs_leader_email.to_string()),
            ("Timezone", account.timezone.name().to_string()),
        ],
        contacts,
        health: health_words(h.score, h.trend, h.trend_word()),
        factors: h
            .factors
            .iter()
            .map(|f| format!("{} ({:+})", f.description, f.points))
            .collect(),
        arr_at_risk: fmt_money(portfolio_row.as_ref().map_or(0, |r| r.arr_at_risk)),
        paused: pause.filter(|p| p.is_active(now)).map(|p| {
            format!(
                "Automated customer email is paused until {} by {}.",
                fmt_date(p.until),
                p.by.display()
            )
        }),
        milestones: milestone_views,
        emails: emails
            .iter()
            .map(|e| EmailView {
                at: e
                    .date
                    .with_timezone(&account.timezone)
                    .format("%-d %b %Y %H:%M")
                    .to_string(),
                kind: e.kind.label(),
                subject: e.subject.clone(),
                to: e.to.join(", "),
                href: format!("{}/emails/{}", account_href(id), url_part(&e.key)),
            })
            .collect(),
        log: log
            .iter()
            .rev()
            .map(|e| LogView {
                at: e
                    .at
                    .with_timezone(&account.timezone)
                    .format("%-d %b %Y %H:%M")
                    .to_string(),
                milestone: names
                    .get(e.milestone_id.as_str())
                    .map(|n| n.to_string())
                    .unwrap_or_default(),
                what: e.detail.clone(),
            })
            .collect(),
        tasks: tasks
            .iter()
            .rev()
            .enumerate()
            .map(|(i, t)| task_view(viewer, t, i + 1))
            .collect(),
        bars: days
            .iter()
            .map(|d| {
                let x = (*d - from).num_days() as usize;
                Bar {
                    x: x * 8,
                    title: fmt_day(*d),
                }
            })
            .collect(),
        active_days: days.len(),
        chart_from: fmt_day(from),
        chart_to: fmt_day(today),
        renewals: account
            .renewals
            .iter()
            .rev()
            .map(|r| {
                let after = r
                    .arr_after
                    .map(|a| format!(", ARR after {}", fmt_money(a)))
                    .unwrap_or_default();
                format!("{}: {}{after}", fmt_day(r.decision_date), r.outcome.as_str())
            })
            .collect(),
        plan: plan_view(&account, &milestones),
        may_act,
        form_id: form_id(),
        here: href.clone(),
        pause_action: format!("{href}/pause"),
        note_action: format!("{href}/notes"),
        note_max: MAX_NOTE_BYTES,
        outcomes: choices(Outcome::ALL.iter().map(|o| (o.as_str(), o.label().to_string())), None),
        reasons: choices(
            DismissReason::ALL.iter().map(|r| (r.as_str(), r.label().to_string())),
            None,
        ),
    };
    let mut c = chrome(console, Some(viewer), account.name.clone(), "portfolio");
    c.notice = query.get("notice").and_then(Notice::parse).map(Notice::text);
    Ok(Some(render(&AccountHtml { c: &c, v: &view })))
}

fn task_view(viewer: &Viewer, t: &CsmTask, n: usize) -> TaskView {
    let live = t.status().is_live();
    TaskView {
        n,
        href: format!("/tasks/{}", url_part(t.id())),
        open: false,
        milestone: t.brief().milestone_name.clone(),
        owner: t.brief().owner_name.clone(),
        standing: standing(t),
        opened: fmt_date(t.created_at()),
        may_act: live && (viewer.role == Role::Lead || (viewer.role == Role::Csm && viewer.is(&t.brief().owner_email))),
        notes: t
            .notes()
            .iter()
            .map(|n| format!("{} \u{2014} {}, {}", n.text, n.by.display(), fmt_date(n.at)))
            .collect(),
        action_base: format!("/tasks/{}", url_part(t.id())),
    }
}

struct TaskRowView {
    task: TaskView,
    account: String,
    account_href: String,
    due: String,
    arr_at_risk: String,
    past_sla: bool,
}

struct TasksView {
    mine: bool,
    status: &'static str,
    tabs: Vec<(String, String, bool)>,
    rows: Vec<TaskRowView>,
    shown: String,
    prev: Option<String>,
    next: Option<String>,
}

#[derive(Template)]
#[template(path = "console/tasks.html")]
struct TasksHtml<'a> {
    c: &'a Chrome,
    v: &'a TasksView,
}

/// Whether `task` is open, untouched, past its map's SLA at `now`: read
/// off the task, or for a task opened before tasks kept it, from its
/// milestone's map and its account's time zone.
async fn past_sla(console: &Console, task: &CsmTask, now: Timestamp) -> StoreResult<bool> {
    if task.status() != TaskStatus::Open || !task.untouched() {
        return Ok(false);
    }
    let brief = task.brief();
    match brief.sla {
        Some(TaskSla::DueBy(at)) => return Ok(at <= now),
        Some(TaskSla::None) => return Ok(false),
        None => {} // opened before tasks kept their SLA: work it out
    }
    let Some(m) = console
        .store
        .get_milestone(&brief.account_id, &brief.milestone_id)
        .await?
    else {
        return Ok(false);
    };
    let sla = m.policy().after_playbook.task_sla_business_days;
    if sla == 0 {
        return Ok(false);
    }
    let tz = console
        .store
        .get_account(&brief.account_id)
        .await?
        .map_or(chrono_tz::UTC, |a| a.timezone);
    Ok(milepost_domain::after_playbook::add_business_days(task.created_at(), sla, tz) <= now)
}

pub(super) async fn tasks(
    console: &Console,
    viewer: &Viewer,
    query: &Fields,
    now: Timestamp,
) -> StoreResult<Option<String>> {
    let mine = match query.get("whose") {
        Some("team") => false,
        Some("mine") => true,
        _ => viewer.role == Role::Csm,
    };
    let status = match query.get("status") {
        Some("snoozed") => "snoozed",
        Some("sla") => "sla",
        _ => "open",
    };
    let wanted = if status == "snoozed" {
        TaskStatus::Snoozed
    } else {
        TaskStatus::Open
    };
    let mut found = if mine {
        console.store.tasks_for_owner(&viewer.email, Some(wanted)).await?
    } else {
        console.store.tasks_with_status(wanted).await?
    };
    if status == "sla" {
        let mut kept = Vec::new();
        for t in found {
            if past_sla(console, &t, now).await? {
                kept.push(t);
            }
        }
        found = kept;
    }
    // Most ARR at risk first, then the oldest.
    found.sort_by(|a, b| {
        b.brief()
            .arr_at_risk
            .cmp(&a.brief().arr_at_risk)
            .then(a.created_at().cmp(&b.created_at()))
            .then(a.id().cmp(b.id()))
    });
    let (page, pages, first) = page_of(query, found.len());
    let shown = &found[first..(first + PAGE_ROWS).min(found.len())];
    let whose = if mine { "mine" } else { "team" };
    let href = |whose: &str, status: &str, page: usize| {
        format!(
            "/tasks?{}",
            query_of(&[
                ("whose", whose.to_string()),
                ("status", status.to_string()),
                ("page", if page > 1 { page.to_string() } else { String::new() }),
            ])
        )
    };
    let mut rows = Vec::with_capacity(shown.len());
    for (i, t) in shown.iter().enumerate() {
        rows.push(TaskRowView {
            task: task_view(viewer, t, i + 1),
            account: t.brief().account_name.clone(),
            account_href: account_href(&t.brief().account_id),
            due: fmt_date(t.brief().due_at),
            arr_at_risk: fmt_money(t.brief().arr_at_risk),
            past_sla: status == "sla" || past_sla(console, t, now).await?,
        });
    }
    let here = href(whose, status, page);
    for row in &mut rows {
        // Acting on the task's page returns here.
        row.task.href = format!("{}?{}", row.task.href, query_of(&[("from", here.clone())]));
    }
    let view = TasksView {
        mine,
        status,
        tabs: [("open", "Open"), ("snoozed", "Snoozed"), ("sla", "Past their SLA")]
            .into_iter()
            .map(|(key, label)| (href(whose, key, 1), label.to_string(), key == status))
            .collect(),
        shown: if found.is_empty() {
            "No task here.".to_string()
        } else {
            format!("Tasks {}\u{2013}{} of {}", first + 1, first + shown.len(), found.len())
        },
        prev: (page > 1).then(|| href(whose, status, page - 1)),
        next: (page < pages).then(|| href(whose, status, page + 1)),
        rows,
    };
    let mut c = chrome(console, Some(viewer), "Tasks", "tasks");
    c.notice = query.get("notice").and_then(Notice::parse).map(Notice::text);
    Ok(Some(render(&TasksHtml { c: &c, v: &view })))
}

struct TaskPageView {
    task: TaskView,
    account: String,
    account_href: String,
    facts: Vec<(&'static str, String)>,
    past_sla: bool,
    intervention: String,
    recent: Vec<String>,
    other_recent: u64,
    form_id: String,
    here: String,
    note_max: usize,
    outcomes: Vec<Choice>,
    reasons: Vec<Choice>,
}

#[derive(Template)]
#[template(path = "console/task.html")]
struct TaskHtml<'a> {
    c: &'a Chrome,
    v: &'a TaskPageView,
}

/// One task's page: what its email said (target, progress, health, what to
/// try, the latest activity), its notes and standing, and, for its owner or
/// a lead while it is live, done / snooze / dismiss.
pub(super) async fn task(
    console: &Console,
    viewer: &Viewer,
    id: &str,
    query: &Fields,
    now: Timestamp,
) -> StoreResult<Option<String>> {
    let Some(t) = console.store.get_task(id).await? else {
        return Ok(None);
    };
    let brief = t.brief();
    let past = past_sla(console, &t, now).await?;
    let view = TaskPageView {
        task: TaskView {
            open: true,
            ..task_view(viewer, &t, 1)
        },
        account: brief.account_name.clone(),
        account_href: account_href(&brief.account_id),
        facts: vec![
            ("Owner", brief.owner_name.clone()),
            ("Opened", fmt_date(t.created_at())),
            ("Milestone due", fmt_date(brief.due_at)),
            ("ARR at risk", fmt_money(brief.arr_at_risk)),
            ("Target", brief.target.clone()),
            ("When the task opened", brief.current.clone()),
            (
                "Health when it opened",
                health_words(brief.health.score, brief.health.trend, brief.health.trend_word()),
            ),
        ],
        past_sla: past,
        intervention: brief.recommended_intervention.clone(),
        recent: crate::email::summarize_activity(&brief.recent_activity, chrono_tz::UTC),
        other_recent: brief.other_activity,
        form_id: form_id(),
        // Back to the list it was opened from, else to this page.
        here: match query.get("from") {
            Some(from) => super::safe_return(Some(from)),
            None => format!("/tasks/{}", url_part(t.id())),
        },
        note_max: MAX_NOTE_BYTES,
        outcomes: choices(Outcome::ALL.iter().map(|o| (o.as_str(), o.label().to_string())), None),
        reasons: choices(
            DismissReason::ALL.iter().map(|r| (r.as_str(), r.label().to_string())),
            None,
        ),
    };
    let title = format!("{}: {}", brief.account_name, brief.milestone_name);
    let mut c = chrome(console, Some(viewer), &title, "tasks");
    c.notice = query.get("notice").and_then(Notice::parse).map(Notice::text);
    Ok(Some(render(&TaskHtml { c: &c, v: &view })))
}

/// The copy of an email sent about `account`, as it went, for reading: its
/// links switched off (a customer's button pressed by the team would act
/// for the customer), under a line that says what it is; none when no such
/// email was sent about this account.
pub(super) async fn sent_email(console: &Console, account: &AccountId, key: &str) -> StoreResult<Option<String>> {
    let Some((sent, html)) = console.store.archived_email(key).await? else {
        return Ok(None);
    };
    if !sent.accounts.contains(account) {
        return Ok(None);
    }
    let inert = html
        .replace(" href=\"", " data-href=\"")
        .replace(" href='", " data-href='");
    let banner = format!(
        "<p style=\"margin:0;padding:10px 14px;background:#fff7d6;color:#3d2e00;font:14px/1.4 sans-serif;border-bottom:1px solid #e0c060\">The {} email sent {} to {}, as it went. Its links are switched off here.</p>",
        askama::filters::escape(sent.kind.label(), askama::filters::Html).map_err(crate::ports::StoreError::backend)?,
        sent.date.format("%-d %b %Y, %H:%M UTC"),
        askama::filters::escape(sent.to.join(", "), askama::filters::Html).map_err(crate::ports::StoreError::backend)?,
    );
    // After the body's opening tag, or first when it has none.
    let at = inert
        .find("<body")
        .and_then(|b| inert[b..].find('>').map(|end| b + end + 1))
        .unwrap_or(0);
    Ok(Some(format!("{}{banner}{}", &inert[..at], &inert[at..])))
}
