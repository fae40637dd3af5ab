//! The properties Milepost keeps in HubSpot, made once (`CrmSyncs::set_up`):
//! on each company, the account's standing; on each task, the id of the CSM
//! task it mirrors (how a task created without an answer is found again).
//! All in a property group of their own, so the team sees them together.

use crate::ports::CrmProperty;

/// Bumped when a property is added or changed: the next run makes them again.
pub const PROPERTIES_VERSION: u32 = 1;

/// The property group's internal name, on companies and on tasks.
pub const GROUP: &str = "milepost";
pub const GROUP_LABEL: &str = "Customer milestones";

pub const STAGE: &str = "milepost_stage";
pub const MISSED_MILESTONES: &str = "milepost_missed_milestones";
pub const MISSED_COUNT: &str = "milepost_missed_count";
pub const ARR_AT_RISK: &str = "milepost_arr_at_risk";
pub const HEALTH_SCORE: &str = "milepost_health_score";
pub const HEALTH_TREND: &str = "milepost_health_trend";
pub const NEXT_MILESTONE: &str = "milepost_next_milestone";
pub const NEXT_MILESTONE_DUE: &str = "milepost_next_milestone_due";
pub const LAST_ESCALATION: &str = "milepost_last_escalation";
pub const LAST_ESCALATION_STEP: &str = "milepost_last_escalation_step";
pub const CONSOLE_LINK: &str = "milepost_console_link";
/// On tasks: the CSM task mirrored.
pub const TASK_ID: &str = "milepost_task_id";

/// The stage's values (`MissStage::as_str`, as the console's filters name
/// them), in the order the playbook reaches them.
pub const STAGES: &[(&str, &str)] = &[
    ("on_track", "On track"),
    ("starting", "Missed: playbook starting"),
    ("day1", "Day 1: customer outreach"),
    ("day3", "Day 3: CSM task"),
    ("day5", "Day 5: leadership"),
    ("lapsed", "After the playbook: still behind"),
    ("control", "Missed: control group, no playbook"),
];

pub const TRENDS: &[(&str, &str)] = &[
    ("improving", "Improving"),
    ("steady", "Steady"),
    ("declining", "Declining"),
];

const fn text(name: &'static str, label: &'static str, description: &'static str) -> CrmProperty {
    CrmProperty {
        name,
        label,
        description,
        kind: "string",
        field_type: "text",
        options: &[],
    }
}

const fn number(name: &'static str, label: &'static str, description: &'static str) -> CrmProperty {
    CrmProperty {
        kind: "number",
        field_type: "number",
        ..text(name, label, description)
    }
}

const fn select(
    name: &'static str,
    label: &'static str,
    description: &'static str,
    options: &'static [(&'static str, &'static str)],
) -> CrmProperty {
    CrmProperty {
        kind: "enumeration",
        field_type: "select",
        options,
        ..text(name, label, description)
    }
}

/// What each company carries.
pub const COMPANY_PROPERTIES: &[CrmProperty] = &[
    select(
        STAGE,
        "Milestone stage",
        "How far the playbook has gone for the account's furthest missed milestone.",
        STAGES,
    ),
    text(
        MISSED_MILESTONES,
        "Missed milestones",
        "The milestones the account has missed and not caught up on, most ARR at risk first.",
    ),
    number(
        MISSED_COUNT,
        "Missed milestones (count)",
        "How many milestones the account has missed and not caught up on.",
    ),
    number(
        ARR_AT_RISK,
        "ARR at risk",
        "ARR at risk from the account's open missed milestones.",
    ),
    number(HEALTH_SCORE, "Health score", "The account's health score, 0 to 100."),
    select(
        HEALTH_TREND,
        "Health trend",
        "The health score's change over 30 days.",
        TRENDS,
    ),
    text(
        NEXT_MILESTONE,
        "Next milestone",
        "The next milestone the account is due to reach.",
    ),
    CrmProperty {
        kind: "date",
        field_type: "date",
        ..text(
            NEXT_MILESTONE_DUE,
            "Next milestone due",
            "When the next milestone is due.",
        )
    },
    CrmProperty {
        kind: "datetime",
        field_type: "date",
        ..text(
            LAST_ESCALATION,
            "Last escalation",
            "When the playbook last acted for the account.",
        )
    },
    text(
        LAST_ESCALATION_STEP,
        "Last escalation step",
        "What the playbook last did for the account.",
    ),
    text(
        CONSOLE_LINK,
        "Milestone console",
        "The account's page in the milestone console.",
    ),
];

/// What each mirrored task carries.
pub const TASK_PROPERTIES: &[CrmProperty] = &[text(
    TASK_ID,
    "Milestone task id",
    "The milestone task this task mirrors: how it is kept up to date.",
)];
