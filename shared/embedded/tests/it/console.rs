//! The console over a store the pipeline filled: what its pages count is
//! what `milepost report` counts, every route asks for a session, and every
//! change is made once, by someone allowed to, through a form of this
//! console's own session.

use std::sync::Arc;

use chrono::Duration;
use milepost_app::console::{Console, Person, Request, Response, Role, SessionKey, SignIn};
use milepost_app::ports::{Clock, EscalationLog, MilestoneStore, PauseStore, TaskStore};
use milepost_app::sweep::SweepOptions;
use milepost_app::Services;
use milepost_domain::report::{ReportOptions, DEFAULT_WINDOW_DAYS};
use milepost_domain::{AccountId, DomainEvent, MilestoneStatus, TaskStatus, Timestamp};
use milepost_embedded::fixtures::escalation::{account, contract_start, ESCALATION_MAP};
use milepost_embedded::{InMemoryStore, LocalWorkflowRunner, MemoryMailer, RecordingPublisher, VirtualClock};
use milepost_maps::load_map;

const LEAD: &str = "lead@vendor.example";
const MAYA: &str = "maya@vendor.example";
const OMAR: &str = "omar@vendor.example";
const VIEWER: &str = "viewer@vendor.example";

struct Setup {
    console: Console,
    services: Services,
    store: Arc<InMemoryStore>,
    events: Arc<RecordingPublisher>,
    clock: Arc<VirtualClock>,
}

/// Two accounts (Maya is their CSM) run through the playbook to day 33:
/// `first_workflow` and `team_invited` missed with tasks open,
/// `sponsor_named` (manual) missed at day 30.
async fn setup() -> Setup {
    let store = Arc::new(InMemoryStore::new());
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
    use milepost_app::ports::MapStore;
    store
        .put_map(&load_map("test.yaml", ESCALATION_MAP).unwrap())
        .await
        .unwrap();
    for (id, arr) in [("acme", 100_000), ("globex", 40_000)] {
        let a = milepost_domain::Account { arr, ..account(id) };
        services.ingestion().upsert_account(&a).await.unwrap();
    }
    let until = contract_start() + Duration::days(33);
    let mut t = contract_start() + Duration::hours(1);
    while t <= until {
        clock.set(t);
        services.sweeper().sweep(&SweepOptions::default()).await.unwrap();
        runner.run_due(&services.playbook(), t).await;
        t += Duration::hours(1);
    }
    // What the scheduled run does last: keep the portfolio the console reads.
    let kept = services.console_keeping().run().await.unwrap();
    assert_eq!(kept.portfolio.rows, 2, "{kept:?}");
    assert_eq!(kept.results_kept, 4, "every segment together, and each");
    let person = |name: &str, email: &str, role| Person {
        name: name.into(),
        email: email.into(),
        role,
    };
    let console = Console {
        store: store.clone(),
        ingestion: services.ingestion(),
        events: events.clone(),
        clock: clock.clone(),
        sessions: SessionKey::random(),
        sign_in: SignIn::Development {
            people: vec![
                person("Lee Lead", LEAD, Role::Lead),
                person("Maya CSM", MAYA, Role::Csm),
                person("Omar CSM", OMAR, Role::Csm),
                person("Vic Viewer", VIEWER, Role::Viewer),
            ],
        },
    };
    Setup {
        console,
        services,
        store,
        events,
        clock,
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

impl Setup {
    async fn send(&self, request: Request) -> Response {
        self.console.handle(&request).await
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

#[tokio::test]
async fn the_portfolio_counts_what_the_report_counts() {
    let s = setup().await;
    let lead = s.sign_in(LEAD).await;
    let page = s.get("/", &lead).await;
    let report = milepost_app::report::report(
        s.store.as_ref(),
        ReportOptions {
            since: None,
            until: None,
            segment: None,
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

#[tokio::test]
async fn every_page_needs_a_session_and_a_bad_cookie_means_signing_in_again() {
    let s = setup().await;
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
        let r = other
            .handle(&request("POST", "/sign-in", None, &form(&[("person", LEAD)])))
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

#[tokio::test]
async fn a_task_closed_from_the_console_is_closed_once_by_its_owner() {
    let s = setup().await;
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

#[tokio::test]
async fn viewers_other_csms_and_forged_forms_change_nothing() {
    let s = setup().await;
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

#[tokio::test]
async fn a_lead_confirms_a_manual_milestone_and_the_portfolio_no_longer_counts_it() {
    let s = setup().await;
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

#[tokio::test]
async fn a_note_and_a_pause_are_kept_once_however_often_the_form_is_sent() {
    let s = setup().await;
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

#[tokio::test]
async fn the_results_page_shows_the_reports_figures() {
    let s = setup().await;
    let viewer = s.sign_in(VIEWER).await;
    let page = s.get("/results", &viewer).await;
    let options = ReportOptions {
        since: None,
        until: None,
        segment: None,
        window_days: DEFAULT_WINDOW_DAYS,
        as_of: s.now(),
    };
    let report = milepost_app::report::report(s.store.as_ref(), options.clone())
        .await
        .unwrap();
    assert!(!report.rows.is_empty());
    for row in &report.rows {
        for (recovered, missed) in [
            (row.recovered_playbook, row.missed_playbook),
            (row.recovered_control, row.missed_control),
        ] {
            let words = format!("{recovered} of {missed} recovered");
            assert!(
                page.text().contains(&words),
                "{words} for {}/{}",
                row.milestone,
                row.segment
            );
        }
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
            ..options
        },
    )
    .await
    .unwrap();
    assert!(smb_report.rows.is_empty(), "no SMB account here");
    assert!(!smb.text().contains(" recovered"), "so no row on the page");
    assert!(!smb.text().contains("id=\"headline\""));
}

#[tokio::test]
async fn the_maps_page_shows_each_map_as_stored() {
    let s = setup().await;
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

#[tokio::test]
async fn signing_in_through_the_identity_provider_checks_state_and_works_once() {
    let s = setup().await;
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
    let send = |r: Request| {
        let console = console.clone();
        async move { console.handle(&r).await }
    };
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
#[tokio::test]
async fn a_task_keeps_its_sla_from_when_it_opened_and_the_past_sla_tab_reads_it() {
    use milepost_app::ports::AccountStore;
    use milepost_domain::after_playbook::add_business_days;
    use milepost_domain::TaskSla;
    let s = setup().await;
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
#[tokio::test]
async fn the_maps_page_shows_a_kept_discovery_result_beside_each_milestone() {
    use milepost_app::ports::DiscoveryStore;
    use milepost_domain::discovery::KeptDiscovery;
    let s = setup().await;
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
}

/// The results page people open most (every miss so far) is the view the
/// scheduled run kept, one read; it is worked out again once it is an hour
/// old, not before; a chosen period is worked out when asked for.
#[tokio::test]
async fn the_results_page_is_kept_hourly_and_a_chosen_period_is_worked_out_when_asked() {
    let s = setup().await;
    let options = |as_of| ReportOptions {
        since: None,
        until: None,
        segment: None,
        window_days: DEFAULT_WINDOW_DAYS,
        as_of,
    };
    let arr_now = |report: &milepost_domain::report::Report| milepost_app::email::fmt_money(report.at_risk.arr_now);
    let before = milepost_app::report::report(s.store.as_ref(), options(s.now()))
        .await
        .unwrap();
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
    let after = milepost_app::report::report(s.store.as_ref(), options(s.now()))
        .await
        .unwrap();
    assert!(
        after.at_risk.arr_now < before.at_risk.arr_now,
        "the confirm took ARR off the risk"
    );

    let kept = s.get("/results", &lead).await;
    assert!(kept.text().contains(&arr_now(&before)), "the kept view, as of its hour");
    let since = contract_start().date_naive().to_string();
    let chosen = s.get(&format!("/results?since={since}"), &lead).await;
    assert!(chosen.text().contains(&arr_now(&after)), "a chosen period: as of now");
    assert!(
        !chosen.text().contains("id=\"weeks\"") && chosen.text().contains("<a href=\"/results\">every miss so far</a>"),
        "its weeks are on every miss so far's page"
    );
    assert!(kept.text().contains("id=\"weeks\""), "which has them");

    let keeper = s.services.console_keeping().results;
    assert_eq!(keeper.run().await.unwrap(), 0, "half an hour old: kept as it is");
    s.clock.set(s.now() + Duration::minutes(31));
    assert_eq!(keeper.run().await.unwrap(), 4, "an hour old: worked out again");
    let again = s.get("/results", &lead).await;
    assert!(again.text().contains(&arr_now(&after)), "the new view");
}

/// Every email the playbook sent about an account is listed on its page and
/// opens as it went, its links switched off and nothing of it run or
/// loaded; another account's email is not found under this one.
#[tokio::test]
async fn an_accounts_page_opens_each_email_sent_about_it_as_it_went() {
    let s = setup().await;
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
        use milepost_app::ports::SendLedger;
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
