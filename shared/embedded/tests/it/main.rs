//! The embedded adapters' integration tests, one binary: the pipeline in process, the store applying events, the state machine run locally, settling, and what the logs say.

mod event_application;
mod logs;
mod pipeline;
mod settle;
mod slack;
mod webhooks;
mod workflow;
