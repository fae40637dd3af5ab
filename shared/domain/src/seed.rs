//! For tests and benches only, like `fixtures`: aggregates put straight
//! into a state their lifecycle can reach, to seed a store with history.
//! Production code changes them only through their methods. (Its own module:
//! `fixtures` is used by the aggregates' own tests, this module uses the
//! aggregates.)

use crate::{Group, MilestoneStatus, Progress, Timestamp, TrackedMilestone};

/// A tracked milestone put straight into a state its lifecycle can reach,
/// with chosen times: for tests and benches that seed a store with history.
/// Production code moves a milestone only through its lifecycle methods.
pub struct Seeded<'a>(&'a mut TrackedMilestone);

pub fn milestone(m: &mut TrackedMilestone) -> Seeded<'_> {
    Seeded(m)
}

impl Seeded<'_> {
    pub fn due_at(self, at: Timestamp) -> Self {
        self.0.due_at = at;
        self
    }

    /// Lapsed at `at`.
    pub fn lapsed(self, at: Timestamp) -> Self {
        self.0.status = MilestoneStatus::Lapsed;
        self.0.lapsed_at = Some(at);
        self
    }

    pub fn status(self, status: MilestoneStatus) -> Self {
        self.0.status = status;
        self
    }

    pub fn reached(self, at: Timestamp, from: Option<MilestoneStatus>) -> Self {
        self.0.reached_at = Some(at);
        self.0.reached_from = from;
        self
    }

    pub fn missed(self, at: Timestamp, group: Option<Group>) -> Self {
        self.0.missed_at = Some(at);
        self.0.group = group;
        self
    }

    pub fn announcing(self, claim: crate::Claim) -> Self {
        self.0.announcing = Some(claim);
        self
    }

    pub fn progress(self, progress: Progress) -> Self {
        self.0.progress = progress;
        self
    }
}

/// A note on `task` as if a person had written it with an action.
pub fn task_note(task: &mut crate::CsmTask, note: crate::TaskNote) {
    task.notes.push(note);
}
