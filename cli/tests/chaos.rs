//! Issue 19: the chaos run of the whole pipeline. The demo generator's
//! customers send their events (shuffled, one in ten twice) in signed
//! Segment batches to the ingest function's handler, resending on a 5xx as
//! Segment does; two sweep functions (the sweep, the held-back lists, the
//! heads-ups, as the sweep Lambda runs them) run at once every day; and the
//! playbook steps run as the state machine's Retry and Catch say
//! (`LocalWorkflowRunner`, for the executions Step Functions holds), all on
//! the AWS adapters, with DynamoDB, SES, EventBridge and Step
//! Functions behind the fault proxy: throttling, 500s, 503s, resets, slow
//! answers and lost responses. The same seed then runs on the embedded
//! adapters without a fault, and the two must agree: every milestone, task
//! and activity, one execution per miss, every email at most once, none
//! missing but those SES was handed without an answer.
//!
//! `MILEPOST_CHAOS_SEED`, `MILEPOST_CHAOS_ROUNDS`, `MILEPOST_CHAOS_ACCOUNTS`
//! and `MILEPOST_CHAOS_DAYS` (`make chaos SEED= ROUNDS= ACCOUNTS= DAYS=`)
//! pick the seed, how many seeds in a row, the customers in each and the
//! days of events; the report
//! goes to `target/chaos/report.json`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::Duration;
use milepost_app::ingest::wire::parse_body;
use milepost_app::ports::{ActivityStore, EscalationLog, MapStore, MilestoneStore, TaskStore, WorkflowStarter};
use milepost_app::Services;
use milepost_aws::{DynamoStore, EventBridgePublisher, SesMailer, StepFunctionsWorkflows};
use milepost_cli::demo::generator::{plan_accounts, segment_batch, sim_start, AccountPlan};
use milepost_domain::{CsmTask, EscalationRequest, ProductEvent, Timestamp};
use milepost_embedded::runner::RunReport;
use milepost_embedded::{InMemoryStore, LocalWorkflowRunner, MemoryMailer, RecordingPublisher, VirtualClock};
use milepost_local::{Fault, FaultPlan, FaultProxy, MotoServer};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

/// Customers in one round: five in `make test`, `MILEPOST_CHAOS_ACCOUNTS`
/// (`make chaos ACCOUNTS=`, 30 by default there) for longer runs.
const ACCOUNTS: u64 = 5;
/// Days of events and sweeps in `make test` (`MILEPOST_CHAOS_DAYS`,
/// `make chaos DAYS=`, 60 there), then days in which only the escalations
/// already started run on, to their end. Over 30 days one miss escalates:
/// too thin to judge the playbook under faults.
const DAYS: u64 = 45;
const TAIL_DAYS: i64 = 12;
const BATCH: usize = 10;
/// Hours between the sweeps (in production 15 minutes; here once a day, at
/// moto's pace: each sweep Lambda reads 16 index shards).
const SWEEP_EVERY_HOURS: i64 = 24;
/// Hours between the settling runs while events come.
const SETTLE_EVERY_HOURS: i64 = 4;
/// Hours the schedule goes on settling after the run's events and steps end.
const SETTLE_HOURS_AFTER: i64 = 6;

/// How often a sender tries one request before it gives up (Segment retries for hours).
const SENDER_ATTEMPTS: usize = 30;
const TABLE: &str = "chaos";
const SEGMENT_SECRET: &str = "chaos-segment-shared-secret";

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn days() -> i64 {
    env_number("MILEPOST_CHAOS_DAYS", DAYS).max(1) as i64
}

/// The faults, per service: every kind on DynamoDB; on SES, EventBridge and
/// Step Functions the throttling and server errors they answer with, and
/// the answers that never come.
fn fault_plan(seed: u64) -> FaultPlan {
    FaultPlan::new(seed)
        .slow_for(std::time::Duration::from_millis(1200))
        .with("dynamodb:*", Fault::Throttling, 0.03)
        .with("dynamodb:*", Fault::Http500, 0.015)
        .with("dynamodb:*", Fault::Http503, 0.015)
        .with("dynamodb:*", Fault::ConnectionReset, 0.01)
        .with("dynamodb:*", Fault::LostResponse, 0.03)
        .with("dynamodb:*", Fault::Slow, 0.001)
        .with("sesv2:*", Fault::Throttling, 0.15)
        .with("sesv2:*", Fault::Http500, 0.05)
        .with("sesv2:*", Fault::Http503, 0.05)
        .with("sesv2:*", Fault::ConnectionReset, 0.03)
        .with("sesv2:*", Fault::LostResponse, 0.04)
        .with("events:*", Fault::Throttling, 0.05)
        .with("events:*", Fault::Http500, 0.05)
        .with("events:*", Fault::LostResponse, 0.04)
        .with("states:*", Fault::Throttling, 0.05)
        .with("states:*", Fault::Http503, 0.05)
        .with("states:*", Fault::LostResponse, 0.05)
        .record("sesv2:SendEmail")
        .record("events:PutEvents")
}

/// What the senders deliver at each sweep time: Segment batch bodies, the
/// events since the last delivery shuffled and one in ten sent twice.
fn deliveries(plans: &[AccountPlan], seed: u64) -> (BTreeMap<Timestamp, Vec<Vec<u8>>>, usize) {
    let mut events = Vec::new();
    for day in 0..days() {
        for p in plans {
            p.events_on(day, seed, &mut events);
        }
    }
    events.sort_by_key(|e| e.timestamp);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = BTreeMap::new();
    let mut sent = 0;
    let mut rest: &[ProductEvent] = &events;
    let mut at = sim_start();
    while !rest.is_empty() {
        at += Duration::hours(SWEEP_EVERY_HOURS);
        let due = rest.partition_point(|e| e.timestamp < at);
        let mut now: Vec<ProductEvent> = Vec::new();
        for e in &rest[..due] {
            if rng.random_bool(0.1) {
                now.push(e.clone());
            }
            now.push(e.clone());
        }
        now.shuffle(&mut rng);
        sent += now.len();
        out.insert(at, now.chunks(BATCH).map(segment_batch).collect());
        rest = &rest[due..];
    }
    (out, sent)
}

/// A POST of `body` to the ingest function, signed as Segment signs it.
fn segment_request(body: &[u8]) -> lambda_http::Request {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(SEGMENT_SECRET.as_bytes()).unwrap();
    mac.update(body);
    let mut request = lambda_http::Request::new(lambda_http::Body::from(body.to_vec()));
    *request.method_mut() = lambda_http::http::Method::POST;
    *request.uri_mut() = "https://hooks.example/v1/events".parse().unwrap();
    let headers = request.headers_mut();
    headers.insert("content-type", "application/json".parse().unwrap());
    headers.insert("x-signature", hex::encode(mac.finalize().into_bytes()).parse().unwrap());
    request
}

/// One pipeline's adapters, and what each run is judged by.
struct Pipeline {
    services: Services,
    runner: Arc<LocalWorkflowRunner>,
    clock: Arc<VirtualClock>,
    /// The executions Step Functions holds, when it is Step Functions.
    sfn: Option<(aws_sdk_sfn::Client, String)>,
    /// SES's event stream: the proxy, whose record of what moto's SES took
    /// is replayed as SES's events, and how many of them were replayed.
    ses: Option<(Arc<FaultProxy>, std::sync::Mutex<usize>)>,
    /// What the sweeps' settling of unknown emails did, summed.
    settled: std::sync::Mutex<milepost_app::settle::SettleReport>,
}

/// SES's events for each email SES took since the last call (the fault
/// proxy's record of the SendEmail requests moto applied), in SES's event
/// format as EventBridge delivers it, handed to the ses-events function,
/// which keeps them as receipts (redelivered on its failure, as Lambda's
/// asynchronous retries do). A stand-in that only replays what SES took.
async fn report_ses_events(p: &Pipeline) {
    let Some((proxy, replayed)) = &p.ses else {
        return;
    };
    let bodies = proxy.applied("sesv2:SendEmail");
    let start = std::mem::replace(&mut *replayed.lock().unwrap(), bodies.len());
    let at = milepost_app::ports::Clock::now(p.clock.as_ref()).to_rfc3339();
    for (i, body) in bodies.iter().enumerate().skip(start) {
        let body: Value = serde_json::from_slice(body).unwrap();
        let tags: serde_json::Map<String, Value> = body["EmailTags"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| (t["Name"].as_str().unwrap().to_string(), json!([t["Value"]])))
            .collect();
        for (event_type, detail_type) in [("Send", "Email Sent"), ("Delivery", "Email Delivered")] {
            let event = json!({
                "version": "0", "id": format!("chaos-{i}-{event_type}"), "detail-type": detail_type,
                "source": "aws.ses", "account": "123456789012", "time": at, "region": "us-east-1",
                "resources": [],
                "detail": {"eventType": event_type, "mail": {
                    "timestamp": at, "messageId": format!("chaos-ses-{i}"), "tags": tags,
                    "destination": body["Destination"]["ToAddresses"],
                }},
            });
            let store: &dyn milepost_app::ports::SendReceipts = p.services.store.as_ref();
            let mut tries = 0;
            while milepost_ses_events::handle(store, &event).await.is_err() {
                tries += 1;
                assert!(tries < SENDER_ATTEMPTS, "SES's event was never kept");
            }
        }
    }
}

/// What a run ended with.
#[derive(Default)]
struct Outcome {
    milestones: BTreeMap<String, Value>,
    activity: BTreeMap<String, Value>,
    tasks: BTreeMap<String, Value>,
    /// Execution names, as many times as each was started.
    executions: BTreeMap<String, usize>,
    /// Emails by `milepost-send` tag, as many times as each was sent.
    emails: BTreeMap<String, usize>,
    /// Tags of the emails still of unknown outcome once settled from SES's events.
    emails_unknown: BTreeSet<String>,
    /// Tags of the emails given up on as designed: sent again `MAX_RESENDS`
    /// times, each time proven never taken, and the last attempt unanswered
    /// too (left unknown, the operator alarmed).
    emails_given_up: BTreeSet<String>,
    /// Tags of the emails SES never took and that were moot when settled (not sent).
    emails_withheld: BTreeSet<String>,
    /// Send ledger records by tag: the key and its state, to name what differs.
    send_states: BTreeMap<String, String>,
    /// Each execution's escalation log, as read at the end: what a failing
    /// round prints of an execution whose email differs.
    logs: BTreeMap<String, Vec<String>>,
    /// Emails settled from SES's events: sent again, or found sent.
    settled: milepost_app::settle::SettleReport,
    /// Bus events whose detail carries no `event_id`.
    bus_without_id: usize,
    /// Bus events by (detail type, detail without its times): the ids they came with.
    bus_ids: BTreeMap<String, BTreeSet<String>>,
    /// Bus events by (detail type, detail without its times), as often as published.
    bus: BTreeMap<String, usize>,
    requests: u64,
    faults: BTreeMap<Fault, u64>,
    sender_retries: usize,
    /// Events in requests the ingest function refused with a 4xx: the sender drops them.
    events_refused: usize,
    sweep_reruns: usize,
    steps: RunReport,
}

/// The state a user reads, without what only says when or how often it was
/// written (versions, claim times and claimants, the instant of a miss).
fn comparable(mut value: Value) -> Value {
    if let Value::Object(map) = &mut value {
        for key in ["version", "announcing", "miss_claim", "missed_at"] {
            map.remove(key);
        }
    }
    value
}

/// A bus event without its times, so two runs' copies compare.
fn bus_key(detail_type: &str, detail: &Value) -> String {
    let mut detail = detail.clone();
    if let Value::Object(map) = &mut detail {
        map.retain(|k, _| !k.ends_with("_at") && k != "event_id");
    }
    format!("{detail_type} {detail}")
}

async fn run(plans: &[AccountPlan], seed: u64, faults: Option<FaultPlan>) -> Outcome {
    let deliveries = deliveries(plans, seed).0;
    let maps = milepost_cli::example_maps::example_maps();
    let config = milepost_embedded::fixtures::simulation_config();
    let clock = Arc::new(VirtualClock::new(sim_start()));
    let runner = Arc::new(LocalWorkflowRunner::new());
    let links = Some(milepost_embedded::fixtures::links());
    let mut outcome = Outcome::default();

    let Some(plan) = faults else {
        // The fault-free run, on the embedded adapters.
        let store = Arc::new(InMemoryStore::new());
        let mailer = Arc::new(MemoryMailer::default());
        let bus = Arc::new(RecordingPublisher::default());
        for m in &maps {
            store.put_map(m).await.unwrap();
        }
        let pipeline = Pipeline {
            services: Services {
                store: store.clone(),
                mailer: mailer.clone(),
                events: bus.clone(),
                workflows: runner.clone(),
                clock: clock.clone(),
                config,
                links,
            },
            runner: runner.clone(),
            clock,
            sfn: None,
            ses: None,
            settled: Default::default(),
        };
        drive(&pipeline, plans, &deliveries, &mut outcome).await;
        for e in runner.executions() {
            *outcome.executions.entry(e.request.execution.clone()).or_default() += 1;
        }
        for m in store.all_milestones() {
            let key = format!("{}/{}", m.account_id(), m.milestone_id());
            outcome
                .milestones
                .insert(key, comparable(serde_json::to_value(&m).unwrap()));
        }
        for t in store.all_tasks() {
            outcome.tasks.insert(t.id().to_owned(), task_state(&t));
        }
        for p in plans {
            let activity = store.activity(&p.account.id).await.unwrap();
            outcome
                .activity
                .insert(p.account.id.to_string(), serde_json::to_value(&activity).unwrap());
        }
        for mail in mailer.sent() {
            let tag = milepost_aws::ses::send_key_tag(&mail.key);
            outcome.send_states.insert(tag.clone(), format!("{}: sent", mail.key));
            *outcome.emails.entry(tag).or_default() += 1;
        }
        for event in bus.events() {
            let detail = serde_json::to_value(&event).unwrap();
            *outcome.bus.entry(bus_key(event.detail_type(), &detail)).or_default() += 1;
        }
        return outcome;
    };

    let moto = MotoServer::start();
    let direct = moto.sdk_config().await;
    let proxy = Arc::new(FaultProxy::start(&moto.endpoint, plan).await);
    let faulty = aws_config::defaults(aws_config::BehaviorVersion::latest())
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
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(std::time::Duration::from_millis(1000))
                .build(),
        )
        .load()
        .await;
    milepost_local::stack::create_local_resources(&direct, TABLE, TABLE)
        .await
        .unwrap();
    let asl = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../infra/statemachine/escalation.asl.json"
    ))
    .unwrap();
    let state_machine = milepost_local::stack::create_local_state_machine(
        &direct,
        "milepost-escalation",
        &milepost_local::stack::local_definition(&asl),
    )
    .await
    .unwrap();
    milepost_local::outbox::verify_sender(&direct, config.sender.email.as_str())
        .await
        .unwrap();
    let direct_store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&direct), TABLE);
    for m in &maps {
        direct_store.put_map(m).await.unwrap();
    }
    let pipeline = Pipeline {
        services: Services {
            store: Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&faulty), TABLE)),
            mailer: Arc::new(SesMailer::new(aws_sdk_sesv2::Client::new(&faulty), None)),
            events: Arc::new(EventBridgePublisher::new(
                aws_sdk_eventbridge::Client::new(&faulty),
                TABLE,
            )),
            workflows: Arc::new(StepFunctionsWorkflows::new(
                aws_sdk_sfn::Client::new(&faulty),
                state_machine.clone(),
            )),
            clock: clock.clone(),
            config,
            links,
        },
        runner: runner.clone(),
        clock,
        sfn: Some((aws_sdk_sfn::Client::new(&direct), state_machine)),
        ses: Some((proxy.clone(), std::sync::Mutex::new(0))),
        settled: Default::default(),
    };
    drive(&pipeline, plans, &deliveries, &mut outcome).await;
    outcome.settled = pipeline.settled.lock().unwrap().clone();

    let counts = proxy.counts();
    if std::env::var_os("MILEPOST_CHAOS_VERBOSE").is_some() {
        eprintln!("requests by operation: {:?}", counts.requests);
    }
    outcome.requests = counts.total_requests();
    outcome.faults = counts.faults;
    for name in executions_on(pipeline.sfn.as_ref().unwrap()).await {
        *outcome.executions.entry(name).or_default() += 1;
    }
    for p in plans {
        let id = &p.account.id;
        for m in direct_store.milestones_of(id).await.unwrap() {
            let key = format!("{}/{}", m.account_id(), m.milestone_id());
            outcome
                .milestones
                .insert(key, comparable(serde_json::to_value(&m).unwrap()));
        }
        let activity = direct_store.activity(id).await.unwrap();
        outcome
            .activity
            .insert(id.to_string(), serde_json::to_value(&activity).unwrap());
    }
    for plan in plans {
        for entry in direct_store.log_of(&plan.account.id).await.unwrap() {
            outcome.logs.entry(entry.execution.clone()).or_default().push(format!(
                "{} {:?}: {}",
                entry.at.format("%m-%d %H:%M"),
                entry.step,
                entry.detail
            ));
        }
    }
    for name in outcome.executions.keys() {
        if let Some(task) = direct_store.get_task(&CsmTask::id_for(name)).await.unwrap() {
            outcome.tasks.insert(task.id().to_owned(), task_state(&task));
        }
    }
    for body in proxy.applied("sesv2:SendEmail") {
        let body: Value = serde_json::from_slice(&body).unwrap();
        let kind = body["EmailTags"]
            .as_array()
            .and_then(|tags| tags.iter().find(|t| t["Name"] == "milepost-kind"))
            .and_then(|t| t["Value"].as_str());
        if kind == Some("stream-probe") {
            // To SES's simulator, to see its events arrive: nobody's email.
            continue;
        }
        let tag = body["EmailTags"]
            .as_array()
            .and_then(|tags| tags.iter().find(|t| t["Name"] == "milepost-send"))
            .and_then(|t| t["Value"].as_str())
            .expect("every email carries its send tag")
            .to_string();
        *outcome.emails.entry(tag).or_default() += 1;
    }
    (outcome.emails_unknown, outcome.emails_given_up, outcome.emails_withheld) =
        unsettled_sends(&aws_sdk_dynamodb::Client::new(&direct), &mut outcome.send_states).await;
    for body in proxy.applied("events:PutEvents") {
        let body: Value = serde_json::from_slice(&body).unwrap();
        for entry in body["Entries"].as_array().unwrap() {
            let detail: Value = serde_json::from_str(entry["Detail"].as_str().unwrap()).unwrap();
            let key = bus_key(entry["DetailType"].as_str().unwrap(), &detail);
            match detail["event_id"].as_str() {
                Some(id) => {
                    outcome.bus_ids.entry(key.clone()).or_default().insert(id.to_string());
                }
                None => outcome.bus_without_id += 1,
            }
            *outcome.bus.entry(key).or_default() += 1;
        }
    }
    outcome
}

fn task_state(t: &CsmTask) -> Value {
    json!({
        "status": t.status(),
        "closed": t.closed().map(|c| c.reason.as_str()),
        "owner_role": t.brief().owner_role,
        "milestone": t.brief().milestone_id,
    })
}

/// Hour by hour: accounts appear; once a day the senders deliver and
/// two sweep Lambdas run at once (again, a little later, while one left
/// milestones failed, as the next scheduled sweep would); every hour the
/// steps that are due run. After `days()`, only the steps.
async fn drive(p: &Pipeline, plans: &[AccountPlan], deliveries: &BTreeMap<Timestamp, Vec<Vec<u8>>>, o: &mut Outcome) {
    let ingestion = p.services.ingestion();
    let webhook = milepost_ingest::IngestConfig::new(
        milepost_ingest::WebhookSecrets::new::<&str>(&[], &[SEGMENT_SECRET]).unwrap(),
    );
    let playbook = p.services.playbook();
    let mut appearances: Vec<(Timestamp, usize)> = plans.iter().map(|p| (p.appears_at, p.index)).collect();
    appearances.sort();
    let mut next_appearance = 0;
    let mut known: BTreeSet<String> = BTreeSet::new();
    for hour in 1..=(days() + TAIL_DAYS) * 24 {
        let now = sim_start() + Duration::hours(hour);
        p.clock.set(now);
        while next_appearance < appearances.len() && appearances[next_appearance].0 <= now {
            let account = &plans[appearances[next_appearance].1].account;
            let mut tries = 0;
            while ingestion.upsert_account(account).await.is_err() {
                tries += 1;
                o.sender_retries += 1;
                assert!(tries < SENDER_ATTEMPTS, "the account never went in");
            }
            next_appearance += 1;
        }
        if hour % SWEEP_EVERY_HOURS == 0 && hour <= days() * 24 {
            for body in deliveries.get(&now).into_iter().flatten() {
                let mut attempt = 0;
                loop {
                    let answer = milepost_ingest::handle(&ingestion, &webhook, segment_request(body)).await;
                    let status = answer.status().as_u16();
                    if status == 202 {
                        let report: Value = serde_json::from_slice(answer.body().as_ref()).unwrap();
                        assert_eq!(report["rejected_count"], 0, "{report}");
                        break;
                    }
                    attempt += 1;
                    if status < 500 || attempt == SENDER_ATTEMPTS {
                        // Segment drops a batch answered 4xx, and gives up at last.
                        o.events_refused += parse_body(body).unwrap().len();
                        eprintln!("a batch was answered {status}: {:?}", answer.body());
                        break;
                    }
                    o.sender_retries += 1;
                }
            }
            let (a, b) = tokio::join!(sweep_lambda(p), sweep_lambda(p));
            let mut clean = a && b;
            for rerun in 1..=3 {
                if clean {
                    break;
                }
                // Past the claims' lease, as the next sweep would be.
                p.clock.set(now + Duration::minutes(16 * rerun));
                o.sweep_reruns += 1;
                clean = sweep_lambda(p).await;
            }
            p.clock.set(now);
            discover_executions(p, &mut known).await;
        }
        let report = p.runner.run_due(&playbook, now).await;
        report_ses_events(p).await;
        // The sweep function runs every few minutes in production, and
        // settles emails of unknown outcome each time: here every few hours
        // (each run is a query of every shard of the unsettled index, at
        // moto's pace), and on after the events stop (the rest of it has
        // nothing new to do).
        if hour % SETTLE_EVERY_HOURS == 0 {
            settle_lambda(p).await;
        }
        o.steps.steps_run += report.steps_run;
        o.steps.retries += report.retries;
        o.steps.failures_caught += report.failures_caught;
        o.steps.deferrals += report.deferrals;
    }
    // The schedule goes on after the run: more hours of the playbook's due
    // steps, SES's events and the sweeps' settling, for what the last hours
    // left unknown (a send adopted late, a resend SES throttled, needs
    // several) or held (a step that met its email claimed by an attempt a
    // fault stopped waits out the claim's lease, then adopts it: without
    // these hours, one claimed in the run's last hour stayed `sending`).
    let end = sim_start() + Duration::hours((days() + TAIL_DAYS) * 24);
    for hour in 1..=SETTLE_HOURS_AFTER {
        let now = end + Duration::hours(hour);
        p.clock.set(now);
        let report = p.runner.run_due(&playbook, now).await;
        o.steps.steps_run += report.steps_run;
        o.steps.deferrals += report.deferrals;
        report_ses_events(p).await;
        settle_lambda(p).await;
    }
    // After its lapse an escalation runs on for weeks (the owner's reminders):
    // every one has ended, or lapsed and waits for its next reminder.
    let running = p
        .runner
        .executions()
        .iter()
        .filter(|e| e.status == milepost_embedded::runner::ExecutionStatus::Running)
        .filter(|e| milepost_domain::Step::ALL.get(e.next_step) != Some(&milepost_domain::Step::AfterLapse))
        .count();
    assert_eq!(running, 0, "every escalation ended, or lapsed, within the run");
}

/// One invocation of the sweep function, as its `main` runs it (the
/// `ScheduledRun`), stopping at the first error (Lambda then retries the
/// invocation). True when it finished with nothing left failed.
async fn sweep_lambda(p: &Pipeline) -> bool {
    let s = &p.services;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    match milepost_sweep::run(&s.scheduled_run(), deadline).await {
        Ok(report) => {
            add_settled(p, &report.unknown_emails);
            report.sweep.failed == 0 && report.heads_ups.failed == 0
        }
        Err(_) => false,
    }
}

/// The settling part of the sweep function, retried as its next run would.
async fn settle_lambda(p: &Pipeline) {
    for _ in 0..SENDER_ATTEMPTS {
        if let Ok(settled) = p.services.settler().run().await {
            add_settled(p, &settled);
            return;
        }
    }
    panic!("the settling never ran through");
}

fn add_settled(p: &Pipeline, settled: &milepost_app::settle::SettleReport) {
    let mut sum = p.settled.lock().unwrap();
    sum.confirmed += settled.confirmed;
    sum.resent += settled.resent;
    sum.withheld += settled.withheld;
    sum.given_up += settled.given_up;
    sum.probes += settled.probes;
}

/// Hands the runner every execution Step Functions holds that it has not
/// seen (on the embedded adapters the runner is the workflow starter).
async fn discover_executions(p: &Pipeline, known: &mut BTreeSet<String>) {
    let Some((sfn, machine)) = &p.sfn else {
        return;
    };
    let mut pages = sfn.list_executions().state_machine_arn(machine).into_paginator().send();
    let mut arns = Vec::new();
    while let Some(page) = pages.next().await {
        for e in page.unwrap().executions {
            if known.insert(e.name) {
                arns.push(e.execution_arn);
            }
        }
    }
    for arn in arns {
        let described = sfn.describe_execution().execution_arn(arn).send().await.unwrap();
        let request: EscalationRequest = serde_json::from_str(described.input().unwrap()).unwrap();
        p.runner.start(&request).await.unwrap();
    }
}

async fn executions_on((sfn, machine): &(aws_sdk_sfn::Client, String)) -> Vec<String> {
    let mut pages = sfn.list_executions().state_machine_arn(machine).into_paginator().send();
    let mut names = Vec::new();
    while let Some(page) = pages.next().await {
        names.extend(page.unwrap().executions.into_iter().map(|e| e.name));
    }
    names
}

/// The tags of the send keys the ledger holds as of unknown outcome (those
/// the settling gave up on after its last resend apart), and of those SES
/// never took that were moot when settled (not sent).
async fn unsettled_sends(
    dynamodb: &aws_sdk_dynamodb::Client,
    states: &mut BTreeMap<String, String>,
) -> (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>) {
    use aws_sdk_dynamodb::types::AttributeValue;
    let mut pages = dynamodb
        .scan()
        .table_name(TABLE)
        .filter_expression("begins_with(pk, :send)")
        .expression_attribute_values(":send", AttributeValue::S("SEND#".into()))
        .into_paginator()
        .items()
        .send();
    let (mut unknown, mut given_up, mut withheld) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    while let Some(item) = pages.next().await {
        let item = item.unwrap();
        let record = item["item"].as_m().ok();
        let field = |name: &str| record.and_then(|m| m.get(name)).and_then(|s| s.as_s().ok()).cloned();
        let key = item["pk"].as_s().unwrap().trim_start_matches("SEND#");
        if key.starts_with("stream-probe:") {
            continue;
        }
        states.insert(
            milepost_aws::ses::send_key_tag(key),
            format!("{key}: {}", field("state").unwrap_or_default()),
        );
        match field("state").as_deref() {
            Some("unknown") => {
                // Printed always: shown when the run fails on it.
                let since = record.and_then(|m| m.get("since")).and_then(|s| s.as_s().ok()).cloned();
                let resends = record
                    .and_then(|m| m.get("resends"))
                    .and_then(|n| n.as_n().ok())
                    .cloned();
                let email = record.and_then(|m| m.get("email")).is_some();
                eprintln!("left unknown: {key} since {since:?} resends {resends:?} with its email {email}");
                let tag = milepost_aws::ses::send_key_tag(key);
                // The settling resends only what SES provably never took.
                if resends.and_then(|n| n.parse().ok()) == Some(milepost_app::settle::MAX_RESENDS) {
                    given_up.insert(tag);
                } else {
                    unknown.insert(tag);
                }
            }
            Some("rejected") if field("reason").is_some_and(|r| r.starts_with("never taken by the mail service")) => {
                withheld.insert(milepost_aws::ses::send_key_tag(key));
            }
            _ => {}
        }
    }
    (unknown, given_up, withheld)
}

/// One round's figures, as the report has them.
#[derive(Default)]
struct Figures {
    faults: BTreeMap<Fault, u64>,
    events: usize,
    requests: u64,
    retries: usize,
    events_lost: usize,
    emails_doubled: usize,
    executions_doubled: usize,
    tasks_doubled: usize,
    state_diffs: usize,
    emails_sent: usize,
    emails_unknown: usize,
    emails_given_up: usize,
    emails_withheld: usize,
    emails_missing: usize,
    emails_resent: usize,
    emails_settled_from_receipts: usize,
    stream_probes: usize,
    bus_without_id: usize,
    bus_ids_per_event: usize,
    executions: usize,
    tasks: usize,
    bus_duplicates: usize,
    announcements_lost: usize,
    failures_caught: usize,
    diffs: Vec<String>,
}

fn judge(calm: &Outcome, stormy: &Outcome, events: usize) -> Figures {
    let mut f = Figures {
        faults: stormy.faults.clone(),
        events,
        requests: stormy.requests,
        retries: stormy.sender_retries + stormy.sweep_reruns + stormy.steps.retries,
        events_lost: stormy.events_refused,
        failures_caught: stormy.steps.failures_caught,
        executions: stormy.executions.len(),
        tasks: stormy.tasks.len(),
        ..Figures::default()
    };
    let mut diff = |what: String| {
        f.diffs.push(what);
    };
    for (key, calm_m) in &calm.milestones {
        if stormy.milestones.get(key) != Some(calm_m) {
            diff(format!("milestone {key}: {calm_m} vs {:?}", stormy.milestones.get(key)));
        }
    }
    for key in stormy.milestones.keys().filter(|k| !calm.milestones.contains_key(*k)) {
        diff(format!("milestone {key} only with faults"));
    }
    let mut events_lost = 0;
    for (account, calm_a) in &calm.activity {
        let stormy_a = stormy.activity.get(account).cloned().unwrap_or(Value::Null);
        if &stormy_a != calm_a {
            let recent = |v: &Value| -> BTreeSet<String> {
                v["recent"]
                    .as_array()
                    .map(|r| r.iter().map(Value::to_string).collect())
                    .unwrap_or_default()
            };
            events_lost += recent(calm_a).difference(&recent(&stormy_a)).count();
            diff(format!("activity of {account}"));
        }
    }
    for (id, calm_t) in &calm.tasks {
        if stormy.tasks.get(id) != Some(calm_t) {
            diff(format!("task {id}: {calm_t} vs {:?}", stormy.tasks.get(id)));
        }
    }
    for id in stormy.tasks.keys().filter(|k| !calm.tasks.contains_key(*k)) {
        diff(format!("task {id} only with faults"));
    }
    let calm_names: BTreeSet<_> = calm.executions.keys().collect();
    let stormy_names: BTreeSet<_> = stormy.executions.keys().collect();
    for name in calm_names.symmetric_difference(&stormy_names) {
        diff(format!("execution {name} in one run only"));
    }
    f.state_diffs = f.diffs.len();
    f.events_lost += events_lost;
    f.executions_doubled = stormy.executions.values().map(|n| n - 1).sum();
    f.emails_doubled = stormy.emails.values().map(|n| n - 1).sum();
    f.emails_sent = stormy.emails.len();
    f.emails_unknown = stormy.emails_unknown.len();
    f.emails_given_up = stormy.emails_given_up.len();
    f.emails_withheld = stormy.emails_withheld.len();
    // Missing: sent without faults, not with them, and neither left unknown
    // nor withheld as moot (never taken by SES, the customer caught up meanwhile).
    let missing: Vec<&String> = calm
        .emails
        .keys()
        .filter(|tag| {
            !stormy.emails.contains_key(*tag)
                && !stormy.emails_unknown.contains(*tag)
                && !stormy.emails_given_up.contains(*tag)
                && !stormy.emails_withheld.contains(*tag)
        })
        .collect();
    for tag in &missing {
        let state = calm.send_states.get(*tag).map_or("?", String::as_str);
        eprintln!(
            "an email sent without faults was not sent with them: {state} (with faults: {})",
            stormy.send_states.get(*tag).map_or("no send record", String::as_str),
        );
        // What each run's escalation did, to tell a lost email from one moot by then.
        let execution = state.split(':').next().unwrap_or_default();
        for (run, outcome) in [("without faults", calm), ("with faults", stormy)] {
            for line in outcome.logs.get(execution).into_iter().flatten() {
                eprintln!("  {run}: {execution}: {line}");
            }
        }
    }
    f.emails_missing = missing.len();
    f.bus_without_id = stormy.bus_without_id;
    f.emails_resent = stormy.settled.resent;
    f.emails_settled_from_receipts = stormy.settled.confirmed;
    f.stream_probes = stormy.settled.probes;
    // Every copy of one event carries one id: what a consumer dedupes on.
    f.bus_ids_per_event = stormy.bus_ids.values().map(BTreeSet::len).max().unwrap_or(0);
    // Emails sent with faults that the fault-free run never sent are doubles of a kind too.
    f.emails_doubled += stormy.emails.keys().filter(|t| !calm.emails.contains_key(*t)).count();
    // A CSM task twice: two tasks of one escalation, or its email twice.
    let tasks_per_execution: BTreeMap<&str, usize> = stormy.tasks.keys().fold(BTreeMap::new(), |mut m, id| {
        *m.entry(id.trim_end_matches(":csm-task")).or_default() += 1;
        m
    });
    f.tasks_doubled = tasks_per_execution.values().map(|n| n - 1).sum::<usize>()
        + calm
            .tasks
            .keys()
            .filter(|id| {
                let key = format!("{}:csm_task:csm", id.trim_end_matches(":csm-task"));
                stormy
                    .emails
                    .get(&milepost_aws::ses::send_key_tag(&key))
                    .is_some_and(|n| *n > 1)
            })
            .count();
    f.bus_duplicates = stormy.bus.values().map(|n| n - 1).sum();
    f.announcements_lost = calm.bus.keys().filter(|k| !stormy.bus.contains_key(*k)).count();
    f
}

fn report_json(seed: u64, rounds: &[(u64, Figures)]) -> Value {
    let sum = |get: fn(&Figures) -> usize| -> usize { rounds.iter().map(|(_, f)| get(f)).sum() };
    let mut faults: BTreeMap<&str, u64> = BTreeMap::new();
    for (_, f) in rounds {
        for (kind, n) in &f.faults {
            *faults.entry(kind.name()).or_default() += n;
        }
    }
    json!({
        "seed": seed,
        "rounds": rounds.len(),
        "faults_injected": faults,
        "events": sum(|f| f.events),
        "requests": rounds.iter().map(|(_, f)| f.requests).sum::<u64>(),
        "retries": sum(|f| f.retries),
        "events_lost": sum(|f| f.events_lost),
        "emails_doubled": sum(|f| f.emails_doubled),
        "executions_doubled": sum(|f| f.executions_doubled),
        "tasks_doubled": sum(|f| f.tasks_doubled),
        "state_diffs": sum(|f| f.state_diffs),
        "emails_sent": sum(|f| f.emails_sent),
        "emails_unknown_outcome": sum(|f| f.emails_unknown),
        "emails_given_up_after_resends": sum(|f| f.emails_given_up),
        "emails_withheld_moot": sum(|f| f.emails_withheld),
        "emails_settled_from_ses_events": sum(|f| f.emails_settled_from_receipts),
        "emails_resent_never_taken": sum(|f| f.emails_resent),
        "ses_stream_probes": sum(|f| f.stream_probes),
        "emails_missing": sum(|f| f.emails_missing),
        "bus_events_without_id": sum(|f| f.bus_without_id),
        "bus_event_ids_per_event": rounds.iter().map(|(_, f)| f.bus_ids_per_event).max().unwrap_or(0),
        "executions": sum(|f| f.executions),
        "tasks": sum(|f| f.tasks),
        "bus_duplicates": sum(|f| f.bus_duplicates),
        "announcements_lost": sum(|f| f.announcements_lost),
        "steps_caught_as_failed": sum(|f| f.failures_caught),
        "per_round": rounds.iter().map(|(seed, f)| json!({
            "seed": seed,
            "faults": f.faults.values().sum::<u64>(),
            "events": f.events,
            "requests": f.requests,
            "state_diffs": f.state_diffs,
            "emails_unknown_outcome": f.emails_unknown,
        })).collect::<Vec<_>>(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_under_aws_faults_ends_where_a_fault_free_run_does() {
    if std::env::var_os("MILEPOST_CHAOS_VERBOSE").is_some() {
        // What went wrong, with the ids of the span it went wrong in.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .with_writer(std::io::stderr)
            .try_init();
    }
    let seed = env_number("MILEPOST_CHAOS_SEED", 19);
    let rounds = env_number("MILEPOST_CHAOS_ROUNDS", 1).max(1);
    let accounts = env_number("MILEPOST_CHAOS_ACCOUNTS", ACCOUNTS).max(1);
    let maps = milepost_cli::example_maps::example_maps();
    let mut figures = Vec::new();
    for round in 0..rounds {
        let seed = seed + round;
        let plans = plan_accounts(accounts as usize, seed, &maps);
        let events = deliveries(&plans, seed).1;
        let calm = run(&plans, seed, None).await;
        let stormy = run(&plans, seed, Some(fault_plan(seed))).await;
        assert!(!calm.executions.is_empty(), "seed {seed}: the stream misses milestones");
        assert!(!calm.tasks.is_empty(), "seed {seed}: escalations reach day 3");
        let f = judge(&calm, &stormy, events);
        for d in &f.diffs {
            eprintln!("seed {seed}: {d}");
        }
        figures.push((seed, f));
    }
    let mut report = report_json(seed, &figures);
    report["accounts_per_round"] = accounts.into();
    report["days_of_events"] = days().into();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/chaos");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("report.json"), serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("chaos run, seed {seed}, {rounds} round(s) of {accounts} accounts: target/chaos/report.json");
    for (key, value) in report.as_object().unwrap() {
        if key != "per_round" {
            println!("  {key:<24} {value}");
        }
    }

    let faults = report["faults_injected"].as_object().unwrap();
    let injected: u64 = faults.values().map(|v| v.as_u64().unwrap()).sum();
    assert!(
        faults.len() >= 4 && injected >= 200,
        "too few faults to mean anything: {faults:?}"
    );
    assert!(faults.contains_key("lost_response"), "{faults:?}");
    for must_be_zero in [
        "events_lost",
        "emails_doubled",
        "executions_doubled",
        "tasks_doubled",
        "state_diffs",
        "emails_missing",
        "announcements_lost",
        "emails_unknown_outcome",
        "bus_events_without_id",
    ] {
        assert_eq!(report[must_be_zero], 0, "{must_be_zero}: {report:#}");
    }
    // Three attempts in a row that SES never took (the faults drop 7% of
    // SES's requests unanswered) happen, rarely: the email is left unknown
    // and the operator alarmed, as designed. More than one a round would be
    // resends failing for a reason of their own.
    assert!(
        report["emails_given_up_after_resends"].as_u64().unwrap() <= rounds,
        "emails given up after their resends: {report:#}"
    );
    assert_eq!(
        report["bus_event_ids_per_event"], 1,
        "every copy of a bus event carries one id: {report:#}"
    );
}
