//! A pause of automated customer email for one account: a CSM asks for it
//! when the playbook should stay quiet (a renewal call, a sensitive moment).
//! Leadership still hears about a stuck milestone.

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::actor::Actor;
use crate::Timestamp;

/// How long "Pause customer emails" pauses them.
pub const PAUSE_DAYS: i64 = 14;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerEmailPause {
    pub until: Timestamp,
    pub by: Actor,
    pub at: Timestamp,
    /// The signed link's key, when it came from one: following it again changes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_key: Option<String>,
}

impl CustomerEmailPause {
    pub fn starting(at: Timestamp, by: Actor, link_key: Option<String>) -> Self {
        CustomerEmailPause {
            until: at + Duration::days(PAUSE_DAYS),
            by,
            at,
            link_key,
        }
    }

    pub fn is_active(&self, now: Timestamp) -> bool {
        now < self.until
    }
}
