//! A task's Slack messages on the in-memory store, against a Slack that
//! keeps its channels' messages and answers as each test scripts. How we
//! know nothing is posted twice or lost: the fake Slack holds every message
//! posted, per channel, with the task it names; each test counts them, and reads
//! what the last update made of each.

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{Duration, TimeZone, Utc};
use milepost_app::ports::{Clock, SlackApi, SlackPostStore, TaskStore};
use milepost_app::slack::blocks::SlackMessage;
use milepost_app::slack::posts::{SlackPosts, SlackSettings};
use milepost_domain::slack::{Audience, PostState, SlackOutcome};
use milepost_domain::webhooks::OutboundEvent;
use milepost_domain::{Actor, Outcome, TaskAction, Timestamp};
use milepost_embedded::fixtures::task;
use milepost_embedded::{InMemoryStore, VirtualClock};

fn t0() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 6, 1, 9, 0, 0).unwrap()
}

#[derive(Clone, Debug)]
struct Message {
    channel: String,
    ts: String,
    text: String,
    blocks: serde_json::Value,
    /// Its first block's id: what names the message (`milepost_task:<id>`, a notice's).
    block_id: String,
}

/// What a post does, scripted: answer normally, or fail in one of Slack's ways.
#[derive(Clone, Debug)]
enum Script {
    RateLimited(i64),
    ServerError,
    /// Posted, but the answer never came back.
    LostAnswer,
}

#[derive(Default)]
struct FakeSlack {
    messages: Mutex<Vec<Message>>,
    script: Mutex<VecDeque<Script>>,
    calls: Mutex<Vec<String>>,
}

impl FakeSlack {
    fn messages(&self) -> Vec<Message> {
        self.messages.lock().unwrap().clone()
    }
    fn script(&self, steps: impl IntoIterator<Item = Script>) {
        self.script.lock().unwrap().extend(steps);
    }
    fn next(&self) -> Option<Script> {
        self.script.lock().unwrap().pop_front()
    }
    fn called(&self, method: &str) -> usize {
        self.calls.lock().unwrap().iter().filter(|c| *c == method).count()
    }
}

#[async_trait]
impl SlackApi for FakeSlack {
    async fn user_by_email(&self, email: &str) -> Result<Option<String>, SlackOutcome> {
        self.calls.lock().unwrap().push("users.lookupByEmail".into());
        Ok((email == "maya@vendor.example").then(|| "U_MAYA".to_string()))
    }

    async fn user_email(&self, _user: &str) -> Result<Option<String>, SlackOutcome> {
        Ok(None)
    }

    async fn post(&self, target: &str, message: &SlackMessage) -> SlackOutcome {
        self.calls.lock().unwrap().push("chat.postMessage".into());
        tokio::task::yield_now().await;
        let script = self.next();
        match script {
            Some(Script::RateLimited(s)) => return SlackOutcome::RateLimited(Duration::seconds(s)),
            Some(Script::ServerError) => return SlackOutcome::Failed("chat.postMessage: HTTP 503".into()),
            _ => {}
        }
        // A user's id posts to the app's direct message with them.
        let channel = target.replace("U_", "D_");
        let mut messages = self.messages.lock().unwrap();
        let ts = format!("{}.{:06}", 1780304400 + messages.len(), messages.len());
        messages.push(Message {
            channel: channel.clone(),
            ts: ts.clone(),
            text: message.text.clone(),
            blocks: message.blocks.clone(),
            block_id: message.blocks[0]["block_id"].as_str().unwrap().to_string(),
        });
        match script {
            Some(Script::LostAnswer) => SlackOutcome::Unknown("chat.postMessage: no answer".into()),
            _ => SlackOutcome::Posted { channel, ts },
        }
    }

    async fn update(&self, channel: &str, ts: &str, message: &SlackMessage) -> SlackOutcome {
        self.calls.lock().unwrap().push("chat.update".into());
        if let Some(Script::RateLimited(s)) = self.next() {
            return SlackOutcome::RateLimited(Duration::seconds(s));
        }
        let mut messages = self.messages.lock().unwrap();
        match messages.iter_mut().find(|m| m.channel == channel && m.ts == ts) {
            Some(m) => {
                m.text = message.text.clone();
                m.blocks = message.blocks.clone();
                SlackOutcome::Updated
            }
            None => SlackOutcome::Refused("chat.update: message_not_found".into()),
        }
    }

    async fn respond(&self, _response_url: &str, _text: &str) -> Result<(), SlackOutcome> {
        Ok(())
    }

    async fn find(
        &self,
        target: &str,
        _since: Timestamp,
        block_id: &str,
    ) -> Result<Option<(String, String)>, SlackOutcome> {
        self.calls.lock().unwrap().push("conversations.history".into());
        let channel = target.replace("U_", "D_");
        Ok(self
            .messages()
            .into_iter()
            .find(|m| m.channel == channel && m.block_id == block_id)
            .map(|m| (m.channel, m.ts)))
    }
}

struct World {
    store: InMemoryStore,
    slack: FakeSlack,
    clock: VirtualClock,
    settings: SlackSettings,
}

impl World {
    fn new(fallback: Option<&str>) -> Self {
        World {
            store: InMemoryStore::new(),
            slack: FakeSlack::default(),
            clock: VirtualClock::new(t0()),
            settings: SlackSettings {
                team_channel: Some("C_CS_TEAM".into()),
                fallback_channel: fallback.map(str::to_string),
                console_url: Some("https://console.example".into()),
            },
        }
    }
    fn posts(&self) -> SlackPosts<'_> {
        SlackPosts {
            store: &self.store,
            api: &self.slack,
            clock: &self.clock,
            settings: &self.settings,
        }
    }
    async fn open(&self, id: &str, owner: &str) {
        self.store.create_task(&task(id, owner, t0())).await.unwrap();
    }
}

fn event(kind: &str, task_id: &str) -> OutboundEvent {
    OutboundEvent {
        event_id: format!("{kind}-{task_id}"),
        event_type: kind.into(),
        occurred_at: t0(),
        data: serde_json::json!({"task_id": task_id}),
    }
}

/// What Slack's own SDK says of these messages' blocks (`tests/slack_sdk_check.py`).
fn slack_sdk_accepts(messages: &[Message]) {
    use std::io::Write;
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let python = std::env::var("MILEPOST_PYTHON").unwrap_or_else(|_| format!("{root}/.venv/bin/python"));
    let mut child = std::process::Command::new(&python)
        .args([&format!("{root}/tests/slack_sdk_check.py"), "blocks"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{python} (make test installs slack-sdk there): {e}"));
    let blocks: Vec<&serde_json::Value> = messages.iter().map(|m| &m.blocks).collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&blocks).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.starts_with("ok "),
        "slack-sdk refused: {said}"
    );
}

fn buttons(m: &Message) -> Vec<String> {
    m.blocks
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().unwrap().clone())
        .map(|e| e["text"]["text"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_task_is_posted_once_to_its_owner_and_the_team_then_updated_in_place() {
    let w = World::new(None);
    w.open("t-1", "maya@vendor.example").await;
    let posts = w.posts();
    for _ in 0..2 {
        // The bus delivers at least once.
        posts.accept(&event("TaskOpened", "t-1")).await.unwrap();
    }
    let messages = w.slack.messages();
    let mut channels: Vec<&str> = messages.iter().map(|m| m.channel.as_str()).collect();
    channels.sort();
    assert_eq!(
        channels,
        ["C_CS_TEAM", "D_MAYA"],
        "one to Maya's direct messages, one to the team"
    );
    assert!(messages
        .iter()
        .all(|m| buttons(m) == ["Done", "Snooze 3 days", "Not relevant", "Open in console"]));
    slack_sdk_accepts(&messages);

    // Maya closes the task (through the email, the console or Slack): both messages say so.
    let mut t = w.store.get_task("t-1").await.unwrap().unwrap();
    let maya = Actor::Person {
        name: "Maya".into(),
        email: "maya@vendor.example".into(),
    };
    let done = TaskAction::Done {
        outcome: Outcome::PlanAgreed,
        note: None,
    };
    w.clock.advance(Duration::hours(1));
    t.apply(&done, &maya, w.clock.now(), None).unwrap();
    w.store.update_task(&t).await.unwrap();
    let run = posts.accept(&event("TaskClosed", "t-1")).await.unwrap();
    assert_eq!(run.updated, 2);
    let after = w.slack.messages();
    assert_eq!(after.len(), 2, "updated, never reposted");
    for m in &after {
        assert_eq!(buttons(m), ["Open in console"], "no buttons on a closed task");
        assert!(
            m.blocks.to_string().contains("This task is done on 1 Jun 2026"),
            "{}",
            m.blocks
        );
    }
    slack_sdk_accepts(&after);
    assert_eq!(
        posts.deliver_due(None).await.unwrap(),
        Default::default(),
        "nothing owed"
    );
}

#[tokio::test]
async fn a_rate_limit_is_waited_out_and_the_message_still_goes_once() {
    let w = World::new(None);
    w.open("t-1", "maya@vendor.example").await;
    w.slack.script([
        Script::RateLimited(30),
        Script::RateLimited(30),
        Script::RateLimited(30),
    ]);
    let posts = w.posts();
    let run = posts.accept(&event("TaskOpened", "t-1")).await.unwrap();
    assert_eq!(run.waiting, 2);
    w.clock.advance(Duration::seconds(29));
    assert_eq!(
        posts.deliver_due(None).await.unwrap().posted,
        0,
        "not before Slack's Retry-After"
    );
    w.clock.advance(Duration::seconds(1));
    let run = posts.deliver_due(None).await.unwrap();
    assert_eq!((run.posted, run.waiting), (1, 1));
    w.clock.advance(Duration::seconds(30));
    assert_eq!(posts.deliver_due(None).await.unwrap().posted, 1);
    assert_eq!(w.slack.messages().len(), 2);
}

#[tokio::test]
async fn a_post_whose_answer_was_lost_is_found_and_adopted_not_posted_again() {
    let w = World::new(None);
    w.open("t-1", "maya@vendor.example").await;
    w.slack.script([Script::LostAnswer, Script::ServerError]);
    let posts = w.posts();
    posts.accept(&event("TaskOpened", "t-1")).await.unwrap();
    assert_eq!(
        w.slack.messages().len(),
        1,
        "the owner's went (answer lost); the team's failed"
    );
    for _ in 0..4 {
        w.clock.advance(Duration::minutes(5));
        posts.deliver_due(None).await.unwrap();
    }
    let messages = w.slack.messages();
    assert_eq!(
        messages.iter().filter(|m| m.channel == "D_MAYA").count(),
        1,
        "found, not posted again"
    );
    assert_eq!(messages.iter().filter(|m| m.channel == "C_CS_TEAM").count(), 1);
    assert!(w.slack.called("conversations.history") >= 1);
    let stored = w.store.slack_posts("t-1").await.unwrap();
    assert!(
        stored.iter().all(|p| p.state == PostState::Shown && p.ts.is_some()),
        "{stored:?}"
    );
}

#[tokio::test]
async fn an_owner_slack_does_not_know_goes_to_the_fallback_channel_or_is_given_up_saying_why() {
    let w = World::new(Some("C_FALLBACK"));
    w.open("t-1", "sam@vendor.example").await;
    w.posts().accept(&event("TaskOpened", "t-1")).await.unwrap();
    let mut channels: Vec<String> = w.slack.messages().into_iter().map(|m| m.channel).collect();
    channels.sort();
    assert_eq!(channels, ["C_CS_TEAM", "C_FALLBACK"]);

    let w = World::new(None);
    w.open("t-2", "sam@vendor.example").await;
    let run = w.posts().accept(&event("TaskOpened", "t-2")).await.unwrap();
    assert_eq!((run.posted, run.given_up), (1, 1));
    let owner = w
        .store
        .slack_posts("t-2")
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.audience == Audience::Owner)
        .unwrap();
    assert!(
        matches!(&owner.state, PostState::GivenUp { why, .. } if why.contains("no fallback channel")),
        "{:?}",
        owner.state
    );
}

#[tokio::test]
async fn overlapping_runs_post_each_task_once() {
    let w = World::new(None);
    for i in 0..10 {
        w.open(&format!("t-{i}"), "maya@vendor.example").await;
    }
    w.slack.script((0..20).map(|_| Script::ServerError));
    let posts = w.posts();
    for i in 0..10 {
        posts.accept(&event("TaskOpened", &format!("t-{i}"))).await.unwrap();
    }
    assert!(w.slack.messages().is_empty());
    w.clock.advance(Duration::minutes(1));
    let (a, b) = tokio::join!(posts.deliver_due(None), posts.deliver_due(None));
    assert_eq!(a.unwrap().posted + b.unwrap().posted, 20);
    assert_eq!(w.slack.messages().len(), 20, "one per task and audience");
}

#[tokio::test]
async fn a_task_past_its_sla_and_an_escalation_to_leadership_update_its_messages_when_they_happen() {
    use milepost_domain::{CsmTask, TaskBrief, TaskSla};
    let w = World::new(None);
    let opened = task("exec-1:csm-task", "maya@vendor.example", t0());
    let due_by = t0() + Duration::days(2);
    let with_sla = CsmTask::open(
        opened.id().into(),
        TaskBrief {
            sla: Some(TaskSla::DueBy(due_by)),
            ..opened.brief().clone()
        },
    );
    w.store.create_task(&with_sla).await.unwrap();
    let posts = w.posts();
    posts.accept(&event("TaskOpened", "exec-1:csm-task")).await.unwrap();
    w.clock.set(due_by - Duration::minutes(1));
    assert_eq!(
        posts.deliver_due(None).await.unwrap().updated,
        0,
        "not before the SLA is past"
    );
    w.clock.set(due_by);
    let run = posts.deliver_due(None).await.unwrap();
    assert_eq!((run.updated, run.posted), (2, 2), "both updated, and a notice to each");
    // The task's own messages, updated in place; the notices apart.
    let said = |w: &World| {
        w.slack
            .messages()
            .iter()
            .filter(|m| m.block_id.starts_with("milepost_task:"))
            .map(|m| m.blocks.to_string())
            .collect::<Vec<_>>()
    };
    let notices = |w: &World, kind: &str| {
        w.slack
            .messages()
            .iter()
            .filter(|m| m.block_id == format!("milepost_notice:{kind}:exec-1:csm-task"))
            .map(|m| m.channel.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(notices(&w, "past_sla"), ["D_MAYA", "C_CS_TEAM"]);
    assert!(
        said(&w).iter().all(|b| b.contains("Past its SLA since 3 Jun 2026")),
        "{:?}",
        said(&w)
    );

    w.clock.advance(Duration::days(1));
    let escalated = OutboundEvent {
        event_id: "esc-1".into(),
        event_type: "EscalationStageCompleted".into(),
        occurred_at: w.clock.now(),
        data: serde_json::json!({"execution": "exec-1", "stage": "leadership", "account_id": "acme"}),
    };
    for _ in 0..2 {
        posts.accept(&escalated).await.unwrap();
    }
    assert_eq!(said(&w).len(), 2, "updated in place");
    assert_eq!(
        notices(&w, "leadership"),
        ["D_MAYA", "C_CS_TEAM"],
        "told once, though delivered twice"
    );
    assert!(
        said(&w)
            .iter()
            .all(|b| b.contains("Escalated to leadership on 4 Jun 2026")),
        "{:?}",
        said(&w)
    );
    slack_sdk_accepts(&w.slack.messages());
    assert_eq!(
        posts.deliver_due(None).await.unwrap(),
        Default::default(),
        "nothing more owed"
    );
}
