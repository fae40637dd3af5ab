//! Fixtures shared by the tests of this crate and of the crates above it.
//! Not part of Milepost's API.

use chrono::NaiveDate;

use crate::domain::{Account, AccountId, Contact, Segment};

/// A plain first-year SMB account starting on `contract_start`, with every
/// contact at `<role>@<id>.example` (the CSM and leader at `vendor.example`).
/// Adjust what a test cares about with struct update syntax.
pub fn account(id: &str, contract_start: NaiveDate) -> Account {
    Account {
        id: AccountId::new(id),
        name: format!("Customer {id}"),
        segment: Segment::Smb,
        contract_start,
        renewal_date: contract_start + chrono::Duration::days(365),
        tenure_year: 1,
        arr: 10_000,
        licensed_seats: 10,
        primary_contact: Contact::new("Pat Admin", format!("pat@{id}.example")),
        csm: Contact::new("Maya CSM", "maya@vendor.example"),
        cs_leader_email: "lead@vendor.example".into(),
        exec_sponsor: None,
        timezone: chrono_tz::UTC,
        goal: None,
    }
}

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}
