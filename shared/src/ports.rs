//! The ports: small traits at the edges. Production adapters use the AWS SDK;
//! the embedded adapters (in `embedded`) serve `milepost demo` and fast tests.
//! Both store adapters must pass the same contract tests.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::activity::AccountActivity;
use crate::domain::tracked::Advance;
use crate::domain::{
    Account, AccountId, DomainEvent, IllegalTransition, MilestoneMap, ProductEvent, Segment, Stage, Tenure, Timestamp,
    TrackedMilestone,
};
use crate::email::OutgoingEmail;
use crate::playbook::{CsmTask, EscalationLogEntry, EscalationRequest};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write lost a race: someone else wrote first. Re-read and retry.
    #[error("conditional write conflict")]
    Conflict,
    #[error("store error: {0}")]
    Backend(String),
    /// The store refused what it was given and always will (DynamoDB's
    /// ValidationException: an item too large, a key too long). Retrying
    /// cannot help, so callers reject the input rather than ask for a retry.
    #[error("cannot be stored: {0}")]
    Invalid(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A page of due milestones plus where to continue.
#[derive(Debug, Default)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

#[async_trait]
pub trait AccountStore: Send + Sync {
    async fn put_account(&self, account: &Account) -> StoreResult<()>;
    /// Writes `account` only if the stored one is still `expected` (by its
    /// `traits_at`; `None`: no account stored). Returns whether it wrote.
    async fn replace_account(&self, account: &Account, expected: Option<&Account>) -> StoreResult<bool>;
    /// Accounts are read on every event and never changed in place, so they are shared.
    async fn get_account(&self, id: &AccountId) -> StoreResult<Option<Arc<Account>>>;
}

#[async_trait]
pub trait MapStore: Send + Sync {
    async fn put_map(&self, map: &MilestoneMap) -> StoreResult<()>;
    /// All maps that could apply to this segment (its own and `all`), any tenure.
    async fn maps_for(&self, segment: Segment, tenure: Tenure) -> StoreResult<Vec<MilestoneMap>>;
}

#[async_trait]
pub trait MilestoneStore: Send + Sync {
    /// Creates the milestone unless it is already tracked; returns whether it was created.
    async fn create_milestone(&self, m: &TrackedMilestone) -> StoreResult<bool>;
    async fn get_milestone(&self, account: &AccountId, milestone_id: &str) -> StoreResult<Option<TrackedMilestone>>;
    /// Writes `m` if the stored version is still `m.version`, storing `m.version + 1`.
    /// Returns the new version, or `Conflict`.
    async fn update_milestone(&self, m: &TrackedMilestone) -> StoreResult<u64>;
    async fn milestones_of(&self, account: &AccountId) -> StoreResult<Vec<TrackedMilestone>>;
    /// Milestones of the account whose criterion listens to `event` and that an
    /// event at `at` can still change: open ones, and reached ones whose
    /// achievement is later than `at` (see `TrackedMilestone::may_change_with`).
    async fn milestones_for_event(
        &self,
        account: &AccountId,
        event: &str,
        at: Timestamp,
    ) -> StoreResult<Vec<TrackedMilestone>>;
    /// Folds a product event into every milestone of the account it can still
    /// change, each atomically (read, observe, conditional write, re-read and
    /// retry on a lost race). Returns the milestones that are reached and not
    /// yet announced, so the caller announces them.
    ///
    /// Adapters may override it with an equivalent that saves round trips (the
    /// in-memory store changes milestones in place under its lock).
    async fn observe_event(&self, account: &Account, event: &ProductEvent) -> StoreResult<Vec<TrackedMilestone>> {
        let mut to_announce = Vec::new();
        for m in self
            .milestones_for_event(&account.id, &event.event, event.timestamp)
            .await?
        {
            let Some(obs) = m.criterion.observe(event) else {
                continue;
            };
            let m = modify_with_retry(self, m, |m| m.observe(&obs, account.licensed_seats)).await?;
            if m.as_ref().is_some_and(TrackedMilestone::needs_reached_announcement) {
                to_announce.extend(m);
            }
        }
        Ok(to_announce)
    }

    /// Milestones the sweep must act on, oldest due first: pending and due at
    /// or before `now`, or missed whose escalation has not been started yet.
    async fn due_milestones(
        &self,
        now: Timestamp,
        after: Option<String>,
        limit: usize,
    ) -> StoreResult<Page<TrackedMilestone>>;
}

/// How often a milestone write that lost a race is retried before giving up.
pub const MAX_WRITE_ATTEMPTS: usize = 8;

/// Applies `change` and writes the milestone conditionally; on a lost race
/// re-reads and applies it again (changes are idempotent, so that is safe).
/// Returns the milestone as stored, or `None` if it no longer exists.
pub async fn modify_with_retry<S, F>(
    store: &S,
    mut m: TrackedMilestone,
    change: F,
) -> StoreResult<Option<TrackedMilestone>>
where
    S: MilestoneStore + ?Sized,
    F: Fn(&mut TrackedMilestone) -> Result<Advance, IllegalTransition> + Send + Sync,
{
    for _ in 0..MAX_WRITE_ATTEMPTS {
        // Every change the callers make is legal from any status they can read.
        let advance = change(&mut m).map_err(|e| StoreError::Backend(format!("bug: {e}")))?;
        if advance == Advance::Unchanged {
            return Ok(Some(m));
        }
        match store.update_milestone(&m).await {
            Ok(version) => {
                m.version = version;
                return Ok(Some(m));
            }
            Err(StoreError::Conflict) => match store.get_milestone(&m.account_id, &m.milestone_id).await? {
                Some(fresh) => m = fresh,
                None => return Ok(None),
            },
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Backend(format!(
        "milestone {} kept conflicting with concurrent writes",
        m.milestone_id
    )))
}

/// What applying one product event found and did (see `EventStore`).
#[derive(Debug)]
pub enum EventApplied {
    /// The account is not known yet: nothing was written.
    UnknownAccount,
    Known {
        account: Arc<Account>,
        /// Seen before (its dedupe record is live): nothing was written.
        duplicate: bool,
        announcements: Announcements,
    },
}

/// Reached milestones whose reached event still has to go out on the bus.
#[derive(Debug, Default)]
pub struct Announcements {
    /// Reached by this event and claimed for announcement in the same write:
    /// publish, then settle the claim.
    pub claimed: Vec<TrackedMilestone>,
    /// Reached earlier and never announced (a publish failed): claim first.
    pub unclaimed: Vec<TrackedMilestone>,
}

/// Applying a product event to its account as one unit, so adapters can do it
/// in few round trips.
#[async_trait]
pub trait EventStore: AccountStore + MilestoneStore + DedupeStore + ActivityStore {
    /// Unless the event's dedupe record is live at `now`: folds the event into
    /// the account's activity and every milestone it can change, and remembers
    /// it until `remember_until`. Reports the account's milestones that still
    /// need their reached event announced.
    ///
    /// The default composes the finer methods (each idempotent, so a crash
    /// part way leaves nothing a retry cannot finish). The DynamoDB store
    /// overrides it with one read of the account and one transaction.
    async fn apply_product_event(
        &self,
        event: &ProductEvent,
        now: Timestamp,
        remember_until: Timestamp,
    ) -> StoreResult<EventApplied> {
        let Some(account) = self.get_account(&event.account_id).await? else {
            return Ok(EventApplied::UnknownAccount);
        };
        if self.seen(&event.account_id, &event.id, now).await? {
            // Redelivered: heal an announcement that failed the first time.
            let unclaimed = self
                .milestones_for_event(&account.id, &event.event, event.timestamp)
                .await?
                .into_iter()
                .filter(TrackedMilestone::needs_reached_announcement)
                .collect();
            return Ok(EventApplied::Known {
                account,
                duplicate: true,
                announcements: Announcements {
                    claimed: Vec::new(),
                    unclaimed,
                },
            });
        }
        self.record_activity(event).await?;
        let unclaimed = self.observe_event(&account, event).await?;
        self.remember(&event.account_id, &event.id, remember_until).await?;
        Ok(EventApplied::Known {
            account,
            duplicate: false,
            announcements: Announcements {
                claimed: Vec::new(),
                unclaimed,
            },
        })
    }
}

#[async_trait]
pub trait DedupeStore: Send + Sync {
    /// Whether the account's event was applied already (a record that
    /// expired by `now` does not count). Records are keyed by account and
    /// event id: two accounts may use the same ids.
    async fn seen(&self, account: &AccountId, event_id: &str, now: Timestamp) -> StoreResult<bool>;
    /// Remembers an applied event until `expires_at` (a TTL).
    async fn remember(&self, account: &AccountId, event_id: &str, expires_at: Timestamp) -> StoreResult<()>;
}

/// Events for accounts Milepost does not know yet: kept, then applied when the account appears.
#[async_trait]
pub trait ParkingStore: Send + Sync {
    async fn park(&self, event: &ProductEvent) -> StoreResult<()>;
    async fn parked_for(&self, account: &AccountId) -> StoreResult<Vec<ProductEvent>>;
    /// How many events wait for `account`, counting no further than `up_to`.
    async fn parked_count(&self, account: &AccountId, up_to: usize) -> StoreResult<usize>;
    async fn unpark(&self, account: &AccountId, event_id: &str) -> StoreResult<()>;
    /// Every account with parked events and how many, by account id: an
    /// operator's listing (a table scan on DynamoDB), never on the event path.
    async fn parked_accounts(&self) -> StoreResult<Vec<(AccountId, usize)>>;
}

#[async_trait]
pub trait ActivityStore: Send + Sync {
    /// Folds the event into the account's activity (idempotent per event id).
    async fn record_activity(&self, event: &ProductEvent) -> StoreResult<()>;
    async fn activity(&self, account: &AccountId) -> StoreResult<AccountActivity>;
}

#[async_trait]
pub trait TaskStore: Send + Sync {
    /// Creates the task unless one with its id exists; returns whether it was created.
    async fn create_task(&self, task: &CsmTask) -> StoreResult<bool>;
    async fn open_tasks_for_owner(&self, owner_email: &str) -> StoreResult<Vec<CsmTask>>;
    async fn all_tasks(&self) -> StoreResult<Vec<CsmTask>>;
}

#[async_trait]
pub trait EscalationLog: Send + Sync {
    /// Appends an entry unless one with its key exists (retries append nothing).
    async fn append_log(&self, entry: &EscalationLogEntry) -> StoreResult<bool>;
    async fn log_of(&self, account: &AccountId) -> StoreResult<Vec<EscalationLogEntry>>;
}

/// The state of one email send, keyed by a deterministic idempotency key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SendRecord {
    /// Claimed before the send; if it stays here, the sender crashed mid-send and
    /// the email is treated as sent rather than risk sending it twice.
    Sending,
    Sent {
        message_id: String,
    },
    Rejected {
        reason: String,
    },
}

#[async_trait]
pub trait SendLedger: Send + Sync {
    /// Claims the key for sending. `Ok(None)`: claimed, go ahead. `Ok(Some(record))`:
    /// already claimed, do not send again.
    async fn claim_send(&self, key: &str) -> StoreResult<Option<SendRecord>>;
    async fn settle_send(&self, key: &str, record: &SendRecord) -> StoreResult<()>;
    /// Gives the claim back after a transient failure so a retry can send.
    async fn release_send(&self, key: &str) -> StoreResult<()>;
}

/// Everything Milepost keeps.
pub trait Store:
    EventStore
    + AccountStore
    + MapStore
    + MilestoneStore
    + DedupeStore
    + ParkingStore
    + ActivityStore
    + TaskStore
    + EscalationLog
    + SendLedger
{
}

impl<T> Store for T where
    T: EventStore
        + AccountStore
        + MapStore
        + MilestoneStore
        + DedupeStore
        + ParkingStore
        + ActivityStore
        + TaskStore
        + EscalationLog
        + SendLedger
{
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Throttling or a passing fault: try again later.
    #[error("transient send failure: {0}")]
    Transient(String),
    /// The address was rejected or is suppressed: trying again will not help.
    #[error("permanent send failure: {0}")]
    Permanent(String),
}

#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends one email; returns the provider's message id.
    async fn send(&self, email: &OutgoingEmail) -> Result<String, SendError>;
}

#[derive(Debug, thiserror::Error)]
#[error("publish failed: {0}")]
pub struct PublishError(pub String);

#[async_trait]
pub trait EventPublisher: Send + Sync {
    async fn publish(&self, events: &[DomainEvent]) -> Result<(), PublishError>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOutcome {
    Started,
    /// An execution with this name exists already: starting again is a no-op.
    AlreadyStarted,
}

#[derive(Debug, thiserror::Error)]
#[error("workflow error: {0}")]
pub struct WorkflowError(pub String);

#[async_trait]
pub trait WorkflowStarter: Send + Sync {
    async fn start(&self, request: &EscalationRequest) -> Result<StartOutcome, WorkflowError>;
    /// Stops a running escalation because the customer caught up.
    async fn stop(&self, execution: &str, stage_reached: Option<Stage>) -> Result<(), WorkflowError>;
}

pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}
