//! Embedded adapters: everything `milepost demo` and the fast tests need,
//! with no AWS account. They keep the same semantics as the AWS adapters
//! (conditional writes, sparse due index, TTL'd dedupe), checked by the same
//! contract tests.

pub mod clock;
pub mod mailer;
pub mod publisher;
pub mod store;
pub mod workflow;

pub use clock::{SystemClock, VirtualClock};
pub use mailer::{MemoryMailer, NoMailer, OutboxMailer};
pub use publisher::RecordingPublisher;
pub use store::InMemoryStore;
pub use workflow::LocalWorkflowRunner;
