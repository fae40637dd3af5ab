//! Email through Amazon SES (API v2): `SendEmail` with simple content — a
//! subject, a text and an HTML part — sent under a configuration set (whose
//! suppression options keep bounced and complaining addresses off the list),
//! with `List-Unsubscribe` on customer-facing mail.

use async_trait::async_trait;
use aws_sdk_sesv2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::operation::send_email::SendEmailError;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message, MessageHeader, MessageTag};
use aws_sdk_sesv2::Client;
use base64::Engine;

use crate::domain::Contact;
use crate::email::OutgoingEmail;
use crate::ports::{Mailer, SendError};

pub struct SesMailer {
    client: Client,
    configuration_set: Option<String>,
}

impl SesMailer {
    pub fn new(client: Client, configuration_set: Option<String>) -> Self {
        SesMailer {
            client,
            configuration_set: configuration_set.filter(|s| !s.is_empty()),
        }
    }
}

fn content(data: &str) -> Result<Content, SendError> {
    Content::builder()
        .data(data)
        .charset("UTF-8")
        .build()
        .map_err(|e| SendError::Permanent(e.to_string()))
}

fn header(name: &str, value: String) -> Result<MessageHeader, SendError> {
    MessageHeader::builder()
        .name(name)
        .value(value)
        .build()
        .map_err(|e| SendError::Permanent(e.to_string()))
}

/// `"Display Name" <address>`, MIME-encoded when the name is not plain ASCII.
/// Line breaks are dropped so a name can never start a header of its own.
pub fn mailbox(contact: &Contact) -> String {
    let name: String = contact.name.chars().filter(|c| !c.is_control()).collect();
    let address = contact.email.trim();
    if name.trim().is_empty() {
        return address.to_string();
    }
    if name.is_ascii() {
        let quoted = name.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{quoted}\" <{address}>")
    } else {
        let encoded = base64::engine::general_purpose::STANDARD.encode(name.as_bytes());
        format!("=?UTF-8?B?{encoded}?= <{address}>")
    }
}

/// Whether SES's answer means this email will never go (a rejected message or
/// address), or that trying again later may work (throttling, a paused or
/// misconfigured account, a network fault).
fn classify(err: SdkError<SendEmailError>) -> SendError {
    let reason = match &err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            format!("{}: {}", e.code().unwrap_or("unknown"), e.message().unwrap_or(""))
        }
        other => other.to_string(),
    };
    match err.as_service_error() {
        Some(SendEmailError::MessageRejected(_) | SendEmailError::BadRequestException(_)) => {
            SendError::Permanent(reason)
        }
        _ => SendError::Transient(reason),
    }
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, SendError> {
        let mut message = Message::builder().subject(content(&email.subject)?).body(
            Body::builder()
                .text(content(&email.text)?)
                .html(content(&email.html)?)
                .build(),
        );
        if let Some(url) = &email.list_unsubscribe {
            message = message
                .headers(header("List-Unsubscribe", format!("<{url}>"))?)
                .headers(header(
                    "List-Unsubscribe-Post",
                    "List-Unsubscribe=One-Click".to_string(),
                )?);
        }
        let kind = MessageTag::builder()
            .name("milepost-kind")
            .value(email.kind.as_str())
            .build()
            .map_err(|e| SendError::Permanent(e.to_string()))?;
        let sent = self
            .client
            .send_email()
            .from_email_address(mailbox(&email.from))
            .destination(
                Destination::builder()
                    .set_to_addresses(Some(email.to.iter().map(mailbox).collect()))
                    .build(),
            )
            .content(EmailContent::builder().simple(message.build()).build())
            .set_configuration_set_name(self.configuration_set.clone())
            .email_tags(kind)
            .send()
            .await
            .map_err(classify)?;
        Ok(sent.message_id.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_quotes_plain_names_and_encodes_others() {
        assert_eq!(
            mailbox(&Contact::new("Ada, CSM", "ada@vendor.example")),
            "\"Ada, CSM\" <ada@vendor.example>"
        );
        assert_eq!(
            mailbox(&Contact::new("Zoë \"Z\"", "z@x.example")),
            "=?UTF-8?B?Wm/DqyAiWiI=?= <z@x.example>"
        );
        assert_eq!(mailbox(&Contact::new("", "a@b.example")), "a@b.example");
    }

    #[test]
    fn a_name_cannot_inject_a_header() {
        let m = mailbox(&Contact::new("Eve\r\nBcc: all@x.example", "eve@x.example"));
        assert!(!m.contains('\n') && !m.contains('\r'), "{m}");
    }
}
