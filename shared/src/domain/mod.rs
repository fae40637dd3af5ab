//! The domain: accounts, milestone maps, criteria, the milestone lifecycle,
//! escalation schedules and health scores. No AWS types live here.

pub mod account;
pub mod activity;
pub mod address;
pub mod criterion;
pub mod discovery;
pub mod events;
pub mod health;
pub mod lifecycle;
pub mod map;
pub mod schedule;
pub mod tracked;

pub use account::{Account, AccountId, Contact, Segment, Tenure};
pub use activity::AccountActivity;
pub use address::{AddressError, EmailAddress};
pub use criterion::{CompareOp, Criterion, Observation, Progress};
pub use events::{DomainEvent, ProductEvent};
pub use lifecycle::{IllegalTransition, MilestoneStatus, Stage, Transition};
pub use map::{MapSegment, MilestoneDef, MilestoneMap, Phase, Playbook};
pub use schedule::{EscalationSchedule, PlaybookTiming};
pub use tracked::TrackedMilestone;

/// Every instant in Milepost is UTC; local time only matters when scheduling
/// emails for a reader, and that goes through the account's timezone.
pub type Timestamp = chrono::DateTime<chrono::Utc>;
