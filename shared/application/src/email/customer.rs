//! The emails to the customer's champion: the day-1 outreach and follow-up,
//! and the heads-up before a miss.

use super::*;
use milepost_domain::ThreadRef;

#[derive(Template)]
#[template(path = "outreach.html")]
pub(super) struct OutreachHtml<'a> {
    v: &'a CustomerView<'a>,
}
#[derive(Template)]
#[template(path = "outreach.txt")]
pub(super) struct OutreachText<'a> {
    v: &'a CustomerView<'a>,
}
#[derive(Template)]
#[template(path = "follow_up.html")]
pub(super) struct FollowUpHtml<'a> {
    v: &'a CustomerView<'a>,
}
#[derive(Template)]
#[template(path = "follow_up.txt")]
pub(super) struct FollowUpText<'a> {
    v: &'a CustomerView<'a>,
}

/// What customer-facing outreach shows.
pub(super) struct CustomerView<'a> {
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

/// follow-up, and the heads-up before a miss (`HeadsUpChampion`, where
/// `also` are the account's other milestones behind pace) — from and signed
/// by the milestone's owner, who also gets the replies. `unsubscribe_url` is the
/// recipient's own (`ActionLinks::unsubscribe`).
pub fn outreach(
    about: About<'_>,
    also: &[TrackedMilestone],
    kind: EmailKind,
    unsubscribe_url: &str,
    key: SendKey,
    reply: Option<Reply>,
) -> Result<OutgoingEmail, RenderError> {
    let About { cfg, account, m, now } = about;
    let facts = MilestoneFacts::for_customer(cfg, account, m, now);
    let title = m.customer_title();
    let subject = match (kind, also.len()) {
        // A reply in its thread: `Re:` what it answers.
        _ if reply.as_ref().is_some_and(|r| r.subject.is_some()) => {
            let answered = reply.as_ref().and_then(|r| r.subject.as_deref()).unwrap_or_default();
            format!("Re: {}", answered.strip_prefix("Re: ").unwrap_or(answered))
        }
        (EmailKind::FollowUp, _) => format!("[{}] Resources and 1:1 help for {}", account.name, title),
        (EmailKind::HeadsUpChampion, 0) => format!("[{}] Coming up: {}", account.name, title),
        (EmailKind::HeadsUpChampion, 1) => format!("[{}] Coming up: {} and one more", account.name, title),
        (EmailKind::HeadsUpChampion, n) => format!("[{}] Coming up: {} and {n} more", account.name, title),
        (_, 0) => format!("[{}] Next step: {}", account.name, title),
        (_, 1) => format!("[{}] Next steps: {} and one more", account.name, title),
        (_, n) => format!("[{}] Next steps: {} and {n} more", account.name, title),
    };
    let owner = account.owner(m.owner()).contact;
    let view = CustomerView {
        subject: clean_header(&subject),
        greeting_name: first_name(&account.primary_contact.name),
        facts,
        points: split_points(&m.playbook().outreach),
        guides: m.playbook().guides.iter().filter(|g| g.url.is_some()).collect(),
        booking_url: &cfg.booking_url,
        signer_name: &owner.name,
        also: also
            .iter()
            .map(|c| {
                let facts = MilestoneFacts::for_customer(cfg, account, c, now);
                (facts.milestone_name, facts.due_phrase, facts.link)
            })
            .collect(),
        unsubscribe_url,
        tally: m
            .progress()
            .tally(m.criterion(), account.licensed_seats)
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
        in_reply_to: reply.map(|r| r.to),
        key,
        kind,
        account_id: account.id.clone(),
        milestone_id: m.milestone_id().to_owned(),
        from: cfg.customer_sender(owner),
        to: vec![account.primary_contact.clone()],
        subject: view.subject.clone(),
        text,
        html,
        reply_to: Some(owner.clone()),
        list_unsubscribe: Some(unsubscribe_url.to_string()),
        date: now,
        names: std::iter::once(m).chain(also).map(MilestoneRef::of).collect(),
    })
}

#[derive(Template)]
#[template(path = "heads_up_champion.html")]
pub(super) struct HeadsUpChampionHtml<'a> {
    v: &'a CustomerView<'a>,
}
#[derive(Template)]
#[template(path = "heads_up_champion.txt")]
pub(super) struct HeadsUpChampionText<'a> {
    v: &'a CustomerView<'a>,
}

/// The email a customer email answers in its thread (day 1's follow-up, its
/// outreach), and that email's subject when it is known.
pub struct Reply {
    pub to: ThreadRef,
    pub subject: Option<String>,
}
