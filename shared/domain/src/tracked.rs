//! A milestone being tracked for one account: its definition at the time it
//! was tracked, its progress and its place in the lifecycle.

use std::sync::Arc;

use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::success_plan::{amount, Direction};

use super::{
    Account, AccountId, Claim, Criterion, IllegalTransition, MilestoneDef, MilestoneMap, MilestoneStatus, Observation,
    Phase, Playbook, Progress, Stage, Timestamp, Transition,
};

/// How the escalation of this milestone runs, taken from its map.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EscalationPolicy {
    /// Count playbook days as business days.
    #[serde(default)]
    pub business_days: bool,
    /// Day 5 also goes to the customer's executive sponsor.
    #[serde(default)]
    pub exec_sponsor: bool,
    /// How often and when its customer emails may go (milestones stored
    /// before there was one get the defaults).
    #[serde(default)]
    pub contact: crate::ContactPolicy,
    /// The ARR at risk the CSM and leadership stages need (0: none).
    #[serde(default)]
    pub min_arr_at_risk: crate::ArrThresholds,
    /// The control group rule (milestones stored before there was one: none held out).
    #[serde(default)]
    pub holdout: crate::Holdout,
    /// What follows a lapse (milestones stored before there was one get the defaults).
    #[serde(default)]
    pub after_playbook: crate::AfterPlaybook,
}

/// Which checkpoint of the account's success plan a tracked milestone
/// stands for: the map's `agreed_outcome` milestone makes one per
/// checkpoint of each agreed outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanCheckpoint {
    /// The map's milestone it was made from (its playbook, owner, weight).
    pub milestone: String,
    /// The agreed outcome's id in the plan.
    pub outcome: String,
    pub on: NaiveDate,
    /// The plan version that made it or last changed it: an older
    /// version's keeping never undoes a newer one's.
    #[serde(default)]
    pub plan_version: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrackedMilestone {
    pub(crate) account_id: AccountId,
    pub(crate) milestone_id: String,
    pub(crate) name: String,
    /// The map's words for the customer, when it has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) customer_title: Option<String>,
    pub(crate) phase: Phase,
    /// The role that owns it (`csm`, `onboarding`, ...): its CSM task goes to
    /// the account's contact for that role (see `Account::owner`).
    #[serde(default = "csm_role")]
    pub(crate) owner: String,
    pub(crate) criterion: Criterion,
    /// Whose move it is, as the map said; unset (tracked before maps said
    /// it), the criterion's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) moved_by: Option<crate::MovedBy>,
    pub(crate) arr_weight: f64,
    /// The 95% interval of a weight measured from renewal outcomes (`arr_weight: discovered`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) arr_weight_range: Option<[f64; 2]>,
    /// Shared, not copied: milestones are read and written on every event.
    pub(crate) playbook: Arc<Playbook>,
    #[serde(default)]
    pub(crate) policy: EscalationPolicy,
    /// Events before this instant (the contract start) do not count.
    pub(crate) starts_at: Timestamp,
    pub(crate) due_at: Timestamp,
    pub(crate) status: MilestoneStatus,
    pub(crate) progress: Progress,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reached_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) missed_at: Option<Timestamp>,
    /// When its playbook lapsed without a recovery (lapsed before this was kept: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) lapsed_at: Option<Timestamp>,
    /// The escalation workflow's execution name, set when the milestone is missed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) execution: Option<String>,
    /// True once the workflow is known to have started; until then the sweep
    /// keeps offering the milestone so a crash between the two loses nothing.
    #[serde(default)]
    pub(crate) escalation_started: bool,
    /// The status the milestone had when it was reached (to tell achieved
    /// from recovered, and the stage a recovery interrupted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reached_from: Option<MilestoneStatus>,
    /// Whether `MilestoneMissed` / the reached event went out on the bus. A
    /// state change is written first and announced after; until the flag is
    /// set, the next touch (a redelivered event, the next sweep) announces it,
    /// so a failed publish delays an announcement but never loses it.
    #[serde(default)]
    pub(crate) announced_missed: bool,
    #[serde(default)]
    pub(crate) announced_reached: bool,
    /// Held by the delivery publishing the reached event right now (one
    /// claimant id per delivery being applied), so that concurrent
    /// deliveries of the same event publish it once; taken over after
    /// `ANNOUNCE_LEASE`. (The DynamoDB adapter stores it as the flat
    /// `announcing_by` and `announcing_since` earlier versions wrote.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) announcing: Option<Claim>,
    /// Held by the sweep announcing and escalating a missed milestone (one
    /// id per run), so overlapping sweeps leave it alone; taken over after
    /// `ANNOUNCE_LEASE`. (Stored as `miss_claimed_by` and `miss_claimed_at`.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) miss_claim: Option<Claim>,
    /// The arm of the experiment a miss is in, decided by the sweep that
    /// announces it (`Holdout::group_of`); none before the miss.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) group: Option<crate::Group>,
    /// The map's heads-up before a miss, if it asks for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) heads_up: Option<crate::HeadsUpRule>,
    /// When the sweep looks at the heads-up again (the pace would pass the
    /// progress, or the contact policy's next slot); none: when its window opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) heads_up_look_at: Option<Timestamp>,
    /// The heads-up went, or never will (the due date came first).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) heads_up_done: bool,
    /// Who confirmed a manual milestone, written with the achievement it
    /// made: the log entry and `ManualMilestoneConfirmed` are made from it
    /// with the reached announcement, so a retry after a failure half way
    /// completes them, never with another confirmer's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) confirmation: Option<Confirmation>,
    /// The success plan checkpoint it stands for, when the map's
    /// `agreed_outcome` milestone made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) checkpoint: Option<PlanCheckpoint>,
    /// An expansion milestone's play (the map's `expansion:`): never missed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) expansion: Option<crate::ExpansionPlay>,
    /// The opportunity reaching it opened, priced then (see `open_opportunity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) opportunity: Option<crate::Opportunity>,
    /// Optimistic-concurrency version: every store write expects the version it read.
    #[serde(default)]
    pub version: u64,
}

/// A person (or a CRM acting for one) saying a manual milestone was reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    pub by: crate::actor::Actor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// When it was reached, as the confirmer says.
    pub at: Timestamp,
    /// When Milepost recorded it.
    pub recorded_at: Timestamp,
}

fn csm_role() -> String {
    super::account::CSM_ROLE.to_string()
}

/// How long a claim to publish a reached event holds (longer than any Lambda run).
pub const ANNOUNCE_LEASE: Duration = Duration::minutes(15);

/// What a product event did to a tracked milestone.
#[derive(Clone, Debug, PartialEq)]
pub enum Advance {
    /// The event does not concern this milestone, or changed nothing.
    Unchanged,
    /// Progress moved but the criterion is not met.
    Progressed,
    /// The criterion is now met; `from` is the status before.
    Reached { from: MilestoneStatus, at: Timestamp },
}

impl TrackedMilestone {
    pub fn new(account: &Account, map: &MilestoneMap, def: &MilestoneDef) -> Self {
        let starts_at = account.contract_start_at();
        TrackedMilestone {
            account_id: account.id.clone(),
            milestone_id: def.id.clone(),
            name: def.name.clone(),
            customer_title: def.customer_title.clone(),
            phase: def.phase,
            owner: def.owner.clone(),
            criterion: def.criterion.clone(),
            moved_by: Some(def.moved_by()),
            arr_weight: def.arr_weight(),
            arr_weight_range: def.arr_weight_range(),
            playbook: Arc::new(def.playbook.clone()),
            policy: EscalationPolicy {
                business_days: map.business_days,
                // Our own work never reaches the customer's executive.
                exec_sponsor: map.escalate_to_exec_sponsor && def.moved_by().is_customer(),
                contact: map.contact_policy,
                min_arr_at_risk: map.min_arr_at_risk,
                holdout: def.holdout_in(map),
                after_playbook: map.after_playbook.clone(),
            },
            starts_at,
            due_at: starts_at + Duration::days(i64::from(def.due_days)),
            status: MilestoneStatus::Pending,
            progress: def.criterion.new_progress(),
            reached_at: None,
            missed_at: None,
            execution: None,
            escalation_started: false,
            reached_from: None,
            lapsed_at: None,
            announced_missed: false,
            announced_reached: false,
            announcing: None,
            miss_claim: None,
            group: None,
            heads_up: def.heads_up,
            heads_up_look_at: None,
            heads_up_done: false,
            confirmation: None,
            checkpoint: None,
            expansion: def.expansion.clone(),
            opportunity: None,
            version: 0,
        }
    }

    /// What `def`, a map's `agreed_outcome` milestone, tracks for `account`:
    /// one milestone per checkpoint of each outcome of its success plan,
    /// dated on or after the day the plan was set (a checkpoint past by then
    /// is no news to anyone), met when a measure reported from then on (and
    /// from the outcome's start) reaches its value in the outcome's
    /// direction, due at the end of its day (UTC). Its id is
    /// `<milestone>.<outcome>.<date>`; its name and the customer's title
    /// say the outcome in the plan's words. None without a plan.
    pub fn checkpoints_of(account: &Account, map: &MilestoneMap, def: &MilestoneDef) -> Vec<TrackedMilestone> {
        let Some(plan) = &account.success_plan else {
            return Vec::new();
        };
        let from = plan.set_at.date_naive();
        let mut tracked = Vec::new();
        for outcome in &plan.outcomes {
            for c in outcome.checkpoints().into_iter().filter(|c| c.on >= from) {
                let mut m = TrackedMilestone::new(account, map, def);
                let goal = format!("{} by {}", amount(c.value, &outcome.unit), c.on.format("%-d %b %Y"));
                m.milestone_id = format!("{}.{}.{}", def.id, outcome.id, c.on);
                m.name = format!("{}: {}, {goal}", def.name, outcome.title);
                m.customer_title = Some(format!("{}: {goal}", outcome.title));
                m.criterion = Criterion::MetricThreshold {
                    event: outcome.measure.event.clone(),
                    property: outcome.measure.property.clone(),
                    op: match outcome.direction() {
                        Direction::Up => crate::CompareOp::Gte,
                        Direction::Down => crate::CompareOp::Lte,
                    },
                    value: c.value,
                };
                m.progress = m.criterion.new_progress();
                // Its pace runs from when the plan was agreed, not from the contract's start.
                let outcome_starts = outcome
                    .starts_on
                    .and_hms_opt(0, 0, 0)
                    .expect("midnight exists")
                    .and_utc();
                m.starts_at = m.starts_at.max(outcome_starts).max(plan.set_at);
                m.due_at = c.on.and_hms_opt(23, 59, 59).expect("a time of day").and_utc();
                m.checkpoint = Some(PlanCheckpoint {
                    milestone: def.id.clone(),
                    outcome: outcome.id.clone(),
                    on: c.on,
                    plan_version: plan.version,
                });
                tracked.push(m);
            }
        }
        tracked
    }

    /// A pending checkpoint brought to the plan's new version of it (another
    /// value, title or measure for the same date). The best measure it has
    /// seen counts towards the new value (as of when it was seen) if the
    /// measure is the same; missed or reached, it is history and stays as
    /// it was. Whether anything changed.
    pub fn follow(&mut self, wanted: &TrackedMilestone, licensed_seats: u32) -> Result<bool, IllegalTransition> {
        let same = self.criterion == wanted.criterion
            && self.name == wanted.name
            && self.customer_title == wanted.customer_title
            && self.starts_at == wanted.starts_at;
        let older = |c: &Option<PlanCheckpoint>| c.as_ref().map_or(0, |c| c.plan_version);
        if same || self.status != MilestoneStatus::Pending || older(&wanted.checkpoint) < older(&self.checkpoint) {
            return Ok(false);
        }
        let measured = |c: &Criterion| match c {
            Criterion::MetricThreshold { event, property, .. } => Some((event.clone(), property.clone())),
            _ => None,
        };
        let best = match &self.progress {
            Progress::Metric { best: Some(b), .. } if measured(&self.criterion) == measured(&wanted.criterion) => {
                Some(b.clone())
            }
            _ => None,
        };
        self.criterion = wanted.criterion.clone();
        self.name = wanted.name.clone();
        self.customer_title = wanted.customer_title.clone();
        self.checkpoint = wanted.checkpoint.clone();
        self.starts_at = wanted.starts_at;
        self.progress = self.criterion.new_progress();
        if let Some(b) = best {
            let obs = Observation {
                at: b.at,
                event_id: Arc::from("best-measure"),
                user_id: None,
                value: Some(b.value),
            };
            self.progress
                .observe_within(&self.criterion, &obs, licensed_seats, None);
            self.settle(licensed_seats)?;
        }
        Ok(true)
    }

    /// The success plan checkpoint it stands for, if it is one.
    pub fn checkpoint(&self) -> Option<&PlanCheckpoint> {
        self.checkpoint.as_ref()
    }

    /// The map's milestone it was tracked from: its own id, or for a
    /// checkpoint the `agreed_outcome` milestone that made it (what the
    /// report and discovery count it under).
    pub fn map_milestone_id(&self) -> &str {
        self.checkpoint.as_ref().map_or(&self.milestone_id, |c| &c.milestone)
    }

    /// Takes `def`'s weight as it now stands (a discovered weight measured
    /// anew, or the hand-set one that replaced a measured one); whether it
    /// changed. A weight set by hand on both sides stays the map's when the
    /// milestone was tracked.
    pub fn reweigh(&mut self, def: &MilestoneDef) -> bool {
        if def.discovered_weight.is_none() && self.arr_weight_range.is_none() {
            return false;
        }
        let (weight, range) = (def.arr_weight(), def.arr_weight_range());
        let changed = self.arr_weight != weight || self.arr_weight_range != range;
        (self.arr_weight, self.arr_weight_range) = (weight, range);
        changed
    }

    /// ARR at risk if this milestone is missed: the account's ARR × the milestone's weight.
    pub fn arr_at_risk(&self, account_arr: u64) -> u64 {
        (account_arr as f64 * self.arr_weight).round() as u64
    }

    /// Folds one observation in and moves the lifecycle when the criterion is met.
    ///
    /// A milestone already reached still takes events older than its
    /// achievement: one delivered late may move the achievement time earlier,
    /// so out-of-order delivery ends in the same state as in-order delivery.
    pub fn observe(&mut self, obs: &Observation, licensed_seats: u32) -> Result<Advance, IllegalTransition> {
        if obs.at < self.starts_at || !self.may_change_with(obs.at) {
            return Ok(Advance::Unchanged);
        }
        let lateness = Some(super::criterion::ALLOWED_LATENESS);
        if !self
            .progress
            .observe_within(&self.criterion, obs, licensed_seats, lateness)
        {
            return Ok(Advance::Unchanged);
        }
        self.settle(licensed_seats)
    }

    /// Claims, for `claimant`, the right to publish the reached event,
    /// unless it went out already or another claimant holds a live claim.
    /// Returns whether `claimant` holds the claim now.
    pub fn claim_announcement(&mut self, now: Timestamp, claimant: &str) -> bool {
        let held_by_another = self
            .announcing
            .as_ref()
            .is_some_and(|c| c.is_live(now, ANNOUNCE_LEASE) && !c.is_held_by(claimant));
        if !self.needs_reached_announcement() || held_by_another {
            return false;
        }
        self.announcing = Some(Claim::new(claimant, now));
        true
    }

    /// Ends an announcement claim (published, or given back to try again).
    pub fn end_announcement_claim(&mut self) {
        self.announcing = None;
    }

    /// The reached event went out on the bus.
    pub fn mark_reached_announced(&mut self) {
        self.announced_reached = true;
    }

    /// Claims the miss for the sweep run `claimant` (written with the miss,
    /// or taking over from a run that failed or crashed), so overlapping
    /// sweeps leave it alone until `ANNOUNCE_LEASE` passes.
    pub fn claim_miss(&mut self, claimant: &str, now: Timestamp) {
        self.miss_claim = Some(Claim::new(claimant, now));
    }

    /// Records the arm of the experiment the miss is in, before the
    /// announcement that carries it; a re-run draws the same one.
    pub fn draw_group(&mut self, account_arr: u64) {
        self.group = Some(self.group_for(account_arr));
    }

    /// The miss went out on the bus, in `group` unless one is recorded already.
    pub fn mark_miss_announced(&mut self, group: Option<crate::Group>) {
        self.announced_missed = true;
        self.group = self.group.or(group);
    }

    /// Records what a sweep run did (announced, started the escalation) and
    /// gives its claim back; what a concurrent write recorded is kept.
    pub fn release_miss(&mut self, announced: bool, group: Option<crate::Group>, started: bool) {
        self.announced_missed |= announced;
        self.group = self.group.or(group);
        self.escalation_started |= started;
        self.miss_claim = None;
    }

    /// The heads-up went, or never will.
    pub fn mark_heads_up_done(&mut self) {
        self.heads_up_done = true;
    }

    /// When the sweep looks at the heads-up again.
    pub fn look_at_heads_up_again(&mut self, at: Timestamp) {
        self.heads_up_look_at = Some(at);
    }

    /// Whether the sweep still has work on this milestone: pending (it may
    /// come due), or missed with its escalation not yet started. Exactly
    /// these milestones are in the stores' sparse due index. An expansion
    /// milestone never is: it cannot be missed.
    pub fn awaits_sweep(&self) -> bool {
        (self.status == MilestoneStatus::Pending && self.expansion.is_none())
            || (self.status == MilestoneStatus::Missed && !self.sweep_done())
    }

    /// An expansion milestone reached opens its opportunity for its owner's
    /// role, priced from `account` as it is now, once: a later event that
    /// backdates the reach, or a retry, leaves it as it was. Returns whether
    /// it opened one.
    pub fn open_opportunity(&mut self, account: &Account) -> bool {
        let (Some(play), None, Some(at), true) = (
            &self.expansion,
            &self.opportunity,
            self.reached_at,
            self.status.is_reached(),
        ) else {
            return false;
        };
        self.opportunity = Some(crate::Opportunity::open(play, &self.owner, account, at));
        true
    }

    pub fn expansion(&self) -> Option<&crate::ExpansionPlay> {
        self.expansion.as_ref()
    }

    pub fn opportunity(&self) -> Option<&crate::Opportunity> {
        self.opportunity.as_ref()
    }

    /// The opportunity's owner was told of it (or never can be).
    pub fn mark_opportunity_told(&mut self) {
        if let Some(o) = self.opportunity.as_mut() {
            o.owner_told = true;
        }
    }

    /// The sweep's work on a miss is over: its escalation started, or it was
    /// announced in the control group, which gets none.
    pub fn sweep_done(&self) -> bool {
        self.escalation_started || (self.announced_missed && self.group == Some(crate::Group::Control))
    }

    /// The group of this milestone's miss: the one recorded, or the one its rule draws.
    pub fn group_for(&self, account_arr: u64) -> crate::Group {
        self.group.unwrap_or_else(|| {
            self.policy
                .holdout
                .group_of(&self.account_id, &self.milestone_id, self.due_at, account_arr)
        })
    }

    /// Reached, and the reached event has not gone out on the bus yet.
    pub fn needs_reached_announcement(&self) -> bool {
        self.status.is_reached() && !self.announced_reached
    }

    /// Whether an event at `at` can still change this milestone: it is open,
    /// or the event is not later than its achievement.
    fn may_change_with(&self, at: Timestamp) -> bool {
        self.status.is_open() || self.reached_at.is_some_and(|r| at <= r)
    }

    /// Records a CSM's confirmation of a manual milestone, and who made it.
    pub fn mark_manual(&mut self, confirmation: &Confirmation) -> Result<Advance, IllegalTransition> {
        if !self.status.is_open() {
            return Ok(Advance::Unchanged);
        }
        if !self.progress.mark_manual(confirmation.at) {
            return Ok(Advance::Unchanged);
        }
        let advance = self.settle(0)?;
        if matches!(advance, Advance::Reached { .. }) {
            self.confirmation = Some(confirmation.clone());
        }
        Ok(advance)
    }

    fn settle(&mut self, licensed_seats: u32) -> Result<Advance, IllegalTransition> {
        match self.progress.reached_at(&self.criterion, licensed_seats) {
            Some(at) if self.status.is_reached() => {
                // Already reached: a late-delivered older event only backdates it
                // (and its opportunity, until announced: delivery order changes nothing).
                let reached = self.reached_at.map_or(at, |r| r.min(at));
                self.reached_at = Some(reached);
                if let (Some(o), false) = (self.opportunity.as_mut(), self.announced_reached) {
                    o.opened_at = reached;
                }
                Ok(Advance::Progressed)
            }
            Some(at) => {
                let from = self.status;
                self.status = self.status.apply(Transition::Reach)?;
                self.reached_at = Some(at);
                self.reached_from = Some(from);
                Ok(Advance::Reached { from, at })
            }
            None => Ok(Advance::Progressed),
        }
    }

    /// The sweep's step: pending and due becomes missed.
    pub fn miss(&mut self, now: Timestamp, execution: String) -> Result<(), IllegalTransition> {
        self.status = self.status.apply(Transition::Miss)?;
        self.missed_at = Some(now);
        self.execution = Some(execution);
        Ok(())
    }

    /// Moves to `stage` unless already there, so a retried stage is harmless.
    pub fn enter_stage(&mut self, stage: Stage) -> Result<bool, IllegalTransition> {
        if self.status == MilestoneStatus::Escalating(stage) {
            return Ok(false);
        }
        self.status = self.status.apply(Transition::EnterStage(stage))?;
        Ok(true)
    }

    /// Ends the playbook at `at` with the customer not caught up.
    pub fn finish(&mut self, at: Timestamp) -> Result<bool, IllegalTransition> {
        if self.status == MilestoneStatus::Lapsed {
            return Ok(false);
        }
        self.status = self.status.apply(Transition::Finish)?;
        self.lapsed_at = Some(at);
        Ok(true)
    }

    /// When its playbook lapsed, if it did (and this was kept).
    pub fn lapsed_at(&self) -> Option<Timestamp> {
        self.lapsed_at
    }

    /// The status this milestone had at `at`, derived from its timestamps; the
    /// health score uses it to look back 30 days.
    pub fn status_as_of(&self, at: Timestamp) -> AsOf {
        match self.reached_at {
            Some(r) if r <= at => {
                if r <= self.due_at {
                    AsOf::OnTime
                } else {
                    AsOf::Late
                }
            }
            _ if self.due_at <= at => AsOf::Overdue,
            _ => AsOf::NotDue,
        }
    }
}

/// Reading a tracked milestone. Its fields are private: it changes only
/// through the lifecycle methods below, which hold the transition rules.
impl TrackedMilestone {
    pub fn account_id(&self) -> &AccountId {
        &self.account_id
    }
    pub fn milestone_id(&self) -> &str {
        &self.milestone_id
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn phase(&self) -> Phase {
        self.phase
    }
    /// The role that owns it (`csm`, `onboarding`, ...): its CSM task goes to
    /// the account's contact for that role (see `Account::owner`).
    pub fn owner(&self) -> &str {
        &self.owner
    }
    pub fn criterion(&self) -> &Criterion {
        &self.criterion
    }
    /// What the customer reads: the map's `customer_title`, else the name.
    pub fn customer_title(&self) -> &str {
        self.customer_title.as_deref().unwrap_or(&self.name)
    }
    /// Whose move the milestone is.
    pub fn moved_by(&self) -> crate::MovedBy {
        self.moved_by
            .unwrap_or_else(|| crate::MovedBy::default_for(&self.criterion))
    }
    /// Whether its day 5 writes to the customer's executive sponsor: the
    /// map asks for it, and the milestone is the customer's to move.
    pub fn asks_sponsor(&self) -> bool {
        self.policy.exec_sponsor && self.moved_by().is_customer()
    }
    pub fn arr_weight(&self) -> f64 {
        self.arr_weight
    }

    /// The interval of a measured weight; none for one set by hand.
    pub fn arr_weight_range(&self) -> Option<[f64; 2]> {
        self.arr_weight_range
    }
    pub fn playbook(&self) -> &Arc<Playbook> {
        &self.playbook
    }
    pub fn policy(&self) -> &EscalationPolicy {
        &self.policy
    }
    /// Events before this instant (the contract start) do not count.
    pub fn starts_at(&self) -> Timestamp {
        self.starts_at
    }
    pub fn due_at(&self) -> Timestamp {
        self.due_at
    }
    pub fn status(&self) -> MilestoneStatus {
        self.status
    }
    pub fn progress(&self) -> &Progress {
        &self.progress
    }
    pub fn reached_at(&self) -> Option<Timestamp> {
        self.reached_at
    }
    pub fn missed_at(&self) -> Option<Timestamp> {
        self.missed_at
    }
    /// The escalation workflow's execution name, set when the milestone is missed.
    pub fn execution(&self) -> Option<&str> {
        self.execution.as_deref()
    }
    pub fn escalation_started(&self) -> bool {
        self.escalation_started
    }
    pub fn reached_from(&self) -> Option<MilestoneStatus> {
        self.reached_from
    }
    pub fn announced_missed(&self) -> bool {
        self.announced_missed
    }
    pub fn announced_reached(&self) -> bool {
        self.announced_reached
    }
    pub fn announcing(&self) -> Option<&Claim> {
        self.announcing.as_ref()
    }
    pub fn miss_claim(&self) -> Option<&Claim> {
        self.miss_claim.as_ref()
    }
    pub fn group(&self) -> Option<crate::Group> {
        self.group
    }
    pub fn heads_up(&self) -> Option<crate::HeadsUpRule> {
        self.heads_up
    }
    pub fn heads_up_look_at(&self) -> Option<Timestamp> {
        self.heads_up_look_at
    }
    pub fn heads_up_done(&self) -> bool {
        self.heads_up_done
    }
    pub fn confirmation(&self) -> Option<&Confirmation> {
        self.confirmation.as_ref()
    }
}

/// A change a lifecycle rule forbids, on a given milestone: a bug in
/// Milepost, never the sender's fault. Carries ids only, for the log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("account {account_id}, milestone {milestone_id}: {transition}")]
pub struct IllegalChange {
    pub account_id: AccountId,
    pub milestone_id: String,
    pub transition: IllegalTransition,
}

impl IllegalChange {
    pub fn of(m: &TrackedMilestone, transition: IllegalTransition) -> Self {
        IllegalChange {
            account_id: m.account_id.clone(),
            milestone_id: m.milestone_id.clone(),
            transition,
        }
    }
}

/// A milestone's standing at some instant, for scoring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AsOf {
    NotDue,
    OnTime,
    Late,
    Overdue,
}

#[cfg(test)]
mod checkpoint_tests {
    use chrono::TimeZone;

    use super::*;
    use crate::fixtures::{account, date, map_of, milestone_def};
    use crate::{AgreedOutcome, Checkpoint, Measure, ProductEvent, SuccessPlan};

    fn outcome(id: &str, baseline: f64, target: f64, checkpoints: &[(NaiveDate, f64)]) -> AgreedOutcome {
        AgreedOutcome {
            id: id.into(),
            title: format!("Outcome {id}"),
            measure: Measure {
                event: "outcome.measured".into(),
                property: id.into(),
            },
            unit: "%".into(),
            baseline,
            target,
            starts_on: date(2026, 1, 1),
            by: date(2027, 1, 1),
            checkpoints: checkpoints
                .iter()
                .map(|&(on, value)| Checkpoint { on, value })
                .collect(),
            agreed_by: "Dana Chen".into(),
        }
    }

    fn planned(outcomes: Vec<AgreedOutcome>, set_on: NaiveDate) -> Account {
        let mut a = account("acme", date(2026, 1, 1));
        a.success_plan = Some(SuccessPlan {
            account_id: a.id.clone(),
            version: 1,
            outcomes,
            set_at: set_on.and_hms_opt(9, 0, 0).unwrap().and_utc(),
            set_by: "maya@vendor.example".into(),
        });
        a
    }

    fn measured(m: &mut TrackedMilestone, property: &str, value: f64, on: NaiveDate) -> Advance {
        let event = ProductEvent {
            id: format!("m-{on}-{value}"),
            account_id: m.account_id.clone(),
            event: "outcome.measured".into(),
            timestamp: chrono::Utc.from_utc_datetime(&on.and_hms_opt(12, 0, 0).unwrap()),
            user_id: None,
            properties: serde_json::json!({ property: value }).as_object().unwrap().clone(),
        };
        let obs = m.criterion.observe(&event).expect("the checkpoint reads the measure");
        m.observe(&obs, 10).unwrap()
    }

    fn def() -> MilestoneDef {
        let mut def = milestone_def("outcome_on_pace", 0, Criterion::AgreedOutcome);
        def.name = "Agreed outcome on pace".into();
        def
    }

    #[test]
    fn each_checkpoint_from_the_day_the_plan_was_set_is_a_milestone_of_its_own() {
        let costs = outcome("costs", 0.0, 30.0, &[(date(2026, 4, 1), 5.0), (date(2026, 7, 1), 10.0)]);
        let close = outcome("days_to_close", 10.0, 3.0, &[(date(2026, 9, 1), 6.0)]);
        let account = planned(vec![costs, close], date(2026, 5, 10));
        let map = map_of(vec![def()]);
        let tracked = TrackedMilestone::checkpoints_of(&account, &map, &map.milestones[0]);
        let ids: Vec<&str> = tracked.iter().map(|m| m.milestone_id()).collect();
        assert_eq!(
            ids,
            [
                "outcome_on_pace.costs.2026-07-01",
                "outcome_on_pace.costs.2027-01-01",
                "outcome_on_pace.days_to_close.2026-09-01",
                "outcome_on_pace.days_to_close.2027-01-01",
            ],
            "April's checkpoint had passed when the plan was set"
        );
        let july = &tracked[0];
        assert_eq!(
            july.due_at(),
            date(2026, 7, 1).and_hms_opt(23, 59, 59).unwrap().and_utc(),
            "due at the end of its day"
        );
        assert_eq!(july.customer_title(), "Outcome costs: 10% by 1 Jul 2026");
        assert_eq!(july.name(), "Agreed outcome on pace: Outcome costs, 10% by 1 Jul 2026");
        assert_eq!(july.map_milestone_id(), "outcome_on_pace");
        assert_eq!(
            july.starts_at(),
            date(2026, 5, 10).and_hms_opt(9, 0, 0).unwrap().and_utc(),
            "its pace runs from when the plan was set, and measures count from then"
        );
        assert_eq!(
            july.checkpoint(),
            Some(&PlanCheckpoint {
                milestone: "outcome_on_pace".into(),
                outcome: "costs".into(),
                on: date(2026, 7, 1),
                plan_version: 1,
            })
        );
        assert!(
            matches!(
                tracked[2].criterion(),
                Criterion::MetricThreshold { op: crate::CompareOp::Lte, value, .. } if *value == 6.0
            ),
            "a target below its baseline is reached going down"
        );
        assert!(TrackedMilestone::checkpoints_of(
            &crate::fixtures::account("globex", date(2026, 1, 1)),
            &map,
            &map.milestones[0]
        )
        .is_empty());
    }

    #[test]
    fn a_measure_reaches_its_checkpoint_and_a_changed_plan_is_followed_while_pending() {
        let plan = |july: f64, october: f64| {
            planned(
                vec![outcome(
                    "costs",
                    0.0,
                    30.0,
                    &[(date(2026, 7, 1), july), (date(2026, 10, 1), october)],
                )],
                date(2026, 2, 1),
            )
        };
        let map = map_of(vec![def()]);
        let mut tracked = TrackedMilestone::checkpoints_of(&plan(10.0, 20.0), &map, &map.milestones[0]);
        let (july, october) = tracked.split_at_mut(1);
        let (july, october) = (&mut july[0], &mut october[0]);
        assert!(matches!(
            measured(july, "costs", 12.0, date(2026, 6, 20)),
            Advance::Reached { .. }
        ));
        assert!(matches!(
            measured(october, "costs", 12.0, date(2026, 6, 20)),
            Advance::Progressed
        ));
        assert_eq!(
            october.status(),
            MilestoneStatus::Pending,
            "12% is behind October's 20%"
        );

        let changed = TrackedMilestone::checkpoints_of(&plan(15.0, 11.0), &map, &map.milestones[0]);
        assert!(
            !july.follow(&changed[0], 10).unwrap(),
            "a reached checkpoint is history"
        );
        assert!(october.follow(&changed[1], 10).unwrap());
        assert_eq!(
            october.status(),
            MilestoneStatus::Achieved,
            "the best measure meets the new value"
        );
        assert_eq!(
            october.reached_at,
            Some(chrono::Utc.with_ymd_and_hms(2026, 6, 20, 12, 0, 0).unwrap())
        );
        assert!(
            !october.follow(&changed[1], 10).unwrap(),
            "following twice changes nothing"
        );
        // Keeping run late for an older version undoes nothing of a newer one's.
        let mut newer = TrackedMilestone::checkpoints_of(&plan(10.0, 25.0), &map, &map.milestones[0]);
        let mut v2 = plan(10.0, 19.0);
        v2.success_plan.as_mut().unwrap().version = 2;
        let v2_october = TrackedMilestone::checkpoints_of(&v2, &map, &map.milestones[0]).remove(1);
        assert!(newer[1].follow(&v2_october, 10).unwrap());
        assert!(!newer[1].follow(&changed[1], 10).unwrap(), "version 1 after version 2");
        assert!(matches!(newer[1].criterion(), Criterion::MetricThreshold { value, .. } if *value == 19.0));
    }
}
