use std::sync::Mutex;

use async_trait::async_trait;

use milepost_app::ports::{EventPublisher, PublishError};
use milepost_domain::DomainEvent;

/// Keeps every published event, in order: the demo writes them out, tests read them.
#[derive(Default)]
pub struct RecordingPublisher {
    events: Mutex<Vec<DomainEvent>>,
}

impl RecordingPublisher {
    pub fn events(&self) -> Vec<DomainEvent> {
        self.events.lock().expect("publisher lock").clone()
    }

    pub fn count(&self, detail_type: &str) -> usize {
        self.events
            .lock()
            .expect("publisher lock")
            .iter()
            .filter(|e| e.detail_type() == detail_type)
            .count()
    }
}

#[async_trait]
impl EventPublisher for RecordingPublisher {
    async fn publish(&self, events: &[DomainEvent]) -> Result<(), PublishError> {
        self.events.lock().expect("publisher lock").extend_from_slice(events);
        Ok(())
    }
}
