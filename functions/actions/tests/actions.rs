//! The action links, through the real handler, on the embedded store and on
//! DynamoDB (moto): `GET` changes nothing, `POST` acts once, every bad link
//! gets its 4xx page and changes nothing, and what was done lands on the
//! task, the account's log and the bus.

use std::sync::Arc;

use chrono::Duration;
use lambda_http::http::{HeaderValue, Method, StatusCode};
use lambda_http::{Body, Request, Response};
use milepost_actions::handle;
use milepost_app::actions::Actions;
use milepost_app::links::{ActionLinks, LinkAction};
use milepost_app::ports::Store;
use milepost_app::sweep::SweepOptions;
use milepost_app::Services;
use milepost_aws::DynamoStore;
use milepost_domain::{AccountId, CsmTask, DomainEvent, MilestoneStatus, Step, TaskStatus};
use milepost_embedded::fixtures::escalation::{account, contract_start, ESCALATION_MAP};
use milepost_embedded::fixtures::{links, simulation_config};
use milepost_embedded::{InMemoryStore, LocalWorkflowRunner, MemoryMailer, RecordingPublisher, VirtualClock};
use milepost_local::MotoServer;

struct Setup<'a> {
    services: Services,
    actions: Actions,
    store: Arc<dyn Store>,
    events: Arc<RecordingPublisher>,
    mailer: Arc<MemoryMailer>,
    clock: Arc<VirtualClock>,
    runner: Arc<LocalWorkflowRunner>,
    links: ActionLinks,
    /// On DynamoDB: the emulator, recording what the handler asks of AWS.
    moto: Option<&'a MotoServer>,
}

/// Account `a1` on the escalation map, its milestones missed on day 31 and
/// the day-3 tasks opened: `first_workflow`'s, `team_invited`'s and the
/// manual `sponsor_named`'s, all Maya's.
async fn setup(store: Arc<dyn Store>) -> Setup<'static> {
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

async fn in_memory() -> Setup<'static> {
    setup(Arc::new(InMemoryStore::sized_like_dynamodb())).await
}

async fn on_dynamodb<'a>(moto: &'a MotoServer, table: &str) -> Setup<'a> {
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
    fn execution(&self, milestone: &str) -> milepost_embedded::runner::Execution {
        self.runner
            .executions()
            .into_iter()
            .find(|e| e.request.milestone_id == milestone)
            .unwrap()
    }

    async fn task(&self, milestone: &str) -> CsmTask {
        let e = self.execution(milestone);
        self.store
            .get_task(&CsmTask::id_for(&e.request.execution))
            .await
            .unwrap()
            .unwrap()
    }

    /// The token of the link `owner` got for `action` on `milestone`'s task.
    async fn token(&self, milestone: &str, action: LinkAction) -> String {
        let task = self.task(milestone).await;
        self.token_for(&task, action, &task.owner_email)
    }

    fn token_for(&self, task: &CsmTask, action: LinkAction, recipient: &str) -> String {
        let url = self.links.url(action, &task.id, recipient, self.clock_now());
        url.rsplit('/').next().unwrap().to_string()
    }

    fn clock_now(&self) -> milepost_domain::Timestamp {
        use milepost_app::ports::Clock;
        self.clock.now()
    }

    async fn get(&self, token: &str) -> Response<Body> {
        self.handle(request(Method::GET, token, "")).await
    }

    async fn post(&self, token: &str, form: &str) -> Response<Body> {
        self.handle(request(Method::POST, token, form)).await
    }

    /// The handler, with the emulator recording what it asks of AWS.
    async fn handle(&self, request: Request) -> Response<Body> {
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
    async fn snapshot(&self) -> (Vec<CsmTask>, usize, usize) {
        let mut tasks = Vec::new();
        for s in TaskStatus::ALL {
            tasks.extend(self.store.tasks_with_status(s).await.unwrap());
        }
        tasks.sort_by(|a, b| a.id.cmp(&b.id));
        let log = self.store.log_of(&AccountId::new("a1")).await.unwrap().len();
        (tasks, log, self.events.events().len())
    }
}

fn request(method: Method, token: &str, form: &str) -> Request {
    request_at(method, &format!("https://actions.example/v1/actions/{token}"), form)
}

fn request_at(method: Method, url: &str, form: &str) -> Request {
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

fn text(resp: &Response<Body>) -> String {
    String::from_utf8_lossy(resp.body().as_ref()).into_owned()
}

async fn opening_a_link_shows_what_it_would_do_and_changes_nothing(s: Setup<'_>) {
    let before = s.snapshot().await;
    for action in [
        LinkAction::Done,
        LinkAction::Snooze3,
        LinkAction::Dismiss,
        LinkAction::Pause,
    ] {
        let resp = s.get(&s.token("first_workflow", action).await).await;
        assert_eq!(resp.status(), StatusCode::OK, "{action:?}");
        let page = text(&resp);
        assert!(page.contains("<form method=\"post\""), "{action:?}: {page}");
        assert!(page.contains("First workflow completed") && page.contains("Customer a1"));
        assert!(!page.contains("<script"), "no JavaScript");
        assert_eq!(resp.headers()["content-type"], "text/html; charset=utf-8");
        assert!(resp.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'"));
    }
    let head = handle(
        &s.actions,
        request(Method::HEAD, &s.token("first_workflow", LinkAction::Done).await, ""),
    )
    .await;
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(s.snapshot().await, before, "a GET (a mail scanner) changed something");
    assert!(s
        .store
        .customer_email_pause(&AccountId::new("a1"))
        .await
        .unwrap()
        .is_none());
}

async fn done_closes_the_task_once_with_who_and_when(s: Setup<'_>) {
    let token = s.token("first_workflow", LinkAction::Done).await;
    let resp = s
        .post(
            &token,
            "outcome=plan_agreed&note=called+the+champion%2C+SSO+blocks+the+rollout",
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", text(&resp));
    let task = s.task("first_workflow").await;
    assert_eq!(task.status, TaskStatus::Done);
    let closed = task.closed.as_ref().unwrap();
    assert_eq!((closed.by.display(), closed.at), ("Maya CSM", s.clock_now()));
    assert_eq!(task.notes[0].text, "called the champion, SSO blocks the rollout");
    let closed_events: Vec<_> = s
        .events
        .events()
        .into_iter()
        .filter(|e| matches!(e, DomainEvent::TaskClosed { task_id, .. } if *task_id == task.id))
        .collect();
    assert_eq!(closed_events.len(), 1);
    assert!(
        matches!(&closed_events[0], DomainEvent::TaskClosed { reason, outcome: Some(o), .. } if reason == "completed" && o == "plan_agreed")
    );
    let log = s.store.log_of(&AccountId::new("a1")).await.unwrap();
    let entry = log
        .iter()
        .find(|e| e.detail.starts_with("CSM task done"))
        .expect("on the log");
    assert!(entry.by.as_ref().is_some_and(|b| b.display() == "Maya CSM"), "with who");
    assert!(
        !serde_json::to_string(&closed_events).unwrap().contains("maya@"),
        "no address on the bus"
    );

    // The same link again, and another on the closed task: nothing changes.
    let before = s.snapshot().await;
    let again = s.post(&token, "outcome=other").await;
    assert_eq!(again.status(), StatusCode::OK);
    assert!(text(&again).contains("already done"), "{}", text(&again));
    let snooze = s.post(&s.token("first_workflow", LinkAction::Snooze7).await, "").await;
    assert_eq!(snooze.status(), StatusCode::CONFLICT);
    assert!(text(&snooze).contains("Maya CSM marked it done"), "{}", text(&snooze));
    assert_eq!(s.snapshot().await, before, "a second POST changed something");
}

async fn a_bad_link_gets_its_page_and_changes_nothing(s: Setup<'_>) {
    let task = s.task("first_workflow").await;
    let good = s.token("first_workflow", LinkAction::Done).await;
    let mut altered = good.clone();
    let at = altered.len() - 4;
    let flip = if altered.as_bytes()[at] == b'A' { "B" } else { "A" };
    altered.replace_range(at..=at, flip);
    let other = s.token_for(&task, LinkAction::Done, "sam@vendor.example");
    let missing = {
        let url = s
            .links
            .url(LinkAction::Done, "ghost:csm-task", &task.owner_email, s.clock_now());
        url.rsplit('/').next().unwrap().to_string()
    };
    let before = s.snapshot().await;
    let cases = [
        (altered, StatusCode::FORBIDDEN, "altered"),
        (other, StatusCode::FORBIDDEN, "someone else"),
        (missing, StatusCode::NOT_FOUND, "find this task"),
        ("v1.bm90LWpzb24.AAAA".to_string(), StatusCode::BAD_REQUEST, "damaged"),
    ];
    for (token, status, says) in &cases {
        for resp in [s.get(token).await, s.post(token, "outcome=plan_agreed").await] {
            assert_eq!(resp.status(), *status, "{says}");
            assert!(text(&resp).contains(says), "{says}: {}", text(&resp));
        }
    }
    // Links work for 14 days.
    s.clock.advance(Duration::days(15));
    for resp in [s.get(&good).await, s.post(&good, "").await] {
        assert_eq!(resp.status(), StatusCode::GONE);
        assert!(text(&resp).contains("expired"));
    }
    let too_long = format!("note={}", "x".repeat(600));
    s.clock.advance(Duration::days(-15));
    let resp = s.post(&good, &too_long).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let wrong_path = handle(&s.actions, {
        let mut r = request(Method::GET, "x", "");
        *r.uri_mut() = "https://actions.example/v1/other".parse().unwrap();
        r
    })
    .await;
    assert_eq!(wrong_path.status(), StatusCode::NOT_FOUND);
    let put = handle(&s.actions, request(Method::PUT, &good, "")).await;
    assert_eq!(put.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(s.snapshot().await, before, "a refused link changed something");
}

async fn a_snooze_ends_with_a_reminder_and_fresh_links(s: Setup<'_>) {
    let token = s.token("team_invited", LinkAction::Snooze3).await;
    assert_eq!(s.post(&token, "note=back+on+Monday").await.status(), StatusCode::OK);
    let task = s.task("team_invited").await;
    assert_eq!(task.status, TaskStatus::Snoozed);
    assert_eq!(task.snoozed_until, Some(s.clock_now() + Duration::days(3)));
    let before = s.snapshot().await;
    assert!(
        text(&s.post(&token, "").await).contains("already done"),
        "not pushed back by a second POST"
    );
    assert_eq!(s.snapshot().await, before);
    let sent_before = s.mailer.sent().len();
    s.clock.advance(Duration::days(2));
    assert_eq!(s.services.reminders().run().await.unwrap().due, 0, "not yet");
    s.clock.advance(Duration::days(1));
    let report = s.services.reminders().run().await.unwrap();
    assert_eq!((report.due, report.reopened), (1, 1));
    assert_eq!(s.task("team_invited").await.status, TaskStatus::Open);
    let reminders: Vec<_> = s.mailer.sent().into_iter().skip(sent_before).collect();
    assert_eq!(reminders.len(), 1, "the owner is told again, once");
    assert!(reminders[0].subject.contains("Reminder"));
    assert!(reminders[0].html.contains("/v1/actions/v1."), "with fresh links");
    assert_eq!(s.services.reminders().run().await.unwrap().due, 0, "woken once");
    let kinds: Vec<&str> = s
        .events
        .events()
        .iter()
        .filter(|e| match e {
            DomainEvent::TaskOpened { task_id, .. }
            | DomainEvent::TaskSnoozed { task_id, .. }
            | DomainEvent::TaskReopened { task_id, .. } => *task_id == task.id,
            _ => false,
        })
        .map(|e| e.detail_type())
        .collect();
    assert_eq!(
        kinds,
        ["TaskOpened", "TaskSnoozed", "TaskReopened"],
        "opened once; a rule that files a CRM task on TaskOpened files one"
    );
}

async fn confirming_a_manual_milestone_recovers_it_and_closes_its_task(s: Setup<'_>) {
    let token = s.token("sponsor_named", LinkAction::Confirm).await;
    let resp = s.post(&token, "note=Pat+named+the+CFO").await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", text(&resp));
    let m = s
        .store
        .get_milestone(&AccountId::new("a1"), "sponsor_named")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.status, MilestoneStatus::Recovered);
    let task = s.task("sponsor_named").await;
    assert_eq!(
        (task.status, task.closed.as_ref().map(|c| c.reason.as_str())),
        (TaskStatus::Done, Some("milestone_confirmed"))
    );
    let events = s.events.events();
    assert!(events.iter().any(
        |e| matches!(e, DomainEvent::ManualMilestoneConfirmed { milestone_id, .. } if milestone_id == "sponsor_named")
    ));
    assert!(events
        .iter()
        .any(|e| matches!(e, DomainEvent::MilestoneRecovered { milestone_id, .. } if milestone_id == "sponsor_named")));
    let stopped = s
        .runner
        .executions()
        .into_iter()
        .find(|e| e.request.milestone_id == "sponsor_named")
        .unwrap();
    assert_eq!(stopped.status, milepost_embedded::runner::ExecutionStatus::Stopped);
    let log = s.store.log_of(&AccountId::new("a1")).await.unwrap();
    assert!(log
        .iter()
        .any(|e| e.detail == "Executive sponsor named confirmed by Maya CSM: Pat named the CFO"));
    let before = s.snapshot().await;
    let again = s.post(&token, "").await;
    assert!(text(&again).contains("already reached"), "{}", text(&again));
    assert_eq!(s.snapshot().await, before);
    // A milestone events reach has no Confirm button, and a forged one changes nothing.
    let first = s.task("first_workflow").await;
    let forged = s.token_for(&first, LinkAction::Confirm, &first.owner_email);
    let resp = s.post(&forged, "").await;
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    assert!(text(&resp).contains("not manual"), "{}", text(&resp));
}

async fn pausing_holds_customer_email_but_not_leadership(s: Setup<'_>) {
    let token = s.token("first_workflow", LinkAction::Pause).await;
    assert_eq!(s.post(&token, "").await.status(), StatusCode::OK);
    let pause = s
        .store
        .customer_email_pause(&AccountId::new("a1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pause.until, s.clock_now() + Duration::days(14));
    assert!(text(&s.post(&token, "").await).contains("already done"));
    assert_eq!(
        s.store.customer_email_pause(&AccountId::new("a1")).await.unwrap(),
        Some(pause)
    );
    // The escalation's later steps: the day-5 emails.
    let mut sent = s.run("first_workflow", Step::OutreachEmail).await;
    sent.extend(s.run("first_workflow", Step::Leadership).await);
    let kinds: Vec<_> = sent.iter().map(|m| m.kind).collect();
    assert_eq!(
        kinds,
        [milepost_domain::EmailKind::Leadership],
        "the customer and their sponsor get nothing"
    );
    let log = s.store.log_of(&AccountId::new("a1")).await.unwrap();
    assert!(log
        .iter()
        .any(|e| e.detail.starts_with("customer email paused by Maya CSM")));
    assert!(s.events.count("CustomerEmailsPaused") == 1);
}

impl Setup<'_> {
    /// Runs `step` of `milestone`'s escalation; returns the emails it sent.
    async fn run(&self, milestone: &str, step: Step) -> Vec<milepost_domain::OutgoingEmail> {
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

    async fn suppressed(&self) -> Vec<milepost_domain::Suppression> {
        self.store.suppressions().await.unwrap()
    }
}

/// What a mail client's one-click unsubscribe sends (RFC 8058).
const ONE_CLICK: &str = "List-Unsubscribe=One-Click";

async fn one_click_unsubscribe_stops_customer_mail_to_that_contact_only(s: Setup<'_>) {
    let sent = s.run("first_workflow", Step::OutreachEmail).await;
    assert_eq!(sent.len(), 1);
    let url = sent[0]
        .list_unsubscribe
        .clone()
        .expect("customer mail has List-Unsubscribe");
    assert!(sent[0].text.contains(&url), "the footer links the same address");
    let dana = sent[0].to[0].email.clone();

    let resp = s.handle(request_at(Method::POST, &url, ONE_CLICK)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(text(&resp).contains("You are unsubscribed"), "{}", text(&resp));
    let suppressed = s.suppressed().await;
    assert_eq!(suppressed.len(), 1);
    assert_eq!(suppressed[0].email, dana);
    assert_eq!(suppressed[0].source, milepost_domain::SuppressionSource::OneClick);

    // Mail clients retry; people click twice: nothing changes the second time.
    s.clock.advance(Duration::hours(2));
    let again = s.handle(request_at(Method::POST, &url, ONE_CLICK)).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert!(text(&again).contains("already unsubscribed"), "{}", text(&again));
    assert_eq!(s.suppressed().await, suppressed, "the first record stands");

    // The next customer emails to Dana are not sent, and the log says why.
    assert!(s.run("team_invited", Step::OutreachEmail).await.is_empty());
    assert!(s.run("first_workflow", Step::FollowUpEmail).await.is_empty());
    let log = s.store.log_of(&AccountId::new("a1")).await.unwrap();
    let held: Vec<_> = log
        .iter()
        .filter(|e| e.key.contains(":unsubscribed:customer"))
        .collect();
    assert_eq!(held.len(), 2, "{log:#?}");
    assert!(held[0].detail.contains("the recipient unsubscribed on"));
    assert!(
        log.iter().all(|e| !e.detail.contains(dana.as_str())),
        "no address in the log"
    );
    // Our own people, and the sponsor (another contact), still get theirs.
    let day5: Vec<_> = s
        .run("first_workflow", Step::Leadership)
        .await
        .iter()
        .map(|m| m.kind)
        .collect();
    assert_eq!(
        day5,
        [
            milepost_domain::EmailKind::Leadership,
            milepost_domain::EmailKind::ExecSponsor
        ]
    );
}

async fn the_unsubscribe_page_changes_nothing_until_its_button(s: Setup<'_>) {
    let sent = s.run("first_workflow", Step::OutreachEmail).await;
    let url = sent[0].list_unsubscribe.clone().unwrap();
    for _ in 0..2 {
        // A mail scanner fetching the link, twice.
        let page = s.handle(request_at(Method::GET, &url, "")).await;
        assert_eq!(page.status(), StatusCode::OK);
        let html = text(&page);
        assert!(
            html.contains("Stop these emails?") && html.contains("<form method=\"post\""),
            "{html}"
        );
        let email = sent[0].to[0].email.as_str();
        assert!(!html.contains(email), "the page masks the address");
        assert!(html.contains(&format!("{}•••@a1.example", &email[..1])), "{html}");
    }
    assert!(s.suppressed().await.is_empty(), "GET changed nothing");
    let resp = s.handle(request_at(Method::POST, &url, "")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let suppressed = s.suppressed().await;
    assert_eq!(suppressed.len(), 1);
    assert_eq!(suppressed[0].source, milepost_domain::SuppressionSource::Page);
    assert!(text(&s.handle(request_at(Method::GET, &url, "")).await).contains("already unsubscribed"));
}

async fn a_bad_unsubscribe_link_gets_a_page_and_changes_nothing(s: Setup<'_>) {
    let sent = s.run("first_workflow", Step::OutreachEmail).await;
    let url = sent[0].list_unsubscribe.clone().unwrap();
    let (base, token) = url.rsplit_once('/').unwrap();
    let mut tampered = token.to_string();
    let at = tampered.find('.').unwrap() + 3;
    let flipped = if &tampered[at..=at] == "A" { "B" } else { "A" };
    tampered.replace_range(at..=at, flipped);
    let task_link = s.token("first_workflow", LinkAction::Done).await;
    let cases = [
        (format!("{base}/{tampered}"), &[400u16, 403][..]),
        (format!("{base}/{}", &token[..token.len() - 4]), &[400, 403][..]),
        (format!("{base}/{task_link}"), &[400][..]),
        // An unsubscribe token is no task action either.
        (format!("https://actions.example/v1/actions/{token}"), &[400][..]),
    ];
    for (bad, statuses) in &cases {
        for method in [Method::GET, Method::POST] {
            let resp = s.handle(request_at(method.clone(), bad, ONE_CLICK)).await;
            assert!(
                statuses.contains(&resp.status().as_u16()),
                "{method} {bad}: {}",
                resp.status()
            );
            assert!(text(&resp).contains("Nothing was changed"), "{}", text(&resp));
        }
    }
    // A year and a day later the link has expired.
    s.clock.advance(Duration::days(366));
    let expired = s.handle(request_at(Method::POST, &url, ONE_CLICK)).await;
    assert_eq!(expired.status(), StatusCode::GONE);
    assert!(text(&expired).contains("reply to it and ask to be taken off"));
    assert!(s.suppressed().await.is_empty());
}

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        mod in_memory {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::in_memory().await).await
                }
            )*
        }

        /// And the handler asks of AWS only what the template grants the function.
        #[tokio::test]
        async fn every_scenario_holds_on_dynamodb() {
            let moto = &MotoServer::start();
            $(
                eprintln!("dynamodb: {}", stringify!($name));
                $name(on_dynamodb(moto, stringify!($name)).await).await;
            )*
            let used = moto.recorded_actions();
            assert!(used.contains("dynamodb:GetItem") && used.contains("dynamodb:PutItem"), "recorded: {used:?}");
            eprintln!("ActionsFunction asked for {used:?}");
            milepost_local::iam::assert_granted("ActionsFunction", &used);
        }
    };
}

scenarios!(
    opening_a_link_shows_what_it_would_do_and_changes_nothing,
    done_closes_the_task_once_with_who_and_when,
    a_bad_link_gets_its_page_and_changes_nothing,
    a_snooze_ends_with_a_reminder_and_fresh_links,
    confirming_a_manual_milestone_recovers_it_and_closes_its_task,
    pausing_holds_customer_email_but_not_leadership,
    one_click_unsubscribe_stops_customer_mail_to_that_contact_only,
    the_unsubscribe_page_changes_nothing_until_its_button,
    a_bad_unsubscribe_link_gets_a_page_and_changes_nothing,
);
