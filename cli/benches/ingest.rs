//! `make bench-ingest`: what an event costs on DynamoDB (moto), counted by
//! the adapter, on the demo generator's event stream: requests and
//! transactions per event by kind, write and read units per event (from the
//! sizes of the items written and read), a 100-event Segment batch for one
//! account, and the dollars per million events delivered one per request and
//! in Segment batches of 50, with the README's prices; and the tracking
//! API's handler on a full SDK batch (100 calls, ~450 KB, gzipped, on the
//! in-memory store, so its own work shows). The cold-start
//! figures come from the `cold_start` bench (run first). Prints each figure
//! beside its target and writes them all to target/bench/ingest.json.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Duration;
use milepost_app::ingest::wire::parse_body;
use milepost_app::ports::{MapStore, MilestoneStore};
use milepost_app::{Config, Services};
use milepost_aws::DynamoStore;
use milepost_cli::demo::generator::{plan_accounts, segment_batch, sim_start, AccountPlan};
use milepost_domain::{ProductEvent, TrackedMilestone};
use milepost_embedded::{LocalWorkflowRunner, MemoryMailer, RecordingPublisher, VirtualClock};
use serde_json::{json, Value};

const BENCH_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/bench");
/// The demo's accounts and days the stream covers (moto copies its tables on
/// every transaction: more only makes the emulator slow, not the figures different).
const ACCOUNTS: usize = 5;
const DAYS: i64 = 45;
/// The days of the busiest account's own stream, delivered in batches of 100.
const ONE_ACCOUNT_DAYS: i64 = 180;

/// The README's on-demand prices (us-east-1), in dollars.
mod price {
    pub const HTTP_API_PER_REQUEST: f64 = 1.00 / 1e6;
    pub const LAMBDA_PER_REQUEST: f64 = 0.20 / 1e6;
    pub const LAMBDA_PER_GB_SECOND: f64 = 0.000_013_333_4;
    pub const WRITE_UNIT: f64 = 0.625 / 1e6;
    pub const READ_UNIT: f64 = 0.125 / 1e6;
    pub const LOG_PER_GB: f64 = 0.50;
}
/// What a request costs besides DynamoDB, as the README assumes it: 256 MB
/// for 20 ms, plus 1 ms per further event; ~300 bytes of logs.
const LAMBDA_GB: f64 = 0.25;
const LAMBDA_BASE_SECONDS: f64 = 0.020;
const LAMBDA_SECONDS_PER_EVENT: f64 = 0.001;
const LOG_BYTES_PER_REQUEST: f64 = 300.0;

struct Bench {
    _moto: milepost_local::MotoServer,
    store: Arc<DynamoStore>,
    bus: Arc<RecordingPublisher>,
    services: Services,
    criteria: BTreeMap<String, Vec<TrackedMilestone>>,
}

/// What one delivery cost: DynamoDB requests and bus requests, transactions, write and read units.
#[derive(Clone, Copy, Default)]
struct Cost {
    requests: u64,
    transactions: u64,
    write_units: f64,
    read_units: f64,
}

impl Bench {
    async fn new(table: &str, plans: &[AccountPlan]) -> Bench {
        let moto = milepost_local::MotoServer::start();
        let store = Arc::new(DynamoStore::metered(
            aws_sdk_dynamodb::Client::new(&moto.sdk_config().await),
            table,
        ));
        store.create_table().await.unwrap();
        let bus = Arc::new(RecordingPublisher::default());
        let clock = Arc::new(VirtualClock::new(sim_start() + Duration::days(ONE_ACCOUNT_DAYS)));
        let services = Services {
            store: store.clone(),
            mailer: Arc::new(MemoryMailer::default()),
            events: bus.clone(),
            workflows: Arc::new(LocalWorkflowRunner::new()),
            clock,
            config: Config::default(),
            links: Some(milepost_embedded::fixtures::links()),
        };
        for m in milepost_cli::example_maps::example_maps() {
            store.put_map(&m).await.unwrap();
        }
        let mut criteria = BTreeMap::new();
        for p in plans {
            services.ingestion().upsert_account(&p.account).await.unwrap();
            let tracked = store.milestones_of(&p.account.id).await.unwrap();
            criteria.insert(p.account.id.to_string(), tracked);
        }
        Bench {
            _moto: moto,
            store,
            bus,
            services,
            criteria,
        }
    }

    /// Whether some criterion of the account's milestones reads the event.
    fn read(&self, e: &ProductEvent) -> bool {
        self.criteria[e.account_id.as_str()]
            .iter()
            .any(|m| m.criterion().observe(e).is_some())
    }

    fn snapshot(&self) -> Cost {
        Cost {
            requests: self.store.meter().requests() + self.bus.events().len() as u64,
            transactions: self.store.meter().transactions(),
            write_units: self.store.meter().write_units(),
            read_units: self.store.meter().read_units(),
        }
    }

    fn since(&self, before: Cost) -> Cost {
        let now = self.snapshot();
        Cost {
            requests: now.requests - before.requests,
            transactions: now.transactions - before.transactions,
            write_units: now.write_units - before.write_units,
            read_units: now.read_units - before.read_units,
        }
    }

    /// Delivers one request's body; returns what it cost and whether it published.
    async fn deliver(&self, body: &[u8]) -> (Cost, bool) {
        let (before, published) = (self.snapshot(), self.bus.events().len());
        let report = self
            .services
            .ingestion()
            .ingest(parse_body(body).unwrap())
            .await
            .unwrap();
        assert_eq!(report.rejected_count, 0, "{report:?}");
        (self.since(before), self.bus.events().len() > published)
    }
}

fn stream(plans: &[AccountPlan]) -> Vec<ProductEvent> {
    let mut events = Vec::new();
    for day in 0..DAYS {
        for p in plans {
            p.events_on(day, 1, &mut events);
        }
    }
    events.sort_by_key(|e| e.timestamp);
    events
}

fn mean(costs: &[Cost], f: impl Fn(&Cost) -> f64) -> f64 {
    costs.iter().map(f).sum::<f64>() / costs.len().max(1) as f64
}

/// Dollars per million events for requests carrying `events_per_request`
/// events whose DynamoDB units per event are given.
fn cost_per_million(events_per_request: f64, write_units: f64, read_units: f64) -> f64 {
    let per_request = price::HTTP_API_PER_REQUEST
        + price::LAMBDA_PER_REQUEST
        + LAMBDA_GB
            * (LAMBDA_BASE_SECONDS + LAMBDA_SECONDS_PER_EVENT * (events_per_request - 1.0))
            * price::LAMBDA_PER_GB_SECOND
        + LOG_BYTES_PER_REQUEST / 1e9 * price::LOG_PER_GB;
    1e6 * (per_request / events_per_request + write_units * price::WRITE_UNIT + read_units * price::READ_UNIT)
}

struct Figures(Vec<(String, f64, String)>);

impl Figures {
    fn add(&mut self, name: &str, value: f64, target: &str) {
        let shown = if target.is_empty() {
            String::new()
        } else {
            format!("[target {target}]")
        };
        println!("  {name:<46} {value:>10.3}  {shown}");
        self.0.push((name.to_string(), value, target.to_string()));
    }
}

async fn run() {
    let maps = milepost_cli::example_maps::example_maps();
    let plans = plan_accounts(ACCOUNTS, 1, &maps);
    let events = stream(&plans);
    let mut figures = Figures(Vec::new());

    // One event per request.
    let bench = Bench::new("milepost-bench-single", &plans).await;
    let (mut unnamed, mut named, mut reached, mut all) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for e in &events {
        let read = bench.read(e);
        let (cost, published) = bench.deliver(&serde_json::to_vec(e).unwrap()).await;
        all.push(cost);
        match (read, published) {
            (false, _) => unnamed.push(cost),
            (true, false) => named.push(cost),
            (true, true) => reached.push(cost),
        }
    }
    let mut duplicate = Vec::new();
    for e in events.iter().filter(|e| bench.read(e)).step_by(10) {
        duplicate.push(bench.deliver(&serde_json::to_vec(e).unwrap()).await.0);
    }
    let unread_share = unnamed.len() as f64 / events.len() as f64;
    println!(
        "DynamoDB on moto, counted by the adapter: the demo generator's stream, {} events of {ACCOUNTS} accounts over {DAYS} days ({:.0}% read by no criterion), one event per request:",
        events.len(),
        100.0 * unread_share
    );
    figures.add("events", events.len() as f64, "");
    figures.add("unread_share", unread_share, "");
    figures.add(
        "unnamed_event.transact_writes_per_event",
        mean(&unnamed, |c| c.transactions as f64),
        "0",
    );
    for (kind, costs) in [
        ("unnamed_event", &unnamed),
        ("named_event", &named),
        ("reached_milestone", &reached),
        ("duplicate", &duplicate),
    ] {
        figures.add(
            &format!("{kind}.requests_per_event"),
            mean(costs, |c| c.requests as f64),
            "",
        );
    }
    let wru = mean(&all, |c| c.write_units);
    let rru = mean(&all, |c| c.read_units);
    figures.add("wru_per_event", wru, "");
    figures.add("rru_per_event", rru, "");
    figures.add(
        "cost_per_million_events_usd.single",
        cost_per_million(1.0, wru, rru),
        "<= 3.00",
    );

    // Segment batches of 50, in time order across the accounts, as a source sends them.
    let bench = Bench::new("milepost-bench-batched", &plans).await;
    let mut batches = Vec::new();
    for chunk in events.chunks(50) {
        batches.push(bench.deliver(&segment_batch(chunk)).await.0);
    }
    let n = events.len() as f64;
    let wru = batches.iter().map(|c| c.write_units).sum::<f64>() / n;
    let rru = batches.iter().map(|c| c.read_units).sum::<f64>() / n;
    println!(
        "the same stream in Segment batches of 50 (about {:.0} events of an account per batch):",
        50.0 / ACCOUNTS as f64
    );
    figures.add("batched.wru_per_event", wru, "");
    figures.add("batched.rru_per_event", rru, "");
    figures.add(
        "cost_per_million_events_usd.batched",
        cost_per_million(50.0, wru, rru),
        "<= 1.00",
    );

    // One account's events in Segment batches of 100.
    let busiest = plans
        .iter()
        .max_by_key(|p| events.iter().filter(|e| e.account_id == p.account.id).count())
        .unwrap();
    // Half a year of it, delivered from the start.
    let mut own = Vec::new();
    for day in 0..ONE_ACCOUNT_DAYS {
        busiest.events_on(day, 1, &mut own);
    }
    own.sort_by_key(|e| e.timestamp);
    let bench = Bench::new("milepost-bench-one-account", std::slice::from_ref(busiest)).await;
    let mut reaching = Vec::new();
    for chunk in own.chunks(100) {
        let (cost, published) = bench.deliver(&segment_batch(chunk)).await;
        if published {
            reaching.push(cost);
        }
    }
    // Then a later batch of the same account, once its early milestones are
    // settled: the stream's last 100 events again, as new events a second later.
    let later: Vec<ProductEvent> = own[own.len().saturating_sub(100)..]
        .iter()
        .map(|e| ProductEvent {
            id: format!("{}-later", e.id),
            timestamp: e.timestamp + Duration::seconds(1),
            ..e.clone()
        })
        .collect();
    let (steady, published) = bench.deliver(&segment_batch(&later)).await;
    println!(
        "one account's events ({}) in Segment batches of 100, {} of them reaching a milestone; then {} more{}:",
        own.len(),
        reaching.len(),
        later.len(),
        if published {
            ", which reached one too"
        } else {
            ", reaching none"
        }
    );
    figures.add("batch_100_one_account.requests", steady.requests as f64, "<= 3");
    figures.add(
        "batch_100_one_account.requests_when_reaching",
        reaching.iter().map(|c| c.requests).max().map_or(f64::NAN, |r| r as f64),
        "",
    );

    tracking_batch(&mut figures).await;

    // The cold start, as the cold_start bench measured it.
    let cold = std::fs::read_to_string(format!("{BENCH_DIR}/cold-start.json"))
        .ok()
        .and_then(|s| serde_json::from_str::<Value>(&s).ok());
    let find = |name: &str| {
        cold.as_ref()
            .and_then(|c| c.as_array())
            .and_then(|a| a.iter().find(|f| f["name"] == name))
            .and_then(|f| f["value"].as_f64())
    };
    println!("cold start (from target/bench/cold-start.json):");
    match (
        find("ingest init / hello-world init"),
        find("ingest init / hello-world init, one CA bundle"),
        find("ingest binary bytes"),
    ) {
        (Some(ratio), Some(bundle), Some(bytes)) => {
            figures.add("cold_start.ratio", ratio, "");
            figures.add("cold_start.ratio_bundle", bundle, "<= 2.0");
            figures.add("binary_bytes", bytes, "");
            if let Some(system) = find("ingest init / hello-world init, system roots, one CA bundle") {
                figures.add("cold_start.ratio_bundle_system_roots", system, "");
            }
        }
        _ => println!("  missing: run the cold_start bench first (make bench-ingest does)"),
    }

    let json: serde_json::Map<String, Value> = figures
        .0
        .iter()
        .map(|(name, value, target)| (name.clone(), json!({ "value": value, "target": target })))
        .collect();
    let _ = std::fs::create_dir_all(BENCH_DIR);
    std::fs::write(
        format!("{BENCH_DIR}/ingest.json"),
        serde_json::to_string_pretty(&json).unwrap(),
    )
    .unwrap();
    println!("written to target/bench/ingest.json");
}

/// What the tracking API's handler spends on the largest batch Segment's
/// Python SDK sends (100 calls, 475,000 bytes), gzipped as RudderStack's SDK
/// sends it: the write key, inflating, parsing and applying, on the
/// in-memory store (DynamoDB's share is the figures above). Each round is a
/// new batch (new messageIds), so none is skipped as a duplicate.
async fn tracking_batch(figures: &mut Figures) {
    use base64::Engine;
    use std::io::Write;

    const KEY: &str = "wk_bench";
    const ROUNDS: usize = 30;
    let store: Arc<dyn milepost_app::ports::Store> = Arc::new(milepost_embedded::InMemoryStore::sized_like_dynamodb());
    for m in milepost_cli::example_maps::example_maps() {
        store.put_map(&m).await.unwrap();
    }
    let services = milepost_embedded::fixtures::quiet_services(store);
    let config = milepost_ingest::IngestConfig::new(milepost_ingest::WebhookSecrets::none())
        .with_write_keys(milepost_ingest::WriteKeys::new(&[KEY]));
    let now = chrono::Utc::now();
    let batch = |round: usize| {
        let mut calls = vec![json!({
            "type": "group", "messageId": format!("g-{round}"), "groupId": "bench", "timestamp": now.to_rfc3339(),
            "traits": {"name": "Bench", "plan": "smb", "contract_start": (now - Duration::days(20)).date_naive().to_string(),
                       "admin_email": "pat@bench.example", "csm_email": "maya@vendor.example"}})];
        for i in 0..99 {
            let event = ["dashboard.created", "report.shared", "user.active"][i % 3];
            calls.push(json!({
                "type": "track", "messageId": format!("t-{round}-{i}"), "event": event,
                "userId": format!("u-{}", i % 7), "timestamp": (now - Duration::minutes(i as i64)).to_rfc3339(),
                "context": {"groupId": "bench", "library": {"name": "analytics-python", "version": "2.4.0"}},
                "properties": {"note": noise(round * 100 + i, 4_300)}
            }));
        }
        serde_json::to_vec(&json!({"batch": calls, "sentAt": now.to_rfc3339()})).unwrap()
    };
    let plain_bytes = batch(0).len();
    let mut handler_ms = Vec::new();
    let mut gzipped_bytes = 0;
    for round in 0..ROUNDS {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&batch(round)).unwrap();
        let body = gz.finish().unwrap();
        gzipped_bytes = body.len();
        let mut request = lambda_http::Request::new(lambda_http::Body::from(body));
        *request.method_mut() = lambda_http::http::Method::POST;
        *request.uri_mut() = "https://bench.example/v1/batch".parse().unwrap();
        let headers = request.headers_mut();
        headers.insert("content-type", "application/json".parse().unwrap());
        headers.insert("content-encoding", "gzip".parse().unwrap());
        let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{KEY}:"));
        headers.insert("authorization", format!("Basic {credentials}").parse().unwrap());
        let started = std::time::Instant::now();
        let response = milepost_ingest::handle(&services.ingestion(), &config, request).await;
        handler_ms.push(started.elapsed().as_secs_f64() * 1e3);
        assert_eq!(response.status(), 200, "{:?}", String::from_utf8_lossy(response.body()));
        let answer: Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(
            (answer["accepted"].as_u64(), answer["rejected_count"].as_u64()),
            (Some(100), Some(0)),
            "{answer}"
        );
    }
    handler_ms.sort_by(f64::total_cmp);
    println!(
        "tracking API: {ROUNDS} SDK batches of 100 calls, {plain_bytes} bytes ({gzipped_bytes} gzipped), on the in-memory store:"
    );
    figures.add("tracking_batch_100.bytes", plain_bytes as f64, "<= 475000");
    figures.add("tracking_batch_100.handler_ms_median", handler_ms[ROUNDS / 2], "<= 25");
    figures.add("tracking_batch_100.handler_ms_max", handler_ms[ROUNDS - 1], "");
}

/// `len` hex digits that differ per `seed`: text that gzips about as well as
/// real properties (ids, names), not the thousandfold of a repeated letter.
fn noise(seed: usize, len: usize) -> String {
    let mut state = seed as u64 ^ 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            char::from_digit(((state >> 60) & 0xF) as u32, 16).unwrap()
        })
        .collect()
}

fn main() {
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with("--") && !"ingest".contains(a.as_str()))
    {
        return; // `cargo bench -- <filter>` for another section
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run());
}
