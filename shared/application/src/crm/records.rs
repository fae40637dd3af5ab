//! What Milepost writes to the CRM: an account's standing as its company's
//! properties (the console's portfolio row, so the two agree), and a CSM
//! task as a CRM task (its body rendered from a template: every value HTML
//! escaped, since HubSpot shows the body as rich text).

use askama::Template;
use milepost_domain::health::health;
use milepost_domain::{CsmTask, MilestoneStatus, Step, TaskStatus, Timestamp};

use super::properties::*;
use crate::email::{fmt_date, fmt_money, standing, url_part};
use crate::ports::{AccountFolder, CrmProperties};
use crate::slack::blocks::past_sla_at;

fn iso(t: Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// What a step of the playbook did, in the CS team's words.
fn step_words(step: Step) -> &'static str {
    match step {
        Step::OutreachEmail => "Day 1: outreach email to the customer",
        Step::InAppMessage => "Day 1: in-app message",
        Step::FollowUpEmail => "Follow-up email to the customer",
        Step::CsmTask => "Day 3: CSM task",
        Step::Leadership => "Day 5: leadership escalation",
        Step::Finish => "Playbook ended",
        Step::AfterLapse => "After the playbook: owner reminded",
    }
}

/// The account's standing at `now`, as its company's properties (every
/// property, empty where there is nothing to say, so an old value is cleared).
pub fn company_properties(folder: &AccountFolder, now: Timestamp, console_url: Option<&str>) -> CrmProperties {
    let row = crate::portfolio_keeper::row_of(folder, now);
    let h = health(&folder.milestones, &folder.activity, folder.account.licensed_seats, now);
    let next = folder
        .milestones
        .iter()
        // An expansion milestone has no due date to reach it by: never "next".
        .filter(|m| m.status() == MilestoneStatus::Pending && m.due_at() > now && m.expansion().is_none())
        .min_by_key(|m| (m.due_at(), m.milestone_id().to_string()));
    let last = folder.log.iter().filter(|e| e.step.is_some()).max_by_key(|e| e.at);
    let mut p = CrmProperties::new();
    let mut set = |name: &str, value: String| {
        p.insert(name.to_string(), value);
    };
    set(STAGE, row.as_ref().map_or("on_track", |r| r.stage.as_str()).to_string());
    set(
        MISSED_MILESTONES,
        row.as_ref()
            .map(|r| r.misses.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join("; "))
            .unwrap_or_default(),
    );
    set(MISSED_COUNT, row.as_ref().map_or(0, |r| r.misses.len()).to_string());
    set(ARR_AT_RISK, row.as_ref().map_or(0, |r| r.arr_at_risk).to_string());
    set(HEALTH_SCORE, h.score.to_string());
    set(HEALTH_TREND, h.trend_word().to_string());
    set(NEXT_MILESTONE, next.map(|m| m.name().to_string()).unwrap_or_default());
    set(
        NEXT_MILESTONE_DUE,
        next.map(|m| m.due_at().date_naive().format("%Y-%m-%d").to_string())
            .unwrap_or_default(),
    );
    set(LAST_ESCALATION, last.map(|e| iso(e.at)).unwrap_or_default());
    set(
        LAST_ESCALATION_STEP,
        last.and_then(|e| e.step)
            .map(|s| step_words(s).to_string())
            .unwrap_or_default(),
    );
    set(
        CONSOLE_LINK,
        console_url
            .map(|base| format!("{base}{}", crate::email::account_href(&folder.account.id)))
            .unwrap_or_default(),
    );
    p
}

#[derive(Template)]
#[template(path = "crm/task_body.html")]
struct TaskBody<'a> {
    v: &'a TaskView,
}

struct TaskView {
    account: String,
    milestone: String,
    due: String,
    target: String,
    current: String,
    health: String,
    arr_at_risk: String,
    intervention: String,
    recent: String,
    console: Option<String>,
    standing: String,
}

/// The task as the CRM's task: subject, body, status, when it is due. The
/// owner and the id it mirrors are set when it is made (`create_extras`).
pub fn task_properties(task: &CsmTask, console_url: Option<&str>) -> CrmProperties {
    let brief = task.brief();
    let view = TaskView {
        account: brief.account_name.clone(),
        milestone: brief.milestone_name.clone(),
        due: fmt_date(brief.due_at),
        target: brief.target.clone(),
        current: brief.current.clone(),
        health: format!("{}/100, {}", brief.health.score, brief.health.trend_word()),
        arr_at_risk: fmt_money(brief.arr_at_risk),
        intervention: brief.recommended_intervention.clone(),
        recent: brief
            .recent_activity
            .iter()
            .take(3)
            .map(|e| format!("{} on {}", e.event, fmt_date(e.at)))
            .collect::<Vec<_>>()
            .join("; "),
        console: console_url.map(|base| format!("{base}/tasks/{}", url_part(task.id()))),
        standing: standing(task),
    };
    let body = TaskBody { v: &view }
        .render()
        .unwrap_or_else(|_| "<p>See the milestone console.</p>".into());
    let (status, due) = match task.status() {
        TaskStatus::Open => ("NOT_STARTED", past_sla_at(task).unwrap_or(brief.created_at)),
        TaskStatus::Snoozed => ("WAITING", task.snoozed_until().unwrap_or(brief.created_at)),
        TaskStatus::Done | TaskStatus::Dismissed => ("COMPLETED", task.closed().map_or(brief.created_at, |c| c.at)),
    };
    CrmProperties::from([
        (
            "hs_task_subject".to_string(),
            format!("{}: {} missed", brief.account_name, brief.milestone_name),
        ),
        ("hs_task_body".to_string(), body),
        ("hs_task_status".to_string(), status.to_string()),
        ("hs_task_priority".to_string(), "HIGH".to_string()),
        ("hs_timestamp".to_string(), iso(due)),
    ])
}

/// What a task is made with besides `task_properties`: its type, the task
/// it mirrors (how it is found again), and its owner when the CRM has a
/// user with the owner's address (not written again: the team may reassign it).
pub fn create_extras(task: &CsmTask, owner_id: Option<String>) -> CrmProperties {
    let mut p = CrmProperties::from([
        ("hs_task_type".to_string(), "TODO".to_string()),
        (TASK_ID.to_string(), task.id().to_string()),
    ]);
    if let Some(id) = owner_id {
        p.insert("hubspot_owner_id".to_string(), id);
    }
    p
}
