//! Heads-ups before a miss, sent by the sweep: a pending milestone whose
//! map asks for one (`warn_before_days`), inside its window and behind pace
//! (`TrackedMilestone::heads_up_check`), gets one email to its owner and,
//! where the map says so (`warn_champion`), one to the customer's champion
//! under the same pause, unsubscribe and contact policy as the playbook's
//! customer mail. Several milestones of one account behind pace together
//! make one champion email naming them all.
//!
//! Once each: both emails go under keys naming the milestone and its due
//! date (`send_once`), the champion's slot is claimed under its key, and the
//! milestone is marked done last, so an overlapping sweep or a crash in
//! between sends nothing twice and the next sweep finishes it. A champion's
//! email the policy holds back waits: the milestone is looked at again at
//! the slot; if the due date comes first, the playbook takes over.

use std::collections::HashMap;
use std::sync::Arc;

use milepost_domain::{
    Account, AccountId, BehindPace, EscalationLogEntry, HeadsUpCheck, SendKey, Slot, Timestamp, TrackedMilestone,
};
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::config::Config;
use crate::email;
use crate::keys::{self, HeadsUpLog, Recipient};
use crate::links::ActionLinks;
use crate::ports::{Clock, Mailer, PlaybookStore, SendClaim, StoreError};
use crate::sending::{
    claim_contact_slot, claim_named, decided_send, is_stale_claim, send_claimed, send_once, settle_named,
    settled_or_adopted, SendFailure, SendResult,
};
use crate::sweep::SweepOptions;
use crate::writes::{update_milestone, Edit};

#[derive(Clone)]
pub struct HeadsUps {
    pub store: Arc<dyn PlaybookStore>,
    pub mailer: Arc<dyn Mailer>,
    pub clock: Arc<dyn Clock>,
    pub config: Config,
    /// Signs the champion's unsubscribe link; without it, the configured endpoint.
    pub links: Option<ActionLinks>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadsUpReport {
    /// Milestones read from the heads-up index.
    pub examined: usize,
    /// Heads-ups emailed to owners.
    pub owners_told: usize,
    /// Owners emailed about an expansion opportunity.
    #[serde(default)]
    pub opportunities_told: usize,
    /// Heads-ups emailed to champions (one may name several milestones).
    pub champions_told: usize,
    /// Milestones a champion's email named beside the one it was about.
    pub champion_included: usize,
    /// Champions' emails the contact policy holds back to a later slot.
    pub champions_waiting: usize,
    /// On pace for now: looked at again when the pace passes them.
    pub on_pace: usize,
    /// Left to an overlapping run that is sending its email now.
    #[serde(default)]
    pub held_by_another_run: usize,
    /// Left for the next sweep (a passing fault).
    pub failed: usize,
    pub stopped_early: bool,
}

/// Why one milestone's heads-up stopped short: another run holds its email
/// (not a fault: that run finishes it), or a fault the next sweep retries.
#[derive(Debug, thiserror::Error)]
enum HeadsUpError {
    #[error("being sent by another run")]
    HeldByAnother,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Render(#[from] email::RenderError),
    #[error("send")]
    Send(#[source] SendFailure),
    #[error("the milestone's account {0} is unknown")]
    UnknownAccount(AccountId),
}

impl From<SendFailure> for HeadsUpError {
    fn from(e: SendFailure) -> Self {
        match e {
            SendFailure::HeldByAnother { .. } => HeadsUpError::HeldByAnother,
            SendFailure::Store(e) => HeadsUpError::Store(e),
            other => HeadsUpError::Send(other),
        }
    }
}

/// What became of a champion's heads-up, for the owner's email and the log.
#[derive(Clone, Debug, PartialEq)]
enum ChampionHeadsUp {
    /// The map sends the heads-up to the owner only.
    NotAsked,
    Sent,
    /// Named in the heads-up about another milestone of the account.
    Included(String),
    /// The contact policy holds it until then.
    Waiting(Timestamp, String),
    /// The contact policy's next slot comes after the due date.
    NoSlotBeforeDue(String),
    Paused(Timestamp),
    Unsubscribed(Timestamp),
    Rejected,
    /// Handed to SES without an answer: it may not have gone; not sent again.
    Unknown,
}

impl From<SendResult> for ChampionHeadsUp {
    fn from(sent: SendResult) -> Self {
        match sent {
            SendResult::Rejected(_) => ChampionHeadsUp::Rejected,
            SendResult::IncludedIn(within) => ChampionHeadsUp::Included(within),
            SendResult::Sent | SendResult::AlreadySent => ChampionHeadsUp::Sent,
            SendResult::Unknown(_) | SendResult::Abandoned(_) => ChampionHeadsUp::Unknown,
        }
    }
}

impl HeadsUps {
    /// One pass over the heads-up index: each milestone whose time has come
    /// is warned about, looked at again later, or dropped from the index.
    pub async fn run(&self, opts: &SweepOptions<'_>) -> Result<HeadsUpReport, StoreError> {
        let now = self.clock.now();
        let mut report = HeadsUpReport::default();
        // Read once a run: an account's milestones often come due a look together.
        let mut accounts: HashMap<AccountId, Arc<Account>> = HashMap::new();
        let mut cursor = None;
        loop {
            let page = self
                .store
                .heads_up_milestones(now, cursor.take(), opts.page_size)
                .await?;
            for m in page.items {
                if (opts.should_stop)() {
                    report.stopped_early = true;
                    return Ok(report);
                }
                report.examined += 1;
                let span =
                    tracing::info_span!("heads_up", account_id = %m.account_id(), milestone_id = %m.milestone_id());
                match self
                    .one(m, now, &mut accounts, &mut report)
                    .instrument(span.clone())
                    .await
                {
                    Ok(()) => {}
                    Err(HeadsUpError::HeldByAnother) => report.held_by_another_run += 1,
                    Err(e) => {
                        report.failed += 1;
                        span.in_scope(|| {
                            tracing::warn!(error = %crate::ErrorChain(&e), "a heads-up failed; the next sweep retries")
                        });
                    }
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(report),
            }
        }
    }

    async fn one(
        &self,
        m: TrackedMilestone,
        now: Timestamp,
        accounts: &mut HashMap<AccountId, Arc<Account>>,
        report: &mut HeadsUpReport,
    ) -> Result<(), HeadsUpError> {
        let account = match accounts.get(m.account_id()) {
            Some(a) => a.clone(),
            None => {
                let Some(a) = self.store.get_account(m.account_id()).await? else {
                    return Err(HeadsUpError::UnknownAccount(m.account_id().clone()));
                };
                accounts.insert(m.account_id().clone(), a.clone());
                a
            }
        };
        match m.heads_up_check(now, account.licensed_seats) {
            HeadsUpCheck::Never => Ok(self.mark(m, |m| m.mark_heads_up_done()).await?),
            HeadsUpCheck::LookAgainAt(at) => {
                report.on_pace += 1;
                Ok(self.mark(m, |m| m.look_at_heads_up_again(at)).await?)
            }
            HeadsUpCheck::Behind(pace) => self.warn(&account, m, pace, now, report).await,
            HeadsUpCheck::TellOpportunity => self.tell_opportunity(&account, m, now, report).await,
        }
    }

    async fn warn(
        &self,
        account: &Account,
        m: TrackedMilestone,
        pace: BehindPace,
        now: Timestamp,
        report: &mut HeadsUpReport,
    ) -> Result<(), HeadsUpError> {
        // The champion first, so the owner's email says what the customer was told.
        let champion = match m.heads_up() {
            Some(rule) if rule.champion && m.moved_by().is_customer() => {
                self.tell_champion(account, &m, now, report).await?
            }
            _ => ChampionHeadsUp::NotAsked,
        };
        let words = champion_words(account, &champion);
        let about = email::About {
            cfg: &self.config,
            account,
            m: &m,
            now,
        };
        let mail = email::heads_up(about, pace, &words, keys::heads_up_send(&m, Recipient::Owner))?;
        let sent = send_once(self.store.as_ref(), self.mailer.as_ref(), &mail, now).await?;
        if sent == SendResult::Sent {
            report.owners_told += 1;
        }
        self.log(
            &m,
            HeadsUpLog::Told(Recipient::Owner),
            now,
            format!("heads-up email {} to the owner", sent.describe()),
        )
        .await?;
        match champion {
            ChampionHeadsUp::Waiting(at, _) => {
                report.champions_waiting += 1;
                Ok(self.mark(m, |m| m.look_at_heads_up_again(at)).await?)
            }
            _ => Ok(self.mark(m, |m| m.mark_heads_up_done()).await?),
        }
    }

    /// The email telling the owner of `m`'s opportunity: sent once (its key
    /// names the milestone and due date), logged, then the opportunity is
    /// marked told, last, so a crash in between sends nothing twice.
    async fn tell_opportunity(
        &self,
        account: &Account,
        m: TrackedMilestone,
        now: Timestamp,
        report: &mut HeadsUpReport,
    ) -> Result<(), HeadsUpError> {
        let about = email::About {
            cfg: &self.config,
            account,
            m: &m,
            now,
        };
        let Some(o) = m.opportunity() else {
            return Ok(());
        };
        let mail = email::opportunity(about, o, keys::opportunity_send(&m))?;
        let sent = send_once(self.store.as_ref(), self.mailer.as_ref(), &mail, now).await?;
        if sent == SendResult::Sent {
            report.opportunities_told += 1;
        }
        if let SendResult::Rejected(_) = sent {
            tracing::warn!("the opportunity's owner address was refused: nobody was told of it but the log");
        }
        let role = email::role_words(&o.for_role);
        let to_whom = match account.owner(&o.for_role).fallback {
            true => format!("the CSM (the account names no {role})"),
            false => format!("the {role}"),
        };
        self.log(
            &m,
            HeadsUpLog::Opportunity,
            now,
            format!("expansion opportunity email {} to {to_whom}", sent.describe()),
        )
        .await?;
        update_milestone(self.store.as_ref(), m, |m| {
            if m.opportunity().is_none_or(|o| o.owner_told) {
                return Ok(Edit::Unchanged);
            }
            m.mark_opportunity_told();
            Ok(Edit::Changed)
        })
        .await?;
        Ok(())
    }

    /// The champion's heads-up about `m`: sent with the account's other
    /// milestones behind pace named in it, or why it is not sent now.
    async fn tell_champion(
        &self,
        account: &Account,
        m: &TrackedMilestone,
        now: Timestamp,
        report: &mut HeadsUpReport,
    ) -> Result<ChampionHeadsUp, HeadsUpError> {
        let store = self.store.as_ref();
        let to = &account.primary_contact;
        let key = champion_key(m);
        // A claim an attempt left mid-send is adopted by the send below.
        if let Some(record) = decided_send(store, &key, now).await? {
            return Ok(ChampionHeadsUp::from(settled(record, now)?));
        }
        if let Some(pause) = store.customer_email_pause(&account.id).await? {
            if pause.is_active(now) {
                self.log(
                    m,
                    HeadsUpLog::Told(Recipient::Champion),
                    now,
                    "customer heads-up not sent: customer emails paused".into(),
                )
                .await?;
                return Ok(ChampionHeadsUp::Paused(pause.until));
            }
        }
        if let Some(suppression) = store.suppression(&to.email).await? {
            self.log(
                m,
                HeadsUpLog::Told(Recipient::Champion),
                now,
                "customer heads-up not sent: the recipient unsubscribed".into(),
            )
            .await?;
            return Ok(ChampionHeadsUp::Unsubscribed(suppression.at));
        }
        let policy = self.config.contact_policy_for(m.policy().contact);
        if let Slot::Later(at, why) = claim_contact_slot(store, to, &key, &policy, account.timezone, now).await? {
            let why = why.describe(&policy);
            if at >= m.due_at() {
                let detail =
                    format!("customer heads-up not sent: the contact policy has no slot before the due date ({why})");
                self.log(m, HeadsUpLog::Told(Recipient::Champion), now, detail).await?;
                return Ok(ChampionHeadsUp::NoSlotBeforeDue(why));
            }
            let detail = format!(
                "customer heads-up deferred to {} ({}): {why}",
                email::fmt_local_datetime(at, account.timezone),
                account.timezone.name()
            );
            self.log(m, HeadsUpLog::ChampionDeferred(at), now, detail).await?;
            return Ok(ChampionHeadsUp::Waiting(at, why));
        }
        // The key is held before the email's list is made: two runs on one
        // milestone cannot each send a list the other settles.
        let claim = SendClaim::fresh(now);
        // `Some`: a claim an attempt left mid-send, adopted with this email.
        let stale = match store.claim_send(&key, &claim).await? {
            None => None,
            Some(record) if is_stale_claim(&record, now) => Some(record),
            Some(record) => return Ok(ChampionHeadsUp::from(settled(record, now)?)),
        };
        let also = match self.claim_others_behind(account, m, now, &claim).await {
            Ok(also) => also,
            Err(e) => {
                if stale.is_none() {
                    store.release_send(&key, &claim).await?;
                }
                return Err(e.into());
            }
        };
        let unsubscribe = match &self.links {
            Some(links) => links.unsubscribe(account.id.as_str(), to.email.as_str(), now),
            None => self.config.unsubscribe_url.clone(),
        };
        let kind = milepost_domain::EmailKind::HeadsUpChampion;
        let about = email::About {
            cfg: &self.config,
            account,
            m,
            now,
        };
        let sent = match (
            email::outreach(about, &also, kind, &unsubscribe, key.clone(), None),
            stale,
        ) {
            (Ok(mail), None) => send_claimed(store, self.mailer.as_ref(), &mail, &claim)
                .await
                .map_err(HeadsUpError::from),
            (Ok(mail), Some(stale)) => settled_or_adopted(store, &mail, stale, now)
                .await
                .map_err(HeadsUpError::from),
            (Err(e), stale) => {
                if stale.is_none() {
                    store.release_send(&key, &claim).await?;
                }
                Err(HeadsUpError::Render(e))
            }
        };
        let keys = also.iter().map(champion_key);
        let within = format!("the heads-up about {}", m.name());
        settle_named(store, keys, &within, &key, sent.as_ref().ok(), &claim).await?;
        let sent = sent?;
        if sent == SendResult::Sent {
            report.champions_told += 1;
            report.champion_included += also.len();
        }
        self.log(
            m,
            HeadsUpLog::Told(Recipient::Champion),
            now,
            format!("customer heads-up email {}", sent.describe()),
        )
        .await?;
        Ok(ChampionHeadsUp::from(sent))
    }

    /// The account's other milestones behind pace now whose champion
    /// heads-up has not gone: each one's key is claimed here, so the email
    /// about `m` names them and they send none of their own.
    async fn claim_others_behind(
        &self,
        account: &Account,
        m: &TrackedMilestone,
        now: Timestamp,
        claim: &SendClaim,
    ) -> Result<Vec<TrackedMilestone>, StoreError> {
        let mut others: Vec<TrackedMilestone> = self
            .store
            .milestones_of(&account.id)
            .await?
            .into_iter()
            .filter(|o| {
                o.milestone_id() != m.milestone_id()
                    && o.moved_by().is_customer()
                    && o.heads_up().is_some_and(|r| r.champion)
                    && matches!(o.heads_up_check(now, account.licensed_seats), HeadsUpCheck::Behind(_))
            })
            .collect();
        others.sort_by(|a, b| (a.due_at(), a.milestone_id()).cmp(&(b.due_at(), b.milestone_id())));
        claim_named(self.store.as_ref(), others, champion_key, claim).await
    }

    /// Applies `change` to the milestone and writes it (again on a lost race).
    async fn mark(
        &self,
        m: TrackedMilestone,
        change: impl Fn(&mut TrackedMilestone) + Send + Sync,
    ) -> Result<(), StoreError> {
        update_milestone(self.store.as_ref(), m, |m| {
            if m.heads_up_done() {
                return Ok(Edit::Unchanged);
            }
            change(m);
            Ok(Edit::Changed)
        })
        .await
        .map(|_| ())
    }

    /// Appends what happened to the account's escalation log, once per
    /// milestone, due date and `what`.
    async fn log(
        &self,
        m: &TrackedMilestone,
        what: HeadsUpLog,
        at: Timestamp,
        detail: String,
    ) -> Result<(), StoreError> {
        let mut entry = EscalationLogEntry::outside_steps(
            m.account_id(),
            m.milestone_id(),
            None,
            "heads_up",
            at,
            &milepost_domain::Actor::Milepost,
            detail,
        );
        entry.key = format!(
            "{}:{}:heads_up:{}:{}",
            m.account_id(),
            m.milestone_id(),
            what.key_part(),
            m.due_at().timestamp()
        );
        self.store.append_log(&entry).await?;
        Ok(())
    }
}

/// The send key of the champion's heads-up about `m`.
fn champion_key(m: &TrackedMilestone) -> SendKey {
    keys::heads_up_send(m, Recipient::Champion)
}

/// What the owner's email says the customer was told.
fn champion_words(account: &Account, champion: &ChampionHeadsUp) -> String {
    let name = &account.primary_contact.name;
    match champion {
        ChampionHeadsUp::NotAsked => "Not emailed: the map sends this heads-up to you only.".to_string(),
        ChampionHeadsUp::Sent => format!("{name} (the champion) got a heads-up email from you today."),
        ChampionHeadsUp::Included(within) => format!("{name} (the champion) got it in {within}."),
        ChampionHeadsUp::Waiting(at, why) => format!(
            "A heads-up to {name} (the champion) is set for {} ({}), the contact policy's next slot; held back now: {why}.",
            email::fmt_local_datetime(*at, account.timezone),
            account.timezone.name()
        ),
        ChampionHeadsUp::NoSlotBeforeDue(why) => format!(
            "Not emailed: the contact policy has no slot for {name} (the champion) before the due date ({why})."
        ),
        ChampionHeadsUp::Paused(until) => format!(
            "Not emailed: customer emails are paused until {}.",
            email::fmt_date(*until)
        ),
        ChampionHeadsUp::Unsubscribed(at) => {
            format!("Not emailed: {name} unsubscribed on {}.", email::fmt_date(*at))
        }
        ChampionHeadsUp::Rejected => format!("Not emailed: {name}'s address was rejected."),
        ChampionHeadsUp::Unknown => format!(
            "A heads-up email to {name} (the champion) was handed to the mail service today without an answer: it may not have arrived."
        ),
    }
}

/// What a send record means for a heads-up (another run's live claim: that run finishes it).
fn settled(record: crate::ports::SendRecord, now: Timestamp) -> Result<SendResult, HeadsUpError> {
    Ok(SendResult::from_record(record, now)?)
}
