//! The whole table read page by page, for the weekly digest and `milepost report`.

use super::*;

#[async_trait]
impl milepost_app::ports::RecordScan for DynamoStore {
    /// One page of a Scan of the whole table, filtered to account profiles,
    /// milestones and maps: it reads (and is billed for) every item, about half
    /// a read unit per 4 KB with eventual consistency. The cursor is
    /// DynamoDB's last evaluated key, as JSON.
    async fn records_page(&self, after: Option<String>) -> StoreResult<Page<milepost_app::ports::Record>> {
        use milepost_app::ports::Record;
        let start: Option<HashMap<String, String>> = match after.as_deref() {
            None => None,
            Some(c) => Some(serde_json::from_str(c).map_err(|_| backend(format!("bad cursor {c:?}")))?),
        };
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("sk = :profile OR begins_with(sk, :milestone) OR begins_with(pk, :map)")
            .expression_attribute_values(":profile", s(PROFILE_SK))
            .expression_attribute_values(":milestone", s(MILESTONE_PREFIX))
            .expression_attribute_values(":map", s(MAP_PREFIX))
            .projection_expression("pk, sk, #item")
            .expression_attribute_names("#item", "item")
            .set_exclusive_start_key(start.map(key_item))
            .send()
            .await
            .map_err(|e| refused(e.into_service_error()))?;
        let mut items = Vec::new();
        for item in out.items.unwrap_or_default() {
            let key = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).map(String::as_str);
            items.push(if key("sk") == Some(PROFILE_SK) {
                Record::Account(Arc::new(from_item(&item)?))
            } else if key("pk").is_some_and(|pk| pk.starts_with(MAP_PREFIX)) {
                Record::Map(Box::new(from_item(&item)?))
            } else {
                Record::Milestone(Box::new(milestone_from_item(&item)?))
            });
        }
        let next = key_strings(out.last_evaluated_key).map(|k| serde_json::to_string(&k).expect("cursor serialises"));
        Ok(Page { items, next })
    }
}
