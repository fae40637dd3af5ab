//! What the ingest handler's tests share: the use case over a store (in
//! memory or DynamoDB on moto) with a map loaded, the publisher its domain
//! events go to, and the handler's configuration.

// Each test crate uses its own part of this.
#![allow(dead_code)]

use std::sync::Arc;

use lambda_http::{Body, Response};
use milepost_app::ports::Store;
use milepost_app::Services;
use milepost_aws::DynamoStore;
use milepost_embedded::{InMemoryStore, RecordingPublisher};
use milepost_ingest::IngestConfig;
use milepost_local::MotoServer;
use serde_json::Value;

pub struct Setup {
    pub services: Services,
    pub store: Arc<dyn Store>,
    pub events: Arc<RecordingPublisher>,
    pub config: IngestConfig,
}

impl Setup {
    /// Services over `store`, their domain events recorded in `events`, and
    /// `map` (a map's YAML) stored, if given.
    pub async fn new(store: Arc<dyn Store>, map: Option<&str>, config: IngestConfig) -> Arc<Setup> {
        let events = Arc::new(RecordingPublisher::default());
        let services = Services {
            events: events.clone(),
            ..milepost_embedded::fixtures::quiet_services(store.clone())
        };
        if let Some(map) = map {
            store
                .put_map(&milepost_maps::load_map("m.yaml", map).unwrap())
                .await
                .unwrap();
        }
        Arc::new(Setup {
            services,
            store,
            events,
            config,
        })
    }
}

pub fn in_memory_store() -> Arc<dyn Store> {
    Arc::new(InMemoryStore::sized_like_dynamodb())
}

/// A new table on `moto`; from here on, moto records what is asked of AWS
/// (ingestion's requests, and the tests' reads, which it may make too).
pub async fn dynamodb_store(moto: &MotoServer, table: &str) -> Arc<dyn Store> {
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let store = DynamoStore::new(client, table);
    store.create_table().await.unwrap();
    moto.record_requests(true).await;
    Arc::new(store)
}

pub fn json_of(resp: &Response<Body>) -> Value {
    serde_json::from_slice(resp.body().as_ref()).unwrap()
}
