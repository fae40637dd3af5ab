//! The ingest webhook: `POST /v1/events`, signed, idempotent, answering fast
//! with what it accepted and, for anything it refused, RFC 9457 problem
//! details naming the field at fault.
//!
//! `handle` is a plain async function over the ingestion use case and the
//! request, so it is tested without the Lambda runtime; `main.rs` only wires it up.

mod auth;
mod confirm;
mod problem;

use lambda_http::http::{header, Method, StatusCode};
use lambda_http::{Body, Request, Response};
use milepost_app::ingest::wire::{parse_body, BodyError};
use milepost_app::ingest::{IngestReport, Ingestion};
use milepost_domain::limits::MAX_EVENTS_PER_REQUEST;

pub use auth::{AuthError, WebhookSecrets};
pub use problem::Problem;

/// The largest body accepted, documented in the README: 1 MiB. Segment's own
/// batches stop at 500 KB.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What the handler needs besides the use case.
pub struct IngestConfig {
    pub secrets: WebhookSecrets,
    pub max_body_bytes: usize,
}

impl IngestConfig {
    pub fn new(secrets: WebhookSecrets) -> Self {
        IngestConfig {
            secrets,
            max_body_bytes: MAX_BODY_BYTES,
        }
    }
}

/// Handles one HTTP request (API Gateway HTTP API v2 or a Function URL).
pub async fn handle(ingestion: &Ingestion, config: &IngestConfig, request: Request) -> Response<Body> {
    match handle_inner(ingestion, config, &request).await {
        Ok(Answer::Confirmed(confirmation)) => {
            tracing::info!(status = confirmation.status, "manual milestone confirmation");
            json_response(StatusCode::OK, &confirmation)
        }
        Ok(Answer::Ingested(report)) => {
            if let Some(metrics) = report.emf(ingestion.clock.now()) {
                println!("{metrics}");
            }
            tracing::info!(
                accepted = report.accepted,
                duplicates = report.duplicates,
                rejected = report.rejected.len(),
                "events ingested"
            );
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
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if media_type != "application/json" {
        return Err(Problem::unsupported_media_type(content_type));
    }
    let body: &[u8] = request.body().as_ref();
    if body.len() > config.max_body_bytes {
        return Err(Problem::too_large(body.len(), config.max_body_bytes));
    }
    // Nothing is parsed, let alone stored, before the signature is checked.
    config
        .secrets
        .verify(request.headers(), body)
        .map_err(Problem::unauthorized)?;
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
    let report = ingestion.ingest(parsed).await.map_err(|e| {
        tracing::error!(error = %e, "ingest failed; the sender will retry");
        Problem::unavailable()
    })?;
    if report.accepted == 0 && report.duplicates == 0 && report.rejected_count > 0 {
        return Err(Problem::no_valid_events(&report.rejected, report.rejected_count));
    }
    Ok(Answer::Ingested(report))
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
