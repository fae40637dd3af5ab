//! The CRM's records: one per account's company and per task under the
//! account's `CRM#<account>` partition; in the `due` index, those owed a
//! write (`CRM#DUE`, by when), and those an operator lists (`CRM#UNMATCHED`,
//! `CRM#DEAD`).

use milepost_app::ports::{CrmList, CrmSyncStore};
use milepost_domain::crm::{CrmSync, Mirrored, SyncState};

use super::*;

/// How long a task's record is kept once synced (its task is updated while it lives).
const CRM_TASK_KEPT_DAYS: i64 = 120;

impl DynamoStore {
    fn crm_sync_item(sync: &CrmSync, version: u64) -> StoreResult<Item> {
        let record = sync.mirrored.key();
        let (pk, sk) = (crm_pk(&sync.account_id), crm_sk(&record));
        if !key_fits(&pk, &sk) {
            return Err(key_too_long(&pk, &sk));
        }
        let stored = CrmSync {
            version,
            ..sync.clone()
        };
        let mut item = HashMap::from([
            ("pk".to_string(), s(pk)),
            ("sk".to_string(), s(sk)),
            ("item".to_string(), to_attr(&stored)?),
            ("version".to_string(), AttributeValue::N(version.to_string())),
        ]);
        let listed = |at: Timestamp| format!("{}#{}#{record}", time_key(at), sync.account_id);
        let (due_pk, due_sk) = match &sync.state {
            SyncState::Due { next_at } => (CRM_DUE_PK, listed(*next_at)),
            SyncState::Unmatched { .. } => (CRM_UNMATCHED_PK, listed(chrono::Utc::now())),
            SyncState::Dead { at, .. } => (CRM_DEAD_PK, listed(*at)),
            SyncState::Synced => {
                if matches!(sync.mirrored, Mirrored::Task(_)) {
                    let expires = chrono::Utc::now() + chrono::Duration::days(CRM_TASK_KEPT_DAYS);
                    item.insert(
                        schema::TTL_ATTRIBUTE.into(),
                        AttributeValue::N(expires.timestamp().to_string()),
                    );
                }
                return Ok(item);
            }
        };
        item.insert("due_pk".into(), s(due_pk));
        item.insert("due_sk".into(), s(due_sk));
        Ok(item)
    }

    fn crm_sync_from(item: &Item) -> StoreResult<CrmSync> {
        versioned_from(item, |c: &mut CrmSync, v| c.version = v)
    }
}

#[async_trait]
impl CrmSyncStore for DynamoStore {
    async fn create_crm_sync(&self, sync: &CrmSync) -> StoreResult<bool> {
        let item = Self::crm_sync_item(sync, 1)?;
        self.put(item, crm_pk(&sync.account_id), &crm_sk(&sync.mirrored.key()), true)
            .await
    }

    async fn crm_syncs(&self, account: &AccountId) -> StoreResult<Vec<CrmSync>> {
        self.query_all(crm_pk(account), CRM_PREFIX)
            .await?
            .iter()
            .map(Self::crm_sync_from)
            .collect()
    }

    async fn update_crm_sync(&self, sync: &CrmSync) -> StoreResult<u64> {
        let item = Self::crm_sync_item(sync, sync.version + 1)?;
        self.put_on_version(item, sync.version).await
    }

    async fn due_crm_syncs(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<CrmSync>> {
        self.due_in(CRM_DUE_PK, now, limit)
            .await?
            .iter()
            .map(Self::crm_sync_from)
            .collect()
    }

    async fn listed_crm_syncs(&self, list: CrmList, limit: usize) -> StoreResult<Vec<CrmSync>> {
        let pk = match list {
            CrmList::Unmatched => CRM_UNMATCHED_PK,
            CrmList::Dead => CRM_DEAD_PK,
        };
        // Every entry, whatever clock listed it (a test's may run ahead).
        let until = chrono::Utc::now() + chrono::Duration::days(365 * 100);
        self.due_in(pk, until, limit)
            .await?
            .iter()
            .map(Self::crm_sync_from)
            .collect()
    }

    async fn crm_value(&self, key: &str) -> StoreResult<Option<String>> {
        Ok(self
            .get(CRM_VALUES_PK.to_string(), key)
            .await?
            .and_then(|item| item.get("value").and_then(|v| v.as_s().ok()).cloned()))
    }

    async fn set_crm_value(&self, key: &str, value: &str) -> StoreResult<()> {
        let item = HashMap::from([("value".to_string(), s(value))]);
        self.put(item, CRM_VALUES_PK.to_string(), key, false).await?;
        Ok(())
    }
}
