//! The integrations function's handler keeping HubSpot up to date, on
//! DynamoDB (moto), over real HTTP to a HubSpot stand-in
//! (`tests/hubspot_standin.py`) that records every call; the official
//! `hubspot-api-client` then judges each call (`tests/hubspot_calls_check.py`).
//! How we know nothing is made twice or lost: the stand-in's own tasks,
//! counted by the `milepost_task_id` each carries, and its companies' values.

use chrono::{Duration, Utc};
use milepost_app::crm::{CrmSettings, CrmSyncs};
use milepost_app::ports::{AccountStore, Clock, CrmList, CrmSyncStore, MilestoneStore, TaskStore};
use milepost_app::webhooks::Webhooks;
use milepost_aws::hubspot_api::HubSpotRestApi;
use milepost_aws::webhook_poster::HttpWebhookPoster;
use milepost_aws::DynamoStore;
use milepost_domain::fixtures::{account, date, map_of, milestone_def};
use milepost_domain::{
    AccountId, Actor, Criterion, DomainEvent, Group, MilestoneStatus, Outcome, Stage, TaskAction, TrackedMilestone,
};
use milepost_embedded::VirtualClock;
use milepost_integrations::{handle, Integrations};
use milepost_local::{MotoServer, StandIn};
use serde_json::Value;

fn from_bus(event: &DomainEvent) -> Value {
    serde_json::json!({
        "version": "0", "id": "8c1c-not-ours", "detail-type": event.detail_type(), "source": "milepost",
        "account": "123456789012", "time": "2026-06-01T09:00:00Z", "region": "us-east-1",
        "resources": [], "detail": event.detail(),
    })
}

fn opened(account: &str, task: &str, at: milepost_domain::Timestamp) -> DomainEvent {
    DomainEvent::TaskOpened {
        account_id: AccountId::new(account),
        milestone_id: "first_dashboard".into(),
        task_id: task.into(),
        owner_role: "csm".into(),
        opened_at: at,
    }
}

fn closed(account: &str, task: &str, at: milepost_domain::Timestamp) -> DomainEvent {
    DomainEvent::TaskClosed {
        account_id: AccountId::new(account),
        milestone_id: "first_dashboard".into(),
        task_id: task.into(),
        status: "done".into(),
        reason: "completed".into(),
        outcome: Some("plan_agreed".into()),
        closed_at: at,
    }
}

/// The stand-in's tasks mirroring `task_id`.
fn mirrors<'a>(state: &'a Value, task_id: &str) -> Vec<(&'a String, &'a Value)> {
    state["tasks"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, t)| t["milepost_task_id"] == task_id)
        .collect()
}

/// Acme (found by its domain) with a missed milestone at day 3 and its CSM
/// task; Globex (named by its `hubspot_company_id`); Initech, whose domain
/// HubSpot does not know, until its trait names the company. HubSpot's
/// first write fails (500), the task's create is made but its answer lost,
/// the next write is rate limited (429).
#[tokio::test]
async fn each_account_reaches_its_company_and_each_task_is_mirrored_once_through_a_lost_answer() {
    let moto = MotoServer::start();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&moto.sdk_config().await), "hubspot");
    store.create_table().await.unwrap();
    let hubspot = StandIn::start(
        "hubspot_standin.py",
        &[
            "--companies",
            "acme.example=101,globex.example=909,globex-hq.example=202,initech-inc.example=303",
            "--owners",
            "maya@vendor.example=501",
            "--faults",
            "500,drop,429",
        ],
    );
    let clock = VirtualClock::new(Utc::now());
    let now = clock.now();
    let mut acme = account("acme", date(2026, 1, 1));
    acme.domain = Some("acme.example".into());
    acme.arr = 120_000;
    let mut globex = account("globex", date(2026, 1, 1));
    globex.hubspot_company_id = Some("202".into());
    globex.domain = Some("globex.example".into());
    let mut initech = account("initech", date(2026, 1, 1));
    initech.domain = Some("initech.example".into());
    for a in [&acme, &globex, &initech] {
        store.put_account(a).await.unwrap();
    }
    let def = milestone_def("first_dashboard", 30, Criterion::Manual);
    let map = map_of(vec![def.clone()]);
    let mut missed = TrackedMilestone::new(&acme, &map, &def);
    milepost_domain::seed::milestone(&mut missed)
        .due_at(now - Duration::days(3))
        .missed(now - Duration::days(3), Some(Group::Playbook))
        .status(MilestoneStatus::Escalating(Stage::CsmTask));
    store.create_milestone(&missed).await.unwrap();
    let acme_task = milepost_embedded::fixtures::task("acme-first-1:csm-task", "maya@vendor.example", now);
    let initech_task = milepost_embedded::fixtures::task_on(
        AccountId::new("initech"),
        "first_dashboard",
        "initech-first-1:csm-task",
        "sam@vendor.example",
        now,
    );
    store.create_task(&acme_task).await.unwrap();
    store.create_task(&initech_task).await.unwrap();

    let api = HubSpotRestApi::new(&hubspot.url(), "pat-na1-test-token").unwrap();
    let settings = CrmSettings {
        console_url: Some("https://console.example".into()),
        renewal_stages: milepost_domain::crm::renewal_stages("closedwon=renewed,closedlost=churned").unwrap(),
        renewal_pipeline: None,
    };
    let crm = CrmSyncs {
        store: &store,
        api: &api,
        clock: &clock,
        settings: &settings,
    };
    let poster = HttpWebhookPoster::new().unwrap();
    let webhooks = Webhooks {
        store: &store,
        poster: &poster,
        clock: &clock,
    };
    let to = Integrations {
        webhooks: &webhooks,
        slack: None,
        crm: Some(&crm),
    };
    let retries = serde_json::json!({"part": "retries"});
    let far = |c: &VirtualClock| c.now() + Duration::minutes(5);
    let globex_missed = DomainEvent::MilestoneMissed {
        account_id: AccountId::new("globex"),
        milestone_id: "first_dashboard".into(),
        segment: globex.segment,
        phase: milepost_domain::Phase::Onboarding,
        due_at: now,
        arr_at_risk: 0,
        group: Group::Playbook,
    };
    moto.record_requests(true).await;
    // Each event twice, as the bus may deliver it.
    for event in [
        opened("acme", acme_task.id(), now),
        globex_missed.clone(),
        opened("initech", initech_task.id(), now),
    ] {
        for _ in 0..2 {
            handle(&to, &from_bus(&event), far(&clock)).await.unwrap();
        }
    }
    for _ in 0..4 {
        clock.advance(Duration::seconds(6));
        handle(&to, &retries, far(&clock)).await.unwrap();
    }
    moto.record_requests(false).await;

    let state = hubspot.get("/_state");
    let acme_company = &state["companies"]["101"];
    assert_eq!(acme_company["milepost_stage"], "day3", "{acme_company}");
    assert_eq!(acme_company["milepost_missed_milestones"], "first_dashboard");
    assert_eq!(acme_company["milepost_missed_count"], "1");
    // The console's portfolio row of the account says the same.
    milepost_app::portfolio_keeper::refresh_account(&store, &AccountId::new("acme"), clock.now())
        .await
        .unwrap();
    let (portfolio, _) = milepost_app::portfolio_keeper::kept_portfolio(&store, clock.now())
        .await
        .unwrap();
    let row = portfolio
        .rows
        .iter()
        .find(|r| r.account_id == AccountId::new("acme"))
        .unwrap();
    assert_eq!(acme_company["milepost_arr_at_risk"], row.arr_at_risk.to_string());
    assert_eq!(
        acme_company["milepost_health_score"],
        row.health.unwrap().score.to_string()
    );
    assert_eq!(
        acme_company["milepost_console_link"],
        "https://console.example/accounts/acme"
    );
    assert_eq!(state["companies"]["202"]["milepost_stage"], "on_track");
    assert!(
        state["companies"]["909"].get("milepost_stage").is_none(),
        "globex's own id wins over its domain"
    );

    let acme_mirrors = mirrors(&state, acme_task.id());
    assert_eq!(acme_mirrors.len(), 1, "one task, though its create's answer was lost");
    let (acme_hs_id, acme_hs) = acme_mirrors[0];
    assert_eq!(state["associations"][acme_hs_id], serde_json::json!(["101"]));
    assert_eq!(acme_hs["hubspot_owner_id"], "501");
    assert_eq!(acme_hs["hs_task_status"], "NOT_STARTED");
    let calls = hubspot.calls();
    assert!(
        calls.iter().any(|c| c["path"] == "/crm/v3/objects/tasks/search"),
        "the lost create was looked for"
    );
    let searched_globex = calls
        .iter()
        .any(|c| c["path"] == "/crm/v3/objects/companies/search" && c["body"].to_string().contains("globex"));
    assert!(!searched_globex, "an account naming its company is not searched for");

    // Initech: unmatched, listed, its task waiting; then its trait names the company.
    assert!(mirrors(&state, initech_task.id()).is_empty());
    let unmatched = store.listed_crm_syncs(CrmList::Unmatched, 10).await.unwrap();
    let whys: Vec<String> = unmatched
        .iter()
        .map(|s| format!("{} {} {:?}", s.account_id, s.mirrored.key(), s.state))
        .collect();
    assert_eq!(unmatched.len(), 2, "{whys:?}");
    assert!(
        whys.iter()
            .any(|w| w.contains("initech company") && w.contains("initech.example")),
        "{whys:?}"
    );
    initech.hubspot_company_id = Some("303".into());
    store.put_account(&initech).await.unwrap();
    moto.record_requests(true).await;
    milepost_app::crm::resync(&store, clock.now(), &AccountId::new("initech"))
        .await
        .unwrap();
    handle(&to, &retries, far(&clock)).await.unwrap();

    // Maya closes Acme's task; the close reaches HubSpot, twice delivered.
    moto.record_requests(false).await;
    let mut done = store.get_task(acme_task.id()).await.unwrap().unwrap();
    let maya = Actor::Person {
        name: "Maya".into(),
        email: "maya@vendor.example".into(),
    };
    let action = TaskAction::Done {
        outcome: Outcome::PlanAgreed,
        note: None,
    };
    done.apply(&action, &maya, clock.now(), None).unwrap();
    store.update_task(&done).await.unwrap();
    moto.record_requests(true).await;
    for _ in 0..2 {
        handle(
            &to,
            &from_bus(&closed("acme", acme_task.id(), clock.now())),
            far(&clock),
        )
        .await
        .unwrap();
    }
    for _ in 0..3 {
        clock.advance(Duration::seconds(6));
        handle(&to, &retries, far(&clock)).await.unwrap();
    }
    moto.record_requests(false).await;

    let state = hubspot.get("/_state");
    assert_eq!(state["companies"]["303"]["milepost_stage"], "on_track");
    let initech_mirrors = mirrors(&state, initech_task.id());
    assert_eq!(initech_mirrors.len(), 1, "made once its company was found");
    assert_eq!(state["associations"][initech_mirrors[0].0], serde_json::json!(["303"]));
    let acme_mirrors = mirrors(&state, acme_task.id());
    assert_eq!(acme_mirrors.len(), 1);
    assert_eq!(acme_mirrors[0].1["hs_task_status"], "COMPLETED");
    let body = acme_mirrors[0].1["hs_task_body"].as_str().unwrap();
    assert!(body.contains("Status: done"), "the close's reason: {body}");
    assert!(store.listed_crm_syncs(CrmList::Unmatched, 10).await.unwrap().is_empty());
    assert!(store.listed_crm_syncs(CrmList::Dead, 10).await.unwrap().is_empty());

    // A salesperson closes Acme's renewal deal as won, Globex's domain
    // company's as lost (no account's company), and moves another deal
    // elsewhere: the retries read them; read twice, Acme's renewal is one.
    let deal = |id: &str, stage: &str, company: &str| {
        serde_json::json!({"id": id, "companies": [company], "properties": {
            "dealstage": stage, "closedate": "2027-01-15T00:00:00.000Z", "amount": "130000", "pipeline": "default"}})
    };
    hubspot.post("/_deals", &deal("7001", "closedwon", "101"));
    hubspot.post("/_deals", &deal("7002", "closedlost", "909"));
    hubspot.post("/_deals", &deal("7003", "appointmentscheduled", "101"));
    moto.record_requests(true).await;
    let first = handle(&to, &retries, far(&clock)).await.unwrap();
    let again = handle(&to, &retries, far(&clock)).await.unwrap();
    moto.record_requests(false).await;
    assert_eq!(
        (&first["renewals"]["recorded"], &first["renewals"]["unmatched"]),
        (&serde_json::json!(1), &serde_json::json!(1)),
        "{first}"
    );
    assert_eq!(again["renewals"]["recorded"], 0, "{again}");
    let acme_now = store.get_account(&AccountId::new("acme")).await.unwrap().unwrap();
    assert_eq!(
        acme_now.renewals,
        vec![milepost_domain::RenewalOutcome {
            decision_date: date(2027, 1, 15),
            outcome: milepost_domain::RenewalDecision::Renewed,
            arr_after: Some(130_000),
        }]
    );
    let globex_now = store.get_account(&AccountId::new("globex")).await.unwrap().unwrap();
    assert!(globex_now.renewals.is_empty());

    // Properties made once each, though every event asked for them.
    let calls = hubspot.calls();
    let made: Vec<String> = calls
        .iter()
        .filter(|c| c["http"] == "POST" && c["path"].as_str().unwrap().starts_with("/crm/v3/properties/"))
        .map(|c| format!("{} {}", c["path"], c["body"]["name"]))
        .collect();
    assert_eq!(
        made.len(),
        14,
        "a group and its properties on companies and tasks: {made:?}"
    );
    let mut unique = made.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(made.len(), unique.len(), "{made:?}");
    let faults: Vec<&str> = calls.iter().filter_map(|c| c["fault"].as_str()).collect();
    assert_eq!(faults, ["500", "drop", "429"], "every fault was met");
    let judged = hubspot.judged_by("hubspot_calls_check.py");
    assert!(judged.contains(": 0 problems"), "{judged}");
    milepost_local::iam::assert_granted("IntegrationsFunction", &moto.recorded_actions());
}

/// A chaos round: accounts of five tasks each (40 tasks in `make test`,
/// `MILEPOST_HUBSPOT_CHAOS_TASKS` in `make chaos`), a third of HubSpot's
/// writes failing (429 with Retry-After, 500, or made with the answer lost),
/// a burst window small enough to be spent, task events delivered twice and
/// out of order (some closes before their openings), retries run by two
/// overlapping invocations at a time. At the end: exactly one HubSpot task
/// per CSM task, on its account's company, every close mirrored, every
/// company written, nothing dead; every call as HubSpot's client makes it.
#[tokio::test]
async fn a_chaos_round_leaves_exactly_one_hubspot_task_per_csm_task_and_every_close_mirrored() {
    let env_number =
        |name: &str, default: u64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let tasks = env_number("MILEPOST_HUBSPOT_CHAOS_TASKS", 40) as usize;
    let seed = env_number("MILEPOST_CHAOS_SEED", 17);
    let accounts = tasks.div_ceil(5);
    let moto = MotoServer::start();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&moto.sdk_config().await), "hubspot-chaos");
    store.create_table().await.unwrap();
    let companies: Vec<String> = (0..accounts).map(|a| format!("a{a:03}.example={}", 1000 + a)).collect();
    let hubspot = StandIn::start(
        "hubspot_standin.py",
        &[
            "--companies",
            &companies.join(","),
            "--owners",
            "maya@vendor.example=501",
            "--seed",
            &seed.to_string(),
            "--fault-rate",
            "0.33",
            "--burst",
            "20",
            "--interval-ms",
            "1000",
        ],
    );
    let clock = VirtualClock::new(Utc::now());
    let api = HubSpotRestApi::new(&hubspot.url(), "pat-na1-test-token").unwrap();
    let settings = CrmSettings::default();
    let crm = CrmSyncs {
        store: &store,
        api: &api,
        clock: &clock,
        settings: &settings,
    };
    let poster = HttpWebhookPoster::new().unwrap();
    let webhooks = Webhooks {
        store: &store,
        poster: &poster,
        clock: &clock,
    };
    let to = Integrations {
        webhooks: &webhooks,
        slack: None,
        crm: Some(&crm),
    };
    // A second Lambda instance: its own client, which knows nothing of the
    // first's burst window (HubSpot's is shared by the portal).
    let api_2 = HubSpotRestApi::new(&hubspot.url(), "pat-na1-test-token").unwrap();
    let crm_2 = CrmSyncs {
        store: &store,
        api: &api_2,
        clock: &clock,
        settings: &settings,
    };
    let to_2 = Integrations {
        webhooks: &webhooks,
        slack: None,
        crm: Some(&crm_2),
    };
    for a in 0..accounts {
        let mut acct = account(&format!("a{a:03}"), date(2026, 1, 1));
        acct.domain = Some(format!("a{a:03}.example"));
        store.put_account(&acct).await.unwrap();
    }
    let ids: Vec<(String, String)> = (0..tasks)
        .map(|i| {
            (
                format!("a{:03}", i / 5),
                format!("a{:03}-m{i:03}-0123456789ab:csm-task", i / 5),
            )
        })
        .collect();
    let maya = Actor::Person {
        name: "Maya".into(),
        email: "maya@vendor.example".into(),
    };
    let mut events = Vec::new();
    for (i, (acct, id)) in ids.iter().enumerate() {
        let task = milepost_embedded::fixtures::task_on(
            AccountId::new(acct),
            "first_dashboard",
            id,
            "maya@vendor.example",
            clock.now(),
        );
        store.create_task(&task).await.unwrap();
        events.push(from_bus(&opened(acct, id, clock.now())));
        if i % 4 == 0 {
            events.push(from_bus(&opened(acct, id, clock.now())));
        }
        if i % 3 == 0 {
            let mut t = store.get_task(id).await.unwrap().unwrap();
            let done = TaskAction::Done {
                outcome: Outcome::PlanAgreed,
                note: None,
            };
            t.apply(&done, &maya, clock.now(), None).unwrap();
            store.update_task(&t).await.unwrap();
            let close = from_bus(&closed(acct, id, clock.now()));
            if i % 9 == 0 {
                events.insert(events.len() - 1, close);
            } else {
                events.push(close);
            }
        }
    }
    let retries = serde_json::json!({"part": "retries"});
    let far = |c: &VirtualClock| c.now() + Duration::minutes(5);
    for chunk in events.chunks(7) {
        for event in chunk {
            handle(&to, event, far(&clock)).await.unwrap();
        }
        clock.advance(Duration::seconds(6));
        let (a, b) = tokio::join!(handle(&to, &retries, far(&clock)), handle(&to_2, &retries, far(&clock)));
        a.unwrap();
        b.unwrap();
    }
    // Then the schedule's retries until nothing is owed but the companies' daily refresh.
    let owing = |s: &milepost_domain::crm::CrmSync| {
        !(s.mirrored == milepost_domain::crm::Mirrored::Company
            && s.synced_at
                .is_some_and(|at| s.next_at() == Some(at + milepost_domain::crm::COMPANY_REFRESH)))
    };
    let mut rounds = 0;
    loop {
        let due = store
            .due_crm_syncs(clock.now() + Duration::days(1), 1000)
            .await
            .unwrap();
        let Some(next) = due.iter().filter(|s| owing(s)).filter_map(|s| s.next_at()).min() else {
            break;
        };
        rounds += 1;
        assert!(rounds < 300, "still owing after 300 rounds");
        clock.set(next.max(clock.now() + Duration::seconds(6)));
        let (a, b) = tokio::join!(handle(&to, &retries, far(&clock)), handle(&to_2, &retries, far(&clock)));
        a.unwrap();
        b.unwrap();
    }

    let state = hubspot.get("/_state");
    for (i, (acct, id)) in ids.iter().enumerate() {
        let mine = mirrors(&state, id);
        assert_eq!(mine.len(), 1, "task {i}: {} HubSpot tasks", mine.len());
        let company = (1000 + i / 5).to_string();
        assert_eq!(
            state["associations"][mine[0].0],
            serde_json::json!([company]),
            "task {i}"
        );
        let status = &mine[0].1["hs_task_status"];
        if i % 3 == 0 {
            assert_eq!(status, "COMPLETED", "task {i}'s close not mirrored");
        } else {
            assert_eq!(status, "NOT_STARTED", "task {i}");
        }
        assert!(
            state["companies"][&company]["milepost_stage"].is_string(),
            "{acct}'s company never written"
        );
    }
    assert!(store.listed_crm_syncs(CrmList::Dead, 10).await.unwrap().is_empty());
    let calls = hubspot.calls();
    let faults = |kind: &str| calls.iter().filter(|c| c["fault"] == kind).count();
    let judged = hubspot.judged_by("hubspot_calls_check.py");
    eprintln!(
        "hubspot chaos (seed {seed}): {tasks} tasks on {accounts} companies, {} calls ({} task creates, {} task writes, {} company writes, {} searches), faults: {} 429, {} 500, {} lost answers, {} over the burst window; {rounds} retry rounds after the events; {}",
        calls.len(),
        calls.iter().filter(|c| c["http"] == "POST" && c["path"] == "/crm/v3/objects/tasks").count(),
        calls.iter().filter(|c| c["http"] == "PATCH" && c["path"].as_str().unwrap().contains("/tasks/")).count(),
        calls.iter().filter(|c| c["http"] == "PATCH" && c["path"].as_str().unwrap().contains("/companies/")).count(),
        calls.iter().filter(|c| c["path"].as_str().unwrap().ends_with("/search")).count(),
        faults("429"),
        faults("500"),
        faults("drop"),
        faults("burst"),
        judged.trim()
    );
    assert!(
        faults("429") > 0 && faults("500") > 0 && faults("drop") > 0,
        "every kind of fault was met"
    );
}
