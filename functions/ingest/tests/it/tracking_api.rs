//! Segment's tracking API through the real handler: write keys, the SDKs'
//! batch envelope, gzip, Segment's limits, redelivery, and answers the SDKs
//! act on correctly (200 taken, 4xx dropped, 503 retried). The SDKs
//! themselves are run against `make local` by tests/sdk_clients.py.

use crate::common;

use std::io::Write;
use std::sync::Arc;

use base64::Engine;
use chrono::{Duration, Utc};
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use milepost_app::ports::Store;
use milepost_aws::DynamoStore;
use milepost_domain::{AccountId, MilestoneStatus};
use milepost_ingest::{handle, IngestConfig, WebhookSecrets, WriteKeys};
use milepost_local::MotoServer;
use serde_json::{json, Value};

use common::{json_of, Setup};

const KEY: &str = "wk_live_current";
const ROTATED_OUT: &str = "wk_live_previous";

const MAP: &str = r#"segment: all
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
"#;

async fn in_memory() -> Arc<Setup> {
    setup(common::in_memory_store()).await
}

async fn on_dynamodb(moto: &MotoServer, table: &str) -> Arc<Setup> {
    common::recorded(moto, table, setup).await
}

async fn setup(store: Arc<dyn Store>) -> Arc<Setup> {
    Setup::new(store, Some(MAP), config()).await
}

fn config() -> IngestConfig {
    IngestConfig::new(WebhookSecrets::none()).with_write_keys(WriteKeys::new(&[KEY, ROTATED_OUT]))
}

fn ago(hours: i64) -> String {
    (Utc::now() - Duration::hours(hours)).to_rfc3339()
}

/// An SDK's batch: a `group` call for globex, then `track` calls of it.
fn sdk_batch(tag: &str, tracks: &[&str]) -> Value {
    let mut batch = vec![json!({
        "type": "group", "messageId": format!("{tag}-g"), "groupId": "globex", "userId": "u-1",
        "timestamp": ago(3),
        "traits": {"name": "Globex", "segment": "smb",
                   "contract_start": (Utc::now() - Duration::days(3)).date_naive().to_string(),
                   "admin_email": "pat@globex.example", "csm_email": "maya@vendor.example"},
        "context": {"library": {"name": "analytics-python", "version": "2.3.4"}}
    })];
    for (i, event) in tracks.iter().enumerate() {
        batch.push(json!({
            "type": "track", "messageId": format!("{tag}-{i}"), "event": event, "userId": "u-1",
            "timestamp": ago(2), "properties": {}, "context": {"groupId": "globex"}
        }));
    }
    json!({"batch": batch, "sentAt": Utc::now().to_rfc3339()})
}

fn post(path: &str, body: impl Into<Vec<u8>>) -> Request {
    let mut req = Request::new(Body::from(body.into()));
    *req.method_mut() = lambda_http::http::Method::POST;
    *req.uri_mut() = format!("https://api.example{path}").parse().unwrap();
    req.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    req
}

/// As the SDKs authenticate: HTTP Basic, the key as user name, empty password.
fn basic(mut req: Request, key: &str) -> Request {
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{key}:"));
    req.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Basic {credentials}")).unwrap(),
    );
    req
}

fn batch_request(body: &Value, key: &str) -> Request {
    basic(post("/v1/batch", serde_json::to_vec(body).unwrap()), key)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

async fn send(s: &Setup, req: Request) -> Response<Body> {
    handle(&s.services.ingestion(), &s.config, req).await
}

/// A refusal as the SDKs read it: RFC 9457 with `code` and `message` beside.
fn assert_refused(resp: &Response<Body>, status: StatusCode, code: &str) -> Value {
    let body = String::from_utf8_lossy(resp.body().as_ref()).to_string();
    assert_eq!(resp.status(), status, "{body}");
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let p = json_of(resp);
    assert_eq!(p["status"], status.as_u16());
    assert_eq!(p["code"], code, "{body}");
    assert_eq!(p["message"], p["detail"], "{body}");
    assert!(!p["message"].as_str().unwrap().is_empty());
    p
}

async fn status_of(s: &Setup, account: &str, milestone: &str) -> Option<MilestoneStatus> {
    s.store
        .get_milestone(&AccountId::new(account), milestone)
        .await
        .unwrap()
        .map(|m| m.status())
}

async fn nothing_stored(s: &Setup) {
    assert!(
        s.store.get_account(&AccountId::new("globex")).await.unwrap().is_none(),
        "the account was created"
    );
    assert_eq!(s.events.count("MilestoneAchieved"), 0);
}

async fn an_sdk_batch_creates_the_account_and_reaches_its_milestone(s: Arc<Setup>) {
    let resp = send(
        &s,
        batch_request(&sdk_batch("a", &["workflow.completed", "report.shared"]), KEY),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK, "the Python SDKs count only 200 as sent");
    assert_eq!(
        json_of(&resp),
        json!({"success": true, "accepted": 3, "duplicates": 0, "rejected": [], "rejected_count": 0})
    );
    assert_eq!(
        status_of(&s, "globex", "first_workflow").await,
        Some(MilestoneStatus::Achieved)
    );
    assert_eq!(
        status_of(&s, "globex", "reports_shared").await,
        Some(MilestoneStatus::Pending)
    );
    assert_eq!(s.events.count("MilestoneAchieved"), 1);
}

async fn a_redelivered_batch_is_all_duplicates_and_changes_nothing(s: Arc<Setup>) {
    let body = sdk_batch("a", &["report.shared", "report.shared", "report.shared"]);
    assert_eq!(json_of(&send(&s, batch_request(&body, KEY)).await)["accepted"], 4);
    assert_eq!(
        status_of(&s, "globex", "reports_shared").await,
        Some(MilestoneStatus::Achieved)
    );
    let announced = s.events.count("MilestoneAchieved");
    // The SDK resends after a lost answer: same messageIds, a new sentAt.
    let mut again = body.clone();
    again["sentAt"] = json!(Utc::now().to_rfc3339());
    let resp = send(&s, batch_request(&again, KEY)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        json_of(&resp),
        json!({"success": true, "accepted": 0, "duplicates": 4, "rejected": [], "rejected_count": 0})
    );
    assert_eq!(
        s.events.count("MilestoneAchieved"),
        announced,
        "nothing announced twice"
    );
}

async fn the_write_key_is_taken_from_basic_auth_or_the_body_and_rotates(s: Arc<Setup>) {
    // segment-python 2.3 sends it in the body only.
    let mut body = sdk_batch("body", &["workflow.completed"]);
    body["writeKey"] = json!(ROTATED_OUT);
    let resp = send(&s, post("/v1/batch", serde_json::to_vec(&body).unwrap())).await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(resp.body())
    );
    // analytics-node sends both; the header is what is checked.
    let mut both = sdk_batch("both", &["report.shared"]);
    both["writeKey"] = json!(KEY);
    assert_eq!(send(&s, batch_request(&both, KEY)).await.status(), StatusCode::OK);
    assert_eq!(
        status_of(&s, "globex", "first_workflow").await,
        Some(MilestoneStatus::Achieved)
    );
}

async fn a_wrong_or_missing_write_key_is_401_and_stores_nothing(s: Arc<Setup>) {
    let body = sdk_batch("a", &["workflow.completed"]);
    let wrong = send(&s, batch_request(&body, "wk_guess")).await;
    let p = assert_refused(&wrong, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(wrong.headers()["www-authenticate"], "Basic realm=\"milepost\"");
    assert_eq!(p["errors"][0]["field"], "Authorization");
    // A right key in the body does not rescue a wrong one in the header.
    let mut mixed = body.clone();
    mixed["writeKey"] = json!(KEY);
    assert_refused(
        &send(&s, batch_request(&mixed, "wk_guess")).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let mut wrong_in_body = body.clone();
    wrong_in_body["writeKey"] = json!("wk_guess");
    let p = assert_refused(
        &send(&s, post("/v1/batch", serde_json::to_vec(&wrong_in_body).unwrap())).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_eq!(p["errors"][0]["field"], "writeKey");
    let missing = send(&s, post("/v1/batch", serde_json::to_vec(&body).unwrap())).await;
    assert!(
        assert_refused(&missing, StatusCode::UNAUTHORIZED, "unauthorized")["detail"]
            .as_str()
            .unwrap()
            .contains("Basic")
    );
    for header in ["Bearer eyJhbGciOi.x.y", "Basic !!!", "Basic"] {
        let mut req = post("/v1/batch", serde_json::to_vec(&body).unwrap());
        req.headers_mut()
            .insert("authorization", HeaderValue::from_str(header).unwrap());
        assert_refused(&send(&s, req).await, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    // The key with a space or a prefix is not the key.
    for near in [" wk_live_current x", "wk_live_curren", "wk_live_current2", ""] {
        assert_refused(
            &send(&s, batch_request(&body, near)).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        );
    }
    nothing_stored(&s).await;
}

async fn without_a_configured_write_key_nothing_is_taken(s: Arc<Setup>) {
    let closed = IngestConfig::new(WebhookSecrets::none()).with_write_keys(WriteKeys::new(&["", "  "]));
    let resp = handle(
        &s.services.ingestion(),
        &closed,
        batch_request(&sdk_batch("a", &["workflow.completed"]), ""),
    )
    .await;
    let p = assert_refused(&resp, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(p["detail"].as_str().unwrap().contains("no write key configured"), "{p}");
    nothing_stored(&s).await;
}

async fn a_gzip_batch_is_taken_and_one_that_inflates_past_500_kb_is_413(s: Arc<Setup>) {
    let body = serde_json::to_vec(&sdk_batch("z", &["workflow.completed"])).unwrap();
    let mut req = basic(post("/v1/batch", gzip(&body)), KEY);
    req.headers_mut()
        .insert("content-encoding", HeaderValue::from_static("gzip"));
    let resp = send(&s, req).await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(resp.body())
    );
    assert_eq!(json_of(&resp)["accepted"], 2);

    // Half a megabyte of spaces compresses to about half a kilobyte.
    let mut bomb_json = b"{\"batch\": [], \"pad\": \"".to_vec();
    bomb_json.extend(std::iter::repeat_n(b' ', 600 * 1024));
    bomb_json.extend(b"\"}");
    let bomb = gzip(&bomb_json);
    assert!(bomb.len() < 4096, "{} bytes", bomb.len());
    let mut req = basic(post("/v1/batch", bomb), KEY);
    req.headers_mut()
        .insert("content-encoding", HeaderValue::from_static("gzip"));
    let p = assert_refused(&send(&s, req).await, StatusCode::PAYLOAD_TOO_LARGE, "too-large");
    assert!(p["detail"].as_str().unwrap().contains("512000"), "{p}");

    let mut not_gzip = basic(post("/v1/batch", body.clone()), KEY);
    not_gzip
        .headers_mut()
        .insert("content-encoding", HeaderValue::from_static("gzip"));
    assert_refused(&send(&s, not_gzip).await, StatusCode::BAD_REQUEST, "bad-gzip");
    let mut brotli = basic(post("/v1/batch", body), KEY);
    brotli
        .headers_mut()
        .insert("content-encoding", HeaderValue::from_static("br"));
    assert_refused(
        &send(&s, brotli).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-encoding",
    );
    // A wrong key is refused before anything is inflated.
    let mut unkeyed = basic(post("/v1/batch", gzip(&bomb_json)), "wk_guess");
    unkeyed
        .headers_mut()
        .insert("content-encoding", HeaderValue::from_static("gzip"));
    assert_refused(&send(&s, unkeyed).await, StatusCode::UNAUTHORIZED, "unauthorized");
}

async fn segments_limits_get_problem_details(s: Arc<Setup>) {
    // Over 500 KB in all: 413, naming the limit.
    let mut body = sdk_batch("big", &[]);
    let filler = "x".repeat(20 * 1024);
    for i in 0..30 {
        body["batch"].as_array_mut().unwrap().push(json!({
            "type": "track", "messageId": format!("f-{i}"), "event": "report.shared", "timestamp": ago(1),
            "context": {"groupId": "globex"}, "properties": {"note": filler}
        }));
    }
    let p = assert_refused(
        &send(&s, batch_request(&body, KEY)).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "too-large",
    );
    assert!(p["detail"].as_str().unwrap().contains("512000"), "{p}");
    nothing_stored(&s).await;

    // One call over 32 KB: rejected alone, by index; the batch is taken (200).
    let mut body = sdk_batch("one", &["workflow.completed"]);
    body["batch"].as_array_mut().unwrap().push(json!({
        "type": "track", "messageId": "huge", "event": "report.shared", "timestamp": ago(1),
        "context": {"groupId": "globex"}, "properties": {"note": "x".repeat(33 * 1024)}
    }));
    let resp = send(&s, batch_request(&body, KEY)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let report = json_of(&resp);
    assert_eq!(report["accepted"], 2);
    assert_eq!(report["rejected"][0]["index"], 2);
    assert!(
        report["rejected"][0]["error"].as_str().unwrap().contains("32768"),
        "{report}"
    );

    // A single-call route takes 32 KB at most.
    let big_call = json!({"event": "x", "messageId": "m", "timestamp": ago(1), "context": {"groupId": "globex"},
                          "properties": {"note": "x".repeat(33 * 1024)}});
    assert_refused(
        &send(
            &s,
            basic(post("/v1/track", serde_json::to_vec(&big_call).unwrap()), KEY),
        )
        .await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "too-large",
    );
}

async fn a_batch_nothing_in_which_can_be_taken_is_400_so_no_sdk_retries_it(s: Arc<Setup>) {
    let body = json!({"batch": [
        {"type": "track", "messageId": "m1", "event": "x", "timestamp": ago(1)},
        {"type": "page", "messageId": "m2", "timestamp": ago(1), "context": {"groupId": "globex"}}
    ]});
    let p = assert_refused(
        &send(&s, batch_request(&body, KEY)).await,
        StatusCode::BAD_REQUEST,
        "no-valid-events",
    );
    let fields: Vec<&str> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["context.groupId", "type"]);
    for (bad, code) in [
        (&b"{\"batch\": ["[..], "malformed-json"),
        (&b"{\"batch\": 3}"[..], "bad-request"),
        (&b"[]"[..], "bad-request"),
    ] {
        assert_refused(
            &send(&s, basic(post("/v1/batch", bad.to_vec()), KEY)).await,
            StatusCode::BAD_REQUEST,
            code,
        );
    }
    let mut text = basic(post("/v1/batch", b"{}".to_vec()), KEY);
    text.headers_mut()
        .insert("content-type", HeaderValue::from_static("text/plain"));
    assert_refused(
        &send(&s, text).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
    );
    let mut get = basic(post("/v1/batch", b"{}".to_vec()), KEY);
    *get.method_mut() = lambda_http::http::Method::GET;
    assert_refused(
        &send(&s, get).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
    );
    nothing_stored(&s).await;
}

async fn single_call_routes_take_one_call_each(s: Arc<Setup>) {
    let group = json!({"groupId": "globex", "userId": "u-1", "messageId": "g1", "timestamp": ago(3),
                       "traits": {"name": "Globex", "segment": "smb",
                                  "contract_start": (Utc::now() - Duration::days(3)).date_naive().to_string(),
                                  "admin_email": "pat@globex.example", "csm_email": "maya@vendor.example"}});
    let track = json!({"userId": "u-1", "event": "workflow.completed", "timestamp": ago(1),
                       "context": {"groupId": "globex"}});
    let identify = json!({"userId": "u-2", "messageId": "i1", "timestamp": ago(1), "context": {"groupId": "globex"}});
    for (path, body) in [
        ("/v1/group", &group),
        ("/v1/track", &track),
        ("/v1/identify", &identify),
    ] {
        let resp = send(&s, basic(post(path, serde_json::to_vec(body).unwrap()), KEY)).await;
        assert_eq!(
            resp.status(),
            StatusCode::OK,
            "{path}: {}",
            String::from_utf8_lossy(resp.body())
        );
        assert_eq!(json_of(&resp)["accepted"], 1, "{path}");
    }
    assert_eq!(
        status_of(&s, "globex", "first_workflow").await,
        Some(MilestoneStatus::Achieved)
    );
    // The track call had no messageId: sent again, it is the same call.
    let again = send(&s, basic(post("/v1/track", serde_json::to_vec(&track).unwrap()), KEY)).await;
    assert_eq!(json_of(&again)["duplicates"], 1);
    // A call of another type on a single-call route is refused, by field.
    let mut typed = track.clone();
    typed["type"] = json!("track");
    let p = assert_refused(
        &send(&s, basic(post("/v1/group", serde_json::to_vec(&typed).unwrap()), KEY)).await,
        StatusCode::BAD_REQUEST,
        "no-valid-events",
    );
    assert_eq!(p["errors"][0]["field"], "type");
}

/// The store cannot be reached: 503 with Retry-After, which every SDK retries.
#[tokio::test]
async fn a_store_failure_is_503_with_retry_after() {
    let moto = MotoServer::start();
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    // No table: every read fails.
    let s = Setup::new(Arc::new(DynamoStore::new(client, "missing")), None, config()).await;
    let resp = send(&s, batch_request(&sdk_batch("a", &["workflow.completed"]), KEY)).await;
    assert_refused(&resp, StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    assert_eq!(resp.headers()["retry-after"], "5");
}

/// Any shape of call an SDK or a hand-written sender might post, with fields
/// of the wrong types, absent or odd: never a 5xx (which every SDK would
/// retry for ever), and a refused request stores nothing.
mod poison {
    use proptest::prelude::*;

    use super::*;

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "[a-z.@ -]{0,12}".prop_map(Value::from),
            Just(json!("2026-13-45T99:00:00Z")),
            Just(json!(ago(1))),
            Just(json!("9999-01-01T00:00:00Z")),
        ]
    }

    fn field() -> impl Strategy<Value = Value> {
        prop_oneof![
            4 => scalar(),
            1 => prop::collection::vec(scalar(), 0..3).prop_map(Value::from),
            1 => prop::collection::btree_map("[a-zA-Z_]{1,8}", scalar(), 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    }

    fn call() -> impl Strategy<Value = Value> {
        let names = prop::sample::subsequence(
            vec![
                "type",
                "messageId",
                "timestamp",
                "originalTimestamp",
                "event",
                "userId",
                "anonymousId",
                "groupId",
                "context",
                "properties",
                "traits",
            ],
            0..11,
        );
        let kind = prop_oneof![
            3 => prop::sample::select(vec!["track", "identify", "group", "page"]).prop_map(Value::from),
            1 => field(),
        ];
        (names, prop::collection::vec(field(), 11), kind).prop_map(|(names, values, kind)| {
            let mut call: serde_json::Map<String, Value> =
                names.iter().zip(values).map(|(n, v)| (n.to_string(), v)).collect();
            // Mostly a type Milepost reads, so parsing goes past the first field.
            if call.contains_key("type") {
                call.insert("type".into(), kind);
            }
            Value::Object(call)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
        #[test]
        fn no_call_gets_a_5xx(calls in prop::collection::vec(call(), 0..6), single in any::<bool>()) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let s = in_memory().await;
                let (path, body) = if single {
                    ("/v1/track", calls.first().cloned().unwrap_or(json!({})))
                } else {
                    ("/v1/batch", json!({"batch": calls, "context": {"groupId": "globex"}}))
                };
                let resp = send(&s, basic(post(path, serde_json::to_vec(&body).unwrap()), KEY)).await;
                let status = resp.status().as_u16();
                prop_assert!(status < 500, "{status} for {body}: {}", String::from_utf8_lossy(resp.body()));
                if status != 200 {
                    let p = json_of(&resp);
                    prop_assert!(p["code"].is_string() && p["message"].is_string(), "{p}");
                    nothing_stored(&s).await;
                }
                Ok(())
            })?;
        }
    }
}

milepost_local::scenarios! {
    function: "IngestFunction",
    in_memory: crate::tracking_api::in_memory,
    on_dynamodb: crate::tracking_api::on_dynamodb,
    asks_at_least: [],
    scenarios: [
        an_sdk_batch_creates_the_account_and_reaches_its_milestone,
        a_redelivered_batch_is_all_duplicates_and_changes_nothing,
        the_write_key_is_taken_from_basic_auth_or_the_body_and_rotates,
        a_wrong_or_missing_write_key_is_401_and_stores_nothing,
        without_a_configured_write_key_nothing_is_taken,
        a_gzip_batch_is_taken_and_one_that_inflates_past_500_kb_is_413,
        segments_limits_get_problem_details,
        a_batch_nothing_in_which_can_be_taken_is_400_so_no_sdk_retries_it,
        single_call_routes_take_one_call_each,
    ],
}
