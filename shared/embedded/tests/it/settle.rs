//! Emails handed to the mail service without an answer, settled from its
//! own events (issue 31): taken and recorded, it is marked sent and not sent
//! again; never taken while later emails were, it is sent again once,
//! exactly as it was; never taken and moot by then, it is not sent; never
//! taken twice, it is left unknown. How we know nothing goes twice: the
//! mailer counts every email it took, by send key.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Duration;
use milepost_app::ports::{
    Clock, EscalationLog, MapStore, MilestoneStore, SendLedger, SendReceipt, SendReceipts, SendRecord,
};
use milepost_app::sending::send_tag;
use milepost_app::sweep::SweepOptions;
use milepost_app::Services;
use milepost_domain::{AccountId, EmailKind, SendKey, Timestamp};
use milepost_embedded::fixtures::escalation::{account, contract_start, ESCALATION_MAP};
use milepost_embedded::fixtures::{links, simulation_config};
use milepost_embedded::{InMemoryStore, LocalWorkflowRunner, MemoryMailer, RecordingPublisher, VirtualClock};
use milepost_maps::load_map;

struct Run {
    s: Services,
    store: Arc<InMemoryStore>,
    mailer: Arc<MemoryMailer>,
    clock: Arc<VirtualClock>,
    runner: Arc<LocalWorkflowRunner>,
    /// How many emails the mailer took when the stream last reported.
    reported: usize,
}

async fn run() -> Run {
    run_with(ESCALATION_MAP).await
}

async fn run_with(map: &str) -> Run {
    let store = Arc::new(InMemoryStore::new());
    let mailer = Arc::new(MemoryMailer::default());
    let clock = Arc::new(VirtualClock::new(contract_start()));
    let runner = Arc::new(LocalWorkflowRunner::new());
    let s = Services {
        store: store.clone(),
        mailer: mailer.clone(),
        events: Arc::new(RecordingPublisher::default()),
        workflows: runner.clone(),
        clock: clock.clone(),
        config: simulation_config(),
        links: Some(links()),
    };
    store.put_map(&load_map("m.yaml", map).unwrap()).await.unwrap();
    s.ingestion().upsert_account(&account("a1")).await.unwrap();
    Run {
        s,
        store,
        mailer,
        clock,
        runner,
        reported: 0,
    }
}

impl Run {
    /// Half-hour ticks to `until`: sweeps, due steps, the mail service's
    /// events for what it took (when `stream` is on), and the settling.
    async fn until(&mut self, until: Timestamp, stream: bool) {
        let mut t = self.clock.now();
        while t < until {
            t += Duration::minutes(30);
            self.clock.set(t);
            self.s.sweeper().sweep(&SweepOptions::default()).await.unwrap();
            self.runner.run_due(&self.s.playbook(), t).await;
            if stream {
                self.report_taken(t).await;
            }
            self.s.settler().run().await.unwrap();
        }
    }

    /// SES's Send events for the emails it took since the last report.
    async fn report_taken(&mut self, at: Timestamp) {
        let sent = self.mailer.sent();
        for (i, mail) in sent.iter().enumerate().skip(self.reported) {
            let receipt = SendReceipt {
                tag: send_tag(&mail.key),
                message_id: format!("ses-{i}"),
                event: "Send".into(),
                mail_at: at,
            };
            self.store.record_receipt(&receipt).await.unwrap();
        }
        self.reported = sent.len();
    }

    /// Emails the mailer took, by send key.
    fn taken(&self) -> BTreeMap<SendKey, usize> {
        self.mailer.sent().into_iter().fold(BTreeMap::new(), |mut m, e| {
            *m.entry(e.key).or_default() += 1;
            m
        })
    }

    /// The first outreach email the mailer took.
    fn first_outreach(&self) -> milepost_domain::OutgoingEmail {
        self.mailer
            .sent()
            .into_iter()
            .find(|m| m.kind == EmailKind::Outreach)
            .expect("an outreach went")
    }

    fn outreach_keys(&self) -> Vec<SendKey> {
        self.mailer
            .sent()
            .into_iter()
            .filter(|m| m.kind == EmailKind::Outreach)
            .map(|m| m.key)
            .collect()
    }

    /// a1 does the two workflows first_workflow asks for, now.
    async fn catch_up(&self) {
        let at = self.clock.now();
        for id in ["late-1", "late-2"] {
            let event = milepost_domain::ProductEvent {
                id: id.into(),
                account_id: AccountId::new("a1"),
                event: "workflow.completed".into(),
                timestamp: at,
                user_id: Some("u1".into()),
                properties: Default::default(),
            };
            self.s.ingestion().apply_event(&event).await.unwrap();
        }
    }

    async fn unsettled(&self) -> Vec<SendKey> {
        self.store.unsettled_sends(100).await.unwrap()
    }
}

#[tokio::test]
async fn an_email_the_service_never_took_is_sent_again_once_exactly_as_it_was() {
    let mut r = run().await;
    r.mailer.leave_unanswered("pat@a1.example", 1);
    r.until(contract_start() + Duration::days(16), true).await;
    let outreach = r.outreach_keys();
    assert!(!outreach.is_empty(), "the outreach went in the end");
    assert!(
        r.taken().values().all(|n| *n == 1),
        "an email went twice: {:?}",
        r.taken()
    );
    let first = r.first_outreach();
    assert!(matches!(
        r.store.send_record(&first.key).await.unwrap(),
        Some(SendRecord::Sent { .. })
    ));
    assert!(r.unsettled().await.is_empty(), "nothing left to settle");
    assert_eq!(
        r.mailer.attempts() as usize,
        r.mailer.sent().len() + 1,
        "one attempt was never taken"
    );
}

#[tokio::test]
async fn an_email_taken_but_unanswered_is_settled_from_its_receipt_and_not_sent_again() {
    let mut r = run().await;
    r.mailer.lose_answer("pat@a1.example", 1);
    r.until(contract_start() + Duration::days(16), true).await;
    assert!(r.taken().values().all(|n| *n == 1), "{:?}", r.taken());
    let first = r.first_outreach();
    let Some(SendRecord::Sent { message_id, .. }) = r.store.send_record(&first.key).await.unwrap() else {
        panic!("settled as sent")
    };
    assert!(message_id.starts_with("ses-"), "the id SES's event gave: {message_id}");
    assert!(r.unsettled().await.is_empty());
}

#[tokio::test]
async fn a_customer_email_never_taken_is_not_sent_once_the_customer_caught_up() {
    let mut r = run().await;
    r.mailer.leave_unanswered("pat@a1.example", 1);
    // To the day-1 outreach, with no stream yet to settle it.
    r.until(contract_start() + Duration::days(11) + Duration::hours(2), false)
        .await;
    let keys = r.unsettled().await;
    assert_eq!(keys.len(), 1, "the outreach waits: {keys:?}");
    // The customer catches up; then the stream reports later emails.
    r.catch_up().await;
    r.until(contract_start() + Duration::days(16), true).await;
    assert!(
        !r.taken().contains_key(&keys[0]),
        "an outreach went after the customer caught up"
    );
    let Some(SendRecord::Rejected { reason }) = r.store.send_record(&keys[0]).await.unwrap() else {
        panic!(
            "settled as not sent: {:?} {:?}",
            r.store
                .send_record(&keys[0])
                .await
                .unwrap()
                .map(|r| format!("{r:?}").chars().take(300).collect::<String>()),
            keys
        )
    };
    assert!(reason.contains("reached meanwhile"), "{reason}");
    let probes: Vec<_> = r
        .mailer
        .sent()
        .into_iter()
        .filter(|m| m.kind == EmailKind::StreamProbe)
        .collect();
    assert!(
        !probes.is_empty(),
        "no later email went, so a probe showed the stream reporting"
    );
    assert!(probes
        .iter()
        .all(|p| p.to[0].email == milepost_app::settle::PROBE_ADDRESS));
}

#[tokio::test]
async fn an_email_never_taken_three_times_is_left_unknown_not_sent_a_fourth_time() {
    let mut r = run().await;
    r.mailer.leave_unanswered("pat@a1.example", 3);
    r.until(contract_start() + Duration::days(16), true).await;
    assert!(r.outreach_keys().is_empty(), "the outreach never went");
    let followed_up = r.mailer.sent().iter().any(|m| m.kind == EmailKind::FollowUp);
    assert!(
        followed_up,
        "the three unanswered attempts were the outreach's: sent once, then again twice"
    );
    let execution = r
        .runner
        .executions()
        .into_iter()
        .find(|e| e.request.milestone_id == "first_workflow")
        .expect("first_workflow escalated")
        .request
        .execution;
    let key = SendKey::new(format!("{execution}:outreach_email:customer"));
    let Some(SendRecord::Unknown { resends, .. }) = r.store.send_record(&key).await.unwrap() else {
        panic!("left unknown")
    };
    assert_eq!(resends, milepost_app::settle::MAX_RESENDS);
    assert!(r.unsettled().await.is_empty(), "given up: off the list, left unknown");
}

/// The outreach key of `a1`'s first_workflow miss, with a claim on it left
/// by an attempt that stopped between the claim and SES (a Lambda killed
/// mid-send), long before the step runs.
async fn claim_left_mid_send(r: &Run) -> SendKey {
    use milepost_app::keys::{playbook_send, Recipient};
    let m = r
        .store
        .get_milestone(&AccountId::new("a1"), "first_workflow")
        .await
        .unwrap()
        .unwrap();
    let execution = milepost_domain::execution_name(m.account_id(), m.milestone_id(), m.due_at());
    let key = playbook_send(&execution, milepost_domain::Step::OutreachEmail, Recipient::Customer);
    let killed = milepost_app::ports::SendClaim {
        by: "an-attempt-killed-mid-send".into(),
        since: contract_start(),
    };
    assert!(r.store.claim_send(&key, &killed).await.unwrap().is_none());
    key
}

/// Left past its lease, the claim is adopted by the step's retry as of
/// unknown outcome with its email (the chaos run lost such an email: the
/// retry took the stale claim for "may have gone" and sent nothing); SES's
/// events show it never took it, so it is sent, once.
#[tokio::test]
async fn a_send_left_mid_way_is_adopted_and_sent_once_when_the_service_never_took_it() {
    let mut r = run().await;
    let key = claim_left_mid_send(&r).await;
    r.until(contract_start() + Duration::days(16), true).await;
    assert_eq!(r.taken().get(&key), Some(&1), "the outreach went once: {:?}", r.taken());
    assert!(r.taken().values().all(|n| *n == 1), "{:?}", r.taken());
    assert!(matches!(
        r.store.send_record(&key).await.unwrap(),
        Some(SendRecord::Sent { .. })
    ));
    assert!(r.unsettled().await.is_empty(), "nothing left to settle");
    let log = r.store.log_of(&AccountId::new("a1")).await.unwrap();
    assert!(
        log.iter()
            .any(|e| e.key.ends_with(":outreach_email:email:customer") && e.detail.contains("without an answer")),
        "the log says the outreach's outcome was not known: {log:?}"
    );
}

/// The same claim, but SES had taken the email before the attempt stopped:
/// settled as sent from SES's own event, and not sent again.
#[tokio::test]
async fn a_send_left_mid_way_that_the_service_took_is_settled_from_its_receipt() {
    let mut r = run().await;
    let key = claim_left_mid_send(&r).await;
    let receipt = SendReceipt {
        tag: send_tag(&key),
        message_id: "ses-before-the-crash".into(),
        event: "Send".into(),
        mail_at: contract_start(),
    };
    r.store.record_receipt(&receipt).await.unwrap();
    r.until(contract_start() + Duration::days(16), true).await;
    assert_eq!(r.taken().get(&key), None, "not sent again: {:?}", r.taken());
    let Some(SendRecord::Sent { message_id, .. }) = r.store.send_record(&key).await.unwrap() else {
        panic!("settled as sent")
    };
    assert_eq!(message_id, "ses-before-the-crash");
    assert!(r.unsettled().await.is_empty());
}

/// The champion's heads-up before a miss, its claim left mid-send: the next
/// heads-up run adopts it with the email it renders, and the settling sends
/// it once SES's events show it never took it (it was reported as "may not
/// have arrived" and never sent).
#[tokio::test]
async fn a_champion_heads_up_left_mid_way_is_adopted_and_sent_once() {
    use milepost_app::keys::{heads_up_send, Recipient};
    let map = ESCALATION_MAP.replace(
        "    due_days: 10\n",
        "    due_days: 10\n    warn_before_days: 4\n    warn_champion: true\n",
    );
    let mut r = run_with(&map).await;
    let m = r
        .store
        .get_milestone(&AccountId::new("a1"), "first_workflow")
        .await
        .unwrap()
        .unwrap();
    let key = heads_up_send(&m, Recipient::Champion);
    let killed = milepost_app::ports::SendClaim {
        by: "an-attempt-killed-mid-send".into(),
        since: contract_start(),
    };
    assert!(r.store.claim_send(&key, &killed).await.unwrap().is_none());
    let mut t = r.clock.now();
    while t < m.due_at() {
        t += Duration::minutes(30);
        r.clock.set(t);
        r.s.heads_ups().run(&SweepOptions::default()).await.unwrap();
        r.report_taken(t).await;
        r.s.settler().run().await.unwrap();
    }
    assert_eq!(
        r.taken().get(&key),
        Some(&1),
        "the champion's heads-up went once: {:?}",
        r.taken()
    );
    assert!(matches!(
        r.store.send_record(&key).await.unwrap(),
        Some(SendRecord::Sent { .. })
    ));
}

/// An after-the-playbook email whose claim an attempt left mid-send, and
/// the customer catches up before a retry adopts it (the chaos run found
/// such a claim left `sending` for good): the step that finds the customer
/// caught up hands it to the settling without its email; SES's events show
/// it never took it, so it is settled as not needed, and never sent. Taken
/// before the attempt stopped, it is settled as sent instead.
#[tokio::test]
async fn an_after_lapse_email_left_mid_way_is_settled_once_the_customer_catches_up() {
    for taken_before in [false, true] {
        let mut r = run().await;
        let execution = |r: &Run| {
            r.runner
                .executions()
                .into_iter()
                .find(|e| e.request.milestone_id == "first_workflow")
                .expect("first_workflow escalated")
        };
        // Past the lapse, before the untouched task's raise falls due.
        r.until(contract_start() + Duration::days(17), true).await;
        let e = execution(&r);
        assert!(e.request.schedule.lapses_at < r.clock.now(), "lapsed");
        let key = milepost_app::keys::after_lapse_send(&e.request.execution, milepost_domain::Duty::TaskOverSla);
        let stopped = milepost_app::ports::SendClaim {
            by: "an-attempt-stopped-by-a-fault".into(),
            since: r.clock.now() - Duration::minutes(20),
        };
        assert!(r.store.claim_send(&key, &stopped).await.unwrap().is_none());
        if taken_before {
            let receipt = SendReceipt {
                tag: send_tag(&key),
                message_id: "ses-before-the-fault".into(),
                event: "Send".into(),
                mail_at: r.clock.now() - Duration::minutes(19),
            };
            r.store.record_receipt(&receipt).await.unwrap();
        }
        // The customer catches up; the schedule goes on.
        r.catch_up().await;
        r.until(contract_start() + Duration::days(30), true).await;
        assert_eq!(
            execution(&r).status,
            milepost_embedded::runner::ExecutionStatus::Recovered
        );
        assert_eq!(r.taken().get(&key), None, "never sent by us after the fault");
        let record = r.store.send_record(&key).await.unwrap();
        match (taken_before, record) {
            (false, Some(SendRecord::Rejected { reason })) => {
                assert!(reason.contains("no longer needed"), "{reason}")
            }
            (true, Some(SendRecord::Sent { message_id, .. })) => assert_eq!(message_id, "ses-before-the-fault"),
            (_, other) => panic!("taken before: {taken_before}: {other:?}"),
        }
        assert!(r.unsettled().await.is_empty(), "nothing left to settle");
    }
}

/// A resend the settling started and a fault stopped after its claim (the
/// chaos run found one left `sending` for good): past the claim's lease the
/// settling takes it up again, from SES's events alone — settled as sent
/// when SES took it, else left unknown (off the list, the operator alarmed);
/// never sent a further time, never left `sending`.
#[tokio::test]
async fn a_resend_stopped_mid_way_is_settled_from_the_services_events() {
    for taken in [false, true] {
        let mut r = run().await;
        r.mailer.leave_unanswered("pat@a1.example", 1);
        r.until(contract_start() + Duration::days(11) + Duration::hours(2), false)
            .await;
        let keys = r.unsettled().await;
        assert_eq!(keys.len(), 1, "the outreach is of unknown outcome: {keys:?}");
        let key = keys[0].clone();
        let unknown = r.store.send_record(&key).await.unwrap().unwrap();
        // A resend's claim, left by a settling run a fault stopped.
        let stopped = milepost_app::ports::SendClaim {
            by: "a-settling-run-stopped-by-a-fault".into(),
            since: r.clock.now(),
        };
        assert!(r
            .store
            .replace_send(&key, &unknown, &SendRecord::claimed(&stopped))
            .await
            .unwrap());
        if taken {
            let receipt = SendReceipt {
                tag: send_tag(&key),
                message_id: "ses-resent-before-the-fault".into(),
                event: "Send".into(),
                mail_at: r.clock.now(),
            };
            r.store.record_receipt(&receipt).await.unwrap();
        }
        let before = r.taken().get(&key).copied().unwrap_or(0);
        r.until(contract_start() + Duration::days(14), true).await;
        assert_eq!(r.taken().get(&key).copied().unwrap_or(0), before, "not sent again");
        match (taken, r.store.send_record(&key).await.unwrap()) {
            (true, Some(SendRecord::Sent { message_id, .. })) => assert_eq!(message_id, "ses-resent-before-the-fault"),
            (false, Some(SendRecord::Unknown { reason, .. })) => {
                assert_eq!(reason, milepost_app::settle::RESEND_STOPPED)
            }
            (_, other) => panic!("taken: {taken}: {other:?}"),
        }
        assert!(r.unsettled().await.is_empty(), "off the list");
    }
}
