//! Outgoing email as values: what a playbook step hands to a mailer.

use serde::{Deserialize, Serialize};

use crate::{AccountId, Contact, Timestamp};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailKind {
    /// Day 1, touch 1: to the customer's champion.
    Outreach,
    /// Day 1, touch 3: guides and 1:1 help, to the customer's champion.
    FollowUp,
    /// Day 3: the CSM's task.
    CsmTask,
    /// Day 5: to the CS leader.
    Leadership,
    /// Day 5: to the customer's executive sponsor, where the map says so.
    ExecSponsor,
    /// A weekday morning: to a milestone's owner, the misses the map's
    /// thresholds kept from the CSM or leadership stage: their held-back
    /// list (stored as `owner_digest`, its name in earlier versions).
    #[serde(rename = "owner_digest")]
    HeldBackList,
    /// Before a miss: to the milestone's owner, that it is behind pace.
    HeadsUp,
    /// Before a miss: to the customer's champion, where the map says so.
    HeadsUpChampion,
    /// Monday morning: to CS leadership, the week in figures.
    WeeklyDigest,
    /// After the playbook: to a task's owner, that nobody acted on it within the map's SLA.
    TaskOverSla,
    /// After the playbook: to the CS leader, a task still untouched one SLA later.
    TaskRaisedToLead,
    /// After the playbook: to the owner, a lapsed miss days after the lapse, with what changed.
    LapsedReminder,
    /// When an expansion milestone is reached: to its owner (the AE, ...),
    /// the opportunity it opened and the play.
    Opportunity,
    /// To the mail service's own simulator, delivered to nobody: its events
    /// show the service's event stream is reporting (`settle`).
    StreamProbe,
}

impl EmailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EmailKind::Outreach => "outreach",
            EmailKind::FollowUp => "follow-up",
            EmailKind::CsmTask => "csm-task",
            EmailKind::Leadership => "leadership",
            EmailKind::ExecSponsor => "exec-sponsor",
            EmailKind::HeldBackList => "owner-digest",
            EmailKind::HeadsUp => "heads-up",
            EmailKind::HeadsUpChampion => "heads-up-champion",
            EmailKind::WeeklyDigest => "weekly-digest",
            EmailKind::TaskOverSla => "task-over-sla",
            EmailKind::TaskRaisedToLead => "task-raised-to-lead",
            EmailKind::LapsedReminder => "lapsed-reminder",
            EmailKind::Opportunity => "opportunity",
            EmailKind::StreamProbe => "stream-probe",
        }
    }

    /// How people call it, for logs and escalation history.
    pub fn label(self) -> &'static str {
        match self {
            EmailKind::Outreach => "outreach",
            EmailKind::FollowUp => "follow-up",
            EmailKind::CsmTask => "CSM task",
            EmailKind::Leadership => "leadership",
            EmailKind::ExecSponsor => "executive sponsor",
            EmailKind::HeldBackList => "owner's digest",
            EmailKind::HeadsUp => "heads-up",
            EmailKind::HeadsUpChampion => "customer heads-up",
            EmailKind::WeeklyDigest => "weekly digest",
            EmailKind::TaskOverSla => "task over its SLA",
            EmailKind::TaskRaisedToLead => "task raised to the CS leader",
            EmailKind::LapsedReminder => "reminder after the playbook",
            EmailKind::Opportunity => "expansion opportunity",
            EmailKind::StreamProbe => "delivery-events check",
        }
    }

    /// Customer-facing mail carries a `List-Unsubscribe` header.
    pub fn customer_facing(self) -> bool {
        matches!(
            self,
            EmailKind::Outreach | EmailKind::FollowUp | EmailKind::ExecSponsor | EmailKind::HeadsUpChampion
        )
    }
}

/// The send ledger's key of one email: the same key is never sent twice.
/// New keys are built from typed parts by `milepost_app::keys` (a recipient
/// is never a loose string there); its text is the stored form, and a key
/// read back from the ledger is made again with `SendKey::new`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SendKey(String);

impl SendKey {
    pub fn new(text: impl Into<String>) -> Self {
        SendKey(text.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for SendKey {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SendKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Stored whole only when its send's outcome is unknown, so it can be sent
/// again exactly as it was if the mail service provably never took it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingEmail {
    /// Idempotency key: the same key is never sent twice.
    pub key: SendKey,
    pub kind: EmailKind,
    pub account_id: AccountId,
    pub milestone_id: String,
    pub from: Contact,
    pub to: Vec<Contact>,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Where replies go: customer mail's replies reach the milestone's owner,
    /// not the shared sender address.
    pub reply_to: Option<Contact>,
    pub list_unsubscribe: Option<String>,
    pub date: Timestamp,
    /// Every milestone the email names, its own first (a combined outreach
    /// names the account's other misses, a list every miss on it); none for
    /// an email about no milestone (the weekly digest). Machine-readable in
    /// its headers (`account_header`, `milestone_header`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<MilestoneRef>,
    /// The email this one answers in its thread (a follow-up, its outreach):
    /// each mailer makes `In-Reply-To` and `References` of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<ThreadRef>,
}

/// An email sent earlier, as a reply refers to it: its send key (from which
/// the outbox made its Message-ID) and the provider's message id, when the
/// provider answered (SES makes the Message-ID of it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadRef {
    pub key: SendKey,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

/// A milestone of an account, as an email names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MilestoneRef {
    pub account_id: AccountId,
    pub milestone_id: String,
}

impl MilestoneRef {
    /// A tracked milestone, by its account and id.
    pub fn of(m: &crate::TrackedMilestone) -> Self {
        MilestoneRef::new(m.account_id(), m.milestone_id())
    }

    pub fn new(account_id: &AccountId, milestone_id: &str) -> Self {
        MilestoneRef {
            account_id: account_id.clone(),
            milestone_id: milestone_id.to_string(),
        }
    }
}

impl OutgoingEmail {
    /// `X-Milepost-Account`: the accounts it names, once each, in order.
    pub fn account_header(&self) -> Option<String> {
        let mut accounts: Vec<&str> = Vec::new();
        for n in &self.names {
            if !accounts.contains(&n.account_id.as_str()) {
                accounts.push(n.account_id.as_str());
            }
        }
        (!accounts.is_empty()).then(|| accounts.join(", "))
    }

    /// `X-Milepost-Milestone`: the milestones it names, in order; each as
    /// `account/milestone` when the email names more than one account.
    pub fn milestone_header(&self) -> Option<String> {
        let one_account = self.names.iter().all(|n| n.account_id == self.names[0].account_id);
        let ids: Vec<String> = self
            .names
            .iter()
            .map(|n| {
                if one_account {
                    n.milestone_id.clone()
                } else {
                    format!("{}/{}", n.account_id, n.milestone_id)
                }
            })
            .collect();
        (!ids.is_empty()).then(|| ids.join(", "))
    }
}

/// A sent email as the pages of the accounts it is about list it; its HTML
/// is kept beside it (`SendLedger::archive_email`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SentEmail {
    pub key: String,
    pub kind: EmailKind,
    pub subject: String,
    /// Its recipients, by name.
    pub to: Vec<String>,
    pub date: Timestamp,
    /// The accounts it is about, its own first (a list names several).
    pub accounts: Vec<AccountId>,
}

impl SentEmail {
    /// `mail`, once sent; none for an email about no account's milestone
    /// (the weekly digest, a probe of the mail service's events).
    pub fn of(mail: &OutgoingEmail) -> Option<SentEmail> {
        if mail.names.is_empty() {
            return None;
        }
        let mut accounts = vec![mail.account_id.clone()];
        for n in &mail.names {
            if !accounts.contains(&n.account_id) {
                accounts.push(n.account_id.clone());
            }
        }
        Some(SentEmail {
            key: mail.key.as_str().to_string(),
            kind: mail.kind,
            subject: mail.subject.clone(),
            to: mail.to.iter().map(|c| c.name.clone()).collect(),
            date: mail.date,
            accounts,
        })
    }
}
