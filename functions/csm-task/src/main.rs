//! Milepost Lambda `csm-task`: wiring only. Day 3 of the escalation playbook: the CSM task, stored and emailed to the CSM.
//! Invoked by the escalation state machine (`infra/statemachine/escalation.asl.json`).
//! Configuration (environment): `MILEPOST_TABLE`, `MILEPOST_BUS`,
//! `MILEPOST_SES_CONFIGURATION_SET`, `MILEPOST_SENDER_EMAIL` and the others
//! `milepost::services::Config::from_env` reads.

use milepost::escalation_task::PlaybookFunction;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    milepost::aws::playbook_lambda::serve(PlaybookFunction::CsmTask).await
}
