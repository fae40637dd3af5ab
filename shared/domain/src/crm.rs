//! What Milepost keeps in the team's CRM (HubSpot first), as values: an
//! account's standing on its company record, and each CSM task mirrored as
//! a CRM task. One `CrmSync` per account's company and per task records
//! what the CRM still owes: the company found (by the account's
//! `hubspot_company_id` trait, or its domain), a task created once (a
//! create whose answer was lost is looked for before it is made again),
//! then written whenever what it mirrors changes. Rate limits wait as long
//! as the CRM says, however often; other failures retry on the webhooks'
//! schedule for a day and then go dead, kept until an operator replays them.

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::webhooks::retry_at;
use crate::{AccountId, Claim, RenewalDecision, RenewalOutcome, Timestamp};

/// How long an attempt holds a record: longer than the CRM's calls take.
pub const CRM_LEASE: Duration = Duration::seconds(60);

/// A company's web domain as a CRM keeps it (`acme.example`), from a
/// domain or a website address (`https://www.Acme.example/about`); none
/// when it is not a host name.
pub fn web_domain(text: &str) -> Option<String> {
    let t = text.trim().to_ascii_lowercase();
    let t = t.split_once("://").map_or(t.as_str(), |(_, rest)| rest);
    let host = t.split(['/', '?', '#']).next()?.split(':').next()?;
    let host = host.strip_prefix("www.").unwrap_or(host).trim_end_matches('.');
    let labels_ok = host
        .split('.')
        .all(|l| !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-'));
    let chars_ok = host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    (host.contains('.') && host.len() <= 253 && labels_ok && chars_ok).then(|| host.to_string())
}

/// A HubSpot record id as the account's trait gives it: digits only.
pub fn hubspot_id(text: &str) -> Option<String> {
    let t = text.trim();
    (!t.is_empty() && t.len() <= 20 && t.chars().all(|c| c.is_ascii_digit())).then(|| t.to_string())
}

/// How often a company's standing is written again though nothing of the
/// account changed on the bus: its health moves with its activity every day.
pub const COMPANY_REFRESH: Duration = Duration::hours(24);

/// A deal as the CRM gives it: a renewal decided, where its stage is one
/// the deployment maps to a decision (`closedwon` → renewed, ...).
#[derive(Clone, Debug, PartialEq)]
pub struct Deal {
    pub id: String,
    /// Its stage's internal id.
    pub stage: String,
    pub close_date: Option<chrono::NaiveDate>,
    /// Its amount, taken as the ARR after the decision.
    pub amount: Option<f64>,
    pub changed_at: Timestamp,
}

impl Deal {
    /// The renewal it records under `stages` (a stage's id and the decision
    /// it means), decided on its close date (else the day it changed).
    pub fn renewal(&self, stages: &[(String, RenewalDecision)]) -> Option<RenewalOutcome> {
        let (_, outcome) = stages.iter().find(|(stage, _)| *stage == self.stage)?;
        Some(RenewalOutcome {
            decision_date: self.close_date.unwrap_or(self.changed_at.date_naive()),
            outcome: *outcome,
            arr_after: self
                .amount
                .filter(|a| a.is_finite() && *a >= 0.0 && *a <= crate::limits::MAX_ARR as f64)
                .map(|a| a.round() as u64),
        })
    }
}

/// The deployment's renewal stages, as `stage=decision,...`
/// (`closedwon=renewed,closedlost=churned`): each a stage's internal id and
/// a decision (renewed, churned, expanded, contracted).
pub fn renewal_stages(text: &str) -> Result<Vec<(String, RenewalDecision)>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (stage, decision) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{pair}` is not stage=decision"))?;
            let decision = RenewalDecision::parse(decision).ok_or_else(|| {
                format!(
                    "`{decision}` in `{pair}` is no decision: {}",
                    RenewalDecision::expected()
                )
            })?;
            let stage = stage.trim();
            if stage.is_empty() {
                return Err(format!("`{pair}` names no stage"));
            }
            Ok((stage.to_string(), decision))
        })
        .collect()
}

/// What a record mirrors.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Mirrored {
    /// The account's standing, on its company record.
    Company,
    /// A CSM task (its id), as a CRM task on the company.
    Task(String),
}

impl Mirrored {
    /// How the record is named in its account's records (`company`, `task:<id>`).
    pub fn key(&self) -> String {
        match self {
            Mirrored::Company => "company".into(),
            Mirrored::Task(id) => format!("task:{id}"),
        }
    }
}

/// What the CRM still owes a record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SyncState {
    /// Something is owed from `next_at`.
    Due { next_at: Timestamp },
    /// The CRM shows it as it stands.
    Synced,
    /// No company to write to (no trait, no company with the domain, more
    /// than one): waits for the account to change, then is tried again.
    Unmatched { why: String },
    /// Given up (a refusal, or a day of failures): kept until replayed.
    Dead { at: Timestamp, why: String },
}

/// What the CRM answered one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CrmOutcome {
    /// Created, with this id.
    Created(String),
    Written,
    /// The record written to is not there (deleted, merged away).
    Gone,
    /// 429 (or its burst window spent): wait this long.
    RateLimited(Duration),
    /// An answer that will not change (a 400's validation error, a token without the scope).
    Refused(String),
    /// A 5xx, a timeout before sending: worth another try.
    Failed(String),
    /// Handed to the CRM without an answer: it may have been made.
    Unknown(String),
}

/// What an attempt must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owed {
    /// Find the company to write to.
    Match,
    /// Look for a task created without an answer, since this moment.
    Find(Timestamp),
    Create,
    /// Write what it mirrors to the CRM's record of this id.
    Write(String),
    Nothing,
}

/// One account's company, or one task, in the CRM.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrmSync {
    pub account_id: AccountId,
    pub mirrored: Mirrored,
    /// The CRM's id of the record, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crm_id: Option<String>,
    /// How a company was found (`trait`, `domain`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched_by: Option<String>,
    /// What it mirrors changed since it was last written.
    #[serde(default)]
    pub stale: bool,
    /// A create was handed to the CRM without an answer at this moment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maybe_created_at: Option<Timestamp>,
    pub state: SyncState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_at: Option<Timestamp>,
    /// The CRM record last written (a company's changes when a trait names another).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<Timestamp>,
    #[serde(default)]
    pub failures: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<Claim>,
    #[serde(default)]
    pub version: u64,
}

impl CrmSync {
    /// A record owed at `now`: its company to find and write, or its task to create.
    pub fn new(account_id: &AccountId, mirrored: Mirrored, now: Timestamp) -> Self {
        CrmSync {
            account_id: account_id.clone(),
            mirrored,
            crm_id: None,
            matched_by: None,
            stale: true,
            maybe_created_at: None,
            state: SyncState::Due { next_at: now },
            synced_at: None,
            written_to: None,
            failing_since: None,
            failures: 0,
            claim: None,
            version: 0,
        }
    }

    pub fn next_at(&self) -> Option<Timestamp> {
        match self.state {
            SyncState::Due { next_at } => Some(next_at),
            _ => None,
        }
    }

    /// Whether an attempt may start at `now` (due, and no live claim).
    pub fn is_due(&self, now: Timestamp) -> bool {
        self.next_at().is_some_and(|at| at <= now) && self.claim.as_ref().is_none_or(|c| !c.is_live(now, CRM_LEASE))
    }

    pub fn is_dead(&self) -> bool {
        matches!(self.state, SyncState::Dead { .. })
    }

    pub fn owed(&self) -> Owed {
        match (&self.mirrored, &self.crm_id) {
            // A company's standing is read when it is written: whenever due, write it.
            (Mirrored::Company, Some(id)) => Owed::Write(id.clone()),
            (_, Some(id)) if self.stale => Owed::Write(id.clone()),
            (_, Some(_)) => Owed::Nothing,
            (Mirrored::Company, None) => Owed::Match,
            (Mirrored::Task(_), None) => match self.maybe_created_at {
                Some(at) => Owed::Find(at),
                None => Owed::Create,
            },
        }
    }

    /// What it mirrors changed at `now`: write it (or find its company again,
    /// when none was found). A dead record stays dead until replayed.
    pub fn changed(&mut self, now: Timestamp) {
        self.stale = true;
        if !self.is_dead() {
            self.state = SyncState::Due { next_at: now };
        }
    }

    /// The company found: write the standing to it.
    pub fn matched(&mut self, crm_id: String, by: &str, now: Timestamp) {
        self.crm_id = Some(crm_id);
        self.matched_by = Some(by.to_string());
        self.stale = true;
        self.state = SyncState::Due { next_at: now };
    }

    /// No company (or no company's task) to write to, for `why`.
    pub fn unmatched(&mut self, why: String) {
        self.claim = None;
        self.state = SyncState::Unmatched { why };
    }

    /// A task found where a create had no answer: it is the one made.
    pub fn found(&mut self, crm_id: String, now: Timestamp) {
        self.maybe_created_at = None;
        self.crm_id = Some(crm_id);
        // It was made as the task was then: write it as it is now.
        self.stale = true;
        self.state = SyncState::Due { next_at: now };
    }

    /// None found: create it (the next attempt).
    pub fn none_found(&mut self, now: Timestamp) {
        self.maybe_created_at = None;
        self.state = SyncState::Due { next_at: now };
    }

    /// An operator's replay at `now`: a dead record is tried again from the start of its schedule.
    pub fn replay(&mut self, now: Timestamp) {
        self.failing_since = None;
        self.failures = 0;
        self.claim = None;
        self.stale = true;
        self.state = SyncState::Due { next_at: now };
    }

    /// Records the CRM's answer to the attempt at `at`.
    pub fn record(&mut self, at: Timestamp, outcome: CrmOutcome) {
        self.claim = None;
        match outcome {
            CrmOutcome::Created(id) => {
                self.crm_id = Some(id);
                self.maybe_created_at = None;
                self.succeeded(at);
            }
            CrmOutcome::Written => self.succeeded(at),
            CrmOutcome::Gone => {
                // A company found by its domain is looked for again; one the
                // account names, or a task, is not there to write to.
                match (&self.mirrored, self.matched_by.as_deref()) {
                    (Mirrored::Company, Some("domain")) => {
                        self.crm_id = None;
                        self.matched_by = None;
                        self.state = SyncState::Due { next_at: at };
                    }
                    (Mirrored::Company, _) => {
                        let id = self.crm_id.take().unwrap_or_default();
                        self.matched_by = None;
                        self.state = SyncState::Unmatched {
                            why: format!("the CRM has no company {id} (the account's hubspot_company_id)"),
                        };
                    }
                    (Mirrored::Task(_), _) => self.die(at, "the CRM's task was deleted".into()),
                }
            }
            // Never given up for waiting: the CRM said when.
            CrmOutcome::RateLimited(wait) => {
                self.state = SyncState::Due {
                    next_at: at + wait.max(Duration::milliseconds(100)),
                }
            }
            CrmOutcome::Refused(why) => self.die(at, why),
            CrmOutcome::Failed(why) => self.failed(at, why),
            CrmOutcome::Unknown(why) => {
                if self.crm_id.is_none() && matches!(self.mirrored, Mirrored::Task(_)) {
                    self.maybe_created_at.get_or_insert(at);
                }
                self.failed(at, why)
            }
        }
    }

    fn succeeded(&mut self, at: Timestamp) {
        self.failing_since = None;
        self.failures = 0;
        self.synced_at = Some(at);
        self.written_to = self.crm_id.clone();
        // Created or written as it stood when the attempt was claimed; a
        // change since then lost the attempt its version, and marks it again.
        self.stale = false;
        self.state = match self.mirrored {
            Mirrored::Company => SyncState::Due {
                next_at: at + COMPANY_REFRESH,
            },
            Mirrored::Task(_) => SyncState::Synced,
        };
    }

    fn failed(&mut self, at: Timestamp, why: String) {
        let since = *self.failing_since.get_or_insert(at);
        self.failures += 1;
        match retry_at(since, self.failures, at) {
            Some(next_at) => self.state = SyncState::Due { next_at },
            None => self.die(
                at,
                format!("{} attempts failed over a day; the last: {why}", self.failures),
            ),
        }
    }

    fn die(&mut self, at: Timestamp, why: String) {
        self.state = SyncState::Dead { at, why };
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn at(s: i64) -> Timestamp {
        Utc.with_ymd_and_hms(2026, 5, 4, 9, 0, 0).unwrap() + Duration::seconds(s)
    }

    fn account() -> AccountId {
        AccountId("acme".into())
    }

    #[test]
    fn domains_are_read_from_domains_and_website_addresses() {
        for (given, want) in [
            ("acme.example", Some("acme.example")),
            ("https://www.Acme.Example/about?x=1", Some("acme.example")),
            ("http://app.acme.co.uk:8080", Some("app.acme.co.uk")),
            ("acme", None),
            ("acme..example", None),
            ("ac me.example", None),
            ("<script>.example", None),
        ] {
            assert_eq!(web_domain(given).as_deref(), want, "{given}");
        }
        assert_eq!(hubspot_id(" 1234 ").as_deref(), Some("1234"));
        assert_eq!(hubspot_id("12a"), None);
    }

    #[test]
    fn a_deal_in_a_renewal_stage_is_a_renewal_decided_on_its_close_date() {
        let stages = renewal_stages(" closedwon=renewed, closedlost = Churned ,").unwrap();
        let deal = Deal {
            id: "d1".into(),
            stage: "closedwon".into(),
            close_date: chrono::NaiveDate::from_ymd_opt(2027, 1, 15),
            amount: Some(52_000.4),
            changed_at: at(0),
        };
        let r = deal.renewal(&stages).unwrap();
        assert_eq!(
            (r.outcome, r.decision_date.to_string(), r.arr_after),
            (RenewalDecision::Renewed, "2027-01-15".into(), Some(52_000))
        );
        let lost = Deal {
            stage: "closedlost".into(),
            close_date: None,
            amount: Some(f64::NAN),
            ..deal.clone()
        };
        let r = lost.renewal(&stages).unwrap();
        assert_eq!(
            (r.outcome, r.decision_date, r.arr_after),
            (RenewalDecision::Churned, at(0).date_naive(), None)
        );
        assert!(Deal {
            stage: "appointmentscheduled".into(),
            ..deal
        }
        .renewal(&stages)
        .is_none());
        assert!(renewal_stages("closedwon=won").unwrap_err().contains("no decision"));
        assert!(renewal_stages("closedwon").unwrap_err().contains("stage=decision"));
    }

    #[test]
    fn a_task_is_created_once_then_written_when_it_changes() {
        let mut t = CrmSync::new(&account(), Mirrored::Task("t-1".into()), at(0));
        assert_eq!(t.owed(), Owed::Create);
        t.record(at(1), CrmOutcome::Created("901".into()));
        assert_eq!((t.owed(), &t.state), (Owed::Nothing, &SyncState::Synced));
        t.changed(at(60));
        assert_eq!(t.owed(), Owed::Write("901".into()));
        assert!(t.is_due(at(60)));
        t.record(at(61), CrmOutcome::Written);
        assert_eq!(
            (t.owed(), &t.state, t.synced_at),
            (Owed::Nothing, &SyncState::Synced, Some(at(61)))
        );
    }

    #[test]
    fn a_company_is_found_before_it_is_written() {
        let mut c = CrmSync::new(&account(), Mirrored::Company, at(0));
        assert_eq!(c.owed(), Owed::Match);
        c.unmatched("no company has the domain acme.example".into());
        assert!(!c.is_due(at(100)), "waits for the account to change");
        c.changed(at(200));
        assert_eq!(c.owed(), Owed::Match);
        c.matched("77".into(), "domain", at(200));
        assert_eq!(c.owed(), Owed::Write("77".into()));
        c.record(at(201), CrmOutcome::Written);
        assert_eq!(
            (c.next_at(), c.owed()),
            (Some(at(201) + COMPANY_REFRESH), Owed::Write("77".into())),
            "written again a day later, its health with it"
        );
    }

    #[test]
    fn a_company_gone_is_looked_for_again_unless_the_account_named_it() {
        let mut by_domain = CrmSync::new(&account(), Mirrored::Company, at(0));
        by_domain.matched("77".into(), "domain", at(0));
        by_domain.record(at(1), CrmOutcome::Gone);
        assert_eq!((by_domain.owed(), by_domain.next_at()), (Owed::Match, Some(at(1))));

        let mut named = CrmSync::new(&account(), Mirrored::Company, at(0));
        named.matched("77".into(), "trait", at(0));
        named.record(at(1), CrmOutcome::Gone);
        assert!(matches!(&named.state, SyncState::Unmatched { why } if why.contains("77")));
    }

    #[test]
    fn a_create_without_an_answer_is_looked_for_before_it_is_made_again() {
        let mut t = CrmSync::new(&account(), Mirrored::Task("t-1".into()), at(0));
        t.record(at(1), CrmOutcome::Unknown("timed out".into()));
        assert_eq!((t.owed(), t.next_at()), (Owed::Find(at(1)), Some(at(6))));
        t.found("901".into(), at(6));
        assert_eq!(t.owed(), Owed::Write("901".into()), "adopted and brought up to date");

        let mut u = CrmSync::new(&account(), Mirrored::Task("t-2".into()), at(0));
        u.record(at(1), CrmOutcome::Unknown("reset".into()));
        u.none_found(at(6));
        assert_eq!(u.owed(), Owed::Create);
    }

    #[test]
    fn rate_limits_wait_as_asked_and_never_kill_failures_die_after_a_day_and_replay_revives() {
        let mut t = CrmSync::new(&account(), Mirrored::Task("t-1".into()), at(0));
        for i in 0..50 {
            t.record(at(i * 10), CrmOutcome::RateLimited(Duration::seconds(10)));
            assert_eq!(t.next_at(), Some(at(i * 10 + 10)));
        }
        let mut now = at(0);
        while let Some(next) = {
            t.record(now, CrmOutcome::Failed("HTTP 502".into()));
            t.next_at()
        } {
            now = next;
        }
        assert!(t.is_dead() && t.failures == 8);
        assert_eq!(now - at(0), Duration::hours(24));
        t.changed(now);
        assert!(t.is_dead(), "a change does not revive it: an operator's replay does");
        t.replay(now);
        assert_eq!((t.owed(), t.is_due(now), t.failures), (Owed::Create, true, 0));

        let mut r = CrmSync::new(&account(), Mirrored::Company, at(0));
        r.matched("77".into(), "trait", at(0));
        r.record(at(1), CrmOutcome::Refused("PROPERTY_DOESNT_EXIST".into()));
        assert!(r.is_dead());
    }
}
