//! Account traits: what a `group` call (Segment Spec) may say about an
//! account, and the account they make.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::{Account, AccountId, Contact, EmailAddress, FieldError, Segment};

/// What a `group` call may say about an account; absent traits keep their current value.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AccountTraits {
    pub name: Option<String>,
    pub segment: Option<Segment>,
    pub licensed_seats: Option<u32>,
    pub arr: Option<u64>,
    pub contract_start: Option<NaiveDate>,
    pub renewal_date: Option<NaiveDate>,
    pub tenure_year: Option<u32>,
    pub primary_contact: Option<Contact>,
    pub csm: Option<Contact>,
    pub cs_leader_email: Option<EmailAddress>,
    pub exec_sponsor: Option<Contact>,
    pub timezone: Option<chrono_tz::Tz>,
    pub goal: Option<String>,
    /// The vendor's people by role, from `<role>_email` / `<role>_name`: each
    /// replaces the account's contact for that role.
    pub contacts: BTreeMap<String, Contact>,
    /// A renewal decision (`renewal_outcome`, `decision_date`, `arr_after`):
    /// recorded on the account beside the ones before.
    pub renewal: Option<crate::RenewalOutcome>,
    pub domain: Option<String>,
    pub hubspot_company_id: Option<String>,
    /// The success plan the call states (`success_plan`), whole: kept as
    /// the account's next plan version, apart from the account itself.
    pub success_plan: Option<Vec<crate::AgreedOutcome>>,
}

/// The most roles one account may name: what bounds its profile's size.
pub const MAX_ROLES: usize = 16;

impl AccountTraits {
    /// The account after these traits: `existing` updated, or a new account
    /// when there is none (then name, segment, contract start, CSM and
    /// primary contact are required; the CS leader defaults to `default_leader`).
    pub fn apply(
        &self,
        id: &AccountId,
        existing: Option<&Account>,
        default_leader: &EmailAddress,
    ) -> Result<Account, FieldError> {
        let base = match existing {
            Some(a) => a.clone(),
            None => {
                let missing =
                    |name: &str| FieldError::new(&format!("traits.{name}"), "is required to create an account");
                let name = self.name.clone().ok_or_else(|| missing("name"))?;
                let segment = self.segment.ok_or_else(|| missing("segment"))?;
                let contract_start = self.contract_start.ok_or_else(|| missing("contract_start"))?;
                Account {
                    id: id.clone(),
                    name,
                    segment,
                    contract_start,
                    renewal_date: contract_start + chrono::Duration::days(365),
                    tenure_year: 1,
                    arr: 0,
                    licensed_seats: 1,
                    primary_contact: self.primary_contact.clone().ok_or_else(|| missing("admin_email"))?,
                    csm: self.csm.clone().ok_or_else(|| missing("csm_email"))?,
                    cs_leader_email: default_leader.clone(),
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
        };
        let mut a = base;
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = &self.$field { a.$field = v.clone(); } )* };
        }
        set!(
            name,
            segment,
            licensed_seats,
            arr,
            contract_start,
            renewal_date,
            tenure_year,
            primary_contact,
            csm,
            cs_leader_email,
            timezone
        );
        if self.exec_sponsor.is_some() {
            a.exec_sponsor = self.exec_sponsor.clone();
        }
        if self.goal.is_some() {
            a.goal = self.goal.clone();
        }
        if self.domain.is_some() {
            a.domain = self.domain.clone();
        }
        if self.hubspot_company_id.is_some() {
            a.hubspot_company_id = self.hubspot_company_id.clone();
        }
        for (role, contact) in &self.contacts {
            a.contacts.insert(role.clone(), contact.clone());
        }
        if let Some(renewal) = &self.renewal {
            a.record_renewal(renewal.clone());
        }
        if a.contacts.len() > MAX_ROLES {
            return Err(FieldError::new(
                "traits",
                format!("name at most {MAX_ROLES} roles (`<role>_email`) per account"),
            ));
        }
        if existing.is_none() && self.renewal_date.is_none() {
            a.renewal_date = a.contract_start + chrono::Duration::days(365);
        }
        if a.renewal_date <= a.contract_start {
            return Err(FieldError::new("traits.renewal_date", "must be after contract_start"));
        }
        Ok(a)
    }
}
