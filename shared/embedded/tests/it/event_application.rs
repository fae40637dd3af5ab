//! Applying an event exists once, as `AccountState::apply`; the in-memory
//! store applies it in place under its lock. Whatever the order, duplicates
//! and lateness of the events, the store must leave exactly the milestones
//! a plain fold of `AccountState::apply` over copies leaves, report the same
//! ones to announce, and hold the same due set.

use chrono::{Duration, TimeZone, Utc};
use milepost_app::ports::{AccountStore, EventStore, EventsApplied, MilestoneStore};
use milepost_domain::{
    Account, AccountActivity, AccountId, AccountState, Announcements, ProductEvent, TrackedMilestone,
};
use milepost_embedded::InMemoryStore;
use milepost_maps::load_map;
use proptest::prelude::*;

const MAP: &str = r#"segment: all
milestones:
  - {id: count, name: Count, customer_title: Count, phase: onboarding, due_days: 10, owner: csm, criterion: {kind: event_count, event: a, min: 3}, playbook: {outreach: o, csm: c, leadership: l}}
  - {id: window, name: Window, customer_title: Window, phase: onboarding, due_days: 10, owner: csm, criterion: {kind: event_count, event: a, min: 2, window_days: 2}, playbook: {outreach: o, csm: c, leadership: l}}
  - {id: users, name: Users, customer_title: Users, phase: onboarding, due_days: 20, owner: csm, criterion: {kind: distinct_users, event: b, min: 3}, playbook: {outreach: o, csm: c, leadership: l}}
  - {id: seats, name: Seats, customer_title: Seats, phase: adoption, due_days: 90, owner: csm, criterion: {kind: seat_ratio, event: b, min_ratio: 0.5, window_days: 5}, playbook: {outreach: o, csm: c, leadership: l}}
  - {id: metric, name: Metric, customer_title: Metric, phase: onboarding, due_days: 30, owner: csm, criterion: {kind: metric_threshold, event: c, property: v, op: ">=", value: 5}, playbook: {outreach: o, csm: c, leadership: l}}
"#;

fn account() -> Account {
    Account {
        licensed_seats: 8,
        ..milepost_embedded::fixtures::account("acct", milepost_embedded::fixtures::date(2026, 1, 1))
    }
}

fn events() -> impl Strategy<Value = Vec<ProductEvent>> {
    prop::collection::vec((0usize..3, 0i64..60, 0u8..6, 0u32..8), 1..40).prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(|(i, (name, half_days, user, value))| {
                let mut properties = serde_json::Map::new();
                properties.insert("v".into(), serde_json::json!(value));
                ProductEvent {
                    id: format!("e{}", i % 25), // some ids repeat: redeliveries
                    account_id: AccountId::new("acct"),
                    event: ["a", "b", "c"][name].into(),
                    timestamp: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::hours(12 * half_days),
                    user_id: Some(format!("u{user}")),
                    properties,
                }
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn the_store_applies_events_as_the_domain_function_does(evs in events()) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let map = load_map("m.yaml", MAP).unwrap();
            let acct = account();
            let store = InMemoryStore::new();
            store.put_account(&acct).await.unwrap();
            // The reference: the domain function over plain copies, in milestone-id order as stored.
            let mut milestones: Vec<TrackedMilestone> = Vec::new();
            for def in &map.milestones {
                let mut m = TrackedMilestone::new(&acct, &map, def);
                store.create_milestone(&m).await.unwrap();
                m.version = 1; // as created
                milestones.push(m);
            }
            milestones.sort_by(|a, b| a.milestone_id().cmp(b.milestone_id()));
            let mut activity = AccountActivity::new(acct.id.clone());
            let mut seen = std::collections::BTreeSet::new();
            let now = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
            let until = now + Duration::days(14);
            for e in &evs {
                // One claimant for both sides, so their claims compare equal.
                let stored = store
                    .apply_product_events(&e.account_id, std::slice::from_ref(e), now, until, "prop")
                    .await
                    .unwrap();
                let EventsApplied::Known { duplicate, announcements, .. } = stored else {
                    panic!("the account is known")
                };
                let duplicate = duplicate[0];
                let expected = if seen.insert(e.id.clone()) {
                    let changes = AccountState { account: &acct, activity: &mut activity, milestones: &mut milestones }
                        .apply(e, now, "prop")
                        .unwrap();
                    for &i in &changes.milestones {
                        milestones[i].version += 1;
                    }
                    prop_assert!(!duplicate, "{} applied as a duplicate", e.id);
                    Announcements::of(&changes, &milestones)
                } else {
                    prop_assert!(duplicate, "{} applied twice", e.id);
                    Announcements::owed(&milestones)
                };
                prop_assert_eq!(announcements, expected, "announcements differ after {}", e.id);
            }
            let mut stored = store.milestones_of(&acct.id).await.unwrap();
            stored.sort_by(|a, b| a.milestone_id().cmp(b.milestone_id()));
            prop_assert_eq!(stored, milestones.clone());
            // And the sweep sees exactly the milestones that still await it.
            let later = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
            let due: Vec<String> = store.due_milestones(later, None, 100).await.unwrap().items.into_iter().map(|m| m.milestone_id().to_owned()).collect();
            let mut expected: Vec<&TrackedMilestone> = milestones.iter().filter(|m| m.awaits_sweep()).collect();
            expected.sort_by_key(|m| (m.due_at(), m.milestone_id().to_owned()));
            prop_assert_eq!(due, expected.into_iter().map(|m| m.milestone_id().to_owned()).collect::<Vec<_>>());
            Ok(())
        })?;
    }
}
