//! The fault-injecting proxy in front of moto, seen from the real AWS SDK:
//! each fault arrives as AWS would send it, a lost response was applied
//! all the same, the SDK's retries get through, and a seed decides it all.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeDefinition, AttributeValue, KeySchemaElement, KeyType, ScalarAttributeType};
use aws_sdk_dynamodb::Client;
use milepost_local::{Fault, FaultPlan, FaultProxy, MotoServer};

async fn client(endpoint: &str, attempts: u32) -> Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "faults",
        ))
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(attempts)
                .with_max_backoff(Duration::from_millis(50)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(Duration::from_millis(400))
                .build(),
        )
        .load()
        .await;
    Client::new(&config)
}

async fn create_table(client: &Client) {
    client
        .create_table()
        .table_name("t")
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .send()
        .await
        .expect("moto creates the table");
}

#[tokio::test]
async fn each_fault_reaches_the_sdk_as_aws_would_send_it() {
    let moto = MotoServer::start();
    for fault in Fault::ALL {
        let plan = FaultPlan::new(7)
            .with("dynamodb:ListTables", fault, 1.0)
            .slow_for(Duration::from_millis(1200));
        let proxy = FaultProxy::start(&moto.endpoint, plan).await;
        let once = client(&proxy.endpoint, 1).await;
        let error = once.list_tables().send().await.expect_err("every request is faulted");
        let status = error.raw_response().map(|r| r.status().as_u16());
        match fault {
            Fault::Throttling => {
                assert_eq!(
                    error.code(),
                    Some("ProvisionedThroughputExceededException"),
                    "{error:?}"
                );
                assert_eq!(status, Some(400));
            }
            Fault::Http500 => assert_eq!(status, Some(500), "{error:?}"),
            Fault::Http503 => assert_eq!(status, Some(503), "{error:?}"),
            Fault::Slow => assert!(matches!(error, SdkError::TimeoutError(_)), "{error:?}"),
            Fault::ConnectionReset | Fault::LostResponse => assert!(
                matches!(error, SdkError::DispatchFailure(_) | SdkError::ResponseError(_)),
                "{fault:?}: {error:?}"
            ),
        }
        let counts = proxy.counts();
        assert_eq!(counts.faults.get(&fault), Some(&1), "{fault:?} counted once");
        assert_eq!(counts.total_faults(), 1);
    }
}

#[tokio::test]
async fn a_lost_response_was_applied_all_the_same() {
    let moto = MotoServer::start();
    let direct = client(&moto.endpoint, 1).await;
    create_table(&direct).await;
    let proxy = FaultProxy::start(
        &moto.endpoint,
        FaultPlan::new(1).with("dynamodb:PutItem", Fault::LostResponse, 1.0),
    )
    .await;
    let faulty = client(&proxy.endpoint, 1).await;
    let put = faulty
        .put_item()
        .table_name("t")
        .item("pk", AttributeValue::S("k".into()))
        .send()
        .await;
    assert!(put.is_err(), "the client heard nothing back");
    let stored = direct
        .get_item()
        .table_name("t")
        .key("pk", AttributeValue::S("k".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    assert!(stored.item().is_some(), "the write was made");
    assert_eq!(proxy.counts().faults.get(&Fault::LostResponse), Some(&1));
}

#[tokio::test]
async fn the_sdk_retries_get_through_throttling_and_server_errors() {
    let moto = MotoServer::start();
    let plan = FaultPlan::new(42)
        .with("dynamodb:*", Fault::Throttling, 0.2)
        .with("dynamodb:*", Fault::Http500, 0.1)
        .with("dynamodb:*", Fault::Http503, 0.1);
    let proxy = FaultProxy::start(&moto.endpoint, plan).await;
    let patient = client(&proxy.endpoint, 10).await;
    for _ in 0..30 {
        patient.list_tables().send().await.expect("retried through the faults");
    }
    let counts = proxy.counts();
    assert!(counts.total_faults() >= 5, "faults were injected: {counts:?}");
    assert_eq!(
        counts.total_requests(),
        30 + counts.total_faults(),
        "each fault cost one retry, nothing more"
    );
}

#[tokio::test]
async fn one_seed_gives_the_same_faults_another_seed_others() {
    let moto = MotoServer::start();
    let run = |seed: u64| {
        let endpoint = moto.endpoint.clone();
        async move {
            let plan = FaultPlan::new(seed).with("*", Fault::Http503, 0.5);
            let proxy = FaultProxy::start(&endpoint, plan).await;
            let once = client(&proxy.endpoint, 1).await;
            let mut outcomes = Vec::new();
            for _ in 0..40 {
                outcomes.push(once.list_tables().send().await.is_ok());
            }
            (outcomes, proxy.counts().log)
        }
    };
    let (first, first_log) = run(3).await;
    let (again, again_log) = run(3).await;
    let (other, _) = run(4).await;
    assert_eq!(first, again);
    assert_eq!(first_log, again_log);
    assert_ne!(first, other, "40 coin flips came out the same for two seeds");
    assert!(first.iter().any(|ok| *ok) && first.iter().any(|ok| !*ok));
}

/// What SES's answer, or its absence, says of an email, through the real
/// mailer: throttling and server errors sent nothing (send later, or again);
/// a reset connection or a lost answer may have sent it, and the lost answer
/// did (moto holds it), which is why the mailer never resends by itself.
#[tokio::test]
async fn ses_faults_reach_the_mailer_as_what_they_say_of_the_email() {
    use milepost_app::ports::{Mailer, SendError};
    use milepost_domain::{Contact, EmailKind, OutgoingEmail};
    let email = OutgoingEmail {
        in_reply_to: None,
        key: milepost_domain::SendKey::new("exec-1:outreach_email:customer"),
        kind: EmailKind::Outreach,
        account_id: milepost_domain::AccountId::new("a1"),
        milestone_id: "first_workflow".into(),
        from: Contact::parse("Milepost", "cs@vendor.example").unwrap(),
        to: vec![Contact::parse("Pat", "pat@a1.example").unwrap()],
        subject: "Next step".into(),
        text: "plain".into(),
        html: "<p>html</p>".into(),
        reply_to: None,
        list_unsubscribe: None,
        date: chrono::DateTime::UNIX_EPOCH,
        names: Vec::new(),
    };
    for (fault, expected, applied) in [
        (Fault::Throttling, "throttled", 0),
        (Fault::Http500, "transient", 0),
        (Fault::Http503, "transient", 0),
        (Fault::ConnectionReset, "unknown", 0),
        (Fault::LostResponse, "unknown", 1),
    ] {
        let moto = MotoServer::start();
        let direct = moto.sdk_config().await;
        milepost_local::outbox::verify_sender(&direct, "cs@vendor.example")
            .await
            .unwrap();
        let plan = FaultPlan::new(7).with("sesv2:SendEmail", fault, 1.0);
        let proxy = FaultProxy::start(&moto.endpoint, plan).await;
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&proxy.endpoint)
            .region(aws_sdk_sesv2::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sesv2::config::Credentials::new(
                "test", "test", None, None, "faults",
            ))
            .load()
            .await;
        let mailer = milepost_aws::SesMailer::new(aws_sdk_sesv2::Client::new(&config), None);
        let got = match mailer.send(&email).await {
            Err(SendError::Throttled(_)) => "throttled",
            Err(SendError::Transient(_)) => "transient",
            Err(SendError::Unknown(_)) => "unknown",
            Err(SendError::Permanent(_)) => "permanent",
            Ok(_) => "sent",
        };
        assert_eq!(got, expected, "{fault:?}");
        assert_eq!(
            proxy.counts().requests["sesv2:SendEmail"],
            1,
            "{fault:?}: the mailer tried once; whether to send again is the ledger's call"
        );
        let held = milepost_local::outbox::sent_emails(&moto.endpoint).await.unwrap();
        assert_eq!(held.len(), applied, "{fault:?}: emails SES holds");
    }
}
