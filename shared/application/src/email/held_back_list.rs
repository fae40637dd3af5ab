//! The owner's email of the misses the contact policy held back from the customer.

use super::*;

#[derive(Template)]
#[template(path = "owner_digest.html")]
pub(super) struct OwnerDigestHtml<'a> {
    v: &'a OwnerDigestView,
}
#[derive(Template)]
#[template(path = "owner_digest.txt")]
pub(super) struct OwnerDigestText<'a> {
    v: &'a OwnerDigestView,
}

pub(super) struct OwnerDigestView {
    subject: String,
    greeting: String,
    headline: String,
    /// What the email lists and why, in one or several.
    intro: &'static str,
    rows: Vec<OwnerDigestRow>,
}

pub(super) struct OwnerDigestRow {
    account_name: String,
    milestone_name: String,
    arr_at_risk: String,
    overdue: String,
    due_date: String,
    progress: String,
    held_back: String,
    link: String,
}

/// A miss the thresholds held back, as its held-back list lists it.
pub struct HeldItem<'a> {
    pub account: &'a Account,
    pub milestone: &'a TrackedMilestone,
    pub held_back: milepost_domain::HeldBack,
}

/// What the thresholds kept a miss from, in the owner's words.
pub(super) fn held_back_words(m: &TrackedMilestone, held: milepost_domain::HeldBack) -> String {
    let t = m.policy().min_arr_at_risk;
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

/// A held-back list: the misses the map's thresholds kept from the CSM or
/// leadership stage since the last one, largest ARR at risk first.
pub fn held_back_list(
    cfg: &Config,
    items: &[HeldItem<'_>],
    owner: &Contact,
    key: SendKey,
    now: Timestamp,
) -> Result<OutgoingEmail, RenderError> {
    let mut rows: Vec<(u64, OwnerDigestRow)> = items
        .iter()
        .map(|i| {
            let arr = i.milestone.arr_at_risk(i.account.arr);
            let facts = MilestoneFacts::new(cfg, i.account, i.milestone, now);
            let row = OwnerDigestRow {
                account_name: i.account.name.clone(),
                milestone_name: i.milestone.name().to_owned(),
                arr_at_risk: fmt_money(arr),
                overdue: days(days_overdue(i.milestone.due_at(), now, i.account.timezone)),
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
        in_reply_to: None,
        key,
        kind: EmailKind::HeldBackList,
        account_id: first.account.id.clone(),
        milestone_id: first.milestone.milestone_id().to_owned(),
        from: cfg.sender.clone(),
        to: vec![owner.clone()],
        subject: view.subject.clone(),
        text: OwnerDigestText { v: &view }.render()?,
        html: OwnerDigestHtml { v: &view }.render()?,
        reply_to: None,
        list_unsubscribe: None,
        date: now,
        names: items.iter().map(|i| MilestoneRef::of(i.milestone)).collect(),
    })
}
