//! The local stack `make local` runs on the AWS emulator: the table, the
//! event bus and the escalation state machine, created as the SAM template
//! defines them. Only ever pointed at an emulator (`milepost local init`
//! refuses without `AWS_ENDPOINT_URL`): the role ARN here is a placeholder
//! moto accepts.

use crate::EmulatorError;

/// Creates the table and the event bus as the SAM template defines them,
/// unless they exist: what `make local` needs on the emulator.
pub async fn create_local_resources(
    config: &aws_config::SdkConfig,
    table: &str,
    bus: &str,
) -> Result<(), EmulatorError> {
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    if dynamodb.describe_table().table_name(table).send().await.is_err() {
        milepost_aws::DynamoStore::new(dynamodb, table)
            .create_table()
            .await
            .map_err(|e| EmulatorError::of(format!("creating table {table}"), e))?;
    }
    let eventbridge = aws_sdk_eventbridge::Client::new(config);
    if eventbridge.describe_event_bus().name(bus).send().await.is_err() {
        eventbridge
            .create_event_bus()
            .name(bus)
            .send()
            .await
            .map_err(|e| EmulatorError::of(format!("creating event bus {bus}"), e.into_service_error()))?;
    }
    Ok(())
}

/// The escalation state machine on the emulator, from `definition` (the ASL
/// file, its function ARNs substituted), unless one of that name exists.
/// Returns its ARN. moto records executions and runs nothing: `make local`
/// runs them with `infra/statemachine/run-local.mjs`.
pub async fn create_local_state_machine(
    config: &aws_config::SdkConfig,
    name: &str,
    definition: &str,
) -> Result<String, EmulatorError> {
    let sfn = aws_sdk_sfn::Client::new(config);
    let existing = sfn
        .list_state_machines()
        .send()
        .await
        .map_err(|e| EmulatorError::of("listing state machines", e.into_service_error()))?;
    if let Some(found) = existing.state_machines.into_iter().find(|m| m.name == name) {
        return Ok(found.state_machine_arn);
    }
    let created = sfn
        .create_state_machine()
        .name(name)
        .definition(definition)
        .role_arn("arn:aws:iam::123456789012:role/milepost-local")
        .send()
        .await
        .map_err(|e| EmulatorError::of(format!("creating state machine {name}"), e.into_service_error()))?;
    Ok(created.state_machine_arn)
}

/// The ASL definition with SAM's `DefinitionSubstitutions` filled in with
/// local function ARNs (the names `cargo lambda watch` serves).
pub fn local_definition(asl: &str) -> String {
    [
        ("OutreachFunctionArn", "outreach"),
        ("CsmTaskFunctionArn", "csm-task"),
        ("EscalateFunctionArn", "escalate"),
    ]
    .iter()
    .fold(asl.to_string(), |text, (placeholder, function)| {
        text.replace(
            &format!("${{{placeholder}}}"),
            &format!("arn:aws:lambda:us-east-1:123456789012:function:{function}"),
        )
    })
}
