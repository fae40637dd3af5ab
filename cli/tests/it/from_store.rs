//! What Milepost reads back from a store for people: the weekly leadership
//! digest and `milepost discover --from-store`, on DynamoDB (moto) through
//! their handler and the binary, and on the embedded store.
//!
//! The digest: through its Lambda handler on DynamoDB and SES, against
//! `milepost report --json` run as a user runs it on the same table for the
//! same week: every figure the email shows is the report's. A second run the
//! same week (the schedule's retry) sends nothing, and the function asks AWS
//! only for what the template grants.
//!
//! Discover: the milestones Milepost tracked judged against the renewal
//! decisions in the store, recounted from the records the test wrote, and
//! the same on the embedded store.

use std::process::Command;
use std::sync::Arc;

use chrono::{Duration, Utc};
use milepost_app::ports::{AccountStore, MilestoneStore, Store, TaskStore};
use milepost_app::weekly_digest::WeeklyDigest;
use milepost_app::Config;
use milepost_aws::{DynamoStore, SesMailer};
use milepost_domain::renewal::{RenewalDecision, RenewalOutcome};
use milepost_domain::{Group, MilestoneStatus, Stage, TrackedMilestone};
use milepost_embedded::fixtures::{account, date, task_on};
use milepost_embedded::InMemoryStore;
use milepost_local::MotoServer;
use serde_json::Value;

const TABLE: &str = "milepost-digest";

/// `milepost ARGS` as a user runs it against the emulator's `table`.
pub(crate) fn milepost(moto: &MotoServer, table: &str, args: &[&str]) -> std::process::Output {
    on_emulator(&mut Command::new(env!("CARGO_BIN_EXE_milepost")), moto, table)
        .args(args)
        .output()
        .unwrap()
}

/// `command` pointed at the emulator's `table`, as `make local` points a shell.
pub(crate) fn on_emulator<'c>(command: &'c mut Command, moto: &MotoServer, table: &str) -> &'c mut Command {
    command
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("MILEPOST_TABLE", table)
}

/// The figures the email's HTML names with `data-figure`, in order.
fn figures(html: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find("data-figure=\"") {
        rest = &rest[at + 13..];
        let name_end = rest.find('"').unwrap();
        let name = rest[..name_end].to_string();
        let value_start = rest.find('>').unwrap() + 1;
        let value_end = value_start + rest[value_start..].find('<').unwrap();
        found.push((name, rest[value_start..value_end].trim().to_string()));
        rest = &rest[value_end..];
    }
    found
}

fn money(n: u64) -> String {
    milepost_app::email::fmt_money(n)
}

#[tokio::test]
async fn the_weekly_digest_says_what_milepost_report_says_and_goes_once() {
    let moto = MotoServer::start();
    let sdk = moto.sdk_config().await;
    milepost_local::stack::create_local_resources(&sdk, TABLE, TABLE)
        .await
        .unwrap();
    let config = Config::default();
    milepost_local::outbox::verify_sender(&sdk, config.sender.email.as_str())
        .await
        .unwrap();
    let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), TABLE));

    // 30 accounts, one milestone each, due every 2½ days back from now (at
    // 06:00-offset times, clear of the week's and the windows' edges):
    // reached on time, missed and escalating, recovered, held out, lapsed.
    let now = Utc::now();
    let map = milepost_maps::load_map("m.yaml", MAP).unwrap();
    for i in 0..30u32 {
        let id = format!("acct-{i:02}");
        let mut a = account(&id, date(2026, 1, 1));
        a.name = format!("Customer {i:02}");
        a.arr = 10_000 * u64::from(i + 1);
        let due = now - Duration::hours(60 * i64::from(i) + 6);
        if i == 29 {
            // Renewed after its miss: its ARR is no longer at risk.
            a.record_renewal(RenewalOutcome {
                decision_date: (now - Duration::days(1)).date_naive(),
                outcome: RenewalDecision::Renewed,
                arr_after: None,
            });
        }
        store.put_account(&a).await.unwrap();
        let mut m = TrackedMilestone::new(&a, &map, &map.milestones[0]);
        let seeded = milepost_domain::seed::milestone(&mut m).due_at(due);
        match i % 5 {
            0 => {
                seeded
                    .status(MilestoneStatus::Achieved)
                    .reached(due - Duration::days(1), None);
            }
            kind => {
                let group = if kind == 3 { Group::Control } else { Group::Playbook };
                let seeded = seeded.missed(due + Duration::minutes(15), Some(group));
                match kind {
                    1 => {
                        seeded.status(MilestoneStatus::Escalating(
                            [Stage::Outreach, Stage::CsmTask, Stage::Leadership][i as usize % 3],
                        ));
                    }
                    2 | 3 => {
                        let reached = (due + Duration::hours(20 + 13 * i64::from(i))).min(now - Duration::hours(1));
                        let from = if kind == 2 {
                            MilestoneStatus::Escalating(Stage::Outreach)
                        } else {
                            MilestoneStatus::Missed
                        };
                        seeded.status(MilestoneStatus::Recovered).reached(reached, Some(from));
                    }
                    _ if i < 10 => {
                        seeded.status(MilestoneStatus::Missed);
                    }
                    _ => {
                        seeded.lapsed((due + Duration::days(9)).min(now - Duration::hours(2)));
                    }
                }
            }
        }
        assert!(store.create_milestone(&m).await.unwrap());
    }
    for (n, id) in ["acct-01", "acct-06"].iter().enumerate() {
        let t = task_on(
            milepost_domain::AccountId::new(*id),
            "first",
            &format!("task-{n}"),
            "maya@vendor.example",
            now - Duration::days(3 + n as i64),
        );
        assert!(store.create_task(&t).await.unwrap());
    }

    let digest = WeeklyDigest {
        store: store.clone(),
        mailer: Arc::new(SesMailer::new(aws_sdk_sesv2::Client::new(&sdk), None)),
        clock: Arc::new(milepost_app::clock::SystemClock),
        config: config.clone(),
    };
    moto.record_requests(true).await;
    let outcome = milepost_digest::send(&digest).await.unwrap();
    let used = moto.take_recorded_actions();
    let again = milepost_digest::send(&digest).await.unwrap();
    moto.record_requests(false).await;
    assert_eq!(
        (outcome.result.as_str(), again.result.as_str()),
        ("sent", "already_sent"),
        "one digest a week, whatever the retries"
    );
    let retried = moto.recorded_actions();
    assert_eq!(
        retried,
        ["dynamodb:GetItem".to_string()].into(),
        "a second run reads its send record and stops: no Scan, no email"
    );
    assert!(
        used.contains("dynamodb:Scan@table") && used.contains("ses:SendEmail"),
        "{used:?}"
    );
    milepost_local::iam::assert_granted("DigestFunction", &used);

    let sent = milepost_local::outbox::sent_emails(&moto.endpoint).await.unwrap();
    assert_eq!(sent.len(), 1, "one email");
    assert_eq!(sent[0].to.len(), 1);
    assert!(
        sent[0].to[0].ends_with(&format!("<{}>", config.cs_leader_email)),
        "{:?}",
        sent[0].to
    );
    let shown = figures(&sent[0].html);

    // What a user runs for the same week, on the same table.
    let report = |extra: &[&str]| -> Value {
        let out = milepost(&moto, TABLE, &[&["report", "--json"], extra].concat());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let (since, until) = (outcome.week.since.to_string(), outcome.week.until.to_string());
    let week = report(&["--since", &since, "--until", &until]);
    let all_time = report(&[]);
    let count = |v: &Value| v.as_u64().unwrap();
    let activity = &week["activity"];
    let at_risk = &week["at_risk"];
    let open_tasks: u64 = week["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| count(&t["open"]) + count(&t["snoozed"]))
        .sum();
    let expected = vec![
        (
            "new_misses",
            (count(&activity["new_misses"]["playbook"]) + count(&activity["new_misses"]["control"])).to_string(),
        ),
        (
            "recoveries",
            (count(&activity["recoveries"]["playbook"]) + count(&activity["recoveries"]["control"])).to_string(),
        ),
        ("open_escalations", count(&activity["open_escalations"]).to_string()),
        ("open_tasks", open_tasks.to_string()),
        ("arr_now", money(count(&at_risk["arr_now"]))),
        ("accounts_now", count(&at_risk["accounts_now"]).to_string()),
        ("arr_at_start", money(count(&at_risk["arr_at_start"]))),
    ];
    let shown_head: Vec<(&str, String)> = shown.iter().take(7).map(|(k, v)| (k.as_str(), v.clone())).collect();
    assert_eq!(
        shown_head, expected,
        "the digest's figures are the report's for the week"
    );
    let top: Vec<String> = at_risk["top_accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| money(count(&a["arr_at_risk"])))
        .collect();
    let shown_top: Vec<String> = shown
        .iter()
        .filter(|(k, _)| k == "arr_at_risk")
        .map(|(_, v)| v.clone())
        .collect();
    assert_eq!(shown_top, top, "the ten accounts with most ARR at risk, most first");
    assert_eq!(top.len(), 10);
    for a in at_risk["top_accounts"].as_array().unwrap() {
        assert!(
            sent[0]
                .html
                .contains(&format!("data-account=\"{}\"", a["account_id"].as_str().unwrap())),
            "{a}"
        );
    }

    // The misses whose playbook lapsed: the same count, ARR and list as the report's.
    let lapsed_head: Vec<(&str, String)> = shown
        .iter()
        .filter(|(k, _)| k == "lapsed_misses" || k == "lapsed_arr")
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    assert_eq!(
        lapsed_head,
        [
            ("lapsed_misses", count(&at_risk["lapsed_misses"]).to_string()),
            ("lapsed_arr", money(count(&at_risk["lapsed_arr"])))
        ]
    );
    assert!(count(&at_risk["lapsed_misses"]) > 0);
    let top_lapsed: Vec<String> = at_risk["top_lapsed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| money(count(&a["arr_at_risk"])))
        .collect();
    let shown_lapsed: Vec<String> = shown
        .iter()
        .filter(|(k, _)| k == "lapsed_arr_at_risk")
        .map(|(_, v)| v.clone())
        .collect();
    assert_eq!(shown_lapsed, top_lapsed, "most ARR first");
    for l in at_risk["top_lapsed"].as_array().unwrap() {
        let days = l["lapsed_days"].as_i64().unwrap();
        let age = format!("Playbook ended {days} days ago");
        assert!(sent[0].html.contains(&age), "{age}: {}", sent[0].html);
    }

    // The data is made so each figure is something: a digest of zeros would pass nothing.
    assert!(count(&activity["open_escalations"]) > 0 && open_tasks == 2);
    assert!(expected.iter().all(|(_, v)| v != "0" && v != "$0"), "{expected:?}");
    assert!(
        !sent[0].html.contains("acct-29\""),
        "renewed since its miss: not at risk"
    );

    // The uplift: too few misses here, so the digest says why instead of a number.
    let overall = all_time["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["milestone"] == "all" && r["segment"] == "all")
        .unwrap();
    assert_eq!(overall["small_sample"], Value::Bool(true));
    let uplift = &shown.iter().find(|(k, _)| k == "uplift").unwrap().1;
    assert!(
        uplift.contains(&format!(
            "({} playbook and {} control misses with a closed window)",
            overall["missed_playbook"], overall["missed_control"]
        )),
        "{uplift}"
    );
}

/// The demo's digests, one each Monday 08:00: each shows the figures of the
/// report written beside it (what `milepost report --json --since --until`
/// printed at that moment), and those agree with a recount of the demo's
/// domain events: misses due in the week, recoveries made in it.
#[tokio::test]
async fn each_demo_digest_shows_its_weeks_report_and_the_domain_events_agree() {
    use milepost_cli::demo::{run, DemoOptions};
    let dir = tempfile::tempdir().unwrap();
    let summary = run(&DemoOptions {
        accounts: 120,
        days: 120,
        seed: 7,
        out: dir.path().to_path_buf(),
        progress: false,
        write_emails: true,
    })
    .await
    .unwrap();
    let events: Vec<Value> = std::fs::read_to_string(dir.path().join("domain-events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let day = |v: &Value| v.as_str().unwrap().parse::<chrono::DateTime<Utc>>().unwrap();
    let mut emails: Vec<_> = std::fs::read_dir(dir.path().join("digest"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    emails.sort();
    // 120 days from Monday 5 Jan: 18 Mondays, the first before any data.
    assert_eq!((emails.len(), summary.weekly_digests), (18, 18));
    let (mut busy_weeks, mut expansion_weeks) = (0, 0);
    for path in &emails {
        let eml = std::fs::read(path).unwrap();
        let msg = mail_parser::MessageParser::default().parse(&eml[..]).unwrap();
        let html = msg.body_html(0).unwrap().into_owned();
        let stem = path.file_stem().unwrap().to_str().unwrap();
        let since = &stem[stem.find("week-").unwrap() + 5..];
        // The first Monday of a quarter (5 Jan and 6 Apr 2026) carries its map review, no other.
        let quarter = match since {
            "2025-12-29" => Some("Q1 2026"),
            "2026-03-30" => Some("Q2 2026"),
            _ => None,
        };
        let text = msg.body_text(0).unwrap().into_owned();
        match quarter {
            Some(q) => {
                assert!(html.contains(&format!("data-review=\"{q}\"")), "{stem}");
                assert!(text.contains(&format!("Quarterly map review: {q}")), "{stem}: {text}");
                // The demo keeps neither a discovery nor a comparison: each says how to get one.
                assert!(text.contains("No discovery result is kept yet") && text.contains("maps simulate --keep"));
            }
            None => assert!(!html.contains("data-review") && !text.contains("map review"), "{stem}"),
        }
        let report: Value = serde_json::from_slice(
            &std::fs::read(dir.path().join("digest").join(format!("week-{since}.report.json"))).unwrap(),
        )
        .unwrap();
        let n = |v: &Value| v.as_u64().unwrap();
        let (activity, at_risk) = (&report["activity"], &report["at_risk"]);
        let new_misses = n(&activity["new_misses"]["playbook"]) + n(&activity["new_misses"]["control"]);
        let recoveries = n(&activity["recoveries"]["playbook"]) + n(&activity["recoveries"]["control"]);
        let shown = figures(&html);
        let get = |name: &str| shown.iter().find(|(k, _)| k == name).unwrap().1.clone();
        assert_eq!(get("new_misses"), new_misses.to_string(), "{stem}");
        assert_eq!(get("recoveries"), recoveries.to_string(), "{stem}");
        assert_eq!(
            get("open_escalations"),
            n(&activity["open_escalations"]).to_string(),
            "{stem}"
        );
        assert_eq!(get("arr_now"), money(n(&at_risk["arr_now"])), "{stem}");
        assert_eq!(get("arr_at_start"), money(n(&at_risk["arr_at_start"])), "{stem}");

        // The same two figures from the domain events alone.
        let as_of = day(&report["as_of"]);
        let (from, to) = (report["since"].as_str().unwrap(), report["until"].as_str().unwrap());
        let in_week = |t: chrono::DateTime<Utc>| {
            let d = t.date_naive().to_string();
            d.as_str() >= from && d.as_str() <= to && t <= as_of
        };
        let missed = events
            .iter()
            .filter(|e| e["type"] == "MilestoneMissed" && in_week(day(&e["due_at"])))
            .count() as u64;
        let recovered = events
            .iter()
            .filter(|e| e["type"] == "MilestoneRecovered" && in_week(day(&e["recovered_at"])))
            .count() as u64;
        assert_eq!((missed, recovered), (new_misses, recoveries), "{stem}");
        busy_weeks += usize::from(new_misses > 0 && recoveries > 0);

        // Issue 36: the week's expansion opportunities and pipeline, as the
        // report and the ExpansionReady events of the week say; no row without.
        let ready: Vec<&Value> = events
            .iter()
            .filter(|e| e["type"] == "ExpansionReady" && in_week(day(&e["ready_at"])))
            .collect();
        let pipeline: u64 = ready.iter().filter_map(|e| e["pipeline_arr"].as_u64()).sum();
        let expansion = &report["expansion"];
        assert_eq!(
            (n(&expansion["opportunities"]), n(&expansion["pipeline_arr"])),
            (ready.len() as u64, pipeline),
            "{stem}"
        );
        if ready.is_empty() {
            assert!(!html.contains("expansion.") && !text.contains("Expansion:"), "{stem}");
        } else {
            assert_eq!(get("expansion.opportunities"), ready.len().to_string(), "{stem}");
            assert_eq!(get("expansion.pipeline_arr"), money(pipeline), "{stem}");
            let opened = match ready.len() {
                1 => "1 opportunity opened".to_string(),
                n => format!("{n} opportunities opened"),
            };
            assert!(
                text.contains(&format!(
                    "Expansion:         {opened}, {} a year in pipeline",
                    money(pipeline)
                )),
                "{stem}: {text}"
            );
            expansion_weeks += 1;
        }
    }
    assert!(busy_weeks >= 10, "most weeks have misses and recoveries: {busy_weeks}");
    assert!(
        expansion_weeks >= 3,
        "weeks with expansion opportunities: {expansion_weeks}"
    );
}

const DISCOVER_TABLE: &str = "milepost-discover";
/// Both tests' map; the digest's accounts track its first milestone only.
const MAP: &str = r#"segment: all
milestones:
  - id: first_workflow
    name: First workflow completed
    customer_title: First workflow completed
    phase: onboarding
    due_days: 30
    owner: csm
    criterion: {kind: event_count, event: workflow.completed, min: 1}
    playbook: {outreach: o, csm: c, leadership: l}
  - id: kickoff
    name: Kickoff call held
    phase: onboarding
    due_days: 14
    owner: csm
    criterion: {kind: manual}
    playbook: {csm: c, leadership: l}
  - id: annual_review
    name: Annual review held
    customer_title: Annual review held
    phase: renewal_prep
    due_days: 350
    owner: csm
    criterion: {kind: event_count, event: review.held, min: 1}
    playbook: {outreach: o, csm: c, leadership: l}
"#;

/// How account `i` went: churned, and for each milestone on time, late or never.
#[derive(Clone, Copy, PartialEq)]
enum Went {
    OnTime,
    Late,
    Never,
}

fn churned(i: usize) -> bool {
    i.is_multiple_of(3)
}

fn went(i: usize, milestone: &str) -> Went {
    match milestone {
        // Planted: renewed customers mostly reach it on time, churned ones rarely.
        "first_workflow" if churned(i) => {
            if i.is_multiple_of(4) {
                Went::OnTime
            } else {
                Went::Late
            }
        }
        "first_workflow" if i.is_multiple_of(5) => Went::Late,
        "first_workflow" if i.is_multiple_of(7) => Went::Never,
        "first_workflow" => Went::OnTime,
        "kickoff" if i.is_multiple_of(2) => Went::OnTime,
        _ => Went::Never,
    }
}

const ACCOUNTS: usize = 60;

/// 60 decided accounts and one without a decision, each with the map's three milestones.
async fn seed(store: &dyn Store) {
    let map = milepost_maps::load_map("m.yaml", MAP).unwrap();
    for i in 0..=ACCOUNTS {
        let mut a = account(&format!("acct-{i:02}"), date(2025, 1, 6));
        if i < ACCOUNTS {
            a.record_renewal(RenewalOutcome {
                decision_date: date(2025, 12, 1),
                outcome: if churned(i) {
                    RenewalDecision::Churned
                } else if i.is_multiple_of(2) {
                    RenewalDecision::Expanded
                } else {
                    RenewalDecision::Renewed
                },
                arr_after: None,
            });
        }
        store.put_account(&a).await.unwrap();
        for def in &map.milestones {
            let mut m = TrackedMilestone::new(&a, &map, def);
            let due = m.due_at();
            let seeded = milepost_domain::seed::milestone(&mut m);
            match went(i, &def.id) {
                Went::OnTime => {
                    seeded
                        .status(MilestoneStatus::Achieved)
                        .reached(due - Duration::days(3), None);
                }
                Went::Late => {
                    seeded
                        .missed(due + Duration::minutes(15), None)
                        .status(MilestoneStatus::Recovered)
                        .reached(due + Duration::days(5), Some(MilestoneStatus::Missed));
                }
                Went::Never => {
                    seeded
                        .missed(due + Duration::minutes(15), None)
                        .status(MilestoneStatus::Lapsed);
                }
            }
            assert!(store.create_milestone(&m).await.unwrap());
        }
    }
}

fn overall<'a>(rows: &'a [Value], milestone: &str) -> Option<&'a Value> {
    rows.iter()
        .find(|r| r["milestone"] == milestone && r["segment"] == "all" && r["tenure"] == "all")
}

#[tokio::test]
async fn discover_from_the_store_judges_tracked_milestones_against_recorded_renewals() {
    let moto = MotoServer::start();
    let sdk = moto.sdk_config().await;
    milepost_local::stack::create_local_resources(&sdk, DISCOVER_TABLE, DISCOVER_TABLE)
        .await
        .unwrap();
    let dynamo = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), DISCOVER_TABLE));
    seed(dynamo.as_ref()).await;

    let out = milepost(&moto, DISCOVER_TABLE, &["discover", "--from-store", "--format", "json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = json["milestones"].as_array().unwrap();

    // The recount, from how the test made each account go.
    for milestone in ["first_workflow", "kickoff"] {
        let (mut renewed, mut renewed_on_time, mut lost, mut lost_on_time) = (0, 0, 0, 0);
        for i in 0..ACCOUNTS {
            let on_time = u64::from(went(i, milestone) == Went::OnTime);
            if churned(i) {
                lost += 1;
                lost_on_time += on_time;
            } else {
                renewed += 1;
                renewed_on_time += on_time;
            }
        }
        let row = overall(rows, milestone).unwrap_or_else(|| panic!("no row for {milestone}: {json}"));
        let got = [
            &row["renewed_n"],
            &row["renewed_achieved"],
            &row["churned_n"],
            &row["churned_achieved"],
        ]
        .map(|v| v.as_u64().unwrap());
        assert_eq!(
            got,
            [renewed, renewed_on_time, lost, lost_on_time],
            "{milestone}: {row}"
        );
    }
    // The planted one predicts renewal; a manual milestone is judged, not skipped.
    let fw = overall(rows, "first_workflow").unwrap();
    assert_eq!(fw["class"], "strong", "{fw}");
    assert!(
        overall(rows, "annual_review").is_none(),
        "due after the decision: not judged"
    );
    assert!(
        stderr.contains("from the store: 40 renewed and 20 churned accounts; 1 without a renewal decision yet; 60 milestone(s) due after"),
        "{stderr}"
    );

    // The embedded store gives the same rows.
    let embedded = InMemoryStore::new();
    seed(&embedded).await;
    let records = milepost_cli::discover_store::records(&embedded, None, Default::default())
        .await
        .unwrap();
    let found = milepost_discovery::run_on_records(records, &[], None, None).unwrap();
    let again: Value = serde_json::from_str(&milepost_discovery::render(&found, "json", false).unwrap()).unwrap();
    assert_eq!(again, json);

    // The result is kept for the console's maps page, whole.
    use milepost_app::ports::DiscoveryStore;
    let kept = dynamo.kept_discovery().await.unwrap().expect("kept by --from-store");
    assert_eq!(kept.source, "the store's renewal decisions");
    assert_eq!(kept.lines.len(), rows.len());
    let line = kept.line_for("first_workflow", "all", "all").unwrap();
    assert_eq!(line.class, Some(milepost_domain::discovery::Class::Strong));
    assert_eq!(line.renewed_n, fw["renewed_n"].as_u64().unwrap());
    assert_eq!(line.divergence_month, fw["divergence_month"].as_u64().map(|m| m as u32));

    // An uploaded result replaces it; one that is not a result changes nothing.
    let dir = tempfile::tempdir().unwrap();
    let upload = dir.path().join("q3-discovery.json");
    let only_first: Vec<&Value> = rows.iter().filter(|r| r["milestone"] == "first_workflow").collect();
    std::fs::write(&upload, serde_json::json!({ "milestones": only_first }).to_string()).unwrap();
    let out = milepost(&moto, DISCOVER_TABLE, &["maps", "discovery", upload.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("kept {} line(s) of 1 milestone(s)", only_first.len()))
    );
    let kept = dynamo.kept_discovery().await.unwrap().unwrap();
    assert_eq!(
        (kept.source.as_str(), kept.lines.len()),
        ("q3-discovery.json", only_first.len())
    );
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"milestones": [{"milestone": "x", "name": "X", "segment": "retail", "tenure": "all", "renewed_n": 1, "churned_n": 1}]}"#).unwrap();
    let out = milepost(&moto, DISCOVER_TABLE, &["maps", "discovery", bad.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("milestones[0].segment"),
        "{said}"
    );
    assert_eq!(dynamo.kept_discovery().await.unwrap().unwrap(), kept, "nothing changed");

    // Issue 36: expanded vs renewed without expanding, churned left out; the
    // recount from how the test decided each account. Never kept: what a
    // milestone is worth is its churn, and `maps discovery` refuses it too.
    let out = milepost(
        &moto,
        DISCOVER_TABLE,
        &["discover", "--from-store", "--cohorts", "expansion", "--format", "json"],
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("from the store: 20 expanded and 20 not expanded (renewed flat or contracted) accounts, 20 churned left out;")
            && said.contains("nothing kept for the console's maps page: it shows what predicts renewal, not expansion"),
        "{said}"
    );
    let expansion: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(expansion["cohorts"], "expansion");
    let row = overall(expansion["milestones"].as_array().unwrap(), "first_workflow").unwrap();
    let stayed = (0..ACCOUNTS).filter(|i| !churned(*i));
    let on_time = |expanded: bool| {
        stayed
            .clone()
            .filter(|i| i.is_multiple_of(2) == expanded && went(*i, "first_workflow") == Went::OnTime)
            .count() as u64
    };
    assert_eq!(
        [
            &row["expanded_n"],
            &row["expanded_achieved"],
            &row["not_expanded_n"],
            &row["not_expanded_achieved"]
        ]
        .map(|v| v.as_u64()),
        [Some(20), Some(on_time(true)), Some(20), Some(on_time(false))],
        "{row}"
    );
    assert_eq!(dynamo.kept_discovery().await.unwrap().unwrap(), kept, "not kept");
    let grown = dir.path().join("expansion.json");
    std::fs::write(&grown, &out.stdout).unwrap();
    let out = milepost(&moto, DISCOVER_TABLE, &["maps", "discovery", grown.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("it compares expansion cohorts"),
        "{said}"
    );
    assert_eq!(dynamo.kept_discovery().await.unwrap().unwrap(), kept, "nothing changed");
    let out = milepost(
        &moto,
        DISCOVER_TABLE,
        &[
            "discover",
            "--from-store",
            "--cohorts",
            "expansion",
            "--review",
            "examples/maps",
        ],
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("--review judges maps by what predicts renewal"),
        "{said}"
    );

    // Options that need files are refused next to --from-store.
    let both = Command::new(env!("CARGO_BIN_EXE_milepost"))
        .args(["discover", "--from-store", "--accounts", "a.csv"])
        .output()
        .unwrap();
    assert_eq!(both.status.code(), Some(2), "{}", String::from_utf8_lossy(&both.stderr));
}

/// Issue 36: `milepost report --success-plan with|without` and `milepost
/// discover --from-store --success-plan with|without` split the accounts
/// by whether they have a success plan: each part counts what a recount of
/// its accounts gives, and the parts add up to the whole.
#[tokio::test]
async fn report_and_discover_split_the_accounts_by_their_success_plan() {
    const PLAN_TABLE: &str = "milepost-plans";
    let planned = |i: usize| i % 4 == 1;
    let moto = MotoServer::start();
    let sdk = moto.sdk_config().await;
    milepost_local::stack::create_local_resources(&sdk, PLAN_TABLE, PLAN_TABLE)
        .await
        .unwrap();
    let dynamo = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), PLAN_TABLE);
    seed(&dynamo).await;
    for i in (0..=ACCOUNTS).filter(|&i| planned(i)) {
        let id = milepost_domain::AccountId::new(format!("acct-{i:02}"));
        let mut a = (*dynamo.get_account(&id).await.unwrap().unwrap()).clone();
        a.success_plan = Some(milepost_domain::SuccessPlan {
            account_id: id.clone(),
            version: 1,
            outcomes: Vec::new(),
            set_at: Utc::now(),
            set_by: "maya@vendor.example".into(),
        });
        dynamo.put_account(&a).await.unwrap();
    }
    let misses_of = |which: &str| {
        let mut args = vec!["report", "--json"];
        if which != "all" {
            args.extend(["--success-plan", which]);
        }
        let out = milepost(&moto, PLAN_TABLE, &args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let all = report["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["milestone"] == "all" && r["segment"] == "all")
            .cloned()
            .unwrap_or_else(|| panic!("{which}: {report}"));
        all["missed_playbook"].as_u64().unwrap() + all["missed_control"].as_u64().unwrap()
    };
    let recount = |want: Option<bool>| {
        (0..=ACCOUNTS)
            .filter(|&i| want.is_none_or(|w| planned(i) == w))
            .map(|i| {
                ["first_workflow", "kickoff", "annual_review"]
                    .iter()
                    .filter(|m| went(i, m) != Went::OnTime)
                    .count() as u64
            })
            .sum::<u64>()
    };
    let (all, with, without) = (misses_of("all"), misses_of("with"), misses_of("without"));
    assert_eq!(
        (with, without, all),
        (recount(Some(true)), recount(Some(false)), recount(None))
    );
    assert_eq!(with + without, all);

    let renewed_n = |which: &str| {
        let mut args = vec!["discover", "--from-store", "--format", "json"];
        if which != "all" {
            args.extend(["--success-plan", which]);
        }
        let out = milepost(&moto, PLAN_TABLE, &args);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{stderr}");
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        let row = overall(json["milestones"].as_array().unwrap(), "first_workflow")
            .cloned()
            .unwrap();
        (
            row["renewed_n"].as_u64().unwrap() + row["churned_n"].as_u64().unwrap(),
            stderr,
        )
    };
    let decided_planned = (0..ACCOUNTS).filter(|&i| planned(i)).count() as u64;
    let (n_with, said) = renewed_n("with");
    assert_eq!(n_with, decided_planned);
    let others = ACCOUNTS + 1 - (0..=ACCOUNTS).filter(|&i| planned(i)).count();
    assert!(
        said.contains(&format!(
            "only accounts with a success plan: {others} other(s) left out"
        )),
        "{said}"
    );
    assert!(said.contains("nothing kept for the console's maps page"), "{said}");
    let (n_without, _) = renewed_n("without");
    let (n_all, _) = renewed_n("all");
    assert_eq!((n_with + n_without, n_all), (ACCOUNTS as u64, ACCOUNTS as u64));
    // Without the store, there is no plan to tell by.
    let refused = milepost(
        &moto,
        PLAN_TABLE,
        &[
            "discover",
            "--accounts",
            "a.csv",
            "--events",
            "e.csv",
            "--success-plan",
            "with",
        ],
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--from-store"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

/// Issue 36: a map's `arr_weight: discovered` puts at risk, for each miss,
/// the account's ARR × the churn-rate difference between the accounts that
/// missed the milestone and those that achieved it, measured by `discover
/// --from-store` from the store's renewal decisions: the report states the
/// measure (equal to a recount of how the test made each account go), its
/// interval and method, and ARR at risk moves by exactly the open miss's
/// new weight. Kept again, nothing changes (no milestone written twice).
#[tokio::test]
async fn a_discovered_weight_puts_the_measured_churn_difference_at_risk() {
    const WORTH_TABLE: &str = "milepost-worth";
    let moto = MotoServer::start();
    let sdk = moto.sdk_config().await;
    milepost_local::stack::create_local_resources(&sdk, WORTH_TABLE, WORTH_TABLE)
        .await
        .unwrap();
    let dynamo = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), WORTH_TABLE);
    let dir = tempfile::tempdir().unwrap();
    let map_file = dir.path().join("all.yaml");
    let discovered = MAP.replacen(
        "    criterion: {kind: event_count, event: workflow.completed, min: 1}\n",
        "    criterion: {kind: event_count, event: workflow.completed, min: 1}\n    arr_weight: discovered\n",
        1,
    );
    std::fs::write(&map_file, &discovered).unwrap();
    let out = milepost(&moto, WORTH_TABLE, &["maps", "load", map_file.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        said.contains("arr_weight: discovered: 1 map(s) wait for a kept discovery"),
        "{said}"
    );
    seed(&dynamo).await;
    // An account not yet decided, its first workflow missed and not caught up: at risk.
    let map = milepost_maps::load_map("all.yaml", &discovered).unwrap();
    let mut open = account("acct-open", date(2026, 1, 5));
    open.arr = 84_000;
    dynamo.put_account(&open).await.unwrap();
    let mut m = TrackedMilestone::new(&open, &map, &map.milestones[0]);
    let due = m.due_at();
    milepost_domain::seed::milestone(&mut m).missed(due + Duration::minutes(15), None);
    assert!(dynamo.create_milestone(&m).await.unwrap());

    let report = || {
        let out = milepost(&moto, WORTH_TABLE, &["report", "--json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let before = report();
    let worth = &before["worth"][0];
    assert_eq!(
        (worth["milestone"].as_str(), worth["weight"].as_f64()),
        (Some("first_workflow"), Some(0.1))
    );
    assert!(
        worth["unmeasured"].as_str().unwrap().contains("no discovery kept"),
        "{worth}"
    );
    assert_eq!(before["at_risk"]["arr_now_range"], Value::Null, "nothing measured yet");

    let out = milepost(&moto, WORTH_TABLE, &["discover", "--from-store"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    // Every first workflow missed and never caught up is weighed (the seeded
    // ones and the open one); one caught up keeps its weight, so past periods do not move.
    let open = (0..=ACCOUNTS)
        .filter(|&i| went(i, "first_workflow") == Went::Never)
        .count()
        + 1;
    assert!(
        said.contains(&format!(
            "1 map(s) weighed by the kept discovery (1 changed), {open} open milestone(s) given the new weight"
        )),
        "{said}"
    );

    // The recount: churn among the decided accounts that missed it, less among those that achieved it.
    let (mut missed, mut missed_churned, mut achieved, mut achieved_churned) = (0u64, 0u64, 0u64, 0u64);
    for i in 0..ACCOUNTS {
        let lost = u64::from(churned(i));
        if went(i, "first_workflow") == Went::OnTime {
            (achieved, achieved_churned) = (achieved + 1, achieved_churned + lost);
        } else {
            (missed, missed_churned) = (missed + 1, missed_churned + lost);
        }
    }
    let weight = missed_churned as f64 / missed as f64 - achieved_churned as f64 / achieved as f64;
    assert!(
        weight > 0.1,
        "the planted milestone is worth more than the default: {weight}"
    );
    let after = report();
    let worth = &after["worth"][0];
    let measured = &worth["measured"];
    assert_eq!(
        ["missed", "missed_churned", "achieved", "achieved_churned"].map(|k| measured[k].as_u64().unwrap()),
        [missed, missed_churned, achieved, achieved_churned],
        "{worth}"
    );
    assert!((worth["weight"].as_f64().unwrap() - weight).abs() < 1e-12, "{worth}");
    let ci = worth["weight_ci"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect::<Vec<_>>();
    assert!(ci[0] < weight && weight < ci[1], "{ci:?}");
    assert_eq!(measured["source"], "the store's renewal decisions");

    // ARR at risk: the open miss now carries 84,000 × the weight instead of × 0.1, and its interval.
    let n = |r: &Value, k: &str| r["at_risk"][k].as_u64().unwrap();
    let share = |w: f64| (84_000.0 * w).round() as u64;
    assert_eq!(
        n(&after, "arr_now"),
        n(&before, "arr_now") - share(0.1) + share(weight),
        "{}",
        after["at_risk"]
    );
    let others = n(&after, "arr_now") - share(weight);
    let range: Vec<u64> = after["at_risk"]["arr_now_range"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(range, vec![others + share(ci[0]), others + share(ci[1])]);
    assert_eq!(n(&after, "misses_now_measured"), 1);
    // The table says it with its method.
    let out = milepost(&moto, WORTH_TABLE, &["report"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains(
            "What a miss is worth (arr_weight: discovered): churn rate among decided accounts that missed it"
        ),
        "{table}"
    );
    assert!(
        table.contains(&format!(
            "churned {missed_churned} of {missed} that missed it, {achieved_churned} of {achieved} that achieved it (all/all line of the store's renewal decisions"
        )),
        "{table}"
    );

    // Kept again: the map rests on the newer discovery, no milestone is written.
    let out = milepost(&moto, WORTH_TABLE, &["discover", "--from-store"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("(1 changed), 0 open milestone(s)"), "{said}");
    let again = report();
    assert_eq!(again["at_risk"], after["at_risk"]);
}
