//! The leader's list: the day-5 escalations of a day, in one email.

use super::*;

#[derive(Template)]
#[template(path = "leadership_list.html")]
pub(super) struct DigestHtml<'a> {
    v: &'a DigestView<'a>,
}
#[derive(Template)]
#[template(path = "leadership_list.txt")]
pub(super) struct DigestText<'a> {
    v: &'a DigestView<'a>,
}

pub(super) struct DigestView<'a> {
    subject: String,
    headline: String,
    rows: Vec<DigestRow>,
    lapsed: Option<&'a LapsedSection>,
}

pub(super) struct DigestRow {
    account_name: String,
    milestone_name: String,
    arr_at_risk: String,
    overdue: String,
    due_date: String,
    health: String,
    csm_name: String,
    task: String,
    ask: String,
    /// The customer's sponsor written to after this email, and what they are asked.
    sponsor: Option<String>,
    /// The signed link that holds that email.
    hold_sponsor_url: Option<String>,
    link: String,
    /// The account's page in the console, where it is served.
    console: Option<String>,
}

/// One escalation in a leader's daily email.
pub struct ListedEscalation<'a> {
    pub account: &'a Account,
    pub milestone: &'a TrackedMilestone,
    pub health: &'a Health,
    pub task: Option<&'a CsmTask>,
    /// The signed link that holds the sponsor's email of this escalation.
    pub hold_sponsor_url: Option<String>,
}

/// A leader's one escalation email of the day when several escalations
/// wait for it: each with its facts and ask, largest ARR at risk first.
pub fn leadership_list(
    cfg: &Config,
    items: &[ListedEscalation<'_>],
    recipient: &Contact,
    lapsed: Option<&LapsedSection>,
    key: SendKey,
    now: Timestamp,
) -> Result<OutgoingEmail, RenderError> {
    let mut rows: Vec<(u64, DigestRow)> = items
        .iter()
        .map(|i| {
            let arr = i.milestone.arr_at_risk(i.account.arr);
            let facts = MilestoneFacts::new(cfg, i.account, i.milestone, now);
            let row = DigestRow {
                account_name: i.account.name.clone(),
                milestone_name: i.milestone.name().to_owned(),
                arr_at_risk: fmt_money(arr),
                overdue: days(days_overdue(i.milestone.due_at(), now, i.account.timezone)),
                due_date: facts.due_date,
                health: format!("{}/100, {}", i.health.score, i.health.trend_word()),
                csm_name: i.account.csm.name.clone(),
                task: i.task.map_or_else(
                    || "none".to_string(),
                    |t| format!("{}: {}", t.brief().owner_name, standing(t)),
                ),
                ask: i.milestone.playbook().leadership.clone(),
                sponsor: super::leadership::sponsor_next(i.account, i.milestone).map(|(sponsor, ask)| {
                    format!(
                        "{sponsor}, written to on {} unless you hold it{ask}",
                        super::leadership::sponsor_day(i.account, now)
                    )
                }),
                hold_sponsor_url: i
                    .hold_sponsor_url
                    .clone()
                    .filter(|_| super::leadership::sponsor_next(i.account, i.milestone).is_some()),
                link: facts.link,
                console: console_account_url(cfg, &i.account.id),
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
        lapsed,
    };
    let first = items.first().expect("a list has escalations");
    Ok(OutgoingEmail {
        in_reply_to: None,
        key,
        kind: EmailKind::Leadership,
        account_id: first.account.id.clone(),
        milestone_id: first.milestone.milestone_id().to_owned(),
        from: cfg.sender.clone(),
        to: vec![recipient.clone()],
        subject: view.subject.clone(),
        text: DigestText { v: &view }.render()?,
        html: DigestHtml { v: &view }.render()?,
        reply_to: None,
        list_unsubscribe: None,
        date: now,
        names: items.iter().map(|i| MilestoneRef::of(i.milestone)).collect(),
    })
}
