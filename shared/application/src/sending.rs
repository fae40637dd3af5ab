//! Sending an email at most once per key, whoever sends it (a playbook step,
//! a task reminder): the key is claimed in the send ledger before sending and
//! settled after; a failure that sent nothing gives the claim back so a retry
//! sends. SES takes no idempotency key, so an email handed over without an
//! answer is recorded as of unknown outcome, with the email itself, and not
//! sent again blindly: the sweep settles it from SES's own events
//! (`settle::SendSettler`), so nobody gets an email twice and none is lost.

use milepost_domain::{Contact, ContactPolicy, ContactRecord, OutgoingEmail, SendKey, Slot, Timestamp};

use crate::links::address_fingerprint;
use crate::ports::{ContactStore, Mailer, SendClaim, SendError, SendLedger, SendRecord, StoreError, SEND_LEASE};
use crate::writes::retry_on_conflict;

/// What became of one email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendResult {
    Sent,
    /// Sent by an earlier attempt: not sent again.
    AlreadySent,
    /// Permanently rejected (bad or suppressed address): recorded, and the caller goes on.
    Rejected(String),
    /// Named in another email instead (`within` says which).
    IncludedIn(String),
    /// Handed to the provider without an answer (`why`): settled later from
    /// the provider's events (sent, or sent again if it never went).
    Unknown(String),
    /// Claimed by an attempt that stopped while sending it (`why`): it may
    /// or may not have gone. A sender with the email adopts the claim
    /// instead (`settled_or_adopted`: then `Unknown`, settled from the
    /// provider's events); only a sender without it sees this.
    Abandoned(String),
}

impl SendResult {
    /// What a settled (or claimed) record means for the one sending again at
    /// `now`: another attempt's live claim is `HeldByAnother` (that attempt
    /// is sending it; look again later); a claim past `SEND_LEASE`, its
    /// attempt stopped mid-send, is `Abandoned`.
    pub fn from_record(record: SendRecord, now: Timestamp) -> Result<Self, SendFailure> {
        Ok(match record {
            SendRecord::Rejected { reason } => SendResult::Rejected(reason),
            SendRecord::Included { within, .. } => SendResult::IncludedIn(within),
            SendRecord::Sent { .. } => SendResult::AlreadySent,
            SendRecord::Unknown { reason, .. } => SendResult::Unknown(reason),
            SendRecord::Sending { since: Some(since), .. } if now - since < SEND_LEASE => {
                return Err(SendFailure::HeldByAnother {
                    until: since + SEND_LEASE,
                });
            }
            SendRecord::Sending { .. } => SendResult::Abandoned("an attempt stopped while sending it".into()),
        })
    }

    /// How the escalation log says it.
    pub fn describe(&self) -> String {
        match self {
            SendResult::Sent | SendResult::AlreadySent => "sent".to_string(),
            SendResult::Rejected(reason) => format!("rejected ({reason})"),
            SendResult::IncludedIn(within) => format!("not sent on its own: included in {within}"),
            SendResult::Abandoned(why) => {
                format!("may not have gone: {why}; not sent again, so it cannot arrive twice")
            }
            SendResult::Unknown(why) => {
                format!("handed to the mail service without an answer ({why}): settled from its delivery events, sent again only if it never took it")
            }
        }
    }

    /// Whether the email went, or may have: what another email named in it counts on.
    pub fn went_or_may_have(&self) -> bool {
        matches!(
            self,
            SendResult::Sent | SendResult::AlreadySent | SendResult::Unknown(_) | SendResult::Abandoned(_)
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SendFailure {
    /// A passing fault: the claim was given back, try again.
    #[error("transient: {0}")]
    Transient(String),
    /// Another attempt holds the key and is sending it now (an overlapping
    /// run), or stopped mid-way (then its claim is adopted once `until`
    /// passes): nothing was done; look again then.
    #[error("being sent by another attempt")]
    HeldByAnother { until: Timestamp },
    /// Over the provider's sending rate: the claim was given back; send it later.
    #[error("throttled: {0}")]
    Throttled(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn send_once(
    ledger: &dyn SendLedger,
    mailer: &dyn Mailer,
    mail: &OutgoingEmail,
    now: Timestamp,
) -> Result<SendResult, SendFailure> {
    let claim = SendClaim::fresh(now);
    if let Some(existing) = ledger.claim_send(&mail.key, &claim).await? {
        return settled_or_adopted(ledger, mail, existing, now).await;
    }
    send_claimed(ledger, mailer, mail, &claim).await
}

/// Whether `record` is a claim left past `SEND_LEASE` by an attempt that
/// stopped mid-send: not settled, for a sender who has the email to adopt it.
pub fn is_stale_claim(record: &SendRecord, now: Timestamp) -> bool {
    matches!(
        SendResult::from_record(record.clone(), now),
        Ok(SendResult::Abandoned(_))
    )
}

/// The record under `key` as a sender about to render its email reads it:
/// a claim left past its lease counts as none (the send adopts it).
pub async fn decided_send(
    ledger: &dyn SendLedger,
    key: &SendKey,
    now: Timestamp,
) -> Result<Option<SendRecord>, StoreError> {
    Ok(ledger.send_record(key).await?.filter(|r| !is_stale_claim(r, now)))
}

/// What `existing`, found under `mail`'s key, means for its sender at `now`
/// (`SendResult::from_record`), except that a claim an attempt left past its
/// lease is adopted: recorded as of unknown outcome with `mail` (the same
/// email, rendered again) and listed, so the sweep settles it from SES's
/// events — sent if SES took it then, sent again only on proof it never
/// did — instead of the email being lost when that attempt sent nothing.
pub async fn settled_or_adopted(
    ledger: &dyn SendLedger,
    mail: &OutgoingEmail,
    existing: SendRecord,
    now: Timestamp,
) -> Result<SendResult, SendFailure> {
    if !is_stale_claim(&existing, now) {
        return SendResult::from_record(existing, now);
    }
    let reason = "an attempt stopped while sending it".to_string();
    // Unknown from now: SES's stream must pass this moment (later than any
    // send of the stopped attempt) before it is judged never taken, and the
    // day the sweep tries to settle it starts now.
    let unknown = SendRecord::Unknown {
        reason: reason.clone(),
        since: Some(now),
        resends: 0,
        email: Some(Box::new(mail.clone())),
    };
    if ledger.replace_send(&mail.key, &existing, &unknown).await? {
        // Written again to list it: only this attempt holds it now.
        ledger.settle_send(&mail.key, &unknown).await?;
        tracing::info!(key = %mail.key, kind = mail.kind.as_str(), "a send left mid-way adopted; to be settled from the mail service's events");
        return Ok(SendResult::Unknown(reason));
    }
    // Adopted or settled by someone else meanwhile: as it stands now.
    match ledger.send_record(&mail.key).await? {
        Some(record) => SendResult::from_record(record, now),
        None => Err(SendFailure::Transient(
            "the send record changed while adopting it".into(),
        )),
    }
}

/// Sends an email whose key `claim` holds (`SendLedger::claim_send`
/// answered `None`), and settles the claim as `send_once` does: for a sender
/// that must hold the key before it decides what the email says.
pub async fn send_claimed(
    ledger: &dyn SendLedger,
    mailer: &dyn Mailer,
    mail: &OutgoingEmail,
    claim: &SendClaim,
) -> Result<SendResult, SendFailure> {
    match mailer.send(mail).await {
        Ok(message_id) => {
            ledger
                .settle_send(
                    &mail.key,
                    &SendRecord::Sent {
                        subject: thread_subject(mail),
                        message_id,
                    },
                )
                .await?;
            archive(ledger, mail).await;
            Ok(SendResult::Sent)
        }
        Err(SendError::Transient(reason)) => {
            ledger.release_send(&mail.key, claim).await?;
            Err(SendFailure::Transient(reason))
        }
        Err(SendError::Throttled(reason)) => {
            ledger.release_send(&mail.key, claim).await?;
            Err(SendFailure::Throttled(reason))
        }
        Err(SendError::Unknown(reason)) => {
            let record = SendRecord::Unknown {
                reason: reason.clone(),
                since: Some(claim.since),
                resends: 0,
                email: Some(Box::new(mail.clone())),
            };
            ledger.settle_send(&mail.key, &record).await?;
            tracing::info!(key = %mail.key, kind = mail.kind.as_str(), "email outcome not known yet; to be settled from the mail service's events");
            Ok(SendResult::Unknown(reason))
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

/// The `milepost-send` tag of the email under `key`, which the mail
/// provider's events carry back: the first 128 bits of the key's SHA-256,
/// in hex (tag values allow letters, digits, `_` and `-`; the key names the
/// account, the tag does not).
pub fn send_tag(key: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(key.as_bytes())[..16])
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
    let fingerprint = address_fingerprint(to.email.as_str());
    retry_on_conflict(
        || "a contact's record".to_string(),
        || async {
            let mut contact = store
                .contact(&fingerprint)
                .await?
                .unwrap_or_else(|| ContactRecord::new(to.email.clone()));
            contact.email = to.email.clone();
            let slot = contact.claim(key, now, policy, tz);
            if slot == Slot::Now {
                store.save_contact(&fingerprint, &contact).await?;
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
    key: impl Fn(&T) -> SendKey,
    claim: &SendClaim,
) -> Result<Vec<T>, StoreError> {
    let mut claimed = Vec::new();
    for c in candidates {
        if ledger.claim_send(&key(&c), claim).await?.is_none() {
            claimed.push(c);
        }
    }
    Ok(claimed)
}

/// The subject a send record keeps: an outreach's, which its follow-up
/// answers ("Re: ..."); no other email is replied to.
pub fn thread_subject(mail: &OutgoingEmail) -> Option<String> {
    (mail.kind == milepost_domain::EmailKind::Outreach).then(|| mail.subject.clone())
}

/// After the email that names them (`in_email`): the claimed `keys` are
/// settled as included `within` it when it went (or may have), or given
/// back so each sends its own.
pub async fn settle_named(
    ledger: &dyn SendLedger,
    keys: impl IntoIterator<Item = SendKey>,
    within: &str,
    in_email: &SendKey,
    sent: Option<&SendResult>,
    claim: &SendClaim,
) -> Result<(), StoreError> {
    let went = sent.is_some_and(SendResult::went_or_may_have);
    for key in keys {
        if went {
            let record = SendRecord::Included {
                in_email: Some(in_email.clone()),
                within: within.to_string(),
            };
            ledger.settle_send(&key, &record).await?;
        } else {
            ledger.release_send(&key, claim).await?;
        }
    }
    Ok(())
}

/// Keeps `mail`, just sent, for the pages of the accounts it is about. It
/// went either way: a store that fails here costs the copy, not the send.
pub async fn archive(ledger: &dyn SendLedger, mail: &OutgoingEmail) {
    let Some(sent) = milepost_domain::SentEmail::of(mail) else {
        return;
    };
    if let Err(e) = ledger.archive_email(&sent, &mail.html).await {
        tracing::warn!(error = %crate::ErrorChain(&e), kind = mail.kind.as_str(), "a sent email's copy was not kept");
    }
}
