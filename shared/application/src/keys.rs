//! The idempotence keys an email and its log line are found by, built from
//! typed parts: a recipient is a `Recipient`, never a loose string, so a
//! typo cannot fork a key and send an email twice. Their stored form is
//! fixed: items written by earlier versions are found by these keys (the
//! tests below pin each form).

use milepost_domain::{Step, Timestamp, TrackedMilestone};

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
pub fn playbook_send(execution: &str, step: Step, recipient: Recipient) -> String {
    format!("{execution}:{}:{recipient}", step.as_str())
}

/// The send ledger's key of the heads-up to `recipient` about `m` (per due date).
pub fn heads_up_send(m: &TrackedMilestone, recipient: Recipient) -> String {
    format!(
        "heads-up:{}:{}:{}:{recipient}",
        m.account_id,
        m.milestone_id,
        m.due_at.timestamp()
    )
}

/// What a playbook step's log line records, the last part of its key
/// (`<execution>:<step>:<what>`).
pub mod playbook_log {
    use super::*;

    /// What became of the step's email to `recipient`.
    pub fn email(recipient: Recipient) -> String {
        format!("email:{recipient}")
    }

    /// The step's email to `recipient` not sent: they unsubscribed.
    pub fn unsubscribed(recipient: Recipient) -> String {
        format!("unsubscribed:{recipient}")
    }

    /// The step's email to `recipient` held by the contact policy until `at`.
    pub fn deferred(recipient: Recipient, at: Timestamp) -> String {
        format!("deferred:{recipient}:{}", at.timestamp())
    }
}

/// What a heads-up's log line records, the part of its key after
/// `<account>:<milestone>:heads_up:`.
pub mod heads_up_log {
    use super::*;

    /// What became of the heads-up to `recipient`.
    pub fn told(recipient: Recipient) -> String {
        recipient.to_string()
    }

    /// The champion's heads-up held by the contact policy until `at`.
    pub fn champion_deferred(at: Timestamp) -> String {
        format!("{}:deferred:{}", Recipient::Champion, at.timestamp())
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
            assert_eq!(playbook_send(exec, step, recipient), format!("{exec}:{stored}"));
        }
        let at = chrono::Utc.with_ymd_and_hms(2026, 1, 2, 9, 0, 0).unwrap();
        assert_eq!(playbook_log::email(Recipient::Leader), "email:leader");
        assert_eq!(playbook_log::unsubscribed(Recipient::Sponsor), "unsubscribed:sponsor");
        assert_eq!(
            playbook_log::deferred(Recipient::Customer, at),
            "deferred:customer:1767344400"
        );
        assert_eq!(heads_up_log::told(Recipient::Owner), "owner");
        assert_eq!(heads_up_log::champion_deferred(at), "champion:deferred:1767344400");
        let mut m = crate::email::tests::milestone(&crate::email::tests::account("Acme", "acme"));
        (m.milestone_id, m.due_at) = ("first_workflow".to_string(), at);
        assert_eq!(
            heads_up_send(&m, Recipient::Champion),
            "heads-up:acme:first_workflow:1767344400:champion"
        );
        assert_eq!(
            heads_up_send(&m, Recipient::Owner),
            "heads-up:acme:first_workflow:1767344400:owner"
        );
    }
}
