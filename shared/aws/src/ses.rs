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

use crate::lazy_client::LazyClient;
use milepost_app::ports::{Mailer, SendError};
use milepost_domain::{Contact, OutgoingEmail};

pub struct SesMailer {
    client: LazyClient<Client>,
    configuration_set: Option<String>,
}

impl SesMailer {
    /// The client's own retries are turned off: SES takes no idempotency
    /// key, so a retry after a lost answer would send the email twice.
    /// `classify` says which failures sent nothing, for the caller to retry.
    pub fn new(client: Client, configuration_set: Option<String>) -> Self {
        SesMailer {
            client: LazyClient::from(without_retries(&client)),
            configuration_set: configuration_set.filter(|s| !s.is_empty()),
        }
    }

    /// As `new`, the client built on the first send (most processes that
    /// could send send nothing in most invocations).
    pub fn lazy(sdk: &aws_config::SdkConfig, configuration_set: Option<String>) -> Self {
        SesMailer {
            client: LazyClient::new(sdk, |sdk| without_retries(&Client::new(sdk))),
            configuration_set: configuration_set.filter(|s| !s.is_empty()),
        }
    }
}

impl SesMailer {
    /// The Message-ID SES wrote on the email `email` answers: SES replaces
    /// any Message-ID it is given with `<MessageId@REGION.amazonses.com>`
    /// (`email.amazonses.com` in us-east-1), so a reply can name it only
    /// from the MessageId SES answered with.
    fn answered_message_id(&self, email: &OutgoingEmail) -> Option<String> {
        let id = email.in_reply_to.as_ref()?.message_id.as_ref()?;
        let region = self.client.get().config().region().map(|r| r.as_ref().to_string());
        Some(ses_message_id(id, region.as_deref()))
    }
}

/// The Message-ID header SES gives the email it answered `message_id` for.
pub fn ses_message_id(message_id: &str, region: Option<&str>) -> String {
    match region {
        None | Some("us-east-1") => format!("<{message_id}@email.amazonses.com>"),
        Some(region) => format!("<{message_id}@{region}.amazonses.com>"),
    }
}

fn without_retries(client: &Client) -> Client {
    let config = client
        .config()
        .to_builder()
        .retry_config(aws_sdk_sesv2::config::retry::RetryConfig::disabled())
        .build();
    Client::from_conf(config)
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
fn mailbox(contact: &Contact) -> String {
    let name: String = contact.name.chars().filter(|c| !c.is_control()).collect();
    let address = contact.email.as_str();
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

/// What SES's answer, or its absence, says of the email: rejected for good
/// (`Permanent`); over the sending rate or quota (`Throttled`: send later);
/// refused by a service fault (`Transient`: nothing went, try again); or no
/// answer after the request may have reached SES (`Unknown`: it may have
/// gone). Only a connection that never opened is known to have sent nothing.
fn classify(err: SdkError<SendEmailError>) -> SendError {
    let reason = match &err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            format!("{}: {}", e.code().unwrap_or("unknown"), e.message().unwrap_or(""))
        }
        other => other.to_string(),
    };
    match &err {
        SdkError::ServiceError(_) => match err.as_service_error() {
            Some(SendEmailError::MessageRejected(_) | SendEmailError::BadRequestException(_)) => {
                SendError::Permanent(reason)
            }
            Some(SendEmailError::TooManyRequestsException(_) | SendEmailError::LimitExceededException(_)) => {
                SendError::Throttled(reason)
            }
            _ => SendError::Transient(reason),
        },
        SdkError::ConstructionFailure(_) => SendError::Transient(reason),
        SdkError::DispatchFailure(_) if never_connected(&err) => SendError::Transient(reason),
        _ => SendError::Unknown(reason),
    }
}

/// Whether the failure happened while connecting, before any byte of the request went.
fn never_connected(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = err.source();
    while let Some(e) = source {
        if e.downcast_ref::<hyper_util::client::legacy::Error>()
            .is_some_and(hyper_util::client::legacy::Error::is_connect)
        {
            return true;
        }
        source = e.source();
    }
    false
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
        // A reply (the follow-up) names the Message-ID SES gave what it answers.
        let answered = self.answered_message_id(email);
        for (name, value) in [
            ("X-Milepost-Account", email.account_header()),
            ("X-Milepost-Milestone", email.milestone_header()),
            ("In-Reply-To", answered.clone()),
            ("References", answered),
        ] {
            if let Some(value) = value {
                message = message.headers(header(name, value)?);
            }
        }
        let kind = MessageTag::builder()
            .name("milepost-kind")
            .value(email.kind.as_str())
            .build()
            .map_err(|e| SendError::Permanent(e.to_string()))?;
        // SES's events (delivery, bounce) carry the tag: they can be matched
        // to the send ledger's key without the key, which names the account.
        let send_tag = MessageTag::builder()
            .name("milepost-send")
            .value(send_key_tag(&email.key))
            .build()
            .map_err(|e| SendError::Permanent(e.to_string()))?;
        let sent = self
            .client
            .get()
            .send_email()
            .from_email_address(mailbox(&email.from))
            .destination(
                Destination::builder()
                    .set_to_addresses(Some(email.to.iter().map(mailbox).collect()))
                    .build(),
            )
            .set_reply_to_addresses(email.reply_to.as_ref().map(|r| vec![mailbox(r)]))
            .content(EmailContent::builder().simple(message.build()).build())
            .set_configuration_set_name(self.configuration_set.clone())
            .set_email_tags(Some([vec![kind, send_tag], about_tags(email)].concat()))
            .send()
            .await
            .map_err(classify)?;
        Ok(sent.message_id.unwrap_or_default())
    }
}

/// `milepost-account` and `milepost-milestone`: the account and milestone
/// an email is about first (its headers name them all), where a tag may
/// hold them (ASCII letters, digits, `_` and `-`, up to 256 characters).
fn about_tags(email: &OutgoingEmail) -> Vec<MessageTag> {
    let tag_safe = |v: &str| {
        !v.is_empty() && v.len() <= 256 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    let Some(first) = email.names.first() else {
        return Vec::new();
    };
    [
        ("milepost-account", first.account_id.as_str()),
        ("milepost-milestone", first.milestone_id.as_str()),
    ]
    .into_iter()
    .filter(|(_, value)| tag_safe(value))
    .filter_map(|(name, value)| MessageTag::builder().name(name).value(value).build().ok())
    .collect()
}

/// The `milepost-send` tag of the email under `key` (`sending::send_tag`).
pub fn send_key_tag(key: &str) -> String {
    milepost_app::sending::send_tag(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_quotes_plain_names_and_encodes_others() {
        assert_eq!(
            mailbox(&Contact::parse("Ada, CSM", "ada@vendor.example").unwrap()),
            "\"Ada, CSM\" <ada@vendor.example>"
        );
        assert_eq!(
            mailbox(&Contact::parse("Zoë \"Z\"", "z@x.example").unwrap()),
            "=?UTF-8?B?Wm/DqyAiWiI=?= <z@x.example>"
        );
        assert_eq!(mailbox(&Contact::parse("", "a@b.example").unwrap()), "a@b.example");
    }

    #[test]
    fn a_name_cannot_inject_a_header() {
        let m = mailbox(&Contact::parse("Eve\r\nBcc: all@x.example", "eve@x.example").unwrap());
        assert!(!m.contains('\n') && !m.contains('\r'), "{m}");
    }

    fn email(list_unsubscribe: Option<&str>) -> OutgoingEmail {
        OutgoingEmail {
            in_reply_to: None,
            key: milepost_domain::SendKey::new("exec-1:outreach_email:customer"),
            kind: milepost_domain::EmailKind::Outreach,
            account_id: milepost_domain::AccountId::new("a1"),
            milestone_id: "first_workflow".into(),
            from: Contact::parse("Maya at Northwind", "cs@vendor.example").unwrap(),
            to: vec![Contact::parse("Pat", "pat@a1.example").unwrap()],
            subject: "Next step".into(),
            text: "plain words".into(),
            html: "<p>html words</p>".into(),
            reply_to: list_unsubscribe.map(|_| Contact::parse("Maya", "maya@vendor.example").unwrap()),
            list_unsubscribe: list_unsubscribe.map(str::to_string),
            date: chrono::DateTime::UNIX_EPOCH,
            names: ["first_workflow", "ten_active_users"]
                .map(|m| milepost_domain::MilestoneRef::new(&milepost_domain::AccountId::new("a1"), m))
                .to_vec(),
        }
    }

    /// An HTTP client that answers every request with one canned response
    /// and keeps the last request's body.
    #[derive(Debug, Clone)]
    struct CapturingClient {
        status: u16,
        error_type: String,
        body: String,
        captured: std::sync::Arc<std::sync::Mutex<Option<Vec<u8>>>>,
    }

    impl aws_smithy_runtime_api::client::http::HttpConnector for CapturingClient {
        fn call(
            &self,
            request: aws_smithy_runtime_api::client::orchestrator::HttpRequest,
        ) -> aws_smithy_runtime_api::client::http::HttpConnectorFuture {
            *self.captured.lock().unwrap() = request.body().bytes().map(<[u8]>::to_vec);
            let mut response = aws_smithy_runtime_api::http::Response::new(
                self.status.try_into().unwrap(),
                aws_smithy_types::body::SdkBody::from(self.body.clone()),
            );
            response
                .headers_mut()
                .insert("x-amzn-errortype", self.error_type.clone());
            aws_smithy_runtime_api::client::http::HttpConnectorFuture::ready(Ok(response))
        }
    }

    impl aws_smithy_runtime_api::client::http::HttpClient for CapturingClient {
        fn http_connector(
            &self,
            _: &aws_smithy_runtime_api::client::http::HttpConnectorSettings,
            _: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        ) -> aws_smithy_runtime_api::client::http::SharedHttpConnector {
            aws_smithy_runtime_api::client::http::SharedHttpConnector::new(self.clone())
        }
    }

    /// Sends `email` through a client that captures the request; returns its JSON body.
    async fn captured_send(
        email: &OutgoingEmail,
        status: u16,
        answer: &str,
    ) -> (Result<String, SendError>, serde_json::Value) {
        let http_client = CapturingClient {
            status,
            error_type: if status == 200 {
                String::new()
            } else {
                answer.to_string()
            },
            body: if status == 200 {
                r#"{"MessageId":"m-1"}"#.to_string()
            } else {
                format!(r#"{{"message":"{answer}"}}"#)
            },
            captured: Default::default(),
        };
        let config = aws_sdk_sesv2::Config::builder()
            .behavior_version(aws_sdk_sesv2::config::BehaviorVersion::latest())
            .region(aws_sdk_sesv2::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sesv2::config::Credentials::new("a", "b", None, None, "test"))
            .retry_config(aws_sdk_sesv2::config::retry::RetryConfig::disabled())
            .http_client(http_client.clone())
            .build();
        let mailer = SesMailer::new(Client::from_conf(config), Some("milepost-playbook".into()));
        let result = mailer.send(email).await;
        let request = http_client.captured.lock().unwrap().take().expect("a request was sent");
        let body = serde_json::from_slice(&request).unwrap();
        (result, body)
    }

    #[tokio::test]
    async fn sends_both_parts_under_the_configuration_set_with_list_unsubscribe() {
        let (result, body) = captured_send(&email(Some("https://app.example.com/unsubscribe?a=1")), 200, "").await;
        assert_eq!(result.unwrap(), "m-1");
        assert_eq!(body["ConfigurationSetName"], "milepost-playbook");
        assert_eq!(body["FromEmailAddress"], "\"Maya at Northwind\" <cs@vendor.example>");
        assert_eq!(body["Destination"]["ToAddresses"][0], "\"Pat\" <pat@a1.example>");
        let simple = &body["Content"]["Simple"];
        assert_eq!(simple["Subject"]["Data"], "Next step");
        assert_eq!(simple["Body"]["Text"]["Data"], "plain words");
        assert_eq!(simple["Body"]["Html"]["Data"], "<p>html words</p>");
        assert_eq!(simple["Body"]["Html"]["Charset"], "UTF-8");
        let headers: Vec<(&str, &str)> = simple["Headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h["Name"].as_str().unwrap(), h["Value"].as_str().unwrap()))
            .collect();
        assert_eq!(
            headers,
            [
                ("List-Unsubscribe", "<https://app.example.com/unsubscribe?a=1>"),
                ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
                ("X-Milepost-Account", "a1"),
                ("X-Milepost-Milestone", "first_workflow, ten_active_users"),
            ]
        );
        let tags: Vec<(&str, &str)> = body["EmailTags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["Name"].as_str().unwrap(), t["Value"].as_str().unwrap()))
            .collect();
        assert_eq!(
            tags[2..],
            [("milepost-account", "a1"), ("milepost-milestone", "first_workflow")],
            "SES events name the account and the email's own milestone"
        );
        assert_eq!(body["EmailTags"][0]["Value"], "outreach");
        assert_eq!(body["EmailTags"][1]["Name"], "milepost-send");
        assert_eq!(
            body["EmailTags"][1]["Value"],
            send_key_tag("exec-1:outreach_email:customer")
        );
        assert_eq!(send_key_tag("exec-1:outreach_email:customer").len(), 32);
        assert_eq!(
            body["ReplyToAddresses"],
            serde_json::json!(["\"Maya\" <maya@vendor.example>"]),
            "replies reach the milestone's owner"
        );
    }

    /// Issue 33: the follow-up answers its outreach in its thread. SES gave
    /// the outreach the Message-ID `<MessageId@email.amazonses.com>` (in
    /// us-east-1), so that is what the reply names.
    #[tokio::test]
    async fn a_reply_names_the_message_id_ses_gave_what_it_answers() {
        let mut reply = email(Some("https://app.example.com/unsubscribe?a=1"));
        reply.in_reply_to = Some(milepost_domain::ThreadRef {
            key: milepost_domain::SendKey::new("exec:outreach_email:customer"),
            message_id: Some("0100018f-abc".into()),
        });
        let (_, body) = captured_send(&reply, 200, "").await;
        let headers: Vec<(String, String)> = body["Content"]["Simple"]["Headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h["Name"].as_str().unwrap().into(), h["Value"].as_str().unwrap().into()))
            .collect();
        for name in ["In-Reply-To", "References"] {
            assert!(
                headers.contains(&(name.into(), "<0100018f-abc@email.amazonses.com>".into())),
                "{headers:?}"
            );
        }
        assert_eq!(
            ses_message_id("0100018f-abc", Some("eu-west-1")),
            "<0100018f-abc@eu-west-1.amazonses.com>"
        );
        // An outreach whose answer was lost has no SES id to name: no header.
        reply.in_reply_to.as_mut().unwrap().message_id = None;
        let (_, body) = captured_send(&reply, 200, "").await;
        let names: Vec<&str> = body["Content"]["Simple"]["Headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["Name"].as_str().unwrap())
            .collect();
        assert!(!names.contains(&"In-Reply-To"), "{names:?}");
    }

    #[tokio::test]
    async fn internal_mail_has_no_unsubscribe_header() {
        let (_, body) = captured_send(&email(None), 200, "").await;
        let headers = body["Content"]["Simple"]["Headers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            headers
                .iter()
                .all(|h| !h["Name"].as_str().unwrap().starts_with("List-Unsubscribe")),
            "{headers:?}"
        );
        assert!(body.get("ReplyToAddresses").is_none());
    }

    #[tokio::test]
    async fn a_rejected_message_is_permanent_and_throttling_transient() {
        let (rejected, _) = captured_send(&email(None), 400, "MessageRejected").await;
        assert!(matches!(rejected, Err(SendError::Permanent(_))), "{rejected:?}");
        let (throttled, _) = captured_send(&email(None), 429, "TooManyRequestsException").await;
        assert!(matches!(throttled, Err(SendError::Throttled(_))), "{throttled:?}");
        let (quota, _) = captured_send(&email(None), 400, "LimitExceededException").await;
        assert!(matches!(quota, Err(SendError::Throttled(_))), "{quota:?}");
        let (fault, _) = captured_send(&email(None), 500, "InternalFailure").await;
        assert!(matches!(fault, Err(SendError::Transient(_))), "{fault:?}");
        let (paused, _) = captured_send(&email(None), 400, "SendingPausedException").await;
        assert!(matches!(paused, Err(SendError::Transient(_))), "{paused:?}");
    }
}
