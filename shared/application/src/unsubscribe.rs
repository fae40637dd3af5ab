//! A customer contact leaving Milepost's automated email: the signed link in
//! every customer email's `List-Unsubscribe` header and footer. A mail
//! client's one-click unsubscribe (RFC 8058) POSTs to it directly; a person
//! following the footer link gets a page first (`GET` changes nothing: mail
//! scanners fetch every link) and its button POSTs. Either way the address
//! is suppressed, once, and every customer-facing send checks that first.

use askama::Template;
use milepost_domain::{EmailAddress, Suppression, SuppressionSource, Timestamp};

use crate::actions::{message, unavailable, Actions, Page};
use crate::email::{fmt_date, possessive};
use crate::links::{LinkAction, LinkError, Opened, OpenedLink};

#[derive(Template)]
#[template(path = "pages/unsubscribe.html")]
struct UnsubscribeHtml<'a> {
    v: &'a UnsubscribeView,
}

struct UnsubscribeView {
    title: &'static str,
    address: String,
    account_name: String,
    what_happens: String,
    action_url: String,
}

/// How to leave when the link does not work, said on every refusal.
const OTHER_WAY: &str =
    "Use the unsubscribe link of our most recent email, or reply to it and ask to be taken off: we will do it by hand.";

impl Actions {
    /// Opens `token` as an unsubscribe link and finds the address it was made for.
    async fn contact(&self, token: &str, now: Timestamp) -> Result<(OpenedLink, EmailAddress), Page> {
        let opened = self.signer.open(token, now).map_err(|e| refused(&e))?;
        let (action, fingerprint) = match &opened {
            Opened::Current(link) => (link.action, link.address_fingerprint()),
            Opened::Legacy(link) => (link.action, link.address_fingerprint()),
        };
        if action != LinkAction::Unsubscribe {
            return Err(refused(&LinkError::Altered));
        }
        // A current link's fingerprint is signed; a first-format link's is checked
        // by its MAC over the address found (the same page either way).
        let email = match self.store.contact(fingerprint).await {
            Ok(Some(contact)) => contact.email,
            Ok(None) => return Err(refused(&LinkError::Altered)),
            Err(e) => {
                tracing::error!(error = %crate::ErrorChain(&e), "reading a contact for an unsubscribe link failed");
                return Err(unavailable());
            }
        };
        let link = match opened {
            Opened::Current(link) => link,
            Opened::Legacy(legacy) => legacy
                .verify(&self.signer, email.as_str(), now)
                .map_err(|e| refused(&e))?,
        };
        Ok((link, email))
    }

    /// `GET`: what unsubscribing does, with its button. Changes nothing.
    pub async fn show_unsubscribe(&self, token: &str, url: &str) -> Page {
        let now = self.clock.now();
        let (link, email) = match self.contact(token, now).await {
            Ok(found) => found,
            Err(page) => return page,
        };
        match self.store.suppression(&email).await {
            Ok(Some(earlier)) => return already(&earlier, &email),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %crate::ErrorChain(&e), "reading a suppression failed");
                return unavailable();
            }
        }
        let account_name = self.account_name(&link).await;
        let view = UnsubscribeView {
            title: LinkAction::Unsubscribe.question(),
            address: masked(&email),
            what_happens: format!(
                "We will send no more automated emails about {} onboarding and progress to this address. Your account team can still write to you personally.",
                possessive(&account_name)
            ),
            account_name,
            action_url: url.to_string(),
        };
        match (UnsubscribeHtml { v: &view }).render() {
            Ok(html) => Page { status: 200, html },
            Err(e) => {
                tracing::error!(error = %crate::ErrorChain(&e), "the unsubscribe page did not render");
                unavailable()
            }
        }
    }

    /// `POST`: suppresses the address, once; again, it says since when.
    pub async fn unsubscribe(&self, token: &str, source: SuppressionSource) -> Page {
        let now = self.clock.now();
        let (link, email) = match self.contact(token, now).await {
            Ok(found) => found,
            Err(page) => return page,
        };
        let suppression = Suppression {
            email: email.clone(),
            at: now,
            source,
            account_id: milepost_domain::AccountId::new(&link.subject),
        };
        match self.store.suppress(&suppression).await {
            Ok(None) => {
                // Ids only: the address is the person's.
                tracing::info!(account_id = %link.subject, source = source.label(), "contact unsubscribed");
                message(
                    200,
                    "Unsubscribed",
                    "You are unsubscribed",
                    vec![format!(
                        "We will send no more automated emails to {}. Your account team can still write to you personally.",
                        masked(&email)
                    )],
                    Some("You can close this page.".to_string()),
                )
            }
            Ok(Some(earlier)) => already(&earlier, &email),
            Err(e) => {
                tracing::error!(error = %crate::ErrorChain(&e), "recording an unsubscribe failed");
                unavailable()
            }
        }
    }

    async fn account_name(&self, link: &OpenedLink) -> String {
        match self
            .store
            .get_account(&milepost_domain::AccountId::new(&link.subject))
            .await
        {
            Ok(Some(account)) => account.name.clone(),
            _ => "your account".to_string(),
        }
    }
}

fn already(earlier: &Suppression, email: &EmailAddress) -> Page {
    message(
        200,
        "Already unsubscribed",
        "You are already unsubscribed",
        vec![format!(
            "{} has received no automated emails from us since {}. Nothing was changed.",
            masked(email),
            fmt_date(earlier.at)
        )],
        None,
    )
}

fn refused(e: &LinkError) -> Page {
    let (status, line, title, why) = match e {
        LinkError::Altered | LinkError::OtherRecipient | LinkError::Outdated => (
            403,
            "Link refused",
            "This unsubscribe link can't be used",
            "It is not a link we sent, or not as we sent it (a line break in the email can cut a link short), so it was not used.".to_string(),
        ),
        LinkError::Expired(at) => (
            410,
            "Link expired",
            "This unsubscribe link has expired",
            format!("It worked until {}.", fmt_date(*at)),
        ),
    };
    message(
        status,
        line,
        title,
        vec![format!("{why} Nothing was changed.")],
        Some(OTHER_WAY.to_string()),
    )
}

/// `maya@globex.example` → `m•••@globex.example`: a forwarded page shows
/// whose address it is about without spelling it out.
fn masked(email: &EmailAddress) -> String {
    let (local, domain) = email.as_str().rsplit_once('@').unwrap_or((email.as_str(), ""));
    let first: String = local.chars().take(1).collect();
    format!("{first}•••@{domain}")
}
