//! The email telling an expansion milestone's owner of the opportunity
//! reaching it opened: internal, so it carries the map's play.

use super::*;
use milepost_domain::Opportunity;

#[derive(Template)]
#[template(path = "opportunity.html")]
pub(super) struct OpportunityHtml<'a> {
    v: &'a OpportunityView<'a>,
}
#[derive(Template)]
#[template(path = "opportunity.txt")]
pub(super) struct OpportunityText<'a> {
    v: &'a OpportunityView<'a>,
}

pub(super) struct OpportunityView<'a> {
    subject: String,
    greeting: String,
    facts: MilestoneFacts,
    /// Whom it is for: `you, as the account's AE`; `the AE role` when it
    /// comes to the CSM because no one holds the role.
    for_whom: String,
    reached_on: String,
    /// "10 × seats, $12,000 a year", as the report and the console say it.
    opportunity: String,
    arr: String,
    licensed_seats: u32,
    renewal_date: String,
    /// The account's CSM, when the reader is someone else.
    csm_name: Option<&'a str>,
    play: &'a str,
    role_note: Option<String>,
    /// The console's account page where it is served, else the milestone's page.
    link: String,
}

/// The opportunity `o` that reaching `m` opened, to the owner of its role
/// (the CSM where the account has no one in that role, saying so).
pub fn opportunity(about: About<'_>, o: &Opportunity, key: SendKey) -> Result<OutgoingEmail, RenderError> {
    let About { cfg, account, m, now } = about;
    let owner = account.owner(&o.for_role);
    let role = role_words(&o.for_role);
    let facts = MilestoneFacts::new(cfg, account, m, now);
    let opportunity = opportunity_words(o);
    let subject = format!("[{}] Expansion opportunity: {} ({opportunity})", account.name, m.name());
    let view = OpportunityView {
        subject: clean_header(&subject),
        greeting: first_name(&owner.contact.name),
        for_whom: match owner.fallback {
            true => format!("the {role} role"),
            false => format!("you, as the account's {role}"),
        },
        // The day where the account is, as its other emails date things.
        reached_on: fmt_day(o.opened_at.with_timezone(&account.timezone).date_naive()),
        opportunity,
        arr: fmt_money(account.arr),
        licensed_seats: account.licensed_seats,
        renewal_date: fmt_day(account.renewal_date),
        csm_name: (owner.contact.email != account.csm.email).then_some(account.csm.name.as_str()),
        play: m.expansion().map_or("", |e| e.play.as_str()),
        role_note: owner.fallback.then(|| fallback_note(&role)),
        link: console_account_url(cfg, &account.id).unwrap_or_else(|| facts.link.clone()),
        facts,
    };
    Ok(OutgoingEmail {
        in_reply_to: None,
        key,
        kind: EmailKind::Opportunity,
        account_id: account.id.clone(),
        milestone_id: m.milestone_id().to_owned(),
        from: cfg.sender.clone(),
        to: vec![owner.contact.clone()],
        subject: view.subject.clone(),
        text: OpportunityText { v: &view }.render()?,
        html: OpportunityHtml { v: &view }.render()?,
        reply_to: None,
        list_unsubscribe: None,
        date: now,
        names: vec![MilestoneRef::of(m)],
    })
}
