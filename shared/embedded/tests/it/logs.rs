//! What the logs say when something fails: which account, milestone and step
//! (ids from the span the line was written in), never a name or an address.
//! The subscriber is the JSON one the Lambdas use, writing into a buffer.

use std::io::Write;
use std::sync::{Arc, Mutex};

use chrono::Duration;
use milepost_app::ports::{AccountStore, MapStore, MilestoneStore};
use milepost_app::sweep::SweepOptions;
use milepost_app::Services;
use milepost_domain::{AccountId, TrackedMilestone};
use milepost_embedded::fixtures::escalation::{account, contract_start, ESCALATION_MAP};
use milepost_embedded::fixtures::simulation_config;
use milepost_embedded::{InMemoryStore, LocalWorkflowRunner, MemoryMailer, RecordingPublisher, VirtualClock};
use milepost_maps::load_map;
use serde_json::Value;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    fn lines(&self) -> Vec<Value> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// As `milepost_aws::lambda::init_logging` sets it up, for this thread only.
fn capture() -> (Buffer, tracing::subscriber::DefaultGuard) {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .with_writer(move || writer.clone())
        .finish();
    (buffer, tracing::subscriber::set_default(subscriber))
}

fn services(store: Arc<InMemoryStore>, mailer: Arc<MemoryMailer>, clock: Arc<VirtualClock>) -> Services {
    Services {
        store,
        mailer,
        events: Arc::new(RecordingPublisher::default()),
        workflows: Arc::new(LocalWorkflowRunner::new()),
        clock,
        config: simulation_config(),
        links: Some(milepost_embedded::fixtures::links()),
    }
}

fn error_lines(buffer: &Buffer, message: &str) -> Vec<Value> {
    buffer
        .lines()
        .into_iter()
        .filter(|l| l["level"] == "ERROR" && l["fields"]["message"].as_str().is_some_and(|m| m.contains(message)))
        .collect()
}

#[tokio::test]
async fn a_sweep_failure_names_the_account_and_milestone() {
    let (buffer, _guard) = capture();
    let store = Arc::new(InMemoryStore::new());
    let clock = Arc::new(VirtualClock::new(contract_start()));
    let s = services(store.clone(), Arc::new(MemoryMailer::default()), clock.clone());
    // A milestone whose account is gone: the sweep cannot escalate it.
    let map = load_map("m.yaml", ESCALATION_MAP).unwrap();
    let orphan = account("orphan-7");
    store
        .create_milestone(&TrackedMilestone::new(&orphan, &map, &map.milestones[0]))
        .await
        .unwrap();
    clock.set(contract_start() + Duration::days(11));
    let report = s.sweeper().sweep(&SweepOptions::default()).await.unwrap();
    assert_eq!(report.failed, 1);
    let lines = error_lines(&buffer, "sweep could not handle a due milestone");
    assert_eq!(lines.len(), 1, "{:#?}", buffer.lines());
    assert_eq!(lines[0]["span"]["account_id"], "orphan-7");
    assert_eq!(lines[0]["span"]["milestone_id"], "first_workflow");
}

#[tokio::test]
async fn a_failed_playbook_step_names_its_escalation_and_no_address() {
    let (buffer, _guard) = capture();
    let store = Arc::new(InMemoryStore::new());
    let mailer = Arc::new(MemoryMailer::default());
    let clock = Arc::new(VirtualClock::new(contract_start()));
    let runner = Arc::new(LocalWorkflowRunner::new());
    let s = Services {
        workflows: runner.clone(),
        ..services(store.clone(), mailer.clone(), clock.clone())
    };
    store
        .put_map(&load_map("m.yaml", ESCALATION_MAP).unwrap())
        .await
        .unwrap();
    let a1 = account("a1");
    s.ingestion().upsert_account(&a1).await.unwrap();
    // The customer's address refuses every email: day 1's outreach fails for good.
    mailer.fail_transiently("pat@a1.example", 1000);
    let mut t = contract_start();
    while t < contract_start() + Duration::days(12) {
        t += Duration::minutes(30);
        clock.set(t);
        s.sweeper().sweep(&SweepOptions::default()).await.unwrap();
        runner.run_due(&s.playbook(), t).await;
    }
    let lines = error_lines(&buffer, "playbook step failed");
    assert!(!lines.is_empty(), "{:#?}", buffer.lines());
    let span = &lines[0]["span"];
    assert_eq!(span["account_id"], "a1");
    assert_eq!(span["milestone_id"], "first_workflow");
    assert_eq!(span["step"], "outreach_email");
    assert!(span["execution"]
        .as_str()
        .is_some_and(|e| e.starts_with("a1-first_workflow-")));
    assert!(store.get_account(&AccountId::new("a1")).await.unwrap().is_some());
    let everything = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    for private in [
        "pat@a1.example",
        "maya@vendor.example",
        &a1.name,
        &a1.primary_contact.name,
    ] {
        assert!(!everything.contains(private), "the logs name {private:?}");
    }
}

/// An email handed over without an answer, whose outcome SES's events never
/// settle within a day, logs the one message the template's
/// `EmailOutcomeUnknown` metric filters match (read from the template
/// here), once, with ids and no address; it is never sent again blindly.
#[tokio::test]
async fn an_email_of_unknown_outcome_logs_what_the_alarm_counts() {
    let template = include_str!("../../../../infra/template.yaml");
    let pattern = template
        .lines()
        .find(|l| l.contains("FilterPattern") && l.contains("email outcome unknown"))
        .expect("the template counts unknown email outcomes");
    let message = pattern.split('"').nth(1).expect("a quoted message");

    let (buffer, _guard) = capture();
    let store = Arc::new(InMemoryStore::new());
    let mailer = Arc::new(MemoryMailer::default());
    let clock = Arc::new(VirtualClock::new(contract_start()));
    let runner = Arc::new(LocalWorkflowRunner::new());
    let s = Services {
        workflows: runner.clone(),
        ..services(store.clone(), mailer.clone(), clock.clone())
    };
    store
        .put_map(&load_map("m.yaml", ESCALATION_MAP).unwrap())
        .await
        .unwrap();
    s.ingestion().upsert_account(&account("a1")).await.unwrap();
    mailer.leave_unanswered("pat@a1.example", 1);
    let mut t = contract_start();
    while t < contract_start() + Duration::days(12) {
        t += Duration::minutes(30);
        clock.set(t);
        s.sweeper().sweep(&SweepOptions::default()).await.unwrap();
        runner.run_due(&s.playbook(), t).await;
        // No receipt ever comes: the stream is silent.
        s.settler().run().await.unwrap();
    }
    let lines: Vec<Value> = buffer
        .lines()
        .into_iter()
        .filter(|l| l["fields"]["message"] == message)
        .collect();
    assert_eq!(lines.len(), 1, "{:#?}", buffer.lines());
    assert_eq!(lines[0]["level"], "WARN");
    assert_eq!(lines[0]["span"]["name"], "settle_send");
    assert_eq!(lines[0]["fields"]["kind"], "outreach");
    assert!(!lines[0].to_string().contains('@'), "no address: {}", lines[0]);
    let outreach = mailer
        .sent()
        .into_iter()
        .filter(|m| m.kind == milepost_domain::EmailKind::Outreach)
        .count();
    assert_eq!(outreach, 0, "not sent again blindly");
    let log = milepost_app::ports::EscalationLog::log_of(store.as_ref(), &AccountId::new("a1"))
        .await
        .unwrap();
    assert!(
        log.iter().any(|e| e
            .detail
            .starts_with("outreach email handed to the mail service without an answer (connection reset")),
        "{log:#?}"
    );
}
