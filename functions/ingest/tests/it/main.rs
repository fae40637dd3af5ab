//! The ingest handler's tests, one binary. (`volume.rs` is `make volume` and keeps a binary of its own.)

mod common;
mod confirm_api;
mod tracking_api;
mod webhook;
