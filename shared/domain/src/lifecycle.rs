//! The tracked-milestone lifecycle, as an explicit state machine.
//!
//! ```text
//! pending ──reach──▶ achieved
//!    │
//!  miss
//!    ▼
//! missed ──enter(1)──▶ escalating(1) ──enter(2)──▶ escalating(2) ──enter(3)──▶ escalating(3) ──finish──▶ lapsed
//!    │                      │                           │                           │                    │
//!    └─────────reach────────┴───────────reach───────────┴──────────reach────────────┴───────reach────────┴──▶ recovered
//! ```
//! `achieved` and `recovered` are final. A customer who catches up after the
//! escalation lapsed is still recovered: the milestone was reached late.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The escalation stages of the playbook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Day 1: email, in-app message, follow-up email.
    Outreach,
    /// Day 3: a task for the CSM, with context.
    CsmTask,
    /// Day 5: leadership escalation.
    Leadership,
}

impl Stage {
    pub const ALL: [Stage; 3] = [Stage::Outreach, Stage::CsmTask, Stage::Leadership];

    pub fn number(self) -> u8 {
        match self {
            Stage::Outreach => 1,
            Stage::CsmTask => 2,
            Stage::Leadership => 3,
        }
    }

    fn from_number(n: u8) -> Option<Self> {
        Stage::ALL.get(usize::from(n).checked_sub(1)?).copied()
    }

    pub fn next(self) -> Option<Self> {
        Stage::from_number(self.number() + 1)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum MilestoneStatus {
    Pending,
    Achieved,
    Missed,
    Escalating(Stage),
    Recovered,
    Lapsed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transition {
    /// The criterion was met.
    Reach,
    /// The due time passed with the criterion unmet (the sweep).
    Miss,
    /// The escalation entered a stage.
    EnterStage(Stage),
    /// The playbook ran its last stage and the customer did not catch up.
    Finish,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("illegal milestone transition: {transition:?} from {from}")]
pub struct IllegalTransition {
    pub from: MilestoneStatus,
    pub transition: Transition,
}

impl MilestoneStatus {
    pub const ALL: [MilestoneStatus; 8] = [
        MilestoneStatus::Pending,
        MilestoneStatus::Achieved,
        MilestoneStatus::Missed,
        MilestoneStatus::Escalating(Stage::Outreach),
        MilestoneStatus::Escalating(Stage::CsmTask),
        MilestoneStatus::Escalating(Stage::Leadership),
        MilestoneStatus::Recovered,
        MilestoneStatus::Lapsed,
    ];

    /// The only place a status changes. Anything not listed is illegal.
    pub fn apply(self, transition: Transition) -> Result<MilestoneStatus, IllegalTransition> {
        use MilestoneStatus::*;
        use Transition::*;
        let next = match (self, transition) {
            (Pending, Reach) => Achieved,
            (Pending, Miss) => Missed,
            (Missed, EnterStage(Stage::Outreach)) => Escalating(Stage::Outreach),
            (Escalating(current), EnterStage(stage)) if current.next() == Some(stage) => Escalating(stage),
            (Missed | Escalating(_) | Lapsed, Reach) => Recovered,
            (Escalating(Stage::Leadership), Finish) => Lapsed,
            _ => return Err(IllegalTransition { from: self, transition }),
        };
        Ok(next)
    }

    /// Still waiting to be reached: product events may change it.
    pub fn is_open(self) -> bool {
        !matches!(self, MilestoneStatus::Achieved | MilestoneStatus::Recovered)
    }

    /// Reached, on time or late.
    pub fn is_reached(self) -> bool {
        !self.is_open()
    }

    pub fn stage(self) -> Option<Stage> {
        match self {
            MilestoneStatus::Escalating(s) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Display for MilestoneStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MilestoneStatus::Pending => f.write_str("pending"),
            MilestoneStatus::Achieved => f.write_str("achieved"),
            MilestoneStatus::Missed => f.write_str("missed"),
            MilestoneStatus::Escalating(s) => write!(f, "escalating_{}", s.number()),
            MilestoneStatus::Recovered => f.write_str("recovered"),
            MilestoneStatus::Lapsed => f.write_str("lapsed"),
        }
    }
}

impl FromStr for MilestoneStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MilestoneStatus::ALL
            .into_iter()
            .find(|status| status.to_string() == s)
            .ok_or_else(|| format!("unknown milestone status `{s}`"))
    }
}

impl From<MilestoneStatus> for String {
    fn from(s: MilestoneStatus) -> String {
        s.to_string()
    }
}

impl TryFrom<String> for MilestoneStatus {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MilestoneStatus::*;

    fn all_transitions() -> Vec<Transition> {
        let mut t = vec![Transition::Reach, Transition::Miss, Transition::Finish];
        t.extend(Stage::ALL.map(Transition::EnterStage));
        t
    }

    /// The whole table, written out independently of `apply`: every pair of
    /// (status, transition) is checked, legal ones for their target, the rest
    /// for an error.
    #[test]
    fn every_status_and_transition_pair_matches_the_table() {
        let legal: Vec<(MilestoneStatus, Transition, MilestoneStatus)> = vec![
            (Pending, Transition::Reach, Achieved),
            (Pending, Transition::Miss, Missed),
            (
                Missed,
                Transition::EnterStage(Stage::Outreach),
                Escalating(Stage::Outreach),
            ),
            (
                Escalating(Stage::Outreach),
                Transition::EnterStage(Stage::CsmTask),
                Escalating(Stage::CsmTask),
            ),
            (
                Escalating(Stage::CsmTask),
                Transition::EnterStage(Stage::Leadership),
                Escalating(Stage::Leadership),
            ),
            (Missed, Transition::Reach, Recovered),
            (Escalating(Stage::Outreach), Transition::Reach, Recovered),
            (Escalating(Stage::CsmTask), Transition::Reach, Recovered),
            (Escalating(Stage::Leadership), Transition::Reach, Recovered),
            (Lapsed, Transition::Reach, Recovered),
            (Escalating(Stage::Leadership), Transition::Finish, Lapsed),
        ];
        let mut checked = 0;
        for from in MilestoneStatus::ALL {
            for t in all_transitions() {
                let expected = legal
                    .iter()
                    .find(|(f, tr, _)| *f == from && *tr == t)
                    .map(|(_, _, to)| *to);
                match (from.apply(t), expected) {
                    (Ok(got), Some(want)) => assert_eq!(got, want, "{from} + {t:?}"),
                    (Err(e), None) => {
                        assert_eq!(e.from, from);
                        assert_eq!(e.transition, t);
                    }
                    (got, want) => panic!("{from} + {t:?}: got {got:?}, table says {want:?}"),
                }
                checked += 1;
            }
        }
        assert_eq!(checked, 8 * 6);
    }

    #[test]
    fn final_states_accept_nothing() {
        for from in [Achieved, Recovered] {
            for t in all_transitions() {
                assert!(from.apply(t).is_err(), "{from} accepted {t:?}");
            }
        }
    }

    #[test]
    fn stages_cannot_be_skipped_or_repeated() {
        assert!(Missed.apply(Transition::EnterStage(Stage::CsmTask)).is_err());
        assert!(Escalating(Stage::Outreach)
            .apply(Transition::EnterStage(Stage::Leadership))
            .is_err());
        assert!(Escalating(Stage::CsmTask)
            .apply(Transition::EnterStage(Stage::CsmTask))
            .is_err());
        assert!(Escalating(Stage::CsmTask)
            .apply(Transition::EnterStage(Stage::Outreach))
            .is_err());
    }

    #[test]
    fn status_round_trips_through_its_stored_form() {
        for s in MilestoneStatus::ALL {
            assert_eq!(s.to_string().parse::<MilestoneStatus>(), Ok(s));
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(serde_json::from_str::<MilestoneStatus>(&json).unwrap(), s);
        }
        assert!("escalating_4".parse::<MilestoneStatus>().is_err());
    }
}

/// Where in the playbook a recovered customer caught up: the last stage
/// the escalation had entered, or after its lapse. The one definition
/// `summary.json`, `MilestoneRecovered.recovered_after` and `milepost
/// report` count by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveredAfter {
    #[serde(rename = "before_day_1")]
    BeforeDay1,
    Outreach,
    CsmTask,
    Leadership,
    AfterLapse,
}

impl RecoveredAfter {
    /// From the milestone's status when the customer caught up.
    pub fn of(from: MilestoneStatus) -> Self {
        match from {
            MilestoneStatus::Escalating(Stage::Outreach) => RecoveredAfter::Outreach,
            MilestoneStatus::Escalating(Stage::CsmTask) => RecoveredAfter::CsmTask,
            MilestoneStatus::Escalating(Stage::Leadership) => RecoveredAfter::Leadership,
            MilestoneStatus::Lapsed => RecoveredAfter::AfterLapse,
            _ => RecoveredAfter::BeforeDay1,
        }
    }

    /// How the demo's summary names it.
    pub fn label(self) -> &'static str {
        match self {
            RecoveredAfter::BeforeDay1 => "before day 1",
            RecoveredAfter::Outreach => "after day-1 outreach",
            RecoveredAfter::CsmTask => "after the CSM task",
            RecoveredAfter::Leadership => "after leadership",
            RecoveredAfter::AfterLapse => "after the playbook lapsed",
        }
    }
}
