//! The ingest webhook: `POST /v1/events`, signed, idempotent, answering fast
//! with what it accepted and, for anything it refused, RFC 9457 problem
//! details naming the field at fault; and Segment's tracking API
//! (`POST /v1/batch` and the single-call routes, `tracking`), which the
//! Segment and RudderStack SDKs send to with a write key.
//!
//! `handle` is a plain async function over the ingestion use case and the
//! request, so it is tested without the Lambda runtime; `main.rs` only wires it up.

mod auth;
mod confirm;
mod problem;
mod tracking;

use lambda_http::http::{header, Method, StatusCode};
use lambda_http::{Body, Request, Response};
use milepost_app::ingest::wire::tracking_api::TrackingRoute;
use milepost_app::ingest::wire::{parse_body, BodyError, Incoming};
use milepost_app::ingest::{IngestReport, Ingestion};
use milepost_domain::limits::MAX_EVENTS_PER_REQUEST;
use milepost_domain::FieldError;

pub use auth::{AuthError, WebhookSecrets};
pub use problem::Problem;
pub use tracking::WriteKeys;

/// The largest body accepted, documented in the README: 1 MiB. Segment's own
/// batches stop at 500 KB.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What the handler needs besides the use case.
pub struct IngestConfig {
    pub secrets: WebhookSecrets,
    /// The tracking API's write keys; with none it takes nothing.
    pub write_keys: WriteKeys,
    pub max_body_bytes: usize,
}

impl IngestConfig {
    pub fn new(secrets: WebhookSecrets) -> Self {
        IngestConfig {
            secrets,
            write_keys: WriteKeys::none(),
            max_body_bytes: MAX_BODY_BYTES,
        }
    }

    pub fn with_write_keys(self, write_keys: WriteKeys) -> Self {
        IngestConfig { write_keys, ..self }
    }
}

/// The use case and the handler's configuration, from the environment the
/// function runs in: secrets and write keys read once (SSM, or the local
/// development defaults with `MILEPOST_LOCAL=1`), failing closed on blanks.
pub async fn from_env(sdk: &aws_config::SdkConfig) -> Result<(Ingestion, IngestConfig), IngestWiringError> {
    let loaded = milepost_aws::secrets::load(sdk, |name| std::env::var(name).ok())
        .await
        .map_err(IngestWiringError::Secrets)?;
    let secrets = WebhookSecrets::new(&loaded.standard, &loaded.segment)?;
    if !secrets.is_configured() {
        tracing::warn!("no webhook secret configured: unsigned requests are accepted");
    }
    let write_keys = WriteKeys::new(&loaded.write_keys);
    if !write_keys.is_configured() {
        tracing::info!("no write key configured: the tracking API (/v1/batch) refuses every request");
    }
    let ingestion = milepost_aws::services_from_env(sdk, milepost_aws::LinkKey::Skip)
        .await?
        .ingestion();
    Ok((ingestion, IngestConfig::new(secrets).with_write_keys(write_keys)))
}

/// Why the ingest function could not start: its secrets, or the process's wiring.
#[derive(Debug, thiserror::Error)]
pub enum IngestWiringError {
    #[error("reading the webhook secrets and write keys")]
    Secrets(#[source] milepost_aws::secrets::SecretsError),
    #[error(transparent)]
    Secret(#[from] auth::SecretError),
    #[error(transparent)]
    Wiring(#[from] milepost_aws::WiringError),
}

/// Handles one HTTP request (API Gateway HTTP API v2 or a Function URL).
pub async fn handle(ingestion: &Ingestion, config: &IngestConfig, request: Request) -> Response<Body> {
    if let Some(route) = TrackingRoute::from_path(request.uri().path()) {
        return tracking::handle(ingestion, config, route, &request).await;
    }
    match handle_inner(ingestion, config, &request).await {
        Ok(Answer::Confirmed(confirmation)) => {
            tracing::info!(status = confirmation.status, "manual milestone confirmation");
            json_response(StatusCode::OK, &confirmation)
        }
        Ok(Answer::Ingested(report)) => {
            record_ingested(ingestion, &report, "/v1/events");
            json_response(StatusCode::ACCEPTED, &report)
        }
        Err(problem) => {
            tracing::warn!(status = problem.status, problem = problem.slug, "request refused");
            problem.into_response()
        }
    }
}

async fn handle_inner(ingestion: &Ingestion, config: &IngestConfig, request: &Request) -> Result<Answer, Problem> {
    let path = request.uri().path().trim_end_matches('/');
    let confirmation = path.ends_with("/v1/milestones/confirm");
    if !path.ends_with("/v1/events") && !confirmation {
        return Err(Problem::not_found(request.uri().path()));
    }
    if request.method() != Method::POST {
        return Err(Problem::method_not_allowed());
    }
    require_json(request.headers())?;
    let body: &[u8] = request.body().as_ref();
    if body.len() > config.max_body_bytes {
        return Err(Problem::too_large(body.len(), config.max_body_bytes));
    }
    // Nothing is parsed, let alone stored, before the signature is checked.
    let verified = if confirmation {
        config.secrets.verify_timestamped(request.headers(), body)
    } else {
        config.secrets.verify(request.headers(), body)
    };
    verified.map_err(Problem::unauthorized)?;
    if confirmation {
        return confirm::confirm(ingestion, body).await.map(Answer::Confirmed);
    }

    let parsed = parse_body(body).map_err(|e| match e {
        BodyError::Malformed(detail) => Problem::malformed(&detail),
        BodyError::NotEvents => Problem::no_valid_events(&[], 0),
    })?;
    if parsed.len() > MAX_EVENTS_PER_REQUEST {
        return Err(Problem::too_many_events(parsed.len(), MAX_EVENTS_PER_REQUEST));
    }
    ingest_items(ingestion, parsed, StatusCode::UNPROCESSABLE_ENTITY)
        .await
        .map(Answer::Ingested)
}

/// Hands a request's items, each already validated on its own, to the use
/// case. A store failure is a 503 the sender retries; a request none of
/// whose items could ever be taken is refused with `nothing_taken` and each
/// item's reason, so the sender drops it instead of retrying it.
async fn ingest_items(
    ingestion: &Ingestion,
    items: Vec<Result<Incoming, FieldError>>,
    nothing_taken: StatusCode,
) -> Result<IngestReport, Problem> {
    let report = ingestion.ingest(items).await.map_err(|e| {
        tracing::error!(error = %milepost_app::ErrorChain(&e), "ingest failed; the sender will retry");
        Problem::unavailable()
    })?;
    if report.accepted == 0 && report.duplicates == 0 && report.rejected_count > 0 {
        return Err(Problem::no_valid_events(&report.rejected, report.rejected_count).with_status(nothing_taken));
    }
    Ok(report)
}

/// What an ingested request leaves for operators: its metrics (EMF) and one
/// log line of counts.
fn record_ingested(ingestion: &Ingestion, report: &IngestReport, route: &'static str) {
    if let Some(metrics) = report.emf(ingestion.clock.now()) {
        println!("{metrics}");
    }
    tracing::info!(
        route,
        accepted = report.accepted,
        duplicates = report.duplicates,
        rejected = report.rejected.len(),
        "events ingested"
    );
}

/// A body must say it is JSON.
fn require_json(headers: &header::HeaderMap) -> Result<(), Problem> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if media_type != "application/json" {
        return Err(Problem::unsupported_media_type(content_type));
    }
    Ok(())
}

/// What a request that succeeded answers.
enum Answer {
    Ingested(IngestReport),
    Confirmed(confirm::Confirmation),
}

fn json_response<T: serde::Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(serde_json::to_string(value).expect("reports serialise")))
        .expect("a valid response")
}
