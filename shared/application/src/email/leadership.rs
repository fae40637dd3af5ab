//! Day 5: the email to the CS leader or to the customer's executive sponsor.

use super::*;

#[derive(Template)]
#[template(path = "leadership.html")]
pub(super) struct LeadershipHtml<'a> {
    v: &'a LeadershipView<'a>,
}
#[derive(Template)]
#[template(path = "leadership.txt")]
pub(super) struct LeadershipText<'a> {
    v: &'a LeadershipView<'a>,
}
#[derive(Template)]
#[template(path = "exec_sponsor.html")]
pub(super) struct ExecSponsorHtml<'a> {
    v: &'a LeadershipView<'a>,
}
#[derive(Template)]
#[template(path = "exec_sponsor.txt")]
pub(super) struct ExecSponsorText<'a> {
    v: &'a LeadershipView<'a>,
}

/// A CSM task as day 5 reports it: who has it, how it stands, their notes.
pub(super) struct TaskSummary {
    pub owner_name: String,
    pub standing: String,
    pub notes: Vec<String>,
}

pub(super) struct LeadershipView<'a> {
    pub task: Option<TaskSummary>,
    pub subject: String,
    pub greeting_name: String,
    pub facts: MilestoneFacts,
    pub overdue: String,
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
    /// Leadership's email: that the customer's sponsor hears next, and what
    /// they are asked (our leadership is never surprised by it).
    pub sponsor_next: Option<String>,
    /// Leadership's email: the leader's lapsed misses, after the escalation.
    pub lapsed: Option<&'a LapsedSection>,
    /// Leadership's email: the signed link that holds the sponsor's email.
    pub hold_sponsor_url: Option<&'a str>,
    /// Leadership's email: the account's page in the console (never the sponsor's).
    pub console: Option<String>,
}

/// What leadership's email reports beside the milestone: the account's
/// health, what the playbook tried (its log) and the CSM task.
#[derive(Clone, Copy)]
pub struct EscalationFacts<'a> {
    pub health: &'a Health,
    pub tried: &'a [EscalationLogEntry],
    pub task: Option<&'a CsmTask>,
    /// The leader's lapsed misses (leadership's email only).
    pub lapsed: Option<&'a LapsedSection>,
    /// The signed link that holds the sponsor's email (leadership's email only).
    pub hold_sponsor_url: Option<&'a str>,
}

/// Who the day-5 step writes to after leadership ("Sam Sponsor
/// (sam@acme.example)") and what they are asked (", and asked: “…”"), when
/// it writes to the customer's sponsor at all.
/// The day, in the account's timezone, the sponsor's email may go after
/// leadership's email sent at `now` ("14 Apr 2026").
pub(super) fn sponsor_day(account: &Account, now: Timestamp) -> String {
    let at = milepost_domain::sponsor_email_at(now, account.timezone);
    fmt_day(at.with_timezone(&account.timezone).date_naive())
}

pub(super) fn sponsor_next(account: &Account, m: &TrackedMilestone) -> Option<(String, String)> {
    let sponsor = account.exec_sponsor.as_ref().filter(|_| m.asks_sponsor())?;
    let ask = m
        .playbook()
        .sponsor
        .as_deref()
        .map(|ask| format!(", and asked: \u{201c}{ask}\u{201d}"))
        .unwrap_or_default();
    Some((format!("{} ({})", sponsor.name, sponsor.email), ask))
}

/// Day 5: the email to the CS leader, or to the customer's executive sponsor
/// (then `unsubscribe_url` is the sponsor's own).
pub fn leadership(
    about: About<'_>,
    facts: EscalationFacts<'_>,
    recipient: &Contact,
    kind: EmailKind,
    unsubscribe_url: Option<&str>,
    key: SendKey,
) -> Result<OutgoingEmail, RenderError> {
    let About { cfg, account, m, now } = about;
    let EscalationFacts {
        health,
        tried,
        task,
        lapsed,
        hold_sponsor_url,
    } = facts;
    let arr = fmt_money(m.arr_at_risk(account.arr));
    let overdue = days(days_overdue(m.due_at(), now, account.timezone));
    let subject = match kind {
        EmailKind::ExecSponsor => format!("[{}] {}: can we count on your help?", account.name, m.customer_title()),
        _ => format!(
            "[{}] Escalation: {} {overdue} overdue, {arr} ARR at risk",
            account.name,
            m.name(),
        ),
    };
    let view = LeadershipView {
        console: match kind {
            EmailKind::ExecSponsor => None,
            _ => console_account_url(cfg, &account.id),
        },
        subject: clean_header(&subject),
        greeting_name: match kind {
            EmailKind::ExecSponsor => first_name(&recipient.name),
            _ => "Hi team".to_string(),
        },
        facts: match kind {
            EmailKind::ExecSponsor => MilestoneFacts::for_customer(cfg, account, m, now),
            _ => MilestoneFacts::new(cfg, account, m, now),
        },
        overdue,
        arr_at_risk: arr,
        health,
        tried: tried
            .iter()
            .map(|e| format!("{}: {}", fmt_date(e.at), e.detail))
            .collect(),
        ask: &m.playbook().leadership,
        sponsor_ask: m.playbook().sponsor.as_deref(),
        reached_out: customer_emailed(tried, None),
        with_guides: customer_emailed(tried, Some(Step::FollowUpEmail))
            && m.playbook().guides.iter().any(|g| g.url.is_some()),
        owner_name: &account.owner(m.owner()).contact.name,
        csm_name: &account.csm.name,
        unsubscribe_url: unsubscribe_url.unwrap_or_default(),
        sponsor_next: match kind {
            EmailKind::Leadership => sponsor_next(account, m).map(|(sponsor, ask)| {
                format!(
                    "{sponsor}, {} executive sponsor, is written to on {}, a business day after this email, unless you hold it, customer email is paused or they unsubscribed{ask}",
                    possessive(&account.name),
                    sponsor_day(account, now)
                )
            }),
            _ => None,
        },
        // The leader's own list and button, never the customer's sponsor's.
        lapsed: lapsed.filter(|_| kind == EmailKind::Leadership),
        hold_sponsor_url: hold_sponsor_url.filter(|_| kind == EmailKind::Leadership && sponsor_next(account, m).is_some()),
        // What people did is for our leadership only, never for the customer's sponsor.
        task: task.filter(|_| kind == EmailKind::Leadership).map(|t| TaskSummary {
            owner_name: t.brief().owner_name.clone(),
            standing: standing(t),
            notes: t
                .notes()
                .iter()
                .map(|n| format!("{}, {}: {}", n.by.display(), fmt_short_date(n.at), n.text))
                .collect(),
        }),
    };
    let (html, text, from) = match kind {
        EmailKind::ExecSponsor => (
            ExecSponsorHtml { v: &view }.render()?,
            ExecSponsorText { v: &view }.render()?,
            cfg.customer_sender(&account.csm),
        ),
        _ => (
            LeadershipHtml { v: &view }.render()?,
            LeadershipText { v: &view }.render()?,
            cfg.sender.clone(),
        ),
    };
    Ok(OutgoingEmail {
        in_reply_to: None,
        key,
        kind,
        account_id: account.id.clone(),
        milestone_id: m.milestone_id().to_owned(),
        from,
        to: vec![recipient.clone()],
        subject: view.subject.clone(),
        text,
        html,
        reply_to: kind.customer_facing().then(|| account.owner(m.owner()).contact.clone()),
        list_unsubscribe: unsubscribe_url.filter(|_| kind.customer_facing()).map(str::to_string),
        date: now,
        names: vec![MilestoneRef::of(m)],
    })
}

/// Whether this escalation's log shows a customer email sent (by `step`, or by any step).
pub(super) fn customer_emailed(tried: &[EscalationLogEntry], step: Option<Step>) -> bool {
    tried.iter().any(|e| {
        e.key.ends_with(":email:customer") && e.detail.ends_with(" sent") && (step.is_none() || e.step == step)
    })
}
