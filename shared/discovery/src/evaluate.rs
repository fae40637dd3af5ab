//! Which accounts achieved which candidate milestone, and when: every event
//! is folded into the same criterion progress live tracking uses, so a
//! milestone is judged on history exactly as it would have been live.
//!
//! An account achieved a milestone when its criterion was first met at t with
//! contract_start ≤ t, t on or before the decision date (UTC), and, when the
//! milestone has `due_days`, t ≤ contract_start + due_days. Events outside
//! that span are ignored, so their order in the file does not matter.

use std::collections::HashMap;
use std::sync::Arc;

/// A fast hasher for the two lookups every event makes (account, event name);
/// the keys come from the user's own files, not from an attacker.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

use chrono::{DateTime, Duration, NaiveTime, Utc};
use milepost_domain::{Criterion, MilestoneDef, MilestoneMap, Progress, Segment, Tenure};

use super::input::{AccountRecord, CohortSplit, EventRecord};

/// One definition of a candidate milestone. The same id may have several
/// (say, a different due date for enterprise than for SMB); each account is
/// judged by one of them.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub id: String,
    pub name: String,
    pub criterion: Criterion,
    pub due_days: u32,
}

impl Candidate {
    fn of(def: &MilestoneDef) -> Candidate {
        Candidate {
            id: def.id.clone(),
            name: def.name.clone(),
            criterion: def.criterion.clone(),
            due_days: def.due_days,
        }
    }

    fn same_definition(&self, def: &MilestoneDef) -> bool {
        self.id == def.id && self.criterion == def.criterion && self.due_days == def.due_days
    }
}

/// For an account of `segment` and `tenure`: each milestone id any applicable
/// map defines, with the definition of the most specific such map (a
/// segment's own map over `segment: all`, a tenure's map over one without);
/// the first map given wins a tie.
fn applicable_defs(maps: &[MilestoneMap], segment: Segment, tenure: Tenure) -> Vec<&MilestoneDef> {
    let mut chosen: Vec<(u8, &MilestoneDef)> = Vec::new();
    for map in maps {
        let Some(specificity) = map.specificity(segment, tenure) else {
            continue;
        };
        for def in &map.milestones {
            match chosen.iter_mut().find(|(_, d)| d.id == def.id) {
                Some(slot) if specificity > slot.0 => *slot = (specificity, def),
                Some(_) => {}
                None => chosen.push((specificity, def)),
            }
        }
    }
    chosen.into_iter().map(|(_, d)| d).collect()
}

/// One account's result for one candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Judgement {
    pub account: u32,
    pub candidate: u32,
    /// Days from contract start to achievement (rounded up: within the first
    /// 24 hours is day 1), or `None` when it was not achieved in time.
    pub achieved_on_day: Option<u32>,
}

/// An account being judged on one candidate.
struct Slot {
    account: u32,
    candidate: u32,
    starts: DateTime<Utc>,
    /// The last instant an achievement counts.
    cutoff: DateTime<Utc>,
    seats: u32,
    progress: Progress,
    reached: Option<DateTime<Utc>>,
}

const NO_SLOT: u32 = u32::MAX;

/// Candidates that cannot be judged from events, and why.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Manual milestones: only a CSM can mark them.
    pub manual: Vec<String>,
    /// Agreed-outcome milestones: each account's own plan sets them, which
    /// an export of events and accounts does not hold.
    pub agreed_outcome: Vec<String>,
    /// Expansion milestones: growth signals, never missed, so not judged as
    /// predictors of renewal or churn.
    pub expansion: Vec<String>,
    /// Seat-ratio milestones, with how many accounts lacked `licensed_seats`.
    pub without_seats: Vec<(String, usize)>,
}

/// Folds a stream of events into each account's progress on each candidate.
pub struct Evaluation<'a> {
    account_index: FastMap<&'a [u8], u32>,
    pub candidates: Vec<Candidate>,
    /// Event name → the candidates listening to it.
    listeners: FastMap<Box<[u8]>, Vec<u32>>,
    /// `account * candidates.len() + candidate` → index into `slots`.
    slot_of: Vec<u32>,
    slots: Vec<Slot>,
    pub skipped: Skipped,
    /// Reused for the id of the event being folded in, so ids cost one allocation each.
    event_id: String,
    events_read: u64,
}

impl<'a> Evaluation<'a> {
    /// The candidates of `maps` for each of `accounts`; expansion milestones
    /// only where `cohorts` judges them (against expansion, never renewal).
    /// An account in neither cohort has none: its events are known, and
    /// count for nothing.
    pub fn new(accounts: &'a [AccountRecord], maps: &[MilestoneMap], cohorts: CohortSplit) -> Evaluation<'a> {
        let mut candidates: Vec<Candidate> = Vec::new();
        let mut per_account: Vec<Vec<u32>> = Vec::with_capacity(accounts.len());
        let mut skipped = Skipped::default();
        let mut seatless: HashMap<String, usize> = HashMap::new();
        for account in accounts {
            if cohorts.cohort_of(account.decision).is_none() {
                per_account.push(Vec::new());
                continue;
            }
            let tenure = Tenure::from_year(account.tenure_year);
            let mut mine = Vec::new();
            for def in applicable_defs(maps, account.segment, tenure) {
                if def.expansion.is_some() && !cohorts.judges_expansion_milestones() {
                    if !skipped.expansion.contains(&def.id) {
                        skipped.expansion.push(def.id.clone());
                    }
                    continue;
                }
                match def.criterion {
                    Criterion::Manual => {
                        if !skipped.manual.contains(&def.id) {
                            skipped.manual.push(def.id.clone());
                        }
                        continue;
                    }
                    Criterion::AgreedOutcome => {
                        if !skipped.agreed_outcome.contains(&def.id) {
                            skipped.agreed_outcome.push(def.id.clone());
                        }
                        continue;
                    }
                    Criterion::SeatRatio { .. } if account.licensed_seats.is_none() => {
                        *seatless.entry(def.id.clone()).or_default() += 1;
                        continue;
                    }
                    _ => {}
                }
                let index = match candidates.iter().position(|c| c.same_definition(def)) {
                    Some(i) => i,
                    None => {
                        candidates.push(Candidate::of(def));
                        candidates.len() - 1
                    }
                };
                mine.push(index as u32);
            }
            per_account.push(mine);
        }
        skipped.without_seats = seatless.into_iter().collect();
        skipped.without_seats.sort();

        let mut listeners: FastMap<Box<[u8]>, Vec<u32>> = FastMap::default();
        for (i, c) in candidates.iter().enumerate() {
            if let Some(event) = c.criterion.event() {
                listeners.entry(event.as_bytes().into()).or_default().push(i as u32);
            }
        }
        let mut slot_of = vec![NO_SLOT; accounts.len() * candidates.len()];
        let mut slots = Vec::new();
        for (a, (account, mine)) in accounts.iter().zip(&per_account).enumerate() {
            let starts = account.contract_start.and_time(NaiveTime::MIN).and_utc();
            // "On or before the decision date": up to the end of that day.
            let decided =
                account.decision_date.and_time(NaiveTime::MIN).and_utc() + Duration::days(1) - Duration::nanoseconds(1);
            for &c in mine {
                let candidate = &candidates[c as usize];
                let due = starts + Duration::days(i64::from(candidate.due_days));
                slot_of[a * candidates.len() + c as usize] = slots.len() as u32;
                slots.push(Slot {
                    account: a as u32,
                    candidate: c,
                    starts,
                    cutoff: decided.min(due),
                    seats: account.licensed_seats.unwrap_or(0),
                    progress: candidate.criterion.new_progress(),
                    reached: None,
                });
            }
        }
        Evaluation {
            account_index: accounts
                .iter()
                .enumerate()
                .map(|(i, a)| (a.account_id.as_str().as_bytes(), i as u32))
                .collect(),
            candidates,
            listeners,
            slot_of,
            slots,
            skipped,
            event_id: String::new(),
            events_read: 0,
        }
    }

    pub fn events_read(&self) -> u64 {
        self.events_read
    }

    /// Folds one event in; an event of an account not in the accounts file is refused.
    pub fn observe(&mut self, event: EventRecord<'_>) -> Result<(), crate::RowProblem> {
        let Some(&account) = self.account_index.get(event.account_id) else {
            return Err(format!("unknown account `{}`", String::from_utf8_lossy(event.account_id)).into());
        };
        self.events_read += 1;
        let Some(listening) = self.listeners.get(event.event) else {
            return Ok(());
        };
        let mut id: Option<Arc<str>> = None;
        for &c in listening {
            let slot = self.slot_of[account as usize * self.candidates.len() + c as usize];
            if slot == NO_SLOT {
                continue;
            }
            let slot = &mut self.slots[slot as usize];
            let at = event.timestamp;
            // Outside the span that counts, or after the criterion was already
            // met: nothing this event says can change the judgement.
            if at < slot.starts || at > slot.cutoff || slot.reached.is_some_and(|r| at > r) {
                continue;
            }
            let id = id
                .get_or_insert_with(|| {
                    // Exports carry no event id: an event is what it says, so an
                    // identical row (a re-delivered event) counts once, as live.
                    use std::fmt::Write;
                    self.event_id.clear();
                    let _ = write!(
                        self.event_id,
                        "{}\u{1f}{}",
                        event.user_id.unwrap_or(""),
                        event.value.map(f64::to_bits).unwrap_or(u64::MAX)
                    );
                    Arc::from(self.event_id.as_str())
                })
                .clone();
            let criterion = &self.candidates[c as usize].criterion;
            let Some(observation) = criterion.observation(at, id, event.user_id, event.value) else {
                continue;
            };
            if slot.progress.observe(criterion, &observation, slot.seats) {
                slot.reached = slot.progress.reached_at(criterion, slot.seats);
            }
        }
        Ok(())
    }

    /// The same accounts and candidates with no event seen: to read another
    /// part of the events on another thread, then `merge` back.
    pub fn fresh_copy(&self) -> Evaluation<'a> {
        Evaluation {
            account_index: self.account_index.clone(),
            candidates: self.candidates.clone(),
            listeners: self.listeners.clone(),
            slot_of: self.slot_of.clone(),
            slots: self
                .slots
                .iter()
                .map(|slot| Slot {
                    progress: self.candidates[slot.candidate as usize].criterion.new_progress(),
                    reached: None,
                    ..*slot
                })
                .collect(),
            skipped: self.skipped.clone(),
            event_id: String::new(),
            events_read: 0,
        }
    }

    /// Takes in what `other` (a `fresh_copy` of this one) saw of
    /// other events: afterwards this is as if it had seen them itself.
    pub fn merge(&mut self, other: Evaluation<'_>) {
        assert_eq!(
            self.slots.len(),
            other.slots.len(),
            "evaluations of the same accounts and maps"
        );
        for (slot, theirs) in self.slots.iter_mut().zip(other.slots) {
            let criterion = &self.candidates[slot.candidate as usize].criterion;
            slot.progress.merge(criterion, &theirs.progress, slot.seats);
            slot.reached = slot.progress.reached_at(criterion, slot.seats);
        }
        self.events_read += other.events_read;
    }

    /// Every account's result on every candidate that applies to it.
    pub fn judgements(&self) -> Vec<Judgement> {
        self.slots
            .iter()
            .map(|slot| Judgement {
                account: slot.account,
                candidate: slot.candidate,
                achieved_on_day: slot.reached.filter(|r| *r <= slot.cutoff).map(|r| {
                    let seconds = (r - slot.starts).num_seconds().max(0) as u64;
                    // Rounded up, at least day 1.
                    seconds.div_ceil(86_400).max(1) as u32
                }),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use milepost_domain::AccountId;

    use super::super::input::{parse_timestamp, Outcome};
    use super::*;

    fn account(id: &str, segment: Segment, start: &str, decision: &str, tenure_year: u32) -> AccountRecord {
        AccountRecord {
            account_id: AccountId::new(id),
            segment,
            contract_start: NaiveDate::parse_from_str(start, "%Y-%m-%d").unwrap(),
            decision_date: NaiveDate::parse_from_str(decision, "%Y-%m-%d").unwrap(),
            decision: milepost_domain::RenewalDecision::Renewed,
            outcome: Outcome::Renewed,
            arr: None,
            tenure_year,
            licensed_seats: None,
        }
    }

    fn map(yaml: &str) -> MilestoneMap {
        milepost_maps::load_map("test.yaml", yaml).unwrap_or_else(|p| panic!("{p:?}"))
    }

    fn milestone(id: &str, due_days: u32, criterion: &str) -> String {
        format!(
            "  - id: {id}\n    name: {id}\n    customer_title: {id}\n    phase: onboarding\n    due_days: {due_days}\n    owner: csm\n    criterion: {criterion}\n    moved_by: customer\n    playbook: {{outreach: o, csm: c, leadership: l}}\n"
        )
    }

    fn event<'a>(account: &'a str, name: &'a str, at: &str, user: Option<&'a str>) -> EventRecord<'a> {
        EventRecord {
            account_id: account.as_bytes(),
            event: name.as_bytes(),
            timestamp: parse_timestamp(at).unwrap(),
            user_id: user,
            value: None,
            line: 0,
        }
    }

    fn days(evaluation: &Evaluation, id: &str) -> Vec<Option<u32>> {
        let c = evaluation.candidates.iter().position(|c| c.id == id).unwrap() as u32;
        evaluation
            .judgements()
            .into_iter()
            .filter(|j| j.candidate == c)
            .map(|j| j.achieved_on_day)
            .collect()
    }

    /// Issue 36: comparing expansion, a churned account is known (its events
    /// are no bad rows) and judged on nothing; expansion milestones are
    /// judged, up to the decision, in one pass or in parts merged.
    #[test]
    fn expansion_cohorts_judge_expansion_milestones_and_nothing_of_a_churned_account() {
        use milepost_domain::RenewalDecision;
        let decided = |id, decision| AccountRecord {
            decision,
            ..account(id, Segment::Smb, "2025-01-01", "2025-12-01", 1)
        };
        let accounts = vec![
            decided("up", RenewalDecision::Expanded),
            decided("flat", RenewalDecision::Renewed),
            decided("gone", RenewalDecision::Churned),
        ];
        let m = map(&format!(
            "segment: smb\nmilestones:\n{}  - {{id: grow, name: Grow, phase: expansion, owner: ae, criterion: {{kind: event_count, event: invited, min: 1}}, expansion: {{adds: 5, unit: seats, play: p}}}}\n",
            milestone("first", 30, "{kind: event_count, event: a, min: 1}")
        ));
        let events = [
            event("up", "invited", "2025-06-01T00:00:00Z", None),
            event("gone", "invited", "2025-03-01T00:00:00Z", None),
            event("gone", "a", "2025-01-02T00:00:00Z", None),
            // After the decision (day 334): not by then.
            event("flat", "invited", "2025-12-15T00:00:00Z", None),
        ];
        let renewal = Evaluation::new(&accounts, std::slice::from_ref(&m), CohortSplit::Renewal);
        assert_eq!(renewal.skipped.expansion, ["grow"]);
        let mut whole = Evaluation::new(&accounts, std::slice::from_ref(&m), CohortSplit::Expansion);
        assert!(whole.skipped.expansion.is_empty());
        let mut parts = [whole.fresh_copy(), whole.fresh_copy()];
        for (i, e) in events.iter().enumerate() {
            assert_eq!(whole.observe(*e), Ok(()), "{e:?}");
            assert_eq!(parts[i % 2].observe(*e), Ok(()));
        }
        let [one, two] = parts;
        let mut merged = whole.fresh_copy();
        merged.merge(one);
        merged.merge(two);
        for evaluation in [&whole, &merged] {
            // up and flat only, in account order; gone is judged on nothing.
            assert_eq!(days(evaluation, "grow"), [Some(151), None]);
            assert_eq!(days(evaluation, "first"), [None, None]);
            assert!(evaluation.judgements().iter().all(|j| j.account != 2));
        }
    }

    #[test]
    fn achievement_counts_only_between_contract_start_and_the_earlier_of_due_date_and_decision() {
        let accounts = vec![
            account("early", Segment::Smb, "2025-01-01", "2025-12-31", 1),
            account("late", Segment::Smb, "2025-01-01", "2025-12-31", 1),
            account("decided", Segment::Smb, "2025-01-01", "2025-01-20", 1),
            account("before", Segment::Smb, "2025-01-01", "2025-12-31", 1),
        ];
        let m = map(&format!(
            "segment: smb\nmilestones:\n{}",
            milestone("two_reports", 30, "{kind: event_count, event: report.shared, min: 2}")
        ));
        let mut evaluation = Evaluation::new(&accounts, &[m], CohortSplit::Renewal);
        let events = [
            // Met on day 10 (the second event, delivered first).
            event("early", "report.shared", "2025-01-10T08:00:00Z", None),
            event("early", "report.shared", "2025-01-02T08:00:00Z", None),
            // Met on day 40: past the 30-day due date.
            event("late", "report.shared", "2025-01-05T08:00:00Z", None),
            event("late", "report.shared", "2025-02-09T08:00:00Z", None),
            // Met on the decision date itself (counts), then more after it.
            event("decided", "report.shared", "2025-01-03T08:00:00Z", None),
            event("decided", "report.shared", "2025-01-20T23:59:59Z", None),
            // Both before the contract started: they do not count.
            event("before", "report.shared", "2024-12-30T08:00:00Z", None),
            event("before", "report.shared", "2024-12-31T08:00:00Z", None),
            event("before", "report.shared", "2025-01-04T08:00:00Z", None),
        ];
        for e in events {
            evaluation.observe(e).unwrap();
        }
        assert_eq!(days(&evaluation, "two_reports"), [Some(10), None, Some(20), None]);
    }

    #[test]
    fn the_judgement_does_not_depend_on_event_order_or_repeats() {
        let accounts = vec![account("a", Segment::Smb, "2025-01-01", "2025-12-31", 1)];
        let m = map(&format!(
            "segment: all\nmilestones:\n{}{}",
            milestone(
                "team",
                60,
                "{kind: distinct_users, event: user.active, min: 3, window_days: 7}"
            ),
            milestone("reports", 60, "{kind: event_count, event: report.shared, min: 3}")
        ));
        let events = [
            event("a", "user.active", "2025-01-02T08:00:00Z", Some("u1")),
            event("a", "user.active", "2025-01-05T08:00:00Z", Some("u2")),
            // u3 comes 8 days after u1: not within one 7-day window with u1…
            event("a", "user.active", "2025-01-10T08:00:00Z", Some("u3")),
            // …but u4 makes three within a week (u2, u3, u4) on day 11.
            event("a", "user.active", "2025-01-11T08:00:00Z", Some("u4")),
            event("a", "report.shared", "2025-01-03T08:00:00Z", None),
            event("a", "report.shared", "2025-01-04T08:00:00Z", None),
            event("a", "report.shared", "2025-01-25T08:00:00Z", None),
            event("a", "report.shared", "2025-01-06T08:00:00Z", None),
        ];
        let run = |order: &[usize]| {
            let mut evaluation = Evaluation::new(&accounts, std::slice::from_ref(&m), CohortSplit::Renewal);
            for &i in order {
                evaluation.observe(events[i]).unwrap();
            }
            (days(&evaluation, "team"), days(&evaluation, "reports"))
        };
        let in_order = run(&[0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(in_order, (vec![Some(11)], vec![Some(6)]));
        assert_eq!(run(&[7, 6, 5, 4, 3, 2, 1, 0]), in_order);
        assert_eq!(run(&[3, 0, 3, 6, 1, 7, 2, 4, 5, 0, 4]), in_order);
    }

    #[test]
    fn each_account_is_judged_by_the_most_specific_map_defining_the_milestone() {
        let accounts = vec![
            account("ent", Segment::Enterprise, "2025-01-01", "2025-12-31", 1),
            account("smb", Segment::Smb, "2025-01-01", "2025-12-31", 1),
            account("ent2", Segment::Enterprise, "2025-01-01", "2025-12-31", 3),
        ];
        let everyone = map(&format!(
            "segment: all\nmilestones:\n{}{}",
            milestone("first", 10, "{kind: event_count, event: x, min: 1}"),
            milestone("second", 10, "{kind: event_count, event: y, min: 1}")
        ));
        let enterprise = map(&format!(
            "segment: enterprise\nmilestones:\n{}",
            milestone("first", 40, "{kind: event_count, event: x, min: 1}")
        ));
        let enterprise_renewals = map(&format!(
            "segment: enterprise\ntenure: multi_year\nmilestones:\n{}",
            milestone("first", 5, "{kind: event_count, event: x, min: 1}")
        ));
        let mut evaluation = Evaluation::new(
            &accounts,
            &[everyone, enterprise, enterprise_renewals],
            CohortSplit::Renewal,
        );
        for a in ["ent", "smb", "ent2"] {
            evaluation.observe(event(a, "x", "2025-01-08T00:00:00Z", None)).unwrap();
            evaluation.observe(event(a, "y", "2025-01-08T00:00:00Z", None)).unwrap();
        }
        // `first` has three definitions: enterprise (40 days), all (10), enterprise multi-year (5).
        let mut firsts: Vec<(String, u32, Option<u32>)> = evaluation
            .judgements()
            .into_iter()
            .filter(|j| evaluation.candidates[j.candidate as usize].id == "first")
            .map(|j| {
                (
                    accounts[j.account as usize].account_id.to_string(),
                    evaluation.candidates[j.candidate as usize].due_days,
                    j.achieved_on_day,
                )
            })
            .collect();
        firsts.sort();
        assert_eq!(
            firsts,
            [
                ("ent".into(), 40, Some(7)),
                ("ent2".into(), 5, None),
                ("smb".into(), 10, Some(7))
            ]
        );
        // `second` only in the `all` map still applies to everyone.
        assert_eq!(days(&evaluation, "second"), [Some(7); 3]);
    }

    #[test]
    fn unknown_accounts_are_refused_and_unjudgeable_candidates_reported() {
        let mut accounts = vec![account("a", Segment::Smb, "2025-01-01", "2025-12-31", 1)];
        accounts.push(AccountRecord {
            licensed_seats: Some(4),
            ..account("b", Segment::Smb, "2025-01-01", "2025-12-31", 1)
        });
        let m = map(&format!(
            "segment: smb\nmilestones:\n{}{}",
            milestone("kickoff", 10, "{kind: manual}"),
            milestone("seats", 60, "{kind: seat_ratio, event: login, min_ratio: 0.5}")
        ));
        let mut evaluation = Evaluation::new(&accounts, &[m], CohortSplit::Renewal);
        assert_eq!(
            evaluation.observe(event("zz", "login", "2025-01-02T00:00:00Z", Some("u1"))),
            Err("unknown account `zz`".into())
        );
        for u in ["u1", "u2"] {
            evaluation
                .observe(event("b", "login", "2025-01-02T06:00:00Z", Some(u)))
                .unwrap();
        }
        assert_eq!(evaluation.skipped.manual, ["kickoff"]);
        assert_eq!(evaluation.skipped.without_seats, [("seats".to_string(), 1)]);
        // Only b, which has seats, is judged: 2 of 4 seats is the 50% asked for.
        assert_eq!(days(&evaluation, "seats"), [Some(2)]);
    }
}
