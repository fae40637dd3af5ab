//! The weekly leadership digest: on Monday morning in the CS leader's
//! timezone (`Config::leader_timezone`), one email to the CS leadership
//! address (`Config::cs_leader_email`) with last week's misses and
//! recoveries, the open escalations, ARR at risk now and a week ago, the
//! accounts with most of it, and the playbook's uplift over the control group
//! once its interval is narrow enough to act on.
//!
//! On the first Monday of a quarter it also carries the quarterly map
//! review: the kept discovery's findings on the maps in use (milestones to
//! reconsider, strong candidates to add), the weights measured for
//! `arr_weight: discovered`, and the simulator's comparison kept for
//! proposed maps (`milepost maps simulate --keep`).
//!
//! Every figure is `milepost report`'s: the week's from `report --since
//! <Monday a week ago> --until <Sunday>`, the uplift from `report` over all
//! time, both as of the send and read in one pass over the store. The email
//! goes once per week under a key naming recipient and Monday, so the
//! schedule's retries and a second delivery send nothing twice.

use std::sync::Arc;

pub use milepost_domain::map_review::QuarterlyReview;
use milepost_domain::map_review::{quarter_opened, review};
pub use milepost_domain::report::Week;
use milepost_domain::report::{Report, ReportOptions};
use milepost_domain::{Contact, MilestoneMap, Timestamp};
use serde::Serialize;

use crate::config::Config;
use crate::email;
use crate::ports::{Clock, Mailer, StoreError, WeeklyDigestStore};
use crate::sending::{send_once, SendFailure, SendResult};

#[derive(Clone)]
pub struct WeeklyDigest {
    pub store: Arc<dyn WeeklyDigestStore>,
    pub mailer: Arc<dyn Mailer>,
    pub clock: Arc<dyn Clock>,
    pub config: Config,
}

/// What a run did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WeeklyDigestOutcome {
    pub week: Week,
    pub result: DigestResult,
    /// The week's figures; none when an earlier run had sent the digest
    /// (the store is not read again for it).
    pub new_misses: Option<u64>,
    pub recoveries: Option<u64>,
    pub arr_at_risk: Option<u64>,
    /// The week's report the digest was made of (none when it had gone
    /// already): what `milepost report --json --since … --until …` prints.
    #[serde(skip)]
    pub week_report: Option<Report>,
    /// The quarter whose map review the digest carried (its first Monday's digest only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarterly_review: Option<String>,
}

/// What became of the week's digest (serialized `sent`, `already_sent`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DigestResult {
    Sent,
    /// An earlier run sent it.
    AlreadySent,
    /// SES refused the address.
    Rejected,
    /// Handed to SES without an answer: settled from SES's events by the sweep.
    Unknown,
}

impl DigestResult {
    pub fn as_str(self) -> &'static str {
        match self {
            DigestResult::Sent => "sent",
            DigestResult::AlreadySent => "already_sent",
            DigestResult::Rejected => "rejected",
            DigestResult::Unknown => "unknown",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HeldBackListError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the digest did not render: {0}")]
    Render(#[from] email::RenderError),
    /// A passing fault (throttling): the run may be retried, nothing was sent.
    #[error("transient: {0}")]
    Transient(String),
}

impl WeeklyDigest {
    /// The two reports a digest is made of: the week's, and all time's for
    /// the uplift; and the maps, for a quarterly review.
    async fn reports(&self, week: &Week, now: Timestamp) -> Result<(Report, Report, Vec<MilestoneMap>), StoreError> {
        let all_time = ReportOptions {
            since: None,
            until: None,
            ..week.options(now)
        };
        let (mut both, maps) =
            crate::report::reports_and_maps(self.store.as_ref(), vec![week.options(now), all_time]).await?;
        let all_time = both.pop().expect("two reports");
        let week_report = both.pop().expect("two reports");
        Ok((week_report, all_time, maps))
    }

    /// The quarter's map review, on the first Monday of a quarter: the kept
    /// discovery judged against the maps in use, and the kept comparison.
    /// What cannot be read is said in the review; the week's figures still go.
    async fn quarterly_review(&self, week: &Week, maps: &[MilestoneMap]) -> Option<QuarterlyReview> {
        let quarter = quarter_opened(week)?;
        let (discovery, comparison) = match (self.store.kept_discovery().await, self.store.kept_comparison().await) {
            (Ok(d), Ok(c)) => (d, c),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %crate::ErrorChain(&e), "the quarterly map review's kept results could not be read");
                return Some(QuarterlyReview {
                    quarter,
                    discovery: None,
                    findings: Vec::new(),
                    unjudged: Vec::new(),
                    comparison: None,
                    unreadable: Some(e.to_string()),
                });
            }
        };
        let (findings, unjudged) = discovery.as_ref().map(|d| review(d, maps)).unwrap_or_default();
        Some(QuarterlyReview {
            quarter,
            discovery,
            findings,
            unjudged,
            comparison,
            unreadable: None,
        })
    }

    /// Sends this week's digest, once. A run after the week's digest went
    /// (the schedule's retry, a second delivery) finds its send record and
    /// stops before the Scan.
    pub async fn run(&self) -> Result<WeeklyDigestOutcome, HeldBackListError> {
        let now = self.clock.now();
        let week = Week::before(now, self.config.leader_timezone);
        let recipient = Contact::new("CS leadership", self.config.cs_leader_email.clone());
        let key = crate::keys::weekly_digest_send(&recipient.email, week.sent_on);
        if self.store.send_record(&key).await?.is_some() {
            return Ok(WeeklyDigestOutcome {
                week,
                result: DigestResult::AlreadySent,
                new_misses: None,
                recoveries: None,
                arr_at_risk: None,
                week_report: None,
                quarterly_review: None,
            });
        }
        let (week_report, all_time, maps) = self.reports(&week, now).await?;
        let quarterly = self.quarterly_review(&week, &maps).await;
        let digest = email::DigestFigures {
            week: &week,
            week_report: &week_report,
            all_time: &all_time,
            quarterly: quarterly.as_ref(),
        };
        let mail = email::weekly_digest(&self.config, &digest, &recipient, key, now)?;
        let result = match send_once(self.store.as_ref(), self.mailer.as_ref(), &mail, now).await {
            Ok(SendResult::Sent) => DigestResult::Sent,
            Ok(SendResult::Rejected(_)) => DigestResult::Rejected,
            Ok(SendResult::AlreadySent | SendResult::IncludedIn(_)) => DigestResult::AlreadySent,
            Ok(SendResult::Unknown(_) | SendResult::Abandoned(_)) => DigestResult::Unknown,
            Err(SendFailure::Transient(reason) | SendFailure::Throttled(reason)) => {
                return Err(HeldBackListError::Transient(reason))
            }
            Err(e @ SendFailure::HeldByAnother { .. }) => return Err(HeldBackListError::Transient(e.to_string())),
            Err(SendFailure::Store(e)) => return Err(e.into()),
        };
        Ok(WeeklyDigestOutcome {
            week,
            result,
            new_misses: Some(week_report.activity.new_misses.total()),
            recoveries: Some(week_report.activity.recoveries.total()),
            arr_at_risk: Some(week_report.at_risk.arr_now),
            week_report: Some(week_report),
            quarterly_review: quarterly.map(|q| q.quarter),
        })
    }
}
