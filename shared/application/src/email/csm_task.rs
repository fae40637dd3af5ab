//! The day-3 email that carries the task to its owner, its reminder, and
//! the task's buttons.

use super::*;

#[derive(Template)]
#[template(path = "csm_task.html")]
pub(super) struct CsmTaskHtml<'a> {
    v: &'a CsmView<'a>,
}
#[derive(Template)]
#[template(path = "csm_task.txt")]
pub(super) struct CsmTaskText<'a> {
    v: &'a CsmView<'a>,
}

pub(super) struct CsmView<'a> {
    /// Why the task is the owner's now: what day 1 did, or that the
    /// milestone is ours to move.
    pub opening: String,
    pub role_note: Option<String>,
    pub reminder: Option<String>,
    pub buttons: Vec<Button>,
    pub link_days: i64,
    pub subject: String,
    pub facts: MilestoneFacts,
    pub today: String,
    pub overdue: String,
    /// Who the CSM talks to first: the champion, and the sponsor if known.
    pub champion: &'a Contact,
    pub sponsor: Option<&'a Contact>,
    /// `12 Jan 2027 (in 40 days)`.
    pub renewal: String,
    pub health: &'a Health,
    pub arr_at_risk: String,
    pub intervention: &'a str,
    pub recent: Vec<String>,
    /// `Also 212 other product events (page views and the like).`
    pub other: Option<String>,
    /// The account's page in the console, where it is served.
    pub console: Option<String>,
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
        .filter(|a| *a != LinkAction::Confirm || matches!(m.criterion(), milepost_domain::Criterion::Manual))
        .map(|action| Button {
            label: action.label(),
            url: links.url(action, task.id(), &task.brief().owner_email, now),
        })
        .collect()
}

/// The day-3 email that carries the task to its owner.
pub fn csm_task(
    about: About<'_>,
    task: &CsmTask,
    buttons: Vec<Button>,
    key: SendKey,
) -> Result<OutgoingEmail, RenderError> {
    task_email(about, task, buttons, TaskOccasion::Opened, key)
}

/// The task's email again when its snooze ends: the same, saying so.
pub fn csm_reminder(
    about: About<'_>,
    task: &CsmTask,
    buttons: Vec<Button>,
    key: SendKey,
) -> Result<OutgoingEmail, RenderError> {
    task_email(about, task, buttons, TaskOccasion::SnoozeOver, key)
}

/// Why a task's email goes, after the day-3 email that opened it.
pub enum TaskOccasion<'a> {
    Opened,
    SnoozeOver,
    /// To its owner: nobody acted on it for `business_days` since it opened;
    /// the CS leader hears on `lead_on` if it is still so.
    OverSla {
        business_days: u32,
        lead_on: Option<Timestamp>,
        now: &'a SinceLapse,
    },
    /// To the CS leader: still untouched `business_days` after it opened,
    /// its owner told on `owner_told_on`.
    RaisedToLead {
        leader: &'a Contact,
        business_days: u32,
        owner_told_on: Timestamp,
        now: &'a SinceLapse,
    },
    /// To its owner, `days` after the playbook lapsed, with what changed since.
    AfterLapse {
        days: u32,
        lapsed_at: Timestamp,
        since: &'a SinceLapse,
    },
}

/// The account as it is now, for the emails after the lapse (the task's
/// own figures are those of the day it opened).
pub struct SinceLapse {
    /// Days the account was active in the product after the lapse's day, and the last of them.
    pub active_days: usize,
    pub last_active: Option<chrono::NaiveDate>,
    /// The account's health now.
    pub health: Health,
    /// Its latest events that the map's criteria read, newest first, and how many others.
    pub recent: Vec<RecentEvent>,
    pub other: u64,
}

impl TaskOccasion<'_> {
    fn kind(&self) -> EmailKind {
        match self {
            TaskOccasion::Opened | TaskOccasion::SnoozeOver => EmailKind::CsmTask,
            TaskOccasion::OverSla { .. } => EmailKind::TaskOverSla,
            TaskOccasion::RaisedToLead { .. } => EmailKind::TaskRaisedToLead,
            TaskOccasion::AfterLapse { .. } => EmailKind::LapsedReminder,
        }
    }
}

pub fn task_email(
    about: About<'_>,
    task: &CsmTask,
    buttons: Vec<Button>,
    occasion: TaskOccasion<'_>,
    key: SendKey,
) -> Result<OutgoingEmail, RenderError> {
    let About { cfg, account, m, now } = about;
    let tz = account.timezone;
    let brief = task.brief();
    let arr = fmt_money(brief.arr_at_risk);
    let owner = Contact::parse(brief.owner_name.clone(), &brief.owner_email)
        .map_err(|e| RenderError::Address(e.to_string()))?;
    let owner_name = first_name(&brief.owner_name);
    let local_date = |t: Timestamp| fmt_day(t.with_timezone(&tz).date_naive());
    let subject = match &occasion {
        TaskOccasion::Opened => format!("[{}] CSM task: {} missed, {arr} ARR at risk", account.name, m.name()),
        TaskOccasion::SnoozeOver => {
            format!(
                "[{}] Reminder, CSM task: {} missed, {arr} ARR at risk",
                account.name,
                m.name()
            )
        }
        TaskOccasion::OverSla { business_days, .. } => format!(
            "[{}] No action in {business_days} business days, CSM task: {} missed, {arr} ARR at risk",
            account.name,
            m.name()
        ),
        TaskOccasion::RaisedToLead { business_days, .. } => format!(
            "[{}] Raised to you: {} task on {}, untouched {business_days} business days, {arr} ARR at risk",
            account.name,
            possessive(&brief.owner_name),
            m.name()
        ),
        TaskOccasion::AfterLapse { days: d, .. } => format!(
            "[{}] {} after the playbook, {} still missed, {arr} ARR at risk",
            account.name,
            days(i64::from(*d)),
            m.name()
        ),
    };
    let snapshot = MilestoneFacts {
        target: brief.target.clone(),
        current: brief.current.clone(),
        ..MilestoneFacts::new(cfg, account, m, now)
    };
    let mut to = owner.clone();
    // After the lapse the email shows the account as it is now, not as it was on the task's day.
    let live = match &occasion {
        TaskOccasion::Opened | TaskOccasion::SnoozeOver => None,
        TaskOccasion::OverSla { now: l, .. }
        | TaskOccasion::RaisedToLead { now: l, .. }
        | TaskOccasion::AfterLapse { since: l, .. } => Some(*l),
    };
    let live_facts = || MilestoneFacts::new(cfg, account, m, now);
    let (opening, facts, banner) = match &occasion {
        TaskOccasion::Opened | TaskOccasion::SnoozeOver => {
            let opening = if !m.moved_by().is_customer() {
                format!("{owner_name}, this milestone is past its date and it is ours to move: the customer was not written to about it. It is yours now.")
            } else if brief.follow_up_not_sent {
                format!("{owner_name}, day-1 outreach did not move this milestone (its follow-up was not sent: the contact policy would have held it past today). It is yours now.")
            } else {
                format!("{owner_name}, day-1 outreach did not move this milestone. It is yours now.")
            };
            let banner = matches!(occasion, TaskOccasion::SnoozeOver)
                .then(|| format!("You snoozed this task; it is open again as of {}.", fmt_date(now)));
            (opening, snapshot, banner)
        }
        TaskOccasion::OverSla {
            business_days, lead_on, ..
        } => {
            let then = lead_on.map_or(String::new(), |on| {
                format!(
                    " If it is still untouched on {}, it goes to your CS leader.",
                    local_date(on)
                )
            });
            let opening = format!(
                "{owner_name}, nobody has acted on this task since it opened on {} ({business_days} business days).{then} Act on it below, snooze it, or mark it not relevant.",
                local_date(task.created_at())
            );
            (opening, live_facts(), None)
        }
        TaskOccasion::RaisedToLead {
            leader,
            business_days,
            owner_told_on,
            ..
        } => {
            to = (*leader).clone();
            let opening = format!(
                "{} task on this milestone has not been acted on since it opened on {} ({business_days} business days), and {owner_name} was told so on {}. It comes to you as {} CS leader: ask {owner_name} about it, or give it to someone who can act.",
                possessive(&brief.owner_name),
                local_date(task.created_at()),
                local_date(*owner_told_on),
                possessive(&account.name)
            );
            (opening, live_facts(), None)
        }
        TaskOccasion::AfterLapse { lapsed_at, since, .. } => {
            let live = live_facts();
            let events = match (since.active_days, since.last_active) {
                (0, _) | (_, None) => "no product activity from the account".to_string(),
                (1, Some(last)) => format!("the account was active in the product on 1 day, {}", fmt_day(last)),
                (n, Some(last)) => format!(
                    "the account was active in the product on {n} days, the last {}",
                    fmt_day(last)
                ),
            };
            let task_state = match task.status() {
                milepost_domain::TaskStatus::Open => String::new(),
                _ => format!(" The task is {}.", standing(task)),
            };
            let opening = format!(
                "{owner_name}, the playbook for this milestone ended on {} without the customer catching up. Since then: {events}. Now: {} (when the task opened: {}).{task_state}",
                local_date(*lapsed_at),
                live.current,
                brief.current
            );
            (opening, live, None)
        }
    };
    let view = CsmView {
        console: console_account_url(cfg, &account.id),
        opening,
        subject: clean_header(&subject),
        facts,
        today: fmt_day(local_today(now, tz)),
        overdue: days_ago(days_overdue(m.due_at(), now, tz)),
        champion: &account.primary_contact,
        sponsor: account.exec_sponsor.as_ref(),
        renewal: {
            let to_go = (account.renewal_date - local_today(now, tz)).num_days();
            format!("{} ({})", fmt_day(account.renewal_date), days_ago(-to_go))
        },
        health: live.map_or(&brief.health, |l| &l.health),
        arr_at_risk: arr,
        intervention: &brief.recommended_intervention,
        recent: summarize_activity(live.map_or(&brief.recent_activity, |l| &l.recent), tz),
        other: match live.map_or(brief.other_activity, |l| l.other) {
            0 => None,
            1 => Some("Also 1 other product event (a page view or the like).".to_string()),
            n => Some(format!("Also {n} other product events (page views and the like).")),
        },
        role_note: if to == owner { role_note(task) } else { None },
        reminder: banner,
        buttons,
        link_days: cfg.action_link_days,
    };
    Ok(OutgoingEmail {
        in_reply_to: None,
        key,
        kind: occasion.kind(),
        account_id: account.id.clone(),
        milestone_id: m.milestone_id().to_owned(),
        from: cfg.sender.clone(),
        to: vec![to],
        subject: view.subject.clone(),
        text: CsmTaskText { v: &view }.render()?,
        html: CsmTaskHtml { v: &view }.render()?,
        reply_to: None,
        list_unsubscribe: None,
        date: now,
        names: vec![MilestoneRef::of(m)],
    })
}

/// Why this person got the task, when it is not the CSM's by role.
pub(super) fn role_note(task: &CsmTask) -> Option<String> {
    let role = task.brief().owner_role.replace('_', " ");
    if task.brief().owner_is_fallback {
        Some(fallback_note(&role))
    } else if task.brief().owner_role != milepost_domain::CSM_ROLE {
        Some(format!("It comes to you as the account's {role} contact."))
    } else {
        None
    }
}

/// Why the CSM gets what a role's contact would: the account names no one in it.
pub(super) fn fallback_note(role: &str) -> String {
    format!(
        "This milestone is owned by the {role} role; the account has no {role} contact, so it comes to you as its CSM."
    )
}
