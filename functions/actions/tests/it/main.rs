//! The actions handler's tests, one binary.

#[macro_use]
mod common;
mod actions;
mod hostile_links;
