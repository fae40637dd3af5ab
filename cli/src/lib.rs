//! The `milepost` command's library: each subcommand's logic, callable from
//! tests and benchmarks. `milepost discover` is its own crate
//! (`milepost-discovery`).

pub mod accounts_cmd;
pub mod console_cmd;
pub mod contacts_cmd;
pub mod crm_cmd;
pub mod demo;
pub mod discover_store;
pub mod example_maps;
pub mod maps_cmd;
#[cfg(feature = "aws")]
pub mod outbox_cmd;
pub mod outcomes_cmd;
pub mod pages_preview;
pub mod parked_cmd;
pub mod renewals_cmd;
pub mod report_cmd;
pub mod simulate;
pub mod tasks_cmd;
pub mod webhooks_cmd;
