//! The keys of the one table, by item: the only place they are built.
//!
//! Keys, by access pattern:
//!
//! | item                | pk                       | sk                    | index keys (sparse)                          |
//! |---------------------|--------------------------|-----------------------|----------------------------------------------|
//! | account profile     | `ACCOUNT#<account>`      | `STATE#PROFILE`       |                                              |
//! | tracked milestone   | `ACCOUNT#<account>`      | `STATE#MILESTONE#<id>`| `due_pk` = `DUE#<shard>`, `due_sk` = `<due>#<account>#<id>` while the sweep has work on it; `heads_up_pk` = `HEADSUP#<shard>`, `heads_up_sk` = `<look at>#<account>#<id>` while its heads-up may come, or `heads_up_pk` = `OPENMISS`, `heads_up_sk` = `<account>#<id>` while it is an open miss |
//! | account activity    | `ACCOUNT#<account>`      | `STATE#ACTIVITY`      | compact: `days`, `recent` (see `activity_item`) |
//! | escalation log      | `ACCOUNT#<account>`      | `LOG#<key>`           |                                              |
//! | milestone map       | `MAP#<segment>`          | `TENURE#<tenure\|any>` |                                              |
//! | event dedupe        | `DEDUPE#<account>`       | `EVENT#<event id>`    | TTL `expires_at`                             |
//! | parked event        | `PARKED#<account>`       | `EVENT#<event id>`    | TTL `expires_at`                             |
//! | customer-email pause| `ACCOUNT#<account>`      | `PAUSE`               |                                              |
//! | CSM task            | `TASK#<task id>`         | `TASK`                | `owner_pk` = `OWNER#<email>`, `owner_sk` = `<status>#<opened>#<id>`; `due_pk` = `TASKS#<status>`, `due_sk` = `<opened>#<id>` (snoozed: `<until>#<id>`) |
//! | email send record   | `SEND#<key>`             | `SEND`                |                                              |
//! | customer contact    | `CONTACT#<address fingerprint>`  | `CONTACT`             |                                              |
//! | suppressed address  | `SUPPRESSED`             | `EMAIL#<address>`     |                                              |
//! | leader's queue      | `LEADER#<address>`       | `QUEUE`               |                                              |
//! | held-back list      | `DIGESTS`                | `OWNER#<address>`     |                                              |
//! | unsettled send      | `UNSETTLED`              | `<send key>`          | (listed while an unknown outcome waits)      |
//! | provider's receipt  | `RECEIPT#<send tag>`     | `RECEIPT`             | TTL `expires_at`                             |
//! | receipts' watermark | `SES#STREAM`             | `SES#STREAM`          |                                              |
//! | sent email's copy   | `EMAIL#<send key>`       | `EMAIL`               | `html`; TTL `expires_at` (456 days)          |
//! | its line, per account | `ACCOUNT#<account>`    | `EMAIL#<send key>`    | TTL `expires_at`                             |
//! | kept portfolio row  | `PORTFOLIO`              | `ROW#<account>`       | `as_of` (epoch µs): a write never replaces a later read |
//! | portfolio refreshed | `PORTFOLIO`              | `REFRESHED`           |                                              |
//! | discovery result    | `DISCOVERY`              | `LATEST`              | (the maps page's; the latest replaces it)    |
//! | simulator comparison| `DISCOVERY`              | `COMPARISON`          | (the quarterly review's; the latest replaces it) |
//! | kept results view   | `RESULTS`                | `VIEW#<all\|segment>` | `as_of` (epoch µs), `view` (JSON)            |
//! | task's Slack message | `SLACK#<task id>`       | `POST#<owner\|team>`, a notice `POST#<owner\|team>#<kind>` | `due_pk` = `SLACK#DUE`, `due_sk` = `<when>#<task id>#<audience>#<kind>` while owed a post or an update; TTL `expires_at` (120 days) once not |
//! | CRM record          | `CRM#<account>`          | `SYNC#<company\|task:<id>>` | `due_pk` = `CRM#DUE`, `due_sk` = `<when>#<account>#<record>` while owed a write; `CRM#UNMATCHED` or `CRM#DEAD` (`<since>#...`) while listed; TTL `expires_at` (120 days) once a task's is synced |
//! | CRM sync's values   | `CRM#VALUES`             | `<key>` (`properties`, `deals_cursor`, `company:<id>`) | `value` |
//! | webhook endpoint    | `WEBHOOKS`               | `ENDPOINT#<id>`       |                                              |
//! | webhook delivery    | `WEBHOOK#<endpoint>`     | `DELIVERY#<event id>` | `due_pk` = `WEBHOOKS#DUE`, `due_sk` = `<next attempt>#<endpoint>#<event id>` while pending; TTL `expires_at` (30 days) once delivered or dead |
//!
//! - Everything applying an account's events of one request needs (profile,
//!   activity, milestones): one Query on `pk = ACCOUNT#<account>` and `sk`
//!   beginning `STATE#`, then at most one TransactWriteItems with the dedupe
//!   records of the events a criterion reads and every milestone they
//!   changed, and one UpdateItem of the activity (see `apply_product_events`).
//!   An event no criterion reads: the Query and the UpdateItem.
//! - Milestones due before now, across accounts, oldest first: the `due` GSI,
//!   spread over `DUE_SHARDS` partitions so no partition is hot; an entry
//!   exists only while a milestone is pending (or missed with its escalation
//!   not yet started), so the sweep reads exactly what it acts on.
//! - Milestones whose heads-up may be due (`heads_up_index_at` at or before
//!   now): the `heads_up` GSI, sharded like `due`; an entry exists only
//!   while a pending milestone's heads-up is unsent, keyed by when to look,
//!   or an announced expansion opportunity's owner is untold (under the
//!   milestone's start: due at once).
//! - The open misses (what the portfolio is refreshed from): the `OPENMISS`
//!   partition of the `heads_up` GSI, one Query.
//! - The console's portfolio page: the `PORTFOLIO` partition, one Query of
//!   small items; its account page: the account's partition, one Query.
//! - Tasks by owner (and status): the `owner` GSI. Tasks by status, and
//!   snoozes that are over: their `TASKS#<status>` partition of the `due`
//!   GSI (task traffic is light: a partition per status is not hot).
//! - Outbound webhooks: the endpoints, one Query of the `WEBHOOKS`
//!   partition; deliveries due, the `WEBHOOKS#DUE` partition of the `due`
//!   index (one per pending delivery; webhook traffic is a few events per
//!   milestone change, so one partition is not hot); one endpoint's
//!   deliveries, its partition (operators' listings and replays).
//! - Every write that must not happen twice is conditional: milestones on
//!   their `version`, creations on `attribute_not_exists(pk)`.

use sha2::{Digest, Sha256};

use milepost_app::ports::StoreError;
use milepost_domain::suppression::suppression_key;
use milepost_domain::{AccountId, EmailAddress, MapSegment, TaskStatus, Tenure, Timestamp, TrackedMilestone};

use super::{s, AttributeValue};

/// Partitions of the due index. Eight spreads a busy sweep's reads and the
/// writes of milestones coming due over eight partitions (see docs/capacity.md).
pub const DUE_SHARDS: u32 = 8;
/// How long events for an unknown account are kept before they are dropped.
pub(super) const PARKED_DAYS: i64 = 30;

/// The table's index names, as the SAM template creates them.
pub(super) const DUE_INDEX: &str = "due";
/// Milestones whose heads-up may be due, by when to look (`heads_up_index_at`).
pub(super) const HEADS_UP_INDEX: &str = "heads_up";
pub(super) const OWNER_INDEX: &str = "owner";

/// The list of sends of unknown outcome not settled yet (rare: one
/// partition holds them, a key per item).
pub(super) const UNSETTLED_PK: &str = "UNSETTLED";
/// How far the mail provider's event stream has reported (`SendReceipts`).
pub(super) const STREAM_PK: &str = "SES#STREAM";
/// How long a provider's receipt is kept: longer than `settle::SETTLE_LIMIT`.
pub(super) const RECEIPT_DAYS: i64 = 14;

/// DynamoDB's largest partition and sort key values, in bytes.
pub(super) const MAX_PK_BYTES: usize = 2048;
pub(super) const MAX_SK_BYTES: usize = 1024;

/// Whether DynamoDB could hold an item under `pk`/`sk`. It answers a request
/// naming a longer key with a ValidationException, reads included (moto
/// checks writes only): a read under such a key finds nothing without
/// asking, and a write is refused as invalid input, never a 503.
pub(super) fn key_fits(pk: &str, sk: &str) -> bool {
    pk.len() <= MAX_PK_BYTES && sk.len() <= MAX_SK_BYTES
}

pub(super) fn key_too_long(pk: &str, sk: &str) -> StoreError {
    StoreError::Invalid(format!(
        "a key of {} and {} bytes is longer than DynamoDB's {MAX_PK_BYTES} and {MAX_SK_BYTES}",
        pk.len(),
        sk.len()
    ))
}

/// Sortable text form of an instant: fixed-width RFC 3339 with microseconds, UTC.
pub(super) fn time_key(t: Timestamp) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

pub(super) fn account_pk(id: &AccountId) -> String {
    format!("ACCOUNT#{id}")
}

/// Sort keys of the items applying an event reads, all under `STATE#`.
pub(super) const STATE_PREFIX: &str = "STATE#";
pub(super) const PROFILE_SK: &str = "STATE#PROFILE";
pub(super) const ACTIVITY_SK: &str = "STATE#ACTIVITY";
pub(super) const MILESTONE_PREFIX: &str = "STATE#MILESTONE#";
/// The account's customer-email pause: beside its state, not under `STATE#`,
/// so applying an event does not read it.
pub(super) const PAUSE_SK: &str = "PAUSE";
/// The escalation log's entries, under the account beside its state.
pub(super) const LOG_PREFIX: &str = "LOG#";

pub(super) const TASK_SK: &str = "TASK";

/// A sent email's copy, and its line under each account it is about.
pub(super) const SENT_EMAIL_SK: &str = "EMAIL";
pub(super) const SENT_EMAIL_PREFIX: &str = "EMAIL#";

pub(super) fn sent_email_pk(key: &str) -> String {
    format!("{SENT_EMAIL_PREFIX}{key}")
}

pub(super) fn sent_email_line_sk(key: &str) -> String {
    format!("{SENT_EMAIL_PREFIX}{key}")
}

/// Tasks' Slack messages, and where those owed something are listed.
pub(super) const SLACK_PREFIX: &str = "POST#";
pub(super) const SLACK_DUE_PK: &str = "SLACK#DUE";

pub(super) fn slack_pk(task_id: &str) -> String {
    format!("SLACK#{task_id}")
}

/// The task's own message `POST#<audience>` (as first stored); a notice about it `POST#<audience>#<kind>`.
pub(super) fn slack_sk(audience: &str, kind: milepost_domain::slack::MessageKind) -> String {
    match kind {
        milepost_domain::slack::MessageKind::Task => format!("{SLACK_PREFIX}{audience}"),
        notice => format!("{SLACK_PREFIX}{audience}#{}", notice.as_str()),
    }
}

/// The CRM's records, under their account; where those owed a write, unmatched or dead are listed.
pub(super) const CRM_PREFIX: &str = "SYNC#";
pub(super) const CRM_DUE_PK: &str = "CRM#DUE";
pub(super) const CRM_UNMATCHED_PK: &str = "CRM#UNMATCHED";
pub(super) const CRM_DEAD_PK: &str = "CRM#DEAD";
pub(super) const CRM_VALUES_PK: &str = "CRM#VALUES";

pub(super) fn crm_pk(account: &AccountId) -> String {
    format!("CRM#{account}")
}

pub(super) fn crm_sk(record: &str) -> String {
    format!("{CRM_PREFIX}{record}")
}

/// Outbound webhooks' endpoints, and where pending deliveries are listed.
pub(super) const WEBHOOKS_PK: &str = "WEBHOOKS";
pub(super) const ENDPOINT_PREFIX: &str = "ENDPOINT#";
pub(super) const DELIVERY_PREFIX: &str = "DELIVERY#";
pub(super) const DELIVERIES_DUE_PK: &str = "WEBHOOKS#DUE";

pub(super) fn endpoint_sk(id: &str) -> String {
    format!("{ENDPOINT_PREFIX}{id}")
}

pub(super) fn webhook_endpoint_pk(id: &str) -> String {
    format!("WEBHOOK#{id}")
}

pub(super) fn delivery_sk(event_id: &str) -> String {
    format!("{DELIVERY_PREFIX}{event_id}")
}

pub(super) fn task_pk(id: &str) -> String {
    format!("TASK#{id}")
}

pub(super) fn milestone_sk(milestone_id: &str) -> String {
    format!("{MILESTONE_PREFIX}{milestone_id}")
}

/// Dedupe records are keyed by account and event id (two accounts may send
/// the same ids); an account's records share a partition with nothing else.
pub(super) fn dedupe_key(account: &AccountId, event_id: &str) -> (String, String) {
    (format!("DEDUPE#{account}"), format!("EVENT#{event_id}"))
}

pub(super) fn due_shard(m: &TrackedMilestone) -> u32 {
    let digest = Sha256::digest(format!("{}\u{0}{}", m.account_id(), m.milestone_id()).as_bytes());
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % DUE_SHARDS
}

/// Every map's partition key begins with it.
pub(super) const MAP_PREFIX: &str = "MAP#";

pub(super) fn map_key(segment: MapSegment, tenure: Option<Tenure>) -> (String, String) {
    (
        format!("{MAP_PREFIX}{}", segment.as_str()),
        format!("TENURE#{}", tenure.map_or("any", Tenure::as_str)),
    )
}

/// A milestone index spread over `DUE_SHARDS` partitions `<partition>#<shard>`,
/// sorted by `<time>#<account>#<milestone>`.
pub(super) struct ShardedIndex {
    pub(super) name: &'static str,
    pub(super) pk: &'static str,
    pub(super) sk: &'static str,
    pub(super) partition: &'static str,
}

/// The open misses (`MissStage::of`), for the console's portfolio: a
/// partition of the `heads_up` index of their own (an open miss never waits
/// for a heads-up, so a milestone is in one or the other), sorted by
/// `<account>#<milestone>`. One partition: misses change state hours apart,
/// and the portfolio reads them all with one Query (a page per MB).
pub(super) const OPEN_MISS_PARTITION: &str = "OPENMISS";

/// Milestones the sweep has work on, by due time.
pub(super) const DUE_MILESTONES: ShardedIndex = ShardedIndex {
    name: DUE_INDEX,
    pk: "due_pk",
    sk: "due_sk",
    partition: "DUE",
};

/// Milestones whose heads-up may be due, by when to look.
pub(super) const HEADS_UP_MILESTONES: ShardedIndex = ShardedIndex {
    name: HEADS_UP_INDEX,
    pk: "heads_up_pk",
    sk: "heads_up_sk",
    partition: "HEADSUP",
};

impl ShardedIndex {
    /// The index attributes that put `m` in this index under time `at`.
    pub(super) fn entry(&self, m: &TrackedMilestone, at: Timestamp) -> [(String, AttributeValue); 2] {
        [
            (self.pk.to_string(), s(format!("{}#{}", self.partition, due_shard(m)))),
            (
                self.sk.to_string(),
                s(format!("{}#{}#{}", time_key(at), m.account_id(), m.milestone_id())),
            ),
        ]
    }
}

/// The due index's partition of the tasks of one status.
pub(super) fn task_partition(status: TaskStatus) -> String {
    format!("TASKS#{status}")
}

pub(super) const CONTACT_SK: &str = "CONTACT";
pub(super) const LEADER_QUEUE_SK: &str = "QUEUE";

pub(super) fn contact_pk(fingerprint: &str) -> String {
    format!("CONTACT#{fingerprint}")
}

pub(super) fn leader_pk(leader: &EmailAddress) -> String {
    format!("LEADER#{}", leader.as_str().to_lowercase())
}

/// Every suppressed address sits in one partition: listing them is one
/// Query, and unsubscribes are far too rare to make it hot.
pub(super) const SUPPRESSED_PK: &str = "SUPPRESSED";

pub(super) fn suppressed_sk(email: &EmailAddress) -> String {
    format!("EMAIL#{}", suppression_key(email))
}

/// Every held-back list sits in one partition: the sweep reads them with
/// one Query a run, and there is one item per owner (tens, not millions).
/// (`DIGESTS`: the partition's name since held-back lists were "owners'
/// digests"; items stored then are read as they are.)
pub(super) const HELD_BACK_PK: &str = "DIGESTS";

pub(super) fn held_back_sk(owner: &EmailAddress) -> String {
    format!("OWNER#{}", owner.as_str().to_lowercase())
}
