//! The playbook's emails, the lists, the weekly digest and the heads-ups, rendered from templates (HTML and text) with
//! every account-supplied value escaped by the template engine.
//!
//! Each email is built from one account and one milestone only: a view struct
//! is filled from that pair and nothing else, so one customer's data cannot
//! reach another's message.

use askama::Template;
use chrono::Datelike;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::MimePart;
use mail_builder::MessageBuilder;
use milepost_domain::activity::RecentEvent;
use milepost_domain::health::Health;
use milepost_domain::{
    Account, Contact, CsmTask, EmailKind, EscalationLogEntry, Guide, MilestoneRef, OutgoingEmail, SendKey, Step,
    Timestamp, TrackedMilestone,
};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::links::{ActionLinks, LinkAction};

mod csm_task;
mod customer;
mod heads_up;
mod held_back_list;
mod lapsed;
mod leadership;
mod leadership_list;
mod opportunity;
mod simulation;
mod weekly_digest;
mod wording;

use csm_task::fallback_note;
pub use csm_task::{csm_reminder, csm_task, task_buttons, task_email, Button, SinceLapse, TaskOccasion};
pub use customer::{outreach, Reply};
pub use heads_up::heads_up;
pub use held_back_list::{held_back_list, HeldItem};
pub use lapsed::{lapsed_section, LapsedItem, LapsedSection, LAPSED_LISTED};
pub use leadership::{leadership, EscalationFacts};
pub use leadership_list::{leadership_list, ListedEscalation};
pub use opportunity::opportunity;
pub use simulation::compared;
pub use weekly_digest::{weekly_digest, DigestFigures};
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
    /// Why the champion hears from us, by the milestone's phase: `onboarding`,
    /// `the rollout across your teams`, ... (customer mail's footer).
    pub relationship: &'static str,
}

/// The customer's goal as an email may state it: the outcome of their
/// success plan this milestone speaks to, as they agreed it; without a plan,
/// the goal their own traits state; without either, none (the email claims
/// no goal).
fn goal_of(account: &Account, m: &TrackedMilestone) -> Option<String> {
    let measured = match m.criterion() {
        milepost_domain::Criterion::MetricThreshold { event, property, .. } => {
            Some((event.as_str(), property.as_str()))
        }
        _ => None,
    };
    match &account.success_plan {
        Some(plan) => plan.outcome_for(measured).map(|o| o.words()),
        None => account.goal.clone(),
    }
}

impl MilestoneFacts {
    pub fn new(cfg: &Config, account: &Account, m: &TrackedMilestone, now: Timestamp) -> Self {
        MilestoneFacts {
            account_name: account.name.clone(),
            account_possessive: possessive(&account.name),
            milestone_name: m.name().to_owned(),
            due_date: fmt_date(m.due_at()),
            relationship: relationship(m.phase()),
            due_phrase: due_phrase(m.due_at(), now, account.timezone),
            target: m.criterion().describe_target(account.licensed_seats),
            current: m.progress().describe_current(m.criterion(), account.licensed_seats),
            goal: goal_of(account, m),
            link: format!(
                "{}/milestones/{}?account={}",
                cfg.app_url.trim_end_matches('/'),
                url_part(m.milestone_id()),
                url_part(account.id.as_str())
            ),
        }
    }

    /// The facts as the customer reads them: the milestone by its customer title.
    pub fn for_customer(cfg: &Config, account: &Account, m: &TrackedMilestone, now: Timestamp) -> Self {
        MilestoneFacts {
            milestone_name: m.customer_title().to_owned(),
            ..MilestoneFacts::new(cfg, account, m, now)
        }
    }
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

/// Recent events grouped by name, newest first: "page.viewed — 7 times, last 16 Jan 2026 05:59 UTC".
pub(crate) fn summarize_activity(recent_newest_first: &[RecentEvent], tz: chrono_tz::Tz) -> Vec<String> {
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
            1 => format!("{name} — {}", fmt_datetime(last, tz)),
            n => format!("{name} — {n} times, last {}", fmt_datetime(last, tz)),
        })
        .collect()
}

/// What the champion is our contact for, in the milestone's phase.
fn relationship(phase: milepost_domain::Phase) -> &'static str {
    match phase {
        milepost_domain::Phase::Onboarding => "onboarding",
        milepost_domain::Phase::Adoption => "the rollout across your teams",
        milepost_domain::Phase::ValueRealization => "the results you set out to reach",
        milepost_domain::Phase::RenewalPrep => "your account and its renewal",
        // Never missed, so never in customer mail; the account's growth, if it were.
        milepost_domain::Phase::Expansion => "your account's growth",
    }
}

/// Splits a playbook paragraph into bullet points on sentence or line breaks.
/// The in-app message's words for the customer: the customer title, and
/// the first point the map's outreach makes (never our target's wording).
pub fn in_app_words(m: &TrackedMilestone) -> (String, String) {
    let title = format!("Next step: {}", m.customer_title());
    let body = split_points(&m.playbook().outreach)
        .into_iter()
        .next()
        .unwrap_or_else(|| format!("{} is the next step for your team.", m.customer_title()));
    (title, body)
}

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

pub(crate) fn url_part(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, URL_PART).to_string()
}

/// An account's page in the console: `/accounts/<id>`, the id percent-encoded.
pub fn account_href(id: &milepost_domain::AccountId) -> String {
    format!("/accounts/{}", url_part(id.as_str()))
}

/// The console's page of `account`, where the console is served: the team's
/// emails link to it.
pub fn console_account_url(cfg: &Config, account: &milepost_domain::AccountId) -> Option<String> {
    cfg.console_url
        .as_deref()
        .map(|base| format!("{base}{}", account_href(account)))
}

pub fn fmt_date(t: Timestamp) -> String {
    fmt_day(t.date_naive())
}

/// `4 Feb 2026`.
pub fn fmt_day(d: chrono::NaiveDate) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!("{} {} {}", d.day(), MONTHS[d.month0() as usize], d.year())
}

/// Today where the account is.
pub(super) fn local_today(now: Timestamp, tz: chrono_tz::Tz) -> chrono::NaiveDate {
    now.with_timezone(&tz).date_naive()
}

/// Whole days from a due date (a calendar date, kept as its UTC midnight)
/// to the account's today: "overdue" as the people who read it count.
pub(super) fn days_overdue(due: Timestamp, now: Timestamp, tz: chrono_tz::Tz) -> i64 {
    (local_today(now, tz) - due.date_naive()).num_days()
}

/// `1 day`, `3 days`.
pub fn days(n: i64) -> String {
    if n.abs() == 1 {
        format!("{n} day")
    } else {
        format!("{n} days")
    }
}

/// `today`, `1 day ago`, `3 days ago`.
pub(super) fn days_ago(n: i64) -> String {
    match n {
        0 => "today".to_string(),
        n if n > 0 => format!("{} ago", days(n)),
        n => format!("in {}", days(-n)),
    }
}

/// `23 Apr`: a date in this contract year, for a note.
pub fn fmt_short_date(t: Timestamp) -> String {
    let full = fmt_date(t);
    full.rsplit_once(' ')
        .map_or(full.clone(), |(day_month, _)| day_month.to_string())
}

/// `9 Feb 2026 20:00 AEDT`: a moment as the account's people read it.
fn fmt_datetime(t: Timestamp, tz: chrono_tz::Tz) -> String {
    t.with_timezone(&tz).format("%-d %b %Y %H:%M %Z").to_string()
}

/// `12345` → `$12,345`.
/// A role as people say it: `ae` is the AE, `account_executive` the account executive.
pub fn role_words(role: &str) -> String {
    if role.len() <= 3 {
        role.to_uppercase()
    } else {
        role.replace('_', " ")
    }
}

/// What an opportunity adds and is worth a year: "10 × seats, $12,000 a year", or unpriced.
pub fn opportunity_words(o: &milepost_domain::Opportunity) -> String {
    format!(
        "{} × {}, {}",
        o.adds,
        o.unit.replace('_', " "),
        o.pipeline_arr()
            .map_or_else(|| "unpriced".to_string(), |arr| format!("{} a year", fmt_money(arr)))
    )
}

/// A period's expansion pipeline in a sentence: "3 expansion opportunities
/// opened, $42,000 a year in pipeline (1 unpriced: …)."; empty when none opened.
pub fn pipeline_words(e: &milepost_domain::report::ExpansionPipeline) -> String {
    match e.opportunities {
        0 => String::new(),
        n => format!(
            "{n} expansion {} opened, {} a year in pipeline{}.",
            if n == 1 { "opportunity" } else { "opportunities" },
            fmt_money(e.pipeline_arr),
            match e.unpriced {
                0 => String::new(),
                u => format!(
                    " ({u} unpriced: no price to count {} at)",
                    if u == 1 { "it" } else { "them" }
                ),
            }
        ),
    }
}

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
    let tag = eml_tag(&email.key);
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
    if let Some(accounts) = email.account_header() {
        builder = builder.header("X-Milepost-Account", Raw::new(accounts));
    }
    if let Some(milestones) = email.milestone_header() {
        builder = builder.header("X-Milepost-Milestone", Raw::new(milestones));
    }
    if let Some(reply_to) = &email.reply_to {
        builder = builder.reply_to((reply_to.name.as_str(), reply_to.email.as_str()));
    }
    if let Some(thread) = &email.in_reply_to {
        // The Message-ID the email it answers got here.
        let answered = format!("{}@milepost.local", eml_tag(&thread.key));
        builder = builder.in_reply_to(answered.clone()).references(answered);
    }
    if let Some(url) = &email.list_unsubscribe {
        builder = builder
            .header("List-Unsubscribe", Raw::new(format!("<{url}>")))
            .header("List-Unsubscribe-Post", Raw::new("List-Unsubscribe=One-Click"));
    }
    builder.write_to_string()
}

/// What the outbox's Message-ID and MIME boundary of the email under `key` derive from.
fn eml_tag(key: &SendKey) -> String {
    let digest = Sha256::digest(key.as_bytes());
    digest.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
pub(crate) mod tests;

/// How a task stands, in a few words, for pages and the day-5 email. Who
/// closed it is named unless it was its owner.
pub fn standing(task: &CsmTask) -> String {
    use milepost_domain::{Actor, CloseReason, TaskStatus};
    let by = |actor: &Actor| {
        if actor.display() == task.brief().owner_name || *actor == Actor::Milepost {
            String::new()
        } else {
            format!(" by {}", actor.display())
        }
    };
    match &task.closed() {
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
        None if task.status() == TaskStatus::Snoozed => {
            format!(
                "snoozed until {}",
                task.snoozed_until().map(fmt_date).unwrap_or_default()
            )
        }
        None => format!("open since {}", fmt_date(task.created_at())),
    }
}
