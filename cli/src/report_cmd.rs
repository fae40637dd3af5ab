//! `milepost report`: the options checked, the report built from a store,
//! and printed as a table, JSON or CSV. The demo writes its `report.json`
//! with `to_json`, so it is exactly what `milepost report --json` prints.

use std::fmt::Write as _;

use chrono::NaiveDate;
use milepost_app::email::fmt_money;
use milepost_app::ports::{ReportStore, StoreError};
use milepost_domain::report::{Rate, Report, ReportBuilder, ReportOptions, Row, MAX_WINDOW_DAYS};
use milepost_domain::{Segment, Timestamp};

/// An option that cannot be used: exit 2, naming it.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct BadOption {
    pub field: &'static str,
    pub message: String,
}

/// The command line's options, as given.
#[derive(Clone, Debug, Default)]
pub struct Args {
    pub since: Option<String>,
    pub until: Option<String>,
    pub segment: Option<String>,
    /// `with`, `without` or `all` (none): accounts by whether they have a success plan.
    pub success_plan: Option<String>,
    pub window_days: u32,
}

/// What to report on: the options, and the segment asked for if Milepost has no such segment.
pub struct Checked {
    pub options: ReportOptions,
    pub unknown_segment: Option<String>,
}

pub fn check(args: &Args, as_of: Timestamp) -> Result<Checked, BadOption> {
    let date = |field: &'static str, value: &Option<String>| -> Result<Option<NaiveDate>, BadOption> {
        value
            .as_deref()
            .map(|v| {
                NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| BadOption {
                    field,
                    message: format!("`{v}` is not a date (YYYY-MM-DD)"),
                })
            })
            .transpose()
    };
    let (since, until) = (date("--since", &args.since)?, date("--until", &args.until)?);
    if !(1..=MAX_WINDOW_DAYS).contains(&args.window_days) {
        return Err(BadOption {
            field: "--window-days",
            message: format!("must be from 1 to {MAX_WINDOW_DAYS} days, not {}", args.window_days),
        });
    }
    let (segment, unknown_segment) = match args.segment.as_deref() {
        None | Some("all") => (None, None),
        Some(s) => match s.parse::<Segment>() {
            Ok(seg) => (Some(seg), None),
            Err(_) => (None, Some(s.to_string())),
        },
    };
    let success_plan = match args.success_plan.as_deref() {
        None | Some("all") => None,
        Some("with") => Some(true),
        Some("without") => Some(false),
        Some(other) => {
            return Err(BadOption {
                field: "--success-plan",
                message: format!("`{other}`: say with, without or all"),
            })
        }
    };
    Ok(Checked {
        options: ReportOptions {
            since,
            until,
            segment,
            success_plan,
            window_days: args.window_days,
            as_of,
        },
        unknown_segment,
    })
}

/// The report over `store`; an unknown segment or an empty period is an
/// empty report with a note, not an error.
pub async fn build(store: &dyn ReportStore, checked: Checked) -> Result<Report, StoreError> {
    let Checked {
        options,
        unknown_segment,
    } = checked;
    if let Some(segment) = unknown_segment {
        let mut empty = ReportBuilder::new(options).finish();
        empty.segment = segment.clone();
        empty.notes = vec![format!(
            "unknown segment `{segment}` (Milepost's are enterprise, mid_market and smb): nothing to report"
        )];
        return Ok(empty);
    }
    if let (Some(since), Some(until)) = (options.since, options.until) {
        if since > until {
            let mut empty = ReportBuilder::new(options).finish();
            empty.notes = vec![format!("--since {since} is after --until {until}: the period is empty")];
            return Ok(empty);
        }
    }
    milepost_app::report::report(store, options).await
}

pub fn to_json(report: &Report) -> String {
    let mut text = serde_json::to_string_pretty(report).expect("a report serialises");
    text.push('\n');
    text
}

const CSV_COLUMNS: [&str; 19] = [
    "milestone",
    "segment",
    "missed_playbook",
    "recovered_playbook",
    "missed_control",
    "recovered_control",
    "window_open",
    "recovery_rate_playbook",
    "recovery_rate_playbook_low",
    "recovery_rate_playbook_high",
    "recovery_rate_control",
    "recovery_rate_control_low",
    "recovery_rate_control_high",
    "uplift",
    "uplift_low",
    "uplift_high",
    "small_sample",
    "arr_at_risk",
    "arr_recovered",
];

/// The rows as CSV (churn and tasks are in the JSON and the table).
pub fn to_csv(report: &Report) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_COLUMNS).expect("writes to memory");
    let num = |v: Option<f64>| v.map_or_else(String::new, |v| format!("{v:.4}"));
    for r in &report.rows {
        let rate = |rate: Option<Rate>| {
            [
                num(rate.map(|r| r.rate)),
                num(rate.map(|r| r.ci[0])),
                num(rate.map(|r| r.ci[1])),
            ]
        };
        let mut record = vec![
            r.milestone.clone(),
            r.segment.clone(),
            r.missed_playbook.to_string(),
            r.recovered_playbook.to_string(),
            r.missed_control.to_string(),
            r.recovered_control.to_string(),
            r.window_open.to_string(),
        ];
        record.extend(rate(r.recovery_rate_playbook));
        record.extend(rate(r.recovery_rate_control));
        record.extend([
            num(r.uplift),
            num(r.uplift_ci.map(|c| c[0])),
            num(r.uplift_ci.map(|c| c[1])),
            r.small_sample.to_string(),
            r.arr_at_risk.to_string(),
            r.arr_recovered.to_string(),
        ]);
        w.write_record(&record).expect("writes to memory");
    }
    String::from_utf8(w.into_inner().expect("flushes to memory")).expect("CSV of UTF-8 is UTF-8")
}

fn pct(rate: Option<Rate>) -> String {
    rate.map_or_else(|| "-".into(), |r| format!("{:.0}%", r.rate * 100.0))
}

/// "+18 points (95% CI +6 to +30)", or why there is none.
pub fn uplift_line(row: &Row) -> String {
    match (row.uplift, row.uplift_ci) {
        (Some(d), Some([low, high])) => format!(
            "{:+.0} points (95% CI {:+.0} to {:+.0}){}",
            d * 100.0,
            low * 100.0,
            high * 100.0,
            if row.small_sample {
                ", too wide to act on yet"
            } else {
                ""
            }
        ),
        _ => "not measured: no misses in the control group yet".to_string(),
    }
}

/// What a miss is worth where a map says `arr_weight: discovered`: the
/// measure, its interval and what it rests on, and ARR at risk with the interval.
fn render_worth(out: &mut String, report: &Report) {
    let share = |w: f64| format!("{:.0}%", w * 100.0);
    let _ = writeln!(
        out,
        "\nWhat a miss is worth (arr_weight: discovered): {}",
        milepost_domain::report::WORTH_METHOD
    );
    let _ = writeln!(
        out,
        "(a pending or open miss takes the latest measure; one caught up keeps the weight it had)"
    );
    for w in &report.worth {
        let scope = format!("{}/{}", w.map_segment, w.map_tenure);
        let _ = match (&w.measured, w.weight_ci) {
            (Some(m), Some([low, high])) => writeln!(
                out,
                "  {:<28} {:<20} {} of ARR (95% {}–{}): churned {} of {} that missed it, {} of {} that achieved it ({} line of {}, kept {})",
                w.milestone,
                scope,
                share(w.weight),
                share(low),
                share(high),
                m.missed_churned,
                m.missed,
                m.achieved_churned,
                m.achieved,
                format_args!("{}/{}", m.segment, m.tenure),
                m.source,
                m.kept_at.format("%Y-%m-%d")
            ),
            _ => writeln!(
                out,
                "  {:<28} {:<20} {} of ARR (the default): {}",
                w.milestone,
                scope,
                share(w.weight),
                w.unmeasured.as_deref().unwrap_or("not measured")
            ),
        };
    }
    let at_risk = &report.at_risk;
    if let Some([low, high]) = at_risk.arr_now_range {
        let _ = writeln!(
            out,
            "ARR at risk now {} ({}–{} at the ends of each measured weight's 95% interval), {} of its {} misses weighed by measure",
            fmt_money(at_risk.arr_now),
            fmt_money(low),
            fmt_money(high),
            at_risk.misses_now_measured,
            at_risk.misses_now
        );
    }
}

/// Opportunities the period's expansion milestones opened, and their pipeline.
fn render_expansion(out: &mut String, e: &milepost_domain::report::ExpansionPipeline) {
    if e.opportunities == 0 {
        return;
    }
    let unpriced = |n: u64| match n {
        0 => String::new(),
        n => format!(" ({n} unpriced: no price to count at)"),
    };
    // The same sentence the console's results page gives.
    let _ = writeln!(out, "\n{}", milepost_app::email::pipeline_words(e));
    for r in &e.by_milestone {
        let pipeline = if r.unpriced == r.opportunities {
            "unpriced".to_string()
        } else {
            format!("{}{}", fmt_money(r.pipeline_arr), unpriced(r.unpriced))
        };
        let _ = writeln!(
            out,
            "  {:<28} {:>4} opened  {:>6} {:<14} {pipeline}",
            r.milestone,
            r.opportunities,
            r.adds,
            r.unit.replace('_', " "),
        );
    }
}

/// The table printed by default.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Recovery within {} days of the due date, as of {} (segment: {})",
        report.window_days,
        report.as_of.format("%Y-%m-%d %H:%M UTC"),
        report.segment
    );
    for note in &report.notes {
        let _ = writeln!(out, "note: {note}");
    }
    if let Some(all) = report.overall() {
        let _ = writeln!(
            out,
            "\nPlaybook {} of {} recovered ({}), control {} of {} ({}); uplift {}",
            all.recovered_playbook,
            all.missed_playbook,
            pct(all.recovery_rate_playbook),
            all.recovered_control,
            all.missed_control,
            pct(all.recovery_rate_control),
            uplift_line(all)
        );
        let _ = writeln!(
            out,
            "ARR at risk {}, recovered {}; {} misses still inside their window",
            fmt_money(all.arr_at_risk),
            fmt_money(all.arr_recovered),
            all.window_open
        );
    }
    let _ = writeln!(
        out,
        "\n{:<28} {:<11} {:>7} {:>9} {:>7} {:>9} {:>8}",
        "milestone", "segment", "missed", "playbook", "control", "control", "uplift"
    );
    for r in &report.rows {
        let uplift = r.uplift.map_or_else(|| "-".into(), |d| format!("{:+.0}", d * 100.0));
        let _ = writeln!(
            out,
            "{:<28} {:<11} {:>7} {:>9} {:>7} {:>9} {:>7}{}",
            r.milestone,
            r.segment,
            r.missed_playbook + r.missed_control,
            pct(r.recovery_rate_playbook),
            r.missed_control,
            pct(r.recovery_rate_control),
            uplift,
            if r.small_sample { "*" } else { " " }
        );
    }
    let _ = writeln!(out, "(* interval too wide to act on)");
    let _ = writeln!(out, "\nChurn by how an account's milestones went");
    for c in &report.churn {
        let ratio = c.ratio_to_on_time.map_or_else(|| "-".into(), |r| format!("{r:.1}x"));
        let _ = writeln!(
            out,
            "  {:<10} {:>5} decided {:>5} churned {:>6} {:>6}",
            c.accounts.as_str(),
            c.decided,
            c.churned,
            pct(c.churn_rate),
            ratio
        );
    }
    let at_risk = &report.at_risk;
    if at_risk.lapsed_misses > 0 {
        let _ = writeln!(
            out,
            "\nStill behind after the playbook: {} misses, {} ARR at risk (most first)",
            at_risk.lapsed_misses,
            fmt_money(at_risk.lapsed_arr)
        );
        for l in &at_risk.top_lapsed {
            let age = l.lapsed_days.map_or_else(
                || "date not recorded".to_string(),
                |d| format!("{} ago", milepost_app::email::days(d)),
            );
            let _ = writeln!(
                out,
                "  {:<28} {:<28} {:>12}  ended {age}",
                l.account_name,
                l.milestone_name,
                fmt_money(l.arr_at_risk)
            );
        }
    }
    if !report.worth.is_empty() {
        render_worth(&mut out, report);
    }
    render_expansion(&mut out, &report.expansion);
    if !report.tasks.is_empty() {
        let _ = writeln!(out, "\nOpen tasks by owner");
        for t in &report.tasks {
            let _ = writeln!(
                out,
                "  {:<36} {:>4} open {:>4} snoozed, oldest {} days",
                t.owner_email, t.open, t.snoozed, t.oldest_days
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use milepost_embedded::InMemoryStore;

    use super::*;

    fn args(since: Option<&str>, until: Option<&str>, segment: Option<&str>, window_days: u32) -> Args {
        Args {
            since: since.map(String::from),
            until: until.map(String::from),
            segment: segment.map(String::from),
            success_plan: None,
            window_days,
        }
    }

    #[test]
    fn a_malformed_date_or_window_names_its_option() {
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
        let bad = check(&args(Some("2026-13-01"), None, None, 30), now).err().unwrap();
        assert_eq!(bad.field, "--since");
        assert!(bad.message.contains("YYYY-MM-DD"), "{bad}");
        assert_eq!(
            check(&args(None, Some("june"), None, 30), now).err().unwrap().field,
            "--until"
        );
        assert_eq!(
            check(&args(None, None, None, 0), now).err().unwrap().field,
            "--window-days"
        );
        let ok = check(&args(Some("2026-01-01"), Some("2026-03-31"), Some("smb"), 14), now).unwrap();
        assert_eq!(ok.options.segment, Some(Segment::Smb));
        assert_eq!(ok.options.window_days, 14);
        let plan = |word: &str| {
            check(
                &Args {
                    success_plan: Some(word.into()),
                    ..args(None, None, None, 30)
                },
                now,
            )
        };
        assert_eq!(plan("with").unwrap().options.success_plan, Some(true));
        assert_eq!(plan("without").unwrap().options.success_plan, Some(false));
        assert_eq!(plan("all").unwrap().options.success_plan, None);
        assert_eq!(plan("some").err().unwrap().field, "--success-plan");
    }

    #[tokio::test]
    async fn an_unknown_segment_or_an_empty_period_is_an_empty_report_with_a_note() {
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
        let store = InMemoryStore::new();
        let unknown = build(&store, check(&args(None, None, Some("galactic"), 30), now).unwrap())
            .await
            .unwrap();
        assert!(unknown.rows.is_empty());
        assert_eq!(unknown.segment, "galactic");
        assert!(
            unknown.notes[0].contains("unknown segment `galactic`"),
            "{:?}",
            unknown.notes
        );
        let backwards = build(
            &store,
            check(&args(Some("2026-05-01"), Some("2026-04-01"), None, 30), now).unwrap(),
        )
        .await
        .unwrap();
        assert!(backwards.rows.is_empty());
        assert!(
            backwards.notes[0].contains("the period is empty"),
            "{:?}",
            backwards.notes
        );
        let nothing = build(&store, check(&args(None, None, None, 30), now).unwrap())
            .await
            .unwrap();
        assert!(
            nothing.notes[0].contains("no recovery to report"),
            "{:?}",
            nothing.notes
        );
        // The CSV has its header even when empty.
        assert!(to_csv(&nothing).starts_with("milestone,segment,missed_playbook"));
    }
}
