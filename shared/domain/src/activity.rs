//! What an account did recently: the days it was active and its latest events.
//! Like criterion progress, it depends only on the set of events seen.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::{AccountId, ProductEvent, Timestamp};

/// How many days of activity history are kept (the health trend looks back 30).
pub const ACTIVE_DAYS_KEPT: i64 = 90;
/// How many recent events are kept for CSM context.
pub const RECENT_EVENTS_KEPT: usize = 10;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RecentEvent {
    pub at: Timestamp,
    /// Tells this event from another at the same instant (a redelivery has the same).
    #[serde(alias = "id")]
    pub fingerprint: IdFingerprint,
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

/// A 64-bit fingerprint (FNV-1a) of an event id. The activity keeps it
/// instead of the id: ids run to 40 bytes and more, and ten of them would
/// take the stored activity past one DynamoDB write unit. Two events are
/// told apart by time and fingerprint; a clash needs the same instant and a
/// 1 in 2^64 chance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct IdFingerprint(pub u64);

impl IdFingerprint {
    pub fn of(id: &str) -> Self {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in id.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        IdFingerprint(hash)
    }
}

/// A fingerprint, or (as activity stored before fingerprints has it) the id itself.
impl<'de> Deserialize<'de> for IdFingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Fingerprint(u64),
            Id(String),
        }
        Ok(match Stored::deserialize(deserializer)? {
            Stored::Fingerprint(f) => IdFingerprint(f),
            Stored::Id(id) => IdFingerprint::of(&id),
        })
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountActivity {
    pub account_id: AccountId,
    pub active_days: BTreeSet<NaiveDate>,
    /// The latest events, oldest first, by (time, fingerprint).
    pub recent: Vec<RecentEvent>,
}

impl AccountActivity {
    pub fn new(account_id: AccountId) -> Self {
        AccountActivity {
            account_id,
            ..Default::default()
        }
    }

    /// Folds the event in; returns whether anything changed (false for an
    /// event seen before, or one older than everything kept), so a store
    /// writes the activity only when it has to.
    pub fn record(&mut self, event: &ProductEvent) -> bool {
        let day = event.timestamp.date_naive();
        let mut changed = false;
        if self.active_days.insert(day) {
            if let Some(&latest) = self.active_days.last() {
                let cutoff = latest - chrono::Duration::days(ACTIVE_DAYS_KEPT);
                while self.active_days.first().is_some_and(|d| *d <= cutoff) {
                    self.active_days.pop_first();
                }
            }
            // A day older than the history kept goes straight out again.
            changed = self.active_days.contains(&day);
        }
        let key = (event.timestamp, IdFingerprint::of(&event.id));
        let position = self.recent.partition_point(|r| (r.at, r.fingerprint) < key);
        if self.recent.get(position).is_some_and(|r| (r.at, r.fingerprint) == key) {
            return changed; // seen already
        }
        if self.recent.len() < RECENT_EVENTS_KEPT {
            self.recent.insert(
                position,
                RecentEvent {
                    at: event.timestamp,
                    fingerprint: key.1,
                    event: event.event.clone(),
                    user_id: event.user_id.clone(),
                },
            );
            return true;
        }
        if position == 0 {
            return changed; // older than every recent event kept
        }
        // Full: the oldest slot is reused for the new event (`clone_from` keeps its
        // string buffers), then moved to its place. This runs on every event.
        self.recent[..position].rotate_left(1);
        let slot = &mut self.recent[position - 1];
        slot.at = event.timestamp;
        slot.fingerprint = key.1;
        slot.event.clone_from(&event.event);
        slot.user_id.clone_from(&event.user_id);
        true
    }

    /// The last day with activity on or before `at`.
    pub fn last_active_as_of(&self, at: Timestamp) -> Option<NaiveDate> {
        self.active_days.range(..=at.date_naive()).next_back().copied()
    }

    /// Distinct users among the recent events, newest first.
    pub fn recent_users(&self) -> Vec<String> {
        let mut users = Vec::new();
        for e in self.recent.iter().rev() {
            if let Some(u) = &e.user_id {
                if !users.contains(u) {
                    users.push(u.clone());
                }
            }
        }
        users
    }
}
