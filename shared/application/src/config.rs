//! Milepost's settings: built-in defaults, overridden by the environment.

use milepost_domain::limits::TimeLimits;
use milepost_domain::{Contact, EmailAddress, PlaybookTiming};

#[derive(Clone, Debug)]
pub struct Config {
    /// Who Milepost's emails come from.
    pub sender: Contact,
    /// The product's base URL, for links in emails and in-app messages.
    pub app_url: String,
    /// Where customers book 1:1 help.
    pub booking_url: String,
    /// Milepost's unsubscribe endpoint (`…/v1/unsubscribe`, served by the
    /// actions function): customer mail links `<it>/<signed token>` in its
    /// footer and in `List-Unsubscribe`.
    pub unsubscribe_url: String,
    /// How long an unsubscribe link works.
    pub unsubscribe_link_days: i64,
    /// Whether customer sends follow the maps' contact policy. Off only in
    /// `make local` (`MILEPOST_CONTACT_POLICY=off`), which compresses
    /// playbook days while the functions' clocks run in real time.
    pub contact_policy: bool,
    /// The timezone of CS leadership's working day: a leader gets at most
    /// one escalation email a day, from 09:00 on weekdays there.
    pub leader_timezone: chrono_tz::Tz,
    /// The actions endpoint the day-3 email's buttons point at (`…/v1/actions`).
    pub actions_url: String,
    /// How long an action link works.
    pub action_link_days: i64,
    /// How long event-id dedupe records live.
    pub dedupe_ttl_days: i64,
    /// The CS leadership address for accounts whose traits name none.
    pub cs_leader_email: EmailAddress,
    pub timing: PlaybookTiming,
    /// How far ahead events may be dated, and which contract dates are plausible.
    pub time_limits: TimeLimits,
    /// How many accounts of one request are applied side by side (each
    /// account's events in order, one after another: they write the same
    /// items). Worth it against DynamoDB's latency; the in-process demo sets 1.
    pub accounts_at_once: usize,
}

fn address(text: &str) -> EmailAddress {
    EmailAddress::parse(text).expect("a built-in default address is valid")
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sender: Contact::new("Milepost", address("success@milepost.example")),
            app_url: "https://app.example.com".to_string(),
            booking_url: "https://app.example.com/book-help".to_string(),
            unsubscribe_url: "https://milepost.example.com/v1/unsubscribe".to_string(),
            unsubscribe_link_days: crate::links::UNSUBSCRIBE_LINK_DAYS,
            contact_policy: true,
            leader_timezone: chrono_tz::UTC,
            actions_url: "https://milepost.example.com/v1/actions".to_string(),
            action_link_days: crate::links::LINK_DAYS,
            dedupe_ttl_days: 14,
            cs_leader_email: address("cs-leadership@vendor.example"),
            timing: PlaybookTiming::default(),
            time_limits: TimeLimits::default(),
            accounts_at_once: 16,
        }
    }
}

impl Config {
    /// The contact policy customer sends follow: the map's, or none where
    /// `contact_policy` is off.
    pub fn contact_policy_for(&self, map_policy: milepost_domain::ContactPolicy) -> milepost_domain::ContactPolicy {
        if self.contact_policy {
            map_policy
        } else {
            milepost_domain::ContactPolicy::unlimited()
        }
    }

    /// Links signed by `signer`, pointing where this configuration says.
    pub fn links(&self, signer: crate::links::LinkSigner) -> crate::links::ActionLinks {
        crate::links::ActionLinks {
            signer,
            base_url: self.actions_url.clone(),
            lifetime: chrono::Duration::days(self.action_link_days),
            unsubscribe_url: self.unsubscribe_url.clone(),
            unsubscribe_lifetime: chrono::Duration::days(self.unsubscribe_link_days),
        }
    }

    /// The defaults, with what the environment sets: `MILEPOST_SENDER_EMAIL`,
    /// `MILEPOST_SENDER_NAME`, `MILEPOST_APP_URL`, `MILEPOST_BOOKING_URL`,
    /// `MILEPOST_UNSUBSCRIBE_URL`, `MILEPOST_ACTIONS_URL`, `MILEPOST_CS_LEADER_EMAIL`,
    /// `MILEPOST_MAX_FUTURE_SKEW_HOURS`, `MILEPOST_EARLIEST_CONTRACT_DATE`,
    /// `MILEPOST_CONTRACT_YEARS_AHEAD` (empty counts as unset). A value that
    /// does not parse is an error: better a function that will not start than
    /// one mailing a mangled address.
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let parse_address = |name: &str, value: &str| EmailAddress::parse(value).map_err(|e| format!("{name}: {e}"));
        let mut config = Config::default();
        if let Some(email) = get("MILEPOST_SENDER_EMAIL") {
            config.sender.email = parse_address("MILEPOST_SENDER_EMAIL", &email)?;
        }
        if let Some(name) = get("MILEPOST_SENDER_NAME") {
            config.sender.name = name;
        }
        if let Some(email) = get("MILEPOST_CS_LEADER_EMAIL") {
            config.cs_leader_email = parse_address("MILEPOST_CS_LEADER_EMAIL", &email)?;
        }
        for (name, field) in [
            ("MILEPOST_APP_URL", &mut config.app_url),
            ("MILEPOST_BOOKING_URL", &mut config.booking_url),
            ("MILEPOST_UNSUBSCRIBE_URL", &mut config.unsubscribe_url),
            ("MILEPOST_ACTIONS_URL", &mut config.actions_url),
        ] {
            if let Some(value) = get(name) {
                *field = value;
            }
        }
        if let Some(value) = get("MILEPOST_CONTACT_POLICY") {
            config.contact_policy = match value.trim() {
                "on" => true,
                "off" => false,
                other => return Err(format!("MILEPOST_CONTACT_POLICY: {other:?} is neither on nor off")),
            };
        }
        if let Some(tz) = get("MILEPOST_LEADER_TIMEZONE") {
            config.leader_timezone = tz.trim().parse().map_err(|_| {
                format!("MILEPOST_LEADER_TIMEZONE: {tz:?} is not an IANA timezone (e.g. Europe/Berlin)")
            })?;
        }
        let limits = &mut config.time_limits;
        if let Some(hours) = get("MILEPOST_MAX_FUTURE_SKEW_HOURS") {
            let hours: i64 = hours
                .trim()
                .parse()
                .map_err(|_| format!("MILEPOST_MAX_FUTURE_SKEW_HOURS: {hours:?} is not a whole number of hours"))?;
            limits.max_future_skew = chrono::Duration::hours(hours.max(0));
        }
        if let Some(date) = get("MILEPOST_EARLIEST_CONTRACT_DATE") {
            limits.earliest_contract_date = chrono::NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d")
                .map_err(|_| format!("MILEPOST_EARLIEST_CONTRACT_DATE: {date:?} is not a date (YYYY-MM-DD)"))?;
        }
        if let Some(years) = get("MILEPOST_CONTRACT_YEARS_AHEAD") {
            limits.max_contract_years_ahead = years
                .trim()
                .parse()
                .map_err(|_| format!("MILEPOST_CONTRACT_YEARS_AHEAD: {years:?} is not a whole number"))?;
        }
        Ok(config)
    }
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
            "MILEPOST_MAX_FUTURE_SKEW_HOURS" => Some("6".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(config.sender.email, "cs@acme.example");
        assert_eq!(config.sender.name, Config::default().sender.name);
        assert_eq!(config.app_url, "https://acme.example");
        assert_eq!(config.booking_url, Config::default().booking_url);
        assert_eq!(config.time_limits.max_future_skew, chrono::Duration::hours(6));
    }

    #[test]
    fn a_configured_address_that_does_not_parse_stops_start_up() {
        let bad = Config::from_lookup(|name| {
            (name == "MILEPOST_CS_LEADER_EMAIL").then(|| "lead@vendor.example, leak@evil.example".into())
        });
        assert!(bad.unwrap_err().starts_with("MILEPOST_CS_LEADER_EMAIL"));
    }
}
