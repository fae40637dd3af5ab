//! Slack's interactivity requests through the real route: signed by Slack's
//! own SDK (`slack_sdk.signature.SignatureVerifier`, run from .venv by
//! `tests/slack_sdk_check.py`), so "Slack's signature" means what Slack's
//! code makes. A press acts once through the task use case, as its owner;
//! a second press, a replay, a forged or stale request change nothing; how
//! we know: the task as stored and the `TaskClosed` events published.

use std::io::Write;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use lambda_http::http::{HeaderValue, Method};
use lambda_http::{Body, Request};
use milepost_app::ports::{SlackApi, TaskStore};
use milepost_app::slack::blocks::{SlackMessage, DONE, SNOOZE_3};
use milepost_app::slack::interactions::SlackInteractions;
use milepost_app::slack::signature::SlackSigningSecret;
use milepost_domain::slack::SlackOutcome;
use milepost_domain::{TaskStatus, Timestamp};
use milepost_embedded::fixtures::task;
use milepost_embedded::{InMemoryStore, RecordingPublisher, VirtualClock};

const SECRET: &str = "e1b2c3d4e5f60718293a4b5c6d7e8f90";

fn now() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 6, 3, 10, 0, 0).unwrap()
}

/// Slack's users: Maya (the tasks' owner) and Sam.
#[derive(Default)]
struct Users {
    told: Mutex<Vec<String>>,
}

#[async_trait]
impl SlackApi for Users {
    async fn user_by_email(&self, _email: &str) -> Result<Option<String>, SlackOutcome> {
        Ok(None)
    }
    async fn user_email(&self, user: &str) -> Result<Option<String>, SlackOutcome> {
        Ok(match user {
            "U_MAYA" => Some("Maya@Vendor.example".into()),
            "U_SAM" => Some("sam@vendor.example".into()),
            _ => None,
        })
    }
    async fn post(&self, _target: &str, _message: &SlackMessage) -> SlackOutcome {
        unreachable!("a press posts nothing")
    }
    async fn update(&self, _channel: &str, _ts: &str, _message: &SlackMessage) -> SlackOutcome {
        unreachable!("the message is updated by the integrations function")
    }
    async fn find(&self, _: &str, _: Timestamp, _: &str) -> Result<Option<(String, String)>, SlackOutcome> {
        Ok(None)
    }
    async fn respond(&self, response_url: &str, text: &str) -> Result<(), SlackOutcome> {
        assert_eq!(response_url, "https://hooks.slack.com/actions/T1/1/abc");
        self.told.lock().unwrap().push(text.to_string());
        Ok(())
    }
}

/// Slack's SDK's signature of `body` at `timestamp`.
fn sdk_signature(timestamp: &str, body: &str) -> String {
    let python = milepost_local::venv_python();
    let mut child = std::process::Command::new(&python)
        .args([
            &milepost_local::harness_script("slack_sdk_check.py"),
            "sign",
            SECRET,
            timestamp,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{python} (make test installs slack-sdk there): {e}"));
    child.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A press of `action` on task `t-1` by `user`, as Slack posts it.
fn press_body(user: &str, action: &str, action_ts: &str) -> String {
    let payload = serde_json::json!({
        "type": "block_actions",
        "user": {"id": user, "username": "maya", "name": "maya", "team_id": "T1"},
        "team": {"id": "T1", "domain": "vendor"},
        "container": {"type": "message", "message_ts": "1780304400.000100", "channel_id": "D_MAYA"},
        "channel": {"id": "D_MAYA", "name": "directmessage"},
        "response_url": "https://hooks.slack.com/actions/T1/1/abc",
        "trigger_id": "1.2.3",
        "actions": [{"type": "button", "action_id": action, "block_id": "milepost_task_actions",
                     "value": "t-1", "action_ts": action_ts, "text": {"type": "plain_text", "text": "Done"}}],
    });
    form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish()
}

fn request(body: &str, timestamp: &str, signature: &str) -> Request {
    let mut req = Request::new(Body::from(body.to_string()));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = "https://api.example/v1/slack/interactions".parse().unwrap();
    let headers = req.headers_mut();
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    headers.insert("x-slack-request-timestamp", timestamp.parse().unwrap());
    headers.insert("x-slack-signature", signature.parse().unwrap());
    req
}

struct World {
    store: Arc<InMemoryStore>,
    events: RecordingPublisher,
    users: Users,
    clock: VirtualClock,
    secret: SlackSigningSecret,
}

impl World {
    async fn new() -> Self {
        let store = Arc::new(InMemoryStore::new());
        store
            .create_task(&task("t-1", "maya@vendor.example", now()))
            .await
            .unwrap();
        World {
            store,
            events: RecordingPublisher::default(),
            users: Users::default(),
            clock: VirtualClock::new(now()),
            secret: SlackSigningSecret::new(SECRET).unwrap(),
        }
    }

    /// Sends `body` signed by Slack's SDK at `timestamp`; the answer's status.
    async fn send(&self, body: &str, timestamp: &str, signature: Option<&str>) -> u16 {
        let signature = signature.map_or_else(|| sdk_signature(timestamp, body), str::to_string);
        let interactions = SlackInteractions {
            store: &*self.store,
            events: &self.events,
            api: &self.users,
            clock: &self.clock,
            secret: &self.secret,
        };
        let answer = milepost_actions::slack::handle(
            Some((&interactions, &self.users as &dyn SlackApi)),
            request(body, timestamp, &signature),
        )
        .await;
        answer.status().as_u16()
    }

    async fn status(&self) -> TaskStatus {
        self.store.get_task("t-1").await.unwrap().unwrap().status()
    }

    fn told(&self) -> Vec<String> {
        self.users.told.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn the_owners_press_closes_the_task_once_and_a_second_press_or_a_replay_changes_nothing() {
    let w = World::new().await;
    let ts = now().timestamp().to_string();
    let press = press_body("U_MAYA", DONE, "1780304460.000001");
    assert_eq!(w.send(&press, &ts, None).await, 200);
    assert_eq!(w.status().await, TaskStatus::Done);
    assert_eq!(w.events.count("TaskClosed"), 1);
    assert!(
        w.told()[0].starts_with("Done: the task is done on 3 Jun 2026"),
        "{:?}",
        w.told()
    );

    // The same request again (a replay), and a second press.
    assert_eq!(w.send(&press, &ts, None).await, 200);
    let again = press_body("U_MAYA", SNOOZE_3, "1780304470.000002");
    assert_eq!(w.send(&again, &ts, None).await, 200);
    assert_eq!(w.status().await, TaskStatus::Done);
    assert_eq!(w.events.count("TaskClosed"), 1, "closed once");
    assert_eq!(w.events.count("TaskSnoozed"), 0);
    assert!(
        w.told()[1..]
            .iter()
            .all(|t| t.starts_with("Nothing was changed: this task is done")),
        "{:?}",
        w.told()
    );
}

#[tokio::test]
async fn a_forged_or_stale_request_gets_401_and_changes_nothing() {
    let w = World::new().await;
    let ts = now().timestamp().to_string();
    let press = press_body("U_MAYA", DONE, "1780304460.000001");
    let forged = sdk_signature(&ts, &press.replace("U_MAYA", "U_SAM"));
    assert_eq!(w.send(&press, &ts, Some(&forged)).await, 401);
    assert_eq!(w.send(&press, &ts, Some("v0=00")).await, 401);
    let stale = (now().timestamp() - 301).to_string();
    assert_eq!(
        w.send(&press, &stale, None).await,
        401,
        "signed by the SDK, but five minutes old"
    );
    assert_eq!(w.status().await, TaskStatus::Open);
    assert!(w.events.events().is_empty() && w.told().is_empty());
}

#[tokio::test]
async fn someone_else_pressing_is_told_whose_task_it_is_and_a_snooze_is_three_days() {
    let w = World::new().await;
    let ts = now().timestamp().to_string();
    assert_eq!(w.send(&press_body("U_SAM", DONE, "1.1"), &ts, None).await, 200);
    assert_eq!(w.status().await, TaskStatus::Open);
    assert_eq!(w.told(), ["This task is Maya's to act on. Nothing was changed."]);
    assert_eq!(w.send(&press_body("U_MAYA", SNOOZE_3, "1.2"), &ts, None).await, 200);
    let t = w.store.get_task("t-1").await.unwrap().unwrap();
    assert_eq!(t.snoozed_until(), Some(now() + chrono::Duration::days(3)));
}

#[tokio::test]
async fn without_slack_set_up_the_route_is_not_there() {
    let body = press_body("U_MAYA", DONE, "1.1");
    let answer = milepost_actions::slack::handle(None, request(&body, "1", "v0=00")).await;
    assert_eq!(answer.status().as_u16(), 404);
}
