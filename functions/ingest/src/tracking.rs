//! Segment's tracking API, as the Segment and RudderStack SDKs call it:
//! `POST /v1/batch` (and `/v1/track`, `/v1/identify`, `/v1/group` for calls
//! posted by hand), authenticated by a write key, JSON or gzipped JSON.
//!
//! The answers are chosen for what the SDKs do with them (README, "Send
//! events from your backend"): 200 for a batch taken, even with some calls
//! rejected (the Python SDKs resend anything else but 200); 4xx for a request
//! that can never be taken (every SDK drops it rather than retry); 503 with
//! `Retry-After` when it could not be stored just now (every SDK retries).
//! Each refusal carries `code` and `message` beside RFC 9457's members: the
//! Python SDKs read those two, and treat an error body without them as a
//! fault of their own, to be retried.

use std::borrow::Cow;
use std::io::Read;

use base64::Engine;
use lambda_http::http::{header, HeaderMap, Method, StatusCode};
use lambda_http::{Body, Request, Response};
use milepost_app::ingest::wire::tracking_api::{TrackingBodyError, TrackingRequest, TrackingRoute};
use milepost_app::ingest::{IngestReport, Ingestion};
use milepost_domain::limits::MAX_EVENTS_PER_REQUEST;
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{IngestConfig, Problem};

/// The write keys the tracking API accepts: several while one is rotated.
/// Only their SHA-256 digests are kept, and every one is compared.
#[derive(Default)]
pub struct WriteKeys {
    digests: Vec<[u8; 32]>,
}

impl WriteKeys {
    /// No key: the tracking API refuses every request (it has no other check).
    pub fn none() -> Self {
        Self::default()
    }

    /// Blank keys are ignored; the loader refuses a configured source that holds only blanks.
    pub fn new<S: AsRef<str>>(keys: &[S]) -> Self {
        WriteKeys {
            digests: keys
                .iter()
                .map(|k| k.as_ref().trim())
                .filter(|k| !k.is_empty())
                .map(|k| Sha256::digest(k.as_bytes()).into())
                .collect(),
        }
    }

    pub fn is_configured(&self) -> bool {
        !self.digests.is_empty()
    }

    /// Compares digests, so neither the key's length nor which key matched
    /// shows in the time taken.
    pub fn accepts(&self, given: &str) -> bool {
        let given: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        let matched = self
            .digests
            .iter()
            .fold(subtle::Choice::from(0), |any, key| any | key.ct_eq(&given));
        bool::from(matched)
    }
}

/// A batch taken, as the SDKs expect it (`success`) and with what Milepost did.
#[derive(Serialize)]
struct Taken<'a> {
    success: bool,
    #[serde(flatten)]
    report: &'a IngestReport,
}

pub(crate) async fn handle(
    ingestion: &Ingestion,
    config: &IngestConfig,
    route: TrackingRoute,
    request: &Request,
) -> Response<Body> {
    match take(ingestion, config, route, request).await {
        Ok(report) => {
            crate::record_ingested(ingestion, &report, route.path());
            crate::json_response(
                StatusCode::OK,
                &Taken {
                    success: true,
                    report: &report,
                },
            )
        }
        Err(problem) => {
            tracing::warn!(
                route = route.path(),
                status = problem.status,
                problem = problem.slug,
                "tracking request refused"
            );
            problem.for_sdks().into_response()
        }
    }
}

async fn take(
    ingestion: &Ingestion,
    config: &IngestConfig,
    route: TrackingRoute,
    request: &Request,
) -> Result<IngestReport, Problem> {
    if request.method() != Method::POST {
        return Err(Problem::method_not_allowed());
    }
    crate::require_json(request.headers())?;
    let limit = route.max_body_bytes();
    let raw: &[u8] = request.body().as_ref();
    if raw.len() > limit {
        return Err(Problem::too_large(raw.len(), limit));
    }
    if !config.write_keys.is_configured() {
        return Err(Problem::bad_write_key(
            "this Milepost has no write key configured, so the tracking API takes nothing: put one in the SSM parameter named by WriteKeysParameterName",
            None,
        ));
    }
    // A key in the header is checked before the body is inflated or read.
    let header_key = basic_user(request.headers())?;
    if let Some(key) = &header_key {
        check_key(config, key, "Authorization")?;
    }
    let body = decoded(request.headers(), raw, limit)?;
    let calls = TrackingRequest::read(route, &body).map_err(body_problem)?;
    if header_key.is_none() {
        let key = calls.write_key().ok_or_else(|| {
            Problem::bad_write_key(
                "the request carries no write key: send it as the HTTP Basic user name (empty password), as the SDKs do",
                Some("Authorization"),
            )
        })?;
        check_key(config, key, "writeKey")?;
    }
    if calls.len() > MAX_EVENTS_PER_REQUEST {
        return Err(Problem::too_many_events(calls.len(), MAX_EVENTS_PER_REQUEST));
    }
    let calls = calls.calls(ingestion.clock.now()).map_err(body_problem)?;
    // Nothing takeable: 400, as Segment's API answers a bad call; no SDK retries it.
    crate::ingest_items(ingestion, calls, StatusCode::BAD_REQUEST).await
}

fn check_key(config: &IngestConfig, key: &str, field: &'static str) -> Result<(), Problem> {
    if config.write_keys.accepts(key.trim()) {
        Ok(())
    } else {
        Err(Problem::bad_write_key(
            "the write key is not one this Milepost accepts",
            Some(field),
        ))
    }
}

/// The user name of an HTTP Basic `Authorization` header (the write key; the
/// password is empty and not read), or `None` without the header.
fn basic_user(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = |why: &str| Problem::bad_write_key(why, Some("Authorization"));
    let value = value
        .to_str()
        .map_err(|_| bad("the Authorization header is not text"))?;
    let (scheme, credentials) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(bad(
            "only HTTP Basic is accepted, the write key as user name: OAuth tokens and other schemes are not",
        ));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(credentials.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| bad("the Basic credentials are not base64 of `key:`"))?;
    let user = decoded.split_once(':').map_or(decoded.as_str(), |(user, _)| user);
    Ok(Some(user.to_string()))
}

/// The body as JSON bytes: inflated when `Content-Encoding: gzip`, and never
/// past `limit`, however small the compressed body.
fn decoded<'a>(headers: &HeaderMap, raw: &'a [u8], limit: usize) -> Result<Cow<'a, [u8]>, Problem> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
        .unwrap_or_default();
    match encoding.as_str() {
        "" | "identity" => Ok(Cow::Borrowed(raw)),
        "gzip" | "x-gzip" => {
            let mut inflated = Vec::new();
            flate2::read::MultiGzDecoder::new(raw)
                .take(limit as u64 + 1)
                .read_to_end(&mut inflated)
                .map_err(|e| Problem::bad_gzip(&e.to_string()))?;
            if inflated.len() > limit {
                return Err(Problem::inflates_too_large(raw.len(), limit));
            }
            Ok(Cow::Owned(inflated))
        }
        other => Err(Problem::unsupported_encoding(other)),
    }
}

fn body_problem(e: TrackingBodyError) -> Problem {
    match e {
        TrackingBodyError::Malformed(detail) => Problem::malformed(&detail),
        TrackingBodyError::Shape(field) => Problem::bad_request(&field.field, &field.message),
    }
}
