//! The action links and unsubscribe links as an attacker would use them
//! (issue 31): a link re-spelled to act again, forged links probing what
//! exists, a first-format unsubscribe link shifted onto another address, a
//! page opened with a trailing slash, a cross-site form, and a one-click
//! unsubscribe sent as multipart. Each changes nothing it should not; every
//! scenario runs on the embedded store and on DynamoDB (moto).

use crate::common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::*;
use hmac::Mac;
use lambda_http::http::{HeaderValue, Method, StatusCode};
use lambda_http::Request;
use milepost_app::links::{address_fingerprint, LinkAction, LinkSigner, DEV_LINK_KEY};
use milepost_domain::{AccountId, Step, SuppressionSource, TaskStatus};

/// `token`'s payload rewritten by `edit`, its MAC kept: the same link spelled another way.
fn respelled(token: &str, edit: impl Fn(&str) -> String) -> String {
    let [v, payload, mac]: [&str; 3] = token.split('.').collect::<Vec<_>>().try_into().unwrap();
    let json = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    format!("{v}.{}.{mac}", URL_SAFE_NO_PAD.encode(edit(&json)))
}

/// Four spellings of one link's claims (the finding: each acted again).
fn four_spellings(token: &str) -> Vec<String> {
    vec![
        respelled(token, |j| j.replace(',', ", ").replace(':', " : ")),
        respelled(token, |j| {
            let v: serde_json::Value = serde_json::from_str(j).unwrap();
            format!(r#"{{"e":{},"s":{},"r":{},"a":{}}}"#, v["e"], v["s"], v["r"], v["a"])
        }),
        respelled(token, |j| j.replace('}', r#","note":"again"}"#)),
        respelled(token, |j| {
            let v: serde_json::Value = serde_json::from_str(j).unwrap();
            j.replace(v["r"].as_str().unwrap(), &address_fingerprint("someone@else.example"))
        }),
    ]
}

async fn a_link_spelled_another_way_acts_no_more(s: Setup<'_>) {
    let token = s.token("team_invited", LinkAction::Snooze3).await;
    assert_eq!(s.post(&token, "note=back+on+Monday").await.status(), StatusCode::OK);
    let snoozed = s.task("team_invited").await;
    assert_eq!((snoozed.status(), snoozed.notes().len()), (TaskStatus::Snoozed, 1));
    let before = s.snapshot().await;
    for forged in four_spellings(&token) {
        let resp = s.post(&forged, "note=again").await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{}", text(&resp));
        assert!(text(&resp).contains("can&#39;t be used"), "{}", text(&resp));
    }
    assert_eq!(s.snapshot().await, before, "a re-spelled Snooze link snoozed again");
    assert_eq!(s.task("team_invited").await.version, snoozed.version);

    let pause = s.token("first_workflow", LinkAction::Pause).await;
    assert_eq!(s.post(&pause, "").await.status(), StatusCode::OK);
    let paused = s.store.customer_email_pause(&AccountId::new("a1")).await.unwrap();
    let before = s.snapshot().await;
    s.clock.advance(chrono::Duration::hours(5));
    for forged in four_spellings(&pause) {
        assert_eq!(s.post(&forged, "").await.status(), StatusCode::FORBIDDEN);
    }
    let after = s.store.customer_email_pause(&AccountId::new("a1")).await.unwrap();
    assert_eq!(after, paused, "a re-spelled Pause link moved the pause's end");
    assert_eq!(s.snapshot().await, before);
}

/// A token as the first format made it (`v1|action|subject|address|expiry`, joined unescaped).
fn v1_token(key: &[u8], action: LinkAction, subject: &str, recipient: &str, expires: i64) -> String {
    let payload = format!(
        r#"{{"a":"{}","s":"{subject}","r":"{}","e":{expires}}}"#,
        action.as_str(),
        address_fingerprint(recipient)
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(
        format!(
            "v1|{}|{subject}|{}|{expires}",
            action.as_str(),
            recipient.to_lowercase()
        )
        .as_bytes(),
    );
    format!(
        "v1.{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

async fn a_forged_link_gets_one_page_whatever_is_behind_it(s: Setup<'_>) {
    let task = s.task("first_workflow").await;
    let not_our_key = LinkSigner::new(b"a key that is not the deployment's").unwrap();
    let expires = s.clock_now() + chrono::Duration::days(14);
    let forgeries = [
        not_our_key.mint(LinkAction::Done, task.id(), &task.brief().owner_email, expires),
        not_our_key.mint(LinkAction::Done, task.id(), "guess@vendor.example", expires),
        not_our_key.mint(
            LinkAction::Done,
            "made-up-execution:csm-task",
            &task.brief().owner_email,
            expires,
        ),
        not_our_key.mint(LinkAction::Done, &"x".repeat(3000), &task.brief().owner_email, expires),
        "v2.bm90LWpzb24.AAAA".to_string(),
    ];
    let before = s.snapshot().await;
    if let Some(moto) = s.moto {
        moto.take_recorded_actions();
    }
    let mut answers = std::collections::BTreeSet::new();
    for forged in &forgeries {
        for resp in [s.get(forged).await, s.post(forged, "outcome=other").await] {
            answers.insert((resp.status(), text(&resp)));
        }
    }
    assert_eq!(answers.len(), 1, "the answers tell forgeries apart: {answers:#?}");
    assert_eq!(answers.first().unwrap().0, StatusCode::FORBIDDEN);
    if let Some(moto) = s.moto {
        let asked = moto.take_recorded_actions();
        assert!(asked.is_empty(), "a forged link made the handler read {asked:?}");
    }
    // A task link of the first format: no longer honoured, and nothing read to say so.
    let old = v1_token(
        DEV_LINK_KEY.as_bytes(),
        LinkAction::Done,
        task.id(),
        &task.brief().owner_email,
        expires.timestamp(),
    );
    let resp = s.post(&old, "").await;
    assert_eq!(resp.status(), StatusCode::GONE);
    assert!(text(&resp).contains("older email"), "{}", text(&resp));
    assert_eq!(s.snapshot().await, before, "a forged link changed something");
}

async fn a_first_format_unsubscribe_link_works_but_cannot_be_shifted(s: Setup<'_>) {
    let sent = s.run("first_workflow", Step::OutreachEmail).await;
    let dana = sent[0].to[0].email.clone();
    let expires = (s.clock_now() + chrono::Duration::days(300)).timestamp();
    let key = DEV_LINK_KEY.as_bytes();
    let unsubscribe = |token: &str| {
        request_at(
            Method::POST,
            &format!("https://actions.example/v1/unsubscribe/{token}"),
            ONE_CLICK,
        )
    };

    // The link sent to `evil|<dana>`, its subject and fingerprint shifted to read as Dana's.
    let evil = format!("evil|{dana}");
    let sent_to_evil = v1_token(key, LinkAction::Unsubscribe, "a1", &evil, expires);
    let shifted_payload = format!(
        r#"{{"a":"unsubscribe","s":"a1|evil","r":"{}","e":{expires}}}"#,
        address_fingerprint(dana.as_str())
    );
    let shifted = format!(
        "v1.{}.{}",
        URL_SAFE_NO_PAD.encode(shifted_payload),
        sent_to_evil.rsplit('.').next().unwrap()
    );
    let resp = s.handle(unsubscribe(&shifted)).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{}", text(&resp));
    assert!(
        s.suppressed().await.is_empty(),
        "a shifted link unsubscribed someone else"
    );

    // Dana's own first-format link, from an email sent before the upgrade, still works.
    let hers = v1_token(key, LinkAction::Unsubscribe, "a1", dana.as_str(), expires);
    let resp = s.handle(unsubscribe(&hers)).await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", text(&resp));
    let suppressed = s.suppressed().await;
    assert_eq!(suppressed.len(), 1);
    assert_eq!(suppressed[0].email, dana);
}

/// The form's `action` in `html`, resolved against the page's `url` as a browser does.
fn form_target(html: &str, url: &str) -> String {
    let action = html
        .split("<form method=\"post\" action=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a form");
    url::Url::parse(url).unwrap().join(action).unwrap().to_string()
}

async fn a_page_opened_with_a_trailing_slash_posts_to_its_link(s: Setup<'_>) {
    let token = s.token("first_workflow", LinkAction::Done).await;
    let page_url = format!("https://actions.example/v1/actions/{token}/");
    let page = s.handle(request_at(Method::GET, &page_url, "")).await;
    assert_eq!(page.status(), StatusCode::OK);
    let target = form_target(&text(&page), &page_url);
    assert_eq!(target, format!("https://actions.example/v1/actions/{token}"));
    let resp = s.handle(request_at(Method::POST, &target, "outcome=plan_agreed")).await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", text(&resp));
    assert_eq!(s.task("first_workflow").await.status(), TaskStatus::Done);

    let sent = s.run("team_invited", Step::OutreachEmail).await;
    let url = format!("{}/", sent[0].list_unsubscribe.clone().unwrap());
    let page = s.handle(request_at(Method::GET, &url, "")).await;
    let target = form_target(&text(&page), &url);
    assert_eq!(target, url.trim_end_matches('/'));
    let resp = s.handle(request_at(Method::POST, &target, "")).await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", text(&resp));
    assert_eq!(s.suppressed().await[0].source, SuppressionSource::Page);
}

fn with_headers(mut request: Request, headers: &[(&'static str, &'static str)]) -> Request {
    for (name, value) in headers {
        request.headers_mut().insert(*name, HeaderValue::from_static(value));
    }
    request
}

async fn a_cross_site_form_changes_nothing(s: Setup<'_>) {
    let token = s.token("first_workflow", LinkAction::Done).await;
    let url = format!("https://actions.example/v1/actions/{token}");
    let before = s.snapshot().await;
    let cross_site: [&[(&str, &str)]; 4] = [
        &[("origin", "https://evil.example"), ("content-type", "text/plain")],
        &[("origin", "https://evil.example"), ("sec-fetch-site", "cross-site")],
        &[("sec-fetch-site", "same-site")],
        &[("origin", "null")],
    ];
    for headers in cross_site {
        let resp = s
            .handle(with_headers(request_at(Method::POST, &url, "outcome=other"), headers))
            .await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{headers:?}: {}", text(&resp));
    }
    assert_eq!(s.snapshot().await, before, "a cross-site POST closed the task");

    // The page's own button: its origin and the browser's same-origin mark.
    let own = [("origin", "https://actions.example"), ("sec-fetch-site", "same-origin")];
    let resp = s
        .handle(with_headers(request_at(Method::POST, &url, "outcome=other"), &own))
        .await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", text(&resp));

    // The unsubscribe page's button from another site: refused; one-click from a mail provider: taken.
    let sent = s.run("team_invited", Step::OutreachEmail).await;
    let unsubscribe = sent[0].list_unsubscribe.clone().unwrap();
    let resp = s
        .handle(with_headers(
            request_at(Method::POST, &unsubscribe, ""),
            &[("origin", "https://evil.example")],
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(s.suppressed().await.is_empty());
}

async fn a_one_click_unsubscribe_sent_as_multipart_is_one_click(s: Setup<'_>) {
    let sent = s.run("first_workflow", Step::OutreachEmail).await;
    let url = sent[0].list_unsubscribe.clone().unwrap();
    let body =
        "--b0undary\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--b0undary--\r\n";
    let mut request = request_at(Method::POST, &url, body);
    request.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("multipart/form-data; boundary=b0undary"),
    );
    let resp = s.handle(request).await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", text(&resp));
    let suppressed = s.suppressed().await;
    assert_eq!(suppressed.len(), 1);
    assert_eq!(
        suppressed[0].source,
        SuppressionSource::OneClick,
        "recorded as the page's button"
    );
}

milepost_local::scenarios! {
    function: "ActionsFunction",
    in_memory: crate::common::in_memory,
    on_dynamodb: crate::common::on_dynamodb,
    asks_at_least: ["dynamodb:GetItem", "dynamodb:PutItem"],
    scenarios: [
        a_forged_link_gets_one_page_whatever_is_behind_it,
        a_link_spelled_another_way_acts_no_more,
        a_first_format_unsubscribe_link_works_but_cannot_be_shifted,
        a_page_opened_with_a_trailing_slash_posts_to_its_link,
        a_cross_site_form_changes_nothing,
        a_one_click_unsubscribe_sent_as_multipart_is_one_click,
    ],
}
