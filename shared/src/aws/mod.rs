//! Production adapters over the AWS SDK. Every client honours
//! `AWS_ENDPOINT_URL`, which is how tests and local runs point them at the
//! local emulator.

pub mod dynamo;
pub mod email;
pub mod emulator;
pub mod events;
pub mod playbook_lambda;
pub mod secrets;
pub mod workflows;

pub use dynamo::{DynamoStore, TableSpec};
pub use email::SesMailer;
pub use events::EventBridgePublisher;
pub use workflows::StepFunctionsWorkflows;

/// One shared SDK configuration, built once per cold start. Throttling and
/// transient errors are retried by the SDK with exponential backoff and
/// jitter (standard mode, three attempts), so callers see only what persists.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(3))
        .load()
        .await
}

/// The DynamoDB store named by `MILEPOST_TABLE`, for the CLI and the functions.
pub fn store_from_env(config: &aws_config::SdkConfig) -> Result<DynamoStore, String> {
    let table = std::env::var("MILEPOST_TABLE").map_err(|_| {
        "MILEPOST_TABLE is not set (source .milepost-local.env, or export the stack's table name)".to_string()
    })?;
    Ok(DynamoStore::new(aws_sdk_dynamodb::Client::new(config), table))
}

/// Creates the table and the event bus as the SAM template defines them,
/// unless they exist: what `make local` needs on the emulator.
pub async fn create_local_resources(config: &aws_config::SdkConfig, table: &str, bus: &str) -> Result<(), String> {
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    if dynamodb.describe_table().table_name(table).send().await.is_err() {
        DynamoStore::new(dynamodb, table)
            .create_table()
            .await
            .map_err(|e| format!("creating table {table}: {e}"))?;
    }
    let eventbridge = aws_sdk_eventbridge::Client::new(config);
    if eventbridge.describe_event_bus().name(bus).send().await.is_err() {
        eventbridge
            .create_event_bus()
            .name(bus)
            .send()
            .await
            .map_err(|e| format!("creating event bus {bus}: {}", e.into_service_error()))?;
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
) -> Result<String, String> {
    let sfn = aws_sdk_sfn::Client::new(config);
    let existing = sfn
        .list_state_machines()
        .send()
        .await
        .map_err(|e| format!("listing state machines: {}", e.into_service_error()))?;
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
        .map_err(|e| format!("creating state machine {name}: {}", e.into_service_error()))?;
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

/// Everything a function or the CLI needs, on AWS, named by the environment:
/// `MILEPOST_TABLE`, `MILEPOST_BUS` and, where escalations are started or
/// stopped, `MILEPOST_STATE_MACHINE_ARN` (empty when unset). Sends no email.
pub fn services_from_env(config: &aws_config::SdkConfig) -> Result<crate::Services, String> {
    let var = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
    Ok(crate::Services {
        store: std::sync::Arc::new(store_from_env(config)?),
        mailer: std::sync::Arc::new(crate::embedded::NoMailer),
        events: std::sync::Arc::new(EventBridgePublisher::new(
            aws_sdk_eventbridge::Client::new(config),
            var("MILEPOST_BUS")?,
        )),
        workflows: std::sync::Arc::new(StepFunctionsWorkflows::new(
            aws_sdk_sfn::Client::new(config),
            std::env::var("MILEPOST_STATE_MACHINE_ARN").unwrap_or_default(),
        )),
        clock: std::sync::Arc::new(crate::embedded::SystemClock),
        config: crate::services::Config::from_env()?,
    })
}

/// `services_from_env` that sends email through SES, under the configuration
/// set named by `MILEPOST_SES_CONFIGURATION_SET`: what the playbook's functions run on.
pub fn playbook_services_from_env(config: &aws_config::SdkConfig) -> Result<crate::Services, String> {
    let mut services = services_from_env(config)?;
    services.mailer = std::sync::Arc::new(SesMailer::new(
        aws_sdk_sesv2::Client::new(config),
        std::env::var("MILEPOST_SES_CONFIGURATION_SET").ok(),
    ));
    Ok(services)
}
