//! The sweep through its Lambda handler on the production adapters (DynamoDB,
//! EventBridge and Step Functions on a local moto server): it reads only what
//! is due, starts exactly one escalation per missed milestone however sweeps
//! overlap or crash, and never touches a milestone reached in time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use async_trait::async_trait;
use chrono::{Duration, TimeZone, Utc};
use milepost_app::ports::{
    AccountStore, Clock, EventPublisher, MapStore, MilestoneStore, PublishError, StartOutcome, WorkflowError,
    WorkflowStarter,
};
use milepost_app::sweep::SweepReport;
use milepost_app::Config;
use milepost_app::Services;
use milepost_aws::{DynamoStore, EventBridgePublisher, StepFunctionsWorkflows};
use milepost_domain::EscalationRequest;
use milepost_domain::{
    Account, AccountId, DomainEvent, MilestoneStatus, ProductEvent, Stage, Timestamp, TrackedMilestone,
};
use milepost_embedded::fixtures::{account, date};
use milepost_embedded::{MemoryMailer, VirtualClock};
use milepost_local::MotoServer;
use milepost_maps::load_map;

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
"#;

fn contract_start() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

/// Forwards to EventBridge and counts the MilestoneMissed events that went out.
struct CountingBus {
    inner: EventBridgePublisher,
    missed: AtomicUsize,
}

#[async_trait]
impl EventPublisher for CountingBus {
    async fn publish(&self, events: &[DomainEvent]) -> Result<(), PublishError> {
        self.inner.publish(events).await?;
        let missed = events
            .iter()
            .filter(|e| matches!(e, DomainEvent::MilestoneMissed { .. }))
            .count();
        self.missed.fetch_add(missed, Ordering::SeqCst);
        Ok(())
    }
}

/// Step Functions, with the first `panics` starts crashing the sweep instead.
struct CrashingStarter {
    inner: StepFunctionsWorkflows,
    panics: AtomicUsize,
}

#[async_trait]
impl WorkflowStarter for CrashingStarter {
    async fn start(&self, request: &EscalationRequest) -> Result<StartOutcome, WorkflowError> {
        if self
            .panics
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            panic!("injected crash between marking missed and starting the escalation");
        }
        self.inner.start(request).await
    }
    async fn stop(&self, execution: &str, stage: Option<Stage>) -> Result<(), WorkflowError> {
        self.inner.stop(execution, stage).await
    }
}

/// Step Functions, refusing one account's escalations every time (say, an input it rejects).
struct RefusingOne {
    inner: StepFunctionsWorkflows,
    account: &'static str,
}

#[async_trait]
impl WorkflowStarter for RefusingOne {
    async fn start(&self, request: &EscalationRequest) -> Result<StartOutcome, WorkflowError> {
        if request.account_id.as_str() == self.account {
            return Err(WorkflowError("ValidationException: refused".into()));
        }
        self.inner.start(request).await
    }
    async fn stop(&self, execution: &str, stage: Option<Stage>) -> Result<(), WorkflowError> {
        self.inner.stop(execution, stage).await
    }
}

struct Stack {
    _moto: MotoServer,
    sdk: aws_config::SdkConfig,
    table: String,
    bus: Arc<CountingBus>,
    state_machine: String,
    clock: Arc<VirtualClock>,
}

impl Stack {
    async fn new() -> Stack {
        let moto = MotoServer::start();
        let sdk = moto.sdk_config().await;
        let (table, bus_name) = ("milepost".to_string(), "milepost".to_string());
        milepost_local::stack::create_local_resources(&sdk, &table, &bus_name)
            .await
            .unwrap();
        let state_machine = aws_sdk_sfn::Client::new(&sdk)
            .create_state_machine()
            .name("milepost-escalation")
            .definition(r#"{"StartAt":"Wait","States":{"Wait":{"Type":"Pass","End":true}}}"#)
            .role_arn("arn:aws:iam::123456789012:role/milepost-escalation")
            .send()
            .await
            .unwrap()
            .state_machine_arn;
        let bus = Arc::new(CountingBus {
            inner: EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&sdk), bus_name),
            missed: AtomicUsize::new(0),
        });
        let stack = Stack {
            _moto: moto,
            sdk,
            table,
            bus,
            state_machine,
            clock: Arc::new(VirtualClock::new(contract_start())),
        };
        stack.store().put_map(&load_map("m.yaml", MAP).unwrap()).await.unwrap();
        stack
    }

    fn store(&self) -> Arc<DynamoStore> {
        Arc::new(DynamoStore::metered(
            aws_sdk_dynamodb::Client::new(&self.sdk),
            &self.table,
        ))
    }

    fn workflows(&self) -> StepFunctionsWorkflows {
        StepFunctionsWorkflows::new(aws_sdk_sfn::Client::new(&self.sdk), &self.state_machine)
    }

    /// What one sweep Lambda would have: its own clients.
    fn services(&self, store: Arc<DynamoStore>, workflows: Arc<dyn WorkflowStarter>) -> Services {
        Services {
            store,
            mailer: Arc::new(MemoryMailer::default()),
            events: self.bus.clone(),
            workflows,
            clock: self.clock.clone(),
            config: Config::default(),
            links: Some(milepost_embedded::fixtures::links()),
        }
    }

    async fn sweep(&self, store: Arc<DynamoStore>) -> SweepReport {
        let services = self.services(store, Arc::new(self.workflows()));
        let deadline = Instant::now() + StdDuration::from_secs(600);
        milepost_sweep::run(&services.scheduled_run(), deadline)
            .await
            .unwrap()
            .sweep
    }

    async fn executions(&self) -> Vec<String> {
        let client = aws_sdk_sfn::Client::new(&self.sdk);
        let mut names = Vec::new();
        let mut token = None;
        loop {
            let out = client
                .list_executions()
                .state_machine_arn(&self.state_machine)
                .set_next_token(token)
                .send()
                .await
                .unwrap();
            names.extend(out.executions.into_iter().map(|e| e.name));
            match out.next_token {
                Some(t) => token = Some(t),
                None => return names,
            }
        }
    }

    /// `accounts` accounts, each tracking `per_account` milestones; the first
    /// `due` of them (across accounts) due a day before `now`, the rest later.
    async fn seed(&self, accounts: usize, per_account: usize, due: usize) -> Vec<Account> {
        let store = self.store();
        let map = load_map("m.yaml", MAP).unwrap();
        let now = self.clock.now();
        let mut all = Vec::new();
        let mut created = Vec::new();
        for a in 0..accounts {
            let acct = account(&format!("acct-{a:03}"), date(2026, 1, 1));
            store.put_account(&acct).await.unwrap();
            for n in 0..per_account {
                let mut def = map.milestones[0].clone();
                def.id = format!("m{n:03}");
                let mut m = TrackedMilestone::new(&acct, &map, &def);
                let index = n * accounts + a;
                milepost_domain::seed::milestone(&mut m).due_at(if index < due {
                    now - Duration::days(1)
                } else {
                    now + Duration::days(1 + (index % 300) as i64)
                });
                all.push(m);
            }
            created.push(acct);
        }
        store.seed_milestones(&all).await.unwrap();
        created
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_over_5000_pending_milestones_reads_only_the_50_that_are_due() {
    let stack = Stack::new().await;
    stack.clock.set(contract_start() + Duration::days(40));
    stack.seed(50, 100, 50).await;
    let store = stack.store();
    let report = stack.sweep(store.clone()).await;
    assert_eq!(
        store.meter().due_items_read(),
        50,
        "the sweep read milestones that were not due"
    );
    assert_eq!((report.examined, report.missed, report.started), (50, 50, 50));
    assert_eq!(report.lag_seconds(stack.clock.now()), 86_400);
    assert_eq!(stack.executions().await.len(), 50);
    assert_eq!(stack.bus.missed.load(Ordering::SeqCst), 50);

    let again = stack.sweep(stack.store()).await;
    assert_eq!(
        again.examined, 0,
        "a missed milestone whose escalation started leaves the due index"
    );
    assert_eq!(stack.executions().await.len(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_sweeps_start_exactly_one_execution_per_missed_milestone() {
    let stack = Stack::new().await;
    stack.clock.set(contract_start() + Duration::days(40));
    stack.seed(20, 2, 20).await;
    // Two Lambdas, each with its own clients, over the same due milestones.
    let (a, b) = tokio::join!(stack.sweep(stack.store()), stack.sweep(stack.store()));
    assert_eq!(
        a.missed + b.missed,
        20,
        "each milestone marked missed once: {a:?} {b:?}"
    );
    let mut names = stack.executions().await;
    assert_eq!(names.len(), 20, "executions started: {names:?}");
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 20, "one execution per missed milestone");
    assert_eq!(
        stack.bus.missed.load(Ordering::SeqCst),
        20,
        "MilestoneMissed published once each"
    );
    let still_due = stack
        .store()
        .due_milestones(stack.clock.now(), None, 100)
        .await
        .unwrap()
        .items;
    assert!(still_due.is_empty(), "still due after both sweeps: {still_due:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_marking_missed_and_starting_is_healed_by_a_later_sweep() {
    let stack = Stack::new().await;
    stack.clock.set(contract_start() + Duration::days(40));
    stack.seed(1, 1, 1).await;
    let crashing = Arc::new(CrashingStarter {
        inner: stack.workflows(),
        panics: AtomicUsize::new(1),
    });
    let services = stack.services(stack.store(), crashing);
    let crashed = tokio::spawn(async move {
        milepost_sweep::run(&services.scheduled_run(), Instant::now() + StdDuration::from_secs(600)).await
    })
    .await;
    assert!(crashed.is_err_and(|e| e.is_panic()), "the injected crash happened");
    let store = stack.store();
    let m = store
        .get_milestone(&AccountId::new("acct-000"), "m000")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.status(), MilestoneStatus::Missed, "marked missed before the crash");
    assert!(!m.escalation_started());
    assert!(stack.executions().await.is_empty());

    let during_lease = stack.sweep(stack.store()).await;
    assert_eq!(
        (during_lease.skipped, during_lease.started),
        (1, 0),
        "the crashed claim is respected for its lease"
    );
    stack.clock.advance(Duration::minutes(16));
    let healed = stack.sweep(stack.store()).await;
    assert_eq!(
        (healed.missed, healed.started),
        (0, 1),
        "the next sweep after the lease starts it"
    );
    assert_eq!(stack.executions().await.len(), 1);
    assert_eq!(stack.bus.missed.load(Ordering::SeqCst), 1, "announced once");
    let done = stack.sweep(stack.store()).await;
    assert_eq!(done.examined, 0);
    assert_eq!(stack.executions().await.len(), 1, "nothing started twice");
}

/// Found by issue 19's review of claims: the sweep's claim of a miss is a
/// conditional PutItem. When DynamoDB made the write but the answer was
/// lost, the SDK's retry fails its condition, and the sweep used to read
/// that as another sweep's claim: the escalation then waited out the
/// 15-minute lease and the next sweep. The claim now names its sweep, which
/// reads it back as its own and goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_whose_answer_was_lost_is_still_the_sweeps_own() {
    let stack = Stack::new().await;
    stack.clock.set(contract_start() + Duration::days(40));
    stack.seed(1, 1, 1).await;
    let moto_endpoint = stack.sdk.endpoint_url().unwrap().to_string();
    let plan = milepost_local::FaultPlan::new(1).first("dynamodb:PutItem", milepost_local::Fault::LostResponse, 1);
    let proxy = milepost_local::FaultProxy::start(&moto_endpoint, plan).await;
    let faulty = stack.sdk.to_builder().endpoint_url(&proxy.endpoint).build();
    let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&faulty), &stack.table));

    let report = stack.sweep(store).await;

    assert_eq!(
        proxy.counts().faults.get(&milepost_local::Fault::LostResponse),
        Some(&1),
        "the claim's answer was lost"
    );
    assert_eq!(
        (report.missed, report.started, report.skipped),
        (1, 1, 0),
        "the same sweep announced and started it: {report:?}"
    );
    assert_eq!(stack.executions().await.len(), 1);
    let m = stack
        .store()
        .get_milestone(&AccountId::new("acct-000"), "m000")
        .await
        .unwrap()
        .unwrap();
    assert!(m.escalation_started() && m.miss_claim().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_milestone_reached_before_its_due_date_is_never_touched() {
    let stack = Stack::new().await;
    let store = stack.store();
    let acct = stack.seed(1, 0, 0).await.remove(0);
    let services = stack.services(store.clone(), Arc::new(stack.workflows()));
    services.ingestion().upsert_account(&acct).await.unwrap();
    let event = ProductEvent {
        id: "e1".into(),
        account_id: acct.id.clone(),
        event: "workflow.completed".into(),
        timestamp: contract_start() + Duration::days(3),
        user_id: Some("u1".into()),
        properties: Default::default(),
    };
    stack.clock.set(contract_start() + Duration::days(3));
    services.ingestion().apply_event(&event).await.unwrap();
    let reached = store.get_milestone(&acct.id, "first_workflow").await.unwrap().unwrap();
    assert_eq!(reached.status(), MilestoneStatus::Achieved);

    stack.clock.set(contract_start() + Duration::days(45));
    let report = stack.sweep(store.clone()).await;
    assert_eq!(report.examined, 0);
    assert_eq!(store.meter().due_items_read(), 0, "the sweep read a reached milestone");
    assert_eq!(
        store.get_milestone(&acct.id, "first_workflow").await.unwrap().unwrap(),
        reached,
        "changed by the sweep"
    );
    assert!(stack.executions().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_milestone_that_keeps_failing_does_not_stop_the_others() {
    let stack = Stack::new().await;
    stack.clock.set(contract_start() + Duration::days(40));
    stack.seed(5, 1, 5).await;
    let refusing = Arc::new(RefusingOne {
        inner: stack.workflows(),
        account: "acct-002",
    });
    let services = stack.services(stack.store(), refusing.clone());
    let deadline = Instant::now() + StdDuration::from_secs(600);
    let first = milepost_sweep::run(&services.scheduled_run(), deadline)
        .await
        .unwrap()
        .sweep;
    assert_eq!((first.missed, first.started, first.failed), (5, 4, 1));
    assert_eq!(stack.executions().await.len(), 4);
    let second = milepost_sweep::run(&services.scheduled_run(), deadline)
        .await
        .unwrap()
        .sweep;
    assert_eq!(
        (second.examined, second.started, second.failed),
        (1, 0, 1),
        "the failing one stays due and is tried again; the rest are done"
    );
    assert_eq!(
        stack.bus.missed.load(Ordering::SeqCst),
        5,
        "each announced once, the failing one too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_near_its_deadline_stops_cleanly_and_the_next_run_finishes() {
    let stack = Stack::new().await;
    stack.clock.set(contract_start() + Duration::days(40));
    stack.seed(3, 1, 3).await;
    let services = stack.services(stack.store(), Arc::new(stack.workflows()));
    // Less time left than the margin the handler keeps: it stops before touching anything.
    let short = Instant::now() + milepost_sweep::DEADLINE_MARGIN / 2;
    let stopped = milepost_sweep::run(&services.scheduled_run(), short)
        .await
        .unwrap()
        .sweep;
    assert!(stopped.stopped_early);
    assert_eq!((stopped.examined, stopped.missed), (0, 0));
    assert!(stack.executions().await.is_empty());
    let finished = milepost_sweep::run(&services.scheduled_run(), Instant::now() + StdDuration::from_secs(600))
        .await
        .unwrap()
        .sweep;
    assert!(!finished.stopped_early);
    assert_eq!((finished.missed, finished.started), (3, 3));
}

/// What one scheduled run asks of AWS — the sweep starting an escalation, then
/// the reminder of a snooze that is over, a held-back list and a heads-up to
/// an owner and a champion, sent through SES — the template grants the sweep function.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_run_asks_only_for_what_the_sweep_function_is_granted() {
    use milepost_app::ports::TaskStore;
    use milepost_domain::{Actor, TaskAction};

    let stack = Stack::new().await;
    let config = Config::default();
    milepost_local::outbox::verify_sender(&stack.sdk, config.sender.email.as_str())
        .await
        .unwrap();
    // Day 40 is a Tuesday: 10:00 is inside the champion's business hours.
    stack
        .clock
        .set(contract_start() + Duration::days(40) + Duration::hours(10));
    stack.seed(1, 1, 1).await;
    let store = stack.store();
    // And a milestone due in two days with nothing done, whose map asks for a
    // heads-up to its owner and its champion.
    let map = load_map("m.yaml", MAP).unwrap();
    let mut def = map.milestones[0].clone();
    def.id = "soon".into();
    def.heads_up = Some(milepost_domain::HeadsUpRule {
        days_before: 5,
        champion: true,
    });
    let acct = store.get_account(&AccountId::new("acct-000")).await.unwrap().unwrap();
    let mut soon = TrackedMilestone::new(&acct, &map, &def);
    milepost_domain::seed::milestone(&mut soon).due_at(stack.clock.now() + Duration::days(2));
    store.create_milestone(&soon).await.unwrap();
    let task = milepost_embedded::fixtures::task_on(
        AccountId::new("acct-000"),
        "m000",
        "t-1",
        "maya@vendor.example",
        stack.clock.now() - Duration::days(4),
    );
    store.create_task(&task).await.unwrap();
    let snooze = TaskAction::Snooze {
        until: stack.clock.now() - Duration::hours(1),
        note: None,
    };
    let mut snoozed = store.get_task("t-1").await.unwrap().unwrap();
    snoozed
        .apply(&snooze, &Actor::Milepost, stack.clock.now() - Duration::days(1), None)
        .unwrap();
    store.update_task(&snoozed).await.unwrap();
    // And a held-back list a crashed run left half sent: the run finishes it.
    use milepost_app::ports::HeldBackListStore;
    let mut list = milepost_domain::HeldBackList::new(milepost_domain::Contact::new(
        "Maya",
        milepost_domain::EmailAddress::parse("maya@vendor.example").unwrap(),
    ));
    list.add(milepost_domain::HeldMiss {
        execution: "acct-000-m000-1".into(),
        account_id: AccountId::new("acct-000"),
        milestone_id: "m000".into(),
        arr_at_risk: 500,
        held_back: milepost_domain::HeldBack::TaskAndLeadership,
        queued_at: stack.clock.now() - Duration::days(1),
        digest_of: None,
    });
    list.assign(stack.clock.now().date_naive());
    store.save_held_back_list(&list).await.unwrap();

    let services = Services {
        mailer: Arc::new(milepost_aws::SesMailer::new(
            aws_sdk_sesv2::Client::new(&stack.sdk),
            None,
        )),
        events: Arc::new(EventBridgePublisher::new(
            aws_sdk_eventbridge::Client::new(&stack.sdk),
            "milepost",
        )),
        config,
        ..stack.services(store.clone(), Arc::new(stack.workflows()))
    };
    stack._moto.record_requests(true).await;
    let deadline = Instant::now() + StdDuration::from_secs(600);
    let report = milepost_sweep::run(&services.scheduled_run(), deadline).await.unwrap();
    let (swept, reminded, digested, warned) =
        (report.sweep, report.reminders, report.held_back_lists, report.heads_ups);
    // Its other schedule: the console's portfolio and results, kept.
    let console = serde_json::json!({"part": "console"});
    let kept = milepost_sweep::handle(
        &services.scheduled_run(),
        &services.console_keeping(),
        &console,
        deadline,
    )
    .await
    .unwrap();
    stack._moto.record_requests(false).await;
    assert_eq!(
        kept["portfolio"]["rows"], 1,
        "the account with the missed milestone: {kept}"
    );
    assert_eq!(
        kept["results_kept"], 24,
        "six periods, for every segment together and each: {kept}"
    );
    assert_eq!(
        (warned.owners_told, warned.champions_told, warned.failed),
        (1, 1, 0),
        "{warned:?}"
    );
    let again = milepost_sweep::run(&services.scheduled_run(), deadline)
        .await
        .unwrap()
        .heads_ups;
    assert_eq!(again.examined, 0, "done: out of the heads-up index");
    assert_eq!((swept.missed, swept.started), (1, 1));
    assert_eq!((reminded.due, reminded.reopened), (1, 1));
    assert_eq!(
        (digested.sent, digested.listed, digested.failed),
        (1, 1, 0),
        "{digested:?}"
    );
    let left = store.held_back_lists().await.unwrap();
    assert!(left[0].waiting.is_empty(), "the day's entries are removed once sent");
    let again = milepost_sweep::run(&services.scheduled_run(), deadline)
        .await
        .unwrap()
        .held_back_lists;
    assert_eq!(again.sent, 0, "once");
    let used = stack._moto.recorded_actions();
    for needed in [
        "dynamodb:Query@index/due",
        "dynamodb:Query@index/heads_up",
        "dynamodb:Query@table",
        "dynamodb:Scan@table",
        "states:StartExecution",
        "events:PutEvents",
        "ses:SendEmail",
    ] {
        assert!(used.contains(needed), "recorded {used:?}");
    }
    assert!(
        !used.contains("dynamodb:BatchGetItem"),
        "the portfolio's refresh reads each account's partition once, no batch of profiles besides"
    );
    milepost_local::iam::assert_granted("SweepFunction", &used);
}
