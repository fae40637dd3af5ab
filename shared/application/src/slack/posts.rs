//! A CSM task in Slack: when it opens, a message to its owner (a direct
//! message to the Slack user with the owner's address, or the fallback
//! channel) and one to the team's channel; when it is done, snoozed,
//! dismissed, reopened or closed by Milepost, both messages updated in place
//! to say so. Driven by the domain events on the bus (`TaskOpened`,
//! `TaskSnoozed`, `TaskReopened`, `TaskClosed`), like the webhooks. What an
//! update in place would tell nobody is also posted as a notice of its own,
//! once per audience: the escalation reaching leadership (day 5's
//! `EscalationStageCompleted`), the task going past its SLA, the playbook
//! ending with the customer still behind (`MilestoneLapsed`).
//!
//! Once per task and audience (`SlackPostStore::create_slack_post`), so an
//! event the bus delivers twice posts nothing twice; each attempt is claimed
//! on the record's version first, so overlapping runs do not post together;
//! a post Slack took without answering is looked for by the block that names the task before
//! it is posted again (`Owed::Find`), so a lost answer makes no second
//! message. A 429 waits for Slack's `Retry-After`, however often; other
//! failures are retried for a day.

use milepost_domain::slack::{Audience, MessageKind, Owed, PostState, SlackOutcome, SlackPost};
use milepost_domain::webhooks::OutboundEvent;
use milepost_domain::{Claim, Timestamp};
use serde::Serialize;

use crate::ports::{Clock, SlackApi, SlackPostStore, StoreError, StoreResult, TaskStore};
use crate::slack::blocks::{block_id_of, notice_message, past_sla_at, task_message_as_of, Standing};

/// How far before a post without an answer to look for it.
const FIND_MARGIN: chrono::Duration = chrono::Duration::minutes(1);

/// Messages attempted per page of the due index.
const PAGE: usize = 50;

/// Where tasks are posted.
#[derive(Clone, Debug, Default)]
pub struct SlackSettings {
    /// The team's channel (an id, `C…`); none: owners only.
    pub team_channel: Option<String>,
    /// Where an owner's message goes when Slack knows no user with their address.
    pub fallback_channel: Option<String>,
    /// The console's address, for the Open in console button.
    pub console_url: Option<String>,
}

/// What one run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SlackRun {
    pub posted: usize,
    pub updated: usize,
    /// Found after a post without an answer: adopted, not posted again.
    pub adopted: usize,
    pub waiting: usize,
    pub given_up: usize,
    pub skipped: usize,
}

/// What the use case reads and writes: tasks and their messages.
pub trait SlackStore: TaskStore + SlackPostStore {}
impl<T> SlackStore for T where T: TaskStore + SlackPostStore {}

pub struct SlackPosts<'a> {
    pub store: &'a dyn SlackStore,
    pub api: &'a dyn SlackApi,
    pub clock: &'a dyn Clock,
    pub settings: &'a SlackSettings,
}

impl SlackPosts<'_> {
    fn audiences(&self) -> Vec<Audience> {
        let mut audiences = vec![Audience::Owner];
        if self.settings.team_channel.is_some() {
            audiences.push(Audience::Team);
        }
        audiences
    }

    /// A domain event from the bus: a task opened gets its messages; a task
    /// that changed gets them updated. Other events change nothing here.
    pub async fn accept(&self, event: &OutboundEvent) -> StoreResult<SlackRun> {
        if event.event_type == "EscalationStageCompleted" {
            return self.escalated(event).await;
        }
        if event.event_type == "MilestoneLapsed" {
            return self.lapsed(event).await;
        }
        let mut run = SlackRun::default();
        let Some(task_id) = event.data.get("task_id").and_then(serde_json::Value::as_str) else {
            return Ok(run);
        };
        let now = self.clock.now();
        let mut owed = Vec::new();
        match event.event_type.as_str() {
            "TaskOpened" => {
                for audience in self.audiences() {
                    let post = SlackPost::new(task_id, audience, now);
                    if self.store.create_slack_post(&post).await? {
                        owed.push(SlackPost { version: 1, ..post });
                    }
                }
            }
            "TaskSnoozed" | "TaskReopened" | "TaskClosed" => {
                for audience in self.audiences() {
                    if let Some(post) = self.change(task_id, audience, |p| p.task_changed(now)).await? {
                        owed.push(post);
                    }
                }
            }
            _ => {}
        }
        for post in owed {
            self.attempt(post, &mut run).await?;
        }
        Ok(run)
    }

    /// A day-5 leadership escalation: its task's messages say so.
    async fn escalated(&self, event: &OutboundEvent) -> StoreResult<SlackRun> {
        let mut run = SlackRun::default();
        let (Some(execution), Some("leadership")) = (
            event.data.get("execution").and_then(serde_json::Value::as_str),
            event.data.get("stage").and_then(serde_json::Value::as_str),
        ) else {
            return Ok(run);
        };
        let task_id = milepost_domain::CsmTask::id_for(execution);
        let now = self.clock.now();
        let mut owed = Vec::new();
        for audience in self.audiences() {
            let changed = self
                .change(&task_id, audience, |p| {
                    p.escalated_at.get_or_insert(event.occurred_at);
                    p.task_changed(now);
                })
                .await?;
            // A task that has messages gets the notice too.
            if changed.is_some() {
                owed.extend(
                    self.notice(&task_id, audience, MessageKind::Leadership, event.occurred_at)
                        .await?,
                );
            }
            owed.extend(changed);
        }
        for post in owed {
            self.attempt(post, &mut run).await?;
        }
        Ok(run)
    }

    /// A miss lapsed: its task's owner and the team are told, unless the
    /// task is closed (or there was none: the miss was held back).
    async fn lapsed(&self, event: &OutboundEvent) -> StoreResult<SlackRun> {
        let mut run = SlackRun::default();
        let Some(execution) = event.data.get("execution").and_then(serde_json::Value::as_str) else {
            return Ok(run);
        };
        let task_id = milepost_domain::CsmTask::id_for(execution);
        let live = self
            .store
            .get_task(&task_id)
            .await?
            .is_some_and(|t| t.status().is_live());
        if !live {
            return Ok(run);
        }
        for audience in self.audiences() {
            if let Some(post) = self
                .notice(&task_id, audience, MessageKind::Lapsed, event.occurred_at)
                .await?
            {
                self.attempt(post, &mut run).await?;
            }
        }
        Ok(run)
    }

    /// The notice of `kind` about the task to `audience`, of what happened
    /// at `happened`, owed now, unless it was owed before.
    async fn notice(
        &self,
        task_id: &str,
        audience: Audience,
        kind: MessageKind,
        happened: Timestamp,
    ) -> StoreResult<Option<SlackPost>> {
        let post = SlackPost {
            happened_at: Some(happened),
            ..SlackPost::of_kind(task_id, audience, kind, self.clock.now())
        };
        Ok(self
            .store
            .create_slack_post(&post)
            .await?
            .then_some(SlackPost { version: 1, ..post }))
    }

    /// Applies `change` to the stored record, on the version read (again on a lost race).
    async fn change(
        &self,
        task_id: &str,
        audience: Audience,
        change: impl Fn(&mut SlackPost),
    ) -> StoreResult<Option<SlackPost>> {
        for _ in 0..crate::writes::MAX_WRITE_ATTEMPTS {
            let Some(mut post) = self
                .store
                .slack_posts(task_id)
                .await?
                .into_iter()
                .find(|p| p.audience == audience && p.kind == MessageKind::Task)
            else {
                return Ok(None);
            };
            change(&mut post);
            match self.store.update_slack_post(&post).await {
                Ok(version) => return Ok(Some(SlackPost { version, ..post })),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Contended(format!("task {task_id}'s Slack message")))
    }

    /// Every message owed something now, until none is left or `deadline` passes.
    pub async fn deliver_due(&self, deadline: Option<Timestamp>) -> StoreResult<SlackRun> {
        let mut run = SlackRun::default();
        let mut seen = std::collections::HashSet::new();
        loop {
            let now = self.clock.now();
            if deadline.is_some_and(|d| now >= d) {
                break;
            }
            let mut any = false;
            for post in self.store.due_slack_posts(now, PAGE).await? {
                if seen.insert((post.task_id.clone(), post.audience, post.kind)) {
                    any = true;
                    self.attempt(post, &mut run).await?;
                }
            }
            if !any {
                break;
            }
        }
        Ok(run)
    }

    /// Where the message goes: the owner (or the fallback channel), or the team's channel.
    async fn target(&self, post: &SlackPost, owner_email: &str) -> Result<Option<String>, SlackOutcome> {
        match post.audience {
            Audience::Team => Ok(self.settings.team_channel.clone()),
            Audience::Owner => Ok(self
                .api
                .user_by_email(owner_email)
                .await?
                .or_else(|| self.settings.fallback_channel.clone())),
        }
    }

    async fn attempt(&self, mut post: SlackPost, run: &mut SlackRun) -> StoreResult<()> {
        let now = self.clock.now();
        if !post.is_due(now) {
            run.skipped += 1;
            return Ok(());
        }
        post.claim = Some(Claim::fresh(now));
        match self.store.update_slack_post(&post).await {
            Ok(version) => post.version = version,
            Err(StoreError::Conflict) => {
                run.skipped += 1;
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        let Some(task) = self.store.get_task(&post.task_id).await? else {
            post.record(now, SlackOutcome::Refused("the task is not stored".into()));
            return self.settle(post, run).await;
        };
        let console = self.settings.console_url.as_deref();
        let message = match post.kind {
            MessageKind::Task => {
                let standing = Standing {
                    escalated_at: post.escalated_at,
                    now: Some(now),
                };
                task_message_as_of(&task, console, standing)
            }
            // Said of a task closed before it went: moot, not posted.
            MessageKind::PastSla | MessageKind::Lapsed if !task.status().is_live() => {
                post.claim = None;
                post.state = PostState::Shown;
                return self.settle(post, run).await;
            }
            notice => notice_message(&task, notice, console, post.happened_at.unwrap_or(now)),
        };
        let owed = post.owed();
        let outcome = match &owed {
            Owed::Nothing => {
                post.claim = None;
                post.state = PostState::Shown;
                return self.settle(post, run).await;
            }
            Owed::Update { channel, ts } => self.api.update(channel, ts, &message).await,
            Owed::Find(_) | Owed::Post => match self.target(&post, &task.brief().owner_email).await {
                Err(outcome) => outcome,
                Ok(None) => SlackOutcome::Refused(
                    "Slack knows no user with the owner's address, and no fallback channel is set".into(),
                ),
                Ok(Some(target)) => match owed {
                    Owed::Find(since) => match self
                        .api
                        .find(&target, since - FIND_MARGIN, &block_id_of(&post.task_id, post.kind))
                        .await
                    {
                        Ok(Some((channel, ts))) => {
                            post.claim = None;
                            post.found(channel, ts, self.clock.now());
                            run.adopted += 1;
                            return self.settle(post, run).await;
                        }
                        Ok(None) => {
                            post.claim = None;
                            post.none_found(self.clock.now());
                            return self.settle(post, run).await;
                        }
                        Err(outcome) => outcome,
                    },
                    _ => self.api.post(&target, &message).await,
                },
            },
        };
        let counted = match &outcome {
            SlackOutcome::Posted { .. } => &mut run.posted,
            SlackOutcome::Updated => &mut run.updated,
            _ => &mut run.waiting,
        };
        *counted += 1;
        post.record(self.clock.now(), outcome.clone());
        // An open task still inside its SLA: the message says so when it is
        // not, and a notice tells its owner and the team.
        let past_sla = past_sla_at(&task).filter(|_| post.kind == MessageKind::Task);
        if let Some(at) = past_sla.filter(|at| *at > now) {
            post.refresh_at(at);
        }
        let notice_owed = past_sla.is_some_and(|at| at <= now);
        if matches!(post.state, PostState::GivenUp { .. }) {
            run.waiting -= 1;
            run.given_up += 1;
            if let PostState::GivenUp { why, .. } = &post.state {
                tracing::error!(task = %post.task_id, audience = post.audience.as_str(), why = %why, "a task's Slack message was given up");
            }
        }
        if notice_owed {
            let at = past_sla_at(&task).unwrap_or(now);
            if let Some(notice) = self
                .notice(&post.task_id, post.audience, MessageKind::PastSla, at)
                .await?
            {
                Box::pin(self.attempt(notice, run)).await?;
            }
        }
        match self.store.update_slack_post(&post).await {
            Ok(_) => Ok(()),
            // The task changed meanwhile (its event marked the record): keep
            // what Slack did, and show the task as it is now.
            Err(StoreError::Conflict) => {
                let at = self.clock.now();
                self.change(&post.task_id, post.audience, |fresh| {
                    fresh.claim = None;
                    if let SlackOutcome::Posted { channel, ts } = &outcome {
                        fresh.channel = Some(channel.clone());
                        fresh.ts = Some(ts.clone());
                        fresh.maybe_posted_at = None;
                    }
                    if fresh.ts.is_some() {
                        fresh.stale = true;
                    }
                    if !matches!(fresh.state, PostState::GivenUp { .. }) {
                        fresh.state = PostState::Due { next_at: at };
                    }
                })
                .await?;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn settle(&self, post: SlackPost, run: &mut SlackRun) -> StoreResult<()> {
        match self.store.update_slack_post(&post).await {
            Ok(_) => Ok(()),
            Err(StoreError::Conflict) => {
                run.skipped += 1;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}
