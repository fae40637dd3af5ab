//! Faults on purpose: an HTTP proxy between the AWS SDK and the emulator
//! that, seeded, answers some requests the way AWS misbehaves in
//! production. Per AWS operation (`dynamodb:TransactWriteItems`, or a whole
//! service, `sesv2:*`, or everything, `*`) it injects at given rates:
//!
//! - `throttling`: the service's throttling error (DynamoDB
//!   `ProvisionedThroughputExceededException`, SES `TooManyRequestsException`
//!   with 429, `ThrottlingException` elsewhere), which the SDK retries;
//! - `http_500`, `http_503`: a server error;
//! - `connection_reset`: the connection closed before any answer;
//! - `slow`: the request held past the client's timeout, then forwarded
//!   (it may be applied after the client gave up);
//! - `lost_response`: the request forwarded and applied, the answer dropped,
//!   so the client retries something that already happened.
//!
//! Nothing here is random unless seeded: one seed and one order of requests
//! give the same faults. Every fault is counted by kind.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What the proxy can do to a request instead of passing it through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    Throttling,
    Http500,
    Http503,
    ConnectionReset,
    Slow,
    LostResponse,
}

impl Fault {
    pub const ALL: [Fault; 6] = [
        Fault::Throttling,
        Fault::Http500,
        Fault::Http503,
        Fault::ConnectionReset,
        Fault::Slow,
        Fault::LostResponse,
    ];

    /// The name reports use (`faults_injected` in the chaos report).
    pub fn name(self) -> &'static str {
        match self {
            Fault::Throttling => "throttling",
            Fault::Http500 => "http_500",
            Fault::Http503 => "http_503",
            Fault::ConnectionReset => "connection_reset",
            Fault::Slow => "slow",
            Fault::LostResponse => "lost_response",
        }
    }
}

/// Which faults, how often, for which operations; and the seed.
#[derive(Clone, Debug)]
pub struct FaultPlan {
    seed: u64,
    /// By pattern: `service:Operation`, `service:*` or `*`; the most specific wins.
    rates: BTreeMap<String, Vec<(Fault, f64)>>,
    /// How long a `slow` request is held before it is forwarded.
    pub slow_for: Duration,
    /// Operations (`service:Operation`) whose applied requests are kept, body and all.
    recorded: Vec<String>,
    /// Faults for the first requests of an operation, before any rate applies.
    firsts: Vec<(String, Fault, u32)>,
}

impl FaultPlan {
    pub fn new(seed: u64) -> Self {
        FaultPlan {
            seed,
            rates: BTreeMap::new(),
            slow_for: Duration::from_secs(2),
            recorded: Vec::new(),
            firsts: Vec::new(),
        }
    }

    /// Injects `fault` into a share `rate` (0 to 1) of the requests `pattern` names.
    pub fn with(mut self, pattern: &str, fault: Fault, rate: f64) -> Self {
        assert!((0.0..=1.0).contains(&rate), "a rate is a share: {rate}");
        let faults = self.rates.entry(pattern.to_string()).or_default();
        faults.retain(|(f, _)| *f != fault);
        faults.push((fault, rate));
        assert!(
            faults.iter().map(|(_, r)| r).sum::<f64>() <= 1.0 + 1e-9,
            "the rates for {pattern} add up to more than 1"
        );
        self
    }

    /// Injects `fault` into the first `n` requests of `operation`
    /// (`service:Operation`), whatever the rates: one fault exactly where a
    /// test wants it.
    pub fn first(mut self, operation: &str, fault: Fault, n: u32) -> Self {
        self.firsts.push((operation.to_string(), fault, n));
        self
    }

    /// Keeps the body of every `operation` request the emulator applied
    /// (answered 2xx, whether or not the answer then reached the client):
    /// what was really sent, counted at the emulator (`FaultProxy::applied`).
    pub fn record(mut self, operation: &str) -> Self {
        self.recorded.push(operation.to_string());
        self
    }

    pub fn slow_for(mut self, hold: Duration) -> Self {
        self.slow_for = hold;
        self
    }

    fn rates_for(&self, operation: &Operation) -> &[(Fault, f64)] {
        let exact = format!("{}:{}", operation.service, operation.name);
        let service = format!("{}:*", operation.service);
        [exact.as_str(), service.as_str(), "*"]
            .iter()
            .find_map(|p| self.rates.get(*p))
            .map_or(&[], Vec::as_slice)
    }
}

/// The AWS operation a request asks for, from its `X-Amz-Target` (the JSON
/// protocols: DynamoDB, Step Functions, EventBridge, SSM) or its path (SES v2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    pub service: String,
    pub name: String,
}

impl Operation {
    pub fn of(headers: &HeaderMap, method: &http::Method, path: &str) -> Operation {
        if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
            let (prefix, name) = target.split_once('.').unwrap_or((target, ""));
            let service = match prefix {
                p if p.starts_with("DynamoDB") => "dynamodb",
                "AWSStepFunctions" => "states",
                "AWSEvents" => "events",
                "AmazonSSM" => "ssm",
                "secretsmanager" => "secretsmanager",
                other => other,
            };
            return Operation {
                service: service.to_string(),
                name: name.to_string(),
            };
        }
        if path.starts_with("/v2/email/") {
            let name = match (method.as_str(), path) {
                ("POST", "/v2/email/outbound-emails") => "SendEmail".to_string(),
                (m, p) => format!("{m} {p}"),
            };
            return Operation {
                service: "sesv2".into(),
                name,
            };
        }
        Operation {
            service: "other".into(),
            name: path.to_string(),
        }
    }

    fn throttling(&self) -> Response<Full<Bytes>> {
        match self.service.as_str() {
            "sesv2" => aws_error(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequestsException",
                "Maximum sending rate exceeded (injected).",
            ),
            "dynamodb" => aws_error(
                StatusCode::BAD_REQUEST,
                "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                "The level of configured provisioned throughput for the table was exceeded (injected).",
            ),
            _ => aws_error(
                StatusCode::BAD_REQUEST,
                "ThrottlingException",
                "Rate exceeded (injected).",
            ),
        }
    }
}

/// An AWS error answer both JSON and REST-JSON clients read: the code in
/// `__type` and in `x-amzn-ErrorType`.
fn aws_error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    let short = code.rsplit('#').next().unwrap_or(code);
    let body = serde_json::json!({ "__type": code, "message": message }).to_string();
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amzn-errortype", short)
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}

/// What went through: requests by operation, faults by kind.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultCounts {
    pub requests: BTreeMap<String, u64>,
    pub faults: BTreeMap<Fault, u64>,
    /// Faults in order, `(operation, fault)`: what a seed produced.
    pub log: Vec<(String, Fault)>,
}

impl FaultCounts {
    pub fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }
    pub fn total_faults(&self) -> u64 {
        self.faults.values().sum()
    }
}

struct Shared {
    plan: FaultPlan,
    rng: Mutex<ChaCha8Rng>,
    counts: Mutex<FaultCounts>,
    applied: Mutex<Vec<(String, Bytes)>>,
    firsts: Mutex<Vec<(String, Fault, u32)>>,
    upstream: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// The proxy, listening on a free loopback port until dropped.
pub struct FaultProxy {
    pub endpoint: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

/// The connection is dropped without an answer.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped on purpose")
    }
}

impl std::error::Error for Dropped {}

impl FaultProxy {
    /// Starts the proxy in front of `upstream` (`http://127.0.0.1:<port>`);
    /// needs a Tokio runtime.
    pub async fn start(upstream: &str, plan: FaultPlan) -> FaultProxy {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("a loopback port");
        let address: SocketAddr = listener.local_addr().expect("bound");
        let shared = Arc::new(Shared {
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(plan.seed)),
            firsts: Mutex::new(plan.firsts.clone()),
            plan,
            counts: Mutex::new(FaultCounts::default()),
            applied: Mutex::new(Vec::new()),
            upstream: upstream.trim_end_matches('/').to_string(),
            client: Client::builder(TokioExecutor::new()).build_http(),
        });
        let serving = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let shared = Arc::clone(&serving);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let shared = Arc::clone(&shared);
                        async move { shared.handle(request).await }
                    });
                    // A dropped connection ends here with the error it was dropped with.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FaultProxy {
            endpoint: format!("http://{address}"),
            shared,
            task,
        }
    }

    /// What went through so far.
    pub fn counts(&self) -> FaultCounts {
        self.shared.counts.lock().expect("counts").clone()
    }

    /// The bodies of the requests of `operation` (named by `FaultPlan::record`)
    /// the emulator applied, in order.
    pub fn applied(&self, operation: &str) -> Vec<Bytes> {
        let applied = self.shared.applied.lock().expect("applied");
        applied
            .iter()
            .filter(|(op, _)| op == operation)
            .map(|(_, body)| body.clone())
            .collect()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Shared {
    fn choose(&self, operation: &Operation) -> Option<Fault> {
        let key = format!("{}:{}", operation.service, operation.name);
        {
            let mut firsts = self.firsts.lock().expect("firsts");
            if let Some((_, fault, left)) = firsts.iter_mut().find(|(op, _, left)| *op == key && *left > 0) {
                *left -= 1;
                return Some(*fault);
            }
        }
        let rates = self.plan.rates_for(operation);
        // One draw per request, faults or not, so a seed's sequence depends
        // only on the order of requests.
        let roll: f64 = self.rng.lock().expect("rng").random();
        let mut upto = 0.0;
        rates.iter().find_map(|&(fault, rate)| {
            upto += rate;
            (roll < upto).then_some(fault)
        })
    }

    async fn handle(&self, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Dropped> {
        let operation = Operation::of(request.headers(), request.method(), request.uri().path());
        let key = format!("{}:{}", operation.service, operation.name);
        let fault = if operation.service == "other" {
            None // the emulator's own API (moto-api): never faulted
        } else {
            self.choose(&operation)
        };
        {
            let mut counts = self.counts.lock().expect("counts");
            *counts.requests.entry(key.clone()).or_default() += 1;
            if let Some(fault) = fault {
                *counts.faults.entry(fault).or_default() += 1;
                counts.log.push((key.clone(), fault));
            }
        }
        match fault {
            Some(Fault::Throttling) => Ok(operation.throttling()),
            Some(Fault::Http500) => Ok(aws_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "Internal server error (injected).",
            )),
            Some(Fault::Http503) => Ok(aws_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "Service unavailable (injected).",
            )),
            Some(Fault::ConnectionReset) => Err(Dropped),
            Some(Fault::Slow) => {
                tokio::time::sleep(self.plan.slow_for).await;
                self.forward(request, &key).await
            }
            Some(Fault::LostResponse) => {
                self.forward(request, &key).await?;
                Err(Dropped)
            }
            None => self.forward(request, &key).await,
        }
    }

    async fn forward(&self, request: Request<Incoming>, operation: &str) -> Result<Response<Full<Bytes>>, Dropped> {
        let (parts, body) = request.into_parts();
        let body = body.collect().await.map_err(|_| Dropped)?.to_bytes();
        let kept = self.plan.recorded.iter().any(|r| r == operation).then(|| body.clone());
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let uri: http::Uri = format!("{}{path}", self.upstream).parse().map_err(|_| Dropped)?;
        let mut upstream = Request::builder().method(parts.method).uri(uri);
        for (name, value) in &parts.headers {
            upstream = upstream.header(name, value);
        }
        let upstream = upstream.body(Full::new(body)).map_err(|_| Dropped)?;
        let answer = self.client.request(upstream).await.map_err(|_| Dropped)?;
        let (parts, body) = answer.into_parts();
        let body = body.collect().await.map_err(|_| Dropped)?.to_bytes();
        if let (Some(kept), true) = (kept, parts.status.is_success()) {
            self.applied
                .lock()
                .expect("applied")
                .push((operation.to_string(), kept));
        }
        Ok(Response::from_parts(parts, Full::new(body)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(target: &str) -> Operation {
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-target", target.parse().unwrap());
        Operation::of(&headers, &http::Method::POST, "/")
    }

    #[test]
    fn operations_are_named_by_service_and_action() {
        assert_eq!(
            op("DynamoDB_20120810.TransactWriteItems"),
            Operation {
                service: "dynamodb".into(),
                name: "TransactWriteItems".into()
            }
        );
        assert_eq!(op("AWSStepFunctions.StartExecution").service, "states");
        assert_eq!(op("AWSEvents.PutEvents").service, "events");
        let ses = Operation::of(&HeaderMap::new(), &http::Method::POST, "/v2/email/outbound-emails");
        assert_eq!((ses.service.as_str(), ses.name.as_str()), ("sesv2", "SendEmail"));
    }

    #[test]
    fn the_most_specific_rate_applies() {
        let plan = FaultPlan::new(1)
            .with("*", Fault::Http500, 0.1)
            .with("dynamodb:*", Fault::Throttling, 0.2)
            .with("dynamodb:PutItem", Fault::LostResponse, 0.3);
        assert_eq!(
            plan.rates_for(&op("DynamoDB_20120810.PutItem")),
            &[(Fault::LostResponse, 0.3)]
        );
        assert_eq!(
            plan.rates_for(&op("DynamoDB_20120810.Query")),
            &[(Fault::Throttling, 0.2)]
        );
        assert_eq!(plan.rates_for(&op("AWSEvents.PutEvents")), &[(Fault::Http500, 0.1)]);
    }

    #[test]
    #[should_panic(expected = "add up to more than 1")]
    fn rates_beyond_certainty_are_refused() {
        let _ = FaultPlan::new(1)
            .with("*", Fault::Http500, 0.6)
            .with("*", Fault::Http503, 0.6);
    }
}
