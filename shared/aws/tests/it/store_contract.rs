//! One contract, two stores: every assertion here runs against the in-memory
//! store and against the DynamoDB store on a local moto server, so the
//! embedded store cannot drift from DynamoDB's semantics.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use milepost_app::ports::{EventApplied, EventsApplied, MilestoneStore, SendClaim, SendRecord, Store, StoreError};
use milepost_aws::DynamoStore;
use milepost_domain::{
    AccountId, MilestoneMap, MilestoneStatus, ProductEvent, Segment, Tenure, Timestamp, TrackedMilestone,
};
use milepost_domain::{CsmTask, EscalationLogEntry, SendKey, Step, TaskStatus};
use milepost_embedded::fixtures::{account, date, task};
use milepost_embedded::InMemoryStore;
use milepost_local::MotoServer;
use milepost_maps::load_map;

type Fresh<'a> = Box<dyn Fn() -> Pin<Box<dyn Future<Output = Arc<dyn Store>> + 'a>> + 'a>;
/// One behaviour of the contract, run on a fresh store.
type Case = fn(Arc<dyn Store>) -> Pin<Box<dyn Future<Output = ()>>>;

const MAP: &str = r#"segment: all
milestones:
  - {id: first, name: First, customer_title: First, phase: onboarding, due_days: 10, owner: csm, criterion: {kind: event_count, event: a, min: 1}, playbook: {outreach: o, csm: c, leadership: l}}
  - {id: users, name: Users, customer_title: Users, phase: onboarding, due_days: 20, owner: csm, criterion: {kind: distinct_users, event: b, min: 2}, playbook: {outreach: o, csm: c, leadership: l}}
  - {id: other, name: Other, customer_title: Other, phase: onboarding, due_days: 30, owner: csm, criterion: {kind: event_count, event: b, min: 5}, playbook: {outreach: o, csm: c, leadership: l}}
"#;

fn t0() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

fn tracked(account_id: &str) -> Vec<TrackedMilestone> {
    let map = load_map("m.yaml", MAP).unwrap();
    let a = account(account_id, date(2026, 1, 1));
    map.milestones
        .iter()
        .map(|d| TrackedMilestone::new(&a, &map, d))
        .collect()
}

/// An outreach email's line in `account`'s history, `day` days in.
fn log_entry(key: &str, account: &str, day: i64) -> EscalationLogEntry {
    EscalationLogEntry {
        key: key.into(),
        account_id: AccountId::new(account),
        milestone_id: "first".into(),
        execution: "x".into(),
        at: t0() + Duration::days(day),
        step: Some(Step::OutreachEmail),
        detail: "outreach email sent".into(),
        by: None,
    }
}

fn event(id: &str, account_id: &str, name: &str, at: Timestamp, user: &str) -> ProductEvent {
    ProductEvent {
        id: id.into(),
        account_id: AccountId::new(account_id),
        event: name.into(),
        timestamp: at,
        user_id: Some(user.into()),
        properties: Default::default(),
    }
}

async fn accounts_and_maps(store: Arc<dyn Store>) {
    let a = account("acme", date(2026, 1, 1));
    assert!(store.get_account(&a.id).await.unwrap().is_none());
    store.put_account(&a).await.unwrap();
    assert_eq!(*store.get_account(&a.id).await.unwrap().unwrap(), a);
    let mut renamed = a.clone();
    renamed.name = "Acme 2".into();
    store.put_account(&renamed).await.unwrap();
    assert_eq!(store.get_account(&a.id).await.unwrap().unwrap().name, "Acme 2");

    // Conditional replacement (group calls): only over the traits that were read.
    let fresh = account("fresh", date(2026, 1, 1));
    let mut newer = fresh.clone();
    newer.traits_at = Some(t0());
    assert!(
        store.replace_account(&newer, None).await.unwrap(),
        "created where none was"
    );
    assert!(!store.replace_account(&newer, None).await.unwrap(), "one exists now");
    let mut later = newer.clone();
    later.traits_at = Some(t0() + Duration::hours(1));
    later.name = "Fresh, renamed".into();
    assert!(
        !store.replace_account(&later, Some(&fresh)).await.unwrap(),
        "read before the last write: refused"
    );
    assert!(store.replace_account(&later, Some(&newer)).await.unwrap());
    assert_eq!(*store.get_account(&fresh.id).await.unwrap().unwrap(), later);
    // An account written without traits time (`milepost accounts load`) is replaced over exactly that.
    let mut grouped = renamed.clone();
    grouped.traits_at = Some(t0());
    assert!(store.replace_account(&grouped, Some(&renamed)).await.unwrap());
    assert!(!store.replace_account(&grouped, Some(&renamed)).await.unwrap());

    let all = load_map("m.yaml", MAP).unwrap();
    let smb_year1 = MilestoneMap {
        segment: milepost_domain::MapSegment::Only(Segment::Smb),
        tenure: Some(Tenure::FirstYear),
        ..all.clone()
    };
    store.put_map(&all).await.unwrap();
    store.put_map(&smb_year1).await.unwrap();
    let for_smb = store.maps_for(Segment::Smb, Tenure::FirstYear).await.unwrap();
    assert_eq!(for_smb.len(), 2);
    assert_eq!(
        MilestoneMap::select(&for_smb, Segment::Smb, Tenure::FirstYear),
        Some(&smb_year1)
    );
    assert_eq!(
        store.maps_for(Segment::Enterprise, Tenure::MultiYear).await.unwrap(),
        vec![all]
    );
}

async fn milestones_are_written_conditionally(store: Arc<dyn Store>) {
    let ms = tracked("acme");
    assert!(store.create_milestone(&ms[0]).await.unwrap());
    assert!(!store.create_milestone(&ms[0]).await.unwrap(), "created twice");
    let stored = store.get_milestone(ms[0].account_id(), "first").await.unwrap().unwrap();
    assert_eq!(stored.version, 1);

    let mut a = stored.clone();
    milepost_domain::seed::milestone(&mut a).status(MilestoneStatus::Missed);
    let mut b = stored.clone();
    milepost_domain::seed::milestone(&mut b).status(MilestoneStatus::Achieved);
    assert_eq!(store.update_milestone(&a).await.unwrap(), 2);
    assert!(
        matches!(store.update_milestone(&b).await, Err(StoreError::Conflict)),
        "a stale write won"
    );
    let now = store.get_milestone(ms[0].account_id(), "first").await.unwrap().unwrap();
    assert_eq!((now.status(), now.version), (MilestoneStatus::Missed, 2));
}

/// Applies one event at `t0()`, remembering it for 14 days.
async fn apply(store: &Arc<dyn Store>, e: &ProductEvent) -> EventApplied {
    store
        .apply_product_event(e, t0(), t0() + Duration::days(14))
        .await
        .unwrap()
}

/// The ids of `account`'s milestones whose stored version moved since `before`.
async fn changed_since(store: &Arc<dyn Store>, account: &AccountId, before: &[TrackedMilestone]) -> BTreeSet<String> {
    let mut changed = BTreeSet::new();
    for m in store.milestones_of(account).await.unwrap() {
        let was = before
            .iter()
            .find(|b| b.milestone_id() == m.milestone_id())
            .map(|b| b.version);
        if was != Some(m.version) {
            changed.insert(m.milestone_id().to_owned());
        }
    }
    changed
}

async fn events_change_only_the_milestones_they_can_change(store: Arc<dyn Store>) {
    let acct = account("acme", date(2026, 1, 1));
    store.put_account(&acct).await.unwrap();
    for m in tracked("acme") {
        store.create_milestone(&m).await.unwrap();
    }
    let id = AccountId::new("acme");
    let before = store.milestones_of(&id).await.unwrap();
    apply(&store, &event("b1", "acme", "b", t0(), "u")).await;
    assert_eq!(
        changed_since(&store, &id, &before).await,
        BTreeSet::from(["users".into(), "other".into()]),
        "an event changes the milestones listening to it, and only those"
    );
    let before = store.milestones_of(&id).await.unwrap();
    apply(&store, &event("z1", "acme", "zzz", t0(), "u")).await;
    assert!(changed_since(&store, &id, &before).await.is_empty());
    assert!(matches!(
        apply(&store, &event("n1", "nobody", "a", t0(), "u")).await,
        EventApplied::UnknownAccount
    ));

    // Reached on day 2: an event from day 1 may still move it, one from day 3 cannot.
    let EventApplied::Known { announcements, .. } =
        apply(&store, &event("e1", "acme", "a", t0() + Duration::days(2), "u")).await
    else {
        panic!("acme is known")
    };
    assert_eq!(
        announcements.claimed.len(),
        1,
        "reached, and claimed for its announcement in the same write"
    );
    assert!(
        announcements.claimed[0].needs_reached_announcement(),
        "not announced yet"
    );
    let before = store.milestones_of(&id).await.unwrap();
    apply(&store, &event("e3", "acme", "a", t0() + Duration::days(3), "u")).await;
    assert!(
        changed_since(&store, &id, &before).await.is_empty(),
        "an event after the achievement changes nothing"
    );
    apply(&store, &event("e0", "acme", "a", t0() + Duration::days(1), "u")).await;
    let first = store.get_milestone(&id, "first").await.unwrap().unwrap();
    assert_eq!(
        first.reached_at(),
        Some(t0() + Duration::days(1)),
        "backdated by a late older event"
    );
    assert_eq!(store.milestones_of(&id).await.unwrap().len(), 3);
}

async fn the_due_index_holds_only_what_the_sweep_must_act_on(store: Arc<dyn Store>) {
    let mut expected = BTreeSet::new();
    for n in 0..12 {
        let a = format!("acct-{n:02}");
        for m in tracked(&a) {
            store.create_milestone(&m).await.unwrap();
            if m.milestone_id() == "first" {
                expected.insert((a.clone(), m.milestone_id().to_owned()));
            }
        }
    }
    let now = t0() + Duration::days(15); // only `first` (day 10) is due
                                         // Achieved before due: leaves the index.
    store.put_account(&account("acct-00", date(2026, 1, 1))).await.unwrap();
    apply(&store, &event("x", "acct-00", "a", t0() + Duration::days(1), "u")).await;
    expected.remove(&("acct-00".to_string(), "first".to_string()));
    // Missed, escalation not started: stays. Started: leaves.
    let mut missed = store
        .get_milestone(&AccountId::new("acct-01"), "first")
        .await
        .unwrap()
        .unwrap();
    missed.miss(now, "exec-1".into()).unwrap();
    missed.version = store.update_milestone(&missed).await.unwrap();
    let mut started = store
        .get_milestone(&AccountId::new("acct-02"), "first")
        .await
        .unwrap()
        .unwrap();
    started.miss(now, "exec-2".into()).unwrap();
    started.version = store.update_milestone(&started).await.unwrap();
    started.release_miss(false, None, true);
    store.update_milestone(&started).await.unwrap();
    expected.remove(&("acct-02".to_string(), "first".to_string()));

    // Read in small pages: every due milestone exactly once.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.due_milestones(now, cursor.take(), 3).await.unwrap();
        assert!(page.items.len() <= 3);
        seen.extend(
            page.items
                .into_iter()
                .map(|m| (m.account_id().to_string(), m.milestone_id().to_owned())),
        );
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let unique: BTreeSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "a milestone came twice: {seen:?}");
    assert_eq!(unique, expected);
    assert!(
        store.due_milestones(t0(), None, 100).await.unwrap().items.is_empty(),
        "nothing is due at the start"
    );
}

async fn dedupe_parking_and_activity(store: Arc<dyn Store>) {
    let (acme, other) = (AccountId::new("acme"), AccountId::new("other"));
    assert!(!store.seen(&acme, "e1", t0()).await.unwrap());
    store.remember(&acme, "e1", t0() + Duration::days(14)).await.unwrap();
    assert!(store.seen(&acme, "e1", t0() + Duration::days(13)).await.unwrap());
    assert!(
        !store.seen(&other, "e1", t0() + Duration::days(13)).await.unwrap(),
        "another account's event with the same id counted as seen"
    );
    assert!(
        !store.seen(&acme, "e1", t0() + Duration::days(15)).await.unwrap(),
        "an expired record still counted"
    );

    let e = event("p1", "later", "a", t0(), "u");
    store.park(&e).await.unwrap();
    store.park(&e).await.unwrap();
    store.park(&event("p2", "later", "a", t0(), "u")).await.unwrap();
    assert_eq!(store.parked_for(&AccountId::new("later")).await.unwrap().len(), 2);
    let later = AccountId::new("later");
    assert_eq!(
        store.parked_count(&later, 10).await.unwrap(),
        2,
        "a re-parked event counts once"
    );
    assert_eq!(
        store.parked_count(&later, 1).await.unwrap(),
        1,
        "counting stops at the limit"
    );
    assert_eq!(store.parked_count(&AccountId::new("none"), 10).await.unwrap(), 0);
    store.park(&event("p3", "other", "a", t0(), "u")).await.unwrap();
    assert_eq!(
        store.parked_accounts().await.unwrap(),
        vec![(AccountId::new("later"), 2), (AccountId::new("other"), 1)],
        "parked accounts with their counts; a re-parked event counts once"
    );
    store.unpark(&AccountId::new("other"), "p3").await.unwrap();
    store.unpark(&AccountId::new("later"), "p1").await.unwrap();
    assert_eq!(
        store.parked_for(&AccountId::new("later")).await.unwrap(),
        vec![event("p2", "later", "a", t0(), "u")]
    );

    let id = AccountId::new("acme");
    store.put_account(&account("acme", date(2026, 1, 1))).await.unwrap();
    for _ in 0..2 {
        apply(&store, &event("a1", "acme", "a", t0(), "u1")).await;
    }
    apply(&store, &event("a2", "acme", "b", t0() + Duration::days(1), "u2")).await;
    let activity = store.activity(&id).await.unwrap();
    assert_eq!(activity.recent.len(), 2, "recorded twice");
    assert_eq!(activity.active_days.len(), 2);
    assert_eq!(store.activity(&AccountId::new("quiet")).await.unwrap().recent.len(), 0);
}

/// Tasks change conditionally and move between the index partitions their
/// status puts them in; snoozes that are over come back soonest first.
async fn tasks_move_with_their_status(store: Arc<dyn Store>) {
    use milepost_domain::{Actor, Outcome, TaskAction};
    let maya = "maya@vendor.example";
    for (n, owner) in [(1, maya), (2, maya), (3, "sam@vendor.example")] {
        let t = task(&format!("e{n}:csm-task"), owner, t0() + Duration::hours(n));
        assert!(store.create_task(&t).await.unwrap());
    }
    let by = Actor::Person {
        name: "Maya".into(),
        email: maya.into(),
    };
    // e1 done; a write over the version read before that loses.
    let mut e1 = store.get_task("e1:csm-task").await.unwrap().unwrap();
    let stale = e1.clone();
    let done = TaskAction::Done {
        outcome: Outcome::PlanAgreed,
        note: Some("agreed".into()),
    };
    e1.apply(&done, &by, t0() + Duration::days(1), None).unwrap();
    assert_eq!(store.update_task(&e1).await.unwrap(), 2);
    assert!(
        matches!(store.update_task(&stale).await, Err(StoreError::Conflict)),
        "a stale write won"
    );
    // e2 and e3 snoozed, e3's snooze ending first.
    for (id, days) in [("e2:csm-task", 5), ("e3:csm-task", 3)] {
        let mut t = store.get_task(id).await.unwrap().unwrap();
        let snooze = TaskAction::Snooze {
            until: t0() + Duration::days(days),
            note: None,
        };
        t.apply(&snooze, &by, t0(), None).unwrap();
        store.update_task(&t).await.unwrap();
    }
    let ids = |ts: Vec<CsmTask>| ts.into_iter().map(|t| t.id().to_owned()).collect::<Vec<_>>();
    assert_eq!(
        ids(store.tasks_for_owner(maya, None).await.unwrap()),
        ["e1:csm-task", "e2:csm-task"]
    );
    assert_eq!(
        ids(store.tasks_for_owner(maya, Some(TaskStatus::Done)).await.unwrap()),
        ["e1:csm-task"]
    );
    assert!(
        store.tasks_with_status(TaskStatus::Open).await.unwrap().is_empty(),
        "none left open"
    );
    assert_eq!(store.tasks_with_status(TaskStatus::Snoozed).await.unwrap().len(), 2);
    assert!(store
        .snoozes_over(t0() + Duration::days(2), 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        ids(store.snoozes_over(t0() + Duration::days(4), 10).await.unwrap()),
        ["e3:csm-task"]
    );
    assert_eq!(
        ids(store.snoozes_over(t0() + Duration::days(6), 10).await.unwrap()),
        ["e3:csm-task", "e2:csm-task"],
        "soonest first"
    );
    assert_eq!(
        store.snoozes_over(t0() + Duration::days(6), 1).await.unwrap().len(),
        1,
        "at most the limit"
    );
    let done_one = store.get_task("e1:csm-task").await.unwrap().unwrap();
    assert_eq!(done_one.notes()[0].text, "agreed");
    assert!(store.get_task("nope").await.unwrap().is_none());

    // The account's customer-email pause.
    let acme = AccountId::new("acme");
    assert!(store.customer_email_pause(&acme).await.unwrap().is_none());
    let pause = milepost_domain::CustomerEmailPause::starting(t0(), by.clone(), Some("k".into()));
    store.pause_customer_emails(&acme, &pause).await.unwrap();
    assert_eq!(store.customer_email_pause(&acme).await.unwrap(), Some(pause));
    assert!(store
        .customer_email_pause(&AccountId::new("other"))
        .await
        .unwrap()
        .is_none());
}

async fn tasks_logs_and_sends_happen_once(store: Arc<dyn Store>) {
    let task = task("x:csm-task", "maya@vendor.example", t0());
    assert!(store.create_task(&task).await.unwrap());
    assert!(!store.create_task(&task).await.unwrap());
    let stored = store.get_task("x:csm-task").await.unwrap().unwrap();
    assert_eq!(stored.version, 1);
    assert_eq!(
        store
            .tasks_for_owner("maya@vendor.example", Some(TaskStatus::Open))
            .await
            .unwrap(),
        vec![stored.clone()]
    );
    assert!(store
        .tasks_for_owner("other@vendor.example", None)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.tasks_with_status(TaskStatus::Open).await.unwrap().len(), 1);

    let entry = |key: &str, day: i64| log_entry(key, "acme", day);
    assert!(store.append_log(&entry("k2", 2)).await.unwrap());
    assert!(store.append_log(&entry("k1", 1)).await.unwrap());
    assert!(!store.append_log(&entry("k1", 1)).await.unwrap(), "appended twice");
    let log = store.log_of(&AccountId::new("acme")).await.unwrap();
    assert_eq!(log.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(), vec!["k1", "k2"]);

    let now = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
    let first = SendClaim::fresh(now);
    let second = SendClaim::fresh(now);
    assert_eq!(store.claim_send(&SendKey::new("s"), &first).await.unwrap(), None);
    assert_eq!(
        store.claim_send(&SendKey::new("s"), &first).await.unwrap(),
        None,
        "a claim read back by its own claimant (its answer lost) is still its own"
    );
    assert_eq!(
        store.claim_send(&SendKey::new("s"), &second).await.unwrap(),
        Some(SendRecord::claimed(&first))
    );
    store.release_send(&SendKey::new("s"), &second).await.unwrap();
    assert_eq!(
        store.send_record(&SendKey::new("s")).await.unwrap(),
        Some(SendRecord::claimed(&first)),
        "only its claimant gives a claim back"
    );
    store.release_send(&SendKey::new("s"), &first).await.unwrap();
    assert_eq!(
        store.claim_send(&SendKey::new("s"), &second).await.unwrap(),
        None,
        "released claims can be taken again"
    );
    store
        .settle_send(
            &SendKey::new("s"),
            &SendRecord::Sent {
                subject: None,
                message_id: "m".into(),
            },
        )
        .await
        .unwrap();
    store.release_send(&SendKey::new("s"), &second).await.unwrap();
    assert_eq!(
        store.claim_send(&SendKey::new("s"), &second).await.unwrap(),
        Some(SendRecord::Sent {
            subject: None,
            message_id: "m".into()
        }),
        "a sent record is never released"
    );
}

async fn large_accounts_are_read_past_one_page(store: Arc<dyn Store>) {
    // Progress of 60 milestones with ~20 KB each: well past DynamoDB's 1 MB query page.
    let a = account("big", date(2026, 1, 1));
    let map = load_map("m.yaml", MAP).unwrap();
    for n in 0..60 {
        let mut def = map.milestones[1].clone();
        def.id = format!("m{n:02}");
        def.name = "x".repeat(20_000);
        let m = TrackedMilestone::new(&a, &map, &def);
        store.create_milestone(&m).await.unwrap();
    }
    assert_eq!(store.milestones_of(&a.id).await.unwrap().len(), 60);
}

/// What `milepost report` reads: every account, milestone and map exactly
/// once, page after page (past DynamoDB's 1 MB scan page here).
async fn every_record_is_scanned_once(store: Arc<dyn Store>) {
    use milepost_app::ports::Record;
    let mut smb = load_map("m.yaml", MAP).unwrap();
    smb.segment = milepost_domain::MapSegment::Only(Segment::Smb);
    store.put_map(&smb).await.unwrap();
    let ids = ["acme", "globex", "initech"];
    for id in ids {
        store.put_account(&account(id, date(2026, 1, 1))).await.unwrap();
        for m in tracked(id) {
            store.create_milestone(&m).await.unwrap();
        }
    }
    large_accounts_are_read_past_one_page(store.clone()).await;
    let (mut accounts, mut milestones, mut maps, mut pages) = (Vec::new(), Vec::new(), Vec::new(), 0);
    let mut cursor = None;
    loop {
        let page = store.records_page(cursor.take()).await.unwrap();
        pages += 1;
        for record in page.items {
            match record {
                Record::Account(a) => accounts.push(a.id.to_string()),
                Record::Milestone(m) => milestones.push(format!("{}/{}", m.account_id(), m.milestone_id())),
                Record::Map(m) => maps.push(*m),
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    accounts.sort();
    assert_eq!(accounts, ids);
    assert_eq!(maps, vec![smb], "the map, once, as stored");
    let n = milestones.len();
    milestones.sort();
    milestones.dedup();
    assert_eq!(milestones.len(), n, "no milestone twice");
    // On DynamoDB 1.2 MB cannot come in one page: every one found means the pages were followed.
    assert_eq!(n, 3 * tracked("acme").len() + 60, "in {pages} page(s)");
}

async fn events_are_applied_once_as_a_unit(store: Arc<dyn Store>) {
    let a = account("acme", date(2026, 1, 1));
    let later = t0() + Duration::days(14);
    let stranger = event("s1", "nobody", "a", t0() + Duration::hours(1), "u1");
    assert!(matches!(
        store.apply_product_event(&stranger, t0(), later).await.unwrap(),
        EventApplied::UnknownAccount
    ));
    assert!(
        !store.seen(&AccountId::new("nobody"), "s1", t0()).await.unwrap(),
        "nothing remembered for an unknown account"
    );

    store.put_account(&a).await.unwrap();
    for m in tracked("acme") {
        store.create_milestone(&m).await.unwrap();
    }
    let reaching = event("e1", "acme", "a", t0() + Duration::hours(1), "u1");
    let EventApplied::Known {
        duplicate,
        announcements,
        ..
    } = store.apply_product_event(&reaching, t0(), later).await.unwrap()
    else {
        panic!("acme is known");
    };
    assert!(!duplicate);
    let to_announce: Vec<_> = announcements
        .claimed
        .iter()
        .chain(&announcements.unclaimed)
        .map(|m| m.milestone_id())
        .collect();
    assert_eq!(
        to_announce,
        ["first"],
        "the reached milestone is handed back for announcing"
    );
    let first = store.get_milestone(&a.id, "first").await.unwrap().unwrap();
    assert_eq!(first.status(), MilestoneStatus::Achieved);
    assert!(
        store.seen(&a.id, "e1", t0()).await.unwrap(),
        "remembered with the change"
    );
    assert_eq!(store.activity(&a.id).await.unwrap().recent.len(), 1);

    let Ok(EventApplied::Known { duplicate, .. }) = store.apply_product_event(&reaching, t0(), later).await else {
        panic!("acme is known");
    };
    assert!(duplicate, "applied twice");
    assert_eq!(store.get_milestone(&a.id, "first").await.unwrap().unwrap(), first);

    let progressing = event("e2", "acme", "b", t0() + Duration::hours(2), "u1");
    store.apply_product_event(&progressing, t0(), later).await.unwrap();
    let users = store.get_milestone(&a.id, "users").await.unwrap().unwrap();
    assert_eq!(users.status(), MilestoneStatus::Pending);
    assert_eq!(users.version, 2);
    // Past its dedupe record's expiry the event is applied again, and changes nothing.
    let after_expiry = later + Duration::days(1);
    let Ok(EventApplied::Known { duplicate, .. }) = store
        .apply_product_event(&progressing, after_expiry, after_expiry + Duration::days(14))
        .await
    else {
        panic!("acme is known");
    };
    assert!(!duplicate, "an expired dedupe record still counted");
    assert_eq!(store.get_milestone(&a.id, "users").await.unwrap().unwrap(), users);
    assert_eq!(store.activity(&a.id).await.unwrap().recent.len(), 2);
}

async fn apply_together(store: &dyn Store, account: &AccountId, events: &[ProductEvent]) -> (Vec<bool>, Vec<String>) {
    let later = t0() + Duration::days(14);
    let EventsApplied::Known {
        duplicate,
        announcements,
        ..
    } = store
        .apply_product_events(account, events, t0(), later, "together")
        .await
        .unwrap()
    else {
        panic!("{account} is known");
    };
    let claimed = announcements
        .claimed
        .iter()
        .map(|m| m.milestone_id().to_owned())
        .collect();
    (duplicate, claimed)
}

/// What a store keeps of an account's events, to compare: milestones with
/// their progress, and the activity.
async fn kept(store: &dyn Store, account: &AccountId) -> (Vec<TrackedMilestone>, milepost_domain::AccountActivity) {
    let mut milestones = store.milestones_of(account).await.unwrap();
    milestones.sort_by(|a, b| a.milestone_id().cmp(b.milestone_id()));
    (milestones, store.activity(account).await.unwrap())
}

/// One account's events of one request, applied together, end where the
/// same events applied one at a time end, in any order. An event no
/// criterion reads leaves no dedupe record (its redelivery is applied again
/// and changes nothing); one a criterion reads is remembered, so a second
/// copy in the same request or a later redelivery is a duplicate. More
/// records than one DynamoDB transaction holds are all written.
async fn one_accounts_events_are_applied_together(store: Arc<dyn Store>) {
    let a = account("acme", date(2026, 1, 1));
    let one_by_one = InMemoryStore::new();
    for s in [store.as_ref(), &one_by_one as &dyn Store] {
        s.put_account(&a).await.unwrap();
        for m in tracked("acme") {
            s.create_milestone(&m).await.unwrap();
        }
    }
    let at = |h: i64| t0() + Duration::hours(h);
    let events = vec![
        event("p1", "acme", "page.viewed", at(1), "u1"),
        event("b1", "acme", "b", at(2), "u1"),
        event("a1", "acme", "a", at(3), "u2"),
        event("b1", "acme", "b", at(2), "u1"),
        event("b2", "acme", "b", at(4), "u3"),
        event("p2", "acme", "page.viewed", at(5), "u3"),
    ];
    let (duplicate, claimed) = apply_together(store.as_ref(), &a.id, &events).await;
    assert_eq!(duplicate, [false, false, false, true, false, false], "b1's second copy");
    assert_eq!(claimed, ["first", "users"], "reached, each claimed once for announcing");
    for (id, remembered) in [("p1", false), ("b1", true), ("a1", true), ("b2", true), ("p2", false)] {
        assert_eq!(store.seen(&a.id, id, t0()).await.unwrap(), remembered, "{id}");
    }
    for e in events.iter().rev() {
        milepost_app::ports::EventStore::apply_product_event(&one_by_one, e, t0(), t0() + Duration::days(14))
            .await
            .unwrap();
    }
    let after = kept(store.as_ref(), &a.id).await;
    let (milestones, activity) = &after;
    let (reference, reference_activity) = kept(&one_by_one, &a.id).await;
    assert_eq!(
        activity, &reference_activity,
        "the activity as one at a time, in reverse"
    );
    assert_eq!(activity.recent.len(), 5, "every distinct event, the unread ones too");
    for (m, r) in milestones.iter().zip(&reference) {
        assert_eq!(
            (&m.milestone_id(), m.status(), m.reached_at(), &m.progress()),
            (&r.milestone_id(), r.status(), r.reached_at(), &r.progress()),
        );
    }
    let users = milestones.iter().find(|m| m.milestone_id() == "users").unwrap();
    assert_eq!(users.status(), MilestoneStatus::Achieved, "u1 and u3 sent b");
    assert_eq!(users.version, 2, "written once for its two events");

    // The request again, in another order: what a criterion reads is a duplicate, the rest changes nothing.
    let again: Vec<ProductEvent> = events.iter().rev().cloned().collect();
    let (duplicate, claimed) = apply_together(store.as_ref(), &a.id, &again).await;
    assert_eq!(duplicate, [false, true, true, true, true, false]);
    assert!(claimed.is_empty());
    assert_eq!(kept(store.as_ref(), &a.id).await, after, "nothing changed");

    // More dedupe records than one transaction holds (100 items).
    let many: Vec<ProductEvent> = (0..150)
        .map(|i| event(&format!("m{i}"), "acme", "b", at(10) + Duration::seconds(i), "u4"))
        .collect();
    let (duplicate, _) = apply_together(store.as_ref(), &a.id, &many).await;
    assert!(duplicate.iter().all(|d| !d));
    for e in &many {
        assert!(store.seen(&a.id, &e.id, t0()).await.unwrap(), "{} remembered", e.id);
    }
    let other = store.get_milestone(&a.id, "other").await.unwrap().unwrap();
    assert_eq!(other.status(), MilestoneStatus::Achieved, "five b events and more");
    let (duplicate, _) = apply_together(store.as_ref(), &a.id, &many).await;
    assert!(duplicate.iter().all(|d| *d), "all remembered");
}

/// The heads-up index holds a pending milestone whose map asks for a
/// heads-up, under the time to look at it, until it is done or reached: a
/// look-again time moves the entry, an event that reaches the milestone
/// removes it, and small pages read each entry once. An expansion
/// milestone's opportunity is in it from its announcement, under the
/// milestone's start (due at once), until its owner is told.
async fn the_heads_up_index_follows_when_to_look(store: Arc<dyn Store>) {
    const WARNED: &str = r#"segment: all
milestones:
  - {id: first, name: First, customer_title: First, phase: onboarding, due_days: 10, owner: csm, warn_before_days: 3, criterion: {kind: event_count, event: a, min: 1}, playbook: {outreach: o, csm: c, leadership: l}}
  - {id: quiet, name: Quiet, customer_title: Quiet, phase: onboarding, due_days: 20, owner: csm, criterion: {kind: event_count, event: b, min: 1}, playbook: {outreach: o, csm: c, leadership: l}}
"#;
    let map = load_map("m.yaml", WARNED).unwrap();
    let ids: Vec<String> = (0..7).map(|n| format!("acct-{n:02}")).collect();
    for id in &ids {
        let a = account(id, date(2026, 1, 1));
        store.put_account(&a).await.unwrap();
        for d in &map.milestones {
            store
                .create_milestone(&TrackedMilestone::new(&a, &map, d))
                .await
                .unwrap();
        }
    }
    let read = |until: Timestamp| {
        let store = store.clone();
        async move {
            let mut seen = Vec::new();
            let mut cursor = None;
            loop {
                let page = store.heads_up_milestones(until, cursor.take(), 2).await.unwrap();
                assert!(page.items.len() <= 2);
                seen.extend(page.items.into_iter().map(|m| m.account_id().to_string()));
                match page.next {
                    Some(c) => cursor = Some(c),
                    None => return seen,
                }
            }
        }
    };
    // The window opens on day 7 (three days before day 10); `quiet` asks for none.
    assert!(read(t0() + Duration::days(6)).await.is_empty());
    let mut expected: BTreeSet<String> = ids.iter().cloned().collect();
    let day7 = read(t0() + Duration::days(7)).await;
    assert_eq!(day7.len(), ids.len(), "each once: {day7:?}");
    assert_eq!(day7.iter().cloned().collect::<BTreeSet<_>>(), expected);
    // Looked at again on day 8: out of day 7's reading, in day 8's.
    let later = store
        .get_milestone(&AccountId::new("acct-01"), "first")
        .await
        .unwrap()
        .unwrap();
    let mut later = later;
    later.look_at_heads_up_again(t0() + Duration::days(8));
    store.update_milestone(&later).await.unwrap();
    // Done: out for good.
    let mut done = store
        .get_milestone(&AccountId::new("acct-02"), "first")
        .await
        .unwrap()
        .unwrap();
    done.mark_heads_up_done();
    store.update_milestone(&done).await.unwrap();
    expected.remove("acct-02");
    // Reached by an event: out.
    apply(&store, &event("e1", "acct-03", "a", t0() + Duration::days(2), "u")).await;
    expected.remove("acct-03");
    let mut day7_again: BTreeSet<String> = expected.clone();
    day7_again.remove("acct-01");
    assert_eq!(
        read(t0() + Duration::days(7))
            .await
            .into_iter()
            .collect::<BTreeSet<_>>(),
        day7_again
    );
    assert_eq!(
        read(t0() + Duration::days(8))
            .await
            .into_iter()
            .collect::<BTreeSet<_>>(),
        expected
    );

    const GROWTH: &str = r#"segment: all
milestones:
  - {id: grow, name: Grow, phase: expansion, owner: ae, criterion: {kind: event_count, event: g, min: 1}, expansion: {adds: 5, unit: seats, play: p}}
"#;
    let map = load_map("g.yaml", GROWTH).unwrap();
    let grower = account("grower", date(2026, 1, 1));
    store.put_account(&grower).await.unwrap();
    store
        .create_milestone(&TrackedMilestone::new(&grower, &map, &map.milestones[0]))
        .await
        .unwrap();
    apply(&store, &event("g1", "grower", "g", t0() + Duration::days(2), "u")).await;
    let grow = || async { store.get_milestone(&grower.id, "grow").await.unwrap().unwrap() };
    assert!(grow().await.opportunity().is_some(), "reached: an opportunity");
    assert!(read(t0()).await.is_empty(), "not before it is announced");
    let mut announced = grow().await;
    announced.mark_reached_announced();
    store.update_milestone(&announced).await.unwrap();
    assert_eq!(read(t0()).await, ["grower"], "due at once");
    // An older event delivered now rewrites the milestone: still due.
    apply(&store, &event("g0", "grower", "g", t0() + Duration::days(1), "u")).await;
    assert_eq!(read(t0()).await, ["grower"], "still due after an event");
    let mut told = grow().await;
    told.mark_opportunity_told();
    store.update_milestone(&told).await.unwrap();
    assert!(
        read(t0() + Duration::days(400)).await.iter().all(|a| a != "grower"),
        "out once told"
    );
    apply(&store, &event("g-1", "grower", "g", t0() + Duration::hours(1), "u")).await;
    assert!(
        read(t0() + Duration::days(400)).await.iter().all(|a| a != "grower"),
        "an event brings it not back"
    );
}

/// The console's open misses: every milestone missed and not reached, from
/// its miss to its lapse, and no other; accounts found by id in batches.
async fn the_open_misses_are_exactly_those_missed_and_not_reached(store: Arc<dyn Store>) {
    let now = t0() + Duration::days(15);
    let mut expected = BTreeSet::new();
    for n in 0..4 {
        let a = format!("acct-{n:02}");
        store.put_account(&account(&a, date(2026, 1, 1))).await.unwrap();
        for m in tracked(&a) {
            store.create_milestone(&m).await.unwrap();
        }
    }
    assert!(store.open_misses().await.unwrap().is_empty(), "nothing missed yet");
    let update = |account: &'static str, change: fn(&mut TrackedMilestone, Timestamp)| {
        let store = store.clone();
        async move {
            let mut m = store
                .get_milestone(&AccountId::new(account), "first")
                .await
                .unwrap()
                .unwrap();
            change(&mut m, now);
            store.update_milestone(&m).await.unwrap();
        }
    };
    // Missed; escalating; lapsed: open. Missed, then reached by an event: not.
    update("acct-00", |m, now| m.miss(now, "exec-0".into()).unwrap()).await;
    update("acct-01", |m, now| {
        m.miss(now, "exec-1".into()).unwrap();
        m.enter_stage(milepost_domain::Stage::Outreach).unwrap();
        m.enter_stage(milepost_domain::Stage::CsmTask).unwrap();
    })
    .await;
    update("acct-02", |m, now| {
        m.miss(now, "exec-2".into()).unwrap();
        for stage in milepost_domain::Stage::ALL {
            m.enter_stage(stage).unwrap();
        }
        m.finish(now).unwrap();
    })
    .await;
    update("acct-03", |m, now| m.miss(now, "exec-3".into()).unwrap()).await;
    for a in ["acct-00", "acct-01", "acct-02"] {
        expected.insert((a.to_string(), "first".to_string()));
    }
    apply(&store, &event("late", "acct-03", "a", now + Duration::hours(1), "u")).await;
    let open: BTreeSet<(String, String)> = store
        .open_misses()
        .await
        .unwrap()
        .iter()
        .map(|m| (m.account_id().to_string(), m.milestone_id().to_owned()))
        .collect();
    assert_eq!(open, expected, "the recovered miss left, the rest stayed");
    let lapsed = store
        .open_misses()
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.account_id().as_str() == "acct-02")
        .unwrap();
    assert_eq!(lapsed.status(), MilestoneStatus::Lapsed, "read whole, as stored");
}

async fn run_contract(name: &str, fresh: Fresh<'_>) {
    let cases: Vec<(&str, Case)> = vec![
        ("accounts and maps", |s| Box::pin(accounts_and_maps(s))),
        ("conditional milestone writes", |s| {
            Box::pin(milestones_are_written_conditionally(s))
        }),
        ("milestones for an event", |s| {
            Box::pin(events_change_only_the_milestones_they_can_change(s))
        }),
        ("the due index", |s| {
            Box::pin(the_due_index_holds_only_what_the_sweep_must_act_on(s))
        }),
        ("dedupe, parking, activity", |s| {
            Box::pin(dedupe_parking_and_activity(s))
        }),
        ("tasks, logs, sends", |s| Box::pin(tasks_logs_and_sends_happen_once(s))),
        ("tasks move with their status", |s| {
            Box::pin(tasks_move_with_their_status(s))
        }),
        ("events applied once, as a unit", |s| {
            Box::pin(events_are_applied_once_as_a_unit(s))
        }),
        ("one account's events applied together", |s| {
            Box::pin(one_accounts_events_are_applied_together(s))
        }),
        ("every record scanned once", |s| {
            Box::pin(every_record_is_scanned_once(s))
        }),
        ("pages past 1 MB", |s| {
            Box::pin(large_accounts_are_read_past_one_page(s))
        }),
        ("items over 400 KB", |s| {
            Box::pin(an_item_over_the_size_limit_is_refused_and_nothing_changes(s))
        }),
        ("contacts and suppressions", |s| {
            Box::pin(an_address_is_suppressed_once_and_found_by_its_link_digest(s))
        }),
        ("owners' digests", |s| {
            Box::pin(owners_digests_are_written_on_their_version(s))
        }),
        ("the open misses", |s| {
            Box::pin(the_open_misses_are_exactly_those_missed_and_not_reached(s))
        }),
        ("the heads-up index", |s| {
            Box::pin(the_heads_up_index_follows_when_to_look(s))
        }),
        ("unknown sends and receipts", |s| {
            Box::pin(unknown_sends_are_listed_until_settled_and_receipts_keep_the_first(s))
        }),
        ("keys longer than DynamoDB's", |s| {
            Box::pin(a_key_no_item_can_have_finds_nothing(s))
        }),
        ("the kept portfolio", |s| {
            Box::pin(the_kept_portfolio_never_takes_an_older_read_over_a_later_one(s))
        }),
        ("an account's folder", |s| {
            Box::pin(an_accounts_folder_holds_what_its_page_shows(s))
        }),
        ("webhook endpoints and deliveries", |s| {
            Box::pin(webhook_deliveries_are_made_once_and_listed_while_due(s))
        }),
        ("tasks' Slack messages", |s| {
            Box::pin(a_tasks_slack_messages_are_made_once_and_listed_while_owed(s))
        }),
        ("success plans", |s| {
            Box::pin(a_success_plan_is_kept_as_versions_each_written_once(s))
        }),
        ("success plan checkpoints", |s| {
            Box::pin(a_plans_checkpoints_are_tracked_followed_and_dropped_with_it(s))
        }),
    ];
    for (case, run) in cases {
        eprintln!("{name}: {case}");
        run(fresh().await).await;
    }
}

/// A send of unknown outcome is listed until forgotten; `replace_send`
/// writes only over what it expects; the first receipt of an email stands,
/// and the stream's watermark only moves forward.
async fn unknown_sends_are_listed_until_settled_and_receipts_keep_the_first(store: Arc<dyn Store>) {
    use milepost_app::ports::SendReceipt;
    let unknown = SendRecord::Unknown {
        reason: "reset".into(),
        since: Some(t0()),
        resends: 0,
        email: None,
    };
    assert!(store.unsettled_sends(10).await.unwrap().is_empty());
    store
        .settle_send(&SendKey::new("exec-1:outreach_email:customer"), &unknown)
        .await
        .unwrap();
    store
        .settle_send(
            &SendKey::new("exec-2:outreach_email:customer"),
            &SendRecord::Sent {
                subject: None,
                message_id: "m".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store.unsettled_sends(10).await.unwrap(),
        [SendKey::new("exec-1:outreach_email:customer")],
        "only unknown outcomes are listed"
    );
    let sent = SendRecord::Sent {
        subject: None,
        message_id: "ses-1".into(),
    };
    assert!(
        !store
            .replace_send(&SendKey::new("exec-1:outreach_email:customer"), &sent, &unknown)
            .await
            .unwrap(),
        "not what it expected: nothing written"
    );
    assert!(store
        .replace_send(&SendKey::new("exec-1:outreach_email:customer"), &unknown, &sent)
        .await
        .unwrap());
    assert_eq!(
        store
            .send_record(&SendKey::new("exec-1:outreach_email:customer"))
            .await
            .unwrap(),
        Some(sent.clone())
    );
    assert!(
        !store
            .replace_send(&SendKey::new("exec-1:outreach_email:customer"), &unknown, &sent)
            .await
            .unwrap(),
        "once"
    );
    store
        .forget_unsettled(&SendKey::new("exec-1:outreach_email:customer"))
        .await
        .unwrap();
    assert!(store.unsettled_sends(10).await.unwrap().is_empty());

    assert_eq!(store.stream_watermark().await.unwrap(), None);
    let receipt = |event: &str, id: &str, minutes: i64| SendReceipt {
        tag: "0123456789abcdef0123456789abcdef".into(),
        message_id: id.into(),
        event: event.into(),
        mail_at: t0() + Duration::minutes(minutes),
    };
    store.record_receipt(&receipt("Send", "ses-1", 10)).await.unwrap();
    store.record_receipt(&receipt("Delivery", "ses-1b", 12)).await.unwrap();
    assert_eq!(
        store.receipt("0123456789abcdef0123456789abcdef").await.unwrap(),
        Some(receipt("Send", "ses-1", 10)),
        "the first receipt stands"
    );
    assert_eq!(
        store.stream_watermark().await.unwrap(),
        Some(t0() + Duration::minutes(12))
    );
    let mut older = receipt("Send", "ses-0", 1);
    older.tag = "fedcba9876543210fedcba9876543210".into();
    store.record_receipt(&older).await.unwrap();
    assert_eq!(
        store.stream_watermark().await.unwrap(),
        Some(t0() + Duration::minutes(12)),
        "an event arriving out of order does not move the watermark back"
    );
    assert!(store
        .receipt("ffffffffffffffffffffffffffffffff")
        .await
        .unwrap()
        .is_none());
}

/// A read under a key longer than DynamoDB allows (2048 bytes of partition
/// key, 1024 of sort key) finds nothing, as nothing can be stored there; a
/// write under one is refused as invalid input (a 4xx upstream), not an outage.
async fn a_key_no_item_can_have_finds_nothing(store: Arc<dyn Store>) {
    let long = "k".repeat(3000);
    let acme = AccountId::new("acme");
    store.put_account(&account("acme", date(2026, 1, 1))).await.unwrap();
    assert!(store.get_account(&AccountId::new(&long)).await.unwrap().is_none());
    assert!(store.get_milestone(&acme, &long).await.unwrap().is_none());
    assert!(store.milestones_of(&AccountId::new(&long)).await.unwrap().is_empty());
    assert!(store.get_task(&long).await.unwrap().is_none());
    assert!(store.contact(&long).await.unwrap().is_none());
    assert!(store.send_record(&SendKey::new(&long)).await.unwrap().is_none());
    assert!(store.log_of(&AccountId::new(&long)).await.unwrap().is_empty());
    assert!(store
        .customer_email_pause(&AccountId::new(&long))
        .await
        .unwrap()
        .is_none());
    let entry = EscalationLogEntry::outside_steps(
        &acme,
        &long,
        None,
        "confirmed",
        t0(),
        &milepost_domain::Actor::Milepost,
        "x".into(),
    );
    match store.append_log(&entry).await {
        Err(StoreError::Invalid(_)) | Ok(_) => {}
        Err(other) => panic!("an over-long key is bad input, not an outage: {other}"),
    }
}

/// An unsubscribe link names its contact by a fingerprint: the store finds the
/// address by it; the contact's record is written on the version read. A suppression is recorded once (the first stands, whatever
/// its case), listed in address order, and lifted once.
async fn an_address_is_suppressed_once_and_found_by_its_link_digest(store: Arc<dyn Store>) {
    use milepost_domain::{EmailAddress, Suppression, SuppressionSource};
    let dana = EmailAddress::parse("Dana@Acme.example").unwrap();
    assert_eq!(store.contact("0011223344556677").await.unwrap(), None);
    let contact = milepost_domain::ContactRecord::new(dana.clone());
    assert_eq!(store.save_contact("0011223344556677", &contact).await.unwrap(), 1);
    assert!(
        matches!(
            store.save_contact("0011223344556677", &contact).await,
            Err(StoreError::Conflict)
        ),
        "a second writer of a new contact loses"
    );
    let mut read = store.contact("0011223344556677").await.unwrap().unwrap();
    assert_eq!((read.email.clone(), read.version), (dana.clone(), 1));
    read.sends.push(milepost_domain::contact_policy::ContactSend {
        at: t0(),
        key: "e1:outreach_email:customer".into(),
    });
    assert_eq!(store.save_contact("0011223344556677", &read).await.unwrap(), 2);
    assert!(matches!(
        store.save_contact("0011223344556677", &read).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store.contact("0011223344556677").await.unwrap().unwrap().sends,
        read.sends
    );

    let first = Suppression {
        email: dana.clone(),
        at: t0(),
        source: SuppressionSource::OneClick,
        account_id: AccountId::new("acme"),
    };
    assert_eq!(store.suppress(&first).await.unwrap(), None, "new");
    let again = Suppression {
        email: EmailAddress::parse("dana@acme.example").unwrap(),
        at: t0() + Duration::hours(1),
        source: SuppressionSource::Page,
        ..first.clone()
    };
    assert_eq!(
        store.suppress(&again).await.unwrap(),
        Some(first.clone()),
        "the first stands"
    );
    assert_eq!(store.suppression(&again.email).await.unwrap(), Some(first.clone()));
    let aaron = Suppression {
        email: EmailAddress::parse("aaron@acme.example").unwrap(),
        ..first.clone()
    };
    store.suppress(&aaron).await.unwrap();
    let listed: Vec<String> = store
        .suppressions()
        .await
        .unwrap()
        .iter()
        .map(|s| s.email.to_string())
        .collect();
    assert_eq!(listed, ["aaron@acme.example", "Dana@Acme.example"]);
    assert!(store.unsuppress(&again.email).await.unwrap());
    assert!(!store.unsuppress(&again.email).await.unwrap(), "nothing left to lift");
    assert_eq!(store.suppression(&dana).await.unwrap(), None);
    assert_eq!(store.suppressions().await.unwrap().len(), 1);
}

/// A held-back list is written on the version read, found by its owner's
/// address whatever its case, and listed with the others for the sweep.
async fn owners_digests_are_written_on_their_version(store: Arc<dyn Store>) {
    use milepost_domain::{Contact, EmailAddress, HeldBack, HeldBackList, HeldMiss};
    assert!(store.held_back_lists().await.unwrap().is_empty());
    let maya = Contact::new("Maya", EmailAddress::parse("Maya@Vendor.example").unwrap());
    let mut list = HeldBackList::new(maya.clone());
    list.add(HeldMiss {
        execution: "e1".into(),
        account_id: AccountId::new("acme"),
        milestone_id: "first_workflow".into(),
        arr_at_risk: 900,
        held_back: HeldBack::TaskAndLeadership,
        queued_at: t0(),
        digest_of: None,
    });
    assert_eq!(store.save_held_back_list(&list).await.unwrap(), 1);
    assert!(
        matches!(store.save_held_back_list(&list).await, Err(StoreError::Conflict)),
        "a second writer of a new digest loses"
    );
    let lower = EmailAddress::parse("maya@vendor.example").unwrap();
    let mut read = store.held_back_list(&lower).await.unwrap().unwrap();
    assert_eq!((read.version, read.waiting.clone()), (1, list.waiting.clone()));
    assert!(read.assign(t0().date_naive()));
    assert_eq!(store.save_held_back_list(&read).await.unwrap(), 2);
    assert!(matches!(
        store.save_held_back_list(&read).await,
        Err(StoreError::Conflict)
    ));
    let other = HeldBackList::new(Contact::new("Ola", EmailAddress::parse("ola@vendor.example").unwrap()));
    store.save_held_back_list(&other).await.unwrap();
    let mut all = store.held_back_lists().await.unwrap();
    all.sort_by_key(|d| d.owner.email.to_string());
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].owner, maya);
    assert_eq!((all[0].version, all[0].of_day(t0().date_naive()).len()), (2, 1));
    assert_eq!(all[1].version, 1);
}

/// DynamoDB refuses an item over 400 KB, and so does the in-memory store as
/// the tests run it: `Invalid` (which ingest turns into a per-event rejection,
/// never a 503), and what was stored is unchanged.
async fn an_item_over_the_size_limit_is_refused_and_nothing_changes(store: Arc<dyn Store>) {
    use milepost_domain::criterion::Mark;
    use milepost_domain::Progress;
    let mut milestones = tracked("acme");
    let m = milestones.remove(0);
    assert!(store.create_milestone(&m).await.unwrap());
    let stored = store
        .get_milestone(m.account_id(), m.milestone_id())
        .await
        .unwrap()
        .unwrap();
    // 3,000 marks with 150-byte ids: ~500 KB, what bounded progress never reaches.
    let oversized = Progress::Count {
        earliest: (0..3_000)
            .map(|i| Mark {
                at: t0(),
                id: Arc::from(format!("{i:0>150}")),
            })
            .collect(),
    };
    let mut too_big = stored.clone();
    milepost_domain::seed::milestone(&mut too_big).progress(oversized.clone());
    let refused = store.update_milestone(&too_big).await;
    assert!(matches!(refused, Err(StoreError::Invalid(_))), "{refused:?}");
    assert_eq!(
        store
            .get_milestone(m.account_id(), m.milestone_id())
            .await
            .unwrap()
            .unwrap(),
        stored
    );
    let mut new_too_big = tracked("globex").remove(0);
    milepost_domain::seed::milestone(&mut new_too_big).progress(oversized);
    let refused = store.create_milestone(&new_too_big).await;
    assert!(matches!(refused, Err(StoreError::Invalid(_))), "{refused:?}");
    assert!(store
        .get_milestone(new_too_big.account_id(), new_too_big.milestone_id())
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn the_in_memory_store_keeps_the_contract() {
    run_contract(
        "in-memory",
        Box::new(|| Box::pin(async { Arc::new(InMemoryStore::sized_like_dynamodb()) as Arc<dyn Store> })),
    )
    .await;
}

#[tokio::test]
async fn the_dynamodb_store_keeps_the_contract() {
    let moto = MotoServer::start();
    let config = moto.sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let counter = std::sync::atomic::AtomicUsize::new(0);
    let fresh: Fresh<'_> = Box::new(|| {
        let client = client.clone();
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async move {
            let store = DynamoStore::new(client, format!("milepost-contract-{n}"));
            store.create_table().await.unwrap();
            Arc::new(store) as Arc<dyn Store>
        })
    });
    run_contract("dynamodb", fresh).await;
}

/// Real DynamoDB answers a read naming an over-long key with a
/// ValidationException, which moto does not: the store must not ask at all.
#[tokio::test]
async fn the_dynamodb_store_asks_nothing_under_a_key_too_long_to_exist() {
    let moto = MotoServer::start();
    let store = DynamoStore::metered(aws_sdk_dynamodb::Client::new(&moto.sdk_config().await), "milepost-keys");
    store.create_table().await.unwrap();
    let before = store.meter().requests();
    a_key_no_item_can_have_finds_nothing(Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&moto.sdk_config().await),
        "milepost-keys",
    )))
    .await;
    let long = "k".repeat(3000);
    let port: &dyn Store = &store;
    assert!(port.get_account(&AccountId::new(&long)).await.unwrap().is_none());
    assert!(port.contact(&long).await.unwrap().is_none());
    assert!(port.get_task(&long).await.unwrap().is_none());
    assert!(port.log_of(&AccountId::new(&long)).await.unwrap().is_empty());
    assert_eq!(
        store.meter().requests(),
        before,
        "a request went out under a key DynamoDB refuses"
    );
}

/// The 1 MB case above only means something if DynamoDB really paged: check
/// that reading those milestones took more than one request.
#[tokio::test]
async fn the_dynamodb_store_follows_query_pages() {
    let moto = MotoServer::start();
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let store = DynamoStore::metered(client, "milepost-pages");
    store.create_table().await.unwrap();
    let shared: Arc<dyn Store> = Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&moto.sdk_config().await),
        "milepost-pages",
    ));
    large_accounts_are_read_past_one_page(shared).await;
    let before = store.meter().requests();
    assert_eq!(store.milestones_of(&AccountId::new("big")).await.unwrap().len(), 60);
    assert!(
        store.meter().requests() - before >= 2,
        "one request read 1.2 MB: the emulator did not page"
    );
}

/// An event whose milestone would outgrow the item limit is refused as a
/// whole, as DynamoDB's transaction is: every milestone it touched is as it
/// was, the due index too, and the events before it stay applied. (The
/// in-memory store applies events in place; a small limit makes it happen.)
#[tokio::test]
async fn the_in_memory_store_undoes_an_event_whose_milestone_would_be_too_large() {
    use milepost_app::ports::{AccountStore, EventStore};
    // Room for two more marks than the largest milestone has to begin with.
    let limit = tracked("acme")
        .iter()
        .map(milepost_domain::limits::stored_size)
        .max()
        .unwrap()
        + 250;
    let store = InMemoryStore::with_item_limit(limit);
    let a = account("acme", date(2026, 1, 1));
    store.put_account(&a).await.unwrap();
    for m in tracked("acme") {
        assert!(store.create_milestone(&m).await.unwrap());
    }
    // `other` (5 × b) keeps a mark with a 60-byte id per event until the limit is hit.
    let mut refused_at = None;
    let mut before = Vec::new();
    for i in 0..5 {
        before = store.milestones_of(&a.id).await.unwrap();
        let e = event(&format!("{i:0>60}"), "acme", "b", t0() + Duration::hours(i), "u0");
        match store.apply_product_event(&e, t0(), t0() + Duration::days(14)).await {
            Ok(_) => {}
            Err(StoreError::Invalid(reason)) => {
                assert!(reason.contains(&format!("{limit}-byte")), "{reason}");
                refused_at = Some(i);
                break;
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    let refused_at = refused_at.expect("the limit is reached within five marks");
    assert!(refused_at > 0, "earlier events fit");
    assert_eq!(
        store.milestones_of(&a.id).await.unwrap(),
        before,
        "nothing of the refused event stayed"
    );
    let due = store
        .due_milestones(t0() + Duration::days(365), None, 10)
        .await
        .unwrap();
    assert_eq!(due.items.len(), 3, "all three still due");
}

/// The kept portfolio: a row read later is never replaced by one read
/// before (a slow whole refresh cannot undo the console's refresh of one
/// account), "not at risk" is kept like a row, and a mark is dropped only
/// if it is still the one read then.
async fn the_kept_portfolio_never_takes_an_older_read_over_a_later_one(store: Arc<dyn Store>) {
    use milepost_domain::{MissStage, OpenMiss, PortfolioRow, RowHealth};
    let row = |id: &str, arr: u64| PortfolioRow {
        account_id: AccountId::new(id),
        name: format!("Customer {id}"),
        segment: Segment::Smb,
        owner_name: "Maya Chen".into(),
        owner_email: "maya@vendor.example".into(),
        licensed_seats: 20,
        arr_at_risk: arr,
        renewal_date: date(2027, 1, 1),
        stage: MissStage::Day3,
        days_overdue: 4,
        misses: vec![OpenMiss {
            milestone_id: "first".into(),
            name: "First".into(),
            stage: MissStage::Day3,
            due_at: t0(),
            days_overdue: 4,
            arr_at_risk: arr,
        }],
        health: Some(RowHealth { score: 41, trend: -7 }),
    };
    let kept = store.kept_portfolio().await.unwrap();
    assert!(kept.rows.is_empty() && kept.refreshed_at.is_none(), "nothing kept yet");
    let (early, late) = (t0() + Duration::hours(1), t0() + Duration::hours(2));
    assert!(store
        .keep_portfolio_row(&AccountId::new("acme"), Some(&row("acme", 9_000)), late)
        .await
        .unwrap());
    assert!(
        !store
            .keep_portfolio_row(&AccountId::new("acme"), None, early)
            .await
            .unwrap(),
        "an older read does not clear a later row"
    );
    assert!(store
        .keep_portfolio_row(&AccountId::new("globex"), Some(&row("globex", 4_000)), early)
        .await
        .unwrap());
    assert!(store
        .keep_portfolio_row(&AccountId::new("globex"), None, late)
        .await
        .unwrap());
    assert!(
        !store
            .keep_portfolio_row(&AccountId::new("globex"), Some(&row("globex", 4_000)), early)
            .await
            .unwrap(),
        "an older read does not bring a cleared row back"
    );
    store.portfolio_refreshed(late).await.unwrap();
    store.portfolio_refreshed(early).await.unwrap();
    let kept = store.kept_portfolio().await.unwrap();
    assert_eq!(kept.refreshed_at, Some(late), "the refresh time only moves forward");
    let mut rows = kept.rows.clone();
    rows.sort_by(|a, b| a.account_id.cmp(&b.account_id));
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].row.as_ref(), Some(&row("acme", 9_000)), "read back whole");
    assert_eq!((rows[0].as_of, rows[1].as_of), (late, late));
    assert_eq!(rows[1].row, None, "globex kept as not at risk");
    store
        .forget_portfolio_row(&AccountId::new("globex"), early)
        .await
        .unwrap();
    assert_eq!(
        store.kept_portfolio().await.unwrap().rows.len(),
        2,
        "not the mark read then"
    );
    store
        .forget_portfolio_row(&AccountId::new("globex"), late)
        .await
        .unwrap();
    let left: Vec<String> = store
        .kept_portfolio()
        .await
        .unwrap()
        .rows
        .iter()
        .map(|k| k.account_id.to_string())
        .collect();
    assert_eq!(left, ["acme"]);
}

/// An account's folder is everything its console page shows, as the
/// separate reads find it; tasks are found by id, past one batch, once each.
async fn an_accounts_folder_holds_what_its_page_shows(store: Arc<dyn Store>) {
    use milepost_domain::{Actor, CustomerEmailPause};
    let acme = AccountId::new("acme");
    assert!(
        store.account_folder(&acme).await.unwrap().is_none(),
        "no account, no folder"
    );
    store.put_account(&account("acme", date(2026, 1, 1))).await.unwrap();
    store.put_account(&account("globex", date(2026, 1, 1))).await.unwrap();
    for m in tracked("acme").into_iter().chain(tracked("globex")) {
        store.create_milestone(&m).await.unwrap();
    }
    apply(&store, &event("e1", "acme", "a", t0() + Duration::days(1), "u")).await;
    for (key, account, day) in [("k2", "acme", 2), ("k1", "acme", 1), ("g1", "globex", 1)] {
        store.append_log(&log_entry(key, account, day)).await.unwrap();
    }
    let pause = CustomerEmailPause::starting(t0(), Actor::Milepost, None);
    store.pause_customer_emails(&acme, &pause).await.unwrap();

    // Sent emails' copies: listed under each account they are about, kept once.
    use milepost_domain::{EmailKind, SentEmail};
    let sent = |key: &str, day: i64, accounts: &[&str]| SentEmail {
        key: key.into(),
        kind: EmailKind::Outreach,
        subject: format!("About {key}"),
        to: vec!["Pat Lee".into()],
        date: t0() + Duration::days(day),
        accounts: accounts.iter().map(|a| AccountId::new(*a)).collect(),
    };
    store
        .archive_email(&sent("x:outreach:champion", 1, &["acme"]), "<p>first</p>")
        .await
        .unwrap();
    store
        .archive_email(&sent("x:outreach:champion", 1, &["acme"]), "<p>again</p>")
        .await
        .unwrap();
    store
        .archive_email(&sent("list:1", 2, &["globex", "acme"]), "<p>list</p>")
        .await
        .unwrap();
    assert_eq!(
        store.archived_email("x:outreach:champion").await.unwrap(),
        Some((sent("x:outreach:champion", 1, &["acme"]), "<p>first</p>".to_string())),
        "the first copy stands"
    );
    assert!(store.archived_email("nothing").await.unwrap().is_none());

    let folder = store.account_folder(&acme).await.unwrap().unwrap();
    let keys: Vec<&str> = folder.emails.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["list:1", "x:outreach:champion"], "newest first");
    assert_eq!(folder.account, store.get_account(&acme).await.unwrap().unwrap());
    assert_eq!(folder.milestones, store.milestones_of(&acme).await.unwrap());
    assert_eq!(folder.activity, store.activity(&acme).await.unwrap());
    assert_eq!(folder.log, store.log_of(&acme).await.unwrap());
    assert_eq!(
        folder.log.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
        ["k1", "k2"]
    );
    assert_eq!(folder.pause, Some(pause));
    let globex = store.account_folder(&AccountId::new("globex")).await.unwrap().unwrap();
    assert_eq!(
        (globex.log.len(), globex.pause),
        (1, None),
        "nothing of another account"
    );
    assert_eq!(globex.emails.len(), 1, "the list it is named in, only");

    let ids: Vec<String> = (0..130).map(|n| format!("t{n:03}:csm-task")).collect();
    for id in ids.iter().step_by(2) {
        store.create_task(&task(id, "maya@vendor.example", t0())).await.unwrap();
    }
    let mut asked = ids.clone();
    asked.push(ids[0].clone());
    let mut found: Vec<String> = store
        .tasks_by_id(&asked)
        .await
        .unwrap()
        .iter()
        .map(|t| t.id().to_string())
        .collect();
    found.sort();
    assert_eq!(
        found,
        ids.iter().step_by(2).cloned().collect::<Vec<_>>(),
        "each once, unknown ids left out"
    );

    // Every map stored, whatever its segment and tenure.
    assert!(store.all_maps().await.unwrap().is_empty());
    let all = load_map("m.yaml", MAP).unwrap();
    let smb_first_year = load_map(
        "s.yaml",
        &MAP.replace("segment: all", "segment: smb\ntenure: first_year"),
    )
    .unwrap();
    store.put_map(&all).await.unwrap();
    store.put_map(&smb_first_year).await.unwrap();
    let mut maps = store.all_maps().await.unwrap();
    maps.sort_by_key(|m| m.segment.as_str());
    assert_eq!(maps, vec![all, smb_first_year]);

    // The discovery result beside them: none, then the latest kept.
    use milepost_domain::discovery::KeptDiscovery;
    assert!(store.kept_discovery().await.unwrap().is_none());
    let result = |ratio: &str, at: Timestamp| {
        let printed = format!(
            r#"{{"milestones": [{{"milestone": "first", "name": "First", "segment": "all", "tenure": "all",
                "renewed_n": 10, "churned_n": 5, "ratio": {ratio}, "class": "strong", "divergence_month": 3}}]}}"#
        );
        KeptDiscovery::from_json(&printed, "f.json", at).unwrap()
    };
    store.keep_discovery(&result("2.5", t0())).await.unwrap();
    let latest = result("\"unbounded\"", t0() + Duration::days(1));
    store.keep_discovery(&latest).await.unwrap();
    assert_eq!(store.kept_discovery().await.unwrap(), Some(latest.clone()));

    // The simulator's comparison beside it: none, then the latest, the discovery untouched.
    use milepost_domain::map_review::{Figures, KeptComparison};
    assert!(store.kept_comparison().await.unwrap().is_none());
    let comparison = |misses: u64| KeptComparison {
        kept_at: t0(),
        current_maps: vec!["maps/".into()],
        proposed_maps: vec!["proposed/".into()],
        accounts: 8,
        from: date(2026, 3, 2),
        until: date(2026, 5, 1),
        minutes_per_task: 20,
        current: Figures {
            misses,
            csm_hours: 2.5,
            precision: Some(0.5),
            ..Figures::default()
        },
        proposed: Figures::default(),
    };
    store.keep_comparison(&comparison(3)).await.unwrap();
    store.keep_comparison(&comparison(4)).await.unwrap();
    assert_eq!(store.kept_comparison().await.unwrap(), Some(comparison(4)));
    assert_eq!(store.kept_discovery().await.unwrap(), Some(latest));

    // The results page's kept views: by name, a later one never replaced by an earlier.
    assert!(store.kept_results("all").await.unwrap().is_none());
    let (early, late) = (t0(), t0() + Duration::hours(1));
    store.keep_results("all", late, r#"{"view": "late"}"#).await.unwrap();
    store.keep_results("all", early, r#"{"view": "early"}"#).await.unwrap();
    store.keep_results("smb", early, r#"{"view": "smb"}"#).await.unwrap();
    assert_eq!(
        store.kept_results("all").await.unwrap(),
        Some((late, r#"{"view": "late"}"#.to_string()))
    );
    assert_eq!(
        store.kept_results("smb").await.unwrap().unwrap().1,
        r#"{"view": "smb"}"#
    );
}

/// An endpoint is written on its version; a delivery of one event to one
/// endpoint is made once; the due index holds exactly the pending ones,
/// soonest first, and none once delivered or dead; an endpoint's
/// deliveries list newest first.
async fn webhook_deliveries_are_made_once_and_listed_while_due(store: Arc<dyn Store>) {
    use milepost_domain::webhooks::{AttemptResult, Delivery, OutboundEvent, WebhookEndpoint};

    let endpoint = WebhookEndpoint::new(
        "ep_1".into(),
        "https://hooks.example/m".into(),
        vec![],
        "whsec_AAAA".into(),
        t0(),
    );
    assert!(store.create_webhook_endpoint(&endpoint).await.unwrap());
    assert!(
        !store.create_webhook_endpoint(&endpoint).await.unwrap(),
        "an id is taken once"
    );
    let mut read = store.webhook_endpoints().await.unwrap();
    assert_eq!(read.len(), 1);
    let mut ep = read.remove(0);
    assert_eq!(ep.version, 1);
    ep.failing_since = Some(t0());
    assert_eq!(store.update_webhook_endpoint(&ep).await.unwrap(), 2);
    assert!(
        matches!(store.update_webhook_endpoint(&ep).await, Err(StoreError::Conflict)),
        "a stale version loses"
    );
    assert_eq!(store.webhook_endpoints().await.unwrap()[0].failing_since, Some(t0()));

    let event = |id: &str, minute: i64| OutboundEvent {
        event_id: id.into(),
        event_type: "TaskOpened".into(),
        occurred_at: t0() + Duration::minutes(minute),
        data: serde_json::json!({"task_id": id}),
    };
    let later = Delivery::new("ep_1", &event("e-2", 2), t0() + Duration::minutes(2));
    let sooner = Delivery::new("ep_1", &event("e-1", 1), t0() + Duration::minutes(1));
    assert!(store.create_delivery(&later).await.unwrap());
    assert!(store.create_delivery(&sooner).await.unwrap());
    assert!(
        !store.create_delivery(&sooner).await.unwrap(),
        "one delivery per event and endpoint"
    );
    let due = store.due_deliveries(t0() + Duration::minutes(5), 10).await.unwrap();
    assert_eq!(
        due.iter().map(|d| d.event_id.as_str()).collect::<Vec<_>>(),
        ["e-1", "e-2"]
    );
    assert!(due.iter().all(|d| d.version == 1));
    assert_eq!(
        store
            .due_deliveries(t0() + Duration::minutes(1), 10)
            .await
            .unwrap()
            .len(),
        1,
        "due at its very moment, not before"
    );

    let mut first = store.get_delivery("ep_1", "e-1").await.unwrap().unwrap();
    first.record(t0() + Duration::minutes(5), AttemptResult::Status { status: 200 }, None);
    assert_eq!(store.update_delivery(&first).await.unwrap(), 2);
    assert!(matches!(store.update_delivery(&first).await, Err(StoreError::Conflict)));
    let mut second = store.get_delivery("ep_1", "e-2").await.unwrap().unwrap();
    second.record(t0() + Duration::minutes(5), AttemptResult::Status { status: 503 }, None);
    store.update_delivery(&second).await.unwrap();
    let due = store.due_deliveries(t0() + Duration::hours(1), 10).await.unwrap();
    assert_eq!(
        due.iter().map(|d| d.event_id.as_str()).collect::<Vec<_>>(),
        ["e-2"],
        "delivered ones leave the index"
    );
    assert_eq!(due[0].attempts.len(), 1);
    assert!(
        store
            .due_deliveries(t0() + Duration::minutes(5), 10)
            .await
            .unwrap()
            .is_empty(),
        "a retry waits for its time"
    );

    let listed = store.endpoint_deliveries("ep_1").await.unwrap();
    assert_eq!(
        listed.iter().map(|d| d.event_id.as_str()).collect::<Vec<_>>(),
        ["e-2", "e-1"]
    );
    assert!(store.endpoint_deliveries("ep_2").await.unwrap().is_empty());
    assert!(store.delete_webhook_endpoint("ep_1").await.unwrap());
    assert!(!store.delete_webhook_endpoint("ep_1").await.unwrap());
    assert!(store.webhook_endpoints().await.unwrap().is_empty());
}

/// A task's Slack message is made once per audience, written on its
/// version, and in the due index exactly while something is owed.
async fn a_tasks_slack_messages_are_made_once_and_listed_while_owed(store: Arc<dyn Store>) {
    use milepost_domain::slack::{Audience, SlackOutcome, SlackPost};

    let owner = SlackPost::new("t-1:csm-task", Audience::Owner, t0());
    let team = SlackPost::new("t-1:csm-task", Audience::Team, t0() + Duration::seconds(1));
    assert!(store.create_slack_post(&owner).await.unwrap());
    assert!(store.create_slack_post(&team).await.unwrap());
    assert!(
        !store.create_slack_post(&owner).await.unwrap(),
        "once per task and audience"
    );
    let due = store.due_slack_posts(t0() + Duration::minutes(1), 10).await.unwrap();
    assert_eq!(
        due.iter().map(|p| p.audience).collect::<Vec<_>>(),
        [Audience::Owner, Audience::Team]
    );
    assert_eq!(
        store.due_slack_posts(t0(), 10).await.unwrap().len(),
        1,
        "due at its moment, not before"
    );

    let mut posted = due[0].clone();
    posted.record(
        t0(),
        SlackOutcome::Posted {
            channel: "D1".into(),
            ts: "1.1".into(),
        },
    );
    assert_eq!(store.update_slack_post(&posted).await.unwrap(), 2);
    assert!(matches!(
        store.update_slack_post(&posted).await,
        Err(StoreError::Conflict)
    ));
    let owed: Vec<_> = store.due_slack_posts(t0() + Duration::hours(1), 10).await.unwrap();
    assert_eq!(
        owed.iter().map(|p| p.audience).collect::<Vec<_>>(),
        [Audience::Team],
        "shown: out of the index"
    );

    let mut both = store.slack_posts("t-1:csm-task").await.unwrap();
    both.sort_by_key(|p| p.audience);
    assert_eq!(both.len(), 2);
    assert_eq!((both[0].ts.as_deref(), both[0].version), (Some("1.1"), 2));
    let mut changed = both[0].clone();
    changed.task_changed(t0() + Duration::hours(2));
    store.update_slack_post(&changed).await.unwrap();
    assert_eq!(
        store
            .due_slack_posts(t0() + Duration::hours(2), 10)
            .await
            .unwrap()
            .len(),
        2,
        "owed an update: back in"
    );
    assert!(store.slack_posts("t-2:csm-task").await.unwrap().is_empty());
}

/// A success plan's versions: each written once (a second writer of one
/// version is told, and nothing of its is kept), read back latest first or
/// all in order, listed latest per account; the setting use case keeps a
/// plan that did not change as it is, and names every problem of a bad one.
async fn a_success_plan_is_kept_as_versions_each_written_once(store: Arc<dyn Store>) {
    use milepost_app::success_plans::{set_outcome, set_plan, PlanError, PlanSet};
    use milepost_domain::{AgreedOutcome, Measure, SuccessPlan};
    let outcome = |id: &str, target: f64| AgreedOutcome {
        id: id.into(),
        title: "Lower annual logistics costs".into(),
        measure: Measure {
            event: "outcome.measured".into(),
            property: "cost_savings_pct".into(),
        },
        unit: "%".into(),
        baseline: 0.0,
        target,
        starts_on: date(2026, 1, 1),
        by: date(2027, 1, 1),
        checkpoints: Vec::new(),
        agreed_by: "Dana Chen, VP Operations".into(),
    };
    let acme = AccountId::new("acme");
    let plan = |version: u32, target: f64| SuccessPlan {
        account_id: acme.clone(),
        version,
        outcomes: vec![outcome("costs", target)],
        set_at: t0(),
        set_by: "maya@vendor.example".into(),
    };
    assert!(store.success_plan(&acme).await.unwrap().is_none());
    assert!(store.add_success_plan(&plan(1, 30.0)).await.unwrap());
    assert!(
        !store.add_success_plan(&plan(1, 20.0)).await.unwrap(),
        "version 1 is kept already"
    );
    assert!(store.add_success_plan(&plan(2, 25.0)).await.unwrap());
    assert_eq!(store.success_plan(&acme).await.unwrap(), Some(plan(2, 25.0)));
    assert_eq!(
        store.success_plan_history(&acme).await.unwrap(),
        [plan(1, 30.0), plan(2, 25.0)],
        "the first writer's version 1, then 2"
    );

    // Through the use case: the account must exist; the same plan again is
    // no new version, but the account gets its copy of the plan.
    store.put_account(&account("acme", date(2026, 1, 1))).await.unwrap();
    store.put_account(&account("globex", date(2026, 1, 1))).await.unwrap();
    let read_before = store.get_account(&acme).await.unwrap().unwrap();
    let again = set_plan(
        store.as_ref(),
        &acme,
        vec![outcome("costs", 25.0)],
        "import:plans.csv",
        t0(),
    )
    .await
    .unwrap();
    assert_eq!(again, PlanSet::Unchanged(plan(2, 25.0)));
    let copied = store.get_account(&acme).await.unwrap().unwrap();
    assert_eq!(
        copied.success_plan,
        Some(plan(2, 25.0)),
        "the account carries the plan as it stands"
    );
    // A group call that read the account before the plan was copied writes
    // nothing over it: its write is refused, and it reads again.
    let mut stale = (*read_before).clone();
    stale.name = "Acme (renamed)".into();
    assert!(
        !store.replace_account(&stale, Some(&read_before)).await.unwrap(),
        "the plan's copy changed the account's revision"
    );
    let mut fresh = (*copied).clone();
    fresh.name = "Acme (renamed)".into();
    assert!(store.replace_account(&fresh, Some(&copied)).await.unwrap());
    assert_eq!(
        store.get_account(&acme).await.unwrap().unwrap().success_plan,
        Some(plan(2, 25.0)),
        "kept through the group call"
    );
    let added = set_outcome(
        store.as_ref(),
        &acme,
        outcome("hours", 10.0),
        "maya@vendor.example",
        t0(),
    )
    .await
    .unwrap();
    assert!(
        matches!(&added, PlanSet::New(p) if p.version == 3 && p.outcomes.len() == 2),
        "{added:?}"
    );
    assert_eq!(
        store
            .get_account(&acme)
            .await
            .unwrap()
            .unwrap()
            .success_plan
            .as_ref()
            .map(|p| p.version),
        Some(3)
    );
    let globex = AccountId::new("globex");
    set_plan(store.as_ref(), &globex, vec![outcome("costs", 5.0)], "x", t0())
        .await
        .unwrap();
    let mut listed: Vec<(String, u32)> = store
        .success_plans()
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.account_id.to_string(), p.version))
        .collect();
    listed.sort();
    assert_eq!(listed, [("acme".to_string(), 3), ("globex".to_string(), 1)]);
    match set_plan(store.as_ref(), &acme, vec![outcome("costs", 0.0)], "x", t0()).await {
        Err(PlanError::Invalid(problems)) => assert_eq!(problems[0].field, "outcomes[0].target"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        set_plan(
            store.as_ref(),
            &AccountId::new("nobody"),
            vec![outcome("c", 5.0)],
            "x",
            t0()
        )
        .await,
        Err(PlanError::UnknownAccount(_))
    ));
    assert_eq!(
        store.success_plan_history(&acme).await.unwrap().len(),
        3,
        "a refused plan keeps nothing"
    );
    // The report's scan of the table passes plans by.
    let page = store.records_page(None).await.unwrap();
    assert!(page.items.len() >= 2);
}

/// The map's `agreed_outcome` milestone tracks each checkpoint of a plan
/// set from the day it is set: due in the sweep's index on its date; a
/// changed plan follows the pending ones, drops (index and all) the one it
/// no longer has and tracks the new; removal is written only over the
/// version read, and removing what is gone is done.
async fn a_plans_checkpoints_are_tracked_followed_and_dropped_with_it(store: Arc<dyn Store>) {
    use milepost_app::success_plans::set_plan;
    use milepost_domain::{AgreedOutcome, Checkpoint, Measure};
    let map = load_map(
        "m.yaml",
        r#"segment: all
milestones:
  - {id: first, name: First, customer_title: First, phase: onboarding, due_days: 10, owner: csm, criterion: {kind: event_count, event: a, min: 1}, playbook: {outreach: o, csm: c, leadership: l}}
  - {id: on_pace, name: On pace, phase: value_realization, owner: csm, criterion: {kind: agreed_outcome}, playbook: {outreach: o, csm: c, leadership: l}}
"#,
    )
    .unwrap();
    store.put_map(&map).await.unwrap();
    let acme = AccountId::new("acme");
    store.put_account(&account("acme", date(2026, 1, 1))).await.unwrap();
    let outcome = |points: &[(u32, f64)]| AgreedOutcome {
        id: "costs".into(),
        title: "Lower costs".into(),
        measure: Measure {
            event: "outcome.measured".into(),
            property: "cost_savings_pct".into(),
        },
        unit: "%".into(),
        baseline: 0.0,
        target: 30.0,
        starts_on: date(2026, 1, 1),
        by: date(2027, 1, 1),
        checkpoints: points
            .iter()
            .map(|&(month, value)| Checkpoint {
                on: date(2026, month, 1),
                value,
            })
            .collect(),
        agreed_by: "Dana Chen".into(),
    };
    let set_on = |day: u32| Utc.with_ymd_and_hms(2026, 2, day, 9, 0, 0).unwrap();
    let ids = || async {
        let mut ids: Vec<String> = store
            .milestones_of(&acme)
            .await
            .unwrap()
            .iter()
            .map(|m| m.milestone_id().to_string())
            .collect();
        ids.sort();
        ids
    };
    let due_ids = |at: Timestamp| {
        let store = store.clone();
        async move {
            store
                .due_milestones(at, None, 100)
                .await
                .unwrap()
                .items
                .iter()
                .map(|m| m.milestone_id().to_string())
                .collect::<Vec<_>>()
        }
    };
    set_plan(
        store.as_ref(),
        &acme,
        vec![outcome(&[(4, 5.0), (7, 10.0)])],
        "x",
        set_on(1),
    )
    .await
    .unwrap();
    assert_eq!(
        ids().await,
        [
            "on_pace.costs.2026-04-01",
            "on_pace.costs.2026-07-01",
            "on_pace.costs.2027-01-01"
        ],
        "the plan's checkpoints, not the map's own milestones (onboarding makes those)"
    );
    let after = |m: u32, d: u32| Utc.with_ymd_and_hms(2026, m, d, 0, 0, 0).unwrap();
    assert_eq!(
        due_ids(after(4, 2)).await,
        ["on_pace.costs.2026-04-01"],
        "due at the end of its day"
    );
    assert!(due_ids(after(4, 1)).await.is_empty());

    // July's checkpoint moves to August, April's value changes.
    let july = store
        .get_milestone(&acme, "on_pace.costs.2026-07-01")
        .await
        .unwrap()
        .unwrap();
    set_plan(
        store.as_ref(),
        &acme,
        vec![outcome(&[(4, 6.0), (8, 12.0)])],
        "x",
        set_on(2),
    )
    .await
    .unwrap();
    assert_eq!(
        ids().await,
        [
            "on_pace.costs.2026-04-01",
            "on_pace.costs.2026-08-01",
            "on_pace.costs.2027-01-01"
        ]
    );
    let april = store
        .get_milestone(&acme, "on_pace.costs.2026-04-01")
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(april.criterion(), milepost_domain::Criterion::MetricThreshold { value, .. } if *value == 6.0));
    assert_eq!(april.version, 2, "followed in place");
    assert_eq!(
        due_ids(after(7, 5)).await,
        ["on_pace.costs.2026-04-01"],
        "the dropped checkpoint left the sweep's index"
    );
    // Removal goes only over the version read; what is gone is done.
    let mut stale = april.clone();
    stale.version = 1;
    assert!(matches!(
        store.remove_milestone(&stale).await,
        Err(StoreError::Conflict)
    ));
    store.remove_milestone(&july).await.unwrap();
    // The same plan again changes nothing.
    set_plan(
        store.as_ref(),
        &acme,
        vec![outcome(&[(4, 6.0), (8, 12.0)])],
        "x",
        set_on(3),
    )
    .await
    .unwrap();
    let again = store
        .get_milestone(&acme, "on_pace.costs.2026-04-01")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.version, 2);
}
