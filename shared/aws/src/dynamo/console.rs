//! What the console reads that nothing else does: the open misses, a
//! partition of the `heads_up` index of their own (`OPEN_MISS_PARTITION`);
//! accounts and tasks by id, a hundred to a BatchGetItem; an account's whole
//! partition in one query (its folder); and the kept portfolio, a partition
//! of its own (`PORTFOLIO_PK`): one item per account, read in one query.

use aws_sdk_dynamodb::types::KeysAndAttributes;
use milepost_app::ports::{
    AccountFolder, ConsoleReads, DiscoveryStore, KeptPortfolio, KeptPortfolioStore, KeptResultsStore, KeptRow,
};
use milepost_domain::discovery::KeptDiscovery;
use milepost_domain::map_review::KeptComparison;
use milepost_domain::PortfolioRow;

use super::*;

/// The most keys one BatchGetItem takes.
const BATCH_GET_KEYS: usize = 100;

#[async_trait]
impl OpenMissIndex for DynamoStore {
    async fn open_misses(&self) -> StoreResult<Vec<TrackedMilestone>> {
        let items = self
            .all_pages(|start| {
                let req = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(HEADS_UP_MILESTONES.name)
                    .key_condition_expression("#pk = :open")
                    .expression_attribute_names("#pk", HEADS_UP_MILESTONES.pk)
                    .expression_attribute_values(":open", s(OPEN_MISS_PARTITION))
                    .set_exclusive_start_key(start);
                query_page(req)
            })
            .await?;
        items.iter().map(milestone_from_item).collect()
    }
}

impl DynamoStore {
    /// Puts `item` (keys included) with `at` in its `time` attribute, unless
    /// the item kept there holds a later time. Returns whether it was put.
    async fn put_unless_later(&self, mut item: Item, time: &str, at: Timestamp) -> StoreResult<bool> {
        item.insert(time.to_string(), micros(at));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR #time <= :at")
            .expression_attribute_names("#time", time)
            .expression_attribute_values(":at", micros(at));
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_conditional_failure(&e) => Ok(false),
            Err(e) => Err(refused(e.into_service_error())),
        }
    }

    /// The items of `keys` that exist, in any order: a hundred keys to a
    /// BatchGetItem (repeated keys asked once), the keys DynamoDB leaves
    /// unprocessed asked again.
    async fn batch_get(&self, keys: impl Iterator<Item = (String, String)>) -> StoreResult<Vec<Item>> {
        let mut wanted: Vec<(String, String)> = keys.filter(|(pk, sk)| key_fits(pk, sk)).collect();
        wanted.sort();
        wanted.dedup();
        let mut found = Vec::with_capacity(wanted.len());
        for chunk in wanted.chunks(BATCH_GET_KEYS) {
            let mut keys: Vec<Item> = chunk
                .iter()
                .map(|(pk, sk)| HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))]))
                .collect();
            while !keys.is_empty() {
                let asked = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut keys)))
                    .consistent_read(true)
                    .build()
                    .map_err(backend)?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, asked)
                    .send()
                    .await
                    .map_err(|e| refused(e.into_service_error()))?;
                found.extend(
                    out.responses
                        .unwrap_or_default()
                        .remove(&self.table)
                        .unwrap_or_default(),
                );
                if let Some(left) = out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                    keys = left.keys;
                }
            }
        }
        Ok(found)
    }
}

#[async_trait]
impl ConsoleReads for DynamoStore {
    async fn account_folder(&self, account: &AccountId) -> StoreResult<Option<AccountFolder>> {
        let mut found = None;
        let mut milestones = Vec::new();
        let mut activity = AccountActivity::new(account.clone());
        let mut log: Vec<EscalationLogEntry> = Vec::new();
        let mut pause = None;
        let mut emails: Vec<milepost_domain::SentEmail> = Vec::new();
        for item in self.query_all(account_pk(account), "").await? {
            match item.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str) {
                Some(PROFILE_SK) => found = Some(Arc::new(from_item::<Account>(&item)?)),
                Some(ACTIVITY_SK) => activity = activity_item::decode(account, &item)?,
                Some(PAUSE_SK) => pause = Some(from_item(&item)?),
                Some(sk) if sk.starts_with(MILESTONE_PREFIX) => milestones.push(milestone_from_item(&item)?),
                Some(sk) if sk.starts_with(LOG_PREFIX) => log.push(from_item(&item)?),
                Some(sk) if sk.starts_with(SENT_EMAIL_PREFIX) => emails.push(from_item(&item)?),
                _ => {}
            }
        }
        log.sort_by_key(|e| e.at);
        emails.sort_by(|a, b| (b.date, &b.key).cmp(&(a.date, &a.key)));
        Ok(found.map(|account| AccountFolder {
            account,
            milestones,
            activity,
            log,
            pause,
            emails,
        }))
    }

    async fn tasks_by_id(&self, ids: &[String]) -> StoreResult<Vec<CsmTask>> {
        let keys = ids.iter().map(|id| (task_pk(id), TASK_SK.to_string()));
        self.batch_get(keys).await?.iter().map(from_item).collect()
    }

    async fn all_maps(&self) -> StoreResult<Vec<MilestoneMap>> {
        // Every key a map can have: a dozen, one BatchGetItem.
        let segments = std::iter::once(MapSegment::All).chain(Segment::ALL.into_iter().map(MapSegment::Only));
        let keys = segments.flat_map(|segment| {
            [None, Some(Tenure::FirstYear), Some(Tenure::MultiYear)].map(|tenure| map_key(segment, tenure))
        });
        self.batch_get(keys).await?.iter().map(from_item).collect()
    }
}

/// The kept portfolio's partition, and its entries' sort keys.
const PORTFOLIO_PK: &str = "PORTFOLIO";
const PORTFOLIO_ROW_PREFIX: &str = "ROW#";
const PORTFOLIO_REFRESHED_SK: &str = "REFRESHED";

fn portfolio_row_sk(account: &AccountId) -> String {
    format!("{PORTFOLIO_ROW_PREFIX}{account}")
}

/// Read times are kept as epoch microseconds, so that a condition compares numbers.
fn micros(t: Timestamp) -> AttributeValue {
    AttributeValue::N(t.timestamp_micros().to_string())
}

fn micros_of(item: &Item, name: &str) -> StoreResult<Timestamp> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse::<i64>().ok())
        .and_then(chrono::DateTime::from_timestamp_micros)
        .ok_or_else(|| backend(format!("a kept portfolio item without {name}")))
}

#[async_trait]
impl KeptPortfolioStore for DynamoStore {
    async fn kept_portfolio(&self) -> StoreResult<KeptPortfolio> {
        let mut kept = KeptPortfolio::default();
        for item in self.query_all(PORTFOLIO_PK.to_string(), "").await? {
            let sk = item.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str);
            match sk {
                Some(PORTFOLIO_REFRESHED_SK) => kept.refreshed_at = Some(micros_of(&item, "at")?),
                Some(sk) if sk.starts_with(PORTFOLIO_ROW_PREFIX) => kept.rows.push(KeptRow {
                    account_id: AccountId::new(&sk[PORTFOLIO_ROW_PREFIX.len()..]),
                    row: item.get("item").map(|_| from_item::<PortfolioRow>(&item)).transpose()?,
                    as_of: micros_of(&item, "as_of")?,
                }),
                _ => {}
            }
        }
        Ok(kept)
    }

    async fn keep_portfolio_row(
        &self,
        account: &AccountId,
        row: Option<&PortfolioRow>,
        as_of: Timestamp,
    ) -> StoreResult<bool> {
        let sk = portfolio_row_sk(account);
        if !key_fits(PORTFOLIO_PK, &sk) {
            return Err(key_too_long(PORTFOLIO_PK, &sk));
        }
        let mut item = HashMap::from([("pk".to_string(), s(PORTFOLIO_PK)), ("sk".to_string(), s(sk))]);
        if let Some(row) = row {
            item.insert("item".to_string(), to_attr(row)?);
        }
        self.put_unless_later(item, "as_of", as_of).await
    }

    async fn forget_portfolio_row(&self, account: &AccountId, as_of: Timestamp) -> StoreResult<()> {
        let sk = portfolio_row_sk(account);
        if !key_fits(PORTFOLIO_PK, &sk) {
            return Ok(());
        }
        let delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(PORTFOLIO_PK))
            .key("sk", s(sk))
            .condition_expression("as_of = :as_of")
            .expression_attribute_values(":as_of", micros(as_of));
        match delete.send().await {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Ok(()),
            Err(e) => Err(refused(e.into_service_error())),
        }
    }

    async fn portfolio_refreshed(&self, at: Timestamp) -> StoreResult<()> {
        let item = HashMap::from([
            ("pk".to_string(), s(PORTFOLIO_PK)),
            ("sk".to_string(), s(PORTFOLIO_REFRESHED_SK)),
        ]);
        self.put_unless_later(item, "at", at).await?;
        Ok(())
    }
}

/// The latest discovery result: one item of its own.
const DISCOVERY_PK: &str = "DISCOVERY";
const DISCOVERY_SK: &str = "LATEST";
/// The simulator's comparison, beside the discovery result it is reviewed with.
const COMPARISON_SK: &str = "COMPARISON";

#[async_trait]
impl DiscoveryStore for DynamoStore {
    async fn kept_discovery(&self) -> StoreResult<Option<KeptDiscovery>> {
        self.get(DISCOVERY_PK.to_string(), DISCOVERY_SK)
            .await?
            .map(|i| from_item(&i))
            .transpose()
    }

    async fn keep_discovery(&self, result: &KeptDiscovery) -> StoreResult<()> {
        let item = HashMap::from([("item".to_string(), to_attr(result)?)]);
        self.put(item, DISCOVERY_PK.to_string(), DISCOVERY_SK, false).await?;
        Ok(())
    }

    async fn kept_comparison(&self) -> StoreResult<Option<KeptComparison>> {
        self.get(DISCOVERY_PK.to_string(), COMPARISON_SK)
            .await?
            .map(|i| from_item(&i))
            .transpose()
    }

    async fn keep_comparison(&self, comparison: &KeptComparison) -> StoreResult<()> {
        let item = HashMap::from([("item".to_string(), to_attr(comparison)?)]);
        self.put(item, DISCOVERY_PK.to_string(), COMPARISON_SK, false).await?;
        Ok(())
    }
}

/// The results page's kept views: a partition of their own, an item each.
const RESULTS_PK: &str = "RESULTS";

fn results_sk(name: &str) -> String {
    format!("VIEW#{name}")
}

#[async_trait]
impl KeptResultsStore for DynamoStore {
    async fn kept_results(&self, name: &str) -> StoreResult<Option<(Timestamp, String)>> {
        let Some(item) = self.get(RESULTS_PK.to_string(), &results_sk(name)).await? else {
            return Ok(None);
        };
        let json = item
            .get("view")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| backend("a kept results view without its view"))?;
        Ok(Some((micros_of(&item, "as_of")?, json.clone())))
    }

    async fn keep_results(&self, name: &str, as_of: Timestamp, json: &str) -> StoreResult<()> {
        let sk = results_sk(name);
        if !key_fits(RESULTS_PK, &sk) {
            return Err(key_too_long(RESULTS_PK, &sk));
        }
        let item = HashMap::from([
            ("pk".to_string(), s(RESULTS_PK)),
            ("sk".to_string(), s(sk)),
            ("view".to_string(), s(json)),
        ]);
        self.put_unless_later(item, "as_of", as_of).await?;
        Ok(())
    }
}
