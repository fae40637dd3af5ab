//! A success plan's checkpoints as tracked milestones (issue 36): the
//! map's `agreed_outcome` milestone makes one per checkpoint of the
//! account's plan (`TrackedMilestone::checkpoints_of`), each missed, escalated
//! and recovered as any other milestone, with the playbook the map gives
//! it. Kept in step with the plan as it changes: a new checkpoint is
//! tracked, a changed one followed while pending, and one the plan dropped
//! stops being tracked while pending; a missed or reached checkpoint is
//! history and stays as it was. Each checkpoint carries the plan version
//! that last wrote it, so keeping run late for an older version undoes
//! nothing of a newer one's. Run again, it changes nothing.

use milepost_domain::{Account, Criterion, MilestoneMap, TrackedMilestone};

use crate::ports::{MilestoneStore, StoreError};
use crate::writes::Edit;

/// What keeping an account's checkpoints in step did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckpointsKept {
    pub created: usize,
    pub followed: usize,
    pub removed: usize,
}

/// Brings `account`'s checkpoint milestones in step with its plan, for
/// each `agreed_outcome` milestone of `map`. An account without a plan has
/// none (a plan is never taken away, only changed), and costs no read.
pub async fn keep_in_step<S>(store: &S, account: &Account, map: &MilestoneMap) -> Result<CheckpointsKept, StoreError>
where
    S: MilestoneStore + ?Sized,
{
    let mut kept = CheckpointsKept::default();
    let defs: Vec<_> = map
        .milestones
        .iter()
        .filter(|d| matches!(d.criterion, Criterion::AgreedOutcome))
        .collect();
    if defs.is_empty() || account.success_plan.is_none() {
        return Ok(kept);
    }
    let version = account.success_plan.as_ref().map_or(0, |p| p.version);
    let tracked = store.milestones_of(&account.id).await?;
    for def in defs {
        let wanted = TrackedMilestone::checkpoints_of(account, map, def);
        for w in &wanted {
            match tracked.iter().find(|t| t.milestone_id() == w.milestone_id()) {
                None => {
                    if store.create_milestone(w).await? {
                        kept.created += 1;
                    }
                }
                // A map milestone of that very id is the map's, not the plan's.
                Some(t) if t.checkpoint().is_none() => {}
                Some(t) => {
                    if follow(store, t.clone(), w, account.licensed_seats).await? {
                        kept.followed += 1;
                    }
                }
            }
        }
        // A checkpoint a newer plan version made is that version's to drop:
        // keeping run for an older one, late, undoes nothing of it.
        let dropped = tracked.iter().filter(|t| {
            t.checkpoint()
                .is_some_and(|c| c.milestone == def.id && c.plan_version <= version)
                && !wanted.iter().any(|w| w.milestone_id() == t.milestone_id())
        });
        for t in dropped {
            if remove(store, t.clone()).await? {
                kept.removed += 1;
            }
        }
    }
    Ok(kept)
}

/// `t` brought to `wanted` (`writes::update_milestone`: read again when
/// another wrote it meanwhile); whether the last try changed it.
async fn follow<S>(store: &S, t: TrackedMilestone, wanted: &TrackedMilestone, seats: u32) -> Result<bool, StoreError>
where
    S: MilestoneStore + ?Sized,
{
    let changed = std::sync::atomic::AtomicBool::new(false);
    crate::writes::update_milestone(store, t, |m| {
        let edit = m.follow(wanted, seats)?;
        changed.store(edit, std::sync::atomic::Ordering::Relaxed);
        Ok(if edit { Edit::Changed } else { Edit::Unchanged })
    })
    .await?;
    Ok(changed.into_inner())
}

/// `t` no longer tracked, if it is still pending (read again when another
/// wrote it meanwhile).
async fn remove<S>(store: &S, mut t: TrackedMilestone) -> Result<bool, StoreError>
where
    S: MilestoneStore + ?Sized,
{
    for _ in 0..crate::writes::MAX_WRITE_ATTEMPTS {
        if t.status() != milepost_domain::MilestoneStatus::Pending {
            return Ok(false); // missed or reached meanwhile: history, kept
        }
        match store.remove_milestone(&t).await {
            Ok(()) => return Ok(true),
            Err(StoreError::Conflict) => match store.get_milestone(t.account_id(), t.milestone_id()).await? {
                Some(again) => t = again,
                None => return Ok(false),
            },
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Contended(format!("checkpoint {}", t.milestone_id())))
}
