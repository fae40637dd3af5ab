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
    task_email(about, task, buttons, false, key)
}

/// The task's email again when its snooze ends: the same, saying so.
pub fn csm_reminder(
    about: About<'_>,
    task: &CsmTask,
    buttons: Vec<Button>,
    key: SendKey,
) -> Result<OutgoingEmail, RenderError> {
    task_email(about, task, buttons, true, key)
}

pub(super) fn task_email(
    about: About<'_>,
    task: &CsmTask,
    buttons: Vec<Button>,
    reminder: bool,
    key: SendKey,
) -> Result<OutgoingEmail, RenderError> {
    let About { cfg, account, m, now } = about;
    let subject = format!(
        "[{}] {}CSM task: {} missed, {} ARR at risk",
        account.name,
        if reminder { "Reminder, " } else { "" },
        m.name(),
        fmt_money(task.brief().arr_at_risk)
    );
    // The email shows the task's own snapshot, so the two never disagree.
    let facts = MilestoneFacts {
        target: task.brief().target.clone(),
        current: task.brief().current.clone(),
        ..MilestoneFacts::new(cfg, account, m, now)
    };
    let owner = Contact::parse(task.brief().owner_name.clone(), &task.brief().owner_email)
        .map_err(|e| RenderError::Address(e.to_string()))?;
    let owner_name = first_name(&task.brief().owner_name);
    let opening = if !m.moved_by().is_customer() {
        format!("{owner_name}, this milestone is past its date and it is ours to move: the customer was not written to about it. It is yours now.")
    } else if task.brief().follow_up_not_sent {
        format!("{owner_name}, day-1 outreach did not move this milestone (its follow-up was not sent: the contact policy would have held it past today). It is yours now.")
    } else {
        format!("{owner_name}, day-1 outreach did not move this milestone. It is yours now.")
    };
    let view = CsmView {
        opening,
        subject: clean_header(&subject),
        facts,
        today: fmt_day(local_today(now, account.timezone)),
        overdue: days_ago(days_overdue(m.due_at(), now, account.timezone)),
        champion: &account.primary_contact,
        sponsor: account.exec_sponsor.as_ref(),
        renewal: {
            let to_go = (account.renewal_date - local_today(now, account.timezone)).num_days();
            format!("{} ({})", fmt_day(account.renewal_date), days_ago(-to_go))
        },
        health: &task.brief().health,
        arr_at_risk: fmt_money(task.brief().arr_at_risk),
        intervention: &task.brief().recommended_intervention,
        recent: summarize_activity(&task.brief().recent_activity),
        other: match task.brief().other_activity {
            0 => None,
            1 => Some("Also 1 other product event (a page view or the like).".to_string()),
            n => Some(format!("Also {n} other product events (page views and the like).")),
        },
        role_note: role_note(task),
        reminder: reminder.then(|| format!("You snoozed this task; it is open again as of {}.", fmt_date(now))),
        buttons,
        link_days: cfg.action_link_days,
    };
    Ok(OutgoingEmail {
        in_reply_to: None,
        key,
        kind: EmailKind::CsmTask,
        account_id: account.id.clone(),
        milestone_id: m.milestone_id().to_owned(),
        from: cfg.sender.clone(),
        to: vec![owner],
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
