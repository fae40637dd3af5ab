//! The system clock: the one clock production runs on. (The demo and tests
//! move a virtual one: `milepost_embedded::VirtualClock`; `make local`'s
//! playbook functions read one instant per step: `FixedClock`.)

use chrono::Utc;
use milepost_domain::Timestamp;

use crate::ports::Clock;

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Utc::now()
    }
}

/// One instant, for one step: `make local`'s executor runs the playbook in
/// compressed time and tells each step what time it is there.
pub struct FixedClock(pub Timestamp);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}
