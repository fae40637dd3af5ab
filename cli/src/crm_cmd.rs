//! `milepost crm`: what could not reach HubSpot — accounts whose company
//! was not found, changes given up — and sending them again.

use milepost_app::ports::CrmList;
use milepost_domain::crm::{CrmSync, Mirrored, SyncState};
use milepost_domain::Timestamp;
use serde::Serialize;

/// The most records one listing shows.
pub const LISTED: usize = 1000;

/// One record as `crm unmatched --json` and `crm dead --json` print it.
#[derive(Debug, Serialize)]
pub struct CrmRow {
    pub account_id: String,
    /// `company`, or `task:<id>`.
    pub record: String,
    pub hubspot_id: Option<String>,
    pub why: String,
    /// When it was given up (dead records).
    pub at: Option<Timestamp>,
    pub failures: u32,
}

pub fn rows(records: &[CrmSync]) -> Vec<CrmRow> {
    records
        .iter()
        .map(|r| {
            let (why, at) = match &r.state {
                SyncState::Unmatched { why } => (why.clone(), None),
                SyncState::Dead { at, why } => (why.clone(), Some(*at)),
                SyncState::Due { .. } | SyncState::Synced => (String::new(), None),
            };
            CrmRow {
                account_id: r.account_id.to_string(),
                record: r.mirrored.key(),
                hubspot_id: r.crm_id.clone(),
                why,
                at,
                failures: r.failures,
            }
        })
        .collect()
}

pub fn render(list: CrmList, records: &[CrmSync]) -> String {
    if records.is_empty() {
        return match list {
            CrmList::Unmatched => "every account that had an event has its HubSpot company\n".into(),
            CrmList::Dead => "no change to HubSpot was given up\n".into(),
        };
    }
    let mut out = String::new();
    for row in rows(records) {
        let what = match row.record.as_str() {
            "company" => "company".to_string(),
            task => format!("task {}", task.trim_start_matches("task:")),
        };
        let when = row
            .at
            .map(|t| format!(" ({})", t.format("%Y-%m-%d %H:%M UTC")))
            .unwrap_or_default();
        out.push_str(&format!("{}  {what}{when}\n  {}\n", row.account_id, row.why));
    }
    let companies = records.iter().filter(|r| r.mirrored == Mirrored::Company).count();
    let count = |n: usize, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
    out.push_str(&format!(
        "{}, {}. Fix the account's hubspot_company_id or domain trait (or the company's domain in HubSpot), then `milepost crm replay`.\n",
        count(companies, "company"),
        count(records.len() - companies, "task")
    ));
    out
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use milepost_domain::crm::CrmOutcome;
    use milepost_domain::AccountId;

    use super::*;

    #[test]
    fn unmatched_and_dead_records_say_which_account_what_and_why() {
        let at = Utc.with_ymd_and_hms(2026, 5, 4, 9, 0, 0).unwrap();
        let mut company = CrmSync::new(&AccountId::new("initech"), Mirrored::Company, at);
        company.unmatched("no HubSpot company has the domain initech.example".into());
        let mut task = CrmSync::new(&AccountId::new("acme"), Mirrored::Task("t-1".into()), at);
        task.record(
            at,
            CrmOutcome::Refused("creating a task: HTTP 400 VALIDATION_ERROR: bad".into()),
        );
        let text = render(CrmList::Unmatched, &[company.clone(), task.clone()]);
        assert!(
            text.contains("initech  company\n  no HubSpot company has the domain initech.example"),
            "{text}"
        );
        assert!(
            text.contains("acme  task t-1 (2026-05-04 09:00 UTC)\n  creating a task"),
            "{text}"
        );
        assert!(text.contains("1 company, 1 task."), "{text}");
        let json = serde_json::to_value(rows(&[task])).unwrap();
        assert_eq!(json[0]["record"], "task:t-1");
        assert_eq!(json[0]["at"], "2026-05-04T09:00:00Z");
        assert!(render(CrmList::Dead, &[]).contains("no change to HubSpot was given up"));
    }
}
