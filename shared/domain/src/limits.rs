//! What one request, one event and one account may hold: checked at the edge,
//! per event, so that nothing Milepost accepts can fail to be stored later.
//!
//! DynamoDB refuses a partition key over 2,048 bytes, a sort key over 1,024,
//! a number beyond ±9.9999…e125 (or a non-zero one under 1e-130), a document
//! nested deeper than 32 levels and an item over 400 KB. A refusal of that
//! kind can never be fixed by retrying, so an event that would meet one is
//! rejected here with the field at fault, and the rest of its batch goes on.
//! The README's "Sending events" lists these limits for senders.

use chrono::{Duration, NaiveDate};
use serde_json::{Map, Value};

use crate::FieldError;
use crate::{ProductEvent, Timestamp};

/// Event ids (`id`, Segment's `messageId`), in bytes. Segment's are ~36.
pub const MAX_ID_BYTES: usize = 256;
/// Account ids (`account_id`, `groupId`), in bytes.
pub const MAX_ACCOUNT_ID_BYTES: usize = 256;
/// Event names, in bytes.
pub const MAX_EVENT_NAME_BYTES: usize = 256;
/// User ids (`user_id`, `userId`, `anonymousId`), in bytes.
pub const MAX_USER_ID_BYTES: usize = 256;
/// The properties of one event as JSON, in bytes: Segment's own limit for a call is 32 KB.
pub const MAX_PROPERTIES_BYTES: usize = 32 * 1024;
/// How deep properties may nest. DynamoDB allows 32 levels in an item; a
/// parked event puts its properties three levels down, and this leaves room.
pub const MAX_PROPERTIES_DEPTH: usize = 16;
pub use crate::numbers::{MIN_NUMBER_MAGNITUDE, NUMBER_MAGNITUDE_LIMIT};
/// A text trait of an account (name, goal, contact names), in bytes.
pub const MAX_TRAIT_BYTES: usize = 1024;
/// Events (and Segment calls) in one request: enough for Segment's 500 KB
/// batches of typical events, and few enough to be applied well inside the
/// function's timeout on DynamoDB (the arithmetic is in docs/capacity.md).
pub const MAX_EVENTS_PER_REQUEST: usize = 500;
/// Events kept for one account Milepost does not know yet; past this, its
/// events are rejected until its `group` call arrives (and `ParkedCapReached`
/// is counted), so a stream of events for a never-created account cannot
/// grow without bound. Parked events expire after 30 days anyway.
pub const MAX_PARKED_PER_ACCOUNT: usize = 10_000;
/// How many rejected items an answer lists; the rest are only counted.
pub const MAX_REJECTIONS_LISTED: usize = 100;

/// How far ahead of the receiving clock an event may be dated, and which
/// contract dates are plausible. Set in `Config`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeLimits {
    /// Events dated further ahead than this are rejected (clock skew allowance).
    pub max_future_skew: Duration,
    /// Contract and renewal dates before this are rejected.
    pub earliest_contract_date: NaiveDate,
    /// Contract and renewal dates more than this far after today are rejected.
    pub max_contract_years_ahead: i32,
}

impl Default for TimeLimits {
    fn default() -> Self {
        TimeLimits {
            max_future_skew: Duration::days(1),
            earliest_contract_date: NaiveDate::from_ymd_opt(1990, 1, 1).expect("a valid date"),
            max_contract_years_ahead: 2,
        }
    }
}

impl TimeLimits {
    /// Rejects an event dated more than the allowed skew after `now`.
    pub fn check_event_time(&self, at: Timestamp, now: Timestamp) -> Result<(), FieldError> {
        if at > now + self.max_future_skew {
            return Err(FieldError::new(
                "timestamp",
                format!(
                    "is more than {} hours in the future ({}); send the time the event happened",
                    self.max_future_skew.num_hours(),
                    at.to_rfc3339()
                ),
            ));
        }
        Ok(())
    }

    /// Rejects a contract or renewal date outside [earliest, today + years ahead].
    pub fn check_contract_date(&self, field: &str, date: NaiveDate, today: NaiveDate) -> Result<(), FieldError> {
        let latest = today
            .checked_add_months(chrono::Months::new(12 * self.max_contract_years_ahead.max(0) as u32))
            .unwrap_or(today);
        if date < self.earliest_contract_date || date > latest {
            return Err(FieldError::new(
                field,
                format!(
                    "{date} is outside the plausible range {} to {latest}",
                    self.earliest_contract_date
                ),
            ));
        }
        Ok(())
    }
}

/// Rejects `value` when it is longer than `max` bytes, naming `field`.
pub fn check_length(field: &str, value: &str, max: usize) -> Result<(), FieldError> {
    if value.len() > max {
        return Err(FieldError::new(
            field,
            format!("is {} bytes; the limit is {max}", value.len()),
        ));
    }
    Ok(())
}

/// DynamoDB's largest item.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// The size DynamoDB counts for an item whose attributes are the fields of
/// `item` (as `serde_dynamo` stores a value serialised to JSON): attribute
/// names plus values, strings by their UTF-8 bytes, numbers by about one byte
/// per two digits, and 3 bytes plus 1 per element for maps and lists
/// (DynamoDB's published sizing rules). For budgets and `make bench`.
pub fn item_size(item: &Value) -> usize {
    match item {
        Value::Object(map) => map.iter().map(|(k, v)| k.len() + value_size(v)).sum(),
        other => value_size(other),
    }
}

/// What the DynamoDB store's keys and index attributes add to an item (pk,
/// sk, version, the due or owner index keys): an allowance, not a count.
pub const ITEM_KEYS_ALLOWANCE: usize = 200;

/// The stored size of `value` as the DynamoDB store keeps it: under `item`,
/// beside its keys (`ITEM_KEYS_ALLOWANCE`).
pub fn stored_size<T: serde::Serialize>(value: &T) -> usize {
    let data = serde_json::to_value(value).unwrap_or(Value::Null);
    item_size(&serde_json::json!({ "item": data })) + ITEM_KEYS_ALLOWANCE
}

fn value_size(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) => 1,
        Value::String(s) => s.len(),
        Value::Number(n) => {
            let digits = n.to_string().chars().filter(char::is_ascii_digit).count();
            digits.div_ceil(2) + 1
        }
        Value::Array(items) => 3 + items.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        Value::Object(map) => 3 + map.iter().map(|(k, v)| 1 + k.len() + value_size(v)).sum::<usize>(),
    }
}

/// The largest ARR (or ARR after a renewal) an account may have, in whole
/// currency units: 10^15, room for the largest contract in any currency.
/// Past it a value is a mistake, refused where it comes in; totals of many
/// accounts saturate rather than overflow.
pub const MAX_ARR: u64 = 1_000_000_000_000_000;
/// The most licensed seats an account may have.
pub const MAX_SEATS: u64 = 10_000_000;
/// The latest contract year an account may be in.
pub const MAX_TENURE_YEAR: u64 = 100;

/// The longest name of a person Milepost keeps (a confirmer, a contact).
pub const MAX_NAME_BYTES: usize = 200;

/// A person's name as given, checked: at most `MAX_NAME_BYTES`, one line
/// with no control characters (a CR/LF would forge a line wherever it is
/// printed) and no angle brackets (a name, not markup). Outer blanks trimmed.
pub fn check_person_name(field: &str, value: &str) -> Result<String, FieldError> {
    let name = value.trim();
    check_length(field, name, MAX_NAME_BYTES)?;
    if name.chars().any(char::is_control) {
        return Err(FieldError::new(field, "must be one line, without control characters"));
    }
    if name.contains(['<', '>']) {
        return Err(FieldError::new(field, "is a name: angle brackets are not allowed"));
    }
    Ok(name.to_string())
}

/// Checks a text trait's length.
pub fn check_trait_text(field: &str, value: &str) -> Result<(), FieldError> {
    check_length(field, value, MAX_TRAIT_BYTES)
}

/// Checks that an event fits what the store can hold: key and name lengths,
/// and properties DynamoDB can store (size, depth, numbers, no empty keys).
pub fn check_storable(event: &ProductEvent, id_field: &str, account_field: &str) -> Result<(), FieldError> {
    check_length(id_field, &event.id, MAX_ID_BYTES)?;
    check_length(account_field, event.account_id.as_str(), MAX_ACCOUNT_ID_BYTES)?;
    check_length("event", &event.event, MAX_EVENT_NAME_BYTES)?;
    if let Some(user) = &event.user_id {
        check_length("user_id", user, MAX_USER_ID_BYTES)?;
    }
    check_properties(&event.properties)
}

/// One step down into the properties, kept so a problem's path can be named
/// without building a path string for every property of every event.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

fn path_of(steps: &[Step<'_>]) -> String {
    let mut path = String::from("properties");
    for step in steps {
        match step {
            Step::Key(k) => {
                path.push('.');
                path.push_str(k);
            }
            Step::Index(i) => path.push_str(&format!("[{i}]")),
        }
    }
    path
}

/// One pass over the properties: every value is checked and their size added
/// up as DynamoDB counts it (`value_size`), so nothing is serialised.
fn check_properties(properties: &Map<String, Value>) -> Result<(), FieldError> {
    let size = check_map(properties, &mut Vec::new())?;
    if size > MAX_PROPERTIES_BYTES {
        return Err(FieldError::new(
            "properties",
            format!("are {size} bytes as stored; the limit is {MAX_PROPERTIES_BYTES}"),
        ));
    }
    Ok(())
}

fn check_map<'a>(map: &'a Map<String, Value>, steps: &mut Vec<Step<'a>>) -> Result<usize, FieldError> {
    let mut size = 3;
    for (key, value) in map {
        steps.push(Step::Key(key));
        if key.is_empty() {
            return Err(FieldError::new(
                &path_of(steps),
                "an empty property name cannot be stored",
            ));
        }
        size += 1 + key.len() + check_value(value, steps)?;
        steps.pop();
    }
    Ok(size)
}

/// Checks the value at `steps` and returns its stored size.
fn check_value<'a>(value: &'a Value, steps: &mut Vec<Step<'a>>) -> Result<usize, FieldError> {
    if steps.len() > MAX_PROPERTIES_DEPTH {
        return Err(FieldError::new(
            &path_of(steps),
            format!("nests deeper than {MAX_PROPERTIES_DEPTH} levels"),
        ));
    }
    match value {
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(f64::INFINITY).abs();
            if !x.is_finite() || x >= NUMBER_MAGNITUDE_LIMIT || (x != 0.0 && x < MIN_NUMBER_MAGNITUDE) {
                return Err(FieldError::new(
                    &path_of(steps),
                    format!("{n} is outside the range of storable numbers (1e-130 to 9.99e125 in magnitude)"),
                ));
            }
            Ok(value_size(value))
        }
        Value::Array(items) => {
            let mut size = 3;
            for (i, item) in items.iter().enumerate() {
                steps.push(Step::Index(i));
                size += 1 + check_value(item, steps)?;
                steps.pop();
            }
            Ok(size)
        }
        Value::Object(map) => check_map(map, steps),
        Value::Null | Value::Bool(_) | Value::String(_) => Ok(value_size(value)),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    use super::*;
    use crate::AccountId;

    fn event(properties: Value) -> ProductEvent {
        ProductEvent {
            id: "e1".into(),
            account_id: AccountId::new("acme"),
            event: "x".into(),
            timestamp: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            user_id: None,
            properties: properties.as_object().cloned().unwrap_or_default(),
        }
    }

    fn field_of(e: &ProductEvent) -> Option<String> {
        check_storable(e, "id", "account_id").err().map(|e| e.field)
    }

    #[test]
    fn what_dynamodb_cannot_store_is_named_by_field() {
        assert_eq!(field_of(&event(json!({"n": 1e125, "small": 1e-120, "zero": 0}))), None);
        assert_eq!(field_of(&event(json!({"n": 1e200}))).as_deref(), Some("properties.n"));
        assert_eq!(
            field_of(&event(json!({"a": {"b": [1, 1e-200]}}))).as_deref(),
            Some("properties.a.b[1]")
        );
        assert_eq!(field_of(&event(json!({"": 1}))).as_deref(), Some("properties."));
        let mut deep = json!(1);
        for _ in 0..50 {
            deep = json!({ "d": deep });
        }
        assert!(field_of(&event(json!({ "root": deep })))
            .unwrap()
            .starts_with("properties.root.d"));
        let big = "x".repeat(MAX_PROPERTIES_BYTES);
        assert_eq!(field_of(&event(json!({ "big": big }))).as_deref(), Some("properties"));
        let mut long_id = event(json!({}));
        long_id.id = "i".repeat(3000);
        assert_eq!(field_of(&long_id).as_deref(), Some("id"));
        let mut long_account = event(json!({}));
        long_account.account_id = AccountId::new("a".repeat(3000));
        assert_eq!(field_of(&long_account).as_deref(), Some("account_id"));
        let mut long_name = event(json!({}));
        long_name.event = "n".repeat(450_000);
        assert_eq!(field_of(&long_name).as_deref(), Some("event"));
    }

    #[test]
    fn item_sizes_follow_dynamodbs_rules() {
        // "pk" + 7 bytes, "n" + 2 digits → 2 bytes, a map of one 1-byte name and a 3-byte string.
        let item = json!({"pk": "ACCOUNT", "n": 42, "m": {"a": "xyz"}});
        assert_eq!(item_size(&item), (2 + 7) + (1 + 2) + (1 + 3 + (1 + 1 + 3)));
        assert_eq!(item_size(&json!({"l": [true, null]})), 1 + 3 + 2 + 2);
    }

    #[test]
    fn events_too_far_ahead_and_implausible_contract_dates_are_refused() {
        let limits = TimeLimits::default();
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
        assert!(limits.check_event_time(now + Duration::hours(23), now).is_ok());
        assert!(limits.check_event_time(now - Duration::days(3650), now).is_ok());
        let far = Utc.with_ymd_and_hms(9999, 12, 31, 0, 0, 0).unwrap();
        assert_eq!(limits.check_event_time(far, now).unwrap_err().field, "timestamp");
        let today = now.date_naive();
        let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert!(limits.check_contract_date("c", date(1990, 1, 1), today).is_ok());
        assert!(limits.check_contract_date("c", date(2028, 11, 25), today).is_ok());
        assert!(limits.check_contract_date("c", date(1989, 12, 31), today).is_err());
        assert!(limits.check_contract_date("c", date(2028, 11, 26), today).is_err());
        assert!(limits.check_contract_date("c", NaiveDate::MIN, today).is_err());
    }
}
