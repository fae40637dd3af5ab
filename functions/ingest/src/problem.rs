//! RFC 9457 problem details: every refusal says what is wrong and, where a
//! field is at fault, which one.

use lambda_http::http::{header, StatusCode};
use lambda_http::{Body, Response};
use milepost_app::ingest::Rejection;
use serde::Serialize;

use crate::AuthError;

#[derive(Debug, Serialize)]
pub struct FieldProblem {
    /// The request item at fault, for batches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    pub field: String,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldProblem>,
    #[serde(skip)]
    pub slug: &'static str,
    /// Whether the answer carries `code` and `message` too (`for_sdks`).
    #[serde(skip)]
    sdk_members: bool,
    /// A 401's `WWW-Authenticate` asks for Basic (a write key), not a signature.
    #[serde(skip)]
    basic_challenge: bool,
}

/// A problem with the extension members the Segment and RudderStack SDKs
/// read: they log a refusal's `code` and `message`, and the Python ones
/// retry an error whose body lacks them as if the network had failed.
#[derive(Serialize)]
struct WithSdkMembers<'a> {
    #[serde(flatten)]
    problem: &'a Problem,
    code: &'a str,
    message: &'a str,
}

impl Problem {
    fn new(status: StatusCode, slug: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            type_uri: format!("urn:milepost:problem:{slug}"),
            title,
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            slug,
            sdk_members: false,
            basic_challenge: false,
        }
    }

    /// With `code` (the slug) and `message` (the detail), for the tracking API's SDKs.
    pub fn for_sdks(mut self) -> Self {
        self.sdk_members = true;
        self
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status.as_u16();
        self
    }

    /// A tracking API request without an accepted write key.
    pub fn bad_write_key(detail: &str, field: Option<&str>) -> Self {
        let mut p = Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Write key required",
            detail.to_string(),
        );
        p.basic_challenge = true;
        match field {
            Some(field) => p.field(None, field, detail.to_string()),
            None => p,
        }
    }

    pub fn unsupported_encoding(got: &str) -> Self {
        Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-encoding",
            "Unsupported content encoding",
            format!("the body must be plain or gzip (Content-Encoding: gzip), got {got}"),
        )
        .field(None, "Content-Encoding", "must be gzip or absent")
    }

    pub fn bad_gzip(why: &str) -> Self {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-gzip",
            "Body is not gzip",
            format!("Content-Encoding says gzip but the body does not inflate: {why}"),
        )
        .field(None, "(body)", "must be gzip data")
    }

    pub fn inflates_too_large(compressed: usize, limit: usize) -> Self {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Request too large",
            format!("the {compressed}-byte gzip body inflates past the limit of {limit} bytes: send smaller batches"),
        )
    }

    /// A body whose shape is wrong (400: nothing in it could ever be taken).
    pub fn bad_request(field: &str, detail: &str) -> Self {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "Bad request",
            format!("{field} {detail}"),
        )
        .field(None, field, detail.to_string())
    }

    fn field(mut self, index: Option<usize>, field: &str, detail: impl Into<String>) -> Self {
        self.errors.push(FieldProblem {
            index,
            field: field.to_string(),
            detail: detail.into(),
        });
        self
    }

    pub fn not_found(path: &str) -> Self {
        Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            format!("no such endpoint: {path}; events go to POST /v1/events, or POST /v1/batch from a Segment or RudderStack SDK"),
        )
    }

    pub fn method_not_allowed() -> Self {
        Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method not allowed",
            "events are sent with POST",
        )
    }

    pub fn unsupported_media_type(got: &str) -> Self {
        let got = if got.is_empty() { "none" } else { got };
        Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            format!("the body must be JSON (Content-Type: application/json), got {got}"),
        )
        .field(None, "Content-Type", "must be application/json")
    }

    pub fn too_large(size: usize, limit: usize) -> Self {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Request too large",
            format!("the body is {size} bytes; the limit is {limit} bytes: send smaller batches"),
        )
    }

    pub fn too_many_events(count: usize, limit: usize) -> Self {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-many-events",
            "Too many events",
            format!("the request holds {count} events; the limit is {limit} per request: send smaller batches"),
        )
        .field(None, "(body)", format!("at most {limit} events per request"))
    }

    pub fn unauthorized(e: AuthError) -> Self {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Signature required",
            e.to_string(),
        )
        .field(None, e.header(), e.to_string())
    }

    pub fn malformed(detail: &str) -> Self {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed-json",
            "Malformed JSON",
            format!("the body is not valid JSON: {detail}"),
        )
        .field(None, "(body)", detail)
    }

    /// `rejected`: the listed rejections (capped); `total`: how many there were.
    pub fn no_valid_events(rejected: &[Rejection], total: usize) -> Self {
        let detail = if total > rejected.len() {
            format!(
                "no event in the request could be accepted; {total} were rejected, the first {} are listed in errors",
                rejected.len()
            )
        } else {
            "no event in the request could be accepted; see errors".to_string()
        };
        let mut p = Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no-valid-events",
            "No valid events",
            detail,
        );
        if rejected.is_empty() {
            p = p.field(None, "(body)", "must be an event, an array of events, or Segment calls");
        }
        for r in rejected {
            let (field, detail) = r.error.split_once(": ").unwrap_or(("(event)", r.error.as_str()));
            p = p.field(Some(r.index), field, detail);
        }
        p
    }

    /// A confirmation naming what does not exist.
    pub fn unknown(field: &str, detail: &str) -> Self {
        Problem::new(StatusCode::NOT_FOUND, "unknown", "Not found", detail.to_string()).field(
            None,
            field,
            detail.to_string(),
        )
    }

    /// A confirmation of a milestone that events reach, not people.
    pub fn not_manual(detail: &str) -> Self {
        Problem::new(
            StatusCode::CONFLICT,
            "not-manual",
            "Not a manual milestone",
            detail.to_string(),
        )
        .field(None, "milestone_id", detail.to_string())
    }

    /// A request body whose field is wrong.
    pub fn invalid(field: &str, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "Invalid request",
            detail.clone(),
        )
        .field(None, field, detail)
    }

    pub fn unavailable() -> Self {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Temporarily unavailable",
            "the events could not be stored just now; retry the same request",
        )
    }

    pub fn into_response(self) -> Response<Body> {
        let mut builder = Response::builder()
            .status(self.status)
            .header(header::CONTENT_TYPE, "application/problem+json");
        if self.status == StatusCode::METHOD_NOT_ALLOWED.as_u16() {
            builder = builder.header(header::ALLOW, "POST");
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE.as_u16() {
            builder = builder.header(header::RETRY_AFTER, "5");
        }
        if self.status == StatusCode::UNAUTHORIZED.as_u16() {
            let challenge = if self.basic_challenge {
                "Basic realm=\"milepost\""
            } else {
                "Signature realm=\"milepost\""
            };
            builder = builder.header(header::WWW_AUTHENTICATE, challenge);
        }
        let body = if self.sdk_members {
            serde_json::to_string(&WithSdkMembers {
                problem: &self,
                code: self.slug,
                message: &self.detail,
            })
        } else {
            serde_json::to_string(&self)
        };
        builder
            .body(Body::from(body.expect("problems serialise")))
            .expect("a valid response")
    }
}
