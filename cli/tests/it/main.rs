//! The `milepost` command end to end, one binary. (`chaos.rs` is `make chaos` and keeps a binary of its own.)

mod accounts;
mod chaos_ingest;
mod demo;
mod from_store;
mod operations;
mod outcomes;
mod renewals;
mod report;
mod simulate;
