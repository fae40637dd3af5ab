//! Customer contacts and suppressions, leaders' queues and held-back lists.

use super::*;

#[async_trait]
impl ContactStore for DynamoStore {
    async fn contact(&self, fingerprint: &str) -> StoreResult<Option<ContactRecord>> {
        let found = self.get_versioned(contact_pk(fingerprint), CONTACT_SK).await?;
        Ok(found.map(|(contact, version)| ContactRecord { version, ..contact }))
    }

    async fn save_contact(&self, fingerprint: &str, contact: &ContactRecord) -> StoreResult<u64> {
        self.put_versioned(contact_pk(fingerprint), CONTACT_SK, contact, contact.version)
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

#[async_trait]
impl HeldBackListStore for DynamoStore {
    async fn held_back_list(&self, owner: &EmailAddress) -> StoreResult<Option<HeldBackList>> {
        let found = self
            .get_versioned(HELD_BACK_PK.to_string(), &held_back_sk(owner))
            .await?;
        Ok(found.map(|(list, version)| HeldBackList { version, ..list }))
    }

    async fn save_held_back_list(&self, list: &HeldBackList) -> StoreResult<u64> {
        let sk = held_back_sk(&list.owner.email);
        self.put_versioned(HELD_BACK_PK.to_string(), &sk, list, list.version)
            .await
    }

    async fn held_back_lists(&self) -> StoreResult<Vec<HeldBackList>> {
        self.query_all(HELD_BACK_PK.to_string(), "OWNER#")
            .await?
            .iter()
            .map(|item| {
                let list: HeldBackList = from_item(item)?;
                Ok(HeldBackList {
                    version: version_of(item).unwrap_or(0),
                    ..list
                })
            })
            .collect()
    }
}
