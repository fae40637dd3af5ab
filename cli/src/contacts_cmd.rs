//! `milepost contacts suppressed|unsuppress`: who unsubscribed from customer
//! email, and lifting one when the contact asks to hear from us again.

use chrono::{DateTime, Utc};
use milepost_app::email::fmt_date;
use milepost_app::ports::ContactStore;
use milepost_domain::{EmailAddress, Suppression};
use serde::Serialize;

use crate::tasks_cmd::CommandError;

/// One suppressed address as `contacts suppressed --json` prints it.
#[derive(Debug, Serialize)]
pub struct SuppressedRow {
    pub email: String,
    pub since: DateTime<Utc>,
    pub source: String,
    pub account_id: String,
}

impl From<&Suppression> for SuppressedRow {
    fn from(s: &Suppression) -> Self {
        SuppressedRow {
            email: s.email.to_string(),
            since: s.at,
            source: s.source.label().to_string(),
            account_id: s.account_id.to_string(),
        }
    }
}

pub async fn suppressed(store: &dyn ContactStore) -> anyhow::Result<Vec<Suppression>> {
    Ok(store.suppressions().await?)
}

pub fn render(list: &[Suppression]) -> String {
    if list.is_empty() {
        return "no suppressed addresses\n".to_string();
    }
    let width = list.iter().map(|s| s.email.as_str().len()).max().unwrap_or(5).max(5);
    let mut out = format!("{:width$}  {:11}  {:22}  ACCOUNT\n", "EMAIL", "SINCE", "HOW");
    for s in list {
        out.push_str(&format!(
            "{:width$}  {:11}  {:22}  {}\n",
            s.email.as_str(),
            fmt_date(s.at),
            s.source.label(),
            s.account_id
        ));
    }
    out
}

/// Lifts the suppression of `email`; refused when there is none.
pub async fn unsuppress(store: &dyn ContactStore, email: &str) -> Result<String, CommandError> {
    let email = EmailAddress::parse(email).map_err(|e| CommandError::Refused(format!("{email:?}: {e}")))?;
    if store.unsuppress(&email).await.map_err(anyhow::Error::from)? {
        Ok(format!("{email} will receive customer email again"))
    } else {
        Err(CommandError::Refused(format!(
            "{email} is not suppressed; nothing changed"
        )))
    }
}
