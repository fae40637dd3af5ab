//! The maps page: each milestone map stored, as the team decided it: every
//! milestone's criterion, due day, owner, weight and playbook texts, and the
//! map's thresholds, control group and after-the-playbook settings; where a
//! discovery result is kept, each milestone's ratio, class and the month its
//! cohorts part, beside it.

use askama::Template;
use milepost_domain::discovery::{Class, DiscoveryLine, KeptDiscovery, Ratio};
use milepost_domain::{Criterion, MapSegment, MilestoneMap, Tenure};

use super::pages::{chrome, render, segment_label};
use super::session::Viewer;
use super::Console;
use crate::email::fmt_money;
use crate::ports::StoreResult;

struct MilestoneView {
    id: String,
    name: String,
    customer_title: String,
    phase: String,
    due: String,
    owner: String,
    criterion: String,
    weight: String,
    heads_up: String,
    texts: Vec<(&'static str, String)>,
    /// What discovery found of it, in words; none without a kept result or a line for it.
    discovery: Option<DiscoveryView>,
}

struct DiscoveryView {
    /// "Renewed customers reached it 3.1 times as often as churned ones".
    ratio: String,
    /// `strong`, `moderate`, `weak`: its CSS class and its word.
    class: &'static str,
    month: String,
    cohorts: String,
    /// Which scope the figures are of, when not the map's own.
    scope: String,
    small: bool,
}

struct MapView {
    title: String,
    anchor: String,
    settings: Vec<(&'static str, String)>,
    milestones: Vec<MilestoneView>,
}

#[derive(Template)]
#[template(path = "console/maps.html")]
struct MapsHtml<'a> {
    c: &'a super::pages::Chrome,
    maps: &'a [MapView],
    /// Where the discovery figures come from; none kept: how to keep some.
    discovery: Option<String>,
}

fn discovery_view(line: &DiscoveryLine, segment: &str, tenure: &str) -> DiscoveryView {
    let ratio = match line.ratio {
        Some(Ratio::Finite(r)) => format!("Renewed customers reached it {r:.1} times as often as churned ones"),
        Some(Ratio::Unbounded) => "Renewed customers reached it; no churned customer did".to_string(),
        None => "Neither cohort reached it: no ratio".to_string(),
    };
    DiscoveryView {
        ratio,
        class: match line.class {
            Some(Class::Strong) => "strong",
            Some(Class::Moderate) => "moderate",
            Some(Class::Weak) | None => "weak",
        },
        month: line.divergence_month.map_or_else(
            || "the cohorts never part by month 12".to_string(),
            |m| format!("the cohorts part in month {m}"),
        ),
        cohorts: format!("{} renewed, {} churned accounts", line.renewed_n, line.churned_n),
        scope: if line.segment == segment && line.tenure == tenure {
            String::new()
        } else {
            "over every segment and contract year".to_string()
        },
        small: line.small_cohort,
    }
}

/// A criterion in words, for any account (a seat ratio's seats vary).
fn criterion_words(c: &Criterion) -> String {
    match c {
        Criterion::SeatRatio { event, min_ratio, .. } => {
            format!("{:.0}% of licensed seats doing {event}", min_ratio * 100.0)
        }
        Criterion::Manual => "confirmed by a person".to_string(),
        other => other.describe_target(0),
    }
}

fn map_view(map: &MilestoneMap, discovery: Option<&KeptDiscovery>) -> MapView {
    let segment = match map.segment {
        MapSegment::All => "Every segment".to_string(),
        MapSegment::Only(s) => segment_label(s).to_string(),
    };
    let tenure = match map.tenure {
        None => "",
        Some(Tenure::FirstYear) => ", first contract year",
        Some(Tenure::MultiYear) => ", renewed customers",
    };
    let yes = |b: bool| if b { "yes" } else { "no" }.to_string();
    let thresholds = &map.min_arr_at_risk;
    MapView {
        title: format!("{segment}{tenure}"),
        anchor: format!("{}-{}", map.segment.as_str(), map.tenure.map_or("any", Tenure::as_str)),
        settings: vec![
            (
                "Playbook days",
                if map.business_days {
                    "business days"
                } else {
                    "calendar days"
                }
                .to_string(),
            ),
            (
                "Day 5 also writes to the executive sponsor",
                yes(map.escalate_to_exec_sponsor),
            ),
            (
                "Smallest ARR at risk for a CSM task",
                if thresholds.csm_task == 0 {
                    "any".to_string()
                } else {
                    fmt_money(thresholds.csm_task)
                },
            ),
            (
                "Smallest ARR at risk for leadership",
                if thresholds.leadership == 0 {
                    "any".to_string()
                } else {
                    fmt_money(thresholds.leadership)
                },
            ),
            (
                "Control group (no playbook)",
                format!(
                    "{:.0}% of misses, of accounts up to {} ARR",
                    map.holdout.share * 100.0,
                    fmt_money(map.holdout.max_arr)
                ),
            ),
            (
                "Reminders after the playbook",
                map.after_playbook
                    .lapsed_reminder_days
                    .iter()
                    .map(|d| format!("day {d}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            (
                "Untouched task raised after",
                format!("{} business days", map.after_playbook.task_sla_business_days),
            ),
        ],
        milestones: map
            .milestones
            .iter()
            .map(|m| MilestoneView {
                id: m.id.clone(),
                name: m.name.clone(),
                customer_title: m.customer_title.clone().unwrap_or_default(),
                phase: m.phase.to_string(),
                due: match &m.expansion {
                    None => format!("day {} of the contract", m.due_days),
                    Some(e) => format!(
                        "never missed: reaching it opens an opportunity to add {} × {}{}",
                        e.adds,
                        e.unit.replace('_', " "),
                        e.unit_price
                            .map_or_else(String::new, |p| format!(" at {} a year each", fmt_money(p)))
                    ),
                },
                owner: crate::email::role_words(&m.owner),
                discovery: discovery.and_then(|d| {
                    let (segment, tenure) = (map.segment.as_str(), map.tenure.map_or("all", Tenure::as_str));
                    d.line_for(&m.id, segment, tenure)
                        .map(|line| discovery_view(line, segment, tenure))
                }),
                criterion: criterion_words(&m.criterion),
                weight: weight_words(m),
                heads_up: m.heads_up.as_ref().map_or("none".to_string(), |h| {
                    format!(
                        "{} days before{}",
                        h.days_before,
                        if h.champion { ", to the champion too" } else { "" }
                    )
                }),
                texts: [
                    ("Day 1, to the customer", Some(m.playbook.outreach.clone())),
                    (
                        if m.expansion.is_some() {
                            "The play, for the owner"
                        } else {
                            "Day 3, to the owner"
                        },
                        Some(m.playbook.csm.clone()),
                    ),
                    ("Day 5, to leadership", Some(m.playbook.leadership.clone())),
                    ("Day 5, to the executive sponsor", m.playbook.sponsor.clone()),
                ]
                .into_iter()
                .filter_map(|(k, v)| v.filter(|t| !t.trim().is_empty()).map(|t| (k, t)))
                .collect(),
            })
            .collect(),
    }
}

/// A milestone's ARR weight as the page says it: set, the default, or
/// measured (`discovered`) with its interval and what it rests on.
fn weight_words(m: &milepost_domain::MilestoneDef) -> String {
    let default = milepost_domain::map::DEFAULT_ARR_WEIGHT;
    if m.expansion.is_some() {
        return "none: a growth milestone is never missed, so never at risk".to_string();
    }
    match &m.discovered_weight {
        None => m.arr_weight.map_or(format!("{default} (default)"), |w| format!("{w}")),
        Some(d) => match &d.measured {
            Some(w) => format!(
                "{:.2}, discovered (95% {:.2}–{:.2}): {} of {} accounts that missed it churned, {} of {} that achieved it ({}, kept {})",
                w.weight(),
                w.range()[0],
                w.range()[1],
                w.missed_churned,
                w.missed,
                w.achieved_churned,
                w.achieved,
                w.source,
                w.kept_at.format("%-d %b %Y")
            ),
            None => format!(
                "{default} (default until discovered: {})",
                d.unmeasured.as_deref().unwrap_or("not measured yet")
            ),
        },
    }
}

pub(super) async fn maps(console: &Console, viewer: &Viewer) -> StoreResult<Option<String>> {
    let mut maps = console.store.all_maps().await?;
    maps.sort_by_key(|m| (m.segment.as_str(), m.tenure.map(Tenure::as_str)));
    let kept = console.store.kept_discovery().await?;
    let views: Vec<MapView> = maps.iter().map(|m| map_view(m, kept.as_ref())).collect();
    let c = chrome(console, Some(viewer), "Maps", "maps");
    let discovery = kept.map(|d| {
        let (renewed, churned) = d.cohorts();
        format!(
            "Beside each milestone: how it told renewed customers from churned ones, found by discovery on {renewed} renewed and {churned} churned accounts ({}, {}).",
            d.source,
            d.kept_at.format("%-d %b %Y")
        )
    });
    Ok(Some(render(&MapsHtml {
        c: &c,
        maps: &views,
        discovery,
    })))
}
