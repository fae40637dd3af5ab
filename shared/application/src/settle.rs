//! Settling the emails whose outcome is unknown: handed to SES without an
//! answer (a reset connection, a timeout), so they may or may not have gone.
//! SES takes no idempotency key, so sending again blindly could deliver one
//! twice; instead the sweep asks SES's own event stream (Send, Delivery,
//! Bounce, ... events tagged `milepost-send`, recorded as `SendReceipt`s):
//!
//! - a receipt for the email's tag: SES took it; the send is recorded as
//!   sent (or rejected, for Reject and Rendering Failure);
//! - no receipt, while the stream has reported emails SES took at least
//!   `STREAM_LAG` after this one: SES never took it; it is sent again,
//!   exactly as it was (unless a customer email became moot meanwhile: the
//!   milestone reached, the account paused, the recipient unsubscribed), and
//!   again only if SES provably never took that either, `MAX_RESENDS` times
//!   at most: every email reaches its reader at most once;
//! - neither by `SETTLE_LIMIT`, or never taken after the last resend: the
//!   outcome stays unknown, and the log line that `EmailOutcomeUnknownAlarm`
//!   counts tells the operator.
//!
//! SES publishes its events "on a best-effort basis": a missing receipt is
//! read as proof only once later emails' receipts have arrived, which a lost
//! or stalled stream does not give. When no later email is going out, the
//! settler sends one itself: a probe to SES's mailbox simulator, which SES
//! takes and reports like any email and delivers to nobody.

use std::sync::Arc;

use chrono::Duration;
use milepost_domain::{AccountId, Contact, EmailKind, OutgoingEmail, SendKey, Timestamp};

use crate::keys;
use crate::ports::{Clock, Mailer, SendClaim, SendError, SendRecord, SettleStore, StoreError};
use crate::sending::send_tag;

/// How far past an email the stream must have reported before its silence
/// about the email means SES never took it: SES's events come within
/// seconds to a few minutes, and out of order.
pub const STREAM_LAG: Duration = Duration::minutes(15);

/// How long an unknown outcome waits for the stream before it is left
/// unknown and the operator alarmed.
pub const SETTLE_LIMIT: Duration = Duration::hours(24);

/// How many times an email SES never took is sent again.
pub const MAX_RESENDS: u32 = 2;

/// The reason of an email handed over, without its email, by a step that
/// found it no longer needed while an attempt's abandoned claim held it:
/// settled as sent if the mail service took it, else withheld.
pub const HANDED_OVER_NO_LONGER_NEEDED: &str =
    "an attempt stopped while sending it; the customer caught up before it was sent again";

/// The reason of a resend found stopped mid-way past its claim's lease.
pub const RESEND_STOPPED: &str = "a resend stopped while sending it";

/// Unknown sends looked at per sweep.
const PER_RUN: usize = 100;

/// Where a probe of the event stream goes: SES's mailbox simulator, which
/// accepts and reports an email like any other and delivers it to nobody
/// (it counts toward the sending rate, not the daily quota).
pub const PROBE_ADDRESS: &str = "success@simulator.amazonses.com";

/// What one run settled.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SettleReport {
    /// SES recorded them: settled as sent (or as rejected).
    pub confirmed: usize,
    /// SES provably never took them: sent again.
    pub resent: usize,
    /// SES never took them and a customer email was moot by then: not sent.
    pub withheld: usize,
    /// Past `SETTLE_LIMIT`, or never taken after the last resend: left unknown, alarmed.
    pub given_up: usize,
    /// Still waiting for the stream.
    pub waiting: usize,
    /// Probes sent to see whether the stream reports.
    pub probes: usize,
}

/// The settling use case, run by the sweep.
#[derive(Clone)]
pub struct SendSettler {
    pub store: Arc<dyn SettleStore>,
    pub mailer: Arc<dyn Mailer>,
    pub clock: Arc<dyn Clock>,
    /// Who probes come from: the configured sender.
    pub sender: Contact,
}

impl SendSettler {
    pub async fn run(&self) -> Result<SettleReport, StoreError> {
        let mut report = SettleReport::default();
        let now = self.clock.now();
        let keys = self.store.unsettled_sends(PER_RUN).await?;
        if keys.is_empty() {
            return Ok(report);
        }
        let watermark = self.store.stream_watermark().await?;
        let mut unproven = false;
        for key in keys {
            let span = tracing::info_span!("settle_send", key = %key);
            let _entered = span.enter();
            let count = match self.settle(&key, watermark, now).await? {
                Settled::Waiting { stream_behind } => {
                    unproven |= stream_behind;
                    report.waiting += 1;
                    continue;
                }
                Settled::Confirmed => &mut report.confirmed,
                Settled::Elsewhere => {
                    self.store.forget_unsettled(&key).await?;
                    continue;
                }
                Settled::Resent { unknown_again: true } => {
                    // Listed again by its new unknown record: settled on a later run.
                    report.resent += 1;
                    continue;
                }
                Settled::Resent { unknown_again: false } => &mut report.resent,
                Settled::Withheld => &mut report.withheld,
                Settled::GivenUp => &mut report.given_up,
            };
            *count += 1;
            self.store.forget_unsettled(&key).await?;
        }
        if unproven && self.probe(now).await? {
            report.probes += 1;
        }
        Ok(report)
    }

    /// Sends one probe per `STREAM_LAG` slot, whatever the number of sweeps:
    /// its receipt carries the stream's watermark past the emails waiting.
    async fn probe(&self, now: Timestamp) -> Result<bool, StoreError> {
        let slot = now.timestamp() / STREAM_LAG.num_seconds();
        let key = keys::stream_probe(slot);
        let claim = SendClaim::fresh(now);
        if self.store.claim_send(&key, &claim).await?.is_some() {
            return Ok(false);
        }
        let probe = OutgoingEmail {
            in_reply_to: None,
            key: key.clone(),
            kind: EmailKind::StreamProbe,
            account_id: AccountId::new(""),
            milestone_id: String::new(),
            from: self.sender.clone(),
            to: vec![Contact::parse("", PROBE_ADDRESS).expect("the simulator's address parses")],
            subject: "Delivery events check".into(),
            text: "Sent to the mail service's simulator to see its delivery events arrive. Nobody receives it.".into(),
            html: "<p>Sent to the mail service's simulator to see its delivery events arrive. Nobody receives it.</p>"
                .into(),
            reply_to: None,
            list_unsubscribe: None,
            date: now,
            names: Vec::new(),
        };
        // Its outcome matters to nobody: settled as it ends, never listed as unknown.
        let settled = match self.mailer.send(&probe).await {
            Ok(message_id) => SendRecord::Sent {
                subject: None,
                message_id,
            },
            Err(e) => SendRecord::Rejected {
                reason: format!("probe: {e}"),
            },
        };
        self.store.settle_send(&key, &settled).await?;
        tracing::info!("no email since the unknown ones: a probe sent to the mail service's simulator");
        Ok(true)
    }

    async fn settle(&self, key: &SendKey, watermark: Option<Timestamp>, now: Timestamp) -> Result<Settled, StoreError> {
        let store = &self.store;
        let record = match store.send_record(key).await? {
            Some(record @ SendRecord::Unknown { .. }) => record,
            // A resend that stopped mid-way (a fault after its claim): past
            // the claim's lease nobody will finish it. Its email went with
            // the claim, so it is settled from the mail service's events
            // alone: sent if it took it, else left unknown, the operator
            // alarmed — never left `sending` for good.
            Some(claim @ SendRecord::Sending { .. }) if crate::sending::is_stale_claim(&claim, now) => {
                let unknown = SendRecord::Unknown {
                    reason: RESEND_STOPPED.into(),
                    since: Some(now),
                    resends: MAX_RESENDS,
                    email: None,
                };
                if !store.replace_send(key, &claim, &unknown).await? {
                    return Ok(Settled::Waiting { stream_behind: false });
                }
                unknown
            }
            // Another run is sending it again: that run lists it anew if
            // it is unknown again, or settles it.
            Some(SendRecord::Sending { .. }) => return Ok(Settled::Waiting { stream_behind: false }),
            _ => return Ok(Settled::Elsewhere),
        };
        let SendRecord::Unknown {
            since,
            resends,
            email,
            reason,
        } = &record
        else {
            unreachable!()
        };
        if let Some(receipt) = store.receipt(&send_tag(key)).await? {
            let settled = if receipt.accepted() {
                SendRecord::Sent {
                    subject: email.as_deref().and_then(crate::sending::thread_subject),
                    message_id: receipt.message_id.clone(),
                }
            } else {
                SendRecord::Rejected {
                    reason: format!("{} (from the mail service's events)", receipt.event),
                }
            };
            if !store.replace_send(key, &record, &settled).await? {
                return Ok(Settled::Waiting { stream_behind: false }); // changed meanwhile: look again
            }
            tracing::info!(event = %receipt.event, "email outcome settled from the mail service's events");
            if let (true, Some(email)) = (receipt.accepted(), email) {
                crate::sending::archive(store.as_ref(), email).await;
            }
            return Ok(Settled::Confirmed);
        }
        let since = since.unwrap_or(now - SETTLE_LIMIT);
        let never_taken = now >= since + STREAM_LAG && watermark.is_some_and(|w| w >= since + STREAM_LAG);
        if let (true, Some(email), true) = (never_taken, email, *resends < MAX_RESENDS) {
            if let Some(why) = self.moot(email).await? {
                let settled = SendRecord::Rejected {
                    reason: format!("never taken by the mail service, and not sent again: {why}"),
                };
                if !store.replace_send(key, &record, &settled).await? {
                    return Ok(Settled::Waiting { stream_behind: false });
                }
                tracing::info!(
                    reason = why,
                    "email never taken by the mail service; moot now, not sent again"
                );
                return Ok(Settled::Withheld);
            }
            return self.resend(key, &record, email, *resends + 1, now).await;
        }
        if never_taken && email.is_none() && reason == HANDED_OVER_NO_LONGER_NEEDED {
            // Handed over without its email by a step that found it no
            // longer needed (`hand_over_abandoned_duty_claims`): nothing to
            // send again, and the mail service never took it.
            let settled = SendRecord::Rejected {
                reason: "never taken by the mail service, and not sent again: no longer needed".into(),
            };
            if !store.replace_send(key, &record, &settled).await? {
                return Ok(Settled::Waiting { stream_behind: false });
            }
            return Ok(Settled::Withheld);
        }
        if never_taken || now >= since + SETTLE_LIMIT {
            // A resend the mail service never took either, or a stream silent too long.
            let kind = email.as_ref().map_or("", |e| e.kind.as_str());
            tracing::warn!(kind, "email outcome unknown; not sent again");
            return Ok(Settled::GivenUp);
        }
        Ok(Settled::Waiting {
            stream_behind: now >= since + STREAM_LAG,
        })
    }

    /// Sends `email` again (the `resends`th time): the key moves from
    /// `unknown` to this attempt's claim only if no other run took it first.
    async fn resend(
        &self,
        key: &SendKey,
        record: &SendRecord,
        email: &OutgoingEmail,
        resends: u32,
        now: Timestamp,
    ) -> Result<Settled, StoreError> {
        let store = &self.store;
        let claim = SendClaim::fresh(now);
        if !store.replace_send(key, record, &SendRecord::claimed(&claim)).await? {
            // Another run is settling it: it lists it anew or settles it.
            return Ok(Settled::Waiting { stream_behind: false });
        }
        let mut unknown_again = false;
        let settled = match self.mailer.send(email).await {
            Ok(message_id) => SendRecord::Sent {
                subject: crate::sending::thread_subject(email),
                message_id,
            },
            Err(SendError::Permanent(reason)) => SendRecord::Rejected { reason },
            Err(SendError::Unknown(reason)) => {
                unknown_again = true;
                SendRecord::Unknown {
                    reason,
                    since: Some(now),
                    resends,
                    email: Some(Box::new(email.clone())),
                }
            }
            Err(SendError::Transient(_) | SendError::Throttled(_)) => {
                // Nothing went: as it was, for the next sweep.
                store.replace_send(key, &SendRecord::claimed(&claim), record).await?;
                return Ok(Settled::Waiting { stream_behind: false });
            }
        };
        store.settle_send(key, &settled).await?;
        if matches!(settled, SendRecord::Sent { .. }) {
            crate::sending::archive(store.as_ref(), email).await;
        }
        tracing::info!(
            kind = email.kind.as_str(),
            "email never taken by the mail service; sent again"
        );
        Ok(Settled::Resent { unknown_again })
    }

    /// Why a customer email that never went should not go now.
    async fn moot(&self, email: &OutgoingEmail) -> Result<Option<&'static str>, StoreError> {
        if !email.kind.customer_facing() {
            return Ok(None);
        }
        let store = &self.store;
        let account = AccountId::new(email.account_id.as_str());
        if let Some(m) = store.get_milestone(&account, &email.milestone_id).await? {
            if m.status().is_reached() {
                return Ok(Some("the milestone was reached meanwhile"));
            }
        }
        if let Some(pause) = store.customer_email_pause(&account).await? {
            if pause.until > self.clock.now() {
                return Ok(Some("customer email is paused"));
            }
        }
        for to in &email.to {
            if store.suppression(&to.email).await?.is_some() {
                return Ok(Some("the recipient unsubscribed"));
            }
        }
        Ok(None)
    }
}

enum Settled {
    Confirmed,
    /// Settled by another run already (or no longer listed as unknown).
    Elsewhere,
    /// `unknown_again`: the resend got no answer either; its record lists it anew.
    Resent {
        unknown_again: bool,
    },
    Withheld,
    GivenUp,
    /// `stream_behind`: the stream has not yet reported far enough past it.
    Waiting {
        stream_behind: bool,
    },
}
