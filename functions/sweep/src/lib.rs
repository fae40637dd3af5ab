//! The sweep Lambda's handler: one scheduled run (`ScheduledRun`: the sweep
//! of the due index within the invocation's time, then the reminders, the
//! held-back lists, the heads-ups and the settling of unknown sends),
//! reported in the logs and as CloudWatch metrics; or, when its other
//! schedule says `{"part": "console"}`, the console's keeping.

use std::time::{Duration, Instant};

use milepost_app::heads_up::HeadsUpReport;
use milepost_app::held_back_lists::HeldBackListsReport;
use milepost_app::ports::StoreError;
use milepost_app::reminders::RemindersReport;
use milepost_app::scheduled::{ConsoleKeeping, ScheduledReport, ScheduledRun};
use milepost_app::settle::SettleReport;
use milepost_app::sweep::{SweepOptions, SweepReport};
use milepost_domain::Timestamp;

/// Stop this long before the invocation's deadline: time to record the
/// milestone in hand and report. What is left, the next run does.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(10);

/// Milestones read from the due index per query page.
pub const PAGE_SIZE: usize = 100;

/// What an invocation asks for: `{"part": "console"}`, the console's
/// keeping (its portfolio, its results when an hour old); anything else, a
/// scheduled run. The report, as JSON.
pub async fn handle(
    scheduled: &ScheduledRun,
    keeping: &ConsoleKeeping,
    event: &serde_json::Value,
    deadline: Instant,
) -> Result<serde_json::Value, StoreError> {
    if event.get("part").and_then(serde_json::Value::as_str) == Some("console") {
        let report = keeping.run().await?;
        tracing::info!(
            rows = report.portfolio.rows,
            written = report.portfolio.written,
            cleared = report.portfolio.cleared,
            results_kept = report.results_kept,
            "the console's portfolio and results kept"
        );
        return Ok(serde_json::to_value(report).unwrap_or_default());
    }
    let report = run(scheduled, deadline).await?;
    Ok(serde_json::to_value(report).unwrap_or_default())
}

/// One scheduled run, stopping its sweep and heads-ups at `deadline -
/// DEADLINE_MARGIN`; logs each part's report and prints the sweep's as an
/// embedded-metric-format record.
pub async fn run(scheduled: &ScheduledRun, deadline: Instant) -> Result<ScheduledReport, StoreError> {
    let should_stop = move || Instant::now() + DEADLINE_MARGIN >= deadline;
    let report = scheduled
        .run(&SweepOptions {
            page_size: PAGE_SIZE,
            should_stop: &should_stop,
        })
        .await?;
    log_sweep(&report.sweep, scheduled.sweeper.clock.now());
    log_reminders(&report.reminders);
    log_held_back_lists(&report.held_back_lists);
    log_heads_ups(&report.heads_ups);
    log_settled(&report.unknown_emails);
    Ok(report)
}

fn log_sweep(report: &SweepReport, now: Timestamp) {
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
}

fn log_reminders(report: &RemindersReport) {
    if report.due > 0 {
        tracing::info!(
            due = report.due,
            reopened = report.reopened,
            failed = report.failed,
            "snoozed tasks reopened"
        );
    }
}

fn log_held_back_lists(report: &HeldBackListsReport) {
    if report.sent + report.caught_up + report.failed > 0 {
        tracing::info!(
            sent = report.sent,
            listed = report.listed,
            caught_up = report.caught_up,
            failed = report.failed,
            "owners' digests"
        );
    }
}

fn log_settled(report: &SettleReport) {
    if *report != SettleReport::default() {
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
}

fn log_heads_ups(report: &HeadsUpReport) {
    if report.examined > 0 {
        tracing::info!(
            examined = report.examined,
            owners_told = report.owners_told,
            champions_told = report.champions_told,
            opportunities_told = report.opportunities_told,
            champions_waiting = report.champions_waiting,
            on_pace = report.on_pace,
            held_by_another_run = report.held_by_another_run,
            failed = report.failed,
            stopped_early = report.stopped_early,
            "heads-ups before a miss"
        );
    }
}

/// The instant a Lambda deadline (milliseconds since the epoch) falls at.
pub fn deadline_instant(deadline_epoch_ms: u64) -> Instant {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Instant::now() + Duration::from_millis(deadline_epoch_ms.saturating_sub(now_ms))
}
