use chrono::TimeZone;
use serde_json::json;

use super::*;

fn received() -> Timestamp {
    chrono::Utc.with_ymd_and_hms(2026, 3, 5, 12, 0, 0).unwrap()
}

fn calls(route: TrackingRoute, body: Value) -> Vec<Result<Incoming, FieldError>> {
    TrackingRequest::read(route, &serde_json::to_vec(&body).unwrap())
        .unwrap()
        .calls(received())
        .unwrap()
}

fn event(item: &Result<Incoming, FieldError>) -> &milepost_domain::ProductEvent {
    match item {
        Ok(Incoming::Event(e)) => e,
        other => panic!("expected an event, got {other:?}"),
    }
}

#[test]
fn routes_are_found_under_any_prefix() {
    assert_eq!(
        TrackingRoute::from_path("/lambda-url/ingest/v1/batch"),
        Some(TrackingRoute::Batch)
    );
    assert_eq!(TrackingRoute::from_path("/v1/track/"), Some(TrackingRoute::Track));
    assert_eq!(TrackingRoute::from_path("/v1/identify"), Some(TrackingRoute::Identify));
    assert_eq!(TrackingRoute::from_path("/v1/group"), Some(TrackingRoute::Group));
    assert_eq!(TrackingRoute::from_path("/v1/events"), None);
    assert_eq!(TrackingRoute::from_path("/v1/page"), None);
}

#[test]
fn the_batch_context_is_every_calls_but_a_calls_own_keys_win() {
    let items = calls(
        TrackingRoute::Batch,
        json!({
            "batch": [
                {"type": "track", "event": "a", "messageId": "m1", "timestamp": "2026-03-02T10:00:00Z"},
                {"type": "track", "event": "b", "messageId": "m2", "timestamp": "2026-03-02T10:00:00Z",
                 "context": {"groupId": "globex"}}
            ],
            "context": {"groupId": "acme"},
            "sentAt": "2026-03-05T00:00:00Z",
            "writeKey": "k"
        }),
    );
    assert_eq!(event(&items[0]).account_id.0, "acme");
    assert_eq!(event(&items[1]).account_id.0, "globex");
}

#[test]
fn the_write_key_is_read_from_the_body_and_the_batch_must_be_an_array() {
    let request = TrackingRequest::read(TrackingRoute::Batch, br#"{"batch": {}, "writeKey": "wk"}"#).unwrap();
    assert_eq!(request.write_key(), Some("wk"));
    match request.calls(received()) {
        Err(TrackingBodyError::Shape(e)) => assert_eq!(e.field, "batch"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        TrackingRequest::read(TrackingRoute::Batch, b"[1]"),
        Err(TrackingBodyError::Shape(_))
    ));
    assert!(matches!(
        TrackingRequest::read(TrackingRoute::Batch, b"{\"batch\": ["),
        Err(TrackingBodyError::Malformed(_))
    ));
}

#[test]
fn a_single_call_route_implies_its_type_and_refuses_another() {
    let track = calls(
        TrackingRoute::Track,
        json!({"event": "x", "messageId": "m", "timestamp": "2026-03-02T10:00:00Z", "context": {"groupId": "a"}}),
    );
    assert_eq!(event(&track[0]).event, "x");
    let group = calls(
        TrackingRoute::Group,
        json!({"groupId": "acme", "messageId": "g", "timestamp": "2026-03-02T10:00:00Z", "traits": {"name": "Acme"}}),
    );
    assert!(matches!(&group[0], Ok(Incoming::Account(g)) if g.account_id.0 == "acme"));
    let wrong = calls(
        TrackingRoute::Identify,
        json!({"type": "track", "event": "x", "messageId": "m", "timestamp": "2026-03-02T10:00:00Z"}),
    );
    let e = wrong[0].as_ref().unwrap_err();
    assert_eq!(e.field, "type");
    assert!(e.message.contains("takes identify calls"), "{e}");
}

#[test]
fn a_hand_written_call_without_message_id_or_timestamp_gets_them_and_a_resend_is_the_same_call() {
    let first = json!({"event": "x", "userId": "u", "context": {"groupId": "a"}, "sentAt": "2026-03-05T11:59:00Z"});
    let resent = json!({"event": "x", "userId": "u", "context": {"groupId": "a"}, "sentAt": "2026-03-05T12:03:00Z"});
    let other = json!({"event": "y", "userId": "u", "context": {"groupId": "a"}});
    let (a, b, c) = (
        calls(TrackingRoute::Track, first),
        calls(TrackingRoute::Track, resent),
        calls(TrackingRoute::Track, other),
    );
    let (a, b, c) = (event(&a[0]), event(&b[0]), event(&c[0]));
    assert!(
        a.id.starts_with("milepost-") && a.id.len() == "milepost-".len() + 32,
        "{}",
        a.id
    );
    assert_eq!(a.id, b.id, "a resend with a new sentAt is the same call");
    assert_ne!(a.id, c.id);
    assert_eq!(a.timestamp, received(), "no timestamp: when it was received");
    let original = calls(
        TrackingRoute::Track,
        json!({"event": "x", "messageId": "m", "originalTimestamp": "2026-03-01T08:00:00Z", "context": {"groupId": "a"}}),
    );
    assert_eq!(event(&original[0]).timestamp.to_rfc3339(), "2026-03-01T08:00:00+00:00");
}

#[test]
fn a_call_over_32_kib_is_rejected_alone() {
    let big = "x".repeat(MAX_CALL_BYTES);
    let items = calls(
        TrackingRoute::Batch,
        json!({"batch": [
            {"type": "track", "event": "a", "messageId": "m1", "timestamp": "2026-03-02T10:00:00Z",
             "context": {"groupId": "acme"}, "properties": {"note": big}},
            {"type": "track", "event": "b", "messageId": "m2", "timestamp": "2026-03-02T10:00:00Z",
             "context": {"groupId": "acme"}}
        ]}),
    );
    let e = items[0].as_ref().unwrap_err();
    assert_eq!(e.field, "(call)");
    assert!(e.message.contains("at most 32768 bytes"), "{e}");
    assert_eq!(event(&items[1]).id, "m2");
}
