//! One busy account at real volume, through the real handler: 100,000 events
//! (one user, then 500 users) over two months for a map with every criterion
//! kind, delivered in 500-event requests out of order (within the allowed
//! lateness) and with duplicates. Every request must be a 202, and every
//! stored item stays under its budget: state grows with the map, never with
//! the number of events: the largest item is measured after every request.
//! The same stream's head also runs on DynamoDB (moto), whose milestones must
//! equal the in-memory store's.
//!
//! `MILEPOST_VOLUME_EVENTS` (default 100,000) sizes the in-memory run and
//! `MILEPOST_VOLUME_DYNAMODB_EVENTS` (default 150; `make volume` runs 2,000)
//! the one on the emulator, which is slow with items of tens of KB: 1,050
//! events took 657 s here (~0.6 s each), so 100,000 would take ~17 hours:
//! moto spends most of its time serialising the Query answers that carry the
//! account's milestones, tens of KB each, back to the client (py-spy), and
//! copies the tables before every transaction.

use std::sync::Arc;

use chrono::{Duration, Utc};
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request};
use milepost_app::clock::SystemClock;
use milepost_app::ports::Store;
use milepost_app::Services;
use milepost_aws::DynamoStore;
use milepost_domain::limits::{stored_size, MAX_ITEM_BYTES};
use milepost_domain::{Account, AccountId, TrackedMilestone};
use milepost_embedded::{InMemoryStore, LocalWorkflowRunner, MemoryMailer, RecordingPublisher};
use milepost_ingest::{handle, IngestConfig, WebhookSecrets};
use milepost_local::MotoServer;
use serde_json::{json, Value};

const MAP: &str = r#"segment: all
milestones:
  - {id: reports_shared, name: Reports shared, customer_title: Reports shared, phase: onboarding, due_days: 30, owner: csm,
     criterion: {kind: event_count, event: report.shared, min: 1000}, playbook: {outreach: o, csm: c, leadership: l}}
  - {id: busy_day, name: A busy day, customer_title: A busy day, phase: onboarding, due_days: 30, owner: csm,
     criterion: {kind: event_count, event: workflow.completed, min: 1500, window_days: 1}, playbook: {outreach: o, csm: c, leadership: l}}
  - {id: team_week, name: Team active in a week, customer_title: Team active in a week, phase: onboarding, due_days: 30, owner: csm,
     criterion: {kind: distinct_users, event: user.active, min: 50, window_days: 7}, playbook: {outreach: o, csm: c, leadership: l}}
  - {id: seats_ever, name: Seats used, customer_title: Seats used, phase: onboarding, due_days: 30, owner: csm,
     criterion: {kind: seat_ratio, event: user.active, min_ratio: 0.6}, playbook: {outreach: o, csm: c, leadership: l}}
  - {id: seats_month, name: Seats used in a month, customer_title: Seats used in a month, phase: onboarding, due_days: 30, owner: csm,
     criterion: {kind: seat_ratio, event: user.active, min_ratio: 0.9, window_days: 30}, playbook: {outreach: o, csm: c, leadership: l}}
  - {id: savings, name: Savings, customer_title: Savings, phase: value_realization, due_days: 200, owner: csm,
     criterion: {kind: metric_threshold, event: outcome.measured, property: savings_pct, op: ">=", value: 5}, playbook: {outreach: o, csm: c, leadership: l}}
  - {id: ebr, name: EBR held, phase: renewal_prep, due_days: 300, owner: csm,
     criterion: {kind: manual}, playbook: {csm: c, leadership: l}}
"#;

/// The biggest a stored item may get. DynamoDB's limit is 400 KB; progress is
/// capped at `MAX_MARKS` marks of ≤ ~175 bytes (docs/capacity.md).
const ITEM_BUDGET: usize = 300 * 1024;

fn count(var: &str, default: usize) -> usize {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A small seeded generator (xorshift): the same stream on every run.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn account() -> Account {
    Account {
        licensed_seats: 1000,
        ..milepost_embedded::fixtures::account("busy", Utc::now().date_naive() - Duration::days(70))
    }
}

/// `n` events over 60 days from `users` users, in delivery order: by time
/// plus up to three days of jitter, with 5% delivered a second time later.
fn stream(n: usize, users: u64, seed: u64) -> Vec<Value> {
    let mut rng = Seeded(seed);
    let start = account().contract_start_at() + Duration::days(1);
    let span = Duration::days(60).num_seconds() as u64;
    let mut events: Vec<(i64, Value)> = (0..n)
        .map(|i| {
            let at = start + Duration::seconds(rng.below(span) as i64);
            let (event, properties) = match rng.below(20) {
                0..=11 => ("user.active", json!({})),
                12..=15 => ("report.shared", json!({})),
                16..=17 => ("workflow.completed", json!({})),
                18 => ("outcome.measured", json!({"savings_pct": rng.below(5)})),
                _ => ("page.viewed", json!({"path": "/home"})),
            };
            let body = json!({"id": format!("evt-{i}"), "account_id": "busy", "event": event,
                              "timestamp": at.to_rfc3339(), "user_id": format!("user-{}", rng.below(users)),
                              "properties": properties});
            let jitter = rng.below(3 * 24 * 3600) as i64;
            (at.timestamp() + jitter, body)
        })
        .collect();
    let duplicates: Vec<(i64, Value)> = events
        .iter()
        .filter(|_| rng.below(20) == 0)
        .map(|(key, body)| (key + 2 * 24 * 3600, body.clone()))
        .collect();
    events.extend(duplicates);
    events.sort_by_key(|(key, _)| *key);
    events.into_iter().map(|(_, body)| body).collect()
}

/// How many of the stream's redeliveries are of events some criterion of the map reads (all but page views).
fn redelivered_read(events: &[Value]) -> usize {
    let mut seen = std::collections::HashSet::new();
    events
        .iter()
        .filter(|e| !seen.insert(e["id"].as_str().unwrap().to_string()) && e["event"] != "page.viewed")
        .count()
}

async fn services(store: Arc<dyn Store>) -> Services {
    let services = Services {
        store,
        mailer: Arc::new(MemoryMailer::default()),
        events: Arc::new(RecordingPublisher::default()),
        workflows: Arc::new(LocalWorkflowRunner::new()),
        clock: Arc::new(SystemClock),
        config: milepost_app::Config::default(),
        links: Some(milepost_embedded::fixtures::links()),
    };
    services
        .store
        .put_map(&milepost_maps::load_map("volume.yaml", MAP).unwrap())
        .await
        .unwrap();
    services.ingestion().upsert_account(&account()).await.unwrap();
    services
}

/// Delivers the stream in requests of 500, as a sender would; every answer
/// must be a 202, and after each the account's largest item must be within
/// the budget. (The in-memory store could refuse items over 400 KB on every
/// write, as DynamoDB does, but sizing each of this run's writes took 260 s.)
async fn deliver(services: &Services, events: &[Value]) -> (usize, usize) {
    let config = IngestConfig::new(WebhookSecrets::none());
    let (mut accepted, mut duplicates) = (0, 0);
    let mut largest_seen = 0;
    for chunk in events.chunks(milepost_domain::limits::MAX_EVENTS_PER_REQUEST) {
        let mut req = Request::new(Body::from(Value::Array(chunk.to_vec()).to_string()));
        *req.method_mut() = lambda_http::http::Method::POST;
        *req.uri_mut() = "https://hooks.example/v1/events".parse().unwrap();
        req.headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
        let resp = handle(&services.ingestion(), &config, req).await;
        let body: Value = serde_json::from_slice(resp.body().as_ref()).unwrap();
        assert_eq!(resp.status(), StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["rejected_count"], 0, "{body}");
        accepted += body["accepted"].as_u64().unwrap() as usize;
        duplicates += body["duplicates"].as_u64().unwrap() as usize;
        let (largest, what) = item_sizes(services.store.as_ref()).await.0.pop().unwrap();
        assert!(largest <= ITEM_BUDGET, "{what} is {largest} bytes, over its budget");
        largest_seen = largest_seen.max(largest);
    }
    println!("largest item after any of the requests: {largest_seen} bytes (budget {ITEM_BUDGET})");
    (accepted, duplicates)
}

/// The size of each of the account's stored items, smallest first, and its milestones.
async fn item_sizes(store: &dyn Store) -> (Vec<(usize, String)>, Vec<TrackedMilestone>) {
    let id = AccountId::new("busy");
    let milestones = store.milestones_of(&id).await.unwrap();
    let mut sizes: Vec<(usize, String)> = milestones
        .iter()
        .map(|m| {
            (
                stored_size(m),
                format!(
                    "milestone {} ({})",
                    m.milestone_id(),
                    serde_json::to_value(m.criterion()).unwrap()["kind"].as_str().unwrap()
                ),
            )
        })
        .collect();
    let activity = store.activity(&id).await.unwrap();
    sizes.push((stored_size(&activity), "activity".into()));
    let profile = store.get_account(&id).await.unwrap().unwrap();
    sizes.push((stored_size(&*profile), "account profile".into()));
    sizes.sort();
    (sizes, milestones)
}

/// Largest stored items of the account, by kind, printed beside the budget.
async fn largest_items(label: &str, store: &dyn Store) -> Vec<TrackedMilestone> {
    let (sizes, milestones) = item_sizes(store).await;
    for (size, what) in sizes.iter().rev() {
        println!("{label}: {what:<40} {size:>7} bytes (budget {ITEM_BUDGET}, DynamoDB limit {MAX_ITEM_BYTES})");
    }
    let (largest, what) = sizes.last().unwrap();
    assert!(
        *largest <= ITEM_BUDGET,
        "{label}: {what} is {largest} bytes, over its budget"
    );
    milestones
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_account_at_volume_keeps_every_item_within_its_budget() {
    let n = count("MILEPOST_VOLUME_EVENTS", 100_000);
    for (users, seed) in [(1, 7), (500, 11)] {
        let events = stream(n, users, seed);
        let services = services(Arc::new(InMemoryStore::new())).await;
        let (accepted, duplicates) = deliver(&services, &events).await;
        assert_eq!(accepted + duplicates, events.len());
        // A page view no criterion reads has no dedupe record: its redelivery
        // is applied again (and changes nothing), not counted a duplicate.
        let unread_redelivered = events.len() - n - redelivered_read(&events);
        assert_eq!(
            (accepted, duplicates),
            (n + unread_redelivered, events.len() - n - unread_redelivered),
            "every distinct event applied once, every redelivery a criterion reads a duplicate"
        );
        println!("in memory, {users} user(s): {n} events, {duplicates} redelivered");
        let milestones = largest_items(&format!("in memory, {users} user(s)"), services.store.as_ref()).await;
        let status = |id: &str| milestones.iter().find(|m| m.milestone_id() == id).unwrap().status();
        // What the stream can and cannot reach, whatever the order it came in.
        assert!(status("reports_shared").is_reached(), "~20,000 shares reach 1,000");
        assert!(!status("savings").is_reached(), "savings never reach 5%");
        assert!(!status("ebr").is_reached(), "manual: only a CSM confirms it");
        assert_eq!(status("team_week").is_reached(), users >= 50);
        assert!(
            !status("seats_ever").is_reached(),
            "600 of 1,000 seats: at most 500 users exist"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_dynamodb_the_same_stream_ends_in_the_same_milestones() {
    let n = count("MILEPOST_VOLUME_DYNAMODB_EVENTS", 150);
    let events = stream(n, 500, 11);
    let moto = MotoServer::start();
    let dynamo = DynamoStore::new(aws_sdk_dynamodb::Client::new(&moto.sdk_config().await), "volume");
    dynamo.create_table().await.unwrap();
    let on_dynamodb = services(Arc::new(dynamo)).await;
    let in_memory = services(Arc::new(InMemoryStore::new())).await;
    assert_eq!(deliver(&on_dynamodb, &events).await, deliver(&in_memory, &events).await);
    let stored = largest_items("dynamodb, 500 users", on_dynamodb.store.as_ref()).await;
    let expected = largest_items("in memory, 500 users", in_memory.store.as_ref()).await;
    assert_eq!(stored.len(), expected.len());
    for (a, b) in stored.iter().zip(&expected) {
        assert_eq!(
            (&a.milestone_id(), a.status(), a.reached_at(), &a.progress()),
            (&b.milestone_id(), b.status(), b.reached_at(), &b.progress()),
            "milestone {} differs between the stores",
            a.milestone_id()
        );
    }
}
