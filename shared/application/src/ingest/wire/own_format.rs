//! Milepost's own event format: one JSON object, or an array of them, with
//! `id`, `account_id`, `event`, `timestamp` (RFC 3339), and optionally
//! `user_id` and `properties`.

use milepost_domain::{limits, AccountId, FieldError, ProductEvent};
use serde::Deserialize;
use serde_json::Value;

use super::BodyError;

/// One event as it arrives, before validation: every field optional so each
/// problem can be named.
#[derive(Default, Deserialize)]
struct WireEvent {
    id: Option<Value>,
    account_id: Option<Value>,
    event: Option<Value>,
    timestamp: Option<Value>,
    user_id: Option<Value>,
    properties: Option<Value>,
}

/// The common, well-formed shape, parsed without building JSON values.
#[derive(Deserialize)]
struct TypedEvent {
    id: String,
    account_id: String,
    event: String,
    timestamp: String,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    properties: Option<serde_json::Map<String, Value>>,
}

impl From<TypedEvent> for WireEvent {
    fn from(e: TypedEvent) -> Self {
        WireEvent {
            id: Some(Value::String(e.id)),
            account_id: Some(Value::String(e.account_id)),
            event: Some(Value::String(e.event)),
            timestamp: Some(Value::String(e.timestamp)),
            user_id: e.user_id.map(Value::String),
            properties: e.properties.map(Value::Object),
        }
    }
}

impl WireEvent {
    fn from_value(value: Value) -> Result<WireEvent, FieldError> {
        let Value::Object(mut obj) = value else {
            return Err(FieldError::new("(event)", "must be a JSON object"));
        };
        Ok(WireEvent {
            id: obj.remove("id"),
            account_id: obj.remove("account_id"),
            event: obj.remove("event"),
            timestamp: obj.remove("timestamp"),
            user_id: obj.remove("user_id"),
            properties: obj.remove("properties"),
        })
    }
}

/// Parses a body of Milepost events: one object or an array of them. Each
/// element is validated on its own, so one bad event does not sink the batch.
pub fn parse_events(body: &[u8]) -> Result<Vec<Result<ProductEvent, FieldError>>, BodyError> {
    // Fast path: straight into typed records. Anything unusual (a field of
    // another type, an element that is not an object, broken JSON) takes the
    // slow path, which names the problem. Both end in the same `validate`.
    let typed = match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => serde_json::from_slice::<Vec<TypedEvent>>(body).ok(),
        Some(b'{') => serde_json::from_slice::<TypedEvent>(body).ok().map(|e| vec![e]),
        _ => None,
    };
    if let Some(events) = typed {
        return Ok(events.into_iter().map(|e| validate(e.into())).collect());
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| BodyError::Malformed(e.to_string()))?;
    let items = match value {
        Value::Array(items) => items,
        obj @ Value::Object(_) => vec![obj],
        _ => return Err(BodyError::NotEvents),
    };
    Ok(items
        .into_iter()
        .map(|v| WireEvent::from_value(v).and_then(validate))
        .collect())
}

fn required_str(value: Option<Value>, field: &str) -> Result<String, FieldError> {
    match value {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
        Some(Value::String(_)) => Err(FieldError::new(field, "must not be empty")),
        None | Some(Value::Null) => Err(FieldError::new(field, "is required")),
        Some(_) => Err(FieldError::new(field, "must be a string")),
    }
}

fn validate(wire: WireEvent) -> Result<ProductEvent, FieldError> {
    let id = required_str(wire.id, "id")?;
    let account_id = required_str(wire.account_id, "account_id")?;
    let event = required_str(wire.event, "event")?;
    let timestamp_text = required_str(wire.timestamp, "timestamp")?;
    let timestamp = chrono::DateTime::parse_from_rfc3339(&timestamp_text)
        .map_err(|e| FieldError::new("timestamp", format!("must be an RFC 3339 date-time ({e})")))?
        .to_utc();
    let user_id = match wire.user_id {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => return Err(FieldError::new("user_id", "must be a string")),
    };
    let properties = match wire.properties {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(p)) => p,
        Some(_) => return Err(FieldError::new("properties", "must be an object")),
    };
    let event = ProductEvent {
        id,
        account_id: AccountId(account_id),
        event,
        timestamp,
        user_id,
        properties,
    };
    limits::check_storable(&event, "id", "account_id")?;
    Ok(event)
}
