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
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
        let python = std::env::var("MILEPOST_PYTHON").unwrap_or_else(|_| format!("{root}/.venv/bin/python"));
        let record = tempfile::NamedTempFile::new().unwrap();
        let mut child = Command::new(&python)
            .arg(format!("{root}/tests/webhook_receiver.py"))
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
