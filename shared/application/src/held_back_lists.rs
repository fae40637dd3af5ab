//! Held-back lists, sent by the sweep: on a weekday from 09:00 in the CS
//! team's timezone (`Config::leader_timezone`), each owner with misses held
//! back by the map's thresholds gets one email listing those whose customer
//! has not caught up; the ones that did drop out without an email.
//!
//! The day's entries are marked first, the email goes once under a key
//! naming owner and day, the entries are removed last: an overlapping sweep
//! or a crash in between sends nothing twice and the next run finishes it.

use std::sync::Arc;

use chrono::NaiveDate;
use milepost_domain::{Contact, HeldBackList, Timestamp};
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::config::Config;
use crate::email;
use crate::links::address_fingerprint;
use crate::ports::{Clock, HeldBackListStore, Mailer, ReminderStore, StoreError};
use crate::sending::{send_once, SendResult};
use crate::writes::retry_on_conflict;

#[derive(Clone)]
pub struct HeldBackLists {
    pub store: Arc<dyn ReminderStore>,
    pub mailer: Arc<dyn Mailer>,
    pub clock: Arc<dyn Clock>,
    pub config: Config,
}

/// Why one held-back list failed (it is retried on the next run).
#[derive(Debug, thiserror::Error)]
enum HeldBackListError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Render(#[from] email::RenderError),
    #[error("send")]
    Send(#[from] crate::sending::SendFailure),
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldBackListsReport {
    /// Digests emailed.
    pub sent: usize,
    /// Misses they listed.
    pub listed: usize,
    /// Misses whose customer caught up before their list: no email about them.
    pub caught_up: usize,
    /// Left for the next run (a passing fault).
    pub failed: usize,
}

impl HeldBackLists {
    pub async fn run(&self) -> Result<HeldBackListsReport, StoreError> {
        let now = self.clock.now();
        let mut report = HeldBackListsReport::default();
        for list in self.store.held_back_lists().await? {
            let Some(day) = list.due_day(now, self.config.leader_timezone) else {
                continue;
            };
            // The owner's address is personal data: the span names its list.
            let span = tracing::info_span!("owner_digest", owner = %address_fingerprint(list.owner.email.as_str()));
            if let Err(e) = self.send(&list, day, now, &mut report).instrument(span.clone()).await {
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
        list: &HeldBackList,
        day: NaiveDate,
        now: Timestamp,
        report: &mut HeldBackListsReport,
    ) -> Result<(), HeldBackListError> {
        let store = self.store.as_ref();
        let list = change_held_back_list(store, &list.owner, |d| d.assign(day)).await?;
        let mut found = Vec::new();
        for miss in list.of_day(day) {
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
            let key = crate::keys::held_back_list_send(&list.owner.email, day);
            let mail = email::held_back_list(&self.config, &items, &list.owner, key, now)?;
            let sent = send_once(self.store.as_ref(), self.mailer.as_ref(), &mail, now).await?;
            if sent == SendResult::Sent {
                report.sent += 1;
                report.listed += found.len();
            }
        }
        change_held_back_list(store, &list.owner, |d| d.remove_day(day, now)).await?;
        Ok(())
    }
}

/// Applies `change` to `owner`'s list (a new one when there is none) and
/// writes it on the version read, again on a lost race; `change` answers
/// whether it changed anything. Returns the list as it now stands.
pub async fn change_held_back_list<S: HeldBackListStore + ?Sized>(
    store: &S,
    owner: &Contact,
    change: impl Fn(&mut HeldBackList) -> bool,
) -> Result<HeldBackList, StoreError> {
    retry_on_conflict(
        || "an owner's digest".to_string(),
        || async {
            let mut list = store
                .held_back_list(&owner.email)
                .await?
                .unwrap_or_else(|| HeldBackList::new(owner.clone()));
            if change(&mut list) {
                list.version = store.save_held_back_list(&list).await?;
            }
            Ok(list)
        },
    )
    .await
}
