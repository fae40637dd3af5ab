//! Sending an email at most once per key, whoever sends it (a playbook step,
//! a task reminder): the key is claimed in the send ledger before sending and
//! settled after; a transient failure gives the claim back so a retry sends.

use milepost_domain::{Contact, ContactPolicy, ContactRecord, OutgoingEmail, Slot, Timestamp};

use crate::links::recipient_digest;
use crate::ports::{ContactStore, Mailer, SendError, SendLedger, SendRecord, StoreError};
use crate::writes::retry_on_conflict;

/// What became of one email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendResult {
    Sent,
    /// Sent (or claimed) by an earlier attempt: not sent again.
    AlreadySent,
    /// Permanently rejected (bad or suppressed address): recorded, and the caller goes on.
    Rejected(String),
    /// Named in another email instead (`within` says which).
    IncludedIn(String),
}

impl SendResult {
    /// What a settled (or claimed) record means for the one sending again.
    pub fn from_record(record: SendRecord) -> Self {
        match record {
            SendRecord::Rejected { reason } => SendResult::Rejected(reason),
            SendRecord::Included { within } => SendResult::IncludedIn(within),
            SendRecord::Sending | SendRecord::Sent { .. } => SendResult::AlreadySent,
        }
    }

    /// How the escalation log says it.
    pub fn describe(&self) -> String {
        match self {
            SendResult::Sent | SendResult::AlreadySent => "sent".to_string(),
            SendResult::Rejected(reason) => format!("rejected ({reason})"),
            SendResult::IncludedIn(within) => format!("not sent on its own: included in {within}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SendFailure {
    /// Throttling or a passing fault: the claim was given back, try again.
    #[error("transient: {0}")]
    Transient(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn send_once(
    ledger: &dyn SendLedger,
    mailer: &dyn Mailer,
    mail: &OutgoingEmail,
) -> Result<SendResult, SendFailure> {
    if let Some(existing) = ledger.claim_send(&mail.key).await? {
        return Ok(SendResult::from_record(existing));
    }
    send_claimed(ledger, mailer, mail).await
}

/// Sends an email whose key the caller has claimed (`SendLedger::claim_send`
/// answered `None`), and settles the claim as `send_once` does: for a sender
/// that must hold the key before it decides what the email says.
pub async fn send_claimed(
    ledger: &dyn SendLedger,
    mailer: &dyn Mailer,
    mail: &OutgoingEmail,
) -> Result<SendResult, SendFailure> {
    match mailer.send(mail).await {
        Ok(message_id) => {
            ledger.settle_send(&mail.key, &SendRecord::Sent { message_id }).await?;
            Ok(SendResult::Sent)
        }
        Err(SendError::Transient(reason)) => {
            ledger.release_send(&mail.key).await?;
            Err(SendFailure::Transient(reason))
        }
        Err(SendError::Permanent(reason)) => {
            ledger
                .settle_send(&mail.key, &SendRecord::Rejected { reason: reason.clone() })
                .await?;
            tracing::warn!(key = %mail.key, kind = mail.kind.as_str(), "email rejected permanently");
            Ok(SendResult::Rejected(reason))
        }
    }
}

/// Claims a slot on `to`'s contact record for the customer email `key`
/// under `policy` in `tz`: `Slot::Now` is recorded (on the version read,
/// again on a lost race), so a retry of the same send is not held by its
/// own slot; `Slot::Later` changes nothing.
pub async fn claim_contact_slot(
    store: &dyn ContactStore,
    to: &Contact,
    key: &str,
    policy: &ContactPolicy,
    tz: chrono_tz::Tz,
    now: Timestamp,
) -> Result<Slot, StoreError> {
    let digest = recipient_digest(to.email.as_str());
    retry_on_conflict(
        || "a contact's record".to_string(),
        || async {
            let mut contact = store
                .contact(&digest)
                .await?
                .unwrap_or_else(|| ContactRecord::new(to.email.clone()));
            contact.email = to.email.clone();
            let slot = contact.claim(key, now, policy, tz);
            if slot == Slot::Now {
                store.save_contact(&digest, &contact).await?;
            }
            Ok(slot)
        },
    )
    .await
}

/// Claims the send keys of `candidates` (by `key`) for one email that will
/// name them instead of each sending its own; returns those claimed (the
/// others went, or are going, on their own). Settle them with `settle_named`.
pub async fn claim_named<T>(
    ledger: &dyn SendLedger,
    candidates: Vec<T>,
    key: impl Fn(&T) -> String,
) -> Result<Vec<T>, StoreError> {
    let mut claimed = Vec::new();
    for c in candidates {
        if ledger.claim_send(&key(&c)).await?.is_none() {
            claimed.push(c);
        }
    }
    Ok(claimed)
}

/// After the email that names them: the claimed `keys` are settled as
/// included `within` it when it went, or given back so each sends its own.
pub async fn settle_named(
    ledger: &dyn SendLedger,
    keys: impl IntoIterator<Item = String>,
    within: &str,
    sent: Option<&SendResult>,
) -> Result<(), StoreError> {
    let went = matches!(sent, Some(SendResult::Sent | SendResult::AlreadySent));
    for key in keys {
        if went {
            let record = SendRecord::Included {
                within: within.to_string(),
            };
            ledger.settle_send(&key, &record).await?;
        } else {
            ledger.release_send(&key).await?;
        }
    }
    Ok(())
}
