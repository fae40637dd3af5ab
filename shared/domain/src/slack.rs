//! A CSM task's messages in Slack, as values: one to its owner and one to
//! the team's channel, each posted once and then updated in place whenever
//! the task changes (never posted again), retried when Slack asks to wait
//! (429) or fails, and given up only when Slack says it never will work (a
//! channel that is gone, an app not in it) or after a day of failures.

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::webhooks::retry_at;
use crate::{Claim, Timestamp};

/// How long an attempt holds a message: longer than Slack's calls take.
pub const SLACK_LEASE: Duration = Duration::seconds(60);

/// Who a task's message is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// The task's owner, by direct message (or the fallback channel when
    /// Slack knows no user with the owner's address).
    Owner,
    /// The team's channel.
    Team,
}

impl Audience {
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::Owner => "owner",
            Audience::Team => "team",
        }
    }
}

/// What a message is: the task itself (updated in place whenever it
/// changes), or a notice posted once, when something happens to the task
/// that its owner and the team should hear of (an update in place notifies
/// nobody).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    #[default]
    Task,
    /// Its escalation reached leadership (day 5).
    Leadership,
    /// It went past its SLA with nobody acting on it.
    PastSla,
    /// The playbook ended and the customer has not caught up.
    Lapsed,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Task => "task",
            MessageKind::Leadership => "leadership",
            MessageKind::PastSla => "past_sla",
            MessageKind::Lapsed => "lapsed",
        }
    }
}

/// A message as `chat.postMessage` and `chat.update` take it.
#[derive(Clone, Debug, PartialEq)]
pub struct SlackMessage {
    /// The notification's text (and what screen readers read first).
    pub text: String,
    /// Its Block Kit blocks (the first names the task: how it is found again).
    pub blocks: serde_json::Value,
}

/// What Slack answered one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlackOutcome {
    /// Posted, in `channel` at `ts` (a direct message's channel is Slack's `D…` id).
    Posted {
        channel: String,
        ts: String,
    },
    Updated,
    /// 429: wait this long.
    RateLimited(Duration),
    /// Slack answered an error that will not change (`channel_not_found`,
    /// `not_in_channel`, `invalid_auth`, ...).
    Refused(String),
    /// A 5xx, a timeout before sending, an error worth another try.
    Failed(String),
    /// Handed to Slack without an answer: it may have been posted.
    Unknown(String),
}

/// What the message still owes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PostState {
    /// Something is owed (a post, or an update) from `next_at`.
    Due { next_at: Timestamp },
    /// It shows the task as it stands.
    Shown,
    /// Given up: Slack refused, or a day of failures.
    GivenUp { at: Timestamp, why: String },
}

/// One task's message to one audience.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlackPost {
    pub task_id: String,
    pub audience: Audience,
    /// The task's own message, or a notice about it.
    #[serde(default, skip_serializing_if = "is_task")]
    pub kind: MessageKind,
    /// Where it was posted, once it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<String>,
    /// The task changed after the message was posted: it must be updated.
    #[serde(default)]
    pub stale: bool,
    /// A post was handed to Slack without an answer at this moment: before
    /// posting again, look for it (by the block naming the task) and adopt it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maybe_posted_at: Option<Timestamp>,
    pub state: PostState,
    /// When the current run of failures began, and how many there were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<Timestamp>,
    #[serde(default)]
    pub failures: u32,
    /// What a notice tells of happened at this moment (a notice's, when it was made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub happened_at: Option<Timestamp>,
    /// When the task's escalation reached leadership (day 5), for the message to say so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalated_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<Claim>,
    #[serde(default)]
    pub version: u64,
}

/// What an attempt must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owed {
    /// Look for a message posted without an answer, since this moment.
    Find(Timestamp),
    Post,
    Update {
        channel: String,
        ts: String,
    },
    Nothing,
}

fn is_task(kind: &MessageKind) -> bool {
    *kind == MessageKind::Task
}

impl SlackPost {
    /// The task's message, owed at `now`.
    pub fn new(task_id: &str, audience: Audience, now: Timestamp) -> Self {
        Self::of_kind(task_id, audience, MessageKind::Task, now)
    }

    /// A message of `kind` about the task, owed at `now`.
    pub fn of_kind(task_id: &str, audience: Audience, kind: MessageKind, now: Timestamp) -> Self {
        SlackPost {
            task_id: task_id.to_string(),
            audience,
            kind,
            channel: None,
            ts: None,
            stale: false,
            maybe_posted_at: None,
            state: PostState::Due { next_at: now },
            failing_since: None,
            failures: 0,
            happened_at: (kind != MessageKind::Task).then_some(now),
            escalated_at: None,
            claim: None,
            version: 0,
        }
    }

    pub fn next_at(&self) -> Option<Timestamp> {
        match self.state {
            PostState::Due { next_at } => Some(next_at),
            _ => None,
        }
    }

    /// Whether an attempt may start at `now` (due, and no live claim).
    pub fn is_due(&self, now: Timestamp) -> bool {
        self.next_at().is_some_and(|at| at <= now) && self.claim.as_ref().is_none_or(|c| !c.is_live(now, SLACK_LEASE))
    }

    pub fn owed(&self) -> Owed {
        match (&self.channel, &self.ts) {
            (Some(channel), Some(ts)) if self.stale => Owed::Update {
                channel: channel.clone(),
                ts: ts.clone(),
            },
            (Some(_), Some(_)) => Owed::Nothing,
            _ => match self.maybe_posted_at {
                Some(at) => Owed::Find(at),
                None => Owed::Post,
            },
        }
    }

    /// The task changed at `now`: update the message (or post it, if it is not yet).
    pub fn task_changed(&mut self, now: Timestamp) {
        if self.ts.is_some() {
            self.stale = true;
        }
        if !matches!(self.state, PostState::GivenUp { .. }) {
            self.state = PostState::Due { next_at: now };
        }
    }

    /// Shown as it stands, but owing an update at `at` (the moment the task
    /// goes past its SLA, which the message must then say).
    pub fn refresh_at(&mut self, at: Timestamp) {
        if self.state == PostState::Shown && self.ts.is_some() {
            self.stale = true;
            self.state = PostState::Due { next_at: at };
        }
    }

    /// A message found where a post had no answer: it is the one posted.
    pub fn found(&mut self, channel: String, ts: String, now: Timestamp) {
        self.maybe_posted_at = None;
        self.channel = Some(channel);
        self.ts = Some(ts);
        // It shows the task as it was then: bring it up to date.
        self.stale = true;
        self.state = PostState::Due { next_at: now };
    }

    /// None found: post it (the next attempt).
    pub fn none_found(&mut self, now: Timestamp) {
        self.maybe_posted_at = None;
        self.state = PostState::Due { next_at: now };
    }

    /// Records Slack's answer to the attempt at `at`.
    pub fn record(&mut self, at: Timestamp, outcome: SlackOutcome) {
        self.claim = None;
        match outcome {
            SlackOutcome::Posted { channel, ts } => {
                self.channel = Some(channel);
                self.ts = Some(ts);
                self.maybe_posted_at = None;
                self.succeeded(at);
            }
            SlackOutcome::Updated => {
                self.stale = false;
                self.succeeded(at);
            }
            // Never given up for waiting: Slack said when.
            SlackOutcome::RateLimited(wait) => {
                self.state = PostState::Due {
                    next_at: at + wait.max(Duration::seconds(1)),
                }
            }
            SlackOutcome::Refused(why) => self.state = PostState::GivenUp { at, why },
            SlackOutcome::Failed(why) => self.failed(at, why),
            SlackOutcome::Unknown(why) => {
                if self.ts.is_none() {
                    self.maybe_posted_at.get_or_insert(at);
                }
                self.failed(at, why)
            }
        }
    }

    fn succeeded(&mut self, at: Timestamp) {
        self.failing_since = None;
        self.failures = 0;
        self.state = if self.stale {
            PostState::Due { next_at: at }
        } else {
            PostState::Shown
        };
    }

    fn failed(&mut self, at: Timestamp, why: String) {
        let since = *self.failing_since.get_or_insert(at);
        self.failures += 1;
        match retry_at(since, self.failures, at) {
            Some(next_at) => self.state = PostState::Due { next_at },
            None => {
                self.state = PostState::GivenUp {
                    at,
                    why: format!("{} attempts failed over a day; the last: {why}", self.failures),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn at(s: i64) -> Timestamp {
        Utc.with_ymd_and_hms(2026, 5, 4, 9, 0, 0).unwrap() + Duration::seconds(s)
    }

    fn posted() -> SlackOutcome {
        SlackOutcome::Posted {
            channel: "D1".into(),
            ts: "1.1".into(),
        }
    }

    #[test]
    fn posted_once_then_updated_in_place_when_the_task_changes() {
        let mut p = SlackPost::new("t-1", Audience::Owner, at(0));
        assert_eq!(p.owed(), Owed::Post);
        p.record(at(1), posted());
        assert_eq!((p.owed(), &p.state), (Owed::Nothing, &PostState::Shown));
        p.task_changed(at(60));
        assert_eq!(
            p.owed(),
            Owed::Update {
                channel: "D1".into(),
                ts: "1.1".into()
            }
        );
        assert!(p.is_due(at(60)));
        p.record(at(61), SlackOutcome::Updated);
        assert_eq!((p.owed(), &p.state), (Owed::Nothing, &PostState::Shown));
    }

    #[test]
    fn a_shown_message_can_owe_an_update_later_and_only_then_is_due() {
        let mut p = SlackPost::new("t-1", Audience::Owner, at(0));
        p.refresh_at(at(100));
        assert_eq!(
            p.state,
            PostState::Due { next_at: at(0) },
            "nothing posted yet: nothing to refresh"
        );
        p.record(at(1), posted());
        p.refresh_at(at(100));
        assert!(!p.is_due(at(99)) && p.is_due(at(100)));
        assert!(matches!(p.owed(), Owed::Update { .. }));
    }

    #[test]
    fn a_rate_limit_waits_as_long_as_slack_asks_and_is_never_given_up() {
        let mut p = SlackPost::new("t-1", Audience::Team, at(0));
        for i in 0..50 {
            p.record(at(i * 30), SlackOutcome::RateLimited(Duration::seconds(30)));
            assert_eq!(p.next_at(), Some(at(i * 30 + 30)));
        }
        assert_eq!(p.owed(), Owed::Post);
    }

    #[test]
    fn a_post_without_an_answer_is_looked_for_before_it_is_posted_again() {
        let mut p = SlackPost::new("t-1", Audience::Owner, at(0));
        p.record(at(1), SlackOutcome::Unknown("timed out".into()));
        assert_eq!(p.owed(), Owed::Find(at(1)));
        assert_eq!(p.next_at(), Some(at(6)));
        p.found("D1".into(), "1.1".into(), at(6));
        assert!(
            matches!(p.owed(), Owed::Update { .. }),
            "adopted, and brought up to date, not posted again"
        );

        let mut q = SlackPost::new("t-2", Audience::Owner, at(0));
        q.record(at(1), SlackOutcome::Unknown("reset".into()));
        q.none_found(at(6));
        assert_eq!(q.owed(), Owed::Post);
    }

    #[test]
    fn refusals_give_up_at_once_and_failures_after_a_day() {
        let mut p = SlackPost::new("t-1", Audience::Team, at(0));
        p.record(at(0), SlackOutcome::Refused("channel_not_found".into()));
        assert!(matches!(&p.state, PostState::GivenUp { why, .. } if why == "channel_not_found"));
        p.task_changed(at(10));
        assert!(matches!(p.state, PostState::GivenUp { .. }), "stays given up");

        let mut q = SlackPost::new("t-2", Audience::Team, at(0));
        let mut now = at(0);
        while let Some(next) = {
            q.record(now, SlackOutcome::Failed("HTTP 503".into()));
            q.next_at()
        } {
            now = next;
        }
        assert_eq!(q.failures, 8);
        assert!(matches!(&q.state, PostState::GivenUp { why, .. } if why.contains("HTTP 503")));
        assert_eq!(now - at(0), Duration::hours(24));
    }
}
