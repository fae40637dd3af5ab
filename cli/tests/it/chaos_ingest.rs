//! Issue 19, the ingest part of the chaos run: the demo generator's stream
//! for a few accounts, shuffled within the allowed lateness and partly
//! redelivered, sent in Segment batches through the ingest use case onto
//! DynamoDB behind the fault proxy (throttling, 500s, 503s, resets and lost
//! responses), by a sender that retries a failed request as Segment does.
//! The end state must equal a fault-free run's of the same seed (on the
//! embedded store, which the store contract holds to DynamoDB's semantics): every
//! milestone, every account's activity, and each reached milestone
//! announced exactly once. `MILEPOST_CHAOS_SEED` picks another seed,
//! `MILEPOST_CHAOS_INGEST_DAYS` a longer stream (`make chaos DAYS=`).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Duration;
use milepost_app::ingest::wire::parse_body;
use milepost_app::ports::Store;
use milepost_app::{Config, Services};
use milepost_aws::DynamoStore;
use milepost_cli::demo::generator::{plan_accounts, segment_batch, sim_start, AccountPlan};
use milepost_domain::{AccountActivity, DomainEvent, ProductEvent, TrackedMilestone};
use milepost_embedded::{LocalWorkflowRunner, MemoryMailer, RecordingPublisher, VirtualClock};
use milepost_local::{Fault, FaultPlan, FaultProxy, MotoServer};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const ACCOUNTS: usize = 8;
/// Days of the stream in `make test`; `make chaos` sends its `DAYS` (60 by
/// default) through `MILEPOST_CHAOS_INGEST_DAYS`.
const DAYS: i64 = 30;
const BATCH: usize = 10;
/// How often a sender tries one request before it gives up (Segment retries for hours).
const SENDER_ATTEMPTS: usize = 30;

fn days() -> i64 {
    std::env::var("MILEPOST_CHAOS_INGEST_DAYS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DAYS)
        .max(1)
}

fn seed() -> u64 {
    std::env::var("MILEPOST_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(19)
}

/// The stream: in time order, then each event moved up to a few places and
/// one in ten sent twice, as a retrying sender would.
fn stream(plans: &[AccountPlan], rng: &mut ChaCha8Rng) -> Vec<ProductEvent> {
    let mut events = Vec::new();
    for day in 0..days() {
        for p in plans {
            p.events_on(day, 1, &mut events);
        }
    }
    events.sort_by_key(|e| e.timestamp);
    for chunk in events.chunks_mut(8) {
        chunk.shuffle(rng);
    }
    let mut delivered = Vec::new();
    for e in events {
        if rng.random_bool(0.1) {
            delivered.push(e.clone());
        }
        delivered.push(e);
    }
    delivered
}

struct Outcome {
    milestones: BTreeMap<String, Vec<TrackedMilestone>>,
    activity: BTreeMap<String, AccountActivity>,
    announcements: BTreeMap<String, usize>,
    retries: usize,
    faults: BTreeMap<Fault, u64>,
}

/// Runs the stream on DynamoDB (moto) behind the proxy with `plan`, or,
/// without a plan, on the embedded store: the fault-free run to compare with.
async fn run(plans: &[AccountPlan], events: &[ProductEvent], plan: Option<FaultPlan>) -> Outcome {
    // `store` takes the faults; `direct`, the maps before and the reads after, does not.
    let (store, direct, proxy, _moto): (Arc<dyn Store>, Arc<dyn Store>, _, _) = match plan {
        None => {
            let store = Arc::new(milepost_embedded::InMemoryStore::new());
            (store.clone(), store, None, None)
        }
        Some(plan) => {
            let moto = MotoServer::start();
            let proxy = FaultProxy::start(&moto.endpoint, plan).await;
            let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .endpoint_url(&proxy.endpoint)
                .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                    "test", "test", None, None, "chaos",
                ))
                .retry_config(
                    aws_config::retry::RetryConfig::standard()
                        .with_max_attempts(3)
                        .with_max_backoff(std::time::Duration::from_millis(20)),
                )
                .load()
                .await;
            let direct = DynamoStore::new(aws_sdk_dynamodb::Client::new(&moto.sdk_config().await), "chaos");
            direct.create_table().await.unwrap();
            let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), "chaos"));
            (store, Arc::new(direct), Some(proxy), Some(moto))
        }
    };
    for m in milepost_cli::example_maps::example_maps() {
        direct.put_map(&m).await.unwrap();
    }
    let bus = Arc::new(RecordingPublisher::default());
    let services = Services {
        store: store.clone(),
        mailer: Arc::new(MemoryMailer::default()),
        events: bus.clone(),
        workflows: Arc::new(LocalWorkflowRunner::new()),
        clock: Arc::new(VirtualClock::new(sim_start() + Duration::days(DAYS))),
        config: Config::default(),
        links: Some(milepost_embedded::fixtures::links()),
    };
    for p in plans {
        // Accounts through the faults too: a group call is retried like any request.
        let mut tries = 0;
        while services.ingestion().upsert_account(&p.account).await.is_err() {
            tries += 1;
            assert!(tries < SENDER_ATTEMPTS, "the account never went in");
        }
    }
    let mut retries = 0;
    for batch in events.chunks(BATCH) {
        let body = segment_batch(batch);
        let mut attempt = 0;
        loop {
            match services.ingestion().ingest(parse_body(&body).unwrap()).await {
                Ok(report) => {
                    assert_eq!(report.rejected_count, 0, "{report:?}");
                    break;
                }
                Err(e) => {
                    attempt += 1;
                    retries += 1;
                    assert!(attempt < SENDER_ATTEMPTS, "a request failed {attempt} times: {e}");
                }
            }
        }
    }
    let mut outcome = Outcome {
        milestones: BTreeMap::new(),
        activity: BTreeMap::new(),
        announcements: BTreeMap::new(),
        retries,
        faults: proxy.as_ref().map(|p| p.counts().faults).unwrap_or_default(),
    };
    for p in plans {
        let id = p.account.id.to_string();
        let mut milestones = direct.milestones_of(&p.account.id).await.unwrap();
        for m in &mut milestones {
            m.version = 0; // how many writes it took is not state
        }
        milestones.sort_by(|a, b| a.milestone_id().cmp(b.milestone_id()));
        outcome.milestones.insert(id.clone(), milestones);
        outcome
            .activity
            .insert(id, direct.activity(&p.account.id).await.unwrap());
    }
    for event in bus.events() {
        if let DomainEvent::MilestoneAchieved {
            account_id,
            milestone_id,
            ..
        } = event
        {
            *outcome
                .announcements
                .entry(format!("{account_id}/{milestone_id}"))
                .or_default() += 1;
        }
    }
    outcome
}

/// Seed 19 found a reached milestone left claimed and never announced: a
/// claim whose write was made but whose answer was lost was read back, on
/// the retry, as another writer's live claim, so nobody published it until
/// the 15-minute lease ran out (claims now carry their claimant). moto
/// also ignores TransactWriteItems' ClientRequestToken, so the SDK's retry
/// of a lost transaction fails its conditions where DynamoDB would answer
/// success: the use case's own retry is what this exercises.
#[tokio::test]
async fn ingest_under_aws_faults_ends_where_a_fault_free_run_does() {
    let seed = seed();
    let maps = milepost_cli::example_maps::example_maps();
    let plans = plan_accounts(ACCOUNTS, seed, &maps);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let events = stream(&plans, &mut rng);
    let calm = run(&plans, &events, None).await;
    let faults = FaultPlan::new(seed)
        .with("dynamodb:*", Fault::Throttling, 0.06)
        .with("dynamodb:*", Fault::Http500, 0.04)
        .with("dynamodb:*", Fault::Http503, 0.04)
        .with("dynamodb:*", Fault::ConnectionReset, 0.03)
        .with("dynamodb:*", Fault::LostResponse, 0.05);
    let stormy = run(&plans, &events, Some(faults)).await;
    println!(
        "chaos ingest, seed {seed}: {} events in {} requests; faults {:?}; sender retries {}",
        events.len(),
        events.len().div_ceil(BATCH),
        stormy.faults,
        stormy.retries
    );
    let kinds = stormy.faults.len();
    let injected: u64 = stormy.faults.values().sum();
    assert!(
        kinds >= 4 && injected >= 50,
        "too few faults to mean anything: {:?}",
        stormy.faults
    );
    assert!(
        stormy.faults.contains_key(&Fault::LostResponse),
        "no lost response: {:?}",
        stormy.faults
    );
    for (account, milestones) in &calm.milestones {
        assert_eq!(&stormy.milestones[account], milestones, "{account}'s milestones differ");
        assert_eq!(
            stormy.activity[account], calm.activity[account],
            "{account}'s activity differs"
        );
    }
    assert!(!calm.announcements.is_empty(), "the stream reaches milestones");
    assert!(calm.announcements.values().all(|n| *n == 1), "{:?}", calm.announcements);
    assert_eq!(
        stormy.announcements, calm.announcements,
        "announcements lost or doubled"
    );
}
