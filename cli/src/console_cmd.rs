//! `milepost console`: the console on the demo's data (`store.json`, which
//! `milepost demo` writes), served on this machine only, with the
//! development sign-in. The pages and every action are the console's
//! (`milepost_app::console`); this is only the HTTP adapter and the wiring.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use milepost_app::console::{Console, Person, Request, Response, Role, SessionKey, SignIn};
use milepost_app::ports::Clock;
use milepost_app::Services;
use milepost_domain::Timestamp;
use milepost_embedded::store::StoreSnapshot;
use milepost_embedded::{InMemoryStore, LocalWorkflowRunner, MemoryMailer, RecordingPublisher};

/// The port `make console` serves on unless told otherwise.
pub const DEFAULT_PORT: u16 = 8700;
/// The largest form the console takes (a note is at most 500 bytes).
const MAX_BODY: usize = 16 * 1024;

/// The demo's moment, moving on with the wall clock: what people do in the
/// console happens after the demo's last hour, in order.
struct DemoClock {
    base: Timestamp,
    started: Instant,
}

impl Clock for DemoClock {
    fn now(&self) -> Timestamp {
        self.base + chrono::Duration::from_std(self.started.elapsed()).unwrap_or_default()
    }
}

/// The people the development sign-in offers: the demo's CS leaders and
/// CSMs, and a viewer.
pub fn people_of(snapshot: &StoreSnapshot) -> Vec<Person> {
    let mut people: BTreeMap<String, Person> = BTreeMap::new();
    for account in &snapshot.accounts {
        let leader = account.cs_leader_email.to_string();
        people.entry(leader.clone()).or_insert_with(|| Person {
            name: format!("CS lead ({leader})"),
            email: leader.clone(),
            role: Role::Lead,
        });
        people.entry(account.csm.email.to_string()).or_insert_with(|| Person {
            name: account.csm.name.clone(),
            email: account.csm.email.to_string(),
            role: Role::Csm,
        });
    }
    people.insert(
        "viewer@localhost".into(),
        Person {
            name: "A viewer".into(),
            email: "viewer@localhost".into(),
            role: Role::Viewer,
        },
    );
    people.into_values().collect()
}

/// Every port over `snapshot`, in this process: the store it holds, a
/// clock moving on from its moment, email and events kept in memory.
pub fn demo_services(snapshot: StoreSnapshot) -> Services {
    let clock = Arc::new(DemoClock {
        base: snapshot.now,
        started: Instant::now(),
    });
    Services {
        store: Arc::new(InMemoryStore::from_snapshot(snapshot)),
        mailer: Arc::new(MemoryMailer::default()),
        events: Arc::new(RecordingPublisher::default()),
        workflows: Arc::new(LocalWorkflowRunner::new()),
        clock,
        config: milepost_app::Config::default(),
        links: None,
    }
}

/// The console over `snapshot` with the development sign-in, as `make console` serves it.
pub fn console_of(snapshot: StoreSnapshot) -> Console {
    let people = people_of(&snapshot);
    demo_services(snapshot).console(SessionKey::random(), SignIn::Development { people })
}

/// Reads `dir/store.json`, with `dir/discovery.json` if there is one.
pub fn read_snapshot(dir: &Path) -> Result<StoreSnapshot> {
    let path = dir.join("store.json");
    let bytes = std::fs::read(&path).with_context(|| {
        format!(
            "reading {}: run `make demo` (or `milepost demo --out {}`) first",
            path.display(),
            dir.display()
        )
    })?;
    let mut snapshot: StoreSnapshot =
        serde_json::from_slice(&bytes).with_context(|| format!("reading {}", path.display()))?;
    // A discovery result placed beside it is shown beside the maps.
    let discovery = dir.join(DISCOVERY_FILE);
    if discovery.exists() {
        let text = std::fs::read_to_string(&discovery).with_context(|| format!("reading {}", discovery.display()))?;
        let kept = milepost_domain::discovery::KeptDiscovery::from_json(&text, DISCOVERY_FILE, snapshot.now)
            .map_err(|why| anyhow::anyhow!("{}: {why}", discovery.display()))?;
        snapshot.discovery = Some(kept);
    }
    Ok(snapshot)
}

/// A `milepost discover --format json` result in the demo's folder, for the maps page.
pub const DISCOVERY_FILE: &str = "discovery.json";

/// Serves the console on `dir`'s demo data on 127.0.0.1:`port` until the process is stopped.
pub async fn serve_demo(dir: &Path, port: u16) -> Result<()> {
    let mut snapshot = read_snapshot(dir)?;
    if snapshot.discovery.is_some() {
        // Its discovered weights measured, as keeping it in a stack would.
        let now = snapshot.now;
        let store = InMemoryStore::from_snapshot(snapshot);
        milepost_app::worth::reweigh(&store, &Default::default()).await?;
        snapshot = store.snapshot(now);
    }
    let console = console_of(snapshot);
    serve(console, port, &format!("{}'s data", dir.display())).await
}

/// Serves `console` on 127.0.0.1:`port` until the process is stopped.
pub async fn serve(console: Console, port: u16, what: &str) -> Result<()> {
    let development = matches!(console.sign_in, SignIn::Development { .. });
    let console = Arc::new(console);
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("listening on {address} (another console running? pick another port with --port)"))?;
    let port = listener.local_addr()?.port();
    println!("The console on {what}: http://127.0.0.1:{port}/");
    if development {
        println!("Development sign-in, on this machine only. Ctrl-C to stop.");
    } else {
        println!("Sign-in through the identity provider, on this machine only. Ctrl-C to stop.");
    }
    loop {
        let (stream, _) = listener.accept().await?;
        let console = console.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let console = console.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(&console, request, port).await) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "a console connection ended");
            }
        });
    }
}

/// One HTTP request through the console.
async fn answer(
    console: &Console,
    request: hyper::Request<hyper::body::Incoming>,
    port: u16,
) -> hyper::Response<Full<Bytes>> {
    let header = |name: hyper::header::HeaderName| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let host = header(hyper::header::HOST);
    // Only our own names: a page of another site that resolves its name to
    // this machine (DNS rebinding) gets nothing.
    let ours = [format!("127.0.0.1:{port}"), format!("localhost:{port}")];
    if !host.as_deref().is_some_and(|h| ours.iter().any(|o| o == h)) {
        return to_hyper(Response {
            status: 421,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: b"This console answers only at 127.0.0.1 or localhost.\n".to_vec(),
        });
    }
    let ours = Request {
        method: request.method().as_str().to_string(),
        path: request.uri().path().to_string(),
        query: request.uri().query().unwrap_or_default().to_string(),
        cookie: header(hyper::header::COOKIE),
        origin: header(hyper::header::ORIGIN),
        fetch_site: request
            .headers()
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        host,
        body: Vec::new(),
    };
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(body) => body.to_bytes().to_vec(),
        Err(_) => {
            return to_hyper(Response {
                status: 413,
                headers: vec![("content-type".into(), "text/plain".into())],
                body: b"That form is too large.\n".to_vec(),
            })
        }
    };
    to_hyper(console.handle(&Request { body, ..ours }).await)
}

fn to_hyper(response: Response) -> hyper::Response<Full<Bytes>> {
    let mut builder = hyper::Response::builder().status(response.status);
    for (name, value) in &response.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder
        .body(Full::new(Bytes::from(response.body)))
        .unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::from_static(b"bad response"))))
}
