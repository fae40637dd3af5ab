//! One scheduled run: what the sweep function does every few minutes, in
//! its one order — the sweep of due milestones, then the reminders of
//! snoozes that are over, the held-back lists that are due, the heads-ups
//! before a miss and the settling of emails of unknown outcome. The Lambda,
//! `milepost sweep`, the demo and the chaos run all run this.

use serde::Serialize;

use crate::heads_up::{HeadsUpReport, HeadsUps};
use crate::held_back_lists::{HeldBackLists, HeldBackListsReport};
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
        Ok(ScheduledReport {
            sweep,
            reminders,
            held_back_lists,
            heads_ups,
            unknown_emails,
        })
    }
}

/// What the console reads, kept ready: the sweep function's other schedule
/// (`{"part": "console"}`, every 15 minutes) runs it, apart from the sweep,
/// so neither waits for the other.
#[derive(Clone)]
pub struct ConsoleKeeping {
    pub portfolio: crate::portfolio_keeper::PortfolioKeeper,
    pub results: crate::console::ResultsKeeper,
}

/// What one run of the console's keeping did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ConsoleKeepingReport {
    pub portfolio: crate::portfolio_keeper::PortfolioRefresh,
    /// Results views kept (0: those kept were recent enough, under an hour old).
    pub results_kept: usize,
}

impl ConsoleKeeping {
    pub async fn run(&self) -> Result<ConsoleKeepingReport, StoreError> {
        Ok(ConsoleKeepingReport {
            portfolio: self.portfolio.run().await?,
            results_kept: self.results.run().await?,
        })
    }
}
