//! Owners' digests, sent by the sweep: on a weekday from 09:00 in the CS
//! team's timezone (`Config::leader_timezone`), each owner with misses held
//! back by the map's thresholds gets one email listing those whose customer
//! has not caught up; the ones that did drop out without an email.
//!
//! The day's entries are marked first, the email goes once under a key
//! naming owner and day, the entries are removed last: an overlapping sweep
//! or a crash in between sends nothing twice and the next run finishes it.

use std::sync::Arc;

use chrono::NaiveDate;
use milepost_domain::{Contact, OwnerDigest, Timestamp};
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::config::Config;
use crate::email;
use crate::links::address_fingerprint;
use crate::ports::{Clock, Mailer, OwnerDigestStore, ReminderStore, StoreError};
use crate::sending::{send_once, SendResult};
use crate::writes::retry_on_conflict;

#[derive(Clone)]
pub struct OwnerDigests {
    pub store: Arc<dyn ReminderStore>,
    pub mailer: Arc<dyn Mailer>,
    pub clock: Arc<dyn Clock>,
    pub config: Config,
}

/// Why one owner's digest failed (it is retried on the next run).
#[derive(Debug, thiserror::Error)]
enum DigestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Render(#[from] email::RenderError),
    #[error("send")]
    Send(#[from] crate::sending::SendFailure),
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestsReport {
    /// Digests emailed.
    pub sent: usize,
    /// Misses they listed.
    pub listed: usize,
    /// Misses whose customer caught up before their digest: no email about them.
    pub caught_up: usize,
    /// Left for the next run (a passing fault).
    pub failed: usize,
}

impl OwnerDigests {
    pub async fn run(&self) -> Result<DigestsReport, StoreError> {
        let now = self.clock.now();
        let mut report = DigestsReport::default();
        for digest in self.store.owner_digests().await? {
            let Some(day) = digest.due_day(now, self.config.leader_timezone) else {
                continue;
            };
            // The owner's address is personal data: the span names its digest.
            let span = tracing::info_span!("owner_digest", owner = %address_fingerprint(digest.owner.email.as_str()));
            if let Err(e) = self.send(&digest, day, now, &mut report).instrument(span.clone()).await {
                report.failed += 1;
                span.in_scope(
                    || tracing::warn!(error = %crate::ErrorChain(&e), "an owner's digest failed; the next run retries"),
                );
            }
        }
        Ok(report)
    }

    async fn send(
        &self,
        digest: &OwnerDigest,
        day: NaiveDate,
        now: Timestamp,
        report: &mut DigestsReport,
    ) -> Result<(), DigestError> {
        let store = self.store.as_ref();
        let digest = change_owner_digest(store, &digest.owner, |d| d.assign(day)).await?;
        let mut found = Vec::new();
        for miss in digest.of_day(day) {
            let account = self.store.get_account(&miss.account_id).await?;
            let milestone = self.store.get_milestone(&miss.account_id, &miss.milestone_id).await?;
            match (account, milestone) {
                (Some(a), Some(m)) if !m.status().is_reached() => found.push((a, m, miss.held_back)),
                _ => report.caught_up += 1,
            }
        }
        if !found.is_empty() {
            let items: Vec<email::HeldItem<'_>> = found
                .iter()
                .map(|(account, milestone, held_back)| email::HeldItem {
                    account: account.as_ref(),
                    milestone,
                    held_back: *held_back,
                })
                .collect();
            let key = crate::keys::owner_digest_send(&digest.owner.email, day);
            let mail = email::owner_digest(&self.config, &items, &digest.owner, key, now)?;
            let sent = send_once(self.store.as_ref(), self.mailer.as_ref(), &mail, now).await?;
            if sent == SendResult::Sent {
                report.sent += 1;
                report.listed += found.len();
            }
        }
        change_owner_digest(store, &digest.owner, |d| d.remove_day(day, now)).await?;
        Ok(())
    }
}

/// Applies `change` to `owner`'s digest (a new one when there is none) and
/// writes it on the version read, again on a lost race; `change` answers
/// whether it changed anything. Returns the digest as it now stands.
pub async fn change_owner_digest<S: OwnerDigestStore + ?Sized>(
    store: &S,
    owner: &Contact,
    change: impl Fn(&mut OwnerDigest) -> bool,
) -> Result<OwnerDigest, StoreError> {
    retry_on_conflict(
        || "an owner's digest".to_string(),
        || async {
            let mut digest = store
                .owner_digest(&owner.email)
                .await?
                .unwrap_or_else(|| OwnerDigest::new(owner.clone()));
            if change(&mut digest) {
                digest.version = store.save_owner_digest(&digest).await?;
            }
            Ok(digest)
        },
    )
    .await
}
