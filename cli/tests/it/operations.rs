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
    let acme = account("acme", start);
    let due_now: Vec<_> = store
        .milestones_of(&AccountId::new("acme"))
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.due_at() <= Utc::now())
        .collect();
    let overdue = due_now.len();
    // The example maps hold one miss in ten out of the playbook; which ones depends on the due dates, so on today.
    let held_out = due_now
        .iter()
        .filter(|m| m.group_for(acme.arr) == milepost_domain::Group::Control)
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
    assert_eq!(report["held_out"], held_out);
    assert_eq!(report["started"], overdue - held_out);
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
    assert_eq!(
        executions.len(),
        overdue - held_out,
        "one escalation per overdue milestone in the playbook group"
    );
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
            .status()
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

/// A CSM works their tasks and confirms a manual milestone from a shell, on
/// DynamoDB: `tasks list` is read from the owner index, a closed task refuses
/// a second close (exit 2, nothing changes), and a confirmation for a
/// milestone people cannot confirm, an account or a milestone that does not
/// exist exits 2 with the reason and stores nothing.
#[tokio::test]
async fn a_csm_closes_tasks_and_confirms_a_manual_milestone_from_the_shell() {
    use milepost_app::ports::{AccountStore, TaskStore};
    use milepost_embedded::fixtures::task;

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
    let opened = Utc::now() - Duration::days(1);
    store
        .create_task(&task("t-maya-1", "maya@vendor.example", opened))
        .await
        .unwrap();
    store
        .create_task(&task("t-maya-2", "maya@vendor.example", opened + Duration::minutes(1)))
        .await
        .unwrap();
    store
        .create_task(&task("t-lee", "lee@vendor.example", opened))
        .await
        .unwrap();

    let list = |args: &[&str]| -> serde_json::Value {
        let mut all = vec!["tasks", "list", "--json"];
        all.extend_from_slice(args);
        let out = milepost(&moto, &all, &env);
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let mayas = list(&["--owner", "maya@vendor.example"]);
    let ids: Vec<&str> = mayas
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["t-maya-1", "t-maya-2"], "Maya's, oldest first");
    for field in [
        "id",
        "account_id",
        "milestone_id",
        "owner_email",
        "status",
        "opened_at",
        "closed_at",
        "reason",
    ] {
        assert!(mayas[0].get(field).is_some(), "{field} missing from {}", mayas[0]);
    }
    assert_eq!(
        (&mayas[0]["status"], &mayas[0]["closed_at"]),
        (&"open".into(), &serde_json::Value::Null)
    );
    assert_eq!(list(&["--status", "open"]).as_array().unwrap().len(), 3, "everyone's");

    let done = milepost(
        &moto,
        &[
            "tasks",
            "done",
            "t-maya-1",
            "--by",
            "maya@vendor.example",
            "--outcome",
            "plan_agreed",
            "--note",
            "called the champion",
        ],
        &env,
    );
    assert!(done.status.success(), "{}", text(&done.stderr));
    let closed = store.get_task("t-maya-1").await.unwrap().unwrap();
    let row = &list(&["--owner", "maya@vendor.example", "--status", "done"])[0];
    assert_eq!(
        (
            &row["id"],
            &row["status"],
            &row["reason"],
            &row["outcome"],
            &row["closed_by"]
        ),
        (
            &"t-maya-1".into(),
            &"done".into(),
            &"completed".into(),
            &"plan_agreed".into(),
            &"Maya".into()
        )
    );
    assert!(
        row["notes"][0].as_str().unwrap().ends_with(": called the champion"),
        "{row}"
    );

    // Closed once: a second close, a snooze or a dismissal refuses and changes nothing.
    for again in [
        vec!["tasks", "done", "t-maya-1", "--by", "maya@vendor.example"],
        vec![
            "tasks",
            "snooze",
            "t-maya-1",
            "--by",
            "maya@vendor.example",
            "--days",
            "3",
        ],
        vec!["tasks", "dismiss", "t-maya-1", "--by", "lee@vendor.example"],
    ] {
        let out = milepost(&moto, &again, &env);
        assert_eq!(out.status.code(), Some(2), "{again:?}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("already done: closed by Maya"),
            "{}",
            text(&out.stderr)
        );
    }
    assert_eq!(
        store.get_task("t-maya-1").await.unwrap().unwrap().version,
        closed.version
    );

    let snoozed = milepost(
        &moto,
        &[
            "tasks",
            "snooze",
            "t-maya-2",
            "--by",
            "maya@vendor.example",
            "--days",
            "7",
        ],
        &env,
    );
    assert!(snoozed.status.success(), "{}", text(&snoozed.stderr));
    let row = &list(&["--status", "snoozed"])[0];
    assert_eq!(row["id"], "t-maya-2");
    let until: chrono::DateTime<Utc> = row["snoozed_until"].as_str().unwrap().parse().unwrap();
    assert_eq!((until - Utc::now()).num_days(), 6, "back in seven days");
    for (bad, why) in [
        (
            vec!["tasks", "done", "no-such-task", "--by", "maya@vendor.example"],
            "no task no-such-task",
        ),
        (
            vec![
                "tasks",
                "dismiss",
                "t-lee",
                "--by",
                "lee@vendor.example",
                "--reason",
                "bored",
            ],
            "--reason",
        ),
        (vec!["tasks", "done", "t-lee", "--by", "not an address"], "--by"),
    ] {
        let out = milepost(&moto, &bad, &env);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(text(&out.stderr).contains(why), "{bad:?}: {}", text(&out.stderr));
    }
    assert_eq!(
        store.get_task("t-lee").await.unwrap().unwrap().status(),
        milepost_domain::TaskStatus::Open
    );

    // An enterprise account three weeks in: its executive sponsor is not named yet.
    let services = quiet_services(store.clone());
    let start = Utc::now().date_naive() - Duration::days(21);
    let globex = milepost_domain::Account {
        segment: Segment::Enterprise,
        ..account("globex", start)
    };
    services.ingestion().upsert_account(&globex).await.unwrap();
    let sponsor = || async {
        store
            .get_milestone(&AccountId::new("globex"), "exec_sponsor_identified")
            .await
            .unwrap()
            .unwrap()
    };
    let before = sponsor().await;
    for (args, why) in [
        (
            vec![
                "milestones",
                "confirm",
                "globex",
                "first_value",
                "--by",
                "maya@vendor.example",
            ],
            "is not manual",
        ),
        (
            vec![
                "milestones",
                "confirm",
                "nobody",
                "exec_sponsor_identified",
                "--by",
                "maya@vendor.example",
            ],
            "no account nobody",
        ),
        (
            vec![
                "milestones",
                "confirm",
                "globex",
                "no_such",
                "--by",
                "maya@vendor.example",
            ],
            "does not track milestone no_such",
        ),
        (
            vec![
                "milestones",
                "confirm",
                "globex",
                "exec_sponsor_identified",
                "--by",
                "maya",
            ],
            "--by",
        ),
    ] {
        let out = milepost(&moto, &args, &env);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains(why), "{args:?}: {}", text(&out.stderr));
    }
    assert_eq!(sponsor().await.version, before.version, "refusals store nothing");
    assert!(store.get_account(&AccountId::new("nobody")).await.unwrap().is_none());

    let confirm = [
        "milestones",
        "confirm",
        "globex",
        "exec_sponsor_identified",
        "--by",
        "maya@vendor.example",
        "--note",
        "CFO named",
    ];
    let out = milepost(&moto, &confirm, &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "exec_sponsor_identified confirmed: achieved");
    let reached = sponsor().await;
    assert_eq!(reached.status(), milepost_domain::MilestoneStatus::Achieved);
    let again = milepost(&moto, &confirm, &env);
    assert!(again.status.success());
    assert!(
        text(&again.stdout).contains("already reached"),
        "{}",
        text(&again.stdout)
    );
    assert_eq!(sponsor().await.version, reached.version, "confirmed once");
}

/// Who unsubscribed, from the shell; and letting one back in when they ask.
#[tokio::test]
async fn an_operator_lists_suppressed_contacts_and_lifts_one() {
    use milepost_app::ports::ContactStore;
    use milepost_domain::{EmailAddress, Suppression, SuppressionSource};

    let moto = MotoServer::start();
    let init = milepost(&moto, &["local", "init"], &[]);
    assert!(init.status.success(), "{}", text(&init.stderr));
    let none = milepost(&moto, &["contacts", "suppressed"], &[]);
    assert!(none.status.success(), "{}", text(&none.stderr));
    assert_eq!(text(&none.stdout), "no suppressed addresses\n");

    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&moto.sdk_config().await), TABLE);
    let at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 4, 2, 10, 0, 0).unwrap();
    for (email, source) in [
        ("pat@globex.example", SuppressionSource::OneClick),
        ("ada@acme.example", SuppressionSource::Page),
    ] {
        let s = Suppression {
            email: EmailAddress::parse(email).unwrap(),
            at,
            source,
            account_id: AccountId::new("acme"),
        };
        store.suppress(&s).await.unwrap();
    }
    let table = milepost(&moto, &["contacts", "suppressed"], &[]);
    assert_eq!(
        text(&table.stdout),
        "EMAIL               SINCE        HOW                     ACCOUNT\n\
         ada@acme.example    2 Apr 2026   unsubscribe page        acme\n\
         pat@globex.example  2 Apr 2026   one-click unsubscribe   acme\n"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&milepost(&moto, &["contacts", "suppressed", "--json"], &[]).stdout).unwrap();
    assert_eq!(json[1]["email"], "pat@globex.example");
    assert_eq!(json[1]["source"], "one-click unsubscribe");
    assert_eq!(json[1]["since"], "2026-04-02T10:00:00Z");

    let lifted = milepost(&moto, &["contacts", "unsuppress", "PAT@globex.example"], &[]);
    assert!(lifted.status.success(), "{}", text(&lifted.stderr));
    assert_eq!(
        text(&lifted.stdout),
        "PAT@globex.example will receive customer email again\n"
    );
    let again = milepost(&moto, &["contacts", "unsuppress", "pat@globex.example"], &[]);
    assert_eq!(again.status.code(), Some(2), "nothing to lift is the person's to fix");
    assert!(text(&again.stderr).contains("is not suppressed; nothing changed"));
    let bad = milepost(&moto, &["contacts", "unsuppress", "not an address"], &[]);
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(store.suppressions().await.unwrap().len(), 1);
}
