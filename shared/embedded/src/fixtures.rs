//! Fixtures shared by the tests of the crates above the embedded adapters.
//! Not part of Milepost's API; compiled always (see the domain's fixtures).

use std::sync::Arc;

use milepost_app::clock::SystemClock;
use milepost_app::links::{ActionLinks, LinkSigner, DEV_LINK_KEY};
use milepost_app::ports::Store;
use milepost_app::{Config, Services};
pub use milepost_domain::fixtures::{account, date, milepost_address};

use crate::{LocalWorkflowRunner, MemoryMailer, RecordingPublisher};

/// Services over `store` that keep emails in memory, record domain events,
/// run workflows in process and read the system clock: for tests that drive
/// ingestion against a real store and look only at what it stored.
pub fn quiet_services(store: Arc<dyn Store>) -> Services {
    Services {
        store,
        mailer: Arc::new(MemoryMailer::default()),
        events: Arc::new(RecordingPublisher::default()),
        workflows: Arc::new(LocalWorkflowRunner::new()),
        clock: Arc::new(SystemClock),
        config: Config::default(),
        links: Some(links()),
    }
}

/// Action links signed with the development key, pointing at the default endpoint.
pub fn links() -> ActionLinks {
    Config::default().links(LinkSigner::new(DEV_LINK_KEY.as_bytes()).expect("the development key is long enough"))
}

/// The configuration for harnesses that deliver a whole simulated history
/// while their clock still stands at its start: events dated ahead of that
/// clock are the point there, not a sender's clock gone wrong.
pub fn simulation_config() -> Config {
    let mut config = Config::default();
    config.time_limits.max_future_skew = chrono::Duration::days(3650);
    config
}

/// A map and an enterprise account whose milestones escalate to every stage,
/// for the playbook's tests: `first_workflow` (two `workflow.completed`,
/// due on day 10) escalates to the executive sponsor too.
pub mod escalation {
    use chrono::{Duration, NaiveDate};

    use milepost_domain::{Account, AccountId, Contact, ProductEvent, Segment, Timestamp};

    /// Contract start of `account`: 2026-03-02.
    pub fn contract_start() -> Timestamp {
        chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 3, 2, 0, 0, 0).unwrap()
    }

    pub const ESCALATION_MAP: &str = r#"segment: all
escalate_to_exec_sponsor: true
milestones:
  - id: first_workflow
    name: First workflow completed
    customer_title: First workflow completed
    phase: onboarding
    due_days: 10
    owner: csm
    criterion: {kind: event_count, event: workflow.completed, min: 2}
    arr_weight: 0.5
    playbook: {outreach: "Finish one workflow", csm: "Book a call", leadership: "Ask the sponsor", sponsor: "Could you name an owner for it?", guides: [{title: Workflow guide, url: "https://help.example.com/workflow"}]}
  - id: team_invited
    name: Three teammates active
    customer_title: Three teammates active
    phase: onboarding
    due_days: 20
    owner: csm
    criterion: {kind: distinct_users, event: user.active, min: 3}
    playbook: {outreach: "Invite your team", csm: "Run a demo", leadership: "Ask for a rollout", sponsor: "Could you announce the rollout?"}
  - id: sponsor_named
    name: Executive sponsor named
    phase: onboarding
    due_days: 30
    owner: csm
    criterion: {kind: manual}
    playbook: {csm: "Map the org", leadership: "Peer outreach"}
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

/// An open task of `owner` on acme's `first` milestone, opened at `opened`,
/// as the day-3 step would create it (no closure, notes or links yet).
pub fn task(id: &str, owner: &str, opened: milepost_domain::Timestamp) -> milepost_domain::CsmTask {
    task_on(milepost_domain::AccountId::new("acme"), "first", id, owner, opened)
}

/// `task`, on `account`'s `milestone`.
pub fn task_on(
    account: milepost_domain::AccountId,
    milestone: &str,
    id: &str,
    owner: &str,
    opened: milepost_domain::Timestamp,
) -> milepost_domain::CsmTask {
    use milepost_domain::{CsmTask, TaskBrief};
    CsmTask::open(
        id.into(),
        TaskBrief {
            follow_up_not_sent: false,
            sla: None,
            account_id: account,
            account_name: "Acme".into(),
            milestone_id: milestone.into(),
            milestone_name: "First".into(),
            owner_role: "csm".into(),
            owner_is_fallback: false,
            owner_email: owner.into(),
            owner_name: "Maya".into(),
            created_at: opened,
            due_at: opened - chrono::Duration::days(2),
            target: "1× a".into(),
            current: "0 so far".into(),
            health: milepost_domain::health::Health {
                score: 50,
                trend: 0,
                factors: vec![],
            },
            arr_at_risk: 1000,
            recommended_intervention: "call".into(),
            recent_activity: vec![],
            other_activity: 0,
        },
    )
}
