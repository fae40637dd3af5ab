//! Account profiles, milestone maps and customer-email pauses.

use super::*;

impl DynamoStore {
    /// An account profile, with `traits_at` on top for the conditional writes of group calls.
    pub(super) fn account_item(account: &Account) -> StoreResult<Item> {
        let mut item = HashMap::from([("item".to_string(), to_attr(account)?)]);
        if let Some(at) = account.traits_at {
            item.insert("traits_at".into(), s(time_key(at)));
        }
        if let Some(plan) = &account.success_plan {
            item.insert("plan_version".into(), AttributeValue::N(plan.version.to_string()));
        }
        Ok(item)
    }
}

#[async_trait]
impl AccountStore for DynamoStore {
    async fn put_account(&self, account: &Account) -> StoreResult<()> {
        self.put(Self::account_item(account)?, account_pk(&account.id), PROFILE_SK, false)
            .await?;
        Ok(())
    }

    /// Conditional on the `traits_at` attribute read (absent: none, or no
    /// account at all when `expected` is `None`).
    async fn replace_account(&self, account: &Account, expected: Option<&Account>) -> StoreResult<bool> {
        let mut item = Self::account_item(account)?;
        item.insert("pk".into(), s(account_pk(&account.id)));
        item.insert("sk".into(), s(PROFILE_SK));
        let mut put = Put::builder().table_name(&self.table).set_item(Some(item));
        // Still the account read: its traits' time and its plan's version.
        put = match expected.map(|a| a.revision()) {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some((traits_at, plan_version)) => {
                let traits = match traits_at {
                    None => "attribute_not_exists(traits_at)",
                    Some(at) => {
                        put = put.expression_attribute_values(":read", s(time_key(at)));
                        "traits_at = :read"
                    }
                };
                let plan = match plan_version {
                    None => "attribute_not_exists(plan_version)",
                    Some(v) => {
                        put = put.expression_attribute_values(":plan", AttributeValue::N(v.to_string()));
                        "plan_version = :plan"
                    }
                };
                put.condition_expression(format!("attribute_exists(pk) AND {traits} AND {plan}"))
            }
        };
        self.put_conditionally(put.build().map_err(backend)?).await
    }

    async fn get_account(&self, id: &AccountId) -> StoreResult<Option<Arc<Account>>> {
        self.get(account_pk(id), PROFILE_SK)
            .await?
            .map(|i| from_item(&i).map(Arc::new))
            .transpose()
    }
}

#[async_trait]
impl MapStore for DynamoStore {
    async fn put_map(&self, map: &MilestoneMap) -> StoreResult<()> {
        let (pk, sk) = map_key(map.segment, map.tenure);
        let item = HashMap::from([("item".to_string(), to_attr(map)?)]);
        self.put(item, pk, &sk, false).await?;
        Ok(())
    }

    async fn maps_for(&self, segment: Segment, tenure: Tenure) -> StoreResult<Vec<MilestoneMap>> {
        let mut maps = Vec::new();
        for seg in [MapSegment::Only(segment), MapSegment::All] {
            let (pk, _) = map_key(seg, None);
            for item in self.query_all(pk, "TENURE#").await? {
                let map: MilestoneMap = from_item(&item)?;
                if map.specificity(segment, tenure).is_some() {
                    maps.push(map);
                }
            }
        }
        Ok(maps)
    }
}

#[async_trait]
impl PauseStore for DynamoStore {
    async fn pause_customer_emails(&self, account: &AccountId, pause: &CustomerEmailPause) -> StoreResult<()> {
        let item = HashMap::from([("item".to_string(), to_attr(pause)?)]);
        self.put(item, account_pk(account), PAUSE_SK, false).await?;
        Ok(())
    }

    async fn customer_email_pause(&self, account: &AccountId) -> StoreResult<Option<CustomerEmailPause>> {
        self.get(account_pk(account), PAUSE_SK)
            .await?
            .map(|i| from_item(&i))
            .transpose()
    }
}

/// A success plan's versions: a partition per account, an item per version
/// (written only if new, so two writers of one version cannot both win).
fn plan_pk(account: &AccountId) -> String {
    format!("PLAN#{account}")
}

fn plan_sk(version: u32) -> String {
    format!("V#{version:010}")
}

#[async_trait]
impl milepost_app::ports::SuccessPlanStore for DynamoStore {
    async fn success_plan(&self, account: &AccountId) -> StoreResult<Option<milepost_domain::SuccessPlan>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(plan_pk(account)))
            .scan_index_forward(false)
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| refused(e.into_service_error()))?;
        out.items().first().map(from_item).transpose()
    }

    async fn success_plan_history(&self, account: &AccountId) -> StoreResult<Vec<milepost_domain::SuccessPlan>> {
        self.query_all(plan_pk(account), "V#")
            .await?
            .iter()
            .map(from_item)
            .collect()
    }

    async fn add_success_plan(&self, plan: &milepost_domain::SuccessPlan) -> StoreResult<bool> {
        let item = HashMap::from([("item".to_string(), to_attr(plan)?)]);
        self.put(item, plan_pk(&plan.account_id), &plan_sk(plan.version), true)
            .await
    }

    async fn success_plans(&self) -> StoreResult<Vec<milepost_domain::SuccessPlan>> {
        let mut latest: std::collections::BTreeMap<AccountId, milepost_domain::SuccessPlan> = Default::default();
        for item in self.scan_pk_prefix("PLAN#", None).await? {
            let plan: milepost_domain::SuccessPlan = from_item(&item)?;
            match latest.get(&plan.account_id) {
                Some(kept) if kept.version >= plan.version => {}
                _ => {
                    latest.insert(plan.account_id.clone(), plan);
                }
            }
        }
        Ok(latest.into_values().collect())
    }
}
