//! Milepost Lambda `outreach`: wiring only. Day 1 of the escalation playbook: the outreach email, the in-app message, the follow-up email.
//! Invoked by the escalation state machine (`infra/statemachine/escalation.asl.json`).
//! Configuration (environment): `MILEPOST_TABLE`, `MILEPOST_BUS`,
//! `MILEPOST_SES_CONFIGURATION_SET`, `MILEPOST_SENDER_EMAIL` and the others
//! `milepost_app::Config::from_env` reads.

use milepost_app::escalation::invocation::PlaybookFunction;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    milepost_aws::lambda::serve_playbook(PlaybookFunction::Outreach).await
}
