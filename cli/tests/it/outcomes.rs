//! `milepost outcomes` against a DynamoDB table on a local moto server:
//! plans imported all or nothing and once, one outcome set from the command
//! line as a new version beside the others, the history kept, the listing.

use std::process::Command;
use std::sync::Arc;

use milepost_app::ports::{AccountStore, SuccessPlanStore};
use milepost_aws::DynamoStore;
use milepost_domain::AccountId;
use milepost_embedded::fixtures::{account, date};
use milepost_local::MotoServer;

const TABLE: &str = "milepost-outcomes";

fn milepost(moto: &MotoServer, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_milepost"))
        .args(args)
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("MILEPOST_TABLE", TABLE)
        .env("USER", "maya")
        .output()
        .unwrap()
}

const HEADER: &str =
    "account_id,outcome_id,title,event,property,unit,baseline,target,starts_on,by,checkpoints,agreed_by\n";

#[tokio::test]
async fn success_plans_are_imported_set_and_kept_as_versions() {
    let moto = MotoServer::start();
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let store = Arc::new(DynamoStore::new(client, TABLE));
    store.create_table().await.unwrap();
    for id in ["acme", "globex"] {
        store.put_account(&account(id, date(2026, 1, 5))).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().to_string()
    };
    let acme = AccountId::new("acme");

    // A bad row and an unknown account: each named with its line; nothing kept.
    let bad = write(
        "bad.csv",
        format!("{HEADER}acme,costs,Lower costs,outcome.measured,cost_savings_pct,%,0,30,2026-01-05,2027-01-05,,Dana Chen\nglobex,costs,Lower costs,outcome.measured,cost_savings_pct,%,0,0,2026-01-05,2027-01-05,,Ivo\n"),
    );
    let out = milepost(&moto, &["outcomes", "import", &bad]);
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("bad.csv:3: target: must differ from the baseline"),
        "{said}"
    );
    let unknown = write(
        "unknown.csv",
        format!("{HEADER}acme,costs,Lower costs,outcome.measured,cost_savings_pct,%,0,30,2026-01-05,2027-01-05,,Dana Chen\ninitech,costs,Lower costs,outcome.measured,cost_savings_pct,%,0,10,2026-01-05,2027-01-05,,Ivo\n"),
    );
    let out = milepost(&moto, &["outcomes", "import", &unknown]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown.csv:3: account_id: no account initech"));
    assert!(
        store.success_plan(&acme).await.unwrap().is_none(),
        "nothing half-imported"
    );

    // A clean file: a plan each; the same file again: nothing new.
    let good = write(
        "plans.csv",
        format!("{HEADER}acme,costs,Lower annual logistics costs,outcome.measured,cost_savings_pct,%,0,30,2026-01-05,2027-01-05,2026-04-05=5,\"Dana Chen, VP Operations\"\nglobex,costs,Lower costs,outcome.measured,cost_savings_pct,%,0,10,2026-01-05,2027-01-05,,Ivo\n"),
    );
    for (run, changed) in [(1, 2), (2, 0)] {
        let out = milepost(&moto, &["outcomes", "import", &good, "--json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            (r["rows"].as_u64(), r["changed"].as_u64(), r["unchanged"].as_u64()),
            (Some(2), Some(changed), Some(2 - changed)),
            "import {run}"
        );
    }
    let plan = store.success_plan(&acme).await.unwrap().unwrap();
    assert_eq!((plan.version, plan.set_by.as_str()), (1, "import:plans.csv"));
    assert_eq!(plan.outcomes[0].agreed_by, "Dana Chen, VP Operations");

    // One outcome set from the command line: version 2, the imported one kept beside it.
    let out = milepost(
        &moto,
        &[
            "outcomes",
            "set",
            "acme",
            "--id",
            "close_days",
            "--title",
            "Close the books faster",
            "--event",
            "close.finished",
            "--property",
            "days",
            "--unit",
            "days",
            "--baseline",
            "10",
            "--target",
            "3",
            "--starts-on",
            "2026-01-05",
            "--by",
            "2026-07-05",
            "--agreed-by",
            "Dana Chen",
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("Close the books faster: from 10 days to 3 days by 5 Jul 2026, agreed with Dana Chen"),
        "{shown}"
    );
    let history = store.success_plan_history(&acme).await.unwrap();
    assert_eq!(history.len(), 2, "a change is a new version, the first kept");
    assert_eq!(history[1].outcomes.len(), 2);
    assert_eq!((history[1].version, history[1].set_by.as_str()), (2, "cli:maya"));
    assert_eq!(history[0], plan, "version 1 as it was");

    // A bad flag: the field, exit 2, nothing kept.
    let out = milepost(
        &moto,
        &[
            "outcomes",
            "set",
            "acme",
            "--id",
            "close_days",
            "--title",
            "Close",
            "--property",
            "days",
            "--baseline",
            "10",
            "--target",
            "3",
            "--starts-on",
            "2026-01-05",
            "--by",
            "2025-07-05",
            "--agreed-by",
            "Dana",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("by"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(store.success_plan_history(&acme).await.unwrap().len(), 2);

    let out = milepost(&moto, &["outcomes", "show", "acme"]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("acme: success plan version 2, set "), "{shown}");
    assert!(
        shown.contains("  costs: Lower annual logistics costs: from 0% to 30% by 5 Jan 2027, agreed with Dana Chen, VP Operations\n    measured by outcome.measured.cost_savings_pct\n    checkpoints: 5% by 2026-04-05, 30% by 2027-01-05\n"),
        "{shown}"
    );
    let out = milepost(&moto, &["outcomes", "show", "acme", "--history", "--json"]);
    let versions: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(versions.as_array().map(Vec::len), Some(2));
    let out = milepost(&moto, &["outcomes", "list"]);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.contains("acme") && listed.contains("costs, close_days") && listed.contains("globex"),
        "{listed}"
    );
    let out = milepost(&moto, &["outcomes", "show", "initech"]);
    assert_eq!(out.status.code(), Some(2));
}
