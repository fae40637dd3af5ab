//! Tracked milestones: their items, the sharded due and heads-up indexes the
//! sweep pages through, and the bulk seeding of tests and benches.

use super::*;

#[async_trait]
impl MilestoneStore for DynamoStore {
    async fn create_milestone(&self, m: &TrackedMilestone) -> StoreResult<bool> {
        let item = Self::milestone_item(m, 1)?;
        self.put(item, account_pk(m.account_id()), &milestone_sk(m.milestone_id()), true)
            .await
    }

    async fn get_milestone(&self, account: &AccountId, milestone_id: &str) -> StoreResult<Option<TrackedMilestone>> {
        self.get(account_pk(account), &milestone_sk(milestone_id))
            .await?
            .map(|i| milestone_from_item(&i))
            .transpose()
    }

    async fn update_milestone(&self, m: &TrackedMilestone) -> StoreResult<u64> {
        if self.put_conditionally(self.milestone_update(m)?).await? {
            Ok(m.version + 1)
        } else {
            Err(StoreError::Conflict)
        }
    }

    async fn remove_milestone(&self, m: &TrackedMilestone) -> StoreResult<()> {
        // Its index entries are attributes of the item: they go with it.
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(account_pk(m.account_id())))
            .key("sk", s(milestone_sk(m.milestone_id())))
            .condition_expression("attribute_not_exists(pk) OR version = :v")
            .expression_attribute_values(":v", AttributeValue::N(m.version.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = e.into_service_error();
                if e.is_conditional_check_failed_exception() {
                    Err(StoreError::Conflict)
                } else {
                    Err(super::refused(e))
                }
            }
        }
    }

    async fn milestones_of(&self, account: &AccountId) -> StoreResult<Vec<TrackedMilestone>> {
        self.query_all(account_pk(account), MILESTONE_PREFIX)
            .await?
            .iter()
            .map(milestone_from_item)
            .collect()
    }

    async fn due_milestones(
        &self,
        now: Timestamp,
        after: Option<String>,
        limit: usize,
    ) -> StoreResult<Page<TrackedMilestone>> {
        self.sharded_page(&DUE_MILESTONES, now, after, limit).await
    }

    async fn heads_up_milestones(
        &self,
        now: Timestamp,
        after: Option<String>,
        limit: usize,
    ) -> StoreResult<Page<TrackedMilestone>> {
        self.sharded_page(&HEADS_UP_MILESTONES, now, after, limit).await
    }
}

impl DynamoStore {
    /// Writes many new milestones with BatchWriteItem (25 a request), without
    /// the conditions `create_milestone` checks: for seeding tests and benchmarks.
    pub async fn seed_milestones(&self, milestones: &[TrackedMilestone]) -> StoreResult<()> {
        for chunk in milestones.chunks(25) {
            let mut writes = Vec::with_capacity(chunk.len());
            for m in chunk {
                let item = Self::milestone_item(m, 1)?;
                let put = PutRequest::builder().set_item(Some(item)).build().map_err(backend)?;
                writes.push(WriteRequest::builder().put_request(put).build());
            }
            let mut pending = Some(HashMap::from([(self.table.clone(), writes)]));
            while let Some(requests) = pending.take().filter(|r| !r.is_empty()) {
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

    /// The write of `m` as version `m.version + 1`, if the stored one is still `m.version`.
    /// A full put: it drops the due-index keys when the milestone leaves the index.
    pub(super) fn milestone_update(&self, m: &TrackedMilestone) -> StoreResult<Put> {
        let item = Self::milestone_item(m, m.version + 1)?;
        Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("version = :expected")
            .expression_attribute_values(":expected", AttributeValue::N(m.version.to_string()))
            .build()
            .map_err(backend)
    }

    /// The whole item of `m` stored as `version`, keys included.
    pub(super) fn milestone_item(m: &TrackedMilestone, version: u64) -> StoreResult<HashMap<String, AttributeValue>> {
        let mut stored = m.clone();
        stored.version = version;
        let mut item = HashMap::from([
            ("pk".to_string(), s(account_pk(m.account_id()))),
            ("sk".to_string(), s(milestone_sk(m.milestone_id()))),
            ("item".to_string(), stored_milestone(&stored)?),
            ("version".to_string(), AttributeValue::N(version.to_string())),
        ]);
        if m.awaits_sweep() {
            item.extend(DUE_MILESTONES.entry(m, m.due_at()));
        }
        if let Some(at) = m.heads_up_index_at() {
            item.extend(HEADS_UP_MILESTONES.entry(m, at));
        } else if MissStage::of(m).is_some() {
            item.insert(HEADS_UP_MILESTONES.pk.to_string(), s(OPEN_MISS_PARTITION));
            item.insert(
                HEADS_UP_MILESTONES.sk.to_string(),
                s(format!("{}#{}", m.account_id(), m.milestone_id())),
            );
        }
        Ok(item)
    }

    /// One page of the milestones of `index` with a time at or before `until`.
    pub(super) async fn sharded_page(
        &self,
        index: &ShardedIndex,
        until: Timestamp,
        after: Option<String>,
        limit: usize,
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
            for item in &page {
                items.push(milestone_from_item(item)?);
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

/// The milestone's claims as earlier versions stored them: flat pairs
/// beside its other fields (the domain keeps each as one `Claim`).
const STORED_CLAIMS: [(&str, &str, &str); 2] = [
    ("announcing", "announcing_by", "announcing_since"),
    ("miss_claim", "miss_claimed_by", "miss_claimed_at"),
];

/// `m` as its item's `item` attribute holds it, claims flattened.
pub(super) fn stored_milestone(m: &TrackedMilestone) -> StoreResult<AttributeValue> {
    let AttributeValue::M(mut fields) = to_attr(m)? else {
        return Err(backend("a milestone did not serialise as a map"));
    };
    for (claim, by, since) in STORED_CLAIMS {
        if let Some(AttributeValue::M(mut held)) = fields.remove(claim) {
            fields.extend(held.remove("by").map(|v| (by.to_string(), v)));
            fields.extend(held.remove("since").map(|v| (since.to_string(), v)));
        }
    }
    Ok(AttributeValue::M(fields))
}

/// A milestone read from its item, its claims gathered from the stored
/// pairs: a claim's time without a holder (stored before claims had
/// holders) is held by nobody who can ask for it back; a holder without a
/// time is no claim.
pub(super) fn milestone_from_item(item: &Item) -> StoreResult<TrackedMilestone> {
    let Some(AttributeValue::M(stored)) = item.get("item") else {
        return from_item(item);
    };
    let mut fields = stored.clone();
    for (claim, by, since) in STORED_CLAIMS {
        let holder = fields.remove(by);
        if let Some(since) = fields.remove(since) {
            let holder = holder.unwrap_or_else(|| s(""));
            fields.insert(
                claim.to_string(),
                AttributeValue::M(HashMap::from([
                    ("by".to_string(), holder),
                    ("since".to_string(), since),
                ])),
            );
        }
    }
    serde_dynamo::from_attribute_value(AttributeValue::M(fields)).map_err(backend)
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use milepost_domain::Claim;

    use super::*;

    fn milestone() -> TrackedMilestone {
        let account = milepost_domain::fixtures::account("acme", milepost_domain::fixtures::date(2026, 1, 5));
        let def = milepost_domain::fixtures::milestone_def("first_workflow", 30, milepost_domain::Criterion::Manual);
        TrackedMilestone::new(&account, &milepost_domain::fixtures::map_of(vec![def.clone()]), &def)
    }

    /// Items written before claims were one type hold flat pairs; they are
    /// written and read in that form still.
    #[test]
    fn claims_keep_the_stored_form_of_earlier_versions() {
        let at = Utc.with_ymd_and_hms(2026, 2, 4, 9, 0, 0).unwrap();
        let mut m = milestone();
        milepost_domain::seed::milestone(&mut m).announcing(Claim::new("delivery-1", at));
        m.claim_miss("sweep-1", at);
        let AttributeValue::M(stored) = stored_milestone(&m).unwrap() else {
            panic!("a map")
        };
        assert_eq!(stored.get("announcing_by"), Some(&s("delivery-1")));
        assert_eq!(stored.get("miss_claimed_by"), Some(&s("sweep-1")));
        assert!(stored.contains_key("announcing_since") && stored.contains_key("miss_claimed_at"));
        assert!(!stored.contains_key("announcing") && !stored.contains_key("miss_claim"));
        let item = HashMap::from([("item".to_string(), AttributeValue::M(stored.clone()))]);
        assert_eq!(milestone_from_item(&item).unwrap(), m);

        // A claim stored before claims had holders: its time alone.
        let mut old = stored;
        old.remove("announcing_by");
        old.remove("miss_claimed_by");
        old.remove("miss_claimed_at");
        let read = milestone_from_item(&HashMap::from([("item".to_string(), AttributeValue::M(old))])).unwrap();
        assert_eq!(read.announcing(), Some(&Claim::new("", at)));
        assert_eq!(read.miss_claim(), None);
    }
}
