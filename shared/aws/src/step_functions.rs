//! Escalations as Step Functions executions, named after their milestone so a
//! repeated start is a no-op.

use async_trait::async_trait;
use aws_sdk_sfn::error::ProvideErrorMetadata;
use aws_sdk_sfn::Client;

use crate::LazyClient;

use milepost_app::ports::{StartOutcome, WorkflowError, WorkflowStarter};
use milepost_domain::{EscalationRequest, Stage};

pub struct StepFunctionsWorkflows {
    client: LazyClient<Client>,
    state_machine_arn: String,
}

impl StepFunctionsWorkflows {
    pub fn new(client: impl Into<LazyClient<Client>>, state_machine_arn: impl Into<String>) -> Self {
        StepFunctionsWorkflows {
            client: client.into(),
            state_machine_arn: state_machine_arn.into(),
        }
    }

    /// `arn:aws:states:<region>:<account>:stateMachine:<name>` → the execution's ARN.
    pub fn execution_arn(&self, execution: &str) -> String {
        format!(
            "{}:{execution}",
            self.state_machine_arn.replacen(":stateMachine:", ":execution:", 1)
        )
    }
}

#[async_trait]
impl WorkflowStarter for StepFunctionsWorkflows {
    async fn start(&self, request: &EscalationRequest) -> Result<StartOutcome, WorkflowError> {
        let input = serde_json::to_string(request).map_err(WorkflowError::new)?;
        match self
            .client
            .get()
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(&request.execution)
            .input(input)
            .send()
            .await
        {
            // A repeated start of a running execution with the same input also lands
            // here: Step Functions answers it like the first, without a second execution.
            Ok(_) => Ok(StartOutcome::Started),
            // Same name, closed or with another input: it exists, nothing to start.
            Err(e) if e.code() == Some("ExecutionAlreadyExists") => Ok(StartOutcome::AlreadyStarted),
            Err(e) => Err(WorkflowError::new(e)),
        }
    }

    async fn stop(&self, execution: &str, stage_reached: Option<Stage>) -> Result<(), WorkflowError> {
        let cause = match stage_reached {
            Some(stage) => format!("milestone reached during stage {}", stage.number()),
            None => "milestone reached".to_string(),
        };
        match self
            .client
            .get()
            .stop_execution()
            .execution_arn(self.execution_arn(execution))
            .error("MilestoneRecovered")
            .cause(cause)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // Already finished or never started: nothing left to stop.
            Err(e) if e.code() == Some("ExecutionDoesNotExist") => Ok(()),
            Err(e) => Err(WorkflowError::new(e)),
        }
    }
}
