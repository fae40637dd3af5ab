//! `milepost maps simulate` through the binary, on a history whose answer
//! is known from how it was written: four customers who renewed did two
//! workflows and had three teammates active in their first week; four who
//! churned did neither. The maps in use ask for two workflows by day 10 and
//! three active teammates by day 20; the proposed ones ask for five
//! teammates. So the renewed customers miss only under the proposal, and
//! every figure below follows from that, not from the tool's own counts.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const MAP: &str = r#"segment: all
milestones:
  - id: first_workflow
    name: First workflow completed
    customer_title: First workflow completed
    phase: onboarding
    due_days: 10
    owner: csm
    criterion: {kind: event_count, event: workflow.completed, min: 2}
    arr_weight: 0.5
    playbook: {outreach: "Finish one workflow", csm: "Book a call", leadership: "Ask the sponsor"}
  - id: team_invited
    name: Teammates active
    customer_title: Teammates active
    phase: onboarding
    due_days: 20
    owner: csm
    criterion: {kind: distinct_users, event: user.active, min: TEAM}
    arr_weight: 0.25
    playbook: {outreach: "Invite your team", csm: "Run a demo", leadership: "Ask for a rollout"}
  - id: sponsor_named
    name: Executive sponsor named
    phase: onboarding
    due_days: 30
    owner: csm
    criterion: {kind: manual}
    playbook: {csm: "Map the org", leadership: "Peer outreach"}
"#;

const ARR: u64 = 12_000;

fn write_history(dir: &Path) {
    let mut accounts = String::from("account_id,segment,contract_start,decision_date,outcome,arr,tenure_year\n");
    let mut events = String::from("account_id,event,timestamp,user_id,value\n");
    for i in 0..8 {
        let renewed = i < 4;
        let segment = if i % 2 == 0 { "smb" } else { "mid_market" };
        let outcome = if renewed { "renewed" } else { "churned" };
        accounts.push_str(&format!("c{i},{segment},2026-03-02,2026-05-01,{outcome},{ARR},1\n"));
        if renewed {
            events.push_str(&format!("c{i},workflow.completed,2026-03-03T10:00:00Z,u1,\n"));
            events.push_str(&format!("c{i},workflow.completed,2026-03-04T10:00:00Z,u1,\n"));
            for u in 1..=3 {
                events.push_str(&format!("c{i},user.active,2026-03-05T1{u}:00:00Z,u{u},\n"));
            }
        } else {
            events.push_str(&format!("c{i},user.active,2026-03-03T09:00:00Z,u1,\n"));
            // Read by no milestone: counted, not replayed, no figure changes.
            for day in [4, 6] {
                events.push_str(&format!("c{i},page.viewed,2026-03-0{day}T09:00:00Z,u1,\n"));
            }
        }
    }
    // One row of an account the accounts file does not hold: skipped, counted.
    events.push_str("stranger,user.active,2026-03-03T09:00:00Z,u1,\n");
    std::fs::write(dir.join("accounts.csv"), accounts).unwrap();
    std::fs::write(dir.join("events.csv"), events).unwrap();
    for (name, team) in [("current", "3"), ("proposed", "5")] {
        std::fs::create_dir_all(dir.join(name)).unwrap();
        std::fs::write(dir.join(name).join("all.yaml"), MAP.replace("TEAM", team)).unwrap();
    }
}

/// `milepost maps simulate` on the history in `dir`, current against proposed.
fn simulate_command(dir: &Path) -> Command {
    let path = |p: &str| dir.join(p).display().to_string();
    let mut command = Command::new(env!("CARGO_BIN_EXE_milepost"));
    command
        .args([
            "maps",
            "simulate",
            "--accounts",
            &path("accounts.csv"),
            "--events",
            &path("events.csv"),
        ])
        .args([
            "--current",
            &path("current"),
            "--proposed",
            &path("proposed"),
            "--minutes-per-task",
            "30",
        ]);
    command
}

fn simulate(dir: &Path, extra: &[&str]) -> std::process::Output {
    simulate_command(dir).args(extra).output().unwrap()
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("a count: {v}"))
}

#[test]
fn the_proposed_maps_are_judged_against_the_history_they_would_have_run_on() {
    let dir = tempfile::tempdir().unwrap();
    write_history(dir.path());
    let chart = dir.path().join("simulation.svg");
    let out = simulate(dir.path(), &["--format", "json", "--chart", chart.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            n(&s["accounts"]),
            n(&s["events"]),
            n(&s["events_unread"]),
            n(&s["events_skipped"])
        ),
        (8, 32, 8, 1)
    );

    let (current, proposed) = (&s["current"], &s["proposed"]);
    // The churned miss both milestones under either map; the renewed miss
    // the five teammates only. The manual milestone is not simulated.
    let misses = |set: &Value, id: &str| set["misses_by_milestone"][id].as_u64().unwrap_or(0);
    assert_eq!(
        (misses(current, "first_workflow"), misses(current, "team_invited")),
        (4, 4)
    );
    assert_eq!(
        (misses(proposed, "first_workflow"), misses(proposed, "team_invited")),
        (4, 8)
    );
    assert_eq!(misses(current, "sponsor_named") + misses(proposed, "sponsor_named"), 0);
    assert_eq!(current["manual_not_simulated"], serde_json::json!(["sponsor_named"]));
    let (c, p) = (&current["total"], &proposed["total"]);
    assert_eq!((n(&c["misses"]), n(&p["misses"])), (8, 12));
    assert_eq!(
        (n(&c["playbooks_started"]), n(&p["playbooks_started"])),
        (8, 12),
        "no control group in these maps"
    );
    assert_eq!(
        (n(&c["arr_flagged"]), n(&p["arr_flagged"])),
        (4 * ARR / 2 + 4 * ARR / 4, 4 * ARR / 2 + 8 * ARR / 4),
        "ARR × weight of each miss"
    );
    // Nobody acts on a task: every playbook runs its course, a task and a
    // leadership escalation for each miss.
    assert_eq!((n(&c["csm_tasks"]), n(&p["csm_tasks"])), (8, 12));
    assert_eq!(
        (c["csm_hours"].as_f64(), p["csm_hours"].as_f64()),
        (Some(4.0), Some(6.0)),
        "30 minutes a task"
    );
    assert_eq!(
        (n(&c["leadership_escalations"]), n(&p["leadership_escalations"])),
        (8, 12)
    );
    // As a churn warning: the maps in use flag exactly the churned; the
    // proposal flags the renewed too, and writes to them.
    assert_eq!(
        (n(&c["churned"]), n(&c["churned_flagged"]), n(&c["renewed_flagged"])),
        (4, 4, 0)
    );
    assert_eq!((n(&p["churned_flagged"]), n(&p["renewed_flagged"])), (4, 4));
    assert_eq!((c["precision"].as_f64(), c["recall"].as_f64()), (Some(1.0), Some(1.0)));
    assert_eq!((p["precision"].as_f64(), p["recall"].as_f64()), (Some(0.5), Some(1.0)));
    assert_eq!((n(&c["renewed_contacted"]), n(&p["renewed_contacted"])), (0, 4));
    assert!(n(&p["customer_emails"]) > n(&c["customer_emails"]));

    // Each account's line agrees with how it was written, and the segments add up.
    for line in s["per_account"].as_array().unwrap() {
        let churned = line["outcome"] == "churned";
        assert_eq!(line["current"]["flagged"], Value::Bool(churned), "{line}");
        assert_eq!(line["proposed"]["flagged"], Value::Bool(true), "{line}");
        assert_eq!(n(&line["proposed"]["misses"]), if churned { 2 } else { 1 }, "{line}");
    }
    for set in [current, proposed] {
        let segments = set["segments"].as_object().unwrap();
        assert_eq!(segments.len(), 2, "smb and mid-market");
        for field in [
            "accounts",
            "misses",
            "csm_tasks",
            "customer_emails",
            "arr_flagged",
            "churned_flagged",
        ] {
            let sum: u64 = segments.values().map(|f| n(&f[field])).sum();
            assert_eq!(sum, n(&set["total"][field]), "{field} by segment adds up");
        }
    }
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains(">12</text>") && !svg.contains("<script"));
}

#[test]
fn the_table_says_what_changes_and_what_was_not_simulated() {
    let dir = tempfile::tempdir().unwrap();
    write_history(dir.path());
    let out = simulate(dir.path(), &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).unwrap();
    let row = |what: &str| {
        table
            .lines()
            .find(|l| l.starts_with(what))
            .unwrap_or_else(|| panic!("no {what} row in\n{table}"))
            .split_whitespace()
            .rev()
            .take(3)
            .collect::<Vec<_>>()
    };
    assert_eq!(row("misses"), ["+4", "12", "8"]);
    assert_eq!(row("CSM hours"), ["+2.0", "6.0", "4.0"]);
    assert!(table.contains("precision (flagged that churned)"));
    assert!(table.contains("manual milestones left out: sponsor_named"), "{table}");

    // A proposal that is not a valid map: nothing is simulated, the problem is named with its line.
    std::fs::write(
        dir.path().join("proposed").join("all.yaml"),
        MAP.replace("TEAM", "many"),
    )
    .unwrap();
    let out = simulate(dir.path(), &[]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("all.yaml:") && said.contains("min"), "{said}");
}

/// Issue 36: `maps simulate --keep` keeps the comparison for the quarterly
/// map review. The leadership digest of a quarter's first Monday shows it
/// row for row, with the figures `--format json` printed, beside what the
/// kept discovery says of the maps in use (a weak milestone to reconsider,
/// a strong one they lack); the next Monday's digest carries no review; and
/// the digest asks AWS only for what the template grants it.
#[tokio::test]
async fn the_first_digest_of_a_quarter_reviews_the_maps_with_the_kept_comparison() {
    use std::sync::Arc;

    use milepost_app::ports::DiscoveryStore;
    use milepost_app::weekly_digest::WeeklyDigest;
    use milepost_aws::{DynamoStore, SesMailer};
    use milepost_local::MotoServer;

    const TABLE: &str = "milepost-review";
    let moto = MotoServer::start();
    let sdk = moto.sdk_config().await;
    milepost_local::stack::create_local_resources(&sdk, TABLE, TABLE)
        .await
        .unwrap();
    let config = milepost_app::Config::default();
    milepost_local::outbox::verify_sender(&sdk, config.sender.email.as_str())
        .await
        .unwrap();
    let milepost = |args: &[&str]| {
        let out = crate::from_store::milepost(&moto, TABLE, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let dir = tempfile::tempdir().unwrap();
    write_history(dir.path());
    let path = |p: &str| dir.path().join(p).display().to_string();
    let out = crate::from_store::on_emulator(&mut simulate_command(dir.path()), &moto, TABLE)
        .args(["--format", "json", "--keep"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("kept for the quarterly map review"));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    milepost(&["maps", "load", &path("current")]);
    let discovery = dir.path().join("q4-discovery.json");
    let line = |id: &str, name: &str, ratio: f64, class: &str| {
        serde_json::json!({"milestone": id, "name": name, "segment": "all", "tenure": "all",
            "renewed_n": 140, "renewed_achieved": 100, "churned_n": 35, "churned_achieved": 20,
            "ratio": ratio, "class": class, "small_cohort": false})
    };
    let lines = serde_json::json!({"milestones": [
        line("first_workflow", "First workflow completed", 1.2, "weak"),
        line("team_invited", "Teammates active", 1.7, "moderate"),
        line("five_active", "Five teammates active", 3.1, "strong"),
    ]});
    std::fs::write(&discovery, lines.to_string()).unwrap();
    milepost(&["maps", "discovery", discovery.to_str().unwrap()]);

    let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), TABLE));
    let kept = store.kept_comparison().await.unwrap().expect("kept by --keep");
    let figures = |v: &Value| serde_json::from_value::<milepost_domain::map_review::Figures>(v.clone()).unwrap();
    assert_eq!(
        (&kept.current, &kept.proposed),
        (
            &figures(&printed["current"]["total"]),
            &figures(&printed["proposed"]["total"])
        ),
        "kept as printed"
    );
    assert_eq!(
        (kept.current_maps.len(), kept.proposed_maps.len(), kept.accounts),
        (1, 1, 8)
    );
    // --keep with nowhere to keep: refused before the replay, nothing printed.
    let nowhere = simulate_command(dir.path())
        .arg("--keep")
        .env_remove("MILEPOST_TABLE")
        .output()
        .unwrap();
    assert!(!nowhere.status.success() && nowhere.stdout.is_empty());
    assert!(String::from_utf8_lossy(&nowhere.stderr).contains("set MILEPOST_TABLE"));

    let clock = Arc::new(milepost_embedded::VirtualClock::new(
        "2027-01-04T09:00:00Z".parse().unwrap(),
    ));
    let digest = WeeklyDigest {
        store: store.clone(),
        mailer: Arc::new(SesMailer::new(aws_sdk_sesv2::Client::new(&sdk), None)),
        clock: clock.clone(),
        config: config.clone(),
    };
    moto.record_requests(true).await;
    let outcome = milepost_digest::send(&digest).await.unwrap();
    moto.record_requests(false).await;
    milepost_local::iam::assert_granted("DigestFunction", &moto.take_recorded_actions());
    assert_eq!(outcome.quarterly_review.as_deref(), Some("Q1 2027"));
    clock.set("2027-01-11T09:00:00Z".parse().unwrap());
    let next = milepost_digest::send(&digest).await.unwrap();
    assert_eq!((next.result.as_str(), next.quarterly_review), ("sent", None));

    let sent = milepost_local::outbox::sent_emails(&moto.endpoint).await.unwrap();
    assert_eq!(sent.len(), 2);
    let (quarter, later) = (&sent[0], &sent[1]);
    assert!(quarter.subject.ends_with("; Q1 2027 map review"), "{}", quarter.subject);
    assert!(!later.html.contains("data-review") && !later.subject.contains("map review"));
    let html = &quarter.html;
    assert!(html.contains("data-review=\"Q1 2027\""), "{html}");
    assert!(html.contains("the discovery kept on"), "{html}");
    assert!(
        html.contains("<li data-finding=\"first_workflow\"><strong>Reconsider: First workflow completed</strong> (every segment): renewed customers reached it 1.20 times as often as churned ones (140 renewed, 35 churned).</li>"),
        "{html}"
    );
    assert!(html.contains("<li data-finding=\"five_active\"><strong>Consider adding: Five teammates active</strong>"));
    assert!(
        !html.contains("data-finding=\"team_invited\""),
        "moderate: nothing to say"
    );
    // The manual milestone has no line in the kept discovery: said not to be judged, not passed as fine.
    assert!(
        html.contains("data-unjudged=\"1\">Not judged by it (no line for their map's scope: added since, or under other ids): Executive sponsor named (every segment).</p>"),
        "{html}"
    );
    // The maps by what they were called, not where they lay on the machine that kept them.
    assert_eq!(
        (kept.current_maps.clone(), kept.proposed_maps.clone()),
        (vec!["current".to_string()], vec!["proposed".to_string()])
    );
    assert!(
        html.contains("the proposed maps (proposed) against the maps it was given as current (current)"),
        "{html}"
    );
    assert!(
        !html.contains(dir.path().to_str().unwrap()),
        "no local path in the email"
    );
    for (what, current, proposed, change) in milepost_app::email::compared(&kept.current, &kept.proposed) {
        let change = if change.is_empty() {
            String::new()
        } else {
            format!(" ({change})")
        };
        let row = format!(
            "<li data-compare=\"{what}\"><strong>{what}</strong>: {current} in use, {proposed} proposed{change}</li>"
        );
        assert!(html.contains(&row), "{row} in {html}");
    }
    // The misses as the simulator printed them: the renewed customers miss only under the proposal.
    let misses = |set: &str| n(&printed[set]["total"]["misses"]);
    assert!(misses("proposed") > misses("current"));
    assert!(html.contains(&format!(
        "<li data-compare=\"misses\"><strong>misses</strong>: {} in use, {} proposed (+",
        misses("current"),
        misses("proposed")
    )));
}
