//! The escalation state machine as written — `infra/statemachine/escalation.asl.json`,
//! not a copy — run by aws-local-stepfunctions (`infra/statemachine/run-local.mjs
//! stdio`), its Task states dispatched to the functions' handler
//! (`escalation_task::handle`) in this process, its Wait states and retry
//! pauses taking no time. `make test` installs Node >= 22 into `.venv` and the
//! npm packages into `infra/node_modules`.
//!
//! Each scenario starts from a real sweep: the account is onboarded, the clock
//! passes the milestone's due date, the sweep marks it missed and hands over
//! the escalation request, which becomes the execution's input.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::Duration;
use milepost_app::escalation::invocation::{handle, InvocationError, PlaybookFunction, StepInvocation};
use milepost_app::ingest::wire::parse_body;
use milepost_app::ports::{
    EscalationLog, MapStore, MilestoneStore, StartOutcome, TaskStore, WorkflowError, WorkflowStarter,
};
use milepost_app::sweep::SweepOptions;
use milepost_app::Services;
use milepost_domain::EmailKind;
use milepost_domain::{AccountId, DomainEvent, MilestoneStatus, Stage};
use milepost_domain::{EscalationRequest, Step};
use milepost_embedded::fixtures::escalation::{account, contract_start, workflows_done, ESCALATION_MAP};
use milepost_embedded::{InMemoryStore, MemoryMailer, RecordingPublisher, VirtualClock};
use milepost_maps::load_map;
use serde_json::{json, Value};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Keeps what the sweep starts, and what ingestion stops, for the test to run.
#[derive(Default)]
struct CapturedStarts {
    started: Mutex<Vec<EscalationRequest>>,
    stopped: Mutex<Vec<String>>,
}

#[async_trait]
impl WorkflowStarter for CapturedStarts {
    async fn start(&self, request: &EscalationRequest) -> Result<StartOutcome, WorkflowError> {
        self.started.lock().unwrap().push(request.clone());
        Ok(StartOutcome::Started)
    }
    async fn stop(&self, execution: &str, _stage: Option<Stage>) -> Result<(), WorkflowError> {
        self.stopped.lock().unwrap().push(execution.to_string());
        Ok(())
    }
}

struct Harness {
    services: Services,
    store: Arc<InMemoryStore>,
    mailer: Arc<MemoryMailer>,
    events: Arc<RecordingPublisher>,
    clock: Arc<VirtualClock>,
    workflows: Arc<CapturedStarts>,
}

/// One task invocation as the state machine made it.
#[derive(Debug, Clone, PartialEq)]
struct Invocation {
    function: String,
    step: Step,
    failure: Option<String>,
}

/// What an execution did: its task invocations, its events and where it ended.
#[derive(Debug)]
struct Run {
    invocations: Vec<Invocation>,
    /// (event type, state name, error name)
    events: Vec<(String, Option<String>, Option<String>)>,
    status: String,
    end_state: String,
}

impl Run {
    /// The steps run, in order, a retried step once.
    fn steps(&self) -> Vec<Step> {
        let mut steps: Vec<Step> = self
            .invocations
            .iter()
            .filter(|i| i.failure.is_none())
            .map(|i| i.step)
            .collect();
        steps.dedup();
        steps
    }

    fn attempts(&self, step: Step) -> usize {
        self.invocations
            .iter()
            .filter(|i| i.failure.is_none() && i.step == step)
            .count()
    }

    fn count(&self, event: &str, state: &str) -> usize {
        self.events
            .iter()
            .filter(|(e, s, _)| e == event && s.as_deref() == Some(state))
            .count()
    }
}

impl Harness {
    /// An enterprise account whose `first_workflow` milestone was missed on day 10.
    async fn missed() -> (Harness, EscalationRequest) {
        let store = Arc::new(InMemoryStore::new());
        let mailer = Arc::new(MemoryMailer::default());
        let events = Arc::new(RecordingPublisher::default());
        let clock = Arc::new(VirtualClock::new(contract_start()));
        let workflows = Arc::new(CapturedStarts::default());
        let services = Services {
            store: store.clone(),
            mailer: mailer.clone(),
            events: events.clone(),
            workflows: workflows.clone(),
            clock: clock.clone(),
            config: milepost_embedded::fixtures::simulation_config(),
            links: Some(milepost_embedded::fixtures::links()),
        };
        store
            .put_map(&load_map("escalation.yaml", ESCALATION_MAP).unwrap())
            .await
            .unwrap();
        services.ingestion().upsert_account(&account("a1")).await.unwrap();
        clock.set(contract_start() + Duration::days(10) + Duration::hours(1));
        services.sweeper().sweep(&SweepOptions::default()).await.unwrap();
        let request = workflows
            .started
            .lock()
            .unwrap()
            .iter()
            .find(|r| r.milestone_id == "first_workflow")
            .cloned()
            .expect("the sweep started an escalation for first_workflow");
        let h = Harness {
            services,
            store,
            mailer,
            events,
            clock,
            workflows,
        };
        (h, request)
    }

    /// Runs the state machine for `request`. `before(step)` runs before each
    /// step's handler, as time passing would (the clock is set to the step's due time).
    async fn run<F>(&self, request: &EscalationRequest, mut before: F) -> Run
    where
        F: AsyncFnMut(&Harness, Step),
    {
        let node = repo().join(".venv/nodejs/bin/node");
        assert!(
            node.exists(),
            "{} is missing: run `make test`, which installs Node into .venv",
            node.display()
        );
        let mut child = Command::new(node)
            .arg(repo().join("infra/statemachine/run-local.mjs"))
            .arg("stdio")
            .arg(repo().join("infra/statemachine/escalation.asl.json"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start node");
        let mut stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let input = serde_json::to_value(request).unwrap();
        writeln!(stdin, "{}", json!({"name": request.execution, "input": input})).unwrap();

        let mut run = Run {
            invocations: Vec::new(),
            events: Vec::new(),
            status: String::new(),
            end_state: String::new(),
        };
        for line in stdout.lines() {
            let msg: Value = serde_json::from_str(&line.unwrap()).unwrap();
            match msg["type"].as_str().unwrap() {
                "invoke" => {
                    let task: StepInvocation = serde_json::from_value(msg["payload"].clone())
                        .expect("the state machine sends a payload the functions accept");
                    let function = msg["function"].as_str().unwrap().to_string();
                    run.invocations.push(Invocation {
                        function: function.clone(),
                        step: task.step,
                        failure: task.failure.clone(),
                    });
                    if task.failure.is_none() {
                        // Time passes to the step's due time, or stays where a deferral's wait left it.
                        let due = task.step.due(&task.request.schedule);
                        self.clock
                            .set(due.max(milepost_app::ports::Clock::now(self.clock.as_ref())));
                        before(self, task.step).await;
                    }
                    let reply = match handle(&self.services.playbook(), function_named(&function), &task).await {
                        Ok(output) => {
                            if let Some(at) = output.retry_at {
                                // The Wait on `retry_at` (no time for the executor): the clock goes there.
                                self.clock.set(at);
                            }
                            json!({"id": msg["id"], "result": output})
                        }
                        Err(e) => json!({"id": msg["id"], "error": {"type": e.error_type(), "message": e.to_string()}}),
                    };
                    writeln!(stdin, "{reply}").unwrap();
                }
                "event" => run.events.push((
                    msg["event"].as_str().unwrap().to_string(),
                    msg["state"].as_str().map(str::to_string),
                    msg["error"].as_str().map(str::to_string),
                )),
                "done" => {
                    run.status = msg["status"].as_str().unwrap().to_string();
                    run.end_state = msg["end_state"].as_str().unwrap_or_default().to_string();
                }
                other => panic!("unexpected message {other}"),
            }
        }
        assert!(child.wait().unwrap().success(), "the local executor failed");
        run
    }

    fn sent(&self) -> Vec<(EmailKind, String)> {
        self.mailer
            .sent()
            .into_iter()
            .filter(|e| e.milestone_id == "first_workflow")
            .map(|e| (e.kind, e.to[0].email.to_string()))
            .collect()
    }

    async fn status(&self) -> MilestoneStatus {
        self.store
            .get_milestone(&AccountId::new("a1"), "first_workflow")
            .await
            .unwrap()
            .unwrap()
            .status()
    }

    /// The customer catches up: the events that reach the milestone arrive now.
    async fn customer_catches_up(&self) {
        use milepost_app::ports::Clock;
        let body = serde_json::to_vec(&workflows_done("a1", self.clock.now())).unwrap();
        self.services
            .ingestion()
            .ingest(parse_body(&body).unwrap())
            .await
            .unwrap();
    }
}

fn function_named(name: &str) -> PlaybookFunction {
    [
        PlaybookFunction::Outreach,
        PlaybookFunction::CsmTask,
        PlaybookFunction::Escalate,
    ]
    .into_iter()
    .find(|f| f.name() == name)
    .unwrap_or_else(|| panic!("the state machine invoked an unknown function {name}"))
}

/// The order the playbook must run in, written out rather than taken from
/// `Step::ALL` so a change there cannot silently change what is expected here.
const ALL_STEPS: [Step; 7] = [
    Step::OutreachEmail,
    Step::InAppMessage,
    Step::FollowUpEmail,
    Step::CsmTask,
    Step::Leadership,
    Step::Finish,
    Step::AfterLapse,
];

/// What follows the lapse of a miss nobody acted on: the untouched task
/// raised to its owner and then to the leader, the owner's two reminders.
fn after_lapse_emails() -> [(EmailKind, String); 4] {
    [
        (EmailKind::TaskOverSla, "maya@vendor.example".into()),
        (EmailKind::TaskRaisedToLead, "lead@vendor.example".into()),
        (EmailKind::LapsedReminder, "maya@vendor.example".into()),
        (EmailKind::LapsedReminder, "maya@vendor.example".into()),
    ]
}

#[tokio::test]
async fn never_recovered_runs_every_stage_in_order_to_the_right_people() {
    let (h, request) = Harness::missed().await;
    let run = h.run(&request, async |_, _| {}).await;

    assert_eq!(
        (run.status.as_str(), run.end_state.as_str()),
        ("SUCCEEDED", "PlaybookCompleted")
    );
    assert_eq!(run.steps(), ALL_STEPS);
    let functions: Vec<&str> = run.invocations.iter().map(|i| i.function.as_str()).collect();
    // Each step runs once: the follow-up answers the outreach in its thread,
    // and the day-1 conversation counts once against Pat's daily cap. Day 5
    // runs again a business day after leadership's email, for the sponsor's.
    // After the lapse, the last step runs once per duty and waits for the next.
    assert_eq!(
        functions,
        [
            "outreach", "outreach", "outreach", "csm-task", "escalate", "escalate", "escalate", "escalate", "escalate",
            "escalate", "escalate", "escalate"
        ]
    );
    let waited: Vec<&str> = run
        .events
        .iter()
        .filter(|(event, state, _)| {
            event == "StateEntered" && state.as_deref().is_some_and(|s| s.ends_with("Deferred"))
        })
        .map(|(_, state, _)| state.as_deref().unwrap())
        .collect();
    assert_eq!(
        waited,
        [
            "Day5LeadershipDeferred",
            "AfterLapseDeferred",
            "AfterLapseDeferred",
            "AfterLapseDeferred",
            "AfterLapseDeferred"
        ],
        "the sponsor's email waits a business day for leadership to hold it; the duties after the lapse wait"
    );
    let mut expected = vec![
        (EmailKind::Outreach, "pat@a1.example".into()),
        (EmailKind::FollowUp, "pat@a1.example".into()),
        (EmailKind::CsmTask, "maya@vendor.example".into()),
        (EmailKind::Leadership, "lead@vendor.example".into()),
        (EmailKind::ExecSponsor, "sam@a1.example".into()),
    ];
    expected.extend(after_lapse_emails());
    assert_eq!(h.sent(), expected);
    let in_app = h
        .events
        .events()
        .into_iter()
        .filter(|e| matches!(e, DomainEvent::InAppMessageRequested { .. }))
        .count();
    assert_eq!(in_app, 1);
    let task = h
        .store
        .tasks_for_owner("maya@vendor.example", Some(milepost_domain::TaskStatus::Open))
        .await
        .unwrap();
    assert_eq!(task.len(), 1, "one open CSM task, owned by the account's CSM");
    assert_eq!(task[0].brief().milestone_id, "first_workflow");
    assert_eq!(h.status().await, MilestoneStatus::Lapsed);
    // Every email is dated at its step's scheduled time: day 1, then day 3, then day 5.
    let dates: Vec<_> = h.mailer.sent().iter().map(|e| e.date).collect();
    assert_eq!(dates[0], request.schedule.outreach_email_at);
    // The follow-up went at its own time, the same day, in the outreach's thread.
    assert_eq!(dates[1], request.schedule.follow_up_at);
    assert!(h.mailer.sent()[1].subject.starts_with("Re: "));
    assert_eq!(dates[2], request.schedule.csm_task_at);
    assert_eq!(dates[3], request.schedule.leadership_at);
    // The sponsor's a business day after leadership's, in the account's timezone.
    let tz = milepost_app::ports::AccountStore::get_account(h.store.as_ref(), &AccountId::new("a1"))
        .await
        .unwrap()
        .unwrap()
        .timezone;
    assert_eq!(dates[4], milepost_domain::sponsor_email_at(dates[3], tz));
}

#[tokio::test]
async fn recovered_before_day_three_ends_at_the_csm_task_and_sends_nothing_more() {
    let (h, request) = Harness::missed().await;
    let run = h
        .run(&request, async |h, step| {
            if step == Step::CsmTask {
                h.customer_catches_up().await;
            }
        })
        .await;

    assert_eq!(
        (run.status.as_str(), run.end_state.as_str()),
        ("SUCCEEDED", "Recovered")
    );
    assert_eq!(
        run.steps(),
        [
            Step::OutreachEmail,
            Step::InAppMessage,
            Step::FollowUpEmail,
            Step::CsmTask
        ]
    );
    assert_eq!(
        h.sent(),
        vec![
            (EmailKind::Outreach, "pat@a1.example".into()),
            (EmailKind::FollowUp, "pat@a1.example".into()),
        ]
    );
    assert!(h.store.all_tasks().is_empty(), "no CSM task");
    assert_eq!(h.status().await, MilestoneStatus::Recovered);
    assert_eq!(*h.workflows.stopped.lock().unwrap(), vec![request.execution.clone()]);
}

#[tokio::test]
async fn recovered_between_day_three_and_five_sends_no_leadership_email() {
    let (h, request) = Harness::missed().await;
    let run = h
        .run(&request, async |h, step| {
            if step == Step::Leadership {
                h.customer_catches_up().await;
            }
        })
        .await;

    assert_eq!(run.end_state, "Recovered");
    assert_eq!(run.steps(), ALL_STEPS[..5]);
    let kinds: Vec<EmailKind> = h.sent().into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds, [EmailKind::Outreach, EmailKind::FollowUp, EmailKind::CsmTask]);
    let tasks = h.store.all_tasks();
    assert_eq!(tasks.len(), 1);
    assert_eq!(h.status().await, MilestoneStatus::Recovered);
    // The CSM's task closes itself the moment the customer catches up.
    let closed = tasks[0].closed().expect("the task is closed");
    let reason = closed.reason.as_str();
    assert_eq!(
        (tasks[0].status(), reason),
        (milepost_domain::TaskStatus::Done, "customer_recovered")
    );
    let closings: Vec<_> = h
        .events
        .events()
        .into_iter()
        .filter_map(|e| match e {
            DomainEvent::TaskClosed { reason, status, .. } => Some((status, reason)),
            _ => None,
        })
        .collect();
    assert_eq!(closings, [("done".to_string(), "customer_recovered".to_string())]);
}

#[tokio::test]
async fn a_passing_ses_fault_is_retried_by_the_state_machine_and_delivered_once() {
    let (h, request) = Harness::missed().await;
    h.mailer.fail_transiently("pat@a1.example", 2);
    let run = h.run(&request, async |_, _| {}).await;

    assert_eq!(
        run.count("StateRetried", "Day1Email"),
        2,
        "two retries by the Retry field"
    );
    assert_eq!(
        run.events
            .iter()
            .filter(|(e, _, err)| e == "StateFailed" && err.as_deref() == Some(InvocationError::TRANSIENT))
            .count(),
        2
    );
    assert_eq!(run.count("StateCaught", "Day1Email"), 0);
    let outreach = h.sent().iter().filter(|(k, _)| *k == EmailKind::Outreach).count();
    assert_eq!(outreach, 1, "the retried step sent the email once");
    assert_eq!(
        h.mailer.attempts(),
        3 + 8,
        "three attempts for the outreach email, one for each other"
    );
    assert_eq!(run.end_state, "PlaybookCompleted");
}

/// Issue 19's first suspect: a burst beyond SES's sending rate used to be
/// retried as a passing fault and, past the Retry blocks' five tries,
/// caught and recorded as failed. It is deferred instead, as often as it
/// takes, and sent.
#[tokio::test]
async fn a_burst_beyond_the_ses_send_rate_is_deferred_and_sent_not_failed() {
    let (h, request) = Harness::missed().await;
    let retries = milepost_app::escalation::retry::STEP_RETRY.max_retries;
    h.mailer.throttle("pat@a1.example", retries * 2 + 2);
    let run = h.run(&request, async |_, _| {}).await;

    assert_eq!(run.count("StateCaught", "Day1Email"), 0, "not recorded as failed");
    assert_eq!(
        run.count("StateEntered", "Day1EmailDeferred") as u32,
        retries * 2 + 2,
        "each throttled try waits and comes back"
    );
    let outreach = h.sent().iter().filter(|(k, _)| *k == EmailKind::Outreach).count();
    assert_eq!(outreach, 1, "sent once the rate allows");
    let log = h.store.log_of(&AccountId::new("a1")).await.unwrap();
    assert!(log.iter().all(|e| !e.detail.contains("failed")), "{log:#?}");
    assert!(log
        .iter()
        .any(|e| e.step == Some(Step::OutreachEmail) && e.detail == "outreach email sent"));
    assert_eq!(run.end_state, "PlaybookCompleted");
}

/// Issue 19's second suspect: a send claim left by an attempt that stopped
/// mid-send used to read as "sent". Past its lease it is an unknown outcome:
/// the step adopts it with its email and lists it, the log says it will be
/// settled from SES's events, and the step does not send it blindly (SES
/// takes no idempotency key, so a second send could deliver it twice; the
/// settling is `settle.rs`'s).
#[tokio::test]
async fn a_send_claim_left_by_a_crashed_attempt_is_logged_as_unknown_not_as_sent() {
    use milepost_app::ports::{Clock, SendClaim, SendLedger, SendRecord};
    let (h, request) = Harness::missed().await;
    let key = milepost_domain::SendKey::new(format!("{}:outreach_email:customer", request.execution));
    let crashed = SendClaim::fresh(h.clock.now());
    assert_eq!(h.store.claim_send(&key, &crashed).await.unwrap(), None);
    let run = h.run(&request, async |_, _| {}).await;

    let outreach = h.sent().iter().filter(|(k, _)| *k == EmailKind::Outreach).count();
    assert_eq!(outreach, 0, "not sent a second time");
    let log = h.store.log_of(&AccountId::new("a1")).await.unwrap();
    let said: Vec<&str> = log
        .iter()
        .filter(|e| e.step == Some(Step::OutreachEmail))
        .map(|e| e.detail.as_str())
        .collect();
    assert_eq!(
        said,
        ["outreach email handed to the mail service without an answer (an attempt stopped while sending it): settled from its delivery events, sent again only if it never took it"]
    );
    assert!(matches!(
        h.store.send_record(&key).await.unwrap(),
        Some(SendRecord::Unknown { email: Some(_), .. })
    ));
    assert_eq!(
        h.store.unsettled_sends(10).await.unwrap(),
        std::slice::from_ref(&key),
        "listed for the settling"
    );
    assert_eq!(run.steps(), ALL_STEPS, "the playbook went on");
}

/// Another attempt's claim that is still live (its Lambda is sending right
/// now, or stopped mid-send) is waited for, not logged as sent before it
/// is: the step is deferred until the claim's lease ends (not retried: its
/// retries would be spent inside the lease) and finds the send settled.
#[tokio::test]
async fn a_send_claimed_by_a_live_attempt_is_waited_for() {
    use milepost_app::ports::{SendClaim, SendLedger, SendRecord};
    let (h, request) = Harness::missed().await;
    let key = milepost_domain::SendKey::new(format!("{}:outreach_email:customer", request.execution));
    let due = Step::OutreachEmail.due(&request.schedule);
    let other = SendClaim::fresh(due);
    assert_eq!(h.store.claim_send(&key, &other).await.unwrap(), None);
    let mut tries = 0;
    let run = h
        .run(&request, async |h, step| {
            if step == Step::OutreachEmail {
                tries += 1;
                if tries == 2 {
                    // The other attempt's send went through meanwhile.
                    let sent = SendRecord::Sent {
                        subject: None,
                        message_id: "m-1".into(),
                    };
                    h.store.settle_send(&key, &sent).await.unwrap();
                }
            }
        })
        .await;

    assert_eq!(run.count("StateEntered", "Day1EmailDeferred"), 1);
    assert_eq!(run.count("StateRetried", "Day1Email"), 0);
    assert_eq!(run.count("StateCaught", "Day1Email"), 0);
    let outreach = h.sent().iter().filter(|(k, _)| *k == EmailKind::Outreach).count();
    assert_eq!(outreach, 0, "the other attempt sent it; this one did not");
    let log = h.store.log_of(&AccountId::new("a1")).await.unwrap();
    let said: Vec<&str> = log
        .iter()
        .filter(|e| e.step == Some(Step::OutreachEmail))
        .map(|e| e.detail.as_str())
        .collect();
    assert_eq!(said, ["outreach email sent"]);
}

/// A bus on which the customer catches up the moment the day-3 task opens:
/// the reached milestone arrives while the step is between its first look
/// at the milestone and its email.
struct CatchUpWhenTheTaskOpens {
    bus: RecordingPublisher,
    services: std::sync::OnceLock<Services>,
    fired: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl milepost_app::ports::EventPublisher for CatchUpWhenTheTaskOpens {
    async fn publish(&self, events: &[DomainEvent]) -> Result<(), milepost_app::ports::PublishError> {
        self.bus.publish(events).await?;
        let opened = events.iter().any(|e| matches!(e, DomainEvent::TaskOpened { .. }));
        if opened && !self.fired.swap(true, std::sync::atomic::Ordering::SeqCst) {
            let services = self.services.get().expect("wired");
            let body = serde_json::to_vec(&workflows_done("a1", services.clock.now())).unwrap();
            services.ingestion().ingest(parse_body(&body).unwrap()).await.unwrap();
        }
        Ok(())
    }
}

/// Issue 19's third suspect: the "reached meanwhile?" look came first, and
/// between it and the email a step makes a dozen store and bus calls (the
/// day-3 step: account, stage, task, its opening published, health, log), so
/// a customer who caught up in that window still got that step's email. The
/// step now looks again with the send key held, right before the send.
#[tokio::test]
async fn a_customer_who_catches_up_while_a_step_runs_gets_none_of_its_email() {
    let store = Arc::new(InMemoryStore::new());
    let mailer = Arc::new(MemoryMailer::default());
    let bus = Arc::new(CatchUpWhenTheTaskOpens {
        bus: RecordingPublisher::default(),
        services: std::sync::OnceLock::new(),
        fired: false.into(),
    });
    let clock = Arc::new(VirtualClock::new(contract_start()));
    let workflows = Arc::new(CapturedStarts::default());
    let services = Services {
        store: store.clone(),
        mailer: mailer.clone(),
        events: bus.clone(),
        workflows: workflows.clone(),
        clock: clock.clone(),
        config: milepost_embedded::fixtures::simulation_config(),
        links: Some(milepost_embedded::fixtures::links()),
    };
    let _ = bus.services.set(services.clone());
    store
        .put_map(&load_map("escalation.yaml", ESCALATION_MAP).unwrap())
        .await
        .unwrap();
    services.ingestion().upsert_account(&account("a1")).await.unwrap();
    clock.set(contract_start() + Duration::days(10) + Duration::hours(1));
    services.sweeper().sweep(&SweepOptions::default()).await.unwrap();
    let request = workflows
        .started
        .lock()
        .unwrap()
        .iter()
        .find(|r| r.milestone_id == "first_workflow")
        .cloned()
        .unwrap();
    clock.set(Step::CsmTask.due(&request.schedule));

    let outcome = services.playbook().run_step(&request, Step::CsmTask).await.unwrap();

    assert_eq!(outcome, milepost_domain::StepOutcome::Recovered);
    assert!(
        bus.fired.load(std::sync::atomic::Ordering::SeqCst),
        "the customer caught up mid-step"
    );
    let csm_mail: Vec<_> = mailer
        .sent()
        .into_iter()
        .filter(|e| e.kind == EmailKind::CsmTask)
        .collect();
    assert!(csm_mail.is_empty(), "no CSM email about a milestone already reached");
    let tasks = store.all_tasks();
    assert_eq!(tasks.len(), 1);
    assert_eq!(
        tasks[0].closed().map(|c| c.reason.as_str()),
        Some("customer_recovered"),
        "the task opened a moment before closes itself"
    );
    let key = milepost_domain::SendKey::new(format!("{}:csm_task:csm", request.execution));
    assert_eq!(
        milepost_app::ports::SendLedger::send_record(store.as_ref(), &key)
            .await
            .unwrap(),
        None,
        "the key was given back, not left claimed"
    );
}

#[tokio::test]
async fn a_rejected_address_is_recorded_and_the_playbook_goes_on() {
    let (h, request) = Harness::missed().await;
    h.mailer.reject("pat@a1.example");
    let run = h.run(&request, async |_, _| {}).await;

    assert_eq!(run.steps(), ALL_STEPS, "every later step still ran");
    assert_eq!(run.end_state, "PlaybookCompleted");
    let kinds: Vec<EmailKind> = h.sent().into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        kinds[..3],
        [EmailKind::CsmTask, EmailKind::Leadership, EmailKind::ExecSponsor],
        "the CSM, the leader and the sponsor still got theirs"
    );
    assert_eq!(kinds[3..], after_lapse_emails().map(|(k, _)| k));
    let log = h.store.log_of(&AccountId::new("a1")).await.unwrap();
    let rejected: Vec<_> = log.iter().filter(|e| e.detail.contains("rejected")).collect();
    assert_eq!(
        rejected.len(),
        2,
        "outreach and follow-up, each recorded once: {log:#?}"
    );
    assert!(
        rejected.iter().all(|e| !e.detail.contains("pat@a1.example")),
        "no address in the log"
    );
}

#[tokio::test]
async fn a_step_that_keeps_failing_is_caught_recorded_and_the_playbook_goes_on() {
    let (h, request) = Harness::missed().await;
    // The CSM's mailbox keeps throttling: the day-3 step's retries run out.
    let run = h
        .run(&request, async |h, step| {
            if step == Step::CsmTask {
                h.mailer.fail_transiently("maya@vendor.example", 100);
            }
        })
        .await;

    assert_eq!(run.attempts(Step::CsmTask), 6, "the first attempt and five retries");
    assert_eq!(run.count("StateCaught", "Day3CsmTask"), 1);
    let recorded: Vec<_> = run.invocations.iter().filter(|i| i.failure.is_some()).collect();
    // The mailbox still throttles after the lapse: the raise to the owner fails as well, and is caught too.
    assert_eq!(recorded.len(), 2);
    assert_eq!(
        (recorded[0].function.as_str(), recorded[0].step),
        ("escalate", Step::CsmTask)
    );
    assert_eq!(recorded[1].step, Step::AfterLapse);
    assert_eq!(recorded[0].failure.as_deref(), Some(InvocationError::TRANSIENT));
    let log = h.store.log_of(&AccountId::new("a1")).await.unwrap();
    assert!(
        log.iter()
            .any(|e| e.step == Some(Step::CsmTask) && e.detail.contains("failed")),
        "{log:#?}"
    );
    assert_eq!(run.steps(), ALL_STEPS, "day 5 still ran");
    assert_eq!(run.end_state, "PlaybookCompleted");
    assert_eq!(
        h.store.all_tasks().len(),
        1,
        "the task, created before the email failed, once"
    );
}
