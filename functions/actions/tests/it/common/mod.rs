//! The action-link tests' common harness: account `a1` with its day-3
//! tasks opened, on the embedded store or on DynamoDB (moto), and requests
//! through the real handler.

#![allow(dead_code)]

use std::sync::Arc;

use chrono::Duration;
use lambda_http::http::{HeaderValue, Method};
use lambda_http::{Body, Request, Response};
use milepost_actions::handle;
use milepost_app::actions::Actions;
use milepost_app::links::{ActionLinks, LinkAction};
use milepost_app::ports::Store;
use milepost_app::sweep::SweepOptions;
use milepost_app::Services;
use milepost_aws::DynamoStore;
use milepost_domain::{AccountId, CsmTask, Step, TaskStatus};
use milepost_embedded::fixtures::escalation::{account, contract_start, ESCALATION_MAP};
use milepost_embedded::fixtures::{links, simulation_config};
use milepost_embedded::{InMemoryStore, LocalWorkflowRunner, MemoryMailer, RecordingPublisher, VirtualClock};
use milepost_local::MotoServer;

pub struct Setup<'a> {
    pub services: Services,
    pub actions: Actions,
    pub store: Arc<dyn Store>,
    pub events: Arc<RecordingPublisher>,
    pub mailer: Arc<MemoryMailer>,
    pub clock: Arc<VirtualClock>,
    pub runner: Arc<LocalWorkflowRunner>,
    pub links: ActionLinks,
    /// On DynamoDB: the emulator, recording what the handler asks of AWS.
    pub moto: Option<&'a MotoServer>,
}

/// Account `a1` on the escalation map, its milestones missed on day 31 and
/// the day-3 tasks opened: `first_workflow`'s, `team_invited`'s and the
/// manual `sponsor_named`'s, all Maya's.
pub async fn setup(store: Arc<dyn Store>) -> Setup<'static> {
    let clock = Arc::new(VirtualClock::new(contract_start()));
    let (events, mailer, runner) = (
        Arc::new(RecordingPublisher::default()),
        Arc::new(MemoryMailer::default()),
        Arc::new(LocalWorkflowRunner::new()),
    );
    let services = Services {
        store: store.clone(),
        mailer: mailer.clone(),
        events: events.clone(),
        workflows: runner.clone(),
        clock: clock.clone(),
        config: simulation_config(),
        links: Some(links()),
    };
    store
        .put_map(&milepost_maps::load_map("m.yaml", ESCALATION_MAP).unwrap())
        .await
        .unwrap();
    services.ingestion().upsert_account(&account("a1")).await.unwrap();
    clock.set(contract_start() + Duration::days(31));
    services.sweeper().sweep(&SweepOptions::default()).await.unwrap();
    for e in runner.executions() {
        services.playbook().run_step(&e.request, Step::CsmTask).await.unwrap();
    }
    let actions = services.actions().unwrap();
    Setup {
        services,
        actions,
        store,
        events,
        mailer,
        clock,
        runner,
        links: links(),
        moto: None,
    }
}

pub async fn in_memory() -> Setup<'static> {
    setup(Arc::new(InMemoryStore::sized_like_dynamodb())).await
}

pub async fn on_dynamodb<'a>(moto: &'a MotoServer, table: &str) -> Setup<'a> {
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let store = DynamoStore::new(client, table);
    store.create_table().await.unwrap();
    Setup {
        moto: Some(moto),
        ..setup(Arc::new(store)).await
    }
}

impl Setup<'_> {
    /// The escalation the sweep started for `milestone`.
    pub fn execution(&self, milestone: &str) -> milepost_embedded::runner::Execution {
        self.runner
            .executions()
            .into_iter()
            .find(|e| e.request.milestone_id == milestone)
            .unwrap()
    }

    pub async fn task(&self, milestone: &str) -> CsmTask {
        let e = self.execution(milestone);
        self.store
            .get_task(&CsmTask::id_for(&e.request.execution))
            .await
            .unwrap()
            .unwrap()
    }

    /// The token of the link `owner` got for `action` on `milestone`'s task.
    pub async fn token(&self, milestone: &str, action: LinkAction) -> String {
        let task = self.task(milestone).await;
        self.token_for(&task, action, &task.brief().owner_email)
    }

    pub fn token_for(&self, task: &CsmTask, action: LinkAction, recipient: &str) -> String {
        let url = self.links.url(action, task.id(), recipient, self.clock_now());
        url.rsplit('/').next().unwrap().to_string()
    }

    pub fn clock_now(&self) -> milepost_domain::Timestamp {
        use milepost_app::ports::Clock;
        self.clock.now()
    }

    pub async fn get(&self, token: &str) -> Response<Body> {
        self.handle(request(Method::GET, token, "")).await
    }

    pub async fn post(&self, token: &str, form: &str) -> Response<Body> {
        self.handle(request(Method::POST, token, form)).await
    }

    /// The handler, with the emulator recording what it asks of AWS.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        if let Some(moto) = self.moto {
            moto.record_requests(true).await;
        }
        let response = handle(&self.actions, request).await;
        if let Some(moto) = self.moto {
            moto.record_requests(false).await;
        }
        response
    }

    /// What a change would touch: the tasks, the log and the bus, as they stand.
    pub async fn snapshot(&self) -> (Vec<CsmTask>, usize, usize) {
        let mut tasks = Vec::new();
        for s in TaskStatus::ALL {
            tasks.extend(self.store.tasks_with_status(s).await.unwrap());
        }
        tasks.sort_by(|a, b| a.id().cmp(b.id()));
        let log = self.store.log_of(&AccountId::new("a1")).await.unwrap().len();
        (tasks, log, self.events.events().len())
    }
}

pub fn request(method: Method, token: &str, form: &str) -> Request {
    request_at(method, &format!("https://actions.example/v1/actions/{token}"), form)
}

pub fn request_at(method: Method, url: &str, form: &str) -> Request {
    let mut req = Request::new(Body::from(form.to_string()));
    *req.method_mut() = method;
    *req.uri_mut() = url.parse().unwrap();
    if !form.is_empty() {
        req.headers_mut().insert(
            "content-type",
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
    }
    req
}

pub fn text(resp: &Response<Body>) -> String {
    String::from_utf8_lossy(resp.body().as_ref()).into_owned()
}

impl Setup<'_> {
    /// Runs `step` of `milestone`'s escalation; returns the emails it sent.
    pub async fn run(&self, milestone: &str, step: Step) -> Vec<milepost_domain::OutgoingEmail> {
        let e = self.execution(milestone);
        let before = self.mailer.sent().len();
        // As the state machine does: a step the contact policy defers runs again at its slot.
        while let milepost_domain::StepOutcome::Deferred(at) =
            self.services.playbook().run_step(&e.request, step).await.unwrap()
        {
            self.clock.set(at);
        }
        self.mailer.sent().into_iter().skip(before).collect()
    }

    pub async fn suppressed(&self) -> Vec<milepost_domain::Suppression> {
        self.store.suppressions().await.unwrap()
    }
}

/// What a mail client's one-click unsubscribe sends (RFC 8058).
pub const ONE_CLICK: &str = "List-Unsubscribe=One-Click";
