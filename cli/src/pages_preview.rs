//! `milepost pages-preview --out DIR` (hidden): every page an action link can
//! show, rendered by the real handler over a run of the pipeline, for `make
//! emails-preview` to check in headless Chromium beside the emails.
//!
//! An enterprise account misses its manual "executive sponsor identified"
//! milestone; the day-3 task and its email with buttons come from the real
//! playbook; each page is what following one of its links shows.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use chrono::{Duration, TimeZone, Utc};
use milepost_app::actions::{ActionForm, Actions, Page};
use milepost_app::links::{ActionLinks, LinkAction, LinkSigner, DEV_LINK_KEY};
use milepost_app::ports::{MapStore, TaskStore};
use milepost_app::sweep::SweepOptions;
use milepost_app::{Config, Services};
use milepost_domain::{Account, AccountId, Contact, CsmTask, EmailAddress, Segment, SuppressionSource};
use milepost_embedded::{InMemoryStore, LocalWorkflowRunner, MemoryMailer, RecordingPublisher, VirtualClock};

/// The manual milestone whose task the pages act on.
const MILESTONE: &str = "exec_sponsor_identified";

/// Writes one `.html` per page into `out`; returns their names and statuses.
pub async fn write(out: &Path) -> Result<Vec<(String, u16)>> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let start = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
    let clock = Arc::new(VirtualClock::new(start));
    let store = Arc::new(InMemoryStore::new());
    let runner = Arc::new(LocalWorkflowRunner::new());
    let config = Config::default();
    let links = config.links(LinkSigner::new(DEV_LINK_KEY.as_bytes()).expect("the development key is long enough"));
    let services = Services {
        store: store.clone(),
        mailer: Arc::new(MemoryMailer::default()),
        events: Arc::new(RecordingPublisher::default()),
        workflows: runner.clone(),
        clock: clock.clone(),
        config,
        links: Some(links.clone()),
    };
    for map in crate::example_maps::example_maps() {
        store.put_map(&map).await?;
    }
    let account = Account {
        id: AccountId::new("acme-corp"),
        name: "Acme & Sons <Holdings>".into(),
        segment: Segment::Enterprise,
        contract_start: start.date_naive(),
        renewal_date: start.date_naive() + Duration::days(365),
        tenure_year: 1,
        arr: 240_000,
        licensed_seats: 150,
        primary_contact: Contact::parse("Dana Li", "dana@acme.example")?,
        csm: Contact::parse("Maya Thompson", "maya.thompson@vendor.example")?,
        cs_leader_email: EmailAddress::parse("cs-leadership@vendor.example")?,
        exec_sponsor: None,
        timezone: chrono_tz::UTC,
        goal: Some("cut month-end close from 8 days to 3".into()),
        traits_at: None,
        contacts: Default::default(),
        renewals: Vec::new(),
        domain: None,
        hubspot_company_id: None,
        success_plan: None,
    };
    services.ingestion().upsert_account(&account).await?;
    // Past the milestone's due date and its day-3 task.
    let mut now = start;
    while now < start + Duration::days(36) {
        now += Duration::hours(1);
        clock.set(now);
        services.sweeper().sweep(&SweepOptions::default()).await?;
        runner.run_due(&services.playbook(), now).await;
    }
    let task = store
        .tasks_for_owner("maya.thompson@vendor.example", None)
        .await?
        .into_iter()
        .find(|t| t.brief().milestone_id == MILESTONE)
        .context("the playbook opened no task for the manual milestone")?;
    let actions = services.actions().expect("links are configured");
    let token = |action: LinkAction| -> String {
        let url = links.url(action, task.id(), &task.brief().owner_email, now);
        url.rsplit('/').next().expect("a link ends in its token").to_string()
    };
    let mut pages: Vec<(String, Page)> = Vec::new();
    for action in LinkAction::ALL {
        let t = token(action);
        pages.push((
            format!("confirm-{}", action.as_str()),
            actions.show(&t, &path(&t)).await,
        ));
    }
    // Leadership's button: hold the sponsor's email, then the same link again.
    let hold = links.url(
        LinkAction::HoldSponsor,
        task.id(),
        account.cs_leader_email.as_str(),
        now,
    );
    let hold = hold.rsplit('/').next().expect("a link ends in its token").to_string();
    pages.push(("confirm-hold_sponsor".into(), actions.show(&hold, &path(&hold)).await));
    pages.push(("sponsor-held".into(), actions.act(&hold, &ActionForm::default()).await));
    pages.push((
        "sponsor-already-held".into(),
        actions.act(&hold, &ActionForm::default()).await,
    ));
    // Acting: done once, then the same link again, then another on the closed task.
    let form = ActionForm {
        note: Some("called the sponsor's office; meeting booked for Tuesday".into()),
        outcome: Some("plan_agreed".into()),
    };
    let done = token(LinkAction::Done);
    pages.push(("done".into(), actions.act(&done, &form).await));
    pages.push(("already-done".into(), actions.act(&done, &form).await));
    let snooze = token(LinkAction::Snooze3);
    pages.push((
        "already-closed".into(),
        actions.act(&snooze, &ActionForm::default()).await,
    ));
    pages.push((
        "paused".into(),
        actions.act(&token(LinkAction::Pause), &ActionForm::default()).await,
    ));
    pages.push((
        "confirmed".into(),
        actions.act(&token(LinkAction::Confirm), &ActionForm::default()).await,
    ));
    pages.extend(refusals(&actions, &links, &task, &done, now).await);
    pages.extend(unsubscribe_pages(&actions, &links, &account, now).await);
    let mut written = Vec::new();
    for (name, page) in pages {
        std::fs::write(out.join(format!("{name}.html")), &page.html)?;
        written.push((name, page.status));
    }
    Ok(written)
}

/// What the champion's unsubscribe link shows: its page, unsubscribed,
/// already unsubscribed, and the refusals of an altered and an expired link.
async fn unsubscribe_pages(
    actions: &Actions,
    links: &ActionLinks,
    account: &Account,
    now: milepost_domain::Timestamp,
) -> Vec<(String, Page)> {
    let token_of = |url: String| url.rsplit('/').next().expect("a link ends in its token").to_string();
    let email = account.primary_contact.email.as_str();
    let token = token_of(links.unsubscribe(account.id.as_str(), email, now));
    let expired = token_of(links.unsubscribe(
        account.id.as_str(),
        email,
        now - Duration::days(links.unsubscribe_lifetime.num_days() + 1),
    ));
    let altered = altered(&token);
    vec![
        (
            "unsubscribe".to_string(),
            actions
                .show_unsubscribe(&token, &format!("/v1/unsubscribe/{token}"))
                .await,
        ),
        (
            "unsubscribed".to_string(),
            actions.unsubscribe(&token, SuppressionSource::Page).await,
        ),
        (
            "already-unsubscribed".to_string(),
            actions.unsubscribe(&token, SuppressionSource::OneClick).await,
        ),
        (
            "unsubscribe-altered".to_string(),
            actions.show_unsubscribe(&altered, "").await,
        ),
        (
            "unsubscribe-expired".to_string(),
            actions.unsubscribe(&expired, SuppressionSource::OneClick).await,
        ),
    ]
}

/// Where a confirmation page's button posts, as the actions function serves it.
fn path(token: &str) -> String {
    format!("/v1/actions/{token}")
}

fn base64_url(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

/// `token` with one character of its MAC changed: a link tampered with.
fn altered(token: &str) -> String {
    let mut altered = token.to_string();
    let flip = altered.len() - 5;
    let c = if altered.as_bytes()[flip] == b'A' { "B" } else { "A" };
    altered.replace_range(flip..=flip, c);
    altered
}

/// What a link that cannot be used shows: not ours, altered, from an older
/// email, for someone else, for a task that does not exist, expired.
async fn refusals(
    actions: &Actions,
    links: &ActionLinks,
    task: &CsmTask,
    done: &str,
    now: milepost_domain::Timestamp,
) -> Vec<(String, Page)> {
    let altered = altered(done);
    let token_of = |url: String| url.rsplit('/').next().expect("a link ends in its token").to_string();
    let other = token_of(links.url(LinkAction::Done, task.id(), "sam@vendor.example", now));
    let missing = token_of(links.url(
        LinkAction::Done,
        "no-such-escalation:csm-task",
        &task.brief().owner_email,
        now,
    ));
    let expired = token_of(links.url(
        LinkAction::Done,
        task.id(),
        &task.brief().owner_email,
        now - Duration::days(links.lifetime.num_days() + 1),
    ));
    // A task link as emails sent before the current link format carried it.
    let outdated = format!(
        "v1.{}.AAAA",
        base64_url(&format!(
            r#"{{"a":"done","s":"{}","r":"{}","e":{}}}"#,
            task.id(),
            milepost_app::links::address_fingerprint(&task.brief().owner_email),
            now.timestamp() + 86_400
        ))
    );
    vec![
        ("unusable".to_string(), actions.show("v2.not-a-link", "").await),
        ("altered".to_string(), actions.show(&altered, "").await),
        ("outdated".to_string(), actions.show(&outdated, "").await),
        ("other-recipient".to_string(), actions.show(&other, "").await),
        ("not-found".to_string(), actions.show(&missing, "").await),
        ("expired".to_string(), actions.show(&expired, "").await),
    ]
}
