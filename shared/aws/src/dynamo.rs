//! The DynamoDB store: one table for everything Milepost keeps.
//!
//! Keys, by access pattern (the only place they are built):
//!
//! | item                | pk                       | sk                    | index keys (sparse)                          |
//! |---------------------|--------------------------|-----------------------|----------------------------------------------|
//! | account profile     | `ACCOUNT#<account>`      | `STATE#PROFILE`       |                                              |
//! | tracked milestone   | `ACCOUNT#<account>`      | `STATE#MILESTONE#<id>`| `due_pk` = `DUE#<shard>`, `due_sk` = `<due>#<account>#<id>` while the sweep has work on it; `heads_up_pk` = `HEADSUP#<shard>`, `heads_up_sk` = `<look at>#<account>#<id>` while its heads-up may come |
//! | account activity    | `ACCOUNT#<account>`      | `STATE#ACTIVITY`      | compact: `days`, `recent` (see `activity_item`) |
//! | escalation log      | `ACCOUNT#<account>`      | `LOG#<key>`           |                                              |
//! | milestone map       | `MAP#<segment>`          | `TENURE#<tenure\|any>` |                                              |
//! | event dedupe        | `DEDUPE#<account>`       | `EVENT#<event id>`    | TTL `expires_at`                             |
//! | parked event        | `PARKED#<account>`       | `EVENT#<event id>`    | TTL `expires_at`                             |
//! | customer-email pause| `ACCOUNT#<account>`      | `PAUSE`               |                                              |
//! | CSM task            | `TASK#<task id>`         | `TASK`                | `owner_pk` = `OWNER#<email>`, `owner_sk` = `<status>#<opened>#<id>`; `due_pk` = `TASKS#<status>`, `due_sk` = `<opened>#<id>` (snoozed: `<until>#<id>`) |
//! | email send record   | `SEND#<key>`             | `SEND`                |                                              |
//! | customer contact    | `CONTACT#<link digest>`  | `CONTACT`             |                                              |
//! | suppressed address  | `SUPPRESSED`             | `EMAIL#<address>`     |                                              |
//! | leader's queue      | `LEADER#<address>`       | `QUEUE`               |                                              |
//! | owner's digest      | `DIGESTS`                | `OWNER#<address>`     |                                              |
//! | unsettled send      | `UNSETTLED`              | `<send key>`          | (listed while an unknown outcome waits)      |
//! | provider's receipt  | `RECEIPT#<send tag>`     | `RECEIPT`             | TTL `expires_at`                             |
//! | receipts' watermark | `SES#STREAM`             | `SES#STREAM`          |                                              |
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
//!   while a pending milestone's heads-up is unsent, keyed by when to look.
//! - Tasks by owner (and status): the `owner` GSI. Tasks by status, and
//!   snoozes that are over: their `TASKS#<status>` partition of the `due`
//!   GSI (task traffic is light: a partition per status is not hot).
//! - Every write that must not happen twice is conditional: milestones on
//!   their `version`, creations on `attribute_not_exists(pk)`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, Put, PutRequest, ScalarAttributeType, TimeToLiveSpecification, TransactWriteItem, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

use milepost_app::ports::{
    AccountStore, ActivityStore, ContactStore, DedupeStore, EscalationLog, EventStore, EventsApplied, LeaderQueueStore,
    MapStore, MilestoneStore, OwnerDigestStore, Page, ParkingStore, PauseStore, SendClaim, SendLedger, SendReceipt,
    SendReceipts, SendRecord, StoreError, StoreResult, TaskStore,
};
use milepost_domain::suppression::suppression_key;
use milepost_domain::{
    Account, AccountActivity, AccountId, AccountState, Announcements, ContactRecord, CsmTask, CustomerEmailPause,
    EmailAddress, EscalationLogEntry, LeaderQueue, MapSegment, MilestoneMap, OwnerDigest, ProductEvent, Segment,
    Suppression, TaskStatus, Tenure, Timestamp, TrackedMilestone,
};

/// Partitions of the due index. Eight spreads a busy sweep's reads and the
/// writes of milestones coming due over eight partitions (see docs/capacity.md).
pub const DUE_SHARDS: u32 = 8;
/// How long events for an unknown account are kept before they are dropped.
const PARKED_DAYS: i64 = 30;

/// The table's index names, as the SAM template creates them.
const DUE_INDEX: &str = "due";
/// Milestones whose heads-up may be due, by when to look (`heads_up_index_at`).
const HEADS_UP_INDEX: &str = "heads_up";
const OWNER_INDEX: &str = "owner";

pub struct DynamoStore {
    client: Client,
    table: String,
    /// Items read by the sweep's due query, and requests made: for tests and `make bench`.
    due_items_read: AtomicU64,
    heads_up_items_read: AtomicU64,
    requests: Arc<AtomicU64>,
    /// TransactWriteItems requests among them.
    transactions: AtomicU64,
    /// Write and read units the requests made are billed, in tenths (see `Units`).
    units: Arc<Units>,
}

/// The capacity units of what the adapter wrote and read, from the sizes of
/// the items (DynamoDB's rules: a write unit per KB, rounded up per item,
/// doubled in a transaction; a read unit per 4 KB of a query's items, halved
/// when eventually consistent). Kept in tenths so halves add up exactly.
#[derive(Default)]
pub struct Units {
    write_tenths: AtomicU64,
    read_tenths: AtomicU64,
}

impl Units {
    fn write(&self, bytes: usize, transactional: bool) {
        let units = bytes.div_ceil(1024).max(1) as u64 * if transactional { 2 } else { 1 };
        self.write_tenths.fetch_add(units * 10, Ordering::Relaxed);
    }

    fn read(&self, bytes: usize, consistent: bool) {
        let units = bytes.div_ceil(4096).max(1) as u64 * 10;
        self.read_tenths
            .fetch_add(if consistent { units } else { units / 2 }, Ordering::Relaxed);
    }
}

/// An item's size as DynamoDB bills it: attribute names and values, in bytes.
fn item_bytes(item: &Item) -> usize {
    item.iter().map(|(name, value)| name.len() + value_bytes(value)).sum()
}

fn value_bytes(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(v) => v.len(),
        // Numbers: about one byte per two significant digits, plus one.
        AttributeValue::N(v) => v.len().div_ceil(2) + 1,
        AttributeValue::B(v) => v.as_ref().len(),
        AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
        AttributeValue::Ns(v) => v.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
        AttributeValue::L(v) => 3 + v.iter().map(|e| 1 + value_bytes(e)).sum::<usize>(),
        AttributeValue::M(v) => 3 + v.iter().map(|(k, e)| 1 + k.len() + value_bytes(e)).sum::<usize>(),
        _ => 1,
    }
}

/// One DynamoDB item (or key), as the SDK represents it.
type Item = HashMap<String, AttributeValue>;

mod activity_item;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// A service error as the store reports it: DynamoDB's ValidationException
/// (an item over 400 KB, a key too long, a number out of range) can never
/// succeed on a retry, so it is `Invalid`, not a passing `Backend` fault.
fn refused<E: ProvideErrorMetadata + std::fmt::Display>(e: E) -> StoreError {
    if e.code() == Some("ValidationException") {
        StoreError::Invalid(e.to_string())
    } else {
        StoreError::Backend(e.to_string())
    }
}

/// The list of sends of unknown outcome not settled yet (rare: one
/// partition holds them, a key per item).
const UNSETTLED_PK: &str = "UNSETTLED";
/// How far the mail provider's event stream has reported (`SendReceipts`).
const STREAM_PK: &str = "SES#STREAM";
/// How long a provider's receipt is kept: longer than `settle::SETTLE_LIMIT`.
const RECEIPT_DAYS: i64 = 14;

/// DynamoDB's largest partition and sort key values, in bytes.
const MAX_PK_BYTES: usize = 2048;
const MAX_SK_BYTES: usize = 1024;

/// Whether DynamoDB could hold an item under `pk`/`sk`. It answers a request
/// naming a longer key with a ValidationException, reads included (moto
/// checks writes only): a read under such a key finds nothing without
/// asking, and a write is refused as invalid input, never a 503.
fn key_fits(pk: &str, sk: &str) -> bool {
    pk.len() <= MAX_PK_BYTES && sk.len() <= MAX_SK_BYTES
}

fn key_too_long(pk: &str, sk: &str) -> StoreError {
    StoreError::Invalid(format!(
        "a key of {} and {} bytes is longer than DynamoDB's {MAX_PK_BYTES} and {MAX_SK_BYTES}",
        pk.len(),
        sk.len()
    ))
}

/// Sortable text form of an instant: fixed-width RFC 3339 with microseconds, UTC.
fn time_key(t: Timestamp) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn account_pk(id: &AccountId) -> String {
    format!("ACCOUNT#{id}")
}

/// Sort keys of the items applying an event reads, all under `STATE#`.
const STATE_PREFIX: &str = "STATE#";
const PROFILE_SK: &str = "STATE#PROFILE";
const ACTIVITY_SK: &str = "STATE#ACTIVITY";
const MILESTONE_PREFIX: &str = "STATE#MILESTONE#";
/// The account's customer-email pause: beside its state, not under `STATE#`,
/// so applying an event does not read it.
const PAUSE_SK: &str = "PAUSE";

fn milestone_sk(milestone_id: &str) -> String {
    format!("{MILESTONE_PREFIX}{milestone_id}")
}

/// Dedupe records are keyed by account and event id (two accounts may send
/// the same ids); an account's records share a partition with nothing else.
fn dedupe_key(account: &AccountId, event_id: &str) -> (String, String) {
    (format!("DEDUPE#{account}"), format!("EVENT#{event_id}"))
}

fn due_shard(m: &TrackedMilestone) -> u32 {
    let digest = Sha256::digest(format!("{}\u{0}{}", m.account_id, m.milestone_id).as_bytes());
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % DUE_SHARDS
}

fn is_conditional_failure<E: ProvideErrorMetadata>(e: &aws_sdk_dynamodb::error::SdkError<E>) -> bool {
    e.as_service_error()
        .and_then(|se| se.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException" || c == "TransactionCanceledException")
}

/// The most items one TransactWriteItems takes, and the most bytes (4 MB).
const MAX_TRANSACTION_ITEMS: usize = 100;
const MAX_TRANSACTION_BYTES: usize = 4 * 1024 * 1024;
/// How often an activity write lost to a concurrent one is folded again before giving up.
const ACTIVITY_ATTEMPTS: usize = 5;

/// An account's items under `STATE#`, as one query returns them.
struct LoadedAccount {
    account: Option<Arc<Account>>,
    activity: AccountActivity,
    activity_version: Option<u64>,
    /// The stored activity item's size (0: none stored).
    activity_bytes: usize,
    milestones: Vec<TrackedMilestone>,
}

enum Transaction {
    Written,
    /// Only dedupe records' conditions failed, at these positions: their
    /// events were applied before.
    Duplicates(Vec<usize>),
    /// Another writer changed an item since it was read.
    Conflict,
}

fn version_of(item: &Item) -> Option<u64> {
    item.get("version")
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
}

/// A ClientRequestToken unique to one transaction attempt (at most 36 characters).
fn transaction_token() -> String {
    static SENT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let digest = Sha256::digest(format!(
        "{}:{}:{nanos}",
        std::process::id(),
        SENT.fetch_add(1, Ordering::Relaxed)
    ));
    digest.iter().take(18).map(|b| format!("{b:02x}")).collect()
}

/// Sends one query request: its items and the key to continue from.
async fn query_page(req: QueryFluentBuilder) -> StoreResult<(Vec<Item>, Option<Item>)> {
    let out = req.send().await.map_err(|e| refused(e.into_service_error()))?;
    Ok((out.items.unwrap_or_default(), out.last_evaluated_key))
}

async fn scan_page(req: ScanFluentBuilder) -> StoreResult<(Vec<Item>, Option<Item>)> {
    let out = req.send().await.map_err(|e| refused(e.into_service_error()))?;
    Ok((out.items.unwrap_or_default(), out.last_evaluated_key))
}

/// A page's last evaluated key as plain strings (every key attribute here is
/// a string), for a cursor that survives JSON.
fn key_strings(key: Option<Item>) -> Option<HashMap<String, String>> {
    key.filter(|k| !k.is_empty()).map(|k| {
        k.into_iter()
            .filter_map(|(name, v)| v.as_s().ok().cloned().map(|v| (name, v)))
            .collect()
    })
}

/// The start key a cursor's strings stand for.
fn key_item(key: HashMap<String, String>) -> Item {
    key.into_iter().map(|(name, v)| (name, s(v))).collect()
}

fn to_attr<T: Serialize>(value: &T) -> StoreResult<AttributeValue> {
    serde_dynamo::to_attribute_value(value).map_err(backend)
}

fn from_item<T: DeserializeOwned>(item: &HashMap<String, AttributeValue>) -> StoreResult<T> {
    let data = item.get("item").ok_or_else(|| backend("item without data"))?;
    serde_dynamo::from_attribute_value(data.clone()).map_err(backend)
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
            due_items_read: AtomicU64::new(0),
            heads_up_items_read: AtomicU64::new(0),
            requests: Arc::new(AtomicU64::new(0)),
            transactions: AtomicU64::new(0),
            units: Arc::new(Units::default()),
        }
    }

    /// TransactWriteItems requests made so far.
    pub fn transactions(&self) -> u64 {
        self.transactions.load(Ordering::Relaxed)
    }

    /// Write units billed for what this store wrote so far (see `Units`).
    pub fn write_units(&self) -> f64 {
        self.units.write_tenths.load(Ordering::Relaxed) as f64 / 10.0
    }

    /// Read units billed for what this store's queries and reads returned so far.
    pub fn read_units(&self) -> f64 {
        self.units.read_tenths.load(Ordering::Relaxed) as f64 / 10.0
    }

    pub fn due_items_read(&self) -> u64 {
        self.due_items_read.load(Ordering::Relaxed)
    }

    pub fn heads_up_items_read(&self) -> u64 {
        self.heads_up_items_read.load(Ordering::Relaxed)
    }

    /// DynamoDB requests made so far (pages of a query count one each).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn count(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Writes many new milestones with BatchWriteItem (25 a request), without
    /// the conditions `create_milestone` checks: for seeding tests and benchmarks.
    pub async fn seed_milestones(&self, milestones: &[TrackedMilestone]) -> StoreResult<()> {
        for chunk in milestones.chunks(25) {
            let mut writes = Vec::with_capacity(chunk.len());
            for m in chunk {
                let item = Self::milestone_item(m, 1)?;
                self.units.write(item_bytes(&item), false);
                let put = PutRequest::builder().set_item(Some(item)).build().map_err(backend)?;
                writes.push(WriteRequest::builder().put_request(put).build());
            }
            let mut pending = Some(HashMap::from([(self.table.clone(), writes)]));
            while let Some(requests) = pending.take().filter(|r| !r.is_empty()) {
                self.count();
                let out = self
                    .client
                    .batch_write_item()
                    .set_request_items(Some(requests))
                    .send()
                    .await
                    .map_err(|e| refused(e.into_service_error()))?;
                pending = out.unprocessed_items;
            }
        }
        Ok(())
    }

    /// Creates the table as the SAM template defines it (for local runs and tests).
    pub async fn create_table(&self) -> StoreResult<()> {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("complete attribute definition")
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .expect("complete key")
        };
        let gsi = |name: &str, pk: &str, sk: &str| {
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key(pk, KeyType::Hash))
                .key_schema(key(sk, KeyType::Range))
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .expect("complete index")
        };
        self.client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk"))
            .attribute_definitions(attr("sk"))
            .attribute_definitions(attr(DUE_MILESTONES.pk))
            .attribute_definitions(attr(DUE_MILESTONES.sk))
            .attribute_definitions(attr("owner_pk"))
            .attribute_definitions(attr("owner_sk"))
            .attribute_definitions(attr(HEADS_UP_MILESTONES.pk))
            .attribute_definitions(attr(HEADS_UP_MILESTONES.sk))
            .key_schema(key("pk", KeyType::Hash))
            .key_schema(key("sk", KeyType::Range))
            .global_secondary_indexes(gsi(DUE_INDEX, DUE_MILESTONES.pk, DUE_MILESTONES.sk))
            .global_secondary_indexes(gsi(OWNER_INDEX, "owner_pk", "owner_sk"))
            .global_secondary_indexes(gsi(HEADS_UP_INDEX, HEADS_UP_MILESTONES.pk, HEADS_UP_MILESTONES.sk))
            .send()
            .await
            .map_err(|e| refused(e.into_service_error()))?;
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name("expires_at")
                    .enabled(true)
                    .build()
                    .expect("complete TTL spec"),
            )
            .send()
            .await
            .map_err(|e| refused(e.into_service_error()))?;
        Ok(())
    }

    async fn get(&self, pk: String, sk: &str) -> StoreResult<Option<HashMap<String, AttributeValue>>> {
        if !key_fits(&pk, sk) {
            return Ok(None);
        }
        self.count();
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| refused(e.into_service_error()))?;
        self.units.read(out.item.as_ref().map_or(0, item_bytes), true);
        Ok(out.item)
    }

    /// Puts `item`; with `only_new`, only if no item has its key. Returns whether it was written.
    async fn put(
        &self,
        mut item: HashMap<String, AttributeValue>,
        pk: String,
        sk: &str,
        only_new: bool,
    ) -> StoreResult<bool> {
        if !key_fits(&pk, sk) {
            return Err(key_too_long(&pk, sk));
        }
        item.insert("pk".into(), s(pk));
        item.insert("sk".into(), s(sk));
        self.count();
        self.units.write(item_bytes(&item), false);
        let mut req = self.client.put_item().table_name(&self.table).set_item(Some(item));
        if only_new {
            req = req.condition_expression("attribute_not_exists(pk)");
        }
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) if only_new && is_conditional_failure(&e) => Ok(false),
            Err(e) => Err(refused(e.into_service_error())),
        }
    }

    /// Every item a query or scan returns, page by page (past DynamoDB's 1 MB
    /// pages). `page` sends one request from a start key and returns its items
    /// and the key to continue from.
    /// Every item whose partition key starts with `prefix`, in all pages, with
    /// only the `projection` attributes if given. A scan: for operators'
    /// listings, never on a request path.
    async fn scan_pk_prefix(&self, prefix: &str, projection: Option<&str>) -> StoreResult<Vec<Item>> {
        self.all_pages(|start| {
            let req = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("begins_with(pk, :prefix)")
                .expression_attribute_values(":prefix", s(prefix))
                .set_projection_expression(projection.map(String::from))
                .set_exclusive_start_key(start);
            scan_page(req)
        })
        .await
    }

    async fn all_pages<F, Fut>(&self, mut page: F) -> StoreResult<Vec<Item>>
    where
        F: FnMut(Option<Item>) -> Fut,
        Fut: std::future::Future<Output = StoreResult<(Vec<Item>, Option<Item>)>>,
    {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            self.count();
            let (found, last) = page(start.take()).await?;
            // Counted as strongly consistent (every query here is; scans are an upper bound).
            self.units.read(found.iter().map(item_bytes).sum(), true);
            items.extend(found);
            match last {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }

    /// Every item under `pk` whose sort key starts with `sk_prefix`.
    async fn query_all(&self, pk: String, sk_prefix: &str) -> StoreResult<Vec<Item>> {
        if !key_fits(&pk, sk_prefix) {
            return Ok(Vec::new());
        }
        self.all_pages(|start| {
            let req = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(pk.clone()))
                .expression_attribute_values(":prefix", s(sk_prefix))
                .consistent_read(true)
                .set_exclusive_start_key(start);
            query_page(req)
        })
        .await
    }

    /// `value` under `pk`/`sk` and its version, kept in the `version`
    /// attribute (what `put_versioned` writes).
    async fn get_versioned<T: DeserializeOwned>(&self, pk: String, sk: &str) -> StoreResult<Option<(T, u64)>> {
        let Some(item) = self.get(pk, sk).await? else {
            return Ok(None);
        };
        let value = from_item(&item)?;
        Ok(Some((value, version_of(&item).unwrap_or(0))))
    }

    /// Writes `value` under `pk`/`sk` as version `read + 1`, if the stored
    /// one is still `read` (0: none yet); `Conflict` otherwise.
    async fn put_versioned<T: Serialize>(&self, pk: String, sk: &str, value: &T, read: u64) -> StoreResult<u64> {
        let next = read + 1;
        let item = HashMap::from([
            ("pk".to_string(), s(pk)),
            ("sk".to_string(), s(sk)),
            ("item".to_string(), to_attr(value)?),
            ("version".to_string(), AttributeValue::N(next.to_string())),
        ]);
        let put = Put::builder().table_name(&self.table).set_item(Some(item));
        let put = if read == 0 {
            put.condition_expression("attribute_not_exists(pk)")
        } else {
            put.condition_expression("version = :expected")
                .expression_attribute_values(":expected", AttributeValue::N(read.to_string()))
        };
        if self.put_conditionally(put.build().map_err(backend)?).await? {
            Ok(next)
        } else {
            Err(StoreError::Conflict)
        }
    }

    /// Sends one conditional put; `false` when its condition failed.
    async fn put_conditionally(&self, put: Put) -> StoreResult<bool> {
        self.count();
        self.units.write(item_bytes(put.item()), false);
        let Put {
            item,
            table_name,
            condition_expression,
            expression_attribute_values,
            ..
        } = put;
        match self
            .client
            .put_item()
            .table_name(table_name)
            .set_item(Some(item))
            .set_condition_expression(condition_expression)
            .set_expression_attribute_values(expression_attribute_values)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_conditional_failure(&e) => Ok(false),
            Err(e) => Err(refused(e.into_service_error())),
        }
    }

    /// The write of `m` as version `m.version + 1`, if the stored one is still `m.version`.
    /// A full put: it drops the due-index keys when the milestone leaves the index.
    fn milestone_update(&self, m: &TrackedMilestone) -> StoreResult<Put> {
        let item = Self::milestone_item(m, m.version + 1)?;
        Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("version = :expected")
            .expression_attribute_values(":expected", AttributeValue::N(m.version.to_string()))
            .build()
            .map_err(backend)
    }

    /// Writes an account's activity with one UpdateItem over `version`
    /// (`None`: none stored yet); `false` when another writer changed it
    /// since (nothing was written). Billed on the larger of the item before
    /// (`bytes_before`) and after.
    async fn write_activity(
        &self,
        activity: &AccountActivity,
        version: Option<u64>,
        bytes_before: usize,
    ) -> StoreResult<bool> {
        let next = version.unwrap_or(0) + 1;
        let pk = account_pk(&activity.account_id);
        let [(days_name, days), (recent_name, recent)] = activity_item::encode(activity);
        // The item as it will be stored: keys, data and version (a small number), without building it.
        let bytes = pk.len()
            + ACTIVITY_SK.len()
            + "pkskversion".len()
            + days_name.len()
            + value_bytes(&days)
            + recent_name.len()
            + value_bytes(&recent)
            + 2;
        self.count();
        self.units.write(bytes.max(bytes_before), false);
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(ACTIVITY_SK))
            // `item`: where activity stored before the compact form was kept.
            .update_expression("SET #days = :days, #recent = :recent, version = :next REMOVE #item")
            .expression_attribute_names("#days", days_name)
            .expression_attribute_names("#recent", recent_name)
            .expression_attribute_names("#item", "item")
            .expression_attribute_values(":days", days)
            .expression_attribute_values(":recent", recent)
            .expression_attribute_values(":next", AttributeValue::N(next.to_string()));
        let update = match version {
            Some(v) => update
                .condition_expression("version = :expected")
                .expression_attribute_values(":expected", AttributeValue::N(v.to_string())),
            None => update.condition_expression("attribute_not_exists(pk)"),
        };
        match update.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_conditional_failure(&e) => Ok(false),
            Err(e) => Err(refused(e.into_service_error())),
        }
    }

    /// Folds `events` into the account's activity and writes it, reading it
    /// again and folding again when a concurrent request wrote it first:
    /// the fold depends only on the set of events, so nothing is lost or doubled.
    async fn save_activity(
        &self,
        mut activity: AccountActivity,
        mut version: Option<u64>,
        mut bytes: usize,
        events: &[ProductEvent],
    ) -> StoreResult<()> {
        for _ in 0..ACTIVITY_ATTEMPTS {
            if self.write_activity(&activity, version, bytes).await? {
                return Ok(());
            }
            let stored = self.get(account_pk(&activity.account_id), ACTIVITY_SK).await?;
            (activity, version, bytes) = match stored {
                Some(item) => (
                    activity_item::decode(&activity.account_id, &item)?,
                    version_of(&item),
                    item_bytes(&item),
                ),
                None => (AccountActivity::new(activity.account_id.clone()), None, 0),
            };
            let mut changed = false;
            for event in events {
                changed |= activity.record(event);
            }
            if !changed {
                return Ok(()); // the concurrent write had them all
            }
        }
        Err(StoreError::Conflict)
    }

    /// The dedupe record of an applied event, unless a live one exists.
    fn dedupe_record(&self, account: &AccountId, event_id: &str, now: Timestamp, until: Timestamp) -> StoreResult<Put> {
        let (pk, sk) = dedupe_key(account, event_id);
        Put::builder()
            .table_name(&self.table)
            .item("pk", s(pk))
            .item("sk", s(sk))
            .item("expires_at", AttributeValue::N(until.timestamp().to_string()))
            // DynamoDB deletes expired items lazily, so an expired record counts as none.
            .condition_expression("attribute_not_exists(pk) OR expires_at <= :now")
            .expression_attribute_values(":now", AttributeValue::N(now.timestamp().to_string()))
            .build()
            .map_err(backend)
    }

    /// Everything applying an event reads about an account: one query.
    async fn load_account(&self, id: &AccountId) -> StoreResult<LoadedAccount> {
        let mut state = LoadedAccount {
            account: None,
            activity: AccountActivity::new(id.clone()),
            activity_version: None,
            activity_bytes: 0,
            milestones: Vec::new(),
        };
        for item in self.query_all(account_pk(id), STATE_PREFIX).await? {
            match item.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str) {
                Some(PROFILE_SK) => state.account = Some(Arc::new(from_item(&item)?)),
                Some(ACTIVITY_SK) => {
                    state.activity = activity_item::decode(id, &item)?;
                    state.activity_version = version_of(&item);
                    state.activity_bytes = item_bytes(&item);
                }
                Some(sk) if sk.starts_with(MILESTONE_PREFIX) => state.milestones.push(from_item(&item)?),
                _ => {}
            }
        }
        Ok(state)
    }

    /// Writes all puts or none, in one TransactWriteItems (at most
    /// `MAX_TRANSACTION_ITEMS`, `MAX_TRANSACTION_BYTES`). The puts from
    /// `dedupe_from` on are dedupe records: when only their conditions fail,
    /// the answer says which.
    async fn transact<'p>(&self, puts: impl Iterator<Item = &'p Put>, dedupe_from: usize) -> StoreResult<Transaction> {
        let items = puts
            .map(|p| {
                self.units.write(item_bytes(p.item()), true);
                TransactWriteItem::builder().put(p.clone()).build()
            })
            .collect();
        self.count();
        self.transactions.fetch_add(1, Ordering::Relaxed);
        // The token makes the SDK's own retry of a transaction that did go
        // through succeed again instead of failing on the dedupe records.
        let token = transaction_token();
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .client_request_token(token)
            .send()
            .await
        {
            Ok(_) => Ok(Transaction::Written),
            Err(e) => match e.into_service_error() {
                TransactWriteItemsError::TransactionCanceledException(cancelled) => {
                    let reasons = cancelled.cancellation_reasons();
                    if let Some(invalid) = reasons.iter().find(|r| r.code() == Some("ValidationError")) {
                        return Err(StoreError::Invalid(
                            invalid.message().unwrap_or("ValidationError").to_string(),
                        ));
                    }
                    let failed: Vec<(usize, Option<&str>)> = reasons
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| !matches!(r.code(), None | Some("None")))
                        .map(|(i, r)| (i, r.code()))
                        .collect();
                    let only_dedupe = !failed.is_empty()
                        && failed
                            .iter()
                            .all(|&(i, code)| i >= dedupe_from && code == Some("ConditionalCheckFailed"));
                    Ok(if only_dedupe {
                        Transaction::Duplicates(failed.into_iter().map(|(i, _)| i).collect())
                    } else {
                        Transaction::Conflict
                    })
                }
                other => Err(refused(other)),
            },
        }
    }

    /// Writes the milestones' puts, then the dedupe records, in as few
    /// transactions as DynamoDB's limits allow (one, unless there are more
    /// than 100 items or 4 MB). Split, a dedupe record never goes before the
    /// milestones its event changed: a failure in between leaves the event
    /// to be applied again, never remembered without its effect. Returns the
    /// event ids whose dedupe record was live (their events were applied before).
    async fn write_batch(&self, milestones: Vec<Put>, dedupe: Vec<(String, Put)>) -> StoreResult<Vec<String>> {
        let mut duplicates = Vec::new();
        let mut queue: std::collections::VecDeque<(Put, Option<String>)> = milestones
            .into_iter()
            .map(|p| (p, None))
            .chain(dedupe.into_iter().map(|(id, p)| (p, Some(id))))
            .collect();
        while !queue.is_empty() {
            let (mut chunk, mut bytes) = (Vec::new(), 0);
            while let Some((p, _)) = queue.front() {
                let size = item_bytes(p.item());
                if chunk.len() == MAX_TRANSACTION_ITEMS || bytes + size > MAX_TRANSACTION_BYTES {
                    break;
                }
                bytes += size;
                chunk.extend(queue.pop_front());
            }
            while !chunk.is_empty() {
                let dedupe_from = chunk.iter().position(|(_, id)| id.is_some()).unwrap_or(chunk.len());
                match self.transact(chunk.iter().map(|(p, _)| p), dedupe_from).await? {
                    Transaction::Written => break,
                    Transaction::Conflict => return Err(StoreError::Conflict),
                    Transaction::Duplicates(positions) => {
                        // The rest still holds: send it again without the records already there.
                        let mut position = 0;
                        chunk.retain(|(_, id)| {
                            let live = positions.contains(&position);
                            position += 1;
                            if live {
                                duplicates.extend(id.clone());
                            }
                            !live
                        });
                    }
                }
            }
        }
        Ok(duplicates)
    }

    /// The whole item of `m` stored as `version`, keys included.
    /// An account profile, with `traits_at` on top for the conditional writes of group calls.
    fn account_item(account: &Account) -> StoreResult<Item> {
        let mut item = HashMap::from([("item".to_string(), to_attr(account)?)]);
        if let Some(at) = account.traits_at {
            item.insert("traits_at".into(), s(time_key(at)));
        }
        Ok(item)
    }

    /// A task stored as `version`, with its index keys: under its owner by
    /// status and opening time, and in its status's partition of the due
    /// index (a snoozed task by when its snooze ends, so the sweep finds it).
    fn task_item(task: &CsmTask, version: u64) -> StoreResult<Item> {
        let mut stored = task.clone();
        stored.version = version;
        let opened = format!("{}#{}", time_key(task.created_at), task.id);
        let due_sk = match task.snoozed_until {
            Some(until) if task.status == TaskStatus::Snoozed => format!("{}#{}", time_key(until), task.id),
            _ => opened.clone(),
        };
        Ok(HashMap::from([
            ("item".to_string(), to_attr(&stored)?),
            ("version".to_string(), AttributeValue::N(version.to_string())),
            ("owner_pk".to_string(), s(format!("OWNER#{}", task.owner_email))),
            ("owner_sk".to_string(), s(format!("{}#{opened}", task.status))),
            ("due_pk".to_string(), s(task_partition(task.status))),
            ("due_sk".to_string(), s(due_sk)),
        ]))
    }

    fn milestone_item(m: &TrackedMilestone, version: u64) -> StoreResult<HashMap<String, AttributeValue>> {
        let mut stored = m.clone();
        stored.version = version;
        let mut item = HashMap::from([
            ("pk".to_string(), s(account_pk(&m.account_id))),
            ("sk".to_string(), s(milestone_sk(&m.milestone_id))),
            ("item".to_string(), to_attr(&stored)?),
            ("version".to_string(), AttributeValue::N(version.to_string())),
        ]);
        if m.awaits_sweep() {
            item.extend(DUE_MILESTONES.entry(m, m.due_at));
        }
        if let Some(at) = m.heads_up_index_at() {
            item.extend(HEADS_UP_MILESTONES.entry(m, at));
        }
        Ok(item)
    }
}

#[async_trait]
impl AccountStore for DynamoStore {
    async fn put_account(&self, account: &Account) -> StoreResult<()> {
        self.put(Self::account_item(account)?, account_pk(&account.id), PROFILE_SK, false)
            .await?;
        Ok(())
    }

    /// Conditional on the `traits_at` attribute read (absent: none, or no
    /// account at all when `expected` is `None`).
    async fn replace_account(&self, account: &Account, expected: Option<&Account>) -> StoreResult<bool> {
        let mut item = Self::account_item(account)?;
        item.insert("pk".into(), s(account_pk(&account.id)));
        item.insert("sk".into(), s(PROFILE_SK));
        let mut put = Put::builder().table_name(&self.table).set_item(Some(item));
        put = match expected.map(|a| a.traits_at) {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(None) => put.condition_expression("attribute_exists(pk) AND attribute_not_exists(traits_at)"),
            Some(Some(at)) => put
                .condition_expression("traits_at = :read")
                .expression_attribute_values(":read", s(time_key(at))),
        };
        self.put_conditionally(put.build().map_err(backend)?).await
    }

    async fn get_account(&self, id: &AccountId) -> StoreResult<Option<Arc<Account>>> {
        self.get(account_pk(id), PROFILE_SK)
            .await?
            .map(|i| from_item(&i).map(Arc::new))
            .transpose()
    }
}

fn map_key(segment: MapSegment, tenure: Option<Tenure>) -> (String, String) {
    (
        format!("MAP#{}", segment.as_str()),
        format!("TENURE#{}", tenure.map_or("any", Tenure::as_str)),
    )
}

#[async_trait]
impl MapStore for DynamoStore {
    async fn put_map(&self, map: &MilestoneMap) -> StoreResult<()> {
        let (pk, sk) = map_key(map.segment, map.tenure);
        let item = HashMap::from([("item".to_string(), to_attr(map)?)]);
        self.put(item, pk, &sk, false).await?;
        Ok(())
    }

    async fn maps_for(&self, segment: Segment, tenure: Tenure) -> StoreResult<Vec<MilestoneMap>> {
        let mut maps = Vec::new();
        for seg in [MapSegment::Only(segment), MapSegment::All] {
            let (pk, _) = map_key(seg, None);
            for item in self.query_all(pk, "TENURE#").await? {
                let map: MilestoneMap = from_item(&item)?;
                if map.specificity(segment, tenure).is_some() {
                    maps.push(map);
                }
            }
        }
        Ok(maps)
    }
}

#[async_trait]
impl MilestoneStore for DynamoStore {
    async fn create_milestone(&self, m: &TrackedMilestone) -> StoreResult<bool> {
        let item = Self::milestone_item(m, 1)?;
        self.put(item, account_pk(&m.account_id), &milestone_sk(&m.milestone_id), true)
            .await
    }

    async fn get_milestone(&self, account: &AccountId, milestone_id: &str) -> StoreResult<Option<TrackedMilestone>> {
        self.get(account_pk(account), &milestone_sk(milestone_id))
            .await?
            .map(|i| from_item(&i))
            .transpose()
    }

    async fn update_milestone(&self, m: &TrackedMilestone) -> StoreResult<u64> {
        if self.put_conditionally(self.milestone_update(m)?).await? {
            Ok(m.version + 1)
        } else {
            Err(StoreError::Conflict)
        }
    }

    async fn milestones_of(&self, account: &AccountId) -> StoreResult<Vec<TrackedMilestone>> {
        self.query_all(account_pk(account), MILESTONE_PREFIX)
            .await?
            .iter()
            .map(from_item)
            .collect()
    }

    async fn due_milestones(
        &self,
        now: Timestamp,
        after: Option<String>,
        limit: usize,
    ) -> StoreResult<Page<TrackedMilestone>> {
        self.sharded_page(&DUE_MILESTONES, now, after, limit, &self.due_items_read)
            .await
    }

    async fn heads_up_milestones(
        &self,
        now: Timestamp,
        after: Option<String>,
        limit: usize,
    ) -> StoreResult<Page<TrackedMilestone>> {
        self.sharded_page(&HEADS_UP_MILESTONES, now, after, limit, &self.heads_up_items_read)
            .await
    }
}

/// A milestone index spread over `DUE_SHARDS` partitions `<partition>#<shard>`,
/// sorted by `<time>#<account>#<milestone>`.
struct ShardedIndex {
    name: &'static str,
    pk: &'static str,
    sk: &'static str,
    partition: &'static str,
}

/// Milestones the sweep has work on, by due time.
const DUE_MILESTONES: ShardedIndex = ShardedIndex {
    name: DUE_INDEX,
    pk: "due_pk",
    sk: "due_sk",
    partition: "DUE",
};

/// Milestones whose heads-up may be due, by when to look.
const HEADS_UP_MILESTONES: ShardedIndex = ShardedIndex {
    name: HEADS_UP_INDEX,
    pk: "heads_up_pk",
    sk: "heads_up_sk",
    partition: "HEADSUP",
};

impl ShardedIndex {
    /// The index attributes that put `m` in this index under time `at`.
    fn entry(&self, m: &TrackedMilestone, at: Timestamp) -> [(String, AttributeValue); 2] {
        [
            (self.pk.to_string(), s(format!("{}#{}", self.partition, due_shard(m)))),
            (
                self.sk.to_string(),
                s(format!("{}#{}#{}", time_key(at), m.account_id, m.milestone_id)),
            ),
        ]
    }
}

impl DynamoStore {
    /// One page of the milestones of `index` with a time at or before `until`.
    async fn sharded_page(
        &self,
        index: &ShardedIndex,
        until: Timestamp,
        after: Option<String>,
        limit: usize,
        read: &AtomicU64,
    ) -> StoreResult<Page<TrackedMilestone>> {
        // Shard by shard, oldest first in each. The cursor is the shard and
        // DynamoDB's own last evaluated key within it, as JSON.
        let (mut shard, mut start): (u32, Option<HashMap<String, String>>) = match after.as_deref() {
            None => (0, None),
            Some(c) => serde_json::from_str(c).map_err(|_| backend(format!("bad cursor {c:?}")))?,
        };
        let upper = format!("{}~", time_key(until)); // '~' sorts after '#': everything at `until` is included
        let mut items = Vec::new();
        while shard < DUE_SHARDS {
            let start_key = start.take().map(key_item);
            self.count();
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index.name)
                .key_condition_expression("#pk = :shard AND #sk <= :upper")
                .expression_attribute_names("#pk", index.pk)
                .expression_attribute_names("#sk", index.sk)
                .expression_attribute_values(":shard", s(format!("{}#{shard}", index.partition)))
                .expression_attribute_values(":upper", s(upper.clone()))
                .limit((limit - items.len()).max(1) as i32)
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(|e| refused(e.into_service_error()))?;
            let page = out.items.unwrap_or_default();
            read.fetch_add(page.len() as u64, Ordering::Relaxed);
            for item in &page {
                items.push(from_item(item)?);
            }
            match key_strings(out.last_evaluated_key) {
                Some(key) => start = Some(key),
                None => shard += 1,
            }
            if items.len() >= limit {
                let next =
                    (shard < DUE_SHARDS).then(|| serde_json::to_string(&(shard, &start)).expect("cursor serialises"));
                return Ok(Page { items, next });
            }
        }
        Ok(Page { items, next: None })
    }
}

#[async_trait]
impl DedupeStore for DynamoStore {
    async fn seen(&self, account: &AccountId, event_id: &str, now: Timestamp) -> StoreResult<bool> {
        let (pk, sk) = dedupe_key(account, event_id);
        let item = self.get(pk, &sk).await?;
        // DynamoDB deletes expired items lazily (within days), so expiry is checked here too.
        Ok(item
            .and_then(|i| {
                i.get("expires_at")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse::<i64>().ok())
            })
            .is_some_and(|expires| expires > now.timestamp()))
    }

    async fn remember(&self, account: &AccountId, event_id: &str, expires_at: Timestamp) -> StoreResult<()> {
        let (pk, sk) = dedupe_key(account, event_id);
        let item = HashMap::from([(
            "expires_at".to_string(),
            AttributeValue::N(expires_at.timestamp().to_string()),
        )]);
        self.put(item, pk, &sk, false).await?;
        Ok(())
    }
}

#[async_trait]
impl ParkingStore for DynamoStore {
    async fn park(&self, event: &ProductEvent) -> StoreResult<()> {
        // From receipt, never from the event's own time: a far-future date must not make it immortal.
        let expires = chrono::Utc::now() + chrono::Duration::days(PARKED_DAYS);
        let item = HashMap::from([
            ("item".to_string(), to_attr(event)?),
            (
                "expires_at".to_string(),
                AttributeValue::N(expires.timestamp().to_string()),
            ),
        ]);
        self.put(
            item,
            format!("PARKED#{}", event.account_id),
            &format!("EVENT#{}", event.id),
            false,
        )
        .await?;
        Ok(())
    }

    async fn parked_for(&self, account: &AccountId) -> StoreResult<Vec<ProductEvent>> {
        self.query_all(format!("PARKED#{account}"), "EVENT#")
            .await?
            .iter()
            .map(from_item)
            .collect()
    }

    async fn unpark(&self, account: &AccountId, event_id: &str) -> StoreResult<()> {
        self.count();
        self.units.write(0, false); // a delete: a unit per KB of the item, here small
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(format!("PARKED#{account}")))
            .key("sk", s(format!("EVENT#{event_id}")))
            .send()
            .await
            .map_err(|e| refused(e.into_service_error()))?;
        Ok(())
    }

    /// A keys-only count, stopped at `up_to` items: cheap, and only ever for
    /// accounts that are not known yet.
    async fn parked_count(&self, account: &AccountId, up_to: usize) -> StoreResult<usize> {
        let mut counted = 0usize;
        let mut start = None;
        loop {
            self.count();
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(format!("PARKED#{account}")))
                .select(aws_sdk_dynamodb::types::Select::Count)
                .limit(i32::try_from(up_to - counted.min(up_to)).unwrap_or(i32::MAX).max(1))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| refused(e.into_service_error()))?;
            counted += usize::try_from(out.count).unwrap_or(0);
            start = out.last_evaluated_key;
            if start.is_none() || counted >= up_to {
                return Ok(counted.min(up_to));
            }
        }
    }

    async fn parked_accounts(&self) -> StoreResult<Vec<(AccountId, usize)>> {
        // Operators' listing only: a scan limited to parked items, keys only.
        let items = self.scan_pk_prefix("PARKED#", Some("pk")).await?;
        let mut counts: std::collections::BTreeMap<AccountId, usize> = Default::default();
        for item in &items {
            if let Some(AttributeValue::S(pk)) = item.get("pk") {
                let account = pk.strip_prefix("PARKED#").unwrap_or(pk);
                *counts.entry(AccountId::new(account)).or_default() += 1;
            }
        }
        Ok(counts.into_iter().collect())
    }
}

#[async_trait]
impl ActivityStore for DynamoStore {
    async fn activity(&self, account: &AccountId) -> StoreResult<AccountActivity> {
        match self.get(account_pk(account), ACTIVITY_SK).await? {
            Some(i) => activity_item::decode(account, &i),
            None => Ok(AccountActivity::new(account.clone())),
        }
    }
}

#[async_trait]
impl TaskStore for DynamoStore {
    async fn create_task(&self, task: &CsmTask) -> StoreResult<bool> {
        let item = Self::task_item(task, 1)?;
        self.put(item, format!("TASK#{}", task.id), "TASK", true).await
    }

    async fn get_task(&self, id: &str) -> StoreResult<Option<CsmTask>> {
        self.get(format!("TASK#{id}"), "TASK")
            .await?
            .map(|i| from_item(&i))
            .transpose()
    }

    async fn update_task(&self, task: &CsmTask) -> StoreResult<u64> {
        let mut item = Self::task_item(task, task.version + 1)?;
        item.insert("pk".into(), s(format!("TASK#{}", task.id)));
        item.insert("sk".into(), s("TASK"));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("version = :expected")
            .expression_attribute_values(":expected", AttributeValue::N(task.version.to_string()))
            .build()
            .map_err(backend)?;
        if self.put_conditionally(put).await? {
            Ok(task.version + 1)
        } else {
            Err(StoreError::Conflict)
        }
    }

    async fn tasks_for_owner(&self, owner_email: &str, status: Option<TaskStatus>) -> StoreResult<Vec<CsmTask>> {
        let items = self
            .all_pages(|start| {
                let mut req = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(OWNER_INDEX)
                    .expression_attribute_values(":owner", s(format!("OWNER#{owner_email}")))
                    .set_exclusive_start_key(start);
                // DynamoDB takes no empty prefix: all statuses is the owner's whole partition.
                req = match status {
                    Some(st) => req
                        .key_condition_expression("owner_pk = :owner AND begins_with(owner_sk, :status)")
                        .expression_attribute_values(":status", s(format!("{st}#"))),
                    None => req.key_condition_expression("owner_pk = :owner"),
                };
                query_page(req)
            })
            .await?;
        let mut tasks: Vec<CsmTask> = items.iter().map(from_item).collect::<StoreResult<_>>()?;
        // The index orders by status, then opening time: one owner's few tasks sort here.
        tasks.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(tasks)
    }

    async fn tasks_with_status(&self, status: TaskStatus) -> StoreResult<Vec<CsmTask>> {
        let items = self
            .all_pages(|start| {
                let req = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(DUE_INDEX)
                    .key_condition_expression("due_pk = :status")
                    .expression_attribute_values(":status", s(task_partition(status)))
                    .set_exclusive_start_key(start);
                query_page(req)
            })
            .await?;
        let mut tasks: Vec<CsmTask> = items.iter().map(from_item).collect::<StoreResult<_>>()?;
        tasks.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(tasks)
    }

    async fn snoozes_over(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<CsmTask>> {
        self.count();
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(DUE_INDEX)
            .key_condition_expression("due_pk = :snoozed AND due_sk <= :now")
            .expression_attribute_values(":snoozed", s(task_partition(TaskStatus::Snoozed)))
            .expression_attribute_values(":now", s(format!("{}~", time_key(now))))
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| refused(e.into_service_error()))?;
        out.items.unwrap_or_default().iter().map(from_item).collect()
    }
}

#[async_trait]
impl PauseStore for DynamoStore {
    async fn pause_customer_emails(&self, account: &AccountId, pause: &CustomerEmailPause) -> StoreResult<()> {
        let item = HashMap::from([("item".to_string(), to_attr(pause)?)]);
        self.put(item, account_pk(account), PAUSE_SK, false).await?;
        Ok(())
    }

    async fn customer_email_pause(&self, account: &AccountId) -> StoreResult<Option<CustomerEmailPause>> {
        self.get(account_pk(account), PAUSE_SK)
            .await?
            .map(|i| from_item(&i))
            .transpose()
    }
}

/// The due index's partition of the tasks of one status.
fn task_partition(status: TaskStatus) -> String {
    format!("TASKS#{status}")
}

const CONTACT_SK: &str = "CONTACT";
const LEADER_QUEUE_SK: &str = "QUEUE";

fn contact_pk(digest: &str) -> String {
    format!("CONTACT#{digest}")
}

fn leader_pk(leader: &EmailAddress) -> String {
    format!("LEADER#{}", leader.as_str().to_lowercase())
}

/// Every suppressed address sits in one partition: listing them is one
/// Query, and unsubscribes are far too rare to make it hot.
const SUPPRESSED_PK: &str = "SUPPRESSED";

fn suppressed_sk(email: &EmailAddress) -> String {
    format!("EMAIL#{}", suppression_key(email))
}

#[async_trait]
impl ContactStore for DynamoStore {
    async fn contact(&self, digest: &str) -> StoreResult<Option<ContactRecord>> {
        let found = self.get_versioned(contact_pk(digest), CONTACT_SK).await?;
        Ok(found.map(|(contact, version)| ContactRecord { version, ..contact }))
    }

    async fn save_contact(&self, digest: &str, contact: &ContactRecord) -> StoreResult<u64> {
        self.put_versioned(contact_pk(digest), CONTACT_SK, contact, contact.version)
            .await
    }

    async fn suppress(&self, suppression: &Suppression) -> StoreResult<Option<Suppression>> {
        let item = HashMap::from([("item".to_string(), to_attr(suppression)?)]);
        let sk = suppressed_sk(&suppression.email);
        if self.put(item, SUPPRESSED_PK.to_string(), &sk, true).await? {
            return Ok(None);
        }
        self.get(SUPPRESSED_PK.to_string(), &sk)
            .await?
            .map(|i| from_item(&i))
            .transpose()
    }

    async fn suppression(&self, email: &EmailAddress) -> StoreResult<Option<Suppression>> {
        self.get(SUPPRESSED_PK.to_string(), &suppressed_sk(email))
            .await?
            .map(|i| from_item(&i))
            .transpose()
    }

    async fn suppressions(&self) -> StoreResult<Vec<Suppression>> {
        self.query_all(SUPPRESSED_PK.to_string(), "EMAIL#")
            .await?
            .iter()
            .map(from_item)
            .collect()
    }

    async fn unsuppress(&self, email: &EmailAddress) -> StoreResult<bool> {
        self.count();
        self.units.write(0, false); // a delete: a unit per KB of the item, here small
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(SUPPRESSED_PK))
            .key("sk", s(suppressed_sk(email)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| refused(e.into_service_error()))?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }
}

#[async_trait]
impl LeaderQueueStore for DynamoStore {
    async fn leader_queue(&self, leader: &EmailAddress) -> StoreResult<Option<LeaderQueue>> {
        let found = self.get_versioned(leader_pk(leader), LEADER_QUEUE_SK).await?;
        Ok(found.map(|(queue, version)| LeaderQueue { version, ..queue }))
    }

    async fn save_leader_queue(&self, queue: &LeaderQueue) -> StoreResult<u64> {
        self.put_versioned(leader_pk(&queue.leader), LEADER_QUEUE_SK, queue, queue.version)
            .await
    }
}

/// Every owner's digest sits in one partition: the sweep reads them with
/// one Query a run, and there is one item per owner (tens, not millions).
const DIGESTS_PK: &str = "DIGESTS";

fn digest_sk(owner: &EmailAddress) -> String {
    format!("OWNER#{}", owner.as_str().to_lowercase())
}

#[async_trait]
impl OwnerDigestStore for DynamoStore {
    async fn owner_digest(&self, owner: &EmailAddress) -> StoreResult<Option<OwnerDigest>> {
        let found = self.get_versioned(DIGESTS_PK.to_string(), &digest_sk(owner)).await?;
        Ok(found.map(|(digest, version)| OwnerDigest { version, ..digest }))
    }

    async fn save_owner_digest(&self, digest: &OwnerDigest) -> StoreResult<u64> {
        let sk = digest_sk(&digest.owner.email);
        self.put_versioned(DIGESTS_PK.to_string(), &sk, digest, digest.version)
            .await
    }

    async fn owner_digests(&self) -> StoreResult<Vec<OwnerDigest>> {
        self.query_all(DIGESTS_PK.to_string(), "OWNER#")
            .await?
            .iter()
            .map(|item| {
                let digest: OwnerDigest = from_item(item)?;
                Ok(OwnerDigest {
                    version: version_of(item).unwrap_or(0),
                    ..digest
                })
            })
            .collect()
    }
}

#[async_trait]
impl EscalationLog for DynamoStore {
    async fn append_log(&self, entry: &EscalationLogEntry) -> StoreResult<bool> {
        let item = HashMap::from([("item".to_string(), to_attr(entry)?)]);
        self.put(item, account_pk(&entry.account_id), &format!("LOG#{}", entry.key), true)
            .await
    }

    async fn log_of(&self, account: &AccountId) -> StoreResult<Vec<EscalationLogEntry>> {
        let mut entries: Vec<EscalationLogEntry> = self
            .query_all(account_pk(account), "LOG#")
            .await?
            .iter()
            .map(from_item)
            .collect::<StoreResult<_>>()?;
        entries.sort_by_key(|e| e.at);
        Ok(entries)
    }
}

#[async_trait]
impl SendLedger for DynamoStore {
    async fn send_record(&self, key: &str) -> StoreResult<Option<SendRecord>> {
        self.get(format!("SEND#{key}"), "SEND")
            .await?
            .map(|i| from_item(&i))
            .transpose()
    }

    async fn claim_send(&self, key: &str, claim: &SendClaim) -> StoreResult<Option<SendRecord>> {
        let item = HashMap::from([("item".to_string(), to_attr(&claim.record())?)]);
        if self.put(item, format!("SEND#{key}"), "SEND", true).await? {
            return Ok(None);
        }
        let existing = self
            .get(format!("SEND#{key}"), "SEND")
            .await?
            .ok_or(StoreError::Conflict)?;
        let existing: SendRecord = from_item(&existing)?;
        // Our own claim, written by a try whose answer was lost: still ours.
        Ok((!claim.holds(&existing)).then_some(existing))
    }

    async fn settle_send(&self, key: &str, record: &SendRecord) -> StoreResult<()> {
        if matches!(record, SendRecord::Unknown { .. }) {
            // Listed first: a listed key whose record is not unknown is only dropped.
            self.put(HashMap::new(), UNSETTLED_PK.to_string(), key, false).await?;
        }
        let item = HashMap::from([("item".to_string(), to_attr(record)?)]);
        self.put(item, format!("SEND#{key}"), "SEND", false).await?;
        Ok(())
    }

    async fn replace_send(&self, key: &str, expected: &SendRecord, record: &SendRecord) -> StoreResult<bool> {
        let pk = format!("SEND#{key}");
        let mut item = HashMap::from([("item".to_string(), to_attr(record)?)]);
        item.insert("pk".into(), s(pk));
        item.insert("sk".into(), s("SEND"));
        self.count();
        self.units.write(item_bytes(&item), false);
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("#item = :expected")
            .expression_attribute_names("#item", "item")
            .expression_attribute_values(":expected", to_attr(expected)?)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_conditional_failure(&e) => Ok(false),
            Err(e) => Err(refused(e.into_service_error())),
        }
    }

    async fn unsettled_sends(&self, limit: usize) -> StoreResult<Vec<String>> {
        self.count();
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(UNSETTLED_PK))
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| refused(e.into_service_error()))?;
        let items = out.items.unwrap_or_default();
        self.units.read(items.iter().map(item_bytes).sum(), true);
        Ok(items
            .iter()
            .filter_map(|i| i.get("sk").and_then(|v| v.as_s().ok()).cloned())
            .collect())
    }

    async fn forget_unsettled(&self, key: &str) -> StoreResult<()> {
        self.count();
        self.units.write(0, false);
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(UNSETTLED_PK))
            .key("sk", s(key))
            .send()
            .await
            .map_err(|e| refused(e.into_service_error()))?;
        Ok(())
    }

    async fn release_send(&self, key: &str, claim: &SendClaim) -> StoreResult<()> {
        self.count();
        self.units.write(0, false); // a delete: a unit per KB of the item, here small
        let sending = to_attr(&claim.record())?;
        match self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(format!("SEND#{key}")))
            .key("sk", s("SEND"))
            .condition_expression("#item = :sending")
            .expression_attribute_names("#item", "item")
            .expression_attribute_values(":sending", sending)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Ok(()),
            Err(e) => Err(refused(e.into_service_error())),
        }
    }
}

#[async_trait]
impl SendReceipts for DynamoStore {
    async fn record_receipt(&self, receipt: &SendReceipt) -> StoreResult<()> {
        let mut item = HashMap::from([("item".to_string(), to_attr(receipt)?)]);
        let expires = receipt.mail_at + chrono::Duration::days(RECEIPT_DAYS);
        item.insert("expires_at".into(), AttributeValue::N(expires.timestamp().to_string()));
        // The first receipt of an email stands; a later one (Delivery after Send) adds nothing.
        self.put(item, format!("RECEIPT#{}", receipt.tag), "RECEIPT", true)
            .await?;
        let at = time_key(receipt.mail_at);
        self.count();
        self.units.write(64, false);
        let moved = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(STREAM_PK))
            .item("sk", s(STREAM_PK))
            .item("at", s(at.clone()))
            .condition_expression("attribute_not_exists(pk) OR #at < :at")
            .expression_attribute_names("#at", "at")
            .expression_attribute_values(":at", s(at))
            .send()
            .await;
        match moved {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Ok(()), // the stream is already further on
            Err(e) => Err(refused(e.into_service_error())),
        }
    }

    async fn receipt(&self, tag: &str) -> StoreResult<Option<SendReceipt>> {
        self.get(format!("RECEIPT#{tag}"), "RECEIPT")
            .await?
            .map(|i| from_item(&i))
            .transpose()
    }

    async fn stream_watermark(&self) -> StoreResult<Option<Timestamp>> {
        let Some(item) = self.get(STREAM_PK.to_string(), STREAM_PK).await? else {
            return Ok(None);
        };
        let at = item
            .get("at")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| backend("a watermark without its time"))?;
        chrono::DateTime::parse_from_rfc3339(at)
            .map(|t| Some(t.to_utc()))
            .map_err(|e| backend(format!("a watermark of {at:?}: {e}")))
    }
}

#[async_trait]
impl EventStore for DynamoStore {
    /// One query for the account's state; at most one transaction (split
    /// only past DynamoDB's limits) for the dedupe records of the events a
    /// criterion reads and every milestone the events changed, claims on
    /// newly reached ones included; and, when the activity took an event,
    /// one conditional UpdateItem of it. Events no criterion reads cost no
    /// transaction and no dedupe record. A lost race on a milestone is
    /// `Conflict`: nothing was written.
    async fn apply_product_events(
        &self,
        account_id: &AccountId,
        events: &[ProductEvent],
        now: Timestamp,
        remember_until: Timestamp,
        claimant: &str,
    ) -> StoreResult<EventsApplied> {
        let LoadedAccount {
            account,
            mut activity,
            activity_version,
            activity_bytes,
            mut milestones,
        } = self.load_account(account_id).await?;
        let Some(account) = account else {
            return Ok(EventsApplied::UnknownAccount);
        };
        let changes = AccountState {
            account: &account,
            activity: &mut activity,
            milestones: &mut milestones,
        }
        .apply_all(events, now, claimant)?;
        let mut duplicate = vec![false; events.len()];
        let remember = changes.to_remember(events, &mut duplicate);
        let milestone_puts = changes
            .milestones
            .iter()
            .map(|&i| self.milestone_update(&milestones[i]))
            .collect::<StoreResult<Vec<_>>>()?;
        let dedupe = remember
            .iter()
            .map(|id| Ok((id.to_string(), self.dedupe_record(account_id, id, now, remember_until)?)))
            .collect::<StoreResult<Vec<_>>>()?;
        let live = self.write_batch(milestone_puts, dedupe).await?;
        for &i in &changes.milestones {
            milestones[i].version += 1;
        }
        for (event, dup) in events.iter().zip(duplicate.iter_mut()) {
            *dup |= live.contains(&event.id);
        }
        if changes.activity {
            self.save_activity(activity, activity_version, activity_bytes, events)
                .await?;
        }
        Ok(EventsApplied::Known {
            account,
            duplicate,
            announcements: Announcements::of_batch(&changes, &milestones),
        })
    }
}

#[async_trait]
impl milepost_app::ports::RecordScan for DynamoStore {
    /// One page of a Scan of the whole table, filtered to account profiles
    /// and milestones: it reads (and is billed for) every item, about half
    /// a read unit per 4 KB with eventual consistency. The cursor is
    /// DynamoDB's last evaluated key, as JSON.
    async fn records_page(&self, after: Option<String>) -> StoreResult<Page<milepost_app::ports::Record>> {
        use milepost_app::ports::Record;
        let start: Option<HashMap<String, String>> = match after.as_deref() {
            None => None,
            Some(c) => Some(serde_json::from_str(c).map_err(|_| backend(format!("bad cursor {c:?}")))?),
        };
        self.count();
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("sk = :profile OR begins_with(sk, :milestone)")
            .expression_attribute_values(":profile", s(PROFILE_SK))
            .expression_attribute_values(":milestone", s(MILESTONE_PREFIX))
            .projection_expression("pk, sk, #item")
            .expression_attribute_names("#item", "item")
            .set_exclusive_start_key(start.map(key_item))
            .send()
            .await
            .map_err(|e| refused(e.into_service_error()))?;
        let mut items = Vec::new();
        for item in out.items.unwrap_or_default() {
            let sk = item.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str);
            items.push(if sk == Some(PROFILE_SK) {
                Record::Account(Arc::new(from_item(&item)?))
            } else {
                Record::Milestone(Box::new(from_item(&item)?))
            });
        }
        let next = key_strings(out.last_evaluated_key).map(|k| serde_json::to_string(&k).expect("cursor serialises"));
        Ok(Page { items, next })
    }
}
