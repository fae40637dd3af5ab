//! Setting an account's success plan (`milepost outcomes set|import`): the
//! outcomes checked (every problem with its field), the account found, and
//! the plan kept as its next version — unless it is the plan as it stands,
//! so a file imported twice changes nothing. Two writers of one version: the
//! store keeps the first, the other reads again and goes on from it. The
//! plan as it stands is copied onto the account, for what reads it there.

use milepost_domain::success_plan::check;
use milepost_domain::{AccountId, AgreedOutcome, FieldError, MilestoneMap, SuccessPlan, Timestamp};

use crate::ports::{AccountStore, PlanStore, StoreError};

/// What setting a plan did.
#[derive(Clone, Debug, PartialEq)]
pub enum PlanSet {
    /// Kept as a new version.
    New(SuccessPlan),
    /// The plan as it stands already: nothing kept.
    Unchanged(SuccessPlan),
}

impl PlanSet {
    pub fn plan(&self) -> &SuccessPlan {
        match self {
            PlanSet::New(p) | PlanSet::Unchanged(p) => p,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{} problem(s) with the plan", .0.len())]
    Invalid(Vec<FieldError>),
    #[error("no account {0}")]
    UnknownAccount(AccountId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How often a lost race for a version is tried again before giving up.
const ATTEMPTS: u32 = 5;

/// Keeps `outcomes` as `account`'s plan, set by `by` at `now`.
pub async fn set_plan<S: PlanStore + ?Sized>(
    store: &S,
    account: &AccountId,
    outcomes: Vec<AgreedOutcome>,
    by: &str,
    now: Timestamp,
) -> Result<PlanSet, PlanError> {
    change_plan(store, account, by, now, None, |_| outcomes.clone()).await
}

/// `set_plan` for what a `group` call made at `at` states: unless the plan
/// standing was set after that (by a person, or a later call), which stands
/// — judged again on every attempt, so two calls racing keep the later.
pub async fn set_plan_as_of<S: PlanStore + ?Sized>(
    store: &S,
    account: &AccountId,
    outcomes: Vec<AgreedOutcome>,
    by: &str,
    at: Timestamp,
) -> Result<PlanSet, PlanError> {
    change_plan(store, account, by, at, Some(at), |_| outcomes.clone()).await
}

/// `outcome` put in `account`'s plan (replacing the one with its id), the
/// rest of the plan as it stands.
pub async fn set_outcome<S: PlanStore + ?Sized>(
    store: &S,
    account: &AccountId,
    outcome: AgreedOutcome,
    by: &str,
    now: Timestamp,
) -> Result<PlanSet, PlanError> {
    change_plan(store, account, by, now, None, |current| {
        let mut outcomes = current.map(|p| p.outcomes.clone()).unwrap_or_default();
        match outcomes.iter_mut().find(|o| o.id == outcome.id) {
            Some(kept) => *kept = outcome.clone(),
            None => outcomes.push(outcome.clone()),
        }
        outcomes
    })
    .await
}

/// The plan `change` makes of the one standing (read again after a lost
/// race, so another writer's version is built on, never overwritten).
async fn change_plan<S: PlanStore + ?Sized>(
    store: &S,
    account: &AccountId,
    by: &str,
    now: Timestamp,
    unless_set_after: Option<Timestamp>,
    change: impl Fn(Option<&SuccessPlan>) -> Vec<AgreedOutcome>,
) -> Result<PlanSet, PlanError> {
    if store.get_account(account).await?.is_none() {
        return Err(PlanError::UnknownAccount(account.clone()));
    }
    for _ in 0..ATTEMPTS {
        let current = store.success_plan(account).await?;
        if let (Some(current), Some(at)) = (&current, unless_set_after) {
            if current.set_at > at {
                return Ok(PlanSet::Unchanged(current.clone()));
            }
        }
        let outcomes = change(current.as_ref());
        let problems = check(&outcomes);
        if !problems.is_empty() {
            return Err(PlanError::Invalid(problems));
        }
        if let Some(current) = current.as_ref().filter(|c| c.outcomes == outcomes) {
            copy_to_account(store, current).await?;
            return Ok(PlanSet::Unchanged(current.clone()));
        }
        let plan = SuccessPlan {
            account_id: account.clone(),
            version: current.map_or(1, |c| c.version + 1),
            outcomes,
            set_at: now,
            set_by: by.to_string(),
        };
        if store.add_success_plan(&plan).await? {
            copy_to_account(store, &plan).await?;
            return Ok(PlanSet::New(plan));
        }
    }
    Err(PlanError::Store(StoreError::Conflict))
}

/// `plan` copied onto its account (what its emails and health read), unless
/// the account holds that version or a later one already; written on the
/// account's revision, so a group call at the same moment cannot undo it.
/// Then its checkpoints are tracked as the account's map asks. Setting the
/// same plan again mends a copy or checkpoints that were not made.
async fn copy_to_account<S: PlanStore + ?Sized>(store: &S, plan: &SuccessPlan) -> Result<(), StoreError> {
    copy_plan(store, plan).await?;
    let Some(account) = store.get_account(&plan.account_id).await? else {
        return Ok(());
    };
    let maps = store.maps_for(account.segment, account.tenure()).await?;
    if let Some(map) = MilestoneMap::select(&maps, account.segment, account.tenure()) {
        crate::checkpoints::keep_in_step(store, &account, map).await?;
    }
    Ok(())
}

async fn copy_plan(accounts: &(impl AccountStore + ?Sized), plan: &SuccessPlan) -> Result<(), StoreError> {
    crate::writes::retry_on_conflict(
        || format!("account {}", plan.account_id),
        || async {
            let Some(current) = accounts.get_account(&plan.account_id).await? else {
                return Ok(());
            };
            if current.success_plan.as_ref().is_some_and(|p| p.version >= plan.version) {
                return Ok(());
            }
            let mut updated = (*current).clone();
            updated.success_plan = Some(plan.clone());
            if accounts.replace_account(&updated, Some(&current)).await? {
                Ok(())
            } else {
                Err(StoreError::Conflict)
            }
        },
    )
    .await
}
