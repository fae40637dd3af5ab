//! The in-memory store folds events into milestones in place; every other
//! adapter uses the port's default (read, observe, conditional write). Both
//! must leave the same milestones and report the same ones to announce.

use async_trait::async_trait;
use chrono::{Duration, TimeZone, Utc};
use milepost::domain::{Account, AccountId, ProductEvent, Timestamp, TrackedMilestone};
use milepost::embedded::InMemoryStore;
use milepost::maps::load_map;
use milepost::ports::{MilestoneStore, Page, StoreResult};
use proptest::prelude::*;

/// Delegates everything but `observe_event`, so the port's default runs.
struct DefaultObserve(InMemoryStore);

#[async_trait]
impl MilestoneStore for DefaultObserve {
    async fn create_milestone(&self, m: &TrackedMilestone) -> StoreResult<bool> {
        self.0.create_milestone(m).await
    }
    async fn get_milestone(&self, account: &AccountId, id: &str) -> StoreResult<Option<TrackedMilestone>> {
        self.0.get_milestone(account, id).await
    }
    async fn update_milestone(&self, m: &TrackedMilestone) -> StoreResult<u64> {
        self.0.update_milestone(m).await
    }
    async fn milestones_of(&self, account: &AccountId) -> StoreResult<Vec<TrackedMilestone>> {
        self.0.milestones_of(account).await
    }
    async fn milestones_for_event(
        &self,
        account: &AccountId,
        event: &str,
        at: Timestamp,
    ) -> StoreResult<Vec<TrackedMilestone>> {
        self.0.milestones_for_event(account, event, at).await
    }
    async fn due_milestones(
        &self,
        now: Timestamp,
        after: Option<String>,
        limit: usize,
    ) -> StoreResult<Page<TrackedMilestone>> {
        self.0.due_milestones(now, after, limit).await
    }
}

const MAP: &str = r#"segment: all
milestones:
  - {id: count, name: Count, phase: onboarding, due_days: 10, owner: csm, criterion: {kind: event_count, event: a, min: 3}, playbook: {outreach: o, csm: c, leadership: l}}
  - {id: window, name: Window, phase: onboarding, due_days: 10, owner: csm, criterion: {kind: event_count, event: a, min: 2, window_days: 2}, playbook: {outreach: o, csm: c, leadership: l}}
  - {id: users, name: Users, phase: onboarding, due_days: 20, owner: csm, criterion: {kind: distinct_users, event: b, min: 3}, playbook: {outreach: o, csm: c, leadership: l}}
  - {id: seats, name: Seats, phase: adoption, due_days: 90, owner: csm, criterion: {kind: seat_ratio, event: b, min_ratio: 0.5, window_days: 5}, playbook: {outreach: o, csm: c, leadership: l}}
  - {id: metric, name: Metric, phase: onboarding, due_days: 30, owner: csm, criterion: {kind: metric_threshold, event: c, property: v, op: ">=", value: 5}, playbook: {outreach: o, csm: c, leadership: l}}
"#;

fn account() -> Account {
    Account {
        licensed_seats: 8,
        ..milepost::testkit::account("acct", milepost::testkit::date(2026, 1, 1))
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
    fn in_place_and_default_observe_agree(evs in events()) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let map = load_map("m.yaml", MAP).unwrap();
            let acct = account();
            let in_place = InMemoryStore::new();
            let default = DefaultObserve(InMemoryStore::new());
            for def in &map.milestones {
                in_place.create_milestone(&TrackedMilestone::new(&acct, &map, def)).await.unwrap();
                default.create_milestone(&TrackedMilestone::new(&acct, &map, def)).await.unwrap();
            }
            for e in &evs {
                let a = in_place.observe_event(&acct, e).await.unwrap();
                let b = default.observe_event(&acct, e).await.unwrap();
                prop_assert_eq!(a, b, "announcements differ after {}", e.id);
            }
            let a = in_place.milestones_of(&acct.id).await.unwrap();
            let b = default.milestones_of(&acct.id).await.unwrap();
            prop_assert_eq!(a, b);
            // And the sweep sees the same due milestones.
            let later = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
            let a = in_place.due_milestones(later, None, 100).await.unwrap().items;
            let b = default.due_milestones(later, None, 100).await.unwrap().items;
            prop_assert_eq!(a, b);
            Ok(())
        })?;
    }
}
