//! A claim: one holder's hold on something that must happen once (an
//! announcement, a missed milestone's escalation, an email's send), so that
//! concurrent deliveries, overlapping sweeps and retried Lambdas do it once.

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// Who holds the claim, and since when. A claim older than its lease
/// belongs to a holder that crashed and may be taken over; one read back by
/// the holder that made it (its write went through, the answer was lost)
/// is still its own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub by: String,
    pub since: Timestamp,
}

impl Claim {
    pub fn new(by: impl Into<String>, since: Timestamp) -> Self {
        Claim { by: by.into(), since }
    }

    /// A claim made at `since` by a new holder of its own (`fresh_claimant`).
    pub fn fresh(since: Timestamp) -> Self {
        Claim::new(fresh_claimant(), since)
    }

    /// Whether the claim still stands at `now`, under `lease`.
    pub fn is_live(&self, now: Timestamp, lease: chrono::Duration) -> bool {
        now - self.since < lease
    }

    pub fn is_held_by(&self, claimant: &str) -> bool {
        self.by == claimant
    }
}

/// A new claimant id, for the claims one delivery, sweep or attempt makes:
/// random per call (std's per-process random hash keys, a new key each
/// time), so two never share one, and one keeps its own across its retries.
pub fn fresh_claimant() -> String {
    use std::hash::{BuildHasher, Hasher};
    let hasher = std::collections::hash_map::RandomState::new().build_hasher();
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};

    #[test]
    fn a_claim_stands_for_its_lease_and_belongs_to_its_holder() {
        let at = Utc.with_ymd_and_hms(2026, 1, 2, 9, 0, 0).unwrap();
        let claim = Claim::new("sweep-1", at);
        assert!(claim.is_live(at + Duration::minutes(14), Duration::minutes(15)));
        assert!(!claim.is_live(at + Duration::minutes(15), Duration::minutes(15)));
        assert!(claim.is_held_by("sweep-1") && !claim.is_held_by("sweep-2"));
        assert_ne!(
            Claim::fresh(at).by,
            Claim::fresh(at).by,
            "two holders never share an id"
        );
    }
}
