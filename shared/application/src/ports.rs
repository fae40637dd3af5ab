//! The ports: small traits at the edges, signatures only. Production
//! adapters (`milepost-aws`) use the AWS SDK; the embedded adapters
//! (`milepost-embedded`) serve `milepost demo` and fast tests. Both stores
//! pass one contract-test suite. How a use case retries or combines these is
//! the application's business (`writes`, `ingest`, `sweep`, `escalation`),
//! never an adapter's default.

use std::sync::Arc;

use async_trait::async_trait;
use milepost_domain::crm::{CrmOutcome, CrmSync};
use milepost_domain::slack::{SlackMessage, SlackOutcome, SlackPost};
use milepost_domain::webhooks::{AttemptResult, Delivery, WebhookEndpoint};
use milepost_domain::{
    Account, AccountActivity, AccountId, Announcements, ContactRecord, CsmTask, CustomerEmailPause, DomainEvent,
    EmailAddress, EscalationLogEntry, EscalationRequest, HeldBackList, IllegalChange, LeaderQueue, MilestoneMap,
    OutgoingEmail, PortfolioRow, ProductEvent, Segment, SendKey, Stage, Suppression, TaskStatus, Tenure, Timestamp,
    TrackedMilestone,
};
use serde::{Deserialize, Serialize};

/// An adapter's own error, kept as the source of ours.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write lost a race: someone else wrote first. Re-read and retry.
    #[error("conditional write conflict")]
    Conflict,
    /// The backend failed (a network fault, throttling, an item it could not
    /// read back): a passing fault, or a bug. Its error is the source.
    #[error("the store failed")]
    Backend(#[source] BoxError),
    /// Concurrent writers won every attempt (`writes::MAX_WRITE_ATTEMPTS`) at
    /// the thing named.
    #[error("{0} kept conflicting with concurrent writes")]
    Contended(String),
    /// The store refused what it was given and always will (DynamoDB's
    /// ValidationException: an item too large, a key too long). Retrying
    /// cannot help, so callers reject the input rather than ask for a retry.
    #[error("cannot be stored: {0}")]
    Invalid(String),
    /// Applying the change would break a lifecycle rule: a bug in Milepost,
    /// not a passing fault. Nothing was written.
    #[error(transparent)]
    Illegal(#[from] IllegalChange),
}

impl StoreError {
    pub fn backend(source: impl Into<BoxError>) -> Self {
        StoreError::Backend(source.into())
    }
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
    /// Stops tracking `m` (a success plan checkpoint the plan dropped) if the
    /// stored version is still `m.version`; else `Conflict`. Gone already: done.
    async fn remove_milestone(&self, m: &TrackedMilestone) -> StoreResult<()>;
    /// Milestones the sweep must act on, oldest due first: pending and due at
    /// or before `now`, or missed whose escalation has not been started yet.
    async fn due_milestones(
        &self,
        now: Timestamp,
        after: Option<String>,
        limit: usize,
    ) -> StoreResult<Page<TrackedMilestone>>;
    /// Pending milestones whose heads-up may be due: their heads-up time
    /// (`TrackedMilestone::heads_up_index_at`) at or before `now`, earliest first.
    async fn heads_up_milestones(
        &self,
        now: Timestamp,
        after: Option<String>,
        limit: usize,
    ) -> StoreResult<Page<TrackedMilestone>>;
}

/// What applying one product event found and did (see `EventStore`).
#[derive(Debug)]
pub enum EventApplied {
    /// The account is not known yet: nothing was written.
    UnknownAccount,
    Known {
        account: Arc<Account>,
        /// Seen before (its dedupe record was live): not applied again.
        duplicate: bool,
        announcements: Announcements,
    },
}

/// What applying one account's events of one request found and did.
#[derive(Debug)]
pub enum EventsApplied {
    /// The account is not known yet: nothing was written.
    UnknownAccount,
    Known {
        account: Arc<Account>,
        /// Per event, in order: seen before (its dedupe record was live), so
        /// it was not applied again.
        duplicate: Vec<bool>,
        announcements: Announcements,
    },
}

#[async_trait]
pub trait EventStore: Send + Sync {
    /// Applies one account's events together, in one round: loads the
    /// account's state once, applies the events with
    /// `milepost_domain::AccountState::apply_all`, skipping those whose dedupe
    /// record is live at `now`, and saves what changed. The events some
    /// criterion reads get a dedupe record kept until `remember_until`,
    /// written atomically with the milestones they changed; events no
    /// criterion reads get none: they change only the activity, a fold that a
    /// redelivery leaves as it is (such an event redelivered is applied, not
    /// a duplicate). All or nothing: `Conflict` when another writer changed
    /// the state since it was read (apply again); `Illegal` when the domain
    /// refused one of the events, `Invalid` when an item cannot be stored
    /// (apply the events one by one to find it).
    async fn apply_product_events(
        &self,
        account: &AccountId,
        events: &[ProductEvent],
        now: Timestamp,
        remember_until: Timestamp,
        claimant: &str,
    ) -> StoreResult<EventsApplied>;

    /// `apply_product_events` for one event, as a claimant of its own.
    async fn apply_product_event(
        &self,
        event: &ProductEvent,
        now: Timestamp,
        remember_until: Timestamp,
    ) -> StoreResult<EventApplied> {
        let applied = self
            .apply_product_events(
                &event.account_id,
                std::slice::from_ref(event),
                now,
                remember_until,
                &fresh_claimant(),
            )
            .await?;
        Ok(match applied {
            EventsApplied::UnknownAccount => EventApplied::UnknownAccount,
            EventsApplied::Known {
                account,
                duplicate,
                announcements,
            } => EventApplied::Known {
                account,
                duplicate: duplicate.first().copied().unwrap_or(false),
                announcements,
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

/// Events kept until they can be applied: for accounts Milepost does not know
/// yet, and events whose application failed on a lifecycle rule (a bug), kept
/// for `milepost parked --replay` once it is fixed.
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
    /// What the account did recently (empty for an account without events).
    async fn activity(&self, account: &AccountId) -> StoreResult<AccountActivity>;
}

#[async_trait]
pub trait TaskStore: Send + Sync {
    /// Creates the task unless one with its id exists; returns whether it was created.
    async fn create_task(&self, task: &CsmTask) -> StoreResult<bool>;
    async fn get_task(&self, id: &str) -> StoreResult<Option<CsmTask>>;
    /// Writes `task` if the stored version is still `task.version`, storing
    /// `task.version + 1`. Returns the new version, or `Conflict`.
    async fn update_task(&self, task: &CsmTask) -> StoreResult<u64>;
    /// The tasks of one owner, oldest first, only those of `status` if given:
    /// from the owner index, never a scan.
    async fn tasks_for_owner(&self, owner_email: &str, status: Option<TaskStatus>) -> StoreResult<Vec<CsmTask>>;
    /// Every task of `status`, oldest first: an index partition per status.
    async fn tasks_with_status(&self, status: TaskStatus) -> StoreResult<Vec<CsmTask>>;
    /// Snoozed tasks whose snooze is over at `now`, soonest first, at most `limit`.
    async fn snoozes_over(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<CsmTask>>;
}

#[async_trait]
pub trait PauseStore: Send + Sync {
    /// Pauses automated customer email for the account (replacing a pause before it).
    async fn pause_customer_emails(&self, account: &AccountId, pause: &CustomerEmailPause) -> StoreResult<()>;
    /// The account's latest pause, over or not.
    async fn customer_email_pause(&self, account: &AccountId) -> StoreResult<Option<CustomerEmailPause>>;
}

/// Customer contacts: the addresses unsubscribe links point back to (a
/// link names a contact by a fingerprint of the address, never the address), and
/// who asked for no more email.
#[async_trait]
pub trait ContactStore: Send + Sync {
    /// The contact whose address has this address fingerprint (`links::address_fingerprint`):
    /// the address and the automated emails lately sent to it.
    async fn contact(&self, fingerprint: &str) -> StoreResult<Option<ContactRecord>>;
    /// Writes the contact on the version it was read at (0: new); `Conflict`
    /// when another send wrote first. Returns the new version.
    async fn save_contact(&self, fingerprint: &str, contact: &ContactRecord) -> StoreResult<u64>;
    /// Records the suppression unless the address is suppressed already:
    /// then nothing changes and the earlier record is returned.
    async fn suppress(&self, suppression: &Suppression) -> StoreResult<Option<Suppression>>;
    async fn suppression(&self, email: &EmailAddress) -> StoreResult<Option<Suppression>>;
    /// Every suppressed address, in address order.
    async fn suppressions(&self) -> StoreResult<Vec<Suppression>>;
    /// Lifts a suppression; whether there was one.
    async fn unsuppress(&self, email: &EmailAddress) -> StoreResult<bool>;
}

/// Escalations waiting for a leader's next daily email.
#[async_trait]
pub trait LeaderQueueStore: Send + Sync {
    async fn leader_queue(&self, leader: &EmailAddress) -> StoreResult<Option<LeaderQueue>>;
    /// Writes the queue on the version read (0: new); `Conflict` when another
    /// step wrote first. Returns the new version.
    async fn save_leader_queue(&self, queue: &LeaderQueue) -> StoreResult<u64>;
}

/// Misses held back by the map's thresholds, waiting for their held-back list.
#[async_trait]
pub trait HeldBackListStore: Send + Sync {
    async fn held_back_list(&self, owner: &EmailAddress) -> StoreResult<Option<HeldBackList>>;
    /// Writes the list on the version read (0: new); `Conflict` when
    /// another writer came first. Returns the new version.
    async fn save_held_back_list(&self, list: &HeldBackList) -> StoreResult<u64>;
    /// Every held-back list stored, with what waits in it (the sweep sends them).
    async fn held_back_lists(&self) -> StoreResult<Vec<HeldBackList>>;
}

#[async_trait]
pub trait EscalationLog: Send + Sync {
    /// Appends an entry unless one with its key exists (retries append nothing).
    async fn append_log(&self, entry: &EscalationLogEntry) -> StoreResult<bool>;
    async fn log_of(&self, account: &AccountId) -> StoreResult<Vec<EscalationLogEntry>>;
}

/// The open misses, for the console's portfolio: a sparse index of the
/// milestones missed and not reached (`MissStage::of`), never a scan.
#[async_trait]
pub trait OpenMissIndex: Send + Sync {
    /// Every open miss, by account then milestone id.
    async fn open_misses(&self) -> StoreResult<Vec<TrackedMilestone>>;
}

/// One account's row as the portfolio keeps it (`portfolio_keeper`): the
/// row, or none once the account is not at risk (kept as such a while, so
/// that a slower refresh that read before cannot bring the row back), and
/// when what it holds was read.
#[derive(Clone, Debug, PartialEq)]
pub struct KeptRow {
    pub account_id: AccountId,
    pub row: Option<PortfolioRow>,
    pub as_of: Timestamp,
}

/// The portfolio as kept: every account's entry, and when a whole refresh last finished.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KeptPortfolio {
    pub rows: Vec<KeptRow>,
    pub refreshed_at: Option<Timestamp>,
}

/// The portfolio kept ready for the console: one read of the whole, one
/// write per account that changed (on DynamoDB, a partition of its own).
#[async_trait]
pub trait KeptPortfolioStore: Send + Sync {
    async fn kept_portfolio(&self) -> StoreResult<KeptPortfolio>;
    /// Keeps `row` as `account`'s (none: not at risk), read at `as_of`,
    /// unless what is kept was read later. Returns whether it was kept.
    async fn keep_portfolio_row(
        &self,
        account: &AccountId,
        row: Option<&PortfolioRow>,
        as_of: Timestamp,
    ) -> StoreResult<bool>;
    /// Drops `account`'s entry if it is still the one read at `as_of`.
    async fn forget_portfolio_row(&self, account: &AccountId, as_of: Timestamp) -> StoreResult<()>;
    /// Records that a whole refresh that read at `at` finished.
    async fn portfolio_refreshed(&self, at: Timestamp) -> StoreResult<()>;
}

/// Everything the console's account page shows of one account, which a
/// store keeps together (on DynamoDB, one partition: one query).
#[derive(Clone, Debug)]
pub struct AccountFolder {
    pub account: Arc<Account>,
    pub milestones: Vec<TrackedMilestone>,
    pub activity: AccountActivity,
    pub log: Vec<EscalationLogEntry>,
    pub pause: Option<CustomerEmailPause>,
    /// The emails sent about it, newest first.
    pub emails: Vec<milepost_domain::SentEmail>,
}

/// The console's reads of many things at once.
#[async_trait]
pub trait ConsoleReads: Send + Sync {
    /// `account`'s folder, if the account exists.
    async fn account_folder(&self, account: &AccountId) -> StoreResult<Option<AccountFolder>>;
    /// The tasks of `ids` that exist, in any order.
    async fn tasks_by_id(&self, ids: &[String]) -> StoreResult<Vec<CsmTask>>;
    /// Every map stored, one per segment and tenure, in any order.
    async fn all_maps(&self) -> StoreResult<Vec<MilestoneMap>>;
}

/// The discovery result the maps page shows beside the maps (the latest kept).
#[async_trait]
pub trait DiscoveryStore: Send + Sync {
    async fn kept_discovery(&self) -> StoreResult<Option<milepost_domain::discovery::KeptDiscovery>>;
    /// Keeps `result`, replacing the one before.
    async fn keep_discovery(&self, result: &milepost_domain::discovery::KeptDiscovery) -> StoreResult<()>;
    /// The simulator's comparison kept for the quarterly review (the latest).
    async fn kept_comparison(&self) -> StoreResult<Option<milepost_domain::map_review::KeptComparison>>;
    /// Keeps `comparison`, replacing the one before.
    async fn keep_comparison(&self, comparison: &milepost_domain::map_review::KeptComparison) -> StoreResult<()>;
}

/// Each account's success plan (`milepost outcomes`), kept as versions:
/// a change is a new version, never an edit.
#[async_trait]
pub trait SuccessPlanStore: Send + Sync {
    /// The account's plan as it stands: its latest version.
    async fn success_plan(&self, account: &AccountId) -> StoreResult<Option<milepost_domain::SuccessPlan>>;
    /// Every version of the account's plan, oldest first.
    async fn success_plan_history(&self, account: &AccountId) -> StoreResult<Vec<milepost_domain::SuccessPlan>>;
    /// Keeps `plan` as its account's version `plan.version`, unless that
    /// version is kept already (another writer's: false, read again).
    async fn add_success_plan(&self, plan: &milepost_domain::SuccessPlan) -> StoreResult<bool>;
    /// Every account's plan as it stands (an operator's listing: may read
    /// the whole table).
    async fn success_plans(&self) -> StoreResult<Vec<milepost_domain::SuccessPlan>>;
}

/// What setting a success plan needs (`success_plans`): the account, its
/// plan's versions, its map and the checkpoints the map's `agreed_outcome`
/// milestone tracks.
pub trait PlanStore: AccountStore + SuccessPlanStore + MapStore + MilestoneStore {}
impl<T> PlanStore for T where T: AccountStore + SuccessPlanStore + MapStore + MilestoneStore + ?Sized {}

/// The results page's views kept ready (`console::keep_results`), by name:
/// each as JSON, with the moment it was worked out for.
#[async_trait]
pub trait KeptResultsStore: Send + Sync {
    async fn kept_results(&self, name: &str) -> StoreResult<Option<(Timestamp, String)>>;
    /// Keeps `json` as `name`'s view at `as_of`, unless a later one is kept.
    async fn keep_results(&self, name: &str, as_of: Timestamp, json: &str) -> StoreResult<()>;
}

/// What keeps the portfolio: the open misses, the accounts and what scores their health.
pub trait PortfolioKeeperStore: OpenMissIndex + ConsoleReads + KeptPortfolioStore {}
impl<T> PortfolioKeeperStore for T where T: OpenMissIndex + ConsoleReads + KeptPortfolioStore {}

/// What the console reads, and writes through the people's actions.
pub trait ConsoleStore:
    ActionStore + ActivityStore + PortfolioKeeperStore + ResultsKeeperStore + DiscoveryStore + SendLedger
{
}
impl<T> ConsoleStore for T where
    T: ActionStore + ActivityStore + PortfolioKeeperStore + ResultsKeeperStore + DiscoveryStore + SendLedger
{
}

/// What keeps the results page's views: the report's records and where they are kept.
pub trait ResultsKeeperStore: ReportStore + KeptResultsStore {}
impl<T> ResultsKeeperStore for T where T: ReportStore + KeptResultsStore {}

/// The state of one email send, keyed by a deterministic idempotency key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SendRecord {
    /// Claimed before the send by one attempt (`by`, at `since`) and not
    /// settled yet. A claim stored before claims had owners has neither.
    Sending {
        #[serde(default)]
        by: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<Timestamp>,
    },
    Sent {
        message_id: String,
        /// Its subject, for a reply in its thread ("Re: ..."); none for a
        /// send recorded before replies were.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
    },
    Rejected {
        reason: String,
    },
    /// Not sent on its own: named in another email instead, `within` (one
    /// outreach for misses close together; one escalation email a day per leader).
    Included {
        within: String,
        /// The key of the email it was named in (none: recorded before it was kept).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        in_email: Option<milepost_domain::SendKey>,
    },
    /// Handed to the provider without an answer (a reset connection, a
    /// timeout), or left claimed by an attempt that stopped mid-send: it may
    /// or may not have gone. Never sent again blindly, so nobody gets it
    /// twice: the sweep settles it from the provider's own events
    /// (`settle::SendSettler`), as sent when the provider recorded it, or
    /// sent again once, as it was (`email`), when the provider's events
    /// prove it never took it.
    Unknown {
        reason: String,
        /// When the outcome became unknown (none: recorded before settling existed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<Timestamp>,
        /// How many times it was sent again, each after SES provably never
        /// took the attempt before (`settle::MAX_RESENDS` at most).
        #[serde(default, skip_serializing_if = "is_zero")]
        resends: u32,
        /// The email as it was handed over, to send again if it never went.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        email: Option<Box<milepost_domain::OutgoingEmail>>,
    },
}

impl SendRecord {
    /// The record `claim` writes on the key it claims.
    pub fn claimed(claim: &SendClaim) -> Self {
        SendRecord::Sending {
            by: claim.by.clone(),
            since: Some(claim.since),
        }
    }

    /// Whether this is `claim`'s own record (written by it, its answer perhaps lost).
    pub fn is_held_by(&self, claim: &SendClaim) -> bool {
        matches!(self, SendRecord::Sending { by, .. } if *by == claim.by)
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What the mail provider's own event stream said of one email, matched to
/// its send by the `milepost-send` tag (`sending::send_tag`): SES's Send,
/// Delivery, Bounce, Complaint or Delivery Delay mean it took the email;
/// Reject and Rendering Failure that it took the call but will not deliver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendReceipt {
    pub tag: String,
    pub message_id: String,
    /// The provider's event type (`Send`, `Delivery`, `Reject`, ...).
    pub event: String,
    /// When the provider says it took the email.
    pub mail_at: Timestamp,
}

impl SendReceipt {
    /// Whether the provider accepted the email for delivery.
    pub fn accepted(&self) -> bool {
        !matches!(self.event.as_str(), "Reject" | "Rendering Failure")
    }
}

/// The provider's events, kept for settling sends of unknown outcome.
#[async_trait]
pub trait SendReceipts: Send + Sync {
    /// Keeps `receipt` (the first for its tag stands; the rest add nothing)
    /// and moves the stream's watermark to its `mail_at` if that is later.
    async fn record_receipt(&self, receipt: &SendReceipt) -> StoreResult<()>;
    async fn receipt(&self, tag: &str) -> StoreResult<Option<SendReceipt>>;
    /// The latest `mail_at` of any receipt: how far the stream has reported.
    async fn stream_watermark(&self) -> StoreResult<Option<Timestamp>>;
}

/// How long a send claim stands for an attempt that is still sending: past
/// it (a Lambda runs 15 minutes at most) the attempt stopped mid-send.
pub const SEND_LEASE: chrono::Duration = chrono::Duration::minutes(15);

/// One attempt's hold on a send key: who, since when (`SendClaim::fresh`
/// for a new attempt; `SendRecord::claimed` is what it writes).
pub type SendClaim = milepost_domain::Claim;

#[async_trait]
pub trait SendLedger: Send + Sync {
    /// Keeps a sent email's HTML for the pages of the accounts it is about;
    /// keeping it again changes nothing.
    async fn archive_email(&self, sent: &milepost_domain::SentEmail, html: &str) -> StoreResult<()>;
    /// The email sent under `key`, and its HTML.
    async fn archived_email(&self, key: &str) -> StoreResult<Option<(milepost_domain::SentEmail, String)>>;

    /// Claims the key for sending. `Ok(None)`: claimed by `claim` (now, or by
    /// its own earlier write whose answer was lost), go ahead.
    /// `Ok(Some(record))`: someone else's claim or a settled send; do not send.
    async fn claim_send(&self, key: &SendKey, claim: &SendClaim) -> StoreResult<Option<SendRecord>>;
    /// What became of the key so far, without claiming it.
    async fn send_record(&self, key: &SendKey) -> StoreResult<Option<SendRecord>>;
    async fn settle_send(&self, key: &SendKey, record: &SendRecord) -> StoreResult<()>;
    /// Gives `claim` back after a failure that sent nothing, so a retry can
    /// send; a key claimed by anyone else, or settled, is left as it is.
    async fn release_send(&self, key: &SendKey, claim: &SendClaim) -> StoreResult<()>;
    /// Writes `record` in place of `expected`, only if the key still holds
    /// `expected`; whether it did.
    async fn replace_send(&self, key: &SendKey, expected: &SendRecord, record: &SendRecord) -> StoreResult<bool>;
    /// Keys whose send became `Unknown` and is not settled yet (`settle_send`
    /// of an `Unknown` record lists its key), at most `limit`.
    async fn unsettled_sends(&self, limit: usize) -> StoreResult<Vec<SendKey>>;
    /// Takes `key` off the unsettled list.
    async fn forget_unsettled(&self, key: &SendKey) -> StoreResult<()>;
}

/// Tasks and the escalation log they are recorded on.
pub trait TaskLedger: TaskStore + EscalationLog {}
impl<T> TaskLedger for T where T: TaskStore + EscalationLog {}

/// What ingestion reads and writes: events applied, accounts onboarded from
/// group calls, their milestones created, events parked, and the tasks of
/// milestones the customer caught up with closed.
pub trait IngestStore:
    EventStore + AccountStore + MapStore + MilestoneStore + DedupeStore + ParkingStore + TaskLedger + SuccessPlanStore
{
}
impl<T> IngestStore for T where
    T: EventStore
        + AccountStore
        + MapStore
        + MilestoneStore
        + DedupeStore
        + ParkingStore
        + TaskLedger
        + SuccessPlanStore
{
}

/// What people's actions (links, the CLI, the API) read and write.
pub trait ActionStore: IngestStore + PauseStore + ContactStore {}
impl<T> ActionStore for T where T: IngestStore + PauseStore + ContactStore {}

/// What the sweep's task reminders
/// and held-back lists read and write.
pub trait ReminderStore: TaskLedger + AccountStore + MilestoneStore + SendLedger + HeldBackListStore {}
impl<T> ReminderStore for T where T: TaskLedger + AccountStore + MilestoneStore + SendLedger + HeldBackListStore {}

/// One record of `RecordScan`.
#[derive(Debug)]
pub enum Record {
    Account(Arc<Account>),
    Milestone(Box<TrackedMilestone>),
    /// A stored milestone map (the report states how its discovered weights stand).
    Map(Box<MilestoneMap>),
}

#[async_trait]
pub trait RecordScan: Send + Sync {
    /// Every account, tracked milestone and map, a page at a time, in no set
    /// order: `milepost report` and the weekly digest read them all. On
    /// DynamoDB one Scan of the table (the README states its cost); never on
    /// a request path.
    async fn records_page(&self, after: Option<String>) -> StoreResult<Page<Record>>;
}

/// What the report and the leadership digest read.
pub trait ReportStore: RecordScan + TaskStore {}
impl<T> ReportStore for T where T: RecordScan + TaskStore {}

/// What the weekly digest reads and writes: the report's records, the send
/// ledger, and for the quarterly map review the kept discovery and comparison.
pub trait WeeklyDigestStore: ReportStore + SendLedger + DiscoveryStore {}
impl<T> WeeklyDigestStore for T where T: ReportStore + SendLedger + DiscoveryStore {}

/// What the sweep reads and writes: due milestones and their accounts.
pub trait SweepStore: MilestoneStore + AccountStore {}
impl<T> SweepStore for T where T: MilestoneStore + AccountStore {}

/// What the playbook's steps read and write.
pub trait PlaybookStore:
    MilestoneStore
    + AccountStore
    + ActivityStore
    + TaskLedger
    + SendLedger
    + PauseStore
    + ContactStore
    + LeaderQueueStore
    + HeldBackListStore
{
}
impl<T> PlaybookStore for T where
    T: MilestoneStore
        + AccountStore
        + ActivityStore
        + TaskLedger
        + SendLedger
        + PauseStore
        + ContactStore
        + LeaderQueueStore
        + HeldBackListStore
{
}

/// Everything Milepost keeps: what one process running the whole pipeline
/// (the demo, the tests) wires in once.
pub trait Store:
    IngestStore
    + SweepStore
    + PlaybookStore
    + ActionStore
    + ReminderStore
    + ReportStore
    + WeeklyDigestStore
    + SettleStore
    + ConsoleStore
    + WebhookStore
    + SlackPostStore
    + CrmSyncStore
    + SuccessPlanStore
{
}
impl<T> Store for T where
    T: IngestStore
        + SweepStore
        + PlaybookStore
        + ActionStore
        + ReminderStore
        + ReportStore
        + WeeklyDigestStore
        + SettleStore
        + ConsoleStore
        + WebhookStore
        + SlackPostStore
        + CrmSyncStore
        + SuccessPlanStore
{
}

/// What settling sends of unknown outcome reads and writes: the ledger, the
/// provider's receipts, and whether a customer email is still wanted (the
/// milestone, the account's pause, the recipient's suppression).
pub trait SettleStore: SendLedger + SendReceipts + MilestoneStore + ContactStore + PauseStore {}
impl<T> SettleStore for T where T: SendLedger + SendReceipts + MilestoneStore + ContactStore + PauseStore {}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// A passing fault the provider answered (a 5xx): nothing was sent, try again.
    #[error("transient send failure: {0}")]
    Transient(String),
    /// Over the provider's sending rate or quota: nothing was sent; send it later.
    #[error("sending rate exceeded: {0}")]
    Throttled(String),
    /// Handed over without an answer (a reset connection, a timeout): it may
    /// or may not have gone, and sending again could deliver it twice.
    #[error("send outcome unknown: {0}")]
    Unknown(String),
    /// The address was rejected or is suppressed: trying again will not help.
    #[error("permanent send failure: {0}")]
    Permanent(String),
}

#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends one email; returns the provider's message id.
    async fn send(&self, email: &OutgoingEmail) -> Result<String, SendError>;
}

/// The bus did not take the events; its error is the source.
#[derive(Debug, thiserror::Error)]
#[error("publishing to the event bus failed")]
pub struct PublishError(#[source] pub BoxError);

impl PublishError {
    pub fn new(source: impl Into<BoxError>) -> Self {
        PublishError(source.into())
    }
}

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

/// The workflow service did not start or stop an execution; its error is the source.
#[derive(Debug, thiserror::Error)]
#[error("the workflow service failed")]
pub struct WorkflowError(#[source] pub BoxError);

impl WorkflowError {
    pub fn new(source: impl Into<BoxError>) -> Self {
        WorkflowError(source.into())
    }
}

#[async_trait]
pub trait WorkflowStarter: Send + Sync {
    async fn start(&self, request: &EscalationRequest) -> Result<StartOutcome, WorkflowError>;
    /// Stops a running escalation because the customer caught up.
    async fn stop(&self, execution: &str, stage_reached: Option<Stage>) -> Result<(), WorkflowError>;
}

/// Outbound webhooks' endpoints and deliveries (`webhooks.rs`).
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Every endpoint registered (a handful: one read).
    async fn webhook_endpoints(&self) -> StoreResult<Vec<WebhookEndpoint>>;
    /// Creates the endpoint unless its id is taken; returns whether it was created.
    async fn create_webhook_endpoint(&self, endpoint: &WebhookEndpoint) -> StoreResult<bool>;
    /// Writes `endpoint` if the stored version is still `endpoint.version`,
    /// storing `version + 1`. Returns the new version, or `Conflict`.
    async fn update_webhook_endpoint(&self, endpoint: &WebhookEndpoint) -> StoreResult<u64>;
    /// Removes the endpoint; returns whether there was one. Its deliveries stay (and expire).
    async fn delete_webhook_endpoint(&self, id: &str) -> StoreResult<bool>;
    /// Creates the delivery unless one of its event to its endpoint exists
    /// (an event delivered to Milepost's consumer twice is delivered onward once).
    async fn create_delivery(&self, delivery: &Delivery) -> StoreResult<bool>;
    async fn get_delivery(&self, endpoint_id: &str, event_id: &str) -> StoreResult<Option<Delivery>>;
    /// Writes `delivery` on the version read, as `update_webhook_endpoint`.
    async fn update_delivery(&self, delivery: &Delivery) -> StoreResult<u64>;
    /// Pending deliveries due at `now`, soonest first, at most `limit`: a
    /// sparse index, never a scan.
    async fn due_deliveries(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<Delivery>>;
    /// One endpoint's deliveries still kept, newest first.
    async fn endpoint_deliveries(&self, endpoint_id: &str) -> StoreResult<Vec<Delivery>>;
}

/// One signed webhook request.
#[derive(Clone, Debug)]
pub struct WebhookPost<'a> {
    pub url: &'a str,
    pub headers: Vec<(&'static str, String)>,
    pub body: &'a str,
}

/// What the endpoint answered (or that it did not), and the wait it asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostAnswer {
    pub result: AttemptResult,
    pub retry_after: Option<chrono::Duration>,
}

/// Sends one webhook request: no redirects followed, no retries of its own.
#[async_trait]
pub trait WebhookPoster: Send + Sync {
    async fn post(&self, post: WebhookPost<'_>) -> PostAnswer;
}

/// A CSM task's Slack messages (`slack::posts`): one per task and audience.
#[async_trait]
pub trait SlackPostStore: Send + Sync {
    /// Creates the message record unless the task has one for its audience.
    async fn create_slack_post(&self, post: &SlackPost) -> StoreResult<bool>;
    /// The task's message records (one per audience), by audience.
    async fn slack_posts(&self, task_id: &str) -> StoreResult<Vec<SlackPost>>;
    /// Writes `post` on the version read, storing `version + 1`; `Conflict` otherwise.
    async fn update_slack_post(&self, post: &SlackPost) -> StoreResult<u64>;
    /// Messages owed something at `now`, soonest first, at most `limit`: a
    /// sparse index, never a scan.
    async fn due_slack_posts(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<SlackPost>>;
}

/// Slack's Web API, as much as Milepost calls (a bot token's `chat:write`,
/// `users:read.email`, `im:write` and the history scopes). Each call answers
/// a `SlackOutcome` on failure, so the caller knows whether to wait, retry,
/// give up, or look before posting again.
#[async_trait]
pub trait SlackApi: Send + Sync {
    /// The user Slack knows by this address (`users.lookupByEmail`); none when it knows none.
    async fn user_by_email(&self, email: &str) -> Result<Option<String>, SlackOutcome>;
    /// A user's address (`users.info`), for acting as them.
    async fn user_email(&self, user: &str) -> Result<Option<String>, SlackOutcome>;
    /// Posts to `target`, a channel or (a direct message) a user (`chat.postMessage`).
    async fn post(&self, target: &str, message: &SlackMessage) -> SlackOutcome;
    /// Replaces the message at `channel`/`ts` (`chat.update`).
    async fn update(&self, channel: &str, ts: &str, message: &SlackMessage) -> SlackOutcome;
    /// Our message in `target` since `since` whose block `block_id` names
    /// it (`conversations.history`): its channel and `ts`.
    async fn find(
        &self,
        target: &str,
        since: Timestamp,
        block_id: &str,
    ) -> Result<Option<(String, String)>, SlackOutcome>;
    /// Tells the person who pressed a button, and them only, through the
    /// interaction's `response_url` (Slack's own address; others are not posted to).
    async fn respond(&self, response_url: &str, text: &str) -> Result<(), SlackOutcome>;
}

/// Which of the CRM's records an operator lists (`milepost crm`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrmList {
    /// Accounts with no company found, and tasks waiting for one.
    Unmatched,
    /// Given up: kept until replayed.
    Dead,
}

/// Each account's company and CSM tasks in the CRM (`crm`): one record per
/// account's company and per task, under the account.
#[async_trait]
pub trait CrmSyncStore: Send + Sync {
    /// Creates the record unless its account has one for what it mirrors.
    async fn create_crm_sync(&self, sync: &CrmSync) -> StoreResult<bool>;
    /// The account's records: its company's and its tasks'.
    async fn crm_syncs(&self, account: &AccountId) -> StoreResult<Vec<CrmSync>>;
    /// Writes `sync` on the version read, storing `version + 1`; `Conflict` otherwise.
    async fn update_crm_sync(&self, sync: &CrmSync) -> StoreResult<u64>;
    /// Records owed something at `now`, soonest first, at most `limit` (a sparse index).
    async fn due_crm_syncs(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<CrmSync>>;
    /// The records unmatched, or dead, at most `limit`.
    async fn listed_crm_syncs(&self, list: CrmList, limit: usize) -> StoreResult<Vec<CrmSync>>;
    /// A value the CRM's sync keeps by `key` (`crm::keys`: the properties'
    /// version made, the deals read up to, a company's account).
    async fn crm_value(&self, key: &str) -> StoreResult<Option<String>>;
    async fn set_crm_value(&self, key: &str, value: &str) -> StoreResult<()>;
}

/// A CRM record's properties, by internal name, as HubSpot takes them (text).
pub type CrmProperties = std::collections::BTreeMap<String, String>;

/// A property Milepost keeps on a CRM object (`crm::properties`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrmProperty {
    pub name: &'static str,
    pub label: &'static str,
    pub description: &'static str,
    /// HubSpot's `type` (`string`, `number`, `date`, `datetime`, `enumeration`) and `fieldType`.
    pub kind: &'static str,
    pub field_type: &'static str,
    /// An enumeration's options: value and label.
    pub options: &'static [(&'static str, &'static str)],
}

/// HubSpot's CRM API, as much as Milepost calls (a private app's token with
/// the companies', tasks' and owners' scopes). Each call answers a
/// `CrmOutcome` on failure, so the caller knows whether to wait, retry,
/// give up, or look before creating again.
#[async_trait]
pub trait HubSpotApi: Send + Sync {
    /// Creates Milepost's property group on `object` (`companies`, `tasks`); one already there is fine.
    async fn create_property_group(&self, object: &str) -> Result<(), CrmOutcome>;
    /// Creates `property` on `object`; one already there is fine.
    async fn create_property(&self, object: &str, property: &CrmProperty) -> Result<(), CrmOutcome>;
    /// The companies whose domain is `domain` (the search API), at most a few.
    async fn companies_with_domain(&self, domain: &str) -> Result<Vec<String>, CrmOutcome>;
    /// Writes `properties` on company `id`.
    async fn update_company(&self, id: &str, properties: &CrmProperties) -> CrmOutcome;
    /// The CRM user with this address (the owners API); none when there is none.
    async fn owner_id(&self, email: &str) -> Result<Option<String>, CrmOutcome>;
    /// Creates a task with `properties`, associated with company `company_id`.
    async fn create_task(&self, company_id: &str, properties: &CrmProperties) -> CrmOutcome;
    /// Writes `properties` on task `id`.
    async fn update_task(&self, id: &str, properties: &CrmProperties) -> CrmOutcome;
    /// The CRM's task mirroring Milepost's task `task_id` (by its `milepost_task_id`).
    async fn find_task(&self, task_id: &str) -> Result<Option<String>, CrmOutcome>;
    /// Deals in one of `stages` (of `pipeline`, if given) changed at or after
    /// `since`, oldest change first, a page at a time (`after`: the page's cursor).
    async fn deals_changed(
        &self,
        since: Timestamp,
        stages: &[String],
        pipeline: Option<&str>,
        after: Option<&str>,
    ) -> Result<DealPage, CrmOutcome>;
    /// The companies a deal is associated with.
    async fn deal_companies(&self, deal_id: &str) -> Result<Vec<String>, CrmOutcome>;
}

/// One page of deals.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DealPage {
    pub deals: Vec<milepost_domain::crm::Deal>,
    /// Where the next page starts; none: the last.
    pub next: Option<String>,
}

pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

pub use milepost_domain::claim::fresh_claimant;
