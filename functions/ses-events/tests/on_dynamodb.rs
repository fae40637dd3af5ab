//! SES's events kept on DynamoDB (moto) through the real handler: the first
//! receipt of an email stands, a redelivered or later event changes
//! nothing, the stream's watermark moves forward only, and the function asks
//! of AWS only what the template grants it.

use milepost_app::ports::Store;
use milepost_aws::DynamoStore;
use milepost_local::MotoServer;
use milepost_ses_events::{handle, Recorded};

fn event(event_type: &str, detail_type: &str, tag: &str, message_id: &str, at: &str) -> serde_json::Value {
    serde_json::json!({
        "version": "0", "id": "e1", "detail-type": detail_type, "source": "aws.ses",
        "account": "123456789012", "time": at, "region": "us-east-1", "resources": [],
        "detail": {
            "eventType": event_type,
            "mail": {
                "timestamp": at, "source": "cs@vendor.example", "messageId": message_id,
                "destination": ["pat@acme.example"],
                "tags": {"ses:configuration-set": ["milepost-playbook"], "milepost-send": [tag]}
            }
        }
    })
}

#[tokio::test]
async fn receipts_are_kept_once_and_the_watermark_moves_forward() {
    let moto = MotoServer::start();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&moto.sdk_config().await), "ses-events");
    store.create_table().await.unwrap();
    moto.record_requests(true).await;
    let tag = "0123456789abcdef0123456789abcdef";
    let sent = event("Send", "Email Sent", tag, "ses-1", "2026-03-02T10:00:00Z");
    for _ in 0..2 {
        // EventBridge delivers at least once.
        assert_eq!(
            handle(&store, &sent).await.unwrap(),
            Recorded::Receipt {
                tag: tag.into(),
                event: "Send".into()
            }
        );
    }
    let delivered = event("Delivery", "Email Delivered", tag, "ses-1", "2026-03-02T10:00:02Z");
    handle(&store, &delivered).await.unwrap();
    let older = event("Send", "Email Sent", &"f".repeat(32), "ses-0", "2026-03-02T09:00:00Z");
    handle(&store, &older).await.unwrap();
    let untagged = {
        let mut e = sent.clone();
        e["detail"]["mail"]["tags"] = serde_json::json!({});
        e
    };
    assert!(matches!(
        handle(&store, &untagged).await.unwrap(),
        Recorded::Ignored { .. }
    ));
    moto.record_requests(false).await;

    let port: &dyn Store = &store;
    let receipt = port.receipt(tag).await.unwrap().unwrap();
    assert_eq!((receipt.event.as_str(), receipt.message_id.as_str()), ("Send", "ses-1"));
    assert_eq!(
        port.stream_watermark().await.unwrap().unwrap().to_rfc3339(),
        "2026-03-02T10:00:02+00:00"
    );
    let used = moto.recorded_actions();
    milepost_local::iam::assert_granted("SesEventsFunction", &used);
}
