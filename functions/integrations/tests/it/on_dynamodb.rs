//! The integrations function's handler on DynamoDB (moto), posting over
//! real HTTP to a consumer written with the Standard Webhooks library
//! (`tests/webhook_receiver.py`, Python's `standardwebhooks`): every request
//! it received passes the library's `verify`; an endpoint that fails, drops
//! the connection after reading (a lost answer) and then answers gets the
//! event again under the same `webhook-id` until it does; the same bus event
//! twice makes one delivery; and the function asks of AWS only what the
//! template grants it.

use chrono::{Duration, Utc};
use milepost_app::ports::{Clock, WebhookStore};
use milepost_app::webhooks::Webhooks;
use milepost_aws::webhook_poster::HttpWebhookPoster;
use milepost_aws::DynamoStore;
use milepost_domain::webhooks::{DeliveryState, WebhookEndpoint, RETRY_OFFSETS};
use milepost_domain::{AccountId, DomainEvent};
use milepost_embedded::VirtualClock;
use milepost_integrations::{handle, Integrations};
use milepost_local::{MotoServer, StandIn};

/// The consumer (`tests/webhook_receiver.py`, through
/// `milepost_local::StandIn`), on a free loopback port; stopped when dropped.
struct Receiver(StandIn);

impl Receiver {
    fn start(secrets: &std::path::Path, answers: &str) -> Self {
        let secrets = secrets.to_str().expect("a UTF-8 path");
        Receiver(StandIn::start(
            "webhook_receiver.py",
            &["--secrets", secrets, "--answers", answers],
        ))
    }

    fn received(&self) -> Vec<serde_json::Value> {
        self.0.calls()
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
    let to = Integrations {
        webhooks: &webhooks,
        slack: None,
        crm: None,
    };
    let tasks = webhooks
        .add(
            &format!("{}/milepost", receiver.0.url()),
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
        handle(&to, &from_bus(&opened), far).await.unwrap();
    }
    let retries = serde_json::json!({"part": "retries"});
    clock.advance(RETRY_OFFSETS[0]);
    let report = handle(&to, &retries, clock.now() + Duration::minutes(1)).await.unwrap();
    assert_eq!(report["webhooks"]["retrying"], 1, "{report}");
    clock.set(clock.now() - RETRY_OFFSETS[0] + RETRY_OFFSETS[1]);
    let report = handle(&to, &retries, clock.now() + Duration::minutes(1)).await.unwrap();
    assert_eq!(report["webhooks"]["delivered"], 1, "{report}");
    let report = handle(&to, &retries, clock.now() + Duration::minutes(1)).await.unwrap();
    assert_eq!(report["webhooks"]["delivered"], 0, "nothing left: {report}");
    let ignored = handle(&to, &serde_json::json!({"source": "aws.ses", "detail-type": "x"}), far)
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

/// Slack's Web API stand-in (`tests/slack_standin.py`, through
/// `milepost_local::StandIn`); it records every call. Stopped when dropped.
struct SlackStandIn(StandIn);

impl SlackStandIn {
    fn start(users: &str, faults: &str) -> Self {
        Self::start_with(users, &["--faults", faults])
    }

    /// Faults at `rate` on every post and update, drawn from `seed`.
    fn start_chaos(users: &str, seed: u64, rate: f64) -> Self {
        Self::start_with(users, &["--seed", &seed.to_string(), "--fault-rate", &rate.to_string()])
    }

    fn start_with(users: &str, extra: &[&str]) -> Self {
        let args: Vec<&str> = ["--users", users].into_iter().chain(extra.iter().copied()).collect();
        SlackStandIn(StandIn::start("slack_standin.py", &args))
    }

    fn url(&self) -> String {
        self.0.url()
    }

    fn calls(&self) -> Vec<serde_json::Value> {
        self.0.calls()
    }

    /// What `tests/slack_calls_check.py` (Slack's published spec, slack-sdk's block models) says.
    fn judged_by_slacks_spec(&self) -> String {
        self.0.judged_by("slack_calls_check.py")
    }

    /// The stand-in's clock, for the timestamps it gives messages (the run's virtual clock).
    fn set_clock(&self, now: chrono::DateTime<Utc>) {
        self.0.post("/_clock", &serde_json::json!({"now": now.timestamp()}));
    }

    /// Every channel's messages, as the stand-in keeps them.
    fn messages(&self) -> serde_json::Value {
        self.0.get("/_messages")["channels"].clone()
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
    let api = SlackWebApi::new(&slack.url(), "xoxb-test-token").unwrap();
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
    let to = Integrations {
        webhooks: &webhooks,
        slack: Some(&posts),
        crm: None,
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
        handle(&to, &from_bus(&opened), far).await.unwrap();
    }
    for _ in 0..3 {
        clock.advance(Duration::seconds(6));
        handle(&to, &retries, clock.now() + Duration::minutes(5)).await.unwrap();
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
    let report = handle(&to, &from_bus(&closed), far).await.unwrap();
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

/// A chaos round: 40 tasks (half owned by a Slack user, half falling back
/// to a channel), a third of Slack's post and update calls failing (429,
/// 500, or taken with the answer lost), task events delivered twice and out
/// of order, retries run by two overlapping invocations at a time. At the
/// end: exactly one message per task and audience, every closed task's
/// messages say so, every open one's still has its buttons, and every call
/// passes Slack's spec. How we know nothing is posted twice: the stand-in's
/// channels, counted by the block that names each task.
#[tokio::test]
async fn a_chaos_round_leaves_exactly_one_message_per_task_and_audience_and_every_close_shown() {
    use milepost_app::ports::{SlackPostStore, TaskStore};
    use milepost_app::slack::posts::{SlackPosts, SlackSettings};
    use milepost_aws::slack_api::SlackWebApi;
    use milepost_domain::{Actor, Outcome, TaskAction};

    // make test's short round; make chaos runs more (MILEPOST_SLACK_CHAOS_TASKS, seed MILEPOST_CHAOS_SEED).
    let env_number =
        |name: &str, default: u64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let tasks = env_number("MILEPOST_SLACK_CHAOS_TASKS", 40) as usize;
    let seed = env_number("MILEPOST_CHAOS_SEED", 17);
    let moto = MotoServer::start();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&moto.sdk_config().await), "slack-chaos");
    store.create_table().await.unwrap();
    let slack = SlackStandIn::start_chaos("maya@vendor.example=U_MAYA", seed, 0.33);
    let clock = VirtualClock::new(Utc::now());
    slack.set_clock(clock.now());
    let api = SlackWebApi::new(&slack.url(), "xoxb-test-token").unwrap();
    let settings = SlackSettings {
        team_channel: Some("C_CS_TEAM".into()),
        fallback_channel: Some("C_FALLBACK".into()),
        console_url: None,
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
    let to = Integrations {
        webhooks: &webhooks,
        slack: Some(&posts),
        crm: None,
    };
    let ids: Vec<String> = (0..tasks)
        .map(|i| format!("acme-m{i:03}-0123456789ab:csm-task"))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let owner = if i % 2 == 0 {
            "maya@vendor.example"
        } else {
            "sam@vendor.example"
        };
        store
            .create_task(&milepost_embedded::fixtures::task(id, owner, clock.now()))
            .await
            .unwrap();
    }
    // Every third task is closed: some before their TaskOpened reaches Slack.
    let mut events = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let opened = DomainEvent::TaskOpened {
            account_id: AccountId::new("acme"),
            milestone_id: format!("m{i:03}"),
            task_id: id.clone(),
            owner_role: "csm".into(),
            opened_at: clock.now(),
        };
        events.push(from_bus(&opened));
        if i % 4 == 0 {
            events.push(from_bus(&opened));
        }
        if i % 3 == 0 {
            let closed = DomainEvent::TaskClosed {
                account_id: AccountId::new("acme"),
                milestone_id: format!("m{i:03}"),
                task_id: id.clone(),
                status: "done".into(),
                reason: "completed".into(),
                outcome: Some("plan_agreed".into()),
                closed_at: clock.now(),
            };
            if i % 9 == 0 {
                events.insert(events.len() - 1, from_bus(&closed));
            } else {
                events.push(from_bus(&closed));
            }
        }
    }
    let maya = Actor::Person {
        name: "Maya".into(),
        email: "maya@vendor.example".into(),
    };
    for (i, id) in ids.iter().enumerate().filter(|(i, _)| i % 3 == 0) {
        let mut t = store.get_task(id).await.unwrap().unwrap();
        let done = TaskAction::Done {
            outcome: Outcome::PlanAgreed,
            note: None,
        };
        t.apply(&done, &maya, clock.now() + Duration::seconds(i as i64), None)
            .unwrap();
        store.update_task(&t).await.unwrap();
    }
    let retries = serde_json::json!({"part": "retries"});
    let far = |c: &VirtualClock| c.now() + Duration::minutes(5);
    for chunk in events.chunks(7) {
        for event in chunk {
            handle(&to, event, far(&clock)).await.unwrap();
        }
        clock.advance(Duration::seconds(6));
        slack.set_clock(clock.now());
        let (a, b) = tokio::join!(handle(&to, &retries, far(&clock)), handle(&to, &retries, far(&clock)));
        a.unwrap();
        b.unwrap();
    }
    // Then the schedule's retries until nothing is owed within a day.
    let mut rounds = 0;
    while !store
        .due_slack_posts(clock.now() + Duration::days(1), 1)
        .await
        .unwrap()
        .is_empty()
    {
        rounds += 1;
        assert!(rounds < 200, "still owing after 200 rounds");
        let next = store.due_slack_posts(clock.now() + Duration::days(1), 1).await.unwrap()[0]
            .next_at()
            .unwrap();
        clock.set(next.max(clock.now() + Duration::seconds(6)));
        slack.set_clock(clock.now());
        let (a, b) = tokio::join!(handle(&to, &retries, far(&clock)), handle(&to, &retries, far(&clock)));
        a.unwrap();
        b.unwrap();
    }

    let channels = slack.messages();
    let calls = slack.calls();
    let faults = |kind: &str| calls.iter().filter(|c| c["fault"] == kind).count();
    for (i, id) in ids.iter().enumerate() {
        let block = format!("milepost_task:{id}");
        let owner_channel = if i % 2 == 0 { "D_MAYA" } else { "C_FALLBACK" };
        for channel in [owner_channel, "C_CS_TEAM"] {
            let mine: Vec<&serde_json::Value> = channels[channel]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["blocks"][0]["block_id"] == block.as_str())
                .collect();
            assert_eq!(mine.len(), 1, "task {i} in {channel}: {} messages", mine.len());
            let shown = mine[0]["blocks"].to_string();
            if i % 3 == 0 {
                assert!(
                    shown.contains("This task is done"),
                    "task {i}'s close not shown in {channel}: {shown}"
                );
            } else {
                assert!(
                    shown.contains("milepost_task_done"),
                    "task {i} lost its buttons in {channel}"
                );
            }
        }
    }
    let judged = slack.judged_by_slacks_spec();
    eprintln!(
        "slack chaos (seed {seed}): {tasks} tasks, {} calls ({} chat.postMessage, {} chat.update, {} conversations.history), faults: {} 429, {} 500, {} lost answers; {rounds} retry rounds after the events; {}",
        calls.len(),
        calls.iter().filter(|c| c["method"] == "chat.postMessage").count(),
        calls.iter().filter(|c| c["method"] == "chat.update").count(),
        calls.iter().filter(|c| c["method"] == "conversations.history").count(),
        faults("429"),
        faults("500"),
        faults("drop"),
        judged.trim()
    );
    assert!(
        faults("429") > 0 && faults("500") > 0 && faults("drop") > 0,
        "every kind of fault was met"
    );
}

/// What an update in place would tell nobody is posted once as a notice of
/// its own, to the owner and the team: the escalation reaching leadership,
/// the task going past its SLA, the playbook ending with the customer still
/// behind; each event twice, and a lapse of a task already closed says nothing.
#[tokio::test]
async fn leadership_the_sla_and_a_lapse_are_each_told_once_to_the_owner_and_the_team() {
    use milepost_app::ports::TaskStore;
    use milepost_app::slack::posts::{SlackPosts, SlackSettings};
    use milepost_aws::slack_api::SlackWebApi;
    use milepost_domain::{Actor, CsmTask, Outcome, Stage, TaskAction, TaskSla};

    let moto = MotoServer::start();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&moto.sdk_config().await), "slack-notices");
    store.create_table().await.unwrap();
    let slack = SlackStandIn::start("maya@vendor.example=U_MAYA", "");
    let clock = VirtualClock::new(Utc::now());
    slack.set_clock(clock.now());
    let with_sla = |id: &str| {
        let t = milepost_embedded::fixtures::task(id, "maya@vendor.example", clock.now());
        let mut brief = t.brief().clone();
        brief.sla = Some(TaskSla::DueBy(clock.now() + Duration::days(1)));
        CsmTask::open(id.into(), brief)
    };
    let (behind, closed) = (with_sla("acme-first-1:csm-task"), with_sla("acme-second-1:csm-task"));
    store.create_task(&behind).await.unwrap();
    store.create_task(&closed).await.unwrap();
    let api = SlackWebApi::new(&slack.url(), "xoxb-test-token").unwrap();
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
    let to = Integrations {
        webhooks: &webhooks,
        slack: Some(&posts),
        crm: None,
    };
    let far = |c: &VirtualClock| c.now() + Duration::minutes(5);
    let execution = |task: &CsmTask| task.id().trim_end_matches(":csm-task").to_string();
    moto.record_requests(true).await;
    for task in [&behind, &closed] {
        let opened = DomainEvent::TaskOpened {
            account_id: AccountId::new("acme"),
            milestone_id: "first".into(),
            task_id: task.id().into(),
            owner_role: "csm".into(),
            opened_at: clock.now(),
        };
        handle(&to, &from_bus(&opened), far(&clock)).await.unwrap();
    }
    assert_eq!(CsmTask::id_for(&execution(&behind)), behind.id());
    // Day 5: leadership is told (the bus delivers it twice).
    let leadership = DomainEvent::EscalationStageCompleted {
        account_id: AccountId::new("acme"),
        milestone_id: "first".into(),
        execution: execution(&behind),
        stage: Stage::Leadership,
        completed_at: clock.now(),
    };
    for _ in 0..2 {
        handle(&to, &from_bus(&leadership), far(&clock)).await.unwrap();
    }
    // The second task is closed; then a day passes with nobody acting on the first.
    moto.record_requests(false).await;
    let mut done = store.get_task(closed.id()).await.unwrap().unwrap();
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
    moto.record_requests(true).await;
    clock.advance(Duration::days(1) + Duration::minutes(1));
    slack.set_clock(clock.now());
    let retries = serde_json::json!({"part": "retries"});
    for _ in 0..2 {
        handle(&to, &retries, far(&clock)).await.unwrap();
    }
    // Both playbooks end with the customer behind.
    for task in [&behind, &closed] {
        let lapsed = DomainEvent::MilestoneLapsed {
            account_id: AccountId::new("acme"),
            milestone_id: "first".into(),
            execution: execution(task),
            lapsed_at: clock.now(),
        };
        for _ in 0..2 {
            handle(&to, &from_bus(&lapsed), far(&clock)).await.unwrap();
        }
    }
    moto.record_requests(false).await;

    let channels = slack.messages();
    for channel in ["D_MAYA", "C_CS_TEAM"] {
        let firsts: Vec<String> = channels[channel]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["blocks"][0]["block_id"].as_str().unwrap().to_string())
            .collect();
        let count = |id: &str| firsts.iter().filter(|f| *f == id).count();
        for kind in ["leadership", "past_sla", "lapsed"] {
            assert_eq!(
                count(&format!("milepost_notice:{kind}:{}", behind.id())),
                1,
                "{kind} in {channel}: {firsts:?}"
            );
        }
        assert_eq!(count(&format!("milepost_task:{}", behind.id())), 1, "{channel}");
        assert_eq!(
            firsts.iter().filter(|f| f.ends_with(closed.id())).count(),
            1,
            "the closed task: its own message only, in {channel}: {firsts:?}"
        );
        let task_message = channels[channel]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["blocks"][0]["block_id"] == format!("milepost_task:{}", behind.id()).as_str())
            .unwrap()
            .to_string();
        assert!(
            task_message.contains("Escalated to leadership on") && task_message.contains("Past its SLA since"),
            "the task's own message says both: {task_message}"
        );
    }
    assert!(slack.judged_by_slacks_spec().starts_with("ok: "));
    milepost_local::iam::assert_granted("IntegrationsFunction", &moto.recorded_actions());
}
