//! Every port, wired once: what one process holds (a Lambda, the CLI, the
//! demo, a test). Each use case takes only the ports it needs, cut from
//! here; `milepost_aws::services_from_env` and the embedded adapters build it.

use std::sync::Arc;

use crate::actions::Actions;
use crate::config::Config;
use crate::escalation::PlaybookSteps;
use crate::heads_up::HeadsUps;
use crate::held_back_lists::HeldBackLists;
use crate::ingest::Ingestion;
use crate::links::ActionLinks;
use crate::ports::{Clock, EventPublisher, Mailer, Store, WorkflowStarter};
use crate::reminders::TaskReminders;
use crate::sweep::Sweeper;

#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn Store>,
    pub mailer: Arc<dyn Mailer>,
    pub events: Arc<dyn EventPublisher>,
    pub workflows: Arc<dyn WorkflowStarter>,
    pub clock: Arc<dyn Clock>,
    pub config: Config,
    /// Signs action links (the day-3 email's buttons); `None`: emails have none.
    pub links: Option<ActionLinks>,
}

impl Services {
    pub fn ingestion(&self) -> Ingestion {
        Ingestion {
            store: self.store.clone(),
            events: self.events.clone(),
            workflows: self.workflows.clone(),
            clock: self.clock.clone(),
            config: self.config.clone(),
        }
    }

    pub fn sweeper(&self) -> Sweeper {
        Sweeper {
            store: self.store.clone(),
            events: self.events.clone(),
            workflows: self.workflows.clone(),
            clock: self.clock.clone(),
            timing: self.config.timing.clone(),
        }
    }

    pub fn reminders(&self) -> TaskReminders {
        TaskReminders {
            store: self.store.clone(),
            mailer: self.mailer.clone(),
            events: self.events.clone(),
            clock: self.clock.clone(),
            config: self.config.clone(),
            links: self.links.clone(),
        }
    }

    pub fn held_back_lists(&self) -> HeldBackLists {
        HeldBackLists {
            store: self.store.clone(),
            mailer: self.mailer.clone(),
            clock: self.clock.clone(),
            config: self.config.clone(),
        }
    }

    pub fn weekly_digest(&self) -> crate::weekly_digest::WeeklyDigest {
        crate::weekly_digest::WeeklyDigest {
            store: self.store.clone(),
            mailer: self.mailer.clone(),
            clock: self.clock.clone(),
            config: self.config.clone(),
        }
    }

    pub fn heads_ups(&self) -> HeadsUps {
        HeadsUps {
            store: self.store.clone(),
            mailer: self.mailer.clone(),
            clock: self.clock.clone(),
            config: self.config.clone(),
            links: self.links.clone(),
        }
    }

    /// Settling the sends of unknown outcome from the provider's receipts.
    pub fn settler(&self) -> crate::settle::SendSettler {
        crate::settle::SendSettler {
            store: self.store.clone(),
            mailer: self.mailer.clone(),
            clock: self.clock.clone(),
            sender: self.config.sender.clone(),
        }
    }

    /// What the sweep function runs on its schedule, in its order.
    pub fn scheduled_run(&self) -> crate::scheduled::ScheduledRun {
        crate::scheduled::ScheduledRun {
            sweeper: self.sweeper(),
            reminders: self.reminders(),
            held_back_lists: self.held_back_lists(),
            heads_ups: self.heads_ups(),
            settler: self.settler(),
        }
    }

    /// What keeps the console's portfolio and results ready, on its own schedule.
    pub fn console_keeping(&self) -> crate::scheduled::ConsoleKeeping {
        crate::scheduled::ConsoleKeeping {
            portfolio: crate::portfolio_keeper::PortfolioKeeper {
                store: self.store.clone(),
                clock: self.clock.clone(),
            },
            results: crate::console::ResultsKeeper {
                store: self.store.clone(),
                clock: self.clock.clone(),
            },
        }
    }

    /// People's actions; `None` without a link signer.
    pub fn actions(&self) -> Option<Actions> {
        Some(Actions {
            ingestion: self.ingestion(),
            store: self.store.clone(),
            events: self.events.clone(),
            clock: self.clock.clone(),
            signer: self.links.as_ref()?.signer.clone(),
            page_urls: self.config.page_urls.clone(),
        })
    }

    /// The console, its sessions signed with `sessions`, people signing in by `sign_in`.
    pub fn console(
        &self,
        sessions: crate::console::SessionKey,
        sign_in: crate::console::SignIn,
    ) -> crate::console::Console {
        crate::console::Console {
            store: self.store.clone(),
            ingestion: self.ingestion(),
            events: self.events.clone(),
            clock: self.clock.clone(),
            sessions,
            sign_in,
        }
    }

    pub fn playbook(&self) -> PlaybookSteps {
        PlaybookSteps {
            store: self.store.clone(),
            mailer: self.mailer.clone(),
            events: self.events.clone(),
            clock: self.clock.clone(),
            config: self.config.clone(),
            links: self.links.clone(),
        }
    }
}
