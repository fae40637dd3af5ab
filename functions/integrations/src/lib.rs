//! The integrations Lambda's handler: Milepost's domain events, as
//! EventBridge hands them over from Milepost's bus, delivered to the webhook
//! endpoints that want them, to Slack and to the CRM; or, when its schedule
//! says `{"part": "retries"}`, what is due again. A store failure is an
//! error, so EventBridge invokes again (its retries, then the rule's
//! dead-letter queue): nothing is lost, and a second invocation makes no
//! second delivery.

use std::time::Duration;

use milepost_app::crm::{CrmRun, CrmSyncs};
use milepost_app::ports::StoreError;
use milepost_app::slack::posts::{SlackPosts, SlackRun};
use milepost_app::webhooks::{WebhookRun, Webhooks};
use milepost_domain::webhooks::OutboundEvent;
use milepost_domain::{DomainEvent, Timestamp};
use serde::Deserialize;

/// Stop sending retries this long before the invocation's deadline.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(20);

/// The EventBridge envelope of one domain event, as much of it as is read.
#[derive(Deserialize)]
struct Envelope {
    source: String,
    #[serde(rename = "detail-type")]
    detail_type: String,
    time: Timestamp,
    detail: serde_json::Value,
}

/// Why an invocation carried no domain event of Milepost's.
#[derive(Debug, PartialEq, Eq)]
pub enum NotAnEvent {
    Shape(String),
    Source(String),
    Type(String),
    NoEventId,
}

/// Reads an EventBridge event from Milepost's bus as the event webhooks carry.
pub fn outbound_event(payload: &serde_json::Value) -> Result<OutboundEvent, NotAnEvent> {
    let envelope: Envelope = serde_json::from_value(payload.clone()).map_err(|e| NotAnEvent::Shape(e.to_string()))?;
    if envelope.source != milepost_aws::eventbridge::SOURCE {
        return Err(NotAnEvent::Source(envelope.source));
    }
    if !DomainEvent::TYPES.contains(&envelope.detail_type.as_str()) {
        return Err(NotAnEvent::Type(envelope.detail_type));
    }
    let event_id = envelope
        .detail
        .get("event_id")
        .and_then(serde_json::Value::as_str)
        .filter(|id| !id.is_empty() && id.len() <= 128)
        .ok_or(NotAnEvent::NoEventId)?
        .to_string();
    Ok(OutboundEvent {
        event_id,
        event_type: envelope.detail_type,
        occurred_at: envelope.time,
        data: envelope.detail,
    })
}

/// The invocation's deadline, as a moment on the clock the use case reads.
pub fn deadline_at(deadline_ms: u64) -> Timestamp {
    let deadline = chrono::DateTime::from_timestamp_millis(deadline_ms as i64).unwrap_or_else(chrono::Utc::now);
    deadline - chrono::Duration::from_std(DEADLINE_MARGIN).unwrap_or_default()
}

/// What an invocation hands each event to: the webhooks, and Slack and the
/// CRM where they are set up.
pub struct Integrations<'a> {
    pub webhooks: &'a Webhooks<'a>,
    pub slack: Option<&'a SlackPosts<'a>>,
    pub crm: Option<&'a CrmSyncs<'a>>,
}

/// One invocation: the retries due (`{"part": "retries"}`), or one domain
/// event delivered (to the webhooks, and to Slack and the CRM where they are
/// set up). The runs' reports, as JSON (`{"webhooks": ..., "slack": ...,
/// "crm": ...}`), their metrics printed as embedded-metric-format lines.
pub async fn handle(
    to: &Integrations<'_>,
    payload: &serde_json::Value,
    deadline: Timestamp,
) -> Result<serde_json::Value, StoreError> {
    let webhooks = to.webhooks;
    // The retries due (`{"part": "retries"}`), or one event just published.
    let event = if payload.get("part").and_then(serde_json::Value::as_str) == Some("retries") {
        None
    } else {
        match outbound_event(payload) {
            Ok(event) => Some(event),
            Err(why) => {
                // Nothing an invocation again could change: answered, not retried.
                tracing::warn!(why = ?why, "not a domain event of Milepost's; nothing delivered");
                return Ok(serde_json::json!({"webhooks": WebhookRun::default(), "slack": null, "crm": null}));
            }
        }
    };
    let run = match &event {
        Some(event) => webhooks.accept(std::slice::from_ref(event)).await?,
        None => webhooks.deliver_due(Some(deadline)).await?,
    };
    let slack_run = match (to.slack, &event) {
        (Some(slack), Some(event)) => Some(slack.accept(event).await?),
        (Some(slack), None) => Some(slack.deliver_due(Some(deadline)).await?),
        (None, _) => None,
    };
    let crm_run = match (to.crm, &event) {
        (Some(crm), Some(event)) => Some(crm.accept(event).await?),
        (Some(crm), None) => Some(crm.deliver_due(Some(deadline)).await?),
        (None, _) => None,
    };
    // With the retries, the renewals HubSpot's deals decided since the last run.
    let renewals = match (to.crm, &event) {
        (Some(crm), None) => Some(crm.renewals().await?),
        _ => None,
    };
    let now = webhooks.clock.now();
    println!("{}", run.emf(now));
    tracing::info!(
        accepted = run.accepted,
        duplicates = run.duplicates,
        delivered = run.delivered,
        retrying = run.retrying,
        dead = run.dead,
        endpoints_disabled = run.endpoints_disabled,
        "webhooks run"
    );
    if let Some(s) = &slack_run {
        log_slack(s, now);
    }
    if let Some(c) = &crm_run {
        log_crm(c, now);
    }
    if let Some(r) = renewals.as_ref().filter(|r| r.deals > 0 || r.stopped.is_some()) {
        tracing::info!(
            deals = r.deals,
            recorded = r.recorded,
            unchanged = r.unchanged,
            unmatched = r.unmatched,
            "renewals from HubSpot's deals"
        );
    }
    Ok(serde_json::json!({"webhooks": run, "slack": slack_run, "crm": crm_run, "renewals": renewals}))
}

fn log_crm(run: &CrmRun, now: Timestamp) {
    println!(
        "{}",
        milepost_app::telemetry::emf_record(
            now.timestamp_millis(),
            &[
                ("CrmCompaniesWritten", "Count", run.companies_written.into()),
                ("CrmTasksCreated", "Count", run.tasks_created.into()),
                ("CrmTasksWritten", "Count", run.tasks_written.into()),
                ("CrmUnmatched", "Count", run.unmatched.into()),
                ("CrmChangesDead", "Count", run.dead.into()),
            ],
        )
    );
    tracing::info!(
        matched = run.matched,
        unmatched = run.unmatched,
        companies_written = run.companies_written,
        tasks_created = run.tasks_created,
        tasks_written = run.tasks_written,
        adopted = run.adopted,
        waiting = run.waiting,
        dead = run.dead,
        "crm run"
    );
}

fn log_slack(run: &SlackRun, now: Timestamp) {
    println!(
        "{}",
        milepost_app::telemetry::emf_record(
            now.timestamp_millis(),
            &[
                ("SlackMessagesPosted", "Count", run.posted.into()),
                ("SlackMessagesUpdated", "Count", run.updated.into()),
                ("SlackMessagesGivenUp", "Count", run.given_up.into()),
            ],
        )
    );
    tracing::info!(
        posted = run.posted,
        updated = run.updated,
        adopted = run.adopted,
        waiting = run.waiting,
        given_up = run.given_up,
        "slack run"
    );
}
