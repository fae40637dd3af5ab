//! The playbook's last step, after the lapse: each duty the map's
//! `AfterPlaybook` owes the miss (the raise of an untouched task to its owner
//! and then to the CS leader, the owner's reminders days after the lapse),
//! done once when it falls due. The step answers `Deferred` until the next
//! duty's time, and ends the escalation after the last.
//!
//! Each duty is logged under its own key once handled (done, or not needed
//! and why), so a retried or re-run step does nothing twice; its email goes
//! through the send ledger under a key naming the duty.

use std::collections::HashMap;

use milepost_domain::{
    Contact, CsmTask, Duty, EmailAddress, EscalationRequest, LapsedMiss, MilestoneStatus, Step, TaskFacts, TaskStatus,
    Timestamp, Verdict,
};

use milepost_domain::health::health;

use super::{PlaybookSteps, StepError, StepScope};
use crate::email::{self, LapsedItem, LapsedSection, SinceLapse, TaskOccasion};
use crate::keys::{self, StepLog};

impl PlaybookSteps {
    /// The customer caught up, so the escalation ends here: a duty's email
    /// whose claim an attempt left mid-send (a fault after the claim, the
    /// step deferred out the lease meanwhile) will not be adopted by a
    /// sender. It is handed to the sweep's settling instead, without its
    /// email: sent, if the mail service's events show it took it; else
    /// withheld, as no longer needed — never left `sending` for good.
    pub(super) async fn hand_over_abandoned_duty_claims(
        &self,
        req: &EscalationRequest,
        milestone: &milepost_domain::TrackedMilestone,
        now: Timestamp,
    ) -> Result<(), StepError> {
        let reminders = milestone.policy().after_playbook.lapsed_reminder_days.iter();
        let duties = [Duty::TaskOverSla, Duty::TaskToLead]
            .into_iter()
            .chain(reminders.map(|&days| Duty::LapsedReminder { days }));
        for duty in duties {
            let key = keys::after_lapse_send(&req.execution, duty);
            let Some(record) = self.store.send_record(&key).await? else {
                continue;
            };
            if !crate::sending::is_stale_claim(&record, now) {
                continue;
            }
            let unknown = crate::ports::SendRecord::Unknown {
                reason: crate::settle::HANDED_OVER_NO_LONGER_NEEDED.into(),
                since: Some(now),
                resends: 0,
                email: None,
            };
            if self.store.replace_send(&key, &record, &unknown).await? {
                self.store.settle_send(&key, &unknown).await?;
            }
        }
        Ok(())
    }

    /// Does the duties due by now; `Some(t)`: the next falls due at `t`.
    pub(super) async fn after_lapse(&self, at: StepScope<'_>) -> Result<Option<Timestamp>, StepError> {
        let StepScope {
            req,
            account,
            milestone,
            now,
            ..
        } = at;
        if milestone.status() != MilestoneStatus::Lapsed {
            // The lapse itself failed and was caught: nothing is owed to a miss not known to have lapsed.
            return Ok(None);
        }
        let task = self.store.get_task(&CsmTask::id_for(&req.execution)).await?;
        let facts = task.as_ref().map(|t| TaskFacts {
            opened_at: t.created_at(),
            untouched: t.untouched(),
            dismissed: t.status() == TaskStatus::Dismissed,
            snoozed: t.status() == TaskStatus::Snoozed,
        });
        let lapsed_at = req.schedule.lapses_at;
        let duties = milestone
            .policy()
            .after_playbook
            .duties(lapsed_at, facts.map(|f| f.opened_at), account.timezone);
        // Listed in the leader's daily email until the customer catches up,
        // unless the map's thresholds kept the miss from leadership.
        let arr_at_risk = milestone.arr_at_risk(account.arr);
        let kept_from_leadership = milestone.policy().min_arr_at_risk.held_back(arr_at_risk).is_some();
        let miss = LapsedMiss {
            execution: req.execution.clone(),
            account_id: account.id.clone(),
            milestone_id: milestone.milestone_id().to_owned(),
            arr_at_risk,
            lapsed_at,
        };
        if !kept_from_leadership {
            self.change_leader_queue(&account.cs_leader_email, |q| q.add_lapsed(miss.clone()))
                .await?;
        }
        let handled = self.handled_duties(req, &duties).await?;
        for &(due, duty) in &duties {
            if handled.contains_key(&duty) {
                continue;
            }
            if due > now {
                return Ok(Some(due));
            }
            let step = Step::AfterLapse;
            match (duty.verdict(facts.as_ref()), task.as_ref()) {
                (Verdict::NotNeeded(why), _) => {
                    self.log(
                        req,
                        step,
                        StepLog::DutyNotNeeded(duty),
                        now,
                        format!("{}: not needed, {why}", duty.key_part()),
                    )
                    .await?;
                }
                (Verdict::Do, None) => unreachable!("every duty a miss without a task is owed is not needed"),
                (Verdict::Do, Some(task)) => {
                    let live = self.since_lapse(at, lapsed_at).await?;
                    let leader = Contact::new("Customer Success leadership", account.cs_leader_email.clone());
                    let occasion = match duty {
                        Duty::TaskOverSla => TaskOccasion::OverSla {
                            business_days: milestone.policy().after_playbook.task_sla_business_days,
                            lead_on: duties.iter().find(|(_, d)| *d == Duty::TaskToLead).map(|(t, _)| *t),
                            now: &live,
                        },
                        Duty::TaskToLead => TaskOccasion::RaisedToLead {
                            leader: &leader,
                            business_days: 2 * milestone.policy().after_playbook.task_sla_business_days,
                            owner_told_on: handled.get(&Duty::TaskOverSla).copied().unwrap_or(due),
                            now: &live,
                        },
                        Duty::LapsedReminder { days } => TaskOccasion::AfterLapse {
                            days,
                            lapsed_at,
                            since: &live,
                        },
                    };
                    // The task's buttons are signed for its owner, and act only on an open task.
                    let buttons = match duty {
                        Duty::TaskToLead => Vec::new(),
                        _ if task.status() != TaskStatus::Open => Vec::new(),
                        _ => email::task_buttons(self.links.as_ref(), task, milestone, now),
                    };
                    let key = keys::after_lapse_send(&req.execution, duty);
                    let mail = email::task_email(at.about(&self.config), task, buttons, occasion, key)?;
                    let result = self.send_checked(req, now, &mail).await?;
                    let detail = format!("{} email {}", mail.kind.label(), result.describe());
                    self.log(req, step, StepLog::Duty(duty), now, detail).await?;
                }
            }
        }
        Ok(None)
    }

    /// The leader's lapsed misses that are still lapsed, for the daily email,
    /// ranked as the email ranks them; those that caught up (or are gone)
    /// leave the list.
    pub(super) async fn lapsed_of(
        &self,
        leader: &EmailAddress,
        now: Timestamp,
    ) -> Result<Option<LapsedSection>, StepError> {
        let Some(queue) = self.store.leader_queue(leader).await? else {
            return Ok(None);
        };
        let mut kept = Vec::new();
        let mut gone = Vec::new();
        for miss in queue.lapsed_ranked() {
            let account = self.store.get_account(&miss.account_id).await?;
            let m = self.store.get_milestone(&miss.account_id, &miss.milestone_id).await?;
            match (account, m) {
                (Some(a), Some(m))
                    if m.status() == MilestoneStatus::Lapsed && m.execution() == Some(miss.execution.as_str()) =>
                {
                    // A renewal decided since the miss settles it, as in the report.
                    let settled = m.missed_at().is_none_or(|missed| {
                        a.renewals
                            .iter()
                            .any(|r| milepost_domain::renewal::settles(r.decision_date, missed, now))
                    });
                    if settled {
                        gone.push(miss.execution);
                    } else {
                        kept.push((a, m, miss));
                    }
                }
                _ => gone.push(miss.execution),
            }
        }
        if !gone.is_empty() {
            self.change_leader_queue(leader, |q| q.remove_lapsed(&gone)).await?;
        }
        // As `lapsed_section` ranks them, so the tasks read are the listed ones'.
        kept.sort_by_key(|(a, m, miss)| (std::cmp::Reverse(m.arr_at_risk(a.arr)), miss.lapsed_at));
        let mut tasks = Vec::new();
        for (_, _, miss) in kept.iter().take(email::LAPSED_LISTED) {
            tasks.push(self.store.get_task(&CsmTask::id_for(&miss.execution)).await?);
        }
        let items: Vec<LapsedItem<'_>> = kept
            .iter()
            .enumerate()
            .map(|(i, (account, milestone, miss))| LapsedItem {
                account,
                milestone,
                task: tasks.get(i).and_then(Option::as_ref),
                lapsed_at: miss.lapsed_at,
            })
            .collect();
        Ok(email::lapsed_section(&self.config, &items, now))
    }

    /// The duties this escalation has handled, with when.
    async fn handled_duties(
        &self,
        req: &EscalationRequest,
        duties: &[(Timestamp, Duty)],
    ) -> Result<HashMap<Duty, Timestamp>, StepError> {
        let log = self.store.log_of(&req.account_id).await?;
        let mut handled = HashMap::new();
        let ours: Vec<_> = log
            .iter()
            .filter(|e| e.execution == req.execution && e.step == Some(Step::AfterLapse))
            .collect();
        for &(_, duty) in duties {
            let done = StepLog::Duty(duty).key_part();
            let not_needed = StepLog::DutyNotNeeded(duty).key_part();
            let suffix = |k: &str| format!(":{}:{k}", Step::AfterLapse.as_str());
            if let Some(e) = ours
                .iter()
                .find(|e| e.key.ends_with(&suffix(&done)) || e.key.ends_with(&suffix(&not_needed)))
            {
                handled.insert(duty, e.at);
            }
        }
        Ok(handled)
    }

    /// The account now, and what changed since the lapse.
    async fn since_lapse(&self, at: StepScope<'_>, lapsed_at: Timestamp) -> Result<SinceLapse, StepError> {
        let account = at.account;
        let activity = self.store.activity(&account.id).await?;
        let milestones = self.store.milestones_of(&account.id).await?;
        let lapse_day = lapsed_at.with_timezone(&account.timezone).date_naive();
        let after: Vec<_> = activity.active_days.iter().filter(|d| **d > lapse_day).collect();
        let (recent, other) = super::recent_read_by(&milestones, &activity);
        Ok(SinceLapse {
            active_days: after.len(),
            last_active: after.last().map(|d| **d),
            health: health(&milestones, &activity, account.licensed_seats, at.now),
            recent,
            other,
        })
    }
}
