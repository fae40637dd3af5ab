//! `POST /v1/milestones/confirm`: a manual milestone confirmed by a CRM
//! workflow (a Salesforce flow when the EBR is logged, ...), signed with
//! Standard Webhooks (its timestamp bounds a replay to five minutes).
//! Body: `{"account_id", "milestone_id", "by"` (the confirmer's address)`,
//! "by_name"?, "note"?, "at"?` (RFC 3339, default now)`}`. Every field is
//! checked before anything is read or written: ids as long as ingestion
//! allows, a name of one plain line, a note as a task's, `at` between the
//! contract's start and now (with the usual clock skew).

use milepost_app::ingest::{Confirmed, IngestError, Ingestion};
use milepost_domain::csm_task::clean_note;
use milepost_domain::{limits, AccountId, Actor, EmailAddress};
use serde::{Deserialize, Serialize};

use crate::problem::Problem;

#[derive(Deserialize)]
struct ConfirmRequest {
    account_id: Option<String>,
    milestone_id: Option<String>,
    by: Option<String>,
    #[serde(default)]
    by_name: Option<String>,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    at: Option<String>,
}

/// The answer: `confirmed` now, or `already_reached`, and the milestone's status.
#[derive(Serialize)]
pub struct Confirmation {
    pub status: &'static str,
    pub account_id: String,
    pub milestone_id: String,
    pub milestone_status: String,
    pub reached_at: String,
}

fn required(value: Option<String>, field: &str, max: usize) -> Result<String, Problem> {
    let value = value
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| Problem::invalid(field, format!("{field} is required")))?;
    limits::check_length(field, &value, max).map_err(|e| Problem::invalid(field, e.message))?;
    if value.chars().any(char::is_control) {
        return Err(Problem::invalid(field, "must not hold control characters"));
    }
    Ok(value)
}

pub async fn confirm(ingestion: &Ingestion, body: &[u8]) -> Result<Confirmation, Problem> {
    let req: ConfirmRequest = serde_json::from_slice(body).map_err(|e| Problem::malformed(&e.to_string()))?;
    let account_id = AccountId::new(required(req.account_id, "account_id", limits::MAX_ACCOUNT_ID_BYTES)?);
    let milestone_id = required(req.milestone_id, "milestone_id", limits::MAX_ID_BYTES)?;
    let by = EmailAddress::parse(&required(req.by, "by", limits::MAX_ID_BYTES)?)
        .map_err(|e| Problem::invalid("by", e.to_string()))?;
    let by_name = match req.by_name.as_deref() {
        None => String::new(),
        Some(name) => limits::check_person_name("by_name", name).map_err(|e| Problem::invalid("by_name", e.message))?,
    };
    let note = req
        .note
        .as_deref()
        .map(clean_note)
        .transpose()
        .map_err(|e| Problem::invalid("note", e.message))?
        .flatten();
    let now = ingestion.clock.now();
    let at = match req.at {
        None => now,
        Some(text) => chrono::DateTime::parse_from_rfc3339(&text)
            .map_err(|e| Problem::invalid("at", format!("must be an RFC 3339 date-time ({e})")))?
            .to_utc(),
    };
    if at > now + ingestion.config.time_limits.max_future_skew {
        return Err(Problem::invalid("at", "is in the future: send when it was confirmed"));
    }
    let by = Actor::Person {
        name: by_name,
        email: by.to_string(),
    };
    let outcome = ingestion
        .confirm_manual(&account_id, &milestone_id, &by, note.as_deref(), at)
        .await
        .map_err(|e| match e {
            IngestError::Unknown { field, message } => Problem::unknown(field, &message),
            IngestError::NotManual(why) => Problem::not_manual(&why),
            IngestError::Refused(e) => Problem::invalid(&e.field, e.message),
            other => {
                tracing::error!(error = %milepost_app::ErrorChain(&other), "confirming a manual milestone failed; the caller will retry");
                Problem::unavailable()
            }
        })?;
    let (status, milestone_status, reached_at) = match outcome {
        Confirmed::Now { status } => ("confirmed", status, at),
        Confirmed::Already { status, at } => ("already_reached", status, at),
    };
    Ok(Confirmation {
        status,
        account_id: account_id.to_string(),
        milestone_id,
        milestone_status: milestone_status.to_string(),
        reached_at: reached_at.to_rfc3339(),
    })
}
