use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;

use milepost_app::ports::{EventPublisher, PublishError};
use milepost_domain::DomainEvent;

/// Keeps every published event, in order: the demo writes them out, tests read them.
#[derive(Default)]
pub struct RecordingPublisher {
    events: Mutex<Vec<DomainEvent>>,
    /// Publishes still to refuse, as a bus outage would (`fail_next`).
    failures: AtomicUsize,
}

impl RecordingPublisher {
    /// The next `n` publishes fail and record nothing: a bus that is down.
    pub fn fail_next(&self, n: usize) {
        self.failures.store(n, Ordering::SeqCst);
    }

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
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(PublishError("the bus is down (a test's failure)".into()));
        }
        self.events.lock().expect("publisher lock").extend_from_slice(events);
        Ok(())
    }
}
