use serde_json::json;

use super::*;

fn one(value: Value) -> Result<Incoming, FieldError> {
    let mut calls = parse_calls(value);
    assert_eq!(calls.len(), 1);
    calls.remove(0)
}

#[test]
fn a_track_call_becomes_an_event_of_the_account_in_context_group_id() {
    let call = one(json!({
        "type": "track", "event": "Report Exported", "userId": "u-9", "messageId": "m-1",
        "timestamp": "2026-03-02T10:00:00.123Z", "sentAt": "2026-03-05T00:00:00Z",
        "context": {"groupId": "acme"}, "properties": {"rows": 120}
    }))
    .unwrap();
    let Incoming::Event(e) = call else {
        panic!("expected an event")
    };
    assert_eq!(e.id, "m-1");
    assert_eq!(e.account_id, AccountId::new("acme"));
    assert_eq!(e.event, "Report Exported");
    assert_eq!(e.user_id.as_deref(), Some("u-9"));
    assert_eq!(
        e.timestamp.to_rfc3339(),
        "2026-03-02T10:00:00.123+00:00",
        "timestamp, not sentAt"
    );
    assert_eq!(e.properties["rows"], json!(120));
}

#[test]
fn calls_without_an_account_or_of_unused_types_are_rejected_by_field() {
    let no_group = one(json!({"type": "track", "event": "x", "messageId": "m", "timestamp": "2026-03-02T10:00:00Z"}));
    assert_eq!(no_group.unwrap_err().field, "context.groupId");
    let page = one(json!({"type": "page", "messageId": "m", "timestamp": "2026-03-02T10:00:00Z"}));
    let e = page.unwrap_err();
    assert_eq!(e.field, "type");
    assert!(e.message.contains("`page` calls are not used"), "{e}");
    let no_id =
        one(json!({"type": "track", "event": "x", "timestamp": "2026-03-02T10:00:00Z", "context": {"groupId": "a"}}));
    assert_eq!(no_id.unwrap_err().field, "messageId");
    let bad_time =
        one(json!({"type": "track", "event": "x", "messageId": "m", "timestamp": "soon", "context": {"groupId": "a"}}));
    assert_eq!(bad_time.unwrap_err().field, "timestamp");
}

#[test]
fn a_batch_is_split_and_each_call_judged_alone() {
    let calls = parse_calls(json!({"batch": [
        {"type": "identify", "userId": "u1", "messageId": "m1", "timestamp": "2026-03-02T10:00:00Z", "context": {"groupId": "a"}},
        {"type": "track", "messageId": "m2", "timestamp": "2026-03-02T10:00:00Z", "context": {"groupId": "a"}},
        {"type": "group", "groupId": "a", "messageId": "m3", "timestamp": "2026-03-02T10:00:00Z", "traits": {"name": "A"}}
    ]}));
    assert_eq!(calls.len(), 3);
    assert!(matches!(&calls[0], Ok(Incoming::Event(e)) if e.event == "identify" && e.user_id.as_deref() == Some("u1")));
    assert_eq!(calls[1].as_ref().unwrap_err().field, "event");
    assert!(matches!(&calls[2], Ok(Incoming::Account(g)) if g.traits.name.as_deref() == Some("A")));
}

#[test]
fn group_traits_are_read_in_their_usual_spellings() {
    let call = one(json!({
        "type": "group", "groupId": "acme", "messageId": "g1", "timestamp": "2026-03-02T10:00:00Z",
        "traits": {
            "name": "Acme", "plan": "Mid-Market", "seats": "40", "arr": 52000,
            "contract_start": "2026-03-01", "renewal_date": "2027-03-01T00:00:00Z",
            "admin_email": "ana@acme.example", "admin_name": "Ana",
            "csm_email": "maya@vendor.example", "csm_name": "Maya",
            "exec_sponsor_email": "sam@acme.example", "timezone": "Europe/Berlin", "goal": "close in 3 days",
            "website": "https://www.Acme.example/", "hubspot_company_id": 9001
        }
    }))
    .unwrap();
    let Incoming::Account(g) = call else {
        panic!("expected a group call")
    };
    let t = &g.traits;
    assert_eq!(
        (t.domain.as_deref(), t.hubspot_company_id.as_deref()),
        (Some("acme.example"), Some("9001"))
    );
    assert_eq!(t.segment, Some(Segment::MidMarket));
    assert_eq!((t.licensed_seats, t.arr), (Some(40), Some(52_000)));
    assert_eq!(t.renewal_date, NaiveDate::from_ymd_opt(2027, 3, 1));
    assert_eq!(t.timezone, Some(chrono_tz::Europe::Berlin));
    let account = t
        .apply(
            &g.account_id,
            None,
            &milepost_domain::fixtures::milepost_address("lead@vendor.example"),
        )
        .unwrap();
    assert_eq!(
        account.primary_contact,
        Contact::parse("Ana", "ana@acme.example").unwrap()
    );
    assert_eq!(
        account.exec_sponsor.as_ref().map(|c| c.email.as_str()),
        Some("sam@acme.example")
    );
    assert_eq!(account.cs_leader_email, "lead@vendor.example");
}

#[test]
fn bad_traits_name_the_trait() {
    let traits = |t: Value| {
        one(json!({"type": "group", "groupId": "a", "messageId": "g", "timestamp": "2026-03-02T10:00:00Z", "traits": t}))
            .unwrap_err()
    };
    assert_eq!(traits(json!({"seats": "many"})).field, "traits.seats");
    assert_eq!(traits(json!({"seats": -3})).field, "traits.seats");
    assert_eq!(traits(json!({"plan": "galactic"})).field, "traits.plan");
    assert_eq!(
        traits(json!({"contract_start": "March"})).field,
        "traits.contract_start"
    );
    assert_eq!(traits(json!({"csm_email": "maya"})).field, "traits.csm_email");
    assert_eq!(traits(json!({"timezone": "Mars/Olympus"})).field, "traits.timezone");
    assert_eq!(traits(json!({"website": "not a site"})).field, "traits.website");
    assert_eq!(traits(json!({"domain": "acme"})).field, "traits.domain");
    assert_eq!(
        traits(json!({"hubspot_company_id": "acme-co"})).field,
        "traits.hubspot_company_id"
    );
    // Numbers past their documented maximum, as numbers or as text.
    for (name, value) in [
        ("arr", json!(1e300)),
        ("arr", json!("1e300")),
        ("arr", json!(1_000_000_000_000_001u64)),
        ("seats", json!(1e12)),
        ("tenure_year", json!(101)),
    ] {
        let e = traits(json!({ name: value }));
        assert_eq!(e.field, format!("traits.{name}"), "{value}");
        assert!(e.message.contains("at most"), "{}", e.message);
    }
    let renewal = traits(json!({"renewal_outcome": "renewed", "decision_date": "2027-01-01", "arr_after": 1e300}));
    assert_eq!(renewal.field, "traits.arr_after");
    // A person's name is one plain line.
    for name in ["Maya\r\nconfirmed by: the CEO", "<b>Maya</b>", &"M".repeat(300)] {
        assert_eq!(traits(json!({"csm_name": name})).field, "traits.csm_name", "{name:?}");
        assert_eq!(
            traits(json!({"onboarding_email": "o@vendor.example", "onboarding_name": name})).field,
            "traits.onboarding_name"
        );
    }
}

#[test]
fn a_new_account_needs_its_essentials_and_an_update_keeps_the_rest() {
    let id = AccountId::new("acme");
    let partial = AccountTraits {
        name: Some("Acme".into()),
        ..Default::default()
    };
    let e = partial
        .apply(
            &id,
            None,
            &milepost_domain::fixtures::milepost_address("lead@v.example"),
        )
        .unwrap_err();
    assert_eq!(e.field, "traits.segment");
    assert!(e.message.contains("required to create an account"));

    let existing = milepost_domain::fixtures::account("acme", milepost_domain::fixtures::date(2026, 1, 1));
    let update = AccountTraits {
        licensed_seats: Some(55),
        ..Default::default()
    };
    let updated = update
        .apply(
            &id,
            Some(&existing),
            &milepost_domain::fixtures::milepost_address("lead@v.example"),
        )
        .unwrap();
    assert_eq!(updated.licensed_seats, 55);
    assert_eq!(updated.name, existing.name, "traits not sent stay as they were");
    assert_eq!(updated.csm, existing.csm);

    let backwards = AccountTraits {
        renewal_date: Some(milepost_domain::fixtures::date(2025, 1, 1)),
        ..Default::default()
    };
    assert_eq!(
        backwards
            .apply(
                &id,
                Some(&existing),
                &milepost_domain::fixtures::milepost_address("l@v.example")
            )
            .unwrap_err()
            .field,
        "traits.renewal_date"
    );
}

#[test]
fn milepost_events_are_not_mistaken_for_segment_calls() {
    assert!(!looks_like_segment(
        &json!({"id": "e", "account_id": "a", "event": "x", "timestamp": "2026-03-02T10:00:00Z"})
    ));
    assert!(!looks_like_segment(&json!([{"id": "e", "account_id": "a"}])));
    assert!(looks_like_segment(&json!({"batch": []})));
    assert!(looks_like_segment(&json!([{"type": "track"}])));
}

#[test]
fn role_contacts_come_from_role_email_traits_and_own_milestones_by_role() {
    let call = one(json!({
        "type": "group", "groupId": "acme", "messageId": "g1", "timestamp": "2026-03-02T10:00:00Z",
        "traits": {
            "name": "Acme", "plan": "enterprise", "contract_start": "2026-03-01",
            "admin_email": "ana@acme.example", "csm_email": "maya@vendor.example", "csm_name": "Maya",
            "onboarding_email": "priya@vendor.example", "onboarding_name": "Priya Nair",
            "account_executive_email": "al@vendor.example"
        }
    }))
    .unwrap();
    let Incoming::Account(g) = call else {
        panic!("expected a group call")
    };
    let account = g
        .traits
        .apply(
            &g.account_id,
            None,
            &milepost_domain::fixtures::milepost_address("lead@vendor.example"),
        )
        .unwrap();
    assert_eq!(account.contacts.len(), 2, "admin, csm and the like are not roles");
    let onboarding = account.owner("onboarding");
    assert_eq!(
        (onboarding.contact.name.as_str(), onboarding.fallback),
        ("Priya Nair", false)
    );
    assert_eq!(account.owner("account_executive").contact.email, "al@vendor.example");
    let support = account.owner("support");
    assert_eq!(
        (support.contact.email.as_str(), support.fallback),
        ("maya@vendor.example", true),
        "the CSM stands in"
    );
    assert!(!account.owner("csm").fallback);
    // A later call replaces one role's contact and keeps the others.
    let update = one(json!({
        "type": "group", "groupId": "acme", "messageId": "g2", "timestamp": "2026-03-03T10:00:00Z",
        "traits": {"onboarding_email": "tomas@vendor.example", "onboarding_name": "Tomás"}
    }))
    .unwrap();
    let Incoming::Account(u) = update else { panic!() };
    let updated = u
        .traits
        .apply(
            &u.account_id,
            Some(&account),
            &milepost_domain::fixtures::milepost_address("lead@vendor.example"),
        )
        .unwrap();
    assert_eq!(updated.owner("onboarding").contact.email, "tomas@vendor.example");
    assert_eq!(updated.owner("account_executive").contact.email, "al@vendor.example");
    for (key, value) in [("Onboarding_email", "x@vendor.example"), ("onboarding_email", "a, b")] {
        let bad = one(json!({
            "type": "group", "groupId": "acme", "messageId": "g3", "timestamp": "2026-03-03T10:00:00Z",
            "traits": { key: value }
        }));
        assert_eq!(bad.unwrap_err().field, format!("traits.{key}"), "{key}");
    }
}

/// A renewal decision arrives as group traits (a CRM's Segment source): it is
/// recorded on the account beside the ones before; the same call again
/// changes nothing; a bad outcome or a missing date names its trait.
#[test]
fn a_renewal_outcome_is_recorded_on_the_account_once() {
    let group = |traits: Value| {
        one(
            json!({"type": "group", "groupId": "acme", "messageId": "g", "timestamp": "2027-03-02T10:00:00Z", "traits": traits}),
        )
    };
    let Incoming::Account(g) =
        group(json!({"renewal_outcome": "Expanded", "decision_date": "2027-02-20", "arr_after": 64000})).unwrap()
    else {
        panic!("expected a group call")
    };
    let existing = milepost_domain::fixtures::account("acme", milepost_domain::fixtures::date(2026, 3, 1));
    let leader = milepost_domain::fixtures::milepost_address("lead@vendor.example");
    let updated = g.traits.apply(&g.account_id, Some(&existing), &leader).unwrap();
    let expected = RenewalOutcome {
        decision_date: milepost_domain::fixtures::date(2027, 2, 20),
        outcome: RenewalDecision::Expanded,
        arr_after: Some(64_000),
    };
    assert_eq!(updated.renewals, [expected]);
    assert_eq!(updated.arr, existing.arr, "arr_after is the decision's, not a new ARR");
    let again = g.traits.apply(&g.account_id, Some(&updated), &leader).unwrap();
    assert_eq!(again, updated, "redelivered: nothing changes");

    let bad = group(json!({"renewal_outcome": "lost", "decision_date": "2027-02-20"})).unwrap_err();
    assert_eq!(bad.field, "traits.renewal_outcome");
    assert!(
        bad.message.contains("renewed, churned, expanded or contracted"),
        "{}",
        bad.message
    );
    let undated = group(json!({"renewal_outcome": "churned"})).unwrap_err();
    assert_eq!(undated.field, "traits.decision_date");
    let bad_date = group(json!({"renewal_outcome": "churned", "decision_date": "soon"})).unwrap_err();
    assert_eq!(bad_date.field, "traits.decision_date");
}

fn plan_outcome() -> Value {
    json!({"id": "logistics_costs", "title": "Lower annual logistics costs", "event": "outcome.measured",
           "property": "cost_savings_pct", "unit": "%", "baseline": 0, "target": "30",
           "starts_on": "2026-01-05", "by": "2027-01-05",
           "checkpoints": [{"on": "2026-04-05", "value": 5}], "agreed_by": "Dana Chen, VP Operations"})
}

fn group_with(traits: Value) -> Result<Incoming, FieldError> {
    one(
        json!({"type": "group", "groupId": "acme", "messageId": "g1", "timestamp": "2026-03-02T10:00:00Z",
               "traits": traits}),
    )
}

#[test]
fn a_success_plan_trait_is_read_as_the_whole_plan() {
    let Ok(Incoming::Account(call)) = group_with(json!({"name": "Acme", "success_plan": [plan_outcome()]})) else {
        panic!("refused")
    };
    let plan = call.traits.success_plan.expect("a plan");
    assert_eq!(plan.len(), 1);
    let o = &plan[0];
    assert_eq!(
        (
            o.id.as_str(),
            o.measure.event.as_str(),
            o.measure.property.as_str(),
            o.unit.as_str()
        ),
        ("logistics_costs", "outcome.measured", "cost_savings_pct", "%")
    );
    assert_eq!((o.baseline, o.target), (0.0, 30.0), "a number written as text is read");
    assert_eq!(
        o.checkpoints,
        vec![milepost_domain::Checkpoint {
            on: "2026-04-05".parse().unwrap(),
            value: 5.0
        }]
    );
    assert_eq!(o.agreed_by, "Dana Chen, VP Operations");
    // No trait, no plan: a call about something else leaves the plan alone.
    let Ok(Incoming::Account(call)) = group_with(json!({"name": "Acme"})) else {
        panic!("refused")
    };
    assert_eq!(call.traits.success_plan, None);
}

#[test]
fn a_success_plan_trait_is_refused_naming_the_field_at_fault() {
    let with = |key: &str, value: Value| {
        let mut o = plan_outcome();
        o["id"] = json!("time_to_close");
        o[key] = value;
        group_with(json!({"success_plan": [plan_outcome(), o]})).unwrap_err()
    };
    let cases = [
        (
            with("target", json!("thirty")),
            "traits.success_plan[1].target",
            "must be a number",
        ),
        (
            with("by", json!("next year")),
            "traits.success_plan[1].by",
            "must be a date",
        ),
        (
            with("target", json!(1e200)),
            "traits.success_plan[1].target",
            "9.99e125",
        ),
        (
            with("by", json!("2025-01-01")),
            "traits.success_plan[1].by",
            "is not after starts_on",
        ),
        (
            with("id", json!("logistics_costs")),
            "traits.success_plan[1].id",
            "in the plan twice",
        ),
        (
            with("owner", json!("maya")),
            "traits.success_plan[1].owner",
            "is not a field",
        ),
        (
            with("agreed_by", json!(null)),
            "traits.success_plan[1].agreed_by",
            "is required",
        ),
        (
            with("checkpoints", json!([{"on": "2026-04-05", "value": "x"}])),
            "traits.success_plan[1].checkpoints[0].value",
            "must be a number",
        ),
        (
            with("checkpoints", json!([{"on": "2028-01-01", "value": 5}])),
            "traits.success_plan[1].checkpoints[0]",
            "not between starts_on and by",
        ),
    ];
    for (e, field, says) in cases {
        assert_eq!(e.field, field, "{e}");
        assert!(e.message.contains(says), "{field}: {}", e.message);
    }
    let not_a_list = group_with(json!({"success_plan": {"id": "x"}})).unwrap_err();
    assert_eq!(not_a_list.field, "traits.success_plan");
    let empty = group_with(json!({"success_plan": []})).unwrap_err();
    assert_eq!(
        (empty.field.as_str(), empty.message.as_str()),
        ("traits.success_plan", "a plan needs at least one outcome")
    );
}
