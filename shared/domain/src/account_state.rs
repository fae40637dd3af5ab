//! Applying one product event to an account: the one place it is written.
//! Both stores load an account's state, call `AccountState::apply`, and save
//! what it reports changed, with the event's dedupe record, in one atomic
//! write (one DynamoDB transaction; one lock in the in-memory store).

use crate::tracked::Advance;
use crate::{Account, AccountActivity, IllegalChange, ProductEvent, Timestamp, TrackedMilestone};

/// What applying an event reads and may change: the account, its activity and its milestones.
pub struct AccountState<'a> {
    pub account: &'a Account,
    pub activity: &'a mut AccountActivity,
    /// Every milestone the account tracks.
    pub milestones: &'a mut [TrackedMilestone],
}

/// What one event changed in an `AccountState`, by position in its
/// `milestones`. The store saves exactly this.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// The activity took the event.
    pub activity: bool,
    /// Milestones the event changed (progress, status or achievement time).
    pub milestones: Vec<usize>,
    /// Of those, the ones whose reached event this write claims for
    /// announcement: the caller publishes it, then settles the claim.
    pub claimed: Vec<usize>,
    /// Milestones reached earlier and never announced (a publish failed) that
    /// this write did not claim: the caller claims them first.
    pub owed: Vec<usize>,
}

impl AccountState<'_> {
    /// Folds `event` (received at `now`) into the activity and every
    /// milestone whose criterion it advances, moving their lifecycle, and
    /// claims the announcement of what it reached. Idempotent: applying an
    /// event twice changes nothing the second time. Progress depends only on
    /// the set of events seen, never on their order.
    ///
    /// On an `IllegalChange` (a bug: reaching an open milestone is always
    /// legal) the milestones before it may be changed: the caller saves nothing.
    pub fn apply(&mut self, event: &ProductEvent, now: Timestamp) -> Result<Changes, IllegalChange> {
        let mut changes = Changes {
            activity: self.activity.record(event),
            ..Changes::default()
        };
        let seats = self.account.licensed_seats;
        for (i, m) in self.milestones.iter_mut().enumerate() {
            if let Some(obs) = m.criterion.observe(event) {
                let advance = m.observe(&obs, seats).map_err(|t| IllegalChange::of(m, t))?;
                if advance != Advance::Unchanged {
                    changes.milestones.push(i);
                    if m.claim_announcement(now) {
                        changes.claimed.push(i);
                        continue;
                    }
                }
            }
            if m.needs_reached_announcement() {
                changes.owed.push(i);
            }
        }
        Ok(changes)
    }
}

/// Reached milestones whose reached event still has to go out on the bus.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Announcements {
    /// Claimed in the same write that reached them: publish, then settle the claim.
    pub claimed: Vec<TrackedMilestone>,
    /// Reached earlier and never announced: claim first.
    pub unclaimed: Vec<TrackedMilestone>,
}

impl Announcements {
    /// What `changes` leaves to announce, from the milestones as saved.
    pub fn of(changes: &Changes, milestones: &[TrackedMilestone]) -> Self {
        let pick = |positions: &[usize]| positions.iter().map(|&i| milestones[i].clone()).collect();
        Announcements {
            claimed: pick(&changes.claimed),
            unclaimed: pick(&changes.owed),
        }
    }

    /// For a redelivered event, which changes nothing: the announcements a
    /// failed publish left owed, so the redelivery heals them.
    pub fn owed(milestones: &[TrackedMilestone]) -> Self {
        Announcements {
            claimed: Vec::new(),
            unclaimed: milestones
                .iter()
                .filter(|m| m.needs_reached_announcement())
                .cloned()
                .collect(),
        }
    }
}
