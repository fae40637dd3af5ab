use chrono::{Duration, TimeZone, Utc};
use mail_parser::MimeHeaders;

use milepost_domain::{Criterion, MilestoneDef, MilestoneMap, Phase, Playbook, Segment, Step, TaskBrief};

use super::*;

const HOSTILE: &str = "Evil <script>alert('x')</script> & \"Co\"";

pub(crate) fn account(name: &str, id: &str) -> Account {
    // Addresses take the id's letters only: ids may hold anything, addresses may not.
    let domain: String = id.chars().filter(char::is_ascii_alphanumeric).collect();
    Account {
        name: name.to_string(),
        segment: Segment::Enterprise,
        arr: 120_000,
        licensed_seats: 50,
        primary_contact: Contact::parse("Dana <b>Bold</b> Li", &format!("dana@{domain}.example")).unwrap(),
        csm: Contact::parse("Maya Thompson", "maya@vendor.example").unwrap(),
        cs_leader_email: milepost_domain::fixtures::milepost_address("lead@vendor.example"),
        exec_sponsor: Some(Contact::parse("Sam Exec", &format!("sam@{domain}.example")).unwrap()),
        goal: Some("<img src=x onerror=alert(1)> cut costs".into()),
        ..milepost_domain::fixtures::account(id, milepost_domain::fixtures::date(2026, 1, 5))
    }
}

pub(crate) fn milestone(acct: &Account) -> TrackedMilestone {
    milestone_with(acct, |_| {})
}

/// The milestone under test, its definition first changed by `change`.
fn milestone_with(acct: &Account, change: impl FnOnce(&mut MilestoneDef)) -> TrackedMilestone {
    let mut def = MilestoneDef {
        expansion: None,
        customer_title: None,
        moved_by: None,
        id: "first_workflow".into(),
        name: "First <workflow> & done".into(),
        phase: Phase::Onboarding,
        due_days: 30,
        owner: "csm".into(),
        criterion: Criterion::EventCount {
            event: "workflow.completed".into(),
            min: 2,
            window_days: None,
        },
        arr_weight: Some(0.25),
        discovered_weight: None,
        heads_up: None,
        holdout: None,
        playbook: Playbook {
            outreach: "Point one <b>bold</b>\nPoint two".into(),
            csm: "Call them & <i>listen</i>".into(),
            leadership: "Ask the sponsor for <help>".into(),
            sponsor: Some("Could you name an owner <for> it?".into()),
            guides: vec![
                milepost_domain::Guide::new("Guide <one>", "https://help.example.com/guide?a=1&b=2"),
                milepost_domain::Guide {
                    title: "Stored before guides had links".into(),
                    url: None,
                },
            ],
        },
    };
    change(&mut def);
    let map = MilestoneMap {
        escalate_to_exec_sponsor: true,
        ..milepost_domain::fixtures::map_of(vec![def.clone()])
    };
    TrackedMilestone::new(acct, &map, &def)
}

/// An expansion milestone of `acct`, owned by the AE, reached on 3 Feb
/// 2026 and announced: its opportunity is the owner's to hear of.
fn reached_expansion(acct: &Account) -> TrackedMilestone {
    let mut m = milestone_with(acct, |def| {
        def.phase = Phase::Expansion;
        def.owner = "ae".into();
        def.arr_weight = None;
        def.expansion = Some(milepost_domain::ExpansionPlay {
            adds: 10,
            unit: "seats".into(),
            unit_price: None,
            play: "Quote <b>ten</b> seats & ask about teams".into(),
        });
    });
    let obs = milepost_domain::Observation {
        at: Utc.with_ymd_and_hms(2026, 2, 3, 15, 0, 0).unwrap(),
        event_id: "e1".into(),
        user_id: None,
        value: None,
    };
    m.observe(&obs, acct.licensed_seats).unwrap();
    m.observe(
        &milepost_domain::Observation {
            event_id: "e2".into(),
            ..obs
        },
        acct.licensed_seats,
    )
    .unwrap();
    assert!(m.open_opportunity(acct), "reached: an opportunity");
    m.mark_reached_announced();
    m
}

/// The email telling the owner of `acct`'s expansion opportunity.
fn opportunity_email(cfg: &Config, acct: &Account) -> OutgoingEmail {
    let m = reached_expansion(acct);
    let o = m.opportunity().unwrap().clone();
    opportunity(about(cfg, acct, &m), &o, SendKey::new("k6")).unwrap()
}

/// What the emails under test are about, written at `now()`.
fn about<'a>(cfg: &'a Config, account: &'a Account, m: &'a TrackedMilestone) -> About<'a> {
    About {
        cfg,
        account,
        m,
        now: now(),
    }
}

fn now() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 2, 9, 10, 0, 0).unwrap()
}

fn health() -> Health {
    Health {
        score: 41,
        trend: -12,
        factors: vec![milepost_domain::health::Factor {
            description: "First <workflow> overdue".into(),
            points: -20,
        }],
    }
}

/// The day-3 task of `m`, as `all_emails` shows it (a note with markup in it).
fn task_of(acct: &Account, m: &TrackedMilestone) -> CsmTask {
    let mut task = CsmTask::open(
        "t".into(),
        TaskBrief {
            follow_up_not_sent: false,
            sla: None,
            account_id: acct.id.clone(),
            account_name: acct.name.clone(),
            milestone_id: m.milestone_id().to_owned(),
            milestone_name: m.name().to_owned(),
            owner_role: "csm".into(),
            owner_is_fallback: false,
            owner_email: acct.csm.email.to_string(),
            owner_name: acct.csm.name.clone(),
            created_at: now(),
            due_at: m.due_at(),
            target: "2× workflow.completed".into(),
            current: "1 so far".into(),
            health: health(),
            arr_at_risk: 30_000,
            recommended_intervention: m.playbook().csm.clone(),
            recent_activity: vec![],
            other_activity: 0,
        },
    );
    task.version = 1;
    milepost_domain::seed::task_note(
        &mut task,
        milepost_domain::TaskNote {
            at: now(),
            by: milepost_domain::Actor::person(&acct.csm),
            text: "<help> them with <one> dashboard".into(),
        },
    );
    task
}

fn all_emails(acct: &Account) -> Vec<OutgoingEmail> {
    all_emails_with(acct, &Config::default())
}

/// One email of each kind about `acct`'s milestone, under `cfg`.
fn all_emails_with(acct: &Account, cfg: &Config) -> Vec<OutgoingEmail> {
    let m = milestone(acct);
    let task = task_of(acct, &m);
    let tried = vec![EscalationLogEntry {
        key: "x:outreach_email:email:customer".into(),
        account_id: acct.id.clone(),
        milestone_id: m.milestone_id().to_owned(),
        execution: "x".into(),
        at: now() - Duration::days(4),
        step: Some(Step::OutreachEmail),
        detail: "outreach email sent".into(),
        by: None,
    }];
    let links = cfg.links(crate::links::LinkSigner::new(crate::links::DEV_LINK_KEY.as_bytes()).unwrap());
    let buttons = task_buttons(Some(&links), &task, &m, now());
    let leader = Contact::new("CS leadership", acct.cs_leader_email.clone());
    let sponsor = acct.exec_sponsor.clone().unwrap();
    let champion_unsubscribe = links.unsubscribe(acct.id.as_str(), acct.primary_contact.email.as_str(), now());
    let sponsor_unsubscribe = links.unsubscribe(acct.id.as_str(), sponsor.email.as_str(), now());
    vec![
        outreach(
            about(cfg, acct, &m),
            &[],
            EmailKind::Outreach,
            &champion_unsubscribe,
            SendKey::new("k1"),
            None,
        )
        .unwrap(),
        outreach(
            about(cfg, acct, &m),
            &[],
            EmailKind::FollowUp,
            &champion_unsubscribe,
            SendKey::new("k2"),
            None,
        )
        .unwrap(),
        csm_task(about(cfg, acct, &m), &task, buttons, SendKey::new("k3")).unwrap(),
        leadership(
            about(cfg, acct, &m),
            EscalationFacts {
                hold_sponsor_url: None,
                lapsed: None,
                health: &health(),
                tried: &tried,
                task: Some(&task),
            },
            &leader,
            EmailKind::Leadership,
            None,
            SendKey::new("k4"),
        )
        .unwrap(),
        leadership(
            about(cfg, acct, &m),
            EscalationFacts {
                hold_sponsor_url: None,
                lapsed: None,
                health: &health(),
                tried: &tried,
                task: Some(&task),
            },
            &sponsor,
            EmailKind::ExecSponsor,
            Some(&sponsor_unsubscribe),
            SendKey::new("k5"),
        )
        .unwrap(),
        opportunity_email(cfg, acct),
    ]
}

#[test]
fn account_supplied_text_is_escaped_in_every_html_part() {
    for email in all_emails(&account(HOSTILE, "acme")) {
        let kind = email.kind.as_str();
        for raw in ["<script>", "<img src=x", "<b>", "<i>", "<help>", "<workflow>", "<one>"] {
            assert!(!email.html.contains(raw), "{kind} HTML contains raw {raw}");
        }
        assert!(
            email.html.contains("&#60;") || email.html.contains("&lt;"),
            "{kind}: nothing escaped?"
        );
        // The text part carries the same words, unescaped, as plain text should.
        assert!(!email.text.contains("&lt;"), "{kind} text part is HTML-escaped");
    }
    let outreach = &all_emails(&account(HOSTILE, "acme"))[0];
    assert!(
        outreach.html.contains("Evil &#60;script&#62;") || outreach.html.contains("Evil &lt;script&gt;"),
        "{}",
        outreach.html
    );
}

#[test]
fn the_teams_emails_link_the_account_to_the_console_and_customer_mail_never_does() {
    let acct = account("Acme Corp", "acme/eu");
    let cfg = Config {
        console_url: Some("https://console.example".into()),
        ..Config::default()
    };
    let page = "https://console.example/accounts/acme%2Feu";
    for email in all_emails_with(&acct, &cfg) {
        let ours = matches!(
            email.kind,
            EmailKind::CsmTask | EmailKind::Leadership | EmailKind::Opportunity
        );
        assert_eq!(
            email.html.contains(&format!("href=\"{page}\"")),
            ours,
            "{:?}",
            email.kind
        );
        assert_eq!(email.text.contains(page), ours, "{:?}", email.kind);
    }
    for email in all_emails(&acct) {
        assert!(
            !email.html.contains("/accounts/"),
            "{:?}: no console, no link",
            email.kind
        );
    }
}

#[test]
fn subjects_name_the_account_and_the_milestone() {
    for email in all_emails(&account("Acme Corp", "acme")) {
        assert!(email.subject.contains("Acme Corp"), "{}", email.subject);
        assert!(email.subject.contains("First <workflow> & done"), "{}", email.subject);
    }
}

#[test]
fn header_injection_through_an_account_name_is_neutralised() {
    let acct = account("Acme\r\nBcc: victim@evil.example", "acme");
    for email in all_emails(&acct) {
        assert!(!email.subject.contains('\n') && !email.subject.contains('\r'));
        let eml = to_eml(&email).unwrap();
        let parsed = mail_parser::MessageParser::default().parse(eml.as_bytes()).unwrap();
        assert!(
            parsed.bcc().is_none(),
            "an injected Bcc header made it into the message"
        );
    }
}

#[test]
fn emails_are_multipart_with_text_and_html_and_unsubscribe_only_for_customers() {
    for email in all_emails(&account("Acme Corp", "acme")) {
        let eml = to_eml(&email).unwrap();
        let parsed = mail_parser::MessageParser::default().parse(eml.as_bytes()).unwrap();
        assert_eq!(parsed.subject(), Some(email.subject.as_str()));
        assert_eq!(parsed.content_type().map(|c| c.subtype()), Some(Some("alternative")));
        assert_eq!(parsed.text_body_count(), 1);
        assert_eq!(parsed.html_body_count(), 1);
        assert!(parsed.body_text(0).unwrap().contains("First <workflow> & done"));
        assert!(
            parsed
                .body_html(0)
                .unwrap()
                .contains("First &lt;workflow&gt; &amp; done")
                || parsed
                    .body_html(0)
                    .unwrap()
                    .contains("First &#60;workflow&#62; &#38; done")
        );
        let unsubscribe = parsed.header("List-Unsubscribe").is_some();
        assert_eq!(unsubscribe, email.kind.customer_facing(), "{:?}", email.kind);
        assert_eq!(to_eml(&email).unwrap(), eml, "serialisation is deterministic");
    }
}

#[test]
fn each_email_goes_to_the_right_reader() {
    let acct = account("Acme Corp", "acme");
    let to: Vec<(EmailKind, String)> = all_emails(&acct)
        .into_iter()
        .map(|e| (e.kind, e.to[0].email.to_string()))
        .collect();
    assert_eq!(
        to,
        vec![
            (EmailKind::Outreach, "dana@acme.example".to_string()),
            (EmailKind::FollowUp, "dana@acme.example".to_string()),
            (EmailKind::CsmTask, "maya@vendor.example".to_string()),
            (EmailKind::Leadership, "lead@vendor.example".to_string()),
            (EmailKind::ExecSponsor, "sam@acme.example".to_string()),
            // No one holds the AE role on this account: its CSM.
            (EmailKind::Opportunity, "maya@vendor.example".to_string()),
        ]
    );
}

/// Issue 36: the owner of an opportunity hears what it is worth, as the
/// report and the console say it, what set it off, the play, and whom it is
/// for: the AE when the account names one, else its CSM, told why.
#[test]
fn the_opportunity_email_tells_its_owner_what_opened_and_the_play() {
    let mut acct = account("Acme Corp", "acme");
    let cfg = Config::default();
    let to_csm = opportunity_email(&cfg, &acct);
    assert!(
        to_csm
            .text
            .contains("the AE role; the account has no AE contact, so it comes to you as its CSM"),
        "{}",
        to_csm.text
    );
    acct.contacts.insert(
        "ae".into(),
        Contact::parse("Riley Quinn", "riley@vendor.example").unwrap(),
    );
    let mail = opportunity_email(&cfg, &acct);
    assert_eq!(mail.to[0].email.as_str(), "riley@vendor.example");
    assert!(!mail.text.contains("comes to you as its CSM"));
    assert!(to_csm.text.contains("opportunity for the AE role:"), "{}", to_csm.text);
    assert!(!to_csm.text.contains("   CSM:"), "the CSM is the reader");
    // $120,000 over 50 seats is $2,400 a seat; 10 more seats.
    assert_eq!(
        mail.subject,
        "[Acme Corp] Expansion opportunity: First <workflow> & done (10 × seats, $24,000 a year)"
    );
    for line in [
        "Hi Riley, Acme Corp reached \"First <workflow> & done\" on 3 Feb 2026. That opens an expansion opportunity for you, as the account's AE: 10 × seats, $24,000 a year.",
        "   Opportunity: 10 × seats, $24,000 a year",
        "   Today:       2 so far",
        "   ARR today:   $120,000 (50 licensed seats)",
        "   CSM:         Maya Thompson",
        "The play: Quote <b>ten</b> seats & ask about teams",
    ] {
        assert!(mail.text.lines().any(|l| l == line), "no line {line:?} in\n{}", mail.text);
    }
    assert!(
        mail.html
            .contains("Quote &#60;b&#62;ten&#60;/b&#62; seats &#38; ask about teams"),
        "{}",
        mail.html
    );
    assert!(!mail.kind.customer_facing());
    assert!(!mail.text.contains("ARR at risk"));
}

#[test]
fn the_csm_email_carries_the_context_a_csm_needs() {
    let email = &all_emails(&account("Acme Corp", "acme"))[2];
    for needle in [
        "4 Feb 2026",
        "2× workflow.completed",
        "1 so far",
        "41/100",
        "declining",
        "$30,000",
        "Call them &amp; &lt;i&gt;listen",
    ] {
        assert!(
            email.html.contains(needle)
                || email.html.contains(
                    &needle
                        .replace("&amp;", "&#38;")
                        .replace("&lt;", "&#60;")
                        .replace("&gt;", "&#62;")
                ),
            "CSM email lacks {needle}"
        );
    }
    assert!(email
        .text
        .contains("Recommended first intervention:\nCall them & <i>listen</i>"));
}

/// A Sydney account's task, opened at 14:00 UTC on the due date (01:00 the
/// next day in Sydney): one day overdue where the account is, said in the
/// singular, with its local date as today; and the people to call and the
/// renewal in front of the CSM.
#[test]
fn a_task_counts_days_where_its_account_is_and_names_who_to_call() {
    let acct = Account {
        timezone: chrono_tz::Australia::Sydney,
        ..account("Acme Corp", "acme")
    };
    let cfg = Config::default();
    let m = milestone(&acct);
    let at = m.due_at() + Duration::hours(14);
    let email = csm_task(
        About {
            cfg: &cfg,
            account: &acct,
            m: &m,
            now: at,
        },
        &task_of(&acct, &m),
        Vec::new(),
        SendKey::new("k"),
    )
    .unwrap();
    assert!(
        email
            .text
            .contains("Target date:  4 Feb 2026 (1 day ago; today 5 Feb 2026)"),
        "{}",
        email.text
    );
    let champion = &acct.primary_contact;
    assert!(email
        .text
        .contains(&format!("Champion:     {} <{}>", champion.name, champion.email)));
    let sponsor = acct.exec_sponsor.as_ref().unwrap();
    assert!(email
        .text
        .contains(&format!("Sponsor:      {} <{}>", sponsor.name, sponsor.email)));
    let to_renewal = (acct.renewal_date - chrono::NaiveDate::from_ymd_opt(2026, 2, 5).unwrap()).num_days();
    assert!(
        email.text.contains(&format!("(in {to_renewal} days)")),
        "{}",
        email.text
    );
}

/// Customer mail comes from a person at the company the customer knows,
/// never from the tool, and its footer names the relationship the
/// milestone's phase is about, not always onboarding.
#[test]
fn customer_mail_comes_from_its_owner_and_says_why_the_reader_hears_from_us() {
    let acct = account("Acme Corp", "acme");
    for email in all_emails(&acct).iter().filter(|e| e.kind.customer_facing()) {
        assert!(
            !email.from.name.contains("Milepost"),
            "{:?}: {}",
            email.kind,
            email.from.name
        );
    }
    let cfg = Config {
        company_name: Some("Northwind Software".into()),
        ..Config::default()
    };
    assert_eq!(
        cfg.customer_sender(&acct.csm).name,
        format!("{} at Northwind Software", acct.csm.name)
    );

    let adoption = milestone_with(&acct, |def| def.phase = Phase::Adoption);
    let email = outreach(
        about(&cfg, &acct, &adoption),
        &[],
        EmailKind::Outreach,
        "https://u.example/x",
        SendKey::new("k"),
        None,
    )
    .unwrap();
    assert!(
        email.text.contains("contact for the rollout across your teams."),
        "{}",
        email.text
    );
    assert!(!email.text.contains("for onboarding"));
    assert_eq!(
        email.from.name,
        format!("{} at Northwind Software", acct.owner("csm").contact.name)
    );
}

#[test]
fn money_is_formatted_with_thousands_separators() {
    assert_eq!(fmt_money(0), "$0");
    assert_eq!(fmt_money(999), "$999");
    assert_eq!(fmt_money(1_000), "$1,000");
    assert_eq!(fmt_money(1_234_567), "$1,234,567");
}

#[test]
fn links_encode_account_ids() {
    let acct = account("Acme", "acme/../admin?x=1");
    let email = &all_emails(&acct)[0];
    assert!(
        email.html.contains("account=acme%2F..%2Fadmin%3Fx%3D1"),
        "{}",
        email.html
    );
}

#[test]
fn recent_activity_is_grouped_by_event_newest_first() {
    let at = |h: i64| now() - Duration::hours(h);
    let ev = |h: i64, name: &str| milepost_domain::activity::RecentEvent {
        at: at(h),
        fingerprint: milepost_domain::activity::IdFingerprint::of(&format!("{name}{h}")),
        event: name.into(),
        user_id: None,
    };
    let recent = [
        ev(1, "page.viewed"),
        ev(2, "workflow.completed"),
        ev(3, "page.viewed"),
        ev(4, "page.viewed"),
    ];
    assert_eq!(
        summarize_activity(&recent, chrono_tz::UTC),
        vec![
            "page.viewed — 3 times, last 9 Feb 2026 09:00 UTC".to_string(),
            "workflow.completed — 9 Feb 2026 08:00 UTC".to_string()
        ]
    );
    // In the account's timezone: Sydney is 11 hours ahead in February.
    assert_eq!(
        summarize_activity(&recent, chrono_tz::Australia::Sydney)[1],
        "workflow.completed — 9 Feb 2026 19:00 AEDT"
    );
}

#[test]
fn customer_mail_is_written_for_its_reader_and_never_carries_internal_notes() {
    let acct = account("Atlas Systems", "atlas");
    let emails = all_emails(&acct);
    let m = milestone(&acct);
    for email in emails.iter().filter(|e| e.kind.customer_facing()) {
        let kind = email.kind.as_str();
        for internal in m.playbook().internal_texts() {
            // The texts, or their first words, in either part.
            let start: String = internal.chars().take(12).collect();
            assert!(
                !email.text.contains(&start) && !email.html.contains(&start),
                "{kind} shows an internal text"
            );
        }
        assert!(email.text.contains("Atlas Systems' "), "{kind}: possessive");
        assert!(!email.text.contains("Systems's"), "{kind}");
        if email.kind != EmailKind::FollowUp {
            assert!(
                email.text.contains("was due 4 Feb, five days ago"),
                "{kind}: {}",
                email.text
            );
        }
    }
    let sponsor = &emails[4];
    assert!(sponsor
        .text
        .contains("How you can help:\nCould you name an owner <for> it?"));
    assert!(sponsor
        .text
        .contains("has reached out to your team with an offer of hands-on help"));
    let follow_up = &emails[1];
    assert!(follow_up
        .text
        .contains("this guide helps most teams get there.\n\n- Guide <one>: https://help.example.com/guide?a=1&b=2"));
    assert!(
        follow_up
            .html
            .contains("<a href=\"https://help.example.com/guide?a=1&#38;b=2\">")
            || follow_up
                .html
                .contains("<a href=\"https://help.example.com/guide?a=1&amp;b=2\">"),
        "{}",
        follow_up.html
    );
    assert!(
        !follow_up.text.contains("Stored before guides had links"),
        "a guide without a link is not listed"
    );
}

#[test]
fn a_section_with_nothing_in_it_is_not_rendered() {
    let acct = account("Acme Corp", "acme");
    let m = milestone_with(&acct, |def| {
        def.playbook.guides.clear();
        def.playbook.sponsor = None;
    });
    let cfg = Config::default();
    let follow_up = outreach(
        about(&cfg, &acct, &m),
        &[],
        EmailKind::FollowUp,
        "https://u.example/t",
        SendKey::new("k"),
        None,
    )
    .unwrap();
    assert!(!follow_up.text.contains("guide"), "{}", follow_up.text);
    assert!(!follow_up.html.contains("<ul>"), "{}", follow_up.html);
    assert!(follow_up
        .text
        .contains("Following up on \"First <workflow> & done\" for Acme Corp.\n"));
    let sponsor = acct.exec_sponsor.clone().unwrap();
    let nothing_tried = leadership(
        about(&cfg, &acct, &m),
        EscalationFacts {
            hold_sponsor_url: None,
            lapsed: None,
            health: &health(),
            tried: &[],
            task: None,
        },
        &sponsor,
        EmailKind::ExecSponsor,
        Some("https://u.example/t"),
        SendKey::new("k"),
    )
    .unwrap();
    assert!(
        !nothing_tried.text.contains("reached out"),
        "no claim of outreach that did not happen"
    );
    assert!(
        !nothing_tried.text.contains("How you can help"),
        "no ask without sponsor text"
    );
}

#[test]
fn customer_mail_answers_to_its_owner_and_carries_the_recipients_own_unsubscribe_link() {
    let acct = account("Acme Corp", "acme");
    let emails = all_emails(&acct);
    let cfg = Config::default();
    let mut unsubscribe_urls = Vec::new();
    for email in &emails {
        let eml = to_eml(email).unwrap();
        let parsed = mail_parser::MessageParser::default().parse(eml.as_bytes()).unwrap();
        let reply_to = parsed
            .reply_to()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .map(str::to_string);
        if email.kind.customer_facing() {
            assert_eq!(reply_to.as_deref(), Some("maya@vendor.example"), "{:?}", email.kind);
            assert_eq!(
                email.from.name, "Maya Thompson",
                "{:?}: from its owner, by name",
                email.from
            );
            let url = email.list_unsubscribe.clone().unwrap();
            assert!(url.starts_with(&format!("{}/v2.", cfg.unsubscribe_url)), "{url}");
            assert!(
                email.text.contains(&format!("Unsubscribe: {url}")),
                "the footer links the same URL"
            );
            assert!(!url.contains("dana") && !url.contains("sam"), "no address in a link");
            unsubscribe_urls.push(url);
        } else {
            assert_eq!(reply_to, None, "{:?}", email.kind);
        }
    }
    assert_eq!(unsubscribe_urls.len(), 3);
    assert_eq!(unsubscribe_urls[0], unsubscribe_urls[1], "the champion's, twice");
    assert_ne!(unsubscribe_urls[0], unsubscribe_urls[2], "the sponsor has their own");
}

#[test]
fn one_outreach_names_every_miss_close_together() {
    let acct = account("Acme Corp", "acme");
    let m = milestone(&acct);
    let other = milestone_with(&acct, |def| {
        def.id = "team_invited".into();
        def.name = "Three teammates active".into();
        def.due_days += 1;
    });
    let cfg = Config::default();
    let email = outreach(
        about(&cfg, &acct, &m),
        &[other],
        EmailKind::Outreach,
        "https://u.example/t",
        SendKey::new("k"),
        None,
    )
    .unwrap();
    assert_eq!(
        email.subject,
        "[Acme Corp] Next steps: First <workflow> & done and one more"
    );
    assert!(
        email.text.contains("Also still open for Acme Corp:\n- \"Three teammates active\" was due 5 Feb, four days ago: https://app.example.com/milestones/team_invited?account=acme"),
        "{}",
        email.text
    );
    assert!(email.html.contains("team_invited?account=acme"));
}

/// With a success plan, the emails quote the outcome the customer agreed
/// (the one the milestone measures, else the plan's first), escaped, and
/// never the goal text a trait once sent; without one, the trait's words.
#[test]
fn the_goal_an_email_states_is_the_agreed_plans() {
    use milepost_domain::{AgreedOutcome, Measure, SuccessPlan};
    let outcome = |id: &str, property: &str, title: &str| AgreedOutcome {
        id: id.into(),
        title: title.into(),
        measure: Measure {
            event: "outcome.measured".into(),
            property: property.into(),
        },
        unit: "%".into(),
        baseline: 0.0,
        target: 30.0,
        starts_on: milepost_domain::fixtures::date(2026, 1, 5),
        by: milepost_domain::fixtures::date(2027, 1, 5),
        checkpoints: Vec::new(),
        agreed_by: "Dana <Chen>".into(),
    };
    let acct = Account {
        success_plan: Some(SuccessPlan {
            account_id: milepost_domain::AccountId::new("acme"),
            version: 2,
            outcomes: vec![
                outcome("hours", "hours_saved", "Save analysts' time"),
                outcome("costs", "cost_savings_pct", "Lower <logistics> costs"),
            ],
            set_at: now(),
            set_by: "cli:maya".into(),
        }),
        ..account("Acme", "acme")
    };
    let cfg = Config::default();
    let savings = milestone_with(&acct, |def| {
        def.criterion = Criterion::MetricThreshold {
            event: "outcome.measured".into(),
            property: "cost_savings_pct".into(),
            op: milepost_domain::CompareOp::Gte,
            value: 5.0,
        }
    });
    let send = |m: &TrackedMilestone| {
        outreach(
            about(&cfg, &acct, m),
            &[],
            EmailKind::Outreach,
            "https://u.example/x",
            SendKey::new("k"),
            None,
        )
        .unwrap()
    };
    let email = send(&savings);
    assert!(
        email
            .html
            .contains("Lower &#60;logistics&#62; costs: from 0% to 30% by 5 Jan 2027, agreed with Dana &#60;Chen&#62;")
            || email
                .html
                .contains("Lower &lt;logistics&gt; costs: from 0% to 30% by 5 Jan 2027, agreed with Dana &lt;Chen&gt;"),
        "the outcome the milestone measures, escaped: {}",
        email.html
    );
    assert!(email
        .text
        .contains("Lower <logistics> costs: from 0% to 30% by 5 Jan 2027"));
    assert!(!email.text.contains("cut costs"), "not the trait's goal");
    let other = send(&milestone(&acct));
    assert!(
        other.text.contains("Save analysts' time: from 0% to 30%"),
        "the plan's first: {}",
        other.text
    );
    // Without a plan: the goal the account's traits state.
    let without = account("Acme", "acme");
    let email = outreach(
        about(&cfg, &without, &milestone(&without)),
        &[],
        EmailKind::Outreach,
        "https://u.example/x",
        SendKey::new("k"),
        None,
    )
    .unwrap();
    assert!(email.text.contains("cut costs"));
}
