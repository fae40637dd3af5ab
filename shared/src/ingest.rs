//! Ingestion: product events in, applied to every open milestone they advance.
//!
//! Delivery is at least once, so applying is idempotent end to end: progress
//! is a set keyed by event id (see `domain::criterion`), milestone writes are
//! conditional on the version read, and an event's dedupe record is written
//! with its changes (in one transaction on DynamoDB), never before them. A
//! reached milestone is announced after its change is stored; if that publish
//! fails, the redelivered event finds the announcement still owed and makes it.

use std::sync::atomic::{AtomicBool, Ordering};

use chrono::Duration;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::tracked::Advance;
use crate::domain::{
    Account, AccountId, DomainEvent, MilestoneMap, MilestoneStatus, ProductEvent, Timestamp, TrackedMilestone,
};
use crate::ports::{modify_with_retry, Announcements, EventApplied, StoreError};
use crate::segment::GroupCall;
use crate::Services;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("store: {0}")]
    Store(String),
    #[error("{0}")]
    Domain(String),
    #[error("publish: {0}")]
    Publish(String),
    #[error("no milestone map applies to segment {segment} ({tenure})")]
    NoMap { segment: String, tenure: String },
    /// The store refused the change for good (see `StoreError::Invalid`):
    /// the input is rejected, never retried.
    #[error("{0}")]
    Unstorable(String),
    /// The account is unknown and already has `MAX_PARKED_PER_ACCOUNT` events waiting.
    #[error("{0}")]
    ParkingFull(FieldError),
}

impl From<StoreError> for IngestError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(why) => IngestError::Unstorable(why),
            other => IngestError::Store(other.to_string()),
        }
    }
}

/// What became of one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Applied {
    Applied,
    Duplicate,
    /// The account is not known yet: kept, applied when it appears.
    Parked,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestReport {
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
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub index: usize,
    pub error: String,
}

/// A request body that is not usable at all.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("body is not valid JSON: {0}")]
    Malformed(String),
    #[error("body must be an event object or an array of events")]
    NotEvents,
}

/// One event that failed validation, naming the field at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        FieldError {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

fn field_error(field: &str, message: impl Into<String>) -> FieldError {
    FieldError::new(field, message)
}

/// What a request carries: product events, and (from Segment `group` calls)
/// accounts to create or update.
#[derive(Clone, Debug, PartialEq)]
pub enum Incoming {
    Event(ProductEvent),
    Account(GroupCall),
}

/// Parses a request body in either shape: Milepost's own events (one object
/// or an array) or Segment Spec calls (one, an array, or `{"batch": [...]}`).
pub fn parse_body(body: &[u8]) -> Result<Vec<Result<Incoming, FieldError>>, BodyError> {
    let starts_like_segment = {
        // Cheap sniff of the first object's keys; the full check is on the parsed value.
        let head = &body[..body.len().min(512)];
        let head = String::from_utf8_lossy(head);
        head.contains("\"batch\"") || head.contains("\"type\"")
    };
    if starts_like_segment {
        let value: Value = serde_json::from_slice(body).map_err(|e| BodyError::Malformed(e.to_string()))?;
        if crate::segment::looks_like_segment(&value) {
            return Ok(crate::segment::parse_calls(value));
        }
    }
    Ok(parse_events(body)?
        .into_iter()
        .map(|r| r.map(Incoming::Event))
        .collect())
}

/// One event as it arrives, before validation: every field optional so each
/// problem can be named.
#[derive(Default, Deserialize)]
struct WireEvent {
    id: Option<Value>,
    account_id: Option<Value>,
    event: Option<Value>,
    timestamp: Option<Value>,
    user_id: Option<Value>,
    properties: Option<Value>,
}

/// The common, well-formed shape, parsed without building JSON values.
#[derive(Deserialize)]
struct TypedEvent {
    id: String,
    account_id: String,
    event: String,
    timestamp: String,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    properties: Option<serde_json::Map<String, Value>>,
}

impl From<TypedEvent> for WireEvent {
    fn from(e: TypedEvent) -> Self {
        WireEvent {
            id: Some(Value::String(e.id)),
            account_id: Some(Value::String(e.account_id)),
            event: Some(Value::String(e.event)),
            timestamp: Some(Value::String(e.timestamp)),
            user_id: e.user_id.map(Value::String),
            properties: e.properties.map(Value::Object),
        }
    }
}

impl WireEvent {
    fn from_value(value: Value) -> Result<WireEvent, FieldError> {
        let Value::Object(mut obj) = value else {
            return Err(field_error("(event)", "must be a JSON object"));
        };
        Ok(WireEvent {
            id: obj.remove("id"),
            account_id: obj.remove("account_id"),
            event: obj.remove("event"),
            timestamp: obj.remove("timestamp"),
            user_id: obj.remove("user_id"),
            properties: obj.remove("properties"),
        })
    }
}

/// Parses a body of Milepost events: one object or an array of them. Each
/// element is validated on its own, so one bad event does not sink the batch.
pub fn parse_events(body: &[u8]) -> Result<Vec<Result<ProductEvent, FieldError>>, BodyError> {
    // Fast path: straight into typed records. Anything unusual (a field of
    // another type, an element that is not an object, broken JSON) takes the
    // slow path, which names the problem. Both end in the same `validate`.
    let typed = match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => serde_json::from_slice::<Vec<TypedEvent>>(body).ok(),
        Some(b'{') => serde_json::from_slice::<TypedEvent>(body).ok().map(|e| vec![e]),
        _ => None,
    };
    if let Some(events) = typed {
        return Ok(events.into_iter().map(|e| validate(e.into())).collect());
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| BodyError::Malformed(e.to_string()))?;
    let items = match value {
        Value::Array(items) => items,
        obj @ Value::Object(_) => vec![obj],
        _ => return Err(BodyError::NotEvents),
    };
    Ok(items
        .into_iter()
        .map(|v| WireEvent::from_value(v).and_then(validate))
        .collect())
}

fn required_str(value: Option<Value>, field: &str) -> Result<String, FieldError> {
    match value {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
        Some(Value::String(_)) => Err(field_error(field, "must not be empty")),
        None | Some(Value::Null) => Err(field_error(field, "is required")),
        Some(_) => Err(field_error(field, "must be a string")),
    }
}

fn validate(wire: WireEvent) -> Result<ProductEvent, FieldError> {
    let id = required_str(wire.id, "id")?;
    let account_id = required_str(wire.account_id, "account_id")?;
    let event = required_str(wire.event, "event")?;
    let timestamp_text = required_str(wire.timestamp, "timestamp")?;
    let timestamp = chrono::DateTime::parse_from_rfc3339(&timestamp_text)
        .map_err(|e| field_error("timestamp", format!("must be an RFC 3339 date-time ({e})")))?
        .to_utc();
    let user_id = match wire.user_id {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => return Err(field_error("user_id", "must be a string")),
    };
    let properties = match wire.properties {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(p)) => p,
        Some(_) => return Err(field_error("properties", "must be an object")),
    };
    let event = ProductEvent {
        id,
        account_id: AccountId(account_id),
        event,
        timestamp,
        user_id,
        properties,
    };
    crate::limits::check_storable(&event, "id", "account_id")?;
    Ok(event)
}

/// Validates one event given as a JSON value.
pub fn parse_event(value: Value) -> Result<ProductEvent, FieldError> {
    WireEvent::from_value(value).and_then(validate)
}

/// Applies a parsed batch: valid events are applied even when others are
/// rejected, accounts side by side. A rejection is final for that item; an
/// error (`Err`) means something a retry can fix (throttling, an outage), and
/// the sender retries the whole request: what was applied is then a duplicate.
pub async fn ingest(
    services: &Services,
    parsed: Vec<Result<Incoming, FieldError>>,
) -> Result<IngestReport, IngestError> {
    let now = services.clock.now();
    let mut rejected = Vec::new();
    let mut accounts: Vec<(AccountId, Vec<(usize, Incoming)>)> = Vec::new();
    let mut position: std::collections::HashMap<AccountId, usize> = std::collections::HashMap::new();
    for (index, item) in parsed.into_iter().enumerate() {
        match item.and_then(|incoming| check_incoming(&services.config, &incoming, now).map(|()| incoming)) {
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
    let at_once = services.config.accounts_at_once.max(1);
    if accounts.len() == 1 || at_once == 1 {
        // One account, or a store in this process, where tasks only add cost.
        for (_, items) in accounts {
            merge_outcome(
                apply_in_order(services, items).await,
                &mut report,
                &mut rejected,
                &mut failure,
            );
        }
        return finish(report, rejected, failure);
    }
    // One copy of the services per request, shared by the tasks.
    let shared = std::sync::Arc::new(services.clone());
    let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(at_once));
    let mut running = tokio::task::JoinSet::new();
    for (_, items) in accounts {
        let (services, limit) = (shared.clone(), limit.clone());
        running.spawn(async move {
            let _permit = limit.acquire_owned().await.expect("the semaphore is never closed");
            apply_in_order(&services, items).await
        });
    }
    while let Some(done) = running.join_next().await {
        let done = done.map_err(|e| IngestError::Store(format!("an account's events failed: {e}")))?;
        merge_outcome(done, &mut report, &mut rejected, &mut failure);
    }
    finish(report, rejected, failure)
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
    rejected.truncate(crate::limits::MAX_REJECTIONS_LISTED);
    report.rejected = rejected;
    Ok(report)
}

/// What became of each item of one account, and the error that stopped the
/// rest (a retry of the request finishes them).
#[derive(Default)]
struct AccountOutcome {
    outcomes: Vec<(usize, Result<Applied, FieldError>)>,
    parked_cap_reached: usize,
    error: Option<IngestError>,
}

async fn apply_in_order(services: &Services, items: Vec<(usize, Incoming)>) -> AccountOutcome {
    let mut done = AccountOutcome::default();
    let outcomes = &mut done.outcomes;
    for (index, item) in items {
        let outcome = match &item {
            Incoming::Event(event) => apply_event(services, event).await.map(Ok),
            Incoming::Account(call) => apply_group_call(services, call).await,
        };
        match outcome {
            Ok(result) => outcomes.push((index, result)),
            Err(IngestError::ParkingFull(why)) => {
                done.parked_cap_reached += 1;
                outcomes.push((index, Err(why)));
            }
            Err(IngestError::Unstorable(why)) => {
                // Checked at the edge, so this is a limit the checks missed: say so loudly.
                tracing::error!(index, error = %why, "the store refused an item that passed validation");
                outcomes.push((
                    index,
                    Err(FieldError::new("(event)", format!("cannot be stored: {why}"))),
                ));
            }
            Err(e) => {
                done.error = Some(e);
                break;
            }
        }
    }
    done
}

impl Incoming {
    pub fn account_id(&self) -> &AccountId {
        match self {
            Incoming::Event(e) => &e.account_id,
            Incoming::Account(call) => &call.account_id,
        }
    }
}

/// The checks that need the clock and the configuration: event times not too
/// far ahead, contract dates in the plausible range.
fn check_incoming(config: &crate::services::Config, incoming: &Incoming, now: Timestamp) -> Result<(), FieldError> {
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
            Ok(())
        }
    }
}

/// Creates or updates the account a Segment `group` call describes. A call
/// that cannot make a valid account is rejected (`Ok(Err(..))`), naming the
/// trait. Calls are applied last-writer-wins by their `timestamp`: one older
/// than the traits stored (a delivery out of order) changes nothing, and the
/// write is conditional on what was read, so a newer call racing it wins.
async fn apply_group_call(services: &Services, call: &GroupCall) -> Result<Result<Applied, FieldError>, IngestError> {
    let store = &services.store;
    let now = services.clock.now();
    if store.seen(&call.account_id, &call.message_id, now).await? {
        return Ok(Ok(Applied::Duplicate));
    }
    let mut settled = false;
    for _ in 0..crate::ports::MAX_WRITE_ATTEMPTS {
        let existing = store.get_account(&call.account_id).await?;
        if existing
            .as_ref()
            .and_then(|a| a.traits_at)
            .is_some_and(|newer| newer > call.timestamp)
        {
            settled = true; // newer traits are stored: this older call is superseded
            break;
        }
        let mut account =
            match call
                .traits
                .apply(&call.account_id, existing.as_deref(), &services.config.cs_leader_email)
            {
                Ok(a) => a,
                Err(e) => return Ok(Err(e)),
            };
        account.traits_at = Some(call.timestamp);
        match upsert_account_if(services, &account, Some(existing.as_deref())).await {
            Ok(Some(_)) => {
                settled = true;
                break;
            }
            Ok(None) => continue, // changed since it was read: read again
            Err(IngestError::NoMap { segment, tenure }) => {
                return Ok(Err(FieldError {
                    field: "traits.segment".into(),
                    message: format!("no milestone map applies to {segment} ({tenure}) accounts: load one first"),
                }))
            }
            Err(e) => return Err(e),
        }
    }
    if !settled {
        return Err(IngestError::Store(format!(
            "account {} kept changing under concurrent group calls",
            call.account_id
        )));
    }
    let expires = now + Duration::days(services.config.dedupe_ttl_days);
    store.remember(&call.account_id, &call.message_id, expires).await?;
    Ok(Ok(Applied::Applied))
}

/// Applies one event to its account's open milestones (or parks it until the
/// account is known), then announces what it reached.
pub async fn apply_event(services: &Services, event: &ProductEvent) -> Result<Applied, IngestError> {
    match apply_to_known_account(services, event).await? {
        Some(applied) => Ok(applied),
        None => park_for_unknown_account(services, event).await,
    }
}

/// `None` when the account is not known: nothing was written.
async fn apply_to_known_account(services: &Services, event: &ProductEvent) -> Result<Option<Applied>, IngestError> {
    let now = services.clock.now();
    // From receipt, never from the event's own time: a far-future date must not make it immortal.
    let remember_until = now + Duration::days(services.config.dedupe_ttl_days);
    match services.store.apply_product_event(event, now, remember_until).await? {
        EventApplied::UnknownAccount => Ok(None),
        EventApplied::Known {
            account,
            duplicate,
            announcements,
        } => {
            announce(services, &account, announcements).await?;
            Ok(Some(if duplicate {
                Applied::Duplicate
            } else {
                Applied::Applied
            }))
        }
    }
}

/// Keeps an event whose account was not found. The account may have been
/// created since: its creator writes it and then reads the parked events,
/// this parks and then reads the account, so one of the two always sees the
/// other. If the account exists now, the event is applied here and unparked
/// (applying twice changes nothing).
pub async fn park_for_unknown_account(services: &Services, event: &ProductEvent) -> Result<Applied, IngestError> {
    let store = &services.store;
    let limit = crate::limits::MAX_PARKED_PER_ACCOUNT;
    if store.parked_count(&event.account_id, limit).await? >= limit {
        return Err(IngestError::ParkingFull(FieldError::new(
            "account_id",
            format!("is not a known account and already has {limit} events waiting for it: send its group call first"),
        )));
    }
    store.park(event).await?;
    if store.get_account(&event.account_id).await?.is_none() {
        return Ok(Applied::Parked);
    }
    let Some(applied) = apply_to_known_account(services, event).await? else {
        return Ok(Applied::Parked);
    };
    store.unpark(&event.account_id, &event.id).await?;
    Ok(applied)
}

async fn announce(services: &Services, account: &Account, announcements: Announcements) -> Result<(), IngestError> {
    for m in announcements.claimed {
        publish_claimed(services, account, m).await?;
    }
    for m in announcements.unclaimed {
        announce_reached(services, account, m).await?;
    }
    Ok(())
}

/// Publishes the reached event (and stops a running escalation) exactly once
/// in the common case: the publisher first claims the announcement with a
/// conditional write, so of concurrent deliveries only one publishes; a failed
/// publish releases the claim and the next delivery tries again.
async fn announce_reached(services: &Services, account: &Account, m: TrackedMilestone) -> Result<(), IngestError> {
    if !m.needs_reached_announcement() {
        return Ok(());
    }
    let store = services.store.as_ref();
    let now = services.clock.now();
    let claimed = AtomicBool::new(false);
    let Some(m) = modify_with_retry(store, m, |m| {
        let won = m.claim_announcement(now);
        claimed.store(won, Ordering::SeqCst);
        Ok(if won { Advance::Progressed } else { Advance::Unchanged })
    })
    .await?
    else {
        return Ok(());
    };
    if !claimed.load(Ordering::SeqCst) {
        return Ok(()); // announced already, or being announced by a concurrent delivery
    }
    publish_claimed(services, account, m).await
}

/// Publishes a milestone whose announcement this caller claimed, then records
/// it as announced, or gives the claim back if the publish failed.
async fn publish_claimed(services: &Services, account: &Account, m: TrackedMilestone) -> Result<(), IngestError> {
    let store = services.store.as_ref();
    let published = publish_reached(services, account, &m).await;
    let outcome = published.is_ok();
    modify_with_retry(store, m, |m| {
        if outcome {
            m.announced_reached = true;
        }
        m.announcing_since = None;
        Ok(Advance::Progressed)
    })
    .await?;
    published
}

async fn publish_reached(services: &Services, account: &Account, m: &TrackedMilestone) -> Result<(), IngestError> {
    let from = m.reached_from.unwrap_or(MilestoneStatus::Pending);
    let at = m.reached_at.expect("a reached milestone has its time");
    let event = if from == MilestoneStatus::Pending {
        DomainEvent::MilestoneAchieved {
            account_id: account.id.clone(),
            milestone_id: m.milestone_id.clone(),
            segment: account.segment,
            phase: m.phase,
            due_at: m.due_at,
            achieved_at: at,
        }
    } else {
        if let (Some(execution), true) = (&m.execution, m.escalation_started) {
            if from != MilestoneStatus::Lapsed {
                services
                    .workflows
                    .stop(execution, from.stage())
                    .await
                    .map_err(|e| IngestError::Publish(e.to_string()))?;
            }
        }
        DomainEvent::MilestoneRecovered {
            account_id: account.id.clone(),
            milestone_id: m.milestone_id.clone(),
            due_at: m.due_at,
            achieved_at: at,
            stage_reached: from.stage(),
        }
    };
    services
        .events
        .publish(&[event])
        .await
        .map_err(|e| IngestError::Publish(e.to_string()))
}

/// A CSM confirms a manual milestone (through the API or the CLI).
pub async fn mark_manual(
    services: &Services,
    account_id: &AccountId,
    milestone_id: &str,
    at: Timestamp,
) -> Result<bool, IngestError> {
    let store = &services.store;
    let Some(account) = store.get_account(account_id).await? else {
        return Err(IngestError::Domain(format!("unknown account {account_id}")));
    };
    let Some(milestone) = store.get_milestone(account_id, milestone_id).await? else {
        return Err(IngestError::Domain(format!(
            "account {account_id} does not track milestone {milestone_id}"
        )));
    };
    if !matches!(milestone.criterion, crate::domain::Criterion::Manual) {
        return Err(IngestError::Domain(format!("milestone {milestone_id} is not manual")));
    }
    let was_open = milestone.status.is_open();
    let updated = modify_with_retry(store.as_ref(), milestone, |m| m.mark_manual(at)).await?;
    if let Some(m) = updated {
        announce_reached(services, &account, m).await?;
    }
    Ok(was_open)
}

/// What onboarding an account did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Onboarded {
    pub milestones_created: usize,
    pub parked_applied: usize,
}

/// Creates or updates an account, starts tracking its map's milestones (once),
/// and applies any events that arrived before the account was known.
pub async fn upsert_account(services: &Services, account: &Account) -> Result<Onboarded, IngestError> {
    Ok(upsert_account_if(services, account, None)
        .await?
        .expect("an unconditional write always happens"))
}

/// `upsert_account`, but when `expected` is given, only if the stored account
/// is still that one (`Some(None)`: that none is stored); `Ok(None)` when it
/// changed in between and nothing was written.
async fn upsert_account_if(
    services: &Services,
    account: &Account,
    expected: Option<Option<&Account>>,
) -> Result<Option<Onboarded>, IngestError> {
    let store = &services.store;
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
        if store
            .create_milestone(&TrackedMilestone::new(account, map, def))
            .await?
        {
            report.milestones_created += 1;
        }
    }
    report.parked_applied = apply_parked(services, &account.id).await?;
    Ok(Some(report))
}

/// Applies, oldest first, the events parked for `account` and unparks them;
/// returns how many changed anything (the rest were duplicates). Onboarding
/// runs it; operators run it with `milepost parked --replay`, for events
/// parked while their account was created some other way. Idempotent.
pub async fn apply_parked(services: &Services, account: &AccountId) -> Result<usize, IngestError> {
    let store = &services.store;
    let mut parked = store.parked_for(account).await?;
    parked.sort_by(|a, b| (a.timestamp, &a.id).cmp(&(b.timestamp, &b.id)));
    let mut applied = 0;
    for event in parked {
        if apply_event(services, &event).await? == Applied::Applied {
            applied += 1;
        }
        store.unpark(account, &event.id).await?;
    }
    Ok(applied)
}
