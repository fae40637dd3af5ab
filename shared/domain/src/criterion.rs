//! Machine-checkable milestone criteria and the progress an account makes
//! towards them.
//!
//! Progress is a function of the *set* of events observed, never of their
//! order or multiplicity: every observation is keyed by its event id, and
//! each progress kind keeps only what can still change when the criterion was
//! first met. That is what makes at-least-once delivery and out-of-order
//! events safe: applying the same events twice, or in another order, gives the
//! same progress and the same achievement time.
//!
//! Progress is bounded by the criterion, never by the number of events (the
//! budgets are in docs/capacity.md): `Count` keeps the `min` earliest events,
//! `Users` one mark per user until `threshold` users are reached, `Metric`
//! two marks. A window counts whole UTC days (a 7-day window is the day of
//! the event and the six before it). `Windowed` keeps events; where users are
//! counted, `WindowedUsers` keeps per user the runs of days in which the user
//! is in every window, so a user active every day costs one run, not one mark
//! a day. On the live path both keep only what an event arriving no later
//! than `ALLOWED_LATENESS` after a newer one can still share a window with.
//! Ids and users longer than `MAX_KEY_BYTES` are kept as a digest.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{ProductEvent, Timestamp};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Criterion {
    /// The event happened at least `min` times (within any `window_days` window, if set).
    EventCount {
        event: String,
        min: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        window_days: Option<u32>,
    },
    /// At least `min` distinct users did the event (within any `window_days` window, if set).
    DistinctUsers {
        event: String,
        min: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        window_days: Option<u32>,
    },
    /// Distinct users who did the event reach `min_ratio` of the licensed seats.
    SeatRatio {
        event: String,
        min_ratio: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        window_days: Option<u32>,
    },
    /// A numeric property of the event reaches a target: agreed business outcomes.
    MetricThreshold {
        event: String,
        property: String,
        op: CompareOp,
        value: f64,
    },
    /// A CSM marks it done through the API.
    Manual,
    /// Each checkpoint of the account's own success plan, on its date: the
    /// map's milestone stands for one tracked milestone per checkpoint
    /// (`TrackedMilestone::checkpoints_of`), each a metric threshold.
    AgreedOutcome,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareOp {
    #[serde(rename = ">=", alias = "gte")]
    Gte,
    #[serde(rename = ">", alias = "gt")]
    Gt,
    #[serde(rename = "<=", alias = "lte")]
    Lte,
    #[serde(rename = "<", alias = "lt")]
    Lt,
    #[serde(rename = "==", alias = "eq")]
    Eq,
}

impl CompareOp {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            ">=" | "gte" => CompareOp::Gte,
            ">" | "gt" => CompareOp::Gt,
            "<=" | "lte" => CompareOp::Lte,
            "<" | "lt" => CompareOp::Lt,
            "==" | "eq" => CompareOp::Eq,
            _ => return None,
        })
    }

    fn symbol(self) -> &'static str {
        match self {
            CompareOp::Gte => ">=",
            CompareOp::Gt => ">",
            CompareOp::Lte => "<=",
            CompareOp::Lt => "<",
            CompareOp::Eq => "==",
        }
    }

    pub fn holds(self, actual: f64, target: f64) -> bool {
        match self {
            CompareOp::Gte => actual >= target,
            CompareOp::Gt => actual > target,
            CompareOp::Lte => actual <= target,
            CompareOp::Lt => actual < target,
            CompareOp::Eq => (actual - target).abs() < f64::EPSILON * target.abs().max(1.0),
        }
    }

    /// True when `a` is closer to meeting the target than `b`.
    fn better(self, a: f64, b: f64, target: f64) -> bool {
        match self {
            CompareOp::Gte | CompareOp::Gt => a > b,
            CompareOp::Lte | CompareOp::Lt => a < b,
            CompareOp::Eq => {
                let (da, db) = ((a - target).abs(), (b - target).abs());
                da < db || (da == db && a < b)
            }
        }
    }
}

impl Criterion {
    /// The product event this criterion listens to; `None` for manual milestones.
    pub fn event(&self) -> Option<&str> {
        match self {
            Criterion::EventCount { event, .. }
            | Criterion::DistinctUsers { event, .. }
            | Criterion::SeatRatio { event, .. }
            | Criterion::MetricThreshold { event, .. } => Some(event),
            Criterion::Manual | Criterion::AgreedOutcome => None,
        }
    }

    /// The window in whole days (at least 1), if the criterion has one.
    fn window_days(&self) -> Option<i64> {
        match self {
            Criterion::EventCount { window_days, .. }
            | Criterion::DistinctUsers { window_days, .. }
            | Criterion::SeatRatio { window_days, .. } => window_days.map(|d| i64::from(d.max(1))),
            _ => None,
        }
    }

    fn needs_user(&self) -> bool {
        matches!(self, Criterion::DistinctUsers { .. } | Criterion::SeatRatio { .. })
    }

    /// How many events (or users) meet the criterion, given the licensed seats.
    pub fn threshold(&self, licensed_seats: u32) -> u32 {
        match self {
            Criterion::EventCount { min, .. } | Criterion::DistinctUsers { min, .. } => (*min).max(1),
            Criterion::SeatRatio { min_ratio, .. } => {
                ((min_ratio * f64::from(licensed_seats)).ceil() as u32).clamp(1, MAX_MARKS as u32)
            }
            Criterion::MetricThreshold { .. } | Criterion::Manual | Criterion::AgreedOutcome => 1,
        }
    }

    /// A short human description of the target, for emails and CSM tasks.
    pub fn describe_target(&self, licensed_seats: u32) -> String {
        match self {
            Criterion::EventCount {
                event,
                min,
                window_days,
            } => match window_days {
                Some(w) => format!("{min}× {event} within {w} days"),
                None => format!("{min}× {event}"),
            },
            Criterion::DistinctUsers {
                event,
                min,
                window_days,
            } => match window_days {
                Some(w) => format!("{min} users doing {event} within {w} days"),
                None => format!("{min} users doing {event}"),
            },
            Criterion::SeatRatio { event, min_ratio, .. } => format!(
                "{:.0}% of {licensed_seats} seats doing {event} ({} users)",
                min_ratio * 100.0,
                self.threshold(licensed_seats)
            ),
            Criterion::MetricThreshold {
                property, op, value, ..
            } => format!("{property} {} {value}", op.symbol()),
            Criterion::Manual => "confirmed by the CSM".to_string(),
            Criterion::AgreedOutcome => "each checkpoint of the customer's agreed outcomes".to_string(),
        }
    }

    pub fn new_progress(&self) -> Progress {
        match self {
            Criterion::EventCount { window_days: None, .. } => Progress::Count {
                earliest: BTreeSet::new(),
            },
            Criterion::EventCount { .. } => Progress::Windowed {
                seen: BTreeSet::new(),
                reached: None,
                need: 0,
            },
            Criterion::DistinctUsers {
                window_days: Some(_), ..
            }
            | Criterion::SeatRatio {
                window_days: Some(_), ..
            } => Progress::WindowedUsers {
                runs: BTreeMap::new(),
                reached: None,
                need: 0,
            },
            Criterion::DistinctUsers { .. } | Criterion::SeatRatio { .. } => Progress::Users {
                first_by_user: BTreeMap::new(),
            },
            Criterion::MetricThreshold { .. } => Progress::Metric {
                earliest_met: None,
                best: None,
            },
            // Never tracked itself: its checkpoints are metric thresholds.
            Criterion::Manual | Criterion::AgreedOutcome => Progress::Manual { marked_at: None },
        }
    }

    /// What this criterion takes from a product event, or `None` when the event
    /// cannot advance it (another event name, no user where users count, no
    /// numeric property where a metric is tracked).
    pub fn observe(&self, event: &ProductEvent) -> Option<Observation> {
        if self.event() != Some(event.event.as_str()) {
            return None;
        }
        let value = match self {
            Criterion::MetricThreshold { property, .. } => Some(event.properties.get(property)?.as_f64()?),
            _ => None,
        };
        self.observation(
            event.timestamp,
            Arc::from(event.id.as_str()),
            event.user_id.as_deref(),
            value,
        )
    }

    /// The observation of one of this criterion's events given as parts
    /// (`value`: the tracked property, for a metric), or `None` when it cannot
    /// advance the criterion. `observe` and `milepost discover` both use it,
    /// so history is judged exactly as live events are.
    pub fn observation(
        &self,
        at: Timestamp,
        event_id: Arc<str>,
        user_id: Option<&str>,
        value: Option<f64>,
    ) -> Option<Observation> {
        let user_id: Option<Arc<str>> = user_id.filter(|u| !u.is_empty()).map(compact_key);
        let event_id = if event_id.len() > MAX_KEY_BYTES {
            compact_key(&event_id)
        } else {
            event_id
        };
        if self.needs_user() && user_id.is_none() {
            return None;
        }
        let value = match self {
            Criterion::MetricThreshold { .. } => Some(value?),
            _ => None,
        };
        Some(Observation {
            at,
            event_id,
            user_id,
            value,
        })
    }
}

/// The most events, users or runs one milestone's progress keeps: what
/// bounds its stored size (~175 bytes a mark at most, so ≤ ~260 KB of
/// DynamoDB's 400 KB item). Maps may ask for at most this many events or
/// users; a seat ratio counts at most this many users (60% of 5,000 seats is
/// reached at 1,500 active users). A window never needs more than this in
/// the window itself (fewer than `min` events, or users, until it is met);
/// past it, what is kept for late events goes first.
pub const MAX_MARKS: usize = 1_500;

/// The longest window a map may ask for.
pub const MAX_WINDOW_DAYS: u32 = 365;

/// Ids and user ids longer than this are kept as a digest in progress, so a
/// mark's size does not depend on what a sender chose for its ids.
pub const MAX_KEY_BYTES: usize = 64;

/// How late an event may arrive, after one dated later, and still count in a
/// windowed criterion: the live path keeps the days such an event can share
/// a window with, and no older ones. Documented in the README.
pub const ALLOWED_LATENESS: Duration = Duration::days(14);

/// `key` itself, or `#` and the first 128 bits of its SHA-256 when it is long.
fn compact_key(key: &str) -> Arc<str> {
    if key.len() <= MAX_KEY_BYTES {
        return Arc::from(key);
    }
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    Arc::from(format!("#{hex}"))
}

/// The part of one product event a criterion cares about.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    pub at: Timestamp,
    pub event_id: Arc<str>,
    pub user_id: Option<Arc<str>>,
    pub value: Option<f64>,
}

/// One user's run of activity in a windowed user criterion: days on which the
/// user was active, none more than `window - 1` days after the one before,
/// so the user is in every window ending from the run's first day to
/// `until`. Ordered by `from`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Coverage {
    /// The user's first event on the run's first day: a window ending that
    /// day holds the user from this moment on; one ending later, all day.
    pub from: Timestamp,
    /// The last day a window ending on it holds one of the run's events (the
    /// run's last active day + `window - 1`).
    pub until: NaiveDate,
}

impl Coverage {
    fn first_day(&self) -> NaiveDate {
        self.from.date_naive()
    }

    /// Two runs of one user are one when a window holds an event of each:
    /// each starts no later than the last window the other is in.
    fn joins(&self, other: &Coverage) -> bool {
        other.first_day() <= self.until && self.first_day() <= other.until
    }

    /// When a window ending on `day` first holds this run's user, if it ever does.
    fn in_window_ending(&self, day: NaiveDate) -> Option<Timestamp> {
        if day < self.first_day() || day > self.until {
            None
        } else if day == self.first_day() {
            Some(self.from)
        } else {
            Some(day_start(day))
        }
    }
}

/// One observed event, ordered by time then id so ties break the same way
/// everywhere. Ids are shared (`Arc<str>`): progress is copied on every read
/// and write of a milestone, and copying a shared id costs no allocation.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Mark {
    pub at: Timestamp,
    pub id: Arc<str>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct UserMark {
    pub at: Timestamp,
    pub id: Arc<str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<Arc<str>>,
}

/// The best value seen so far for a metric criterion, and when it was seen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BestValue {
    pub value: f64,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Progress {
    /// The `min` earliest events: later ones can never change when it was met.
    Count {
        earliest: BTreeSet<Mark>,
    },
    /// The events up to the moment it was met, and that moment for the
    /// threshold `need`, kept so each event only rescans the windows it falls
    /// in. (Windowed user criteria stored before `WindowedUsers` also have
    /// this form, with users; the first event they take upgrades them.)
    Windowed {
        seen: BTreeSet<UserMark>,
        #[serde(default)]
        reached: Option<Timestamp>,
        #[serde(default)]
        need: u32,
    },
    /// Where users are counted in a window: each user's runs of activity
    /// (`Coverage`), and the first moment `need` users were in one window.
    /// What a window ending on a day holds is the users with a run covering
    /// it, so a daily user costs one run however long the window.
    WindowedUsers {
        runs: BTreeMap<Arc<str>, Vec<Coverage>>,
        #[serde(default)]
        reached: Option<Timestamp>,
        #[serde(default)]
        need: u32,
    },
    /// Each user's first qualifying event.
    Users {
        first_by_user: BTreeMap<Arc<str>, Mark>,
    },
    Metric {
        earliest_met: Option<Mark>,
        best: Option<BestValue>,
    },
    Manual {
        marked_at: Option<Timestamp>,
    },
}

/// A count criterion keeps its `threshold` earliest events.
fn observe_count(earliest: &mut BTreeSet<Mark>, criterion: &Criterion, obs: &Observation, licensed_seats: u32) -> bool {
    let mark = Mark {
        at: obs.at,
        id: obs.event_id.clone(),
    };
    if earliest.contains(&mark) {
        return false;
    }
    let keep = criterion.threshold(licensed_seats) as usize;
    if earliest.len() >= keep && earliest.last().is_some_and(|last| *last < mark) {
        return false; // later than the `keep` earliest: cannot matter
    }
    earliest.insert(mark);
    while earliest.len() > keep {
        earliest.pop_last();
    }
    true
}

/// Events within a window: those that can still share a window with a later
/// one, up to the first moment the criterion was met.
fn observe_windowed(
    seen: &mut BTreeSet<UserMark>,
    reached: &mut Option<Timestamp>,
    need: &mut u32,
    criterion: &Criterion,
    obs: &Observation,
    licensed_seats: u32,
    lateness: Option<Duration>,
) -> bool {
    let threshold = criterion.threshold(licensed_seats);
    let mut changed = false;
    if *need != threshold {
        // First use, or the seat count moved the threshold: rescan everything.
        *need = threshold;
        *reached = windowed_reached_at(criterion, seen, threshold as usize);
        changed = true;
    }
    let floor = lateness.and_then(|late| oldest_day_kept(criterion, seen, late));
    if floor.is_some_and(|first| obs.at.date_naive() < first) {
        return changed; // too late: its windows are no longer kept
    }
    let mark = UserMark {
        at: obs.at,
        id: obs.event_id.clone(),
        user: obs.user_id.clone(),
    };
    let len_before = seen.len();
    if !seen.insert(mark.clone()) {
        return changed;
    }
    // Only the windows holding the new event can have changed.
    let touched = windowed_first_met_touching(criterion, seen, obs.at, threshold as usize);
    *reached = match (*reached, touched) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    // Nothing after the first moment the criterion was met can move that moment.
    if let Some(r) = *reached {
        while seen.last().is_some_and(|m| m.at > r) {
            seen.pop_last();
        }
    }
    if let Some(first) = lateness.and_then(|late| oldest_day_kept(criterion, seen, late)) {
        while seen.first().is_some_and(|m| m.at.date_naive() < first) {
            seen.pop_first();
        }
        // The storage budget: past it, the oldest go first (the lateness shrinks).
        while seen.len() > MAX_MARKS {
            seen.pop_first();
        }
    }
    changed || seen.len() != len_before || seen.contains(&mark)
}

/// Distinct users within a window: each user's days as runs of coverage.
fn observe_windowed_users(
    runs: &mut BTreeMap<Arc<str>, Vec<Coverage>>,
    reached: &mut Option<Timestamp>,
    need: &mut u32,
    criterion: &Criterion,
    obs: &Observation,
    licensed_seats: u32,
    lateness: Option<Duration>,
) -> bool {
    let (Some(user), Some(window)) = (&obs.user_id, criterion.window_days()) else {
        return false;
    };
    let threshold = criterion.threshold(licensed_seats);
    let mut changed = false;
    if *need != threshold {
        // First use, or the seat count moved the threshold: rescan everything.
        *need = threshold;
        *reached = covered_first_met(runs, threshold as usize, None);
        if let Some(r) = *reached {
            clamp_runs_to(runs, r);
        }
        changed = true;
    }
    // Nothing after the first moment the criterion was met can move that moment.
    if reached.is_some_and(|r| obs.at > r) {
        return changed;
    }
    let day = obs.at.date_naive();
    let Some(mut until) = day.checked_add_signed(Duration::days(window - 1)) else {
        return changed;
    };
    let newest_before = runs.values().flatten().map(|c| c.until).max();
    let horizon = |newest: Option<NaiveDate>| {
        let late = lateness?;
        newest?.checked_sub_signed(Duration::days(window - 1) + late)
    };
    let horizon_before = horizon(newest_before);
    if horizon_before.is_some_and(|h| until < h) {
        return changed; // too late: the windows it is in are no longer kept
    }
    // Kept runs already stop at the day it was met (`clamp_runs_to`): so does this one.
    if let Some(r) = *reached {
        until = until.min(r.date_naive());
    }
    if !cover(runs.entry(user.clone()).or_default(), Coverage { from: obs.at, until }) {
        return changed;
    }
    // Only the windows holding the new event can have changed.
    let touched = covered_first_met(runs, threshold as usize, Some((day, until)));
    let newest = match touched {
        Some(t) if reached.is_none_or(|r| t < r) => {
            *reached = Some(t);
            clamp_runs_to(runs, t);
            runs.values().flatten().map(|c| c.until).max()
        }
        _ => newest_before.max(Some(until)),
    };
    // Nothing was older than the horizon before; only if it moved can something be now.
    if let Some(h) = horizon(newest).filter(|h| horizon_before.is_none_or(|before| *h > before)) {
        for list in runs.values_mut() {
            list.retain(|c| c.until >= h);
        }
        runs.retain(|_, list| !list.is_empty());
    }
    if lateness.is_some() {
        evict_oldest_runs(runs, MAX_MARKS);
    }
    true
}

/// Distinct users: each user's first event, up to the moment the criterion was met.
fn observe_users(
    first_by_user: &mut BTreeMap<Arc<str>, Mark>,
    criterion: &Criterion,
    obs: &Observation,
    licensed_seats: u32,
) -> bool {
    let Some(user) = &obs.user_id else { return false };
    let mark = Mark {
        at: obs.at,
        id: obs.event_id.clone(),
    };
    match first_by_user.get_mut(user) {
        Some(existing) if *existing <= mark => return false,
        Some(existing) => *existing = mark,
        None => {
            first_by_user.insert(user.clone(), mark);
        }
    }
    // Users who first showed up after the criterion was met cannot move that moment.
    let len_before = first_by_user.len();
    if let Some(reached) = users_reached_at(first_by_user, criterion.threshold(licensed_seats) as usize) {
        first_by_user.retain(|_, m| m.at <= reached);
    }
    // Unchanged only if the new user was added and at once pruned alone.
    first_by_user.contains_key(user) || first_by_user.len() + 1 != len_before
}

/// A metric threshold: the earliest event that met it, or the best value so far.
fn observe_metric(
    earliest_met: &mut Option<Mark>,
    best: &mut Option<BestValue>,
    criterion: &Criterion,
    obs: &Observation,
) -> bool {
    let Criterion::MetricThreshold { op, value, .. } = criterion else {
        return false;
    };
    let Some(actual) = obs.value else { return false };
    let before = (earliest_met.clone(), best.clone());
    if op.holds(actual, *value) {
        let mark = Mark {
            at: obs.at,
            id: obs.event_id.clone(),
        };
        if earliest_met.as_ref().is_none_or(|m| mark < *m) {
            *earliest_met = Some(mark);
        }
    }
    let replace = match best {
        None => true,
        Some(b) => op.better(actual, b.value, *value) || (actual == b.value && obs.at < b.at),
    };
    if replace {
        *best = Some(BestValue {
            value: actual,
            at: obs.at,
        });
    }
    // Only progress towards an unmet target is worth keeping.
    if earliest_met.is_some() {
        *best = None;
    }
    before != (earliest_met.clone(), best.clone())
}

impl Progress {
    /// Folds one observation in. Idempotent, and commutative with every other
    /// observation. Returns whether the progress changed (so unchanged
    /// progress is never written back). Keeps every day a window may need:
    /// what `milepost discover` uses, reading history in any order.
    pub fn observe(&mut self, criterion: &Criterion, obs: &Observation, licensed_seats: u32) -> bool {
        self.observe_within(criterion, obs, licensed_seats, None)
    }

    /// `observe` on the live path: a windowed criterion keeps only the days
    /// that an event up to `lateness` older than the newest one kept can share
    /// a window with, and ignores events older than that (they arrived too
    /// late). Commutative for every delivery order in which no event arrives
    /// more than `lateness` after one dated later.
    pub fn observe_within(
        &mut self,
        criterion: &Criterion,
        obs: &Observation,
        licensed_seats: u32,
        lateness: Option<Duration>,
    ) -> bool {
        if self.upgrade(criterion, licensed_seats) {
            self.observe_within(criterion, obs, licensed_seats, lateness);
            return true; // the new form is worth writing back even if the event changes nothing
        }
        match self {
            Progress::Count { earliest } => observe_count(earliest, criterion, obs, licensed_seats),
            Progress::Windowed { seen, reached, need } => {
                observe_windowed(seen, reached, need, criterion, obs, licensed_seats, lateness)
            }
            Progress::WindowedUsers { runs, reached, need } => {
                observe_windowed_users(runs, reached, need, criterion, obs, licensed_seats, lateness)
            }
            Progress::Users { first_by_user } => observe_users(first_by_user, criterion, obs, licensed_seats),
            Progress::Metric { earliest_met, best } => observe_metric(earliest_met, best, criterion, obs),
            Progress::Manual { .. } => false,
        }
    }

    /// Folds in `other`, progress on the same criterion from other events: the
    /// result is as if this progress had observed those events too. Both keep
    /// every event that can still move the moment the criterion was met, so
    /// replaying what `other` kept is enough. Lets history be evaluated in parallel.
    pub fn merge(&mut self, criterion: &Criterion, other: &Progress, licensed_seats: u32) {
        let replay = |this: &mut Progress, at, id: &Arc<str>, user_id: Option<Arc<str>>| {
            let obs = Observation {
                at,
                event_id: id.clone(),
                user_id,
                value: None,
            };
            this.observe(criterion, &obs, licensed_seats);
        };
        match (&mut *self, other) {
            (Progress::Count { .. }, Progress::Count { earliest }) => {
                for m in earliest {
                    replay(self, m.at, &m.id, None);
                }
            }
            (Progress::Windowed { .. }, Progress::Windowed { seen, .. }) => {
                for m in seen {
                    replay(self, m.at, &m.id, m.user.clone());
                }
            }
            (Progress::WindowedUsers { runs, reached, need }, Progress::WindowedUsers { runs: other, .. }) => {
                for (user, list) in other {
                    let mine = runs.entry(user.clone()).or_default();
                    for c in list {
                        cover(mine, c.clone());
                    }
                }
                *need = criterion.threshold(licensed_seats);
                *reached = covered_first_met(runs, *need as usize, None);
                if let Some(r) = *reached {
                    clamp_runs_to(runs, r);
                }
            }
            (Progress::Users { .. }, Progress::Users { first_by_user }) => {
                for (user, m) in first_by_user {
                    replay(self, m.at, &m.id, Some(user.clone()));
                }
            }
            (
                Progress::Metric { earliest_met, best },
                Progress::Metric {
                    earliest_met: other_met,
                    best: other_best,
                },
            ) => {
                if let Some(m) = other_met {
                    if earliest_met.as_ref().is_none_or(|mine| m < mine) {
                        *earliest_met = Some(m.clone());
                    }
                }
                if let (Criterion::MetricThreshold { op, value, .. }, Some(b)) = (criterion, other_best) {
                    let replace = best.as_ref().is_none_or(|mine| {
                        op.better(b.value, mine.value, *value) || (b.value == mine.value && b.at < mine.at)
                    });
                    if replace {
                        *best = Some(b.clone());
                    }
                }
                if earliest_met.is_some() {
                    *best = None;
                }
            }
            (Progress::Manual { marked_at }, Progress::Manual { marked_at: other_at }) => {
                *marked_at = match (*marked_at, *other_at) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            // Progress of another kind belongs to another criterion: nothing to take.
            _ => {}
        }
    }

    /// Records a CSM's confirmation of a manual milestone; returns whether it changed.
    pub fn mark_manual(&mut self, at: Timestamp) -> bool {
        if let Progress::Manual { marked_at } = self {
            if marked_at.is_none_or(|m| at < m) {
                *marked_at = Some(at);
                return true;
            }
        }
        false
    }

    /// When the criterion was first met, if it has been.
    pub fn reached_at(&self, criterion: &Criterion, licensed_seats: u32) -> Option<Timestamp> {
        let need = criterion.threshold(licensed_seats) as usize;
        match self {
            Progress::Count { earliest } => {
                (earliest.len() >= need).then(|| earliest.iter().nth(need - 1).map(|m| m.at))?
            }
            // Kept for the threshold it was computed for; a new one (the seats changed) rescans.
            Progress::Windowed {
                reached, need: cached, ..
            }
            | Progress::WindowedUsers {
                reached, need: cached, ..
            } if *cached as usize == need => *reached,
            Progress::Windowed { seen, .. } => windowed_reached_at(criterion, seen, need),
            Progress::WindowedUsers { runs, .. } => covered_first_met(runs, need, None),
            Progress::Users { first_by_user } => users_reached_at(first_by_user, need),
            Progress::Metric { earliest_met, .. } => earliest_met.as_ref().map(|m| m.at),
            Progress::Manual { marked_at } => *marked_at,
        }
    }

    /// How far along the criterion is, 0.0 to 1.0, for health scores and CSM context.
    pub fn fraction(&self, criterion: &Criterion, licensed_seats: u32) -> f64 {
        if self.reached_at(criterion, licensed_seats).is_some() {
            return 1.0;
        }
        let need = f64::from(criterion.threshold(licensed_seats));
        let ratio = match self {
            Progress::Count { earliest } => earliest.len() as f64 / need,
            Progress::Windowed { seen, .. } => {
                if criterion.needs_user() {
                    let users: BTreeSet<_> = seen.iter().filter_map(|m| m.user.as_ref()).collect();
                    users.len() as f64 / need
                } else {
                    seen.len() as f64 / need
                }
            }
            Progress::WindowedUsers { runs, .. } => runs.len() as f64 / need,
            Progress::Users { first_by_user } => first_by_user.len() as f64 / need,
            Progress::Metric { best, .. } => match (criterion, best) {
                (Criterion::MetricThreshold { op, value, .. }, Some(b)) => metric_fraction(*op, b.value, *value),
                _ => 0.0,
            },
            Progress::Manual { .. } => 0.0,
        };
        ratio.clamp(0.0, 1.0)
    }

    /// Done and needed, where the criterion counts (events or users): `(2,
    /// 3)` reads "2 of 3". `None` for a metric or a manual milestone.
    pub fn tally(&self, criterion: &Criterion, licensed_seats: u32) -> Option<(u32, u32)> {
        let need = criterion.threshold(licensed_seats);
        let done = match self {
            Progress::Count { earliest } => earliest.len(),
            Progress::Windowed { seen, .. } if criterion.needs_user() => seen
                .iter()
                .filter_map(|m| m.user.as_ref())
                .collect::<BTreeSet<_>>()
                .len(),
            Progress::Windowed { seen, .. } => seen.len(),
            Progress::WindowedUsers { runs, .. } => runs.len(),
            Progress::Users { first_by_user } => first_by_user.len(),
            Progress::Metric { .. } | Progress::Manual { .. } => return None,
        };
        Some(((done as u32).min(need), need))
    }

    /// Today's figure in words, for "target vs today" in emails and tasks.
    pub fn describe_current(&self, criterion: &Criterion, licensed_seats: u32) -> String {
        match self {
            Progress::Count { earliest } => format!("{} so far", earliest.len()),
            Progress::Windowed { seen, .. } if criterion.needs_user() => {
                let users: BTreeSet<_> = seen.iter().filter_map(|m| m.user.as_ref()).collect();
                format!("{} users so far", users.len())
            }
            Progress::Windowed { seen, .. } => format!("{} so far", seen.len()),
            Progress::WindowedUsers { runs, .. } => format!("{} users so far", runs.len()),
            Progress::Users { first_by_user } => {
                let pct = if licensed_seats > 0 && matches!(criterion, Criterion::SeatRatio { .. }) {
                    format!(
                        " ({:.0}% of seats)",
                        100.0 * first_by_user.len() as f64 / f64::from(licensed_seats)
                    )
                } else {
                    String::new()
                };
                format!("{} users so far{pct}", first_by_user.len())
            }
            // Once met, only when is kept (`observe_metric`).
            Progress::Metric {
                earliest_met: Some(m), ..
            } => format!("met on {}", m.at.format("%-d %b %Y")),
            Progress::Metric { best, .. } => match best {
                Some(b) => format!("best so far {}", b.value),
                None => "no measurement yet".to_string(),
            },
            Progress::Manual { marked_at } => match marked_at {
                Some(_) => "confirmed".to_string(),
                None => "not confirmed yet".to_string(),
            },
        }
    }
}

impl Progress {
    /// Progress stored before `WindowedUsers` existed kept a windowed user
    /// criterion as one mark per user and day: replays those marks into runs.
    /// Returns whether it changed anything.
    fn upgrade(&mut self, criterion: &Criterion, licensed_seats: u32) -> bool {
        let Progress::Windowed { seen, .. } = self else {
            return false;
        };
        if !criterion.needs_user() {
            return false;
        }
        let mut upgraded = criterion.new_progress();
        for m in seen.iter() {
            let obs = Observation {
                at: m.at,
                event_id: m.id.clone(),
                user_id: m.user.clone(),
                value: None,
            };
            upgraded.observe(criterion, &obs, licensed_seats);
        }
        *self = upgraded;
        true
    }
}

/// Adds a run to one user's runs (kept apart and in order), joining every
/// run it touches: what makes runs a function of the set of events. Returns
/// whether anything changed (not when a kept run already holds it).
fn cover(runs: &mut Vec<Coverage>, mut run: Coverage) -> bool {
    if runs.iter().any(|c| c.from <= run.from && run.until <= c.until) {
        return false;
    }
    while let Some(i) = runs.iter().position(|c| c.joins(&run)) {
        let joined = runs.remove(i);
        run = Coverage {
            from: run.from.min(joined.from),
            until: run.until.max(joined.until),
        };
    }
    let at = runs.partition_point(|c| *c < run);
    runs.insert(at, run);
    true
}

/// The first moment at which `need` users are in one window, looking only at
/// windows ending within `range` (all of them if `None`). A window ending on
/// a day holds the users with a run covering that day, each from the start
/// of the day, or from their first event if the run begins that day.
fn covered_first_met(
    runs: &BTreeMap<Arc<str>, Vec<Coverage>>,
    need: usize,
    range: Option<(NaiveDate, NaiveDate)>,
) -> Option<Timestamp> {
    let clip = |c: &Coverage| {
        let (mut first, mut last) = (c.first_day(), c.until);
        if let Some((lo, hi)) = range {
            (first, last) = (first.max(lo), last.min(hi));
        }
        (first <= last).then_some((first, last))
    };
    // Users in windows ending on each day: +1 where a run starts covering, -1 after it ends.
    let mut changes: Vec<(NaiveDate, i8)> = Vec::new();
    for (first, last) in runs.values().flatten().filter_map(clip) {
        changes.push((first, 1));
        if let Some(after) = last.succ_opt() {
            changes.push((after, -1));
        }
    }
    if changes.iter().filter(|(_, d)| *d > 0).count() < need {
        return None;
    }
    changes.sort_unstable(); // a day's -1s before its +1s
    let mut covered = 0usize;
    let day = changes.into_iter().find_map(|(day, delta)| {
        covered = covered.saturating_add_signed(isize::from(delta));
        (covered >= need).then_some(day)
    })?;
    // That day, the users join one by one: the `need`-th is the moment.
    let mut joins: Vec<Timestamp> = runs
        .values()
        .flatten()
        .filter_map(|c| c.in_window_ending(day))
        .collect();
    Some(*joins.select_nth_unstable(need - 1).1)
}

/// After the criterion was met at `reached`, what happened later cannot move
/// that moment: runs that begin later go, and the rest stop at its day. The
/// result is the same whether the later events came before `reached` was
/// known or after (when they are not taken at all).
fn clamp_runs_to(runs: &mut BTreeMap<Arc<str>, Vec<Coverage>>, reached: Timestamp) {
    let day = reached.date_naive();
    for list in runs.values_mut() {
        list.retain(|c| c.from <= reached);
        for c in list.iter_mut() {
            c.until = c.until.min(day);
        }
    }
    runs.retain(|_, list| !list.is_empty());
}

/// The storage budget: past `max` runs, those whose windows ended first go
/// (the lateness shrinks). Runs covering the newest windows are fewer than
/// the threshold until it is met, so those are never the ones dropped.
fn evict_oldest_runs(runs: &mut BTreeMap<Arc<str>, Vec<Coverage>>, max: usize) {
    let total: usize = runs.values().map(Vec::len).sum();
    if total <= max {
        return;
    }
    let mut order: Vec<(NaiveDate, Timestamp, Arc<str>)> = runs
        .iter()
        .flat_map(|(user, list)| list.iter().map(move |c| (c.until, c.from, user.clone())))
        .collect();
    order.sort_unstable();
    for (until, from, user) in order.into_iter().take(total - max) {
        if let Some(list) = runs.get_mut(&user) {
            list.retain(|c| (c.until, c.from) != (until, from));
            if list.is_empty() {
                runs.remove(&user);
            }
        }
    }
}

/// The moment the `need`-th user showed up.
fn users_reached_at(first_by_user: &BTreeMap<Arc<str>, Mark>, need: usize) -> Option<Timestamp> {
    if first_by_user.len() < need {
        return None;
    }
    let mut firsts: Vec<Timestamp> = first_by_user.values().map(|m| m.at).collect();
    Some(*firsts.select_nth_unstable(need - 1).1)
}

fn metric_fraction(op: CompareOp, best: f64, target: f64) -> f64 {
    match op {
        CompareOp::Gte | CompareOp::Gt if target > 0.0 => best / target,
        CompareOp::Lte | CompareOp::Lt if best > 0.0 => target / best,
        _ if op.holds(best, target) => 1.0,
        _ => 0.0,
    }
}

/// The first instant t at which the events in (t - window, t] meet the criterion.
fn windowed_reached_at(criterion: &Criterion, seen: &BTreeSet<UserMark>, need: usize) -> Option<Timestamp> {
    if seen.len() < need {
        return None; // not enough events in all, let alone in one window
    }
    first_met(criterion, seen.iter(), need, None)
}

/// Midnight UTC starting `day`.
fn day_start(day: NaiveDate) -> Timestamp {
    day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc()
}

/// The first day a windowed criterion still keeps, given how late an event
/// may arrive: the newest kept event's day, less the window and `lateness`.
fn oldest_day_kept(criterion: &Criterion, seen: &BTreeSet<UserMark>, lateness: Duration) -> Option<NaiveDate> {
    let window = criterion.window_days()?;
    let newest = seen.last()?.at.date_naive();
    newest.checked_sub_signed(Duration::days(window - 1) + lateness)
}

/// Like `windowed_reached_at`, but only over the windows that contain an event
/// at `at`: those ending on its day or the `window - 1` days after. Events
/// outside the `window - 1` days either side cannot be in them, so only those
/// are scanned.
fn windowed_first_met_touching(
    criterion: &Criterion,
    seen: &BTreeSet<UserMark>,
    at: Timestamp,
    need: usize,
) -> Option<Timestamp> {
    let window = criterion.window_days()?;
    let day = at.date_naive();
    let from = UserMark {
        at: day_start(day.checked_sub_signed(Duration::days(window - 1))?),
        id: Arc::from(""),
        user: None,
    };
    let until = day
        .checked_add_signed(Duration::days(window))
        .map_or(Timestamp::MAX_UTC, day_start);
    let marks = seen.range(from..).take_while(|m| m.at < until);
    first_met(criterion, marks, need, Some(at))
}

/// Slides a window of whole days over `marks` (in time order) and returns the
/// first window end, not before `not_before`, where the criterion is met: the
/// moment the events of that day so far and of the `window - 1` days before
/// it meet the threshold.
fn first_met<'a>(
    criterion: &Criterion,
    marks: impl Iterator<Item = &'a UserMark>,
    need: usize,
    not_before: Option<Timestamp>,
) -> Option<Timestamp> {
    let window = criterion.window_days()?;
    let count_users = criterion.needs_user();
    let marks: Vec<&UserMark> = marks.collect();
    if marks.len() < need {
        return None;
    }
    let mut users_in_window: HashMap<&str, usize> = HashMap::new();
    let mut start = 0;
    for (end, mark) in marks.iter().enumerate() {
        if let Some(u) = &mark.user {
            *users_in_window.entry(u).or_default() += 1;
        }
        let first_day = mark.at.date_naive() - Duration::days(window - 1);
        while marks[start].at.date_naive() < first_day {
            if let Some(u) = &marks[start].user {
                let n = users_in_window.get_mut(&**u).expect("counted on entry");
                *n -= 1;
                if *n == 0 {
                    users_in_window.remove(&**u);
                }
            }
            start += 1;
        }
        let met = if count_users {
            users_in_window.len()
        } else {
            end - start + 1
        };
        if met >= need && not_before.is_none_or(|t| mark.at >= t) {
            return Some(mark.at);
        }
    }
    None
}
