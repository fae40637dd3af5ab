//! A CSM task as a Slack message (Block Kit): what its email says that a
//! CSM acts on — the account, the milestone and how far behind it is, health
//! and ARR at risk, the recommended first intervention, the latest activity
//! — with the buttons Done, Snooze 3 days and Not relevant (each acting
//! through the task use case, as the email's links do) and Open in console.
//! Once the task is closed or snoozed, the same message shows how it stands
//! instead of the buttons (the message is updated in place, never reposted).
//!
//! Slack's limits are kept (a header's 150 characters, a section's 3,000, a
//! field's 2,000, a button's 75); text that reaches `mrkdwn` has `&`, `<`
//! and `>` escaped, so an account named `<!channel>` notifies nobody.

use milepost_domain::slack::MessageKind;
use milepost_domain::{CsmTask, TaskSla, TaskStatus, Timestamp};
use serde_json::{json, Value};

use crate::email::{fmt_date, fmt_money, standing, url_part};

/// The `action_id`s of the task buttons; the value is the task's id.
pub const DONE: &str = "milepost_task_done";
pub const SNOOZE_3: &str = "milepost_task_snooze_3";
pub const NOT_RELEVANT: &str = "milepost_task_not_relevant";
/// The console link button (a URL button: Slack opens it, nothing is posted to us).
pub const OPEN: &str = "milepost_task_open";
/// The first block's id is this and the task's id: a message found by it
/// after a lost answer is adopted, not posted again. (Slack's message
/// metadata would do too, but its published Web API spec has no such
/// parameter, and that spec is what the tests hold each call to.)
pub const TASK_BLOCK_PREFIX: &str = "milepost_task:";

/// The id of the block that names `task_id`.
pub fn task_block_id(task_id: &str) -> String {
    format!("{TASK_BLOCK_PREFIX}{task_id}")
}

pub use milepost_domain::slack::SlackMessage;

/// `&`, `<`, `>` escaped, as Slack asks of text in `mrkdwn`.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// At most `max` characters, an ellipsis marking the cut.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

fn mrkdwn(text: &str, max: usize) -> Value {
    // Escaping can lengthen; clip what Slack receives.
    json!({"type": "mrkdwn", "text": clip(text, max)})
}

/// What the message says beyond the task itself: when its escalation
/// reached leadership, and the moment it is shown at (an open task past
/// its SLA says so).
#[derive(Clone, Copy, Debug, Default)]
pub struct Standing {
    pub escalated_at: Option<Timestamp>,
    pub now: Option<Timestamp>,
}

/// The task as a message; `console_url`, where the console is served.
pub fn task_message(task: &CsmTask, console_url: Option<&str>) -> SlackMessage {
    task_message_as_of(task, console_url, Standing::default())
}

/// When an open task goes past its SLA (none: no SLA, or it is closed).
pub fn past_sla_at(task: &CsmTask) -> Option<Timestamp> {
    match (task.status(), task.brief().sla) {
        (TaskStatus::Open, Some(TaskSla::DueBy(at))) => Some(at),
        _ => None,
    }
}

/// `task_message`, with what happened around the task.
pub fn task_message_as_of(task: &CsmTask, console_url: Option<&str>, around: Standing) -> SlackMessage {
    let brief = task.brief();
    let account = escape(&brief.account_name);
    let milestone = escape(&brief.milestone_name);
    let past_sla = past_sla_at(task).filter(|at| around.now.is_some_and(|now| now >= *at));
    let prefix = match (around.escalated_at, past_sla) {
        (Some(_), _) if task.status() == TaskStatus::Open => "Escalated: ",
        (_, Some(_)) => "Past its SLA: ",
        _ => "",
    };
    let header = clip(&format!("{prefix}CSM task: {} missed", brief.milestone_name), 150);
    let mut blocks = vec![
        json!({"type": "header", "block_id": task_block_id(task.id()), "text": {"type": "plain_text", "text": header}}),
        json!({"type": "section", "text": mrkdwn(&format!(
            "*{account}* missed *{milestone}* (due {}).\n*Target:* {}\n*Today:* {}",
            fmt_date(brief.due_at),
            escape(&brief.target),
            escape(&brief.current),
        ), 3000)}),
        json!({"type": "section", "fields": [
            mrkdwn(&format!("*Health*\n{}/100, {} ({:+} in 30 days)", brief.health.score, brief.health.trend_word(), brief.health.trend), 2000),
            mrkdwn(&format!("*ARR at risk*\n{}", fmt_money(brief.arr_at_risk)), 2000),
            mrkdwn(&format!("*Owner*\n{} ({})", escape(&brief.owner_name), escape(&brief.owner_role)), 2000),
            mrkdwn(&format!("*Task*\n{}", escape(&standing(task))), 2000),
        ]}),
        json!({"type": "section", "text": mrkdwn(&format!(
            "*Recommended first intervention*\n{}",
            escape(&brief.recommended_intervention)
        ), 3000)}),
    ];
    if !brief.recent_activity.is_empty() {
        let recent: Vec<String> = brief
            .recent_activity
            .iter()
            .take(3)
            .map(|e| format!("{} on {}", escape(&e.event), fmt_date(e.at)))
            .collect();
        blocks.push(
            json!({"type": "context", "elements": [mrkdwn(&format!("Latest activity: {}", recent.join("; ")), 3000)]}),
        );
    }
    let mut happened = Vec::new();
    if let Some(at) = past_sla {
        happened.push(format!("Past its SLA since {}: nobody has acted on it.", fmt_date(at)));
    }
    if let Some(at) = around.escalated_at {
        happened.push(format!("Escalated to leadership on {}.", fmt_date(at)));
    }
    if !happened.is_empty() {
        blocks.push(json!({"type": "context", "elements": [mrkdwn(&happened.join(" "), 3000)]}));
    }
    let open = console_url.map(|base| format!("{base}/tasks/{}", url_part(task.id())));
    let live = matches!(task.status(), TaskStatus::Open);
    let mut buttons = Vec::new();
    if live {
        let id = task.id();
        buttons.push(
            json!({"type": "button", "action_id": DONE, "style": "primary", "value": id,
            "text": {"type": "plain_text", "text": "Done"}}),
        );
        buttons.push(json!({"type": "button", "action_id": SNOOZE_3, "value": id,
            "text": {"type": "plain_text", "text": "Snooze 3 days"}}));
        buttons.push(json!({"type": "button", "action_id": NOT_RELEVANT, "value": id,
            "text": {"type": "plain_text", "text": "Not relevant"}}));
    } else {
        blocks.push(json!({"type": "context", "elements": [mrkdwn(&format!("This task is {}.", escape(&standing(task))), 3000)]}));
    }
    if let Some(url) = open.filter(|u| u.len() <= 3000) {
        buttons.push(json!({"type": "button", "action_id": OPEN, "url": url,
            "text": {"type": "plain_text", "text": "Open in console"}}));
    }
    if !buttons.is_empty() {
        blocks.push(json!({"type": "actions", "block_id": "milepost_task_actions", "elements": buttons}));
    }
    let text = clip(
        &format!(
            "CSM task: {} missed {} ({})",
            brief.account_name,
            brief.milestone_name,
            standing(task)
        ),
        3000,
    );
    SlackMessage {
        text: escape(&text),
        blocks: Value::Array(blocks),
    }
}

/// The first block of a notice about a task names it and its kind: a notice
/// found by it after a lost answer is not posted again.
pub const NOTICE_BLOCK_PREFIX: &str = "milepost_notice:";

/// The id of the first block of `task_id`'s message of `kind`.
pub fn block_id_of(task_id: &str, kind: MessageKind) -> String {
    match kind {
        MessageKind::Task => task_block_id(task_id),
        notice => format!("{NOTICE_BLOCK_PREFIX}{}:{task_id}", notice.as_str()),
    }
}

/// A notice about the task, posted once (never updated): its escalation
/// reached leadership, it went past its SLA, or the playbook ended with the
/// customer still behind; `at`, when that happened. It carries no task
/// buttons (a notice is not updated when the task changes, so they would
/// go stale): the task's own message and the console act on it.
pub fn notice_message(task: &CsmTask, kind: MessageKind, console_url: Option<&str>, at: Timestamp) -> SlackMessage {
    let brief = task.brief();
    let account = escape(&brief.account_name);
    let milestone = escape(&brief.milestone_name);
    let due = fmt_date(brief.due_at);
    let (header, what) = match kind {
        MessageKind::Leadership => (
            format!("Escalated to leadership: {} missed", brief.milestone_name),
            format!("*{account}* is still behind on *{milestone}* (due {due}): its escalation reached leadership on {}.", fmt_date(at)),
        ),
        MessageKind::PastSla => (
            format!("Past its SLA: CSM task for {}", brief.account_name),
            format!(
                "Nobody has acted on the task for *{account}*'s *{milestone}* (due {due}) since it opened on {}; its SLA passed on {}.",
                fmt_date(brief.created_at),
                fmt_date(past_sla_at(task).unwrap_or(at)),
            ),
        ),
        MessageKind::Lapsed | MessageKind::Task => (
            format!("Still behind after the playbook: {} missed", brief.milestone_name),
            format!(
                "The playbook for *{account}*'s *{milestone}* (due {due}) ended on {} and the customer has not caught up.\n*Target:* {}\n*Today:* {}",
                fmt_date(at),
                escape(&brief.target),
                escape(&brief.current),
            ),
        ),
    };
    let mut blocks = vec![
        json!({"type": "header", "block_id": block_id_of(task.id(), kind), "text": {"type": "plain_text", "text": clip(&header, 150)}}),
        json!({"type": "section", "text": mrkdwn(&what, 3000)}),
        json!({"type": "section", "fields": [
            mrkdwn(&format!("*ARR at risk*\n{}", fmt_money(brief.arr_at_risk)), 2000),
            mrkdwn(&format!("*Owner*\n{} ({})", escape(&brief.owner_name), escape(&brief.owner_role)), 2000),
        ]}),
        json!({"type": "context", "elements": [mrkdwn(&format!(
            "The task is {}. Act on it from its own message{}.",
            escape(&standing(task)),
            if console_url.is_some() { " or the console" } else { "" }
        ), 3000)]}),
    ];
    if let Some(url) = console_url
        .map(|base| format!("{base}/tasks/{}", url_part(task.id())))
        .filter(|u| u.len() <= 3000)
    {
        blocks.push(json!({"type": "actions", "block_id": "milepost_notice_actions", "elements": [
            {"type": "button", "action_id": OPEN, "url": url, "text": {"type": "plain_text", "text": "Open in console"}}
        ]}));
    }
    SlackMessage {
        text: escape(&clip(&format!("{header} ({})", brief.account_name), 3000)),
        blocks: Value::Array(blocks),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};
    use milepost_domain::{AccountId, Actor, CsmTask, Outcome, TaskAction, TaskBrief, TaskSla};

    use super::*;

    fn task(account_name: &str) -> CsmTask {
        let opened = Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap();
        CsmTask::open(
            "acme-first_dashboard-1:csm-task".into(),
            TaskBrief {
                follow_up_not_sent: false,
                sla: None,
                account_id: AccountId::new("acme"),
                account_name: account_name.into(),
                milestone_id: "first_dashboard".into(),
                milestone_name: "First dashboard".into(),
                owner_role: "csm".into(),
                owner_is_fallback: false,
                owner_email: "maya@vendor.example".into(),
                owner_name: "Maya Chen".into(),
                created_at: opened,
                due_at: opened - Duration::days(2),
                target: "1 dashboard shared".into(),
                current: "0 so far".into(),
                health: milepost_domain::health::Health {
                    score: 48,
                    trend: -9,
                    factors: vec![],
                },
                arr_at_risk: 12_000,
                recommended_intervention: "Book a 30-minute build session with the champion".into(),
                recent_activity: vec![],
                other_activity: 0,
            },
        )
    }

    fn buttons(message: &SlackMessage) -> Vec<String> {
        message
            .blocks
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["type"] == "actions")
            .flat_map(|b| {
                b["elements"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["text"]["text"].as_str().unwrap().to_string())
            })
            .collect()
    }

    #[test]
    fn an_open_task_carries_its_context_and_the_three_actions() {
        let t = task("Acme Inc");
        let m = task_message(&t, Some("https://console.example"));
        assert_eq!(
            buttons(&m),
            ["Done", "Snooze 3 days", "Not relevant", "Open in console"]
        );
        let body = m.blocks.to_string();
        for wanted in [
            "Book a 30-minute build session",
            "$12,000",
            "48/100, declining (-9 in 30 days)",
            "*Acme Inc* missed *First dashboard* (due 28 Feb 2026)",
            "https://console.example/tasks/acme-first_dashboard-1%3Acsm-task",
        ] {
            assert!(body.contains(wanted), "{wanted} not in {body}");
        }
        assert_eq!(m.blocks[0]["block_id"], "milepost_task:acme-first_dashboard-1:csm-task");
        assert!(!buttons(&task_message(&t, None)).contains(&"Open in console".to_string()));
    }

    #[test]
    fn a_closed_task_shows_how_it_stands_instead_of_buttons() {
        let mut t = task("Acme Inc");
        let at = t.created_at() + Duration::hours(2);
        let maya = Actor::Person {
            name: "Maya Chen".into(),
            email: "maya@vendor.example".into(),
        };
        let done = TaskAction::Done {
            outcome: Outcome::PlanAgreed,
            note: None,
        };
        t.apply(&done, &maya, at, None).unwrap();
        let m = task_message(&t, Some("https://console.example"));
        assert_eq!(buttons(&m), ["Open in console"]);
        assert!(
            m.blocks.to_string().contains("This task is done on 2 Mar 2026"),
            "{}",
            m.blocks
        );
    }

    #[test]
    fn an_open_task_says_when_it_went_past_its_sla_and_reached_leadership() {
        let mut brief_task = task("Acme Inc");
        let due_by = brief_task.created_at() + Duration::days(2);
        brief_task = CsmTask::open(
            brief_task.id().to_string(),
            TaskBrief {
                sla: Some(TaskSla::DueBy(due_by)),
                ..brief_task.brief().clone()
            },
        );
        assert_eq!(past_sla_at(&brief_task), Some(due_by));
        let before = task_message_as_of(
            &brief_task,
            None,
            Standing {
                escalated_at: None,
                now: Some(due_by - Duration::minutes(1)),
            },
        );
        assert!(!before.blocks.to_string().contains("SLA"));
        let after = task_message_as_of(
            &brief_task,
            None,
            Standing {
                escalated_at: Some(due_by + Duration::days(1)),
                now: Some(due_by + Duration::days(1)),
            },
        );
        let body = after.blocks.to_string();
        assert!(
            body.contains("Past its SLA since 4 Mar 2026") && body.contains("Escalated to leadership on 5 Mar 2026"),
            "{body}"
        );
        assert!(after.blocks[0]["text"]["text"]
            .as_str()
            .unwrap()
            .starts_with("Escalated: CSM task:"));
    }

    #[test]
    fn text_reaching_mrkdwn_cannot_mention_or_link() {
        let m = task_message(&task("<!channel> & <https://evil.example|Acme>"), None);
        let body = m.blocks.to_string();
        assert!(
            !body.contains("<!channel>") && !body.contains("<https://evil"),
            "{body}"
        );
        assert!(body.contains("&lt;!channel&gt; &amp; &lt;https://evil.example|Acme&gt;"));
        assert_eq!(clip(&"x".repeat(200), 150).chars().count(), 150);
        let long = task(&"A".repeat(400));
        let header = task_message(&long, None).blocks[0]["text"]["text"]
            .as_str()
            .unwrap()
            .chars()
            .count();
        assert!(header <= 150);
    }
}
