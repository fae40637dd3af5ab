//! A delivery whose write went through but whose answer was lost (so the
//! sender is told to retry) leaves no announcement claim behind: the
//! sender's redelivery announces what it reached, once. Found by the
//! default chaos run: the claim, written with the events, stayed live for
//! its 15-minute lease under the failed delivery's id, the redelivery took
//! it for another delivery's and answered 202, and the milestone was never
//! announced (nor its task closed) while nothing else touched the account.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use milepost_app::ingest::wire::parse_body;
use milepost_app::ports::{AccountStore, MapStore, MilestoneStore};
use milepost_app::Services;
use milepost_aws::DynamoStore;
use milepost_domain::AccountId;
use milepost_embedded::fixtures::escalation::{account, ESCALATION_MAP};
use milepost_embedded::{LocalWorkflowRunner, MemoryMailer, RecordingPublisher, VirtualClock};
use milepost_local::{Fault, FaultPlan, FaultProxy, MotoServer};
use milepost_maps::load_map;
use serde_json::json;

#[tokio::test]
async fn a_redelivery_announces_what_a_failed_delivery_wrote() {
    let moto = MotoServer::start();
    let direct = seeded(&moto, "failed-delivery").await;

    // The transaction that reaches the milestone is applied, its answer lost,
    // and the client does not retry: the delivery fails after its write.
    let plan = FaultPlan::new(3).first("dynamodb:TransactWriteItems", Fault::LostResponse, 1);
    let proxy = FaultProxy::start(&moto.endpoint, plan).await;
    let events = Arc::new(RecordingPublisher::default());
    let services = through(&proxy, "failed-delivery", events.clone()).await;
    assert!(
        services.ingestion().ingest(delivery()).await.is_err(),
        "the lost answer fails the delivery: the sender is asked to retry"
    );
    let written = first_workflow(&direct).await;
    assert!(written.status().is_reached(), "the write went through");
    assert_eq!(written.announcing(), None, "and its claim was given back");
    assert_eq!(events.count("MilestoneAchieved"), 0);

    // The sender's redelivery: all duplicates, and the announcement made.
    let report = services.ingestion().ingest(delivery()).await.unwrap();
    assert_eq!(report.duplicates, 2);
    assert_eq!(events.count("MilestoneAchieved"), 1);
    let m = first_workflow(&direct).await;
    assert!(m.announced_reached() && m.announcing().is_none());
}

/// The reached event went out but the write recording it failed (a passing
/// fault): the delivery records it on what is stored instead of leaving the
/// claim to lapse, after which a later touch would announce it a second
/// time. Found by the chaos run (`chaos_ingest`), one run in a few.
#[tokio::test]
async fn a_published_announcement_is_recorded_through_a_passing_fault() {
    let moto = MotoServer::start();
    let direct = seeded(&moto, "settle-fault").await;
    // The events and the claim go in one transaction; the first single-item
    // write after it is the one recording the announcement.
    let plan = FaultPlan::new(5).first("dynamodb:PutItem", Fault::Http500, 1);
    let proxy = FaultProxy::start(&moto.endpoint, plan).await;
    let events = Arc::new(RecordingPublisher::default());
    let services = through(&proxy, "settle-fault", events.clone()).await;
    let report = services.ingestion().ingest(delivery()).await.unwrap();
    assert_eq!(report.accepted, 2);
    assert_eq!(proxy.counts().total_faults(), 1, "the recording write failed once");
    assert_eq!(events.count("MilestoneAchieved"), 1);
    let m = first_workflow(&direct).await;
    assert!(
        m.announced_reached() && m.announcing().is_none(),
        "recorded as announced, the claim given back: no second announcement later"
    );
}

/// `a1`'s `first_workflow` as stored, read without faults.
async fn first_workflow(direct: &DynamoStore) -> milepost_domain::TrackedMilestone {
    direct
        .get_milestone(&AccountId::new("a1"), "first_workflow")
        .await
        .unwrap()
        .unwrap()
}

/// A table named `table` on `moto` with the escalation map, account `a1` and
/// its milestones, read and written directly (no faults).
async fn seeded(moto: &MotoServer, table: &str) -> Arc<DynamoStore> {
    let direct = Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&moto.sdk_config().await),
        table,
    ));
    direct.create_table().await.unwrap();
    let map = load_map("m.yaml", ESCALATION_MAP).unwrap();
    direct.put_map(&map).await.unwrap();
    direct.put_account(&account("a1")).await.unwrap();
    for def in &map.milestones {
        let tracked = milepost_domain::TrackedMilestone::new(&account("a1"), &map, def);
        direct.create_milestone(&tracked).await.unwrap();
    }
    direct
}

/// The use cases on `table` through `proxy`, the SDK not retrying (the
/// use cases' own handling is under test), publishing to `events`.
async fn through(proxy: &FaultProxy, table: &str, events: Arc<RecordingPublisher>) -> Services {
    let faulty = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&proxy.endpoint)
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "faulty",
        ))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    Services {
        store: Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&faulty), table)),
        mailer: Arc::new(MemoryMailer::default()),
        events,
        workflows: Arc::new(LocalWorkflowRunner::new()),
        clock: Arc::new(VirtualClock::new(Utc.with_ymd_and_hms(2026, 3, 4, 12, 0, 0).unwrap())),
        config: milepost_embedded::fixtures::simulation_config(),
        links: None,
    }
}

/// Two events that reach a1's `first_workflow`.
fn delivery() -> Vec<Result<milepost_app::ingest::wire::Incoming, milepost_domain::FieldError>> {
    let body = json!([
        {"id": "w1", "account_id": "a1", "event": "workflow.completed", "timestamp": "2026-03-03T09:00:00Z", "user_id": "u1"},
        {"id": "w2", "account_id": "a1", "event": "workflow.completed", "timestamp": "2026-03-03T10:00:00Z", "user_id": "u1"},
    ]);
    parse_body(&serde_json::to_vec(&body).unwrap()).unwrap()
}
