//! What a DynamoDB client's requests cost, counted by an interceptor on the
//! client: for the tests and `make bench` (cli/benches/ingest.rs), never in
//! a production store's request path (`DynamoStore::metered` installs it;
//! `DynamoStore::new` does not).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemInput;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemInput;
use aws_sdk_dynamodb::operation::get_item::{GetItemInput, GetItemOutput};
use aws_sdk_dynamodb::operation::put_item::PutItemInput;
use aws_sdk_dynamodb::operation::query::{QueryInput, QueryOutput};
use aws_sdk_dynamodb::operation::scan::{ScanInput, ScanOutput};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
use aws_sdk_dynamodb::operation::update_item::UpdateItemInput;
use aws_smithy_runtime_api::client::interceptors::context::Input;
use aws_smithy_types::config_bag::{Storable, StoreReplace};

use super::{item_bytes, value_bytes, DUE_MILESTONES, HEADS_UP_MILESTONES};

/// What the requests of a metered client cost: requests made (one per
/// operation, whatever its retries), TransactWriteItems and Scans among them, the
/// items the sweep's due and heads-up queries read, and the capacity units
/// billed, from the items' sizes (DynamoDB's rules: a write unit per KB,
/// rounded up per item, doubled in a transaction; a read unit per 4 KB of
/// a response's items, halved when eventually consistent). Units are kept
/// in tenths so halves add up exactly.
#[derive(Debug, Default)]
pub struct Meter {
    requests: AtomicU64,
    transactions: AtomicU64,
    scans: AtomicU64,
    write_tenths: AtomicU64,
    read_tenths: AtomicU64,
    due_items_read: AtomicU64,
    heads_up_items_read: AtomicU64,
}

impl Meter {
    /// Requests made so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// TransactWriteItems requests made so far.
    pub fn transactions(&self) -> u64 {
        self.transactions.load(Ordering::Relaxed)
    }

    /// Scan requests made so far (each page of one counts).
    pub fn scans(&self) -> u64 {
        self.scans.load(Ordering::Relaxed)
    }

    /// Write units billed so far.
    pub fn write_units(&self) -> f64 {
        self.write_tenths.load(Ordering::Relaxed) as f64 / 10.0
    }

    /// Read units billed so far.
    pub fn read_units(&self) -> f64 {
        self.read_tenths.load(Ordering::Relaxed) as f64 / 10.0
    }

    /// Milestones the sweep's due queries read so far.
    pub fn due_items_read(&self) -> u64 {
        self.due_items_read.load(Ordering::Relaxed)
    }

    /// Milestones the heads-up queries read so far.
    pub fn heads_up_items_read(&self) -> u64 {
        self.heads_up_items_read.load(Ordering::Relaxed)
    }

    fn write(&self, bytes: usize, transactional: bool) {
        let units = bytes.div_ceil(1024).max(1) as u64 * if transactional { 2 } else { 1 };
        self.write_tenths.fetch_add(units * 10, Ordering::Relaxed);
    }

    /// The write units of a request's items, before it is sent.
    fn count_writes(&self, input: &Input) {
        if let Some(put) = input.downcast_ref::<PutItemInput>() {
            self.write(put.item().map_or(0, item_bytes), false);
        } else if let Some(transaction) = input.downcast_ref::<TransactWriteItemsInput>() {
            self.transactions.fetch_add(1, Ordering::Relaxed);
            for put in transaction.transact_items().iter().filter_map(|i| i.put()) {
                self.write(item_bytes(put.item()), true);
            }
        } else if let Some(batch) = input.downcast_ref::<BatchWriteItemInput>() {
            let puts = batch.request_items().into_iter().flat_map(|r| r.values()).flatten();
            for put in puts.filter_map(|w| w.put_request()) {
                self.write(item_bytes(put.item()), false);
            }
        } else if let Some(update) = input.downcast_ref::<UpdateItemInput>() {
            // The item after the update, near enough: its key, the names and
            // the values the update sets (DynamoDB bills the larger of the
            // item before and after, which for the activity item differ by bytes).
            let names = update.expression_attribute_names().into_iter().flat_map(|n| n.values());
            let values = update
                .expression_attribute_values()
                .into_iter()
                .flat_map(|v| v.values());
            let bytes = update.key().map_or(0, item_bytes)
                + names.map(String::len).sum::<usize>()
                + values.map(value_bytes).sum::<usize>();
            self.write(bytes, false);
        } else if input.downcast_ref::<DeleteItemInput>().is_some() {
            self.write(0, false); // a unit per KB of the deleted item: here small
        }
    }

    fn read(&self, bytes: usize, consistent: bool) {
        let units = bytes.div_ceil(4096).max(1) as u64 * 10;
        self.read_tenths
            .fetch_add(if consistent { units } else { units / 2 }, Ordering::Relaxed);
    }
}

/// A read request, as the interceptor remembers it until its answer.
#[derive(Debug, Clone, Copy)]
enum Read {
    Consistent(bool),
    DueMilestones,
    HeadsUpMilestones,
}

impl Storable for Read {
    type Storer = StoreReplace<Self>;
}

/// The interceptor that feeds a `Meter`.
#[derive(Debug)]
pub(super) struct Metering(pub(super) Arc<Meter>);

/// Which of the sweep's indexes a query reads, if one: the due index also
/// holds tasks by status (`TASKS#<status>`), which are not milestones.
fn sweep_index(query: &QueryInput) -> Option<Read> {
    let shard = query.expression_attribute_values()?.get(":shard")?.as_s().ok()?;
    match query.index_name()? {
        name if name == DUE_MILESTONES.name && shard.starts_with(DUE_MILESTONES.partition) => Some(Read::DueMilestones),
        name if name == HEADS_UP_MILESTONES.name => Some(Read::HeadsUpMilestones),
        _ => None,
    }
}

impl Intercept for Metering {
    fn name(&self) -> &'static str {
        "milepost-meter"
    }

    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let meter = &self.0;
        meter.requests.fetch_add(1, Ordering::Relaxed);
        let input = context.input();
        meter.count_writes(input);
        let read = if let Some(get) = input.downcast_ref::<GetItemInput>() {
            Some(Read::Consistent(get.consistent_read() == Some(true)))
        } else if let Some(query) = input.downcast_ref::<QueryInput>() {
            sweep_index(query).or(Some(Read::Consistent(query.consistent_read() == Some(true))))
        } else {
            let scan = input.downcast_ref::<ScanInput>();
            if scan.is_some() {
                meter.scans.fetch_add(1, Ordering::Relaxed);
            }
            scan.map(|scan| Read::Consistent(scan.consistent_read() == Some(true)))
        };
        if let Some(read) = read {
            cfg.interceptor_state().store_put(read);
        }
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let (Some(&read), Ok(output)) = (cfg.load::<Read>(), context.output_or_error()) else {
            return Ok(());
        };
        let meter = &self.0;
        let items: Vec<&super::Item> = if let Some(get) = output.downcast_ref::<GetItemOutput>() {
            get.item().into_iter().collect()
        } else if let Some(query) = output.downcast_ref::<QueryOutput>() {
            query.items().iter().collect()
        } else if let Some(scan) = output.downcast_ref::<ScanOutput>() {
            scan.items().iter().collect()
        } else {
            return Ok(());
        };
        let bytes = items.iter().map(|i| item_bytes(i)).sum();
        match read {
            Read::Consistent(consistent) => meter.read(bytes, consistent),
            // The sweep's index reads are eventually consistent, as GSI reads are.
            Read::DueMilestones => {
                meter.due_items_read.fetch_add(items.len() as u64, Ordering::Relaxed);
                meter.read(bytes, false);
            }
            Read::HeadsUpMilestones => {
                meter
                    .heads_up_items_read
                    .fetch_add(items.len() as u64, Ordering::Relaxed);
                meter.read(bytes, false);
            }
        }
        Ok(())
    }
}
