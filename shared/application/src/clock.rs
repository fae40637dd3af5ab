//! The system clock: the one clock production runs on. (The demo and tests
//! move a virtual one: `milepost_embedded::VirtualClock`.)

use chrono::Utc;
use milepost_domain::Timestamp;

use crate::ports::Clock;

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Utc::now()
    }
}
