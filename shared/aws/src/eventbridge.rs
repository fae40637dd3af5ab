//! Domain events to the Milepost EventBridge bus.

use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;

use crate::LazyClient;

use milepost_app::ports::{EventPublisher, PublishError};
use milepost_domain::DomainEvent;

/// The `source` of every Milepost event, for EventBridge rules to match on.
pub const SOURCE: &str = "milepost";
/// PutEvents takes at most 10 entries.
const BATCH: usize = 10;
const ATTEMPTS: u32 = 4;

pub struct EventBridgePublisher {
    client: LazyClient<Client>,
    bus: String,
}

impl EventBridgePublisher {
    pub fn new(client: impl Into<LazyClient<Client>>, bus: impl Into<String>) -> Self {
        EventBridgePublisher {
            client: client.into(),
            bus: bus.into(),
        }
    }
}

#[async_trait]
impl EventPublisher for EventBridgePublisher {
    async fn publish(&self, events: &[DomainEvent]) -> Result<(), PublishError> {
        for chunk in events.chunks(BATCH) {
            let mut pending: Vec<PutEventsRequestEntry> = chunk
                .iter()
                .map(|e| {
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus)
                        .source(SOURCE)
                        .detail_type(e.detail_type())
                        // With `event_id`, the consumer's dedupe key: EventBridge takes none,
                        // so a resend after a lost answer delivers the event twice.
                        .detail(e.detail().to_string())
                        .build()
                })
                .collect();
            // Entries can fail one by one (throttling): resend only those, with backoff.
            for attempt in 0..ATTEMPTS {
                let out = self
                    .client
                    .get()
                    .put_events()
                    .set_entries(Some(pending.clone()))
                    .send()
                    .await
                    .map_err(PublishError::new)?;
                if out.failed_entry_count == 0 {
                    pending.clear();
                    break;
                }
                let results = out.entries.unwrap_or_default();
                pending = pending
                    .into_iter()
                    .zip(results)
                    .filter(|(_, r)| r.error_code.is_some())
                    .map(|(entry, _)| entry)
                    .collect();
                tokio::time::sleep(std::time::Duration::from_millis(100 << attempt)).await;
            }
            if !pending.is_empty() {
                return Err(PublishError::new(format!(
                    "{} events not accepted by the bus",
                    pending.len()
                )));
            }
        }
        Ok(())
    }
}
