//! What only the local AWS emulator (moto) offers: the emails SES "sent",
//! which `milepost outbox` lists and the tests read back, and verifying the
//! sender there so SES accepts mail from it.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};

use crate::EmulatorError;

/// One email as the emulator recorded it: moto keeps the HTML part only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmulatorEmail {
    pub id: String,
    /// The From mailbox, as sent.
    pub source: String,
    pub to: Vec<String>,
    pub subject: String,
    pub html: String,
}

#[derive(Deserialize)]
struct MotoMessage {
    id: String,
    source: String,
    #[serde(default)]
    destinations: MotoDestinations,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    body: String,
}

#[derive(Default, Deserialize)]
struct MotoDestinations {
    #[serde(rename = "ToAddresses", default)]
    to: Vec<String>,
}

/// The emails SES has accepted on the emulator at `endpoint`, oldest first.
pub async fn sent_emails(endpoint: &str) -> Result<Vec<EmulatorEmail>, EmulatorError> {
    let url = format!("{}/moto-api/data.json", endpoint.trim_end_matches('/'));
    let uri: http::Uri = url
        .parse()
        .map_err(|e| EmulatorError::of(format!("the emulator's address {url}"), e))?;
    if uri.scheme_str() != Some("http") {
        return Err(EmulatorError::refused(format!(
            "{url}: the outbox is read from the local emulator over plain http"
        )));
    }
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let response = client
        .get(uri)
        .await
        .map_err(|e| EmulatorError::of(format!("reading {url} (is `make local` running?)"), e))?;
    if !response.status().is_success() {
        return Err(EmulatorError::refused(format!(
            "reading {url}: HTTP {} (is this moto?)",
            response.status()
        )));
    }
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| EmulatorError::of(format!("reading {url}"), e))?
        .to_bytes();
    parse_sent_emails(&body).map_err(|e| EmulatorError::of(format!("{url}: not the emulator's data"), e))
}

fn parse_sent_emails(body: &[u8]) -> Result<Vec<EmulatorEmail>, serde_json::Error> {
    #[derive(Deserialize)]
    struct Data {
        #[serde(default)]
        ses: Ses,
    }
    #[derive(Default, Deserialize)]
    struct Ses {
        #[serde(rename = "Message", default)]
        message: Vec<MotoMessage>,
    }
    let data: Data = serde_json::from_slice(body)?;
    Ok(data
        .ses
        .message
        .into_iter()
        .map(|m| EmulatorEmail {
            id: m.id,
            source: m.source,
            to: m.destinations.to,
            subject: m.subject,
            html: m.body,
        })
        .collect())
}

/// Makes `sender`'s domain a verified SES identity on the emulator (which,
/// like SES, rejects mail from unverified senders), unless it is one already.
pub async fn verify_sender(config: &aws_config::SdkConfig, sender: &str) -> Result<(), EmulatorError> {
    let domain = sender
        .rsplit_once('@')
        .map(|(_, d)| d)
        .ok_or_else(|| EmulatorError::refused(format!("sender {sender:?} is not an email address")))?;
    let ses = aws_sdk_sesv2::Client::new(config);
    if ses.get_email_identity().email_identity(domain).send().await.is_ok() {
        return Ok(());
    }
    ses.create_email_identity()
        .email_identity(domain)
        .send()
        .await
        .map_err(|e| EmulatorError::of(format!("verifying {domain} on the emulator"), e.into_service_error()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_emulators_messages() {
        let body = br#"{"ses": {"Message": [{"id": "m1", "source": "\"M\" <m@x.example>",
            "destinations": {"ToAddresses": ["\"Pat\" <pat@a1.example>"]}, "subject": "Hi", "body": "<b>h</b>"}]},
            "dynamodb": {}}"#;
        let emails = parse_sent_emails(body).unwrap();
        assert_eq!(emails.len(), 1);
        assert_eq!(emails[0].to, vec!["\"Pat\" <pat@a1.example>".to_string()]);
        assert_eq!(
            (emails[0].subject.as_str(), emails[0].html.as_str()),
            ("Hi", "<b>h</b>")
        );
        assert!(
            parse_sent_emails(b"{}").unwrap().is_empty(),
            "no SES use yet: no emails"
        );
        assert!(parse_sent_emails(b"<html>").is_err());
    }
}
