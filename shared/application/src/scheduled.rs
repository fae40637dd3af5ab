//! One scheduled run: what the sweep function does every few minutes, in
//! its one order — the sweep of due milestones, then the reminders of
//! snoozes that are over, the held-back lists that are due, the heads-ups
//! before a miss, the settling of emails of unknown outcome, the refresh of
//! the console's portfolio and (hourly) of its results page. The Lambda,
//! `milepost sweep`, the demo and the chaos run all run this.

use serde::Serialize;

use crate::heads_up::{HeadsUpReport, HeadsUps};
use crate::held_back_lists::{HeldBackLists, HeldBackListsReport};
use crate::portfolio_keeper::{PortfolioKeeper, PortfolioRefresh};
use crate::ports::StoreError;
use crate::reminders::{RemindersReport, TaskReminders};
use crate::settle::{SendSettler, SettleReport};
use crate::sweep::{SweepOptions, SweepReport, Sweeper};

#[derive(Clone)]
pub struct ScheduledRun {
    pub sweeper: Sweeper,
    pub reminders: TaskReminders,
    pub held_back_lists: HeldBackLists,
    pub heads_ups: HeadsUps,
    pub settler: SendSettler,
    /// None where nobody reads the portfolio between runs (the demo keeps
    /// it once, at the end).
    pub portfolio: Option<PortfolioKeeper>,
    /// The console's results page, worked out hourly; none where nobody reads it.
    pub results: Option<crate::console::ResultsKeeper>,
}

/// What one scheduled run did, part by part.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ScheduledReport {
    pub sweep: SweepReport,
    pub reminders: RemindersReport,
    /// (Serialised as `digests`, its name in earlier versions.)
    #[serde(rename = "digests")]
    pub held_back_lists: HeldBackListsReport,
    pub heads_ups: HeadsUpReport,
    pub unknown_emails: SettleReport,
    /// Left for the next run when the run is out of time.
    pub portfolio: Option<PortfolioRefresh>,
    /// Results views kept (0: those kept were recent enough); none when out of time.
    pub results_kept: Option<usize>,
}

impl ScheduledRun {
    /// Runs every part in order, the sweep and the heads-ups under `opts`
    /// (their page size, when to stop early). The first error stops the run:
    /// the schedule's next run, or Lambda's retry, starts again from the
    /// sweep, and every part is idempotent.
    pub async fn run(&self, opts: &SweepOptions<'_>) -> Result<ScheduledReport, StoreError> {
        let sweep = self.sweeper.sweep(opts).await?;
        let reminders = self.reminders.run().await?;
        let held_back_lists = self.held_back_lists.run().await?;
        let heads_ups = self.heads_ups.run(opts).await?;
        let unknown_emails = self.settler.run().await?;
        let portfolio = match &self.portfolio {
            Some(keeper) if !(opts.should_stop)() => Some(keeper.run().await?),
            _ => None,
        };
        let results_kept = match &self.results {
            Some(keeper) if !(opts.should_stop)() => Some(keeper.run().await?),
            _ => None,
        };
        Ok(ScheduledReport {
            portfolio,
            results_kept,
            sweep,
            reminders,
            held_back_lists,
            heads_ups,
            unknown_emails,
        })
    }
}
