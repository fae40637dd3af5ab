//! Snoozed tasks coming back: when a snooze ends, the task opens again and
//! its owner gets its email again, with fresh links. The sweep runs this.
//!
//! The reminder is sent first (once per task and snooze, through the send
//! ledger), the task reopened after: a crash in between sends nothing twice
//! and the next run reopens it.

use std::sync::Arc;

use milepost_domain::{Actor, TaskAction, TaskChange};
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::config::Config;
use crate::email;
use crate::links::ActionLinks;
use crate::ports::{Clock, EventPublisher, Mailer, ReminderStore, StoreError};
use crate::sending::send_once;
use crate::tasks::{change_task, TaskError};

#[derive(Clone)]
pub struct TaskReminders {
    pub store: Arc<dyn ReminderStore>,
    pub mailer: Arc<dyn Mailer>,
    pub events: Arc<dyn EventPublisher>,
    pub clock: Arc<dyn Clock>,
    pub config: Config,
    pub links: Option<ActionLinks>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemindersReport {
    /// Tasks whose snooze was over.
    pub due: usize,
    /// Reopened, their owner reminded.
    pub reopened: usize,
    /// Left for the next run (a passing fault).
    pub failed: usize,
}

/// Snoozes handled per run; the rest wait for the next one.
const PER_RUN: usize = 100;

impl TaskReminders {
    pub async fn run(&self) -> Result<RemindersReport, StoreError> {
        let now = self.clock.now();
        let mut report = RemindersReport::default();
        for task in self.store.snoozes_over(now, PER_RUN).await? {
            report.due += 1;
            let span =
                tracing::info_span!("task_reminder", task_id = %task.id(), account_id = %task.brief().account_id);
            match self.remind(task, now).instrument(span.clone()).await {
                Ok(true) => report.reopened += 1,
                Ok(false) => {}
                Err(e) => {
                    report.failed += 1;
                    span.in_scope(|| tracing::warn!(error = %crate::ErrorChain(&e), "a task's reminder failed; the next run retries"));
                }
            }
        }
        Ok(report)
    }

    async fn remind(&self, task: milepost_domain::CsmTask, now: milepost_domain::Timestamp) -> Result<bool, TaskError> {
        let until = task.snoozed_until().unwrap_or(now);
        let account = self.store.get_account(&task.brief().account_id).await?;
        let milestone = self
            .store
            .get_milestone(&task.brief().account_id, &task.brief().milestone_id)
            .await?;
        if let (Some(account), Some(m)) = (account, milestone) {
            let buttons = email::task_buttons(self.links.as_ref(), &task, &m, now);
            let key = crate::keys::reminder_send(task.id(), until);
            let about = email::About {
                cfg: &self.config,
                account: &account,
                m: &m,
                now,
            };
            let mail = email::csm_reminder(about, &task, buttons, key)?;
            send_once(self.store.as_ref(), self.mailer.as_ref(), &mail, now).await?;
        }
        let update = change_task(
            self.store.as_ref(),
            self.events.as_ref(),
            task.id(),
            &TaskAction::Wake,
            &Actor::Milepost,
            now,
            None,
        )
        .await?;
        Ok(update.change == TaskChange::Reopened)
    }
}
