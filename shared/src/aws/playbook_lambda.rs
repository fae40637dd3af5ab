//! The Lambda side of the playbook's three functions: each serves its
//! state-machine tasks with `escalation_task::handle` over the AWS adapters.

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};

use crate::escalation_task::{handle, PlaybookFunction, TaskInput};

/// Runs `function` under the Lambda runtime until the environment shuts down.
/// A task's error reaches Step Functions under its `error_type`, the name
/// the state machine's Retry and Catch match on.
pub async fn serve(function: PlaybookFunction) -> Result<(), lambda_runtime::Error> {
    crate::telemetry::init();
    let sdk = super::sdk_config().await;
    let services = super::playbook_services_from_env(&sdk)?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<TaskInput>| {
        let services = &services;
        async move {
            handle(services, function, &event.payload)
                .await
                .map_err(|e| Diagnostic {
                    error_type: e.error_type().to_string(),
                    error_message: e.to_string(),
                })
        }
    }))
    .await
}
