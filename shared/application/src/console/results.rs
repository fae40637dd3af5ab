//! The results page: `milepost report` as pictures. Every figure is the
//! report's for the same period and moment. Each view — every miss so far
//! (with the twelve weeks before now), the last 30 and 90 days, this and
//! last quarter, the last twelve months; for all segments and each — is
//! kept ready by the scheduled run (`keep_results`, hourly: one read of the
//! whole table makes them all), so a page view is one read and never a
//! Scan. Another period is `milepost report --since --until`'s.

use askama::Template;
use chrono::{Datelike, Duration, NaiveDate};
use milepost_domain::report::{Rate, Report, ReportOptions, Row, Week, DEFAULT_WINDOW_DAYS};
use milepost_domain::{Segment, Timestamp};

use super::pages::{choices, chrome, render, segment_label, Choice};
use super::session::Viewer;
use super::{Console, Fields};
use crate::email::{fmt_day, fmt_money};
use serde::{Deserialize, Serialize};

use crate::ports::{Clock, KeptResultsStore, ReportStore, ResultsKeeperStore, StoreResult};

/// Weeks the weekly charts cover, ending with the last whole week.
pub const WEEKS: usize = 12;
/// Width of a rate chart's scale, 0% to 100%.
const RATE_WIDTH: f64 = 400.0;
/// Height of the weekly charts' bars at their largest.
const BAR_HEIGHT: f64 = 120.0;

/// A rate as the page shows it, and where it sits on the chart.
#[derive(Serialize, Deserialize)]
struct RateView {
    words: String,
    x: String,
    low: String,
    high: String,
}

fn percent(r: f64) -> String {
    format!("{:.0}%", r * 100.0)
}

fn rate_view(rate: Option<Rate>) -> Option<RateView> {
    let rate = rate?;
    let at = |v: f64| format!("{:.1}", v.clamp(0.0, 1.0) * RATE_WIDTH);
    Some(RateView {
        words: format!(
            "{} (95% CI {}\u{2013}{})",
            percent(rate.rate),
            percent(rate.ci[0]),
            percent(rate.ci[1])
        ),
        x: at(rate.rate),
        low: at(rate.ci[0]),
        high: at(rate.ci[1]),
    })
}

fn points(d: f64) -> String {
    let p = (d * 100.0).round() as i64;
    if p > 0 {
        format!("+{p}")
    } else if p < 0 {
        format!("\u{2212}{}", -p)
    } else {
        "0".to_string()
    }
}

#[derive(Serialize, Deserialize)]
struct RowView {
    milestone: String,
    segment: String,
    playbook: Option<RateView>,
    control: Option<RateView>,
    missed_playbook: u64,
    recovered_playbook: u64,
    missed_control: u64,
    recovered_control: u64,
    window_open: u64,
    uplift: String,
    small_sample: bool,
    /// The row's band in the chart, its label beside it.
    y: usize,
    label_y: usize,
    /// On a phone: the label above the band, the band the screen's width.
    #[serde(default)]
    narrow_y: usize,
    #[serde(default)]
    narrow_label_y: usize,
}

/// A row's height in the phone's chart: its label's line and its band.
const NARROW_ROW: usize = 52;

fn row_view(row: &Row, index: usize) -> RowView {
    RowView {
        milestone: if row.milestone == "all" {
            "All milestones".to_string()
        } else {
            row.milestone.clone()
        },
        segment: match row.segment.parse::<Segment>() {
            Ok(s) => segment_label(s).to_string(),
            Err(_) => "All segments".to_string(),
        },
        playbook: rate_view(row.recovery_rate_playbook),
        control: rate_view(row.recovery_rate_control),
        missed_playbook: row.missed_playbook,
        recovered_playbook: row.recovered_playbook,
        missed_control: row.missed_control,
        recovered_control: row.recovered_control,
        window_open: row.window_open,
        uplift: match (row.uplift, row.uplift_ci) {
            (Some(d), Some([low, high])) => {
                format!("{} points (95% CI {} to {})", points(d), points(low), points(high))
            }
            (Some(d), None) => format!("{} points", points(d)),
            _ => "not yet measurable".to_string(),
        },
        small_sample: row.small_sample,
        y: index * 36 + 20,
        label_y: index * 36 + 34,
        narrow_y: index * NARROW_ROW + 40,
        narrow_label_y: index * NARROW_ROW + 34,
    }
}

/// One week of the weekly charts.
#[derive(Serialize, Deserialize)]
struct WeekView {
    label: String,
    misses: u64,
    recoveries: u64,
    arr_at_start: String,
    x: usize,
    misses_y: String,
    misses_h: String,
    recoveries_y: String,
    recoveries_h: String,
    arr_y: String,
    arr_h: String,
}

#[derive(Serialize, Deserialize)]
struct ResultsView {
    period: String,
    as_of: String,
    since: String,
    until: String,
    /// The periods offered, this one chosen.
    #[serde(default)]
    periods: Vec<Choice>,
    segments: Vec<Choice>,
    headline: Option<String>,
    notes: Vec<String>,
    rows: Vec<RowView>,
    /// The chart's rows: each milestone over every segment, and every
    /// milestone by segment (the table has each milestone by segment too).
    chart: Vec<RowView>,
    chart_height: usize,
    #[serde(default)]
    narrow_height: usize,
    weeks: Vec<WeekView>,
    /// Where the weeks are, on a chosen period's page.
    #[serde(default)]
    weeks_href: String,
    arr_now: String,
    /// The period's expansion opportunities and pipeline, in words; empty
    /// when none opened (and on results kept before it was).
    #[serde(default)]
    expansion: String,
}

#[derive(Template)]
#[template(path = "console/results.html")]
struct ResultsHtml<'a> {
    c: &'a super::pages::Chrome,
    v: Option<&'a ResultsView>,
    /// Nothing kept yet: when the run keeps them.
    pending: Option<&'a ResultsPending>,
}

struct ResultsPending {
    next_run: String,
}

fn period_choices(current: Period) -> Vec<Choice> {
    choices(
        Period::ALL.iter().map(|p| (p.as_str(), p.label().to_string())),
        Some(current.as_str()),
    )
}

fn segment_choices(current: Option<Segment>) -> Vec<Choice> {
    choices(
        Segment::ALL.iter().map(|s| (s.as_str(), segment_label(*s).to_string())),
        current.map(Segment::as_str),
    )
}

/// The periods the page offers, each kept ready: misses due in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// Every miss so far, with the weekly charts.
    All,
    Last30Days,
    Last90Days,
    ThisQuarter,
    LastQuarter,
    Last12Months,
}

impl Period {
    pub const ALL: [Period; 6] = [
        Period::All,
        Period::Last30Days,
        Period::Last90Days,
        Period::ThisQuarter,
        Period::LastQuarter,
        Period::Last12Months,
    ];

    /// Its name in the page's address (`/results?period=90d`).
    pub fn as_str(self) -> &'static str {
        match self {
            Period::All => "all",
            Period::Last30Days => "30d",
            Period::Last90Days => "90d",
            Period::ThisQuarter => "quarter",
            Period::LastQuarter => "last-quarter",
            Period::Last12Months => "12m",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Period::All => "Every miss so far",
            Period::Last30Days => "The last 30 days",
            Period::Last90Days => "The last 90 days",
            Period::ThisQuarter => "This quarter",
            Period::LastQuarter => "Last quarter",
            Period::Last12Months => "The last 12 months",
        }
    }

    fn parse(text: &str) -> Option<Period> {
        Period::ALL.into_iter().find(|p| p.as_str() == text)
    }

    /// The due dates it covers at `now` (UTC days, both ends included), as
    /// `milepost report --since --until` takes them.
    pub fn dates(self, now: Timestamp) -> (Option<NaiveDate>, Option<NaiveDate>) {
        let today = now.date_naive();
        let quarter_start = |d: NaiveDate| {
            NaiveDate::from_ymd_opt(d.year(), (d.month0() / 3) * 3 + 1, 1).expect("a quarter's first day")
        };
        match self {
            Period::All => (None, None),
            Period::Last30Days => (Some(today - Duration::days(29)), Some(today)),
            Period::Last90Days => (Some(today - Duration::days(89)), Some(today)),
            Period::ThisQuarter => (Some(quarter_start(today)), Some(today)),
            Period::LastQuarter => {
                let this = quarter_start(today);
                (
                    Some(quarter_start(this - Duration::days(1))),
                    Some(this - Duration::days(1)),
                )
            }
            Period::Last12Months => (Some(today - Duration::days(364)), Some(today)),
        }
    }

    /// The report's options for it at `now`.
    pub fn options(self, segment: Option<Segment>, now: Timestamp) -> ReportOptions {
        let (since, until) = self.dates(now);
        ReportOptions {
            since,
            until,
            segment,
            success_plan: None,
            window_days: DEFAULT_WINDOW_DAYS,
            as_of: now,
        }
    }
}

/// What the page asks for: a period (every miss so far unless it names
/// one the page offers) and a segment.
pub fn asked_of(query: &Fields) -> (Period, Option<Segment>) {
    (
        query.get("period").and_then(Period::parse).unwrap_or(Period::All),
        query.get("segment").and_then(|s| s.parse().ok()),
    )
}

/// The `WEEKS` whole weeks before `now`'s, oldest first.
fn weeks_before(now: Timestamp) -> Vec<Week> {
    let last = Week::before(now, chrono_tz::UTC);
    (0..WEEKS)
        .rev()
        .map(|back| Week {
            sent_on: last.sent_on - Duration::weeks(back as i64),
            since: last.since - Duration::weeks(back as i64),
            until: last.until - Duration::weeks(back as i64),
        })
        .collect()
}

/// The segments the kept views cover: every one together, then each.
fn kept_segments() -> impl Iterator<Item = Option<Segment>> {
    std::iter::once(None).chain(Segment::ALL.into_iter().map(Some))
}

/// The name a kept view goes by: every miss so far's by its segment alone
/// (as first kept), another period's prefixed with it.
fn kept_key(period: Period, segment: Option<Segment>) -> String {
    let segment = segment.map_or("all", Segment::as_str);
    match period {
        Period::All => segment.to_string(),
        other => format!("{}:{segment}", other.as_str()),
    }
}

/// How long a kept view serves before the scheduled run works it out again.
pub const RESULTS_KEPT_FOR: Duration = Duration::hours(1);

/// Works out the page of every period it offers, for all segments and
/// each, at `now` (one read of the whole table) and keeps them. Returns
/// how many.
pub async fn keep_results(store: &dyn ResultsKeeperStore, now: Timestamp) -> StoreResult<usize> {
    let asked: Vec<(Period, Option<Segment>)> = Period::ALL
        .into_iter()
        .flat_map(|period| kept_segments().map(move |segment| (period, segment)))
        .collect();
    let views = results_views(store, &asked, now).await?;
    for ((period, segment), view) in asked.iter().zip(&views) {
        let json = serde_json::to_string(view).map_err(crate::ports::StoreError::backend)?;
        store.keep_results(&kept_key(*period, *segment), now, &json).await?;
    }
    Ok(views.len())
}

/// The kept views as a part of the scheduled run: worked out again when
/// the last are `RESULTS_KEPT_FOR` old.
#[derive(Clone)]
pub struct ResultsKeeper {
    pub store: std::sync::Arc<dyn ResultsKeeperStore>,
    pub clock: std::sync::Arc<dyn Clock>,
}

impl ResultsKeeper {
    /// How many views it kept (none: those kept are recent enough).
    pub async fn run(&self) -> StoreResult<usize> {
        let now = self.clock.now();
        if !results_due(self.store.as_ref(), now).await? {
            return Ok(0);
        }
        keep_results(self.store.as_ref(), now).await
    }
}

/// Whether the kept views are due to be worked out again at `now`.
pub async fn results_due(store: &dyn KeptResultsStore, now: Timestamp) -> StoreResult<bool> {
    Ok(match store.kept_results(&kept_key(Period::All, None)).await? {
        Some((as_of, _)) => as_of + RESULTS_KEPT_FOR <= now,
        None => true,
    })
}

/// The page's view for each of `asked`, from one read of the store; every
/// miss so far's with its segment's last twelve weeks.
async fn results_views(
    store: &dyn ReportStore,
    asked: &[(Period, Option<Segment>)],
    now: Timestamp,
) -> StoreResult<Vec<ResultsView>> {
    let weeks = weeks_before(now);
    let weeks_of = |period: Period| if period == Period::All { &weeks[..] } else { &[] };
    let mut all = Vec::with_capacity(asked.len() + 4 * WEEKS);
    for (period, segment) in asked {
        all.push(period.options(*segment, now));
        all.extend(weeks_of(*period).iter().map(|w| ReportOptions {
            segment: *segment,
            success_plan: None,
            ..w.options(now)
        }));
    }
    let mut reports = crate::report::reports(store, all).await?.into_iter();
    let mut views = Vec::with_capacity(asked.len());
    for (period, segment) in asked {
        let options = period.options(*segment, now);
        let weeks = weeks_of(*period);
        let report = reports.next().expect("the period's report");
        let weekly: Vec<Report> = reports.by_ref().take(weeks.len()).collect();
        views.push(view_of(*period, &options, &report, weeks, &weekly, now));
    }
    Ok(views)
}

pub(super) async fn results(
    console: &Console,
    viewer: &Viewer,
    query: &Fields,
    now: Timestamp,
) -> StoreResult<Option<String>> {
    let (period, segment) = asked_of(query);
    let kept = console.store.kept_results(&kept_key(period, segment)).await?;
    let c = chrome(console, Some(viewer), "Results", "results");
    // Kept by the scheduled run; before its first run there is nothing to show.
    let view = kept.and_then(|(_, json)| serde_json::from_str::<ResultsView>(&json).ok());
    let pending = view.is_none().then(|| ResultsPending {
        next_run: (now + RESULTS_KEPT_FOR).format("%H:%M UTC").to_string(),
    });
    Ok(Some(render(&ResultsHtml {
        c: &c,
        v: view.as_ref(),
        pending: pending.as_ref(),
    })))
}

fn view_of(
    period: Period,
    options: &ReportOptions,
    report: &Report,
    weeks: &[Week],
    weekly: &[Report],
    now: Timestamp,
) -> ResultsView {
    let rows: Vec<RowView> = report.rows.iter().enumerate().map(|(i, r)| row_view(r, i)).collect();
    let chart: Vec<RowView> = report
        .rows
        .iter()
        .filter(|r| r.milestone == "all" || r.segment == report.segment)
        .enumerate()
        .map(|(i, r)| row_view(r, i))
        .collect();
    let headline = report
        .rows
        .iter()
        .find(|r| r.milestone == "all" && r.segment == report.segment)
        .or_else(|| report.rows.iter().find(|r| r.milestone == "all"))
        .and_then(|r| {
            let (p, c) = (r.recovery_rate_playbook?, r.recovery_rate_control?);
            Some(format!(
                "With the playbook, {} of misses recovered within {} days; in the control group, {}. The playbook adds {} points (95% CI {} to {}).",
                percent(p.rate),
                report.window_days,
                percent(c.rate),
                points(r.uplift?),
                points(r.uplift_ci?[0]),
                points(r.uplift_ci?[1]),
            ))
        });
    let most = weekly
        .iter()
        .map(|w| w.activity.new_misses.total().max(w.activity.recoveries.total()))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let most_arr = weekly
        .iter()
        .filter_map(|w| w.at_risk.arr_at_start)
        .chain([report.at_risk.arr_now])
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let bar = |value: f64, most: f64| {
        let h = value / most * BAR_HEIGHT;
        (format!("{:.1}", BAR_HEIGHT - h + 4.0), format!("{h:.1}"))
    };
    let week_views = weeks
        .iter()
        .zip(weekly)
        .enumerate()
        .map(|(i, (week, r))| {
            let misses = r.activity.new_misses.total();
            let recoveries = r.activity.recoveries.total();
            let arr = r.at_risk.arr_at_start.unwrap_or(0);
            let (misses_y, misses_h) = bar(misses as f64, most);
            let (recoveries_y, recoveries_h) = bar(recoveries as f64, most);
            let (arr_y, arr_h) = bar(arr as f64, most_arr);
            WeekView {
                label: fmt_day(week.since),
                misses,
                recoveries,
                arr_at_start: fmt_money(arr),
                x: i * 56 + 8,
                misses_y,
                misses_h,
                recoveries_y,
                recoveries_h,
                arr_y,
                arr_h,
            }
        })
        .collect();
    ResultsView {
        period: match (options.since, options.until) {
            (Some(s), Some(u)) => format!("misses due {} to {}", fmt_day(s), fmt_day(u)),
            _ => "every miss so far".to_string(),
        },
        periods: period_choices(period),
        as_of: now.format("%-d %b %Y, %H:%M UTC").to_string(),
        since: options.since.map(|d| d.to_string()).unwrap_or_default(),
        until: options.until.map(|d| d.to_string()).unwrap_or_default(),
        segments: segment_choices(options.segment),
        headline,
        notes: report.notes.clone(),
        chart_height: chart.len() * 36 + 24,
        narrow_height: chart.len() * NARROW_ROW + 24,
        chart,
        rows,
        weeks: week_views,
        weeks_href: match options.segment {
            Some(segment) => format!("/results?segment={}", segment.as_str()),
            None => "/results".to_string(),
        },
        arr_now: fmt_money(report.at_risk.arr_now),
        expansion: crate::email::pipeline_words(&report.expansion),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn each_period_covers_the_days_its_name_says() {
        let now = chrono::Utc.with_ymd_and_hms(2026, 5, 5, 13, 0, 0).unwrap();
        let day = |y, m, d| Some(NaiveDate::from_ymd_opt(y, m, d).unwrap());
        let today = day(2026, 5, 5);
        assert_eq!(Period::All.dates(now), (None, None));
        assert_eq!(
            Period::Last30Days.dates(now),
            (day(2026, 4, 6), today),
            "30 days, today the 30th"
        );
        assert_eq!(Period::Last90Days.dates(now), (day(2026, 2, 5), today));
        assert_eq!(Period::ThisQuarter.dates(now), (day(2026, 4, 1), today));
        assert_eq!(Period::LastQuarter.dates(now), (day(2026, 1, 1), day(2026, 3, 31)));
        assert_eq!(Period::Last12Months.dates(now), (day(2025, 5, 6), today));
        // In January, last quarter is the year before's last.
        let january = chrono::Utc.with_ymd_and_hms(2027, 1, 10, 0, 0, 0).unwrap();
        assert_eq!(
            Period::LastQuarter.dates(january),
            (day(2026, 10, 1), day(2026, 12, 31))
        );
        for p in Period::ALL {
            assert_eq!(Period::parse(p.as_str()), Some(p), "its address reads back");
        }
    }
}
