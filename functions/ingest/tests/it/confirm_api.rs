//! The confirm API (`POST /v1/milestones/confirm`) as hard as the webhook
//! (issue 31): every field bounded and checked before anything is read or
//! written, Standard Webhooks signatures only, and a confirmation the store
//! took but the bus did not completed by the sender's retry, with the first
//! confirmer's words, once. On the embedded store and on DynamoDB (moto).

use crate::common;

use std::sync::Arc;

use chrono::{Duration, Utc};
use lambda_http::http::StatusCode;
use lambda_http::Request;
use milepost_app::ports::Store;
use milepost_domain::{AccountId, MilestoneStatus};
use milepost_ingest::{handle, IngestConfig, WebhookSecrets};
use milepost_local::MotoServer;
use serde_json::{json, Value};

use common::{assert_problem, json_of, segment_signed, signed_with, Setup, MAP, SECRET, SEGMENT_SECRET};

/// Acme, ten days into its contract, with its manual milestone pending.
async fn in_memory() -> Arc<Setup> {
    setup(common::in_memory_store()).await
}

async fn on_dynamodb(moto: &MotoServer, table: &str) -> Arc<Setup> {
    common::recorded(moto, table, setup).await
}

async fn setup(store: Arc<dyn Store>) -> Arc<Setup> {
    let secrets = WebhookSecrets::new(&[SECRET], &[SEGMENT_SECRET]).unwrap();
    let s = Setup::new(store, Some(MAP), IngestConfig::new(secrets)).await;
    let start = Utc::now().date_naive() - Duration::days(10);
    s.services
        .ingestion()
        .upsert_account(&milepost_embedded::fixtures::account("acme", start))
        .await
        .unwrap();
    s
}

fn at_confirm(mut request: Request) -> Request {
    *request.uri_mut() = "https://hooks.example/v1/milestones/confirm".parse().unwrap();
    request
}

/// A confirmation signed with Standard Webhooks under a message id of its own.
fn confirmation(body: &Value, msg_id: &str) -> Request {
    at_confirm(signed_with(SECRET, &body.to_string(), msg_id, 0))
}

fn body(fields: Value) -> Value {
    let mut body = json!({"account_id": "acme", "milestone_id": "sponsor_named",
                          "by": "maya@vendor.example", "by_name": "Maya Chen", "note": "EBR held"});
    for (k, v) in fields.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

/// The milestone, its log and the bus, as a confirmation would change them.
async fn state(s: &Setup) -> (MilestoneStatus, u64, usize, usize) {
    let acme = AccountId::new("acme");
    let m = s.store.get_milestone(&acme, "sponsor_named").await.unwrap().unwrap();
    let log = s.store.log_of(&acme).await.unwrap().len();
    (m.status(), m.version, log, s.events.events().len())
}

async fn every_field_is_bounded_and_a_refusal_stores_nothing(s: Arc<Setup>) {
    let ingestion = s.services.ingestion();
    let before = state(&s).await;
    let huge = "M".repeat(300 * 1024);
    let start = Utc::now().date_naive() - Duration::days(10);
    let cases = [
        (body(json!({"by_name": huge})), "by_name"),
        (body(json!({"by_name": "Maya\r\nconfirmed by: the CEO"})), "by_name"),
        (body(json!({"by_name": "<img src=x onerror=alert(1)>"})), "by_name"),
        (body(json!({"note": "n".repeat(5000)})), "note"),
        (body(json!({"account_id": "a".repeat(3000)})), "account_id"),
        (body(json!({"milestone_id": "m".repeat(3000)})), "milestone_id"),
        (body(json!({"by": format!("{}@vendor.example", "x".repeat(300))})), "by"),
        (body(json!({"at": "0001-01-01T00:00:00Z"})), "at"),
        (
            body(json!({"at": format!("{}T00:00:00Z", start - Duration::days(1))})),
            "at",
        ),
        (body(json!({"at": (Utc::now() + Duration::days(2)).to_rfc3339()})), "at"),
    ];
    for (i, (request, field)) in cases.iter().enumerate() {
        let resp = handle(&ingestion, &s.config, confirmation(request, &format!("msg_{i}"))).await;
        assert_problem(&resp, StatusCode::UNPROCESSABLE_ENTITY, field);
        assert_eq!(state(&s).await, before, "a refused {field} changed something");
    }
}

async fn only_a_timestamped_signature_confirms(s: Arc<Setup>) {
    let ingestion = s.services.ingestion();
    let before = state(&s).await;
    // Segment's signature carries no timestamp: a captured request would replay for ever.
    let by_segment = at_confirm(segment_signed(SEGMENT_SECRET, &body(json!({})).to_string()));
    let resp = handle(&ingestion, &s.config, by_segment).await;
    let problem = assert_problem(&resp, StatusCode::UNAUTHORIZED, "webhook-signature");
    assert!(
        problem["detail"].as_str().unwrap().contains("Standard Webhooks"),
        "{problem}"
    );
    let stale = at_confirm(signed_with(SECRET, &body(json!({})).to_string(), "msg_old", 600));
    assert_eq!(
        handle(&ingestion, &s.config, stale).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(state(&s).await, before);
    let resp = handle(&ingestion, &s.config, confirmation(&body(json!({})), "msg_ok")).await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(resp.body().as_ref())
    );
}

async fn a_confirmation_the_bus_missed_is_completed_by_its_retry(s: Arc<Setup>) {
    let ingestion = s.services.ingestion();
    let acme = AccountId::new("acme");
    s.events.fail_next(1);
    let first = body(json!({}));
    let resp = handle(&ingestion, &s.config, confirmation(&first, "msg_1")).await;
    assert_eq!(
        resp.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "the sender is asked to retry"
    );
    let m = s.store.get_milestone(&acme, "sponsor_named").await.unwrap().unwrap();
    assert_eq!(m.status(), MilestoneStatus::Achieved, "the store took it");
    assert!(s.events.events().is_empty(), "the bus did not");

    // The sender's retry (another attempt, perhaps another name): the first confirmation is completed.
    let retry = body(json!({"by_name": "Someone Else", "note": "retried"}));
    let resp = handle(&ingestion, &s.config, confirmation(&retry, "msg_2")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(json_of(&resp)["status"], "already_reached");
    let kinds: Vec<_> = s.events.events().iter().map(|e| e.detail_type()).collect();
    assert_eq!(kinds, ["ManualMilestoneConfirmed", "MilestoneAchieved"]);
    let log = s.store.log_of(&acme).await.unwrap();
    let confirmed: Vec<_> = log.iter().filter(|e| e.detail.contains("confirmed by")).collect();
    assert_eq!(confirmed.len(), 1, "{log:#?}");
    assert_eq!(
        confirmed[0].detail,
        "Executive sponsor identified confirmed by Maya Chen: EBR held"
    );

    // And again: nothing more.
    let resp = handle(&ingestion, &s.config, confirmation(&retry, "msg_3")).await;
    assert_eq!(json_of(&resp)["status"], "already_reached");
    assert_eq!(s.events.events().len(), 2);
    assert_eq!(s.store.log_of(&acme).await.unwrap().len(), log.len());
}

milepost_local::scenarios! {
    function: "IngestFunction",
    in_memory: crate::confirm_api::in_memory,
    on_dynamodb: crate::confirm_api::on_dynamodb,
    asks_at_least: [],
    scenarios: [
        every_field_is_bounded_and_a_refusal_stores_nothing,
        only_a_timestamped_signature_confirms,
        a_confirmation_the_bus_missed_is_completed_by_its_retry,
    ],
}
