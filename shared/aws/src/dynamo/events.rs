//! Applying an account's product events: one query for its state, one
//! transaction for the milestones changed and the dedupe records, one
//! update of the compact activity; and the dedupe, parking and activity
//! stores beside it.

use std::sync::atomic::{AtomicU64, Ordering};

use super::*;

/// The most items one TransactWriteItems takes, and the most bytes (4 MB).
pub(super) const MAX_TRANSACTION_ITEMS: usize = 100;
pub(super) const MAX_TRANSACTION_BYTES: usize = 4 * 1024 * 1024;
/// How often an activity write lost to a concurrent one is folded again before giving up.
pub(super) const ACTIVITY_ATTEMPTS: usize = 5;

/// An account's items under `STATE#`, as one query returns them.
pub(super) struct LoadedAccount {
    pub(super) account: Option<Arc<Account>>,
    pub(super) activity: AccountActivity,
    pub(super) activity_version: Option<u64>,
    pub(super) milestones: Vec<TrackedMilestone>,
}

pub(super) enum Transaction {
    Written,
    /// Only dedupe records' conditions failed, at these positions: their
    /// events were applied before.
    Duplicates(Vec<usize>),
    /// Another writer changed an item since it was read.
    Conflict,
}

/// A ClientRequestToken unique to one transaction attempt (at most 36 characters).
pub(super) fn transaction_token() -> String {
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
            self.save_activity(activity, activity_version, events).await?;
        }
        Ok(EventsApplied::Known {
            account,
            duplicate,
            announcements: Announcements::of_batch(&changes, &milestones),
        })
    }
}

impl DynamoStore {
    /// Writes an account's activity with one UpdateItem over `version`
    /// (`None`: none stored yet); `false` when another writer changed it
    /// since (nothing was written).
    pub(super) async fn write_activity(&self, activity: &AccountActivity, version: Option<u64>) -> StoreResult<bool> {
        let next = version.unwrap_or(0) + 1;
        let pk = account_pk(&activity.account_id);
        let [(days_name, days), (recent_name, recent)] = activity_item::encode(activity);
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
    pub(super) async fn save_activity(
        &self,
        mut activity: AccountActivity,
        mut version: Option<u64>,
        events: &[ProductEvent],
    ) -> StoreResult<()> {
        for _ in 0..ACTIVITY_ATTEMPTS {
            if self.write_activity(&activity, version).await? {
                return Ok(());
            }
            let stored = self.get(account_pk(&activity.account_id), ACTIVITY_SK).await?;
            (activity, version) = match stored {
                Some(item) => (activity_item::decode(&activity.account_id, &item)?, version_of(&item)),
                None => (AccountActivity::new(activity.account_id.clone()), None),
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
    pub(super) fn dedupe_record(
        &self,
        account: &AccountId,
        event_id: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> StoreResult<Put> {
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
    pub(super) async fn load_account(&self, id: &AccountId) -> StoreResult<LoadedAccount> {
        let mut state = LoadedAccount {
            account: None,
            activity: AccountActivity::new(id.clone()),
            activity_version: None,
            milestones: Vec::new(),
        };
        for item in self.query_all(account_pk(id), STATE_PREFIX).await? {
            match item.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str) {
                Some(PROFILE_SK) => state.account = Some(Arc::new(from_item(&item)?)),
                Some(ACTIVITY_SK) => {
                    state.activity = activity_item::decode(id, &item)?;
                    state.activity_version = version_of(&item);
                }
                Some(sk) if sk.starts_with(MILESTONE_PREFIX) => state.milestones.push(milestone_from_item(&item)?),
                _ => {}
            }
        }
        Ok(state)
    }

    /// Writes all puts or none, in one TransactWriteItems (at most
    /// `MAX_TRANSACTION_ITEMS`, `MAX_TRANSACTION_BYTES`). The puts from
    /// `dedupe_from` on are dedupe records: when only their conditions fail,
    /// the answer says which.
    pub(super) async fn transact<'p>(
        &self,
        puts: impl Iterator<Item = &'p Put>,
        dedupe_from: usize,
    ) -> StoreResult<Transaction> {
        let items = puts
            .map(|p| TransactWriteItem::builder().put(p.clone()).build())
            .collect();
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
    pub(super) async fn write_batch(
        &self,
        milestones: Vec<Put>,
        dedupe: Vec<(String, Put)>,
    ) -> StoreResult<Vec<String>> {
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
