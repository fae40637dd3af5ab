//! Outbound webhooks: every domain event, to each endpoint an operator
//! registered for its type, signed per Standard Webhooks (`webhook-id`, the
//! event's id; `webhook-timestamp`; `webhook-signature`, one `v1,` HMAC per
//! live secret, so a rotation loses nothing), retried on the domain's
//! schedule for a day, then dead and replayable; an endpoint failing every
//! delivery for a day is disabled, with an alarm.
//!
//! At least once, as the standard asks: a delivery is claimed before each
//! attempt (overlapping runs do not post it twice), but an answer lost
//! after the endpoint took it is posted again under the same `webhook-id`,
//! which consumers dedupe on. A bus event Milepost's consumer receives
//! twice makes one delivery per endpoint (`WebhookStore::create_delivery`).

use std::collections::HashMap;

use milepost_domain::webhooks::{
    AttemptResult, Delivery, DeliveryState, EndpointChange, OutboundEvent, Verdict, WebhookEndpoint,
};
use milepost_domain::{Claim, DomainEvent, Timestamp};
use rand::RngCore;
use serde::Serialize;

use crate::error_chain::ErrorChain;
use crate::ports::{Clock, PostAnswer, StoreError, StoreResult, WebhookPost, WebhookPoster, WebhookStore};
use crate::writes::retry_on_conflict;

/// Deliveries attempted per page of the due index.
const PAGE: usize = 50;

/// What an operator's command got wrong, in words they can act on.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("{url:?} is not a URL webhooks can go to: {why}")]
    Url { url: String, why: String },
    #[error("no event type {0:?}; the types are: {types}", types = DomainEvent::TYPES.join(", "))]
    EventType(String),
    #[error("no webhook endpoint {0:?} (milepost webhooks list shows them)")]
    NoEndpoint(String),
    #[error("endpoint {0} is disabled: enable it first (milepost webhooks enable {0})")]
    Disabled(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one run did, for the logs and the metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WebhookRun {
    /// Deliveries made for events just received (one per endpoint that wants each).
    pub accepted: usize,
    /// Events received before: nothing new made.
    pub duplicates: usize,
    pub delivered: usize,
    /// Failed, and due again later.
    pub retrying: usize,
    /// Given up: retries spent, the endpoint gone, disabled or removed.
    pub dead: usize,
    /// Endpoints disabled by this run.
    pub endpoints_disabled: usize,
    /// Another attempt held them, or they were no longer due.
    pub skipped: usize,
}

impl WebhookRun {
    /// The run as one CloudWatch embedded-metric-format record; the alarms
    /// watch `WebhookDeliveriesDead` and `WebhookEndpointsDisabled`.
    pub fn emf(&self, now: Timestamp) -> serde_json::Value {
        let metrics: [(&str, &str, serde_json::Value); 4] = [
            ("WebhooksDelivered", "Count", self.delivered.into()),
            ("WebhooksRetrying", "Count", self.retrying.into()),
            ("WebhookDeliveriesDead", "Count", self.dead.into()),
            ("WebhookEndpointsDisabled", "Count", self.endpoints_disabled.into()),
        ];
        crate::telemetry::emf_record(now.timestamp_millis(), &metrics)
    }
}

/// The use case, over its store, the HTTP poster and the clock.
pub struct Webhooks<'a> {
    pub store: &'a dyn WebhookStore,
    pub poster: &'a dyn WebhookPoster,
    pub clock: &'a dyn Clock,
}

/// `whsec_` and 32 random bytes in base64: the form Standard Webhooks' libraries take.
pub fn new_secret() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn new_endpoint_id() -> String {
    let mut bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut bytes);
    format!("ep_{}", hex::encode(bytes))
}

/// Where webhooks may go: HTTPS, or plain HTTP to this machine (a local
/// receiver); never with credentials in the URL, which logs would show.
pub fn check_url(url: &str) -> Result<(), WebhookError> {
    let refuse = |why: &str| {
        Err(WebhookError::Url {
            url: url.to_string(),
            why: why.to_string(),
        })
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return refuse("it has no scheme (https://...)");
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() {
        return refuse("it names no host");
    }
    if authority.contains('@') {
        return refuse("it carries credentials; the signature is the endpoint's proof of the sender");
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return refuse("it contains spaces or control characters");
    }
    let host = authority
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(authority, |(host, _)| host);
    let loopback = matches!(host, "localhost" | "127.0.0.1" | "[::1]");
    match scheme.to_ascii_lowercase().as_str() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => refuse("plain HTTP is only for a receiver on this machine (localhost); use https"),
        _ => refuse("only https:// URLs"),
    }
}

/// The headers of one attempt: the event's id (the same on every attempt),
/// the moment of signing, and a signature per secret in use.
pub fn signed_headers(
    event_id: &str,
    body: &str,
    secrets: &[&str],
    at: Timestamp,
) -> Result<Vec<(&'static str, String)>, standardwebhooks::WebhookError> {
    let timestamp = at.timestamp();
    let mut signatures = Vec::with_capacity(secrets.len());
    for secret in secrets {
        signatures.push(standardwebhooks::Webhook::new(secret)?.sign(event_id, timestamp, body.as_bytes())?);
    }
    Ok(vec![
        ("content-type", "application/json".to_string()),
        ("user-agent", "Milepost-Webhooks/1".to_string()),
        ("webhook-id", event_id.to_string()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signatures.join(" ")),
    ])
}

impl Webhooks<'_> {
    /// Registers an endpoint for `events` (empty: every type); its secret
    /// is on the endpoint returned, shown to the operator once.
    pub async fn add(&self, url: &str, events: &[String]) -> Result<WebhookEndpoint, WebhookError> {
        check_url(url)?;
        for event in events {
            if !DomainEvent::TYPES.contains(&event.as_str()) {
                return Err(WebhookError::EventType(event.clone()));
            }
        }
        let mut events = events.to_vec();
        events.sort();
        events.dedup();
        loop {
            let endpoint = WebhookEndpoint::new(
                new_endpoint_id(),
                url.to_string(),
                events.clone(),
                new_secret(),
                self.clock.now(),
            );
            if self.store.create_webhook_endpoint(&endpoint).await? {
                return Ok(WebhookEndpoint { version: 1, ..endpoint });
            }
        }
    }

    pub async fn endpoints(&self) -> StoreResult<Vec<WebhookEndpoint>> {
        self.store.webhook_endpoints().await
    }

    async fn endpoint(&self, id: &str) -> Result<WebhookEndpoint, WebhookError> {
        self.store
            .webhook_endpoints()
            .await?
            .into_iter()
            .find(|e| e.id == id)
            .ok_or_else(|| WebhookError::NoEndpoint(id.to_string()))
    }

    /// Applies `change` to the endpoint as stored, on the version read.
    async fn change_endpoint(
        &self,
        id: &str,
        change: impl Fn(&mut WebhookEndpoint),
    ) -> Result<WebhookEndpoint, WebhookError> {
        let changed = retry_on_conflict(
            || format!("webhook endpoint {id}"),
            || async {
                let mut endpoint = match self.endpoint(id).await {
                    Ok(e) => e,
                    Err(WebhookError::Store(e)) => return Err(e),
                    Err(_) => return Ok(None),
                };
                change(&mut endpoint);
                endpoint.version = self.store.update_webhook_endpoint(&endpoint).await?;
                Ok(Some(endpoint))
            },
        )
        .await?;
        changed.ok_or_else(|| WebhookError::NoEndpoint(id.to_string()))
    }

    /// A new secret first; the one before still signs for a day
    /// (`ROTATION_OVERLAP`). Returns the endpoint with its new secret.
    pub async fn rotate_secret(&self, id: &str) -> Result<WebhookEndpoint, WebhookError> {
        let secret = new_secret();
        let now = self.clock.now();
        self.change_endpoint(id, |e| e.rotate(secret.clone(), now)).await
    }

    /// Sends to a disabled endpoint again (what waited is sent by `replay`).
    pub async fn enable(&self, id: &str) -> Result<WebhookEndpoint, WebhookError> {
        self.change_endpoint(id, WebhookEndpoint::enable).await
    }

    pub async fn remove(&self, id: &str) -> Result<(), WebhookError> {
        if self.store.delete_webhook_endpoint(id).await? {
            Ok(())
        } else {
            Err(WebhookError::NoEndpoint(id.to_string()))
        }
    }

    pub async fn deliveries(&self, id: &str) -> Result<Vec<Delivery>, WebhookError> {
        self.endpoint(id).await?;
        Ok(self.store.endpoint_deliveries(id).await?)
    }

    /// Domain events as the bus delivered them: a delivery for each
    /// endpoint that wants each (dead at once for a disabled endpoint, so a
    /// replay can send it later), then each new one attempted.
    pub async fn accept(&self, events: &[OutboundEvent]) -> StoreResult<WebhookRun> {
        let mut run = WebhookRun::default();
        let endpoints = self.store.webhook_endpoints().await?;
        let now = self.clock.now();
        let mut fresh = Vec::new();
        for event in events {
            for endpoint in endpoints.iter().filter(|e| e.wants(&event.event_type)) {
                let mut delivery = Delivery::new(&endpoint.id, event, now);
                if !endpoint.is_enabled() {
                    delivery.die(now, "the endpoint is disabled".into());
                }
                if self.store.create_delivery(&delivery).await? {
                    run.accepted += 1;
                    if endpoint.is_enabled() {
                        fresh.push(Delivery { version: 1, ..delivery });
                    } else {
                        run.dead += 1;
                    }
                } else {
                    run.duplicates += 1;
                }
            }
        }
        let by_id: HashMap<&str, &WebhookEndpoint> = endpoints.iter().map(|e| (e.id.as_str(), e)).collect();
        for delivery in fresh {
            self.attempt(delivery, &by_id, &mut run).await?;
        }
        Ok(run)
    }

    /// Every delivery due now, until none is left or `deadline` passes.
    pub async fn deliver_due(&self, deadline: Option<Timestamp>) -> StoreResult<WebhookRun> {
        let mut run = WebhookRun::default();
        let endpoints = self.store.webhook_endpoints().await?;
        let by_id: HashMap<&str, &WebhookEndpoint> = endpoints.iter().map(|e| (e.id.as_str(), e)).collect();
        let mut seen = std::collections::HashSet::new();
        loop {
            let now = self.clock.now();
            if deadline.is_some_and(|d| now >= d) {
                break;
            }
            let due = self.store.due_deliveries(now, PAGE).await?;
            let mut any = false;
            for delivery in due {
                // One attempt per delivery per run: a retry due at once (a
                // Retry-After of 0) waits for the next run.
                if !seen.insert((delivery.endpoint_id.clone(), delivery.event_id.clone())) {
                    continue;
                }
                any = true;
                self.attempt(delivery, &by_id, &mut run).await?;
            }
            if !any {
                break;
            }
        }
        Ok(run)
    }

    /// One attempt: claimed on the version read, posted, recorded; the
    /// endpoint's failing state follows.
    async fn attempt(
        &self,
        mut delivery: Delivery,
        endpoints: &HashMap<&str, &WebhookEndpoint>,
        run: &mut WebhookRun,
    ) -> StoreResult<()> {
        let now = self.clock.now();
        if !delivery.is_due(now) {
            run.skipped += 1;
            return Ok(());
        }
        let endpoint = match endpoints.get(delivery.endpoint_id.as_str()) {
            Some(e) if e.is_enabled() => *e,
            found => {
                let why = if found.is_some() {
                    "the endpoint is disabled"
                } else {
                    "the endpoint was removed"
                };
                delivery.die(now, why.into());
                return match self.store.update_delivery(&delivery).await {
                    Ok(_) => {
                        run.dead += 1;
                        Ok(())
                    }
                    Err(StoreError::Conflict) => {
                        run.skipped += 1;
                        Ok(())
                    }
                    Err(e) => Err(e),
                };
            }
        };
        delivery.claim = Some(Claim::fresh(now));
        match self.store.update_delivery(&delivery).await {
            Ok(version) => delivery.version = version,
            Err(StoreError::Conflict) => {
                run.skipped += 1;
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        let answer = match signed_headers(
            &delivery.event_id,
            &delivery.payload,
            &endpoint.signing_secrets(now),
            now,
        ) {
            Ok(headers) => {
                self.poster
                    .post(WebhookPost {
                        url: &endpoint.url,
                        headers,
                        body: &delivery.payload,
                    })
                    .await
            }
            // A secret the store holds that does not decode: no request can be signed.
            Err(e) => PostAnswer {
                result: AttemptResult::NoAnswer {
                    error: format!("not signed: the endpoint's secret is unusable ({e})"),
                },
                retry_after: None,
            },
        };
        let after = self.clock.now();
        let gone = answer.result == AttemptResult::Status { status: 410 };
        let verdict = delivery.record(after, answer.result, answer.retry_after);
        match self.store.update_delivery(&delivery).await {
            Ok(_) => {}
            // Its claim ran out and another attempt took it over: that one records.
            Err(StoreError::Conflict) => {
                tracing::warn!(endpoint = %delivery.endpoint_id, event_id = %delivery.event_id, "a webhook attempt outlived its claim");
            }
            Err(e) => return Err(e),
        }
        match verdict {
            Verdict::Delivered => run.delivered += 1,
            Verdict::RetryAt(_) => run.retrying += 1,
            Verdict::Dead => {
                run.dead += 1;
                if let DeliveryState::Dead { why, .. } = &delivery.state {
                    tracing::error!(endpoint = %delivery.endpoint_id, event_id = %delivery.event_id, why = %why, "a webhook delivery was given up");
                }
            }
        }
        let went = verdict == Verdict::Delivered;
        if went && endpoint.failing_since.is_none() {
            return Ok(());
        }
        match self.endpoint_after(&endpoint.id, went, gone, after).await {
            Ok(EndpointChange::Disabled) => {
                run.endpoints_disabled += 1;
                tracing::error!(endpoint = %endpoint.id, "a webhook endpoint was disabled after failing every delivery");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(endpoint = %endpoint.id, error = %ErrorChain(&e), "an endpoint's failing state was not written; the next attempt writes it");
            }
        }
        Ok(())
    }

    /// The endpoint as the attempt's outcome leaves it (failing since, or
    /// disabled; or no longer failing), written only when that changed it.
    async fn endpoint_after(&self, id: &str, went: bool, gone: bool, at: Timestamp) -> StoreResult<EndpointChange> {
        retry_on_conflict(
            || format!("webhook endpoint {id}"),
            || async {
                let Some(mut endpoint) = self.store.webhook_endpoints().await?.into_iter().find(|e| e.id == id) else {
                    return Ok(EndpointChange::Unchanged);
                };
                let change = if went {
                    endpoint.after_success()
                } else if gone {
                    endpoint.gone(at)
                } else {
                    endpoint.after_failure(at)
                };
                if change != EndpointChange::Unchanged {
                    self.store.update_webhook_endpoint(&endpoint).await?;
                }
                Ok(change)
            },
        )
        .await
    }

    /// Sends again, from the start of the schedule: the one event named, or
    /// every delivery made since `since` (only those not delivered, unless
    /// `delivered_too`). Returns how many were queued; the next run sends them.
    pub async fn replay(
        &self,
        id: &str,
        event_id: Option<&str>,
        since: Option<Timestamp>,
        delivered_too: bool,
    ) -> Result<usize, WebhookError> {
        let endpoint = self.endpoint(id).await?;
        if !endpoint.is_enabled() {
            return Err(WebhookError::Disabled(id.to_string()));
        }
        let now = self.clock.now();
        let mut queued = 0;
        for mut delivery in self.store.endpoint_deliveries(id).await? {
            let chosen = match event_id {
                Some(event) => delivery.event_id == event,
                None => {
                    since.is_none_or(|since| delivery.created_at >= since)
                        && match delivery.state {
                            DeliveryState::Dead { .. } => true,
                            DeliveryState::Delivered { .. } => delivered_too,
                            DeliveryState::Pending { .. } => false,
                        }
                }
            };
            if !chosen || (delivery.next_at().is_some() && event_id.is_none()) {
                continue;
            }
            delivery.replay(now);
            match self.store.update_delivery(&delivery).await {
                Ok(_) => queued += 1,
                Err(StoreError::Conflict) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(queued)
    }
}
