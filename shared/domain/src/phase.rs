//! The lifecycle phases of a contract year, which milestones belong to.

use std::fmt;
use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

/// The lifecycle phase a milestone belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Onboarding,
    Adoption,
    ValueRealization,
    RenewalPrep,
    /// Growth, not risk: a milestone of this phase is never missed; reaching
    /// it opens an expansion opportunity (`MilestoneDef::expansion`).
    Expansion,
}

impl Phase {
    pub const ALL: [Phase; 5] = [
        Phase::Onboarding,
        Phase::Adoption,
        Phase::ValueRealization,
        Phase::RenewalPrep,
        Phase::Expansion,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Onboarding => "onboarding",
            Phase::Adoption => "adoption",
            Phase::ValueRealization => "value_realization",
            Phase::RenewalPrep => "renewal_prep",
            Phase::Expansion => "expansion",
        }
    }

    pub fn parse(s: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Contract months the phase spans (month m covers days 30(m-1)+1 ..= 30m):
    /// onboarding 1–3, adoption 3–9, value realization 6–10, renewal prep 10–12;
    /// expansion the whole year.
    pub fn months(self) -> RangeInclusive<u32> {
        match self {
            Phase::Onboarding => 1..=3,
            Phase::Adoption => 3..=9,
            Phase::ValueRealization => 6..=10,
            Phase::RenewalPrep => 10..=12,
            Phase::Expansion => 1..=12,
        }
    }

    /// The `due_days` a milestone of this phase may have.
    pub fn due_days(self) -> RangeInclusive<u32> {
        let months = self.months();
        (30 * (months.start() - 1) + 1)..=(30 * months.end())
    }

    /// How much a milestone of this phase weighs in the health score: later
    /// phases carry more of the renewal decision. Expansion none: not
    /// reaching a growth milestone is no sign of risk.
    pub fn health_weight(self) -> f64 {
        match self {
            Phase::Onboarding => 1.0,
            Phase::Adoption => 1.5,
            Phase::ValueRealization => 2.0,
            Phase::RenewalPrep => 2.0,
            Phase::Expansion => 0.0,
        }
    }

    pub fn is_expansion(self) -> bool {
        self == Phase::Expansion
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
