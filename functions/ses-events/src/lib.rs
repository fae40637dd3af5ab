//! SES's sending events, as EventBridge delivers them from a configuration
//! set's event destination (source `aws.ses`, detail-type `Email Sent`,
//! `Email Delivered`, ...; the detail is SES's event record: `eventType`,
//! `mail.timestamp`, `mail.messageId`, `mail.tags`), kept as `SendReceipt`s
//! under the email's `milepost-send` tag. The sweep settles emails of
//! unknown outcome from them (`milepost_app::settle`).
//!
//! `handle` is a plain async function over the store and the event, so it is
//! tested without the Lambda runtime; `main.rs` only wires it up.

use std::collections::HashMap;

use milepost_app::ports::{SendReceipt, SendReceipts, StoreError};
use serde::{Deserialize, Serialize};

/// The tag every Milepost email carries (`milepost_aws::ses`).
pub const SEND_TAG: &str = "milepost-send";

/// The EventBridge envelope, as much of it as is read.
#[derive(Deserialize)]
struct Envelope {
    source: String,
    detail: SesRecord,
}

/// SES's event record (its event publishing format).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SesRecord {
    event_type: String,
    mail: Mail,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Mail {
    timestamp: chrono::DateTime<chrono::Utc>,
    message_id: String,
    #[serde(default)]
    tags: HashMap<String, Vec<String>>,
}

/// What one event did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Recorded {
    /// Kept as the receipt of the email with this tag.
    Receipt { tag: String, event: String },
    /// Not a SES event of a Milepost email, or not one SES would send: nothing kept.
    Ignored { why: String },
}

/// Why an event is no SES receipt of a Milepost email.
#[derive(Debug, thiserror::Error)]
pub enum NotAReceipt {
    #[error("not a SES event: {0}")]
    Shape(#[source] serde_json::Error),
    #[error("from {0:?}, not aws.ses")]
    Source(String),
    #[error("no {} tag", SEND_TAG)]
    Untagged,
}

/// Reads `event` as SES's event record of one email.
pub fn receipt_of(event: &serde_json::Value) -> Result<SendReceipt, NotAReceipt> {
    let envelope: Envelope = serde_json::from_value(event.clone()).map_err(NotAReceipt::Shape)?;
    if envelope.source != "aws.ses" {
        return Err(NotAReceipt::Source(envelope.source));
    }
    let record = envelope.detail;
    let tag = record
        .mail
        .tags
        .get(SEND_TAG)
        .and_then(|values| values.first())
        .filter(|t| t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or(NotAReceipt::Untagged)?;
    Ok(SendReceipt {
        tag: tag.clone(),
        message_id: record.mail.message_id,
        event: record.event_type,
        mail_at: record.mail.timestamp,
    })
}

/// Keeps the receipt an event carries. An event that is not one (another
/// source, no tag) is logged and dropped, never retried; a store failure is
/// an error, which Lambda's retries of an asynchronous invocation redeliver.
pub async fn handle(store: &dyn SendReceipts, event: &serde_json::Value) -> Result<Recorded, StoreError> {
    let receipt = match receipt_of(event) {
        Ok(receipt) => receipt,
        Err(why) => {
            tracing::warn!(why = %why, "an event that is no SES receipt of a Milepost email; dropped");
            return Ok(Recorded::Ignored { why: why.to_string() });
        }
    };
    store.record_receipt(&receipt).await?;
    // Ids only: the record's addresses are never read.
    tracing::info!(tag = %receipt.tag, event = %receipt.event, "SES receipt kept");
    Ok(Recorded::Receipt {
        tag: receipt.tag,
        event: receipt.event,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's sample Send record (SES developer guide, "Examples of event
    /// data that Amazon SES publishes to Firehose", headers cut), with our
    /// tag beside the sample's, in the envelope EventBridge delivers it in.
    pub(crate) fn aws_sample(event_type: &str, detail_type: &str, tag: &str) -> serde_json::Value {
        serde_json::json!({
            "version": "0",
            "id": "8e8a6d07-1d2c-4f57-8e6b-2b1a7cfb0f2a",
            "detail-type": detail_type,
            "source": "aws.ses",
            "account": "123456789012",
            "time": "2016-10-14T05:02:17Z",
            "region": "us-east-1",
            "resources": [],
            "detail": {
                "eventType": event_type,
                "mail": {
                    "timestamp": "2016-10-14T05:02:16.645Z",
                    "source": "sender@example.com",
                    "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/sender@example.com",
                    "sendingAccountId": "123456789012",
                    "messageId": "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000",
                    "destination": ["recipient@example.com"],
                    "headersTruncated": false,
                    "headers": [],
                    "commonHeaders": {"from": ["sender@example.com"], "to": ["recipient@example.com"], "messageId": "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000", "subject": "Message sent from Amazon SES"},
                    "tags": {
                        "ses:configuration-set": ["ConfigSet"],
                        "ses:source-ip": ["192.0.2.0"],
                        "ses:from-domain": ["example.com"],
                        "ses:caller-identity": ["ses_user"],
                        "milepost-kind": ["outreach"],
                        SEND_TAG: [tag]
                    }
                },
                "send": {}
            }
        })
    }

    #[test]
    fn an_aws_sample_event_reads_as_its_receipt() {
        let tag = "0123456789abcdef0123456789abcdef";
        let receipt = receipt_of(&aws_sample("Send", "Email Sent", tag)).unwrap();
        assert_eq!(receipt.tag, tag);
        assert_eq!(receipt.event, "Send");
        assert!(receipt.accepted());
        assert_eq!(
            receipt.message_id,
            "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000"
        );
        assert_eq!(receipt.mail_at.to_rfc3339(), "2016-10-14T05:02:16.645+00:00");
        let rejected = receipt_of(&aws_sample("Reject", "Email Rejected", tag)).unwrap();
        assert!(!rejected.accepted());
        assert!(
            !receipt_of(&aws_sample("Rendering Failure", "Email Rendering Failed", tag))
                .unwrap()
                .accepted()
        );
    }

    #[test]
    fn an_event_that_is_no_receipt_is_refused_with_why() {
        let mut untagged = aws_sample("Send", "Email Sent", "x");
        untagged["detail"]["mail"]["tags"]
            .as_object_mut()
            .unwrap()
            .remove(SEND_TAG);
        assert!(receipt_of(&untagged).unwrap_err().to_string().contains("milepost-send"));
        let mut other = aws_sample("Send", "Email Sent", "0123456789abcdef0123456789abcdef");
        other["source"] = "aws.s3".into();
        assert!(receipt_of(&other).unwrap_err().to_string().contains("aws.s3"));
        assert!(receipt_of(&aws_sample("Send", "Email Sent", "not-hex-not-ours")).is_err());
        assert!(receipt_of(&serde_json::json!({"source": "aws.ses"})).is_err());
    }
}
