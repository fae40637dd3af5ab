//! Fixtures for tests: plain accounts, dates, milestones and maps. Not part of Milepost's
//! API. Compiled always, not behind a feature: a test build and a
//! function's build then compile the crate once (tests/one_build.py).

use chrono::NaiveDate;

use crate::{
    Account, AccountId, Contact, Criterion, EmailAddress, MapSegment, MilestoneDef, MilestoneMap, Phase, Playbook,
    Segment,
};

/// A plain first-year SMB account starting on `contract_start`, with every
/// contact at `<role>@<id>.example` (the CSM and leader at `vendor.example`).
/// Adjust what a test cares about with struct update syntax.
pub fn account(id: &str, contract_start: NaiveDate) -> Account {
    // Addresses take the id's letters and digits only: ids may hold anything, addresses may not.
    let domain: String = id.chars().filter(char::is_ascii_alphanumeric).collect();
    Account {
        id: AccountId::new(id),
        name: format!("Customer {id}"),
        segment: Segment::Smb,
        contract_start,
        renewal_date: contract_start + chrono::Duration::days(365),
        tenure_year: 1,
        arr: 10_000,
        licensed_seats: 10,
        primary_contact: Contact::parse("Pat Admin", &format!("pat@{domain}.example")).expect("a valid address"),
        csm: Contact::parse("Maya CSM", "maya@vendor.example").expect("a valid address"),
        cs_leader_email: milepost_address("lead@vendor.example"),
        exec_sponsor: None,
        timezone: chrono_tz::UTC,
        goal: None,
        traits_at: None,
        contacts: Default::default(),
        renewals: Vec::new(),
        domain: None,
        hubspot_company_id: None,
        success_plan: None,
    }
}

/// A fixture's address, parsed as every address is.
pub fn milepost_address(text: &str) -> EmailAddress {
    EmailAddress::parse(text).expect("a valid fixture address")
}

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

/// An onboarding milestone `id` due on day `due_days` when `criterion` is met,
/// owned by the CSM, with one-letter playbook texts and no weight, heads-up
/// or holdout of its own. Adjust what a test cares about with struct update syntax.
pub fn milestone_def(id: &str, due_days: u32, criterion: Criterion) -> MilestoneDef {
    MilestoneDef {
        expansion: None,
        customer_title: None,
        moved_by: None,
        id: id.into(),
        name: id.into(),
        phase: Phase::Onboarding,
        due_days,
        owner: "csm".into(),
        criterion,
        arr_weight: None,
        discovered_weight: None,
        heads_up: None,
        holdout: None,
        playbook: Playbook {
            outreach: "o".into(),
            csm: "c".into(),
            leadership: "l".into(),
            sponsor: None,
            guides: vec![],
        },
    }
}

/// A map of `milestones` for every segment and tenure, with the defaults
/// (no exec sponsor, calendar days, the default contact policy, thresholds
/// and holdout). Adjust with struct update syntax.
pub fn map_of(milestones: Vec<MilestoneDef>) -> MilestoneMap {
    MilestoneMap {
        after_playbook: Default::default(),
        segment: MapSegment::All,
        tenure: None,
        escalate_to_exec_sponsor: false,
        business_days: false,
        contact_policy: Default::default(),
        min_arr_at_risk: Default::default(),
        holdout: Default::default(),
        events: Default::default(),
        milestones,
    }
}
