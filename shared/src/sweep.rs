//! The sweep: finds milestones that are due and still pending, marks them
//! missed and starts exactly one escalation for each.
//!
//! Exactly once, even when sweeps overlap or crash: the pending → missed write
//! is conditional on the version read (two sweeps cannot both win it), the
//! workflow's execution name is derived from account, milestone and due time
//! (a second start is a no-op), and a missed milestone stays in the due set
//! until its escalation is recorded as started, so a crash between the two
//! steps is healed by the next sweep.

use serde::{Deserialize, Serialize};

use crate::domain::tracked::{Advance, ANNOUNCE_LEASE};
use crate::domain::{DomainEvent, EscalationSchedule, MilestoneStatus, PlaybookTiming, Timestamp, TrackedMilestone};
use crate::playbook::{execution_name, EscalationRequest};
use crate::ports::{modify_with_retry, StartOutcome, StoreError};
use crate::Services;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepReport {
    /// Due milestones read from the store.
    pub examined: usize,
    /// Pending milestones this sweep marked missed.
    pub missed: usize,
    /// Escalations this sweep started.
    pub started: usize,
    /// Starts that found the execution already running (an overlapping sweep).
    pub already_started: usize,
    /// Milestones another writer changed first; left to them.
    pub skipped: usize,
    /// Milestones that failed; retried by the next sweep.
    pub failed: usize,
    /// The oldest due time seen: now − this is the sweep lag.
    pub oldest_due: Option<Timestamp>,
    /// Stopped before the end because the time budget ran out.
    pub stopped_early: bool,
}

pub struct SweepOptions<'a> {
    pub page_size: usize,
    /// Asked before each milestone: true stops the sweep cleanly (Lambda deadline).
    pub should_stop: &'a (dyn Fn() -> bool + Send + Sync),
}

impl Default for SweepOptions<'_> {
    fn default() -> Self {
        SweepOptions {
            page_size: 100,
            should_stop: &|| false,
        }
    }
}

pub async fn sweep(services: &Services, opts: &SweepOptions<'_>) -> Result<SweepReport, StoreError> {
    let now = services.clock.now();
    let mut report = SweepReport::default();
    let mut cursor = None;
    loop {
        let page = services
            .store
            .due_milestones(now, cursor.take(), opts.page_size)
            .await?;
        for milestone in page.items {
            if (opts.should_stop)() {
                report.stopped_early = true;
                return Ok(report);
            }
            report.examined += 1;
            report.oldest_due = Some(report.oldest_due.map_or(milestone.due_at, |o| o.min(milestone.due_at)));
            if let Err(e) = handle(services, milestone, now, &mut report).await {
                report.failed += 1;
                tracing::error!(error = %e, "sweep could not handle a due milestone; the next sweep retries it");
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(report),
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum HandleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Other(String),
}

async fn handle(
    services: &Services,
    mut m: TrackedMilestone,
    now: Timestamp,
    report: &mut SweepReport,
) -> Result<(), HandleError> {
    let store = &services.store;
    // Whoever moves a milestone to missed, or takes over a stale claim, holds
    // the claim to announce and escalate it; overlapping sweeps leave it alone.
    let newly_missed = m.status == MilestoneStatus::Pending;
    if newly_missed {
        if m.due_at > now {
            return Ok(());
        }
        let execution = execution_name(&m.account_id, &m.milestone_id, m.due_at);
        m.miss(now, execution).map_err(|e| HandleError::Other(e.to_string()))?;
    } else if m.status != MilestoneStatus::Missed || m.escalation_started {
        return Ok(());
    } else if m.miss_claimed_at.is_some_and(|at| now - at < ANNOUNCE_LEASE) {
        report.skipped += 1; // another sweep is on it right now
        return Ok(());
    }
    // Written with the miss, or taking over from a claimer that failed or crashed.
    m.miss_claimed_at = Some(now);
    match store.update_milestone(&m).await {
        Ok(v) => m.version = v,
        Err(StoreError::Conflict) => {
            report.skipped += 1;
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    }
    if newly_missed {
        report.missed += 1;
    }
    // Read only for milestones this sweep acts on.
    let account = store
        .get_account(&m.account_id)
        .await?
        .ok_or_else(|| HandleError::Other(format!("account {} unknown", m.account_id)))?;

    // Announced before the start, so a failed publish is retried (after the
    // claim is released) by the next sweep; the milestone stays due until both are done.
    if !m.announced_missed {
        let published = services
            .events
            .publish(&[DomainEvent::MilestoneMissed {
                account_id: account.id.clone(),
                milestone_id: m.milestone_id.clone(),
                segment: account.segment,
                phase: m.phase,
                due_at: m.due_at,
                arr_at_risk: m.arr_at_risk(account.arr),
            }])
            .await;
        if let Err(e) = published {
            release(services, m, false).await;
            return Err(HandleError::Other(e.to_string()));
        }
        m.announced_missed = true;
    }

    let request = escalation_request(&m, account.timezone, &services.config.timing)?;
    match services.workflows.start(&request).await {
        Ok(StartOutcome::Started) => report.started += 1,
        Ok(StartOutcome::AlreadyStarted) => report.already_started += 1,
        Err(e) => {
            release(services, m, false).await;
            return Err(HandleError::Other(e.to_string()));
        }
    }
    release(services, m, true).await;
    Ok(())
}

/// Records what was done (announcement, start) and gives the claim back.
/// Best effort: if this write is lost, the claim expires and the next sweep
/// repeats only what is not recorded (a start is a no-op by name).
async fn release(services: &Services, m: TrackedMilestone, started: bool) {
    let announced = m.announced_missed;
    let result = modify_with_retry(services.store.as_ref(), m, |m| {
        m.announced_missed |= announced;
        m.escalation_started |= started;
        m.miss_claimed_at = None;
        Ok(Advance::Progressed)
    })
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not record the sweep's progress; the next sweep retries");
    }
}

/// The workflow input for a missed milestone: every step's absolute time.
pub fn escalation_request(
    m: &TrackedMilestone,
    tz: chrono_tz::Tz,
    timing: &PlaybookTiming,
) -> Result<EscalationRequest, NotMissed> {
    let (Some(execution), Some(missed_at)) = (m.execution.clone(), m.missed_at) else {
        return Err(NotMissed);
    };
    let timing = PlaybookTiming {
        business_days: m.policy.business_days || timing.business_days,
        ..timing.clone()
    };
    Ok(EscalationRequest {
        execution,
        account_id: m.account_id.clone(),
        milestone_id: m.milestone_id.clone(),
        due_at: m.due_at,
        missed_at,
        schedule: EscalationSchedule::compute(missed_at, tz, &timing),
    })
}

#[derive(Debug, thiserror::Error)]
#[error("milestone has not been marked missed")]
pub struct NotMissed;

impl From<NotMissed> for HandleError {
    fn from(e: NotMissed) -> Self {
        HandleError::Other(e.to_string())
    }
}
