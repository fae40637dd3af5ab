//! `milepost webhooks`: the endpoints Milepost's domain events are sent to
//! (Standard Webhooks), their deliveries, and replays.

use milepost_app::email::fmt_date;
use milepost_app::webhooks::{WebhookError, Webhooks};
use milepost_domain::webhooks::{Delivery, DeliveryState, WebhookEndpoint};
use milepost_domain::{DomainEvent, Timestamp};
use serde::Serialize;

use crate::tasks_cmd::CommandError;

impl From<WebhookError> for CommandError {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::Store(e) => CommandError::Failed(e.into()),
            refused => CommandError::Refused(refused.to_string()),
        }
    }
}

/// Reads `--events A,B` (or repeated): each a type the bus carries.
pub fn event_types(given: &[String]) -> Vec<String> {
    given
        .iter()
        .flat_map(|g| g.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// What `webhooks add` prints: the endpoint, and its secret, shown this once.
pub fn added(endpoint: &WebhookEndpoint) -> String {
    format!(
        "added {id}: {url}\n  events: {events}\n  signing secret (shown once; keep it where your receiver reads it):\n  {secret}\n",
        id = endpoint.id,
        url = endpoint.url,
        events = events_of(endpoint),
        secret = endpoint.secrets[0].secret,
    )
}

fn events_of(endpoint: &WebhookEndpoint) -> String {
    if endpoint.events.is_empty() {
        format!("all ({})", DomainEvent::TYPES.len())
    } else {
        endpoint.events.join(", ")
    }
}

/// One endpoint as `webhooks list --json` prints it (no secrets).
#[derive(Debug, Serialize)]
pub struct EndpointRow {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub enabled: bool,
    pub disabled_why: Option<String>,
    pub failing_since: Option<Timestamp>,
    pub secrets_in_use: usize,
    pub created_at: Timestamp,
}

pub fn rows(endpoints: &[WebhookEndpoint], now: Timestamp) -> Vec<EndpointRow> {
    endpoints
        .iter()
        .map(|e| EndpointRow {
            id: e.id.clone(),
            url: e.url.clone(),
            events: e.events.clone(),
            enabled: e.is_enabled(),
            disabled_why: e.disabled.as_ref().map(|d| d.why.clone()),
            failing_since: e.failing_since,
            secrets_in_use: e.signing_secrets(now).len(),
            created_at: e.created_at,
        })
        .collect()
}

pub fn render_endpoints(endpoints: &[WebhookEndpoint]) -> String {
    if endpoints.is_empty() {
        return "no webhook endpoints (milepost webhooks add URL)\n".to_string();
    }
    let mut out = String::new();
    for e in endpoints {
        let state = match (&e.disabled, e.failing_since) {
            (Some(d), _) => format!("DISABLED since {}: {}", fmt_date(d.at), d.why),
            (None, Some(since)) => format!("enabled, failing since {}", since.format("%Y-%m-%d %H:%M UTC")),
            (None, None) => "enabled".to_string(),
        };
        out.push_str(&format!("{}  {}\n  events: {}\n  {state}\n", e.id, e.url, events_of(e)));
    }
    out
}

/// One delivery as `webhooks deliveries --json` prints it.
#[derive(Debug, Serialize)]
pub struct DeliveryRow<'a> {
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub created_at: Timestamp,
    pub state: &'a DeliveryState,
    pub attempts: usize,
    pub last: Option<String>,
}

pub fn delivery_rows(deliveries: &[Delivery]) -> Vec<DeliveryRow<'_>> {
    deliveries
        .iter()
        .map(|d| DeliveryRow {
            event_id: &d.event_id,
            event_type: &d.event_type,
            created_at: d.created_at,
            state: &d.state,
            attempts: d.attempts.len(),
            last: d.attempts.last().map(|a| a.result.describe()),
        })
        .collect()
}

pub fn render_deliveries(deliveries: &[Delivery]) -> String {
    if deliveries.is_empty() {
        return "no deliveries kept for this endpoint\n".to_string();
    }
    let mut out = format!(
        "{:20}  {:36}  {:26}  {:8}  STATE\n",
        "CREATED", "EVENT ID", "TYPE", "ATTEMPTS"
    );
    for d in deliveries {
        let state = match &d.state {
            DeliveryState::Pending { next_at } => format!("retrying at {}", next_at.format("%Y-%m-%d %H:%M:%S UTC")),
            DeliveryState::Delivered { .. } => "delivered".to_string(),
            DeliveryState::Dead { why, .. } => format!("failed: {why}"),
        };
        out.push_str(&format!(
            "{:20}  {:36}  {:26}  {:8}  {state}\n",
            d.created_at.format("%Y-%m-%d %H:%M:%S"),
            d.event_id,
            d.event_type,
            d.attempts.len()
        ));
    }
    out
}

/// `webhooks replay`: what it queued, in words.
pub async fn replay(
    webhooks: &Webhooks<'_>,
    id: &str,
    event: Option<&str>,
    since: Option<&str>,
    delivered_too: bool,
) -> Result<String, CommandError> {
    let since = since
        .map(|s| {
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc())
                .map_err(|_| CommandError::Refused(format!("--since {s:?}: a day as YYYY-MM-DD (UTC)")))
        })
        .transpose()?;
    let queued = webhooks.replay(id, event, since, delivered_too).await?;
    if queued == 0 {
        return Err(CommandError::Refused(match event {
            Some(e) => format!("no delivery of event {e} to {id} is kept (30 days), or it is being sent now"),
            None => format!("nothing to replay to {id}: every delivery chosen went, or is still being retried"),
        }));
    }
    Ok(format!(
        "{queued} deliver{} queued for {id}; the integrations function sends them within a minute (or: milepost webhooks deliver)\n",
        if queued == 1 { "y" } else { "ies" }
    ))
}
