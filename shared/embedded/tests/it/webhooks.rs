//! Outbound webhooks on the in-memory store, against a recording endpoint
//! whose answers each test scripts. Every request is checked as a consumer
//! checks it, with the Standard Webhooks library (`standardwebhooks`), so
//! "signed" means what the standard's own code accepts. How we know nothing
//! is sent twice or lost: the recorder counts every request per
//! `webhook-id`, and every delivery's state is read back from the store.

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{Duration, TimeZone, Utc};
use milepost_app::ports::{PostAnswer, WebhookPost, WebhookPoster, WebhookStore};
use milepost_app::webhooks::{WebhookError, Webhooks};
use milepost_domain::webhooks::{AttemptResult, DeliveryState, OutboundEvent, RETRY_OFFSETS};
use milepost_domain::Timestamp;
use milepost_embedded::{InMemoryStore, VirtualClock};

/// The tests' start: the real present, since the consumer's library checks
/// a request's timestamp against the real clock (five minutes either way).
fn t0() -> Timestamp {
    static T0: std::sync::OnceLock<Timestamp> = std::sync::OnceLock::new();
    *T0.get_or_init(|| Utc.timestamp_opt(Utc::now().timestamp(), 0).unwrap())
}

/// One request as the endpoint received it.
#[derive(Clone, Debug)]
struct Received {
    url: String,
    headers: http::HeaderMap,
    body: String,
}

/// An endpoint that records every request and answers as scripted (then 200).
#[derive(Default)]
struct Recorder {
    received: Mutex<Vec<Received>>,
    answers: Mutex<VecDeque<PostAnswer>>,
}

impl Recorder {
    fn answer(&self, answers: impl IntoIterator<Item = AttemptResult>) {
        self.answers
            .lock()
            .unwrap()
            .extend(answers.into_iter().map(|result| PostAnswer {
                result,
                retry_after: None,
            }));
    }
    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
    fn ids(&self) -> Vec<String> {
        self.received()
            .iter()
            .map(|r| r.headers["webhook-id"].to_str().unwrap().to_string())
            .collect()
    }
}

#[async_trait]
impl WebhookPoster for Recorder {
    async fn post(&self, post: WebhookPost<'_>) -> PostAnswer {
        let mut headers = http::HeaderMap::new();
        for (name, value) in &post.headers {
            headers.insert(*name, value.parse().unwrap());
        }
        self.received.lock().unwrap().push(Received {
            url: post.url.to_string(),
            headers,
            body: post.body.to_string(),
        });
        // Another run may go on meanwhile, as it would during a real request.
        tokio::task::yield_now().await;
        self.answers.lock().unwrap().pop_front().unwrap_or(PostAnswer {
            result: AttemptResult::Status { status: 200 },
            retry_after: None,
        })
    }
}

fn status(status: u16) -> AttemptResult {
    AttemptResult::Status { status }
}

fn event(id: &str, kind: &str) -> OutboundEvent {
    OutboundEvent {
        event_id: id.into(),
        event_type: kind.into(),
        occurred_at: t0(),
        data: serde_json::json!({"type": kind, "task_id": "t-1", "event_id": id}),
    }
}

struct World {
    store: InMemoryStore,
    endpoint: Recorder,
    clock: VirtualClock,
}

impl World {
    fn new() -> Self {
        World {
            store: InMemoryStore::new(),
            endpoint: Recorder::default(),
            clock: VirtualClock::new(t0()),
        }
    }
    fn webhooks(&self) -> Webhooks<'_> {
        Webhooks {
            store: &self.store,
            poster: &self.endpoint,
            clock: &self.clock,
        }
    }
}

/// What a consumer's `standardwebhooks.Webhook(secret).verify` says, at the moment it was sent.
fn verifies(secret: &str, received: &Received) -> bool {
    standardwebhooks::Webhook::new(secret)
        .unwrap()
        .verify(received.body.as_bytes(), &received.headers)
        .is_ok()
}

#[tokio::test]
async fn an_event_goes_once_signed_to_each_endpoint_that_wants_it() {
    let w = World::new();
    let hooks = w.webhooks();
    let tasks = hooks
        .add("https://hooks.example/tasks", &["TaskOpened".into()])
        .await
        .unwrap();
    let misses = hooks
        .add("https://hooks.example/misses", &["MilestoneMissed".into()])
        .await
        .unwrap();
    let run = hooks.accept(&[event("e-1", "TaskOpened")]).await.unwrap();
    assert_eq!((run.accepted, run.delivered), (1, 1));
    let received = w.endpoint.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].url, "https://hooks.example/tasks");
    assert!(
        verifies(&tasks.secrets[0].secret, &received[0]),
        "the consumer's library accepts it"
    );
    assert!(
        !verifies(&misses.secrets[0].secret, &received[0]),
        "another endpoint's secret does not"
    );
    let body: serde_json::Value = serde_json::from_str(&received[0].body).unwrap();
    assert_eq!(body["type"], "TaskOpened");
    assert_eq!(body["data"]["task_id"], "t-1");
    assert_eq!(received[0].headers["webhook-id"], "e-1");

    // The bus delivers the same event again: nothing new is made or sent.
    let again = hooks.accept(&[event("e-1", "TaskOpened")]).await.unwrap();
    assert_eq!((again.accepted, again.duplicates, again.delivered), (0, 1, 0));
    assert_eq!(w.endpoint.received().len(), 1);
}

#[tokio::test]
async fn a_failed_delivery_is_retried_on_schedule_with_the_same_id_and_body_until_it_goes() {
    let w = World::new();
    let hooks = w.webhooks();
    let ep = hooks.add("https://hooks.example/h", &[]).await.unwrap();
    w.endpoint.answer([
        status(500),
        AttemptResult::NoAnswer {
            error: "timed out".into(),
        },
    ]);
    let run = hooks.accept(&[event("e-1", "MilestoneMissed")]).await.unwrap();
    assert_eq!(run.retrying, 1);
    assert!(w.store.webhook_endpoints().await.unwrap()[0].failing_since.is_some());

    w.clock.set(t0() + Duration::seconds(4));
    assert_eq!(
        hooks.deliver_due(None).await.unwrap().retrying,
        0,
        "not before its time"
    );
    assert_eq!(w.endpoint.received().len(), 1);

    w.clock.set(t0() + RETRY_OFFSETS[0]);
    assert_eq!(
        hooks.deliver_due(None).await.unwrap().retrying,
        1,
        "a timeout (maybe taken, answer lost) is sent again"
    );
    w.clock.set(t0() + RETRY_OFFSETS[1]);
    assert_eq!(hooks.deliver_due(None).await.unwrap().delivered, 1);
    assert_eq!(
        hooks.deliver_due(None).await.unwrap(),
        Default::default(),
        "nothing left to send"
    );

    let received = w.endpoint.received();
    assert_eq!(
        w.endpoint.ids(),
        ["e-1", "e-1", "e-1"],
        "one webhook-id: the consumer dedupes the repeats"
    );
    assert!(received.iter().all(|r| r.body == received[0].body));
    assert!(received.iter().all(|r| verifies(&ep.secrets[0].secret, r)));
    let delivery = w.store.get_delivery(&ep.id, "e-1").await.unwrap().unwrap();
    assert!(matches!(delivery.state, DeliveryState::Delivered { .. }));
    assert_eq!(delivery.attempts.len(), 3);
    assert!(
        w.store.webhook_endpoints().await.unwrap()[0].failing_since.is_none(),
        "a delivery that went clears the endpoint's failing mark"
    );
}

#[tokio::test]
async fn overlapping_runs_send_each_due_delivery_once() {
    let w = World::new();
    let hooks = w.webhooks();
    hooks.add("https://hooks.example/h", &[]).await.unwrap();
    w.endpoint.answer((0..20).map(|_| status(503)));
    let events: Vec<_> = (0..20).map(|i| event(&format!("e-{i}"), "TaskClosed")).collect();
    hooks.accept(&events).await.unwrap();
    assert_eq!(w.endpoint.received().len(), 20);
    w.clock.set(t0() + Duration::minutes(1));
    let (a, b) = tokio::join!(hooks.deliver_due(None), hooks.deliver_due(None));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.delivered + b.delivered, 20);
    let mut ids = w.endpoint.ids();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20);
    assert_eq!(
        w.endpoint.received().len(),
        40,
        "each event twice in all: its failed first attempt and one retry"
    );
}

#[tokio::test]
async fn a_day_of_failures_gives_up_disables_the_endpoint_and_a_replay_after_enabling_delivers() {
    let w = World::new();
    let hooks = w.webhooks();
    let ep = hooks.add("https://hooks.example/h", &[]).await.unwrap();
    w.endpoint.answer((0..8).map(|_| status(502)));
    hooks.accept(&[event("e-1", "TaskOpened")]).await.unwrap();
    let mut disabled = 0;
    for offset in RETRY_OFFSETS {
        w.clock.set(t0() + offset);
        let run = hooks.deliver_due(None).await.unwrap();
        disabled += run.endpoints_disabled;
    }
    assert_eq!(w.endpoint.received().len(), 8, "the first attempt and seven retries");
    assert_eq!(disabled, 1, "disabled once, with the alarm's metric");
    let endpoint = &w.store.webhook_endpoints().await.unwrap()[0];
    assert!(!endpoint.is_enabled());
    let delivery = w.store.get_delivery(&ep.id, "e-1").await.unwrap().unwrap();
    assert!(
        matches!(&delivery.state, DeliveryState::Dead { why, .. } if why.contains("HTTP 502")),
        "{:?}",
        delivery.state
    );

    // Events while it is disabled are kept, dead, not sent.
    let run = hooks.accept(&[event("e-2", "TaskOpened")]).await.unwrap();
    assert_eq!((run.accepted, run.dead), (1, 1));
    assert_eq!(w.endpoint.received().len(), 8);
    assert!(matches!(
        hooks.replay(&ep.id, None, None, false).await,
        Err(WebhookError::Disabled(_))
    ));

    hooks.enable(&ep.id).await.unwrap();
    assert_eq!(hooks.replay(&ep.id, None, None, false).await.unwrap(), 2);
    let run = hooks.deliver_due(None).await.unwrap();
    assert_eq!(run.delivered, 2);
    let mut ids = w.endpoint.ids()[8..].to_vec();
    ids.sort();
    assert_eq!(ids, ["e-1", "e-2"]);
    assert_eq!(
        hooks.replay(&ep.id, None, None, false).await.unwrap(),
        0,
        "nothing left undelivered"
    );
    assert_eq!(
        hooks.replay(&ep.id, Some("e-1"), None, false).await.unwrap(),
        1,
        "one event by id, even delivered"
    );
}

#[tokio::test]
async fn an_endpoint_that_answers_410_is_disabled_at_once() {
    let w = World::new();
    let hooks = w.webhooks();
    hooks.add("https://hooks.example/h", &[]).await.unwrap();
    w.endpoint.answer([status(410)]);
    let run = hooks.accept(&[event("e-1", "TaskOpened")]).await.unwrap();
    assert_eq!((run.dead, run.endpoints_disabled), (1, 1));
    hooks.accept(&[event("e-2", "TaskOpened")]).await.unwrap();
    assert_eq!(w.endpoint.received().len(), 1);
}

#[tokio::test]
async fn a_rotated_secret_keeps_old_consumers_verifying_for_a_day() {
    let w = World::new();
    let hooks = w.webhooks();
    let ep = hooks.add("https://hooks.example/h", &[]).await.unwrap();
    let old = ep.secrets[0].secret.clone();
    let rotated = hooks.rotate_secret(&ep.id).await.unwrap();
    let new = rotated.secrets[0].secret.clone();
    assert_ne!(old, new);
    hooks.accept(&[event("e-1", "TaskOpened")]).await.unwrap();
    w.clock.set(t0() + Duration::hours(25));
    hooks.accept(&[event("e-2", "TaskOpened")]).await.unwrap();
    let received = w.endpoint.received();
    assert!(
        verifies(&old, &received[0]) && verifies(&new, &received[0]),
        "both, during the overlap"
    );
    // The library checks the timestamp against the real clock; this one is
    // checked by its signature alone, the way the library computes it.
    let timestamp: i64 = received[1].headers["webhook-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let expected = |secret: &str| {
        standardwebhooks::Webhook::new(secret)
            .unwrap()
            .sign("e-2", timestamp, received[1].body.as_bytes())
            .unwrap()
    };
    let signatures = received[1].headers["webhook-signature"].to_str().unwrap();
    assert_eq!(
        signatures,
        expected(&new),
        "only the new secret signs after the overlap"
    );
}

#[tokio::test]
async fn an_operator_gets_a_clear_refusal_for_a_url_or_type_that_cannot_work() {
    let w = World::new();
    let hooks = w.webhooks();
    for (url, says) in [
        ("http://hooks.example/h", "use https"),
        ("ftp://hooks.example/h", "only https"),
        ("https://user:pw@hooks.example/h", "credentials"),
        ("hooks.example/h", "no scheme"),
    ] {
        let err = hooks.add(url, &[]).await.unwrap_err().to_string();
        assert!(err.contains(says), "{url}: {err}");
    }
    assert!(
        hooks.add("http://127.0.0.1:9000/h", &[]).await.is_ok(),
        "a receiver on this machine"
    );
    let err = hooks
        .add("https://hooks.example/h", &["TaskOpen".into()])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("TaskOpen") && err.contains("TaskOpened"), "{err}");
    assert!(matches!(
        hooks.rotate_secret("ep_nope").await,
        Err(WebhookError::NoEndpoint(_))
    ));
}
