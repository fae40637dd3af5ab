//! The lapsed misses a leader's daily email lists after its escalations:
//! playbooks over without the customer catching up, largest ARR at risk
//! first, each with its age and its task.

use super::*;

/// How many lapsed misses the email lists by name; the rest are counted.
pub const LAPSED_LISTED: usize = 10;

/// One lapsed miss, as the list shows it.
pub struct LapsedItem<'a> {
    pub account: &'a Account,
    pub milestone: &'a TrackedMilestone,
    pub task: Option<&'a CsmTask>,
    pub lapsed_at: Timestamp,
}

pub struct LapsedRow {
    pub account_name: String,
    pub milestone_name: String,
    pub arr_at_risk: String,
    /// `lapsed 12 days ago (3 Apr 2026)`.
    pub lapsed: String,
    pub task: String,
    pub link: String,
}

/// The section: the largest `LAPSED_LISTED` by name, and the rest in one line.
pub struct LapsedSection {
    pub headline: String,
    pub rows: Vec<LapsedRow>,
    pub more: Option<String>,
}

/// The section for `items`, ranked largest ARR at risk first (then longest
/// lapsed); none when nothing lapsed.
pub fn lapsed_section(cfg: &Config, items: &[LapsedItem<'_>], now: Timestamp) -> Option<LapsedSection> {
    if items.is_empty() {
        return None;
    }
    let mut ranked: Vec<(u64, &LapsedItem<'_>)> = items
        .iter()
        .map(|i| (i.milestone.arr_at_risk(i.account.arr), i))
        .collect();
    ranked.sort_by(|(a, x), (b, y)| b.cmp(a).then(x.lapsed_at.cmp(&y.lapsed_at)));
    let total: u64 = ranked.iter().map(|(arr, _)| *arr).fold(0, u64::saturating_add);
    let rows = ranked
        .iter()
        .take(LAPSED_LISTED)
        .map(|(arr, i)| {
            let tz = i.account.timezone;
            let ago = (local_today(now, tz) - i.lapsed_at.with_timezone(&tz).date_naive()).num_days();
            LapsedRow {
                account_name: i.account.name.clone(),
                milestone_name: i.milestone.name().to_owned(),
                arr_at_risk: fmt_money(*arr),
                lapsed: format!(
                    "{} ({})",
                    days_ago(ago),
                    fmt_day(i.lapsed_at.with_timezone(&tz).date_naive())
                ),
                task: i.task.map_or_else(
                    || "none (held back under the map's thresholds)".to_string(),
                    |t| format!("{}: {}", t.brief().owner_name, standing(t)),
                ),
                link: MilestoneFacts::new(cfg, i.account, i.milestone, now).link,
            }
        })
        .collect();
    let rest = &ranked[ranked.len().min(LAPSED_LISTED)..];
    let more = (!rest.is_empty()).then(|| {
        let arr: u64 = rest.iter().map(|(arr, _)| *arr).fold(0, u64::saturating_add);
        match rest.len() {
            1 => format!("And 1 more, {} ARR at risk.", fmt_money(arr)),
            n => format!("And {n} more, {} ARR at risk.", fmt_money(arr)),
        }
    });
    let headline = match ranked.len() {
        1 => format!(
            "Still behind after the playbook: 1 miss, {} ARR at risk",
            fmt_money(total)
        ),
        n => format!(
            "Still behind after the playbook: {n} misses, {} ARR at risk",
            fmt_money(total)
        ),
    };
    Some(LapsedSection { headline, rows, more })
}
