//! Milepost's settings: built-in defaults, overridden by the environment.

use milepost_domain::limits::TimeLimits;
use milepost_domain::{Contact, EmailAddress, PlaybookTiming};

#[derive(Clone, Debug)]
pub struct Config {
    /// Who Milepost's emails come from.
    pub sender: Contact,
    /// The company the customers know (`MILEPOST_COMPANY_NAME`): customer
    /// mail comes from its owner "at" it; none, from the owner by name.
    /// Customers never see the tool's name.
    pub company_name: Option<String>,
    /// The product's base URL, for links in emails and in-app messages.
    pub app_url: String,
    /// Where customers book 1:1 help.
    pub booking_url: String,
    /// Where the console is served, if it is (`MILEPOST_CONSOLE_URL`): the
    /// emails to the team link each account to its page there.
    pub console_url: Option<String>,
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
    /// Where the pages' buttons post, when the environment says
    /// (`MILEPOST_ACTIONS_URL`, `MILEPOST_UNSUBSCRIBE_URL`); else to the
    /// path the page was opened on.
    pub page_urls: PageUrls,
}

/// A setting that does not parse: which variable, and why.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

impl ConfigError {
    fn new(variable: &'static str, problem: String) -> Self {
        ConfigError { variable, problem }
    }
}

fn address(text: &str) -> EmailAddress {
    EmailAddress::parse(text).expect("a built-in default address is valid")
}

impl Config {
    /// The From name of customer mail: its owner, at the company the
    /// customer knows when one is set.
    pub fn customer_sender(&self, owner: &Contact) -> Contact {
        let name = match &self.company_name {
            Some(company) => format!("{} at {company}", owner.name),
            None => owner.name.clone(),
        };
        Contact::new(name, self.sender.email.clone())
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sender: Contact::new("Milepost", address("success@milepost.example")),
            company_name: None,
            app_url: "https://app.example.com".to_string(),
            booking_url: "https://app.example.com/book-help".to_string(),
            console_url: None,
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
            page_urls: PageUrls::default(),
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

    /// The defaults, with what the environment sets: the variables of the
    /// "Settings" table in docs/deploy.md, no more and no fewer (a test holds the two
    /// together), an empty one counting as unset. A value that does not
    /// parse is an error: better a function that will not start than one
    /// mailing a mangled address.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let parse_address = |variable: &'static str, value: &str| {
            EmailAddress::parse(value).map_err(|e| ConfigError::new(variable, e.to_string()))
        };
        let mut config = Config::default();
        if let Some(email) = get("MILEPOST_SENDER_EMAIL") {
            config.sender.email = parse_address("MILEPOST_SENDER_EMAIL", &email)?;
        }
        if let Some(name) = get("MILEPOST_SENDER_NAME") {
            config.sender.name = name;
        }
        config.company_name = get("MILEPOST_COMPANY_NAME").map(|n| n.trim().to_string());
        config.console_url = get("MILEPOST_CONSOLE_URL").map(|u| u.trim().trim_end_matches('/').to_string());
        if let Some(email) = get("MILEPOST_CS_LEADER_EMAIL") {
            config.cs_leader_email = parse_address("MILEPOST_CS_LEADER_EMAIL", &email)?;
        }
        let actions_url = get("MILEPOST_ACTIONS_URL");
        let unsubscribe_url = get("MILEPOST_UNSUBSCRIBE_URL");
        for (value, field) in [
            (get("MILEPOST_APP_URL"), &mut config.app_url),
            (get("MILEPOST_BOOKING_URL"), &mut config.booking_url),
            (unsubscribe_url.clone(), &mut config.unsubscribe_url),
            (actions_url.clone(), &mut config.actions_url),
        ] {
            if let Some(value) = value {
                *field = value;
            }
        }
        // Told where the links live, the pages' buttons post there (absolute).
        config.page_urls = PageUrls {
            actions: actions_url,
            unsubscribe: unsubscribe_url,
        };
        if let Some(value) = get("MILEPOST_CONTACT_POLICY") {
            config.contact_policy = match value.trim() {
                "on" => true,
                "off" => false,
                other => {
                    return Err(ConfigError::new(
                        "MILEPOST_CONTACT_POLICY",
                        format!("{other:?} is neither on nor off"),
                    ))
                }
            };
        }
        if let Some(tz) = get("MILEPOST_LEADER_TIMEZONE") {
            config.leader_timezone = tz.trim().parse().map_err(|_| {
                ConfigError::new(
                    "MILEPOST_LEADER_TIMEZONE",
                    format!("{tz:?} is not an IANA timezone (e.g. Europe/Berlin)"),
                )
            })?;
        }
        let limits = &mut config.time_limits;
        if let Some(hours) = get("MILEPOST_MAX_FUTURE_SKEW_HOURS") {
            let hours: i64 = hours.trim().parse().map_err(|_| {
                ConfigError::new(
                    "MILEPOST_MAX_FUTURE_SKEW_HOURS",
                    format!("{hours:?} is not a whole number of hours"),
                )
            })?;
            limits.max_future_skew = chrono::Duration::hours(hours.max(0));
        }
        if let Some(date) = get("MILEPOST_EARLIEST_CONTRACT_DATE") {
            limits.earliest_contract_date =
                chrono::NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d").map_err(|_| {
                    ConfigError::new(
                        "MILEPOST_EARLIEST_CONTRACT_DATE",
                        format!("{date:?} is not a date (YYYY-MM-DD)"),
                    )
                })?;
        }
        if let Some(years) = get("MILEPOST_CONTRACT_YEARS_AHEAD") {
            limits.max_contract_years_ahead = years.trim().parse().map_err(|_| {
                ConfigError::new(
                    "MILEPOST_CONTRACT_YEARS_AHEAD",
                    format!("{years:?} is not a whole number"),
                )
            })?;
        }
        Ok(config)
    }
}

/// The public address of the links, when the function is told it
/// (`MILEPOST_ACTIONS_URL`, `MILEPOST_UNSUBSCRIBE_URL`): a page's button
/// then posts to `<address>/<token>`, absolute. Without it, to the path the
/// request came in on, which is the browser's own under the API's default
/// stage; either way a page opened with a trailing slash posts to its link.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageUrls {
    pub actions: Option<String>,
    pub unsubscribe: Option<String>,
}

impl PageUrls {
    /// Where the page of `token` posts: under `base` when known, else `path` without its trailing slashes.
    pub fn form_action(base: Option<&str>, token: &str, path: &str) -> String {
        match base {
            Some(base) => format!("{}/{token}", base.trim_end_matches('/')),
            None => path.trim_end_matches('/').to_string(),
        }
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

    /// The "Settings" table of docs/deploy.md: each variable and its documented default.
    fn documented_settings() -> Vec<(String, String)> {
        let page = include_str!("../../../docs/deploy.md");
        let table = page
            .split("### Settings")
            .nth(1)
            .expect("docs/deploy.md has a Settings section");
        table
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .filter_map(|row| {
                let cells: Vec<&str> = row.split('|').map(str::trim).collect();
                let name = cells.get(1)?.strip_prefix("`MILEPOST_")?.strip_suffix('`')?;
                let default = cells.get(3)?.split('`').nth(1)?;
                Some((format!("MILEPOST_{name}"), default.to_string()))
            })
            .collect()
    }

    #[test]
    fn the_readme_documents_exactly_the_variables_read_with_their_defaults() {
        let read = std::sync::Mutex::new(Vec::new());
        let config = Config::from_lookup(|name| {
            read.lock().unwrap().push(name.to_string());
            None
        })
        .unwrap();
        let mut read = read.into_inner().unwrap();
        read.sort();
        let documented = documented_settings();
        let mut names: Vec<String> = documented.iter().map(|(n, _)| n.clone()).collect();
        names.sort();
        assert_eq!(
            names, read,
            "docs/deploy.md's Settings table vs what Config::from_env reads"
        );
        let limits = &config.time_limits;
        for (name, default) in documented {
            let actual = match name.as_str() {
                "MILEPOST_SENDER_EMAIL" => config.sender.email.to_string(),
                "MILEPOST_SENDER_NAME" => config.sender.name.clone(),
                "MILEPOST_COMPANY_NAME" => config.company_name.clone().unwrap_or_else(|| "none".into()),
                "MILEPOST_CS_LEADER_EMAIL" => config.cs_leader_email.to_string(),
                "MILEPOST_APP_URL" => config.app_url.clone(),
                "MILEPOST_BOOKING_URL" => config.booking_url.clone(),
                "MILEPOST_CONSOLE_URL" => config.console_url.clone().unwrap_or_else(|| "none".into()),
                "MILEPOST_UNSUBSCRIBE_URL" => config.unsubscribe_url.clone(),
                "MILEPOST_ACTIONS_URL" => config.actions_url.clone(),
                "MILEPOST_LEADER_TIMEZONE" => config.leader_timezone.name().to_string(),
                "MILEPOST_CONTACT_POLICY" => (if config.contact_policy { "on" } else { "off" }).to_string(),
                "MILEPOST_MAX_FUTURE_SKEW_HOURS" => limits.max_future_skew.num_hours().to_string(),
                "MILEPOST_EARLIEST_CONTRACT_DATE" => limits.earliest_contract_date.to_string(),
                "MILEPOST_CONTRACT_YEARS_AHEAD" => limits.max_contract_years_ahead.to_string(),
                other => panic!("{other}: documented, but this test does not know its default"),
            };
            assert_eq!(default, actual, "{name}'s documented default");
        }
    }

    #[test]
    fn a_configured_address_that_does_not_parse_stops_start_up() {
        let bad = Config::from_lookup(|name| {
            (name == "MILEPOST_CS_LEADER_EMAIL").then(|| "lead@vendor.example, leak@evil.example".into())
        });
        assert_eq!(bad.unwrap_err().variable, "MILEPOST_CS_LEADER_EMAIL");
    }
}
