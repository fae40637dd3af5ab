//! How the use cases write under optimistic concurrency: a write that lost a
//! race is read again and retried, a bounded number of times. Every change
//! retried this way is idempotent, so applying it again is safe.

use std::future::Future;

use milepost_domain::tracked::Advance;
use milepost_domain::{IllegalChange, IllegalTransition, TrackedMilestone};

use crate::ports::{MilestoneStore, StoreError, StoreResult};

/// How often a write that lost a race is tried before giving up.
pub const MAX_WRITE_ATTEMPTS: usize = 8;

/// Whether a change left something to save.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edit {
    Unchanged,
    Changed,
}

impl From<Advance> for Edit {
    fn from(advance: Advance) -> Self {
        match advance {
            Advance::Unchanged => Edit::Unchanged,
            Advance::Progressed | Advance::Reached { .. } => Edit::Changed,
        }
    }
}

/// Applies `change` and writes the milestone conditionally; on a lost race
/// re-reads and applies it again. Returns the milestone as stored, or `None`
/// if it no longer exists. A change a lifecycle rule forbids is
/// `StoreError::Illegal`, with nothing written.
pub async fn update_milestone<S, F>(
    store: &S,
    mut m: TrackedMilestone,
    change: F,
) -> StoreResult<Option<TrackedMilestone>>
where
    S: MilestoneStore + ?Sized,
    F: Fn(&mut TrackedMilestone) -> Result<Edit, IllegalTransition> + Send + Sync,
{
    for _ in 0..MAX_WRITE_ATTEMPTS {
        let edit = change(&mut m).map_err(|t| IllegalChange::of(&m, t))?;
        if edit == Edit::Unchanged {
            return Ok(Some(m));
        }
        match store.update_milestone(&m).await {
            Ok(version) => {
                m.version = version;
                return Ok(Some(m));
            }
            Err(StoreError::Conflict) => match store.get_milestone(m.account_id(), m.milestone_id()).await? {
                Some(fresh) => m = fresh,
                None => return Ok(None),
            },
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Contended(format!("milestone {}", m.milestone_id())))
}

/// Runs `attempt` again while it reports `Conflict`, at most
/// `MAX_WRITE_ATTEMPTS` times; `what` names the contended thing for the error.
pub async fn retry_on_conflict<T, Fut>(what: impl Fn() -> String, mut attempt: impl FnMut() -> Fut) -> StoreResult<T>
where
    Fut: Future<Output = StoreResult<T>>,
{
    for _ in 0..MAX_WRITE_ATTEMPTS {
        match attempt().await {
            Err(StoreError::Conflict) => continue,
            other => return other,
        }
    }
    Err(StoreError::Contended(what()))
}

/// Records renewal `outcomes` on `account` in one write on the account
/// read (again if a `group` call changed it meanwhile): what each did, or
/// none when the account does not exist. Nothing is written when nothing changed.
pub async fn record_renewals(
    store: &dyn crate::ports::AccountStore,
    account: &milepost_domain::AccountId,
    outcomes: &[milepost_domain::RenewalOutcome],
) -> StoreResult<Option<Vec<milepost_domain::renewal::Recorded>>> {
    retry_on_conflict(
        || format!("account {account}"),
        || async {
            let Some(current) = store.get_account(account).await? else {
                return Ok(None);
            };
            let mut updated = (*current).clone();
            let recorded: Vec<_> = outcomes.iter().map(|o| updated.record_renewal(o.clone())).collect();
            if updated == *current || store.replace_account(&updated, Some(&current)).await? {
                Ok(Some(recorded))
            } else {
                Err(StoreError::Conflict)
            }
        },
    )
    .await
}

/// `record_renewals` of one outcome.
pub async fn record_renewal(
    store: &dyn crate::ports::AccountStore,
    account: &milepost_domain::AccountId,
    outcome: milepost_domain::RenewalOutcome,
) -> StoreResult<Option<milepost_domain::renewal::Recorded>> {
    Ok(record_renewals(store, account, &[outcome])
        .await?
        .and_then(|r| r.into_iter().next()))
}
