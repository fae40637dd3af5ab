//! Milestone maps: per segment (and optionally per tenure), the milestones a
//! customer should reach, when, how we check it, and what to do when they don't.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Criterion, Phase, Segment, Tenure};
use crate::discovery::{KeptDiscovery, MeasuredWeight};

/// What each escalation stage says and asks for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Playbook {
    /// The points the day-1 outreach makes to the customer. Empty for a
    /// vendor-side milestone: nothing goes to the customer.
    #[serde(default)]
    pub outreach: String,
    /// The CSM's recommended first intervention (day 3).
    pub csm: String,
    /// What leadership is asked to do (day 5). Internal: never shown to a customer.
    pub leadership: String,
    /// What the day-5 email asks of the customer's executive sponsor, written
    /// for them. Required by `maps validate` where the map escalates to the
    /// sponsor; a milestone stored before it existed has none, and its
    /// sponsor email then asks for nothing specific.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sponsor: Option<String>,
    /// Guides linked from the follow-up email.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guides: Vec<Guide>,
}

impl Playbook {
    /// The texts meant for our own people only (the CSM's and leadership's,
    /// those written: an expansion milestone has no leadership text): no
    /// customer-facing email may contain them.
    pub fn internal_texts(&self) -> Vec<&str> {
        [self.csm.as_str(), self.leadership.as_str()]
            .into_iter()
            .filter(|t| !t.trim().is_empty())
            .collect()
    }
}

/// A guide the follow-up email links to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "GuideForm")]
pub struct Guide {
    pub title: String,
    /// An https URL. `None` only for guides stored before guides had links:
    /// those render as plain titles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl Guide {
    pub fn new(title: impl Into<String>, url: impl Into<String>) -> Self {
        Guide {
            title: title.into(),
            url: Some(url.into()),
        }
    }
}

/// What a stored guide may look like: a title alone (milestones stored
/// before guides had links) or a title and a link.
#[derive(Deserialize)]
#[serde(untagged)]
enum GuideForm {
    Titled {
        title: String,
        #[serde(default)]
        url: Option<String>,
    },
    TitleOnly(String),
}

impl From<GuideForm> for Guide {
    fn from(form: GuideForm) -> Self {
        match form {
            GuideForm::Titled { title, url } => Guide { title, url },
            GuideForm::TitleOnly(title) => Guide { title, url: None },
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MilestoneDef {
    pub id: String,
    /// Our name for it, as leadership and the CSM read it.
    pub name: String,
    /// What the customer reads in their email and in the product ("Your
    /// first live dashboard"); unset, the name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_title: Option<String>,
    pub phase: Phase,
    pub due_days: u32,
    /// The role that owns the milestone: `csm`, `onboarding`, `ae`, ...
    pub owner: String,
    pub criterion: Criterion,
    /// Share of the account's ARR at risk when the milestone is missed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arr_weight: Option<f64>,
    /// `arr_weight: discovered`: the share is measured from renewal
    /// outcomes (the latest kept discovery), not set by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovered_weight: Option<DiscoveredWeight>,
    /// A heads-up before a miss (`warn_before_days`, `warn_champion` in the map).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heads_up: Option<HeadsUpRule>,
    /// The share of this milestone's misses held out of the playbook, if not the map's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holdout: Option<f64>,
    /// Whose move the milestone is (`moved_by:` in the map); unset, the
    /// criterion's default (`MovedBy::default_for`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_by: Option<MovedBy>,
    pub playbook: Playbook,
    /// An `expansion` phase milestone's play: what reaching it opens, for
    /// its `owner`. Its playbook holds only the play, as the owner's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expansion: Option<crate::expansion::ExpansionPlay>,
}

/// Who can move a milestone: the customer, in the product, or we, the
/// vendor (an executive sponsor named, a business review held). A
/// vendor-side miss sends nothing to the customer: its day 1 is its
/// owner's task, and its escalation stays inside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MovedBy {
    Customer,
    Vendor,
}

impl MovedBy {
    pub const NAMES: [&'static str; 2] = ["customer", "vendor"];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "customer" => Some(MovedBy::Customer),
            "vendor" => Some(MovedBy::Vendor),
            _ => None,
        }
    }

    /// A manual milestone is confirmed by its owner: ours to move, unless
    /// the map says otherwise. Anything the product measures is the customer's.
    pub fn default_for(criterion: &Criterion) -> Self {
        match criterion {
            Criterion::Manual => MovedBy::Vendor,
            _ => MovedBy::Customer,
        }
    }

    pub fn is_customer(self) -> bool {
        self == MovedBy::Customer
    }
}

/// The map's heads-up rule for one milestone (see `heads_up.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadsUpRule {
    /// How many days before the due date a heads-up may go.
    pub days_before: u32,
    /// Whether the customer's champion gets one too (under the contact policy).
    #[serde(default)]
    pub champion: bool,
}

/// The earliest a heads-up may come before its due date.
pub const MAX_WARN_DAYS: u32 = 30;

/// ARR share assumed at risk for a milestone without its own `arr_weight`.
pub const DEFAULT_ARR_WEIGHT: f64 = 0.1;

/// A discovered weight as it stands: the measure from the latest kept
/// discovery, or why there is none yet (the default weight stands in).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DiscoveredWeight {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured: Option<MeasuredWeight>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmeasured: Option<String>,
}

impl MilestoneDef {
    /// The share of ARR a miss puts at risk: measured (`discovered`), set, or the default.
    pub fn arr_weight(&self) -> f64 {
        match self.discovered_weight.as_ref().and_then(|d| d.measured.as_ref()) {
            Some(measured) => measured.weight(),
            None => self.arr_weight.unwrap_or(DEFAULT_ARR_WEIGHT),
        }
    }

    /// The 95% interval of a measured weight; none for a weight set by hand.
    pub fn arr_weight_range(&self) -> Option<[f64; 2]> {
        self.discovered_weight
            .as_ref()
            .and_then(|d| d.measured.as_ref())
            .map(MeasuredWeight::range)
    }

    pub fn moved_by(&self) -> MovedBy {
        self.moved_by.unwrap_or_else(|| MovedBy::default_for(&self.criterion))
    }

    /// The control group rule of this milestone in `map`: its own share, or the map's.
    pub fn holdout_in(&self, map: &MilestoneMap) -> crate::Holdout {
        crate::Holdout {
            share: self.holdout.unwrap_or(map.holdout.share),
            ..map.holdout
        }
    }
}

/// Which accounts a map applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MapSegment {
    All,
    #[serde(untagged)]
    Only(Segment),
}

impl MapSegment {
    pub fn parse(s: &str) -> Option<MapSegment> {
        if s == "all" {
            Some(MapSegment::All)
        } else {
            s.parse().ok().map(MapSegment::Only)
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            MapSegment::All => "all",
            MapSegment::Only(s) => s.as_str(),
        }
    }
}

/// The type of an event property a map declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PropertyType {
    Number,
    String,
    Boolean,
    Timestamp,
}

impl PropertyType {
    pub const NAMES: [&'static str; 4] = ["number", "string", "boolean", "timestamp"];
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "number" => PropertyType::Number,
            "string" => PropertyType::String,
            "boolean" => PropertyType::Boolean,
            "timestamp" => PropertyType::Timestamp,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MilestoneMap {
    pub segment: MapSegment,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenure: Option<Tenure>,
    /// Day-5 leadership escalation also goes to the customer's executive sponsor.
    #[serde(default)]
    pub escalate_to_exec_sponsor: bool,
    /// Count playbook days as business days (skip weekends).
    #[serde(default)]
    pub business_days: bool,
    /// How often and when a customer contact may be emailed.
    #[serde(default)]
    pub contact_policy: crate::ContactPolicy,
    /// Below these, a miss skips the CSM stage (tech-touch) or the
    /// leadership stage, and goes to its held-back list instead.
    #[serde(default)]
    pub min_arr_at_risk: crate::ArrThresholds,
    /// The control group: `holdout` (share of misses with no playbook) and
    /// `holdout_max_arr` in the map.
    #[serde(default)]
    pub holdout: crate::Holdout,
    /// After a lapse: the owner's reminders (`lapsed_reminder_days`) and the
    /// raise of an untouched task (`task_sla_business_days`).
    #[serde(default)]
    pub after_playbook: crate::AfterPlaybook,
    /// Declared event properties: event name → property name → type.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub events: BTreeMap<String, BTreeMap<String, PropertyType>>,
    pub milestones: Vec<MilestoneDef>,
}

impl MilestoneMap {
    pub fn milestone(&self, id: &str) -> Option<&MilestoneDef> {
        self.milestones.iter().find(|m| m.id == id)
    }

    /// The scope a discovery's lines name for this map: its segment and
    /// tenure, `all` for either it leaves open.
    pub fn discovery_scope(&self) -> (&'static str, &'static str) {
        (self.segment.as_str(), self.tenure.map_or("all", Tenure::as_str))
    }

    /// Each `arr_weight: discovered` milestone measured anew from `kept`
    /// (its line for this map's scope, else, or when that line's cohorts are
    /// small, the overall one); whether any weight changed.
    pub fn weigh(&mut self, kept: Option<&KeptDiscovery>) -> bool {
        let (segment, tenure) = self.discovery_scope();
        let mut changed = false;
        for def in &mut self.milestones {
            let Some(discovered) = def.discovered_weight.as_mut() else {
                continue;
            };
            let measured = match kept {
                None => Err("no discovery kept yet: run `milepost discover --from-store`".to_string()),
                Some(kept) => kept
                    .line_for(&def.id, segment, tenure)
                    // A few accounts would set the weight of every miss: the overall line instead.
                    .filter(|l| !l.small_cohort)
                    .or_else(|| kept.line_for(&def.id, "all", "all"))
                    .ok_or_else(|| "the kept discovery has no line for it".to_string())
                    .and_then(|line| MeasuredWeight::of(line, kept)),
            };
            let now = match measured {
                Ok(m) => DiscoveredWeight {
                    measured: Some(m),
                    unmeasured: None,
                },
                Err(why) => DiscoveredWeight {
                    measured: None,
                    unmeasured: Some(why),
                },
            };
            changed |= *discovered != now;
            *discovered = now;
        }
        changed
    }

    /// How well this map fits an account: `None` when it does not apply,
    /// otherwise higher is more specific (segment beats `all`, tenure beats none).
    pub fn specificity(&self, segment: Segment, tenure: Tenure) -> Option<u8> {
        let seg = match self.segment {
            MapSegment::Only(s) if s == segment => 2,
            MapSegment::All => 0,
            MapSegment::Only(_) => return None,
        };
        let ten = match self.tenure {
            Some(t) if t == tenure => 1,
            None => 0,
            Some(_) => return None,
        };
        Some(seg + ten)
    }

    /// The most specific of `maps` for an account of this segment and tenure.
    pub fn select(maps: &[MilestoneMap], segment: Segment, tenure: Tenure) -> Option<&MilestoneMap> {
        maps.iter()
            .filter_map(|m| m.specificity(segment, tenure).map(|s| (s, m)))
            .max_by_key(|(s, _)| *s)
            .map(|(_, m)| m)
    }
}
