//! The steps of an escalation: what the `outreach`, `csm-task` and `escalate`
//! Lambdas run for each Task state of the state machine, and what the demo's
//! local runner runs in process.
//!
//! Every step first checks whether the milestone has been reached and, if so,
//! ends the escalation as recovered without sending anything. Every side effect
//! is idempotent: emails go through the send ledger, tasks and log entries are
//! created under deterministic keys, so a retried step repeats nothing.

mod after_lapse;
pub mod invocation;
pub mod retry;

use std::sync::Arc;

use milepost_domain::health::{health, Health};
use milepost_domain::{
    Account, Contact, ContactPolicy, CsmTask, DomainEvent, EmailKind, EscalationLogEntry, EscalationRequest, HeldBack,
    HeldMiss, IllegalChange, OutgoingEmail, SendKey, Slot, Stage, StageSkip, Step, StepOutcome, TaskBrief, TaskSla,
    ThreadRef, Timestamp, TrackedMilestone,
};
use tracing::Instrument;

use crate::config::Config;
use crate::email::{self, RenderError};
use crate::keys::{self, Recipient, StepLog};
use crate::links::ActionLinks;
use crate::ports::{Clock, EventPublisher, Mailer, PlaybookStore, StoreError};
use crate::ports::{SendClaim, SendRecord};
use crate::sending::{decided_send, send_claimed, settled_or_adopted, SendFailure, SendResult};
use crate::writes::retry_on_conflict;

/// Misses of one account this close together get one day-1 outreach email.
const COMBINE_WITHIN: chrono::Duration = chrono::Duration::days(3);

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// Worth retrying: a passing fault, a lost write race.
    #[error("transient: {0}")]
    Transient(String),
    /// Over SES's sending rate: the step runs again a few minutes later
    /// (`run_step` answers `Deferred`), however long the burst lasts.
    #[error("throttled: {0}")]
    Throttled(String),
    /// The customer caught up while the step ran, before its email went:
    /// `run_step` answers `Recovered`.
    #[error("milestone reached during the step")]
    ReachedMeanwhile,
    /// An email of the step is claimed by another attempt (an overlapping
    /// run, or one that stopped mid-send: a store fault after the claim)
    /// until this moment: `run_step` answers `Deferred` to it, so the step
    /// runs again once the claim is settled or can be adopted, instead of
    /// spending its retries inside the claim's lease and losing the email.
    #[error("an email is being sent by another attempt")]
    HeldByAnother(Timestamp),
    #[error("milestone {0} is not tracked")]
    UnknownMilestone(String),
    #[error("account {0} is unknown")]
    UnknownAccount(String),
    #[error(transparent)]
    Illegal(#[from] IllegalChange),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("store")]
    Store(#[source] StoreError),
}

impl From<SendFailure> for StepError {
    fn from(e: SendFailure) -> Self {
        match e {
            SendFailure::Transient(why) => StepError::Transient(why),
            SendFailure::HeldByAnother { until } => StepError::HeldByAnother(until),
            SendFailure::Throttled(why) => StepError::Throttled(why),
            SendFailure::Store(e) => e.into(),
        }
    }
}

impl From<StoreError> for StepError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => StepError::Transient("write conflict".into()),
            StoreError::Illegal(change) => StepError::Illegal(change),
            other => StepError::Store(other),
        }
    }
}

/// Why `stage` of a miss did not act, if it did not: the customer's touches
/// of a vendor-side miss, the stages `min_arr_at_risk` holds back.
fn stage_skipped(stage: Stage, m: &TrackedMilestone, held: Option<HeldBack>) -> Option<StageSkip> {
    match stage {
        Stage::Outreach if !m.moved_by().is_customer() => Some(StageSkip::VendorSide),
        Stage::CsmTask if held == Some(HeldBack::TaskAndLeadership) => Some(StageSkip::BelowArrThreshold),
        Stage::Leadership if held.is_some() => Some(StageSkip::BelowArrThreshold),
        _ => None,
    }
}

/// The playbook's steps over the ports they need: the store (milestones,
/// accounts, activity, tasks, the escalation log, the send ledger), the
/// mailer, the bus and the clock.
#[derive(Clone)]
pub struct PlaybookSteps {
    pub store: Arc<dyn PlaybookStore>,
    pub mailer: Arc<dyn Mailer>,
    pub events: Arc<dyn EventPublisher>,
    pub clock: Arc<dyn Clock>,
    pub config: Config,
    /// Signs the day-3 email's buttons; without it the email has none.
    pub links: Option<ActionLinks>,
}

impl PlaybookSteps {
    /// Runs one step of an escalation.
    pub async fn run_step(&self, req: &EscalationRequest, step: Step) -> Result<StepOutcome, StepError> {
        let span = step_span(req, step);
        match self.run_step_inner(req, step).instrument(span.clone()).await {
            Err(StepError::Throttled(why)) => {
                // Deferred, not failed: Step Functions' retries would give up on a long burst.
                let at = self.clock.now() + throttle_wait(req, step);
                span.in_scope(
                    || tracing::warn!(reason = %why, retry_at = %at, "SES sending rate reached; step deferred"),
                );
                Ok(StepOutcome::Deferred(at))
            }
            Err(StepError::HeldByAnother(until)) => {
                let at = until.max(self.clock.now()) + chrono::Duration::seconds(1);
                span.in_scope(
                    || tracing::info!(retry_at = %at, "an email of the step is held by another attempt; step deferred"),
                );
                Ok(StepOutcome::Deferred(at))
            }
            Err(StepError::ReachedMeanwhile) => {
                span.in_scope(|| tracing::info!("milestone reached during the step; nothing sent"));
                if step == Step::CsmTask {
                    // A task opened a moment before the catch-up closes as the announcement's would.
                    crate::tasks::close_for_milestone(
                        self.store.as_ref(),
                        self.events.as_ref(),
                        &req.execution,
                        milepost_domain::CloseReason::CustomerRecovered,
                        self.clock.now(),
                    )
                    .instrument(span)
                    .await
                    .map_err(|e| StepError::Transient(e.to_string()))?;
                }
                Ok(StepOutcome::Recovered)
            }
            other => other,
        }
    }

    async fn run_step_inner(&self, req: &EscalationRequest, step: Step) -> Result<StepOutcome, StepError> {
        let store = &self.store;
        let now = self.clock.now();
        let mut milestone = self.load_milestone(req).await?;
        if milestone.status().is_reached() {
            if step == Step::AfterLapse {
                self.hand_over_abandoned_duty_claims(req, &milestone, now).await?;
            }
            return Ok(StepOutcome::Recovered);
        }
        let account = store
            .get_account(&req.account_id)
            .await?
            .ok_or_else(|| StepError::UnknownAccount(req.account_id.to_string()))?;

        if let Some(stage) = step.stage() {
            // Walk stage by stage, so a stage whose step failed and was caught is still recorded.
            let mut changed = false;
            while milestone.status().stage().is_none_or(|s| s < stage) {
                let next = milestone
                    .status()
                    .stage()
                    .and_then(Stage::next)
                    .unwrap_or(Stage::Outreach);
                changed |= milestone
                    .enter_stage(next)
                    .map_err(|t| IllegalChange::of(&milestone, t))?;
            }
            if changed {
                // A lost race (the customer just caught up) is transient: the retry sees it.
                milestone.version = store.update_milestone(&milestone).await?;
            }
        }

        let scope = StepScope {
            req,
            step,
            account: &account,
            milestone: &milestone,
            now,
        };
        // Under the map's thresholds a miss skips the CSM or leadership stage.
        let held = milestone
            .policy()
            .min_arr_at_risk
            .held_back(milestone.arr_at_risk(account.arr));
        match step {
            Step::OutreachEmail | Step::InAppMessage | Step::FollowUpEmail if !milestone.moved_by().is_customer() => {
                // Ours to move: the customer is not asked about it.
                let detail = "nothing to the customer: the milestone is ours to move".to_string();
                self.log(req, step, StepLog::VendorSide, now, detail).await?;
            }
            Step::OutreachEmail | Step::FollowUpEmail => {
                if let Some(later) = self.customer_email(scope).await? {
                    return Ok(StepOutcome::Deferred(later));
                }
            }
            Step::InAppMessage if self.held_by_pause(req, step, &account, now).await? => {}
            Step::InAppMessage => self.in_app_message(scope).await?,
            Step::CsmTask if held == Some(HeldBack::TaskAndLeadership) => {
                self.hold_for_digest(req, step, &account, &milestone, HeldBack::TaskAndLeadership, now)
                    .await?;
            }
            Step::Leadership if held == Some(HeldBack::Leadership) => {
                self.hold_for_digest(req, step, &account, &milestone, HeldBack::Leadership, now)
                    .await?;
            }
            Step::Leadership if held.is_some() => {
                // Tech-touch: already in the held-back list from the CSM stage.
                let detail = "leadership not told: a tech-touch miss, in its owner's digest".to_string();
                self.log(req, step, StepLog::TechTouch, now, detail).await?;
            }
            Step::CsmTask => self.open_task(scope).await?,
            Step::Leadership => {
                if let Some(later) = self.tell_leadership(scope).await? {
                    // What went, went; the step runs again for what waits.
                    return Ok(StepOutcome::Deferred(later));
                }
            }
            Step::AfterLapse => {
                if let Some(next) = self.after_lapse(scope).await? {
                    return Ok(StepOutcome::Deferred(next));
                }
            }
            Step::Finish => {
                if milestone.finish(now).map_err(|t| IllegalChange::of(&milestone, t))? {
                    store.update_milestone(&milestone).await?;
                    self.log(
                        req,
                        step,
                        StepLog::Lapsed,
                        now,
                        "escalation lapsed without recovery".to_string(),
                    )
                    .await?;
                }
                // Announced each time the step finds it lapsed (a retry after
                // a lost publish too): one id, the lapse's own moment.
                if let Some(lapsed_at) = milestone.lapsed_at() {
                    self.events
                        .publish(&[DomainEvent::MilestoneLapsed {
                            account_id: account.id.clone(),
                            milestone_id: milestone.milestone_id().to_owned(),
                            execution: req.execution.clone(),
                            lapsed_at,
                        }])
                        .await
                        .map_err(|e| StepError::Transient(e.to_string()))?;
                }
            }
        }

        if step.completes_stage() {
            let stage = step.stage().expect("stage steps have a stage");
            let account_id = account.id.clone();
            let milestone_id = milestone.milestone_id().to_owned();
            let execution = req.execution.clone();
            // Only a stage that acted completed; one that did not says why.
            let event = match stage_skipped(stage, &milestone, held) {
                None => DomainEvent::EscalationStageCompleted {
                    account_id,
                    milestone_id,
                    execution,
                    stage,
                    completed_at: now,
                },
                Some(reason) => DomainEvent::EscalationStageSkipped {
                    account_id,
                    milestone_id,
                    execution,
                    stage,
                    reason,
                    skipped_at: now,
                },
            };
            self.events
                .publish(&[event])
                .await
                .map_err(|e| StepError::Transient(e.to_string()))?;
        }
        Ok(StepOutcome::Continue)
    }

    /// Day 1's emails to the customer's champion (the outreach, then its
    /// follow-up), unless paused, unsubscribed or already sent; `Some(when)`
    /// when the contact policy holds the email until then.
    async fn customer_email(&self, at: StepScope<'_>) -> Result<Option<Timestamp>, StepError> {
        let StepScope {
            req,
            step,
            account,
            milestone,
            now,
        } = at;
        let store = &self.store;
        let kind = if step == Step::OutreachEmail {
            EmailKind::Outreach
        } else {
            EmailKind::FollowUp
        };
        let to = &account.primary_contact;
        let key = send_key(req, step, Recipient::Customer);
        // A claim an attempt left mid-send is adopted by the send below.
        if let Some(record) = decided_send(store.as_ref(), &key, now).await? {
            // Sent by an earlier attempt, or named in another milestone's
            // outreach: say so, and take no slot of the contact's.
            let result = SendResult::from_record(record, now)?;
            let detail = format!("{} email {}", kind.label(), result.describe());
            self.log(req, step, StepLog::Email(Recipient::Customer), now, detail)
                .await?;
        } else if !self.held_by_pause(req, step, account, now).await?
            && !self
                .held_by_suppression(req, step, Recipient::Customer, kind, to, now)
                .await?
        {
            // The follow-up answers its outreach, in its thread.
            let thread = match kind {
                EmailKind::FollowUp => self.outreach_thread(req).await?,
                _ => None,
            };
            let mut policy = milestone.policy().contact;
            if thread.is_some() {
                policy = policy.for_reply();
            }
            let slot = LimitedSend {
                who: Recipient::Customer,
                kind,
                to,
                key: &key,
                // A follow-up after the day-3 task would be no follow-up.
                latest: (kind == EmailKind::FollowUp).then_some(req.schedule.csm_task_at),
            };
            match self.claim_slot(req, step, &slot, policy, account.timezone, now).await? {
                SlotAnswer::Now => {}
                SlotAnswer::Later(at) => return Ok(Some(at)),
                SlotAnswer::TooLate => return Ok(None),
            }
            let claim = SendClaim::fresh(now);
            // One outreach for the account's misses close together, and one
            // follow-up for those it named.
            let (also, also_keys) = match &thread {
                None if step == Step::OutreachEmail => {
                    let also = self.claim_close_misses(account, milestone, &claim).await?;
                    let keys = also.iter().map(|c| outreach_key_of(account, c)).collect();
                    (also, keys)
                }
                // Whichever of the thread's misses follows up first names
                // them all (the one whose outreach it is, or one it named).
                Some((thread, _)) => {
                    self.claim_named_follow_ups(account, milestone, &thread.key, &claim)
                        .await?
                }
                _ => (Vec::new(), Vec::new()),
            };
            let unsubscribe = self.unsubscribe_url(account, to, now);
            let about = at.about(&self.config);
            let reply = thread.map(|(to, subject)| email::Reply { to, subject });
            let mail = email::outreach(about, &also, kind, &unsubscribe, key, reply)?;
            let sent = self.send_logged(req, step, Recipient::Customer, now, &mail).await;
            // The misses it named are settled as included in it, or given back.
            let within = format!("the {} email about {}", kind.label(), milestone.name());
            crate::sending::settle_named(
                self.store.as_ref(),
                also_keys,
                &within,
                &mail.key,
                sent.as_ref().ok(),
                &claim,
            )
            .await?;
            sent?;
        }
        Ok(None)
    }

    /// The outreach a follow-up answers, and its subject: the miss's own
    /// outreach, or the one that named it; none when no outreach went (held,
    /// unsubscribed, rejected): then the follow-up starts its own thread.
    async fn outreach_thread(&self, req: &EscalationRequest) -> Result<Option<(ThreadRef, Option<String>)>, StepError> {
        let mut key = send_key(req, Step::OutreachEmail, Recipient::Customer);
        // One hop at most: an outreach that named others was sent on its own.
        for _ in 0..2 {
            match self.store.send_record(&key).await? {
                Some(SendRecord::Sent { message_id, subject }) => {
                    let thread = ThreadRef {
                        key,
                        message_id: Some(message_id),
                    };
                    return Ok(Some((thread, subject)));
                }
                Some(SendRecord::Unknown { email, .. }) => {
                    let subject = email.map(|e| e.subject);
                    return Ok(Some((ThreadRef { key, message_id: None }, subject)));
                }
                Some(SendRecord::Included {
                    in_email: Some(named_in),
                    ..
                }) => key = named_in,
                _ => return Ok(None),
            }
        }
        Ok(None)
    }

    /// The follow-ups of the other misses of the outreach under `outreach`
    /// (the one it was sent for, and those it named), claimed so this
    /// follow-up names them too: the merged outreach's conversation stays
    /// one, whichever miss's follow-up step runs first. With their send
    /// keys, to settle after.
    async fn claim_named_follow_ups(
        &self,
        account: &Account,
        m: &TrackedMilestone,
        outreach: &SendKey,
        claim: &SendClaim,
    ) -> Result<(Vec<TrackedMilestone>, Vec<SendKey>), StepError> {
        let mut named = Vec::new();
        for c in self.store.milestones_of(&account.id).await? {
            if c.milestone_id() == m.milestone_id() || c.status().is_reached() || c.missed_at().is_none() {
                continue;
            }
            let theirs = outreach_key_of(account, &c);
            if &theirs == outreach {
                named.push(c);
            } else if let Some(SendRecord::Included {
                in_email: Some(named_in),
                ..
            }) = self.store.send_record(&theirs).await?
            {
                if &named_in == outreach {
                    named.push(c);
                }
            }
        }
        named.sort_by(|a, b| (a.due_at(), a.milestone_id()).cmp(&(b.due_at(), b.milestone_id())));
        let key_of = |c: &TrackedMilestone| follow_up_key_of(account, c);
        let claimed = crate::sending::claim_named(self.store.as_ref(), named, key_of, claim).await?;
        let keys = claimed.iter().map(key_of).collect();
        Ok((claimed, keys))
    }

    /// Day 1's in-app message: asked of the product, through the bus.
    async fn in_app_message(&self, at: StepScope<'_>) -> Result<(), StepError> {
        let StepScope {
            req,
            step,
            account,
            milestone,
            now,
        } = at;
        let store = &self.store;
        let activity = store.activity(&account.id).await?;
        let mut users = activity.recent_users();
        users.truncate(20);
        let facts = email::MilestoneFacts::new(&self.config, account, milestone, now);
        let (title, body) = email::in_app_words(milestone);
        self.events
            .publish(&[DomainEvent::InAppMessageRequested {
                account_id: account.id.clone(),
                milestone_id: milestone.milestone_id().to_owned(),
                execution: req.execution.clone(),
                user_ids: users,
                title,
                body,
                link: facts.link,
            }])
            .await
            .map_err(|e| StepError::Transient(e.to_string()))?;
        self.log(req, step, StepLog::InApp, now, "in-app message requested".to_string())
            .await?;
        Ok(())
    }

    /// Day 3: the task for the milestone's owner, opened once and announced
    /// once, and its email.
    async fn open_task(&self, at: StepScope<'_>) -> Result<(), StepError> {
        let StepScope {
            req,
            step,
            account,
            milestone,
            now,
        } = at;
        let store = &self.store;
        let mut task = self.build_task(req, account, milestone, now).await?;
        task.queue_event(task.opened_event(now));
        if store.create_task(&task).await? {
            let detail = format!(
                "CSM task opened for its {} owner",
                task.brief().owner_role.replace('_', " ")
            );
            self.log(req, step, StepLog::TaskOpened, now, detail).await?;
        }
        // Created now or by an earlier attempt: its opening is published once.
        let task = store
            .get_task(task.id())
            .await?
            .ok_or_else(|| StepError::Transient(format!("task {} not readable yet", task.id())))?;
        let task = crate::tasks::publish_outbox(store.as_ref(), self.events.as_ref(), task)
            .await
            .map_err(|e| StepError::Transient(e.to_string()))?;
        let buttons = email::task_buttons(self.links.as_ref(), &task, milestone, now);
        let about = at.about(&self.config);
        let mail = email::csm_task(about, &task, buttons, send_key(req, step, Recipient::Csm))?;
        self.send_logged(req, step, Recipient::Csm, now, &mail).await?;
        Ok(())
    }

    /// Day 5: the email to leadership (alone, or in the leader's daily
    /// list) and, where the map asks, to the customer's executive sponsor;
    /// `Some(when)` when one of them waits until then (what went, went).
    async fn tell_leadership(&self, at: StepScope<'_>) -> Result<Option<Timestamp>, StepError> {
        let StepScope {
            req,
            step,
            account,
            milestone,
            now,
        } = at;
        let store = &self.store;
        let report = self.account_health(account, now).await?;
        let tried = store.log_of(&account.id).await?;
        let tried: Vec<_> = tried
            .into_iter()
            .filter(|e| e.execution == req.execution && e.step != Some(Step::Leadership))
            .collect();
        let task = store.get_task(&CsmTask::id_for(&req.execution)).await?;
        let leader = Contact::new("Customer Success leadership", account.cs_leader_email.clone());
        let leader_key = send_key(req, step, Recipient::Leader);
        let leader_later = match decided_send(store.as_ref(), &leader_key, now).await? {
            Some(record) => {
                // Sent by an earlier attempt, or in another escalation's daily email.
                let result = SendResult::from_record(record, now)?;
                let detail = format!("{} email {}", EmailKind::Leadership.label(), result.describe());
                self.log(req, step, StepLog::Email(Recipient::Leader), now, detail)
                    .await?;
                None
            }
            None => {
                let facts = LeaderFacts {
                    account,
                    milestone,
                    health: &report,
                    tried: &tried,
                    task: task.as_ref(),
                };
                self.leader_email(req, step, &facts, &leader, &leader_key, now).await?
            }
        };
        if leader_later.is_some() {
            // Our leadership hears first: the sponsor's email waits for the
            // leader's (alone or in the leader's daily list) to have gone.
            return Ok(leader_later);
        }
        let mut sponsor_later = None;
        let mut sponsor_mail = None;
        if milestone.asks_sponsor() && account.exec_sponsor.is_some() {
            // Leadership's email said when the sponsor is written to, and
            // offered to hold it: until then, and if held, nothing goes.
            let log = store.log_of(&account.id).await?;
            let ours = |what: &str| {
                log.iter()
                    .find(|e| e.execution == req.execution && e.key.ends_with(what))
            };
            let told_at = ours(&format!(
                ":{}:{}",
                Step::Leadership.as_str(),
                StepLog::Email(Recipient::Leader).key_part()
            ))
            .map_or(now, |e| e.at);
            let sponsor_at = milepost_domain::sponsor_email_at(told_at, account.timezone);
            if now < sponsor_at {
                return Ok(Some(sponsor_at));
            }
            if let Some(held) = log
                .iter()
                .find(|e| e.key == EscalationLogEntry::sponsor_hold_key(&req.execution))
            {
                tracing::info!(held_at = %held.at, "the executive sponsor's email was held by leadership; not sent");
                return Ok(None);
            }
        }
        if milestone.asks_sponsor() {
            if let Some(sponsor) = &account.exec_sponsor {
                // The sponsor is the customer's: a pause, an unsubscribe or the
                // contact policy holds their email, not leadership's.
                let key = send_key(req, step, Recipient::Sponsor);
                let slot = LimitedSend {
                    who: Recipient::Sponsor,
                    kind: EmailKind::ExecSponsor,
                    to: sponsor,
                    key: &key,
                    latest: None,
                };
                if !self.held_by_pause(req, step, account, now).await?
                    && !self
                        .held_by_suppression(req, step, Recipient::Sponsor, EmailKind::ExecSponsor, sponsor, now)
                        .await?
                {
                    let policy = milestone.policy().contact;
                    sponsor_later = self
                        .claim_slot(req, step, &slot, policy, account.timezone, now)
                        .await?
                        .deferred_to();
                    if sponsor_later.is_none() {
                        sponsor_mail = Some((sponsor, self.unsubscribe_url(account, sponsor, now)));
                    }
                }
            }
        }
        if let Some((sponsor, unsubscribe)) = sponsor_mail {
            let about = at.about(&self.config);
            let reported = email::EscalationFacts {
                health: &report,
                tried: &tried,
                task: task.as_ref(),
                lapsed: None,
                hold_sponsor_url: None,
            };
            let mail = email::leadership(
                about,
                reported,
                sponsor,
                EmailKind::ExecSponsor,
                Some(&unsubscribe),
                send_key(req, step, Recipient::Sponsor),
            )?;
            self.send_logged(req, step, Recipient::Sponsor, now, &mail).await?;
        }
        Ok(sponsor_later)
    }

    /// Notes on the account's escalation log that a step failed for good and
    /// the playbook went on: what the state machine's Catch runs, and what the
    /// demo's runner writes when it gives up on a step. Only the error's name
    /// (`failure`) is kept: causes can quote addresses.
    pub async fn record_failure(&self, req: &EscalationRequest, step: Step, failure: &str) -> Result<(), StoreError> {
        let name: String = failure
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            .take(80)
            .collect();
        let span = step_span(req, step);
        span.in_scope(|| tracing::error!(error = %name, "playbook step failed; recorded, playbook goes on"));
        let detail = format!("{} failed ({name}); playbook went on", step.as_str());
        let entry = EscalationLogEntry::new(req, step, "failed", self.clock.now(), detail);
        self.store.append_log(&entry).instrument(span).await?;
        Ok(())
    }

    async fn load_milestone(&self, req: &EscalationRequest) -> Result<TrackedMilestone, StepError> {
        self.store
            .get_milestone(&req.account_id, &req.milestone_id)
            .await?
            .ok_or_else(|| StepError::UnknownMilestone(req.milestone_id.clone()))
    }

    async fn account_health(&self, account: &Account, now: Timestamp) -> Result<Health, StepError> {
        let milestones = self.store.milestones_of(&account.id).await?;
        let activity = self.store.activity(&account.id).await?;
        Ok(health(&milestones, &activity, account.licensed_seats, now))
    }

    async fn build_task(
        &self,
        req: &EscalationRequest,
        account: &Account,
        m: &TrackedMilestone,
        now: Timestamp,
    ) -> Result<CsmTask, StepError> {
        let activity = self.store.activity(&account.id).await?;
        let milestones = self.store.milestones_of(&account.id).await?;
        let too_late = StepLog::TooLate(Recipient::Customer).key_part();
        let follow_up_not_sent =
            self.store.log_of(&account.id).await?.iter().any(|e| {
                e.execution == req.execution && e.step == Some(Step::FollowUpEmail) && e.key.ends_with(&too_late)
            });
        let (listed, other) = recent_read_by(&milestones, &activity);
        let owner = account.owner(m.owner());
        if owner.fallback {
            tracing::info!(
                role = owner.role,
                "no contact holds the milestone's owner role; the task goes to the CSM"
            );
        }
        Ok(CsmTask::open(
            CsmTask::id_for(&req.execution),
            TaskBrief {
                account_id: account.id.clone(),
                account_name: account.name.clone(),
                milestone_id: m.milestone_id().to_owned(),
                milestone_name: m.name().to_owned(),
                owner_role: owner.role.to_string(),
                owner_is_fallback: owner.fallback,
                owner_email: owner.contact.email.to_string(),
                owner_name: owner.contact.name.clone(),
                created_at: now,
                due_at: m.due_at(),
                target: m.criterion().describe_target(account.licensed_seats),
                current: m.progress().describe_current(m.criterion(), account.licensed_seats),
                health: health(&milestones, &activity, account.licensed_seats, now),
                arr_at_risk: m.arr_at_risk(account.arr),
                recommended_intervention: m.playbook().csm.clone(),
                recent_activity: listed,
                other_activity: other,
                follow_up_not_sent,
                sla: Some(match m.policy().after_playbook.task_sla_business_days {
                    0 => TaskSla::None,
                    days => TaskSla::DueBy(milepost_domain::after_playbook::add_business_days(
                        now,
                        days,
                        account.timezone,
                    )),
                }),
            },
        ))
    }

    /// Whether customer email is paused for the account: then this step's
    /// customer-facing part is held back, and the log says so, once.
    async fn held_by_pause(
        &self,
        req: &EscalationRequest,
        step: Step,
        account: &Account,
        now: Timestamp,
    ) -> Result<bool, StepError> {
        let Some(pause) = self.store.customer_email_pause(&account.id).await? else {
            return Ok(false);
        };
        if !pause.is_active(now) {
            return Ok(false);
        }
        let held = match step {
            Step::OutreachEmail => "outreach email",
            Step::InAppMessage => "in-app message",
            Step::FollowUpEmail => "follow-up email",
            _ => "executive sponsor email",
        };
        let detail = format!(
            "{held} not sent: customer emails paused by {} until {}",
            pause.by.display(),
            email::fmt_date(pause.until)
        );
        let mut entry = EscalationLogEntry::new(req, step, "paused:customer", now, detail);
        entry.by = Some(pause.by.clone());
        self.store.append_log(&entry).await?;
        Ok(true)
    }

    /// Whether the customer contact `to` unsubscribed: then this step's email
    /// to them is not sent, and the log says so (by role, never the address).
    async fn held_by_suppression(
        &self,
        req: &EscalationRequest,
        step: Step,
        who: Recipient,
        kind: EmailKind,
        to: &Contact,
        now: Timestamp,
    ) -> Result<bool, StepError> {
        let Some(suppression) = self.store.suppression(&to.email).await? else {
            return Ok(false);
        };
        let detail = format!(
            "{} email not sent: the recipient unsubscribed on {} ({})",
            kind.label(),
            email::fmt_date(suppression.at),
            suppression.source.label()
        );
        self.log(req, step, StepLog::Unsubscribed(who), now, detail).await?;
        Ok(true)
    }

    /// The unsubscribe link `to` gets in this email (the contact is stored
    /// under the link's fingerprint by `claim_slot`, before the send).
    fn unsubscribe_url(&self, account: &Account, to: &Contact, now: Timestamp) -> String {
        match &self.links {
            Some(links) => links.unsubscribe(account.id.as_str(), to.email.as_str(), now),
            // Without a link key (some tests), the configured endpoint as it is.
            None => self.config.unsubscribe_url.clone(),
        }
    }

    /// Claims the contact's slot for this email under the contact policy:
    /// `Now`, send now (recorded, so a retry is not held by its own slot);
    /// `Later(t)`, the policy holds it until `t`; `TooLate`, it would hold it
    /// past the send's `latest`, so it is not sent. The log says which and why.
    async fn claim_slot(
        &self,
        req: &EscalationRequest,
        step: Step,
        send: &LimitedSend<'_>,
        policy: ContactPolicy,
        tz: chrono_tz::Tz,
        now: Timestamp,
    ) -> Result<SlotAnswer, StepError> {
        let policy = self.config.contact_policy_for(policy);
        // Two sends to one contact at once: the loser of the write reads again.
        let slot = crate::sending::claim_contact_slot(self.store.as_ref(), send.to, send.key, &policy, tz, now).await?;
        let Slot::Later(at, why) = slot else {
            return Ok(SlotAnswer::Now);
        };
        if let Some(latest) = send.latest.filter(|latest| at >= *latest) {
            let detail = format!(
                "{} email not sent: the contact policy would hold it to {} ({}), after {}: {}",
                send.kind.label(),
                email::fmt_local_datetime(at, tz),
                tz.name(),
                email::fmt_local_datetime(latest, tz),
                why.describe(&policy)
            );
            self.log(req, step, StepLog::TooLate(send.who), now, detail).await?;
            return Ok(SlotAnswer::TooLate);
        }
        let detail = format!(
            "{} email deferred to {} ({}): {}",
            send.kind.label(),
            email::fmt_local_datetime(at, tz),
            tz.name(),
            why.describe(&policy)
        );
        self.log(req, step, StepLog::Deferred(send.who, at), now, detail)
            .await?;
        Ok(SlotAnswer::Later(at))
    }

    /// Sends an email once (see `send_once`) and records what became of it in
    /// the escalation log, under `email:<recipient>`.
    async fn send_logged(
        &self,
        req: &EscalationRequest,
        step: Step,
        recipient: Recipient,
        now: Timestamp,
        mail: &OutgoingEmail,
    ) -> Result<SendResult, StepError> {
        let result = self.send_checked(req, now, mail).await?;
        let detail = format!("{} email {}", mail.kind.label(), result.describe());
        self.log(req, step, StepLog::Email(recipient), now, detail).await?;
        Ok(result)
    }

    /// Sends an email once (see `send_once`), unless the customer caught up
    /// before it went (`ReachedMeanwhile`).
    async fn send_checked(
        &self,
        req: &EscalationRequest,
        now: Timestamp,
        mail: &OutgoingEmail,
    ) -> Result<SendResult, StepError> {
        let claim = SendClaim::fresh(now);
        Ok(match self.store.claim_send(&mail.key, &claim).await? {
            Some(existing) => settled_or_adopted(self.store.as_ref(), mail, existing, now).await?,
            None => {
                // Looked at again with the key held, right before the send: a
                // customer who caught up while the step ran gets nothing.
                let reached = self.load_milestone(req).await.map(|m| m.status().is_reached());
                if !matches!(reached, Ok(false)) {
                    self.store.release_send(&mail.key, &claim).await?;
                    reached?;
                    return Err(StepError::ReachedMeanwhile);
                }
                send_claimed(self.store.as_ref(), self.mailer.as_ref(), mail, &claim).await?
            }
        })
    }

    /// Leadership's escalation email: at most one a day per leader. This
    /// escalation waits in the leader's queue; when the leader's slot of the
    /// day is free, one email goes with every escalation waiting (this one
    /// alone as the full report, several as a list ranked by ARR at risk),
    /// and the others' own steps find theirs included. `Some(t)`: the slot is
    /// taken today; the step runs again at `t`.
    async fn leader_email(
        &self,
        req: &EscalationRequest,
        step: Step,
        facts: &LeaderFacts<'_>,
        leader: &Contact,
        key: &SendKey,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, StepError> {
        let entry = milepost_domain::QueuedEscalation {
            execution: req.execution.clone(),
            account_id: facts.account.id.clone(),
            milestone_id: facts.milestone.milestone_id().to_owned(),
            arr_at_risk: facts.milestone.arr_at_risk(facts.account.arr),
            queued_at: now,
        };
        self.change_leader_queue(&leader.email, |q| q.add(entry.clone()))
            .await?;
        let send = LimitedSend {
            who: Recipient::Leader,
            kind: EmailKind::Leadership,
            to: leader,
            key,
            latest: None,
        };
        let tz = self.config.leader_timezone;
        if let Some(later) = self
            .claim_slot(req, step, &send, milepost_domain::LEADER_POLICY, tz, now)
            .await?
            .deferred_to()
        {
            return Ok(Some(later));
        }
        // Everyone else waiting, each claimed so only this email names them.
        let claim = SendClaim::fresh(now);
        let (mut done, others) = self.claim_waiting(req, leader, &claim, now).await?;
        let lapsed = match self.lapsed_of(&leader.email, now).await {
            Ok(lapsed) => lapsed,
            Err(e) => {
                // Claimed for this email: given back before the step fails.
                for (their_key, ..) in &others {
                    self.store.release_send(their_key, &claim).await?;
                }
                return Err(e);
            }
        };
        let mail = if others.is_empty() {
            let about = email::About {
                cfg: &self.config,
                account: facts.account,
                m: facts.milestone,
                now,
            };
            let hold = self.hold_sponsor_url(facts.account, &req.execution, now);
            let reported = email::EscalationFacts {
                health: facts.health,
                tried: facts.tried,
                task: facts.task,
                lapsed: lapsed.as_ref(),
                hold_sponsor_url: hold.as_deref(),
            };
            email::leadership(about, reported, leader, EmailKind::Leadership, None, key.clone())?
        } else {
            let mut items = vec![email::ListedEscalation {
                account: facts.account,
                milestone: facts.milestone,
                health: facts.health,
                task: facts.task,
                hold_sponsor_url: self.hold_sponsor_url(facts.account, &req.execution, now),
            }];
            items.extend(others.iter().map(|(_, execution, account, milestone, health, task)| {
                email::ListedEscalation {
                    account: account.as_ref(),
                    milestone,
                    health,
                    task: task.as_ref(),
                    hold_sponsor_url: self.hold_sponsor_url(account, execution, now),
                }
            }));
            email::leadership_list(&self.config, &items, leader, lapsed.as_ref(), key.clone(), now)?
        };
        let sent = self.send_logged(req, step, Recipient::Leader, now, &mail).await;
        let went = sent.as_ref().is_ok_and(SendResult::went_or_may_have);
        for (their_key, execution, ..) in &others {
            if went {
                let record = crate::ports::SendRecord::Included {
                    in_email: Some(key.clone()),
                    within: format!("leadership's escalation email of {}", email::fmt_date(now)),
                };
                self.store.settle_send(their_key, &record).await?;
                done.push(execution.clone());
            } else {
                self.store.release_send(their_key, &claim).await?;
            }
        }
        if went {
            self.change_leader_queue(&leader.email, |q| {
                let before = q.waiting.len();
                q.remove(&done, now);
                q.waiting.len() != before
            })
            .await?;
        }
        sent?;
        Ok(None)
    }

    /// The link in leadership's email that holds the sponsor's email of
    /// `execution` (made for the account's CS leader; the email shows it only
    /// where the sponsor is written to).
    fn hold_sponsor_url(&self, account: &Account, execution: &str, now: Timestamp) -> Option<String> {
        let links = self.links.as_ref()?;
        Some(links.url(
            crate::links::LinkAction::HoldSponsor,
            &CsmTask::id_for(execution),
            account.cs_leader_email.as_str(),
            now,
        ))
    }

    /// The other escalations waiting in `leader`'s queue, each claimed with
    /// `claim` so only this email names them; and the executions done with
    /// (this one, those sent already, gone or caught up meanwhile).
    async fn claim_waiting(
        &self,
        req: &EscalationRequest,
        leader: &Contact,
        claim: &SendClaim,
        now: Timestamp,
    ) -> Result<(Vec<String>, Vec<WaitingEscalation>), StepError> {
        let queue = self.store.leader_queue(&leader.email).await?;
        let mut done = vec![req.execution.clone()];
        let mut others = Vec::new();
        let mut claimed = Vec::new();
        let gathered = self
            .gather_waiting(req, queue, claim, now, &mut done, &mut others, &mut claimed)
            .await;
        if let Err(e) = gathered {
            // Given back, so a retry (this step's, or theirs) names them:
            // held by a failed attempt, they would wait out the claim's lease.
            for key in &claimed {
                self.store.release_send(key, claim).await?;
            }
            return Err(e);
        }
        Ok((done, others))
    }

    /// `claim_waiting`'s reads, each escalation's key claimed first and
    /// listed in `claimed` until it is settled or given back.
    #[allow(clippy::too_many_arguments)]
    async fn gather_waiting(
        &self,
        req: &EscalationRequest,
        queue: Option<milepost_domain::LeaderQueue>,
        claim: &SendClaim,
        now: Timestamp,
        done: &mut Vec<String>,
        others: &mut Vec<WaitingEscalation>,
        claimed: &mut Vec<SendKey>,
    ) -> Result<(), StepError> {
        for waiting in queue.map(|q| q.ranked()).unwrap_or_default() {
            if waiting.execution == req.execution {
                continue;
            }
            let their_key = keys::playbook_send(&waiting.execution, Step::Leadership, Recipient::Leader);
            if self.store.claim_send(&their_key, claim).await?.is_some() {
                done.push(waiting.execution);
                continue;
            }
            claimed.push(their_key.clone());
            let account = self.store.get_account(&waiting.account_id).await?;
            let milestone = self
                .store
                .get_milestone(&waiting.account_id, &waiting.milestone_id)
                .await?;
            let (Some(account), Some(milestone)) = (account, milestone) else {
                self.store.release_send(&their_key, claim).await?;
                claimed.pop();
                done.push(waiting.execution);
                continue;
            };
            if milestone.status().is_reached() {
                // Caught up meanwhile: its own step ends it, with no email.
                self.store.release_send(&their_key, claim).await?;
                claimed.pop();
                done.push(waiting.execution);
                continue;
            }
            let health = self.account_health(&account, now).await?;
            let task = self.store.get_task(&CsmTask::id_for(&waiting.execution)).await?;
            others.push((their_key, waiting.execution, account, milestone, health, task));
        }
        Ok(())
    }

    /// Puts a miss the thresholds keep from the CSM or leadership stage in
    /// its held-back list (once: a retried step adds nothing) and logs why.
    async fn hold_for_digest(
        &self,
        req: &EscalationRequest,
        step: Step,
        account: &Account,
        milestone: &TrackedMilestone,
        held_back: HeldBack,
        now: Timestamp,
    ) -> Result<(), StepError> {
        let owner = account.owner(milestone.owner());
        let arr_at_risk = milestone.arr_at_risk(account.arr);
        let miss = HeldMiss {
            execution: req.execution.clone(),
            account_id: account.id.clone(),
            milestone_id: milestone.milestone_id().to_owned(),
            arr_at_risk,
            held_back,
            queued_at: now,
            digest_of: None,
        };
        crate::held_back_lists::change_held_back_list(self.store.as_ref(), owner.contact, |list| {
            // The owner's name as the account has it now.
            let renamed = list.owner != *owner.contact;
            list.owner = owner.contact.clone();
            list.add(miss.clone()) || renamed
        })
        .await?;
        let t = milestone.policy().min_arr_at_risk;
        let (skipped, threshold) = match held_back {
            HeldBack::TaskAndLeadership => ("no CSM task and no leadership escalation", t.csm_task),
            HeldBack::Leadership => ("no leadership escalation", t.leadership),
        };
        let detail = format!(
            "{skipped}: {} ARR at risk is under the map's {}; in its {} owner's digest",
            email::fmt_money(arr_at_risk),
            email::fmt_money(threshold),
            owner.role.replace('_', " "),
        );
        self.log(req, step, StepLog::HeldBack, now, detail).await
    }

    /// Applies `change` to the leader's queue and writes it on the version
    /// read, again on a lost race; `change` answers whether it changed anything.
    async fn change_leader_queue(
        &self,
        leader: &milepost_domain::EmailAddress,
        change: impl Fn(&mut milepost_domain::LeaderQueue) -> bool,
    ) -> Result<(), StepError> {
        retry_on_conflict(
            || "a leader's queue".to_string(),
            || async {
                let mut queue = self
                    .store
                    .leader_queue(leader)
                    .await?
                    .unwrap_or_else(|| milepost_domain::LeaderQueue::new(leader.clone()));
                if change(&mut queue) {
                    self.store.save_leader_queue(&queue).await?;
                }
                Ok(())
            },
        )
        .await?;
        Ok(())
    }

    /// The account's other milestones missed close to `m` (within
    /// `COMBINE_WITHIN`) whose outreach email has not gone: each one's own
    /// outreach is claimed here, so the email about `m` names them all and
    /// their escalations send none of their own.
    async fn claim_close_misses(
        &self,
        account: &Account,
        m: &TrackedMilestone,
        claim: &SendClaim,
    ) -> Result<Vec<TrackedMilestone>, StepError> {
        let Some(missed_at) = m.missed_at() else {
            return Ok(Vec::new());
        };
        let mut others: Vec<TrackedMilestone> = self
            .store
            .milestones_of(&account.id)
            .await?
            .into_iter()
            .filter(|c| {
                c.milestone_id() != m.milestone_id()
                    && c.moved_by().is_customer()
                    && matches!(
                        c.status(),
                        milepost_domain::MilestoneStatus::Missed
                            | milepost_domain::MilestoneStatus::Escalating(Stage::Outreach)
                    )
                    && c.missed_at().is_some_and(|t| (t - missed_at).abs() <= COMBINE_WITHIN)
            })
            .collect();
        others.sort_by(|a, b| (a.due_at(), a.milestone_id()).cmp(&(b.due_at(), b.milestone_id())));
        let claimed =
            crate::sending::claim_named(self.store.as_ref(), others, |c| outreach_key_of(account, c), claim).await?;
        Ok(claimed)
    }

    /// Appends `what` of `step` to the account's escalation log, once.
    async fn log(
        &self,
        req: &EscalationRequest,
        step: Step,
        what: StepLog,
        at: Timestamp,
        detail: String,
    ) -> Result<(), StepError> {
        self.store
            .append_log(&EscalationLogEntry::new(req, step, &what.key_part(), at, detail))
            .await?;
        Ok(())
    }
}

/// What a playbook step works on: its request, the step, the account and
/// the milestone as the step read them, and the moment it runs.
#[derive(Clone, Copy)]
struct StepScope<'a> {
    req: &'a EscalationRequest,
    step: Step,
    account: &'a Account,
    milestone: &'a TrackedMilestone,
    now: Timestamp,
}

impl<'a> StepScope<'a> {
    /// What the step's emails are about.
    fn about(&self, config: &'a Config) -> email::About<'a> {
        email::About {
            cfg: config,
            account: self.account,
            m: self.milestone,
            now: self.now,
        }
    }
}

/// Another escalation in the leader's queue, claimed for this email: its
/// send key, execution, account, milestone, health and task.
type WaitingEscalation = (SendKey, String, Arc<Account>, TrackedMilestone, Health, Option<CsmTask>);

/// What leadership's email about one escalation says.
struct LeaderFacts<'a> {
    account: &'a Account,
    milestone: &'a TrackedMilestone,
    health: &'a Health,
    tried: &'a [EscalationLogEntry],
    task: Option<&'a CsmTask>,
}

/// What the contact policy says of an email now.
enum SlotAnswer {
    Now,
    /// Held until then.
    Later(Timestamp),
    /// It would be held past the latest it may go: not sent (logged).
    TooLate,
}

impl SlotAnswer {
    /// When a send with no latest time waits until, if it waits.
    fn deferred_to(self) -> Option<Timestamp> {
        match self {
            SlotAnswer::Now => None,
            SlotAnswer::Later(at) => Some(at),
            SlotAnswer::TooLate => unreachable!("only a send with a latest time is too late"),
        }
    }
}

/// An email about to be sent under a contact policy: to whom, as whom in the log.
struct LimitedSend<'a> {
    who: Recipient,
    kind: EmailKind,
    to: &'a Contact,
    key: &'a SendKey,
    /// The latest it may go; held past it, it is not sent.
    latest: Option<Timestamp>,
}

/// How long a step over SES's sending rate waits: one to five minutes,
/// spread by execution and step so a burst's steps do not all come back at once.
fn throttle_wait(req: &EscalationRequest, step: Step) -> chrono::Duration {
    let spread = milepost_domain::activity::IdFingerprint::of(&format!("{}:{}", req.execution, step.as_str())).0 % 240;
    chrono::Duration::seconds(60 + spread as i64)
}

/// The account's latest events, newest first: those its milestones read
/// are listed, the rest (page views and the like) only counted.
fn recent_read_by(
    milestones: &[TrackedMilestone],
    activity: &milepost_domain::AccountActivity,
) -> (Vec<milepost_domain::activity::RecentEvent>, u64) {
    let read: std::collections::HashSet<&str> = milestones.iter().filter_map(|m| m.criterion().event()).collect();
    let (listed, other): (Vec<_>, Vec<_>) = activity
        .recent
        .iter()
        .rev()
        .partition(|e| read.contains(e.event.as_str()));
    (listed.into_iter().cloned().collect(), other.len() as u64)
}

fn send_key(req: &EscalationRequest, step: Step, recipient: Recipient) -> SendKey {
    keys::playbook_send(&req.execution, step, recipient)
}

/// The send key of the outreach email of `m`'s escalation (its execution
/// name derives from account, milestone and due time, as the sweep names it).
fn outreach_key_of(account: &Account, m: &TrackedMilestone) -> SendKey {
    let execution = milepost_domain::execution_name(&account.id, m.milestone_id(), m.due_at());
    keys::playbook_send(&execution, Step::OutreachEmail, Recipient::Customer)
}

/// The send key of the follow-up email of `m`'s escalation.
fn follow_up_key_of(account: &Account, m: &TrackedMilestone) -> SendKey {
    let execution = milepost_domain::execution_name(&account.id, m.milestone_id(), m.due_at());
    keys::playbook_send(&execution, Step::FollowUpEmail, Recipient::Customer)
}

/// The span of one playbook step: ids only.
fn step_span(req: &EscalationRequest, step: Step) -> tracing::Span {
    tracing::info_span!(
        "playbook_step",
        execution = %req.execution,
        account_id = %req.account_id,
        milestone_id = %req.milestone_id,
        step = step.as_str()
    )
}
