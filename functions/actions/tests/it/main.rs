//! The actions handler's tests, one binary.

mod actions;
mod common;
mod hostile_links;
mod slack;
