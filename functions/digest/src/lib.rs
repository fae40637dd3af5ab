//! The digest Lambda's handler: this week's leadership digest, sent once,
//! and what it said in the logs (figures only: no names or addresses).

use milepost_app::weekly_digest::{HeldBackListError, WeeklyDigest, WeeklyDigestOutcome};

/// Sends this week's digest (a second run the same week sends nothing) and
/// logs the outcome. A passing fault is an error, so the schedule's retry
/// policy runs it again.
pub async fn send(digest: &WeeklyDigest) -> Result<WeeklyDigestOutcome, HeldBackListError> {
    match digest.run().await {
        Ok(outcome) => {
            tracing::info!(
                week_since = %outcome.week.since,
                week_until = %outcome.week.until,
                result = outcome.result.as_str(),
                new_misses = ?outcome.new_misses,
                recoveries = ?outcome.recoveries,
                arr_at_risk = ?outcome.arr_at_risk,
                quarterly_review = ?outcome.quarterly_review,
                "weekly digest"
            );
            Ok(outcome)
        }
        Err(e) => {
            tracing::warn!(error = %milepost_app::ErrorChain(&e), "the weekly digest failed; the schedule's retry runs it again");
            Err(e)
        }
    }
}
