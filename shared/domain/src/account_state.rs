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
    /// Some milestone's criterion reads the event (whether or not it
    /// advanced anything): such an event gets a dedupe record; one no
    /// criterion reads changes only the activity, which a redelivery leaves as it is.
    pub read: bool,
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
    pub fn apply(&mut self, event: &ProductEvent, now: Timestamp, claimant: &str) -> Result<Changes, IllegalChange> {
        let mut changes = Changes {
            activity: self.activity.record(event),
            ..Changes::default()
        };
        let seats = self.account.licensed_seats;
        for (i, m) in self.milestones.iter_mut().enumerate() {
            if let Some(obs) = m.criterion().observe(event) {
                changes.read = true;
                let advance = m.observe(&obs, seats).map_err(|t| IllegalChange::of(m, t))?;
                if matches!(advance, Advance::Reached { .. }) {
                    // Priced from the account as the event finds it, with the reach.
                    m.open_opportunity(self.account);
                }
                if advance != Advance::Unchanged {
                    changes.milestones.push(i);
                    if m.claim_announcement(now, claimant) {
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

/// What one account's events of one request changed, applied together
/// (`AccountState::apply_all`): the store saves it in one round.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchChanges {
    /// The activity took at least one of the events.
    pub activity: bool,
    /// Per event, in order: whether some criterion reads it (see `Changes::read`).
    pub read: Vec<bool>,
    /// Milestones any of the events changed, each once, in position order.
    pub milestones: Vec<usize>,
    /// Of those, the ones whose reached event this write claims.
    pub claimed: Vec<usize>,
    /// Milestones reached earlier and never announced that this write did not claim.
    pub owed: Vec<usize>,
}

impl AccountState<'_> {
    /// Applies the events one after another (as `apply` does each) and
    /// reports what they changed together. Progress depends on the set of
    /// events seen only, so the result is the same in any order and with
    /// any event twice. On a refusal the caller saves nothing.
    pub fn apply_all<'e>(
        &mut self,
        events: impl IntoIterator<Item = &'e ProductEvent>,
        now: Timestamp,
        claimant: &str,
    ) -> Result<BatchChanges, IllegalChange> {
        let mut batch = BatchChanges::default();
        for event in events {
            let changes = self.apply(event, now, claimant)?;
            batch.activity |= changes.activity;
            batch.read.push(changes.read);
            merge_positions(&mut batch.milestones, changes.milestones);
            merge_positions(&mut batch.claimed, changes.claimed);
        }
        for (i, m) in self.milestones.iter().enumerate() {
            if m.needs_reached_announcement() && !batch.claimed.contains(&i) {
                batch.owed.push(i);
            }
        }
        Ok(batch)
    }
}

/// Adds `more` (positions in order) to `into` (the same), each once. One
/// event's positions are taken as they are: the common case allocates nothing.
fn merge_positions(into: &mut Vec<usize>, more: Vec<usize>) {
    if into.is_empty() {
        *into = more;
    } else if !more.is_empty() {
        into.extend(more);
        into.sort_unstable();
        into.dedup();
    }
}

impl BatchChanges {
    /// The ids of the events to remember (dedupe records): those applied
    /// (`duplicate` false; `read` has one entry for each) that a criterion
    /// reads, each once. A second copy of one in the same batch is marked a
    /// duplicate, as its record would make it.
    pub fn to_remember<'e>(&self, events: &'e [ProductEvent], duplicate: &mut [bool]) -> Vec<&'e str> {
        let mut ids: Vec<&str> = Vec::new();
        let mut read = self.read.iter();
        for (event, dup) in events.iter().zip(duplicate.iter_mut()) {
            if *dup || !read.next().copied().unwrap_or(false) {
                continue;
            }
            if ids.contains(&event.id.as_str()) {
                *dup = true;
            } else {
                ids.push(&event.id);
            }
        }
        ids
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
        Self::at(&changes.claimed, &changes.owed, milestones)
    }

    /// What a batch's changes leave to announce, from the milestones as saved.
    pub fn of_batch(changes: &BatchChanges, milestones: &[TrackedMilestone]) -> Self {
        Self::at(&changes.claimed, &changes.owed, milestones)
    }

    fn at(claimed: &[usize], owed: &[usize], milestones: &[TrackedMilestone]) -> Self {
        let pick = |positions: &[usize]| positions.iter().map(|&i| milestones[i].clone()).collect();
        Announcements {
            claimed: pick(claimed),
            unclaimed: pick(owed),
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
