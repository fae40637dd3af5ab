//! The account's activity item, compact: an event no criterion reads
//! rewrites it and nothing else, and DynamoDB bills a write unit per KB.
//! Stored as the domain type it would take ~2.4 KB (ninety dates, ten
//! events with ids and RFC 3339 times); this way ~0.7 KB for typical event
//! names and user ids:
//!
//! - `days`: the latest active day and a bitmap of the days before it, bit
//!   `i` for `i` days earlier, in hex: `2026-12-04 0f3a…`;
//! - `recent`: per event, oldest first, `[seconds, nanoseconds, id
//!   fingerprint, event, user or null]`.
//!
//! An item written before this (the whole activity under `item`) is read as it is.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{Duration, NaiveDate, TimeZone, Utc};

use milepost_app::ports::StoreResult;
use milepost_domain::activity::{IdFingerprint, RecentEvent};
use milepost_domain::{AccountActivity, AccountId};

use super::{backend, from_item, s, Item};

pub(super) const DAYS: &str = "days";
pub(super) const RECENT: &str = "recent";

fn number(n: impl ToString) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

fn days(activity: &AccountActivity) -> AttributeValue {
    let Some(&latest) = activity.active_days.last() else {
        return AttributeValue::Null(true);
    };
    let offsets: Vec<usize> = activity
        .active_days
        .iter()
        .map(|&d| (latest - d).num_days() as usize)
        .collect();
    let mut bits = vec![0u8; offsets.iter().max().map_or(0, |m| m / 8 + 1)];
    for i in offsets {
        bits[i / 8] |= 1 << (i % 8);
    }
    let hex: String = bits.iter().map(|b| format!("{b:02x}")).collect();
    s(format!("{latest} {hex}"))
}

fn recent_event(e: &RecentEvent) -> AttributeValue {
    AttributeValue::L(vec![
        number(e.at.timestamp()),
        number(e.at.timestamp_subsec_nanos()),
        number(e.fingerprint.0),
        s(e.event.clone()),
        e.user_id.clone().map_or(AttributeValue::Null(true), s),
    ])
}

/// The attributes the activity is stored in, besides keys and version.
pub(super) fn encode(activity: &AccountActivity) -> [(&'static str, AttributeValue); 2] {
    [
        (DAYS, days(activity)),
        (
            RECENT,
            AttributeValue::L(activity.recent.iter().map(recent_event).collect()),
        ),
    ]
}

fn parse_days(value: &AttributeValue) -> StoreResult<Vec<NaiveDate>> {
    let Ok(text) = value.as_s() else {
        return Ok(Vec::new()); // null: no active day yet
    };
    let malformed = || backend(format!("activity days {text:?} are malformed"));
    let (latest, hex) = text.split_once(' ').ok_or_else(malformed)?;
    let latest: NaiveDate = latest.parse().map_err(|_| malformed())?;
    let mut days = Vec::new();
    for (byte_index, pair) in hex.as_bytes().chunks(2).enumerate() {
        let pair = std::str::from_utf8(pair).map_err(|_| malformed())?;
        let byte = u8::from_str_radix(pair, 16).map_err(|_| malformed())?;
        for bit in 0..8 {
            if byte & (1 << bit) != 0 {
                days.push(latest - Duration::days((byte_index * 8 + bit) as i64));
            }
        }
    }
    Ok(days)
}

fn parse_recent_event(value: &AttributeValue) -> StoreResult<RecentEvent> {
    let malformed = || backend("an activity's recent event is malformed");
    let parts = value.as_l().map_err(|_| malformed())?;
    let [secs, nanos, fingerprint, event, user] = parts.as_slice() else {
        return Err(malformed());
    };
    let n = |v: &AttributeValue| v.as_n().ok().and_then(|n| n.parse::<i64>().ok()).ok_or_else(malformed);
    let at = Utc
        .timestamp_opt(n(secs)?, n(nanos)? as u32)
        .single()
        .ok_or_else(malformed)?;
    let fingerprint = fingerprint
        .as_n()
        .ok()
        .and_then(|f| f.parse::<u64>().ok())
        .ok_or_else(malformed)?;
    Ok(RecentEvent {
        at,
        fingerprint: IdFingerprint(fingerprint),
        event: event.as_s().map_err(|_| malformed())?.clone(),
        user_id: user.as_s().ok().cloned(),
    })
}

/// The activity an item holds, in this form or the one before.
pub(super) fn decode(account: &AccountId, item: &Item) -> StoreResult<AccountActivity> {
    if !item.contains_key(RECENT) {
        return from_item(item);
    }
    let mut activity = AccountActivity::new(account.clone());
    if let Some(days) = item.get(DAYS) {
        activity.active_days = parse_days(days)?.into_iter().collect();
    }
    if let Some(AttributeValue::L(recent)) = item.get(RECENT) {
        activity.recent = recent.iter().map(parse_recent_event).collect::<StoreResult<_>>()?;
    }
    Ok(activity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use milepost_domain::ProductEvent;

    fn event(id: &str, at: chrono::DateTime<Utc>, user: Option<&str>) -> ProductEvent {
        ProductEvent {
            id: id.into(),
            account_id: AccountId::new("acme"),
            event: "report.exported".into(),
            timestamp: at,
            user_id: user.map(Into::into),
            properties: Default::default(),
        }
    }

    fn roundtrip(activity: &AccountActivity) -> AccountActivity {
        let item: Item = encode(activity).into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        decode(&activity.account_id, &item).unwrap()
    }

    #[test]
    fn an_activity_reads_back_as_it_was_written() {
        let mut activity = AccountActivity::new(AccountId::new("acme"));
        assert_eq!(roundtrip(&activity), activity, "empty");
        let start = Utc.with_ymd_and_hms(2026, 3, 1, 9, 30, 0).unwrap() + Duration::nanoseconds(123_456_789);
        // Gaps, the 90-day edge and a user-less event.
        for (i, day) in [0i64, 1, 2, 7, 8, 9, 15, 31, 64, 88, 89, 90, 120, 121, 150, 179]
            .iter()
            .enumerate()
        {
            let user = (i % 3 != 0).then(|| format!("user-{i}@example.com"));
            activity.record(&event(
                &format!("ajs-next-{i:032x}"),
                start + Duration::days(*day),
                user.as_deref(),
            ));
        }
        assert_eq!(
            activity.active_days.len(),
            5,
            "days 90 to 179: those within 90 of the latest"
        );
        assert_eq!(roundtrip(&activity), activity);
    }

    #[test]
    fn a_full_activity_fits_one_write_unit() {
        let mut activity = AccountActivity::new(AccountId::new("acme-corporation-emea"));
        let start = Utc.with_ymd_and_hms(2026, 3, 1, 9, 30, 0).unwrap();
        for i in 0..200 {
            let at = start + Duration::hours(11 * i) + Duration::nanoseconds(987_654_321);
            let user = format!("firstname.lastname{}@customer-example.com", i % 20);
            let id = format!("ajs-next-{:032x}-{:08x}", i * 7919, i);
            activity.record(&event(&id, at, Some(&user)));
        }
        assert_eq!(activity.recent.len(), milepost_domain::activity::RECENT_EVENTS_KEPT);
        let bytes: usize = encode(&activity)
            .iter()
            .map(|(name, value)| name.len() + super::super::value_bytes(value))
            .sum::<usize>()
            + super::super::account_pk(&activity.account_id).len()
            + super::super::ACTIVITY_SK.len()
            + "pkskversion".len()
            + 2;
        assert!(bytes <= 1024, "the activity item is {bytes} bytes");
    }

    #[test]
    fn an_item_stored_before_is_read_as_it_was() {
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 9, 30, 0).unwrap();
        let before = serde_json::json!({
            "account_id": "acme",
            "active_days": ["2026-02-27", "2026-03-01"],
            "recent": [{ "at": at, "id": "e1", "event": "report.exported", "user_id": "u1" }],
        });
        let item: Item = [("item".to_string(), serde_dynamo::to_attribute_value(before).unwrap())].into();
        let mut activity = decode(&AccountId::new("acme"), &item).unwrap();
        assert_eq!(activity.active_days.len(), 2);
        assert_eq!(activity.recent[0].fingerprint, IdFingerprint::of("e1"));
        assert!(!activity.record(&event("e1", at, Some("u1"))), "a redelivery is known");
        assert_eq!(roundtrip(&activity), activity, "and is written in the new form");
    }
}
