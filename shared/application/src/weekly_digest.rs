//! The weekly leadership digest: on Monday morning in the CS leader's
//! timezone (`Config::leader_timezone`), one email to the CS leadership
//! address (`Config::cs_leader_email`) with last week's misses and
//! recoveries, the open escalations, ARR at risk now and a week ago, the
//! accounts with most of it, and the playbook's uplift over the control group
//! once its interval is narrow enough to act on.
//!
//! Every figure is `milepost report`'s: the week's from `report --since
//! <Monday a week ago> --until <Sunday>`, the uplift from `report` over all
//! time, both as of the send and read in one pass over the store. The email
//! goes once per week under a key naming recipient and Monday, so the
//! schedule's retries and a second delivery send nothing twice.

use std::sync::Arc;

pub use milepost_domain::report::Week;
use milepost_domain::report::{Report, ReportOptions};
use milepost_domain::{Contact, Timestamp};
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
    /// The two reports a digest is made of: the week's, and all time's for the uplift.
    async fn reports(&self, week: &Week, now: Timestamp) -> Result<(Report, Report), StoreError> {
        let all_time = ReportOptions {
            since: None,
            until: None,
            ..week.options(now)
        };
        let mut both = crate::report::reports(self.store.as_ref(), vec![week.options(now), all_time]).await?;
        let all_time = both.pop().expect("two reports");
        let week_report = both.pop().expect("two reports");
        Ok((week_report, all_time))
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
            });
        }
        let (week_report, all_time) = self.reports(&week, now).await?;
        let mail = email::weekly_digest(&self.config, &week, &week_report, &all_time, &recipient, key, now)?;
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
        })
    }
}
