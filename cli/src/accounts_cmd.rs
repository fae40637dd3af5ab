//! `milepost accounts show ACCOUNT_ID`: the operator's view of one account —
//! what ingestion did to it.

use chrono::{Timelike, Utc};
use milepost_app::email::{fmt_date, fmt_money};
use milepost_app::ports::{AccountStore, ActivityStore, EscalationLog, MilestoneStore};
use milepost_domain::health::{health, Health};
use milepost_domain::{Account, AccountId, TrackedMilestone};
use serde::Serialize;

/// What `accounts show` reads.
pub trait AccountsView: AccountStore + MilestoneStore + ActivityStore + EscalationLog {}
impl<T: AccountStore + MilestoneStore + ActivityStore + EscalationLog> AccountsView for T {}

/// How much of the account's escalation log `accounts show` prints: the newest.
pub const HISTORY_LINES: usize = 30;

#[derive(Serialize)]
pub struct AccountView {
    pub account: Account,
    pub health: Health,
    pub milestones: Vec<MilestoneRow>,
    /// The newest entries of the escalation log, oldest first: what the
    /// playbook did and did not do, and why.
    pub history: Vec<HistoryRow>,
}

#[derive(Serialize)]
pub struct HistoryRow {
    pub at: chrono::DateTime<Utc>,
    pub milestone_id: String,
    pub detail: String,
}

#[derive(Serialize)]
pub struct MilestoneRow {
    pub id: String,
    pub name: String,
    pub status: String,
    pub due_at: chrono::DateTime<Utc>,
    pub reached_at: Option<chrono::DateTime<Utc>>,
    pub progress: String,
    /// The role that owns it and who holds it for this account; `owner_is_fallback`
    /// when no one does and the CSM stands in.
    pub owner_role: String,
    pub owner: String,
    pub owner_is_fallback: bool,
    /// An expansion milestone's opportunity, once reached: units, unit and
    /// yearly pipeline (`unpriced` without a price). Never missed, it has no due date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opportunity: Option<String>,
}

pub async fn show(store: &dyn AccountsView, id: &str) -> anyhow::Result<Option<AccountView>> {
    let id = AccountId::new(id);
    let Some(account) = store.get_account(&id).await? else {
        return Ok(None);
    };
    let mut milestones: Vec<TrackedMilestone> = store.milestones_of(&id).await?;
    milestones.sort_by(|a, b| (a.due_at(), a.milestone_id()).cmp(&(b.due_at(), b.milestone_id())));
    let activity = store.activity(&id).await?;
    let health = health(&milestones, &activity, account.licensed_seats, Utc::now());
    let rows = milestones
        .iter()
        .map(|m| {
            let owner = account.owner(m.owner());
            MilestoneRow {
                owner_role: m.owner().to_owned(),
                owner: format!("{} <{}>", owner.contact.name, owner.contact.email),
                owner_is_fallback: owner.fallback,
                id: m.milestone_id().to_owned(),
                name: m.name().to_owned(),
                status: match (m.expansion(), m.opportunity()) {
                    (None, _) => m.status().to_string(),
                    (Some(_), Some(_)) => "opportunity".to_string(),
                    (Some(_), None) => "growth".to_string(),
                },
                opportunity: m.opportunity().map(|o| {
                    format!(
                        "{} for the {}",
                        milepost_app::email::opportunity_words(o),
                        milepost_app::email::role_words(&o.for_role)
                    )
                }),
                due_at: m.due_at(),
                reached_at: m.reached_at(),
                progress: format!(
                    "{} / {}",
                    m.progress().describe_current(m.criterion(), account.licensed_seats),
                    m.criterion().describe_target(account.licensed_seats)
                ),
            }
        })
        .collect();
    let log = store.log_of(&id).await?;
    let history = log[log.len().saturating_sub(HISTORY_LINES)..]
        .iter()
        .map(|e| HistoryRow {
            at: e.at,
            milestone_id: e.milestone_id.clone(),
            detail: e.detail.clone(),
        })
        .collect();
    Ok(Some(AccountView {
        account: (*account).clone(),
        health,
        milestones: rows,
        history,
    }))
}

pub fn render(view: &AccountView) -> String {
    let a = &view.account;
    let mut out = format!(
        "{} ({})\n  segment {}, tenure year {}, {} seats, ARR {}\n  contract {} → renewal {}\n  health {}/100, {} ({:+} in 30 days)\n",
        a.name,
        a.id,
        a.segment,
        a.tenure_year,
        a.licensed_seats,
        fmt_money(a.arr),
        a.contract_start,
        a.renewal_date,
        view.health.score,
        view.health.trend_word(),
        view.health.trend
    );
    for f in &view.health.factors {
        out.push_str(&format!("    {:+} {}\n", f.points, f.description));
    }
    for r in &a.renewals {
        let after = r
            .arr_after
            .map(|arr| format!(", ARR after {}", fmt_money(arr)))
            .unwrap_or_default();
        out.push_str(&format!(
            "  renewal decided {}: {}{after}\n",
            r.decision_date, r.outcome
        ));
    }
    out.push_str(&format!(
        "\n  {:<34} {:<13} {:<12} {:<12} {:<30} {}\n",
        "milestone", "status", "due", "reached", "progress", "owner"
    ));
    for m in &view.milestones {
        let owner = if m.owner_is_fallback {
            format!("{}: none, so the CSM", m.owner_role)
        } else {
            format!("{}: {}", m.owner_role, m.owner)
        };
        out.push_str(&format!(
            "  {:<34} {:<13} {:<12} {:<12} {:<30} {}\n",
            m.id,
            m.status,
            // Never missed: no due date.
            if m.status == "growth" || m.status == "opportunity" {
                "—".to_string()
            } else {
                fmt_date(m.due_at)
            },
            m.reached_at.map(fmt_date).unwrap_or_else(|| "—".into()),
            m.progress,
            owner
        ));
    }
    if !view.history.is_empty() {
        out.push_str("\n  history (newest last)\n");
        for h in &view.history {
            out.push_str(&format!(
                "  {} {:02}:{:02}  {:<34} {}\n",
                fmt_date(h.at),
                h.at.hour(),
                h.at.minute(),
                h.milestone_id,
                h.detail
            ));
        }
    }
    out
}
