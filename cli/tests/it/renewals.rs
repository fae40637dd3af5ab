//! `milepost renewals import` against a DynamoDB table on a local moto
//! server: all or nothing, and a second import changes nothing.

use std::process::Command;
use std::sync::Arc;

use milepost_app::ports::AccountStore;
use milepost_aws::DynamoStore;
use milepost_domain::{AccountId, RenewalDecision};
use milepost_embedded::fixtures::{account, date};
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
async fn renewal_outcomes_are_imported_all_or_nothing_and_once() {
    let moto = MotoServer::start();
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let store = Arc::new(DynamoStore::new(client, "milepost-renewals"));
    store.create_table().await.unwrap();
    for id in ["acme", "globex"] {
        store.put_account(&account(id, date(2026, 1, 5))).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().to_string()
    };

    // A bad row and an unknown account: each named with its line, nothing written.
    let bad = write(
        "bad.csv",
        "account_id,decision_date,outcome,arr_after\nacme,2027-01-05,renewed,10000\nglobex,2027-01-05,lost,\n",
    );
    let out = milepost(&moto, "milepost-renewals", &["renewals", "import", &bad]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.csv:3: outcome: unknown outcome `lost`"),
        "{stderr}"
    );
    let unknown = write(
        "unknown.csv",
        "account_id,decision_date,outcome\nacme,2027-01-05,renewed\ninitech,2027-01-05,churned\n",
    );
    let out = milepost(&moto, "milepost-renewals", &["renewals", "import", &unknown]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown.csv:3: account_id: no account `initech`"),
        "{stderr}"
    );
    let acme = store.get_account(&AccountId::new("acme")).await.unwrap().unwrap();
    assert!(acme.renewals.is_empty(), "nothing half-imported: {:?}", acme.renewals);

    // A clean file: recorded; the same file again: nothing changes.
    let good = write(
        "good.csv",
        "account_id,decision_date,outcome,arr_after\nacme,2027-01-05,expanded,14000\nglobex,2027-01-05,churned,\n",
    );
    let out = milepost(&moto, "milepost-renewals", &["renewals", "import", &good, "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((report["rows"].as_u64(), report["added"].as_u64()), (Some(2), Some(2)));
    let acme = store.get_account(&AccountId::new("acme")).await.unwrap().unwrap();
    assert_eq!(acme.renewals.len(), 1);
    assert_eq!(acme.renewals[0].outcome, RenewalDecision::Expanded);
    assert_eq!(acme.renewals[0].arr_after, Some(14_000));
    let globex = store.get_account(&AccountId::new("globex")).await.unwrap().unwrap();
    assert_eq!(globex.renewals[0].outcome, RenewalDecision::Churned);
    let out = milepost(&moto, "milepost-renewals", &["renewals", "import", &good]);
    assert!(out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("0 new, 0 replaced, 2 already recorded"), "{said}");
    let again = store.get_account(&AccountId::new("acme")).await.unwrap().unwrap();
    assert_eq!(again, acme, "a second import changes nothing");
}
