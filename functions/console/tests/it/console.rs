//! The console over a store the pipeline filled, through its Lambda
//! handler, on the embedded store and on DynamoDB (moto): what its pages
//! count is what `milepost report` counts, every route asks for a session,
//! and every change is made once, by someone allowed to, through a form of
//! this console's own session. Every request it answered is one the SAM
//! template routes to it, and what it asked of DynamoDB is what the
//! template grants it.

use std::sync::Arc;

use chrono::Duration;
use lambda_http::Body;
use milepost_app::console::{Console, Period, Person, Request, Response, Role, SessionKey, SignIn};
use milepost_app::ports::{Clock, Store};
use milepost_app::sweep::SweepOptions;
use milepost_app::Services;
use milepost_aws::DynamoStore;
use milepost_domain::report::{ReportOptions, DEFAULT_WINDOW_DAYS};
use milepost_domain::{AccountId, DomainEvent, MilestoneStatus, TaskStatus, Timestamp};
use milepost_embedded::fixtures::escalation::{account, contract_start, ESCALATION_MAP};
use milepost_embedded::{InMemoryStore, LocalWorkflowRunner, MemoryMailer, RecordingPublisher, VirtualClock};
use milepost_local::MotoServer;
use milepost_maps::load_map;

const LEAD: &str = "lead@vendor.example";
const MAYA: &str = "maya@vendor.example";
const OMAR: &str = "omar@vendor.example";
const VIEWER: &str = "viewer@vendor.example";

struct Setup<'a> {
    console: Console,
    services: Services,
    store: Arc<dyn Store>,
    events: Arc<RecordingPublisher>,
    clock: Arc<VirtualClock>,
    /// On DynamoDB: the emulator, recording what the handler asks of AWS.
    moto: Option<&'a MotoServer>,
}

/// Two accounts (Maya is their CSM) run through the playbook to day 33:
/// `first_workflow` and `team_invited` missed with tasks open,
/// `sponsor_named` (manual) missed at day 30.
async fn setup(store: Arc<dyn Store>) -> Setup<'static> {
    let events = Arc::new(RecordingPublisher::default());
    let runner = Arc::new(LocalWorkflowRunner::new());
    let clock = Arc::new(VirtualClock::new(contract_start()));
    let services = Services {
        store: store.clone(),
        mailer: Arc::new(MemoryMailer::default()),
        events: events.clone(),
        workflows: runner.clone(),
        clock: clock.clone(),
        config: milepost_embedded::fixtures::simulation_config(),
        links: Some(milepost_embedded::fixtures::links()),
    };
    store
        .put_map(&load_map("test.yaml", ESCALATION_MAP).unwrap())
        .await
        .unwrap();
    for (id, arr) in [("acme", 100_000), ("globex", 40_000)] {
        let a = milepost_domain::Account { arr, ..account(id) };
        services.ingestion().upsert_account(&a).await.unwrap();
    }
    // The sweep once a day from just before the first milestone is due (it
    // runs every few minutes when deployed: no miss here is due more
    // finely, and a day of it on DynamoDB is most of this setup's time);
    // the playbook's steps each hour, as they fall due.
    let until = contract_start() + Duration::days(33);
    let mut t = contract_start() + Duration::days(9) + Duration::hours(1);
    while t <= until {
        clock.set(t);
        if (t - contract_start()).num_hours() % 24 == 1 {
            services.sweeper().sweep(&SweepOptions::default()).await.unwrap();
        }
        runner.run_due(&services.playbook(), t).await;
        t += Duration::hours(1);
    }
    // What the scheduled run does last: keep the portfolio the console reads.
    let kept = services.console_keeping().run().await.unwrap();
    assert_eq!(kept.portfolio.rows, 2, "{kept:?}");
    assert_eq!(
        kept.results_kept, 24,
        "six periods, for every segment together and each"
    );
    let person = |name: &str, email: &str, role| Person {
        name: name.into(),
        email: email.into(),
        role,
    };
    let console = services.console(
        SessionKey::random(),
        SignIn::Development {
            people: vec![
                person("Lee Lead", LEAD, Role::Lead),
                person("Maya CSM", MAYA, Role::Csm),
                person("Omar CSM", OMAR, Role::Csm),
                person("Vic Viewer", VIEWER, Role::Viewer),
            ],
        },
    );
    Setup {
        console,
        services,
        store,
        events,
        clock,
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

fn request(method: &str, target: &str, cookie: Option<&str>, body: &str) -> Request {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Request {
        method: method.into(),
        path: path.into(),
        query: query.into(),
        body: body.as_bytes().to_vec(),
        cookie: cookie.map(str::to_string),
        origin: None,
        host: Some("console.example".into()),
        fetch_site: None,
    }
}

/// `request` as API Gateway hands it to the function, through the
/// function's handler; the answer read back. A request the console
/// answered (not with 404) must be one the template routes to it.
async fn through_handler(console: &Console, request: Request) -> Response {
    let mut http = lambda_http::http::Request::builder()
        .method(request.method.as_str())
        .uri(format!(
            "https://console.example{}{}{}",
            request.path,
            if request.query.is_empty() { "" } else { "?" },
            request.query
        ));
    for (name, value) in [
        ("cookie", &request.cookie),
        ("origin", &request.origin),
        ("host", &request.host),
        ("sec-fetch-site", &request.fetch_site),
    ] {
        if let Some(value) = value {
            http = http.header(name, value.as_str());
        }
    }
    let answer = milepost_console::handle(console, http.body(Body::from(request.body.clone())).unwrap()).await;
    if answer.status() != 404 && request.method != "HEAD" {
        milepost_local::routes::assert_routed("ConsoleFunction", &request.method, &request.path);
    }
    Response {
        status: answer.status().as_u16(),
        headers: answer
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap().to_string()))
            .collect(),
        body: answer.body().as_ref().to_vec(),
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut f = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        f.append_pair(k, v);
    }
    f.finish()
}

/// The value of the first `name="<field>" value="..."` after `after` in `html`.
fn field_after(html: &str, after: &str, field: &str) -> String {
    let start = html.find(after).unwrap_or_else(|| panic!("{after:?} not on the page"));
    let marker = format!("name=\"{field}\" value=\"");
    let at = html[start..].find(&marker).expect("the field") + start + marker.len();
    html[at..at + html[at..].find('"').unwrap()].to_string()
}

impl Setup<'_> {
    /// The handler, with the emulator recording what it asks of AWS.
    async fn send(&self, request: Request) -> Response {
        self.send_to(&self.console, request).await
    }

    async fn send_to(&self, console: &Console, request: Request) -> Response {
        if let Some(moto) = self.moto {
            moto.record_requests(true).await;
        }
        let response = through_handler(console, request).await;
        if let Some(moto) = self.moto {
            moto.record_requests(false).await;
        }
        response
    }
    /// Signs in as `email` through the development sign-in; the cookie to send.
    async fn sign_in(&self, email: &str) -> String {
        let r = self
            .send(request(
                "POST",
                "/sign-in",
                None,
                &form(&[("person", email), ("return", "/tasks")]),
            ))
            .await;
        assert_eq!(r.status, 303);
        assert_eq!(r.header("location"), Some("/tasks"));
        let cookie = r.header("set-cookie").expect("a session cookie");
        for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="] {
            assert!(cookie.contains(attribute), "{cookie}");
        }
        cookie.split(';').next().unwrap().to_string()
    }

    async fn get(&self, path: &str, cookie: &str) -> Response {
        let r = self.send(request("GET", path, Some(cookie), "")).await;
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        r
    }

    async fn post(&self, path: &str, cookie: &str, pairs: &[(&str, &str)]) -> Response {
        self.send(request("POST", path, Some(cookie), &form(pairs))).await
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    async fn live_task_of(&self, account: &str, milestone: &str) -> milepost_domain::CsmTask {
        let tasks = self.store.tasks_for_owner(MAYA, Some(TaskStatus::Open)).await.unwrap();
        tasks
            .into_iter()
            .find(|t| t.brief().account_id.as_str() == account && t.brief().milestone_id == milestone)
            .unwrap_or_else(|| panic!("an open task on {account}'s {milestone}"))
    }
}

fn task_path(task: &milepost_domain::CsmTask, what: &str) -> String {
    // Ids hold letters, digits, `-`, `_` and `:`, which both encode alike.
    let id: String = form_urlencoded::byte_serialize(task.id().as_bytes()).collect();
    format!("/tasks/{id}/{what}")
}

async fn the_portfolio_counts_what_the_report_counts(s: Setup<'_>) {
    let lead = s.sign_in(LEAD).await;
    let page = s.get("/", &lead).await;
    let report = milepost_app::report::report(
        s.store.as_ref(),
        ReportOptions {
            since: None,
            until: None,
            segment: None,
            success_plan: None,
            window_days: DEFAULT_WINDOW_DAYS,
            as_of: s.now(),
        },
    )
    .await
    .unwrap();
    let at_risk = &report.at_risk;
    assert_eq!(at_risk.accounts_now, 2, "both accounts are behind");
    assert!(at_risk.misses_now >= 4, "{at_risk:?}");
    let lede = format!(
        "<strong>{}</strong> accounts behind on <strong>{}</strong> milestones, <strong class=\"risk\">{}</strong> ARR at risk.",
        at_risk.accounts_now,
        at_risk.misses_now,
        milepost_app::email::fmt_money(at_risk.arr_now)
    );
    assert!(page.text().contains(&lede), "expected {lede} in the portfolio");
    // Each account's row carries the report's figure for it, most at risk first.
    let acme = page.text().find(">Customer acme<").expect("acme's row");
    let globex = page.text().find(">Customer globex<").expect("globex's row");
    assert!(acme < globex, "acme has more ARR at risk");
    for top in &at_risk.top_accounts {
        assert!(
            page.text().contains(&milepost_app::email::fmt_money(top.arr_at_risk)),
            "{top:?}"
        );
    }
    // Filters: a segment nobody is in shows no row; the stage filter keeps its accounts.
    let smb = s.get("/?segment=smb", &lead).await;
    assert!(smb.text().contains("No account matches."));
    assert!(!smb.text().contains(">Customer acme<"));
    let account = s.get("/accounts/acme", &lead).await;
    assert!(account.text().contains("First workflow completed"));
    assert!(account.text().contains("Executive sponsor named"));
}

async fn every_page_needs_a_session_and_a_bad_cookie_means_signing_in_again(s: Setup<'_>) {
    for path in ["/", "/tasks", "/accounts/acme", "/tasks?whose=team"] {
        let r = s.send(request("GET", path, None, "")).await;
        assert_eq!(r.status, 303, "{path}");
        let to = r.header("location").unwrap();
        assert!(to.starts_with("/sign-in?return="), "{to}");
        for header in [
            "content-security-policy",
            "strict-transport-security",
            "x-content-type-options",
        ] {
            assert!(r.header(header).is_some(), "{header} on {path}");
        }
    }
    let cookie = s.sign_in(MAYA).await;
    let tampered = format!("{}x", cookie);
    let foreign = {
        let other = Console {
            sessions: SessionKey::random(),
            ..s.console.clone()
        };
        let r = s
            .send_to(&other, request("POST", "/sign-in", None, &form(&[("person", LEAD)])))
            .await;
        r.header("set-cookie").unwrap().split(';').next().unwrap().to_string()
    };
    for bad in [tampered.as_str(), foreign.as_str(), "milepost-session=", "other=1"] {
        let r = s.send(request("GET", "/", Some(bad), "")).await;
        assert_eq!(r.status, 303, "{bad}");
    }
    // A POST without a session changes nothing.
    let task = s.live_task_of("acme", "first_workflow").await;
    let r = s
        .send(request(
            "POST",
            &task_path(&task, "done"),
            Some(&foreign),
            &form(&[("csrf", "x")]),
        ))
        .await;
    assert_eq!(r.status, 403);
    assert!(s.store.get_task(task.id()).await.unwrap().unwrap().status().is_live());
    // After sign-in, only a relative path of ours is returned to.
    for (asked, went) in [
        ("https://evil.example/", "/"),
        ("//evil.example", "/"),
        ("/tasks", "/tasks"),
    ] {
        let r = s
            .send(request(
                "POST",
                "/sign-in",
                None,
                &form(&[("person", MAYA), ("return", asked)]),
            ))
            .await;
        assert_eq!(r.header("location"), Some(went), "{asked}");
    }
    // Signing out ends the cookie.
    let page = s.get("/", &cookie).await;
    let csrf = field_after(page.text(), "action=\"/sign-out\"", "csrf");
    let r = s.post("/sign-out", &cookie, &[("csrf", &csrf)]).await;
    assert_eq!(r.status, 303);
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
}

async fn a_task_closed_from_the_console_is_closed_once_by_its_owner(s: Setup<'_>) {
    let maya = s.sign_in(MAYA).await;
    let list = s.get("/tasks", &maya).await;
    let task = s.live_task_of("acme", "first_workflow").await;
    // The list links each task to its page, which offers the form and says what the email said.
    let link = format!(
        "href=\"{}?from=%2Ftasks%3Fwhose%3Dmine%26status%3Dopen\"",
        task_path(&task, "").trim_end_matches('/')
    );
    assert!(list.text().contains(&link), "{link} on the list");
    let page = s
        .get(
            &format!("{}?from=/tasks", task_path(&task, "").trim_end_matches('/')),
            &maya,
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(
        page.text().contains(&task.brief().recommended_intervention),
        "what to try"
    );
    assert!(page.text().contains(&task.brief().target), "its target");
    let action = task_path(&task, "done");
    assert!(
        page.text().contains(&format!("action=\"{action}\"")),
        "the task's form is on its page"
    );
    let csrf = field_after(page.text(), &format!("action=\"{action}\""), "csrf");
    let form_id = field_after(page.text(), &format!("action=\"{action}\""), "form_id");
    let fields = [
        ("csrf", csrf.as_str()),
        ("form_id", form_id.as_str()),
        ("return", "/tasks"),
        ("outcome", "plan_agreed"),
        ("note", "Agreed a rollout plan with Pat"),
    ];
    let first = s.post(&action, &maya, &fields).await;
    assert_eq!(first.status, 303, "{}", first.text());
    assert_eq!(first.header("location"), Some("/tasks?notice=task-done"));
    // The browser sends the form again (a double click, a retry): nothing more happens.
    let again = s.post(&action, &maya, &fields).await;
    assert_eq!(again.status, 303);
    assert_eq!(again.header("location"), Some("/tasks?notice=already-done"));

    let stored = s.store.get_task(task.id()).await.unwrap().unwrap();
    assert_eq!(stored.status(), TaskStatus::Done);
    assert_eq!(stored.notes().len(), 1);
    let closed_events = s
        .events
        .events()
        .into_iter()
        .filter(|e| matches!(e, DomainEvent::TaskClosed { task_id, .. } if task_id == task.id()))
        .count();
    assert_eq!(closed_events, 1, "one TaskClosed on the bus");
    let log = s.store.log_of(&AccountId::new("acme")).await.unwrap();
    let done_lines = log
        .iter()
        .filter(|e| e.detail.starts_with("CSM task done by Maya CSM"))
        .count();
    assert_eq!(done_lines, 1, "one line on the account's history");
    let account = s.get("/accounts/acme", &maya).await;
    assert!(account.text().contains("CSM task done by Maya CSM"));
    assert!(account.text().contains("Agreed a rollout plan with Pat"));
}

async fn viewers_other_csms_and_forged_forms_change_nothing(s: Setup<'_>) {
    let task = s.live_task_of("acme", "first_workflow").await;
    let action = task_path(&task, "dismiss");
    let maya = s.sign_in(MAYA).await;
    let maya_page = s.get("/tasks", &maya).await;
    let maya_csrf = field_after(maya_page.text(), "action=\"/sign-out\"", "csrf");

    let viewer = s.sign_in(VIEWER).await;
    for path in ["/tasks?whose=team", "/accounts/acme", "/"] {
        let page = s.get(path, &viewer).await;
        assert!(!page.text().contains("Act on this task"), "{path}");
        assert!(!page.text().contains("Confirm reached"), "{path}");
        assert!(!page.text().contains("Pause customer email"), "{path}");
    }
    let viewer_page = s.get("/tasks?whose=team", &viewer).await;
    let viewer_csrf = field_after(viewer_page.text(), "action=\"/sign-out\"", "csrf");
    let omar = s.sign_in(OMAR).await;
    let omar_page = s.get("/tasks?whose=team", &omar).await;
    assert!(
        !omar_page.text().contains("Act on this task"),
        "Omar owns none of these"
    );
    let omar_csrf = field_after(omar_page.text(), "action=\"/sign-out\"", "csrf");

    let dismiss = |csrf: &str| {
        vec![
            ("csrf".to_string(), csrf.to_string()),
            ("form_id".to_string(), "f1".to_string()),
            ("reason".to_string(), "not_relevant".to_string()),
        ]
    };
    let post = |cookie: &str, fields: Vec<(String, String)>, origin: Option<&str>| {
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut r = request("POST", &action, Some(cookie), &form(&pairs));
        r.origin = origin.map(str::to_string);
        r
    };
    for (who, r) in [
        ("a viewer", post(&viewer, dismiss(&viewer_csrf), None)),
        ("another CSM", post(&omar, dismiss(&omar_csrf), None)),
        ("Maya with the viewer's token", post(&maya, dismiss(&viewer_csrf), None)),
        ("Maya without a token", post(&maya, dismiss(""), None)),
        (
            "Maya from another site",
            post(&maya, dismiss(&maya_csrf), Some("https://evil.example")),
        ),
    ] {
        let answer = s.send(r).await;
        assert_eq!(answer.status, 403, "{who}: {}", answer.text());
    }
    let note = s
        .send({
            let mut r = request(
                "POST",
                "/accounts/acme/notes",
                Some(&viewer),
                &form(&[("csrf", &viewer_csrf), ("form_id", "n1"), ("note", "hello")]),
            );
            r.origin = Some("https://console.example".into());
            r
        })
        .await;
    assert_eq!(note.status, 403, "a viewer adds no note");
    assert!(s.store.get_task(task.id()).await.unwrap().unwrap().status().is_live());
    assert!(!s
        .store
        .log_of(&AccountId::new("acme"))
        .await
        .unwrap()
        .iter()
        .any(|e| e.detail.contains("hello")));
    // Maya herself, from this console: it works.
    let mut own = post(&maya, dismiss(&maya_csrf), Some("https://console.example"));
    own.body.extend_from_slice(b"&return=%2Ftasks");
    let answer = s.send(own).await;
    assert_eq!(answer.status, 303, "{}", answer.text());
    assert_eq!(
        s.store.get_task(task.id()).await.unwrap().unwrap().status(),
        TaskStatus::Dismissed
    );
}

async fn a_lead_confirms_a_manual_milestone_and_the_portfolio_no_longer_counts_it(s: Setup<'_>) {
    let acme = AccountId::new("acme");
    let before = s.store.get_milestone(&acme, "sponsor_named").await.unwrap().unwrap();
    assert!(
        matches!(before.status(), MilestoneStatus::Escalating(_)),
        "{}",
        before.status()
    );
    let lead = s.sign_in(LEAD).await;
    let page = s.get("/accounts/acme", &lead).await;
    let action = "/accounts/acme/milestones/sponsor_named/confirm";
    assert!(page.text().contains(action), "the manual milestone's button");
    let csrf = field_after(page.text(), action, "csrf");
    let form_id = field_after(page.text(), action, "form_id");
    let portfolio_before = s.get("/", &lead).await;
    let r = s
        .post(
            action,
            &lead,
            &[("csrf", &csrf), ("form_id", &form_id), ("return", "/accounts/acme")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("/accounts/acme?notice=confirmed"));
    let after = s.store.get_milestone(&acme, "sponsor_named").await.unwrap().unwrap();
    assert_eq!(after.status(), MilestoneStatus::Recovered);
    let again = s
        .post(
            action,
            &lead,
            &[("csrf", &csrf), ("form_id", &form_id), ("return", "/accounts/acme")],
        )
        .await;
    assert_eq!(again.header("location"), Some("/accounts/acme?notice=already-done"));
    let page = s.get("/accounts/acme?notice=confirmed", &lead).await;
    assert!(page.text().contains("The milestone is confirmed."));
    assert!(!page.text().contains(action), "no button once it is reached");
    let misses = |html: &str| -> u64 {
        let at = html.find("accounts behind on <strong>").unwrap() + "accounts behind on <strong>".len();
        html[at..at + html[at..].find('<').unwrap()].parse().unwrap()
    };
    assert_eq!(
        misses(s.get("/", &lead).await.text()),
        misses(portfolio_before.text()) - 1
    );
}

async fn a_note_and_a_pause_are_kept_once_however_often_the_form_is_sent(s: Setup<'_>) {
    let maya = s.sign_in(MAYA).await;
    let page = s.get("/accounts/globex", &maya).await;
    let csrf = field_after(page.text(), "/accounts/globex/notes", "csrf");
    let note_form = field_after(page.text(), "/accounts/globex/notes", "form_id");
    let pause_form = field_after(page.text(), "/accounts/globex/pause", "form_id");
    for _ in 0..2 {
        let r = s
            .post(
                "/accounts/globex/notes",
                &maya,
                &[
                    ("csrf", &csrf),
                    ("form_id", &note_form),
                    ("note", "Champion <b>on leave</b> until May"),
                    ("return", "/accounts/globex"),
                ],
            )
            .await;
        assert_eq!(r.status, 303);
        let r = s
            .post(
                "/accounts/globex/pause",
                &maya,
                &[
                    ("csrf", &csrf),
                    ("form_id", &pause_form),
                    ("return", "/accounts/globex"),
                ],
            )
            .await;
        assert_eq!(r.status, 303);
    }
    let globex = AccountId::new("globex");
    let log = s.store.log_of(&globex).await.unwrap();
    assert_eq!(log.iter().filter(|e| e.detail.contains("on leave")).count(), 1);
    assert_eq!(
        log.iter()
            .filter(|e| e.detail.contains("customer email paused"))
            .count(),
        1
    );
    let pause = s.store.customer_email_pause(&globex).await.unwrap().unwrap();
    assert!(pause.is_active(s.now()));
    let page = s.get("/accounts/globex", &maya).await;
    assert!(
        page.text()
            .contains("Champion &#60;b&#62;on leave&#60;/b&#62; until May")
            || page.text().contains("Champion &lt;b&gt;on leave&lt;/b&gt; until May"),
        "the note is on the page, escaped"
    );
    assert!(page.text().contains("Automated customer email is paused until"));
}

/// A rate as the page words it: whole percent, 95% interval.
fn rate_words(rate: &Option<milepost_domain::report::Rate>) -> String {
    rate.map(|r| {
        format!(
            ": {:.0}% (95% CI {:.0}%\u{2013}{:.0}%)",
            r.rate * 100.0,
            r.ci[0] * 100.0,
            r.ci[1] * 100.0
        )
    })
    .unwrap_or_default()
}

/// Percentage points as the page words them: signed, whole.
fn points_words(d: f64) -> String {
    match (d * 100.0).round() as i64 {
        p if p > 0 => format!("+{p}"),
        p if p < 0 => format!("\u{2212}{}", -p),
        _ => "0".into(),
    }
}

/// Every row of the report, every figure of it (counts, rates and their
/// intervals, the uplift and its interval, misses whose window is open), is
/// on the page as one row of its table.
fn assert_rows_shown(page: &str, report: &milepost_domain::report::Report, what: &str) {
    for row in &report.rows {
        let uplift = match (row.uplift, row.uplift_ci) {
            (Some(d), Some([low, high])) => format!(
                "{} points (95% CI {} to {})",
                points_words(d),
                points_words(low),
                points_words(high)
            ),
            (Some(d), None) => format!("{} points", points_words(d)),
            _ => "not yet measurable".into(),
        };
        let cells = format!(
            "{} of {} recovered{}</td>\n    <td data-label=\"Control group\" class=\"control\">{} of {} recovered{}</td>\n    <td data-label=\"Uplift\" class=\"uplift\">{uplift}",
            row.recovered_playbook,
            row.missed_playbook,
            rate_words(&row.recovery_rate_playbook),
            row.recovered_control,
            row.missed_control,
            rate_words(&row.recovery_rate_control),
        );
        let window = format!("<td data-label=\"Window open\" class=\"num\">{}</td>", row.window_open);
        let head = format!(
            "<tr><th scope=\"row\">{}</th><td data-label=\"Segment\">{}</td>",
            if row.milestone == "all" {
                "All milestones"
            } else {
                &row.milestone
            },
            match row.segment.parse::<milepost_domain::Segment>() {
                Ok(milepost_domain::Segment::Enterprise) => "Enterprise",
                Ok(milepost_domain::Segment::MidMarket) => "Mid-market",
                Ok(milepost_domain::Segment::Smb) => "SMB",
                Err(_) => "All segments",
            }
        );
        let at = page
            .find(&head)
            .unwrap_or_else(|| panic!("{what}: no row {}/{}", row.milestone, row.segment));
        let shown = &page[at..at + page[at..].find("</tr>").unwrap()];
        assert!(
            shown.contains(&cells) && shown.contains(&window),
            "{what}: {}/{}: expected {cells} and {window} in {shown}",
            row.milestone,
            row.segment
        );
    }
    assert_eq!(
        page.matches("<td data-label=\"Uplift\"").count(),
        report.rows.len(),
        "{what}: a row for each of the report's, no more"
    );
}

async fn the_results_page_shows_the_reports_figures(s: Setup<'_>) {
    // Forty days on, the misses' 30-day windows have closed: rates to show.
    s.clock.set(s.now() + Duration::days(40));
    s.services.console_keeping().run().await.unwrap();
    let viewer = s.sign_in(VIEWER).await;
    let page = s.get("/results", &viewer).await;
    let options = ReportOptions {
        since: None,
        until: None,
        segment: None,
        success_plan: None,
        window_days: DEFAULT_WINDOW_DAYS,
        as_of: s.now(),
    };
    let report = milepost_app::report::report(s.store.as_ref(), options.clone())
        .await
        .unwrap();
    assert!(!report.rows.is_empty());
    assert!(
        report.rows.iter().any(|r| r.recovery_rate_playbook.is_some()),
        "a rate to show"
    );
    assert_rows_shown(page.text(), &report, "every miss so far");
    // Each period the page offers is the report of its dates, and says them.
    for period in Period::ALL {
        let options = period.options(None, s.now());
        let report = milepost_app::report::report(s.store.as_ref(), options.clone())
            .await
            .unwrap();
        let page = s.get(&format!("/results?period={}", period.as_str()), &viewer).await;
        assert_rows_shown(page.text(), &report, period.as_str());
        if let (Some(since), Some(until)) = (options.since, options.until) {
            let command = format!("milepost report --since {since} --until {until}");
            assert!(page.text().contains(&command), "{}: {command}", period.as_str());
        }
        assert!(
            page.text()
                .contains(&format!("<option value=\"{}\" selected>", period.as_str())),
            "{} is the chosen period",
            period.as_str()
        );
    }
    // The weekly table: each week's new misses are that week's report's.
    let week = milepost_domain::report::Week::before(s.now(), chrono_tz::UTC);
    let last = milepost_app::report::report(s.store.as_ref(), week.options(s.now()))
        .await
        .unwrap();
    let row = format!(
        "<th scope=\"row\">{}</th><td data-label=\"New misses\" class=\"num\">{}</td><td data-label=\"Recoveries\" class=\"num\">{}</td>",
        milepost_app::email::fmt_day(week.since),
        last.activity.new_misses.total(),
        last.activity.recoveries.total()
    );
    assert!(page.text().contains(&row), "expected {row}");
    assert!(page
        .text()
        .contains(&milepost_app::email::fmt_money(report.at_risk.arr_now)));
    // A segment of its own: the report for it.
    let smb = s.get("/results?segment=smb", &viewer).await;
    let smb_report = milepost_app::report::report(
        s.store.as_ref(),
        ReportOptions {
            segment: Some(milepost_domain::Segment::Smb),
            success_plan: None,
            ..options
        },
    )
    .await
    .unwrap();
    assert!(smb_report.rows.is_empty(), "no SMB account here");
    assert!(!smb.text().contains(" recovered"), "so no row on the page");
    assert!(!smb.text().contains("id=\"headline\""));
}

async fn the_maps_page_shows_each_map_as_stored(s: Setup<'_>) {
    let viewer = s.sign_in(VIEWER).await;
    let page = s.get("/maps", &viewer).await;
    let map = load_map("test.yaml", ESCALATION_MAP).unwrap();
    for m in &map.milestones {
        assert!(page.text().contains(&m.name), "{}", m.name);
        assert!(
            page.text().contains(&format!("due day {} of the contract", m.due_days)),
            "{}",
            m.id
        );
    }
    assert!(page.text().contains("Every segment"));
    assert!(
        page.text().contains("Could you name an owner for it?"),
        "the sponsor's text"
    );
}

/// An identity provider that signs in whoever its codes name: the flow's
/// checks are the console's; the provider's own (the ID token's signature,
/// issuer, audience, expiry, nonce) are its adapter's, tested against a
/// real provider.
struct CodesProvider;

#[async_trait::async_trait]
impl milepost_app::console::IdentityProvider for CodesProvider {
    async fn start(
        &self,
        redirect_uri: &str,
    ) -> Result<milepost_app::console::sign_in::Started, milepost_app::console::sign_in::IdentityError> {
        assert_eq!(redirect_uri, "https://console.example/sign-in/callback");
        Ok(milepost_app::console::sign_in::Started {
            url: "https://idp.example/authorize?client_id=milepost".into(),
            state: "state-1".into(),
            nonce: "nonce-1".into(),
            pkce_verifier: "verifier-1".into(),
        })
    }

    async fn finish(
        &self,
        code: &str,
        pending: &milepost_app::console::sign_in::Pending,
        _redirect_uri: &str,
    ) -> Result<milepost_app::console::sign_in::Identity, milepost_app::console::sign_in::IdentityError> {
        assert_eq!(
            (pending.nonce.as_str(), pending.pkce_verifier.as_str()),
            ("nonce-1", "verifier-1")
        );
        let (email, verified) = match code {
            "code-lee" => (LEAD, Some(true)),
            "code-stranger" => ("someone@elsewhere.example", Some(true)),
            "code-unverified" => (MAYA, Some(false)),
            _ => {
                return Err(milepost_app::console::sign_in::IdentityError::Refused(
                    "unknown code".into(),
                ))
            }
        };
        Ok(milepost_app::console::sign_in::Identity {
            email: email.into(),
            name: Some("Lee Lead".into()),
            email_verified: verified,
        })
    }
}

async fn signing_in_through_the_identity_provider_checks_state_and_works_once(s: Setup<'_>) {
    let console = Console {
        sign_in: SignIn::OpenId {
            provider: Arc::new(CodesProvider),
            access: milepost_app::console::Access::parse(
                r#"{"allowed_domains": ["vendor.example"], "leads": ["lead@vendor.example"]}"#,
            )
            .unwrap(),
            console_url: "https://console.example".into(),
        },
        ..s.console.clone()
    };
    let send = |r: Request| s.send_to(&console, r);
    // Away to the provider, the sign-in sealed in a Secure cookie of its own.
    let start = send(request("GET", "/sign-in?return=%2Faccounts%2Facme", None, "")).await;
    assert_eq!(start.status, 303);
    assert_eq!(
        start.header("location"),
        Some("https://idp.example/authorize?client_id=milepost")
    );
    let pending = start.header("set-cookie").unwrap().to_string();
    assert!(pending.starts_with("__Host-milepost-sign-in="), "{pending}");
    assert!(
        pending.contains("; Secure") && pending.contains("HttpOnly"),
        "{pending}"
    );
    let pending = pending.split(';').next().unwrap().to_string();
    let back = |query: &str, cookie: Option<&str>| request("GET", &format!("/sign-in/callback?{query}"), cookie, "");

    // Another state, no sign-in cookie, a refused code, a stranger, an unverified address: no session.
    for (query, cookie, status) in [
        ("code=code-lee&state=state-2", Some(pending.as_str()), 400),
        ("code=code-lee&state=state-1", None, 400),
        ("code=forged&state=state-1", Some(pending.as_str()), 403),
        ("code=code-stranger&state=state-1", Some(pending.as_str()), 403),
        ("code=code-unverified&state=state-1", Some(pending.as_str()), 403),
        ("error=access_denied&state=state-1", Some(pending.as_str()), 400),
    ] {
        let r = send(back(query, cookie)).await;
        assert_eq!(r.status, status, "{query}: {}", r.text());
        let cookies: Vec<&str> = r
            .headers
            .iter()
            .filter(|(n, _)| n == "set-cookie")
            .map(|(_, v)| v.as_str())
            .collect();
        assert!(
            cookies.iter().all(|c| !c.starts_with("__Host-milepost-session")),
            "{query}: no session"
        );
    }
    // The sign-in expires.
    s.clock.set(s.now() + Duration::minutes(11));
    let late = send(back("code=code-lee&state=state-1", Some(&pending))).await;
    assert_eq!(late.status, 400);
    s.clock.set(s.now() - Duration::minutes(11));

    // The right answer: a session, back where the person was going, the sign-in cookie gone.
    let done = send(back("code=code-lee&state=state-1", Some(&pending))).await;
    assert_eq!(done.status, 303, "{}", done.text());
    assert_eq!(done.header("location"), Some("/accounts/acme"));
    let cookies: Vec<&str> = done
        .headers
        .iter()
        .filter(|(n, _)| n == "set-cookie")
        .map(|(_, v)| v.as_str())
        .collect();
    assert!(cookies
        .iter()
        .any(|c| c.starts_with("__Host-milepost-sign-in=;") && c.contains("Max-Age=0")));
    let session = cookies
        .iter()
        .find(|c| c.starts_with("__Host-milepost-session="))
        .expect("a session cookie");
    assert!(session.contains("; Secure"));
    let session = session.split(';').next().unwrap();
    let page = send(request("GET", "/accounts/acme", Some(session), "")).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("Lee Lead"), "signed in as the provider's person");
    // The development sign-in is not there.
    let posted = send(request("POST", "/sign-in", None, &form(&[("person", LEAD)]))).await;
    assert_eq!(posted.status, 405);
}

/// A task keeps the SLA its map set when it opened (business days in the
/// account's time zone), and the "past their SLA" tab reads it off the task.
async fn a_task_keeps_its_sla_from_when_it_opened_and_the_past_sla_tab_reads_it(s: Setup<'_>) {
    use milepost_domain::after_playbook::add_business_days;
    use milepost_domain::TaskSla;
    let tasks = s.store.tasks_with_status(TaskStatus::Open).await.unwrap();
    assert!(!tasks.is_empty());
    for t in &tasks {
        let brief = t.brief();
        let m = s
            .store
            .get_milestone(&brief.account_id, &brief.milestone_id)
            .await
            .unwrap()
            .unwrap();
        let a = s.store.get_account(&brief.account_id).await.unwrap().unwrap();
        let days = m.policy().after_playbook.task_sla_business_days;
        assert!(days > 0, "the map sets an SLA");
        assert_eq!(
            brief.sla,
            Some(TaskSla::DueBy(add_business_days(t.created_at(), days, a.timezone)))
        );
    }
    let past = tasks
        .iter()
        .filter(|t| t.untouched() && matches!(t.brief().sla, Some(TaskSla::DueBy(at)) if at <= s.now()))
        .count();
    assert!(past > 0, "tasks opened a month ago and never touched are past it");
    let lead = s.sign_in(LEAD).await;
    let page = s.get("/tasks?whose=team&status=sla", &lead).await;
    assert!(
        page.text().contains(&format!("Tasks 1\u{2013}{past} of {past}")),
        "{past} past their SLA"
    );
}

/// A kept discovery result shows beside each milestone it judged: ratio,
/// class, the month the cohorts part, its cohorts, a small cohort flagged;
/// a milestone it did not judge shows nothing; without one, the page says
/// how to keep one.
async fn the_maps_page_shows_a_kept_discovery_result_beside_each_milestone(s: Setup<'_>) {
    use milepost_domain::discovery::KeptDiscovery;
    let viewer = s.sign_in(VIEWER).await;
    let before = s.get("/maps", &viewer).await;
    assert!(before.text().contains("No discovery result is kept"));
    assert!(!before.text().contains("class=\"discovery\""));

    let map = load_map("test.yaml", ESCALATION_MAP).unwrap();
    let (first, second) = (&map.milestones[0], &map.milestones[1]);
    let printed = serde_json::json!({"milestones": [
        {"milestone": first.id, "name": first.name, "segment": "all", "tenure": "all",
         "renewed_n": 140, "renewed_achieved": 120, "churned_n": 35, "churned_achieved": 9,
         "ratio": 3.33, "class": "strong", "divergence_month": 2, "small_cohort": false},
        {"milestone": second.id, "name": second.name, "segment": "all", "tenure": "all",
         "renewed_n": 12, "churned_n": 4, "ratio": 1.2, "class": "weak", "small_cohort": true},
        {"milestone": "not_in_any_map", "name": "Elsewhere", "segment": "all", "tenure": "all",
         "renewed_n": 140, "churned_n": 35, "ratio": "unbounded", "class": "strong"}
    ]});
    let kept = KeptDiscovery::from_json(&printed.to_string(), "q3.json", s.now()).unwrap();
    s.store.keep_discovery(&kept).await.unwrap();

    let page = s.get("/maps", &viewer).await;
    let text = page.text();
    assert!(
        text.contains("found by discovery on 140 renewed and 35 churned accounts (q3.json,"),
        "where the figures come from"
    );
    let card = |m: &milepost_domain::MilestoneDef| {
        let at = text.find(&format!("<span class=\"muted\">{}</span>", m.id)).unwrap();
        let end = text[at..].find("</li>").unwrap();
        text[at..at + end].to_string()
    };
    let strong = card(first);
    assert!(strong.contains("<span class=\"badge strong\">strong</span> Renewed customers reached it 3.3 times as often as churned ones; the cohorts part in month 2 (140 renewed, 35 churned accounts)."), "{strong}");
    let weak = card(second);
    assert!(
        weak.contains("badge weak") && weak.contains("1.2 times") && weak.contains("never part by month 12"),
        "{weak}"
    );
    assert!(weak.contains("Few accounts:"), "a small cohort is said to be one");
    for m in &map.milestones[2..] {
        assert!(
            !card(m).contains("class=\"discovery\""),
            "{}: nothing judged, nothing shown",
            m.id
        );
    }
    assert!(!text.contains("Elsewhere"), "a milestone of no map is not shown");

    // Issue 36: a map whose first milestone says `arr_weight: discovered`
    // shows the measure and what it rests on; its tracked misses take it.
    let mut discovered = map.clone();
    discovered.milestones[0].arr_weight = None;
    discovered.milestones[0].discovered_weight = Some(Default::default());
    s.store.put_map(&discovered).await.unwrap();
    let weighed = milepost_app::worth::reweigh(s.store.as_ref(), &Default::default())
        .await
        .unwrap();
    assert_eq!((weighed.discovered_maps, weighed.maps_changed), (1, 1));
    // 175 decided: 129 achieved it (9 churned), 46 missed it (26 churned).
    let weight = 26.0 / 46.0 - 9.0 / 129.0;
    let text = s.get("/maps", &viewer).await.text().to_string();
    assert!(
        text.contains(&format!("ARR weight {weight:.2}, discovered (95% "))
            && text.contains("): 26 of 46 accounts that missed it churned, 9 of 129 that achieved it (q3.json, kept"),
        "{}",
        &text[text
            .find(&format!("<span class=\"muted\">{}</span>", first.id))
            .unwrap()..][..1200]
    );
    let acme = s
        .store
        .milestones_of(&milepost_domain::AccountId::new("acme"))
        .await
        .unwrap();
    let fw = acme.iter().find(|m| m.milestone_id() == first.id).unwrap();
    assert_eq!(fw.arr_weight(), weight, "the open miss carries the measured weight");
    assert_eq!(weighed.milestones_changed, 2, "both accounts' misses of it, once each");
    let again = milepost_app::worth::reweigh(s.store.as_ref(), &Default::default())
        .await
        .unwrap();
    assert_eq!(
        (again.maps_changed, again.milestones_changed),
        (0, 0),
        "kept the same: nothing written"
    );

    // Set by hand again (what `maps load` does): the open misses go back to the map's weight.
    s.store.put_map(&map).await.unwrap();
    let formerly = milepost_app::worth::discovered_ids(std::slice::from_ref(&discovered));
    let back = milepost_app::worth::reweigh(s.store.as_ref(), &formerly).await.unwrap();
    assert_eq!((back.discovered_maps, back.milestones_changed), (0, 2));
    let acme = s
        .store
        .milestones_of(&milepost_domain::AccountId::new("acme"))
        .await
        .unwrap();
    let fw = acme.iter().find(|m| m.milestone_id() == first.id).unwrap();
    assert_eq!((fw.arr_weight(), fw.arr_weight_range()), (first.arr_weight(), None));
}

/// Every results page is a view the scheduled run kept, one read and no
/// Scan (on DynamoDB the function is granted none): a confirm changes the
/// figures from the next hourly run on, not before; before the first run
/// the page says when the figures come.
async fn the_results_pages_are_kept_hourly_and_a_page_view_works_nothing_out(s: Setup<'_>) {
    let arr_now = |report: &milepost_domain::report::Report| milepost_app::email::fmt_money(report.at_risk.arr_now);
    let report_at = |period: Period, as_of| milepost_app::report::report(s.store.as_ref(), period.options(None, as_of));
    let kept_at = s.now();
    let before = report_at(Period::All, kept_at).await.unwrap();
    let before_90 = report_at(Period::Last90Days, kept_at).await.unwrap();
    // Confirmed in the console: less ARR at risk from now on.
    let lead = s.sign_in(LEAD).await;
    let action = "/accounts/acme/milestones/sponsor_named/confirm";
    let page = s.get("/accounts/acme", &lead).await;
    let (csrf, form_id) = (
        field_after(page.text(), action, "csrf"),
        field_after(page.text(), action, "form_id"),
    );
    let r = s.post(action, &lead, &[("csrf", &csrf), ("form_id", &form_id)]).await;
    assert_eq!(r.status, 303, "{}", r.text());
    s.clock.set(s.now() + Duration::minutes(30));
    let after = report_at(Period::All, s.now()).await.unwrap();
    assert!(
        after.at_risk.arr_now < before.at_risk.arr_now,
        "the confirm took ARR off the risk"
    );

    for (period, report) in [(Period::All, &before), (Period::Last90Days, &before_90)] {
        let page = s.get(&format!("/results?period={}", period.as_str()), &lead).await;
        assert!(page.text().contains(&arr_now(report)), "the kept view, as of its hour");
        assert_rows_shown(page.text(), report, "as kept");
    }
    let kept = s.get("/results", &lead).await;
    assert!(kept.text().contains("id=\"weeks\""), "every miss so far has the weeks");
    let ninety = s.get("/results?period=90d", &lead).await;
    assert!(
        !ninety.text().contains("id=\"weeks\"") && ninety.text().contains("<a href=\"/results\">every miss so far</a>"),
        "a period's page leaves them to every miss so far's"
    );

    let keeper = s.services.console_keeping().results;
    assert_eq!(keeper.run().await.unwrap(), 0, "half an hour old: kept as it is");
    s.clock.set(s.now() + Duration::minutes(31));
    assert_eq!(keeper.run().await.unwrap(), 24, "an hour old: worked out again");
    let again = report_at(Period::All, s.now()).await.unwrap();
    let page = s.get("/results", &lead).await;
    assert!(page.text().contains(&arr_now(&again)), "the new view");
    assert_rows_shown(page.text(), &again, "kept again");
}
/// Every email the playbook sent about an account is listed on its page and
/// opens as it went, its links switched off and nothing of it run or
/// loaded; another account's email is not found under this one.
async fn an_accounts_page_opens_each_email_sent_about_it_as_it_went(s: Setup<'_>) {
    let viewer = s.sign_in(VIEWER).await;
    let page = s.get("/accounts/acme", &viewer).await;
    let text = page.text();
    let at = text.find("id=\"emails-h\"").expect("the emails section");
    let section = &text[at..at + text[at..].find("</section>").unwrap()];
    let links: Vec<&str> = section
        .split("<a href=\"")
        .skip(1)
        .map(|rest| &rest[..rest.find('"').unwrap()])
        .collect();
    assert!(links.len() >= 3, "day 1 and day 3 emails at least: {section}");
    for link in &links {
        assert!(link.starts_with("/accounts/acme/emails/"), "{link}");
        let key: String = form_urlencoded::parse(format!("k={}", &link["/accounts/acme/emails/".len()..]).as_bytes())
            .next()
            .unwrap()
            .1
            .into_owned();
        let (sent, html) = s.store.archived_email(&key).await.unwrap().expect("kept");
        let email = s.get(link, &viewer).await;
        assert_eq!(email.status, 200, "{link}");
        let csp = email.header("content-security-policy").unwrap();
        assert!(csp.contains("sandbox") && csp.contains("default-src 'none'"), "{csp}");
        assert!(email.text().contains("Its links are switched off here."));
        assert!(html.contains(" href=\""), "the email as sent has links");
        assert!(!email.text().contains(" href=\""), "none work in the copy: {link}");
        let escaped = sent
            .subject
            .replace('&', "&#38;")
            .replace('<', "&#60;")
            .replace('>', "&#62;")
            .replace('"', "&#34;")
            .replace('\'', "&#39;");
        assert!(section.contains(&escaped), "{escaped} listed");
        // Under another account's address: not found.
        let elsewhere = s
            .send(request(
                "GET",
                &link.replace("/accounts/acme/", "/accounts/globex/"),
                Some(&viewer),
                "",
            ))
            .await;
        assert_eq!(elsewhere.status, 404, "{link} under globex");
    }
}

/// Issue 36: an account's page shows its success plan as it stands, each
/// checkpoint beside the milestone tracking it (reached, not due yet) or
/// why none does (dated before the plan was set); an account without a
/// plan says so.
#[tokio::test]
async fn an_accounts_page_shows_its_success_plan_and_how_each_checkpoint_stands() {
    use milepost_domain::{AgreedOutcome, Checkpoint, Measure};
    let s = in_memory().await;
    let map = format!(
        "{ESCALATION_MAP}  - id: on_pace\n    name: Agreed outcome on pace\n    phase: value_realization\n    \
         owner: csm\n    criterion: {{kind: agreed_outcome}}\n    \
         playbook: {{outreach: o, csm: c, leadership: l, sponsor: s}}\n"
    );
    s.store.put_map(&load_map("test.yaml", &map).unwrap()).await.unwrap();
    let start = contract_start().date_naive();
    let now = s.clock.now();
    let outcome = AgreedOutcome {
        id: "days_to_close".into(),
        title: "Close the books faster".into(),
        measure: Measure {
            event: "outcome.measured".into(),
            property: "days_to_close".into(),
        },
        unit: "days".into(),
        baseline: 10.0,
        target: 3.0,
        starts_on: start,
        by: start + Duration::days(365),
        checkpoints: vec![
            Checkpoint {
                on: start + Duration::days(18),
                value: 8.0,
            },
            Checkpoint {
                on: start + Duration::days(60),
                value: 7.0,
            },
        ],
        agreed_by: "Dana Chen, VP Finance".into(),
    };
    let acme = AccountId::new("acme");
    milepost_app::success_plans::set_plan(s.store.as_ref(), &acme, vec![outcome], "maya@vendor.example", now)
        .await
        .unwrap();
    let measured = milepost_domain::ProductEvent {
        id: "measure-1".into(),
        account_id: acme.clone(),
        event: "outcome.measured".into(),
        timestamp: now,
        user_id: None,
        properties: serde_json::json!({"days_to_close": 6.5}).as_object().unwrap().clone(),
    };
    s.services.ingestion().apply_event(&measured).await.unwrap();
    let lead = s.sign_in(LEAD).await;
    let response = s.get("/accounts/acme", &lead).await;
    let page = response.text();
    let at = page.find("id=\"plan-h\"").expect("the plan's section");
    let section = &page[at..at + page[at..].find("</section>").unwrap()];
    for says in [
        "Version 1, set",
        "Close the books faster: from 10 days to 3 days by 2 Mar 2027, agreed with Dana Chen, VP Finance",
        "Measured by outcome.measured&#39;s days_to_close",
    ] {
        assert!(section.contains(says), "{says:?} missing: {section}");
    }
    let rows: Vec<&str> = section.split("<tr><th scope=\"row\">").skip(1).collect();
    assert_eq!(rows.len(), 3, "{section}");
    assert!(
        rows[0].starts_with("20 Mar 2026") && rows[0].contains("Not tracked: past when the plan was set"),
        "{}",
        rows[0]
    );
    assert!(
        rows[1].starts_with("1 May 2026") && rows[1].contains("7 days") && rows[1].contains("Reached on time"),
        "{}",
        rows[1]
    );
    assert!(
        rows[2].starts_with("2 Mar 2027") && rows[2].contains("Not due yet") && rows[2].contains("6.5"),
        "{}",
        rows[2]
    );
    let globex = s.get("/accounts/globex", &lead).await;
    assert!(globex.text().contains("No success plan is kept for this account."));
}

/// Before the scheduled run first keeps the results, the page says when
/// they come; it works nothing out itself (that would read the whole table).
#[tokio::test]
async fn before_the_first_run_the_results_page_says_when_its_figures_come() {
    let store = Arc::new(InMemoryStore::new());
    let clock = Arc::new(VirtualClock::new(contract_start()));
    let services = Services {
        store: store.clone(),
        mailer: Arc::new(MemoryMailer::default()),
        events: Arc::new(RecordingPublisher::default()),
        workflows: Arc::new(LocalWorkflowRunner::new()),
        clock: clock.clone(),
        config: milepost_embedded::fixtures::simulation_config(),
        links: None,
    };
    let console = services.console(
        SessionKey::random(),
        SignIn::Development {
            people: vec![Person {
                name: "Vic Viewer".into(),
                email: VIEWER.into(),
                role: Role::Viewer,
            }],
        },
    );
    let signed = through_handler(
        &console,
        request("POST", "/sign-in", None, &form(&[("person", VIEWER)])),
    )
    .await;
    let cookie = signed
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = through_handler(&console, request("GET", "/results?period=90d", Some(&cookie), "")).await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(
        page.text().contains("No results are worked out yet.") && page.text().contains("next by 01:00 UTC"),
        "{}",
        page.text()
    );
    services.console_keeping().run().await.unwrap();
    let page = through_handler(&console, request("GET", "/results?period=90d", Some(&cookie), "")).await;
    assert!(!page.text().contains("No results are worked out yet."), "kept now");
}

// What a page shows or does with the store: on both. (Each costs four
// seconds of setup on DynamoDB; those below only read what the store
// contract already holds both stores to, or touch no store.)
milepost_local::scenarios! {
    function: "ConsoleFunction",
    in_memory: crate::console::in_memory,
    on_dynamodb: crate::console::on_dynamodb,
    asks_at_least: ["dynamodb:Query@table", "dynamodb:PutItem on TASK#acme-first_workflow-c7c8213c2dc6:csm-task"],
    scenarios: [
        the_portfolio_counts_what_the_report_counts,
        every_page_needs_a_session_and_a_bad_cookie_means_signing_in_again,
        a_task_closed_from_the_console_is_closed_once_by_its_owner,
        viewers_other_csms_and_forged_forms_change_nothing,
        a_lead_confirms_a_manual_milestone_and_the_portfolio_no_longer_counts_it,
        a_note_and_a_pause_are_kept_once_however_often_the_form_is_sent,
        the_results_pages_are_kept_hourly_and_a_page_view_works_nothing_out,
        an_accounts_page_opens_each_email_sent_about_it_as_it_went,
    ],
}

/// Pages that read what the store contract holds both stores to alike (the
/// maps, a kept discovery, a task's SLA, the report's figures), and the
/// identity provider's flow, which touches no store: on the embedded store.
mod embedded_store_only {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_maps_page_shows_each_map_as_stored() {
        super::the_maps_page_shows_each_map_as_stored(super::in_memory().await).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn signing_in_through_the_identity_provider_checks_state_and_works_once() {
        super::signing_in_through_the_identity_provider_checks_state_and_works_once(super::in_memory().await).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_task_keeps_its_sla_from_when_it_opened_and_the_past_sla_tab_reads_it() {
        super::a_task_keeps_its_sla_from_when_it_opened_and_the_past_sla_tab_reads_it(super::in_memory().await).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_maps_page_shows_a_kept_discovery_result_beside_each_milestone() {
        super::the_maps_page_shows_a_kept_discovery_result_beside_each_milestone(super::in_memory().await).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_results_page_shows_the_reports_figures() {
        super::the_results_page_shows_the_reports_figures(super::in_memory().await).await
    }
}
