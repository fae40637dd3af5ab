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
    let traits = Traits(t);
    for name in ["admin_name", "csm_name", "exec_sponsor_name"] {
        traits.person(name)?;
    }
    let segment = traits.segment()?;
    let timezone = traits.timezone()?;
    let cs_leader_email = traits.address("cs_leader_email")?;
    let contacts = traits.role_contacts()?;
    let renewal = traits.renewal()?;
    let success_plan = success_plan::of_traits(t)?;
    Ok(AccountTraits {
        renewal,
        success_plan,
        contacts,
        name: traits.words("name")?,
        segment,
        licensed_seats: traits
            .whole(&["seats", "licensed_seats"], limits::MAX_SEATS)?
            .map(|n| n as u32),
        arr: traits.whole(&["arr"], limits::MAX_ARR)?,
        contract_start: traits.date("contract_start")?,
        renewal_date: traits.date("renewal_date")?,
        tenure_year: traits
            .whole(&["tenure_year"], limits::MAX_TENURE_YEAR)?
            .map(|n| n.max(1) as u32),
        primary_contact: match traits.contact("admin_email", "admin_name")? {
            Some(c) => Some(c),
            None => traits.contact("email", "admin_name")?,
        },
        csm: traits.contact("csm_email", "csm_name")?,
        cs_leader_email,
        exec_sponsor: traits.contact("exec_sponsor_email", "exec_sponsor_name")?,
        timezone,
        goal: traits.words("goal")?,
        domain: traits.web_domain()?,
        hubspot_company_id: traits
            .text("hubspot_company_id")
            .map(|id| {
                milepost_domain::crm::hubspot_id(&id)
                    .ok_or_else(|| err(&field("hubspot_company_id"), "must be a HubSpot record id (digits)"))
            })
            .transpose()?,
    })
}

/// A `group` call's traits, read field by field; each error names its field.
struct Traits<'a>(&'a Map<String, Value>);

fn field(name: &str) -> String {
    format!("traits.{name}")
}

impl Traits<'_> {
    fn text(&self, name: &str) -> Option<String> {
        text(self.0, name)
    }

    /// The first of `names` present, as a number (a JSON number or a numeric string).
    fn number(&self, names: &[&str]) -> Result<Option<f64>, FieldError> {
        for name in names {
            match self.0.get(*name) {
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
    }

    /// A count or an amount, up to its documented maximum (`limits`).
    fn whole(&self, names: &[&str], max: u64) -> Result<Option<u64>, FieldError> {
        match self.number(names)? {
            Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= max as f64 => Ok(Some(n as u64)),
            Some(n) if n >= 0.0 && n.fract() == 0.0 => Err(err(&field(names[0]), format!("must be at most {max}"))),
            Some(_) => Err(err(&field(names[0]), "must be a whole number, not negative")),
            None => Ok(None),
        }
    }

    /// `domain`, or Segment's own `website`, as a host name.
    fn web_domain(&self) -> Result<Option<String>, FieldError> {
        let Some((name, value)) = ["domain", "website"]
            .into_iter()
            .find_map(|name| self.text(name).map(|v| (name, v)))
        else {
            return Ok(None);
        };
        milepost_domain::crm::web_domain(&value)
            .map(Some)
            .ok_or_else(|| err(&field(name), "must be a domain (acme.example) or a website address"))
    }

    fn date(&self, name: &str) -> Result<Option<NaiveDate>, FieldError> {
        let Some(s) = self.text(name) else { return Ok(None) };
        NaiveDate::parse_from_str(&s, "%Y-%m-%d")
            .or_else(|_| DateTime::parse_from_rfc3339(&s).map(|d| d.date_naive()))
            .map(Some)
            .map_err(|_| err(&field(name), "must be a date (YYYY-MM-DD)"))
    }

    fn address(&self, name: &str) -> Result<Option<EmailAddress>, FieldError> {
        self.text(name)
            .map(|e| EmailAddress::parse(&e).map_err(|why| err(&field(name), why.to_string())))
            .transpose()
    }

    fn words(&self, name: &str) -> Result<Option<String>, FieldError> {
        let value = self.text(name);
        if let Some(v) = &value {
            limits::check_trait_text(&field(name), v)?;
        }
        Ok(value)
    }

    /// A person's name: one plain line (it is printed in the CLI, pages and emails).
    fn person(&self, name: &str) -> Result<Option<String>, FieldError> {
        self.text(name)
            .map(|v| limits::check_person_name(&field(name), &v))
            .transpose()
    }

    fn contact(&self, email: &str, name: &str) -> Result<Option<Contact>, FieldError> {
        let name = self.person(name)?;
        Ok(self.address(email)?.map(|e| Contact::new(name.unwrap_or_default(), e)))
    }

    /// `segment`, or Segment's own `plan`.
    fn segment(&self) -> Result<Option<Segment>, FieldError> {
        let Some(s) = self.text("segment").or_else(|| self.text("plan")) else {
            return Ok(None);
        };
        parse_segment(&s).map(Some).ok_or_else(|| {
            let which = if self.0.contains_key("segment") {
                "segment"
            } else {
                "plan"
            };
            err(
                &field(which),
                format!("unknown segment `{s}` (expected enterprise, mid_market or smb)"),
            )
        })
    }

    fn timezone(&self) -> Result<Option<chrono_tz::Tz>, FieldError> {
        self.text("timezone")
            .map(|tz| {
                tz.parse::<chrono_tz::Tz>()
                    .map_err(|_| err(&field("timezone"), "must be an IANA timezone such as Europe/Berlin"))
            })
            .transpose()
    }

    /// Any other `<role>_email` names the vendor's contact for that role.
    fn role_contacts(&self) -> Result<std::collections::BTreeMap<String, Contact>, FieldError> {
        let mut contacts = std::collections::BTreeMap::new();
        for key in self.0.keys() {
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
            if let Some(c) = self.contact(key, &format!("{role}_name"))? {
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
        Ok(contacts)
    }

    /// A renewal decision: `renewal_outcome` with its `decision_date`.
    fn renewal(&self) -> Result<Option<RenewalOutcome>, FieldError> {
        let Some(outcome) = self.text("renewal_outcome") else {
            return Ok(None);
        };
        let outcome = RenewalDecision::parse(&outcome).ok_or_else(|| {
            err(
                &field("renewal_outcome"),
                format!("unknown outcome `{outcome}` (expected {})", RenewalDecision::expected()),
            )
        })?;
        let decision_date = self
            .date("decision_date")?
            .ok_or_else(|| err(&field("decision_date"), "is required with renewal_outcome"))?;
        Ok(Some(RenewalOutcome {
            decision_date,
            outcome,
            arr_after: self.whole(&["arr_after"], limits::MAX_ARR)?,
        }))
    }
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

mod success_plan;
#[cfg(test)]
mod tests;
