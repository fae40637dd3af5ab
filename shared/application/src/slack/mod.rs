//! Slack, where a CSM's day runs (issue 35): a task as a Block Kit message
//! with the same context as its email and buttons that act through the same
//! task use case (`blocks.rs`), and the check every request from Slack
//! passes before anything in it is read (`signature.rs`).

pub mod blocks;
pub mod interactions;
pub mod posts;
pub mod signature;
