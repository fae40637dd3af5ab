//! CSM tasks: by id, by owner (the `owner` index) and by status (their
//! partitions of the `due` index).

use super::*;

impl DynamoStore {
    /// A task stored as `version`, with its index keys: under its owner by
    /// status and opening time, and in its status's partition of the due
    /// index (a snoozed task by when its snooze ends, so the sweep finds it).
    pub(super) fn task_item(task: &CsmTask, version: u64) -> StoreResult<Item> {
        let mut stored = task.clone();
        stored.version = version;
        let opened = format!("{}#{}", time_key(task.created_at()), task.id());
        let due_sk = match task.snoozed_until() {
            Some(until) if task.status() == TaskStatus::Snoozed => format!("{}#{}", time_key(until), task.id()),
            _ => opened.clone(),
        };
        Ok(HashMap::from([
            ("item".to_string(), to_attr(&stored)?),
            ("version".to_string(), AttributeValue::N(version.to_string())),
            ("owner_pk".to_string(), s(format!("OWNER#{}", task.brief().owner_email))),
            ("owner_sk".to_string(), s(format!("{}#{opened}", task.status()))),
            ("due_pk".to_string(), s(task_partition(task.status()))),
            ("due_sk".to_string(), s(due_sk)),
        ]))
    }
}

#[async_trait]
impl TaskStore for DynamoStore {
    async fn create_task(&self, task: &CsmTask) -> StoreResult<bool> {
        let item = Self::task_item(task, 1)?;
        self.put(item, format!("TASK#{}", task.id()), "TASK", true).await
    }

    async fn get_task(&self, id: &str) -> StoreResult<Option<CsmTask>> {
        self.get(format!("TASK#{id}"), "TASK")
            .await?
            .map(|i| from_item(&i))
            .transpose()
    }

    async fn update_task(&self, task: &CsmTask) -> StoreResult<u64> {
        let mut item = Self::task_item(task, task.version + 1)?;
        item.insert("pk".into(), s(format!("TASK#{}", task.id())));
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
        tasks.sort_by(|a, b| (a.created_at(), &a.id()).cmp(&(b.created_at(), &b.id())));
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
        tasks.sort_by(|a, b| (a.created_at(), &a.id()).cmp(&(b.created_at(), &b.id())));
        Ok(tasks)
    }

    async fn snoozes_over(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<CsmTask>> {
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

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    /// A task's brief is its own type in the domain; its item stays flat,
    /// as earlier versions wrote it, and an item of theirs still reads.
    #[test]
    fn a_task_is_stored_flat_as_earlier_versions_stored_it() {
        let opened = Utc.with_ymd_and_hms(2026, 2, 4, 9, 0, 0).unwrap();
        let task = milepost_embedded::fixtures::task("e1:csm-task", "maya@vendor.example", opened);
        let item = DynamoStore::task_item(&task, 3).unwrap();
        let Some(AttributeValue::M(stored)) = item.get("item") else {
            panic!("a map")
        };
        assert_eq!(stored.get("account_name"), Some(&s("Acme")));
        assert_eq!(stored.get("owner_email"), Some(&s("maya@vendor.example")));
        assert!(!stored.contains_key("brief"));
        let read: CsmTask = from_item(&item).unwrap();
        assert_eq!(read.brief(), task.brief());
        assert_eq!((read.id(), read.version), (task.id(), 3));
    }
}
