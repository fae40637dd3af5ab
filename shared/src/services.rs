//! The dependencies every handler runs over, bundled once at start-up.

use std::sync::Arc;

use crate::domain::{Contact, PlaybookTiming};
use crate::ports::{Clock, EventPublisher, Mailer, Store, WorkflowStarter};

#[derive(Clone, Debug)]
pub struct Config {
    /// Who Milepost's emails come from.
    pub sender: Contact,
    /// The product's base URL, for links in emails and in-app messages.
    pub app_url: String,
    /// Where customers book 1:1 help.
    pub booking_url: String,
    /// The unsubscribe endpoint quoted in `List-Unsubscribe` on customer mail.
    pub unsubscribe_url: String,
    /// How long event-id dedupe records live.
    pub dedupe_ttl_days: i64,
    /// The CS leadership address for accounts whose traits name none.
    pub cs_leader_email: String,
    pub timing: PlaybookTiming,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sender: Contact::new("Milepost", "success@milepost.example"),
            app_url: "https://app.example.com".to_string(),
            booking_url: "https://app.example.com/book-help".to_string(),
            unsubscribe_url: "https://app.example.com/unsubscribe".to_string(),
            dedupe_ttl_days: 14,
            cs_leader_email: "cs-leadership@vendor.example".to_string(),
            timing: PlaybookTiming::default(),
        }
    }
}

impl Config {
    /// The defaults, with what the environment sets: `MILEPOST_SENDER_EMAIL`,
    /// `MILEPOST_SENDER_NAME`, `MILEPOST_APP_URL`, `MILEPOST_BOOKING_URL`,
    /// `MILEPOST_UNSUBSCRIBE_URL`, `MILEPOST_CS_LEADER_EMAIL` (empty counts as unset).
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut config = Config::default();
        if let Some(email) = get("MILEPOST_SENDER_EMAIL") {
            config.sender.email = email;
        }
        if let Some(name) = get("MILEPOST_SENDER_NAME") {
            config.sender.name = name;
        }
        for (name, field) in [
            ("MILEPOST_APP_URL", &mut config.app_url),
            ("MILEPOST_BOOKING_URL", &mut config.booking_url),
            ("MILEPOST_UNSUBSCRIBE_URL", &mut config.unsubscribe_url),
            ("MILEPOST_CS_LEADER_EMAIL", &mut config.cs_leader_email),
        ] {
            if let Some(value) = get(name) {
                *field = value;
            }
        }
        config
    }
}

#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn Store>,
    pub mailer: Arc<dyn Mailer>,
    pub events: Arc<dyn EventPublisher>,
    pub workflows: Arc<dyn WorkflowStarter>,
    pub clock: Arc<dyn Clock>,
    pub config: Config,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_overrides_defaults_and_empty_values_do_not() {
        let config = Config::from_lookup(|name| match name {
            "MILEPOST_SENDER_EMAIL" => Some("cs@acme.example".into()),
            "MILEPOST_APP_URL" => Some("https://acme.example".into()),
            "MILEPOST_BOOKING_URL" => Some("  ".into()),
            _ => None,
        });
        assert_eq!(config.sender.email, "cs@acme.example");
        assert_eq!(config.sender.name, Config::default().sender.name);
        assert_eq!(config.app_url, "https://acme.example");
        assert_eq!(config.booking_url, Config::default().booking_url);
    }
}
