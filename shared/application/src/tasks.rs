//! Changing a CSM task, whoever changes it: a person through a signed link,
//! the CLI or the API; Milepost when the customer catches up, a manual
//! milestone is confirmed or a snooze ends. One path: the domain decides
//! (`CsmTask::apply`), the change and its bus event are written together
//! (conditional on the version read, retried on a lost race), the account's
//! escalation log records who and when, and the event is published after.

use milepost_domain::{
    Actor, CloseReason, CsmTask, EscalationLogEntry, TaskAction, TaskChange, TaskRefusal, Timestamp,
};

use crate::email::fmt_date;
use crate::ports::{EventPublisher, StoreError, TaskLedger};
use crate::writes::MAX_WRITE_ATTEMPTS;

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("no task {0}")]
    Unknown(String),
    #[error(transparent)]
    Refused(#[from] TaskRefusal),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("publish")]
    Publish(#[from] crate::ports::PublishError),
    #[error(transparent)]
    Render(#[from] crate::email::RenderError),
    #[error("send")]
    Send(#[from] crate::sending::SendFailure),
}

/// The task as written, and what the action changed.
#[derive(Clone, Debug)]
pub struct TaskUpdate {
    pub task: CsmTask,
    pub change: TaskChange,
}

/// Applies `action` to task `id` by `by` at `at` (see `CsmTask::apply`;
/// `link_key` for an action from a signed link), and records it.
pub async fn change_task(
    store: &dyn TaskLedger,
    events: &dyn EventPublisher,
    id: &str,
    action: &TaskAction,
    by: &Actor,
    at: Timestamp,
    link_key: Option<&str>,
) -> Result<TaskUpdate, TaskError> {
    for _ in 0..MAX_WRITE_ATTEMPTS {
        let Some(mut task) = store.get_task(id).await? else {
            return Err(TaskError::Unknown(id.to_string()));
        };
        let change = match task.apply(action, by, at, link_key) {
            Ok(change) => change,
            Err(refusal) => {
                // What a failed publish left is sent before saying no.
                publish_outbox(store, events, task).await?;
                return Err(refusal.into());
            }
        };
        if change == TaskChange::Unchanged {
            let task = publish_outbox(store, events, task).await?;
            return Ok(TaskUpdate { task, change });
        }
        if let Some(event) = task.event_of(&change, at) {
            task.queue_event(event);
        }
        match store.update_task(&task).await {
            Ok(version) => task.version = version,
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
        store
            .append_log(&EscalationLogEntry::for_task(
                &task,
                action.name(),
                at,
                by,
                describe(&task, &change, by),
            ))
            .await?;
        let task = publish_outbox(store, events, task).await?;
        return Ok(TaskUpdate { task, change });
    }
    Err(StoreError::Contended(format!("task {id}")).into())
}

/// Closes the task of `execution`, if it has one and it is still live, because
/// the milestone was reached (`reason`): what ingestion does the moment it sees it.
pub async fn close_for_milestone(
    store: &dyn TaskLedger,
    events: &dyn EventPublisher,
    execution: &str,
    reason: CloseReason,
    at: Timestamp,
) -> Result<Option<TaskUpdate>, TaskError> {
    let action = TaskAction::AutoClose { reason };
    match change_task(
        store,
        events,
        &CsmTask::id_for(execution),
        &action,
        &Actor::Milepost,
        at,
        None,
    )
    .await
    {
        Ok(update) => Ok(Some(update)),
        // No task yet (the escalation had not reached day 3): nothing to close.
        Err(TaskError::Unknown(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Publishes the task's saved, unpublished events, then clears them; on a
/// failed publish they stay for the next touch. Returns the task as stored.
pub async fn publish_outbox(
    store: &dyn TaskLedger,
    events: &dyn EventPublisher,
    mut task: CsmTask,
) -> Result<CsmTask, TaskError> {
    if task.outbox().is_empty() {
        return Ok(task);
    }
    events.publish(task.outbox()).await.map_err(TaskError::Publish)?;
    for _ in 0..MAX_WRITE_ATTEMPTS {
        let published = task.outbox().len();
        task.published(published);
        match store.update_task(&task).await {
            Ok(version) => {
                task.version = version;
                return Ok(task);
            }
            Err(StoreError::Conflict) => {
                // Someone changed it meanwhile: drop what was just published from theirs.
                let Some(fresh) = store.get_task(task.id()).await? else {
                    return Ok(task);
                };
                task = fresh;
                task.published(published);
                if task.outbox().is_empty() {
                    return Ok(task);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Contended(format!("task {}", task.id())).into())
}

/// The escalation log's line for a change: what happened, for the day-5 email.
fn describe(task: &CsmTask, change: &TaskChange, by: &Actor) -> String {
    let who = by.display();
    match change {
        TaskChange::Closed(c) => match c.reason {
            CloseReason::Completed => format!("CSM task done by {who} ({})", c.outcome.map_or("done", |o| o.label())),
            CloseReason::Dismissed(r) => format!("CSM task dismissed by {who} ({})", r.label()),
            CloseReason::CustomerRecovered => "CSM task closed: the customer caught up".to_string(),
            CloseReason::MilestoneConfirmed => "CSM task closed: the milestone was confirmed".to_string(),
        },
        TaskChange::Snoozed { until } => format!("CSM task snoozed by {who} until {}", fmt_date(*until)),
        TaskChange::Reopened => format!(
            "CSM task open again after its snooze; {} reminded",
            task.brief().owner_name
        ),
        TaskChange::Unchanged => String::new(),
    }
}
