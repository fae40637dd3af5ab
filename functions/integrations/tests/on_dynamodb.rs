//! The integrations function's handler on DynamoDB (moto), posting over
//! real HTTP to a consumer written with the Standard Webhooks library
//! (`tests/webhook_receiver.py`, Python's `standardwebhooks`): every request
//! it received passes the library's `verify`; an endpoint that fails, drops
//! the connection after reading (a lost answer) and then answers gets the
//! event again under the same `webhook-id` until it does; the same bus event
//! twice makes one delivery; and the function asks of AWS only what the
//! template grants it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use chrono::{Duration, Utc};
use milepost_app::ports::{Clock, WebhookStore};
use milepost_app::webhooks::Webhooks;
use milepost_aws::webhook_poster::HttpWebhookPoster;
use milepost_aws::DynamoStore;
use milepost_domain::webhooks::{DeliveryState, WebhookEndpoint, RETRY_OFFSETS};
use milepost_domain::{AccountId, DomainEvent};
use milepost_embedded::VirtualClock;
use milepost_integrations::handle;
use milepost_local::MotoServer;

/// The consumer, on a free loopback port; stopped when dropped.
struct Receiver {
    child: Child,
    port: u16,
    record: tempfile::NamedTempFile,
}

impl Receiver {
    fn start(secrets: &std::path::Path, answers: &str) -> Self {
        let python = milepost_local::venv_python();
        let record = tempfile::NamedTempFile::new().unwrap();
        let mut child = Command::new(&python)
            .arg(milepost_local::harness_script("webhook_receiver.py"))
            .arg("--record")
            .arg(record.path())
            .arg("--secrets")
            .arg(secrets)
            .arg("--answers")
            .arg(answers)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting the receiver with {python} (make test installs it): {e}"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the receiver printed {line:?}"));
        Receiver { child, port, record }
    }

    fn received(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.record.path())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `event` as EventBridge hands it to the function from Milepost's bus.
fn from_bus(event: &DomainEvent) -> serde_json::Value {
    serde_json::json!({
        "version": "0", "id": "8c1c-not-ours", "detail-type": event.detail_type(), "source": "milepost",
        "account": "123456789012", "time": "2026-06-01T09:00:00Z", "region": "us-east-1",
        "resources": [], "detail": event.detail(),
    })
}

#[tokio::test]
async fn each_event_reaches_the_consumer_signed_once_retried_under_one_id_until_it_answers() {
    let moto = MotoServer::start();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&moto.sdk_config().await), "integrations");
    store.create_table().await.unwrap();
    let secrets = tempfile::NamedTempFile::new().unwrap();
    // First attempt 503, the first retry read and dropped (its answer lost), then 200s.
    let receiver = Receiver::start(secrets.path(), "503,drop");
    let clock = VirtualClock::new(Utc::now());
    let poster = HttpWebhookPoster::new().unwrap();
    let webhooks = Webhooks {
        store: &store,
        poster: &poster,
        clock: &clock,
    };
    let tasks = webhooks
        .add(
            &format!("http://127.0.0.1:{}/milepost", receiver.port),
            &["TaskOpened".into(), "TaskClosed".into()],
        )
        .await
        .unwrap();
    let elsewhere = WebhookEndpoint::new(
        "ep_misses".into(),
        "https://hooks.invalid/misses".into(),
        vec!["MilestoneMissed".into()],
        "whsec_AAAA".into(),
        clock.now(),
    );
    store.create_webhook_endpoint(&elsewhere).await.unwrap();
    std::fs::write(secrets.path(), format!("{}\n", tasks.secrets[0].secret)).unwrap();

    let opened = DomainEvent::TaskOpened {
        account_id: AccountId::new("acme"),
        milestone_id: "first_dashboard".into(),
        task_id: "exec-1:csm-task".into(),
        owner_role: "csm".into(),
        opened_at: clock.now(),
    };
    moto.record_requests(true).await;
    let far = clock.now() + Duration::minutes(1);
    for _ in 0..2 {
        // EventBridge delivers at least once.
        handle(&webhooks, None, &from_bus(&opened), far).await.unwrap();
    }
    let retries = serde_json::json!({"part": "retries"});
    clock.advance(RETRY_OFFSETS[0]);
    let report = handle(&webhooks, None, &retries, clock.now() + Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(report["webhooks"]["retrying"], 1, "{report}");
    clock.set(clock.now() - RETRY_OFFSETS[0] + RETRY_OFFSETS[1]);
    let report = handle(&webhooks, None, &retries, clock.now() + Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(report["webhooks"]["delivered"], 1, "{report}");
    let report = handle(&webhooks, None, &retries, clock.now() + Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(report["webhooks"]["delivered"], 0, "nothing left: {report}");
    let ignored = handle(
        &webhooks,
        None,
        &serde_json::json!({"source": "aws.ses", "detail-type": "x"}),
        far,
    )
    .await
    .unwrap();
    assert_eq!(ignored["webhooks"]["accepted"], 0);
    moto.record_requests(false).await;

    let received = receiver.received();
    let answers: Vec<&str> = received.iter().map(|r| r["answer"].as_str().unwrap()).collect();
    assert_eq!(answers, ["503", "drop", "200"]);
    for r in &received {
        assert_eq!(r["verified"], true, "the library refused {r}");
        assert_eq!(r["id"], opened.event_id(), "one webhook-id for every attempt");
        assert_eq!(r["body"]["type"], "TaskOpened");
        assert_eq!(r["body"]["data"]["task_id"], "exec-1:csm-task");
        assert_eq!(r["body"]["data"]["event_id"], opened.event_id());
    }
    let delivery = store
        .get_delivery(&tasks.id, &opened.event_id())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(delivery.state, DeliveryState::Delivered { .. }),
        "{:?}",
        delivery.state
    );
    assert_eq!(delivery.attempts.len(), 3);
    assert!(
        store
            .get_delivery("ep_misses", &opened.event_id())
            .await
            .unwrap()
            .is_none(),
        "an endpoint that did not ask for the type gets nothing"
    );
    let endpoint = store
        .webhook_endpoints()
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.id == tasks.id)
        .unwrap();
    assert!(endpoint.failing_since.is_none() && endpoint.is_enabled());
    milepost_local::iam::assert_granted("IntegrationsFunction", &moto.recorded_actions());
}

/// Slack's Web API stand-in (`tests/slack_standin.py`) on a free loopback
/// port; it records every call. Stopped when dropped.
struct SlackStandIn {
    child: Child,
    port: u16,
    record: tempfile::NamedTempFile,
}

impl SlackStandIn {
    fn start(users: &str, faults: &str) -> Self {
        let python = milepost_local::venv_python();
        let record = tempfile::NamedTempFile::new().unwrap();
        let mut child = Command::new(&python)
            .arg(milepost_local::harness_script("slack_standin.py"))
            .args([
                "--record",
                record.path().to_str().unwrap(),
                "--users",
                users,
                "--faults",
                faults,
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        SlackStandIn {
            port: line.trim().parse().unwrap(),
            child,
            record,
        }
    }

    fn calls(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.record.path())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// What `tests/slack_calls_check.py` (Slack's published spec, slack-sdk's block models) says.
    fn judged_by_slacks_spec(&self) -> String {
        let python = milepost_local::venv_python();
        let out = Command::new(&python)
            .arg(milepost_local::harness_script("slack_calls_check.py"))
            .arg(self.record.path())
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "Slack's spec refuses what was sent:\n{said}");
        said
    }
}

impl Drop for SlackStandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_task_reaches_slack_once_per_audience_through_a_429_and_a_lost_answer_and_is_updated_in_place() {
    use milepost_app::ports::TaskStore;
    use milepost_app::slack::posts::{SlackPosts, SlackSettings};
    use milepost_aws::slack_api::SlackWebApi;
    use milepost_domain::{Actor, Outcome, TaskAction};

    let moto = MotoServer::start();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&moto.sdk_config().await), "slack");
    store.create_table().await.unwrap();
    // The owner's first post is rate limited; the team's is taken and its answer lost.
    let slack = SlackStandIn::start("maya@vendor.example=U_MAYA", "429,drop");
    let clock = VirtualClock::new(Utc::now());
    let task = milepost_embedded::fixtures::task("acme-first-1:csm-task", "maya@vendor.example", clock.now());
    store.create_task(&task).await.unwrap();
    let api = SlackWebApi::new(&format!("http://127.0.0.1:{}", slack.port), "xoxb-test-token").unwrap();
    let settings = SlackSettings {
        team_channel: Some("C_CS_TEAM".into()),
        fallback_channel: None,
        console_url: Some("https://console.example".into()),
    };
    let posts = SlackPosts {
        store: &store,
        api: &api,
        clock: &clock,
        settings: &settings,
    };
    let poster = HttpWebhookPoster::new().unwrap();
    let webhooks = Webhooks {
        store: &store,
        poster: &poster,
        clock: &clock,
    };
    let opened = DomainEvent::TaskOpened {
        account_id: AccountId::new("acme"),
        milestone_id: "first".into(),
        task_id: task.id().into(),
        owner_role: "csm".into(),
        opened_at: clock.now(),
    };
    let retries = serde_json::json!({"part": "retries"});
    let far = clock.now() + Duration::minutes(5);
    moto.record_requests(true).await;
    for _ in 0..2 {
        handle(&webhooks, Some(&posts), &from_bus(&opened), far).await.unwrap();
    }
    for _ in 0..3 {
        clock.advance(Duration::seconds(6));
        handle(&webhooks, Some(&posts), &retries, clock.now() + Duration::minutes(5))
            .await
            .unwrap();
    }
    // Maya closes the task elsewhere (not the function's own writes).
    moto.record_requests(false).await;
    let mut done = store.get_task(task.id()).await.unwrap().unwrap();
    let maya = Actor::Person {
        name: "Maya".into(),
        email: "maya@vendor.example".into(),
    };
    let action = TaskAction::Done {
        outcome: Outcome::PlanAgreed,
        note: None,
    };
    done.apply(&action, &maya, clock.now(), None).unwrap();
    store.update_task(&done).await.unwrap();
    let closed = DomainEvent::TaskClosed {
        account_id: AccountId::new("acme"),
        milestone_id: "first".into(),
        task_id: task.id().into(),
        status: "done".into(),
        reason: "completed".into(),
        outcome: Some("plan_agreed".into()),
        closed_at: clock.now(),
    };
    moto.record_requests(true).await;
    let report = handle(&webhooks, Some(&posts), &from_bus(&closed), far).await.unwrap();
    moto.record_requests(false).await;
    assert_eq!(report["slack"]["updated"], 2, "{report}");

    let calls = slack.calls();
    let taken: Vec<&serde_json::Value> = calls
        .iter()
        .filter(|c| c["method"] == "chat.postMessage" && c["fault"] != "429" && c["fault"] != "500")
        .collect();
    let mut channels: Vec<&str> = taken.iter().map(|c| c["params"]["channel"].as_str().unwrap()).collect();
    channels.sort();
    assert_eq!(
        channels,
        ["C_CS_TEAM", "U_MAYA"],
        "one message each: the lost answer was found, not reposted"
    );
    assert!(
        calls.iter().any(|c| c["method"] == "conversations.history"),
        "looked for the lost one"
    );
    let updates: Vec<_> = calls.iter().filter(|c| c["method"] == "chat.update").collect();
    assert!(updates.len() >= 2);
    let last = updates.last().unwrap()["params"]["blocks"].to_string();
    assert!(last.contains("This task is done"), "{last}");
    assert!(slack.judged_by_slacks_spec().starts_with("ok: "));
    milepost_local::iam::assert_granted("IntegrationsFunction", &moto.recorded_actions());
}
