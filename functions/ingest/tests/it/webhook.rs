//! The webhook contract, through the real handler, on the embedded store:
//! signatures, replays, duplicates, concurrency, limits and bad input.

use crate::common;

use std::sync::Arc;

use chrono::{Datelike, Duration, Utc};
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request};
use milepost_app::clock::SystemClock;
use milepost_app::ingest::wire::own_format::parse_events;
use milepost_app::ports::Store;
use milepost_app::Config;
use milepost_aws::DynamoStore;
use milepost_domain::{AccountId, MilestoneStatus};
use milepost_embedded::{InMemoryStore, LocalWorkflowRunner, RecordingPublisher};
use milepost_ingest::{handle, IngestConfig, WebhookSecrets, MAX_BODY_BYTES};
use milepost_local::MotoServer;
use serde_json::{json, Value};

use common::{
    assert_problem, json_of, request, segment_signed, signed, signed_with, Setup, MAP, ROTATED, SECRET, SEGMENT_SECRET,
};

async fn in_memory() -> Arc<Setup> {
    setup(common::in_memory_store()).await
}

async fn on_dynamodb(moto: &MotoServer, table: &str) -> Arc<Setup> {
    common::recorded(moto, table, setup).await
}

/// The map, and Acme three days into its contract.
async fn setup(store: Arc<dyn Store>) -> Arc<Setup> {
    let s = Setup::new(store, Some(MAP), IngestConfig::new(secrets())).await;
    let start = Utc::now().date_naive() - Duration::days(3);
    s.services
        .ingestion()
        .upsert_account(&milepost_embedded::fixtures::account("acme", start))
        .await
        .unwrap();
    s
}

fn secrets() -> WebhookSecrets {
    WebhookSecrets::new(&[SECRET, ROTATED], &[SEGMENT_SECRET]).unwrap()
}

fn event_body(id: &str) -> String {
    json!({"id": id, "account_id": "acme", "event": "workflow.completed",
           "timestamp": (Utc::now() - Duration::hours(1)).to_rfc3339(), "user_id": "u1"})
    .to_string()
}

async fn nothing_stored(s: &Setup) {
    let m = s
        .store
        .get_milestone(&AccountId::new("acme"), "first_workflow")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.status(), MilestoneStatus::Pending, "the milestone moved");
    assert!(
        s.store
            .activity(&AccountId::new("acme"))
            .await
            .unwrap()
            .recent
            .is_empty(),
        "activity was recorded"
    );
    assert!(
        !s.store.seen(&AccountId::new("acme"), "e1", Utc::now()).await.unwrap(),
        "the event was remembered"
    );
}

async fn a_signed_event_is_accepted_and_applied(s: Arc<Setup>) {
    let resp = handle(&s.services.ingestion(), &s.config, signed(&event_body("e1"))).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(
        json_of(&resp),
        json!({"accepted": 1, "duplicates": 0, "rejected": [], "rejected_count": 0})
    );
    let m = s
        .store
        .get_milestone(&AccountId::new("acme"), "first_workflow")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.status(), MilestoneStatus::Achieved);
    assert_eq!(s.events.count("MilestoneAchieved"), 1);
}

async fn unsigned_or_badly_signed_requests_get_401_and_store_nothing(s: Arc<Setup>) {
    let body = event_body("e1");
    assert_problem(
        &handle(&s.services.ingestion(), &s.config, request(body.clone())).await,
        StatusCode::UNAUTHORIZED,
        "webhook-signature",
    );

    let mut wrong = signed(&body);
    wrong.headers_mut().insert(
        "webhook-signature",
        HeaderValue::from_static("v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
    );
    assert_problem(
        &handle(&s.services.ingestion(), &s.config, wrong).await,
        StatusCode::UNAUTHORIZED,
        "webhook-signature",
    );

    let mut short = signed(&body);
    short
        .headers_mut()
        .insert("webhook-signature", HeaderValue::from_static("v1,c2hvcnQ="));
    assert_problem(
        &handle(&s.services.ingestion(), &s.config, short).await,
        StatusCode::UNAUTHORIZED,
        "webhook-signature",
    );

    let mut empty = signed(&body);
    empty
        .headers_mut()
        .insert("webhook-signature", HeaderValue::from_static("v1,"));
    assert_problem(
        &handle(&s.services.ingestion(), &s.config, empty).await,
        StatusCode::UNAUTHORIZED,
        "webhook-signature",
    );

    let other_secret = signed_with("whsec_b3RoZXItc2VjcmV0LW5vdC1jb25maWd1cmVk", &body, "msg_1", 0);
    assert_problem(
        &handle(&s.services.ingestion(), &s.config, other_secret).await,
        StatusCode::UNAUTHORIZED,
        "webhook-signature",
    );

    // A body changed after signing.
    let mut tampered = signed(&body);
    *tampered.body_mut() = Body::from(body.replace("u1", "u2"));
    assert_problem(
        &handle(&s.services.ingestion(), &s.config, tampered).await,
        StatusCode::UNAUTHORIZED,
        "webhook-signature",
    );

    let bad_segment = segment_signed("not-the-secret", &body);
    assert_problem(
        &handle(&s.services.ingestion(), &s.config, bad_segment).await,
        StatusCode::UNAUTHORIZED,
        "X-Signature",
    );
    let mut empty_segment = request(body.clone());
    empty_segment
        .headers_mut()
        .insert("x-signature", HeaderValue::from_static(""));
    assert_problem(
        &handle(&s.services.ingestion(), &s.config, empty_segment).await,
        StatusCode::UNAUTHORIZED,
        "X-Signature",
    );
    nothing_stored(&s).await;
}

async fn a_signature_older_than_five_minutes_is_refused(s: Arc<Setup>) {
    let body = event_body("e1");
    let stale = signed_with(SECRET, &body, "msg_1", 6 * 60);
    let p = assert_problem(
        &handle(&s.services.ingestion(), &s.config, stale).await,
        StatusCode::UNAUTHORIZED,
        "webhook-signature",
    );
    assert!(p["detail"].as_str().unwrap().contains("not valid"), "{p}");
    let future = signed_with(SECRET, &body, "msg_1", -6 * 60);
    assert_problem(
        &handle(&s.services.ingestion(), &s.config, future).await,
        StatusCode::UNAUTHORIZED,
        "webhook-signature",
    );
    nothing_stored(&s).await;
    let recent = signed_with(SECRET, &body, "msg_1", 4 * 60);
    assert_eq!(
        handle(&s.services.ingestion(), &s.config, recent).await.status(),
        StatusCode::ACCEPTED
    );
}

async fn rotated_keys_and_several_signatures_are_accepted(s: Arc<Setup>) {
    let body = event_body("e1");
    let with_new_key = signed_with(ROTATED, &body, "msg_2", 0);
    assert_eq!(
        handle(&s.services.ingestion(), &s.config, with_new_key).await.status(),
        StatusCode::ACCEPTED
    );

    // During a rotation the sender signs with both keys: one valid signature is enough.
    let body = event_body("e2");
    let mut both = signed(&body);
    let valid = both.headers()["webhook-signature"].to_str().unwrap().to_string();
    both.headers_mut().insert(
        "webhook-signature",
        HeaderValue::from_str(&format!("v1,bm9wZQ== {valid}")).unwrap(),
    );
    assert_eq!(
        handle(&s.services.ingestion(), &s.config, both).await.status(),
        StatusCode::ACCEPTED
    );
}

async fn segment_signatures_are_checked_against_the_body(s: Arc<Setup>) {
    let body = json!({"type": "track", "event": "workflow.completed", "messageId": "seg-1", "userId": "u1",
                      "timestamp": (Utc::now() - Duration::hours(1)).to_rfc3339(), "context": {"groupId": "acme"}})
    .to_string();
    let resp = handle(
        &s.services.ingestion(),
        &s.config,
        segment_signed(SEGMENT_SECRET, &body),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(json_of(&resp)["accepted"], 1);
}

async fn without_a_configured_secret_unsigned_requests_are_accepted(s: Arc<Setup>) {
    let open = IngestConfig::new(WebhookSecrets::none());
    let resp = handle(&s.services.ingestion(), &open, request(event_body("e1"))).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
}

async fn a_replayed_request_changes_nothing_a_second_time(s: Arc<Setup>) {
    let body = event_body("e1");
    assert_eq!(
        json_of(&handle(&s.services.ingestion(), &s.config, signed(&body)).await)["accepted"],
        1
    );
    let again = handle(&s.services.ingestion(), &s.config, signed(&body)).await;
    assert_eq!(
        json_of(&again),
        json!({"accepted": 0, "duplicates": 1, "rejected": [], "rejected_count": 0})
    );
    assert_eq!(s.events.count("MilestoneAchieved"), 1);
}

async fn concurrent_deliveries_apply_once(s: Arc<Setup>) {
    let body = event_body("e1");
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (s, body) = (s.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            handle(&s.services.ingestion(), &s.config, signed(&body)).await.status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::ACCEPTED);
    }
    assert_eq!(s.events.count("MilestoneAchieved"), 1);
}

async fn an_oversized_body_gets_413_before_anything_else(s: Arc<Setup>) {
    let big = format!("[{}]", vec![event_body("x"); MAX_BODY_BYTES / 100].join(","));
    assert!(big.len() > MAX_BODY_BYTES);
    let resp = handle(&s.services.ingestion(), &s.config, request(big)).await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(json_of(&resp)["detail"].as_str().unwrap().contains("1048576"));
}

async fn a_wrong_content_type_gets_415(s: Arc<Setup>) {
    let mut req = signed(&event_body("e1"));
    req.headers_mut()
        .insert("content-type", HeaderValue::from_static("text/plain"));
    assert_problem(
        &handle(&s.services.ingestion(), &s.config, req).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "Content-Type",
    );
    let mut with_charset = signed(&event_body("e1"));
    with_charset.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    assert_eq!(
        handle(&s.services.ingestion(), &s.config, with_charset).await.status(),
        StatusCode::ACCEPTED
    );
}

async fn malformed_json_gets_400_naming_the_body(s: Arc<Setup>) {
    let p = assert_problem(
        &handle(&s.services.ingestion(), &s.config, signed("{\"id\": ")).await,
        StatusCode::BAD_REQUEST,
        "(body)",
    );
    assert!(p["detail"].as_str().unwrap().contains("not valid JSON"));
}

async fn a_request_with_no_valid_event_gets_422_naming_each_field(s: Arc<Setup>) {
    let body = json!([
        {"id": "a", "account_id": "acme", "event": "x", "timestamp": "yesterday"},
        {"account_id": "acme", "event": "x", "timestamp": "2026-01-01T00:00:00Z"}
    ])
    .to_string();
    let p = assert_problem(
        &handle(&s.services.ingestion(), &s.config, signed(&body)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "timestamp",
    );
    assert_eq!(p["errors"][0]["index"], 0);
    assert_eq!(
        p["errors"][1],
        json!({"index": 1, "field": "id", "detail": "is required"})
    );
    let not_events = assert_problem(
        &handle(&s.services.ingestion(), &s.config, signed("42")).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "(body)",
    );
    assert_eq!(not_events["status"], 422);
}

async fn in_a_batch_valid_events_are_applied_and_the_rest_reported(s: Arc<Setup>) {
    let good: Value = serde_json::from_str(&event_body("e1")).unwrap();
    let body =
        json!([good, {"id": "b", "account_id": "acme", "event": "", "timestamp": "2026-01-01T00:00:00Z"}]).to_string();
    let resp = handle(&s.services.ingestion(), &s.config, signed(&body)).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(
        json_of(&resp),
        json!({"accepted": 1, "duplicates": 0, "rejected": [{"index": 1, "error": "event: must not be empty"}], "rejected_count": 1})
    );
}

async fn other_paths_and_methods_are_refused(s: Arc<Setup>) {
    let mut get = signed(&event_body("e1"));
    *get.method_mut() = lambda_http::http::Method::GET;
    let resp = handle(&s.services.ingestion(), &s.config, get).await;
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers()["allow"], "POST");
    let mut elsewhere = signed(&event_body("e1"));
    *elsewhere.uri_mut() = "https://hooks.example/v2/things".parse().unwrap();
    assert_eq!(
        handle(&s.services.ingestion(), &s.config, elsewhere).await.status(),
        StatusCode::NOT_FOUND
    );
}

fn event_at(id: &str, account: &str, event: &str, at: chrono::DateTime<Utc>) -> Value {
    json!({"id": id, "account_id": account, "event": event, "timestamp": at.to_rfc3339(), "user_id": "u1"})
}

fn group_call(message_id: &str, account: &str, at: chrono::DateTime<Utc>, traits: Value) -> Value {
    json!({"type": "group", "messageId": message_id, "groupId": account, "timestamp": at.to_rfc3339(),
           "traits": traits})
}

fn new_account_traits(name: &str) -> Value {
    json!({"name": name, "segment": "smb", "contract_start": (Utc::now() - Duration::days(3)).date_naive().to_string(),
           "admin_email": "pat@beta.example", "csm_email": "maya@vendor.example"})
}

/// The fields a problem's `errors` name, in order.
fn problem_fields(problem: &Value) -> Vec<&str> {
    problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect()
}

/// A new account's traits with one trait set to `value`.
fn traits_with(name: &str, key: &str, value: &str) -> Value {
    let mut traits = new_account_traits(name);
    traits[key] = json!(value);
    traits
}

fn rejected_fields(report: &Value) -> Vec<(u64, String)> {
    report["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let error = r["error"].as_str().unwrap();
            (
                r["index"].as_u64().unwrap(),
                error.split(": ").next().unwrap().to_string(),
            )
        })
        .collect()
}

/// The first finding of the bounded-state work: one user's activity used to
/// grow a windowed user milestone by every event until DynamoDB refused it
/// (350 events made 425 KB; 200 here would have made ~240 KB) and every
/// request answered 503 from then on.
/// Now a user active every day costs one run, whatever the number of events.
async fn a_busy_user_in_a_windowed_user_milestone_keeps_its_item_small(s: Arc<Setup>) {
    let start = Utc::now() - Duration::hours(60);
    let events: Vec<Value> = (0..200)
        .map(|i| {
            event_at(
                &format!("active-{i}"),
                "acme",
                "user.active",
                start + Duration::minutes(18 * i),
            )
        })
        .collect();
    for chunk in events.chunks(100) {
        let resp = handle(
            &s.services.ingestion(),
            &s.config,
            signed(&Value::Array(chunk.to_vec()).to_string()),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        assert_eq!(json_of(&resp)["accepted"], chunk.len());
    }
    let m = s
        .store
        .get_milestone(&AccountId::new("acme"), "team_active")
        .await
        .unwrap()
        .unwrap();
    let milepost_domain::Progress::WindowedUsers { runs, .. } = &m.progress() else {
        panic!("windowed user progress");
    };
    let kept: Vec<usize> = runs.values().map(Vec::len).collect();
    assert_eq!(kept, vec![1], "one run for the one user, active every day");
    let size = milepost_domain::limits::stored_size(&m);
    assert!(size < 4_000, "the milestone item is {size} bytes");
}

/// Inputs DynamoDB can never store are rejected per event, with the field at
/// fault, and the rest of the batch is applied; the retry a sender makes of the
/// same request applies nothing twice and rejects the same items again. (The
/// in-memory store checks only item sizes, so this also shows the checks are at the edge.)
async fn what_can_never_be_stored_is_rejected_per_event_not_retried_forever(s: Arc<Setup>) {
    let at = Utc::now() - Duration::hours(1);
    let mut deep = json!(1);
    for _ in 0..50 {
        deep = json!({ "d": deep });
    }
    let mut huge_number = event_at("n1", "acme", "report.shared", at);
    huge_number["properties"] = json!({"amount": 1e200});
    let mut nested = event_at("d1", "acme", "report.shared", at);
    nested["properties"] = json!({ "deep": deep });
    let body = json!([
        event_at("good-1", "acme", "workflow.completed", at),
        event_at(&"i".repeat(3000), "acme", "report.shared", at),
        event_at("a1", &"a".repeat(3000), "report.shared", at),
        event_at("big-name", "acme", &"n".repeat(450_000), at),
        huge_number,
        nested,
        event_at("good-2", "acme", "report.shared", at),
    ])
    .to_string();
    assert!(body.len() < MAX_BODY_BYTES);
    let expected = vec![
        (1, "id".to_string()),
        (2, "account_id".to_string()),
        (3, "event".to_string()),
        (4, "properties.amount".to_string()),
        (5, "properties.deep.d.d.d.d.d.d.d.d.d.d.d.d.d.d.d.d".to_string()),
    ];
    let first = handle(&s.services.ingestion(), &s.config, signed(&body)).await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first = json_of(&first);
    assert_eq!(
        (first["accepted"].as_u64(), first["duplicates"].as_u64()),
        (Some(2), Some(0))
    );
    assert_eq!(rejected_fields(&first), expected);
    assert_eq!(first["rejected_count"], 5);

    let retried = handle(&s.services.ingestion(), &s.config, signed(&body)).await;
    assert_eq!(retried.status(), StatusCode::ACCEPTED, "a retry is never a 5xx");
    let retried = json_of(&retried);
    assert_eq!(
        (retried["accepted"].as_u64(), retried["duplicates"].as_u64()),
        (Some(0), Some(2))
    );
    assert_eq!(rejected_fields(&retried), expected, "the same items are rejected again");
    assert_eq!(s.events.count("MilestoneAchieved"), 1, "announced once");
    let reports = s
        .store
        .get_milestone(&AccountId::new("acme"), "reports_shared")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reports.version, 2, "created, then good-2 applied once");
}

async fn an_event_too_large_to_park_is_refused_not_parked(s: Arc<Setup>) {
    let mut big = event_at(
        "p1",
        "unknown-account",
        "report.shared",
        Utc::now() - Duration::hours(1),
    );
    big["properties"] = json!({"blob": "x".repeat(1_000_000)});
    let p = assert_problem(
        &handle(&s.services.ingestion(), &s.config, signed(&big.to_string())).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "properties",
    );
    assert_eq!(p["errors"][0]["index"], 0);
    assert!(s
        .store
        .parked_for(&AccountId::new("unknown-account"))
        .await
        .unwrap()
        .is_empty());
}

async fn events_dated_far_ahead_are_rejected_and_odd_signature_times_get_401(s: Arc<Setup>) {
    let far = chrono::DateTime::parse_from_rfc3339("9999-12-31T00:00:00Z")
        .unwrap()
        .to_utc();
    let body = json!([
        event_at("future", "acme", "workflow.completed", far),
        event_at("tomorrowish", "acme", "report.shared", Utc::now() + Duration::hours(20)),
    ])
    .to_string();
    let report = json_of(&handle(&s.services.ingestion(), &s.config, signed(&body)).await);
    assert_eq!(report["accepted"], 1, "within the day's skew: {report}");
    assert_eq!(rejected_fields(&report), vec![(0, "timestamp".to_string())]);
    let m = s
        .store
        .get_milestone(&AccountId::new("acme"), "first_workflow")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        m.status(),
        MilestoneStatus::Pending,
        "the far-future event moved nothing"
    );
    let days = s.store.activity(&AccountId::new("acme")).await.unwrap().active_days;
    assert!(days.iter().all(|d| d.year() < 3000), "last seen went to the far future");

    for ts in ["-9223372036854775808", "9223372036854775807", "1e9", "12.5", "now"] {
        let mut req = signed(&event_body("e1"));
        req.headers_mut()
            .insert("webhook-timestamp", HeaderValue::from_static(ts));
        assert_problem(
            &handle(&s.services.ingestion(), &s.config, req).await,
            StatusCode::UNAUTHORIZED,
            "webhook-signature",
        );
    }
}

async fn group_calls_out_of_order_never_overwrite_newer_traits(s: Arc<Setup>) {
    let t = Utc::now() - Duration::hours(2);
    let mut newer_traits = new_account_traits("Beta (new name)");
    newer_traits["arr"] = json!(50_000);
    let newer = group_call("g-new", "beta", t + Duration::minutes(30), newer_traits);
    let older = group_call("g-old", "beta", t, new_account_traits("Beta (old name)"));
    let report = json_of(&handle(&s.services.ingestion(), &s.config, signed(&json!([newer]).to_string())).await);
    assert_eq!(report["accepted"], 1, "{report}");
    let report = json_of(&handle(&s.services.ingestion(), &s.config, signed(&json!([older]).to_string())).await);
    assert_eq!(report["accepted"], 1, "an older call is taken and superseded: {report}");
    let beta = s.store.get_account(&AccountId::new("beta")).await.unwrap().unwrap();
    assert_eq!(beta.name, "Beta (new name)");
    assert_eq!(beta.arr, 50_000);
    // A newer call still applies.
    let newest = group_call("g-newest", "beta", t + Duration::hours(1), json!({"name": "Beta Inc"}));
    handle(&s.services.ingestion(), &s.config, signed(&json!([newest]).to_string())).await;
    let beta = s.store.get_account(&AccountId::new("beta")).await.unwrap().unwrap();
    assert_eq!((beta.name.as_str(), beta.arr), ("Beta Inc", 50_000));

    // A call dated 23 hours ahead (a sender's clock gone wrong) is taken, but
    // as of now: the honest call that follows it a minute later wins.
    let ahead = group_call(
        "g-ahead",
        "beta",
        Utc::now() + Duration::hours(23),
        json!({"name": "Beta (clock ahead)"}),
    );
    handle(&s.services.ingestion(), &s.config, signed(&json!([ahead]).to_string())).await;
    assert_eq!(
        s.store
            .get_account(&AccountId::new("beta"))
            .await
            .unwrap()
            .unwrap()
            .name,
        "Beta (clock ahead)"
    );
    let honest = group_call(
        "g-honest",
        "beta",
        Utc::now() + Duration::seconds(1),
        json!({"name": "Beta Incorporated"}),
    );
    handle(&s.services.ingestion(), &s.config, signed(&json!([honest]).to_string())).await;
    let beta = s.store.get_account(&AccountId::new("beta")).await.unwrap().unwrap();
    assert_eq!(
        beta.name, "Beta Incorporated",
        "a call dated ahead shadowed a later honest one"
    );
}

async fn the_same_event_id_in_two_accounts_is_two_events(s: Arc<Setup>) {
    let at = Utc::now() - Duration::hours(1);
    let create = group_call("g-beta", "beta", at, new_account_traits("Beta"));
    handle(&s.services.ingestion(), &s.config, signed(&json!([create]).to_string())).await;
    let body = json!([
        event_at("evt-1", "acme", "workflow.completed", at),
        event_at("evt-1", "beta", "workflow.completed", at),
    ])
    .to_string();
    let report = json_of(&handle(&s.services.ingestion(), &s.config, signed(&body)).await);
    assert_eq!(
        (report["accepted"].as_u64(), report["duplicates"].as_u64()),
        (Some(2), Some(0))
    );
    for account in ["acme", "beta"] {
        let m = s
            .store
            .get_milestone(&AccountId::new(account), "first_workflow")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.status(), MilestoneStatus::Achieved, "{account}");
    }
    assert_eq!(s.events.count("MilestoneAchieved"), 2);
}

/// Posts `group` calls (message id, account, traits), all of which must be
/// refused (422); returns the fields the problem names, in order.
async fn fields_of_refused_group_calls(s: &Setup, calls: Vec<(&str, &str, Value)>) -> Vec<String> {
    let at = Utc::now() - Duration::hours(1);
    let body = Value::Array(
        calls
            .into_iter()
            .map(|(id, account, traits)| group_call(id, account, at, traits))
            .collect(),
    )
    .to_string();
    let resp = handle(&s.services.ingestion(), &s.config, signed(&body)).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    problem_fields(&json_of(&resp))
        .into_iter()
        .map(str::to_string)
        .collect()
}

async fn addresses_in_traits_are_parsed_and_lists_or_headers_refused(s: Arc<Setup>) {
    let list = traits_with("Beta", "admin_email", "pat@acme.example>, <leak@evil.example");
    let crlf = traits_with("Beta", "csm_email", "maya@vendor.example\r\nBcc: leak@evil.example");
    let named = traits_with("Beta", "cs_leader_email", "Lead <lead@vendor.example>");
    let fields = fields_of_refused_group_calls(
        &s,
        vec![("g1", "beta", list), ("g2", "beta", crlf), ("g3", "beta", named)],
    )
    .await;
    assert_eq!(
        fields,
        ["traits.admin_email", "traits.csm_email", "traits.cs_leader_email"]
    );
    assert!(s.store.get_account(&AccountId::new("beta")).await.unwrap().is_none());
}

async fn implausible_contract_dates_are_rejected_per_field(s: Arc<Setup>) {
    let ancient = traits_with("Beta", "contract_start", "0001-01-01");
    let far = traits_with("Gamma", "contract_start", "9999-01-01");
    let renewal = traits_with("Delta", "renewal_date", "2999-01-01");
    let fields = fields_of_refused_group_calls(
        &s,
        vec![("g1", "beta", ancient), ("g2", "gamma", far), ("g3", "delta", renewal)],
    )
    .await;
    assert_eq!(
        fields,
        ["traits.contract_start", "traits.contract_start", "traits.renewal_date"]
    );
}

async fn work_per_request_is_bounded_and_answers_stay_small(s: Arc<Setup>) {
    let too_many = json!(vec![json!({}); milepost_domain::limits::MAX_EVENTS_PER_REQUEST + 1]).to_string();
    let p = assert_problem(
        &handle(&s.services.ingestion(), &s.config, signed(&too_many)).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "(body)",
    );
    assert!(p["detail"].as_str().unwrap().contains("500"), "{p}");

    let all_bad = json!(vec![json!({}); milepost_domain::limits::MAX_EVENTS_PER_REQUEST]).to_string();
    let p = assert_problem(
        &handle(&s.services.ingestion(), &s.config, signed(&all_bad)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "id",
    );
    assert_eq!(
        p["errors"].as_array().unwrap().len(),
        milepost_domain::limits::MAX_REJECTIONS_LISTED
    );
    assert!(p["detail"].as_str().unwrap().contains("500 were rejected"), "{p}");

    let mut mixed = vec![json!({}); 150];
    mixed.push(event_at(
        "ok",
        "acme",
        "workflow.completed",
        Utc::now() - Duration::hours(1),
    ));
    let report = json_of(&handle(&s.services.ingestion(), &s.config, signed(&json!(mixed).to_string())).await);
    assert_eq!(report["accepted"], 1);
    assert_eq!(report["rejected_count"], 150);
    assert_eq!(
        report["rejected"].as_array().unwrap().len(),
        milepost_domain::limits::MAX_REJECTIONS_LISTED
    );
}

/// The parking cap, on the in-memory store only: filling it on the emulator
/// would take 10,000 writes (the count it relies on is in the store contract).
#[tokio::test]
async fn an_unknown_account_parks_up_to_its_cap_then_its_events_are_rejected() {
    let s = in_memory().await;
    let limit = milepost_domain::limits::MAX_PARKED_PER_ACCOUNT;
    let at = Utc::now() - Duration::hours(1);
    for i in 0..limit {
        let body = event_at(&format!("p{i}"), "ghost", "x", at).to_string();
        let e = parse_events(body.as_bytes()).unwrap().remove(0).unwrap();
        s.store.park(&e).await.unwrap();
    }
    let body = json!([
        event_at("one-more", "ghost", "x", at),
        event_at("fine", "acme", "x", at)
    ])
    .to_string();
    let report = json_of(&handle(&s.services.ingestion(), &s.config, signed(&body)).await);
    assert_eq!(report["accepted"], 1, "{report}");
    assert_eq!(rejected_fields(&report), vec![(0, "account_id".to_string())]);
    assert_eq!(
        s.store
            .parked_count(&AccountId::new("ghost"), limit + 10)
            .await
            .unwrap(),
        limit
    );
}

/// A store whose event application breaks a lifecycle rule while `refuse`
/// is set: how a bug in Milepost would meet a sender. Everything else is the
/// in-memory store.
struct RuleBreakingStore {
    inner: InMemoryStore,
    refuse: std::sync::atomic::AtomicBool,
}

mod rule_breaking {
    use async_trait::async_trait;
    use milepost_app::ports::*;
    use milepost_domain::{
        Account, AccountId, CsmTask, EscalationLogEntry, IllegalChange, IllegalTransition, MilestoneMap,
        MilestoneStatus, ProductEvent, Segment, TaskStatus, Tenure, Timestamp, TrackedMilestone, Transition,
    };

    use super::RuleBreakingStore;

    #[async_trait]
    impl EventStore for RuleBreakingStore {
        async fn apply_product_events(
            &self,
            account: &AccountId,
            events: &[ProductEvent],
            now: Timestamp,
            until: Timestamp,
            claimant: &str,
        ) -> StoreResult<EventsApplied> {
            if self.refuse.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(StoreError::Illegal(IllegalChange {
                    account_id: account.clone(),
                    milestone_id: "first_workflow".into(),
                    transition: IllegalTransition {
                        from: MilestoneStatus::Achieved,
                        transition: Transition::Reach,
                    },
                }));
            }
            self.inner
                .apply_product_events(account, events, now, until, claimant)
                .await
        }
    }
    #[async_trait]
    impl AccountStore for RuleBreakingStore {
        async fn put_account(&self, a: &Account) -> StoreResult<()> {
            self.inner.put_account(a).await
        }
        async fn replace_account(&self, a: &Account, expected: Option<&Account>) -> StoreResult<bool> {
            self.inner.replace_account(a, expected).await
        }
        async fn get_account(&self, id: &AccountId) -> StoreResult<Option<std::sync::Arc<Account>>> {
            self.inner.get_account(id).await
        }
    }
    #[async_trait]
    impl MapStore for RuleBreakingStore {
        async fn put_map(&self, map: &MilestoneMap) -> StoreResult<()> {
            self.inner.put_map(map).await
        }
        async fn maps_for(&self, segment: Segment, tenure: Tenure) -> StoreResult<Vec<MilestoneMap>> {
            self.inner.maps_for(segment, tenure).await
        }
    }
    #[async_trait]
    impl MilestoneStore for RuleBreakingStore {
        async fn create_milestone(&self, m: &TrackedMilestone) -> StoreResult<bool> {
            self.inner.create_milestone(m).await
        }
        async fn get_milestone(&self, a: &AccountId, id: &str) -> StoreResult<Option<TrackedMilestone>> {
            self.inner.get_milestone(a, id).await
        }
        async fn update_milestone(&self, m: &TrackedMilestone) -> StoreResult<u64> {
            self.inner.update_milestone(m).await
        }
        async fn milestones_of(&self, a: &AccountId) -> StoreResult<Vec<TrackedMilestone>> {
            self.inner.milestones_of(a).await
        }
        async fn remove_milestone(&self, m: &TrackedMilestone) -> StoreResult<()> {
            self.inner.remove_milestone(m).await
        }
        async fn due_milestones(
            &self,
            now: Timestamp,
            after: Option<String>,
            limit: usize,
        ) -> StoreResult<Page<TrackedMilestone>> {
            self.inner.due_milestones(now, after, limit).await
        }
        async fn heads_up_milestones(
            &self,
            now: Timestamp,
            after: Option<String>,
            limit: usize,
        ) -> StoreResult<Page<TrackedMilestone>> {
            self.inner.heads_up_milestones(now, after, limit).await
        }
    }
    #[async_trait]
    impl DedupeStore for RuleBreakingStore {
        async fn seen(&self, a: &AccountId, id: &str, now: Timestamp) -> StoreResult<bool> {
            self.inner.seen(a, id, now).await
        }
        async fn remember(&self, a: &AccountId, id: &str, until: Timestamp) -> StoreResult<()> {
            self.inner.remember(a, id, until).await
        }
    }
    #[async_trait]
    impl TaskStore for RuleBreakingStore {
        async fn create_task(&self, t: &CsmTask) -> StoreResult<bool> {
            self.inner.create_task(t).await
        }
        async fn get_task(&self, id: &str) -> StoreResult<Option<CsmTask>> {
            self.inner.get_task(id).await
        }
        async fn update_task(&self, t: &CsmTask) -> StoreResult<u64> {
            self.inner.update_task(t).await
        }
        async fn tasks_for_owner(&self, owner: &str, status: Option<TaskStatus>) -> StoreResult<Vec<CsmTask>> {
            self.inner.tasks_for_owner(owner, status).await
        }
        async fn tasks_with_status(&self, status: TaskStatus) -> StoreResult<Vec<CsmTask>> {
            self.inner.tasks_with_status(status).await
        }
        async fn snoozes_over(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<CsmTask>> {
            self.inner.snoozes_over(now, limit).await
        }
    }
    #[async_trait]
    impl EscalationLog for RuleBreakingStore {
        async fn append_log(&self, entry: &EscalationLogEntry) -> StoreResult<bool> {
            self.inner.append_log(entry).await
        }
        async fn log_of(&self, a: &AccountId) -> StoreResult<Vec<EscalationLogEntry>> {
            self.inner.log_of(a).await
        }
    }
    #[async_trait]
    impl ParkingStore for RuleBreakingStore {
        async fn park(&self, e: &ProductEvent) -> StoreResult<()> {
            self.inner.park(e).await
        }
        async fn parked_for(&self, a: &AccountId) -> StoreResult<Vec<ProductEvent>> {
            self.inner.parked_for(a).await
        }
        async fn parked_count(&self, a: &AccountId, up_to: usize) -> StoreResult<usize> {
            self.inner.parked_count(a, up_to).await
        }
        async fn unpark(&self, a: &AccountId, id: &str) -> StoreResult<()> {
            self.inner.unpark(a, id).await
        }
        async fn parked_accounts(&self) -> StoreResult<Vec<(AccountId, usize)>> {
            self.inner.parked_accounts().await
        }
    }

    #[async_trait]
    impl SuccessPlanStore for RuleBreakingStore {
        async fn success_plan(&self, a: &AccountId) -> StoreResult<Option<milepost_domain::SuccessPlan>> {
            self.inner.success_plan(a).await
        }
        async fn success_plan_history(&self, a: &AccountId) -> StoreResult<Vec<milepost_domain::SuccessPlan>> {
            self.inner.success_plan_history(a).await
        }
        async fn add_success_plan(&self, p: &milepost_domain::SuccessPlan) -> StoreResult<bool> {
            self.inner.add_success_plan(p).await
        }
        async fn success_plans(&self) -> StoreResult<Vec<milepost_domain::SuccessPlan>> {
            self.inner.success_plans().await
        }
    }
}

/// An event whose application breaks a lifecycle rule is Milepost's bug,
/// not the sender's: it gets a 202 (never a 503 that would be retried
/// forever), is counted and kept with the parked events, and once the bug is
/// gone, `milepost parked --replay` (`apply_parked`) applies it exactly once.
#[tokio::test]
async fn an_event_that_breaks_a_lifecycle_rule_is_held_for_replay_not_retried_forever() {
    use milepost_app::ingest::Ingestion;
    use milepost_app::ports::{MapStore, MilestoneStore, ParkingStore};
    let store = Arc::new(RuleBreakingStore {
        inner: InMemoryStore::new(),
        refuse: std::sync::atomic::AtomicBool::new(false),
    });
    store
        .put_map(&milepost_maps::load_map("m.yaml", MAP).unwrap())
        .await
        .unwrap();
    let ingestion = Ingestion {
        store: store.clone(),
        events: Arc::new(RecordingPublisher::default()),
        workflows: Arc::new(LocalWorkflowRunner::new()),
        clock: Arc::new(SystemClock),
        config: Config::default(),
    };
    let start = Utc::now().date_naive() - Duration::days(3);
    ingestion
        .upsert_account(&milepost_embedded::fixtures::account("acme", start))
        .await
        .unwrap();
    let acme = AccountId::new("acme");
    let config = IngestConfig::new(secrets());

    store.refuse.store(true, std::sync::atomic::Ordering::SeqCst);
    let resp = handle(&ingestion, &config, signed(&event_body("e1"))).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED, "{:?}", json_of(&resp));
    assert_eq!(json_of(&resp)["accepted"], 1);
    let report = ingestion
        .ingest(milepost_app::ingest::wire::parse_body(event_body("e2").as_bytes()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        (report.accepted, report.held),
        (2 - 1, 1),
        "held, and counted for operators"
    );
    let metrics = report.emf(Utc::now()).expect("a held event is a metric");
    assert_eq!(metrics["EventsHeld"], 1);
    let held: Vec<String> = store
        .parked_for(&acme)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(held, ["e1", "e2"], "both kept for replay");
    let first = store.get_milestone(&acme, "first_workflow").await.unwrap().unwrap();
    assert_eq!(first.status(), MilestoneStatus::Pending, "nothing applied");
    // A replay while the bug is still there keeps them.
    assert_eq!(ingestion.apply_parked(&acme).await.unwrap(), 0);
    assert_eq!(store.parked_for(&acme).await.unwrap().len(), 2);

    store.refuse.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(ingestion.apply_parked(&acme).await.unwrap(), 2, "each applied once");
    assert!(store.parked_for(&acme).await.unwrap().is_empty());
    let first = store.get_milestone(&acme, "first_workflow").await.unwrap().unwrap();
    assert_eq!(first.status(), MilestoneStatus::Achieved);
    assert_eq!(
        ingestion.apply_parked(&acme).await.unwrap(),
        0,
        "a second replay changes nothing"
    );
    let again = json_of(&handle(&ingestion, &config, signed(&event_body("e1"))).await);
    assert_eq!(
        again["duplicates"], 1,
        "the sender's redelivery is a duplicate now: {again}"
    );
}

/// One delivery reaches two milestones and the bus fails on the first
/// announcement: the sender is asked to retry (503), and the retry announces
/// both, once each. (Stopping at the first failure left the second
/// announcement claimed by the failed delivery, so the retry skipped it as
/// another delivery's live claim and it was never made.)
async fn a_failed_announcement_leaves_nothing_unannounced_for_the_retry(s: Arc<Setup>) {
    let at = Utc::now() - Duration::hours(1);
    let body = json!([
        event_at("w1", "acme", "workflow.completed", at),
        event_at("r1", "acme", "report.shared", at),
        event_at("r2", "acme", "report.shared", at),
        event_at("r3", "acme", "report.shared", at),
    ])
    .to_string();
    s.events.fail_next(1);
    let first = handle(&s.services.ingestion(), &s.config, signed(&body)).await;
    assert_eq!(first.status(), StatusCode::SERVICE_UNAVAILABLE, "the sender retries");
    let retry = handle(
        &s.services.ingestion(),
        &s.config,
        signed_with(SECRET, &body, "msg_2", 0),
    )
    .await;
    assert_eq!(retry.status(), StatusCode::ACCEPTED);
    let achieved: Vec<String> = s
        .events
        .events()
        .iter()
        .filter_map(|e| match e {
            milepost_domain::DomainEvent::MilestoneAchieved { milestone_id, .. } => Some(milestone_id.clone()),
            _ => None,
        })
        .collect();
    let mut sorted = achieved.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["first_workflow", "reports_shared"],
        "each announced once: {achieved:?}"
    );
}

fn confirm_request(req: Request) -> Request {
    let mut req = req;
    *req.uri_mut() = "https://hooks.example/v1/milestones/confirm".parse().unwrap();
    req
}

fn confirm_body(account: &str, milestone: &str) -> String {
    json!({"account_id": account, "milestone_id": milestone, "by": "maya@vendor.example",
           "by_name": "Maya Chen", "note": "EBR held with the CFO"})
    .to_string()
}

/// A CRM workflow confirms a manual milestone with a signed POST: the
/// milestone is reached once, announced once, logged with who; a repeat says
/// so and changes nothing; unsigned, unknown or non-manual requests are
/// refused with problem details naming the field, and nothing is stored.
async fn a_signed_confirmation_reaches_a_manual_milestone_once(s: Arc<Setup>) {
    let ingestion = s.services.ingestion();
    let acme = AccountId::new("acme");
    let sponsor = || async { s.store.get_milestone(&acme, "sponsor_named").await.unwrap().unwrap() };

    let body = confirm_body("acme", "sponsor_named");
    let unsigned = handle(&ingestion, &s.config, confirm_request(request(body.clone()))).await;
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        sponsor().await.status(),
        MilestoneStatus::Pending,
        "unsigned moved nothing"
    );

    let resp = handle(&ingestion, &s.config, confirm_request(signed(&body))).await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(resp.body().as_ref())
    );
    let answer = json_of(&resp);
    assert_eq!(answer["status"], "confirmed");
    assert_eq!(answer["milestone_status"], "achieved");
    let reached = sponsor().await;
    assert_eq!(reached.status(), MilestoneStatus::Achieved);
    let names = |s: &Setup| -> Vec<String> { s.events.events().iter().map(|e| e.detail_type().to_string()).collect() };
    assert_eq!(names(&s), ["ManualMilestoneConfirmed", "MilestoneAchieved"]);
    let log = s.store.log_of(&acme).await.unwrap();
    let entry = log.iter().find(|e| e.milestone_id == "sponsor_named").expect("logged");
    assert!(
        entry.detail.contains("Maya Chen") && entry.detail.contains("EBR held"),
        "{}",
        entry.detail
    );

    let again = handle(
        &ingestion,
        &s.config,
        confirm_request(signed_with(SECRET, &body, "msg_2", 0)),
    )
    .await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(json_of(&again)["status"], "already_reached");
    assert_eq!(
        json_of(&again)["reached_at"],
        answer["reached_at"],
        "the first confirmation stands"
    );
    assert_eq!(names(&s).len(), 2, "nothing announced twice");
    assert_eq!(sponsor().await.version, reached.version, "nothing written twice");
    assert_eq!(
        s.store.log_of(&acme).await.unwrap().len(),
        log.len(),
        "nothing logged twice"
    );

    let unknown_account = confirm_body("nobody", "sponsor_named");
    let resp = handle(&ingestion, &s.config, confirm_request(signed(&unknown_account))).await;
    assert_problem(&resp, StatusCode::NOT_FOUND, "account_id");
    let unknown_milestone = confirm_body("acme", "no_such_milestone");
    let resp = handle(&ingestion, &s.config, confirm_request(signed(&unknown_milestone))).await;
    assert_problem(&resp, StatusCode::NOT_FOUND, "milestone_id");
    let by_events = confirm_body("acme", "first_workflow");
    let resp = handle(&ingestion, &s.config, confirm_request(signed(&by_events))).await;
    assert_problem(&resp, StatusCode::CONFLICT, "milestone_id");
    let no_by = json!({"account_id": "acme", "milestone_id": "sponsor_named"}).to_string();
    let resp = handle(&ingestion, &s.config, confirm_request(signed(&no_by))).await;
    assert_problem(&resp, StatusCode::UNPROCESSABLE_ENTITY, "by");
    let future = json!({"account_id": "acme", "milestone_id": "sponsor_named", "by": "maya@vendor.example",
                        "at": (Utc::now() + Duration::days(2)).to_rfc3339()})
    .to_string();
    let resp = handle(&ingestion, &s.config, confirm_request(signed(&future))).await;
    assert_problem(&resp, StatusCode::UNPROCESSABLE_ENTITY, "at");
    nothing_stored(&s).await;
    assert_eq!(names(&s).len(), 2, "refusals announce nothing");
}

/// A plan begun a month ago, to be reached in eleven months: checked each
/// quarter of its year, the first checkpoint two months from now.
fn plan_of(target: f64) -> Value {
    let today = Utc::now().date_naive();
    json!([{"id": "logistics_costs", "title": "Lower annual logistics costs", "event": "outcome.measured",
            "property": "cost_savings_pct", "unit": "%", "baseline": 0, "target": target,
            "starts_on": (today - Duration::days(30)).to_string(), "by": (today + Duration::days(335)).to_string(),
            "agreed_by": "Dana Chen, VP Operations"}])
}

/// The plan's checkpoints tracked for `account`: id and value, in date order.
async fn checkpoints(s: &Setup, account: &AccountId) -> Vec<(String, f64)> {
    let mut points: Vec<(String, f64)> = s
        .store
        .milestones_of(account)
        .await
        .unwrap()
        .iter()
        .filter(|m| m.checkpoint().is_some())
        .map(|m| match m.criterion() {
            milepost_domain::Criterion::MetricThreshold { value, .. } => (m.milestone_id().to_string(), *value),
            other => panic!("{other:?}"),
        })
        .collect();
    points.sort_by(|a, b| a.0.cmp(&b.0));
    points
}

/// Issue 36: a `group` call's `success_plan` trait is the account's plan,
/// kept as versions: the same plan again keeps nothing new, a change is
/// the next version, a call older than the traits or the plan standing
/// changes nothing, and a plan with a problem refuses the whole call.
async fn a_success_plan_trait_is_kept_as_the_plans_versions(s: Arc<Setup>) {
    let acme = AccountId::new("acme");
    let t = Utc::now() - Duration::hours(3);
    let ingestion = s.services.ingestion();
    let post = |id: &str, at: chrono::DateTime<Utc>, target: f64| {
        let call = group_call(id, "acme", at, json!({"success_plan": plan_of(target)}));
        // Boxed: the scenario's future would carry each inline.
        Box::pin(handle(&ingestion, &s.config, signed(&json!([call]).to_string())))
    };
    let plan = || async { s.store.success_plan(&acme).await.unwrap().expect("a plan") };
    let report = json_of(&post("g-plan-1", t, 30.0).await);
    assert_eq!(report["accepted"], 1, "{report}");
    let first = plan().await;
    assert_eq!((first.version, first.outcomes[0].target), (1, 30.0));
    assert_eq!(first.set_by, "group call g-plan-1");
    assert_eq!(first.set_at, t, "kept as of the call");
    let copy = s.store.get_account(&acme).await.unwrap().unwrap().success_plan.clone();
    assert_eq!(copy.map(|p| p.version), Some(1), "copied onto the account");
    let tracked = checkpoints(&s, &acme).await;
    assert_eq!(
        tracked.len(),
        4,
        "a checkpoint each quarter from now, the target last: {tracked:?}"
    );
    assert_eq!(tracked[3].1, 30.0);

    // The same plan in a later call, and a redelivery: nothing new kept.
    post("g-plan-2", t + Duration::minutes(10), 30.0).await;
    let report = json_of(&post("g-plan-2", t + Duration::minutes(10), 30.0).await);
    assert_eq!(report["duplicates"], 1, "{report}");
    assert_eq!(plan().await.version, 1);

    // A change is the next version; every one is kept.
    post("g-plan-3", t + Duration::minutes(20), 25.0).await;
    assert_eq!((plan().await.version, plan().await.outcomes[0].target), (2, 25.0));
    let history = s.store.success_plan_history(&acme).await.unwrap();
    assert_eq!(
        history.iter().map(|p| p.outcomes[0].target).collect::<Vec<_>>(),
        [30.0, 25.0]
    );
    let copy = s.store.get_account(&acme).await.unwrap().unwrap().success_plan.clone();
    assert_eq!(copy.map(|p| p.version), Some(2));
    let followed = checkpoints(&s, &acme).await;
    assert_eq!(
        followed.iter().map(|(id, _)| id).collect::<Vec<_>>(),
        tracked.iter().map(|(id, _)| id).collect::<Vec<_>>()
    );
    assert_eq!(followed[3].1, 25.0, "the checkpoints follow the new target");

    // A measure through the webhook meets the next checkpoint.
    let measured = json!({"type": "track", "event": "outcome.measured", "messageId": "measure-1",
        "timestamp": (Utc::now() - Duration::hours(1)).to_rfc3339(), "context": {"groupId": "acme"},
        "properties": {"cost_savings_pct": 9}});
    let report = json_of(&Box::pin(handle(&ingestion, &s.config, signed(&json!([measured]).to_string()))).await);
    assert_eq!(report["accepted"], 1, "{report}");
    let first = s.store.get_milestone(&acme, &followed[0].0).await.unwrap().unwrap();
    assert_eq!(first.status(), MilestoneStatus::Achieved, "9% meets {}", followed[0].1);

    // A call made before the traits standing (delivered late) is superseded, plan and all.
    let report = json_of(&post("g-plan-old", t - Duration::hours(1), 10.0).await);
    assert_eq!(report["accepted"], 1, "{report}");
    assert_eq!(plan().await.version, 2, "an older call's plan undid a newer one");

    // A plan set by a person after the call was made stands.
    let by_cli = milepost_app::success_plans::set_plan(
        s.store.as_ref(),
        &acme,
        plan()
            .await
            .outcomes
            .iter()
            .map(|o| milepost_domain::AgreedOutcome {
                target: 20.0,
                ..o.clone()
            })
            .collect(),
        "maya@vendor.example",
        t + Duration::minutes(40),
    )
    .await
    .unwrap();
    assert_eq!(by_cli.plan().version, 3);
    post("g-plan-4", t + Duration::minutes(30), 15.0).await;
    assert_eq!((plan().await.version, plan().await.outcomes[0].target), (3, 20.0));

    // A new account whose plan has a problem: refused whole, nothing kept.
    let mut traits = new_account_traits("Gamma");
    traits["success_plan"] = plan_of(0.0); // the baseline: no outcome to reach
    let fields = fields_of_refused_group_calls(&s, vec![("g-gamma", "gamma", traits)]).await;
    assert_eq!(fields, ["traits.success_plan[0].target"]);
    let gamma = AccountId::new("gamma");
    assert!(s.store.get_account(&gamma).await.unwrap().is_none());
    assert!(s.store.success_plan(&gamma).await.unwrap().is_none());
}

// Every scenario runs on the in-memory store (one test each) and, in one
// test sharing a moto server, on the DynamoDB store: the handler's contract
// holds on the store production uses.

milepost_local::scenarios! {
    function: "IngestFunction",
    in_memory: crate::webhook::in_memory,
    on_dynamodb: crate::webhook::on_dynamodb,
    asks_at_least: ["dynamodb:PutItem"],
    scenarios: [
        a_signed_event_is_accepted_and_applied,
        unsigned_or_badly_signed_requests_get_401_and_store_nothing,
        a_signature_older_than_five_minutes_is_refused,
        rotated_keys_and_several_signatures_are_accepted,
        segment_signatures_are_checked_against_the_body,
        a_replayed_request_changes_nothing_a_second_time,
        concurrent_deliveries_apply_once,
        an_oversized_body_gets_413_before_anything_else,
        a_wrong_content_type_gets_415,
        malformed_json_gets_400_naming_the_body,
        a_request_with_no_valid_event_gets_422_naming_each_field,
        in_a_batch_valid_events_are_applied_and_the_rest_reported,
        other_paths_and_methods_are_refused,
        without_a_configured_secret_unsigned_requests_are_accepted,
        what_can_never_be_stored_is_rejected_per_event_not_retried_forever,
        an_event_too_large_to_park_is_refused_not_parked,
        events_dated_far_ahead_are_rejected_and_odd_signature_times_get_401,
        group_calls_out_of_order_never_overwrite_newer_traits,
        the_same_event_id_in_two_accounts_is_two_events,
        addresses_in_traits_are_parsed_and_lists_or_headers_refused,
        implausible_contract_dates_are_rejected_per_field,
        work_per_request_is_bounded_and_answers_stay_small,
        a_busy_user_in_a_windowed_user_milestone_keeps_its_item_small,
        a_signed_confirmation_reaches_a_manual_milestone_once,
        a_failed_announcement_leaves_nothing_unannounced_for_the_retry,
        a_success_plan_trait_is_kept_as_the_plans_versions,
    ],
}

/// What an event costs on DynamoDB, counted by the adapter: reading the
/// account's state, then for an event a criterion reads one transaction
/// (dedupe record, the milestones it changed) and one write of the
/// activity; an event no criterion reads costs the activity write alone, no
/// transaction; reaching a milestone adds one write that records the
/// announcement after the publish.
#[tokio::test]
async fn on_dynamodb_an_event_no_criterion_reads_takes_two_requests_and_no_transaction() {
    let moto = MotoServer::start();
    let store = Arc::new(DynamoStore::metered(
        aws_sdk_dynamodb::Client::new(&moto.sdk_config().await),
        "requests",
    ));
    store.create_table().await.unwrap();
    let s = setup(store.clone()).await;
    // One time for all: a redelivery is the same event, time included.
    let at = (Utc::now() - Duration::hours(1)).to_rfc3339();
    let deliver = |id: &str, event: &str| {
        let body = json!({"id": id, "account_id": "acme", "event": event,
                          "timestamp": at, "user_id": "u1"})
        .to_string();
        let s = s.clone();
        let store = store.clone();
        async move {
            let (before, transactions) = (store.meter().requests(), store.meter().transactions());
            let resp = handle(&s.services.ingestion(), &s.config, signed(&body)).await;
            assert_eq!(resp.status(), StatusCode::ACCEPTED);
            (
                json_of(&resp),
                store.meter().requests() - before,
                store.meter().transactions() - transactions,
            )
        }
    };
    let (_, progress, transactions) = deliver("r1", "report.shared").await;
    assert_eq!(
        (progress, transactions),
        (3, 1),
        "an event that moves a milestone without reaching it"
    );
    let (_, nothing, transactions) = deliver("v1", "page.viewed").await;
    assert_eq!(
        (nothing, transactions),
        (2, 0),
        "an event no milestone listens to: the state read and the activity written"
    );
    let (report, again, transactions) = deliver("v1", "page.viewed").await;
    assert_eq!(
        (again, transactions, report["accepted"].clone()),
        (1, 0, json!(1)),
        "its redelivery changes nothing: read, nothing written, accepted"
    );
    let (_, reached, _) = deliver("w1", "workflow.completed").await;
    assert_eq!(reached, 4, "an event that reaches a milestone");
    assert_eq!(s.events.events().len(), 1, "announced");
    let (report, replay, _) = deliver("w1", "workflow.completed").await;
    assert_eq!(report["duplicates"], 1);
    assert_eq!(replay, 2, "a duplicate is found by the transaction's dedupe condition");
    assert_eq!(s.events.events().len(), 1, "and not announced again");
    let reports = s
        .store
        .get_milestone(&AccountId::new("acme"), "reports_shared")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reports.status(), MilestoneStatus::Pending);
    assert_eq!(reports.version, 2, "created, then one event applied");
}
