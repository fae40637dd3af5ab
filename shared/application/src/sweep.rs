//! The sweep: finds milestones that are due and still pending, marks them
//! missed and starts exactly one escalation for each.
//!
//! Exactly once, even when sweeps overlap or crash: the pending → missed write
//! is conditional on the version read (two sweeps cannot both win it), the
//! workflow's execution name is derived from account, milestone and due time
//! (a second start is a no-op), and a missed milestone stays in the due set
//! until its escalation is recorded as started, so a crash between the two
//! steps is healed by the next sweep.

use std::collections::HashMap;
use std::sync::Arc;

use milepost_domain::tracked::ANNOUNCE_LEASE;
use milepost_domain::{
    execution_name, Account, AccountId, DomainEvent, EscalationRequest, EscalationSchedule, Group, IllegalChange,
    MilestoneStatus, MovedBy, PlaybookTiming, Timestamp, TrackedMilestone,
};
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::ports::{Clock, EventPublisher, StartOutcome, StoreError, SweepStore, WorkflowStarter};
use crate::writes::{update_milestone, Edit};

/// The sweep use case over the ports it needs: due milestones and their
/// accounts, the bus (to announce misses) and the workflows (to start
/// escalations). It sends no email.
#[derive(Clone)]
pub struct Sweeper {
    pub store: Arc<dyn SweepStore>,
    pub events: Arc<dyn EventPublisher>,
    pub workflows: Arc<dyn WorkflowStarter>,
    pub clock: Arc<dyn Clock>,
    /// When each escalation step runs, unless a milestone's map says business days.
    pub timing: PlaybookTiming,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepReport {
    /// Due milestones read from the store.
    pub examined: usize,
    /// Pending milestones this sweep marked missed.
    pub missed: usize,
    /// Escalations this sweep started.
    pub started: usize,
    /// Misses announced in the control group: no escalation (the map's `holdout`).
    #[serde(default)]
    pub held_out: usize,
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

impl Sweeper {
    /// One sweep: the due index page by page, oldest first; each due pending
    /// milestone marked missed, announced, and its escalation started. A
    /// milestone that fails is counted, logged in its span and left due for
    /// the next sweep; only a failure to read the index is an `Err`.
    pub async fn sweep(&self, opts: &SweepOptions<'_>) -> Result<SweepReport, StoreError> {
        let now = self.clock.now();
        let claimant = crate::ports::fresh_claimant();
        let mut report = SweepReport::default();
        let mut cursor = None;
        loop {
            let page = self.store.due_milestones(now, cursor.take(), opts.page_size).await?;
            let mut claimed = Vec::new();
            for milestone in page.items {
                if (opts.should_stop)() {
                    report.stopped_early = true;
                    break;
                }
                report.examined += 1;
                report.oldest_due = Some(
                    report
                        .oldest_due
                        .map_or(milestone.due_at(), |o| o.min(milestone.due_at())),
                );
                let span = milestone_span(&milestone);
                match self
                    .claim(milestone, now, &claimant, &mut report)
                    .instrument(span.clone())
                    .await
                {
                    Ok(Some(m)) => claimed.push(m),
                    Ok(None) => {}
                    Err(e) => span.in_scope(|| fail(&mut report, &e)),
                }
            }
            // What this page claimed is finished even when time runs short: the
            // deadline margin covers it, and an unfinished claim waits out its lease.
            self.announce_and_start(claimed, &mut report).await;
            match page.next {
                Some(next) if !report.stopped_early => cursor = Some(next),
                _ => return Ok(report),
            }
        }
    }

    /// Marks a due pending milestone missed, or takes over a missed one whose
    /// escalation never started, holding the claim to announce and escalate it.
    /// `None`: nothing to do, or another writer got there first.
    async fn claim(
        &self,
        mut m: TrackedMilestone,
        now: Timestamp,
        claimant: &str,
        report: &mut SweepReport,
    ) -> Result<Option<TrackedMilestone>, StoreError> {
        let newly_missed = m.status() == MilestoneStatus::Pending;
        if newly_missed {
            if m.due_at() > now {
                return Ok(None);
            }
            let execution = execution_name(m.account_id(), m.milestone_id(), m.due_at());
            m.miss(now, execution).map_err(|t| IllegalChange::of(&m, t))?;
        } else if m.status() != MilestoneStatus::Missed || m.sweep_done() {
            return Ok(None);
        } else if m.miss_claim().is_some_and(|c| c.is_live(now, ANNOUNCE_LEASE)) {
            report.skipped += 1; // another sweep is on it right now
            return Ok(None);
        }
        // Written with the miss, or taking over from a claimer that failed or crashed.
        m.claim_miss(claimant, now);
        match self.store.update_milestone(&m).await {
            Ok(v) => m.version = v,
            Err(StoreError::Conflict) => {
                // Our own write, its answer lost and the retry refused, is still ours.
                let stored = self.store.get_milestone(m.account_id(), m.milestone_id()).await?;
                match stored {
                    Some(stored) if stored.miss_claim().is_some_and(|c| c.is_held_by(claimant)) => m = stored,
                    _ => {
                        report.skipped += 1;
                        return Ok(None);
                    }
                }
            }
            Err(e) => return Err(e),
        }
        if newly_missed {
            report.missed += 1;
        }
        Ok(Some(m))
    }

    /// Announces the claimed milestones (one publish: the bus adapter sends up to
    /// ten entries a request), then starts each escalation and gives the claims back.
    /// Announced before the start, so a failed publish is retried by the next
    /// sweep; a milestone stays due until both are done.
    async fn announce_and_start(&self, claimed: Vec<TrackedMilestone>, report: &mut SweepReport) {
        if claimed.is_empty() {
            return;
        }
        // Accounts are read only for milestones this sweep acts on, once each.
        let mut accounts: HashMap<AccountId, Arc<Account>> = HashMap::new();
        let mut ready = Vec::new();
        for m in claimed {
            if !accounts.contains_key(m.account_id()) {
                match self.store.get_account(m.account_id()).await {
                    Ok(Some(a)) => {
                        accounts.insert(m.account_id().clone(), a);
                    }
                    Ok(None) => {
                        let span = milestone_span(&m);
                        span.in_scope(|| fail(report, &UnknownAccount(m.account_id().clone())));
                        self.release(m, false).instrument(span).await;
                        continue;
                    }
                    Err(e) => {
                        let span = milestone_span(&m);
                        span.in_scope(|| fail(report, &e));
                        self.release(m, false).instrument(span).await;
                        continue;
                    }
                }
            }
            ready.push(m);
        }
        // The group is drawn before the announcement that carries it, and
        // recorded with it; a re-run draws the same (`Holdout::group_of`).
        for m in &mut ready {
            m.draw_group(accounts[m.account_id()].arr);
        }
        let announcements: Vec<DomainEvent> = ready
            .iter()
            .filter(|m| !m.announced_missed())
            .map(|m| {
                let account = &accounts[m.account_id()];
                DomainEvent::MilestoneMissed {
                    account_id: account.id.clone(),
                    milestone_id: m.milestone_id().to_owned(),
                    segment: account.segment,
                    phase: m.phase(),
                    due_at: m.due_at(),
                    arr_at_risk: m.arr_at_risk(account.arr),
                    group: m.group().expect("drawn above"),
                }
            })
            .collect();
        // Some entries of a failed publish may have gone out; consumers dedupe on
        // (type, account, milestone, due time). Only announced milestones escalate.
        let published = if announcements.is_empty() {
            Ok(())
        } else {
            self.events.publish(&announcements).await
        };
        for m in ready {
            let span = milestone_span(&m);
            let account = accounts[m.account_id()].clone();
            self.start_one(m, &account, published.as_ref().err(), report)
                .instrument(span)
                .await;
        }
    }

    /// Records the announcement of one claimed milestone, starts its escalation
    /// and gives the claim back.
    async fn start_one(
        &self,
        m: TrackedMilestone,
        account: &Account,
        publish_failed: Option<&crate::ports::PublishError>,
        report: &mut SweepReport,
    ) {
        let m = if m.announced_missed() {
            m
        } else if let Some(e) = publish_failed {
            fail(report, e);
            self.release(m, false).await;
            return;
        } else {
            // Recorded before the start, so a crash while starting does not announce it again.
            let group = m.group();
            match update_milestone(self.store.as_ref(), m, |m| {
                m.mark_miss_announced(group);
                Ok(Edit::Changed)
            })
            .await
            {
                Ok(Some(m)) => m,
                Ok(None) => return,
                Err(e) => {
                    fail(report, &e);
                    return; // the claim lapses; the next sweep announces again
                }
            }
        };
        if m.group() == Some(Group::Control) {
            // Held out: announced, tracked for recovery, and nothing more.
            report.held_out += 1;
            self.release(m, false).await;
            return;
        }
        let request = match escalation_request(&m, account.timezone, &self.timing) {
            Ok(r) => r,
            Err(e) => {
                fail(report, &e);
                self.release(m, false).await;
                return;
            }
        };
        match self.workflows.start(&request).await {
            Ok(StartOutcome::Started) => report.started += 1,
            Ok(StartOutcome::AlreadyStarted) => report.already_started += 1,
            Err(e) => {
                fail(report, &e);
                self.release(m, false).await;
                return;
            }
        }
        self.release(m, true).await;
    }

    /// Records what was done (announcement, start) and gives the claim back.
    /// Best effort: if this write is lost, the claim expires and the next sweep
    /// repeats only what is not recorded (a start is a no-op by name).
    async fn release(&self, m: TrackedMilestone, started: bool) {
        let (announced, group) = (m.announced_missed(), m.group());
        let result = update_milestone(self.store.as_ref(), m, |m| {
            m.release_miss(announced, group, started);
            Ok(Edit::Changed)
        })
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %crate::ErrorChain(&e), "could not record the sweep's progress; the next sweep retries");
        }
    }
}

/// A due milestone whose account is not stored (a bug or a hand-edited table).
#[derive(Debug, thiserror::Error)]
#[error("its account {0} is unknown")]
struct UnknownAccount(AccountId);

fn fail(report: &mut SweepReport, e: &(dyn std::error::Error + 'static)) {
    report.failed += 1;
    tracing::error!(error = %crate::ErrorChain(e), "sweep could not handle a due milestone; the next sweep retries it");
}

/// The span of the sweep's work on one milestone: ids only.
fn milestone_span(m: &TrackedMilestone) -> tracing::Span {
    tracing::info_span!("sweep_milestone", account_id = %m.account_id(), milestone_id = %m.milestone_id())
}

/// The workflow input for a missed milestone: every step's absolute time.
fn escalation_request(
    m: &TrackedMilestone,
    tz: chrono_tz::Tz,
    timing: &PlaybookTiming,
) -> Result<EscalationRequest, NotMissed> {
    let (Some(execution), Some(missed_at)) = (m.execution().map(str::to_owned), m.missed_at()) else {
        return Err(NotMissed);
    };
    let timing = PlaybookTiming {
        business_days: m.policy().business_days || timing.business_days,
        ..timing.clone()
    };
    Ok(EscalationRequest {
        execution,
        account_id: m.account_id().clone(),
        milestone_id: m.milestone_id().to_owned(),
        due_at: m.due_at(),
        missed_at,
        schedule: {
            let schedule = EscalationSchedule::compute(missed_at, tz, &timing);
            match m.moved_by() {
                MovedBy::Customer => schedule,
                MovedBy::Vendor => schedule.vendor_side(),
            }
        },
    })
}

#[derive(Debug, thiserror::Error)]
#[error("milestone has not been marked missed")]
struct NotMissed;

impl SweepReport {
    /// How far behind the sweep is: now − the oldest due time it saw (zero when nothing was due).
    pub fn lag_seconds(&self, now: Timestamp) -> i64 {
        self.oldest_due.map_or(0, |due| (now - due).num_seconds().max(0))
    }

    /// The report as one CloudWatch embedded-metric-format record: printed as
    /// a log line, CloudWatch turns it into metrics without an API call.
    pub fn emf(&self, now: Timestamp) -> serde_json::Value {
        let metrics: [(&str, &str, serde_json::Value); 8] = [
            ("MissedFound", "Count", self.missed.into()),
            ("ExecutionsStarted", "Count", self.started.into()),
            ("SweepLagSeconds", "Seconds", self.lag_seconds(now).into()),
            ("DueExamined", "Count", self.examined.into()),
            ("AlreadyStarted", "Count", self.already_started.into()),
            ("HeldOut", "Count", self.held_out.into()),
            ("Failed", "Count", self.failed.into()),
            ("StoppedEarly", "Count", u8::from(self.stopped_early).into()),
        ];
        crate::telemetry::emf_record(now.timestamp_millis(), &metrics)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use super::SweepReport;

    #[test]
    fn the_report_becomes_one_embedded_metric_format_record() {
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        let report = SweepReport {
            examined: 7,
            missed: 5,
            started: 4,
            failed: 1,
            oldest_due: Some(now - Duration::minutes(90)),
            stopped_early: true,
            ..Default::default()
        };
        let emf = report.emf(now);
        let directive = &emf["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(emf["_aws"]["Timestamp"], now.timestamp_millis());
        assert_eq!(directive["Namespace"], "Milepost");
        // Every declared metric has its value at the top level, as EMF requires.
        let names: Vec<&str> = directive["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        for name in &names {
            assert!(emf.get(*name).is_some(), "{name} declared without a value");
        }
        assert_eq!(emf["MissedFound"], 5);
        assert_eq!(emf["ExecutionsStarted"], 4);
        assert_eq!(emf["SweepLagSeconds"], 5400);
        assert_eq!(emf["Failed"], 1);
        assert_eq!(emf["StoppedEarly"], 1);
        assert_eq!(
            SweepReport::default().emf(now)["SweepLagSeconds"],
            0,
            "no lag when nothing is due"
        );
    }
}
