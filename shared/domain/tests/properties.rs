//! Property tests: criteria progress and the lifecycle depend only on the set
//! of events seen, never on delivery order or duplicates, and agree with a
//! brute-force oracle that looks at every event at once.

use chrono::{DateTime, Duration, TimeZone, Utc};
use milepost_domain::{
    Account, AccountId, CompareOp, Criterion, MilestoneDef, MilestoneStatus, ProductEvent, Stage, TrackedMilestone,
};
use proptest::prelude::*;

const SEATS: u32 = 10;

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
}

/// An event `e` of account `a` at `at`, by `user` if given.
fn e_at(id: &str, at: DateTime<Utc>, user: Option<&str>) -> ProductEvent {
    ProductEvent {
        id: id.into(),
        account_id: AccountId::new("a"),
        event: "e".into(),
        timestamp: at,
        user_id: user.map(str::to_string),
        properties: Default::default(),
    }
}

fn criterion_strategy() -> impl Strategy<Value = Criterion> {
    let window = prop_oneof![Just(None), (1u32..6).prop_map(Some)];
    prop_oneof![
        (1u32..6, window.clone()).prop_map(|(min, window_days)| Criterion::EventCount {
            event: "e".into(),
            min,
            window_days
        }),
        (1u32..5, window.clone()).prop_map(|(min, window_days)| Criterion::DistinctUsers {
            event: "e".into(),
            min,
            window_days
        }),
        (1u32..6, window).prop_map(|(tenths, window_days)| Criterion::SeatRatio {
            event: "e".into(),
            min_ratio: f64::from(tenths) / 10.0,
            window_days
        }),
        (
            prop_oneof![
                Just(CompareOp::Gte),
                Just(CompareOp::Gt),
                Just(CompareOp::Lte),
                Just(CompareOp::Lt)
            ],
            0u32..10
        )
            .prop_map(|(op, v)| {
                Criterion::MetricThreshold {
                    event: "e".into(),
                    property: "p".into(),
                    op,
                    value: f64::from(v),
                }
            }),
    ]
}

/// Events on a coarse clock (many share a timestamp), from a small pool of
/// users, all within 14 days of each other: no delivery order can make one
/// later than `ALLOWED_LATENESS`, so order and duplicates may not matter at all.
fn events_strategy() -> impl Strategy<Value = Vec<ProductEvent>> {
    events_over(28)
}

/// Events over `slots` half-day slots.
fn events_over(slots: i64) -> impl Strategy<Value = Vec<ProductEvent>> {
    prop::collection::vec(
        (
            0i64..slots,
            0u8..6,
            prop::option::of(0u8..6),
            0u32..12,
            prop::bool::weighted(0.85),
        ),
        0..30,
    )
    .prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(|(i, (slot, user, maybe_user, value, relevant))| {
                let mut properties = serde_json::Map::new();
                properties.insert("p".into(), serde_json::json!(value));
                ProductEvent {
                    id: format!("ev-{i}"),
                    account_id: AccountId::new("a"),
                    event: if relevant { "e".into() } else { "other".into() },
                    // Half-day slots: a window of N days spans 2N slots.
                    timestamp: base() + Duration::hours(12 * slot),
                    user_id: maybe_user.map(|_| format!("u{user}")),
                    properties,
                }
            })
            .collect()
    })
}

/// The first instant the criterion is met, looking at every event at once.
fn oracle(criterion: &Criterion, events: &[ProductEvent]) -> Option<DateTime<Utc>> {
    let observed: Vec<_> = events.iter().filter_map(|e| criterion.observe(e)).collect();
    let mut times: Vec<_> = observed.iter().map(|o| o.at).collect();
    times.sort();
    times.dedup();
    let need = criterion.threshold(SEATS) as usize;
    // A window of N days is the day of its end and the N - 1 days before (UTC).
    let window = match criterion {
        Criterion::EventCount { window_days, .. }
        | Criterion::DistinctUsers { window_days, .. }
        | Criterion::SeatRatio { window_days, .. } => window_days.map(|d| Duration::days(i64::from(d) - 1)),
        _ => None,
    };
    for t in times {
        let in_range: Vec<_> = observed
            .iter()
            .filter(|o| o.at <= t && window.is_none_or(|w| o.at.date_naive() >= t.date_naive() - w))
            .collect();
        let met = match criterion {
            Criterion::EventCount { .. } => in_range.len() >= need,
            Criterion::DistinctUsers { .. } | Criterion::SeatRatio { .. } => {
                let mut users: Vec<_> = in_range.iter().filter_map(|o| o.user_id.clone()).collect();
                users.sort();
                users.dedup();
                users.len() >= need
            }
            Criterion::MetricThreshold { op, value, .. } => in_range.iter().any(|o| op.holds(o.value.unwrap(), *value)),
            Criterion::Manual | Criterion::AgreedOutcome => false,
        };
        if met {
            return Some(t);
        }
    }
    None
}

fn account() -> Account {
    Account {
        licensed_seats: SEATS,
        ..milepost_domain::fixtures::account("a", base().date_naive())
    }
}

fn tracked(criterion: &Criterion, status: MilestoneStatus) -> TrackedMilestone {
    let def = MilestoneDef {
        expansion: None,
        moved_by: None,
        name: "M".into(),
        ..milepost_domain::fixtures::milestone_def("m", 10, criterion.clone())
    };
    let map = milepost_domain::fixtures::map_of(vec![def.clone()]);
    let mut m = TrackedMilestone::new(&account(), &map, &def);
    milepost_domain::seed::milestone(&mut m).status(status);
    m
}

fn apply_all(m: &mut TrackedMilestone, events: &[ProductEvent]) {
    for e in events {
        if let Some(obs) = m.criterion().observe(e) {
            m.observe(&obs, SEATS)
                .expect("reaching an open milestone is always legal");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn progress_is_independent_of_order_and_duplicates(
        criterion in criterion_strategy(),
        (events, shuffled) in events_strategy().prop_flat_map(|evs| (Just(evs.clone()), Just(evs).prop_shuffle())),
        dup_picks in prop::collection::vec(0usize..30, 0..10),
    ) {
        let mut in_order = tracked(&criterion, MilestoneStatus::Pending);
        apply_all(&mut in_order, &events);

        // Redeliver some events, then everything again in another order.
        let mut redelivered = shuffled.clone();
        for p in &dup_picks {
            if let Some(e) = events.get(*p) { redelivered.push(e.clone()); }
        }
        redelivered.extend(shuffled.iter().rev().cloned());
        let mut other = tracked(&criterion, MilestoneStatus::Pending);
        apply_all(&mut other, &redelivered);

        prop_assert_eq!(in_order.progress(), other.progress());
        prop_assert_eq!(in_order.reached_at(), other.reached_at());
        prop_assert_eq!(in_order.status(), other.status());
    }

    #[test]
    fn reached_at_matches_the_brute_force_oracle(criterion in criterion_strategy(), events in events_strategy()) {
        let mut m = tracked(&criterion, MilestoneStatus::Pending);
        apply_all(&mut m, &events);
        prop_assert_eq!(m.reached_at(), oracle(&criterion, &events));
        prop_assert_eq!(m.status() == MilestoneStatus::Achieved, m.reached_at().is_some());
    }

    /// `milepost discover` splits history between threads and merges their
    /// progress: the merge must reach the criterion exactly when one pass would.
    #[test]
    fn merged_progress_of_split_events_matches_the_oracle(
        criterion in criterion_strategy(),
        events in events_strategy(),
        split in 0usize..30,
        overlap in 0usize..5,
    ) {
        let split = split.min(events.len());
        // The halves may share a few events (a re-delivered event in each part).
        let (first, second) = (&events[..split], &events[split.saturating_sub(overlap)..]);
        let fold = |part: &[ProductEvent]| {
            let mut progress = criterion.new_progress();
            for e in part {
                if let Some(obs) = criterion.observe(e) {
                    progress.observe(&criterion, &obs, SEATS);
                }
            }
            progress
        };
        let mut merged = fold(first);
        merged.merge(&criterion, &fold(second), SEATS);
        prop_assert_eq!(merged.reached_at(&criterion, SEATS), oracle(&criterion, &events));
        // Either way round.
        let mut merged = fold(second);
        merged.merge(&criterion, &fold(first), SEATS);
        prop_assert_eq!(merged.reached_at(&criterion, SEATS), oracle(&criterion, &events));
    }

    #[test]
    fn lifecycle_ends_the_same_for_any_order_within_a_timestamp(
        criterion in criterion_strategy(),
        events in events_strategy(),
        start in prop_oneof![
            Just(MilestoneStatus::Pending),
            Just(MilestoneStatus::Missed),
            Just(MilestoneStatus::Escalating(Stage::Outreach)),
            Just(MilestoneStatus::Escalating(Stage::CsmTask)),
            Just(MilestoneStatus::Escalating(Stage::Leadership)),
            Just(MilestoneStatus::Lapsed),
        ],
        seed in any::<u64>(),
    ) {
        // Same timestamps, events permuted only among equal timestamps.
        let mut sorted = events.clone();
        sorted.sort_by_key(|e| e.timestamp);
        let mut permuted = sorted.clone();
        let mut i = 0;
        while i < permuted.len() {
            let j = permuted[i..].iter().position(|e| e.timestamp != permuted[i].timestamp).map_or(permuted.len(), |p| i + p);
            let group = &mut permuted[i..j];
            let k = group.len();
            if k > 1 { group.rotate_left((seed as usize) % k); group.reverse(); }
            i = j;
        }
        let mut a = tracked(&criterion, start);
        apply_all(&mut a, &sorted);
        let mut b = tracked(&criterion, start);
        apply_all(&mut b, &permuted);
        apply_all(&mut b, &permuted); // and everything delivered twice
        prop_assert_eq!(a.status(), b.status());
        prop_assert_eq!(a.reached_at(), b.reached_at());
        prop_assert_eq!(a.progress(), b.progress());
        let expected = match (a.reached_at().is_some(), start) {
            (false, s) => s,
            (true, MilestoneStatus::Pending) => MilestoneStatus::Achieved,
            (true, _) => MilestoneStatus::Recovered,
        };
        prop_assert_eq!(a.status(), expected);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Over two months, delivered out of order but never more than the
    /// allowed lateness after an event dated later, the live path (which keeps
    /// only the days such an event can still fall in with) reaches the
    /// criterion exactly when the oracle does.
    #[test]
    fn within_the_allowed_lateness_any_delivery_order_matches_the_oracle(
        criterion in criterion_strategy(),
        events in events_over(120),
        keys in prop::collection::vec(0i64..(2 * 10), 30),
    ) {
        use milepost_domain::criterion::ALLOWED_LATENESS;
        // Deliver by (time + a jitter of up to 10 days): an event can arrive
        // after ones dated up to 10 days later, inside the 14 allowed.
        let mut order: Vec<_> = events.iter().enumerate().collect();
        order.sort_by_key(|(i, e)| e.timestamp + Duration::hours(12 * keys[*i % keys.len()]));
        let delivered: Vec<ProductEvent> = order.into_iter().map(|(_, e)| e.clone()).collect();
        for (i, e) in delivered.iter().enumerate() {
            let newest_before = delivered[..i].iter().map(|d| d.timestamp).max();
            prop_assert!(newest_before.is_none_or(|n| n - e.timestamp <= ALLOWED_LATENESS));
        }
        let mut m = tracked(&criterion, MilestoneStatus::Pending);
        apply_all(&mut m, &delivered);
        prop_assert_eq!(m.reached_at(), oracle(&criterion, &events));
    }
}

/// An event arriving more than the allowed lateness after one dated later
/// no longer counts in a windowed criterion: what the bounded state costs.
#[test]
fn an_event_later_than_the_allowed_lateness_does_not_count_in_a_window() {
    let criterion = Criterion::DistinctUsers {
        event: "e".into(),
        min: 2,
        window_days: Some(3),
    };
    let ev = |id: &str, day: i64, user: &str| e_at(id, base() + Duration::days(day), Some(user));
    let mut m = tracked(&criterion, MilestoneStatus::Pending);
    apply_all(&mut m, &[ev("1", 1, "u1"), ev("2", 30, "u3"), ev("3", 2, "u2")]);
    assert_eq!(m.reached_at(), None, "day 2 arrived after day 30: 28 days late");
    let mut in_time = tracked(&criterion, MilestoneStatus::Pending);
    apply_all(&mut in_time, &[ev("1", 1, "u1"), ev("2", 14, "u3"), ev("3", 2, "u2")]);
    assert_eq!(
        in_time.reached_at(),
        Some(base() + Duration::days(2)),
        "12 days late counts"
    );
}

/// One user's many events in a windowed user criterion keep one run: active
/// every day, the user is in every window from the first day on.
#[test]
fn a_busy_user_costs_one_run_in_a_windowed_user_criterion() {
    let criterion = Criterion::DistinctUsers {
        event: "e".into(),
        min: 3,
        window_days: Some(7),
    };
    let events: Vec<_> = (0..20_000)
        .map(|i| e_at(&format!("e{i}"), base() + Duration::minutes(7 * i), Some("only-user")))
        .collect();
    let mut m = tracked(&criterion, MilestoneStatus::Pending);
    apply_all(&mut m, &events);
    let milepost_domain::Progress::WindowedUsers { runs, .. } = m.progress() else {
        panic!("windowed user progress, not {:?}", m.progress());
    };
    let last_day = events.last().unwrap().timestamp.date_naive();
    assert_eq!(
        runs.get("only-user").map(Vec::as_slice),
        Some(
            &[milepost_domain::criterion::Coverage {
                from: base(),
                until: last_day + Duration::days(6),
            }][..]
        ),
        "one run from the first event to the last window holding the last day"
    );
    assert_eq!(m.status(), MilestoneStatus::Pending);
}

/// A large account: 200 users active every day for 60 days, and from day 20
/// five new users a day, each active once. 300 users within 30 days are first
/// there when the 100th new user shows up (day 39), whatever the order the
/// events arrive in within the allowed lateness. One mark per user and day
/// would have needed 200 × 44 marks, far past the 1,500 kept.
#[test]
fn a_large_account_reaches_a_windowed_user_criterion_when_the_300th_user_shows_up() {
    let criterion = Criterion::DistinctUsers {
        event: "e".into(),
        min: 300,
        window_days: Some(30),
    };
    let mut events = Vec::new();
    for day in 0..60i64 {
        for u in 0..200 {
            let at = base() + Duration::days(day) + Duration::minutes(5 * u + 60);
            events.push(e_at(&format!("d{day}-u{u}"), at, Some(&format!("daily-{u}"))));
        }
    }
    let newcomer_at = |k: i64| base() + Duration::days(20 + k / 5) + Duration::hours(20) + Duration::minutes(k % 5);
    for k in 0..150 {
        events.push(e_at(&format!("n{k}"), newcomer_at(k), Some(&format!("new-{k}"))));
    }
    // Delivered by time plus a jitter of up to 10 days, some twice.
    let mut delivered: Vec<_> = events.iter().enumerate().collect();
    delivered.sort_by_key(|(i, e)| e.timestamp + Duration::hours(12 * ((*i as i64 * 7919) % 20)));
    let mut delivered: Vec<ProductEvent> = delivered.into_iter().map(|(_, e)| e.clone()).collect();
    delivered.extend(events.iter().step_by(97).cloned());
    let mut m = tracked(&criterion, MilestoneStatus::Pending);
    apply_all(&mut m, &delivered);
    assert_eq!(m.reached_at(), Some(newcomer_at(99)), "the 100th newcomer makes 300");
    assert_eq!(m.status(), MilestoneStatus::Achieved);
    let milepost_domain::Progress::WindowedUsers { runs, .. } = m.progress() else {
        panic!("windowed user progress");
    };
    let kept: usize = runs.values().map(Vec::len).sum();
    assert!(kept <= 350, "one run per user at most: {kept} runs kept");
    let size = milepost_domain::limits::stored_size(&m);
    assert!(size < 40_000, "the milestone item is {size} bytes");
}

#[test]
fn events_before_the_contract_start_do_not_count() {
    let criterion = Criterion::EventCount {
        event: "e".into(),
        min: 1,
        window_days: None,
    };
    let mut m = tracked(&criterion, MilestoneStatus::Pending);
    let early = ProductEvent {
        id: "early".into(),
        account_id: AccountId::new("a"),
        event: "e".into(),
        timestamp: base() - Duration::hours(1),
        user_id: None,
        properties: Default::default(),
    };
    apply_all(&mut m, &[early]);
    assert_eq!(m.status(), MilestoneStatus::Pending);
}

#[test]
fn a_window_only_counts_events_close_together() {
    let criterion = Criterion::EventCount {
        event: "e".into(),
        min: 3,
        window_days: Some(7),
    };
    let at = |day: i64, id: &str| e_at(id, base() + Duration::days(day), None);
    let mut m = tracked(&criterion, MilestoneStatus::Pending);
    apply_all(&mut m, &[at(0, "1"), at(8, "2"), at(16, "3")]);
    assert_eq!(m.reached_at(), None, "three events, but never three within 7 days");
    apply_all(&mut m, &[at(12, "4")]);
    apply_all(&mut m, &[at(14, "5")]);
    assert_eq!(
        m.reached_at(),
        Some(base() + Duration::days(14)),
        "days 8, 12 and 14 fall in one window"
    );
}

#[test]
fn seat_ratio_needs_that_share_of_licensed_seats() {
    let criterion = Criterion::SeatRatio {
        event: "e".into(),
        min_ratio: 0.6,
        window_days: None,
    };
    assert_eq!(criterion.threshold(10), 6);
    assert_eq!(criterion.threshold(7), 5, "ceil(0.6 × 7) = 5");
    let events: Vec<_> = (0..6)
        .map(|u| ProductEvent {
            id: format!("e{u}"),
            account_id: AccountId::new("a"),
            event: "e".into(),
            timestamp: base() + Duration::hours(u),
            user_id: Some(format!("user{u}")),
            properties: Default::default(),
        })
        .collect();
    let mut m = tracked(&criterion, MilestoneStatus::Pending);
    apply_all(&mut m, &events[..5]);
    assert_eq!(m.status(), MilestoneStatus::Pending);
    apply_all(&mut m, &events[5..]);
    assert_eq!(m.reached_at(), Some(base() + Duration::hours(5)));
}

proptest! {
    #[test]
    fn account_activity_is_independent_of_order_and_duplicates(
        (events, shuffled) in events_strategy().prop_flat_map(|evs| (Just(evs.clone()), Just(evs).prop_shuffle())),
    ) {
        use milepost_domain::{activity::IdFingerprint, AccountActivity};
        let mut a = AccountActivity::new(AccountId::new("a"));
        for e in &events { a.record(e); }
        let mut b = AccountActivity::new(AccountId::new("a"));
        for e in shuffled.iter().chain(events.iter()) { b.record(e); }
        prop_assert_eq!(&a, &b);
        // The kept events are the latest ones.
        let mut latest: Vec<_> = events.iter().map(|e| (e.timestamp, IdFingerprint::of(&e.id))).collect();
        latest.sort();
        latest.dedup();
        let kept: Vec<_> = a.recent.iter().map(|r| (r.at, r.fingerprint)).collect();
        prop_assert_eq!(kept, latest[latest.len().saturating_sub(10)..].to_vec());
    }
}

#[test]
fn a_windowed_seat_ratio_follows_a_change_in_licensed_seats() {
    let criterion = Criterion::SeatRatio {
        event: "e".into(),
        min_ratio: 0.5,
        window_days: Some(30),
    };
    let ev = |u: i64| ProductEvent {
        id: format!("e{u}"),
        account_id: AccountId::new("a"),
        event: "e".into(),
        timestamp: base() + Duration::hours(u),
        user_id: Some(format!("user{u}")),
        properties: Default::default(),
    };
    let mut m = tracked(&criterion, MilestoneStatus::Pending);
    for u in 0..3 {
        m.observe(&criterion.observe(&ev(u)).unwrap(), 10).unwrap();
    }
    assert_eq!(m.status(), MilestoneStatus::Pending, "3 of 10 seats");
    // The customer downsizes to 6 seats: 4 active users are now more than half.
    m.observe(&criterion.observe(&ev(3)).unwrap(), 6).unwrap();
    assert_eq!(
        m.reached_at(),
        Some(base() + Duration::hours(2)),
        "3 of 6 seats were active by hour 2"
    );
}

/// A windowed user milestone stored by the previous version (one mark per
/// user and day) is upgraded to runs by the first event it takes, and counts
/// the users it had.
#[test]
fn a_windowed_user_milestone_stored_as_marks_is_upgraded_by_its_next_event() {
    let criterion = Criterion::DistinctUsers {
        event: "e".into(),
        min: 3,
        window_days: Some(7),
    };
    let mut m = tracked(&criterion, MilestoneStatus::Pending);
    let stored = serde_json::json!({
        "kind": "windowed",
        "seen": [
            {"at": base() + Duration::hours(1), "id": "a1", "user": "ann"},
            {"at": base() + Duration::days(1), "id": "a2", "user": "ann"},
            {"at": base() + Duration::days(2), "id": "b1", "user": "bob"},
        ],
        "reached": null,
        "need": 3
    });
    milepost_domain::seed::milestone(&mut m)
        .progress(serde_json::from_value(stored).expect("the old form still reads"));
    assert_eq!(m.progress().describe_current(&criterion, SEATS), "2 users so far");
    let carol = e_at("c1", base() + Duration::days(3), Some("carol"));
    m.observe(&criterion.observe(&carol).unwrap(), SEATS).unwrap();
    assert!(matches!(m.progress(), milepost_domain::Progress::WindowedUsers { .. }));
    assert_eq!(
        m.reached_at(),
        Some(carol.timestamp),
        "ann, bob and carol within 7 days"
    );
    assert_eq!(m.status(), MilestoneStatus::Achieved);
}

#[test]
fn activity_stored_with_event_ids_still_knows_a_redelivery() {
    use milepost_domain::AccountActivity;
    let event = e_at("ajs-next-5b3c1c4e9f0a4d2b8e7f6a5b4c3d2e1f", base(), Some("u1"));
    // As the stores kept it before fingerprints: the id itself.
    let stored = serde_json::json!({
        "account_id": "a",
        "active_days": [base().date_naive()],
        "recent": [{ "at": base(), "id": event.id, "event": event.event, "user_id": "u1" }],
    });
    let mut activity: AccountActivity = serde_json::from_value(stored).unwrap();
    assert!(!activity.record(&event), "the redelivered event changed the activity");
    assert_eq!(activity.recent.len(), 1);
    let other = e_at("ajs-next-00000000000000000000000000000000", base(), Some("u1"));
    assert!(
        activity.record(&other),
        "another event at the same instant is another event"
    );
    assert_eq!(activity.recent.len(), 2);
}

#[test]
fn an_announcement_claim_is_its_claimants_own_until_its_lease_runs_out() {
    use milepost_domain::tracked::ANNOUNCE_LEASE;
    let criterion = Criterion::EventCount {
        event: "e".into(),
        min: 1,
        window_days: None,
    };
    let mut m = tracked(&criterion, MilestoneStatus::Achieved);
    let t = base();
    assert!(m.claim_announcement(t, "delivery-a"));
    assert!(
        !m.claim_announcement(t + Duration::minutes(1), "delivery-b"),
        "another delivery leaves a live claim alone"
    );
    assert!(
        m.claim_announcement(t + Duration::minutes(1), "delivery-a"),
        "the claim's own delivery, reading it back after a lost answer, still holds it"
    );
    assert!(
        m.claim_announcement(t + Duration::minutes(1) + ANNOUNCE_LEASE, "delivery-b"),
        "a lapsed claim is taken over"
    );
    m.mark_reached_announced();
    m.end_announcement_claim();
    assert!(
        !m.claim_announcement(t + Duration::hours(1), "delivery-b"),
        "announced: nothing to claim"
    );
}

proptest! {
    /// The health score's outcome part is the documented pace formula:
    /// v = 1 − max(0, share of its time gone − share of its target reached),
    /// worth 15 of 100 points. On pace or ahead, nothing is lost; behind, the
    /// points lost are 15 × the shortfall, and the factor says so.
    #[test]
    fn an_outcome_costs_what_the_documented_pace_formula_says(
        value in 0u32..=100,
        measured_on in 1i64..100,
        days_later in 0i64..100,
    ) {
        let target = Criterion::MetricThreshold {
            event: "outcome.measured".into(),
            property: "savings".into(),
            op: milepost_domain::CompareOp::Gte,
            value: 100.0,
        };
        let def = milepost_domain::fixtures::milestone_def("goal", 100, target.clone());
        let map = milepost_domain::fixtures::map_of(vec![def.clone()]);
        let account = milepost_domain::fixtures::account("a", milepost_domain::fixtures::date(2026, 1, 1));
        let mut m = TrackedMilestone::new(&account, &map, &def);
        let start = m.starts_at();
        let at_day = |d: i64| start + Duration::days(d);
        let measure = ProductEvent {
            id: "m1".into(),
            account_id: account.id.clone(),
            event: "outcome.measured".into(),
            timestamp: at_day(measured_on),
            user_id: None,
            properties: serde_json::from_value(serde_json::json!({ "savings": value })).unwrap(),
        };
        if let Some(obs) = target.observe(&measure) {
            m.observe(&obs, 10).unwrap();
        }
        let today = (measured_on + days_later).min(99);
        let mut activity = milepost_domain::AccountActivity::new(account.id.clone());
        activity.record(&ProductEvent { id: "today".into(), timestamp: at_day(today), ..measure.clone() });
        let h = milepost_domain::health::health(std::slice::from_ref(&m), &activity, 10, at_day(today));

        let reached = if value >= 100 { 1.0 } else { f64::from(value) / 100.0 };
        let behind = (today as f64 / 100.0 - reached).max(0.0);
        // Scores and points are whole: each is the formula's value rounded.
        let whole = |x: f64, exact: f64| (x - exact).abs() <= 0.5 + 1e-9;
        prop_assert!(whole(f64::from(h.score), 100.0 - 15.0 * behind), "{} vs {}", h.score, 100.0 - 15.0 * behind);
        let outcome_factors: Vec<_> = h.factors.iter().filter(|f| f.description.starts_with("goal")).collect();
        if 15.0 * behind < 0.5 - 1e-9 {
            // On pace, ahead, or behind by less than a point: no factor.
            prop_assert!(outcome_factors.is_empty(), "{:?}", h.factors);
        } else if 15.0 * behind > 0.5 + 1e-9 {
            prop_assert_eq!(outcome_factors.len(), 1);
            prop_assert!(whole(f64::from(outcome_factors[0].points), -15.0 * behind), "{:?}", outcome_factors);
        }
    }
}

fn expansion_play(unit: &str, unit_price: Option<u64>) -> milepost_domain::ExpansionPlay {
    milepost_domain::ExpansionPlay {
        adds: 10,
        unit: unit.into(),
        unit_price,
        play: "Offer the next seat tier".into(),
    }
}

/// An expansion milestone on `criterion`, tracked for `account`.
fn growth(criterion: &Criterion, account: &Account) -> TrackedMilestone {
    let def = MilestoneDef {
        phase: milepost_domain::Phase::Expansion,
        owner: "ae".into(),
        expansion: Some(expansion_play("seats", None)),
        ..milepost_domain::fixtures::milestone_def("growth", 360, criterion.clone())
    };
    let map = milepost_domain::fixtures::map_of(vec![def.clone()]);
    TrackedMilestone::new(account, &map, &def)
}

/// `events` applied one request at a time to `m` as ingestion applies them.
fn apply_to_account(m: &mut TrackedMilestone, account: &Account, events: &[ProductEvent]) {
    let mut activity = milepost_domain::AccountActivity::new(account.id.clone());
    let milestones = std::slice::from_mut(m);
    let mut state = milepost_domain::AccountState {
        account,
        activity: &mut activity,
        milestones,
    };
    for e in events {
        state.apply(e, base() + Duration::days(400), "delivery").unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Issue 36: an expansion milestone opens one opportunity, at the reach
    /// its events make whatever their delivery order, priced from the
    /// account; it never enters the sweep's due index.
    #[test]
    fn an_opportunity_opens_at_the_reach_in_any_delivery_order(
        criterion in criterion_strategy(),
        (events, shuffled) in events_strategy().prop_flat_map(|evs| (Just(evs.clone()), Just(evs).prop_shuffle())),
    ) {
        let mut account = account();
        account.arr = 60_000;
        let mut in_order = growth(&criterion, &account);
        prop_assert!(!in_order.awaits_sweep());
        apply_to_account(&mut in_order, &account, &events);
        let mut other = growth(&criterion, &account);
        apply_to_account(&mut other, &account, &shuffled);
        prop_assert_eq!(in_order.opportunity(), other.opportunity());
        match oracle(&criterion, &events) {
            None => prop_assert!(in_order.opportunity().is_none()),
            Some(at) => {
                let o = in_order.opportunity().expect("reached: an opportunity");
                // $60,000 over 10 seats, 10 seats more.
                prop_assert_eq!((o.opened_at, o.pipeline_arr(), o.for_role.as_str()), (at, Some(60_000), "ae"));
            }
        }
        prop_assert!(!in_order.awaits_sweep() && !other.awaits_sweep());
    }
}

#[test]
fn an_announced_opportunity_keeps_the_time_the_bus_was_told() {
    let account = account();
    let criterion = Criterion::EventCount {
        event: "e".into(),
        min: 1,
        window_days: None,
    };
    let mut m = growth(&criterion, &account);
    apply_to_account(&mut m, &account, &[e_at("late", base() + Duration::days(5), None)]);
    let told = m.opportunity().cloned().expect("an opportunity");
    m.mark_reached_announced();
    apply_to_account(&mut m, &account, &[e_at("older", base() + Duration::days(2), None)]);
    assert_eq!(
        m.reached_at(),
        Some(base() + Duration::days(2)),
        "the reach is backdated"
    );
    assert_eq!(m.opportunity(), Some(&told), "the opportunity stays as announced");
}

/// Issue 36: the owner hears of an opportunity through the heads-up index:
/// it enters once announced (not before, so the email and the bus agree on
/// when it opened), is due at once, and leaves when told; a later event
/// does not bring it back.
#[test]
fn an_opportunity_waits_in_the_heads_up_index_from_its_announcement_until_its_owner_is_told() {
    use milepost_domain::HeadsUpCheck;
    let account = account();
    let criterion = Criterion::EventCount {
        event: "e".into(),
        min: 1,
        window_days: None,
    };
    let mut m = growth(&criterion, &account);
    let now = base() + Duration::days(400);
    assert_eq!(
        (m.heads_up_index_at(), m.heads_up_check(now, 10)),
        (None, HeadsUpCheck::Never)
    );
    apply_to_account(&mut m, &account, &[e_at("reach", base() + Duration::days(5), None)]);
    assert!(m.opportunity().is_some());
    assert_eq!(m.heads_up_index_at(), None, "not before the bus is told");
    assert_eq!(m.heads_up_check(now, 10), HeadsUpCheck::Never);
    m.mark_reached_announced();
    assert_eq!(
        m.heads_up_index_at(),
        Some(m.starts_at()),
        "due at once: kept under its start"
    );
    assert_eq!(m.heads_up_key_time(), m.heads_up_index_at());
    assert_eq!(m.heads_up_check(now, 10), HeadsUpCheck::TellOpportunity);
    m.mark_opportunity_told();
    let told = m.opportunity().cloned();
    // An older event, delivered late, rewrites the milestone (its reach moves back).
    apply_to_account(&mut m, &account, &[e_at("older", base() + Duration::days(3), None)]);
    assert_eq!(m.reached_at(), Some(base() + Duration::days(3)));
    assert_eq!(
        m.opportunity().cloned(),
        told,
        "the opportunity stays as announced and told"
    );
    assert_eq!(
        (m.heads_up_index_at(), m.heads_up_check(now, 10)),
        (None, HeadsUpCheck::Never)
    );
    assert_eq!(
        m.heads_up_key_time(),
        Some(m.starts_at()),
        "where a stale entry is found"
    );
    assert!(m.opportunity().is_some_and(|o| o.owner_told));
    // Stored by a version before owners were told: read as told, never emailed late.
    let mut stored = serde_json::to_value(m.opportunity().unwrap()).unwrap();
    stored.as_object_mut().unwrap().remove("owner_told");
    let old: milepost_domain::Opportunity = serde_json::from_value(stored).unwrap();
    assert!(old.owner_told);
}

#[test]
fn seats_are_priced_at_what_the_account_pays_per_seat_unless_the_map_lists_a_price() {
    use milepost_domain::Opportunity;
    let mut account = account();
    (account.arr, account.licensed_seats) = (60_000, 50);
    let at = base();
    let seats = Opportunity::open(&expansion_play("seats", None), "ae", &account, at);
    assert_eq!((seats.unit_price, seats.pipeline_arr()), (Some(1_200), Some(12_000)));
    let listed = Opportunity::open(&expansion_play("seats", Some(900)), "ae", &account, at);
    assert_eq!(listed.pipeline_arr(), Some(9_000));
    let projects = Opportunity::open(&expansion_play("projects", Some(2_500)), "csm", &account, at);
    assert_eq!(
        (projects.pipeline_arr(), projects.for_role.as_str()),
        (Some(25_000), "csm")
    );
    // Rounded once, on the whole: $1,000 over 3 seats is $333 a seat, and 10 seats $3,333.
    (account.arr, account.licensed_seats) = (1_000, 3);
    let thirds = Opportunity::open(&expansion_play("seats", None), "ae", &account, at);
    assert_eq!((thirds.unit_price, thirds.pipeline_arr()), (Some(333), Some(3_333)));
}

#[test]
fn an_opportunity_without_a_price_is_unpriced_never_guessed() {
    use milepost_domain::Opportunity;
    let mut account = account();
    account.arr = 0;
    let at = base();
    assert_eq!(
        Opportunity::open(&expansion_play("seats", None), "ae", &account, at).pipeline_arr(),
        None
    );
    account.arr = 60_000;
    assert_eq!(
        Opportunity::open(&expansion_play("projects", None), "ae", &account, at).pipeline_arr(),
        None
    );
    // Under half a dollar a seat: unpriced, never $0.
    (account.arr, account.licensed_seats) = (1, 5);
    let nothing = Opportunity::open(&expansion_play("seats", None), "ae", &account, at);
    assert_eq!((nothing.unit_price, nothing.pipeline_arr()), (None, None));
}
