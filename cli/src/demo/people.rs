//! The demo's CSMs and onboarding specialists: they read the day-3 email and,
//! for a share of tasks, press one of its buttons some hours later. Each
//! press goes through the real link: the demo makes the link the email
//! carried, opens it (`GET`: the confirmation page) and submits it (`POST`).

use std::collections::{BTreeMap, BTreeSet};

use chrono::Duration;
use milepost_app::actions::{ActionForm, Actions};
use milepost_app::links::{ActionLinks, LinkAction};
use milepost_domain::{CsmTask, Outcome, Timestamp};
use rand::seq::IndexedRandom;
use rand::Rng;

use super::generator::rng_for;

const NOTES: &[&str] = &[
    "called the champion, SSO blocks the rollout",
    "walked their admin through the setup",
    "agreed a plan for the next two weeks",
    "their team is back from the holidays on Monday",
    "escalated the integration bug to support",
];

/// One press of a button, planned for later, on the link its task's email carried.
#[derive(Clone, Debug)]
struct Press {
    action: LinkAction,
    form: ActionForm,
    owner_email: String,
    opened_at: Timestamp,
}

#[derive(Default)]
pub struct People {
    planned: BTreeMap<(Timestamp, String), Press>,
    seen: BTreeSet<String>,
    /// How many tasks they have read about: the store's next ones are new.
    pub noticed: usize,
    /// What they pressed, and how the page answered (`done`: 200, `already closed`: 409, ...).
    pub pressed: BTreeMap<String, usize>,
}

impl People {
    /// Plans what each owner does with the tasks they have not seen yet.
    pub fn notice(&mut self, tasks: &[CsmTask], seed: u64) {
        self.noticed += tasks.len();
        for task in tasks {
            if !self.seen.insert(task.id().to_owned()) {
                continue;
            }
            let salt = task
                .id()
                .bytes()
                .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
            let mut rng = rng_for(seed, salt as usize, 11);
            let roll: f64 = rng.random();
            let note = || Some(NOTES[(salt % NOTES.len() as u64) as usize].to_string());
            let (action, form, hours) = if roll < 0.30 {
                let outcome = *[
                    Outcome::PlanAgreed,
                    Outcome::BlockerRemoved,
                    Outcome::TeamTrained,
                    Outcome::EscalatedInternally,
                ]
                .choose(&mut rng)
                .expect("outcomes");
                let form = ActionForm {
                    note: note(),
                    outcome: Some(outcome.as_str().to_string()),
                };
                (LinkAction::Done, form, rng.random_range(6..48))
            } else if roll < 0.42 {
                let action = if rng.random_bool(0.5) {
                    LinkAction::Snooze3
                } else {
                    LinkAction::Snooze7
                };
                (action, ActionForm::default(), rng.random_range(2..24))
            } else if roll < 0.50 {
                let form = ActionForm {
                    note: note(),
                    outcome: None,
                };
                (LinkAction::Dismiss, form, rng.random_range(2..24))
            } else if roll < 0.53 {
                (LinkAction::Pause, ActionForm::default(), rng.random_range(1..12))
            } else {
                continue; // left for the playbook to run its course
            };
            let at = task.created_at() + Duration::hours(hours);
            let press = Press {
                action,
                form,
                owner_email: task.brief().owner_email.clone(),
                opened_at: task.created_at(),
            };
            self.planned.insert((at, task.id().to_owned()), press);
        }
    }

    /// Presses every button due by `now`, as its owner would: the link from
    /// the email, opened, then submitted.
    pub async fn press_due(&mut self, actions: &Actions, links: &ActionLinks, now: Timestamp) {
        while let Some(entry) = self.planned.first_entry() {
            let (at, id) = entry.key().clone();
            if at > now {
                return;
            }
            let press = entry.remove();
            // The link as the email carried it: made when the task opened.
            let url = links.url(press.action, &id, &press.owner_email, press.opened_at);
            let token = url.rsplit('/').next().expect("a link ends in its token");
            let shown = actions.show(token, token).await;
            let page = if shown.status == 200 && shown.html.contains("<form") {
                actions.act(token, &press.form).await
            } else {
                shown
            };
            let outcome = match page.status {
                200 => press.action.as_str().to_string(),
                409 => "pressed after the task had closed".to_string(),
                status => format!("{} answered {status}", press.action.as_str()),
            };
            *self.pressed.entry(outcome).or_default() += 1;
        }
    }
}
