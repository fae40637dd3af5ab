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

#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn Store>,
    pub mailer: Arc<dyn Mailer>,
    pub events: Arc<dyn EventPublisher>,
    pub workflows: Arc<dyn WorkflowStarter>,
    pub clock: Arc<dyn Clock>,
    pub config: Config,
}
