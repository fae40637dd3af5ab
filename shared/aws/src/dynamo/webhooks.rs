//! Outbound webhooks: the endpoints (one partition, a handful of items) and
//! each event's delivery to each (a partition per endpoint; pending ones in
//! the `WEBHOOKS#DUE` partition of the `due` index by next attempt).

use aws_sdk_dynamodb::types::ReturnValue;
use milepost_app::ports::WebhookStore;
use milepost_domain::webhooks::{Delivery, DeliveryState, WebhookEndpoint};

use super::*;

/// How long a delivered or dead delivery is kept (to list, and to replay).
const DELIVERY_KEPT_DAYS: i64 = 30;

impl DynamoStore {
    /// A delivery stored as `version`: in the due index while pending; with
    /// its TTL once delivered or dead.
    fn delivery_item(delivery: &Delivery, version: u64) -> StoreResult<Item> {
        let mut stored = delivery.clone();
        stored.version = version;
        let mut item = HashMap::from([
            ("pk".to_string(), s(webhook_endpoint_pk(&delivery.endpoint_id))),
            ("sk".to_string(), s(delivery_sk(&delivery.event_id))),
            ("item".to_string(), to_attr(&stored)?),
            ("version".to_string(), AttributeValue::N(version.to_string())),
        ]);
        match &delivery.state {
            DeliveryState::Pending { next_at } => {
                item.insert("due_pk".into(), s(DELIVERIES_DUE_PK));
                item.insert(
                    "due_sk".into(),
                    s(format!(
                        "{}#{}#{}",
                        time_key(*next_at),
                        delivery.endpoint_id,
                        delivery.event_id
                    )),
                );
            }
            DeliveryState::Delivered { at } | DeliveryState::Dead { at, .. } => {
                let expires = *at + chrono::Duration::days(DELIVERY_KEPT_DAYS);
                item.insert(
                    schema::TTL_ATTRIBUTE.into(),
                    AttributeValue::N(expires.timestamp().to_string()),
                );
            }
        }
        let (pk, sk) = (
            webhook_endpoint_pk(&delivery.endpoint_id),
            delivery_sk(&delivery.event_id),
        );
        if !key_fits(&pk, &sk) {
            return Err(key_too_long(&pk, &sk));
        }
        Ok(item)
    }
}

#[async_trait]
impl WebhookStore for DynamoStore {
    async fn webhook_endpoints(&self) -> StoreResult<Vec<WebhookEndpoint>> {
        self.query_all(WEBHOOKS_PK.to_string(), ENDPOINT_PREFIX)
            .await?
            .iter()
            .map(|item| versioned_from(item, |e: &mut WebhookEndpoint, v| e.version = v))
            .collect()
    }

    async fn create_webhook_endpoint(&self, endpoint: &WebhookEndpoint) -> StoreResult<bool> {
        let mut stored = endpoint.clone();
        stored.version = 1;
        match self
            .put_versioned(WEBHOOKS_PK.to_string(), &endpoint_sk(&endpoint.id), &stored, 0)
            .await
        {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn update_webhook_endpoint(&self, endpoint: &WebhookEndpoint) -> StoreResult<u64> {
        if endpoint.version == 0 {
            return Err(StoreError::Conflict);
        }
        let mut stored = endpoint.clone();
        stored.version = endpoint.version + 1;
        self.put_versioned(
            WEBHOOKS_PK.to_string(),
            &endpoint_sk(&endpoint.id),
            &stored,
            endpoint.version,
        )
        .await
    }

    async fn delete_webhook_endpoint(&self, id: &str) -> StoreResult<bool> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(WEBHOOKS_PK))
            .key("sk", s(endpoint_sk(id)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| refused(e.into_service_error()))?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }

    async fn create_delivery(&self, delivery: &Delivery) -> StoreResult<bool> {
        let item = Self::delivery_item(delivery, 1)?;
        self.put(
            item,
            webhook_endpoint_pk(&delivery.endpoint_id),
            &delivery_sk(&delivery.event_id),
            true,
        )
        .await
    }

    async fn get_delivery(&self, endpoint_id: &str, event_id: &str) -> StoreResult<Option<Delivery>> {
        self.get(webhook_endpoint_pk(endpoint_id), &delivery_sk(event_id))
            .await?
            .map(|item| versioned_from(&item, |d: &mut Delivery, v| d.version = v))
            .transpose()
    }

    async fn update_delivery(&self, delivery: &Delivery) -> StoreResult<u64> {
        let item = Self::delivery_item(delivery, delivery.version + 1)?;
        self.put_on_version(item, delivery.version).await
    }

    async fn due_deliveries(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<Delivery>> {
        self.due_in(DELIVERIES_DUE_PK, now, limit)
            .await?
            .iter()
            .map(|item| versioned_from(item, |d: &mut Delivery, v| d.version = v))
            .collect()
    }

    async fn endpoint_deliveries(&self, endpoint_id: &str) -> StoreResult<Vec<Delivery>> {
        let mut found: Vec<Delivery> = self
            .query_all(webhook_endpoint_pk(endpoint_id), DELIVERY_PREFIX)
            .await?
            .iter()
            .map(|item| versioned_from(item, |d: &mut Delivery, v| d.version = v))
            .collect::<StoreResult<_>>()?;
        found.sort_by(|a, b| (b.created_at, &b.event_id).cmp(&(a.created_at, &a.event_id)));
        Ok(found)
    }
}
