//! Expansion readiness: a map milestone of the `expansion` phase is a
//! positive play. It is never missed; reaching it opens an opportunity for
//! the role the map names, priced from the account's own figures when they
//! allow it, and counted as expansion pipeline.

use serde::{Deserialize, Serialize};

use crate::{Account, Timestamp};

/// The unit that prices itself from the account: its ARR over its licensed seats.
pub const SEATS: &str = "seats";

/// What reaching an expansion milestone offers (`expansion:` in the map).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpansionPlay {
    /// How many units the opportunity adds (10 seats, 5 more projects).
    pub adds: u32,
    /// What is added: `seats`, or a unit of the price list (`projects`, `api_calls_1m`).
    pub unit: String,
    /// The yearly list price of one unit, when the map gives one. Seats
    /// without it are priced at what the account pays per seat today.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_price: Option<u64>,
    /// What the opportunity's owner is asked to do (internal: never sent to the customer).
    pub play: String,
}

/// An opportunity opened when an expansion milestone was reached: its price
/// is fixed then, so later changes to the account's ARR or seats do not
/// restate a pipeline already reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opportunity {
    /// The role it is for (the milestone's `owner` in the map: `ae`, `csm`, ...).
    pub for_role: String,
    pub adds: u32,
    pub unit: String,
    /// The yearly price of one unit, or none: unpriced (no list price, and
    /// for seats no ARR or seat count to work one out from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_price: Option<u64>,
    /// The yearly revenue it would add (units × price, worked out whole for
    /// seats: ARR × units / seats, rounded once); none when unpriced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_arr: Option<u64>,
    /// When the milestone was reached (the event's time, not when it was
    /// seen): an older event delivered late moves it, until it is announced.
    pub opened_at: Timestamp,
    /// Its owner was emailed about it (or their email was refused): the
    /// sweep tells them once, after it is announced. Always written: one
    /// stored by a version before owners were told reads as told, so it is
    /// never emailed late, whenever its milestone is next written.
    #[serde(default = "told_before_owners_were_told")]
    pub owner_told: bool,
}

/// An opportunity stored without `owner_told` predates the owner's email.
fn told_before_owners_were_told() -> bool {
    true
}

impl Opportunity {
    /// The opportunity `play` opens for `role` on `account`, reached `at`.
    /// A price that comes to nothing (ARR under half a dollar a seat) is no
    /// price: unpriced, not $0.
    pub fn open(play: &ExpansionPlay, role: &str, account: &Account, at: Timestamp) -> Opportunity {
        let adds = u128::from(play.adds);
        let (unit_price, pipeline_arr) = match play.unit_price {
            Some(price) => (Some(price), Some(price.saturating_mul(u64::from(play.adds)))),
            None if play.unit == SEATS && account.arr > 0 && account.licensed_seats > 0 => {
                let (arr, seats) = (u128::from(account.arr), u128::from(account.licensed_seats));
                let rounded = |n: u128, d: u128| u64::try_from((2 * n + d) / (2 * d)).unwrap_or(u64::MAX);
                (Some(rounded(arr, seats)), Some(rounded(arr * adds, seats)))
            }
            None => (None, None),
        };
        let priced = pipeline_arr.is_some_and(|p| p > 0) && unit_price.is_some_and(|p| p > 0);
        Opportunity {
            for_role: role.to_string(),
            adds: play.adds,
            unit: play.unit.clone(),
            unit_price: unit_price.filter(|_| priced),
            pipeline_arr: pipeline_arr.filter(|_| priced),
            opened_at: at,
            owner_told: false,
        }
    }

    /// The yearly revenue it would add; none when unpriced.
    pub fn pipeline_arr(&self) -> Option<u64> {
        self.pipeline_arr
    }
}

// Tested in tests/properties.rs (it may use the fixtures, which build maps of these).
