//! The sweep Lambda's handler: one sweep of the due index within the
//! invocation's time, reported in the logs and as CloudWatch metrics.

use std::time::{Duration, Instant};

use milepost_app::digests::{DigestsReport, OwnerDigests};
use milepost_app::heads_up::{HeadsUpReport, HeadsUps};
use milepost_app::ports::StoreError;
use milepost_app::reminders::{RemindersReport, TaskReminders};
use milepost_app::settle::{SendSettler, SettleReport};
use milepost_app::sweep::{SweepOptions, SweepReport, Sweeper};

/// Stop this long before the invocation's deadline: time to record the
/// milestone in hand and report. What is left, the next run does.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(10);

/// Milestones read from the due index per query page.
pub const PAGE_SIZE: usize = 100;

/// Sweeps until done or until `deadline - DEADLINE_MARGIN`, then logs the
/// report and prints it as an embedded-metric-format record.
pub async fn run(sweeper: &Sweeper, deadline: Instant) -> Result<SweepReport, StoreError> {
    let should_stop = move || Instant::now() + DEADLINE_MARGIN >= deadline;
    let report = sweeper
        .sweep(&SweepOptions {
            page_size: PAGE_SIZE,
            should_stop: &should_stop,
        })
        .await?;
    let now = sweeper.clock.now();
    // EMF goes to stdout as its own line; CloudWatch extracts the metrics from it.
    println!("{}", report.emf(now));
    let message = if report.stopped_early {
        "sweep stopped before its deadline; the next run continues"
    } else {
        "sweep finished"
    };
    tracing::info!(
        examined = report.examined,
        missed = report.missed,
        started = report.started,
        already_started = report.already_started,
        skipped = report.skipped,
        failed = report.failed,
        lag_seconds = report.lag_seconds(now),
        stopped_early = report.stopped_early,
        "{message}"
    );
    Ok(report)
}

/// Reopens the tasks whose snooze is over and reminds their owners; logs what it did.
pub async fn remind(reminders: &TaskReminders) -> Result<RemindersReport, StoreError> {
    let report = reminders.run().await?;
    if report.due > 0 {
        tracing::info!(
            due = report.due,
            reopened = report.reopened,
            failed = report.failed,
            "snoozed tasks reopened"
        );
    }
    Ok(report)
}

/// Sends the owners' digests that are due; logs what it did.
pub async fn send_digests(digests: &OwnerDigests) -> Result<DigestsReport, StoreError> {
    let report = digests.run().await?;
    if report.sent + report.caught_up + report.failed > 0 {
        tracing::info!(
            sent = report.sent,
            listed = report.listed,
            caught_up = report.caught_up,
            failed = report.failed,
            "owners' digests"
        );
    }
    Ok(report)
}

/// Settles the emails of unknown outcome from SES's events (see
/// `milepost_app::settle`); logs what it did.
pub async fn settle_sends(settler: &SendSettler) -> Result<SettleReport, StoreError> {
    let report = settler.run().await?;
    if report != SettleReport::default() {
        tracing::info!(
            confirmed = report.confirmed,
            resent = report.resent,
            withheld = report.withheld,
            given_up = report.given_up,
            waiting = report.waiting,
            probes = report.probes,
            "emails of unknown outcome"
        );
    }
    Ok(report)
}

/// The heads-ups before a miss whose time has come, within the run's deadline.
pub async fn send_heads_ups(heads_ups: &HeadsUps, deadline: Instant) -> Result<HeadsUpReport, StoreError> {
    let should_stop = move || Instant::now() + DEADLINE_MARGIN >= deadline;
    let report = heads_ups
        .run(&SweepOptions {
            page_size: PAGE_SIZE,
            should_stop: &should_stop,
        })
        .await?;
    if report.examined > 0 {
        tracing::info!(
            examined = report.examined,
            owners_told = report.owners_told,
            champions_told = report.champions_told,
            champions_waiting = report.champions_waiting,
            on_pace = report.on_pace,
            failed = report.failed,
            stopped_early = report.stopped_early,
            "heads-ups before a miss"
        );
    }
    Ok(report)
}

/// The instant a Lambda deadline (milliseconds since the epoch) falls at.
pub fn deadline_instant(deadline_epoch_ms: u64) -> Instant {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Instant::now() + Duration::from_millis(deadline_epoch_ms.saturating_sub(now_ms))
}
