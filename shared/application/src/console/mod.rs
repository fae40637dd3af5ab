//! The console: the CS team's web pages over what Milepost keeps. Pages are
//! rendered on the server (askama, like the emails), work without
//! JavaScript, and read the store through `ConsoleStore` (indexes, never a
//! scan). Every change goes through the use cases the email buttons use
//! (`change_task`, `Ingestion::confirm_manual`, the pause), as the signed-in
//! person, after their session, the form's CSRF token, its origin and
//! their role are checked. HTTP is an adapter's: the Lambda and `milepost
//! console` hand a `Request` in and send the `Response` back.

mod maps;
mod pages;
mod results;
pub mod session;
pub mod sign_in;

use std::sync::Arc;

use chrono::Duration;
use milepost_domain::csm_task::clean_note;
use milepost_domain::{
    AccountId, Actor, DismissReason, EscalationLogEntry, Outcome, TaskAction, TaskRefusal, Timestamp,
};

pub use crate::email::account_href;
use crate::ingest::{Confirmed, IngestError, Ingestion};
use crate::ports::{Clock, ConsoleStore, EventPublisher};
use crate::tasks::{change_task, TaskError};
pub use results::{keep_results, results_due, Period, ResultsKeeper, RESULTS_KEPT_FOR};
pub use session::{Role, SessionKey, Viewer};
pub use sign_in::{Access, IdentityProvider};
use subtle::ConstantTimeEq;

/// The console's one stylesheet, served by the console itself (no CDN).
pub const STYLESHEET: &str = include_str!("../../templates/console/console.css");

/// What the console serves: its data, the use cases it acts through, and how people sign in.
#[derive(Clone)]
pub struct Console {
    pub store: Arc<dyn ConsoleStore>,
    /// Confirming a manual milestone changes it where events do.
    pub ingestion: Ingestion,
    pub events: Arc<dyn EventPublisher>,
    pub clock: Arc<dyn Clock>,
    pub sessions: SessionKey,
    pub sign_in: SignIn,
}

/// How people sign in.
#[derive(Clone)]
pub enum SignIn {
    /// `milepost console` on the demo's data: pick a person, no password.
    /// Its server listens on loopback only, and every page says so.
    Development { people: Vec<Person> },
    /// The team's identity provider (OpenID Connect); `access` says who
    /// may enter as what; `console_url` is where the console is served
    /// (its callback is `<console_url>/sign-in/callback`).
    OpenId {
        provider: Arc<dyn IdentityProvider>,
        access: Access,
        console_url: String,
    },
}

/// Someone the development sign-in offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Person {
    pub name: String,
    pub email: String,
    pub role: Role,
}

/// One HTTP request, as the adapter read it.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub method: String,
    /// The path, percent-encoded as it came.
    pub path: String,
    /// The query string, without `?`.
    pub query: String,
    /// `application/x-www-form-urlencoded`, for a POST.
    pub body: Vec<u8>,
    /// The `Cookie` header.
    pub cookie: Option<String>,
    /// The `Origin` header, if the browser sent one.
    pub origin: Option<String>,
    /// The `Host` header.
    pub host: Option<String>,
    /// The `Sec-Fetch-Site` header, if the browser sent one.
    pub fetch_site: Option<String>,
}

/// The answer, for the adapter to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap_or_default()
    }

    fn html(status: u16, html: String) -> Response {
        Response {
            status,
            headers: vec![("content-type".into(), "text/html; charset=utf-8".into())],
            body: html.into_bytes(),
        }
    }

    fn redirect(to: &str) -> Response {
        Response {
            status: 303,
            headers: vec![("location".into(), to.to_string())],
            body: Vec::new(),
        }
    }

    fn with_header(mut self, name: &str, value: String) -> Response {
        self.headers.push((name.to_string(), value));
        self
    }
}

/// A sent email's copy: its own inline styles, nothing else loaded, run or
/// submitted, in a sandbox of its own.
const SENT_EMAIL_CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The headers every answer carries: no script but our own files, never
/// framed, HTTPS remembered, nothing cached, nothing sniffed.
fn secured(mut response: Response) -> Response {
    if response.header("content-security-policy").is_none() {
        response.headers.push((
            "content-security-policy".into(),
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'".into(),
        ));
    }
    for (name, value) in [
        ("strict-transport-security", "max-age=31536000; includeSubDomains"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("x-frame-options", "DENY"),
    ] {
        response.headers.push((name.to_string(), value.to_string()));
    }
    if response.header("cache-control").is_none() {
        response.headers.push(("cache-control".into(), "no-store".into()));
    }
    response
}

/// The form fields of a body or a query.
pub(crate) struct Fields(Vec<(String, String)>);

impl Fields {
    fn parse(bytes: &[u8]) -> Fields {
        Fields(form_urlencoded::parse(bytes).into_owned().collect())
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// A path to return to after signing in or acting: our own, relative, and
/// nothing else (an absolute or scheme-relative URL would send people away).
pub fn safe_return(to: Option<&str>) -> String {
    match to {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.contains('\\')
                && !p.chars().any(|c| c.is_control() || c.is_whitespace()) =>
        {
            p.to_string()
        }
        _ => "/".to_string(),
    }
}

/// A path segment, decoded.
fn decoded(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// What a request asks for.
enum Route {
    Stylesheet,
    SignIn,
    SignInCallback,
    SignOut,
    Portfolio,
    Account(AccountId),
    SentEmail(AccountId, String),
    Tasks,
    Task(String),
    Results,
    Maps,
    TaskAction(String, String),
    AccountAction(AccountId, String),
    Confirm(AccountId, String),
    Unknown,
}

fn route(path: &str) -> Route {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["static", "console.css"] => Route::Stylesheet,
        ["sign-in"] => Route::SignIn,
        ["sign-in", "callback"] => Route::SignInCallback,
        ["sign-out"] => Route::SignOut,
        [""] => Route::Portfolio,
        ["accounts", id] => Route::Account(AccountId::new(decoded(id))),
        ["accounts", id, "milestones", m, "confirm"] => Route::Confirm(AccountId::new(decoded(id)), decoded(m)),
        ["accounts", id, "emails", key] => Route::SentEmail(AccountId::new(decoded(id)), decoded(key)),
        ["accounts", id, what] => Route::AccountAction(AccountId::new(decoded(id)), (*what).to_string()),
        ["tasks"] => Route::Tasks,
        ["tasks", id] => Route::Task(decoded(id)),
        ["results"] => Route::Results,
        ["maps"] => Route::Maps,
        ["tasks", id, what] => Route::TaskAction(decoded(id), (*what).to_string()),
        _ => Route::Unknown,
    }
}

/// What an action came to, said on the page it returns to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Notice {
    TaskDone,
    TaskSnoozed,
    TaskDismissed,
    Paused,
    Noted,
    Confirmed,
    AlreadyDone,
}

impl Notice {
    const ALL: [Notice; 7] = [
        Notice::TaskDone,
        Notice::TaskSnoozed,
        Notice::TaskDismissed,
        Notice::Paused,
        Notice::Noted,
        Notice::Confirmed,
        Notice::AlreadyDone,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Notice::TaskDone => "task-done",
            Notice::TaskSnoozed => "task-snoozed",
            Notice::TaskDismissed => "task-dismissed",
            Notice::Paused => "paused",
            Notice::Noted => "noted",
            Notice::Confirmed => "confirmed",
            Notice::AlreadyDone => "already-done",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Notice> {
        Notice::ALL.into_iter().find(|n| n.as_str() == s)
    }

    pub(crate) fn text(self) -> &'static str {
        match self {
            Notice::TaskDone => "The task is done.",
            Notice::TaskSnoozed => "The task is snoozed.",
            Notice::TaskDismissed => "The task is dismissed.",
            Notice::Paused => "Automated customer email is paused for 14 days.",
            Notice::Noted => "Your note is on the account's history.",
            Notice::Confirmed => "The milestone is confirmed.",
            Notice::AlreadyDone => "That was already done; nothing changed.",
        }
    }
}

/// `path` with `notice` added to its query.
fn with_notice(path: &str, notice: Notice) -> String {
    let (base, query) = path.split_once('?').unwrap_or((path, ""));
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("notice="))
        .collect();
    let mut query = kept.join("&");
    if !query.is_empty() {
        query.push('&');
    }
    format!("{base}?{query}notice={}", notice.as_str())
}

impl Console {
    /// Whether the console is served over HTTPS: its cookies are then
    /// `Secure` and `__Host-` named. Not on the loopback development server.
    fn secure(&self) -> bool {
        match &self.sign_in {
            SignIn::Development { .. } => false,
            SignIn::OpenId { console_url, .. } => console_url.starts_with("https://"),
        }
    }

    fn cookie_name(&self) -> &'static str {
        if self.secure() {
            session::COOKIE
        } else {
            session::DEV_COOKIE
        }
    }

    fn pending_cookie_name(&self) -> &'static str {
        if self.secure() {
            session::PENDING_COOKIE
        } else {
            session::DEV_PENDING_COOKIE
        }
    }

    /// The `Set-Cookie` value of the session cookie for `value` (empty: the cookie removed).
    fn set_cookie(&self, value: &str, max_age: i64) -> String {
        self.set_named_cookie(self.cookie_name(), value, max_age)
    }

    fn set_named_cookie(&self, name: &str, value: &str, max_age: i64) -> String {
        let secure = if self.secure() { "; Secure" } else { "" };
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
    }

    /// The value of the request's cookie `name`.
    fn cookie<'r>(request: &'r Request, name: &str) -> Option<&'r str> {
        request
            .cookie
            .as_deref()
            .unwrap_or_default()
            .split(';')
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, value)| value)
    }

    /// The session the request's cookie stands for.
    fn viewer(&self, request: &Request, now: Timestamp) -> Result<Viewer, session::SessionError> {
        let cookie = Self::cookie(request, self.cookie_name()).ok_or(session::SessionError::Missing)?;
        self.sessions.open(cookie, now)
    }

    /// Answers one request.
    pub async fn handle(&self, request: &Request) -> Response {
        secured(self.answer(request).await)
    }

    async fn answer(&self, request: &Request) -> Response {
        let now = self.clock.now();
        let route = route(&request.path);
        let method = request.method.as_str();
        match (&route, method) {
            (Route::Stylesheet, "GET" | "HEAD") => {
                return Response {
                    status: 200,
                    headers: vec![
                        ("content-type".into(), "text/css; charset=utf-8".into()),
                        ("cache-control".into(), "public, max-age=3600".into()),
                    ],
                    body: STYLESHEET.as_bytes().to_vec(),
                }
            }
            (Route::SignIn, "GET" | "HEAD") => {
                let query = Fields::parse(request.query.as_bytes());
                let return_to = safe_return(query.get("return"));
                return match &self.sign_in {
                    SignIn::Development { people } => Response::html(200, pages::sign_in(self, people, &return_to)),
                    SignIn::OpenId {
                        provider, console_url, ..
                    } => self.start_sign_in(provider.as_ref(), console_url, return_to, now).await,
                };
            }
            (Route::SignIn, "POST") => return self.sign_in(request, now),
            (Route::SignInCallback, "GET") => return self.finish_sign_in(request, now).await,
            (Route::Unknown, _) => return self.not_found(None),
            _ => {}
        }
        let viewer = match self.viewer(request, now) {
            Ok(viewer) => viewer,
            Err(_) if method == "GET" || method == "HEAD" => {
                let here = if request.query.is_empty() {
                    request.path.clone()
                } else {
                    format!("{}?{}", request.path, request.query)
                };
                let to: String = form_urlencoded::Serializer::new(String::new())
                    .append_pair("return", &safe_return(Some(&here)))
                    .finish();
                return Response::redirect(&format!("/sign-in?{to}"));
            }
            Err(_) => {
                return Response::html(
                    403,
                    pages::message(
                        self,
                        None,
                        "Sign in again",
                        "Your session has ended, so nothing was changed. Sign in and try again.",
                    ),
                )
            }
        };
        if method == "POST" {
            let form = Fields::parse(&request.body);
            if let Some(refusal) = self.refuse_post(request, &viewer, &form) {
                return refusal;
            }
            return match route {
                Route::SignOut => Response::redirect("/sign-in").with_header("set-cookie", self.set_cookie("", 0)),
                Route::TaskAction(id, what) => self.task_action(&viewer, &id, &what, &form, now).await,
                Route::AccountAction(account, what) => self.account_action(&viewer, &account, &what, &form, now).await,
                Route::Confirm(account, milestone) => self.confirm(&viewer, &account, &milestone, &form, now).await,
                _ => self.method_not_allowed(&viewer),
            };
        }
        if method != "GET" && method != "HEAD" {
            return self.method_not_allowed(&viewer);
        }
        let query = Fields::parse(request.query.as_bytes());
        let page = match route {
            Route::Portfolio => pages::portfolio(self, &viewer, &query, now).await,
            Route::Account(id) => pages::account(self, &viewer, &id, &query, now).await,
            Route::SentEmail(account, key) => {
                return match pages::sent_email(self, &account, &key).await {
                    Ok(Some(html)) => {
                        Response::html(200, html).with_header("content-security-policy", SENT_EMAIL_CSP.into())
                    }
                    Ok(None) => self.not_found(Some(&viewer)),
                    Err(e) => {
                        tracing::error!(error = %crate::ErrorChain(&e), "reading a sent email for the console failed");
                        self.unavailable(Some(&viewer))
                    }
                };
            }
            Route::Tasks => pages::tasks(self, &viewer, &query, now).await,
            Route::Task(id) => pages::task(self, &viewer, &id, &query, now).await,
            Route::Results => results::results(self, &viewer, &query, now).await,
            Route::Maps => maps::maps(self, &viewer).await,
            _ => return self.method_not_allowed(&viewer),
        };
        match page {
            Ok(Some(html)) => Response::html(200, html),
            Ok(None) => self.not_found(Some(&viewer)),
            Err(e) => {
                tracing::error!(error = %crate::ErrorChain(&e), "a console page failed");
                self.unavailable(Some(&viewer))
            }
        }
    }

    fn not_found(&self, viewer: Option<&Viewer>) -> Response {
        Response::html(
            404,
            pages::message(self, viewer, "Not found", "There is no such page. Nothing was changed."),
        )
    }

    fn method_not_allowed(&self, viewer: &Viewer) -> Response {
        Response::html(
            405,
            pages::message(
                self,
                Some(viewer),
                "Not allowed",
                "This page cannot do that. Nothing was changed.",
            ),
        )
        .with_header("allow", "GET, HEAD, POST".into())
    }

    fn unavailable(&self, viewer: Option<&Viewer>) -> Response {
        Response::html(
            503,
            pages::message(
                self,
                viewer,
                "Try again",
                "Milepost could not do that just now. Nothing was changed; please try again in a minute.",
            ),
        )
    }

    fn forbidden(&self, viewer: &Viewer, why: &str) -> Response {
        Response::html(403, pages::message(self, Some(viewer), "Not allowed", why))
    }

    /// Why a POST may not act, if it may not: a form without this session's
    /// CSRF token, from another origin, or by a viewer.
    fn refuse_post(&self, request: &Request, viewer: &Viewer, form: &Fields) -> Option<Response> {
        if !form.get("csrf").is_some_and(|t| self.sessions.csrf_ok(viewer, t)) {
            return Some(self.forbidden(
                viewer,
                "This form is out of date or was not sent from this console, so nothing was changed. Reload the page and try again.",
            ));
        }
        // A browser says where a form came from: only this console's own pages may act.
        if request
            .fetch_site
            .as_deref()
            .is_some_and(|site| !matches!(site.trim(), "same-origin" | "none"))
        {
            return Some(self.forbidden(viewer, "This form was sent from another site, so nothing was changed."));
        }
        if let (Some(origin), Some(host)) = (request.origin.as_deref(), request.host.as_deref()) {
            let ours = origin
                .split_once("://")
                .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host));
            if !ours {
                return Some(self.forbidden(viewer, "This form was sent from another site, so nothing was changed."));
            }
        }
        if viewer.role == Role::Viewer && !matches!(route(&request.path), Route::SignOut) {
            return Some(self.forbidden(
                viewer,
                "You can see everything here but change nothing: ask your CS lead for the CSM or lead role.",
            ));
        }
        None
    }

    /// The first leg: off to the provider, what the second leg checks sealed in a cookie.
    async fn start_sign_in(
        &self,
        provider: &dyn IdentityProvider,
        console_url: &str,
        return_to: String,
        now: Timestamp,
    ) -> Response {
        let redirect_uri = format!("{}/sign-in/callback", console_url.trim_end_matches('/'));
        match provider.start(&redirect_uri).await {
            Ok(started) => {
                let pending = sign_in::Pending {
                    state: started.state,
                    nonce: started.nonce,
                    pkce_verifier: started.pkce_verifier,
                    return_to,
                    expires_at: now + Duration::minutes(sign_in::PENDING_MINUTES),
                };
                Response::redirect(&started.url).with_header(
                    "set-cookie",
                    self.set_named_cookie(
                        self.pending_cookie_name(),
                        &self.sessions.seal_pending(&pending),
                        sign_in::PENDING_MINUTES * 60,
                    ),
                )
            }
            Err(e) => {
                tracing::error!(error = %crate::ErrorChain(&e), "starting a sign-in failed");
                self.unavailable(None)
            }
        }
    }

    /// The second leg: the provider's answer checked against the sign-in
    /// cookie (state in constant time; nonce and PKCE verifier by the
    /// provider's adapter), the person's role looked up, a fresh session.
    /// The sign-in cookie goes whatever happens: a callback works once.
    async fn finish_sign_in(&self, request: &Request, now: Timestamp) -> Response {
        let SignIn::OpenId {
            provider,
            access,
            console_url,
        } = &self.sign_in
        else {
            return self.not_found(None);
        };
        let clear = self.set_named_cookie(self.pending_cookie_name(), "", 0);
        let refuse = |status: u16, title: &str, why: &str| {
            Response::html(status, pages::message(self, None, title, why)).with_header("set-cookie", clear.clone())
        };
        let query = Fields::parse(request.query.as_bytes());
        if query.get("error").is_some() {
            return refuse(
                400,
                "Not signed in",
                "Your identity provider did not sign you in. Sign in again, or ask your Milepost admin.",
            );
        }
        let Some(pending) = Self::cookie(request, self.pending_cookie_name())
            .and_then(|value| self.sessions.open_pending(value, now).ok())
        else {
            return refuse(
                400,
                "Sign in again",
                "This sign-in has expired, was used already, or was started in another browser. Sign in again.",
            );
        };
        let state_matches = query
            .get("state")
            .is_some_and(|state| bool::from(state.as_bytes().ct_eq(pending.state.as_bytes())));
        let (true, Some(code)) = (state_matches, query.get("code")) else {
            return refuse(
                400,
                "Sign in again",
                "This sign-in's answer does not match the sign-in you started. Sign in again.",
            );
        };
        let redirect_uri = format!("{}/sign-in/callback", console_url.trim_end_matches('/'));
        let identity = match provider.finish(code, &pending, &redirect_uri).await {
            Ok(identity) => identity,
            Err(sign_in::IdentityError::Refused(e)) => {
                tracing::warn!(error = %crate::ErrorChain(e.as_ref()), "a sign-in was refused");
                return refuse(
                    403,
                    "Not signed in",
                    "Your identity provider's answer was not accepted. Sign in again.",
                );
            }
            Err(e) => {
                tracing::error!(error = %crate::ErrorChain(&e), "finishing a sign-in failed");
                return refuse(
                    503,
                    "Try again",
                    "Your identity provider could not be reached. Sign in again in a minute.",
                );
            }
        };
        if identity.email_verified == Some(false) {
            return refuse(
                403,
                "Not signed in",
                "Your identity provider has not verified your email address.",
            );
        }
        let Some(role) = access.role_of(&identity.email) else {
            tracing::info!("a sign-in by someone the access list does not name was refused");
            return refuse(
                403,
                "Not allowed",
                "Your account may not use this console. Ask your Milepost admin to add you.",
            );
        };
        let name = identity.name.clone().unwrap_or_else(|| identity.email.clone());
        let viewer = Viewer::signed_in(&identity.email, &name, role, now);
        tracing::info!(role = role.as_str(), "signed in");
        Response::redirect(&safe_return(Some(&pending.return_to)))
            .with_header("set-cookie", clear)
            .with_header(
                "set-cookie",
                self.set_cookie(&self.sessions.seal(&viewer), session::SESSION_HOURS * 3600),
            )
    }

    fn sign_in(&self, request: &Request, now: Timestamp) -> Response {
        let form = Fields::parse(&request.body);
        let SignIn::Development { people } = &self.sign_in else {
            // The identity provider signs people in; nothing is posted here.
            return Response::html(
                405,
                pages::message(self, None, "Not allowed", "Sign in through your identity provider."),
            );
        };
        let Some(person) = form
            .get("person")
            .and_then(|email| people.iter().find(|p| p.email.eq_ignore_ascii_case(email)))
        else {
            return Response::html(
                400,
                pages::message(
                    self,
                    None,
                    "Not signed in",
                    "Pick one of the people listed to sign in as.",
                ),
            );
        };
        let viewer = Viewer::signed_in(&person.email, &person.name, person.role, now);
        Response::redirect(&safe_return(form.get("return"))).with_header(
            "set-cookie",
            self.set_cookie(&self.sessions.seal(&viewer), session::SESSION_HOURS * 3600),
        )
    }

    /// Who acts: the signed-in person, as themself.
    fn actor(viewer: &Viewer) -> Actor {
        Actor::Person {
            name: viewer.name.clone(),
            email: viewer.email.clone(),
        }
    }

    /// The key a form's one submission is recorded under: posted twice, done once.
    fn form_key(form: &Fields) -> Option<String> {
        form.get("form_id")
            .filter(|id| id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .map(|id| format!("console:{id}"))
    }

    fn back(form: &Fields, notice: Notice) -> Response {
        Response::redirect(&with_notice(&safe_return(form.get("return")), notice))
    }

    fn refused(&self, viewer: &Viewer, status: u16, title: &str, why: &str) -> Response {
        Response::html(status, pages::message(self, Some(viewer), title, why))
    }

    async fn task_action(&self, viewer: &Viewer, id: &str, what: &str, form: &Fields, now: Timestamp) -> Response {
        let task = match self.store.get_task(id).await {
            Ok(Some(task)) => task,
            Ok(None) => return self.not_found(Some(viewer)),
            Err(e) => {
                tracing::error!(error = %crate::ErrorChain(&e), "reading a task for the console failed");
                return self.unavailable(Some(viewer));
            }
        };
        if viewer.role == Role::Csm && !viewer.is(&task.brief().owner_email) {
            return self.forbidden(
                viewer,
                "This task is someone else's: a CSM acts on their own tasks. Nothing was changed.",
            );
        }
        let note = match self.note_of(viewer, form) {
            Ok(note) => note,
            Err(refusal) => return refusal,
        };
        let (action, notice) = match what {
            "done" => {
                let outcome = form.get("outcome").and_then(Outcome::parse).unwrap_or(Outcome::Other);
                (TaskAction::Done { outcome, note }, Notice::TaskDone)
            }
            "snooze" => {
                let days: i64 = match form.get("days").and_then(|d| d.parse().ok()) {
                    Some(d @ 1..=30) => d,
                    _ => return self.refused(viewer, 422, "Not saved", "Snooze for 1 to 30 days."),
                };
                let until = now + Duration::days(days);
                (TaskAction::Snooze { until, note }, Notice::TaskSnoozed)
            }
            "dismiss" => {
                let Some(reason) = form.get("reason").and_then(DismissReason::parse) else {
                    return self.refused(viewer, 422, "Not saved", "Say why the task is dismissed.");
                };
                (TaskAction::Dismiss { reason, note }, Notice::TaskDismissed)
            }
            _ => return self.not_found(Some(viewer)),
        };
        // One form offers done, snooze and dismiss: its one submission per action.
        let Some(key) = Self::form_key(form).map(|k| format!("{k}-{what}")) else {
            return self.refused(
                viewer,
                400,
                "Not saved",
                "The form was incomplete. Reload the page and try again.",
            );
        };
        match change_task(
            self.store.as_ref(),
            self.events.as_ref(),
            id,
            &action,
            &Self::actor(viewer),
            now,
            Some(&key),
        )
        .await
        {
            Ok(_) => Self::back(form, notice),
            Err(TaskError::Refused(TaskRefusal::AlreadyApplied { .. })) => Self::back(form, Notice::AlreadyDone),
            Err(TaskError::Refused(refusal)) => self.refused(
                viewer,
                409,
                "Nothing changed",
                &format!("{refusal}; nothing was changed."),
            ),
            Err(TaskError::Unknown(_)) => self.not_found(Some(viewer)),
            Err(e) => {
                tracing::error!(error = %crate::ErrorChain(&e), "a console task action failed");
                self.unavailable(Some(viewer))
            }
        }
    }

    /// Whether `viewer` may act on `account`: a lead may on any; a CSM on
    /// those where they are the CSM or hold one of the account's roles.
    fn may_act(viewer: &Viewer, account: &milepost_domain::Account) -> bool {
        match viewer.role {
            Role::Lead => true,
            Role::Csm => {
                viewer.is(account.csm.email.as_str()) || account.contacts.values().any(|c| viewer.is(c.email.as_str()))
            }
            Role::Viewer => false,
        }
    }

    /// `may_act` for the account stored under `account` (none: no).
    async fn may_act_on(&self, viewer: &Viewer, account: &AccountId) -> Result<bool, crate::ports::StoreError> {
        if viewer.role == Role::Lead {
            return Ok(true);
        }
        Ok(self
            .store
            .get_account(account)
            .await?
            .is_some_and(|a| Self::may_act(viewer, &a)))
    }

    /// The form's note, cleaned (`clean_note`), or the page refusing one too long.
    fn note_of(&self, viewer: &Viewer, form: &Fields) -> Result<Option<String>, Response> {
        form.get("note")
            .map(clean_note)
            .transpose()
            .map(Option::flatten)
            .map_err(|e| self.refused(viewer, 422, "Not saved", &format!("That note is too long: {e}.")))
    }

    /// The page refusing `viewer` an action on `account`, unless they may act on it.
    async fn unless_may_act_on(&self, viewer: &Viewer, account: &AccountId) -> Option<Response> {
        match self.may_act_on(viewer, account).await {
            Ok(true) => None,
            Ok(false) => Some(self.forbidden(
                viewer,
                "This account is someone else's: a CSM acts on their own accounts. Nothing was changed.",
            )),
            Err(e) => {
                tracing::error!(error = %crate::ErrorChain(&e), "reading an account for the console failed");
                Some(self.unavailable(Some(viewer)))
            }
        }
    }

    async fn account_action(
        &self,
        viewer: &Viewer,
        account: &AccountId,
        what: &str,
        form: &Fields,
        now: Timestamp,
    ) -> Response {
        if let Some(refusal) = self.unless_may_act_on(viewer, account).await {
            return refusal;
        }
        let Some(key) = Self::form_key(form) else {
            return self.refused(
                viewer,
                400,
                "Not saved",
                "The form was incomplete. Reload the page and try again.",
            );
        };
        let by = Self::actor(viewer);
        match what {
            "pause" => {
                match self.store.customer_email_pause(account).await {
                    Ok(Some(p)) if p.link_key.as_deref() == Some(key.as_str()) => {
                        return Self::back(form, Notice::AlreadyDone)
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(error = %crate::ErrorChain(&e), "reading a pause for the console failed");
                        return self.unavailable(Some(viewer));
                    }
                }
                match crate::actions::pause_customer_email(
                    self.store.as_ref(),
                    self.events.as_ref(),
                    account,
                    &by,
                    now,
                    &key,
                )
                .await
                {
                    Ok(_) => Self::back(form, Notice::Paused),
                    Err(e) => {
                        tracing::error!(error = %crate::ErrorChain(&e), "pausing customer email from the console failed");
                        self.unavailable(Some(viewer))
                    }
                }
            }
            "notes" => {
                let note = match self.note_of(viewer, form) {
                    Ok(Some(note)) => note,
                    Ok(None) => return self.refused(viewer, 422, "Not saved", "Write the note first."),
                    Err(refusal) => return refusal,
                };
                let form_id = key.trim_start_matches("console:");
                let entry = EscalationLogEntry::account_note(account, form_id, now, &by, &note);
                match self.store.append_log(&entry).await {
                    Ok(true) => Self::back(form, Notice::Noted),
                    Ok(false) => Self::back(form, Notice::AlreadyDone),
                    Err(e) => {
                        tracing::error!(error = %crate::ErrorChain(&e), "saving a console note failed");
                        self.unavailable(Some(viewer))
                    }
                }
            }
            _ => self.not_found(Some(viewer)),
        }
    }

    async fn confirm(
        &self,
        viewer: &Viewer,
        account: &AccountId,
        milestone: &str,
        form: &Fields,
        now: Timestamp,
    ) -> Response {
        if let Some(refusal) = self.unless_may_act_on(viewer, account).await {
            return refusal;
        }
        let note = match self.note_of(viewer, form) {
            Ok(note) => note,
            Err(refusal) => return refusal,
        };
        match self
            .ingestion
            .confirm_manual(account, milestone, &Self::actor(viewer), note.as_deref(), now)
            .await
        {
            Ok(Confirmed::Now { .. }) => {
                // The portfolio shows the recovery at once, not at the next run.
                if let Err(e) = crate::portfolio_keeper::refresh_account(&*self.store, account, now).await {
                    tracing::warn!(error = %crate::ErrorChain(&e), "the portfolio's row waits for the next scheduled run");
                }
                Self::back(form, Notice::Confirmed)
            }
            Ok(Confirmed::Already { .. }) => Self::back(form, Notice::AlreadyDone),
            Err(IngestError::NotManual(why) | IngestError::Unknown { message: why, .. }) => {
                self.refused(viewer, 409, "Not confirmed", &format!("{why}. Nothing was changed."))
            }
            Err(e) => {
                tracing::error!(error = %crate::ErrorChain(&e), "confirming from the console failed");
                self.unavailable(Some(viewer))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_relative_path_of_ours_is_returned_to() {
        assert_eq!(safe_return(Some("/accounts/acme?x=1")), "/accounts/acme?x=1");
        for away in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "javascript:alert(1)",
            "/a b",
            "",
        ] {
            assert_eq!(safe_return(Some(away)), "/", "{away:?}");
        }
        assert_eq!(safe_return(None), "/");
    }

    #[test]
    fn a_notice_replaces_the_one_before() {
        assert_eq!(with_notice("/tasks", Notice::TaskDone), "/tasks?notice=task-done");
        assert_eq!(
            with_notice("/tasks?whose=team&notice=paused", Notice::TaskDone),
            "/tasks?whose=team&notice=task-done"
        );
        for notice in Notice::ALL {
            assert_eq!(Notice::parse(notice.as_str()), Some(notice));
        }
    }
}
