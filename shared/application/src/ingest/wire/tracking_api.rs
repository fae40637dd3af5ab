//! The Segment tracking API as Segment's and RudderStack's SDKs call it:
//! `POST /v1/batch` (all the SDKs send; `{"batch": [...], "sentAt", "context",
//! "writeKey"}`) and the single-call routes `/v1/track`, `/v1/identify` and
//! `/v1/group` (one call, its `type` implied by the route), for senders that
//! post by hand.
//!
//! The calls themselves are parsed as Segment Spec calls (`segment_spec`);
//! what this adds is the envelope: the batch's `context` given to every call,
//! the write key a body may carry, Segment's size limits per call, and the
//! fields Segment's API fills in when a hand-written call leaves them out
//! (`messageId`, `timestamp`).

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use milepost_domain::{FieldError, Timestamp};

use super::{segment_spec, Incoming};

/// Segment's documented limit on one call.
pub const MAX_CALL_BYTES: usize = 32 * 1024;
/// Segment's documented limit on one batch request (after decompression).
pub const MAX_BATCH_BYTES: usize = 500 * 1024;

/// The tracking API's routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackingRoute {
    Batch,
    Track,
    Identify,
    Group,
}

impl TrackingRoute {
    const ALL: [TrackingRoute; 4] = [
        TrackingRoute::Batch,
        TrackingRoute::Track,
        TrackingRoute::Identify,
        TrackingRoute::Group,
    ];

    /// The route a request path ends in (`/v1/batch`, ...), whatever prefix
    /// the API or a Function URL puts before it.
    pub fn from_path(path: &str) -> Option<Self> {
        let path = path.trim_end_matches('/');
        Self::ALL.into_iter().find(|route| path.ends_with(route.path()))
    }

    /// The route's path, as the HTTP API routes it.
    pub fn path(self) -> &'static str {
        match self {
            TrackingRoute::Batch => "/v1/batch",
            TrackingRoute::Track => "/v1/track",
            TrackingRoute::Identify => "/v1/identify",
            TrackingRoute::Group => "/v1/group",
        }
    }

    /// The call type a single-call route implies.
    fn call_type(self) -> Option<&'static str> {
        match self {
            TrackingRoute::Batch => None,
            TrackingRoute::Track => Some("track"),
            TrackingRoute::Identify => Some("identify"),
            TrackingRoute::Group => Some("group"),
        }
    }

    /// The most a body of this route may hold, decompressed.
    pub fn max_body_bytes(self) -> usize {
        match self {
            TrackingRoute::Batch => MAX_BATCH_BYTES,
            _ => MAX_CALL_BYTES,
        }
    }
}

/// A body that cannot be taken at all.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TrackingBodyError {
    #[error("the body is not valid JSON: {0}")]
    Malformed(String),
    #[error("{0}")]
    Shape(FieldError),
}

/// A tracking API body, read but not yet taken apart: the write key is
/// checked between the two.
#[derive(Debug)]
pub struct TrackingRequest {
    route: TrackingRoute,
    body: Map<String, Value>,
}

impl TrackingRequest {
    pub fn read(route: TrackingRoute, body: &[u8]) -> Result<Self, TrackingBodyError> {
        match serde_json::from_slice(body) {
            Ok(Value::Object(body)) => Ok(TrackingRequest { route, body }),
            Ok(_) => Err(TrackingBodyError::Shape(FieldError::new(
                "(body)",
                match route {
                    TrackingRoute::Batch => "must be an object with a `batch` array of calls",
                    _ => "must be one call, a JSON object",
                },
            ))),
            Err(e) => Err(TrackingBodyError::Malformed(e.to_string())),
        }
    }

    /// The `writeKey` the body carries (segment-python 2.3 sends it there
    /// instead of in Basic auth; analytics-node sends both).
    pub fn write_key(&self) -> Option<&str> {
        self.body.get("writeKey").and_then(Value::as_str)
    }

    /// How many calls the request holds.
    pub fn len(&self) -> usize {
        match self.route {
            TrackingRoute::Batch => self.body.get("batch").and_then(Value::as_array).map_or(0, Vec::len),
            _ => 1,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The calls, each validated on its own and in the order sent.
    /// `received_at` stands in for a missing `timestamp`, as Segment's API does.
    pub fn calls(mut self, received_at: Timestamp) -> Result<Vec<Result<Incoming, FieldError>>, TrackingBodyError> {
        let route = self.route;
        let Some(implied) = route.call_type() else {
            let shared_context = match self.body.remove("context") {
                Some(Value::Object(c)) => c,
                _ => Map::new(),
            };
            let items = match self.body.remove("batch") {
                Some(Value::Array(items)) => items,
                _ => {
                    return Err(TrackingBodyError::Shape(FieldError::new(
                        "batch",
                        "must be an array of calls",
                    )))
                }
            };
            return Ok(items
                .into_iter()
                .map(|item| take_call(item, None, &shared_context, received_at))
                .collect());
        };
        self.body.remove("writeKey");
        Ok(vec![take_call(
            Value::Object(self.body),
            Some(implied),
            &Map::new(),
            received_at,
        )])
    }
}

fn take_call(
    item: Value,
    implied: Option<&str>,
    shared_context: &Map<String, Value>,
    received_at: Timestamp,
) -> Result<Incoming, FieldError> {
    let Value::Object(mut call) = item else {
        return Err(FieldError::new("(call)", "must be a JSON object"));
    };
    let as_sent = serde_json::to_vec(&call).expect("JSON values serialise");
    if as_sent.len() > MAX_CALL_BYTES {
        return Err(FieldError::new(
            "(call)",
            format!(
                "is {} bytes; a call may be at most {MAX_CALL_BYTES} bytes (Segment's limit)",
                as_sent.len()
            ),
        ));
    }
    if let Some(implied) = implied {
        match call.get("type").and_then(Value::as_str) {
            None => {
                call.insert("type".into(), implied.into());
            }
            Some(given) if given == implied => {}
            Some(given) => {
                return Err(FieldError::new(
                    "type",
                    format!("is `{given}`, but this route takes {implied} calls"),
                ))
            }
        }
    }
    if !shared_context.is_empty() {
        // The batch's context is every call's; a call's own keys win.
        let context = call.entry("context").or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(own) = context {
            for (key, value) in shared_context {
                own.entry(key.clone()).or_insert_with(|| value.clone());
            }
        }
    }
    let has_id = match call.get("messageId") {
        Some(Value::String(id)) => !id.trim().is_empty(),
        Some(Value::Number(_)) => true,
        _ => false,
    };
    if !has_id {
        // The SDKs always send one; for a call written by hand, the same call
        // sent twice gets the same id, so a redelivery is still a duplicate.
        call.insert("messageId".into(), derived_message_id(&call).into());
    }
    if !call.contains_key("timestamp") {
        let when = call
            .get("originalTimestamp")
            .cloned()
            .unwrap_or_else(|| received_at.to_rfc3339().into());
        call.insert("timestamp".into(), when);
    }
    segment_spec::parse_call(Value::Object(call))
}

/// `milepost-` and the first 16 bytes of the SHA-256 of the call without its
/// `sentAt` (which a resend changes), in hex.
fn derived_message_id(call: &Map<String, Value>) -> String {
    let mut stable = call.clone();
    stable.remove("sentAt");
    stable.remove("messageId");
    let digest = Sha256::digest(serde_json::to_vec(&stable).expect("JSON values serialise"));
    format!("milepost-{}", hex::encode(&digest[..16]))
}

#[cfg(test)]
mod tests;
