//! Who did something Milepost records: a person, or Milepost itself.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Contact;

/// Who changed a task or confirmed a milestone: a person (by the address
/// their link, command or request named), or Milepost itself.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    Person { name: String, email: String },
    Milepost,
}

impl Actor {
    pub fn person(contact: &Contact) -> Self {
        Actor::Person {
            name: contact.name.clone(),
            email: contact.email.to_string(),
        }
    }

    /// How a page or an email names them: the name, else the address.
    pub fn display(&self) -> &str {
        match self {
            Actor::Person { name, .. } if !name.trim().is_empty() => name,
            Actor::Person { email, .. } => email,
            Actor::Milepost => "Milepost",
        }
    }
}

// Debug redacts the person, as `Contact` does, so a stray `{:?}` logs no address.
impl fmt::Debug for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Person { .. } => f.write_str("Person(<redacted>)"),
            Actor::Milepost => f.write_str("Milepost"),
        }
    }
}
