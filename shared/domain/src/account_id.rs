//! An account's id: what every record about a customer is keyed by. A
//! module of its own, so records about an account (its success plan) can
//! name it without the account itself.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The customer's account id as the product backend knows it (Segment's `groupId`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountId(pub String);

impl AccountId {
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// Lets maps keyed by account id be searched with a `&str`, without allocating.
impl std::borrow::Borrow<str> for AccountId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
