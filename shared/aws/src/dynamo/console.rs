//! What the console reads that nothing else does: the open misses, a
//! partition of the `heads_up` index of their own (`OPEN_MISS_PARTITION`),
//! and accounts by id, a hundred to a BatchGetItem.

use aws_sdk_dynamodb::types::KeysAndAttributes;

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

    async fn accounts(&self, ids: &[AccountId]) -> StoreResult<Vec<Arc<Account>>> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(BATCH_GET_KEYS) {
            let mut keys: Vec<Item> = chunk
                .iter()
                .map(account_pk)
                .filter(|pk| key_fits(pk, PROFILE_SK))
                .map(|pk| HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(PROFILE_SK))]))
                .collect();
            // DynamoDB may leave some keys unprocessed under load: ask again for those.
            while !keys.is_empty() {
                let wanted = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut keys)))
                    .consistent_read(true)
                    .build()
                    .map_err(backend)?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, wanted)
                    .send()
                    .await
                    .map_err(|e| refused(e.into_service_error()))?;
                for item in out
                    .responses
                    .unwrap_or_default()
                    .remove(&self.table)
                    .unwrap_or_default()
                {
                    found.push(Arc::new(from_item::<Account>(&item)?));
                }
                if let Some(left) = out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                    keys = left.keys;
                }
            }
        }
        Ok(found)
    }
}
