//! Issue 19's fourth suspect: overlapping Segment `group` calls for one
//! account under real concurrency (`cargo lambda watch` serialises
//! requests, so the webhook's parallel test never overlapped them). Here
//! sixteen deliveries, each with its own DynamoDB client as separate Lambdas
//! have, race on a multi-threaded runtime against moto, after events of the
//! account were parked. The newest call's traits must win, the milestones
//! be created once, and the parked events applied once.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use milepost_app::ingest::wire::parse_body;
use milepost_app::ports::{AccountStore, ActivityStore, MapStore, MilestoneStore, ParkingStore};
use milepost_app::Services;
use milepost_aws::DynamoStore;
use milepost_domain::AccountId;
use milepost_embedded::fixtures::escalation::ESCALATION_MAP;
use milepost_embedded::{LocalWorkflowRunner, MemoryMailer, RecordingPublisher, VirtualClock};
use milepost_local::MotoServer;
use milepost_maps::load_map;
use serde_json::json;

const CALLS: usize = 16;

fn services(store: Arc<DynamoStore>) -> Services {
    Services {
        store,
        mailer: Arc::new(MemoryMailer::default()),
        events: Arc::new(RecordingPublisher::default()),
        workflows: Arc::new(LocalWorkflowRunner::new()),
        clock: Arc::new(VirtualClock::new(Utc.with_ymd_and_hms(2026, 3, 4, 12, 0, 0).unwrap())),
        config: milepost_embedded::fixtures::simulation_config(),
        links: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_group_calls_for_one_account_end_with_the_newest_and_apply_parked_events_once() {
    let moto = MotoServer::start();
    let sdk = moto.sdk_config().await;
    let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), "groups"));
    store.create_table().await.unwrap();
    store
        .put_map(&load_map("m.yaml", ESCALATION_MAP).unwrap())
        .await
        .unwrap();
    // Three events of the account arrive before it does: parked.
    let early = json!([
        {"type": "track", "event": "workflow.completed", "userId": "u1", "messageId": "t1",
         "timestamp": "2026-03-03T09:00:00Z", "context": {"groupId": "acme"}},
        {"type": "track", "event": "workflow.completed", "userId": "u2", "messageId": "t2",
         "timestamp": "2026-03-03T10:00:00Z", "context": {"groupId": "acme"}},
        {"type": "track", "event": "user.active", "userId": "u3", "messageId": "t3",
         "timestamp": "2026-03-03T11:00:00Z", "context": {"groupId": "acme"}},
    ]);
    let parked = services(store.clone())
        .ingestion()
        .ingest(parse_body(&serde_json::to_vec(&early).unwrap()).unwrap())
        .await
        .unwrap();
    assert_eq!(parked.accepted, 3, "{parked:?}");
    assert_eq!(store.parked_for(&AccountId::new("acme")).await.unwrap().len(), 3);

    let start = Arc::new(tokio::sync::Barrier::new(CALLS));
    let base = Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0).unwrap();
    let mut deliveries = Vec::new();
    for i in 0..CALLS {
        let sdk = sdk.clone();
        let start = start.clone();
        deliveries.push(tokio::spawn(async move {
            // A Lambda of its own: its own client, its own connections.
            let store = Arc::new(DynamoStore::metered(aws_sdk_dynamodb::Client::new(&sdk), "groups"));
            let ingestion = services(store.clone()).ingestion();
            let at = base + Duration::minutes(i as i64);
            let body = json!([{"type": "group", "groupId": "acme", "messageId": format!("g{i}"),
                "timestamp": at.to_rfc3339(),
                "traits": {"name": format!("Acme {i}"), "plan": "enterprise", "seats": 30, "arr": 10_000 + i,
                           "contract_start": "2026-03-02", "admin_email": "ana@acme.example",
                           "csm_email": "maya@vendor.example"}}]);
            let body = serde_json::to_vec(&body).unwrap();
            start.wait().await;
            // A 5xx is resent, as Segment does.
            let mut resent = 0;
            loop {
                match ingestion.ingest(parse_body(&body).unwrap()).await {
                    Ok(report) => {
                        assert!(report.rejected.is_empty(), "{report:?}");
                        return (resent, store.meter().requests());
                    }
                    Err(_) => resent += 1,
                }
                assert!(resent < 10, "call {i} kept failing");
            }
        }));
    }
    let (mut resent, mut requests) = (0, Vec::new());
    for d in deliveries {
        let (r, n) = d.await.unwrap();
        resent += r;
        requests.push(n);
    }
    requests.sort();
    println!(
        "{CALLS} overlapping group calls: {resent} answered 5xx and were resent; DynamoDB requests per call {requests:?}"
    );
    // Calls in timestamp order, one after another, would each cost the same:
    // some found newer traits stored, or lost a write race and read again.
    assert_ne!(requests.first(), requests.last(), "the calls did not overlap");

    let id = AccountId::new("acme");
    let account = store.get_account(&id).await.unwrap().unwrap();
    let newest = base + Duration::minutes(CALLS as i64 - 1);
    assert_eq!(
        (account.name.as_str(), account.arr, account.traits_at),
        (
            format!("Acme {}", CALLS - 1).as_str(),
            10_000 + CALLS as u64 - 1,
            Some(newest)
        ),
        "the newest call's traits won, whatever order they landed in"
    );
    let milestones = store.milestones_of(&id).await.unwrap();
    assert_eq!(milestones.len(), 3, "each milestone created once");
    let first = milestones
        .iter()
        .find(|m| m.milestone_id() == "first_workflow")
        .unwrap();
    assert!(
        first.status().is_reached(),
        "the two parked workflows counted: {:?}",
        first.status()
    );
    assert!(store.parked_for(&id).await.unwrap().is_empty(), "nothing left parked");
    let activity = store.activity(&id).await.unwrap();
    assert_eq!(activity.recent.len(), 3, "each parked event applied once");
}
