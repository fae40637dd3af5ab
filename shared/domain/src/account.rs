//! Customer accounts: who the customer is, what they pay, who looks after them.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::address::{AddressError, EmailAddress};

pub use crate::account_id::AccountId;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Segment {
    Enterprise,
    MidMarket,
    Smb,
}

impl Segment {
    pub const ALL: [Segment; 3] = [Segment::Enterprise, Segment::MidMarket, Segment::Smb];

    pub fn as_str(self) -> &'static str {
        match self {
            Segment::Enterprise => "enterprise",
            Segment::MidMarket => "mid_market",
            Segment::Smb => "smb",
        }
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Segment {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "enterprise" => Ok(Segment::Enterprise),
            "mid_market" => Ok(Segment::MidMarket),
            "smb" => Ok(Segment::Smb),
            other => Err(format!(
                "unknown segment `{other}` (expected enterprise, mid_market or smb)"
            )),
        }
    }
}

/// Year 1 of a customer relationship behaves differently from renewals, so maps
/// may differ by tenure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tenure {
    FirstYear,
    MultiYear,
}

impl Tenure {
    pub fn from_year(tenure_year: u32) -> Self {
        if tenure_year <= 1 {
            Tenure::FirstYear
        } else {
            Tenure::MultiYear
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Tenure::FirstYear => "first_year",
            Tenure::MultiYear => "multi_year",
        }
    }
}

impl FromStr for Tenure {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "first_year" => Ok(Tenure::FirstYear),
            "multi_year" => Ok(Tenure::MultiYear),
            other => Err(format!("unknown tenure `{other}` (expected first_year or multi_year)")),
        }
    }
}

/// A person Milepost may email. Never logged: names and addresses are personal data.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub name: String,
    pub email: EmailAddress,
}

impl Contact {
    pub fn new(name: impl Into<String>, email: EmailAddress) -> Self {
        Self {
            name: name.into(),
            email,
        }
    }

    /// A contact whose address is parsed from text (see `EmailAddress::parse`).
    pub fn parse(name: impl Into<String>, email: &str) -> Result<Self, AddressError> {
        Ok(Self::new(name, EmailAddress::parse(email)?))
    }
}

// Debug redacts the address so a stray `{:?}` cannot put personal data in logs.
impl fmt::Debug for Contact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Contact(<redacted>)")
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub segment: Segment,
    pub contract_start: NaiveDate,
    pub renewal_date: NaiveDate,
    /// 1 in the first contract year, 2 after the first renewal, and so on.
    pub tenure_year: u32,
    /// Annual recurring revenue in whole currency units.
    pub arr: u64,
    pub licensed_seats: u32,
    /// The customer-side admin or champion who receives outreach.
    pub primary_contact: Contact,
    pub csm: Contact,
    pub cs_leader_email: EmailAddress,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec_sponsor: Option<Contact>,
    /// IANA timezone of the customer, used so no email lands at night.
    pub timezone: chrono_tz::Tz,
    /// The customer's stated goal, quoted in outreach ("cut month-end close to 3 days").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal: Option<String>,
    /// When the traits stored were current: the `timestamp` of the group call
    /// that set them. An older call arriving later does not overwrite them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traits_at: Option<super::Timestamp>,
    /// The vendor's people by role (`onboarding`, `account_executive`,
    /// `support`, ...), from the `<role>_email` / `<role>_name` traits. The
    /// CSM is `csm` above; a milestone owned by a role no one holds goes to it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub contacts: BTreeMap<String, Contact>,
    /// What the customer decided at each renewal, in date order (the
    /// `renewal_outcome` trait, `milepost renewals import`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub renewals: Vec<crate::renewal::RenewalOutcome>,
    /// The company's web domain (`acme.example`; the `domain` or `website`
    /// trait): how its CRM company is found when no id is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Its HubSpot company's id (the `hubspot_company_id` trait): the CRM
    /// record its standing is written to, before any lookup by domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hubspot_company_id: Option<String>,
    /// The customer's success plan as it stands: a copy of the latest
    /// version `SuccessPlanStore` keeps, so what reads the account (its
    /// emails, its health) has it without another read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_plan: Option<crate::SuccessPlan>,
}

/// The role that owns a milestone unless its map names another.
pub const CSM_ROLE: &str = "csm";

/// Who owns a milestone for an account: the contact holding its role, or the
/// CSM when no one does (`fallback`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner<'a> {
    pub role: &'a str,
    pub contact: &'a Contact,
    pub fallback: bool,
}

/// Whether `role` names a role as maps and traits write them: a lowercase
/// identifier (`onboarding`, `account_executive`).
pub fn is_role_name(role: &str) -> bool {
    let mut chars = role.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl Account {
    /// Records a renewal outcome: one per decision date, the latest word for
    /// a date standing; the same outcome again changes nothing, so a
    /// redelivered `group` call or a re-run import is harmless.
    pub fn record_renewal(&mut self, outcome: crate::renewal::RenewalOutcome) -> crate::renewal::Recorded {
        crate::renewal::record(&mut self.renewals, outcome)
    }

    /// What a conditional write of the account checks it still is: the
    /// traits' time and the plan's version (a group call and a plan set at
    /// once must not undo each other).
    pub fn revision(&self) -> (Option<super::Timestamp>, Option<u32>) {
        (self.traits_at, self.success_plan.as_ref().map(|p| p.version))
    }

    pub fn tenure(&self) -> Tenure {
        Tenure::from_year(self.tenure_year)
    }

    /// The owner of a milestone owned by `role`.
    pub fn owner<'a>(&'a self, role: &'a str) -> Owner<'a> {
        if role == CSM_ROLE {
            return Owner {
                role,
                contact: &self.csm,
                fallback: false,
            };
        }
        match self.contacts.get(role) {
            Some(contact) => Owner {
                role,
                contact,
                fallback: false,
            },
            None => Owner {
                role,
                contact: &self.csm,
                fallback: true,
            },
        }
    }

    /// Contract start as an instant: midnight UTC of the start date.
    pub fn contract_start_at(&self) -> super::Timestamp {
        self.contract_start
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc()
    }
}
