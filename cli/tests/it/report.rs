//! `milepost report`: its figures recounted from the demo's own domain
//! events, the demo's planted playbook effect found inside its interval at
//! about the nominal rate, and the command run against DynamoDB on moto.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use milepost_cli::demo::generator::{PLANTED_CONTROL_RECOVERY, PLANTED_PLAYBOOK_RECOVERY};
use milepost_cli::demo::{run, DemoOptions};
use serde_json::Value;

fn demo(out: &Path, accounts: usize, seed: u64) -> DemoOptions {
    DemoOptions {
        accounts,
        days: 120,
        seed,
        out: out.to_path_buf(),
        progress: false,
        write_emails: false,
    }
}

/// `RecoveredAfter` as the report and the bus write it.
const STAGES: [&str; 5] = ["before_day_1", "outreach", "csm_task", "leadership", "after_lapse"];

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

/// What the report's rows should say, counted from `domain-events.jsonl`
/// alone: each MilestoneMissed (its group, due time, ARR at risk) and the
/// MilestoneRecovered of the same miss, if any.
#[derive(Debug, Default, PartialEq)]
struct Recount {
    missed: [u64; 2],
    recovered: [u64; 2],
    window_open: u64,
    arr_at_risk: u64,
    arr_recovered: u64,
    /// Playbook recoveries by the stage the event names (none: before day 1 or after the lapse).
    by_stage: BTreeMap<String, u64>,
}

/// The map milestone a miss counts under: a success plan's checkpoint
/// (`<milestone>.<outcome>.<date>`) under the `agreed_outcome` milestone
/// that made it, any other under its own id.
fn map_milestone(id: &str) -> String {
    static AGREED: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let agreed = AGREED.get_or_init(|| {
        milepost_cli::example_maps::example_maps()
            .iter()
            .flat_map(|m| &m.milestones)
            .filter(|d| matches!(d.criterion, milepost_domain::Criterion::AgreedOutcome))
            .map(|d| d.id.clone())
            .collect()
    });
    agreed
        .iter()
        .find(|d| id.starts_with(&format!("{d}.")))
        .cloned()
        .unwrap_or_else(|| id.to_string())
}

fn recount(events: &[Value], as_of: DateTime<Utc>, window_days: i64) -> BTreeMap<(String, String), Recount> {
    let key = |e: &Value| {
        (
            e["account_id"].as_str().unwrap().to_string(),
            e["milestone_id"].as_str().unwrap().to_string(),
            e["due_at"].as_str().unwrap().to_string(),
        )
    };
    let recovered: HashMap<_, &Value> = events
        .iter()
        .filter(|e| e["type"] == "MilestoneRecovered")
        .map(|e| (key(e), e))
        .collect();
    let mut rows: BTreeMap<(String, String), Recount> = BTreeMap::new();
    for e in events.iter().filter(|e| e["type"] == "MilestoneMissed") {
        let due = time(&e["due_at"]);
        let milestone = map_milestone(e["milestone_id"].as_str().unwrap());
        let segment = e["segment"].as_str().unwrap().to_string();
        for k in [
            (milestone.clone(), segment.clone()),
            (milestone.clone(), "all".into()),
            ("all".into(), segment.clone()),
            ("all".into(), "all".into()),
        ] {
            let row = rows.entry(k).or_default();
            let window_end = due + Duration::days(window_days);
            if window_end > as_of {
                row.window_open += 1;
                continue;
            }
            let g = usize::from(e["group"] == "control");
            let arr = e["arr_at_risk"].as_u64().unwrap();
            row.missed[g] += 1;
            row.arr_at_risk += arr;
            if let Some(r) = recovered
                .get(&key(e))
                .filter(|r| time(&r["recovered_at"]) <= window_end)
            {
                assert_eq!(r["group"], e["group"], "a recovery is in its miss's group");
                row.recovered[g] += 1;
                row.arr_recovered += arr;
                if g == 0 {
                    let stage = r["recovered_after"].as_str().unwrap().to_string();
                    *row.by_stage.entry(stage).or_default() += 1;
                }
            }
        }
    }
    rows
}

#[tokio::test]
async fn the_demo_report_says_what_its_domain_events_say() {
    let dir = tempfile::tempdir().unwrap();
    let summary = run(&demo(dir.path(), 200, 42)).await.unwrap();
    let report: Value = serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    let events: Vec<Value> = std::fs::read_to_string(dir.path().join("domain-events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let window = report["window_days"].as_i64().unwrap();
    assert_eq!(window, 30);
    let expected = recount(&events, time(&report["as_of"]), window);
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(
        rows.len(),
        expected.len(),
        "one row per milestone and segment seen, and the totals"
    );
    for row in rows {
        let k = (
            row["milestone"].as_str().unwrap().to_string(),
            row["segment"].as_str().unwrap().to_string(),
        );
        let want = &expected[&k];
        let n = |f: &str| row[f].as_u64().unwrap();
        let by_stage = &row["recovered_by_stage"];
        let got = Recount {
            missed: [n("missed_playbook"), n("missed_control")],
            recovered: [n("recovered_playbook"), n("recovered_control")],
            window_open: n("window_open"),
            arr_at_risk: n("arr_at_risk"),
            arr_recovered: n("arr_recovered"),
            by_stage: STAGES
                .into_iter()
                .map(|s| (s.to_string(), by_stage[s].as_u64().unwrap()))
                .filter(|(_, n)| *n > 0)
                .collect(),
        };
        assert_eq!(&got, want, "{k:?}");
        // The rates are the counts' rates, inside their intervals.
        for (rate, [rec, missed]) in [
            ("recovery_rate_playbook", [got.recovered[0], got.missed[0]]),
            ("recovery_rate_control", [got.recovered[1], got.missed[1]]),
        ] {
            if missed == 0 {
                assert!(row[rate].is_null());
                continue;
            }
            let r = row[rate]["rate"].as_f64().unwrap();
            assert!((r - rec as f64 / missed as f64).abs() < 1e-12, "{k:?} {rate}");
            let ci = &row[rate]["ci"];
            assert!(ci[0].as_f64().unwrap() <= r && r <= ci[1].as_f64().unwrap());
        }
    }
    let all = rows
        .iter()
        .find(|r| r["milestone"] == "all" && r["segment"] == "all")
        .unwrap();
    // Issue 33: one meaning of "where customers recovered". The playbook's
    // recoveries recounted from `MilestoneRecovered.recovered_after` are the
    // summary's and the report's activity, stage by stage.
    let mut recounted: BTreeMap<String, u64> = BTreeMap::new();
    for e in events
        .iter()
        .filter(|e| e["type"] == "MilestoneRecovered" && e["group"] == "playbook")
    {
        *recounted
            .entry(e["recovered_after"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert!(recounted.len() >= 4, "{recounted:?}");
    expansion_is_what_the_bus_said(dir.path(), &summary, &report, &events);
    let reported = &report["activity"]["recoveries_by_stage"];
    for stage in STAGES {
        let events_say = recounted.get(stage).copied().unwrap_or(0);
        assert_eq!(reported[stage].as_u64().unwrap(), events_say, "report, {stage}");
        let label = serde_json::from_value::<milepost_domain::RecoveredAfter>(stage.into())
            .unwrap()
            .label();
        let summary_says = summary.recovered_by_stage.get(label).copied().unwrap_or(0) as u64;
        assert_eq!(summary_says, events_say, "summary.json, {label}");
    }
    assert_eq!(
        summary.recovered_by_stage.values().sum::<usize>() as u64,
        report["activity"]["recoveries"]["playbook"].as_u64().unwrap()
    );

    // The control group is the demo's held-out misses, and the summary prints the same uplift.
    let control: u64 = all["missed_control"].as_u64().unwrap();
    assert!(control > 10, "the example maps hold out one miss in ten: {control}");
    assert_eq!(
        summary.missed_in_control as u64,
        events
            .iter()
            .filter(|e| e["type"] == "MilestoneMissed" && e["group"] == "control")
            .count() as u64
    );
    assert!(
        summary.playbook_uplift.contains("points (95% CI"),
        "{}",
        summary.playbook_uplift
    );
    // No control miss ever started a playbook: no step completed for it.
    let control_misses: std::collections::HashSet<(String, String)> = events
        .iter()
        .filter(|e| e["type"] == "MilestoneMissed" && e["group"] == "control")
        .map(|e| (e["account_id"].to_string(), e["milestone_id"].to_string()))
        .collect();
    let stepped: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "EscalationStageCompleted")
        .filter(|e| control_misses.contains(&(e["account_id"].to_string(), e["milestone_id"].to_string())))
        .collect();
    assert!(stepped.is_empty(), "{stepped:?}");
}

/// The demo plants a known effect (customers with the playbook catch up
/// more often); over many seeds the report's 95% interval for the uplift
/// must contain it about 95% of the time. With 20 seeds (each a debug-build
/// demo: 20 keep `make test` inside its time), 15 or fewer covering would
/// happen by chance under 0.4% of the time; 20 of 20, about 36%.
#[test]
fn the_uplift_interval_holds_the_planted_effect_at_about_its_nominal_rate() {
    let planted = PLANTED_PLAYBOOK_RECOVERY - PLANTED_CONTROL_RECOVERY;
    let seeds: Vec<u64> = (1..=20).collect();
    // The demo's interval and estimate for each seed: half the seeds on each
    // of two threads (one per core), each with a runtime of its own.
    let uplift_of = |seed: u64| async move {
        let dir = tempfile::tempdir().unwrap();
        run(&demo(dir.path(), 150, seed)).await.unwrap();
        let report: Value = serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
        let all = report["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["milestone"] == "all" && r["segment"] == "all")
            .unwrap()
            .clone();
        let [low, high] = [0, 1].map(|i| all["uplift_ci"][i].as_f64().unwrap());
        (low, high, all["uplift"].as_f64().unwrap())
    };
    let runs: Vec<(f64, f64, f64)> = std::thread::scope(|scope| {
        let halves: Vec<_> = seeds
            .chunks(seeds.len() / 2)
            .map(|half| {
                scope.spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    half.iter()
                        .map(|&seed| runtime.block_on(uplift_of(seed)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        halves.into_iter().flat_map(|half| half.join().unwrap()).collect()
    });
    assert_eq!(runs.len(), seeds.len());
    let covered = runs
        .iter()
        .filter(|(low, high, _)| *low <= planted && planted <= *high)
        .count();
    let estimates: Vec<f64> = runs.iter().map(|(_, _, estimate)| *estimate).collect();
    let mean = estimates.iter().sum::<f64>() / estimates.len() as f64;
    eprintln!(
        "planted uplift {planted:.2}: covered in {covered} of {} runs, mean estimate {mean:.3}",
        seeds.len()
    );
    assert!(
        covered >= 16,
        "the interval held the planted {planted} in {covered} of {} runs",
        seeds.len()
    );
    // Unbiased: the mean of 20 estimates (each ±~0.07) within 0.045 of the truth.
    assert!(
        (mean - planted).abs() < 0.045,
        "mean estimate {mean}, planted {planted}"
    );
}

/// Issue 36: the demo's expansion opportunities, recounted from the
/// `ExpansionReady` events, are the report's and the summary's; each was
/// announced once, seats are priced at what the account pays per seat, and
/// no expansion milestone was ever missed.
fn expansion_is_what_the_bus_said(
    dir: &std::path::Path,
    summary: &milepost_cli::demo::Summary,
    report: &Value,
    events: &[Value],
) {
    let ready: Vec<&Value> = events.iter().filter(|e| e["type"] == "ExpansionReady").collect();
    assert!(ready.len() >= 5, "too few opportunities to judge: {}", ready.len());
    let ids = |e: &Value| (e["account_id"].to_string(), e["milestone_id"].to_string());
    let once: std::collections::HashSet<(String, String)> = ready.iter().map(|e| ids(e)).collect();
    assert_eq!(once.len(), ready.len(), "one ExpansionReady per account and milestone");
    let pipeline: u64 = ready.iter().filter_map(|e| e["pipeline_arr"].as_u64()).sum();
    let unpriced = ready.iter().filter(|e| e["pipeline_arr"].is_null()).count();
    let reported = &report["expansion"];
    assert_eq!(
        (
            reported["opportunities"].as_u64().unwrap(),
            reported["pipeline_arr"].as_u64().unwrap(),
            reported["unpriced"].as_u64().unwrap()
        ),
        (ready.len() as u64, pipeline, unpriced as u64),
        "report.json"
    );
    assert_eq!(
        (
            summary.expansion_opportunities,
            summary.expansion_pipeline_arr,
            summary.expansion_unpriced
        ),
        (ready.len(), pipeline, unpriced),
        "summary.json"
    );
    let store: Value = serde_json::from_slice(&std::fs::read(dir.join("store.json")).unwrap()).unwrap();
    let accounts: BTreeMap<String, &Value> = store["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["id"].to_string(), a))
        .collect();
    let mut seats = 0;
    for e in ready.iter().filter(|e| e["unit"] == "seats") {
        let a = accounts[&e["account_id"].to_string()];
        let per_seat = (a["arr"].as_f64().unwrap() / a["licensed_seats"].as_f64().unwrap()).round() as u64;
        assert_eq!(e["unit_price"].as_u64(), Some(per_seat), "{e}");
        // The whole rounded once: ARR × seats added / seats held.
        let (arr, held) = (a["arr"].as_f64().unwrap(), a["licensed_seats"].as_f64().unwrap());
        let pipeline = (arr * e["adds"].as_f64().unwrap() / held).round() as u64;
        assert_eq!(e["pipeline_arr"].as_u64(), Some(pipeline), "{e}");
        seats += 1;
    }
    assert!(
        seats > 0 && seats < ready.len(),
        "both seats and another unit: {seats} of {}",
        ready.len()
    );
    let expansion_milestones: std::collections::HashSet<String> =
        ready.iter().map(|e| e["milestone_id"].to_string()).collect();
    let missed: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "MilestoneMissed" && expansion_milestones.contains(&e["milestone_id"].to_string()))
        .collect();
    assert!(missed.is_empty(), "an expansion milestone was missed: {missed:?}");
}
