//! The wire formats a webhook request may be in: Milepost's own events
//! (`own_format`) and Segment Spec calls (`segment_spec`, as Segment and
//! RudderStack send them; `tracking_api` is the envelope of Segment's
//! tracking API, as the SDKs post it). Both parse into `Incoming` items, each validated
//! on its own so one bad item does not sink its batch.

pub mod own_format;
pub mod segment_spec;
pub mod tracking_api;

use milepost_domain::{AccountId, FieldError, ProductEvent};
use serde_json::Value;

pub use segment_spec::GroupCall;

/// A request body that is not usable at all.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("body is not valid JSON: {0}")]
    Malformed(String),
    #[error("body must be an event object or an array of events")]
    NotEvents,
}

/// What a request carries: product events, and (from Segment `group` calls)
/// accounts to create or update.
#[derive(Clone, Debug, PartialEq)]
pub enum Incoming {
    Event(ProductEvent),
    /// Boxed: a call's traits are several times the size of an event.
    Account(Box<GroupCall>),
}

/// Parses a request body in either shape: Milepost's own events (one object
/// or an array) or Segment Spec calls (one, an array, or `{"batch": [...]}`).
pub fn parse_body(body: &[u8]) -> Result<Vec<Result<Incoming, FieldError>>, BodyError> {
    let starts_like_segment = {
        // Cheap sniff of the first object's keys; the full check is on the parsed value.
        let head = &body[..body.len().min(512)];
        let head = String::from_utf8_lossy(head);
        head.contains("\"batch\"") || head.contains("\"type\"")
    };
    if starts_like_segment {
        let value: Value = serde_json::from_slice(body).map_err(|e| BodyError::Malformed(e.to_string()))?;
        if segment_spec::looks_like_segment(&value) {
            return Ok(segment_spec::parse_calls(value));
        }
    }
    Ok(own_format::parse_events(body)?
        .into_iter()
        .map(|r| r.map(Incoming::Event))
        .collect())
}

impl Incoming {
    pub fn account_id(&self) -> &AccountId {
        match self {
            Incoming::Event(e) => &e.account_id,
            Incoming::Account(call) => &call.account_id,
        }
    }
}
