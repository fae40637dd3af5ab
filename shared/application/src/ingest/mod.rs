//! Ingestion: product events in, applied to every open milestone they advance.
//!
//! Delivery is at least once, so applying is idempotent end to end: progress
//! is a set keyed by event id (see `milepost_domain::criterion`), and the
//! store saves what `AccountState::apply_all` changed for one account's events
//! together with the dedupe records of the events a criterion reads in one
//! conditional write (one transaction on DynamoDB), never a record without
//! its changes. The activity is a fold over the set of events seen, so the
//! events no criterion reads need no record. A reached milestone is announced after its
//! change is stored; if that publish fails, the redelivered event finds the
//! announcement still owed and makes it.

pub mod wire;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chrono::Duration;
use milepost_domain::{
    limits, Account, AccountId, Actor, Announcements, CloseReason, DomainEvent, EscalationLogEntry, FieldError,
    IllegalChange, MilestoneMap, MilestoneStatus, ProductEvent, Timestamp, TrackedMilestone,
};
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use self::wire::{GroupCall, Incoming};
use crate::config::Config;
use crate::ports::{fresh_claimant, Clock, EventPublisher, EventsApplied, IngestStore, StoreError, WorkflowStarter};
use crate::tasks::close_for_milestone;
use crate::writes::{retry_on_conflict, update_milestone, Edit, MAX_WRITE_ATTEMPTS};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("store")]
    Store(#[source] StoreError),
    /// Closing the milestone's task failed.
    #[error("the milestone's task")]
    Task(#[source] crate::tasks::TaskError),
    /// No such account (`field` "account_id") or milestone ("milestone_id").
    #[error("{message}")]
    Unknown { field: &'static str, message: String },
    /// A confirmation for a milestone that product events reach.
    #[error("{0}")]
    NotManual(String),
    /// The request is wrong in `field` (a confirmation dated before the contract).
    #[error("{}: {}", .0.field, .0.message)]
    Refused(FieldError),
    #[error("publish")]
    Publish(#[from] crate::ports::PublishError),
    #[error("stopping the escalation")]
    Workflow(#[from] crate::ports::WorkflowError),
    /// An account's worker ended without an answer (it panicked).
    #[error("an account's events failed")]
    Worker(#[from] tokio::task::JoinError),
    #[error("no milestone map applies to segment {segment} ({tenure})")]
    NoMap { segment: String, tenure: String },
    /// The store refused the change for good (see `StoreError::Invalid`):
    /// the input is rejected, never retried.
    #[error("{0}")]
    Unstorable(String),
    /// The account is unknown and already has `MAX_PARKED_PER_ACCOUNT` events waiting.
    #[error("{0}")]
    ParkingFull(FieldError),
    /// Applying the event would break a lifecycle rule: a bug in Milepost.
    /// The event is kept for replay; the sender is not asked to retry.
    #[error(transparent)]
    Illegal(IllegalChange),
}

impl From<crate::tasks::TaskError> for IngestError {
    fn from(e: crate::tasks::TaskError) -> Self {
        match e {
            crate::tasks::TaskError::Store(e) => e.into(),
            crate::tasks::TaskError::Publish(e) => IngestError::Publish(e),
            other => IngestError::Task(other),
        }
    }
}

impl From<StoreError> for IngestError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(why) => IngestError::Unstorable(why),
            StoreError::Illegal(change) => IngestError::Illegal(change),
            other => IngestError::Store(other),
        }
    }
}

/// Writes tried to record a published announcement (see `publish_claimed`).
const SETTLE_ATTEMPTS: usize = 4;

/// How far ahead of its arrival a group call's own date is believed (a
/// little clock drift keeps the sender's order); past it, the call counts as
/// of its arrival.
pub const TRAITS_CLOCK_SKEW: Duration = Duration::minutes(5);

/// What became of one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Applied {
    Applied,
    Duplicate,
    /// The account is not known yet: kept, applied when it appears.
    Parked,
    /// Applying it hit a lifecycle rule (a bug): kept with the parked events
    /// for `milepost parked --replay`, logged and counted.
    Held,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestReport {
    /// Items Milepost has and the sender need not send again: applied,
    /// parked for an unknown account, or held after an internal error.
    pub accepted: usize,
    pub duplicates: usize,
    /// The first `limits::MAX_REJECTIONS_LISTED` rejected items, by index.
    pub rejected: Vec<Rejection>,
    /// How many items were rejected in all (more than are listed, past the cap).
    #[serde(default)]
    pub rejected_count: usize,
    /// Events rejected because their unknown account had too many waiting
    /// (a metric for operators, not part of the answer).
    #[serde(skip)]
    pub parked_cap_reached: usize,
    /// Events held after a lifecycle rule refused them (a metric for
    /// operators, who replay them once the bug is fixed).
    #[serde(skip)]
    pub held: usize,
}

impl IngestReport {
    /// The operators' metrics of this request that are not zero, as one
    /// embedded-metric-format record, or `None` when all are zero.
    pub fn emf(&self, now: Timestamp) -> Option<serde_json::Value> {
        let metrics: Vec<(&str, &str, serde_json::Value)> =
            [("ParkedCapReached", self.parked_cap_reached), ("EventsHeld", self.held)]
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .map(|(name, n)| (name, "Count", n.into()))
                .collect();
        (!metrics.is_empty()).then(|| crate::telemetry::emf_record(now.timestamp_millis(), &metrics))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub index: usize,
    pub error: String,
}

/// What confirming a manual milestone did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Confirmed {
    /// Confirmed now: `achieved` (on time) or `recovered` (after a miss).
    Now { status: MilestoneStatus },
    /// It had been reached already, at `at`: nothing changed.
    Already { status: MilestoneStatus, at: Timestamp },
}

/// What onboarding an account did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Onboarded {
    pub milestones_created: usize,
    pub parked_applied: usize,
}

/// The ingestion use case over the ports it needs: the store, the bus (to
/// announce reached milestones) and the workflows (to stop an escalation the
/// customer caught up with). It sends no email.
#[derive(Clone)]
pub struct Ingestion {
    pub store: Arc<dyn IngestStore>,
    pub events: Arc<dyn EventPublisher>,
    pub workflows: Arc<dyn WorkflowStarter>,
    pub clock: Arc<dyn Clock>,
    pub config: Config,
}

/// What became of each item of one account, and the error that stopped the
/// rest (a retry of the request finishes them).
#[derive(Default)]
struct AccountOutcome {
    outcomes: Vec<(usize, Result<Applied, FieldError>)>,
    parked_cap_reached: usize,
    error: Option<IngestError>,
}

impl AccountOutcome {
    /// Records what became of item `index`; `false` when it is an error that stops the rest.
    fn record(&mut self, index: usize, outcome: Result<Result<Applied, FieldError>, IngestError>) -> bool {
        match outcome {
            Ok(result) => self.outcomes.push((index, result)),
            Err(IngestError::ParkingFull(why)) => {
                self.parked_cap_reached += 1;
                self.outcomes.push((index, Err(why)));
            }
            Err(IngestError::Unstorable(why)) => {
                // Checked at the edge, so this is a limit the checks missed: say so loudly.
                tracing::error!(index, error = %why, "the store refused an item that passed validation");
                self.outcomes.push((
                    index,
                    Err(FieldError::new("(event)", format!("cannot be stored: {why}"))),
                ));
            }
            Err(IngestError::Illegal(change)) => {
                // A group call writes no lifecycle: this cannot happen, and must not be a retry.
                tracing::error!(index, error = %change, "an item broke a lifecycle rule");
                self.outcomes.push((
                    index,
                    Err(FieldError::new(
                        "(item)",
                        "could not be applied (an internal error, logged)",
                    )),
                ));
            }
            Err(e) => {
                self.error = Some(e);
                return false;
            }
        }
        true
    }
}

impl Ingestion {
    /// Applies a parsed batch: valid events are applied even when others are
    /// rejected, accounts side by side. A rejection is final for that item; an
    /// error (`Err`) means something a retry can fix (throttling, an outage), and
    /// the sender retries the whole request: what was applied is then a duplicate.
    pub async fn ingest(&self, parsed: Vec<Result<Incoming, FieldError>>) -> Result<IngestReport, IngestError> {
        let now = self.clock.now();
        let mut rejected = Vec::new();
        let mut accounts: Vec<(AccountId, Vec<(usize, Incoming)>)> = Vec::new();
        let mut position: std::collections::HashMap<AccountId, usize> = std::collections::HashMap::new();
        for (index, item) in parsed.into_iter().enumerate() {
            match item.and_then(|incoming| check_incoming(&self.config, &incoming, now).map(|()| incoming)) {
                Err(e) => rejected.push(Rejection {
                    index,
                    error: e.to_string(),
                }),
                Ok(incoming) => {
                    let account = incoming.account_id().clone();
                    let slot = *position.entry(account.clone()).or_insert_with(|| {
                        accounts.push((account, Vec::new()));
                        accounts.len() - 1
                    });
                    accounts[slot].1.push((index, incoming));
                }
            }
        }

        let mut report = IngestReport::default();
        let mut failure = None;
        let at_once = self.config.accounts_at_once.max(1);
        if accounts.len() == 1 || at_once == 1 {
            // One account, or a store in this process, where tasks only add cost.
            for (account, items) in accounts {
                let done = self.apply_in_order(items).instrument(account_span(&account)).await;
                merge_outcome(done, &mut report, &mut rejected, &mut failure);
            }
            return finish(report, rejected, failure);
        }
        // One copy of the use case per request, shared by the tasks.
        let shared = Arc::new(self.clone());
        let limit = Arc::new(tokio::sync::Semaphore::new(at_once));
        let mut running = tokio::task::JoinSet::new();
        for (account, items) in accounts {
            let (ingestion, limit) = (shared.clone(), limit.clone());
            running.spawn(
                async move {
                    let _permit = limit.acquire_owned().await.expect("the semaphore is never closed");
                    ingestion.apply_in_order(items).await
                }
                .instrument(account_span(&account)),
            );
        }
        while let Some(done) = running.join_next().await {
            let done = done?;
            merge_outcome(done, &mut report, &mut rejected, &mut failure);
        }
        finish(report, rejected, failure)
    }

    /// One account's items, in the order they came (they write the same
    /// items). Consecutive events are applied together, in one round of the
    /// store; a group call between them is applied in its place.
    async fn apply_in_order(&self, items: Vec<(usize, Incoming)>) -> AccountOutcome {
        let mut done = AccountOutcome::default();
        let mut run: Vec<(usize, ProductEvent)> = Vec::new();
        let mut items = items.into_iter().peekable();
        while let Some((index, item)) = items.next() {
            let go_on = match item {
                Incoming::Event(event) => {
                    run.push((index, event));
                    if matches!(items.peek(), Some((_, Incoming::Event(_)))) {
                        continue;
                    }
                    self.apply_run(std::mem::take(&mut run), &mut done).await
                }
                Incoming::Account(call) => {
                    let outcome = self.apply_group_call(&call).await;
                    done.record(index, outcome)
                }
            };
            if !go_on {
                break;
            }
        }
        done
    }

    /// Applies a run of one account's events together. When that cannot be
    /// (the account is unknown, or one event is refused or too large to
    /// store), they go one at a time, so each gets its own outcome. Returns
    /// `false` when an error stopped the rest.
    async fn apply_run(&self, run: Vec<(usize, ProductEvent)>, done: &mut AccountOutcome) -> bool {
        let (indexes, events): (Vec<usize>, Vec<ProductEvent>) = run.into_iter().unzip();
        let mut unknown_account = false;
        if events.len() > 1 {
            match self.apply_events(&events).await {
                Ok(Some(duplicate)) => {
                    for (index, dup) in indexes.into_iter().zip(duplicate) {
                        done.outcomes
                            .push((index, Ok(if dup { Applied::Duplicate } else { Applied::Applied })));
                    }
                    return true;
                }
                Ok(None) => unknown_account = true,
                // One of them is at fault: found below, the others applied.
                Err(IngestError::Illegal(_) | IngestError::Unstorable(_)) => {}
                Err(e) => {
                    done.error = Some(e);
                    return false;
                }
            }
        }
        for (index, event) in indexes.into_iter().zip(&events) {
            let outcome = if unknown_account {
                self.park_for_unknown_account(event).await
            } else {
                self.apply_event(event).await
            };
            let outcome = match outcome {
                Err(IngestError::Illegal(change)) => self.hold(event, &change).await,
                other => other,
            };
            if !done.record(index, outcome.map(Ok)) {
                return false;
            }
        }
        true
    }

    /// Applies one account's events in one round of the store (retried on a
    /// lost race), then announces what they reached. `None` when the account
    /// is not known: nothing was written. Otherwise, per event, whether it
    /// was a duplicate.
    async fn apply_events(&self, events: &[ProductEvent]) -> Result<Option<Vec<bool>>, IngestError> {
        let now = self.clock.now();
        // From receipt, never from the events' own time: a far-future date must not make one immortal.
        let remember_until = now + Duration::days(self.config.dedupe_ttl_days);
        let account = &events[0].account_id;
        // One claimant for this delivery's claims, across its retries.
        let claimant = fresh_claimant();
        let applied = retry_on_conflict(
            || format!("{} events of account {account}", events.len()),
            || {
                self.store
                    .apply_product_events(account, events, now, remember_until, &claimant)
            },
        )
        .await;
        let applied = match applied {
            Ok(applied) => applied,
            Err(e) => {
                // The write may have gone through (its answer lost) with this
                // delivery's claims: give them back, or the sender's
                // redelivery would find them live, another delivery's, and
                // leave the announcements to whatever touches the account
                // after the lease.
                self.release_claims(account, &claimant).await;
                return Err(e.into());
            }
        };
        match applied {
            EventsApplied::UnknownAccount => Ok(None),
            EventsApplied::Known {
                account,
                duplicate,
                announcements,
            } => {
                self.announce(&account, announcements, &claimant).await?;
                Ok(Some(duplicate))
            }
        }
    }

    /// Ends the announcement claims `claimant` holds on `account`'s
    /// milestones, as far as the store lets it (a failure is logged: the
    /// claim then lapses after its lease).
    async fn release_claims(&self, account: &AccountId, claimant: &str) {
        let held = match self.store.milestones_of(account).await {
            Ok(milestones) => milestones,
            Err(e) => {
                tracing::warn!(error = %crate::ErrorChain(&e), "a failed delivery's announcement claims could not be read; they lapse after their lease");
                return;
            }
        };
        for m in held
            .into_iter()
            .filter(|m| m.announcing().is_some_and(|c| c.is_held_by(claimant)))
        {
            let milestone_id = m.milestone_id().to_owned();
            let released = update_milestone(self.store.as_ref(), m, |m| {
                if !m.announcing().is_some_and(|c| c.is_held_by(claimant)) {
                    return Ok(Edit::Unchanged);
                }
                m.end_announcement_claim();
                Ok(Edit::Changed)
            })
            .await;
            if let Err(e) = released {
                tracing::warn!(%milestone_id, error = %crate::ErrorChain(&e), "a failed delivery's announcement claim was not given back; it lapses after its lease");
            }
        }
    }

    /// Keeps an event that a lifecycle rule refused (a bug, never the
    /// sender's fault) with the parked events, so `milepost parked --replay`
    /// applies it once the bug is fixed; the sender is not asked to retry it.
    async fn hold(&self, event: &ProductEvent, change: &IllegalChange) -> Result<Applied, IngestError> {
        tracing::error!(
            account_id = %change.account_id,
            milestone_id = %change.milestone_id,
            event_id = %event.id,
            error = %change.transition,
            "an event broke a lifecycle rule; kept for replay"
        );
        self.store.park(event).await?;
        Ok(Applied::Held)
    }

    /// Creates or updates the account a Segment `group` call describes. A call
    /// that cannot make a valid account is rejected (`Ok(Err(..))`), naming the
    /// trait. Calls are applied last-writer-wins by their `timestamp`: one older
    /// than the traits stored (a delivery out of order) changes nothing, and the
    /// write is conditional on what was read, so a newer call racing it wins.
    /// A call dated ahead of its arrival counts as of its arrival (past
    /// `TRAITS_CLOCK_SKEW`): a sender's clock running a day fast must not
    /// make every honest update of the next day look older than it.
    async fn apply_group_call(&self, call: &GroupCall) -> Result<Result<Applied, FieldError>, IngestError> {
        let store = &self.store;
        let now = self.clock.now();
        let called_at = if call.timestamp > now + TRAITS_CLOCK_SKEW {
            now
        } else {
            call.timestamp
        };
        if store.seen(&call.account_id, &call.message_id, now).await? {
            return Ok(Ok(Applied::Duplicate));
        }
        let mut settled = false;
        let mut applied = false;
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let existing = store.get_account(&call.account_id).await?;
            if existing
                .as_ref()
                .and_then(|a| a.traits_at)
                .is_some_and(|newer| newer > called_at)
            {
                settled = true; // newer traits are stored: this older call is superseded
                break;
            }
            let mut account =
                match call
                    .traits
                    .apply(&call.account_id, existing.as_deref(), &self.config.cs_leader_email)
                {
                    Ok(a) => a,
                    Err(e) => return Ok(Err(e)),
                };
            account.traits_at = Some(called_at);
            match self.upsert_account_if(&account, Some(existing.as_deref())).await {
                Ok(Some(_)) => {
                    settled = true;
                    applied = true;
                    break;
                }
                Ok(None) => continue, // changed since it was read: read again
                Err(IngestError::NoMap { segment, tenure }) => {
                    return Ok(Err(FieldError::new(
                        "traits.segment",
                        format!("no milestone map applies to {segment} ({tenure}) accounts: load one first"),
                    )))
                }
                Err(e) => return Err(e),
            }
        }
        if !settled {
            return Err(StoreError::Contended(format!("account {}", call.account_id)).into());
        }
        // The plan goes with the call's traits: kept when they were applied,
        // left when a newer call superseded them; a plan set after the call
        // was made (`milepost outcomes`, a later call racing this one)
        // stands. Kept as of the call's time, and before the call is
        // remembered, so a retry after a failure here keeps it then.
        if let (true, Some(outcomes)) = (applied, &call.traits.success_plan) {
            let by = format!("group call {}", call.message_id);
            // Boxed: its future (plan, account copy, checkpoints) would
            // otherwise be carried inline by every group call's.
            let set = Box::pin(crate::success_plans::set_plan_as_of(
                self.store.as_ref(),
                &call.account_id,
                outcomes.clone(),
                &by,
                called_at,
            ));
            match set.await {
                Ok(_) => {}
                Err(crate::success_plans::PlanError::Store(e)) => return Err(e.into()),
                // Checked when the call was read; an account gone since is the next call's to make.
                Err(e) => return Ok(Err(FieldError::new("traits.success_plan", e.to_string()))),
            }
        }
        let expires = now + Duration::days(self.config.dedupe_ttl_days);
        store.remember(&call.account_id, &call.message_id, expires).await?;
        Ok(Ok(Applied::Applied))
    }

    /// Applies one event to its account's open milestones (or parks it until the
    /// account is known), then announces what it reached.
    pub async fn apply_event(&self, event: &ProductEvent) -> Result<Applied, IngestError> {
        match self.apply_to_known_account(event).await? {
            Some(applied) => Ok(applied),
            None => self.park_for_unknown_account(event).await,
        }
    }

    /// `None` when the account is not known: nothing was written.
    async fn apply_to_known_account(&self, event: &ProductEvent) -> Result<Option<Applied>, IngestError> {
        let applied = self.apply_events(std::slice::from_ref(event)).await?;
        Ok(applied.map(|duplicate| {
            if duplicate.first().copied().unwrap_or(false) {
                Applied::Duplicate
            } else {
                Applied::Applied
            }
        }))
    }

    /// Keeps an event whose account was not found. The account may have been
    /// created since: its creator writes it and then reads the parked events,
    /// this parks and then reads the account, so one of the two always sees the
    /// other. If the account exists now, the event is applied here and unparked
    /// (applying twice changes nothing).
    pub async fn park_for_unknown_account(&self, event: &ProductEvent) -> Result<Applied, IngestError> {
        let store = &self.store;
        let limit = limits::MAX_PARKED_PER_ACCOUNT;
        if store.parked_count(&event.account_id, limit).await? >= limit {
            return Err(IngestError::ParkingFull(FieldError::new(
                "account_id",
                format!(
                    "is not a known account and already has {limit} events waiting for it: send its group call first"
                ),
            )));
        }
        store.park(event).await?;
        if store.get_account(&event.account_id).await?.is_none() {
            return Ok(Applied::Parked);
        }
        let Some(applied) = self.apply_to_known_account(event).await? else {
            return Ok(Applied::Parked);
        };
        store.unpark(&event.account_id, &event.id).await?;
        Ok(applied)
    }

    async fn announce(
        &self,
        account: &Account,
        announcements: Announcements,
        claimant: &str,
    ) -> Result<(), IngestError> {
        // Every one is tried, whatever failed before it: a claim made with the
        // events' write and left unpublished would hold off the sender's retry
        // (another delivery's live claim) until its lease ran out.
        let mut first_error = None;
        for m in announcements.claimed {
            if let Err(e) = self.publish_claimed(account, m, CloseReason::CustomerRecovered).await {
                first_error.get_or_insert(e);
            }
        }
        for m in announcements.unclaimed {
            if let Err(e) = self
                .announce_reached(account, m, CloseReason::CustomerRecovered, claimant)
                .await
            {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Publishes the reached event (and stops a running escalation) exactly once
    /// in the common case: the publisher first claims the announcement with a
    /// conditional write, so of concurrent deliveries only one publishes; a failed
    /// publish releases the claim and the next delivery tries again.
    async fn announce_reached(
        &self,
        account: &Account,
        m: TrackedMilestone,
        reason: CloseReason,
        claimant: &str,
    ) -> Result<(), IngestError> {
        if !m.needs_reached_announcement() {
            return Ok(());
        }
        let now = self.clock.now();
        let claimed = AtomicBool::new(false);
        let Some(m) = update_milestone(self.store.as_ref(), m, |m| {
            let won = m.claim_announcement(now, claimant);
            claimed.store(won, Ordering::SeqCst);
            Ok(if won { Edit::Changed } else { Edit::Unchanged })
        })
        .await?
        else {
            return Ok(());
        };
        if !claimed.load(Ordering::SeqCst) {
            if m.needs_reached_announcement() {
                tracing::debug!(account_id = %account.id, milestone_id = %m.milestone_id(), since = ?m.announcing().map(|c| c.since), "a reached milestone is being announced by another delivery");
            }
            return Ok(()); // announced already, or being announced by a concurrent delivery
        }
        self.publish_claimed(account, m, reason).await
    }

    /// Publishes a milestone whose announcement this caller claimed, then records
    /// it as announced, or gives the claim back if the publish failed.
    async fn publish_claimed(
        &self,
        account: &Account,
        m: TrackedMilestone,
        reason: CloseReason,
    ) -> Result<(), IngestError> {
        let published = self.publish_reached(account, &m, reason).await;
        let outcome = published.is_ok();
        if let Err(e) = &published {
            // Ids only; the claim is given back for the next delivery.
            tracing::warn!(account_id = %account.id, milestone_id = %m.milestone_id(), error = %crate::ErrorChain(e), "announcing a reached milestone failed; the next delivery announces it");
        }
        let (account_id, milestone_id) = (account.id.clone(), m.milestone_id().to_owned());
        let settle = |m: &mut TrackedMilestone| {
            if outcome {
                m.mark_reached_announced();
            }
            m.end_announcement_claim();
            Ok(Edit::Changed)
        };
        let mut settled = update_milestone(self.store.as_ref(), m, settle).await;
        // Published but not recorded, the claim would lapse and a later
        // touch announce it again: a passing fault is retried on what is
        // stored now (the write may have landed with its answer lost). An
        // unpublished claim is left to lapse instead: by then another
        // delivery may hold the claim, and only a delay is at stake.
        for _ in 1..SETTLE_ATTEMPTS {
            if !(outcome && matches!(settled, Err(StoreError::Backend(_)))) {
                break;
            }
            settled = match self.store.get_milestone(&account_id, &milestone_id).await {
                Ok(Some(stored)) => update_milestone(self.store.as_ref(), stored, settle).await,
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            };
        }
        settled.inspect_err(|e| {
            tracing::warn!(%account_id, %milestone_id, error = %crate::ErrorChain(e), "a reached milestone's announcement claim was not settled; it lapses after its lease");
        })?;
        published
    }

    /// The reached event; for a milestone that had been missed, after its
    /// escalation is stopped and its CSM task closed (`reason`).
    async fn publish_reached(
        &self,
        account: &Account,
        m: &TrackedMilestone,
        reason: CloseReason,
    ) -> Result<(), IngestError> {
        let from = m.reached_from().unwrap_or(MilestoneStatus::Pending);
        let at = m.reached_at().expect("a reached milestone has its time");
        let event = if from == MilestoneStatus::Pending {
            DomainEvent::MilestoneAchieved {
                account_id: account.id.clone(),
                milestone_id: m.milestone_id().to_owned(),
                segment: account.segment,
                phase: m.phase(),
                due_at: m.due_at(),
                achieved_at: at,
            }
        } else {
            if let (Some(execution), true) = (m.execution(), m.escalation_started()) {
                if from != MilestoneStatus::Lapsed {
                    self.workflows.stop(execution, from.stage()).await?;
                }
                // Nothing is left for its owner to do.
                let now = self.clock.now();
                close_for_milestone(self.store.as_ref(), self.events.as_ref(), execution, reason, now).await?;
            }
            DomainEvent::MilestoneRecovered {
                account_id: account.id.clone(),
                milestone_id: m.milestone_id().to_owned(),
                due_at: m.due_at(),
                recovered_at: at,
                achieved_at: at,
                group: m.group(),
                stage_reached: from.stage(),
                recovered_after: (m.group() != Some(milepost_domain::Group::Control))
                    .then(|| milepost_domain::RecoveredAfter::of(from)),
            }
        };
        // A confirmation is logged and announced with the achievement it made:
        // the log entry's key is the confirmation's, so a retry writes it once.
        let mut events = Vec::with_capacity(3);
        if let Some(c) = m.confirmation() {
            let detail = match &c.note {
                Some(note) => format!("{} confirmed by {}: {note}", m.name(), c.by.display()),
                None => format!("{} confirmed by {}", m.name(), c.by.display()),
            };
            let entry = EscalationLogEntry::outside_steps(
                &account.id,
                m.milestone_id(),
                m.execution(),
                "confirmed",
                c.recorded_at,
                &c.by,
                detail,
            );
            self.store.append_log(&entry).await?;
            events.push(DomainEvent::ManualMilestoneConfirmed {
                account_id: account.id.clone(),
                milestone_id: m.milestone_id().to_owned(),
                confirmed_at: c.at,
            });
        }
        events.push(event);
        // Under the reached event's claim: one opportunity, announced once.
        if let Some(o) = m.opportunity() {
            events.push(DomainEvent::ExpansionReady {
                account_id: account.id.clone(),
                milestone_id: m.milestone_id().to_owned(),
                segment: account.segment,
                owner_role: o.for_role.clone(),
                adds: o.adds,
                unit: o.unit.clone(),
                unit_price: o.unit_price,
                pipeline_arr: o.pipeline_arr(),
                play: m.expansion().map(|e| e.play.clone()).unwrap_or_default(),
                due_at: m.due_at(),
                ready_at: o.opened_at,
            });
        }
        self.events.publish(&events).await.map_err(IngestError::from)
    }

    /// Someone (`by`) confirms a manual milestone, reached at `at`: through a
    /// signed link, the CLI or the API. Before its due date it is achieved;
    /// after a miss, recovered, which stops its escalation and closes its
    /// task. The confirmation is written with the achievement, then goes on
    /// the account's log (with the note) and on the bus with the reached
    /// event; a retry after a failure between the two completes them. A
    /// confirmation dated before the contract started is refused; a second
    /// confirmation changes nothing.
    pub async fn confirm_manual(
        &self,
        account_id: &AccountId,
        milestone_id: &str,
        by: &Actor,
        note: Option<&str>,
        at: Timestamp,
    ) -> Result<Confirmed, IngestError> {
        let store = &self.store;
        let Some(account) = store.get_account(account_id).await? else {
            return Err(IngestError::Unknown {
                field: "account_id",
                message: format!("no account {account_id}"),
            });
        };
        let Some(milestone) = store.get_milestone(account_id, milestone_id).await? else {
            return Err(IngestError::Unknown {
                field: "milestone_id",
                message: format!("account {account_id} does not track milestone {milestone_id}"),
            });
        };
        if !matches!(milestone.criterion(), milepost_domain::Criterion::Manual) {
            return Err(IngestError::NotManual(format!(
                "milestone {milestone_id} is not manual: it is reached by product events"
            )));
        }
        if let Some(reached) = milestone.reached_at().filter(|_| milestone.status().is_reached()) {
            let status = milestone.status();
            // Completes what a failure after the achievement left owed: its log entry and events.
            self.announce_reached(&account, milestone, CloseReason::MilestoneConfirmed, &fresh_claimant())
                .await?;
            return Ok(Confirmed::Already { status, at: reached });
        }
        if at < milestone.starts_at() {
            return Err(IngestError::Refused(FieldError::new(
                "at",
                format!(
                    "is before the contract started ({}): send when it was reached",
                    milestone.starts_at().date_naive()
                ),
            )));
        }
        let confirmation = milepost_domain::tracked::Confirmation {
            by: by.clone(),
            note: note.map(str::to_string),
            at,
            recorded_at: self.clock.now(),
        };
        let updated = update_milestone(store.as_ref(), milestone, |m| {
            let edit = m.mark_manual(&confirmation).map(Edit::from);
            // A champion's request confirmed opens its opportunity with the reach.
            m.open_opportunity(&account);
            edit
        })
        .await?;
        let Some(m) = updated else {
            return Err(IngestError::Unknown {
                field: "milestone_id",
                message: format!("milestone {milestone_id} is gone"),
            });
        };
        let status = m.status();
        self.announce_reached(&account, m, CloseReason::MilestoneConfirmed, &fresh_claimant())
            .await?;
        Ok(Confirmed::Now { status })
    }

    /// Creates or updates an account, starts tracking its map's milestones (once),
    /// and applies any events that arrived before the account was known.
    pub async fn upsert_account(&self, account: &Account) -> Result<Onboarded, IngestError> {
        Ok(self
            .upsert_account_if(account, None)
            .await?
            .expect("an unconditional write always happens"))
    }

    /// `upsert_account`, but when `expected` is given, only if the stored account
    /// is still that one (`Some(None)`: that none is stored); `Ok(None)` when it
    /// changed in between and nothing was written.
    async fn upsert_account_if(
        &self,
        account: &Account,
        expected: Option<Option<&Account>>,
    ) -> Result<Option<Onboarded>, IngestError> {
        let store = &self.store;
        // No map, no account: better refused than stored with nothing to track.
        let maps = store.maps_for(account.segment, account.tenure()).await?;
        let map = MilestoneMap::select(&maps, account.segment, account.tenure()).ok_or_else(|| IngestError::NoMap {
            segment: account.segment.to_string(),
            tenure: account.tenure().as_str().to_string(),
        })?;
        match expected {
            None => store.put_account(account).await?,
            Some(expected) => {
                if !store.replace_account(account, expected).await? {
                    return Ok(None);
                }
            }
        }
        let mut report = Onboarded::default();
        for def in &map.milestones {
            if matches!(def.criterion, milepost_domain::Criterion::AgreedOutcome) {
                continue; // its checkpoints, below
            }
            if store
                .create_milestone(&TrackedMilestone::new(account, map, def))
                .await?
            {
                report.milestones_created += 1;
            }
        }
        report.milestones_created += Box::pin(crate::checkpoints::keep_in_step(store.as_ref(), account, map))
            .await?
            .created;
        report.parked_applied = self.apply_parked(&account.id).await?;
        Ok(Some(report))
    }

    /// Applies, oldest first, the events parked for `account` and unparks them;
    /// returns how many changed anything (the rest were duplicates). Onboarding
    /// runs it; operators run it with `milepost parked --replay`, for events
    /// parked while their account was created some other way, or held after
    /// an internal error. Idempotent.
    pub async fn apply_parked(&self, account: &AccountId) -> Result<usize, IngestError> {
        let store = &self.store;
        let mut parked = store.parked_for(account).await?;
        parked.sort_by(|a, b| (a.timestamp, &a.id).cmp(&(b.timestamp, &b.id)));
        let mut applied = 0;
        for event in parked {
            match self.apply_event(&event).await {
                Ok(Applied::Applied) => applied += 1,
                Ok(_) => {}
                // Still refused: it stays parked for the next replay.
                Err(IngestError::Illegal(change)) => {
                    self.hold(&event, &change).await?;
                    continue;
                }
                Err(e) => return Err(e),
            }
            store.unpark(account, &event.id).await?;
        }
        Ok(applied)
    }
}

fn account_span(account: &AccountId) -> tracing::Span {
    tracing::info_span!("ingest_account", account_id = %account)
}

fn merge_outcome(
    done: AccountOutcome,
    report: &mut IngestReport,
    rejected: &mut Vec<Rejection>,
    failure: &mut Option<IngestError>,
) {
    report.parked_cap_reached += done.parked_cap_reached;
    for (index, outcome) in done.outcomes {
        match outcome {
            Err(e) => rejected.push(Rejection {
                index,
                error: e.to_string(),
            }),
            Ok(Applied::Duplicate) => report.duplicates += 1,
            Ok(Applied::Applied | Applied::Parked) => report.accepted += 1,
            Ok(Applied::Held) => {
                report.accepted += 1;
                report.held += 1;
            }
        }
    }
    if failure.is_none() {
        *failure = done.error;
    }
}

/// The report, its rejections in request order and capped; or the error a retry fixes.
fn finish(
    mut report: IngestReport,
    mut rejected: Vec<Rejection>,
    failure: Option<IngestError>,
) -> Result<IngestReport, IngestError> {
    if let Some(e) = failure {
        return Err(e);
    }
    rejected.sort_by_key(|r| r.index);
    report.rejected_count = rejected.len();
    rejected.truncate(limits::MAX_REJECTIONS_LISTED);
    report.rejected = rejected;
    Ok(report)
}

/// The checks that need the clock and the configuration: event times not too
/// far ahead, contract dates in the plausible range.
fn check_incoming(config: &Config, incoming: &Incoming, now: Timestamp) -> Result<(), FieldError> {
    let limits = &config.time_limits;
    match incoming {
        Incoming::Event(event) => limits.check_event_time(event.timestamp, now),
        Incoming::Account(call) => {
            limits.check_event_time(call.timestamp, now)?;
            let today = now.date_naive();
            if let Some(d) = call.traits.contract_start {
                limits.check_contract_date("traits.contract_start", d, today)?;
            }
            if let Some(d) = call.traits.renewal_date {
                limits.check_contract_date("traits.renewal_date", d, today)?;
            }
            if let Some(r) = &call.traits.renewal {
                limits.check_contract_date("traits.decision_date", r.decision_date, today)?;
            }
            Ok(())
        }
    }
}
