//! Keeps the console's portfolio ready to read: one row per account at risk
//! (`Portfolio::build`'s, with the account's health), so that a page view
//! is one read however many accounts there are. Every console keeping run
//! refreshes the whole; the console's own actions refresh their account at
//! once. A row says when it was read; a write never replaces a row read
//! later, so a slow refresh cannot undo a newer one.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::Duration;
use milepost_domain::health::health;
use milepost_domain::{AccountId, MissStage, Portfolio, PortfolioRow, RowHealth, Timestamp, TrackedMilestone};
use serde::Serialize;

use crate::ports::{AccountFolder, PortfolioKeeperStore, StoreResult};

/// How long an account's "not at risk" entry is kept before a refresh drops
/// it: far longer than any refresh takes, so none that read before can
/// bring the row back.
const CLEARED_KEPT_FOR: Duration = Duration::hours(1);

/// What one whole refresh did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PortfolioRefresh {
    /// Accounts at risk.
    pub rows: usize,
    /// Rows written because they changed (or were new).
    pub written: usize,
    /// Accounts no longer at risk.
    pub cleared: usize,
}

/// `folder`'s row at `now` (none: not at risk), with its health.
pub(crate) fn row_of(folder: &AccountFolder, now: Timestamp) -> Option<PortfolioRow> {
    let open: Vec<TrackedMilestone> = folder
        .milestones
        .iter()
        .filter(|m| MissStage::of(m).is_some())
        .cloned()
        .collect();
    let accounts = HashMap::from([(folder.account.id.clone(), folder.account.clone())]);
    let mut row = Portfolio::build(&accounts, &open, now).rows.pop()?;
    let h = health(&folder.milestones, &folder.activity, folder.account.licensed_seats, now);
    row.health = Some(RowHealth::from(&h));
    Some(row)
}

/// Refreshes `account`'s row as it stands at `now`: after anything that may
/// have changed its misses (the console's confirm, say).
pub async fn refresh_account(store: &dyn PortfolioKeeperStore, account: &AccountId, now: Timestamp) -> StoreResult<()> {
    let row = match store.account_folder(account).await? {
        Some(folder) => row_of(&folder, now),
        None => None,
    };
    store.keep_portfolio_row(account, row.as_ref(), now).await?;
    Ok(())
}

/// Refreshes every row as things stand at `now`: the accounts the open-miss
/// index names are scored and written where they changed; the others are
/// marked not at risk; old such marks are dropped.
pub async fn refresh_all(store: &dyn PortfolioKeeperStore, now: Timestamp) -> StoreResult<PortfolioRefresh> {
    let kept = store.kept_portfolio().await?;
    let misses = store.open_misses().await?;
    // The index names the accounts; each one's folder (one read: profile,
    // milestones, activity) scores it as it stands now.
    let ids: BTreeSet<&AccountId> = misses.iter().map(|m| m.account_id()).collect();
    let mut report = PortfolioRefresh::default();
    let before: HashMap<&AccountId, &Option<PortfolioRow>> =
        kept.rows.iter().map(|k| (&k.account_id, &k.row)).collect();
    let mut at_risk = BTreeSet::new();
    for id in ids {
        let Some(row) = (match store.account_folder(id).await? {
            Some(folder) => row_of(&folder, now),
            None => None,
        }) else {
            continue;
        };
        report.rows += 1;
        at_risk.insert(row.account_id.clone());
        if before.get(&row.account_id).is_some_and(|b| b.as_ref() == Some(&row)) {
            continue;
        }
        if store.keep_portfolio_row(&row.account_id, Some(&row), now).await? {
            report.written += 1;
        }
    }
    for k in &kept.rows {
        if at_risk.contains(&k.account_id) {
            continue;
        }
        if k.row.is_some() {
            if store.keep_portfolio_row(&k.account_id, None, now).await? {
                report.cleared += 1;
            }
        } else if k.as_of + CLEARED_KEPT_FOR < now {
            store.forget_portfolio_row(&k.account_id, k.as_of).await?;
        }
    }
    store.portfolio_refreshed(now).await?;
    Ok(report)
}

/// The portfolio as kept, read at `now`, and when a whole refresh last finished.
pub async fn kept_portfolio(
    store: &dyn PortfolioKeeperStore,
    now: Timestamp,
) -> StoreResult<(Portfolio, Option<Timestamp>)> {
    let kept = store.kept_portfolio().await?;
    let rows = kept.rows.into_iter().filter_map(|k| k.row).collect();
    Ok((Portfolio::from_kept(rows, now), kept.refreshed_at))
}

/// The whole refresh, as the console keeping runs it every 15 minutes.
#[derive(Clone)]
pub struct PortfolioKeeper {
    pub store: Arc<dyn PortfolioKeeperStore>,
    pub clock: Arc<dyn crate::ports::Clock>,
}

impl PortfolioKeeper {
    pub async fn run(&self) -> StoreResult<PortfolioRefresh> {
        refresh_all(&*self.store, self.clock.now()).await
    }
}
