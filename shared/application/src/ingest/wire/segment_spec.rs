//! Segment Spec payloads: `track`, `identify` and `group` calls, one at a time
//! or as a batch (`{"batch": [...]}`), as Segment's webhook destination and
//! RudderStack send them.
//!
//! - `track`: a product event of the account in `context.groupId`; `messageId`
//!   is the dedupe key, `timestamp` (when it happened) the event time.
//! - `identify`: a user seen, recorded as an `identify` event of the account in
//!   `context.groupId`.
//! - `group`: creates or updates the account `groupId` from its traits.

use chrono::{DateTime, NaiveDate};
use serde_json::{Map, Value};

use milepost_domain::{
    limits, AccountId, AccountTraits, Contact, EmailAddress, FieldError, ProductEvent, RenewalDecision, RenewalOutcome,
    Segment, Timestamp,
};

use super::Incoming;

#[derive(Clone, Debug, PartialEq)]
pub struct GroupCall {
    pub message_id: String,
    pub account_id: AccountId,
    pub timestamp: Timestamp,
    pub traits: AccountTraits,
}

const CALL_TYPES: [&str; 3] = ["track", "identify", "group"];

/// Whether a JSON body is in Segment's shape rather than Milepost's own.
pub fn looks_like_segment(value: &Value) -> bool {
    match value {
        Value::Object(obj) => {
            obj.get("batch").is_some_and(Value::is_array) || obj.get("type").is_some_and(Value::is_string)
        }
        Value::Array(items) => items.first().and_then(|i| i.get("type")).is_some_and(Value::is_string),
        _ => false,
    }
}

/// Splits a Segment body into its calls, each validated on its own.
pub fn parse_calls(value: Value) -> Vec<Result<Incoming, FieldError>> {
    let items = match value {
        Value::Object(mut obj) if obj.contains_key("batch") => match obj.remove("batch") {
            Some(Value::Array(items)) => items,
            _ => return vec![Err(err("batch", "must be an array of calls"))],
        },
        Value::Array(items) => items,
        single => vec![single],
    };
    items.into_iter().map(parse_call).collect()
}

fn err(field: &str, message: impl Into<String>) -> FieldError {
    FieldError::new(field, message)
}

fn text(obj: &Map<String, Value>, field: &str) -> Option<String> {
    match obj.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

fn required(obj: &Map<String, Value>, field: &str) -> Result<String, FieldError> {
    text(obj, field).ok_or_else(|| err(field, "is required"))
}

pub(super) fn parse_call(value: Value) -> Result<Incoming, FieldError> {
    let Value::Object(obj) = value else {
        return Err(err("(call)", "must be a JSON object"));
    };
    let kind = required(&obj, "type")?;
    if !CALL_TYPES.contains(&kind.as_str()) {
        return Err(err(
            "type",
            format!("`{kind}` calls are not used (expected track, identify or group)"),
        ));
    }
    let message_id = required(&obj, "messageId")?;
    let timestamp_text = required(&obj, "timestamp")?;
    let timestamp = DateTime::parse_from_rfc3339(&timestamp_text)
        .map_err(|e| err("timestamp", format!("must be an ISO 8601 date-time ({e})")))?
        .to_utc();
    let user_id = text(&obj, "userId").or_else(|| text(&obj, "anonymousId"));
    let group_in_context = obj
        .get("context")
        .and_then(Value::as_object)
        .and_then(|c| text(c, "groupId"));
    match kind.as_str() {
        "group" => {
            let account_id = required(&obj, "groupId")?;
            limits::check_length("groupId", &account_id, limits::MAX_ACCOUNT_ID_BYTES)?;
            limits::check_length("messageId", &message_id, limits::MAX_ID_BYTES)?;
            let traits = match obj.get("traits") {
                None | Some(Value::Null) => AccountTraits::default(),
                Some(Value::Object(t)) => parse_traits(t)?,
                Some(_) => return Err(err("traits", "must be an object")),
            };
            Ok(Incoming::Account(Box::new(GroupCall {
                message_id,
                account_id: AccountId(account_id),
                timestamp,
                traits,
            })))
        }
        _ => {
            let account_id = group_in_context.ok_or_else(|| {
                err(
                    "context.groupId",
                    format!("is required on {kind} calls: it names the account"),
                )
            })?;
            let (event, properties) = if kind == "track" {
                let event = required(&obj, "event")?;
                let properties = match obj.get("properties") {
                    None | Some(Value::Null) => Map::new(),
                    Some(Value::Object(p)) => p.clone(),
                    Some(_) => return Err(err("properties", "must be an object")),
                };
                (event, properties)
            } else {
                ("identify".to_string(), Map::new())
            };
            let event = ProductEvent {
                id: message_id,
                account_id: AccountId(account_id),
                event,
                timestamp,
                user_id,
                properties,
            };
            limits::check_storable(&event, "messageId", "context.groupId")?;
            Ok(Incoming::Event(event))
        }
    }
}

fn parse_traits(t: &Map<String, Value>) -> Result<AccountTraits, FieldError> {
    let field = |name: &str| format!("traits.{name}");
    let number = |names: &[&str]| -> Result<Option<f64>, FieldError> {
        for name in names {
            match t.get(*name) {
                None | Some(Value::Null) => continue,
                Some(Value::Number(n)) => return Ok(n.as_f64()),
                Some(Value::String(s)) => {
                    return s
                        .trim()
                        .parse::<f64>()
                        .map(Some)
                        .map_err(|_| err(&field(name), "must be a number"))
                }
                Some(_) => return Err(err(&field(name), "must be a number")),
            }
        }
        Ok(None)
    };
    // A count or an amount, up to its documented maximum (`limits`).
    let whole = |names: &[&str], max: u64| -> Result<Option<u64>, FieldError> {
        match number(names)? {
            Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= max as f64 => Ok(Some(n as u64)),
            Some(n) if n >= 0.0 && n.fract() == 0.0 => Err(err(&field(names[0]), format!("must be at most {max}"))),
            Some(_) => Err(err(&field(names[0]), "must be a whole number, not negative")),
            None => Ok(None),
        }
    };
    let date = |name: &str| -> Result<Option<NaiveDate>, FieldError> {
        let Some(s) = text(t, name) else { return Ok(None) };
        NaiveDate::parse_from_str(&s, "%Y-%m-%d")
            .or_else(|_| DateTime::parse_from_rfc3339(&s).map(|d| d.date_naive()))
            .map(Some)
            .map_err(|_| err(&field(name), "must be a date (YYYY-MM-DD)"))
    };
    let address = |name: &str| -> Result<Option<EmailAddress>, FieldError> {
        text(t, name)
            .map(|e| EmailAddress::parse(&e).map_err(|why| err(&field(name), why.to_string())))
            .transpose()
    };
    let words = |name: &str| -> Result<Option<String>, FieldError> {
        let value = text(t, name);
        if let Some(v) = &value {
            limits::check_trait_text(&field(name), v)?;
        }
        Ok(value)
    };
    // A person's name: one plain line (it is printed in the CLI, pages and emails).
    let person = |name: &str| -> Result<Option<String>, FieldError> {
        text(t, name)
            .map(|v| limits::check_person_name(&field(name), &v))
            .transpose()
    };
    let contact = |email: &str, name: &str| -> Result<Option<Contact>, FieldError> {
        let name = person(name)?;
        Ok(address(email)?.map(|e| Contact::new(name.unwrap_or_default(), e)))
    };
    for name in ["admin_name", "csm_name", "exec_sponsor_name"] {
        person(name)?;
    }
    let segment = match text(t, "segment").or_else(|| text(t, "plan")) {
        None => None,
        Some(s) => Some(parse_segment(&s).ok_or_else(|| {
            let which = if t.contains_key("segment") { "segment" } else { "plan" };
            err(
                &field(which),
                format!("unknown segment `{s}` (expected enterprise, mid_market or smb)"),
            )
        })?),
    };
    let timezone = match text(t, "timezone") {
        None => None,
        Some(tz) => Some(
            tz.parse::<chrono_tz::Tz>()
                .map_err(|_| err(&field("timezone"), "must be an IANA timezone such as Europe/Berlin"))?,
        ),
    };
    let cs_leader_email = address("cs_leader_email")?;
    // Any other `<role>_email` names the vendor's contact for that role.
    let mut contacts = std::collections::BTreeMap::new();
    for key in t.keys() {
        let Some(role) = key.strip_suffix("_email") else {
            continue;
        };
        if RESERVED_ROLES.contains(&role) {
            continue;
        }
        if !milepost_domain::is_role_name(role) {
            return Err(err(
                &field(key),
                "names a role: `<role>_email` with the role a lowercase identifier (onboarding_email, account_executive_email)",
            ));
        }
        if let Some(c) = contact(key, &format!("{role}_name"))? {
            contacts.insert(role.to_string(), c);
        }
    }
    if contacts.len() > milepost_domain::account_traits::MAX_ROLES {
        return Err(err(
            "traits",
            format!(
                "name at most {} roles (`<role>_email`)",
                milepost_domain::account_traits::MAX_ROLES
            ),
        ));
    }
    let renewal = match text(t, "renewal_outcome") {
        None => None,
        Some(outcome) => {
            let outcome = RenewalDecision::parse(&outcome).ok_or_else(|| {
                err(
                    &field("renewal_outcome"),
                    format!("unknown outcome `{outcome}` (expected {})", RenewalDecision::expected()),
                )
            })?;
            let decision_date = date("decision_date")?
                .ok_or_else(|| err(&field("decision_date"), "is required with renewal_outcome"))?;
            Some(RenewalOutcome {
                decision_date,
                outcome,
                arr_after: whole(&["arr_after"], limits::MAX_ARR)?,
            })
        }
    };
    Ok(AccountTraits {
        renewal,
        contacts,
        name: words("name")?,
        segment,
        licensed_seats: whole(&["seats", "licensed_seats"], limits::MAX_SEATS)?.map(|n| n as u32),
        arr: whole(&["arr"], limits::MAX_ARR)?,
        contract_start: date("contract_start")?,
        renewal_date: date("renewal_date")?,
        tenure_year: whole(&["tenure_year"], limits::MAX_TENURE_YEAR)?.map(|n| n.max(1) as u32),
        primary_contact: match contact("admin_email", "admin_name")? {
            Some(c) => Some(c),
            None => contact("email", "admin_name")?,
        },
        csm: contact("csm_email", "csm_name")?,
        cs_leader_email,
        exec_sponsor: contact("exec_sponsor_email", "exec_sponsor_name")?,
        timezone,
        goal: words("goal")?,
    })
}

/// `<x>_email` traits that are not a role's contact: the customer's own
/// people, the CSM (its own field) and the CS leader.
const RESERVED_ROLES: [&str; 4] = ["admin", "csm", "cs_leader", "exec_sponsor"];

/// Accepts the usual spellings of the segment names.
fn parse_segment(s: &str) -> Option<Segment> {
    let normal: String = s
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    match normal.as_str() {
        "enterprise" | "ent" => Some(Segment::Enterprise),
        "midmarket" | "mm" | "mid" => Some(Segment::MidMarket),
        "smb" | "smallbusiness" | "small" => Some(Segment::Smb),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
