//! `make bench`: throughput of parsing and applying events on the embedded
//! store (one core), DynamoDB requests per sweep (on moto, counted by the
//! adapter), and the demo's wall time at 300 and 10,000 accounts. What an
//! event costs on DynamoDB is `make bench-ingest` (benches/ingest.rs).
//! Prints figures; targets are stated beside them, not asserted. The same
//! figures go to target/bench/pipeline.json, for comparing runs.

use std::sync::Arc;
use std::time::Instant;

use chrono::Duration;
use milepost_app::ingest::wire::parse_body;
use milepost_app::ports::{AccountStore, MapStore, MilestoneStore};
use milepost_app::Config;
use milepost_app::Services;
use milepost_cli::demo::generator::{plan_accounts, sim_start};
use milepost_cli::demo::{run, DemoOptions};
use milepost_embedded::{InMemoryStore, LocalWorkflowRunner, MemoryMailer, RecordingPublisher, VirtualClock};

/// The figures printed so far, written to target/bench/pipeline.json at the end.
static FIGURES: std::sync::Mutex<Vec<serde_json::Value>> = std::sync::Mutex::new(Vec::new());

/// Records one figure with its unit and its target ("" when it has none).
fn figure(name: &str, value: f64, unit: &str, target: &str) {
    let entry = serde_json::json!({ "name": name, "value": value, "unit": unit, "target": target });
    FIGURES.lock().unwrap().push(entry);
}

/// The workspace's target/bench (cargo runs benches in the package's folder).
const BENCH_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/bench");

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

async fn ingest_throughput() {
    const ACCOUNTS: usize = 1_000;
    const DAYS: i64 = 90;
    let clock = Arc::new(VirtualClock::new(sim_start()));
    let maps = milepost_cli::example_maps::example_maps();
    let plans = plan_accounts(ACCOUNTS, 1, &maps);
    let services = fresh_services(&plans, &clock).await;
    let mut events = Vec::new();
    for day in 0..DAYS {
        let mut today = Vec::new();
        for p in &plans {
            p.events_on(day, 1, &mut today);
        }
        today.sort_by_key(|e| e.timestamp);
        events.extend(today);
    }
    let bodies: Vec<Vec<u8>> = events.chunks(100).map(|c| serde_json::to_vec(c).unwrap()).collect();
    clock.set(sim_start() + Duration::days(DAYS));
    // The first pass applies everything; later passes over a fresh store copy
    // would need the setup again, so each run gets its own store.
    let mut rates = Vec::new();
    for run in 0..RUNS {
        let services = if run == 0 {
            services.clone()
        } else {
            fresh_services(&plans, &clock).await
        };
        let started = Instant::now();
        let mut accepted = 0;
        for body in &bodies {
            accepted += services
                .ingestion()
                .ingest(parse_body(body).unwrap())
                .await
                .unwrap()
                .accepted;
        }
        let secs = started.elapsed().as_secs_f64();
        assert_eq!(accepted, events.len(), "every event applied once");
        rates.push(events.len() as f64 / secs);
    }
    rates.sort_by(f64::total_cmp);
    let started = Instant::now();
    let parsed: usize = bodies.iter().map(|b| parse_body(b).unwrap().len()).sum();
    let parse_secs = started.elapsed().as_secs_f64();
    println!(
        "ingest (parse + apply, embedded store, 1 core): {} events over {ACCOUNTS} accounts, {RUNS} runs: median {:.0} events/s, best {:.0} events/s  [target >= 200,000]",
        events.len(),
        rates[RUNS / 2],
        rates[RUNS - 1]
    );
    println!("  of which parsing alone: {:.0} events/s", parsed as f64 / parse_secs);
    figure("ingest median", rates[RUNS / 2], "events/s", ">= 200000");
    figure("ingest best", rates[RUNS - 1], "events/s", "");
    figure("parse alone", parsed as f64 / parse_secs, "events/s", "");
    item_sizes(&services, &plans).await;
}

/// The largest stored item of each kind after 90 days of the demo's traffic
/// for 1,000 accounts, beside the budget (DynamoDB's 400 KB item limit; the
/// busy-account figures come from `make volume`). Also written to
/// target/bench/item-sizes.json.
async fn item_sizes(services: &Services, plans: &[milepost_cli::demo::generator::AccountPlan]) {
    use milepost_domain::limits::{stored_size, MAX_ITEM_BYTES};
    let mut largest: std::collections::BTreeMap<String, usize> = Default::default();
    let mut keep = |kind: String, size: usize| {
        let entry = largest.entry(kind).or_default();
        *entry = (*entry).max(size);
    };
    for p in plans {
        let id = &p.account.id;
        for m in services.store.milestones_of(id).await.unwrap() {
            keep(
                format!(
                    "milestone ({})",
                    serde_json::to_value(m.criterion()).unwrap()["kind"].as_str().unwrap()
                ),
                stored_size(&m),
            );
        }
        let activity = services.store.activity(id).await.unwrap();
        keep("activity".into(), stored_size(&activity));
        let account = services.store.get_account(id).await.unwrap().unwrap();
        keep("account profile".into(), stored_size(&*account));
    }
    println!(
        "largest stored item per kind (demo traffic, {} accounts, 90 days):",
        plans.len()
    );
    for (kind, size) in &largest {
        println!("  {kind:<32} {size:>7} bytes  [budget: under {MAX_ITEM_BYTES}, DynamoDB's item limit]");
    }
    let _ = std::fs::create_dir_all(BENCH_DIR);
    let _ = std::fs::write(
        format!("{BENCH_DIR}/item-sizes.json"),
        serde_json::to_string_pretty(&largest).unwrap(),
    );
}

const RUNS: usize = 9;

async fn fresh_services(plans: &[milepost_cli::demo::generator::AccountPlan], clock: &Arc<VirtualClock>) -> Services {
    let store = Arc::new(InMemoryStore::new());
    let services = Services {
        store: store.clone(),
        mailer: Arc::new(MemoryMailer::default()),
        events: Arc::new(RecordingPublisher::default()),
        workflows: Arc::new(LocalWorkflowRunner::new()),
        clock: clock.clone(),
        config: Config {
            accounts_at_once: 1,
            ..Config::default()
        }, // as the demo: in process, tasks only add cost
        links: Some(milepost_embedded::fixtures::links()),
    };
    for m in milepost_cli::example_maps::example_maps() {
        store.put_map(&m).await.unwrap();
    }
    for p in plans {
        services.ingestion().upsert_account(&p.account).await.unwrap();
    }
    services
}

/// Items read and requests made by one sweep as the table grows (1% of the
/// pending milestones due), beside a full-table Scan of the same table.
async fn sweep_reads() {
    println!("sweep reads as the table grows (moto, counted by the adapter; 1% of pending milestones due):");
    for pending in [2_000usize, 20_000] {
        let moto = milepost_local::MotoServer::start();
        let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
        let store = Arc::new(milepost_aws::DynamoStore::metered(
            client.clone(),
            "milepost-sweep-bench",
        ));
        store.create_table().await.unwrap();
        let now = sim_start() + Duration::days(100);
        let maps = milepost_cli::example_maps::example_maps();
        let map = &maps[0];
        let mut milestones = Vec::with_capacity(pending);
        let accounts = pending / 100;
        for a in 0..accounts {
            let acct = milepost_embedded::fixtures::account(&format!("acct-{a:05}"), sim_start().date_naive());
            store.put_account(&acct).await.unwrap();
            for n in 0..100 {
                let mut def = map.milestones[n % map.milestones.len()].clone();
                def.id = format!("m{n:03}");
                let mut m = milepost_domain::TrackedMilestone::new(&acct, map, &def);
                // One milestone per account is due: 1% of the table.
                milepost_domain::seed::milestone(&mut m).due_at(if n == 0 {
                    now - Duration::hours(1)
                } else {
                    now + Duration::days(1 + n as i64)
                });
                milestones.push(m);
            }
        }
        store.seed_milestones(&milestones).await.unwrap();
        let services = Services {
            store: store.clone(),
            mailer: Arc::new(MemoryMailer::default()),
            events: Arc::new(RecordingPublisher::default()),
            workflows: Arc::new(LocalWorkflowRunner::new()),
            clock: Arc::new(VirtualClock::new(now)),
            config: Config::default(),
            links: Some(milepost_embedded::fixtures::links()),
        };
        // What the sweep reads: the due index, page by page (as the sweep pages it).
        let requests = store.meter().requests();
        let (mut due, mut cursor) = (0usize, None);
        loop {
            let page = store.due_milestones(now, cursor.take(), 100).await.unwrap();
            due += page.items.len();
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let read_requests = store.meter().requests() - requests;
        let requests = store.meter().requests();
        let report = services
            .sweeper()
            .sweep(&milepost_app::sweep::SweepOptions::default())
            .await
            .unwrap();
        let sweep_requests = store.meter().requests() - requests;
        let (mut scanned, mut scans, mut start) = (0usize, 0usize, None);
        loop {
            let out = client
                .scan()
                .table_name("milepost-sweep-bench")
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            scans += 1;
            scanned += out.items.map_or(0, |i| i.len());
            match out.last_evaluated_key.filter(|k| !k.is_empty()) {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        println!(
            "  {pending:>6} pending, {due:>3} due: due index {due} items in {read_requests} requests; a full Scan {scanned} items in {scans} requests; the sweep marked {} missed in {sweep_requests} requests",
            report.missed
        );
        figure(
            &format!("sweep due-index requests, {pending} pending, {due} due"),
            read_requests as f64,
            "requests",
            "grows with the due count",
        );
    }
    println!("  [target: sweep reads grow with the due count, not the table size]");
}

async fn demo(accounts: usize, write_emails: bool) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let opts = DemoOptions {
        accounts,
        write_emails,
        progress: false,
        out: dir.path().to_path_buf(),
        ..DemoOptions::default()
    };
    let started = Instant::now();
    let summary = run(&opts).await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "demo --accounts {accounts} --days {} {}: {secs:.2} s ({:.2} ms per account; {} events, {} emails), peak RSS so far {:.0} MiB",
        opts.days,
        if write_emails { "(outbox written)" } else { "(--no-outbox)" },
        1000.0 * secs / accounts as f64,
        summary.events_sent,
        summary.emails_sent,
        peak_rss_mib()
    );
    secs
}

fn main() {
    // `cargo bench -- ingest` runs only the sections whose name contains "ingest".
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let wanted = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        if wanted("ingest") {
            ingest_throughput().await;
        }
        if wanted("sweep") {
            sweep_reads().await;
        }
        if wanted("demo") {
            let default = demo(300, true).await;
            println!("  default demo wall time: {default:.2} s  [target < 10 s on 2 cores]");
            figure("default demo wall time", default, "s", "< 10 on 2 cores");
        }
        if wanted("scale") {
            let small = demo(300, false).await;
            let large = demo(10_000, false).await;
            let ratio = (large / 10_000.0) / (small / 300.0);
            println!("  cost per account at 10,000 vs 300 accounts: {ratio:.2}x  [linear scaling = 1.0x]");
            figure("cost per account, 10,000 vs 300 accounts", ratio, "x", "1.0 is linear");
            figure("peak RSS", peak_rss_mib(), "MiB", "");
        }
    });
    let figures = FIGURES.lock().unwrap();
    let _ = std::fs::create_dir_all(BENCH_DIR);
    let _ = std::fs::write(
        format!("{BENCH_DIR}/pipeline.json"),
        serde_json::to_string_pretty(&*figures).unwrap(),
    );
}
