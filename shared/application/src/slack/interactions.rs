//! A button pressed on a task's Slack message (Slack's interactivity
//! request, `block_actions`): checked as Slack's before anything in it is
//! read (`signature`), then acted on through the task use case
//! (`change_task`, as the email's links and the console do), as the Slack
//! user whose address is the task owner's. Pressing again, or on a task
//! closed meanwhile, changes nothing and says so. The message itself is
//! updated by the `TaskClosed`/`TaskSnoozed` event the change publishes
//! (`posts`), in the owner's and the team's channel alike.

use chrono::Duration;
use milepost_domain::{Actor, DismissReason, Outcome, TaskAction};
use serde::Deserialize;

use crate::email::standing;
use crate::ports::{Clock, EventPublisher, SlackApi, TaskLedger};
use crate::slack::blocks::{DONE, NOT_RELEVANT, SNOOZE_3};
use crate::slack::signature::SlackSigningSecret;
use crate::tasks::{change_task, TaskError};

/// The largest interactivity request read (Slack's payloads for a message
/// of ours are a few kilobytes).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What to answer Slack, and what to tell the person who pressed (posted
/// to the interaction's `response_url`, seen by them only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub notice: Option<Notice>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub response_url: String,
    pub text: String,
}

impl Answer {
    fn status(status: u16) -> Self {
        Answer { status, notice: None }
    }
}

#[derive(Deserialize)]
struct Payload {
    #[serde(rename = "type")]
    kind: String,
    user: User,
    #[serde(default)]
    actions: Vec<Action>,
    #[serde(default)]
    response_url: Option<String>,
}

#[derive(Deserialize)]
struct User {
    id: String,
}

#[derive(Deserialize)]
struct Action {
    action_id: String,
    #[serde(default)]
    value: Option<String>,
    action_ts: String,
}

pub struct SlackInteractions<'a> {
    pub store: &'a dyn TaskLedger,
    pub events: &'a dyn EventPublisher,
    pub api: &'a dyn SlackApi,
    pub clock: &'a dyn Clock,
    pub secret: &'a SlackSigningSecret,
}

impl SlackInteractions<'_> {
    /// One interactivity request: its headers' values and raw body.
    pub async fn handle(&self, timestamp: Option<&str>, signature: Option<&str>, body: &[u8]) -> Answer {
        let now = self.clock.now();
        if body.len() > MAX_BODY_BYTES {
            return Answer::status(413);
        }
        if let Err(why) = self.secret.verify(timestamp, signature, body, now) {
            tracing::warn!(why = %why, "a Slack interaction refused");
            return Answer::status(401);
        }
        let Some(payload) = form_urlencoded::parse(body)
            .find(|(name, _)| name == "payload")
            .and_then(|(_, json)| serde_json::from_str::<Payload>(&json).ok())
        else {
            return Answer::status(400);
        };
        // Other interactions (a URL button's click, a shortcut) need nothing of us.
        let Some(action) = payload.actions.first().filter(|_| payload.kind == "block_actions") else {
            return Answer::status(200);
        };
        let task_action = match action.action_id.as_str() {
            DONE => TaskAction::Done {
                outcome: Outcome::Other,
                note: None,
            },
            SNOOZE_3 => TaskAction::Snooze {
                until: now + Duration::days(3),
                note: None,
            },
            NOT_RELEVANT => TaskAction::Dismiss {
                reason: DismissReason::NotRelevant,
                note: None,
            },
            _ => return Answer::status(200),
        };
        let Some(task_id) = action.value.as_deref() else {
            return Answer::status(400);
        };
        let tell = |text: String| Answer {
            status: 200,
            notice: payload.response_url.as_deref().map(|url| Notice {
                response_url: url.to_string(),
                text,
            }),
        };
        let task = match self.store.get_task(task_id).await {
            Ok(Some(task)) => task,
            Ok(None) => return tell("This task is no longer kept.".into()),
            // Slack shows the person an error; pressing again retries.
            Err(_) => return Answer::status(503),
        };
        let email = match self.api.user_email(&payload.user.id).await {
            Ok(Some(email)) => email,
            Ok(None) => return tell("Slack does not share your email address with this app, so the task cannot be changed as you. Use the link in the task's email.".into()),
            Err(_) => return Answer::status(503),
        };
        if !email.eq_ignore_ascii_case(&task.brief().owner_email) {
            return tell(format!(
                "This task is {}'s to act on. Nothing was changed.",
                task.brief().owner_name
            ));
        }
        // The owner, by the name the task knows them by.
        let by = Actor::Person {
            name: task.brief().owner_name.clone(),
            email: task.brief().owner_email.clone(),
        };
        let key = format!("slack:{}:{}", payload.user.id, action.action_ts);
        match change_task(self.store, self.events, task_id, &task_action, &by, now, Some(&key)).await {
            Ok(update) => {
                tracing::info!(task = %task_id, action = %action.action_id, "a task changed from Slack");
                tell(format!("Done: the task is {}.", standing(&update.task)))
            }
            Err(TaskError::Refused(refusal)) => {
                let task = self.store.get_task(task_id).await.ok().flatten().unwrap_or(task);
                tracing::info!(task = %task_id, refusal = %refusal, "a Slack press changed nothing");
                tell(format!("Nothing was changed: this task is {}.", standing(&task)))
            }
            Err(TaskError::Unknown(_)) => tell("This task is no longer kept.".into()),
            Err(_) => Answer::status(503),
        }
    }
}
