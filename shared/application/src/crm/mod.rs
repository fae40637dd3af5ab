//! The team's CRM (HubSpot first): each account's standing kept on its
//! company record, each CSM task mirrored as a CRM task on the company.
//! Driven by the domain events on the bus, like the webhooks and Slack: any
//! event of an account marks its company's record owed a write; a task's
//! events mark its task's.
//!
//! Once per account's company and per task (`CrmSyncStore::create_crm_sync`),
//! so an event the bus delivers twice makes nothing twice; each attempt is
//! claimed on the record's version first, so overlapping runs do not write
//! together; what is written is read at the attempt (the company's standing
//! from the account's folder, the task as stored), so writes coalesce and a
//! late retry never writes something older over something newer. A task
//! created without an answer is looked for (by `milepost_task_id`) before it
//! is made again. Rate limits wait as HubSpot says; other failures retry
//! for a day, then the record is dead, listed and replayable (`milepost crm`).

pub mod properties;
pub mod records;

use milepost_domain::crm::{CrmOutcome, CrmSync, Mirrored, Owed, SyncState};
use milepost_domain::webhooks::OutboundEvent;
use milepost_domain::{AccountId, Claim, Timestamp};
use serde::Serialize;

use crate::ports::{
    Clock, ConsoleReads, CrmList, CrmProperties, CrmSyncStore, HubSpotApi, StoreError, StoreResult, TaskStore,
};

/// Records attempted per page of the due index.
const PAGE: usize = 50;

/// Steps one attempt may take under its claim (find the company, then write it).
const STEPS: usize = 3;

#[derive(Clone, Debug, Default)]
pub struct CrmSettings {
    /// The console's address, for the company's and the task's links.
    pub console_url: Option<String>,
    /// Deal stages that record a renewal decision (`crm::renewal_stages`);
    /// none: deals are not read.
    pub renewal_stages: Vec<(String, milepost_domain::RenewalDecision)>,
    /// Only deals of this pipeline (its id).
    pub renewal_pipeline: Option<String>,
}

/// The keys of what the sync keeps (`CrmSyncStore::crm_value`).
pub mod keys {
    /// The version of the properties made.
    pub const PROPERTIES: &str = "properties";
    /// The last change of a deal read (RFC 3339).
    pub const DEALS_CURSOR: &str = "deals_cursor";

    /// The account a company was found for.
    pub fn company(id: &str) -> String {
        format!("company:{id}")
    }
}

/// How far back the first read of deals goes.
const FIRST_DEALS_LOOKBACK: chrono::Duration = chrono::Duration::days(30);

/// What one read of deals did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RenewalsRun {
    pub deals: usize,
    /// Renewals recorded (new, or replacing another word for the same date).
    pub recorded: usize,
    pub unchanged: usize,
    /// Deals on no company Milepost found for an account.
    pub unmatched: usize,
    /// Why the read stopped early (HubSpot's answer), to go on next run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

/// What one run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CrmRun {
    /// Companies found (by the account's trait or its domain).
    pub matched: usize,
    pub unmatched: usize,
    pub companies_written: usize,
    pub tasks_created: usize,
    pub tasks_written: usize,
    /// Tasks found after a create without an answer: adopted, not made again.
    pub adopted: usize,
    pub waiting: usize,
    pub dead: usize,
    pub skipped: usize,
}

/// What the use case reads and writes: the CRM records, tasks, and accounts' folders.
pub trait CrmStore: CrmSyncStore + TaskStore + ConsoleReads + crate::ports::AccountStore {}
impl<T> CrmStore for T where T: CrmSyncStore + TaskStore + ConsoleReads + crate::ports::AccountStore {}

pub struct CrmSyncs<'a> {
    pub store: &'a dyn CrmStore,
    pub api: &'a dyn HubSpotApi,
    pub clock: &'a dyn Clock,
    pub settings: &'a CrmSettings,
}

/// Why the properties could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SetUpError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("HubSpot: {0:?}")]
    Crm(CrmOutcome),
}

impl CrmSyncs<'_> {
    /// Makes Milepost's property groups and properties, unless the store
    /// says this version of them was made; true when it made them.
    pub async fn set_up(&self) -> Result<bool, SetUpError> {
        let made = self.store.crm_value(keys::PROPERTIES).await?;
        if made.and_then(|v| v.parse::<u32>().ok()) >= Some(properties::PROPERTIES_VERSION) {
            return Ok(false);
        }
        for (object, list) in [
            ("companies", properties::COMPANY_PROPERTIES),
            ("tasks", properties::TASK_PROPERTIES),
        ] {
            self.api.create_property_group(object).await.map_err(SetUpError::Crm)?;
            for property in list {
                self.api
                    .create_property(object, property)
                    .await
                    .map_err(SetUpError::Crm)?;
            }
        }
        self.store
            .set_crm_value(keys::PROPERTIES, &properties::PROPERTIES_VERSION.to_string())
            .await?;
        Ok(true)
    }

    /// The properties made first; when HubSpot cannot take that now, the
    /// records stay owed for a later run (false). A refusal is logged and
    /// the records tried anyway: their writes fail and go dead, where the
    /// operator sees them.
    async fn ready(&self) -> StoreResult<bool> {
        match self.set_up().await {
            Ok(_) => Ok(true),
            Err(SetUpError::Store(e)) => Err(e),
            Err(SetUpError::Crm(CrmOutcome::Refused(why))) => {
                tracing::error!(why = %why, "HubSpot refused Milepost's properties");
                Ok(true)
            }
            Err(SetUpError::Crm(outcome)) => {
                tracing::warn!(outcome = ?outcome, "HubSpot's properties not made yet; records wait");
                Ok(false)
            }
        }
    }

    /// A domain event from the bus: its account's company owes a write; a
    /// task opened gets its CRM task; a task that changed gets it written.
    pub async fn accept(&self, event: &OutboundEvent) -> StoreResult<CrmRun> {
        let mut run = CrmRun::default();
        let Some(account) = event.data.get("account_id").and_then(serde_json::Value::as_str) else {
            return Ok(run);
        };
        let account = AccountId::new(account);
        let now = self.clock.now();
        let mut owed = Vec::new();
        owed.extend(owe(self.store, &account, Mirrored::Company, true, now).await?);
        let task_id = event.data.get("task_id").and_then(serde_json::Value::as_str);
        match (event.event_type.as_str(), task_id) {
            ("TaskOpened", Some(task)) => {
                owed.extend(owe(self.store, &account, Mirrored::Task(task.into()), true, now).await?);
            }
            ("TaskSnoozed" | "TaskReopened" | "TaskClosed", Some(task)) => {
                owed.extend(owe(self.store, &account, Mirrored::Task(task.into()), false, now).await?);
            }
            _ => {}
        }
        if !self.ready().await? {
            run.waiting += owed.len();
            return Ok(run);
        }
        for sync in owed {
            self.attempt(sync, &mut run).await?;
        }
        Ok(run)
    }

    /// Every record owed something now, until none is left or `deadline` passes.
    pub async fn deliver_due(&self, deadline: Option<Timestamp>) -> StoreResult<CrmRun> {
        let mut run = CrmRun::default();
        let mut seen = std::collections::HashSet::new();
        let mut ready = None;
        loop {
            let now = self.clock.now();
            if deadline.is_some_and(|d| now >= d) {
                break;
            }
            let page = self.store.due_crm_syncs(now, PAGE).await?;
            let fresh: Vec<CrmSync> = page
                .into_iter()
                .filter(|s| seen.insert((s.account_id.clone(), s.mirrored.clone())))
                .collect();
            if fresh.is_empty() {
                break;
            }
            if ready.is_none() {
                ready = Some(self.ready().await?);
            }
            if ready == Some(false) {
                run.waiting += fresh.len();
                break;
            }
            for sync in fresh {
                self.attempt(sync, &mut run).await?;
            }
        }
        Ok(run)
    }

    /// Renewal decisions from deals: every deal in a renewal stage changed
    /// since the last read, recorded on the account whose company it is on
    /// (one decision per date: a deal read again records nothing new). A
    /// failure stops the read where it was; the next run goes on from there.
    pub async fn renewals(&self) -> StoreResult<RenewalsRun> {
        let mut run = RenewalsRun::default();
        if self.settings.renewal_stages.is_empty() {
            return Ok(run);
        }
        let since = match self.store.crm_value(keys::DEALS_CURSOR).await? {
            Some(at) => chrono::DateTime::parse_from_rfc3339(&at)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(|e| StoreError::backend(format!("the deals' cursor {at:?}: {e}")))?,
            None => self.clock.now() - FIRST_DEALS_LOOKBACK,
        };
        let stages: Vec<String> = self.settings.renewal_stages.iter().map(|(s, _)| s.clone()).collect();
        let mut after = None;
        let mut read_to = since;
        loop {
            let page = match self
                .api
                .deals_changed(
                    since,
                    &stages,
                    self.settings.renewal_pipeline.as_deref(),
                    after.as_deref(),
                )
                .await
            {
                Ok(page) => page,
                Err(outcome) => {
                    run.stopped = Some(format!("{outcome:?}"));
                    break;
                }
            };
            for deal in &page.deals {
                if let Err(outcome) = self.deal(deal, &mut run).await? {
                    run.stopped = Some(format!("{outcome:?}"));
                    break;
                }
                read_to = read_to.max(deal.changed_at);
            }
            if run.stopped.is_some() {
                break;
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        if read_to > since {
            self.store
                .set_crm_value(
                    keys::DEALS_CURSOR,
                    &read_to.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                )
                .await?;
        }
        if let Some(why) = &run.stopped {
            tracing::warn!(why = %why, "reading HubSpot's deals stopped; the next run goes on");
        }
        Ok(run)
    }

    /// One deal's renewal, on its company's account.
    async fn deal(
        &self,
        deal: &milepost_domain::crm::Deal,
        run: &mut RenewalsRun,
    ) -> StoreResult<Result<(), CrmOutcome>> {
        run.deals += 1;
        let Some(outcome) = deal.renewal(&self.settings.renewal_stages) else {
            return Ok(Ok(()));
        };
        let companies = match self.api.deal_companies(&deal.id).await {
            Ok(c) => c,
            Err(outcome) => return Ok(Err(outcome)),
        };
        let mut account = None;
        for company in &companies {
            if let Some(id) = self.store.crm_value(&keys::company(company)).await? {
                account = Some(AccountId::new(id));
                break;
            }
        }
        let Some(account) = account else {
            run.unmatched += 1;
            tracing::warn!(deal = %deal.id, "a renewal deal is on no company Milepost found for an account");
            return Ok(Ok(()));
        };
        match crate::writes::record_renewal(self.store, &account, outcome).await? {
            Some(milepost_domain::renewal::Recorded::Unchanged) => run.unchanged += 1,
            Some(_) => run.recorded += 1,
            None => run.unmatched += 1,
        }
        Ok(Ok(()))
    }

    async fn attempt(&self, mut sync: CrmSync, run: &mut CrmRun) -> StoreResult<()> {
        let now = self.clock.now();
        if !sync.is_due(now) {
            run.skipped += 1;
            return Ok(());
        }
        sync.claim = Some(Claim::fresh(now));
        match self.store.update_crm_sync(&sync).await {
            Ok(version) => sync.version = version,
            Err(StoreError::Conflict) => {
                run.skipped += 1;
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        // The company written before this attempt: finding another (or the
        // first) is what sets the deals' pointer and wakes waiting tasks.
        let written_before = sync.written_to.clone();
        let mut outcome = None;
        for _ in 0..STEPS {
            match self.step(&mut sync, run).await? {
                Step::Again => continue,
                Step::Done(o) => {
                    outcome = o;
                    break;
                }
            }
        }
        if let Some(outcome) = &outcome {
            match outcome {
                CrmOutcome::Created(_) => run.tasks_created += 1,
                CrmOutcome::Written if sync.mirrored == Mirrored::Company => run.companies_written += 1,
                CrmOutcome::Written => run.tasks_written += 1,
                _ => run.waiting += 1,
            }
            sync.record(self.clock.now(), outcome.clone());
        }
        sync.claim = None;
        match &sync.state {
            SyncState::Dead { why, .. } => {
                run.dead += 1;
                // What failed and HubSpot's category only: its message may
                // quote a value written (a name); `milepost crm dead` shows it whole.
                let kind = why.split(": ").take(2).collect::<Vec<_>>().join(": ");
                tracing::error!(account = %sync.account_id, record = %sync.mirrored.key(), why = %kind, "a CRM change was given up");
            }
            SyncState::Unmatched { why } => {
                run.unmatched += 1;
                tracing::warn!(account = %sync.account_id, record = %sync.mirrored.key(), why = %why, "no CRM company to write to");
            }
            _ => {}
        }
        // A refresh of the company already written needs neither.
        let company_found = sync.mirrored == Mirrored::Company
            && matches!(outcome, Some(CrmOutcome::Written))
            && sync.crm_id != written_before;
        match self.store.update_crm_sync(&sync).await {
            Ok(_) => {}
            // What it mirrors changed meanwhile (its event marked the record):
            // keep what the CRM did, and write it as it is now.
            Err(StoreError::Conflict) => {
                let at = self.clock.now();
                let created = match &outcome {
                    Some(CrmOutcome::Created(id)) => Some(id.clone()),
                    _ => None,
                };
                let (crm_id, matched_by) = (sync.crm_id.clone(), sync.matched_by.clone());
                change(self.store, &sync.account_id, &sync.mirrored, |fresh| {
                    fresh.claim = None;
                    if let Some(id) = &created {
                        fresh.crm_id = Some(id.clone());
                        fresh.maybe_created_at = None;
                    }
                    if fresh.crm_id.is_none() && crm_id.is_some() {
                        fresh.crm_id = crm_id.clone();
                        fresh.matched_by = matched_by.clone();
                    }
                    fresh.changed(at);
                })
                .await?;
            }
            Err(e) => return Err(e),
        }
        if company_found {
            if let Some(id) = &sync.crm_id {
                // For deals: which account a company's renewal is.
                self.store
                    .set_crm_value(&keys::company(id), sync.account_id.as_str())
                    .await?;
            }
            self.wake_tasks(&sync.account_id, run).await?;
        }
        Ok(())
    }

    /// The account's tasks that waited for its company are made now.
    async fn wake_tasks(&self, account: &AccountId, run: &mut CrmRun) -> StoreResult<()> {
        let waiting: Vec<Mirrored> = self
            .store
            .crm_syncs(account)
            .await?
            .into_iter()
            .filter(|s| matches!(s.mirrored, Mirrored::Task(_)) && matches!(s.state, SyncState::Unmatched { .. }))
            .map(|s| s.mirrored)
            .collect();
        for mirrored in waiting {
            let now = self.clock.now();
            if let Some(sync) = change(self.store, account, &mirrored, |s| s.changed(now)).await? {
                Box::pin(self.attempt(sync, run)).await?;
            }
        }
        Ok(())
    }

    /// One step of an attempt: what the CRM answered (none: nothing to
    /// record), or go on with the next step.
    async fn step(&self, sync: &mut CrmSync, run: &mut CrmRun) -> StoreResult<Step> {
        let now = self.clock.now();
        let done = |o: CrmOutcome| Ok(Step::Done(Some(o)));
        match (sync.owed(), sync.mirrored.clone()) {
            (Owed::Nothing, _) => {
                sync.state = SyncState::Synced;
                Ok(Step::Done(None))
            }
            (Owed::Match, _) => {
                let Some(folder) = self.store.account_folder(&sync.account_id).await? else {
                    return done(CrmOutcome::Refused("the account is not stored".into()));
                };
                let account = &folder.account;
                if let Some(id) = &account.hubspot_company_id {
                    sync.matched(id.clone(), "trait", now);
                    run.matched += 1;
                    return Ok(Step::Again);
                }
                let Some(domain) = &account.domain else {
                    sync.unmatched(
                        "the account has neither a hubspot_company_id nor a domain (or website) trait".into(),
                    );
                    return Ok(Step::Done(None));
                };
                match self.api.companies_with_domain(domain).await {
                    Err(outcome) => done(outcome),
                    Ok(ids) if ids.len() == 1 => {
                        sync.matched(ids[0].clone(), "domain", now);
                        run.matched += 1;
                        Ok(Step::Again)
                    }
                    Ok(ids) if ids.is_empty() => {
                        sync.unmatched(format!("no HubSpot company has the domain {domain}"));
                        Ok(Step::Done(None))
                    }
                    Ok(ids) => {
                        sync.unmatched(format!(
                            "{} HubSpot companies have the domain {domain}; set the account's hubspot_company_id",
                            ids.len()
                        ));
                        Ok(Step::Done(None))
                    }
                }
            }
            (Owed::Write(id), Mirrored::Company) => {
                let Some(folder) = self.store.account_folder(&sync.account_id).await? else {
                    return done(CrmOutcome::Refused("the account is not stored".into()));
                };
                // The account's own id wins over a company found by domain.
                if let Some(named) = folder.account.hubspot_company_id.as_ref().filter(|n| **n != id) {
                    sync.matched(named.clone(), "trait", now);
                    run.matched += 1;
                    return Ok(Step::Again);
                }
                let properties = records::company_properties(&folder, now, self.settings.console_url.as_deref());
                done(self.api.update_company(&id, &properties).await)
            }
            (Owed::Find(_), Mirrored::Task(task_id)) => match self.api.find_task(&task_id).await {
                Err(outcome) => done(outcome),
                Ok(Some(found)) => {
                    sync.found(found, now);
                    run.adopted += 1;
                    Ok(Step::Again)
                }
                Ok(None) => {
                    sync.none_found(now);
                    Ok(Step::Again)
                }
            },
            (Owed::Create, Mirrored::Task(task_id)) => {
                let Some(task) = self.store.get_task(&task_id).await? else {
                    return done(CrmOutcome::Refused("the task is not stored".into()));
                };
                let Some(company) = self.company_of(&sync.account_id, now).await? else {
                    sync.unmatched("its account's HubSpot company is not found yet (milepost crm unmatched)".into());
                    return Ok(Step::Done(None));
                };
                let owner = match self.api.owner_id(&task.brief().owner_email).await {
                    Ok(owner) => owner,
                    Err(outcome) => return done(outcome),
                };
                let mut properties = records::task_properties(&task, self.settings.console_url.as_deref());
                properties.extend(records::create_extras(&task, owner));
                done(self.api.create_task(&company, &properties).await)
            }
            (Owed::Write(id), Mirrored::Task(task_id)) => {
                let Some(task) = self.store.get_task(&task_id).await? else {
                    return done(CrmOutcome::Refused("the task is not stored".into()));
                };
                let properties: CrmProperties = records::task_properties(&task, self.settings.console_url.as_deref());
                done(self.api.update_task(&id, &properties).await)
            }
            // A company's record is matched, never created (`CrmSync::owed`).
            (Owed::Find(_) | Owed::Create, Mirrored::Company) => {
                done(CrmOutcome::Refused("a company is found, never made".into()))
            }
        }
    }

    /// The account's company id, when found; its record made (owed now)
    /// when the account has none, so a task's first event finds it.
    async fn company_of(&self, account: &AccountId, now: Timestamp) -> StoreResult<Option<String>> {
        let company = self
            .store
            .crm_syncs(account)
            .await?
            .into_iter()
            .find(|s| s.mirrored == Mirrored::Company);
        match company {
            Some(c) => Ok(c.crm_id),
            None => {
                self.store
                    .create_crm_sync(&CrmSync::new(account, Mirrored::Company, now))
                    .await?;
                Ok(None)
            }
        }
    }
}

/// `mirrored` of `account` owes a write from `now`: its record created
/// (when `create`, and it has none) or marked.
async fn owe(
    store: &dyn CrmSyncStore,
    account: &AccountId,
    mirrored: Mirrored,
    create: bool,
    now: Timestamp,
) -> StoreResult<Option<CrmSync>> {
    let fresh = CrmSync::new(account, mirrored.clone(), now);
    if create && store.create_crm_sync(&fresh).await? {
        return Ok(Some(CrmSync { version: 1, ..fresh }));
    }
    change(store, account, &mirrored, |s| s.changed(now)).await
}

/// Applies `change` to the stored record, on the version read (again on a lost race).
async fn change(
    store: &dyn CrmSyncStore,
    account: &AccountId,
    mirrored: &Mirrored,
    change: impl Fn(&mut CrmSync),
) -> StoreResult<Option<CrmSync>> {
    for _ in 0..crate::writes::MAX_WRITE_ATTEMPTS {
        let Some(mut sync) = store
            .crm_syncs(account)
            .await?
            .into_iter()
            .find(|s| &s.mirrored == mirrored)
        else {
            return Ok(None);
        };
        change(&mut sync);
        match store.update_crm_sync(&sync).await {
            Ok(version) => return Ok(Some(CrmSync { version, ..sync })),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Contended(format!(
        "account {account}'s CRM record {}",
        mirrored.key()
    )))
}

/// Dead records (of `account`, or all) tried again from the start of their
/// schedule, and unmatched ones looked for again (after a trait or a
/// company's domain was fixed), at `now`; how many.
pub async fn replay(store: &dyn CrmSyncStore, now: Timestamp, account: Option<&AccountId>) -> StoreResult<usize> {
    let mut replayed = 0;
    for list in [CrmList::Dead, CrmList::Unmatched] {
        for sync in store.listed_crm_syncs(list, usize::MAX).await? {
            if account.is_some_and(|a| *a != sync.account_id) {
                continue;
            }
            let changed = change(store, &sync.account_id, &sync.mirrored, |s| {
                if matches!(s.state, SyncState::Dead { .. } | SyncState::Unmatched { .. }) {
                    s.replay(now)
                }
            })
            .await?;
            replayed += usize::from(changed.is_some());
        }
    }
    Ok(replayed)
}

/// `account`'s company found again if need be and written from `now`.
pub async fn resync(store: &dyn CrmSyncStore, now: Timestamp, account: &AccountId) -> StoreResult<()> {
    owe(store, account, Mirrored::Company, true, now).await?;
    Ok(())
}

enum Step {
    Again,
    Done(Option<CrmOutcome>),
}
