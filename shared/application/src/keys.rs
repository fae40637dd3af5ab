//! The idempotence keys an email and its log line are found by, built from
//! typed parts: a recipient is a `Recipient`, never a loose string, so a
//! typo cannot fork a key and send an email twice. Their stored form is
//! fixed: items written by earlier versions are found by these keys (the
//! tests below pin each form).

use milepost_domain::{Duty, EmailAddress, SendKey, Step, Timestamp, TrackedMilestone};

use crate::links::address_fingerprint;

/// Whom an email goes to, as the keys name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Recipient {
    /// The customer's champion, in the playbook's customer emails.
    Customer,
    /// The account's owner for the milestone (the CSM task).
    Csm,
    /// CS leadership.
    Leader,
    /// The customer's executive sponsor.
    Sponsor,
    /// The milestone's owner, in a heads-up.
    Owner,
    /// The customer's champion, in a heads-up.
    Champion,
}

impl Recipient {
    pub fn as_str(self) -> &'static str {
        match self {
            Recipient::Customer => "customer",
            Recipient::Csm => "csm",
            Recipient::Leader => "leader",
            Recipient::Sponsor => "sponsor",
            Recipient::Owner => "owner",
            Recipient::Champion => "champion",
        }
    }
}

impl std::fmt::Display for Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The send ledger's key of `step`'s email to `recipient` in `execution`.
pub fn playbook_send(execution: &str, step: Step, recipient: Recipient) -> SendKey {
    SendKey::new(format!("{execution}:{}:{recipient}", step.as_str()))
}

/// The send ledger's key of the email of `duty` after `execution`'s lapse.
pub fn after_lapse_send(execution: &str, duty: Duty) -> SendKey {
    SendKey::new(format!("{execution}:{}:{}", Step::AfterLapse.as_str(), duty.key_part()))
}

/// The send ledger's key of the heads-up to `recipient` about `m` (per due date).
pub fn heads_up_send(m: &TrackedMilestone, recipient: Recipient) -> SendKey {
    SendKey::new(format!(
        "heads-up:{}:{}:{}:{recipient}",
        m.account_id(),
        m.milestone_id(),
        m.due_at().timestamp()
    ))
}

/// The send ledger's key of the email telling the owner of `m`'s
/// opportunity (per due date: one per contract term it is armed for).
pub fn opportunity_send(m: &TrackedMilestone) -> SendKey {
    SendKey::new(format!(
        "opportunity:{}:{}:{}",
        m.account_id(),
        m.milestone_id(),
        m.due_at().timestamp()
    ))
}

/// The send ledger's key of `task`'s reminder when its snooze ends at `until`.
pub fn reminder_send(task_id: &str, until: Timestamp) -> SendKey {
    SendKey::new(format!("{task_id}:reminder:{}", until.timestamp()))
}

/// The send ledger's key of the held-back list to `owner` of `day` (an address
/// fingerprint: the key names no one).
pub fn held_back_list_send(owner: &EmailAddress, day: impl std::fmt::Display) -> SendKey {
    SendKey::new(format!("digest:{}:{day}", address_fingerprint(owner.as_str())))
}

/// The send ledger's key of the weekly digest to `recipient` sent on `sent_on`.
pub fn weekly_digest_send(recipient: &EmailAddress, sent_on: impl std::fmt::Display) -> SendKey {
    SendKey::new(format!(
        "weekly-digest:{}:{sent_on}",
        address_fingerprint(recipient.as_str())
    ))
}

/// The send ledger's key of the probe sent to the mail service's simulator
/// in time slot `slot` (one a slot, whatever the number of sweeps).
pub fn stream_probe(slot: i64) -> SendKey {
    SendKey::new(format!("stream-probe:{slot}"))
}

/// What a playbook step's log line records: the last part of its key
/// (`<execution>:<step>:<what>`), which makes each thing a step does
/// logged once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepLog {
    /// What became of the step's email to the recipient.
    Email(Recipient),
    /// The step's email to the recipient not sent: they unsubscribed.
    Unsubscribed(Recipient),
    /// The step's email to the recipient held by the contact policy until then.
    Deferred(Recipient, Timestamp),
    /// Day 1's in-app message requested.
    InApp,
    /// Day 3's task opened.
    TaskOpened,
    /// The playbook ended without a recovery.
    Lapsed,
    /// Leadership not told of a tech-touch miss (in its held-back list).
    TechTouch,
    /// The stage held back under the map's thresholds, for the held-back list.
    HeldBack,
    /// A day-1 touch not made: the milestone is vendor-side.
    VendorSide,
    /// The step's email to the recipient not sent: the contact policy would
    /// have held it past the latest it may go (a follow-up after day 3).
    TooLate(Recipient),
    /// A duty after the lapse done (its email sent, or its outcome as the log's detail says).
    Duty(Duty),
    /// A duty after the lapse not needed (the detail says why): never done later.
    DutyNotNeeded(Duty),
}

impl StepLog {
    pub fn key_part(self) -> String {
        match self {
            StepLog::Email(recipient) => format!("email:{recipient}"),
            StepLog::Unsubscribed(recipient) => format!("unsubscribed:{recipient}"),
            StepLog::Deferred(recipient, at) => format!("deferred:{recipient}:{}", at.timestamp()),
            StepLog::InApp => "in_app".into(),
            StepLog::TaskOpened => "task_opened".into(),
            StepLog::Lapsed => "lapsed".into(),
            StepLog::TechTouch => "tech_touch".into(),
            StepLog::HeldBack => "held_back".into(),
            StepLog::VendorSide => "vendor_side".into(),
            StepLog::TooLate(recipient) => format!("too_late:{recipient}"),
            StepLog::Duty(duty) => duty.key_part(),
            StepLog::DutyNotNeeded(duty) => format!("{}:not_needed", duty.key_part()),
        }
    }
}

/// What a heads-up's log line records, the part of its key after
/// `<account>:<milestone>:heads_up:`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadsUpLog {
    /// What became of the heads-up to the recipient.
    Told(Recipient),
    /// The champion's heads-up held by the contact policy until then.
    ChampionDeferred(Timestamp),
    /// What became of the email telling the owner of an opportunity.
    Opportunity,
}

impl HeadsUpLog {
    pub fn key_part(self) -> String {
        match self {
            HeadsUpLog::Told(recipient) => recipient.to_string(),
            HeadsUpLog::ChampionDeferred(at) => format!("{}:deferred:{}", Recipient::Champion, at.timestamp()),
            HeadsUpLog::Opportunity => "opportunity".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// The keys as earlier versions wrote them: a change here would make
    /// stored sends unknown to the new code, and their emails go again.
    #[test]
    fn every_key_keeps_its_stored_form() {
        let exec = "acme-first_workflow-1767225600";
        for (step, recipient, stored) in [
            (Step::OutreachEmail, Recipient::Customer, "outreach_email:customer"),
            (Step::FollowUpEmail, Recipient::Customer, "follow_up_email:customer"),
            (Step::CsmTask, Recipient::Csm, "csm_task:csm"),
            (Step::Leadership, Recipient::Leader, "leadership:leader"),
            (Step::Leadership, Recipient::Sponsor, "leadership:sponsor"),
        ] {
            assert_eq!(
                playbook_send(exec, step, recipient).as_str(),
                format!("{exec}:{stored}")
            );
        }
        let at = chrono::Utc.with_ymd_and_hms(2026, 1, 2, 9, 0, 0).unwrap();
        for (what, stored) in [
            (StepLog::Email(Recipient::Leader), "email:leader"),
            (StepLog::Unsubscribed(Recipient::Sponsor), "unsubscribed:sponsor"),
            (
                StepLog::Deferred(Recipient::Customer, at),
                "deferred:customer:1767344400",
            ),
            (StepLog::InApp, "in_app"),
            (StepLog::TaskOpened, "task_opened"),
            (StepLog::Lapsed, "lapsed"),
            (StepLog::TechTouch, "tech_touch"),
            (StepLog::HeldBack, "held_back"),
            (StepLog::Duty(Duty::TaskOverSla), "task_over_sla"),
            (StepLog::DutyNotNeeded(Duty::TaskToLead), "task_to_lead:not_needed"),
            (StepLog::Duty(Duty::LapsedReminder { days: 14 }), "reminder_14d"),
        ] {
            assert_eq!(what.key_part(), stored);
        }
        assert_eq!(HeadsUpLog::Told(Recipient::Owner).key_part(), "owner");
        assert_eq!(
            HeadsUpLog::ChampionDeferred(at).key_part(),
            "champion:deferred:1767344400"
        );
        let m = crate::email::tests::milestone(&crate::email::tests::account("Acme", "acme"));
        assert_eq!(m.due_at().timestamp(), 1_770_163_200, "30 days after 5 January 2026");
        assert_eq!(
            heads_up_send(&m, Recipient::Champion).as_str(),
            "heads-up:acme:first_workflow:1770163200:champion"
        );
        assert_eq!(
            heads_up_send(&m, Recipient::Owner).as_str(),
            "heads-up:acme:first_workflow:1770163200:owner"
        );
        assert_eq!(
            opportunity_send(&m).as_str(),
            "opportunity:acme:first_workflow:1770163200"
        );
        assert_eq!(HeadsUpLog::Opportunity.key_part(), "opportunity");
        assert_eq!(stream_probe(588_000).as_str(), "stream-probe:588000");
        assert_eq!(reminder_send("t-1", at).as_str(), "t-1:reminder:1767344400");
        assert_eq!(
            after_lapse_send(exec, Duty::LapsedReminder { days: 30 }).as_str(),
            "acme-first_workflow-1767225600:after_lapse:reminder_30d"
        );
        let owner = crate::email::tests::account("Acme", "acme").csm.email;
        let fingerprint = address_fingerprint(owner.as_str());
        assert_eq!(
            held_back_list_send(&owner, "2026-01-02").as_str(),
            format!("digest:{fingerprint}:2026-01-02")
        );
        assert_eq!(
            weekly_digest_send(&owner, "2026-01-05").as_str(),
            format!("weekly-digest:{fingerprint}:2026-01-05")
        );
    }
}
