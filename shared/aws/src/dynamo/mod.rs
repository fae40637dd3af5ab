//! The DynamoDB store: one table for everything Milepost keeps, one module
//! per aggregate. The keys of every item, and the access patterns they
//! serve, are in `keys`; the table's definition is in `schema`.

use std::collections::HashMap;
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
    AccountStore, ActivityStore, ContactStore, DedupeStore, EscalationLog, EventStore, EventsApplied,
    HeldBackListStore, LeaderQueueStore, MapStore, MilestoneStore, OpenMissIndex, Page, ParkingStore, PauseStore,
    SendClaim, SendLedger, SendReceipt, SendReceipts, SendRecord, StoreError, StoreResult, TaskStore,
};
use milepost_domain::{
    Account, AccountActivity, AccountId, AccountState, Announcements, ContactRecord, CsmTask, CustomerEmailPause,
    EmailAddress, EscalationLogEntry, HeldBackList, LeaderQueue, MapSegment, MilestoneMap, MissStage, ProductEvent,
    Segment, SendKey, Suppression, TaskStatus, Tenure, Timestamp, TrackedMilestone,
};

mod accounts;
mod activity_item;
mod console;
mod contacts;
mod crm;
mod events;
mod keys;
mod metering;
mod milestones;
mod records;
mod schema;
mod sends;
mod slack;
mod tasks;
mod webhooks;

pub use keys::DUE_SHARDS;
use keys::*;
pub use metering::Meter;
use metering::Metering;
use milestones::milestone_from_item;

pub struct DynamoStore {
    client: Client,
    table: String,
    /// What the client's requests cost, when it counts them (`DynamoStore::metered`).
    meter: Option<Arc<Meter>>,
}

/// One DynamoDB item (or key), as the SDK represents it.
type Item = HashMap<String, AttributeValue>;

/// An item's size as DynamoDB counts it: attribute names and values, in bytes.
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

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn backend(e: impl Into<milepost_app::ports::BoxError>) -> StoreError {
    StoreError::backend(e)
}

/// A service error as the store reports it: DynamoDB's ValidationException
/// (an item over 400 KB, a key too long, a number out of range) can never
/// succeed on a retry, so it is `Invalid`, not a passing `Backend` fault.
fn refused<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(e: E) -> StoreError {
    if e.code() == Some("ValidationException") {
        StoreError::Invalid(e.to_string())
    } else {
        StoreError::backend(e)
    }
}

fn is_conditional_failure<E: ProvideErrorMetadata>(e: &aws_sdk_dynamodb::error::SdkError<E>) -> bool {
    e.as_service_error()
        .and_then(|se| se.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException" || c == "TransactionCanceledException")
}

fn version_of(item: &Item) -> Option<u64> {
    item.get("version")
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
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

/// `from_item`, with the version the `version` attribute holds set by `set`
/// (the value's own copy is what was written, one behind).
fn versioned_from<T: DeserializeOwned>(item: &Item, set: impl Fn(&mut T, u64)) -> StoreResult<T> {
    let mut value: T = from_item(item)?;
    set(&mut value, version_of(item).unwrap_or(0));
    Ok(value)
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
            meter: None,
        }
    }

    /// A store whose client counts what its requests cost (`Meter`): for
    /// the tests and the benches. Production stores are built with `new`.
    pub fn metered(client: Client, table: impl Into<String>) -> Self {
        let meter = Arc::new(Meter::default());
        let config = client
            .config()
            .to_builder()
            .interceptor(Metering(meter.clone()))
            .build();
        DynamoStore {
            meter: Some(meter),
            ..Self::new(Client::from_conf(config), table)
        }
    }

    /// What this store's requests have cost so far.
    ///
    /// # Panics
    /// On a store built with `new`, which counts nothing.
    pub fn meter(&self) -> &Meter {
        self.meter.as_deref().expect("a store built with DynamoStore::metered")
    }

    async fn get(&self, pk: String, sk: &str) -> StoreResult<Option<HashMap<String, AttributeValue>>> {
        if !key_fits(&pk, sk) {
            return Ok(None);
        }
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

    /// Every item a query or scan returns, page by page (past DynamoDB's 1 MB
    /// pages). `page` sends one request from a start key and returns its items
    /// and the key to continue from.
    async fn all_pages<F, Fut>(&self, mut page: F) -> StoreResult<Vec<Item>>
    where
        F: FnMut(Option<Item>) -> Fut,
        Fut: std::future::Future<Output = StoreResult<(Vec<Item>, Option<Item>)>>,
    {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let (found, last) = page(start.take()).await?;
            items.extend(found);
            match last {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }

    /// Every item under `pk` whose sort key starts with `sk_prefix` (empty:
    /// every item under `pk`; DynamoDB takes no empty value to compare with).
    async fn query_all(&self, pk: String, sk_prefix: &str) -> StoreResult<Vec<Item>> {
        if !key_fits(&pk, sk_prefix) {
            return Ok(Vec::new());
        }
        self.all_pages(|start| {
            let req = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":pk", s(pk.clone()))
                .consistent_read(true)
                .set_exclusive_start_key(start);
            let req = if sk_prefix.is_empty() {
                req.key_condition_expression("pk = :pk")
            } else {
                req.key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":prefix", s(sk_prefix))
            };
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

    /// Puts `item` (keys included, its `version` attribute `read + 1`) if the
    /// stored item is still at version `read`: the new version, or `Conflict`
    /// (also for `read` 0, an item never read from the store).
    async fn put_on_version(&self, item: Item, read: u64) -> StoreResult<u64> {
        if read == 0 {
            return Err(StoreError::Conflict);
        }
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("version = :expected")
            .expression_attribute_values(":expected", AttributeValue::N(read.to_string()))
            .build()
            .map_err(backend)?;
        if self.put_conditionally(put).await? {
            Ok(read + 1)
        } else {
            Err(StoreError::Conflict)
        }
    }

    /// The first `limit` items of the `due` index partition `pk` due at `now`
    /// (their `due_sk` starts with the time; `~` sorts after every id
    /// character, so everything due at `now` itself is in), soonest first.
    async fn due_in(&self, pk: &str, now: Timestamp, limit: usize) -> StoreResult<Vec<Item>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(DUE_INDEX)
            .key_condition_expression("due_pk = :pk AND due_sk <= :now")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":now", s(format!("{}#~", time_key(now))))
            .limit(limit.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(|e| refused(e.into_service_error()))?;
        Ok(out.items.unwrap_or_default())
    }

    /// Sends one conditional put; `false` when its condition failed.
    async fn put_conditionally(&self, put: Put) -> StoreResult<bool> {
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
}
