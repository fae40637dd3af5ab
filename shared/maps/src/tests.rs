use super::*;

const VALID: &str = r#"segment: mid_market
tenure: first_year
events:
  outcome.measured:
    savings_pct: number
milestones:
  - id: first_workflow
    name: First core workflow completed
    customer_title: Your first workflow
    phase: onboarding
    due_days: 30
    owner: csm
    criterion: {kind: event_count, event: workflow.completed, min: 1}
    arr_weight: 0.3
    playbook: {outreach: "Do it", csm: "Call them", leadership: "Ask the sponsor"}
  - id: savings
    name: 5% savings
    customer_title: Cost savings
    phase: onboarding
    due_days: 90
    owner: csm
    criterion: {kind: metric_threshold, event: outcome.measured, property: savings_pct, op: ">=", value: 5}
    playbook: {outreach: "o", csm: "c", leadership: "l"}
"#;

fn problems(text: &str) -> Vec<MapProblem> {
    load_map("map.yaml", text).expect_err("the map should be rejected")
}

fn only(text: &str) -> MapProblem {
    let p = problems(text);
    assert_eq!(p.len(), 1, "expected exactly one problem, got {p:#?}");
    p.into_iter().next().unwrap()
}

#[test]
fn a_valid_map_loads_with_every_field() {
    let map = load_map("map.yaml", VALID).expect("valid");
    assert_eq!(map.segment, MapSegment::Only(milepost_domain::Segment::MidMarket));
    assert_eq!(map.tenure, Some(Tenure::FirstYear));
    assert_eq!(map.milestones.len(), 2);
    let m = &map.milestones[0];
    assert_eq!(
        (m.id.as_str(), m.due_days, m.arr_weight),
        ("first_workflow", 30, Some(0.3))
    );
    assert_eq!(
        m.criterion,
        Criterion::EventCount {
            event: "workflow.completed".into(),
            min: 1,
            window_days: None
        }
    );
    assert_eq!(m.playbook.leadership, "Ask the sponsor");
    assert_eq!(
        map.milestones[1].criterion,
        Criterion::MetricThreshold {
            event: "outcome.measured".into(),
            property: "savings_pct".into(),
            op: CompareOp::Gte,
            value: 5.0
        }
    );
}

#[test]
fn every_shipped_example_map_is_valid() {
    let examples = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/maps"));
    let files = map_files(&[examples]).unwrap();
    let maps = read_maps(&files).unwrap().unwrap_or_else(|p| panic!("{p:#?}"));
    assert_eq!(maps.len(), files.len());
    for seg in milepost_domain::Segment::ALL {
        for tenure in [Tenure::FirstYear, Tenure::MultiYear] {
            assert!(
                MilestoneMap::select(&maps, seg, tenure).is_some(),
                "no map for {seg} {tenure:?}"
            );
        }
    }
}

#[test]
fn an_unknown_criterion_kind_is_reported_at_its_line() {
    let text = VALID.replace("kind: event_count", "kind: event_cnt");
    let p = only(&text);
    assert_eq!((p.line, p.field.as_str()), (13, "milestones[0].criterion.kind"));
    assert!(
        p.message.contains("unknown criterion kind `event_cnt`"),
        "{}",
        p.message
    );
    assert!(p.to_string().starts_with("map.yaml:13:"), "{p}");
}

#[test]
fn a_duplicate_id_names_both_lines() {
    let text = VALID.replace("id: savings", "id: first_workflow");
    let p = only(&text);
    assert_eq!((p.line, p.field.as_str()), (16, "milestones[1].id"));
    assert!(
        p.message
            .contains("duplicate milestone id `first_workflow` (first defined on line 7)"),
        "{}",
        p.message
    );
}

#[test]
fn a_duplicate_id_is_reported_beside_the_other_problems_of_its_milestone() {
    let text = VALID
        .replace("id: savings", "id: first_workflow")
        .replace("criterion: {kind: metric_threshold", "criterion: {kind: sparkle");
    let p = problems(&text);
    let fields: Vec<&str> = p.iter().map(|p| p.field.as_str()).collect();
    assert!(
        fields.contains(&"milestones[1].id"),
        "the duplicate id is reported: {p:#?}"
    );
    assert!(
        fields.contains(&"milestones[1].criterion.kind"),
        "and the unknown kind: {p:#?}"
    );
}

#[test]
fn an_owner_is_a_role_written_as_a_lowercase_identifier() {
    let map = load_map("map.yaml", &VALID.replace("owner: csm", "owner: account_executive")).unwrap();
    assert_eq!(map.milestones[0].owner, "account_executive");
    for bad in ["Account Executive", "maya@vendor.example", "1st_line", "CSM"] {
        let p = only(&VALID.replacen("owner: csm", &format!("owner: {bad:?}"), 1));
        assert_eq!((p.line, p.field.as_str()), (12, "milestones[0].owner"), "{bad}");
    }
}

#[test]
fn due_days_must_fall_in_the_phase() {
    let text = VALID.replace("due_days: 30", "due_days: 200");
    let p = only(&text);
    assert_eq!((p.line, p.field.as_str()), (11, "milestones[0].due_days"));
    assert!(
        p.message
            .contains("outside the onboarding phase (months 1–3: days 1–90)"),
        "{}",
        p.message
    );
    // The same day is fine for a phase that spans it.
    let ok = text.replacen("phase: onboarding", "phase: adoption", 1);
    load_map("map.yaml", &ok).expect("day 200 is inside adoption");
}

#[test]
fn a_missing_playbook_stage_is_named() {
    let text = VALID.replace(r#", leadership: "Ask the sponsor""#, "");
    let p = only(&text);
    assert_eq!(p.field, "milestones[0].playbook.leadership");
    assert!(
        p.message.contains("missing playbook stage `leadership`"),
        "{}",
        p.message
    );
}

#[test]
fn an_unknown_event_property_type_is_reported() {
    let text = VALID.replace("savings_pct: number", "savings_pct: numbr");
    let all = problems(&text);
    let p = all
        .iter()
        .find(|p| p.field == "events.outcome.measured.savings_pct")
        .expect("type problem reported");
    assert_eq!(p.line, 5);
    assert!(
        p.message.contains("unknown event property type `numbr`"),
        "{}",
        p.message
    );
}

#[test]
fn a_threshold_on_a_non_numeric_or_undeclared_property_is_rejected() {
    let text = VALID.replace("savings_pct: number", "savings_pct: string");
    let p = only(&text);
    assert_eq!(p.field, "milestones[1].criterion.property");
    assert!(p.message.contains("a threshold needs a number"), "{}", p.message);
    let text = VALID.replace("property: savings_pct", "property: savings");
    assert!(only(&text).message.contains("declares no property `savings`"));
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let text = VALID
        .replace("kind: event_count", "kind: bogus")
        .replace("due_days: 90", "due_days: 0")
        .replace("phase: onboarding\n    due_days: 30", "phase: growth\n    due_days: 30")
        .replace(
            "owner: csm\n    criterion: {kind: metric",
            "owner: ''\n    criterion: {kind: metric",
        );
    let p = problems(&text);
    let fields: Vec<&str> = p.iter().map(|p| p.field.as_str()).collect();
    for expected in [
        "milestones[0].phase",
        "milestones[0].criterion.kind",
        "milestones[1].due_days",
        "milestones[1].owner",
    ] {
        assert!(fields.contains(&expected), "{expected} missing from {fields:?}");
    }
}

#[test]
fn unknown_fields_and_bad_values_are_named() {
    let text = VALID.replace("arr_weight: 0.3", "arr_wieght: 0.3");
    let p = only(&text);
    assert_eq!((p.line, p.field.as_str()), (14, "milestones[0].arr_wieght"));
    let text = VALID.replace("arr_weight: 0.3", "arr_weight: 3");
    assert!(only(&text).message.contains("between 0 and 1"));
    let text = VALID.replace("min: 1}", "min: -1}");
    assert_eq!(only(&text).field, "milestones[0].criterion.min");
    let text = VALID.replace("segment: mid_market", "segment: midmarket");
    assert_eq!((only(&text).line, only(&text).field.as_str()), (1, "segment"));
    let text = VALID.replace("op: \">=\"", "op: \"=>\"");
    assert_eq!(only(&text).field, "milestones[1].criterion.op");
}

#[test]
fn broken_yaml_is_reported_with_its_position() {
    let p = only("segment: smb\nmilestones:\n  - id: [unclosed\n");
    assert_eq!(p.field, "(document)");
    assert!(p.line >= 3, "{p}");
    assert!(p.message.contains("not valid YAML"), "{}", p.message);
}

/// What a milestone's progress and texts may hold is bounded, so its item
/// stays within DynamoDB's 400 KB (docs/capacity.md); the map says where.
#[test]
fn limits_that_keep_a_milestone_storable_are_checked_with_the_line() {
    let too_many = VALID.replace("min: 1}", "min: 1501}");
    assert_eq!(only(&too_many).field, "milestones[0].criterion.min");
    let long_window = VALID.replace("min: 1}", "min: 1, window_days: 366}");
    assert_eq!(only(&long_window).field, "milestones[0].criterion.window_days");
    let long_text = VALID.replace("Call them", &"x".repeat(5000));
    assert_eq!(only(&long_text).field, "milestones[0].playbook.csm");
    let guides = format!(
        "[{}]",
        ["{title: g, url: \"https://help.example.com/g\"}"; 11].join(", ")
    );
    let many_guides = VALID.replace(
        "leadership: \"Ask the sponsor\"}",
        &format!("leadership: \"Ask the sponsor\", guides: {guides}}}"),
    );
    assert_eq!(only(&many_guides).field, "milestones[0].playbook.guides");
}

/// The customer's executive sponsor is written to in words meant for them:
/// a map that escalates to the sponsor must give those words per milestone.
#[test]
fn a_map_escalating_to_the_sponsor_needs_sponsor_text_for_every_milestone() {
    let escalating = VALID.replace(
        "tenure: first_year",
        "tenure: first_year\nescalate_to_exec_sponsor: true",
    );
    let p = problems(&escalating);
    let fields: Vec<&str> = p.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        ["milestones[0].playbook.sponsor", "milestones[1].playbook.sponsor"]
    );
    assert!(
        p[0].message.contains("the leadership text is internal"),
        "{}",
        p[0].message
    );
    let with_sponsor = escalating
        .replace(
            "leadership: \"Ask the sponsor\"}",
            "leadership: \"Ask the sponsor\", sponsor: \"Could you name an owner?\"}",
        )
        .replace("leadership: \"l\"}", "leadership: \"l\", sponsor: \"s\"}");
    let map = load_map("map.yaml", &with_sponsor).expect("valid with sponsor texts");
    assert_eq!(
        map.milestones[0].playbook.sponsor.as_deref(),
        Some("Could you name an owner?")
    );
    assert_eq!(
        map.milestones[0].playbook.internal_texts(),
        ["Call them", "Ask the sponsor"]
    );
    // Without the escalation the sponsor text is optional.
    assert_eq!(
        load_map("map.yaml", VALID).unwrap().milestones[0].playbook.sponsor,
        None
    );
}

/// Guides are linked from the follow-up email: each needs a title and an https link.
#[test]
fn guides_need_a_title_and_an_https_link() {
    let with = |guides: &str| {
        VALID.replace(
            "leadership: \"Ask the sponsor\"}",
            &format!("leadership: \"Ask the sponsor\", guides: {guides}}}"),
        )
    };
    let map = load_map(
        "map.yaml",
        &with("[{title: First workflow, url: \"https://help.example.com/wf?x=1\"}]"),
    )
    .expect("valid");
    assert_eq!(
        map.milestones[0].playbook.guides,
        [milepost_domain::Guide::new(
            "First workflow",
            "https://help.example.com/wf?x=1"
        )]
    );
    for (guides, field, says) in [
        (
            "[Your first workflow]",
            "milestones[0].playbook.guides[0]",
            "title` and `url`",
        ),
        ("[{title: T}]", "milestones[0].playbook.guides[0].url", "is required"),
        (
            "[{title: T, url: \"http://help.example.com/t\"}]",
            "milestones[0].playbook.guides[0].url",
            "https://",
        ),
        (
            "[{title: T, url: \"https:///t\"}]",
            "milestones[0].playbook.guides[0].url",
            "names no host",
        ),
        (
            "[{title: T, url: \"https://help.example.com/a b\"}]",
            "milestones[0].playbook.guides[0].url",
            "space",
        ),
        (
            "[{url: \"https://help.example.com/t\"}]",
            "milestones[0].playbook.guides[0].title",
            "is required",
        ),
        (
            "[{title: T, url: \"https://h.example/t\", kind: pdf}]",
            "milestones[0].playbook.guides[0].kind",
            "unknown field",
        ),
    ] {
        let p = only(&with(guides));
        assert_eq!(p.field, field, "{guides}");
        assert!(p.message.contains(says), "{guides}: {}", p.message);
    }
}

#[test]
fn thresholds_are_whole_amounts_and_leadership_is_not_below_the_csm_stage() {
    let with = |t: &str| VALID.replace("events:\n", &format!("min_arr_at_risk: {t}\nevents:\n"));
    let map = load_map("map.yaml", &with("{csm_task: 1000, leadership: 2500}")).expect("valid");
    assert_eq!(
        map.min_arr_at_risk,
        milepost_domain::ArrThresholds {
            csm_task: 1_000,
            leadership: 2_500
        }
    );
    let map = load_map("map.yaml", &with("{leadership: 2500}")).expect("either is optional");
    assert_eq!(map.min_arr_at_risk.csm_task, 0);
    assert_eq!(load_map("map.yaml", VALID).unwrap().min_arr_at_risk, Default::default());
    for (t, field, says) in [
        (
            "{csm_task: 2500, leadership: 1000}",
            "min_arr_at_risk.leadership",
            "cannot be lower",
        ),
        ("{csm_task: -5}", "min_arr_at_risk.csm_task", "whole number"),
        ("{csm_task: 1e3}", "min_arr_at_risk.csm_task", "whole number"),
        ("{leadership: 100, cmt_task: 5}", "min_arr_at_risk.cmt_task", ""),
        ("2500", "min_arr_at_risk", ""),
    ] {
        let p = only(&with(t));
        assert_eq!(p.field, field, "{t}: {p:?}");
        assert!(p.message.contains(says), "{t}: {}", p.message);
    }
}

#[test]
fn a_heads_up_comes_before_the_due_date_and_the_champion_only_with_one() {
    let with = |lines: &str| VALID.replace("    arr_weight: 0.3\n", &format!("    arr_weight: 0.3\n{lines}"));
    let map = load_map("map.yaml", &with("    warn_before_days: 7\n    warn_champion: true\n")).expect("valid");
    assert_eq!(
        map.milestones[0].heads_up,
        Some(HeadsUpRule {
            days_before: 7,
            champion: true
        })
    );
    assert_eq!(map.milestones[1].heads_up, None, "none unless asked for");
    let owner_only = load_map("map.yaml", &with("    warn_before_days: 3\n")).unwrap();
    assert!(!owner_only.milestones[0].heads_up.unwrap().champion);
    for (lines, field, says) in [
        (
            "    warn_before_days: 30\n",
            "milestones[0].warn_before_days",
            "less than due_days (30)",
        ),
        (
            "    warn_before_days: 0\n",
            "milestones[0].warn_before_days",
            "from 1 to 30",
        ),
        (
            "    warn_before_days: 31\n",
            "milestones[0].warn_before_days",
            "from 1 to 30",
        ),
        (
            "    warn_champion: true\n",
            "milestones[0].warn_champion",
            "needs warn_before_days",
        ),
        (
            "    warn_before_days: 5\n    warn_champion: yes please\n",
            "milestones[0].warn_champion",
            "true or false",
        ),
    ] {
        let p = only(&with(lines));
        assert_eq!(p.field, field, "{lines}: {p:?}");
        assert!(p.message.contains(says), "{lines}: {}", p.message);
    }
    let manual = VALID
        .replace(
            "    criterion: {kind: event_count, event: workflow.completed, min: 1}\n",
            "    criterion: {kind: manual}\n    warn_before_days: 5\n    warn_champion: true\n",
        )
        .replace("{outreach: \"Do it\", csm:", "{csm:");
    let p = only(&manual);
    assert_eq!(p.field, "milestones[0].warn_champion");
    assert!(p.message.contains("vendor-side milestone"), "{}", p.message);
}

/// Issue 33: whose move a milestone is. A manual one is ours unless the
/// map says otherwise, and a vendor-side milestone's map holds nothing
/// that would go to the customer.
#[test]
fn a_vendor_side_milestone_has_nothing_for_the_customer() {
    let manual = |playbook: &str, extra: &str| {
        VALID
            .replace(
                "    criterion: {kind: event_count, event: workflow.completed, min: 1}\n",
                &format!("    criterion: {{kind: manual}}\n{extra}"),
            )
            .replace(
                "{outreach: \"Do it\", csm: \"Call them\", leadership: \"Ask the sponsor\"}",
                playbook,
            )
    };
    let titled = load_map("map.yaml", VALID).expect("valid");
    assert_eq!(
        titled.milestones[0].customer_title.as_deref(),
        Some("Your first workflow")
    );
    let ours = load_map("map.yaml", &manual("{csm: \"Call them\", leadership: \"Ask\"}", "")).expect("valid");
    assert_eq!(
        ours.milestones[0].moved_by(),
        MovedBy::Vendor,
        "manual: ours by default"
    );
    assert_eq!(
        ours.milestones[1].moved_by(),
        MovedBy::Customer,
        "measured: the customer's"
    );
    assert!(ours.milestones[0].playbook.outreach.is_empty());

    for key in ["outreach", "sponsor", "guides"] {
        let value = if key == "guides" { "[]" } else { "\"x\"" };
        let p = only(&manual(&format!("{{{key}: {value}, csm: c, leadership: l}}"), ""));
        assert_eq!(p.field, format!("milestones[0].playbook.{key}"));
        assert!(p.message.contains("never sent"), "{}", p.message);
    }
    let p = only(&manual("{csm: c}", ""));
    assert_eq!(p.field, "milestones[0].playbook.leadership");

    // Said to be the customer's, a manual milestone has the customer's words.
    let theirs = load_map(
        "map.yaml",
        &manual("{outreach: o, csm: c, leadership: l}", "    moved_by: customer\n"),
    )
    .expect("valid");
    assert_eq!(theirs.milestones[0].moved_by(), MovedBy::Customer);
    let p = only(&manual("{outreach: o, csm: c, leadership: l}", "    moved_by: us\n"));
    assert_eq!(p.field, "milestones[0].moved_by");
    assert!(p.message.contains("customer or vendor"), "{}", p.message);

    // The sponsor is never asked to name the sponsor.
    let sponsor_map = |side: &str| {
        VALID
            .replace(
                "tenure: first_year\n",
                "tenure: first_year\nescalate_to_exec_sponsor: true\n",
            )
            .replace("First core workflow completed", "Executive sponsor named")
            .replace(
                "    criterion: {kind: event_count, event: workflow.completed, min: 1}\n",
                &format!("    criterion: {{kind: manual}}\n    moved_by: {side}\n"),
            )
            .replace("leadership: \"Ask the sponsor\"}", "leadership: l, sponsor: s}")
            .replace("leadership: \"l\"}", "leadership: l, sponsor: s}")
    };
    let p = only(&sponsor_map("customer"));
    assert_eq!(p.field, "milestones[0].moved_by");
    assert!(p.message.contains("asked about the sponsor"), "{}", p.message);
    let vendor = sponsor_map("vendor").replace(
        "{outreach: \"Do it\", csm: \"Call them\", leadership: l, sponsor: s}",
        "{csm: c, leadership: l}",
    );
    load_map("map.yaml", &vendor).expect("a vendor-side milestone needs no sponsor text");
}

#[test]
fn a_control_group_is_a_share_of_the_maps_misses_overridable_per_milestone() {
    use milepost_domain::holdout::DEFAULT_HOLDOUT_MAX_ARR;
    let map = load_map("map.yaml", VALID).unwrap();
    assert_eq!(map.holdout.share, 0.0, "nobody is held out unless the map says so");
    assert_eq!(map.holdout.max_arr, DEFAULT_HOLDOUT_MAX_ARR);

    let text = VALID
        .replacen(
            "tenure: first_year\n",
            "tenure: first_year\nholdout: 0.1\nholdout_max_arr: 50000\n",
            1,
        )
        .replacen("    arr_weight: 0.3\n", "    arr_weight: 0.3\n    holdout: 0.25\n", 1);
    let map = load_map("map.yaml", &text).unwrap();
    assert_eq!((map.holdout.share, map.holdout.max_arr), (0.1, 50_000));
    let own = map.milestones[0].holdout_in(&map);
    let inherited = map.milestones[1].holdout_in(&map);
    assert_eq!((own.share, own.max_arr), (0.25, 50_000));
    assert_eq!((inherited.share, inherited.max_arr), (0.1, 50_000));

    let p = only(&VALID.replacen("tenure: first_year\n", "tenure: first_year\nholdout: 0.9\n", 1));
    assert_eq!((p.field.as_str(), p.line), ("holdout", 3));
    assert!(p.message.contains("from 0 to 0.5"), "{}", p.message);
    let p = only(&VALID.replacen("    arr_weight: 0.3\n", "    arr_weight: 0.3\n    holdout: lots\n", 1));
    assert_eq!(p.field, "milestones[0].holdout");
    let p = only(&VALID.replacen("tenure: first_year\n", "tenure: first_year\nholdout_max_arr: -5\n", 1));
    assert_eq!(p.field, "holdout_max_arr");
}

/// Issue 33: a customer-side milestone needs the customer's words for it
/// (an error, with its line); what a valid map lets through but a customer
/// would be poorer for is advice: no guide for its follow-up. A vendor-side
/// one needs neither.
#[test]
fn a_customer_side_milestone_needs_customer_words_and_advice_names_one_without_guides() {
    let p = only(&VALID.replace("    customer_title: Your first workflow\n", ""));
    assert_eq!(p.field, "milestones[0].customer_title");
    assert!(
        p.message.contains("is required") && p.message.contains("\"First core workflow completed\""),
        "{}",
        p.message
    );
    assert!(p.line >= 7, "the milestone's line: {p}");
    let (_, advice) = load_map_with_advice("map.yaml", VALID).expect("valid");
    let fields: Vec<&str> = advice.iter().map(|a| a.field.as_str()).collect();
    assert_eq!(
        fields,
        ["milestones[0].playbook.guides", "milestones[1].playbook.guides"]
    );
    assert!(
        advice[0].message.contains("only the link to book 1:1 help"),
        "{}",
        advice[0]
    );
    let cared_for = VALID.replace(
        "{outreach: \"Do it\", csm: \"Call them\", leadership: \"Ask the sponsor\"}",
        "{outreach: \"Do it\", csm: \"Call them\", leadership: \"Ask\", guides: [{title: G, url: \"https://help.example.com/g\"}]}",
    );
    let (_, advice) = load_map_with_advice("map.yaml", &cared_for).unwrap();
    assert!(
        advice.iter().all(|a| a.field.starts_with("milestones[1]")),
        "{advice:?}"
    );
    let manual = VALID
        .replace(
            "    criterion: {kind: event_count, event: workflow.completed, min: 1}\n",
            "    criterion: {kind: manual}\n",
        )
        .replace("{outreach: \"Do it\", csm:", "{csm:");
    let (_, advice) = load_map_with_advice("map.yaml", &manual).unwrap();
    assert!(
        advice.iter().all(|a| a.field.starts_with("milestones[1]")),
        "{advice:?}"
    );
}

#[test]
fn what_follows_a_lapse_is_set_by_the_map_or_defaults_to_reminders_at_14_and_30_days() {
    let with = |t: &str| VALID.replace("events:\n", &format!("{t}\nevents:\n"));
    let rules = load_map("map.yaml", VALID).unwrap().after_playbook;
    assert_eq!(
        (rules.lapsed_reminder_days, rules.task_sla_business_days),
        (vec![14, 30], 5)
    );
    let map = load_map(
        "map.yaml",
        &with("lapsed_reminder_days: [7, 21, 60]\ntask_sla_business_days: 3"),
    )
    .unwrap();
    assert_eq!(map.after_playbook.lapsed_reminder_days, [7, 21, 60]);
    assert_eq!(map.after_playbook.task_sla_business_days, 3);
    let none = load_map("map.yaml", &with("lapsed_reminder_days: []\ntask_sla_business_days: 0")).unwrap();
    assert!(none.after_playbook.lapsed_reminder_days.is_empty());
    for (t, field, says) in [
        ("lapsed_reminder_days: [30, 14]", "lapsed_reminder_days", "ascending"),
        ("lapsed_reminder_days: [0]", "lapsed_reminder_days", "from 1 to 365"),
        (
            "lapsed_reminder_days: [1, 2, 3, 4, 5]",
            "lapsed_reminder_days",
            "up to 4",
        ),
        ("lapsed_reminder_days: 14", "lapsed_reminder_days", "a list"),
        ("task_sla_business_days: 61", "task_sla_business_days", ""),
        ("task_sla_business_days: -1", "task_sla_business_days", ""),
    ] {
        let p = only(&with(t));
        assert_eq!(p.field, field, "{t}: {p:?}");
        assert!(p.message.contains(says), "{t}: {}", p.message);
    }
}

/// Issue 36: weights summing above 1 would put more than an account's ARR
/// at risk; a valid map that does so gets advice naming the sum.
#[test]
fn weights_summing_above_one_are_advised_against() {
    let (_, advice) = load_map_with_advice("map.yaml", VALID).expect("valid");
    assert!(advice.iter().all(|a| a.field != "milestones"), "{advice:?}");
    let heavy = VALID.replace("arr_weight: 0.3", "arr_weight: 0.95");
    let (_, advice) = load_map_with_advice("map.yaml", &heavy).expect("still valid: advice only");
    let weights = advice
        .iter()
        .find(|a| a.field == "milestones")
        .expect("advice on the weights");
    assert!(weights.message.contains("sum to 1.05"), "{}", weights.message);
}

/// Issue 36: `arr_weight: discovered` is measured from the kept discovery:
/// the churn-rate difference of the map's own scope, else the overall line;
/// without one, the default stands in and the map says why.
#[test]
fn a_discovered_weight_is_measured_from_the_kept_discovery() {
    use milepost_domain::discovery::KeptDiscovery;
    let text = VALID.replace("arr_weight: 0.3", "arr_weight: discovered");
    let mut map = load_map("map.yaml", &text).expect("valid");
    let def = &map.milestones[0];
    assert_eq!(def.arr_weight, None);
    assert_eq!(
        (def.arr_weight(), def.arr_weight_range()),
        (0.1, None),
        "the default until measured"
    );
    let misspelt = VALID.replace("arr_weight: 0.3", "arr_weight: discoverd");
    let p = only(&misspelt);
    assert_eq!(p.field, "milestones[0].arr_weight");
    assert!(
        p.message.contains("a number or `discovered`, not `discoverd`"),
        "{}",
        p.message
    );
    let checkpoints = AGREED.replace("arr_weight: 0.2", "arr_weight: discovered");
    assert!(only(&checkpoints)
        .message
        .contains("cannot be discovered for an agreed outcome"));

    assert!(map.weigh(None), "no discovery: why is said");
    let why = map.milestones[0]
        .discovered_weight
        .as_ref()
        .unwrap()
        .unmeasured
        .clone()
        .unwrap();
    assert!(why.contains("no discovery kept"), "{why}");
    assert!(!map.weigh(None), "the same again changes nothing");

    let id = map.milestones[0].id.clone();
    let line = |segment: &str, tenure: &str, renewed_achieved: u64, churned_achieved: u64| {
        format!(
            r#"{{"milestone": "{id}", "name": "n", "segment": "{segment}", "tenure": "{tenure}", "renewed_n": 40,
            "renewed_achieved": {renewed_achieved}, "churned_n": 20, "churned_achieved": {churned_achieved}}}"#
        )
    };
    let at = milepost_domain::fixtures::date(2026, 12, 1)
        .and_hms_opt(9, 0, 0)
        .unwrap()
        .and_utc();
    let printed = format!(
        r#"{{"milestones": [{}, {}]}}"#,
        line("all", "all", 30, 5),
        line("mid_market", "first_year", 36, 4)
    );
    let kept = KeptDiscovery::from_json(&printed, "q3.json", at).unwrap();
    assert!(map.weigh(Some(&kept)));
    let def = &map.milestones[0];
    let measured = def.discovered_weight.as_ref().unwrap().measured.clone().unwrap();
    // The first-year mid-market map takes its own line: 20 missed (16 churned), 40 achieved (4 churned).
    assert_eq!(measured.segment, "mid_market");
    assert_eq!(
        (
            measured.missed,
            measured.missed_churned,
            measured.achieved,
            measured.achieved_churned
        ),
        (20, 16, 40, 4)
    );
    assert!(
        (def.arr_weight() - (16.0 / 20.0 - 4.0 / 40.0)).abs() < 1e-12,
        "{}",
        def.arr_weight()
    );
    assert_eq!(def.arr_weight_range(), Some(measured.range()));
    // Another segment's map has no line of its own: the overall one.
    map.segment = milepost_domain::MapSegment::Only(milepost_domain::Segment::Smb);
    assert!(map.weigh(Some(&kept)));
    let measured = map.milestones[0]
        .discovered_weight
        .as_ref()
        .unwrap()
        .measured
        .clone()
        .unwrap();
    assert_eq!(
        (measured.segment.as_str(), measured.missed, measured.missed_churned),
        ("all", 25, 15)
    );
    // A line of few accounts for the map's own scope gives way to the overall one.
    let small = printed.replace(
        r#""tenure": "first_year", "renewed_n": 40,"#,
        r#""tenure": "first_year", "small_cohort": true, "renewed_n": 40,"#,
    );
    assert_ne!(small, printed);
    map.segment = milepost_domain::MapSegment::Only(milepost_domain::Segment::MidMarket);
    map.weigh(Some(&KeptDiscovery::from_json(&small, "q3.json", at).unwrap()));
    let measured = map.milestones[0]
        .discovered_weight
        .as_ref()
        .unwrap()
        .measured
        .clone()
        .unwrap();
    assert_eq!(measured.segment, "all", "{measured:?}");
    // A hand-set weight is not touched.
    let mut set = load_map("map.yaml", VALID).unwrap();
    assert!(!set.weigh(Some(&kept)));
    assert_eq!(set.milestones[0].arr_weight(), 0.3);
}

const AGREED: &str = r#"segment: enterprise
milestones:
  - id: outcome_on_pace
    name: Agreed outcome on pace
    phase: value_realization
    owner: csm
    criterion: {kind: agreed_outcome}
    arr_weight: 0.2
    playbook: {outreach: "o", csm: "c", leadership: "l"}
"#;

#[test]
fn an_agreed_outcome_milestone_takes_its_dates_and_titles_from_each_plan() {
    let map = load_map("map.yaml", AGREED).expect("valid");
    let m = &map.milestones[0];
    assert_eq!(m.criterion, Criterion::AgreedOutcome);
    assert_eq!(m.moved_by(), milepost_domain::MovedBy::Customer);
    assert_eq!(m.customer_title, None, "the plan's words are the customer's title");
    let with_due = AGREED.replace("    owner: csm\n", "    owner: csm\n    due_days: 90\n");
    let p = only(&with_due);
    assert_eq!(p.field, "milestones[0].due_days");
    assert!(p.message.contains("each checkpoint's date"), "{}", p.message);
    let with_event = AGREED.replace(
        "{kind: agreed_outcome}",
        "{kind: agreed_outcome, event: outcome.measured}",
    );
    assert_eq!(only(&with_event).field, "milestones[0].criterion.event");
}

const EXPANSION: &str = r#"
  - id: seats_near_limit
    name: 90% of seats active
    phase: expansion
    owner: ae
    criterion: {kind: seat_ratio, event: user.active, min_ratio: 0.9}
    expansion: {adds: 10, unit: seats, play: "Offer the next seat tier"}
"#;

#[test]
fn an_expansion_milestone_opens_an_opportunity_and_is_never_due() {
    let (map, advice) = load_map_with_advice("map.yaml", &format!("{VALID}{EXPANSION}")).expect("valid");
    let m = &map.milestones[2];
    assert_eq!(m.phase, milepost_domain::Phase::Expansion);
    let play = m.expansion.as_ref().expect("its play");
    assert_eq!((play.adds, play.unit.as_str(), play.unit_price), (10, "seats", None));
    // Its owner's words are the play; nothing is written for the customer.
    assert_eq!(
        (m.playbook.csm.as_str(), m.playbook.outreach.as_str(), m.arr_weight()),
        ("Offer the next seat tier", "", 0.0)
    );
    assert!(
        advice.iter().all(|a| !a.field.starts_with("milestones[2]")),
        "{advice:#?}"
    );
    // Another unit without a list price loads, with advice that it is unpriced.
    let usage = EXPANSION.replace("unit: seats", "unit: projects");
    let (_, advice) = load_map_with_advice("map.yaml", &format!("{VALID}{usage}")).expect("valid");
    let a = advice
        .iter()
        .find(|a| a.field == "milestones[2].expansion.unit_price")
        .expect("advice on the unpriced unit");
    assert!(a.message.contains("unpriced"), "{}", a.message);
}

#[test]
fn what_an_expansion_milestone_cannot_say_is_refused_by_field() {
    let with = |extra: &str| {
        format!(
            "{VALID}{}",
            EXPANSION.replace("    expansion:", &format!("{extra}\n    expansion:"))
        )
    };
    for (extra, field) in [
        ("    due_days: 120", "milestones[2].due_days"),
        ("    arr_weight: 0.2", "milestones[2].arr_weight"),
        ("    warn_before_days: 7", "milestones[2].warn_before_days"),
        ("    customer_title: More seats", "milestones[2].customer_title"),
        ("    moved_by: vendor", "milestones[2].moved_by"),
        ("    holdout: 0.1", "milestones[2].holdout"),
        ("    warn_champion: true", "milestones[2].warn_champion"),
        (
            "    playbook: {outreach: o, csm: c, leadership: l}",
            "milestones[2].playbook",
        ),
    ] {
        let p = only(&with(extra));
        assert_eq!(p.field, field, "{extra}");
        assert!(p.message.contains("never missed"), "{}", p.message);
    }
    let long = format!("unit: {}", "s".repeat(41));
    for (from, to, field) in [
        ("adds: 10", "adds: 0", "milestones[2].expansion.adds"),
        ("unit: seats", "unit: Seats!", "milestones[2].expansion.unit"),
        ("unit: seats", "unit: _seats", "milestones[2].expansion.unit"),
        ("unit: seats", long.as_str(), "milestones[2].expansion.unit"),
        (
            "unit: seats",
            "unit: seats, unit_price: 99999999999",
            "milestones[2].expansion.unit_price",
        ),
        (
            "unit: seats",
            "unit: seats, unit_price: 0",
            "milestones[2].expansion.unit_price",
        ),
        (
            ", play: \"Offer the next seat tier\"",
            "",
            "milestones[2].expansion.play",
        ),
        ("unit: seats", "unit: seats, price: 3", "milestones[2].expansion.price"),
    ] {
        let p = only(&format!("{VALID}{}", EXPANSION.replace(from, to)));
        assert_eq!(p.field, field, "{to}");
    }
    let p = only(&format!(
        "{VALID}{}",
        EXPANSION.replace(
            "    expansion: {adds: 10, unit: seats, play: \"Offer the next seat tier\"}\n",
            ""
        )
    ));
    assert_eq!(p.field, "milestones[2].expansion");
    // Only an expansion milestone opens one.
    let text = VALID.replacen(
        "    arr_weight: 0.3\n",
        "    arr_weight: 0.3\n    expansion: {adds: 1, unit: seats, play: p}\n",
        1,
    );
    let p = only(&text);
    assert_eq!((p.line, p.field.as_str()), (15, "milestones[0].expansion"));
}
