//! `milepost accounts show` against a DynamoDB table on a local moto server.

use std::process::Command;
use std::sync::Arc;

use chrono::{Duration, Utc};
use milepost_app::ports::MapStore;
use milepost_aws::DynamoStore;
use milepost_domain::{AccountId, ProductEvent};
use milepost_embedded::fixtures::{account, quiet_services};
use milepost_local::MotoServer;

fn milepost(moto: &MotoServer, table: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_milepost"))
        .args(args)
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("MILEPOST_TABLE", table)
        .output()
        .unwrap()
}

#[tokio::test]
async fn accounts_show_prints_what_ingestion_did() {
    let moto = MotoServer::start();
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let store = Arc::new(DynamoStore::new(client, "milepost-accounts"));
    store.create_table().await.unwrap();
    for map in milepost_cli::example_maps::example_maps() {
        store.put_map(&map).await.unwrap();
    }
    let services = quiet_services(store.clone());
    let start = Utc::now().date_naive() - Duration::days(5);
    services
        .ingestion()
        .upsert_account(&account("acme", start))
        .await
        .unwrap();
    let dashboard = ProductEvent {
        id: "e1".into(),
        account_id: AccountId::new("acme"),
        event: "dashboard.created".into(),
        timestamp: Utc::now() - Duration::days(1),
        user_id: Some("u1".into()),
        properties: Default::default(),
    };
    services.ingestion().apply_event(&dashboard).await.unwrap();

    let out = milepost(&moto, "milepost-accounts", &["accounts", "show", "acme", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let view: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(view["account"]["id"], "acme");
    let first_value = view["milestones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "first_value")
        .unwrap();
    assert_eq!(first_value["status"], "achieved");
    // first_value is the onboarding team's; acme has no onboarding contact, so its CSM.
    assert_eq!(
        (&first_value["owner_role"], &first_value["owner_is_fallback"]),
        (&serde_json::json!("onboarding"), &serde_json::json!(true))
    );
    assert_eq!(first_value["owner"], "Maya CSM <maya@vendor.example>");
    assert!(first_value["reached_at"].is_string());
    assert!(view["health"]["score"].as_u64().unwrap() <= 100);

    let table = milepost(&moto, "milepost-accounts", &["accounts", "show", "acme"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("first_value") && text.contains("achieved") && text.contains("health"),
        "{text}"
    );

    assert!(text.contains("onboarding: none, so the CSM"), "{text}");

    // With an onboarding contact (from `onboarding_email` group traits), it is theirs.
    let mut globex = account("globex", start);
    globex.contacts.insert(
        "onboarding".into(),
        milepost_domain::Contact::parse("Tomás Silva", "tomas@vendor.example").unwrap(),
    );
    services.ingestion().upsert_account(&globex).await.unwrap();
    let out = milepost(&moto, "milepost-accounts", &["accounts", "show", "globex", "--json"]);
    let view: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let owners: Vec<(String, bool)> = view["milestones"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["owner_role"] == "onboarding")
        .map(|m| (m["owner"].as_str().unwrap().to_string(), m["owner_is_fallback"] == true))
        .collect();
    assert!(!owners.is_empty());
    assert!(
        owners
            .iter()
            .all(|o| o == &("Tomás Silva <tomas@vendor.example>".to_string(), false)),
        "{owners:?}"
    );

    let missing = milepost(&moto, "milepost-accounts", &["accounts", "show", "nobody"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no account nobody"));
}
