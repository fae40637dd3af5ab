//! `milepost tasks list|done|snooze|dismiss` and `milepost milestones
//! confirm`: what CSMs and their leads do from a shell, by the same rules as
//! the email's links.

use chrono::{DateTime, Duration, Utc};
use milepost_app::email::fmt_date;
use milepost_app::email::standing;
use milepost_app::ingest::{Confirmed, IngestError, Ingestion};
use milepost_app::ports::TaskStore;
use milepost_app::tasks::{change_task, TaskError};
use milepost_domain::csm_task::clean_note;
use milepost_domain::{
    AccountId, Actor, CsmTask, DismissReason, EmailAddress, Outcome, TaskAction, TaskRefusal, TaskStatus,
};
use serde::Serialize;

/// A failure the person can fix (exit 2), or one a retry may (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<TaskError> for CommandError {
    fn from(e: TaskError) -> Self {
        match e {
            TaskError::Unknown(id) => CommandError::Refused(format!("no task {id}")),
            TaskError::Refused(TaskRefusal::AlreadyClosed { status, by, at }) => CommandError::Refused(format!(
                "the task is already {status}: closed by {} on {}; nothing changed",
                by.display(),
                fmt_date(at)
            )),
            TaskError::Refused(r) => CommandError::Refused(format!("{r}; nothing changed")),
            other => CommandError::Failed(anyhow::anyhow!(other)),
        }
    }
}

/// One task as `tasks list --json` prints it.
#[derive(Debug, Serialize)]
pub struct TaskRow {
    pub id: String,
    pub account_id: String,
    pub milestone_id: String,
    pub milestone_name: String,
    pub owner_email: String,
    pub owner_role: String,
    pub status: TaskStatus,
    pub opened_at: DateTime<Utc>,
    pub snoozed_until: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub closed_by: Option<String>,
    pub reason: Option<String>,
    pub outcome: Option<String>,
    pub notes: Vec<String>,
}

impl From<&CsmTask> for TaskRow {
    fn from(t: &CsmTask) -> Self {
        TaskRow {
            id: t.id().to_owned(),
            account_id: t.brief().account_id.to_string(),
            milestone_id: t.brief().milestone_id.clone(),
            milestone_name: t.brief().milestone_name.clone(),
            owner_email: t.brief().owner_email.clone(),
            owner_role: t.brief().owner_role.clone(),
            status: t.status(),
            opened_at: t.created_at(),
            snoozed_until: t.snoozed_until(),
            closed_at: t.closed().map(|c| c.at),
            closed_by: t.closed().map(|c| c.by.display().to_string()),
            reason: t.closed().map(|c| c.reason.as_str().to_string()),
            outcome: t
                .closed()
                .as_ref()
                .and_then(|c| c.outcome)
                .map(|o| o.as_str().to_string()),
            notes: t
                .notes()
                .iter()
                .map(|n| format!("{}, {}: {}", n.by.display(), fmt_date(n.at), n.text))
                .collect(),
        }
    }
}

/// The tasks of `owner` (from the owner index) or of every owner (one index
/// partition per status), of `status` or all: never a scan.
pub async fn list(
    store: &dyn TaskStore,
    owner: Option<&str>,
    status: Option<TaskStatus>,
) -> anyhow::Result<Vec<CsmTask>> {
    let mut tasks = match owner {
        Some(owner) => store.tasks_for_owner(owner, status).await?,
        None => {
            let mut all = Vec::new();
            for s in status.map_or(TaskStatus::ALL.to_vec(), |s| vec![s]) {
                all.extend(store.tasks_with_status(s).await?);
            }
            all
        }
    };
    tasks.sort_by(|a, b| (a.created_at(), &a.id()).cmp(&(b.created_at(), &b.id())));
    Ok(tasks)
}

pub fn render(tasks: &[CsmTask]) -> String {
    if tasks.is_empty() {
        return "no tasks\n".to_string();
    }
    let mut out = format!(
        "{:<44} {:<10} {:<24} {:<28} {}\n",
        "task", "status", "account", "milestone", "owner"
    );
    for t in tasks {
        out.push_str(&format!(
            "{:<44} {:<10} {:<24} {:<28} {} ({}): {}\n",
            t.id(),
            t.status(),
            t.brief().account_id,
            t.brief().milestone_id,
            t.brief().owner_email,
            t.brief().owner_role,
            standing(t)
        ));
    }
    out
}

/// Who a command acts as: the `--by` address, named as the task's owner when it is theirs.
pub fn actor(by: &str, task_owner: Option<(&str, &str)>) -> Result<Actor, CommandError> {
    let email = EmailAddress::parse(by).map_err(|e| CommandError::Refused(format!("--by: {e}")))?;
    let name = task_owner
        .filter(|(owner, _)| owner.eq_ignore_ascii_case(email.as_str()))
        .map(|(_, name)| name.to_string())
        .unwrap_or_default();
    Ok(Actor::Person {
        name,
        email: email.to_string(),
    })
}

fn note(text: Option<&str>) -> Result<Option<String>, CommandError> {
    text.map(clean_note)
        .transpose()
        .map(Option::flatten)
        .map_err(|e| CommandError::Refused(format!("--{e}")))
}

/// The action `tasks done|snooze|dismiss` asks for.
pub enum Change<'a> {
    Done { outcome: Option<&'a str> },
    Snooze { days: i64 },
    Dismiss { reason: &'a str },
}

/// `tasks done|snooze|dismiss ID --by EMAIL [--note TEXT]`; returns the task as changed.
pub async fn change(
    ingestion: &Ingestion,
    id: &str,
    change: Change<'_>,
    by: &str,
    text: Option<&str>,
) -> Result<CsmTask, CommandError> {
    let task = ingestion
        .store
        .get_task(id)
        .await
        .map_err(|e| CommandError::Failed(e.into()))?
        .ok_or_else(|| CommandError::Refused(format!("no task {id}")))?;
    let by = actor(by, Some((&task.brief().owner_email, &task.brief().owner_name)))?;
    let note = note(text)?;
    let action = match change {
        Change::Done { outcome } => TaskAction::Done {
            outcome: match outcome {
                None => Outcome::Other,
                Some(o) => Outcome::parse(o).ok_or_else(|| {
                    CommandError::Refused(format!(
                        "--outcome: `{o}` is not one of {}",
                        Outcome::ALL.map(|o| o.as_str()).join(", ")
                    ))
                })?,
            },
            note,
        },
        Change::Snooze { days } => {
            if !(1..=90).contains(&days) {
                return Err(CommandError::Refused("--days: from 1 to 90".into()));
            }
            TaskAction::Snooze {
                until: ingestion.clock.now() + Duration::days(days),
                note,
            }
        }
        Change::Dismiss { reason } => TaskAction::Dismiss {
            reason: DismissReason::parse(reason).ok_or_else(|| {
                CommandError::Refused(format!(
                    "--reason: `{reason}` is not one of {}",
                    DismissReason::ALL.map(|r| r.as_str()).join(", ")
                ))
            })?,
            note,
        },
    };
    // No link key: the change is the person's own, not a link's (links are checked by the actions function).
    let now = ingestion.clock.now();
    let update = change_task(
        ingestion.store.as_ref(),
        ingestion.events.as_ref(),
        id,
        &action,
        &by,
        now,
        None,
    )
    .await?;
    Ok(update.task)
}

/// `milestones confirm ACCOUNT MILESTONE --by EMAIL [--note] [--at]`.
pub async fn confirm(
    ingestion: &Ingestion,
    account: &str,
    milestone: &str,
    by: &str,
    text: Option<&str>,
    at: Option<&str>,
) -> Result<String, CommandError> {
    let by = actor(by, None)?;
    let note = note(text)?;
    let now = ingestion.clock.now();
    let at = match at {
        None => now,
        Some(t) => DateTime::parse_from_rfc3339(t)
            .map_err(|e| CommandError::Refused(format!("--at: must be an RFC 3339 date-time ({e})")))?
            .to_utc(),
    };
    if at > now {
        return Err(CommandError::Refused("--at: is in the future".into()));
    }
    match ingestion
        .confirm_manual(&AccountId::new(account), milestone, &by, note.as_deref(), at)
        .await
    {
        Ok(Confirmed::Now { status }) => Ok(format!("{milestone} confirmed: {status}\n")),
        Ok(Confirmed::Already { status, at }) => Ok(format!(
            "{milestone} was already reached on {} ({status}); nothing changed\n",
            fmt_date(at)
        )),
        Err(IngestError::Unknown { message: why, .. } | IngestError::NotManual(why)) => Err(CommandError::Refused(why)),
        Err(e) => Err(CommandError::Failed(e.into())),
    }
}
