use std::sync::atomic::{AtomicI64, Ordering};

use chrono::DateTime;
use milepost_app::ports::Clock;
use milepost_domain::Timestamp;

/// A clock the demo and tests move by hand, so months pass in seconds.
pub struct VirtualClock {
    micros: AtomicI64,
}

impl VirtualClock {
    pub fn new(start: Timestamp) -> Self {
        VirtualClock {
            micros: AtomicI64::new(start.timestamp_micros()),
        }
    }

    pub fn set(&self, t: Timestamp) {
        self.micros.store(t.timestamp_micros(), Ordering::SeqCst);
    }

    pub fn advance(&self, by: chrono::Duration) {
        self.micros
            .fetch_add(by.num_microseconds().expect("sane duration"), Ordering::SeqCst);
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> Timestamp {
        DateTime::from_timestamp_micros(self.micros.load(Ordering::SeqCst)).expect("in range")
    }
}
