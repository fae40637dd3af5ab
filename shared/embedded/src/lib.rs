//! Embedded adapters: everything `milepost demo` and the fast tests need,
//! with no AWS account. They keep the same semantics as the AWS adapters
//! (conditional writes, a sparse due index, TTL'd dedupe, one atomic write
//! per event), checked by the same contract tests.

pub mod clock;
pub mod fixtures;
pub mod mailer;
pub mod publisher;
pub mod runner;
pub mod store;

pub use clock::VirtualClock;
pub use mailer::{MemoryMailer, OutboxMailer};
pub use publisher::RecordingPublisher;
pub use runner::LocalWorkflowRunner;
pub use store::InMemoryStore;
