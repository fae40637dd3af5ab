//! What the ingest handler's tests share: the use case over a store (in
//! memory or DynamoDB on moto) with a map loaded, the publisher its domain
//! events go to, and the handler's configuration.

// Each test crate uses its own part of this.
#![allow(dead_code)]

use std::sync::Arc;

use chrono::Utc;
use hmac::{Hmac, Mac};
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use milepost_app::ports::Store;
use milepost_app::Services;
use milepost_aws::DynamoStore;
use milepost_embedded::{InMemoryStore, RecordingPublisher};
use milepost_ingest::IngestConfig;
use milepost_local::MotoServer;
use serde_json::Value;

pub struct Setup {
    pub services: Services,
    pub store: Arc<dyn Store>,
    pub events: Arc<RecordingPublisher>,
    pub config: IngestConfig,
}

impl Setup {
    /// Services over `store`, their domain events recorded in `events`, and
    /// `map` (a map's YAML) stored, if given.
    pub async fn new(store: Arc<dyn Store>, map: Option<&str>, config: IngestConfig) -> Arc<Setup> {
        let events = Arc::new(RecordingPublisher::default());
        let services = Services {
            events: events.clone(),
            ..milepost_embedded::fixtures::quiet_services(store.clone())
        };
        if let Some(map) = map {
            store
                .put_map(&milepost_maps::load_map("m.yaml", map).unwrap())
                .await
                .unwrap();
        }
        Arc::new(Setup {
            services,
            store,
            events,
            config,
        })
    }
}

pub fn in_memory_store() -> Arc<dyn Store> {
    Arc::new(InMemoryStore::sized_like_dynamodb())
}

/// A new table on `moto`.
pub async fn dynamodb_store(moto: &MotoServer, table: &str) -> Arc<dyn Store> {
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let store = DynamoStore::new(client, table);
    store.create_table().await.unwrap();
    Arc::new(store)
}

/// A setup on a new table of `moto`, made by `setup` (the map stored, as an
/// operator does, is not the function's doing); from then on moto records
/// what is asked of AWS (ingestion's requests, and the tests' reads, which
/// it may make too).
pub async fn recorded<F, Fut>(moto: &MotoServer, table: &str, setup: F) -> Arc<Setup>
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: std::future::Future<Output = Arc<Setup>>,
{
    let s = setup(dynamodb_store(moto, table).await).await;
    moto.record_requests(true).await;
    s
}

/// A map of three event milestones and a manual one, due on day 30.
pub const MAP: &str = r#"segment: all
milestones:
  - id: first_workflow
    name: First workflow completed
    customer_title: First workflow completed
    phase: onboarding
    due_days: 30
    owner: csm
    criterion: {kind: event_count, event: workflow.completed, min: 1}
    playbook: {outreach: o, csm: c, leadership: l}
  - id: reports_shared
    name: Three reports shared
    customer_title: Three reports shared
    phase: onboarding
    due_days: 30
    owner: csm
    criterion: {kind: event_count, event: report.shared, min: 3}
    playbook: {outreach: o, csm: c, leadership: l}
  - id: team_active
    name: Five people active in a week
    customer_title: Five people active in a week
    phase: onboarding
    due_days: 30
    owner: csm
    criterion: {kind: distinct_users, event: user.active, min: 5, window_days: 7}
    playbook: {outreach: o, csm: c, leadership: l}
  - id: sponsor_named
    name: Executive sponsor identified
    phase: onboarding
    due_days: 30
    owner: csm
    criterion: {kind: manual}
    playbook: {csm: c, leadership: l}
  - id: on_pace
    name: Agreed outcome on pace
    phase: value_realization
    owner: csm
    criterion: {kind: agreed_outcome}
    playbook: {outreach: o, csm: c, leadership: l}
"#;

pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const ROTATED: &str = "whsec_c2Vjb25kLXNlY3JldC1mb3Itcm90YXRpb24=";
pub const SEGMENT_SECRET: &str = "segment-shared-secret";

pub fn request(body: impl Into<String>) -> Request {
    let mut req = Request::new(Body::from(body.into()));
    *req.method_mut() = lambda_http::http::Method::POST;
    *req.uri_mut() = "https://hooks.example/v1/events".parse().unwrap();
    req.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    req
}

/// Signs as a Standard Webhooks sender does, `age` seconds ago.
pub fn signed_with(secret: &str, body: &str, msg_id: &str, age: i64) -> Request {
    let ts = Utc::now().timestamp() - age;
    let signature = standardwebhooks::Webhook::new(secret)
        .unwrap()
        .sign(msg_id, ts, body.as_bytes())
        .unwrap();
    let mut req = request(body);
    let h = req.headers_mut();
    h.insert("webhook-id", HeaderValue::from_str(msg_id).unwrap());
    h.insert("webhook-timestamp", HeaderValue::from_str(&ts.to_string()).unwrap());
    h.insert("webhook-signature", HeaderValue::from_str(&signature).unwrap());
    req
}

pub fn signed(body: &str) -> Request {
    signed_with(SECRET, body, "msg_1", 0)
}

pub fn segment_signed(secret: &str, body: &str) -> Request {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let mut req = request(body);
    req.headers_mut().insert(
        "x-signature",
        HeaderValue::from_str(&hex::encode(mac.finalize().into_bytes())).unwrap(),
    );
    req
}

pub fn assert_problem(resp: &Response<Body>, status: StatusCode, field: &str) -> Value {
    assert_eq!(
        resp.status(),
        status,
        "{}",
        String::from_utf8_lossy(resp.body().as_ref())
    );
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let p = json_of(resp);
    assert_eq!(p["status"], status.as_u16());
    assert!(p["type"].as_str().unwrap().starts_with("urn:milepost:problem:"));
    assert!(!p["title"].as_str().unwrap().is_empty());
    let fields: Vec<&str> = p["errors"]
        .as_array()
        .map(|e| e.iter().map(|x| x["field"].as_str().unwrap()).collect())
        .unwrap_or_default();
    assert!(fields.contains(&field), "expected field {field} in {p}");
    p
}

pub fn json_of(resp: &Response<Body>) -> Value {
    serde_json::from_slice(resp.body().as_ref()).unwrap()
}
