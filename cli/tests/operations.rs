//! The operator's commands against a local moto server, through the binary:
//! `local init`, `maps load` and `sweep`.

use std::process::{Command, Output};
use std::sync::Arc;

use chrono::{Duration, Utc};
use milepost_app::ports::{MapStore, MilestoneStore};
use milepost_aws::DynamoStore;
use milepost_domain::{AccountId, Segment, Tenure};
use milepost_embedded::fixtures::{account, quiet_services};
use milepost_local::MotoServer;

const TABLE: &str = "milepost-ops";

fn milepost(moto: &MotoServer, args: &[&str], extra: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_milepost"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("MILEPOST_TABLE", TABLE)
        .env("MILEPOST_BUS", "milepost-ops")
        .envs(extra.iter().copied())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn an_operator_initialises_loads_maps_and_sweeps_once() {
    let moto = MotoServer::start();

    let refused = Command::new(env!("CARGO_BIN_EXE_milepost"))
        .args(["local", "init"])
        .env_remove("AWS_ENDPOINT_URL")
        .env("MILEPOST_TABLE", TABLE)
        .env("MILEPOST_BUS", TABLE)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("AWS_ENDPOINT_URL is not set"),
        "{}",
        text(&refused.stderr)
    );

    let init = milepost(&moto, &["local", "init"], &[]);
    assert!(init.status.success(), "{}", text(&init.stderr));
    let state_machine = text(&init.stdout).trim().to_string();
    assert!(state_machine.starts_with("arn:aws:states:"), "{state_machine}");
    let again = milepost(&moto, &["local", "init"], &[]);
    assert_eq!(text(&again.stdout).trim(), state_machine, "init is repeatable");

    // A directory with one broken map stores nothing.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy("../examples/maps/smb.yaml", dir.path().join("a.yaml")).unwrap();
    std::fs::write(dir.path().join("b.yaml"), "segment: smb\nmilestones: nope\n").unwrap();
    let broken = milepost(&moto, &["maps", "load", dir.path().to_str().unwrap()], &[]);
    assert!(!broken.status.success());
    assert!(text(&broken.stderr).contains("b.yaml:"), "{}", text(&broken.stderr));
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let store = Arc::new(DynamoStore::new(client, TABLE));
    assert!(store
        .maps_for(Segment::Smb, Tenure::FirstYear)
        .await
        .unwrap()
        .is_empty());

    let loaded = milepost(&moto, &["maps", "load", "examples/maps"], &[]);
    assert!(loaded.status.success(), "{}", text(&loaded.stderr));
    assert_eq!(text(&loaded.stdout).trim(), "4 map(s) loaded");

    // An SMB account 60 days in: its early milestones are overdue.
    let services = quiet_services(store.clone());
    let start = Utc::now().date_naive() - Duration::days(60);
    services
        .ingestion()
        .upsert_account(&account("acme", start))
        .await
        .unwrap();
    let overdue = store
        .milestones_of(&AccountId::new("acme"))
        .await
        .unwrap()
        .iter()
        .filter(|m| m.due_at <= Utc::now())
        .count();
    assert!(
        overdue >= 3,
        "the fixture should have overdue milestones, has {overdue}"
    );

    let arn = [("MILEPOST_STATE_MACHINE_ARN", state_machine.as_str())];
    let first = milepost(&moto, &["sweep", "--once", "--json"], &arn);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let report: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(report["missed"], overdue);
    assert_eq!(report["started"], overdue);
    assert_eq!(report["failed"], 0);

    let second = milepost(&moto, &["sweep"], &arn);
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert!(
        text(&second.stdout).starts_with("examined 0 due, marked 0 missed, started 0 escalations"),
        "{}",
        text(&second.stdout)
    );

    // A due milestone the sweep cannot escalate (its account is gone): both
    // outputs say so and both exit non-zero, so a script notices.
    let maps = store.maps_for(Segment::Smb, Tenure::FirstYear).await.unwrap();
    let map = milepost_domain::MilestoneMap::select(&maps, Segment::Smb, Tenure::FirstYear).unwrap();
    let orphan = account("orphan", start);
    store
        .create_milestone(&milepost_domain::TrackedMilestone::new(
            &orphan,
            map,
            &map.milestones[0],
        ))
        .await
        .unwrap();
    let json = milepost(&moto, &["sweep", "--json"], &arn);
    assert!(
        !json.status.success(),
        "a failed milestone fails the command, in JSON too"
    );
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["failed"], 1, "{report}");
    let plain = milepost(&moto, &["sweep"], &arn);
    assert!(!plain.status.success());
    assert!(text(&plain.stdout).contains("failed 1"), "{}", text(&plain.stdout));
    let executions = aws_sdk_sfn::Client::new(&moto.sdk_config().await)
        .list_executions()
        .state_machine_arn(&state_machine)
        .send()
        .await
        .unwrap()
        .executions;
    assert_eq!(executions.len(), overdue, "one escalation per overdue milestone");
}

#[tokio::test]
async fn an_operator_replays_events_parked_for_an_account_created_otherwise() {
    let moto = MotoServer::start();
    let init = milepost(&moto, &["local", "init"], &[]);
    assert!(init.status.success(), "{}", text(&init.stderr));
    let state_machine = text(&init.stdout).trim().to_string();
    let env = [("MILEPOST_STATE_MACHINE_ARN", state_machine.as_str())];
    assert!(milepost(&moto, &["maps", "load", "examples/maps"], &[])
        .status
        .success());
    let store = Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&moto.sdk_config().await),
        TABLE,
    ));
    let services = quiet_services(store.clone());
    let empty = milepost(&moto, &["parked"], &env);
    assert_eq!(text(&empty.stdout), "no parked events\n", "{}", text(&empty.stderr));

    // acme exists, but an event for it sat parked (it arrived while acme was
    // being created some other way); nobody has heard of ghost yet.
    let start = Utc::now().date_naive() - Duration::days(3);
    services
        .ingestion()
        .upsert_account(&account("acme", start))
        .await
        .unwrap();
    let dashboard = |id: &str, account: &str| milepost_domain::ProductEvent {
        id: id.into(),
        account_id: AccountId::new(account),
        event: "dashboard.created".into(),
        timestamp: Utc::now(),
        user_id: Some("u1".into()),
        properties: Default::default(),
    };
    use milepost_app::ports::ParkingStore;
    store.park(&dashboard("e1", "acme")).await.unwrap();
    store.park(&dashboard("e2", "ghost")).await.unwrap();

    let listed = milepost(&moto, &["parked", "--json"], &env);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(
        listed,
        serde_json::json!([
            {"account_id": "acme", "parked_events": 1, "account_known": true, "replayed": null},
            {"account_id": "ghost", "parked_events": 1, "account_known": false, "replayed": null},
        ])
    );
    let first_value = || async {
        store
            .get_milestone(&AccountId::new("acme"), "first_value")
            .await
            .unwrap()
            .unwrap()
            .status
    };
    assert!(!first_value().await.is_reached(), "listing applies nothing");

    let replay = milepost(&moto, &["parked", "--replay"], &env);
    assert!(replay.status.success(), "{}", text(&replay.stderr));
    assert!(
        text(&replay.stdout).contains("known: replayed, 1 applied"),
        "{}",
        text(&replay.stdout)
    );
    assert!(first_value().await.is_reached(), "the parked event reached first_value");

    // Only ghost's event is left; replaying again changes nothing.
    let again = milepost(&moto, &["parked", "--replay", "--json"], &env);
    let again: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again.as_array().unwrap().len(), 1);
    assert_eq!(again[0]["account_id"], "ghost");
}
