//! People acting on what Milepost gave them: a CSM task done, snoozed or
//! dismissed, a manual milestone confirmed, customer email paused. Through a
//! signed link (`GET` shows a confirmation page and changes nothing, since
//! mail scanners fetch every link; `POST` acts, once), or directly from the
//! CLI. Every change is recorded on the account's log and the bus.

use std::sync::Arc;

use askama::Template;
use chrono::Duration;
use milepost_domain::csm_task::{clean_note, MAX_NOTE_BYTES};
use milepost_domain::{
    Actor, CloseReason, CsmTask, CustomerEmailPause, DismissReason, DomainEvent, EscalationLogEntry, MilestoneStatus,
    Outcome, TaskAction, TaskRefusal, Timestamp,
};

use crate::email::fmt_date;
use crate::email::standing;
use crate::ingest::{Confirmed, IngestError, Ingestion};
use crate::links::{LinkAction, LinkError, LinkSigner, Opened, OpenedLink};
use crate::ports::{ActionStore, Clock, EventPublisher};
use crate::tasks::{change_task, TaskError, TaskUpdate};

/// The people's actions over the ports they need; confirming a manual
/// milestone goes through ingestion, as the milestone's state changes there.
#[derive(Clone)]
pub struct Actions {
    pub ingestion: Ingestion,
    pub store: Arc<dyn ActionStore>,
    pub events: Arc<dyn EventPublisher>,
    pub clock: Arc<dyn Clock>,
    pub signer: LinkSigner,
    /// Where the pages' buttons post.
    pub page_urls: PageUrls,
}

pub use crate::config::PageUrls;

/// What a confirmation page's form sends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActionForm {
    pub note: Option<String>,
    pub outcome: Option<String>,
}

/// A rendered page and its HTTP status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub status: u16,
    pub html: String,
}

#[derive(Template)]
#[template(path = "pages/confirm.html")]
struct ConfirmHtml<'a> {
    v: &'a ConfirmView,
}

struct ConfirmView {
    title: String,
    account_name: String,
    milestone_name: String,
    standing: String,
    what_happens: String,
    action_url: String,
    note: bool,
    note_max: usize,
    outcomes: Vec<(&'static str, String)>,
    button: &'static str,
}

#[derive(Template)]
#[template(path = "pages/message.html")]
struct MessageHtml<'a> {
    v: &'a MessageView,
}

struct MessageView {
    title: String,
    status_line: &'static str,
    paragraphs: Vec<String>,
    next: Option<String>,
}

/// How to get a fresh link, said on every refusal.
const FRESH_LINK: &str = "Use the buttons of Milepost's most recent email about this task, or ask your Milepost admin, who can act on it with the milepost tasks command.";

pub(crate) fn message(
    status: u16,
    status_line: &'static str,
    title: impl Into<String>,
    paragraphs: Vec<String>,
    next: Option<String>,
) -> Page {
    let view = MessageView {
        title: title.into(),
        status_line,
        paragraphs,
        next,
    };
    Page {
        status,
        html: MessageHtml { v: &view }
            .render()
            .unwrap_or_else(|e| format!("<p>{e}</p>")),
    }
}

fn refused(e: &LinkError) -> Page {
    let (status, title, line, why) = match e {
        LinkError::Altered => (
            403,
            "This link can't be used",
            "Link refused",
            "It is not a link we sent, or not as we sent it (a line break in the email can cut a link short), so it was not used. Nothing was changed.".to_string(),
        ),
        LinkError::OtherRecipient => (
            403,
            "This link was made for someone else",
            "Link refused",
            "It was sent to another person than the one who owns this task now. Nothing was changed.".to_string(),
        ),
        LinkError::Expired(at) => (
            410,
            "This link has expired",
            "Link expired",
            format!("It worked until {}. Nothing was changed.", fmt_date(*at)),
        ),
        LinkError::Outdated => (
            410,
            "This link is from an older email",
            "Link expired",
            "Links in emails sent before Milepost's last upgrade no longer work. Nothing was changed.".to_string(),
        ),
    };
    message(status, line, title, vec![why], Some(FRESH_LINK.to_string()))
}

pub(crate) fn unavailable() -> Page {
    message(
        503,
        "Try again",
        "Milepost could not do that just now",
        vec!["Nothing was changed. Please try again in a minute.".to_string()],
        None,
    )
}

/// The checked link and what it is about.
struct Subject {
    link: OpenedLink,
    task: CsmTask,
    by: Actor,
}

impl Actions {
    /// Opens and checks `token` against its task's owner at `now`.
    async fn subject(&self, token: &str, now: Timestamp) -> Result<Subject, Page> {
        // Checked whole before anything it names is read: a forged link
        // gets one page, whatever exists behind it.
        let link = match self.signer.open(token, now) {
            Ok(Opened::Current(link)) => link,
            Ok(Opened::Legacy(_)) => return Err(refused(&LinkError::Outdated)),
            Err(e) => return Err(refused(&e)),
        };
        if link.action == LinkAction::Unsubscribe {
            // An unsubscribe link names an account, not a task: it has its own endpoint.
            return Err(refused(&LinkError::Altered));
        }
        let task = match self.store.get_task(&link.subject).await {
            Ok(Some(task)) => task,
            Ok(None) => {
                return Err(message(
                    404,
                    "Not found",
                    "We can't find this task",
                    vec!["It may have been removed. Nothing was changed.".to_string()],
                    Some(FRESH_LINK.to_string()),
                ))
            }
            Err(e) => {
                tracing::error!(error = %crate::ErrorChain(&e), "reading a task for an action link failed");
                return Err(unavailable());
            }
        };
        if link.action == LinkAction::HoldSponsor {
            // Leadership's button: made for the account's CS leader, not the task's owner.
            let leader = match self.store.get_account(&task.brief().account_id).await {
                Ok(Some(account)) => account.cs_leader_email.clone(),
                Ok(None) => return Err(refused(&LinkError::OtherRecipient)),
                Err(e) => {
                    tracing::error!(error = %crate::ErrorChain(&e), "reading an account for an action link failed");
                    return Err(unavailable());
                }
            };
            link.check_recipient(leader.as_str()).map_err(|e| refused(&e))?;
            let by = Actor::Person {
                name: "Customer Success leadership".to_string(),
                email: leader.to_string(),
            };
            return Ok(Subject { link, task, by });
        }
        link.check_recipient(&task.brief().owner_email)
            .map_err(|e| refused(&e))?;
        let by = Actor::Person {
            name: task.brief().owner_name.clone(),
            email: task.brief().owner_email.clone(),
        };
        Ok(Subject { link, task, by })
    }

    /// `GET`: the confirmation page, or why there is nothing to confirm. Changes nothing.
    pub async fn show(&self, token: &str, url: &str) -> Page {
        let now = self.clock.now();
        let s = match self.subject(token, now).await {
            Ok(s) => s,
            Err(page) => return page,
        };
        if let Some(page) = self.already(&s).await {
            return page;
        }
        let action = s.link.action;
        let task = &s.task;
        let what_happens = match action {
            LinkAction::Done => "The task will be closed as done.".to_string(),
            LinkAction::Snooze3 | LinkAction::Snooze7 => {
                let days = action.snooze_days().expect("a snooze has days");
                format!(
                    "The task will be put off until {}; then it opens again and you get a reminder.",
                    fmt_date(now + Duration::days(days))
                )
            }
            LinkAction::Dismiss => "The task will be closed as not relevant.".to_string(),
            LinkAction::Confirm => format!(
                "{} will be recorded as reached today, in your name; its escalation stops and this task closes.",
                task.brief().milestone_name
            ),
            // Refused by `subject`: it has its own endpoint.
            LinkAction::Unsubscribe => return refused(&LinkError::Altered),
            LinkAction::Pause => format!(
                "Automated emails to {} people will stop for 14 days, until {}. Leadership still hears about stuck milestones.",
                crate::email::possessive(&task.brief().account_name),
                fmt_date(now + Duration::days(milepost_domain::pause::PAUSE_DAYS))
            ),
            LinkAction::HoldSponsor => format!(
                "{} executive sponsor will not be written to about this miss. Everything else goes on: the task, the reminders, your daily list.",
                crate::email::possessive(&task.brief().account_name)
            ),
        };
        let view = ConfirmView {
            title: action.question().to_string(),
            account_name: task.brief().account_name.clone(),
            milestone_name: task.brief().milestone_name.clone(),
            standing: standing(task),
            what_happens,
            action_url: url.to_string(),
            note: matches!(
                action,
                LinkAction::Done
                    | LinkAction::Snooze3
                    | LinkAction::Snooze7
                    | LinkAction::Dismiss
                    | LinkAction::Confirm
            ),
            note_max: MAX_NOTE_BYTES,
            outcomes: if action == LinkAction::Done {
                Outcome::ALL
                    .iter()
                    .map(|o| (o.as_str(), sentence_case(o.label())))
                    .collect()
            } else {
                Vec::new()
            },
            button: match action {
                LinkAction::Pause => "Pause customer emails",
                LinkAction::HoldSponsor => "Hold the email",
                other => other.label(),
            },
        };
        match (ConfirmHtml { v: &view }).render() {
            Ok(html) => Page { status: 200, html },
            Err(e) => {
                tracing::error!(error = %crate::ErrorChain(&e), "the confirmation page did not render");
                unavailable()
            }
        }
    }

    /// `POST`: does what the link says, once; the same link again shows what was done.
    pub async fn act(&self, token: &str, form: &ActionForm) -> Page {
        let now = self.clock.now();
        let s = match self.subject(token, now).await {
            Ok(s) => s,
            Err(page) => return page,
        };
        if let Some(page) = self.already(&s).await {
            return page;
        }
        let note = match form.note.as_deref().map(clean_note).transpose() {
            Ok(note) => note.flatten(),
            Err(e) => return message(422, "Not saved", "That note is too long", vec![e.to_string()], None),
        };
        let key = s.link.key.clone();
        let task = &s.task;
        let done = match s.link.action {
            LinkAction::Done => {
                let outcome = form
                    .outcome
                    .as_deref()
                    .and_then(Outcome::parse)
                    .unwrap_or(Outcome::Other);
                self.task_action(task, TaskAction::Done { outcome, note }, &s.by, now, &key)
                    .await
            }
            LinkAction::Snooze3 | LinkAction::Snooze7 => {
                let days = s.link.action.snooze_days().expect("a snooze has days");
                let until = now + Duration::days(days);
                self.task_action(task, TaskAction::Snooze { until, note }, &s.by, now, &key)
                    .await
            }
            LinkAction::Dismiss => {
                let action = TaskAction::Dismiss {
                    reason: DismissReason::NotRelevant,
                    note,
                };
                self.task_action(task, action, &s.by, now, &key).await
            }
            LinkAction::Confirm => self.confirm(task, &s.by, note.as_deref(), now).await,
            LinkAction::Pause => self.pause(task, &s.by, now, &key).await,
            LinkAction::HoldSponsor => self.hold_sponsor(task, &s.by, now).await,
            LinkAction::Unsubscribe => Err(refused(&LinkError::Altered)),
        };
        done.unwrap_or_else(|page| page)
    }

    /// What makes this link's action moot, as a page: applied already, or a task action on a closed task.
    async fn already(&self, s: &Subject) -> Option<Page> {
        let task = &s.task;
        if let Some(earlier) = task.applied().iter().find(|a| a.key == s.link.key) {
            return Some(already_done(&earlier.by, earlier.at, task));
        }
        match s.link.action {
            LinkAction::Done | LinkAction::Snooze3 | LinkAction::Snooze7 | LinkAction::Dismiss => {
                task.closed()?;
                Some(already_closed(task))
            }
            LinkAction::Confirm => {
                let m = self
                    .store
                    .get_milestone(&task.brief().account_id, &task.brief().milestone_id)
                    .await
                    .ok()??;
                let reached = m.reached_at().filter(|_| m.status().is_reached())?;
                Some(message(
                    200,
                    "Already reached",
                    format!("{} is already reached", m.name()),
                    vec![format!(
                        "It was reached on {} ({}). Nothing was changed.",
                        fmt_date(reached),
                        m.status()
                    )],
                    None,
                ))
            }
            LinkAction::Unsubscribe => None,
            LinkAction::HoldSponsor => self.sponsor_settled(task).await,
            LinkAction::Pause => {
                let pause = self.store.customer_email_pause(&task.brief().account_id).await.ok()??;
                (pause.link_key.as_deref() == Some(s.link.key.as_str()))
                    .then(|| already_done(&pause.by, pause.at, task))
            }
        }
    }

    async fn task_action(
        &self,
        task: &CsmTask,
        action: TaskAction,
        by: &Actor,
        now: Timestamp,
        key: &str,
    ) -> Result<Page, Page> {
        match change_task(
            self.store.as_ref(),
            self.events.as_ref(),
            task.id(),
            &action,
            by,
            now,
            Some(key),
        )
        .await
        {
            Ok(TaskUpdate { task, .. }) => Ok(message(
                200,
                "Saved",
                format!("The task is {}", task.status()),
                vec![format!(
                    "{} at {}: it is {}.",
                    task.brief().milestone_name,
                    task.brief().account_name,
                    standing(&task)
                )],
                Some("You can close this page.".to_string()),
            )),
            Err(TaskError::Refused(TaskRefusal::AlreadyApplied { by, at, .. })) => Err(already_done(&by, at, task)),
            Err(TaskError::Refused(TaskRefusal::AlreadyClosed { .. })) => match self.store.get_task(task.id()).await {
                Ok(Some(now_closed)) => Err(already_closed(&now_closed)),
                _ => Err(unavailable()),
            },
            Err(e) => {
                tracing::error!(task_id = %task.id(), error = %crate::ErrorChain(&e), "a task action failed");
                Err(unavailable())
            }
        }
    }

    async fn confirm(&self, task: &CsmTask, by: &Actor, note: Option<&str>, now: Timestamp) -> Result<Page, Page> {
        match self
            .ingestion
            .confirm_manual(&task.brief().account_id, &task.brief().milestone_id, by, note, now)
            .await
        {
            Ok(Confirmed::Now { status }) => Ok(message(
                200,
                "Confirmed",
                format!("{} is confirmed", task.brief().milestone_name),
                vec![format!(
                    "It is {} as of today{}.",
                    status,
                    if status == MilestoneStatus::Recovered {
                        "; its escalation stopped and this task is closed"
                    } else {
                        ""
                    }
                )],
                Some("You can close this page.".to_string()),
            )),
            Ok(Confirmed::Already { status, at }) => Err(message(
                200,
                "Already reached",
                format!("{} is already reached", task.brief().milestone_name),
                vec![format!(
                    "It was reached on {} ({status}). Nothing was changed.",
                    fmt_date(at)
                )],
                None,
            )),
            Err(IngestError::NotManual(why) | IngestError::Unknown { message: why, .. }) => Err(message(
                409,
                "Not confirmed",
                "This milestone cannot be confirmed",
                vec![why],
                None,
            )),
            Err(e) => {
                tracing::error!(task_id = %task.id(), error = %crate::ErrorChain(&e), "confirming a manual milestone failed");
                Err(unavailable())
            }
        }
    }

    /// Whether the sponsor's email of `task`'s escalation is settled, as a
    /// page: held already, or gone (or not sent) already.
    async fn sponsor_settled(&self, task: &CsmTask) -> Option<Page> {
        let log = self.store.log_of(&task.brief().account_id).await.ok()?;
        let ours = |suffix: &str| {
            log.iter()
                .find(|e| e.execution == task.execution() && e.key.ends_with(suffix))
                .cloned()
        };
        let hold = EscalationLogEntry::sponsor_hold_key(task.execution());
        if let Some(held) = log.iter().find(|e| e.key == hold) {
            let by = held.by.as_ref().map_or("Leadership", Actor::display);
            return Some(message(
                200,
                "Already held",
                "The sponsor email is already held",
                vec![format!("{by} held it on {}. Nothing was changed.", fmt_date(held.at))],
                None,
            ));
        }
        let went = ours(":leadership:email:sponsor")
            .or_else(|| ours(":leadership:unsubscribed:sponsor"))
            .or_else(|| ours(":leadership:paused:customer"))?;
        Some(message(
            409,
            "Too late",
            "The sponsor email is no longer waiting",
            vec![format!(
                "{} ({}). Nothing was changed.",
                sentence_case(&went.detail),
                fmt_date(went.at)
            )],
            None,
        ))
    }

    async fn hold_sponsor(&self, task: &CsmTask, by: &Actor, now: Timestamp) -> Result<Page, Page> {
        let entry = EscalationLogEntry::sponsor_held(task, now, by);
        match self.store.append_log(&entry).await {
            Ok(true) => {}
            Ok(false) => return Err(self.sponsor_settled(task).await.unwrap_or_else(unavailable)),
            Err(e) => {
                tracing::error!(task_id = %task.id(), error = %crate::ErrorChain(&e), "holding a sponsor email failed");
                return Err(unavailable());
            }
        }
        Ok(message(
            200,
            "Held",
            "The sponsor email is held",
            vec![format!(
                "{} executive sponsor will not be written to about {}. The task and your daily list go on as before.",
                crate::email::possessive(&task.brief().account_name),
                task.brief().milestone_name
            )],
            Some("You can close this page.".to_string()),
        ))
    }

    async fn pause(&self, task: &CsmTask, by: &Actor, now: Timestamp, key: &str) -> Result<Page, Page> {
        let pause = match pause_customer_email(
            self.store.as_ref(),
            self.events.as_ref(),
            &task.brief().account_id,
            by,
            now,
            key,
        )
        .await
        {
            Ok(pause) => pause,
            Err(e) => {
                tracing::error!(task_id = %task.id(), error = %crate::ErrorChain(&e), "pausing customer email failed");
                return Err(unavailable());
            }
        };
        Ok(message(
            200,
            "Paused",
            format!("Customer emails for {} are paused", task.brief().account_name),
            vec![format!(
                "Until {}, Milepost sends none of its automated emails to the customer. Leadership still hears about stuck milestones.",
                fmt_date(pause.until)
            )],
            Some("You can close this page.".to_string()),
        ))
    }
}

/// Pauses automated customer email for `account_id` from `now`, by `by`
/// (`key`: the link or form that asked, so its second press is seen), logs it
/// and announces it: a link's use case and the console's.
pub(crate) async fn pause_customer_email(
    store: &dyn ActionStore,
    events: &dyn EventPublisher,
    account_id: &milepost_domain::AccountId,
    by: &Actor,
    now: Timestamp,
    key: &str,
) -> Result<CustomerEmailPause, crate::ports::StoreError> {
    let pause = CustomerEmailPause::starting(now, by.clone(), Some(key.to_string()));
    store.pause_customer_emails(account_id, &pause).await?;
    let detail = format!(
        "customer email paused by {} until {}",
        by.display(),
        fmt_date(pause.until)
    );
    let entry = EscalationLogEntry::outside_steps(account_id, "", None, "paused", now, by, detail);
    store.append_log(&entry).await?;
    let event = DomainEvent::CustomerEmailsPaused {
        account_id: account_id.clone(),
        until: pause.until,
    };
    if let Err(e) = events.publish(&[event]).await {
        // The pause holds; only the bus missed it: say so in the log, not to the user.
        tracing::warn!(account_id = %account_id, error = %crate::ErrorChain(&e), "CustomerEmailsPaused not published");
    }
    Ok(pause)
}

/// A task action on a closed task: who closed it, when and why.
fn already_closed(task: &CsmTask) -> Page {
    let said = match &task.closed() {
        Some(c) => match c.reason {
            CloseReason::Completed => format!(
                "{} marked it done on {} ({}).",
                c.by.display(),
                fmt_date(c.at),
                c.outcome.map_or("done", |o| o.label())
            ),
            CloseReason::Dismissed(r) => {
                format!("{} dismissed it on {} ({}).", c.by.display(), fmt_date(c.at), r.label())
            }
            CloseReason::CustomerRecovered => format!("It closed on {}: the customer caught up.", fmt_date(c.at)),
            CloseReason::MilestoneConfirmed => format!("It closed on {}: the milestone was confirmed.", fmt_date(c.at)),
        },
        None => format!("It is {}.", standing(task)),
    };
    message(
        409,
        "Already closed",
        "This task is already closed",
        vec![format!("{said} Nothing was changed.")],
        None,
    )
}

fn already_done(by: &Actor, at: Timestamp, task: &CsmTask) -> Page {
    message(
        200,
        "Already done",
        "This was already done",
        vec![format!(
            "{} did this on {}; the task is {}. Nothing was changed.",
            by.display(),
            fmt_date(at),
            task.status()
        )],
        None,
    )
}

/// `plan agreed with the customer` → `Plan agreed with the customer`.
fn sentence_case(label: &str) -> String {
    let mut chars = label.chars();
    chars
        .next()
        .map_or_else(String::new, |first| first.to_uppercase().chain(chars).collect())
}
