//! The EventBridge, Step Functions and secrets adapters against a moto server.

use chrono::{TimeZone, Utc};
use milepost_app::ports::{EventPublisher, StartOutcome, WorkflowStarter};
use milepost_aws::{secrets, EventBridgePublisher, StepFunctionsWorkflows};
use milepost_domain::EscalationRequest;
use milepost_domain::{AccountId, DomainEvent, EscalationSchedule, PlaybookTiming, Stage};
use milepost_local::MotoServer;

#[tokio::test]
async fn adapters_work_against_the_emulator() {
    let moto = MotoServer::start();
    let config = moto.sdk_config().await;

    // Secrets: several per parameter while a key is rotated.
    let ssm = aws_sdk_ssm::Client::new(&config);
    ssm.put_parameter()
        .name("/milepost/webhook")
        .value("whsec_one, whsec_two")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    let env = |name: &str| (name == "MILEPOST_WEBHOOK_SECRET_PARAM").then(|| "/milepost/webhook".to_string());
    let loaded = secrets::load(&config, env).await.unwrap();
    assert_eq!(loaded.standard, vec!["whsec_one", "whsec_two"]);
    assert!(loaded.segment.is_empty());
    let local = secrets::load(&config, |name| (name == "MILEPOST_LOCAL").then(|| "1".to_string()))
        .await
        .unwrap();
    assert_eq!(local.standard, vec![secrets::DEV_WEBHOOK_SECRET]);
    assert_eq!(local.write_keys, vec![secrets::DEV_WRITE_KEY]);
    assert!(loaded.write_keys.is_empty(), "no write key unless one is configured");

    // The tracking API's write keys: two while one is rotated.
    ssm.put_parameter()
        .name("/milepost/write-keys")
        .value("wk_old\nwk_new")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    let env = |name: &str| (name == "MILEPOST_WRITE_KEYS_PARAM").then(|| "/milepost/write-keys".to_string());
    assert_eq!(
        secrets::load(&config, env).await.unwrap().write_keys,
        vec!["wk_old", "wk_new"]
    );

    // Fail closed: a configured parameter holding only blanks and separators
    // stops the cold start, naming the parameter, instead of accepting unsigned requests.
    for blank in [" ", ",", " , ,\n"] {
        ssm.put_parameter()
            .name("/milepost/blank")
            .value(blank)
            .overwrite(true)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await
            .unwrap();
        for variable in ["MILEPOST_SEGMENT_SECRET_PARAM", "MILEPOST_WRITE_KEYS_PARAM"] {
            let env = |name: &str| (name == variable).then(|| "/milepost/blank".to_string());
            let refused = secrets::load(&config, env).await.unwrap_err().to_string();
            assert!(refused.contains("/milepost/blank"), "{variable}: {refused}");
        }
    }

    // Step Functions: a second start of the same execution is a no-op; stopping works once started.
    let sfn = aws_sdk_sfn::Client::new(&config);
    let created = sfn
        .create_state_machine()
        .name("milepost-escalation")
        .definition(r#"{"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3600, "End": true}}}"#)
        .role_arn("arn:aws:iam::123456789012:role/milepost")
        .send()
        .await
        .unwrap();
    let workflows = StepFunctionsWorkflows::new(sfn.clone(), created.state_machine_arn());
    let missed_at = Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap();
    let request = EscalationRequest {
        execution: "acme-first-abc123".into(),
        account_id: AccountId::new("acme"),
        milestone_id: "first".into(),
        due_at: missed_at,
        missed_at,
        schedule: EscalationSchedule::compute(missed_at, chrono_tz::UTC, &PlaybookTiming::default()),
    };
    assert_eq!(workflows.start(&request).await.unwrap(), StartOutcome::Started);
    // Step Functions answers a repeated start of a running execution (same name and
    // input) like the first one; what matters is that there is still one execution.
    workflows.start(&request).await.unwrap();
    let listed = sfn
        .list_executions()
        .state_machine_arn(created.state_machine_arn())
        .send()
        .await
        .unwrap();
    assert_eq!(
        listed.executions().len(),
        1,
        "one execution however often it is started"
    );
    workflows.stop(&request.execution, Some(Stage::Outreach)).await.unwrap();
    let described = sfn
        .describe_execution()
        .execution_arn(workflows.execution_arn(&request.execution))
        .send()
        .await
        .unwrap();
    assert_eq!(described.status(), &aws_sdk_sfn::types::ExecutionStatus::Aborted);
    workflows.stop("never-started", None).await.unwrap();

    // EventBridge: more than one PutEvents batch of 10.
    let eb = aws_sdk_eventbridge::Client::new(&config);
    eb.create_event_bus().name("milepost").send().await.unwrap();
    let publisher = EventBridgePublisher::new(eb, "milepost");
    let events: Vec<DomainEvent> = (0..12)
        .map(|i| DomainEvent::MilestoneRecovered {
            account_id: AccountId::new(format!("a{i}")),
            milestone_id: "first".into(),
            due_at: missed_at,
            recovered_at: missed_at,
            achieved_at: missed_at,
            group: Some(milepost_domain::Group::Playbook),
            stage_reached: None,
            recovered_after: None,
        })
        .collect();
    publisher.publish(&events).await.unwrap();
}

/// EventBridge takes no idempotency key: when PutEvents is applied but its
/// answer lost, the SDK's retry puts the events again. Each copy carries
/// the same `event_id`, which is what a consumer dedupes on.
#[tokio::test]
async fn an_event_put_twice_after_a_lost_answer_carries_one_id() {
    use milepost_local::{Fault, FaultPlan, FaultProxy};
    let moto = MotoServer::start();
    let plan = FaultPlan::new(1)
        .first("events:PutEvents", Fault::LostResponse, 1)
        .record("events:PutEvents");
    let proxy = FaultProxy::start(&moto.endpoint, plan).await;
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&proxy.endpoint)
        .region(aws_sdk_eventbridge::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_eventbridge::config::Credentials::new(
            "test", "test", None, None, "ids",
        ))
        .load()
        .await;
    let eb = aws_sdk_eventbridge::Client::new(&config);
    eb.create_event_bus().name("milepost").send().await.unwrap();
    let at = Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap();
    let events: Vec<DomainEvent> = ["a1", "a2"]
        .into_iter()
        .map(|a| DomainEvent::MilestoneAchieved {
            account_id: AccountId::new(a),
            milestone_id: "first".into(),
            segment: milepost_domain::Segment::Smb,
            phase: milepost_domain::Phase::Onboarding,
            due_at: at,
            achieved_at: at,
        })
        .collect();
    EventBridgePublisher::new(eb, "milepost")
        .publish(&events)
        .await
        .unwrap();
    let mut ids: Vec<String> = Vec::new();
    for body in proxy.applied("events:PutEvents") {
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        for entry in body["Entries"].as_array().unwrap() {
            let detail: serde_json::Value = serde_json::from_str(entry["Detail"].as_str().unwrap()).unwrap();
            ids.push(
                detail["event_id"]
                    .as_str()
                    .expect("every event carries its id")
                    .to_string(),
            );
        }
    }
    assert_eq!(ids.len(), 4, "the lost answer's events were put twice: {ids:?}");
    let distinct: std::collections::BTreeSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), 2, "one id per event, however often delivered: {ids:?}");
    assert_eq!(distinct.into_iter().cloned().collect::<Vec<_>>(), {
        let mut expected: Vec<String> = events.iter().map(DomainEvent::event_id).collect();
        expected.sort();
        expected
    });
}
