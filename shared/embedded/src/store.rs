//! The in-memory store: the embedded twin of the DynamoDB store, with the same
//! semantics (conditional writes by version, a sparse due index that holds a
//! milestone only while the sweep still has work on it, TTL'd dedupe records).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
// The embedded store hashes only its own keys, so a fast non-DoS-resistant hash is fine.
use rustc_hash::FxHashMap as HashMap;

use milepost_app::ports::{
    AccountFolder, AccountStore, ActivityStore, ConsoleReads, ContactStore, DedupeStore, DiscoveryStore, EscalationLog,
    EventStore, EventsApplied, HeldBackListStore, KeptPortfolio, KeptPortfolioStore, KeptResultsStore, KeptRow,
    LeaderQueueStore, MapStore, MilestoneStore, OpenMissIndex, Page, ParkingStore, PauseStore, SendClaim, SendLedger,
    SendReceipt, SendReceipts, SendRecord, SlackPostStore, StoreError, StoreResult, TaskStore, WebhookStore,
};
use milepost_app::ports::{CrmList, CrmSyncStore};
use milepost_domain::crm::{CrmSync, Mirrored, SyncState};
use milepost_domain::suppression::suppression_key;
use milepost_domain::webhooks::{Delivery, WebhookEndpoint};
use milepost_domain::{
    limits, Account, AccountActivity, AccountId, AccountState, Announcements, ContactRecord, CsmTask,
    CustomerEmailPause, EmailAddress, EscalationLogEntry, HeldBackList, LeaderQueue, MilestoneMap, MissStage,
    ProductEvent, Segment, SendKey, Suppression, TaskStatus, Tenure, Timestamp, TrackedMilestone,
};

type DueKey = (Timestamp, AccountId, String);

#[derive(Default)]
struct Tables {
    accounts: HashMap<AccountId, Arc<Account>>,
    maps: Vec<MilestoneMap>,
    /// account → its milestones, in milestone-id order (as DynamoDB's query
    /// returns them): found by binary search, applied to as one slice.
    milestones: HashMap<AccountId, Vec<TrackedMilestone>>,
    /// The sparse due index.
    due: BTreeSet<DueKey>,
    /// The sparse heads-up index, by `TrackedMilestone::heads_up_index_at`.
    heads_up: BTreeSet<DueKey>,
    /// The sparse index of open misses (`MissStage::of`), the console's portfolio.
    open_misses: BTreeSet<(AccountId, String)>,
    /// Per account, then event id: looked up by `&str` without allocating.
    dedupe: HashMap<AccountId, HashMap<String, Timestamp>>,
    /// When expired dedupe records were last deleted, as DynamoDB's TTL does.
    dedupe_purged_at: Option<Timestamp>,
    parked: HashMap<AccountId, BTreeMap<String, ProductEvent>>,
    activity: HashMap<AccountId, AccountActivity>,
    tasks: BTreeMap<String, CsmTask>,
    /// Task ids in the order they were created, for `tasks_opened_from`.
    task_order: Vec<String>,
    pauses: HashMap<AccountId, CustomerEmailPause>,
    contacts: HashMap<String, ContactRecord>,
    leader_queues: HashMap<String, LeaderQueue>,
    held_back_lists: BTreeMap<String, HeldBackList>,
    /// By `suppression_key`, so listed in address order.
    suppressed: BTreeMap<milepost_domain::suppression::SuppressionKey, Suppression>,
    log: BTreeMap<AccountId, Vec<EscalationLogEntry>>,
    log_keys: BTreeSet<String>,
    sends: HashMap<SendKey, SendRecord>,
    /// Keys whose send is unknown and not settled yet.
    unsettled: BTreeSet<SendKey>,
    receipts: HashMap<String, SendReceipt>,
    stream_watermark: Option<Timestamp>,
    /// The kept portfolio: each account's row (none: not at risk) and when it was read.
    portfolio: BTreeMap<AccountId, (Option<milepost_domain::PortfolioRow>, Timestamp)>,
    portfolio_refreshed: Option<Timestamp>,
    discovery: Option<milepost_domain::discovery::KeptDiscovery>,
    comparison: Option<milepost_domain::map_review::KeptComparison>,
    /// Each account's success plan, its versions oldest first.
    success_plans: BTreeMap<AccountId, Vec<milepost_domain::SuccessPlan>>,
    /// The results page's kept views, by name: when, and the view as JSON.
    results: BTreeMap<String, (Timestamp, String)>,
    /// Sent emails' copies by send key, and each account's keys.
    emails: HashMap<String, (milepost_domain::SentEmail, String)>,
    emails_of: HashMap<AccountId, Vec<String>>,
    /// Outbound webhooks' endpoints by id, and deliveries by (endpoint, event).
    webhook_endpoints: BTreeMap<String, milepost_domain::webhooks::WebhookEndpoint>,
    deliveries: BTreeMap<(String, String), milepost_domain::webhooks::Delivery>,
    /// Tasks' Slack messages by (task, audience).
    slack_posts: BTreeMap<
        (
            String,
            milepost_domain::slack::Audience,
            milepost_domain::slack::MessageKind,
        ),
        milepost_domain::slack::SlackPost,
    >,
    /// The CRM's records by (account, what each mirrors), and its sync's values.
    crm_syncs: BTreeMap<(AccountId, Mirrored), CrmSync>,
    crm_values: BTreeMap<String, String>,
}

#[derive(Default)]
pub struct InMemoryStore {
    tables: Mutex<Tables>,
    /// Items read by `due_milestones`, to show the sweep never scans.
    due_items_read: std::sync::atomic::AtomicU64,
    /// Items read by `heads_up_milestones`.
    heads_up_items_read: std::sync::atomic::AtomicU64,
    /// Refuse items DynamoDB would refuse as too large (`sized_like_dynamodb`).
    item_limit: Option<usize>,
    /// Reads of these accounts that fail, as a store outage would, before
    /// they work again (`fail_account_reads`).
    failing_account_reads: Mutex<HashMap<AccountId, u32>>,
}

impl InMemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// For tests: the next `times` reads of `account` fail as an outage of
    /// the store would (`StoreError::Backend`), then reads work again.
    pub fn fail_account_reads(&self, account: &AccountId, times: u32) {
        self.failing_account_reads
            .lock()
            .expect("store lock")
            .insert(account.clone(), times);
    }

    /// A store that refuses, as DynamoDB does, any milestone, account or
    /// parked event whose item would exceed 400 KB (`StoreError::Invalid`,
    /// nothing changed). Sizing every write costs a serialisation, so the
    /// demo, the bench and the volume test go without; the store contract and
    /// the webhook suite use it to show no item ever gets there.
    pub fn sized_like_dynamodb() -> Self {
        Self::with_item_limit(limits::MAX_ITEM_BYTES)
    }

    /// A store that refuses items over `bytes` (as `stored_size` counts them).
    pub fn with_item_limit(bytes: usize) -> Self {
        Self {
            item_limit: Some(bytes),
            ..Self::default()
        }
    }

    /// `Invalid` if `value` would be an item over the limit, if there is one.
    fn check_fits<T: serde::Serialize>(&self, what: &str, value: &T) -> StoreResult<()> {
        let Some(limit) = self.item_limit else { return Ok(()) };
        let size = limits::stored_size(value);
        if size > limit {
            return Err(StoreError::Invalid(format!(
                "{what} item of {size} bytes exceeds the {limit}-byte item size limit"
            )));
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().expect("store lock poisoned")
    }

    pub fn due_items_read(&self) -> u64 {
        self.due_items_read.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn heads_up_items_read(&self) -> u64 {
        self.heads_up_items_read.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Every tracked milestone, for reports.
    pub fn all_milestones(&self) -> Vec<TrackedMilestone> {
        self.lock()
            .milestones
            .values()
            .flat_map(|ms| ms.iter().cloned())
            .collect()
    }

    /// Every task, oldest first: the demo's listing (the stores' own
    /// listings go by owner or status).
    pub fn all_tasks(&self) -> Vec<CsmTask> {
        self.tasks_where(|_| true)
    }

    /// The tasks `keep` keeps, oldest first, as the indexes order them.
    fn tasks_where(&self, keep: impl Fn(&CsmTask) -> bool) -> Vec<CsmTask> {
        let mut tasks: Vec<CsmTask> = self.lock().tasks.values().filter(|t| keep(t)).cloned().collect();
        tasks.sort_by(|a, b| (a.created_at(), &a.id()).cmp(&(b.created_at(), &b.id())));
        tasks
    }

    /// The tasks created after the first `first` ones, in creation order:
    /// what the demo's people have not seen yet, without copying every task.
    pub fn tasks_opened_from(&self, first: usize) -> Vec<CsmTask> {
        let t = self.lock();
        t.task_order
            .iter()
            .skip(first)
            .filter_map(|id| t.tasks.get(id).cloned())
            .collect()
    }

    pub fn account_count(&self) -> usize {
        self.lock().accounts.len()
    }

    pub fn parked_total(&self) -> usize {
        self.lock().parked.values().map(BTreeMap::len).sum()
    }
}

/// What the console shows of a store, kept in a file: `milepost demo`
/// writes it beside its outbox and `milepost console` serves it. Accounts,
/// maps, milestones, activity, tasks, pauses, the escalation log and the
/// leaders' queues and the kept portfolio; not the send ledger, dedupe
/// records, contacts or parked events.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct StoreSnapshot {
    /// The store's moment: the demo's clock when it ended.
    pub now: Timestamp,
    pub accounts: Vec<Account>,
    pub maps: Vec<MilestoneMap>,
    pub milestones: Vec<TrackedMilestone>,
    pub activity: Vec<AccountActivity>,
    /// In the order they were created.
    pub tasks: Vec<CsmTask>,
    pub pauses: Vec<(AccountId, CustomerEmailPause)>,
    pub log: Vec<EscalationLogEntry>,
    pub leader_queues: Vec<LeaderQueue>,
    /// The kept portfolio (`portfolio_keeper`): each account's entry, and
    /// when it was last refreshed as a whole.
    #[serde(default)]
    pub portfolio: Vec<(AccountId, Option<milepost_domain::PortfolioRow>, Timestamp)>,
    #[serde(default)]
    pub portfolio_refreshed: Option<Timestamp>,
    /// The discovery result the maps page shows.
    #[serde(default)]
    pub discovery: Option<milepost_domain::discovery::KeptDiscovery>,
    /// The simulator's comparison the quarterly review shows.
    #[serde(default)]
    pub comparison: Option<milepost_domain::map_review::KeptComparison>,
    /// Every version of every account's success plan.
    #[serde(default)]
    pub success_plans: Vec<milepost_domain::SuccessPlan>,
    /// The results page's kept views, by name.
    #[serde(default)]
    pub results: Vec<(String, Timestamp, String)>,
    /// Sent emails' copies, for the accounts' pages.
    #[serde(default)]
    pub emails: Vec<(milepost_domain::SentEmail, String)>,
}

impl InMemoryStore {
    /// The store's contents as `StoreSnapshot` keeps them, at `now`.
    pub fn snapshot(&self, now: Timestamp) -> StoreSnapshot {
        let t = self.lock();
        let mut accounts: Vec<Account> = t.accounts.values().map(|a| (**a).clone()).collect();
        accounts.sort_by(|a, b| a.id.cmp(&b.id));
        let mut milestones: Vec<TrackedMilestone> = t.milestones.values().flatten().cloned().collect();
        milestones.sort_by(|a, b| (a.account_id(), a.milestone_id()).cmp(&(b.account_id(), b.milestone_id())));
        let mut activity: Vec<AccountActivity> = t.activity.values().cloned().collect();
        activity.sort_by(|a, b| a.account_id.cmp(&b.account_id));
        let mut pauses: Vec<(AccountId, CustomerEmailPause)> =
            t.pauses.iter().map(|(id, p)| (id.clone(), p.clone())).collect();
        pauses.sort_by(|a, b| a.0.cmp(&b.0));
        let mut leader_queues: Vec<LeaderQueue> = t.leader_queues.values().cloned().collect();
        leader_queues.sort_by(|a, b| a.leader.cmp(&b.leader));
        StoreSnapshot {
            now,
            accounts,
            maps: t.maps.clone(),
            milestones,
            activity,
            tasks: t.task_order.iter().filter_map(|id| t.tasks.get(id).cloned()).collect(),
            pauses,
            log: t.log.values().flatten().cloned().collect(),
            leader_queues,
            portfolio: t
                .portfolio
                .iter()
                .map(|(id, (row, as_of))| (id.clone(), row.clone(), *as_of))
                .collect(),
            portfolio_refreshed: t.portfolio_refreshed,
            discovery: t.discovery.clone(),
            comparison: t.comparison.clone(),
            success_plans: t.success_plans.values().flatten().cloned().collect(),
            results: t
                .results
                .iter()
                .map(|(name, (at, json))| (name.clone(), *at, json.clone()))
                .collect(),
            emails: {
                let mut emails: Vec<(milepost_domain::SentEmail, String)> = t.emails.values().cloned().collect();
                emails.sort_by(|a, b| (a.0.date, &a.0.key).cmp(&(b.0.date, &b.0.key)));
                emails
            },
        }
    }

    /// A store holding `snapshot`, its indexes rebuilt.
    pub fn from_snapshot(snapshot: StoreSnapshot) -> InMemoryStore {
        let store = InMemoryStore::new();
        {
            let mut t = store.lock();
            for account in snapshot.accounts {
                t.accounts.insert(account.id.clone(), Arc::new(account));
            }
            t.maps = snapshot.maps;
            for m in snapshot.milestones {
                t.index(None, &m);
                let ms = t.milestones.entry(m.account_id().clone()).or_default();
                let at = ms.partition_point(|x| x.milestone_id() < m.milestone_id());
                ms.insert(at, m);
            }
            for a in snapshot.activity {
                t.activity.insert(a.account_id.clone(), a);
            }
            for (id, row, as_of) in snapshot.portfolio {
                t.portfolio.insert(id, (row, as_of));
            }
            t.portfolio_refreshed = snapshot.portfolio_refreshed;
            t.discovery = snapshot.discovery;
            t.comparison = snapshot.comparison;
            for plan in snapshot.success_plans {
                t.success_plans.entry(plan.account_id.clone()).or_default().push(plan);
            }
            for (name, at, json) in snapshot.results {
                t.results.insert(name, (at, json));
            }
            for (sent, html) in snapshot.emails {
                t.archive(sent, html);
            }
            for task in snapshot.tasks {
                t.task_order.push(task.id().to_owned());
                t.tasks.insert(task.id().to_owned(), task);
            }
            t.pauses = snapshot.pauses.into_iter().collect();
            for entry in snapshot.log {
                t.log_keys.insert(entry.key.clone());
                t.log.entry(entry.account_id.clone()).or_default().push(entry);
            }
            for q in snapshot.leader_queues {
                t.leader_queues.insert(q.leader.as_str().to_lowercase(), q);
            }
        }
        store
    }
}

fn due_key(m: &TrackedMilestone) -> DueKey {
    (m.due_at(), m.account_id().clone(), m.milestone_id().to_owned())
}

/// `m`'s entry in the heads-up index, if it has one.
fn heads_up_key(m: &TrackedMilestone) -> Option<DueKey> {
    m.heads_up_index_at()
        .map(|at| (at, m.account_id().clone(), m.milestone_id().to_owned()))
}

/// One page of `index` up to `until`, after `after` (a cursor).
fn index_page(
    t: &Tables,
    index: &BTreeSet<DueKey>,
    until: Timestamp,
    after: Option<String>,
    limit: usize,
    read: &std::sync::atomic::AtomicU64,
) -> StoreResult<Page<TrackedMilestone>> {
    let lower = match &after {
        Some(cursor) => Bound::Excluded(decode_cursor(cursor)?),
        None => Bound::Unbounded,
    };
    let mut items = Vec::new();
    let mut last = None;
    for key in index.range((lower, Bound::Unbounded)) {
        if key.0 > until {
            break;
        }
        if items.len() == limit {
            return Ok(Page {
                items,
                next: last.map(encode_cursor),
            });
        }
        let m = t
            .milestone(key.1.as_str(), &key.2)
            .expect("an index points at a milestone");
        read.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        items.push(m.clone());
        last = Some(key);
    }
    Ok(Page { items, next: None })
}

/// The due-index cursor: the last key returned, as text.
fn encode_cursor(k: &DueKey) -> String {
    format!("{}|{}|{}", k.0.timestamp_micros(), k.1, k.2)
}

fn decode_cursor(s: &str) -> StoreResult<DueKey> {
    let mut parts = s.splitn(3, '|');
    let bad = || StoreError::backend(format!("bad cursor {s:?}"));
    let micros: i64 = parts.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    let at = chrono::DateTime::from_timestamp_micros(micros).ok_or_else(bad)?;
    let account = parts.next().ok_or_else(bad)?;
    let milestone = parts.next().ok_or_else(bad)?;
    Ok((at, AccountId::new(account), milestone.to_string()))
}

/// Where milestone `id` is, or would go, in an account's id-ordered milestones.
fn position(milestones: &[TrackedMilestone], id: &str) -> Result<usize, usize> {
    milestones.binary_search_by(|m| m.milestone_id().cmp(id))
}

impl Tables {
    fn archive(&mut self, sent: milepost_domain::SentEmail, html: String) {
        if self.emails.contains_key(&sent.key) {
            return;
        }
        for account in &sent.accounts {
            self.emails_of
                .entry(account.clone())
                .or_default()
                .push(sent.key.clone());
        }
        self.emails.insert(sent.key.clone(), (sent, html));
    }

    fn milestone(&self, account: &str, milestone_id: &str) -> Option<&TrackedMilestone> {
        let ms = self.milestones.get(account)?;
        ms.get(position(ms, milestone_id).ok()?)
    }

    /// Whether the account's dedupe record of `event_id` is live at `now`.
    fn dedupe_live(&mut self, account: &AccountId, event_id: &str, now: Timestamp) -> bool {
        // Expired records are dropped about daily, so memory follows the TTL, not history.
        if self
            .dedupe_purged_at
            .is_none_or(|last| now - last > chrono::Duration::days(1))
        {
            self.dedupe.retain(|_, records| {
                records.retain(|_, expires| *expires > now);
                !records.is_empty()
            });
            self.dedupe_purged_at = Some(now);
        }
        self.dedupe
            .get(account.as_str())
            .and_then(|records| records.get(event_id))
            .is_some_and(|expires| *expires > now)
    }

    fn remember_event(&mut self, account: &AccountId, event_id: &str, expires_at: Timestamp) {
        let records = match self.dedupe.get_mut(account.as_str()) {
            Some(records) => records,
            None => self.dedupe.entry(account.clone()).or_default(),
        };
        records.insert(event_id.to_string(), expires_at);
    }

    /// Keeps both indexes true to `m`, written over `before` (if it was stored).
    fn index(&mut self, before: Option<&TrackedMilestone>, m: &TrackedMilestone) {
        if m.awaits_sweep() {
            self.due.insert(due_key(m));
        } else {
            self.due.remove(&due_key(m));
        }
        if let Some(old) = before.and_then(heads_up_key) {
            self.heads_up.remove(&old);
        }
        if let Some(key) = heads_up_key(m) {
            self.heads_up.insert(key);
        }
        let key = (m.account_id().clone(), m.milestone_id().to_owned());
        if MissStage::of(m).is_some() {
            self.open_misses.insert(key);
        } else {
            self.open_misses.remove(&key);
        }
    }
}

#[async_trait]
impl AccountStore for InMemoryStore {
    async fn put_account(&self, account: &Account) -> StoreResult<()> {
        self.check_fits("account", account)?;
        self.lock()
            .accounts
            .insert(account.id.clone(), Arc::new(account.clone()));
        Ok(())
    }
    async fn get_account(&self, id: &AccountId) -> StoreResult<Option<Arc<Account>>> {
        if let Some(left) = self.failing_account_reads.lock().expect("store lock").get_mut(id) {
            if *left > 0 {
                *left -= 1;
                return Err(StoreError::backend("the store is unavailable (a test's fault)"));
            }
        }
        Ok(self.lock().accounts.get(id).cloned())
    }
    async fn replace_account(&self, account: &Account, expected: Option<&Account>) -> StoreResult<bool> {
        self.check_fits("account", account)?;
        let mut t = self.lock();
        let stored = t.accounts.get(&account.id).map(|a| a.revision());
        if stored != expected.map(|a| a.revision()) {
            return Ok(false);
        }
        t.accounts.insert(account.id.clone(), Arc::new(account.clone()));
        Ok(true)
    }
}

#[async_trait]
impl MapStore for InMemoryStore {
    async fn put_map(&self, map: &MilestoneMap) -> StoreResult<()> {
        let mut t = self.lock();
        t.maps.retain(|m| (m.segment, m.tenure) != (map.segment, map.tenure));
        t.maps.push(map.clone());
        Ok(())
    }
    async fn maps_for(&self, segment: Segment, tenure: Tenure) -> StoreResult<Vec<MilestoneMap>> {
        Ok(self
            .lock()
            .maps
            .iter()
            .filter(|m| m.specificity(segment, tenure).is_some())
            .cloned()
            .collect())
    }
}

#[async_trait]
impl MilestoneStore for InMemoryStore {
    async fn create_milestone(&self, m: &TrackedMilestone) -> StoreResult<bool> {
        self.check_fits("milestone", m)?;
        let mut t = self.lock();
        if t.milestone(m.account_id().as_str(), m.milestone_id()).is_some() {
            return Ok(false);
        }
        let mut stored = m.clone();
        stored.version = 1;
        t.index(None, &stored);
        let ms = t.milestones.entry(m.account_id().clone()).or_default();
        let at = position(ms, m.milestone_id()).unwrap_err();
        ms.insert(at, stored);
        Ok(true)
    }

    async fn get_milestone(&self, account: &AccountId, milestone_id: &str) -> StoreResult<Option<TrackedMilestone>> {
        Ok(self.lock().milestone(account.as_str(), milestone_id).cloned())
    }

    async fn update_milestone(&self, m: &TrackedMilestone) -> StoreResult<u64> {
        self.check_fits("milestone", m)?;
        let mut t = self.lock();
        let current = t
            .milestone(m.account_id().as_str(), m.milestone_id())
            .ok_or(StoreError::Conflict)?;
        if current.version != m.version {
            return Err(StoreError::Conflict);
        }
        // The due-index entry is keyed by due time, which never changes, so it is
        // simply kept or dropped.
        let mut stored = m.clone();
        stored.version = m.version + 1;
        let before = current.clone();
        t.index(Some(&before), &stored);
        let version = stored.version;
        let ms = t.milestones.get_mut(m.account_id().as_str()).expect("checked above");
        let at = position(ms, m.milestone_id()).expect("checked above");
        ms[at] = stored;
        Ok(version)
    }

    async fn remove_milestone(&self, m: &TrackedMilestone) -> StoreResult<()> {
        let mut t = self.lock();
        let Some(current) = t.milestone(m.account_id().as_str(), m.milestone_id()).cloned() else {
            return Ok(());
        };
        if current.version != m.version {
            return Err(StoreError::Conflict);
        }
        t.due.remove(&due_key(&current));
        if let Some(key) = heads_up_key(&current) {
            t.heads_up.remove(&key);
        }
        t.open_misses
            .remove(&(current.account_id().clone(), current.milestone_id().to_owned()));
        let ms = t.milestones.get_mut(m.account_id().as_str()).expect("found above");
        let at = position(ms, m.milestone_id()).expect("found above");
        ms.remove(at);
        Ok(())
    }

    async fn milestones_of(&self, account: &AccountId) -> StoreResult<Vec<TrackedMilestone>> {
        Ok(self
            .lock()
            .milestones
            .get(account.as_str())
            .cloned()
            .unwrap_or_default())
    }

    async fn due_milestones(
        &self,
        now: Timestamp,
        after: Option<String>,
        limit: usize,
    ) -> StoreResult<Page<TrackedMilestone>> {
        let t = self.lock();
        index_page(&t, &t.due, now, after, limit, &self.due_items_read)
    }

    async fn heads_up_milestones(
        &self,
        now: Timestamp,
        after: Option<String>,
        limit: usize,
    ) -> StoreResult<Page<TrackedMilestone>> {
        let t = self.lock();
        index_page(&t, &t.heads_up, now, after, limit, &self.heads_up_items_read)
    }
}

#[async_trait]
impl DedupeStore for InMemoryStore {
    async fn seen(&self, account: &AccountId, event_id: &str, now: Timestamp) -> StoreResult<bool> {
        Ok(self.lock().dedupe_live(account, event_id, now))
    }
    async fn remember(&self, account: &AccountId, event_id: &str, expires_at: Timestamp) -> StoreResult<()> {
        self.lock().remember_event(account, event_id, expires_at);
        Ok(())
    }
}

#[async_trait]
impl ParkingStore for InMemoryStore {
    async fn park(&self, event: &ProductEvent) -> StoreResult<()> {
        self.check_fits("parked event", event)?;
        self.lock()
            .parked
            .entry(event.account_id.clone())
            .or_default()
            .insert(event.id.clone(), event.clone());
        Ok(())
    }
    async fn parked_for(&self, account: &AccountId) -> StoreResult<Vec<ProductEvent>> {
        Ok(self
            .lock()
            .parked
            .get(account)
            .map(|p| p.values().cloned().collect())
            .unwrap_or_default())
    }
    async fn unpark(&self, account: &AccountId, event_id: &str) -> StoreResult<()> {
        let mut t = self.lock();
        if let Some(p) = t.parked.get_mut(account) {
            p.remove(event_id);
            if p.is_empty() {
                t.parked.remove(account);
            }
        }
        Ok(())
    }
    async fn parked_count(&self, account: &AccountId, up_to: usize) -> StoreResult<usize> {
        Ok(self.lock().parked.get(account).map_or(0, BTreeMap::len).min(up_to))
    }
    async fn parked_accounts(&self) -> StoreResult<Vec<(AccountId, usize)>> {
        let mut accounts: Vec<_> = self.lock().parked.iter().map(|(a, p)| (a.clone(), p.len())).collect();
        accounts.sort();
        Ok(accounts)
    }
}

#[async_trait]
impl ActivityStore for InMemoryStore {
    async fn activity(&self, account: &AccountId) -> StoreResult<AccountActivity> {
        Ok(self
            .lock()
            .activity
            .get(account)
            .cloned()
            .unwrap_or_else(|| AccountActivity::new(account.clone())))
    }
}

#[async_trait]
impl EventStore for InMemoryStore {
    /// Under one lock, in place: the account's milestones are handed to
    /// `AccountState::apply_all` as they are stored, so nothing is copied
    /// for one event; only what it reports changed gets a new version and its
    /// due-index entry updated. With an item limit, a copy is kept to undo
    /// everything on a refusal or an item too large, as DynamoDB's transaction
    /// fails as a whole. Without one (the demo), no copy is made on the hot
    /// path: a refusal, which only a bug in Milepost causes, leaves what the
    /// events before it did to the progress in place (as for one event
    /// before), and applying them again changes nothing.
    async fn apply_product_events(
        &self,
        account_id: &AccountId,
        events: &[ProductEvent],
        now: Timestamp,
        remember_until: Timestamp,
        claimant: &str,
    ) -> StoreResult<EventsApplied> {
        let mut t = self.lock();
        let Some(account) = t.accounts.get(account_id.as_str()).cloned() else {
            return Ok(EventsApplied::UnknownAccount);
        };
        let mut duplicate: Vec<bool> = events.iter().map(|e| t.dedupe_live(account_id, &e.id, now)).collect();
        let Tables {
            milestones,
            activity,
            due,
            heads_up,
            open_misses,
            ..
        } = &mut *t;
        // Looked up by `&str` first: no key is cloned for an account seen before.
        let milestones = match milestones.get_mut(account.id.as_str()) {
            Some(ms) => ms,
            None => milestones.entry(account.id.clone()).or_default(),
        };
        if duplicate.iter().all(|d| *d) {
            return Ok(EventsApplied::Known {
                account,
                duplicate,
                announcements: Announcements::owed(milestones),
            });
        }
        let activity = match activity.get_mut(account.id.as_str()) {
            Some(a) => a,
            None => activity
                .entry(account.id.clone())
                .or_insert_with(|| AccountActivity::new(account.id.clone())),
        };
        let fresh = events.iter().zip(&duplicate).filter(|(_, d)| !**d).map(|(e, _)| e);
        let before = self
            .item_limit
            .is_some()
            .then(|| (milestones.clone(), activity.clone()));
        let mut state = AccountState {
            account: &account,
            activity,
            milestones,
        };
        let applied = state.apply_all(fresh, now, claimant);
        let fits = applied
            .as_ref()
            .map_err(|e| StoreError::Illegal(e.clone()))
            .and_then(|changes| {
                changes
                    .milestones
                    .iter()
                    .try_for_each(|&i| self.check_fits("milestone", &milestones[i]))
            });
        if let Err(error) = fits {
            if let Some((milestones_before, activity_before)) = before {
                *milestones = milestones_before;
                *activity = activity_before;
            }
            return Err(error);
        }
        let changes = applied.expect("checked above");
        for &i in &changes.milestones {
            let m = &mut milestones[i];
            m.version += 1;
            if !m.awaits_sweep() {
                due.remove(&due_key(m));
            }
            // An event only ever reaches a miss: it may leave the open misses, never join them.
            if MissStage::of(m).is_none() {
                open_misses.remove(&(m.account_id().clone(), m.milestone_id().to_owned()));
            }
            // An event changes a milestone's status, never its heads-up time:
            // only its leaving the index needs doing.
            if m.heads_up_index_at().is_none() {
                if let Some(at) = m.heads_up_key_time() {
                    heads_up.remove(&(at, m.account_id().clone(), m.milestone_id().to_owned()));
                }
            }
        }
        let announcements = Announcements::of_batch(&changes, milestones);
        let remembered = changes.to_remember(events, &mut duplicate);
        for id in remembered {
            t.remember_event(account_id, id, remember_until);
        }
        Ok(EventsApplied::Known {
            account,
            duplicate,
            announcements,
        })
    }
}

#[async_trait]
impl TaskStore for InMemoryStore {
    async fn create_task(&self, task: &CsmTask) -> StoreResult<bool> {
        self.check_fits("task", task)?;
        let mut t = self.lock();
        if t.tasks.contains_key(task.id()) {
            return Ok(false);
        }
        let mut stored = task.clone();
        stored.version = 1;
        t.tasks.insert(task.id().to_owned(), stored);
        t.task_order.push(task.id().to_owned());
        Ok(true)
    }
    async fn get_task(&self, id: &str) -> StoreResult<Option<CsmTask>> {
        Ok(self.lock().tasks.get(id).cloned())
    }
    async fn update_task(&self, task: &CsmTask) -> StoreResult<u64> {
        self.check_fits("task", task)?;
        let mut t = self.lock();
        let Some(slot) = t.tasks.get_mut(task.id()) else {
            return Err(StoreError::Conflict);
        };
        if slot.version != task.version {
            return Err(StoreError::Conflict);
        }
        *slot = task.clone();
        slot.version = task.version + 1;
        Ok(slot.version)
    }
    async fn tasks_for_owner(&self, owner_email: &str, status: Option<TaskStatus>) -> StoreResult<Vec<CsmTask>> {
        Ok(self
            .tasks_where(|task| task.brief().owner_email == owner_email && status.is_none_or(|s| task.status() == s)))
    }
    async fn tasks_with_status(&self, status: TaskStatus) -> StoreResult<Vec<CsmTask>> {
        Ok(self.tasks_where(|task| task.status() == status))
    }
    async fn snoozes_over(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<CsmTask>> {
        let mut over = self.tasks_where(|task| {
            task.status() == TaskStatus::Snoozed && task.snoozed_until().is_some_and(|until| until <= now)
        });
        over.sort_by(|a, b| (a.snoozed_until(), &a.id()).cmp(&(b.snoozed_until(), &b.id())));
        over.truncate(limit);
        Ok(over)
    }
}

#[async_trait]
impl PauseStore for InMemoryStore {
    async fn pause_customer_emails(&self, account: &AccountId, pause: &CustomerEmailPause) -> StoreResult<()> {
        self.lock().pauses.insert(account.clone(), pause.clone());
        Ok(())
    }
    async fn customer_email_pause(&self, account: &AccountId) -> StoreResult<Option<CustomerEmailPause>> {
        Ok(self.lock().pauses.get(account.as_str()).cloned())
    }
}

#[async_trait]
impl ContactStore for InMemoryStore {
    async fn contact(&self, fingerprint: &str) -> StoreResult<Option<ContactRecord>> {
        Ok(self.lock().contacts.get(fingerprint).cloned())
    }
    async fn save_contact(&self, fingerprint: &str, contact: &ContactRecord) -> StoreResult<u64> {
        let mut t = self.lock();
        let stored = t.contacts.get(fingerprint).map_or(0, |c| c.version);
        if stored != contact.version {
            return Err(StoreError::Conflict);
        }
        let saved = ContactRecord {
            version: contact.version + 1,
            ..contact.clone()
        };
        t.contacts.insert(fingerprint.to_string(), saved);
        Ok(contact.version + 1)
    }
    async fn suppress(&self, suppression: &Suppression) -> StoreResult<Option<Suppression>> {
        let mut t = self.lock();
        match t.suppressed.entry(suppression_key(&suppression.email)) {
            std::collections::btree_map::Entry::Occupied(earlier) => Ok(Some(earlier.get().clone())),
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(suppression.clone());
                Ok(None)
            }
        }
    }
    async fn suppression(&self, email: &EmailAddress) -> StoreResult<Option<Suppression>> {
        Ok(self.lock().suppressed.get(&suppression_key(email)).cloned())
    }
    async fn suppressions(&self) -> StoreResult<Vec<Suppression>> {
        Ok(self.lock().suppressed.values().cloned().collect())
    }
    async fn unsuppress(&self, email: &EmailAddress) -> StoreResult<bool> {
        Ok(self.lock().suppressed.remove(&suppression_key(email)).is_some())
    }
}

#[async_trait]
impl LeaderQueueStore for InMemoryStore {
    async fn leader_queue(&self, leader: &EmailAddress) -> StoreResult<Option<LeaderQueue>> {
        Ok(self.lock().leader_queues.get(&leader.as_str().to_lowercase()).cloned())
    }
    async fn save_leader_queue(&self, queue: &LeaderQueue) -> StoreResult<u64> {
        let mut t = self.lock();
        let key = queue.leader.as_str().to_lowercase();
        if t.leader_queues.get(&key).map_or(0, |q| q.version) != queue.version {
            return Err(StoreError::Conflict);
        }
        let saved = LeaderQueue {
            version: queue.version + 1,
            ..queue.clone()
        };
        t.leader_queues.insert(key, saved);
        Ok(queue.version + 1)
    }
}

#[async_trait]
impl HeldBackListStore for InMemoryStore {
    async fn held_back_list(&self, owner: &EmailAddress) -> StoreResult<Option<HeldBackList>> {
        Ok(self.lock().held_back_lists.get(&owner.as_str().to_lowercase()).cloned())
    }
    async fn save_held_back_list(&self, list: &HeldBackList) -> StoreResult<u64> {
        let mut t = self.lock();
        let key = list.owner.email.as_str().to_lowercase();
        if t.held_back_lists.get(&key).map_or(0, |d| d.version) != list.version {
            return Err(StoreError::Conflict);
        }
        let saved = HeldBackList {
            version: list.version + 1,
            ..list.clone()
        };
        t.held_back_lists.insert(key, saved);
        Ok(list.version + 1)
    }
    async fn held_back_lists(&self) -> StoreResult<Vec<HeldBackList>> {
        Ok(self.lock().held_back_lists.values().cloned().collect())
    }
}

#[async_trait]
impl EscalationLog for InMemoryStore {
    async fn append_log(&self, entry: &EscalationLogEntry) -> StoreResult<bool> {
        let mut t = self.lock();
        if !t.log_keys.insert(entry.key.clone()) {
            return Ok(false);
        }
        t.log.entry(entry.account_id.clone()).or_default().push(entry.clone());
        Ok(true)
    }
    async fn log_of(&self, account: &AccountId) -> StoreResult<Vec<EscalationLogEntry>> {
        let mut entries = self.lock().log.get(account).cloned().unwrap_or_default();
        entries.sort_by_key(|e| e.at); // stable: same-instant entries keep their order
        Ok(entries)
    }
}

#[async_trait]
impl SendLedger for InMemoryStore {
    async fn archive_email(&self, sent: &milepost_domain::SentEmail, html: &str) -> StoreResult<()> {
        self.check_fits("sent email", &html)?;
        self.lock().archive(sent.clone(), html.to_string());
        Ok(())
    }

    async fn archived_email(&self, key: &str) -> StoreResult<Option<(milepost_domain::SentEmail, String)>> {
        Ok(self.lock().emails.get(key).cloned())
    }

    async fn claim_send(&self, key: &SendKey, claim: &SendClaim) -> StoreResult<Option<SendRecord>> {
        let mut t = self.lock();
        if let Some(existing) = t.sends.get(key) {
            return Ok((!existing.is_held_by(claim)).then(|| existing.clone()));
        }
        t.sends.insert(key.clone(), SendRecord::claimed(claim));
        Ok(None)
    }
    async fn send_record(&self, key: &SendKey) -> StoreResult<Option<SendRecord>> {
        Ok(self.lock().sends.get(key).cloned())
    }
    async fn settle_send(&self, key: &SendKey, record: &SendRecord) -> StoreResult<()> {
        let mut t = self.lock();
        if matches!(record, SendRecord::Unknown { .. }) {
            t.unsettled.insert(key.clone());
        }
        t.sends.insert(key.clone(), record.clone());
        Ok(())
    }
    async fn release_send(&self, key: &SendKey, claim: &SendClaim) -> StoreResult<()> {
        let mut t = self.lock();
        if t.sends.get(key).is_some_and(|r| r.is_held_by(claim)) {
            t.sends.remove(key);
        }
        Ok(())
    }
    async fn replace_send(&self, key: &SendKey, expected: &SendRecord, record: &SendRecord) -> StoreResult<bool> {
        let mut t = self.lock();
        if t.sends.get(key) != Some(expected) {
            return Ok(false);
        }
        t.sends.insert(key.clone(), record.clone());
        Ok(true)
    }
    async fn unsettled_sends(&self, limit: usize) -> StoreResult<Vec<SendKey>> {
        Ok(self.lock().unsettled.iter().take(limit).cloned().collect())
    }
    async fn forget_unsettled(&self, key: &SendKey) -> StoreResult<()> {
        self.lock().unsettled.remove(key);
        Ok(())
    }
}

#[async_trait]
impl SendReceipts for InMemoryStore {
    async fn record_receipt(&self, receipt: &SendReceipt) -> StoreResult<()> {
        let mut t = self.lock();
        t.receipts.entry(receipt.tag.clone()).or_insert_with(|| receipt.clone());
        t.stream_watermark = t.stream_watermark.max(Some(receipt.mail_at));
        Ok(())
    }
    async fn receipt(&self, tag: &str) -> StoreResult<Option<SendReceipt>> {
        Ok(self.lock().receipts.get(tag).cloned())
    }
    async fn stream_watermark(&self) -> StoreResult<Option<Timestamp>> {
        Ok(self.lock().stream_watermark)
    }
}

/// Accounts per page of `records_page`, each with its milestones.
const RECORD_PAGE_ACCOUNTS: usize = 200;

#[async_trait]
impl milepost_app::ports::RecordScan for InMemoryStore {
    async fn records_page(&self, after: Option<String>) -> StoreResult<Page<milepost_app::ports::Record>> {
        use milepost_app::ports::Record;
        // The cursor is the last account of the page before: the next page is
        // the accounts after it, in id order, found without sorting them all.
        let after = after.map(AccountId::new);
        let tables = self.lock();
        let mut ids: Vec<&AccountId> = tables
            .accounts
            .keys()
            .chain(tables.milestones.keys())
            .filter(|id| after.as_ref().is_none_or(|a| *id > a))
            .collect();
        let more = ids.len() > RECORD_PAGE_ACCOUNTS;
        if more {
            ids.select_nth_unstable(RECORD_PAGE_ACCOUNTS - 1);
            ids.truncate(RECORD_PAGE_ACCOUNTS);
        }
        ids.sort_unstable();
        ids.dedup();
        // The maps come with the first page.
        let mut items: Vec<Record> = match after {
            None => tables.maps.iter().map(|m| Record::Map(Box::new(m.clone()))).collect(),
            Some(_) => Vec::new(),
        };
        for id in &ids {
            if let Some(a) = tables.accounts.get(*id) {
                items.push(Record::Account(a.clone()));
            }
            for m in tables.milestones.get(*id).into_iter().flatten() {
                items.push(Record::Milestone(Box::new(m.clone())));
            }
        }
        Ok(Page {
            items,
            next: more.then(|| ids.last().map(|id| id.to_string())).flatten(),
        })
    }
}

#[async_trait]
impl OpenMissIndex for InMemoryStore {
    async fn open_misses(&self) -> StoreResult<Vec<TrackedMilestone>> {
        let t = self.lock();
        let mut found = Vec::with_capacity(t.open_misses.len());
        for (account, milestone_id) in &t.open_misses {
            let Some(ms) = t.milestones.get(account) else { continue };
            if let Ok(i) = ms.binary_search_by(|m| m.milestone_id().cmp(milestone_id)) {
                found.push(ms[i].clone());
            }
        }
        Ok(found)
    }
}

#[async_trait]
impl KeptPortfolioStore for InMemoryStore {
    async fn kept_portfolio(&self) -> StoreResult<KeptPortfolio> {
        let t = self.lock();
        Ok(KeptPortfolio {
            rows: t
                .portfolio
                .iter()
                .map(|(id, (row, as_of))| KeptRow {
                    account_id: id.clone(),
                    row: row.clone(),
                    as_of: *as_of,
                })
                .collect(),
            refreshed_at: t.portfolio_refreshed,
        })
    }

    async fn keep_portfolio_row(
        &self,
        account: &AccountId,
        row: Option<&milepost_domain::PortfolioRow>,
        as_of: Timestamp,
    ) -> StoreResult<bool> {
        let mut t = self.lock();
        if t.portfolio.get(account).is_some_and(|(_, kept)| *kept > as_of) {
            return Ok(false);
        }
        t.portfolio.insert(account.clone(), (row.cloned(), as_of));
        Ok(true)
    }

    async fn forget_portfolio_row(&self, account: &AccountId, as_of: Timestamp) -> StoreResult<()> {
        let mut t = self.lock();
        if t.portfolio.get(account).is_some_and(|(_, kept)| *kept == as_of) {
            t.portfolio.remove(account);
        }
        Ok(())
    }

    async fn portfolio_refreshed(&self, at: Timestamp) -> StoreResult<()> {
        let mut t = self.lock();
        t.portfolio_refreshed = Some(t.portfolio_refreshed.map_or(at, |before| before.max(at)));
        Ok(())
    }
}

#[async_trait]
impl ConsoleReads for InMemoryStore {
    async fn account_folder(&self, account: &AccountId) -> StoreResult<Option<AccountFolder>> {
        let t = self.lock();
        let Some(found) = t.accounts.get(account).cloned() else {
            return Ok(None);
        };
        let mut log = t.log.get(account).cloned().unwrap_or_default();
        log.sort_by_key(|e| e.at);
        Ok(Some(AccountFolder {
            account: found,
            milestones: t.milestones.get(account).cloned().unwrap_or_default(),
            activity: t
                .activity
                .get(account)
                .cloned()
                .unwrap_or_else(|| AccountActivity::new(account.clone())),
            log,
            pause: t.pauses.get(account).cloned(),
            emails: {
                let mut emails: Vec<milepost_domain::SentEmail> = t
                    .emails_of
                    .get(account)
                    .into_iter()
                    .flatten()
                    .filter_map(|key| t.emails.get(key).map(|(sent, _)| sent.clone()))
                    .collect();
                emails.sort_by(|a, b| (b.date, &b.key).cmp(&(a.date, &a.key)));
                emails
            },
        }))
    }

    async fn tasks_by_id(&self, ids: &[String]) -> StoreResult<Vec<CsmTask>> {
        let t = self.lock();
        let ids: BTreeSet<&String> = ids.iter().collect();
        Ok(ids.into_iter().filter_map(|id| t.tasks.get(id).cloned()).collect())
    }

    async fn all_maps(&self) -> StoreResult<Vec<MilestoneMap>> {
        Ok(self.lock().maps.clone())
    }
}

#[async_trait]
impl DiscoveryStore for InMemoryStore {
    async fn kept_discovery(&self) -> StoreResult<Option<milepost_domain::discovery::KeptDiscovery>> {
        Ok(self.lock().discovery.clone())
    }

    async fn keep_discovery(&self, result: &milepost_domain::discovery::KeptDiscovery) -> StoreResult<()> {
        self.check_fits("discovery result", result)?;
        self.lock().discovery = Some(result.clone());
        Ok(())
    }

    async fn kept_comparison(&self) -> StoreResult<Option<milepost_domain::map_review::KeptComparison>> {
        Ok(self.lock().comparison.clone())
    }

    async fn keep_comparison(&self, comparison: &milepost_domain::map_review::KeptComparison) -> StoreResult<()> {
        self.check_fits("simulator comparison", comparison)?;
        self.lock().comparison = Some(comparison.clone());
        Ok(())
    }
}

#[async_trait]
impl milepost_app::ports::SuccessPlanStore for InMemoryStore {
    async fn success_plan(&self, account: &AccountId) -> StoreResult<Option<milepost_domain::SuccessPlan>> {
        Ok(self.lock().success_plans.get(account).and_then(|v| v.last().cloned()))
    }

    async fn success_plan_history(&self, account: &AccountId) -> StoreResult<Vec<milepost_domain::SuccessPlan>> {
        Ok(self.lock().success_plans.get(account).cloned().unwrap_or_default())
    }

    async fn add_success_plan(&self, plan: &milepost_domain::SuccessPlan) -> StoreResult<bool> {
        self.check_fits("success plan", plan)?;
        let mut t = self.lock();
        let versions = t.success_plans.entry(plan.account_id.clone()).or_default();
        if versions.iter().any(|p| p.version == plan.version) {
            return Ok(false);
        }
        versions.push(plan.clone());
        versions.sort_by_key(|p| p.version);
        Ok(true)
    }

    async fn success_plans(&self) -> StoreResult<Vec<milepost_domain::SuccessPlan>> {
        Ok(self
            .lock()
            .success_plans
            .values()
            .filter_map(|v| v.last().cloned())
            .collect())
    }
}

#[async_trait]
impl KeptResultsStore for InMemoryStore {
    async fn kept_results(&self, name: &str) -> StoreResult<Option<(Timestamp, String)>> {
        Ok(self.lock().results.get(name).cloned())
    }

    async fn keep_results(&self, name: &str, as_of: Timestamp, json: &str) -> StoreResult<()> {
        self.check_fits("results view", &json)?;
        let mut t = self.lock();
        if t.results.get(name).is_none_or(|(kept, _)| *kept <= as_of) {
            t.results.insert(name.to_string(), (as_of, json.to_string()));
        }
        Ok(())
    }
}

#[async_trait]
impl WebhookStore for InMemoryStore {
    async fn webhook_endpoints(&self) -> StoreResult<Vec<WebhookEndpoint>> {
        Ok(self.lock().webhook_endpoints.values().cloned().collect())
    }

    async fn create_webhook_endpoint(&self, endpoint: &WebhookEndpoint) -> StoreResult<bool> {
        let mut t = self.lock();
        if t.webhook_endpoints.contains_key(&endpoint.id) {
            return Ok(false);
        }
        let mut stored = endpoint.clone();
        stored.version = 1;
        t.webhook_endpoints.insert(endpoint.id.clone(), stored);
        Ok(true)
    }

    async fn update_webhook_endpoint(&self, endpoint: &WebhookEndpoint) -> StoreResult<u64> {
        let mut t = self.lock();
        let Some(slot) = t.webhook_endpoints.get_mut(&endpoint.id) else {
            return Err(StoreError::Conflict);
        };
        if slot.version != endpoint.version {
            return Err(StoreError::Conflict);
        }
        *slot = endpoint.clone();
        slot.version = endpoint.version + 1;
        Ok(slot.version)
    }

    async fn delete_webhook_endpoint(&self, id: &str) -> StoreResult<bool> {
        Ok(self.lock().webhook_endpoints.remove(id).is_some())
    }

    async fn create_delivery(&self, delivery: &Delivery) -> StoreResult<bool> {
        self.check_fits("webhook delivery", delivery)?;
        let mut t = self.lock();
        let key = (delivery.endpoint_id.clone(), delivery.event_id.clone());
        if t.deliveries.contains_key(&key) {
            return Ok(false);
        }
        let mut stored = delivery.clone();
        stored.version = 1;
        t.deliveries.insert(key, stored);
        Ok(true)
    }

    async fn get_delivery(&self, endpoint_id: &str, event_id: &str) -> StoreResult<Option<Delivery>> {
        Ok(self
            .lock()
            .deliveries
            .get(&(endpoint_id.to_string(), event_id.to_string()))
            .cloned())
    }

    async fn update_delivery(&self, delivery: &Delivery) -> StoreResult<u64> {
        self.check_fits("webhook delivery", delivery)?;
        let mut t = self.lock();
        let Some(slot) = t
            .deliveries
            .get_mut(&(delivery.endpoint_id.clone(), delivery.event_id.clone()))
        else {
            return Err(StoreError::Conflict);
        };
        if slot.version != delivery.version {
            return Err(StoreError::Conflict);
        }
        *slot = delivery.clone();
        slot.version = delivery.version + 1;
        Ok(slot.version)
    }

    async fn due_deliveries(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<Delivery>> {
        // The in-memory twin of the sparse index: pending ones by next attempt.
        let mut due: Vec<Delivery> = self
            .lock()
            .deliveries
            .values()
            .filter(|d| d.next_at().is_some_and(|at| at <= now))
            .cloned()
            .collect();
        due.sort_by(|a, b| (a.next_at(), &a.endpoint_id, &a.event_id).cmp(&(b.next_at(), &b.endpoint_id, &b.event_id)));
        due.truncate(limit);
        Ok(due)
    }

    async fn endpoint_deliveries(&self, endpoint_id: &str) -> StoreResult<Vec<Delivery>> {
        let mut found: Vec<Delivery> = self
            .lock()
            .deliveries
            .range((endpoint_id.to_string(), String::new())..)
            .take_while(|((endpoint, _), _)| endpoint == endpoint_id)
            .map(|(_, d)| d.clone())
            .collect();
        found.sort_by(|a, b| (b.created_at, &b.event_id).cmp(&(a.created_at, &a.event_id)));
        Ok(found)
    }
}

#[async_trait]
impl SlackPostStore for InMemoryStore {
    async fn create_slack_post(&self, post: &milepost_domain::slack::SlackPost) -> StoreResult<bool> {
        let mut t = self.lock();
        let key = (post.task_id.clone(), post.audience, post.kind);
        if t.slack_posts.contains_key(&key) {
            return Ok(false);
        }
        let mut stored = post.clone();
        stored.version = 1;
        t.slack_posts.insert(key, stored);
        Ok(true)
    }

    async fn slack_posts(&self, task_id: &str) -> StoreResult<Vec<milepost_domain::slack::SlackPost>> {
        Ok(self
            .lock()
            .slack_posts
            .values()
            .filter(|p| p.task_id == task_id)
            .cloned()
            .collect())
    }

    async fn update_slack_post(&self, post: &milepost_domain::slack::SlackPost) -> StoreResult<u64> {
        let mut t = self.lock();
        let Some(slot) = t.slack_posts.get_mut(&(post.task_id.clone(), post.audience, post.kind)) else {
            return Err(StoreError::Conflict);
        };
        if slot.version != post.version {
            return Err(StoreError::Conflict);
        }
        *slot = post.clone();
        slot.version = post.version + 1;
        Ok(slot.version)
    }

    async fn due_slack_posts(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<milepost_domain::slack::SlackPost>> {
        let mut due: Vec<_> = self
            .lock()
            .slack_posts
            .values()
            .filter(|p| p.next_at().is_some_and(|at| at <= now))
            .cloned()
            .collect();
        due.sort_by(|a, b| {
            (a.next_at(), &a.task_id, a.audience, a.kind).cmp(&(b.next_at(), &b.task_id, b.audience, b.kind))
        });
        due.truncate(limit);
        Ok(due)
    }
}

#[async_trait]
impl CrmSyncStore for InMemoryStore {
    async fn create_crm_sync(&self, sync: &CrmSync) -> StoreResult<bool> {
        let mut t = self.lock();
        let key = (sync.account_id.clone(), sync.mirrored.clone());
        if t.crm_syncs.contains_key(&key) {
            return Ok(false);
        }
        t.crm_syncs.insert(
            key,
            CrmSync {
                version: 1,
                ..sync.clone()
            },
        );
        Ok(true)
    }

    async fn crm_syncs(&self, account: &AccountId) -> StoreResult<Vec<CrmSync>> {
        Ok(self
            .lock()
            .crm_syncs
            .range((account.clone(), Mirrored::Company)..)
            .take_while(|((a, _), _)| a == account)
            .map(|(_, s)| s.clone())
            .collect())
    }

    async fn update_crm_sync(&self, sync: &CrmSync) -> StoreResult<u64> {
        let mut t = self.lock();
        let Some(slot) = t.crm_syncs.get_mut(&(sync.account_id.clone(), sync.mirrored.clone())) else {
            return Err(StoreError::Conflict);
        };
        if slot.version != sync.version {
            return Err(StoreError::Conflict);
        }
        *slot = CrmSync {
            version: sync.version + 1,
            ..sync.clone()
        };
        Ok(slot.version)
    }

    async fn due_crm_syncs(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<CrmSync>> {
        let mut due: Vec<CrmSync> = self
            .lock()
            .crm_syncs
            .values()
            .filter(|s| s.next_at().is_some_and(|at| at <= now))
            .cloned()
            .collect();
        due.sort_by(|a, b| (a.next_at(), &a.account_id, &a.mirrored).cmp(&(b.next_at(), &b.account_id, &b.mirrored)));
        due.truncate(limit);
        Ok(due)
    }

    async fn listed_crm_syncs(&self, list: CrmList, limit: usize) -> StoreResult<Vec<CrmSync>> {
        Ok(self
            .lock()
            .crm_syncs
            .values()
            .filter(|s| match list {
                CrmList::Unmatched => matches!(s.state, SyncState::Unmatched { .. }),
                CrmList::Dead => matches!(s.state, SyncState::Dead { .. }),
            })
            .take(limit)
            .cloned()
            .collect())
    }

    async fn crm_value(&self, key: &str) -> StoreResult<Option<String>> {
        Ok(self.lock().crm_values.get(key).cloned())
    }

    async fn set_crm_value(&self, key: &str, value: &str) -> StoreResult<()> {
        self.lock().crm_values.insert(key.to_string(), value.to_string());
        Ok(())
    }
}
