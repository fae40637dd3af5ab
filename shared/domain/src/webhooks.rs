//! Outbound webhooks: the endpoints an operator registers, and each domain
//! event's delivery to each, retried with backoff for a day and given up
//! (dead, replayable) after. Values and rules only: the signing (Standard
//! Webhooks) and the HTTP are the application's and the adapters'.

use chrono::Duration;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Claim, Timestamp};

/// When each retry of a delivery falls due, counted from its first attempt
/// (Standard Webhooks' suggested schedule, stretched to a day): seven
/// retries after the first attempt, the last a day after it.
pub const RETRY_OFFSETS: [Duration; 7] = [
    Duration::seconds(5),
    Duration::minutes(5),
    Duration::minutes(30),
    Duration::hours(2),
    Duration::hours(5),
    Duration::hours(10),
    Duration::hours(24),
];

/// When a record failing since `since` tries again after its `failures`th
/// failure at `at` (`RETRY_OFFSETS`, never sooner than its first step after
/// `at`); none once the schedule is spent: give up. Slack's messages and the
/// CRM's changes retry on it.
pub fn retry_at(since: Timestamp, failures: u32, at: Timestamp) -> Option<Timestamp> {
    let offset = RETRY_OFFSETS.get((failures as usize).checked_sub(1)?)?;
    Some((since + *offset).max(at + RETRY_OFFSETS[0]))
}

/// An endpoint failing every delivery for this long is disabled.
pub const DISABLE_AFTER: Duration = Duration::hours(24);

/// How long a rotated-out secret still signs, beside the new one, so a
/// consumer has a day to take the new one without losing a delivery.
pub const ROTATION_OVERLAP: Duration = Duration::hours(24);

/// How long an attempt holds its delivery: longer than a post may take.
pub const DELIVERY_LEASE: Duration = Duration::seconds(60);

/// Attempts kept on a delivery (the latest), for `milepost webhooks deliveries`.
pub const ATTEMPTS_KEPT: usize = 20;

/// An endpoint an operator registered (`milepost webhooks add`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEndpoint {
    /// `ep_` and 16 hex digits.
    pub id: String,
    pub url: String,
    /// The event types (the bus's detail types) it is sent; empty: all.
    #[serde(default)]
    pub events: Vec<String>,
    /// Its signing secrets (`whsec_` and base64), newest first; one
    /// rotated out keeps signing until its `expires_at`.
    pub secrets: Vec<EndpointSecret>,
    pub created_at: Timestamp,
    /// Since when every attempt failed (cleared by a delivery that went).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<Disabled>,
    /// Optimistic-concurrency version: every write expects the one read.
    #[serde(default)]
    pub version: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointSecret {
    pub secret: String,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
}

/// Why, and since when, an endpoint is sent nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disabled {
    pub at: Timestamp,
    pub why: String,
}

/// What a failed attempt did to its endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndpointChange {
    Unchanged,
    /// Its first failure after a success: `failing_since` set.
    StartedFailing,
    /// Disabled now (the alarm's moment).
    Disabled,
    /// A delivery went after failures: no longer failing.
    Recovered,
}

impl WebhookEndpoint {
    pub fn new(id: String, url: String, events: Vec<String>, secret: String, now: Timestamp) -> Self {
        WebhookEndpoint {
            id,
            url,
            events,
            secrets: vec![EndpointSecret {
                secret,
                created_at: now,
                expires_at: None,
            }],
            created_at: now,
            failing_since: None,
            disabled: None,
            version: 0,
        }
    }

    /// Whether events of `event_type` are sent to it.
    pub fn wants(&self, event_type: &str) -> bool {
        self.events.is_empty() || self.events.iter().any(|e| e == event_type)
    }

    pub fn is_enabled(&self) -> bool {
        self.disabled.is_none()
    }

    /// The secrets a delivery at `now` is signed with: the current one and
    /// any rotated out less than `ROTATION_OVERLAP` ago.
    pub fn signing_secrets(&self, now: Timestamp) -> Vec<&str> {
        self.secrets
            .iter()
            .filter(|s| s.expires_at.is_none_or(|at| now < at))
            .map(|s| s.secret.as_str())
            .collect()
    }

    /// Puts `secret` first; the ones before keep signing for `ROTATION_OVERLAP`
    /// (those expired already are dropped).
    pub fn rotate(&mut self, secret: String, now: Timestamp) {
        self.secrets.retain(|s| s.expires_at.is_none_or(|at| now < at));
        for old in &mut self.secrets {
            let until = now + ROTATION_OVERLAP;
            old.expires_at = Some(old.expires_at.map_or(until, |at| at.min(until)));
        }
        self.secrets.insert(
            0,
            EndpointSecret {
                secret,
                created_at: now,
                expires_at: None,
            },
        );
    }

    /// A delivery went: no longer failing, if it was.
    pub fn after_success(&mut self) -> EndpointChange {
        match self.failing_since.take() {
            Some(_) => EndpointChange::Recovered,
            None => EndpointChange::Unchanged,
        }
    }

    /// An attempt failed at `now`: failing since then, or disabled once it
    /// has failed for `DISABLE_AFTER`.
    pub fn after_failure(&mut self, now: Timestamp) -> EndpointChange {
        if self.disabled.is_some() {
            return EndpointChange::Unchanged;
        }
        match self.failing_since {
            None => {
                self.failing_since = Some(now);
                EndpointChange::StartedFailing
            }
            Some(since) if now - since >= DISABLE_AFTER => {
                self.disabled = Some(Disabled {
                    at: now,
                    why: format!("every delivery failed since {}", since.format("%Y-%m-%d %H:%M UTC")),
                });
                EndpointChange::Disabled
            }
            Some(_) => EndpointChange::Unchanged,
        }
    }

    /// The endpoint answered 410 Gone: it asked to be sent nothing more.
    pub fn gone(&mut self, now: Timestamp) -> EndpointChange {
        if self.disabled.is_some() {
            return EndpointChange::Unchanged;
        }
        self.disabled = Some(Disabled {
            at: now,
            why: "the endpoint answered 410 Gone".into(),
        });
        EndpointChange::Disabled
    }

    /// Sent to again (`milepost webhooks enable`).
    pub fn enable(&mut self) {
        self.disabled = None;
        self.failing_since = None;
    }
}

/// What one attempt got back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AttemptResult {
    /// The endpoint answered with this HTTP status.
    Status { status: u16 },
    /// No answer: a timeout, a refused connection, a TLS failure (what, in words).
    NoAnswer { error: String },
}

impl AttemptResult {
    pub fn went(&self) -> bool {
        matches!(self, AttemptResult::Status { status } if (200..300).contains(status))
    }

    pub fn describe(&self) -> String {
        match self {
            AttemptResult::Status { status } => format!("HTTP {status}"),
            AttemptResult::NoAnswer { error } => error.clone(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub at: Timestamp,
    pub result: AttemptResult,
}

/// Where a delivery stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DeliveryState {
    /// To be attempted at `next_at`.
    Pending {
        next_at: Timestamp,
    },
    Delivered {
        at: Timestamp,
    },
    /// Given up (retries spent, the endpoint gone or disabled); replayable.
    Dead {
        at: Timestamp,
        why: String,
    },
}

/// One event's delivery to one endpoint. Its body is built once and kept,
/// so every attempt (and a replay) sends the same bytes under the same
/// `webhook-id`, the event's id: a consumer dedupes on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    pub payload: String,
    pub created_at: Timestamp,
    /// When the current round of attempts began (its creation, or its replay).
    pub round_started_at: Timestamp,
    /// Attempts made in the current round.
    pub round_attempts: u32,
    pub state: DeliveryState,
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    /// The attempt under way, if one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<Claim>,
    #[serde(default)]
    pub version: u64,
}

/// What an attempt's result made of its delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    RetryAt(Timestamp),
    Dead,
}

impl Delivery {
    /// A delivery of `event` to `endpoint`, due at once.
    pub fn new(endpoint_id: &str, event: &OutboundEvent, now: Timestamp) -> Self {
        Delivery {
            endpoint_id: endpoint_id.to_string(),
            event_id: event.event_id.clone(),
            event_type: event.event_type.clone(),
            payload: event.payload(),
            created_at: now,
            round_started_at: now,
            round_attempts: 0,
            state: DeliveryState::Pending { next_at: now },
            attempts: Vec::new(),
            claim: None,
            version: 0,
        }
    }

    /// The moment it is due, while pending.
    pub fn next_at(&self) -> Option<Timestamp> {
        match self.state {
            DeliveryState::Pending { next_at } => Some(next_at),
            _ => None,
        }
    }

    /// Whether an attempt may start at `now`: pending, due, and not held
    /// by another attempt's live claim.
    pub fn is_due(&self, now: Timestamp) -> bool {
        self.next_at().is_some_and(|at| at <= now)
            && self.claim.as_ref().is_none_or(|c| !c.is_live(now, DELIVERY_LEASE))
    }

    /// Records what the attempt at `at` got back; `retry_after` is the
    /// endpoint's own `Retry-After`, honoured when later than the schedule.
    pub fn record(&mut self, at: Timestamp, result: AttemptResult, retry_after: Option<Duration>) -> Verdict {
        self.claim = None;
        self.round_attempts += 1;
        let went = result.went();
        let gone = result == AttemptResult::Status { status: 410 };
        let described = result.describe();
        self.attempts.push(Attempt { at, result });
        if self.attempts.len() > ATTEMPTS_KEPT {
            self.attempts.remove(0);
        }
        if went {
            self.state = DeliveryState::Delivered { at };
            return Verdict::Delivered;
        }
        if gone {
            return self.die(at, "the endpoint answered 410 Gone".into());
        }
        match RETRY_OFFSETS.get(self.round_attempts as usize - 1) {
            Some(offset) => {
                let scheduled = self.round_started_at + *offset;
                let asked = retry_after.map_or(at, |wait| at + wait);
                // Never sooner than the schedule's first step after this attempt.
                let next_at = scheduled.max(asked).max(at + RETRY_OFFSETS[0]);
                self.state = DeliveryState::Pending { next_at };
                Verdict::RetryAt(next_at)
            }
            None => self.die(
                at,
                format!(
                    "{} attempts failed over {} hours; the last: {described}",
                    self.round_attempts,
                    (at - self.round_started_at).num_hours()
                ),
            ),
        }
    }

    /// Given up at `at`, for `why`.
    pub fn die(&mut self, at: Timestamp, why: String) -> Verdict {
        self.claim = None;
        self.state = DeliveryState::Dead { at, why };
        Verdict::Dead
    }

    /// Sent again from the start of the schedule (`milepost webhooks replay`).
    pub fn replay(&mut self, now: Timestamp) {
        self.claim = None;
        self.round_started_at = now;
        self.round_attempts = 0;
        self.state = DeliveryState::Pending { next_at: now };
    }
}

/// A domain event as webhooks carry it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundEvent {
    pub event_id: String,
    /// The bus's detail type (`TaskOpened`, ...).
    pub event_type: String,
    pub occurred_at: Timestamp,
    /// The event as the bus carries it (`DomainEvent::detail`).
    pub data: Value,
}

impl OutboundEvent {
    pub fn of(event: &crate::DomainEvent, occurred_at: Timestamp) -> Self {
        OutboundEvent {
            event_id: event.event_id(),
            event_type: event.detail_type().to_string(),
            occurred_at,
            data: event.detail(),
        }
    }

    /// The body: Standard Webhooks' envelope (`type`, `timestamp`, `data`).
    pub fn payload(&self) -> String {
        serde_json::json!({
            "type": self.event_type,
            "timestamp": self.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "data": self.data,
        })
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn at(h: i64) -> Timestamp {
        Utc.with_ymd_and_hms(2026, 5, 4, 9, 0, 0).unwrap() + Duration::hours(h)
    }

    fn event() -> OutboundEvent {
        OutboundEvent {
            event_id: "e-1".into(),
            event_type: "TaskOpened".into(),
            occurred_at: at(0),
            data: serde_json::json!({"task_id": "t-1"}),
        }
    }

    fn status(status: u16) -> AttemptResult {
        AttemptResult::Status { status }
    }

    #[test]
    fn a_failing_delivery_is_retried_on_the_schedule_for_a_day_then_given_up() {
        let mut d = Delivery::new("ep_1", &event(), at(0));
        let mut now = at(0);
        let mut retries = Vec::new();
        loop {
            match d.record(now, status(503), None) {
                Verdict::RetryAt(next) => {
                    retries.push(next - at(0));
                    now = next;
                }
                Verdict::Dead => break,
                Verdict::Delivered => unreachable!(),
            }
        }
        assert_eq!(retries, RETRY_OFFSETS.to_vec());
        assert_eq!(d.round_attempts, 8, "the first attempt and seven retries");
        match &d.state {
            DeliveryState::Dead { at: dead_at, why } => {
                assert_eq!(*dead_at, at(24));
                assert!(
                    why.contains("8 attempts failed over 24 hours") && why.contains("HTTP 503"),
                    "{why}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_retry_after_later_than_the_schedule_is_honoured_and_an_earlier_one_is_not() {
        let mut d = Delivery::new("ep_1", &event(), at(0));
        assert_eq!(
            d.record(at(0), status(429), Some(Duration::minutes(2))),
            Verdict::RetryAt(at(0) + Duration::minutes(2))
        );
        let second = at(0) + Duration::minutes(2);
        assert_eq!(
            d.record(second, status(429), Some(Duration::seconds(1))),
            Verdict::RetryAt(at(0) + Duration::minutes(5)),
            "the schedule's own next slot when the endpoint asks for less"
        );
    }

    #[test]
    fn two_hundreds_deliver_and_410_gives_up_at_once() {
        let mut d = Delivery::new("ep_1", &event(), at(0));
        assert_eq!(d.record(at(0), status(204), None), Verdict::Delivered);
        assert_eq!(d.next_at(), None);
        let mut gone = Delivery::new("ep_1", &event(), at(0));
        assert_eq!(gone.record(at(0), status(410), None), Verdict::Dead);
    }

    #[test]
    fn a_replay_starts_the_schedule_again_with_the_same_body() {
        let mut d = Delivery::new("ep_1", &event(), at(0));
        d.die(at(1), "endpoint disabled".into());
        let body = d.payload.clone();
        d.replay(at(30));
        assert!(d.is_due(at(30)) && !d.is_due(at(29)));
        assert_eq!(
            d.record(
                at(30),
                AttemptResult::NoAnswer {
                    error: "timed out".into()
                },
                None
            ),
            Verdict::RetryAt(at(30) + Duration::seconds(5))
        );
        assert_eq!(d.payload, body);
        assert_eq!(d.attempts.len(), 1);
    }

    #[test]
    fn a_live_claim_keeps_a_second_attempt_away_until_its_lease_ends() {
        let mut d = Delivery::new("ep_1", &event(), at(0));
        d.claim = Some(Claim::new("run-1", at(0)));
        assert!(!d.is_due(at(0) + Duration::seconds(59)));
        assert!(d.is_due(at(0) + DELIVERY_LEASE));
    }

    #[test]
    fn an_endpoint_is_disabled_after_a_day_of_failures_and_a_success_clears_it() {
        let mut ep = WebhookEndpoint::new(
            "ep_1".into(),
            "https://x.example/h".into(),
            vec![],
            "whsec_a".into(),
            at(0),
        );
        assert_eq!(ep.after_failure(at(1)), EndpointChange::StartedFailing);
        assert_eq!(ep.after_failure(at(20)), EndpointChange::Unchanged);
        assert_eq!(ep.after_success(), EndpointChange::Recovered);
        assert_eq!(ep.after_success(), EndpointChange::Unchanged);
        assert_eq!(ep.after_failure(at(21)), EndpointChange::StartedFailing);
        assert_eq!(ep.after_failure(at(44)), EndpointChange::Unchanged);
        assert_eq!(ep.after_failure(at(45)), EndpointChange::Disabled);
        assert!(!ep.is_enabled());
        ep.enable();
        assert!(ep.is_enabled() && ep.failing_since.is_none());
    }

    #[test]
    fn a_rotated_secret_signs_beside_the_new_one_for_a_day() {
        let mut ep = WebhookEndpoint::new(
            "ep_1".into(),
            "https://x.example/h".into(),
            vec![],
            "whsec_old".into(),
            at(0),
        );
        ep.rotate("whsec_new".into(), at(10));
        assert_eq!(ep.signing_secrets(at(11)), vec!["whsec_new", "whsec_old"]);
        assert_eq!(ep.signing_secrets(at(34)), vec!["whsec_new"]);
        ep.rotate("whsec_newer".into(), at(40));
        assert_eq!(ep.secrets.len(), 2, "the expired one is dropped");
    }

    #[test]
    fn an_endpoint_takes_the_types_it_named_or_all() {
        let all = WebhookEndpoint::new("ep_1".into(), "u".into(), vec![], "s".into(), at(0));
        let some = WebhookEndpoint::new("ep_2".into(), "u".into(), vec!["TaskOpened".into()], "s".into(), at(0));
        assert!(all.wants("MilestoneMissed"));
        assert!(some.wants("TaskOpened") && !some.wants("MilestoneMissed"));
    }

    #[test]
    fn the_body_is_the_standard_envelope() {
        let body: Value = serde_json::from_str(&event().payload()).unwrap();
        assert_eq!(body["type"], "TaskOpened");
        assert_eq!(body["timestamp"], "2026-05-04T09:00:00.000Z");
        assert_eq!(body["data"]["task_id"], "t-1");
    }
}
