//! The playbook's emails, the digests and the heads-ups, rendered from templates (HTML and text) with
//! every account-supplied value escaped by the template engine.
//!
//! Each email is built from one account and one milestone only: a view struct
//! is filled from that pair and nothing else, so one customer's data cannot
//! reach another's message.

use askama::Template;
use chrono::{Datelike, Timelike};
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::MimePart;
use mail_builder::MessageBuilder;
use milepost_domain::activity::RecentEvent;
use milepost_domain::health::Health;
use milepost_domain::{
    Account, Contact, CsmTask, EmailKind, EscalationLogEntry, Guide, OutgoingEmail, Step, Timestamp, TrackedMilestone,
};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::links::{ActionLinks, LinkAction};

mod wording;
pub use wording::{due_phrase, fmt_local_datetime, possessive};

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("email template failed: {0}")]
    Template(#[from] askama::Error),
    /// A stored address no longer parses (stored before addresses were parsed).
    #[error("an address does not parse: {0}")]
    Address(String),
}

/// Facts every email states about the milestone.
#[derive(Debug)]
pub struct MilestoneFacts {
    pub account_name: String,
    /// `Acme's`, `Atlas Systems'`.
    pub account_possessive: String,
    pub milestone_name: String,
    pub due_date: String,
    /// When it was due, relative to the send, in the account's timezone:
    /// `was due yesterday`, `was due 20 Feb, five days ago`.
    pub due_phrase: String,
    pub target: String,
    pub current: String,
    pub goal: Option<String>,
    pub link: String,
}

impl MilestoneFacts {
    pub fn new(cfg: &Config, account: &Account, m: &TrackedMilestone, now: Timestamp) -> Self {
        MilestoneFacts {
            account_name: account.name.clone(),
            account_possessive: possessive(&account.name),
            milestone_name: m.name.clone(),
            due_date: fmt_date(m.due_at),
            due_phrase: due_phrase(m.due_at, now, account.timezone),
            target: m.criterion.describe_target(account.licensed_seats),
            current: m.progress.describe_current(&m.criterion, account.licensed_seats),
            goal: account.goal.clone(),
            link: format!(
                "{}/milestones/{}?account={}",
                cfg.app_url.trim_end_matches('/'),
                url_part(&m.milestone_id),
                url_part(account.id.as_str())
            ),
        }
    }
}

#[derive(Template)]
#[template(path = "outreach.html")]
struct OutreachHtml<'a> {
    v: &'a CustomerView<'a>,
}
#[derive(Template)]
#[template(path = "outreach.txt")]
struct OutreachText<'a> {
    v: &'a CustomerView<'a>,
}
#[derive(Template)]
#[template(path = "follow_up.html")]
struct FollowUpHtml<'a> {
    v: &'a CustomerView<'a>,
}
#[derive(Template)]
#[template(path = "follow_up.txt")]
struct FollowUpText<'a> {
    v: &'a CustomerView<'a>,
}

/// What customer-facing outreach shows.
struct CustomerView<'a> {
    pub subject: String,
    pub greeting_name: String,
    pub facts: MilestoneFacts,
    pub points: Vec<String>,
    /// Only guides with a link: a title alone helps nobody.
    pub guides: Vec<&'a Guide>,
    pub booking_url: &'a str,
    /// Who signs, and who reads the replies: the milestone's owner.
    pub signer_name: &'a str,
    /// The account's other misses this email also names (one outreach for
    /// misses close together): name, when due, link.
    pub also: Vec<(String, String, String)>,
    pub unsubscribe_url: &'a str,
    /// The heads-up's `2 of 3`, where the criterion counts, needs more than
    /// one and has begun.
    pub tally: Option<String>,
}

#[derive(Template)]
#[template(path = "csm_task.html")]
struct CsmTaskHtml<'a> {
    v: &'a CsmView<'a>,
}
#[derive(Template)]
#[template(path = "csm_task.txt")]
struct CsmTaskText<'a> {
    v: &'a CsmView<'a>,
}

struct CsmView<'a> {
    pub role_note: Option<String>,
    pub reminder: Option<String>,
    pub buttons: Vec<Button>,
    pub link_days: i64,
    pub subject: String,
    pub owner_name: String,
    pub facts: MilestoneFacts,
    pub today: String,
    pub days_overdue: i64,
    pub health: &'a Health,
    pub arr_at_risk: String,
    pub intervention: &'a str,
    pub recent: Vec<String>,
}

#[derive(Template)]
#[template(path = "leadership.html")]
struct LeadershipHtml<'a> {
    v: &'a LeadershipView<'a>,
}
#[derive(Template)]
#[template(path = "leadership.txt")]
struct LeadershipText<'a> {
    v: &'a LeadershipView<'a>,
}
#[derive(Template)]
#[template(path = "exec_sponsor.html")]
struct ExecSponsorHtml<'a> {
    v: &'a LeadershipView<'a>,
}
#[derive(Template)]
#[template(path = "exec_sponsor.txt")]
struct ExecSponsorText<'a> {
    v: &'a LeadershipView<'a>,
}

/// A CSM task as day 5 reports it: who has it, how it stands, their notes.
struct TaskSummary {
    pub owner_name: String,
    pub standing: String,
    pub notes: Vec<String>,
}

struct LeadershipView<'a> {
    pub task: Option<TaskSummary>,
    pub subject: String,
    pub greeting_name: String,
    pub facts: MilestoneFacts,
    pub days_overdue: i64,
    pub arr_at_risk: String,
    pub health: &'a Health,
    pub tried: Vec<String>,
    /// What leadership is asked (internal).
    pub ask: &'a str,
    /// What the customer's sponsor is asked, in words written for them.
    pub sponsor_ask: Option<&'a str>,
    /// Whether the customer's champion was emailed in this escalation, and
    /// whether with guides: the sponsor's email says only what happened.
    pub reached_out: bool,
    pub with_guides: bool,
    /// Who reached out to the customer: the milestone's owner.
    pub owner_name: &'a str,
    pub csm_name: &'a str,
    pub unsubscribe_url: &'a str,
}

/// What every email about one milestone of one account is made from: the
/// settings, the account, the milestone and the moment it is written.
#[derive(Clone, Copy)]
pub struct About<'a> {
    pub cfg: &'a Config,
    pub account: &'a Account,
    pub m: &'a TrackedMilestone,
    pub now: Timestamp,
}

/// The emails to the customer's champion — the day-1 outreach and
/// follow-up, and the heads-up before a miss (`HeadsUpChampion`, where
/// `also` are the account's other milestones behind pace) — from and signed
/// by the milestone's owner, who also gets the replies. `unsubscribe_url` is the
/// recipient's own (`ActionLinks::unsubscribe`).
pub fn outreach(
    about: About<'_>,
    also: &[TrackedMilestone],
    kind: EmailKind,
    unsubscribe_url: &str,
    key: String,
) -> Result<OutgoingEmail, RenderError> {
    let About { cfg, account, m, now } = about;
    let facts = MilestoneFacts::new(cfg, account, m, now);
    let subject = match (kind, also.len()) {
        (EmailKind::FollowUp, _) => format!("[{}] Resources and 1:1 help for {}", account.name, m.name),
        (EmailKind::HeadsUpChampion, 0) => format!("[{}] Coming up: {}", account.name, m.name),
        (EmailKind::HeadsUpChampion, 1) => format!("[{}] Coming up: {} and one more", account.name, m.name),
        (EmailKind::HeadsUpChampion, n) => format!("[{}] Coming up: {} and {n} more", account.name, m.name),
        (_, 0) => format!("[{}] Next step: {}", account.name, m.name),
        (_, 1) => format!("[{}] Next steps: {} and one more", account.name, m.name),
        (_, n) => format!("[{}] Next steps: {} and {n} more", account.name, m.name),
    };
    let owner = account.owner(&m.owner).contact;
    let view = CustomerView {
        subject: clean_header(&subject),
        greeting_name: first_name(&account.primary_contact.name),
        facts,
        points: split_points(&m.playbook.outreach),
        guides: m.playbook.guides.iter().filter(|g| g.url.is_some()).collect(),
        booking_url: &cfg.booking_url,
        signer_name: &owner.name,
        also: also
            .iter()
            .map(|c| {
                let facts = MilestoneFacts::new(cfg, account, c, now);
                (facts.milestone_name, facts.due_phrase, facts.link)
            })
            .collect(),
        unsubscribe_url,
        tally: m
            .progress
            .tally(&m.criterion, account.licensed_seats)
            .filter(|(done, need)| kind == EmailKind::HeadsUpChampion && *need > 1 && *done > 0)
            .map(|(done, need)| format!("{done} of {need}")),
    };
    let (html, text) = match kind {
        EmailKind::FollowUp => (FollowUpHtml { v: &view }.render()?, FollowUpText { v: &view }.render()?),
        EmailKind::HeadsUpChampion => (
            HeadsUpChampionHtml { v: &view }.render()?,
            HeadsUpChampionText { v: &view }.render()?,
        ),
        _ => (OutreachHtml { v: &view }.render()?, OutreachText { v: &view }.render()?),
    };
    Ok(OutgoingEmail {
        key,
        kind,
        account_id: account.id.clone(),
        milestone_id: m.milestone_id.clone(),
        from: Contact::new(
            format!("{} via {}", owner.name, cfg.sender.name),
            cfg.sender.email.clone(),
        ),
        to: vec![account.primary_contact.clone()],
        subject: view.subject.clone(),
        text,
        html,
        reply_to: Some(owner.clone()),
        list_unsubscribe: Some(unsubscribe_url.to_string()),
        date: now,
    })
}

/// One button of the day-3 email: a signed action link.
pub struct Button {
    pub label: &'static str,
    pub url: String,
}

/// The buttons of a task's email for its owner, when links are configured:
/// Done, Snooze 3 and 7 days, Not relevant, Confirm reached (manual
/// milestones only), and Pause customer emails.
pub fn task_buttons(links: Option<&ActionLinks>, task: &CsmTask, m: &TrackedMilestone, now: Timestamp) -> Vec<Button> {
    let Some(links) = links else { return Vec::new() };
    LinkAction::ALL
        .into_iter()
        .filter(|a| *a != LinkAction::Confirm || matches!(m.criterion, milepost_domain::Criterion::Manual))
        .map(|action| Button {
            label: action.label(),
            url: links.url(action, &task.id, &task.owner_email, now),
        })
        .collect()
}

/// The day-3 email that carries the task to its owner.
pub fn csm_task(
    about: About<'_>,
    task: &CsmTask,
    buttons: Vec<Button>,
    key: String,
) -> Result<OutgoingEmail, RenderError> {
    task_email(about, task, buttons, false, key)
}

/// The task's email again when its snooze ends: the same, saying so.
pub fn csm_reminder(
    about: About<'_>,
    task: &CsmTask,
    buttons: Vec<Button>,
    key: String,
) -> Result<OutgoingEmail, RenderError> {
    task_email(about, task, buttons, true, key)
}

fn task_email(
    about: About<'_>,
    task: &CsmTask,
    buttons: Vec<Button>,
    reminder: bool,
    key: String,
) -> Result<OutgoingEmail, RenderError> {
    let About { cfg, account, m, now } = about;
    let subject = format!(
        "[{}] {}CSM task: {} missed, {} ARR at risk",
        account.name,
        if reminder { "Reminder, " } else { "" },
        m.name,
        fmt_money(task.arr_at_risk)
    );
    // The email shows the task's own snapshot, so the two never disagree.
    let facts = MilestoneFacts {
        target: task.target.clone(),
        current: task.current.clone(),
        ..MilestoneFacts::new(cfg, account, m, now)
    };
    let owner =
        Contact::parse(task.owner_name.clone(), &task.owner_email).map_err(|e| RenderError::Address(e.to_string()))?;
    let view = CsmView {
        subject: clean_header(&subject),
        owner_name: first_name(&task.owner_name),
        facts,
        today: fmt_date(now),
        days_overdue: (now - m.due_at).num_days(),
        health: &task.health,
        arr_at_risk: fmt_money(task.arr_at_risk),
        intervention: &task.recommended_intervention,
        recent: summarize_activity(&task.recent_activity),
        role_note: role_note(task),
        reminder: reminder.then(|| format!("You snoozed this task; it is open again as of {}.", fmt_date(now))),
        buttons,
        link_days: cfg.action_link_days,
    };
    Ok(OutgoingEmail {
        key,
        kind: EmailKind::CsmTask,
        account_id: account.id.clone(),
        milestone_id: m.milestone_id.clone(),
        from: cfg.sender.clone(),
        to: vec![owner],
        subject: view.subject.clone(),
        text: CsmTaskText { v: &view }.render()?,
        html: CsmTaskHtml { v: &view }.render()?,
        reply_to: None,
        list_unsubscribe: None,
        date: now,
    })
}

/// Why this person got the task, when it is not the CSM's by role.
fn role_note(task: &CsmTask) -> Option<String> {
    let role = task.owner_role.replace('_', " ");
    if task.owner_is_fallback {
        Some(fallback_note(&role))
    } else if task.owner_role != milepost_domain::CSM_ROLE {
        Some(format!("It comes to you as the account's {role} contact."))
    } else {
        None
    }
}

/// Why the CSM gets what a role's contact would: the account names no one in it.
fn fallback_note(role: &str) -> String {
    format!(
        "This milestone is owned by the {role} role; the account has no {role} contact, so it comes to you as its CSM."
    )
}

/// What leadership's email reports beside the milestone: the account's
/// health, what the playbook tried (its log) and the CSM task.
#[derive(Clone, Copy)]
pub struct EscalationFacts<'a> {
    pub health: &'a Health,
    pub tried: &'a [EscalationLogEntry],
    pub task: Option<&'a CsmTask>,
}

/// Day 5: the email to the CS leader, or to the customer's executive sponsor
/// (then `unsubscribe_url` is the sponsor's own).
pub fn leadership(
    about: About<'_>,
    facts: EscalationFacts<'_>,
    recipient: &Contact,
    kind: EmailKind,
    unsubscribe_url: Option<&str>,
    key: String,
) -> Result<OutgoingEmail, RenderError> {
    let About { cfg, account, m, now } = about;
    let EscalationFacts { health, tried, task } = facts;
    let arr = fmt_money(m.arr_at_risk(account.arr));
    let days_overdue = (now - m.due_at).num_days();
    let subject = match kind {
        EmailKind::ExecSponsor => format!("[{}] {}: can we count on your help?", account.name, m.name),
        _ => format!(
            "[{}] Escalation: {} {} days overdue, {arr} ARR at risk",
            account.name, m.name, days_overdue
        ),
    };
    let view = LeadershipView {
        subject: clean_header(&subject),
        greeting_name: match kind {
            EmailKind::ExecSponsor => first_name(&recipient.name),
            _ => "Hi team".to_string(),
        },
        facts: MilestoneFacts::new(cfg, account, m, now),
        days_overdue,
        arr_at_risk: arr,
        health,
        tried: tried
            .iter()
            .map(|e| format!("{}: {}", fmt_date(e.at), e.detail))
            .collect(),
        ask: &m.playbook.leadership,
        sponsor_ask: m.playbook.sponsor.as_deref(),
        reached_out: customer_emailed(tried, None),
        with_guides: customer_emailed(tried, Some(Step::FollowUpEmail))
            && m.playbook.guides.iter().any(|g| g.url.is_some()),
        owner_name: &account.owner(&m.owner).contact.name,
        csm_name: &account.csm.name,
        unsubscribe_url: unsubscribe_url.unwrap_or_default(),
        // What people did is for our leadership only, never for the customer's sponsor.
        task: task.filter(|_| kind == EmailKind::Leadership).map(|t| TaskSummary {
            owner_name: t.owner_name.clone(),
            standing: standing(t),
            notes: t
                .notes
                .iter()
                .map(|n| format!("{}, {}: {}", n.by.display(), fmt_short_date(n.at), n.text))
                .collect(),
        }),
    };
    let (html, text, from) = match kind {
        EmailKind::ExecSponsor => (
            ExecSponsorHtml { v: &view }.render()?,
            ExecSponsorText { v: &view }.render()?,
            Contact::new(
                format!("{} via {}", account.csm.name, cfg.sender.name),
                cfg.sender.email.clone(),
            ),
        ),
        _ => (
            LeadershipHtml { v: &view }.render()?,
            LeadershipText { v: &view }.render()?,
            cfg.sender.clone(),
        ),
    };
    Ok(OutgoingEmail {
        key,
        kind,
        account_id: account.id.clone(),
        milestone_id: m.milestone_id.clone(),
        from,
        to: vec![recipient.clone()],
        subject: view.subject.clone(),
        text,
        html,
        reply_to: kind.customer_facing().then(|| account.owner(&m.owner).contact.clone()),
        list_unsubscribe: unsubscribe_url.filter(|_| kind.customer_facing()).map(str::to_string),
        date: now,
    })
}

/// Whether this escalation's log shows a customer email sent (by `step`, or by any step).
fn customer_emailed(tried: &[EscalationLogEntry], step: Option<Step>) -> bool {
    tried.iter().any(|e| {
        e.key.ends_with(":email:customer") && e.detail.ends_with(" sent") && (step.is_none() || e.step == step)
    })
}

#[derive(Template)]
#[template(path = "leadership_list.html")]
struct DigestHtml<'a> {
    v: &'a DigestView,
}
#[derive(Template)]
#[template(path = "leadership_list.txt")]
struct DigestText<'a> {
    v: &'a DigestView,
}

struct DigestView {
    subject: String,
    headline: String,
    rows: Vec<DigestRow>,
}

struct DigestRow {
    account_name: String,
    milestone_name: String,
    arr_at_risk: String,
    days_overdue: i64,
    due_date: String,
    health: String,
    csm_name: String,
    task: String,
    ask: String,
    link: String,
}

/// One escalation in a leader's daily email.
pub struct ListedEscalation<'a> {
    pub account: &'a Account,
    pub milestone: &'a TrackedMilestone,
    pub health: &'a Health,
    pub task: Option<&'a CsmTask>,
}

/// A leader's one escalation email of the day when several escalations
/// wait for it: each with its facts and ask, largest ARR at risk first.
pub fn leadership_list(
    cfg: &Config,
    items: &[ListedEscalation<'_>],
    recipient: &Contact,
    key: String,
    now: Timestamp,
) -> Result<OutgoingEmail, RenderError> {
    let mut rows: Vec<(u64, DigestRow)> = items
        .iter()
        .map(|i| {
            let arr = i.milestone.arr_at_risk(i.account.arr);
            let facts = MilestoneFacts::new(cfg, i.account, i.milestone, now);
            let row = DigestRow {
                account_name: i.account.name.clone(),
                milestone_name: i.milestone.name.clone(),
                arr_at_risk: fmt_money(arr),
                days_overdue: (now - i.milestone.due_at).num_days(),
                due_date: facts.due_date,
                health: format!("{}/100, {}", i.health.score, i.health.trend_word()),
                csm_name: i.account.csm.name.clone(),
                task: i
                    .task
                    .map_or_else(|| "none".to_string(), |t| format!("{}: {}", t.owner_name, standing(t))),
                ask: i.milestone.playbook.leadership.clone(),
                link: facts.link,
            };
            (arr, row)
        })
        .collect();
    rows.sort_by_key(|(arr, _)| std::cmp::Reverse(*arr));
    let total: u64 = rows.iter().map(|(arr, _)| *arr).fold(0, u64::saturating_add);
    let headline = format!("{} escalations, {} ARR at risk", rows.len(), fmt_money(total));
    let view = DigestView {
        subject: clean_header(&format!(
            "[Milepost] Escalations: {} overdue milestones, {} ARR at risk",
            rows.len(),
            fmt_money(total)
        )),
        headline,
        rows: rows.into_iter().map(|(_, r)| r).collect(),
    };
    let first = items.first().expect("a digest has escalations");
    Ok(OutgoingEmail {
        key,
        kind: EmailKind::Leadership,
        account_id: first.account.id.clone(),
        milestone_id: first.milestone.milestone_id.clone(),
        from: cfg.sender.clone(),
        to: vec![recipient.clone()],
        subject: view.subject.clone(),
        text: DigestText { v: &view }.render()?,
        html: DigestHtml { v: &view }.render()?,
        reply_to: None,
        list_unsubscribe: None,
        date: now,
    })
}

#[derive(Template)]
#[template(path = "owner_digest.html")]
struct OwnerDigestHtml<'a> {
    v: &'a OwnerDigestView,
}
#[derive(Template)]
#[template(path = "owner_digest.txt")]
struct OwnerDigestText<'a> {
    v: &'a OwnerDigestView,
}

struct OwnerDigestView {
    subject: String,
    greeting: String,
    headline: String,
    /// What the email lists and why, in one or several.
    intro: &'static str,
    rows: Vec<OwnerDigestRow>,
}

struct OwnerDigestRow {
    account_name: String,
    milestone_name: String,
    arr_at_risk: String,
    days_overdue: i64,
    due_date: String,
    progress: String,
    held_back: String,
    link: String,
}

/// A miss the thresholds held back, as its owner's digest lists it.
pub struct HeldItem<'a> {
    pub account: &'a Account,
    pub milestone: &'a TrackedMilestone,
    pub held_back: milepost_domain::HeldBack,
}

/// What the thresholds kept a miss from, in the owner's words.
fn held_back_words(m: &TrackedMilestone, held: milepost_domain::HeldBack) -> String {
    let t = m.policy.min_arr_at_risk;
    match held {
        milepost_domain::HeldBack::TaskAndLeadership => format!(
            "Tech-touch: the customer gets the playbook's emails; no CSM task, leadership not told (under {} ARR at risk)",
            fmt_money(t.csm_task)
        ),
        milepost_domain::HeldBack::Leadership => format!(
            "A CSM task is open; leadership not told (under {} ARR at risk)",
            fmt_money(t.leadership)
        ),
    }
}

/// An owner's digest: the misses the map's thresholds kept from the CSM or
/// leadership stage since the last one, largest ARR at risk first.
pub fn owner_digest(
    cfg: &Config,
    items: &[HeldItem<'_>],
    owner: &Contact,
    key: String,
    now: Timestamp,
) -> Result<OutgoingEmail, RenderError> {
    let mut rows: Vec<(u64, OwnerDigestRow)> = items
        .iter()
        .map(|i| {
            let arr = i.milestone.arr_at_risk(i.account.arr);
            let facts = MilestoneFacts::new(cfg, i.account, i.milestone, now);
            let row = OwnerDigestRow {
                account_name: i.account.name.clone(),
                milestone_name: i.milestone.name.clone(),
                arr_at_risk: fmt_money(arr),
                days_overdue: (now - i.milestone.due_at).num_days(),
                due_date: facts.due_date,
                progress: format!("{} (target: {})", facts.current, facts.target),
                held_back: held_back_words(i.milestone, i.held_back),
                link: facts.link,
            };
            (arr, row)
        })
        .collect();
    rows.sort_by_key(|(arr, _)| std::cmp::Reverse(*arr));
    let total: u64 = rows.iter().map(|(arr, _)| *arr).fold(0, u64::saturating_add);
    let count = match rows.len() {
        1 => "1 missed milestone".to_string(),
        n => format!("{n} missed milestones"),
    };
    let view = OwnerDigestView {
        subject: clean_header(&format!(
            "[Milepost] Your digest: {count} under the escalation thresholds, {} ARR at risk",
            fmt_money(total)
        )),
        greeting: first_name(&owner.name),
        headline: format!("{count}, {} ARR at risk", fmt_money(total)),
        intro: if rows.len() == 1 {
            "this missed milestone is under your team's escalation thresholds, so Milepost kept it from the CSM or leadership stage, and the customer has not caught up yet."
        } else {
            "these missed milestones are under your team's escalation thresholds, so Milepost kept them from the CSM or leadership stage, and their customers have not caught up yet. Largest ARR at risk first."
        },
        rows: rows.into_iter().map(|(_, r)| r).collect(),
    };
    let first = items.first().expect("a digest lists misses");
    Ok(OutgoingEmail {
        key,
        kind: EmailKind::OwnerDigest,
        account_id: first.account.id.clone(),
        milestone_id: first.milestone.milestone_id.clone(),
        from: cfg.sender.clone(),
        to: vec![owner.clone()],
        subject: view.subject.clone(),
        text: OwnerDigestText { v: &view }.render()?,
        html: OwnerDigestHtml { v: &view }.render()?,
        reply_to: None,
        list_unsubscribe: None,
        date: now,
    })
}

#[derive(Template)]
#[template(path = "weekly_digest.html")]
struct WeeklyDigestHtml<'a> {
    v: &'a WeeklyDigestView,
}
#[derive(Template)]
#[template(path = "weekly_digest.txt")]
struct WeeklyDigestText<'a> {
    v: &'a WeeklyDigestView,
}

/// The weekly digest's figures, each as `milepost report` gives it.
struct WeeklyDigestView {
    subject: String,
    period: String,
    new_misses: u64,
    new_misses_split: String,
    recoveries: u64,
    recoveries_split: String,
    open_escalations: u64,
    open_tasks: u64,
    arr_now: String,
    arr_week_ago: String,
    week_start: String,
    /// `up $12,000`, `down $3,000`, `unchanged`.
    arr_change: String,
    accounts_at_risk: u64,
    top: Vec<TopAtRiskRow>,
    /// The playbook's uplift in a sentence, or why it is not shown yet.
    uplift: String,
    uplift_measured: bool,
    window_days: u32,
    reproduce: String,
}

struct TopAtRiskRow {
    account_id: String,
    account_name: String,
    arr_at_risk: String,
    misses: u64,
    stage: &'static str,
    owner: String,
}

fn split(counts: milepost_domain::report::ByGroup) -> String {
    format!(
        "{} with the playbook, {} in the control group",
        counts.playbook, counts.control
    )
}

fn percent(rate: f64) -> String {
    format!("{:.0}%", rate * 100.0)
}

/// The uplift sentence: measured once the all-time interval is narrow enough.
fn uplift_words(all_time: &milepost_domain::report::Report) -> (bool, String) {
    use milepost_domain::report::ACTIONABLE_WIDTH;
    let Some(row) = all_time.overall() else {
        return (
            false,
            "No misses have had their full recovery window yet, so the playbook's effect cannot be measured."
                .to_string(),
        );
    };
    match (row.recovery_rate_playbook, row.recovery_rate_control, row.uplift, row.uplift_ci) {
        (Some(p), Some(c), Some(d), Some([low, high])) if !row.small_sample => (
            true,
            format!(
                "Customers who got the playbook caught up within {} days {} of the time ({} of {}; 95% CI {} to {}), against {} in the control group ({} of {}; {} to {}): {:+.0} points (95% CI {:+.0} to {:+.0}).",
                all_time.window_days,
                percent(p.rate),
                row.recovered_playbook,
                row.missed_playbook,
                percent(p.ci[0]),
                percent(p.ci[1]),
                percent(c.rate),
                row.recovered_control,
                row.missed_control,
                percent(c.ci[0]),
                percent(c.ci[1]),
                d * 100.0,
                low * 100.0,
                high * 100.0
            ),
        ),
        (_, _, Some(_), Some([low, high])) => (
            false,
            format!(
                "Not enough misses yet to tell what the playbook adds: the uplift's 95% interval is still {:.0} points wide ({} playbook and {} control misses with a closed window). It appears here once it is narrower than {:.0} points.",
                (high - low) * 100.0,
                row.missed_playbook,
                row.missed_control,
                ACTIONABLE_WIDTH * 100.0
            ),
        ),
        _ => (
            false,
            "No misses in the control group yet: set `holdout` in a milestone map to measure what the playbook adds.".to_string(),
        ),
    }
}

/// The weekly leadership digest: `week_report` is `milepost report` for the
/// week, `all_time` over all time (its uplift); both as of `now`.
pub fn weekly_digest(
    cfg: &Config,
    week: &milepost_domain::report::Week,
    week_report: &milepost_domain::report::Report,
    all_time: &milepost_domain::report::Report,
    recipient: &Contact,
    key: String,
    now: Timestamp,
) -> Result<OutgoingEmail, RenderError> {
    let day = |d: chrono::NaiveDate| fmt_date(d.and_time(chrono::NaiveTime::MIN).and_utc());
    let activity = week_report.activity;
    let at_risk = &week_report.at_risk;
    let week_ago = at_risk.arr_at_start.unwrap_or(0);
    let arr_change = match at_risk.arr_now.cmp(&week_ago) {
        std::cmp::Ordering::Greater => format!("up {}", fmt_money(at_risk.arr_now - week_ago)),
        std::cmp::Ordering::Less => format!("down {}", fmt_money(week_ago - at_risk.arr_now)),
        std::cmp::Ordering::Equal => "unchanged".to_string(),
    };
    let (uplift_measured, uplift) = uplift_words(all_time);
    let view = WeeklyDigestView {
        subject: clean_header(&format!(
            "[Milepost] Week of {}: {} new misses, {} recoveries, {} ARR at risk",
            day(week.since),
            activity.new_misses.total(),
            activity.recoveries.total(),
            fmt_money(at_risk.arr_now)
        )),
        period: format!("{} to {}", day(week.since), day(week.until)),
        new_misses: activity.new_misses.total(),
        new_misses_split: split(activity.new_misses),
        recoveries: activity.recoveries.total(),
        recoveries_split: split(activity.recoveries),
        open_escalations: activity.open_escalations,
        open_tasks: week_report.tasks.iter().map(|t| t.open + t.snoozed).sum(),
        arr_now: fmt_money(at_risk.arr_now),
        arr_week_ago: fmt_money(week_ago),
        week_start: day(week.since),
        arr_change,
        accounts_at_risk: at_risk.accounts_now,
        top: at_risk
            .top_accounts
            .iter()
            .map(|a| TopAtRiskRow {
                account_id: a.account_id.clone(),
                account_name: a.account_name.clone(),
                arr_at_risk: fmt_money(a.arr_at_risk),
                misses: a.misses,
                stage: a.stage.label(),
                owner: a.owner.clone(),
            })
            .collect(),
        uplift,
        uplift_measured,
        window_days: all_time.window_days,
        reproduce: format!("milepost report --since {} --until {}", week.since, week.until),
    };
    Ok(OutgoingEmail {
        key,
        kind: EmailKind::WeeklyDigest,
        // About every account, not one: the week names the email in outboxes.
        account_id: milepost_domain::AccountId::new(format!("week-{}", week.since)),
        milestone_id: "weekly-digest".to_string(),
        from: cfg.sender.clone(),
        to: vec![recipient.clone()],
        subject: view.subject.clone(),
        text: WeeklyDigestText { v: &view }.render()?,
        html: WeeklyDigestHtml { v: &view }.render()?,
        reply_to: None,
        list_unsubscribe: None,
        date: now,
    })
}

#[derive(Template)]
#[template(path = "heads_up.html")]
struct HeadsUpHtml<'a> {
    v: &'a HeadsUpView<'a>,
}
#[derive(Template)]
#[template(path = "heads_up.txt")]
struct HeadsUpText<'a> {
    v: &'a HeadsUpView<'a>,
}

/// The owner's heads-up: internal, so it may carry the CSM's playbook text.
struct HeadsUpView<'a> {
    subject: String,
    greeting: String,
    facts: MilestoneFacts,
    done_percent: u32,
    expected_percent: u32,
    arr_at_risk: String,
    champion: &'a str,
    suggestion: &'a str,
    role_note: Option<String>,
    days_before: u32,
}

/// A heads-up to a milestone's owner: due soon, behind pace, what the
/// customer was told (`champion`, in words), what to do.
pub fn heads_up(
    about: About<'_>,
    pace: milepost_domain::BehindPace,
    champion: &str,
    key: String,
) -> Result<OutgoingEmail, RenderError> {
    let About { cfg, account, m, now } = about;
    let owner = account.owner(&m.owner);
    let facts = MilestoneFacts::new(cfg, account, m, now);
    let subject = format!(
        "[{}] Heads-up: {} {}, behind pace",
        account.name, m.name, facts.due_phrase
    );
    let role = m.owner.replace('_', " ");
    let view = HeadsUpView {
        subject: clean_header(&subject),
        greeting: first_name(&owner.contact.name),
        done_percent: (pace.done * 100.0).floor() as u32,
        expected_percent: (pace.expected * 100.0).round() as u32,
        arr_at_risk: fmt_money(m.arr_at_risk(account.arr)),
        champion,
        suggestion: &m.playbook.csm,
        role_note: owner.fallback.then(|| fallback_note(&role)),
        days_before: m.heads_up.map_or(0, |r| r.days_before),
        facts,
    };
    Ok(OutgoingEmail {
        key,
        kind: EmailKind::HeadsUp,
        account_id: account.id.clone(),
        milestone_id: m.milestone_id.clone(),
        from: cfg.sender.clone(),
        to: vec![owner.contact.clone()],
        subject: view.subject.clone(),
        text: HeadsUpText { v: &view }.render()?,
        html: HeadsUpHtml { v: &view }.render()?,
        reply_to: None,
        list_unsubscribe: None,
        date: now,
    })
}

#[derive(Template)]
#[template(path = "heads_up_champion.html")]
struct HeadsUpChampionHtml<'a> {
    v: &'a CustomerView<'a>,
}
#[derive(Template)]
#[template(path = "heads_up_champion.txt")]
struct HeadsUpChampionText<'a> {
    v: &'a CustomerView<'a>,
}

/// Recent events grouped by name, newest first: "page.viewed — 7 times, last 16 Jan 2026 05:59 UTC".
fn summarize_activity(recent_newest_first: &[RecentEvent]) -> Vec<String> {
    let mut groups: Vec<(&str, usize, Timestamp)> = Vec::new();
    for e in recent_newest_first {
        match groups.iter_mut().find(|(name, _, _)| *name == e.event) {
            Some(group) => group.1 += 1,
            None => groups.push((&e.event, 1, e.at)),
        }
    }
    groups
        .into_iter()
        .map(|(name, count, last)| match count {
            1 => format!("{name} — {}", fmt_datetime(last)),
            n => format!("{name} — {n} times, last {}", fmt_datetime(last)),
        })
        .collect()
}

/// Splits a playbook paragraph into bullet points on sentence or line breaks.
fn split_points(text: &str) -> Vec<String> {
    text.split(['\n', ';'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn first_name(name: &str) -> String {
    name.split_whitespace().next().unwrap_or("there").to_string()
}

/// Header values never carry control characters (no header injection).
fn clean_header(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// RFC 3986 unreserved characters stay as they are; everything else is encoded.
const URL_PART: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn url_part(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, URL_PART).to_string()
}

pub fn fmt_date(t: Timestamp) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!("{} {} {}", t.day(), MONTHS[t.month0() as usize], t.year())
}

/// `23 Apr`: a date in this contract year, for a note.
pub fn fmt_short_date(t: Timestamp) -> String {
    let full = fmt_date(t);
    full.rsplit_once(' ')
        .map_or(full.clone(), |(day_month, _)| day_month.to_string())
}

fn fmt_datetime(t: Timestamp) -> String {
    format!("{} {:02}:{:02} UTC", fmt_date(t), t.hour(), t.minute())
}

/// `12345` → `$12,345`.
pub fn fmt_money(amount: u64) -> String {
    let digits = amount.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    format!("${out}")
}

/// Renders an email as an RFC 5322 message: multipart/alternative, text then
/// HTML. The boundary and Message-ID derive from the idempotency key, so the
/// same email always serialises to the same bytes.
pub fn to_eml(email: &OutgoingEmail) -> std::io::Result<String> {
    let digest = Sha256::digest(email.key.as_bytes());
    let tag: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    let body = MimePart::new(
        ContentType::new("multipart/alternative").attribute("boundary", format!("milepost-{tag}")),
        vec![
            MimePart::new("text/plain", email.text.as_str()),
            MimePart::new("text/html", email.html.as_str()),
        ],
    );
    let mut builder = MessageBuilder::new()
        .message_id(format!("{tag}@milepost.local"))
        .from((email.from.name.as_str(), email.from.email.as_str()))
        .to(email
            .to
            .iter()
            .map(|c| (c.name.as_str(), c.email.as_str()))
            .collect::<Vec<_>>())
        .subject(email.subject.as_str())
        .date(email.date.timestamp())
        .header("X-Milepost-Kind", Raw::new(email.kind.as_str()))
        .body(body);
    if let Some(reply_to) = &email.reply_to {
        builder = builder.reply_to((reply_to.name.as_str(), reply_to.email.as_str()));
    }
    if let Some(url) = &email.list_unsubscribe {
        builder = builder
            .header("List-Unsubscribe", Raw::new(format!("<{url}>")))
            .header("List-Unsubscribe-Post", Raw::new("List-Unsubscribe=One-Click"));
    }
    builder.write_to_string()
}

#[cfg(test)]
pub(crate) mod tests;

/// How a task stands, in a few words, for pages and the day-5 email. Who
/// closed it is named unless it was its owner.
pub fn standing(task: &CsmTask) -> String {
    use milepost_domain::{Actor, CloseReason, TaskStatus};
    let by = |actor: &Actor| {
        if actor.display() == task.owner_name || *actor == Actor::Milepost {
            String::new()
        } else {
            format!(" by {}", actor.display())
        }
    };
    match &task.closed {
        Some(c) => match c.reason {
            CloseReason::Completed => format!(
                "done{} on {} ({})",
                by(&c.by),
                fmt_date(c.at),
                c.outcome.map_or("done", |o| o.label())
            ),
            CloseReason::Dismissed(r) => format!("dismissed{} on {} ({})", by(&c.by), fmt_date(c.at), r.label()),
            CloseReason::CustomerRecovered => format!("closed on {}: the customer caught up", fmt_date(c.at)),
            CloseReason::MilestoneConfirmed => format!("closed on {}: the milestone was confirmed", fmt_date(c.at)),
        },
        None if task.status == TaskStatus::Snoozed => {
            format!("snoozed until {}", task.snoozed_until.map(fmt_date).unwrap_or_default())
        }
        None => format!("open since {}", fmt_date(task.created_at)),
    }
}
