//! Milepost's application layer: the ports (signatures the adapters
//! implement) and the use cases over them — ingestion, the sweep, the
//! playbook's steps — plus the email they render and the settings they read.
//! No AWS types: the adapters live in `milepost-aws` and `milepost-embedded`.

pub mod actions;
pub mod checkpoints;
pub mod clock;
pub mod config;
pub mod console;
pub mod crm;
pub mod email;
pub mod error_chain;
pub mod escalation;
pub mod heads_up;
pub mod held_back_lists;
pub mod ingest;
pub mod keys;
pub mod links;
pub mod portfolio_keeper;
pub mod ports;
pub mod reminders;
pub mod report;
pub mod scheduled;
pub mod sending;
pub mod services;
pub mod settle;
pub mod slack;
pub mod success_plans;
pub mod sweep;
pub mod tasks;
pub mod telemetry;
pub mod unsubscribe;
pub mod webhooks;
pub mod weekly_digest;
pub mod worth;
pub mod writes;

pub use config::Config;
pub use error_chain::ErrorChain;
pub use services::Services;
