//! Sending an email at most once per key, whoever sends it (a playbook step,
//! a task reminder): the key is claimed in the send ledger before sending and
//! settled after; a transient failure gives the claim back so a retry sends.

use milepost_domain::OutgoingEmail;

use crate::ports::{Mailer, SendError, SendLedger, SendRecord, StoreError};

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
