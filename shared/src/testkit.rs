//! Fixtures shared by the tests of this crate and of the crates above it.
//! Not part of Milepost's API.

use chrono::NaiveDate;

use crate::domain::{Account, AccountId, Contact, Segment};

/// Services over `store` that send nothing, record domain events, run
/// workflows in process and read the system clock: for tests that drive
/// ingestion against a real store and look only at what it stored.
pub fn quiet_services(store: std::sync::Arc<dyn crate::ports::Store>) -> crate::Services {
    use std::sync::Arc;

    use crate::embedded::{LocalWorkflowRunner, NoMailer, RecordingPublisher, SystemClock};
    crate::Services {
        store,
        mailer: Arc::new(NoMailer),
        events: Arc::new(RecordingPublisher::default()),
        workflows: Arc::new(LocalWorkflowRunner::new()),
        clock: Arc::new(SystemClock),
        config: crate::services::Config::default(),
    }
}

/// A plain first-year SMB account starting on `contract_start`, with every
/// contact at `<role>@<id>.example` (the CSM and leader at `vendor.example`).
/// Adjust what a test cares about with struct update syntax.
pub fn account(id: &str, contract_start: NaiveDate) -> Account {
    // Addresses take the id's letters and digits only: ids may hold anything, addresses may not.
    let domain: String = id.chars().filter(char::is_ascii_alphanumeric).collect();
    Account {
        id: AccountId::new(id),
        name: format!("Customer {id}"),
        segment: Segment::Smb,
        contract_start,
        renewal_date: contract_start + chrono::Duration::days(365),
        tenure_year: 1,
        arr: 10_000,
        licensed_seats: 10,
        primary_contact: Contact::parse("Pat Admin", &format!("pat@{domain}.example")).expect("a valid address"),
        csm: Contact::parse("Maya CSM", "maya@vendor.example").expect("a valid address"),
        cs_leader_email: milepost_address("lead@vendor.example"),
        exec_sponsor: None,
        timezone: chrono_tz::UTC,
        goal: None,
        traits_at: None,
    }
}

/// The configuration for harnesses that deliver a whole simulated history
/// while their clock still stands at its start: events dated ahead of that
/// clock are the point there, not a sender's clock gone wrong.
pub fn simulation_config() -> crate::services::Config {
    let mut config = crate::services::Config::default();
    config.time_limits.max_future_skew = chrono::Duration::days(3650);
    config
}

/// A fixture's address, parsed as every address is.
pub fn milepost_address(text: &str) -> crate::domain::EmailAddress {
    crate::domain::EmailAddress::parse(text).expect("a valid fixture address")
}

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

/// A moto server (the local AWS emulator) on a free loopback port, stopped on drop.
/// `make test` installs moto into `.venv`; it runs through `tests/moto_serial.py`,
/// one request at a time, because threaded moto does not make conditional
/// writes atomic. `MILEPOST_PYTHON` overrides the interpreter.
pub struct MotoServer {
    child: std::process::Child,
    pub endpoint: String,
}

impl MotoServer {
    pub fn start() -> MotoServer {
        let python = std::env::var("MILEPOST_PYTHON")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python").to_string());
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/moto_serial.py");
        assert!(
            std::path::Path::new(&python).exists(),
            "{python} not found: run `make test`, which installs moto into .venv"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let child = std::process::Command::new(&python)
            .args([script, "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting moto with {python}: {e}"));
        let server = MotoServer {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "moto_server did not start within 30 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        server
    }

    /// SDK configuration pointing at this server, with dummy credentials.
    #[cfg(feature = "aws")]
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "test",
                "test",
                None,
                None,
                "milepost-tests",
            ))
            .load()
            .await
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A map and an enterprise account whose milestones escalate to every stage,
/// for the playbook's tests: `first_workflow` (two `workflow.completed`,
/// due on day 10) escalates to the executive sponsor too.
pub mod escalation {
    use chrono::{Duration, NaiveDate};

    use crate::domain::{Account, AccountId, Contact, ProductEvent, Segment, Timestamp};

    /// Contract start of `account`: 2026-03-02.
    pub fn contract_start() -> Timestamp {
        chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 3, 2, 0, 0, 0).unwrap()
    }

    pub const ESCALATION_MAP: &str = r#"segment: all
escalate_to_exec_sponsor: true
milestones:
  - id: first_workflow
    name: First workflow completed
    phase: onboarding
    due_days: 10
    owner: csm
    criterion: {kind: event_count, event: workflow.completed, min: 2}
    arr_weight: 0.5
    playbook: {outreach: "Finish one workflow", csm: "Book a call", leadership: "Ask the sponsor", guides: [Workflow guide]}
  - id: team_invited
    name: Three teammates active
    phase: onboarding
    due_days: 20
    owner: csm
    criterion: {kind: distinct_users, event: user.active, min: 3}
    playbook: {outreach: "Invite your team", csm: "Run a demo", leadership: "Ask for a rollout"}
  - id: sponsor_named
    name: Executive sponsor named
    phase: onboarding
    due_days: 30
    owner: csm
    criterion: {kind: manual}
    playbook: {outreach: "Who owns this?", csm: "Map the org", leadership: "Peer outreach"}
"#;

    pub fn account(id: &str) -> Account {
        Account {
            segment: Segment::Enterprise,
            arr: 100_000,
            licensed_seats: 20,
            exec_sponsor: Some(Contact::parse("Sam Sponsor", &format!("sam@{id}.example")).expect("a valid address")),
            goal: Some("close the books in 3 days".into()),
            ..super::account(id, NaiveDate::from_ymd_opt(2026, 3, 2).unwrap())
        }
    }

    pub fn event(id: &str, account: &str, name: &str, at: Timestamp, user: &str) -> ProductEvent {
        ProductEvent {
            id: id.into(),
            account_id: AccountId::new(account),
            event: name.into(),
            timestamp: at,
            user_id: Some(user.into()),
            properties: Default::default(),
        }
    }

    /// The two events that reach `first_workflow` (min 2), an hour apart ending at `at`.
    pub fn workflows_done(account: &str, at: Timestamp) -> [ProductEvent; 2] {
        let id = |n| format!("{account}-wf{n}-{}", at.timestamp());
        [
            event(&id(1), account, "workflow.completed", at - Duration::hours(1), "u1"),
            event(&id(2), account, "workflow.completed", at, "u1"),
        ]
    }
}
