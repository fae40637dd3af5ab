//! Milepost's domain: plain values and the rules over them. Accounts and
//! their traits, milestone maps, criteria and their progress, the milestone
//! lifecycle, applying an event to an account, escalation schedules and
//! steps, health scores, CSM tasks, outgoing email as values, the limits of
//! what can be stored, and the statistics of `milepost discover`.
//!
//! No AWS types, no async runtime, no templates: `make test` checks that this
//! crate's dependency tree holds no `aws-*`, `tokio`, `lambda_*` or `askama`.

pub mod account;
pub mod account_id;
pub mod account_state;
pub mod account_traits;
pub mod activity;
pub mod actor;
pub mod address;
pub mod after_playbook;
pub mod claim;
pub mod contact_policy;
pub mod criterion;
pub mod crm;
pub mod csm_task;
pub mod discovery;
pub mod escalation;
pub mod events;
pub mod expansion;
pub mod field_error;
pub mod fixtures;
pub mod heads_up;
pub mod health;
pub mod held_back;
pub mod holdout;
pub mod leader_queue;
pub mod lifecycle;
pub mod limits;
pub mod map;
pub mod map_review;
pub mod numbers;
pub mod outgoing;
pub mod pause;
pub mod phase;
pub mod portfolio;
pub mod renewal;
pub mod report;
pub mod schedule;
pub mod seed;
pub mod slack;
pub mod success_plan;
pub mod suppression;
pub mod tracked;
pub mod webhooks;

pub use account::{is_role_name, Account, AccountId, Contact, Owner, Segment, Tenure, CSM_ROLE};
pub use account_state::{AccountState, Announcements, BatchChanges, Changes};
pub use account_traits::AccountTraits;
pub use activity::AccountActivity;
pub use actor::Actor;
pub use address::{AddressError, EmailAddress};
pub use after_playbook::{AfterPlaybook, Duty, TaskFacts, Verdict};
pub use claim::Claim;
pub use contact_policy::{ContactPolicy, ContactRecord, Slot};
pub use criterion::{CompareOp, Criterion, Observation, Progress};
pub use csm_task::{
    CloseReason, CsmTask, DismissReason, Outcome, TaskAction, TaskBrief, TaskChange, TaskNote, TaskRefusal, TaskSla,
    TaskStatus,
};
pub use escalation::{execution_name, sponsor_email_at, EscalationLogEntry, EscalationRequest, Step, StepOutcome};
pub use events::{DomainEvent, ProductEvent, StageSkip};
pub use expansion::{ExpansionPlay, Opportunity};
pub use field_error::FieldError;
pub use heads_up::{BehindPace, HeadsUpCheck};
pub use held_back::{ArrThresholds, HeldBack, HeldBackList, HeldMiss};
pub use holdout::{Group, Holdout};
pub use leader_queue::{LapsedMiss, LeaderQueue, QueuedEscalation, LEADER_POLICY};
pub use lifecycle::{IllegalTransition, MilestoneStatus, RecoveredAfter, Stage, Transition};
pub use map::{Guide, HeadsUpRule, MapSegment, MilestoneDef, MilestoneMap, MovedBy, Playbook};
pub use outgoing::{EmailKind, MilestoneRef, OutgoingEmail, SendKey, SentEmail, ThreadRef};
pub use pause::CustomerEmailPause;
pub use phase::Phase;
pub use portfolio::{MissStage, OpenMiss, Portfolio, PortfolioFilter, PortfolioRow, PortfolioSort, RowHealth};
pub use renewal::{RenewalDecision, RenewalOutcome};
pub use schedule::{EscalationSchedule, PlaybookTiming};
pub use success_plan::{AgreedOutcome, Checkpoint, Measure, SuccessPlan};
pub use suppression::{Suppression, SuppressionSource};
pub use tracked::{IllegalChange, PlanCheckpoint, TrackedMilestone};

/// Every instant in Milepost is UTC; local time only matters when scheduling
/// emails for a reader, and that goes through the account's timezone.
pub type Timestamp = chrono::DateTime<chrono::Utc>;
