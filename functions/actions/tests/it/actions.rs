//! The action links, through the real handler, on the embedded store and on
//! DynamoDB (moto): `GET` changes nothing, `POST` acts once, every bad link
//! gets its 4xx page and changes nothing, and what was done lands on the
//! task, the account's log and the bus.

use crate::common;

use chrono::Duration;
use common::*;
use lambda_http::http::{Method, StatusCode};
use milepost_actions::handle;
use milepost_app::links::LinkAction;
use milepost_domain::{AccountId, DomainEvent, MilestoneStatus, Step, TaskStatus};

async fn opening_a_link_shows_what_it_would_do_and_changes_nothing(s: Setup<'_>) {
    let before = s.snapshot().await;
    for action in [
        LinkAction::Done,
        LinkAction::Snooze3,
        LinkAction::Dismiss,
        LinkAction::Pause,
    ] {
        let resp = s.get(&s.token("first_workflow", action).await).await;
        assert_eq!(resp.status(), StatusCode::OK, "{action:?}");
        let page = text(&resp);
        assert!(page.contains("<form method=\"post\""), "{action:?}: {page}");
        assert!(page.contains("First workflow completed") && page.contains("Customer a1"));
        assert!(!page.contains("<script"), "no JavaScript");
        assert_eq!(resp.headers()["content-type"], "text/html; charset=utf-8");
        assert!(resp.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'"));
    }
    let head = handle(
        &s.actions,
        request(Method::HEAD, &s.token("first_workflow", LinkAction::Done).await, ""),
    )
    .await;
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(s.snapshot().await, before, "a GET (a mail scanner) changed something");
    assert!(s
        .store
        .customer_email_pause(&AccountId::new("a1"))
        .await
        .unwrap()
        .is_none());
}

async fn done_closes_the_task_once_with_who_and_when(s: Setup<'_>) {
    let token = s.token("first_workflow", LinkAction::Done).await;
    let resp = s
        .post(
            &token,
            "outcome=plan_agreed&note=called+the+champion%2C+SSO+blocks+the+rollout",
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", text(&resp));
    let task = s.task("first_workflow").await;
    assert_eq!(task.status(), TaskStatus::Done);
    let closed = task.closed().unwrap();
    assert_eq!((closed.by.display(), closed.at), ("Maya CSM", s.clock_now()));
    assert_eq!(task.notes()[0].text, "called the champion, SSO blocks the rollout");
    let closed_events: Vec<_> = s
        .events
        .events()
        .into_iter()
        .filter(|e| matches!(e, DomainEvent::TaskClosed { task_id, .. } if *task_id == task.id()))
        .collect();
    assert_eq!(closed_events.len(), 1);
    assert!(
        matches!(&closed_events[0], DomainEvent::TaskClosed { reason, outcome: Some(o), .. } if reason == "completed" && o == "plan_agreed")
    );
    let log = s.store.log_of(&AccountId::new("a1")).await.unwrap();
    let entry = log
        .iter()
        .find(|e| e.detail.starts_with("CSM task done"))
        .expect("on the log");
    assert!(entry.by.as_ref().is_some_and(|b| b.display() == "Maya CSM"), "with who");
    assert!(
        !serde_json::to_string(&closed_events).unwrap().contains("maya@"),
        "no address on the bus"
    );

    // The same link again, and another on the closed task: nothing changes.
    let before = s.snapshot().await;
    let again = s.post(&token, "outcome=other").await;
    assert_eq!(again.status(), StatusCode::OK);
    assert!(text(&again).contains("already done"), "{}", text(&again));
    let snooze = s.post(&s.token("first_workflow", LinkAction::Snooze7).await, "").await;
    assert_eq!(snooze.status(), StatusCode::CONFLICT);
    assert!(text(&snooze).contains("Maya CSM marked it done"), "{}", text(&snooze));
    assert_eq!(s.snapshot().await, before, "a second POST changed something");
}

async fn a_bad_link_gets_its_page_and_changes_nothing(s: Setup<'_>) {
    let task = s.task("first_workflow").await;
    let good = s.token("first_workflow", LinkAction::Done).await;
    let mut altered = good.clone();
    let at = altered.len() - 4;
    let flip = if altered.as_bytes()[at] == b'A' { "B" } else { "A" };
    altered.replace_range(at..=at, flip);
    let other = s.token_for(&task, LinkAction::Done, "sam@vendor.example");
    let missing = {
        let url = s.links.url(
            LinkAction::Done,
            "ghost:csm-task",
            &task.brief().owner_email,
            s.clock_now(),
        );
        url.rsplit('/').next().unwrap().to_string()
    };
    let before = s.snapshot().await;
    let cases = [
        (altered, StatusCode::FORBIDDEN, "can&#39;t be used"),
        (other, StatusCode::FORBIDDEN, "someone else"),
        (missing, StatusCode::NOT_FOUND, "find this task"),
        (
            "v2.bm90LWpzb24.AAAA".to_string(),
            StatusCode::FORBIDDEN,
            "can&#39;t be used",
        ),
    ];
    for (token, status, says) in &cases {
        for resp in [s.get(token).await, s.post(token, "outcome=plan_agreed").await] {
            assert_eq!(resp.status(), *status, "{says}");
            assert!(text(&resp).contains(says), "{says}: {}", text(&resp));
        }
    }
    // Links work for 14 days.
    s.clock.advance(Duration::days(15));
    for resp in [s.get(&good).await, s.post(&good, "").await] {
        assert_eq!(resp.status(), StatusCode::GONE);
        assert!(text(&resp).contains("expired"));
    }
    let too_long = format!("note={}", "x".repeat(600));
    s.clock.advance(Duration::days(-15));
    let resp = s.post(&good, &too_long).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let wrong_path = handle(&s.actions, {
        let mut r = request(Method::GET, "x", "");
        *r.uri_mut() = "https://actions.example/v1/other".parse().unwrap();
        r
    })
    .await;
    assert_eq!(wrong_path.status(), StatusCode::NOT_FOUND);
    let put = handle(&s.actions, request(Method::PUT, &good, "")).await;
    assert_eq!(put.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(s.snapshot().await, before, "a refused link changed something");
}

async fn a_snooze_ends_with_a_reminder_and_fresh_links(s: Setup<'_>) {
    let token = s.token("team_invited", LinkAction::Snooze3).await;
    assert_eq!(s.post(&token, "note=back+on+Monday").await.status(), StatusCode::OK);
    let task = s.task("team_invited").await;
    assert_eq!(task.status(), TaskStatus::Snoozed);
    assert_eq!(task.snoozed_until(), Some(s.clock_now() + Duration::days(3)));
    let before = s.snapshot().await;
    assert!(
        text(&s.post(&token, "").await).contains("already done"),
        "not pushed back by a second POST"
    );
    assert_eq!(s.snapshot().await, before);
    let sent_before = s.mailer.sent().len();
    s.clock.advance(Duration::days(2));
    assert_eq!(s.services.reminders().run().await.unwrap().due, 0, "not yet");
    s.clock.advance(Duration::days(1));
    let report = s.services.reminders().run().await.unwrap();
    assert_eq!((report.due, report.reopened), (1, 1));
    assert_eq!(s.task("team_invited").await.status(), TaskStatus::Open);
    let reminders: Vec<_> = s.mailer.sent().into_iter().skip(sent_before).collect();
    assert_eq!(reminders.len(), 1, "the owner is told again, once");
    assert!(reminders[0].subject.contains("Reminder"));
    assert!(reminders[0].html.contains("/v1/actions/v2."), "with fresh links");
    assert_eq!(s.services.reminders().run().await.unwrap().due, 0, "woken once");
    let kinds: Vec<&str> = s
        .events
        .events()
        .iter()
        .filter(|e| match e {
            DomainEvent::TaskOpened { task_id, .. }
            | DomainEvent::TaskSnoozed { task_id, .. }
            | DomainEvent::TaskReopened { task_id, .. } => *task_id == task.id(),
            _ => false,
        })
        .map(|e| e.detail_type())
        .collect();
    assert_eq!(
        kinds,
        ["TaskOpened", "TaskSnoozed", "TaskReopened"],
        "opened once; a rule that files a CRM task on TaskOpened files one"
    );
}

async fn confirming_a_manual_milestone_recovers_it_and_closes_its_task(s: Setup<'_>) {
    let token = s.token("sponsor_named", LinkAction::Confirm).await;
    let resp = s.post(&token, "note=Pat+named+the+CFO").await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", text(&resp));
    let m = s
        .store
        .get_milestone(&AccountId::new("a1"), "sponsor_named")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.status(), MilestoneStatus::Recovered);
    let task = s.task("sponsor_named").await;
    assert_eq!(
        (task.status(), task.closed().map(|c| c.reason.as_str())),
        (TaskStatus::Done, Some("milestone_confirmed"))
    );
    let events = s.events.events();
    assert!(events.iter().any(
        |e| matches!(e, DomainEvent::ManualMilestoneConfirmed { milestone_id, .. } if milestone_id == "sponsor_named")
    ));
    assert!(events
        .iter()
        .any(|e| matches!(e, DomainEvent::MilestoneRecovered { milestone_id, .. } if milestone_id == "sponsor_named")));
    let stopped = s
        .runner
        .executions()
        .into_iter()
        .find(|e| e.request.milestone_id == "sponsor_named")
        .unwrap();
    assert_eq!(stopped.status, milepost_embedded::runner::ExecutionStatus::Stopped);
    let log = s.store.log_of(&AccountId::new("a1")).await.unwrap();
    assert!(log
        .iter()
        .any(|e| e.detail == "Executive sponsor named confirmed by Maya CSM: Pat named the CFO"));
    let before = s.snapshot().await;
    let again = s.post(&token, "").await;
    assert!(text(&again).contains("already reached"), "{}", text(&again));
    assert_eq!(s.snapshot().await, before);
    // A milestone events reach has no Confirm button, and a forged one changes nothing.
    let first = s.task("first_workflow").await;
    let forged = s.token_for(&first, LinkAction::Confirm, &first.brief().owner_email);
    let resp = s.post(&forged, "").await;
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    assert!(text(&resp).contains("not manual"), "{}", text(&resp));
}

async fn pausing_holds_customer_email_but_not_leadership(s: Setup<'_>) {
    let token = s.token("first_workflow", LinkAction::Pause).await;
    assert_eq!(s.post(&token, "").await.status(), StatusCode::OK);
    let pause = s
        .store
        .customer_email_pause(&AccountId::new("a1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pause.until, s.clock_now() + Duration::days(14));
    assert!(text(&s.post(&token, "").await).contains("already done"));
    assert_eq!(
        s.store.customer_email_pause(&AccountId::new("a1")).await.unwrap(),
        Some(pause)
    );
    // The escalation's later steps: the day-5 emails.
    let mut sent = s.run("first_workflow", Step::OutreachEmail).await;
    sent.extend(s.run("first_workflow", Step::Leadership).await);
    let kinds: Vec<_> = sent.iter().map(|m| m.kind).collect();
    assert_eq!(
        kinds,
        [milepost_domain::EmailKind::Leadership],
        "the customer and their sponsor get nothing"
    );
    let log = s.store.log_of(&AccountId::new("a1")).await.unwrap();
    assert!(log
        .iter()
        .any(|e| e.detail.starts_with("customer email paused by Maya CSM")));
    assert!(s.events.count("CustomerEmailsPaused") == 1);
}

/// Leadership's "Hold the sponsor email": the leader's link shows its page
/// and changes nothing, its POST holds the email once, and day 5 then writes
/// to leadership only; the same link made for the task's owner is refused.
async fn leadership_holds_the_sponsor_email_once_through_its_link(s: Setup<'_>) {
    let task = s.task("first_workflow").await;
    let leader = s
        .store
        .get_account(&AccountId::new("a1"))
        .await
        .unwrap()
        .unwrap()
        .cs_leader_email
        .clone();
    let token = s.token_for(&task, LinkAction::HoldSponsor, leader.as_str());
    let before = s.snapshot().await;
    let page = s.get(&token).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        text(&page).contains("Hold the email to the customer"),
        "{}",
        text(&page)
    );
    assert_eq!(s.snapshot().await, before, "a GET (a mail scanner) changed something");
    let owners = s.token_for(&task, LinkAction::HoldSponsor, &task.brief().owner_email);
    assert_eq!(s.post(&owners, "").await.status(), StatusCode::FORBIDDEN);
    assert_eq!(s.snapshot().await, before, "a refused link changed something");
    let held = s.post(&token, "").await;
    assert_eq!(held.status(), StatusCode::OK);
    assert!(text(&held).contains("The sponsor email is held"), "{}", text(&held));
    assert!(text(&s.post(&token, "").await).contains("already held"));
    let log = s.store.log_of(&AccountId::new("a1")).await.unwrap();
    assert_eq!(log.iter().filter(|e| e.key.ends_with(":sponsor_held")).count(), 1);
    assert!(log.iter().all(|e| !e.detail.contains('@')), "no address in the log");
    let sent = s.run("first_workflow", Step::Leadership).await;
    let kinds: Vec<_> = sent.iter().map(|m| m.kind).collect();
    assert_eq!(
        kinds,
        [milepost_domain::EmailKind::Leadership],
        "held: no sponsor email"
    );
}

async fn one_click_unsubscribe_stops_customer_mail_to_that_contact_only(s: Setup<'_>) {
    let sent = s.run("first_workflow", Step::OutreachEmail).await;
    assert_eq!(sent.len(), 1);
    let url = sent[0]
        .list_unsubscribe
        .clone()
        .expect("customer mail has List-Unsubscribe");
    assert!(sent[0].text.contains(&url), "the footer links the same address");
    let dana = sent[0].to[0].email.clone();

    let resp = s.handle(request_at(Method::POST, &url, ONE_CLICK)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(text(&resp).contains("You are unsubscribed"), "{}", text(&resp));
    let suppressed = s.suppressed().await;
    assert_eq!(suppressed.len(), 1);
    assert_eq!(suppressed[0].email, dana);
    assert_eq!(suppressed[0].source, milepost_domain::SuppressionSource::OneClick);

    // Mail clients retry; people click twice: nothing changes the second time.
    s.clock.advance(Duration::hours(2));
    let again = s.handle(request_at(Method::POST, &url, ONE_CLICK)).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert!(text(&again).contains("already unsubscribed"), "{}", text(&again));
    assert_eq!(s.suppressed().await, suppressed, "the first record stands");

    // The next customer emails to Dana are not sent, and the log says why.
    assert!(s.run("team_invited", Step::OutreachEmail).await.is_empty());
    assert!(s.run("first_workflow", Step::FollowUpEmail).await.is_empty());
    let log = s.store.log_of(&AccountId::new("a1")).await.unwrap();
    let held: Vec<_> = log
        .iter()
        .filter(|e| e.key.contains(":unsubscribed:customer"))
        .collect();
    assert_eq!(held.len(), 2, "{log:#?}");
    assert!(held[0].detail.contains("the recipient unsubscribed on"));
    assert!(
        log.iter().all(|e| !e.detail.contains(dana.as_str())),
        "no address in the log"
    );
    // Our own people, and the sponsor (another contact), still get theirs.
    let day5: Vec<_> = s
        .run("first_workflow", Step::Leadership)
        .await
        .iter()
        .map(|m| m.kind)
        .collect();
    assert_eq!(
        day5,
        [
            milepost_domain::EmailKind::Leadership,
            milepost_domain::EmailKind::ExecSponsor
        ]
    );
}

async fn the_unsubscribe_page_changes_nothing_until_its_button(s: Setup<'_>) {
    let sent = s.run("first_workflow", Step::OutreachEmail).await;
    let url = sent[0].list_unsubscribe.clone().unwrap();
    for _ in 0..2 {
        // A mail scanner fetching the link, twice.
        let page = s.handle(request_at(Method::GET, &url, "")).await;
        assert_eq!(page.status(), StatusCode::OK);
        let html = text(&page);
        assert!(
            html.contains("Stop these emails?") && html.contains("<form method=\"post\""),
            "{html}"
        );
        let email = sent[0].to[0].email.as_str();
        assert!(!html.contains(email), "the page masks the address");
        assert!(html.contains(&format!("{}•••@a1.example", &email[..1])), "{html}");
    }
    assert!(s.suppressed().await.is_empty(), "GET changed nothing");
    let resp = s.handle(request_at(Method::POST, &url, "")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let suppressed = s.suppressed().await;
    assert_eq!(suppressed.len(), 1);
    assert_eq!(suppressed[0].source, milepost_domain::SuppressionSource::Page);
    assert!(text(&s.handle(request_at(Method::GET, &url, "")).await).contains("already unsubscribed"));
}

async fn a_bad_unsubscribe_link_gets_a_page_and_changes_nothing(s: Setup<'_>) {
    let sent = s.run("first_workflow", Step::OutreachEmail).await;
    let url = sent[0].list_unsubscribe.clone().unwrap();
    let (base, token) = url.rsplit_once('/').unwrap();
    let mut tampered = token.to_string();
    let at = tampered.find('.').unwrap() + 3;
    let flipped = if &tampered[at..=at] == "A" { "B" } else { "A" };
    tampered.replace_range(at..=at, flipped);
    let task_link = s.token("first_workflow", LinkAction::Done).await;
    let cases = [
        (format!("{base}/{tampered}"), &[403u16][..]),
        (format!("{base}/{}", &token[..token.len() - 4]), &[403][..]),
        (format!("{base}/{task_link}"), &[403][..]),
        // An unsubscribe token is no task action either.
        (format!("https://actions.example/v1/actions/{token}"), &[403][..]),
    ];
    for (bad, statuses) in &cases {
        for method in [Method::GET, Method::POST] {
            let resp = s.handle(request_at(method.clone(), bad, ONE_CLICK)).await;
            assert!(
                statuses.contains(&resp.status().as_u16()),
                "{method} {bad}: {}",
                resp.status()
            );
            assert!(text(&resp).contains("Nothing was changed"), "{}", text(&resp));
        }
    }
    // A year and a day later the link has expired.
    s.clock.advance(Duration::days(366));
    let expired = s.handle(request_at(Method::POST, &url, ONE_CLICK)).await;
    assert_eq!(expired.status(), StatusCode::GONE);
    assert!(text(&expired).contains("reply to it and ask to be taken off"));
    assert!(s.suppressed().await.is_empty());
}

milepost_local::scenarios! {
    function: "ActionsFunction",
    in_memory: crate::common::in_memory,
    on_dynamodb: crate::common::on_dynamodb,
    asks_at_least: ["dynamodb:GetItem", "dynamodb:PutItem"],
    scenarios: [
        opening_a_link_shows_what_it_would_do_and_changes_nothing,
        done_closes_the_task_once_with_who_and_when,
        a_bad_link_gets_its_page_and_changes_nothing,
        a_snooze_ends_with_a_reminder_and_fresh_links,
        confirming_a_manual_milestone_recovers_it_and_closes_its_task,
        pausing_holds_customer_email_but_not_leadership,
        leadership_holds_the_sponsor_email_once_through_its_link,
        one_click_unsubscribe_stops_customer_mail_to_that_contact_only,
        the_unsubscribe_page_changes_nothing_until_its_button,
        a_bad_unsubscribe_link_gets_a_page_and_changes_nothing,
    ],
}
