//! The playbook's three functions through their handler on the production
//! adapters — DynamoDB, SES (v2), EventBridge and Step Functions on a local
//! moto server. The sweep starts a real execution of the escalation state
//! machine there; its input drives each task as Step Functions would. What
//! SES accepted is read back from moto; tasks and history from DynamoDB.

use std::sync::Arc;

use chrono::Duration;
use milepost_app::escalation::invocation::{handle, PlaybookFunction, ReplyOutcome, StepInvocation, StepReply};
use milepost_app::ports::{Clock, EscalationLog, MapStore, MilestoneStore, TaskStore};
use milepost_app::sweep::SweepOptions;
use milepost_app::Config;
use milepost_app::Services;
use milepost_aws::{DynamoStore, EventBridgePublisher, SesMailer, StepFunctionsWorkflows};
use milepost_domain::{AccountId, MilestoneStatus};
use milepost_domain::{EscalationRequest, Step};
use milepost_embedded::fixtures::escalation::{account, contract_start, ESCALATION_MAP};
use milepost_embedded::VirtualClock;
use milepost_local::outbox::{sent_emails, verify_sender, EmulatorEmail};
use milepost_local::stack::{create_local_resources, create_local_state_machine, local_definition};
use milepost_local::MotoServer;
use milepost_maps::load_map;

const ASL: &str = include_str!("../../../../infra/statemachine/escalation.asl.json");
const TABLE: &str = "milepost-playbook-test";

struct Aws {
    moto: MotoServer,
    endpoint: String,
    sdk: aws_config::SdkConfig,
    services: Services,
    store: Arc<DynamoStore>,
    clock: Arc<VirtualClock>,
}

impl Aws {
    async fn start() -> Aws {
        let moto = MotoServer::start();
        let sdk = moto.sdk_config().await;
        create_local_resources(&sdk, TABLE, TABLE).await.unwrap();
        let state_machine = create_local_state_machine(&sdk, "escalation", &local_definition(ASL))
            .await
            .unwrap();
        let config = Config::default();
        verify_sender(&sdk, config.sender.email.as_str()).await.unwrap();
        let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), TABLE));
        let clock = Arc::new(VirtualClock::new(contract_start()));
        let services = Services {
            store: store.clone(),
            mailer: Arc::new(SesMailer::new(aws_sdk_sesv2::Client::new(&sdk), None)),
            events: Arc::new(EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&sdk), TABLE)),
            workflows: Arc::new(StepFunctionsWorkflows::new(
                aws_sdk_sfn::Client::new(&sdk),
                state_machine,
            )),
            clock: clock.clone(),
            config,
            links: Some(milepost_embedded::fixtures::links()),
        };
        store
            .put_map(&load_map("escalation.yaml", ESCALATION_MAP).unwrap())
            .await
            .unwrap();
        Aws {
            endpoint: moto.endpoint.clone(),
            moto,
            sdk,
            services,
            store,
            clock,
        }
    }

    /// Onboards `account`, lets its `first_workflow` go overdue and sweeps;
    /// returns the input of the execution the sweep started on Step Functions.
    async fn missed(&self, account: milepost_domain::Account) -> EscalationRequest {
        self.services.ingestion().upsert_account(&account).await.unwrap();
        self.clock
            .set(contract_start() + Duration::days(10) + Duration::hours(1));
        self.services.sweeper().sweep(&SweepOptions::default()).await.unwrap();
        let sfn = aws_sdk_sfn::Client::new(&self.sdk);
        let machines = sfn.list_state_machines().send().await.unwrap();
        let executions = sfn
            .list_executions()
            .state_machine_arn(&machines.state_machines[0].state_machine_arn)
            .send()
            .await
            .unwrap();
        for e in executions.executions {
            let described = sfn
                .describe_execution()
                .execution_arn(&e.execution_arn)
                .send()
                .await
                .unwrap();
            let request: EscalationRequest = serde_json::from_str(described.input().unwrap()).unwrap();
            if request.account_id == account.id && request.milestone_id == "first_workflow" {
                return request;
            }
        }
        panic!("no execution started for {}", account.id);
    }

    /// Runs a step as its function does when the state machine invokes it, at its scheduled time.
    /// A step the contact policy defers runs again at the time it names, as the state machine's Wait does.
    async fn step(&self, request: &EscalationRequest, step: Step) -> StepReply {
        let due = step.due(&request.schedule);
        self.clock
            .set(due.max(milepost_app::ports::Clock::now(self.clock.as_ref())));
        let input = StepInvocation {
            playbook_now: None,
            step,
            request: request.clone(),
            failure: None,
        };
        loop {
            let reply = handle(&self.services.playbook(), PlaybookFunction::for_step(step), &input)
                .await
                .unwrap_or_else(|e| panic!("{step:?}: {e}"));
            match reply.retry_at {
                Some(at) => self.clock.set(at),
                None => return reply,
            }
        }
    }

    async fn outbox(&self) -> Vec<EmulatorEmail> {
        sent_emails(&self.endpoint).await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_function_sends_its_email_through_ses_once_and_keeps_the_task_in_dynamodb() {
    let aws = Aws::start().await;
    let request = aws
        .missed(milepost_domain::Account {
            name: "Acme & <Sons>".into(),
            ..account("a1")
        })
        .await;

    for step in Step::ALL {
        aws.moto.record_requests(true).await;
        let output = aws.step(&request, step).await;
        assert_eq!(output.outcome, ReplyOutcome::Continue, "{step:?}");
        // Lambda runs a task again when a response is lost: nothing is sent twice.
        aws.step(&request, step).await;
        aws.moto.record_requests(false).await;
        // What the step asked of AWS, its function's policy grants.
        let function = match PlaybookFunction::for_step(step) {
            PlaybookFunction::Outreach => "OutreachFunction",
            PlaybookFunction::CsmTask => "CsmTaskFunction",
            PlaybookFunction::Escalate => "EscalateFunction",
        };
        let used = aws.moto.take_recorded_actions();
        assert!(used.contains("dynamodb:GetItem"), "{step:?} recorded {used:?}");
        milepost_local::iam::assert_granted(function, &used);
    }

    let sent = aws.outbox().await;
    assert!(sent[1].subject.starts_with("Re: "), "{}", sent[1].subject);
    let to: Vec<(&str, &str)> = sent
        .iter()
        .map(|e| (e.to[0].as_str(), e.subject.split(']').nth(1).unwrap_or("").trim()))
        .collect();
    assert_eq!(
        to,
        vec![
            ("\"Pat Admin\" <pat@a1.example>", "Next step: First workflow completed"),
            // The follow-up: a reply in the outreach's thread.
            ("\"Pat Admin\" <pat@a1.example>", "Next step: First workflow completed"),
            (
                "\"Maya CSM\" <maya@vendor.example>",
                "CSM task: First workflow completed missed, $50,000 ARR at risk"
            ),
            (
                "\"Customer Success leadership\" <lead@vendor.example>",
                "Escalation: First workflow completed 4 days overdue, $50,000 ARR at risk"
            ),
            (
                "\"Sam Sponsor\" <sam@a1.example>",
                "First workflow completed: can we count on your help?"
            ),
            // After the lapse: the untouched task raised to its owner, then
            // to the leader; the owner reminded 14 and 30 days on.
            (
                "\"Maya CSM\" <maya@vendor.example>",
                "No action in 5 business days, CSM task: First workflow completed missed, $50,000 ARR at risk"
            ),
            (
                "\"Customer Success leadership\" <lead@vendor.example>",
                "Raised to you: Maya CSM's task on First workflow completed, untouched 10 business days, $50,000 ARR at risk"
            ),
            (
                "\"Maya CSM\" <maya@vendor.example>",
                "14 days after the playbook, First workflow completed still missed, $50,000 ARR at risk"
            ),
            (
                "\"Maya CSM\" <maya@vendor.example>",
                "30 days after the playbook, First workflow completed still missed, $50,000 ARR at risk"
            ),
        ],
        "nine emails, once each, to the right people"
    );
    let sources: Vec<&str> = sent.iter().map(|e| e.source.as_str()).collect();
    // All from the verified sender; the customer's mail in the CSM's name.
    assert_eq!(
        sources,
        [
            "\"Maya CSM\" <success@milepost.example>",
            "\"Maya CSM\" <success@milepost.example>",
            "\"Milepost\" <success@milepost.example>",
            "\"Milepost\" <success@milepost.example>",
            "\"Maya CSM\" <success@milepost.example>",
            "\"Milepost\" <success@milepost.example>",
            "\"Milepost\" <success@milepost.example>",
            "\"Milepost\" <success@milepost.example>",
            "\"Milepost\" <success@milepost.example>",
        ]
    );
    for e in &sent {
        let subject = e.subject.strip_prefix("Re: ").unwrap_or(&e.subject);
        assert!(subject.starts_with("[Acme & <Sons>]"), "{}", e.subject);
        assert!(e.html.contains("Acme &amp; &lt;Sons&gt;") || e.html.contains("Acme &#38; &#60;Sons&#62;"));
        assert!(!e.html.contains("<Sons>"), "account data is escaped in HTML");
    }

    // The CSM task is in DynamoDB, open and owned by the CSM (read through the owner index).
    let tasks = aws
        .store
        .tasks_for_owner("maya@vendor.example", Some(milepost_domain::TaskStatus::Open))
        .await
        .unwrap();
    assert_eq!(tasks.len(), 1);
    let task = &tasks[0];
    assert_eq!(
        (task.brief().milestone_id.as_str(), task.brief().arr_at_risk),
        ("first_workflow", 50_000)
    );
    assert_eq!(task.brief().recommended_intervention, "Book a call");
    assert_eq!(task.brief().target, "2× workflow.completed");

    let history = aws.store.log_of(&AccountId::new("a1")).await.unwrap();
    let steps: Vec<Step> = history.iter().filter_map(|e| e.step).collect();
    for step in [
        Step::OutreachEmail,
        Step::CsmTask,
        Step::Leadership,
        Step::Finish,
        Step::AfterLapse,
    ] {
        assert!(steps.contains(&step), "{step:?} recorded: {history:#?}");
    }
    assert!(
        history.iter().all(|e| !e.detail.contains('@')),
        "no address in the history"
    );
    let m = aws
        .store
        .get_milestone(&AccountId::new("a1"), "first_workflow")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.status(), MilestoneStatus::Lapsed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_send_is_recorded_and_the_step_still_succeeds() {
    let mut aws = Aws::start().await;
    // SES rejects mail from a sender it has not verified (MessageRejected): permanent.
    aws.services.config.sender.email = milepost_embedded::fixtures::milepost_address("cs@unverified.example");
    let request = aws.missed(account("b1")).await;

    let output = aws.step(&request, Step::OutreachEmail).await;
    assert_eq!(output.outcome, ReplyOutcome::Continue, "the playbook goes on");
    aws.step(&request, Step::OutreachEmail).await;

    assert!(aws.outbox().await.is_empty(), "nothing was sent");
    let history = aws.store.log_of(&AccountId::new("b1")).await.unwrap();
    let rejected: Vec<_> = history.iter().filter(|e| e.detail.contains("rejected")).collect();
    assert_eq!(
        rejected.len(),
        1,
        "recorded once, however often the step runs: {history:#?}"
    );
    assert_eq!(aws.clock.now(), request.schedule.outreach_email_at);
}
