//! The heads-up to the milestone's owner before a miss.

use super::*;

#[derive(Template)]
#[template(path = "heads_up.html")]
pub(super) struct HeadsUpHtml<'a> {
    v: &'a HeadsUpView<'a>,
}
#[derive(Template)]
#[template(path = "heads_up.txt")]
pub(super) struct HeadsUpText<'a> {
    v: &'a HeadsUpView<'a>,
}

/// The owner's heads-up: internal, so it may carry the CSM's playbook text.
pub(super) struct HeadsUpView<'a> {
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
    key: SendKey,
) -> Result<OutgoingEmail, RenderError> {
    let About { cfg, account, m, now } = about;
    let owner = account.owner(m.owner());
    let facts = MilestoneFacts::new(cfg, account, m, now);
    let subject = format!(
        "[{}] Heads-up: {} {}, behind pace",
        account.name,
        m.name(),
        facts.due_phrase
    );
    let role = m.owner().replace('_', " ");
    let view = HeadsUpView {
        subject: clean_header(&subject),
        greeting: first_name(&owner.contact.name),
        done_percent: (pace.done * 100.0).floor() as u32,
        expected_percent: (pace.expected * 100.0).round() as u32,
        arr_at_risk: fmt_money(m.arr_at_risk(account.arr)),
        champion,
        suggestion: &m.playbook().csm,
        role_note: owner.fallback.then(|| fallback_note(&role)),
        days_before: m.heads_up().map_or(0, |r| r.days_before),
        facts,
    };
    Ok(OutgoingEmail {
        in_reply_to: None,
        key,
        kind: EmailKind::HeadsUp,
        account_id: account.id.clone(),
        milestone_id: m.milestone_id().to_owned(),
        from: cfg.sender.clone(),
        to: vec![owner.contact.clone()],
        subject: view.subject.clone(),
        text: HeadsUpText { v: &view }.render()?,
        html: HeadsUpHtml { v: &view }.render()?,
        reply_to: None,
        list_unsubscribe: None,
        date: now,
        names: vec![MilestoneRef::of(m)],
    })
}
