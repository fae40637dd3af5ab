//! Milepost's library: the domain (plain Rust, no AWS types), the ports every
//! adapter implements, the embedded adapters used by `milepost demo` and fast
//! tests, and the handlers each Lambda function calls.

#[cfg(feature = "aws")]
pub mod aws;
pub mod domain;
pub mod email;
pub mod embedded;
pub mod escalation_task;
pub mod ingest;
pub mod limits;
pub mod maps;
pub mod playbook;
pub mod ports;
pub mod segment;
pub mod services;
pub mod sweep;
pub mod telemetry;
#[doc(hidden)]
pub mod testkit;

pub use services::Services;
