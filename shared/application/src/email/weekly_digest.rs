//! The weekly digest to leadership: misses, recoveries, ARR at risk and the
//! playbook's uplift; on a quarter's first Monday, the map review.

use super::*;

#[derive(Template)]
#[template(path = "weekly_digest.html")]
pub(super) struct WeeklyDigestHtml<'a> {
    v: &'a WeeklyDigestView,
}
#[derive(Template)]
#[template(path = "weekly_digest.txt")]
pub(super) struct WeeklyDigestText<'a> {
    v: &'a WeeklyDigestView,
}

/// The weekly digest's figures, each as `milepost report` gives it.
pub(super) struct WeeklyDigestView {
    subject: String,
    period: String,
    new_misses: u64,
    new_misses_split: String,
    recoveries: u64,
    recoveries_split: String,
    open_escalations: u64,
    open_tasks: u64,
    arr_now: String,
    arr_week_ago: String,
    week_start: String,
    /// `up $12,000`, `down $3,000`, `unchanged`.
    arr_change: String,
    accounts_at_risk: u64,
    /// Expansion opportunities opened in the week and their yearly
    /// pipeline; the row is left out when none opened.
    expansion_opportunities: u64,
    expansion_pipeline: String,
    expansion_unpriced: u64,
    top: Vec<TopAtRiskRow>,
    /// The misses whose playbook lapsed, at risk now.
    lapsed_misses: u64,
    lapsed_arr: String,
    lapsed: Vec<LapsedRow>,
    /// The playbook's uplift in a sentence, or why it is not shown yet.
    uplift: String,
    uplift_measured: bool,
    window_days: u32,
    reproduce: String,
    review: Option<ReviewView>,
}

/// The quarterly map review as the digest words it.
pub(super) struct ReviewView {
    quarter: String,
    /// Where the findings come from; none kept: how to keep one.
    discovery: Option<String>,
    findings: Vec<FindingRow>,
    /// The maps' milestones it did not judge, in words.
    unjudged: Vec<String>,
    /// Why the kept results could not be read, if they could not.
    unreadable: Option<String>,
    /// The milestones' measured weights (`arr_weight: discovered`).
    worth: Vec<String>,
    comparison: Option<ComparisonView>,
}

pub(super) struct FindingRow {
    /// "Reconsider" or "Consider adding".
    action: &'static str,
    milestone: String,
    name: String,
    scope: String,
    says: String,
}

pub(super) struct ComparisonView {
    heading: String,
    rows: Vec<(&'static str, String, String, String)>,
}

/// A map's scope in words: "every segment", "enterprise, first year".
fn scope_words(segment: &str, tenure: &str) -> String {
    let segment = match segment {
        "all" => "every segment".to_string(),
        s => s.replace('_', "-"),
    };
    match tenure {
        "all" => segment,
        "first_year" => format!("{segment}, first year"),
        _ => format!("{segment}, after the first year"),
    }
}

fn review_view(
    q: &milepost_domain::map_review::QuarterlyReview,
    week_report: &milepost_domain::report::Report,
) -> ReviewView {
    use milepost_domain::discovery::Ratio;
    use milepost_domain::map_review::Verdict;
    // Ratios as `milepost discover` prints them (two decimals), beside the rule's 1.5 and 2.0.
    let ratio = |r: Option<Ratio>| match r {
        Some(r @ Ratio::Finite(_)) => format!("renewed customers reached it {r} times as often as churned ones"),
        Some(Ratio::Unbounded) => "renewed customers reached it and no churned customer did".to_string(),
        None => "neither renewed nor churned customers reached it".to_string(),
    };
    ReviewView {
        quarter: q.quarter.clone(),
        discovery: q.discovery.as_ref().map(|d| {
            let (renewed, churned) = d.cohorts();
            format!(
                "the discovery kept on {} ({}; {renewed} renewed and {churned} churned accounts)",
                fmt_date(d.kept_at),
                d.source
            )
        }),
        findings: q
            .findings
            .iter()
            .map(|f| FindingRow {
                action: match f.verdict {
                    Verdict::Weak => "Reconsider",
                    Verdict::StrongCandidate => "Consider adding",
                },
                milestone: f.milestone.clone(),
                name: f.name.clone(),
                scope: scope_words(&f.segment, &f.tenure),
                says: format!(
                    "{} ({} renewed, {} churned{})",
                    ratio(f.ratio),
                    f.renewed_n,
                    f.churned_n,
                    if f.small_cohort { "; few accounts, so it may move" } else { "" }
                ),
            })
            .collect(),
        unjudged: q
            .unjudged
            .iter()
            .map(|u| format!("{} ({})", u.name, scope_words(&u.segment, &u.tenure)))
            .collect(),
        unreadable: q.unreadable.clone(),
        worth: week_report
            .worth
            .iter()
            .map(|w| match (&w.measured, w.weight_ci) {
                (Some(m), Some([low, high])) => format!(
                    "{} ({}): a miss puts {} of the account's ARR at risk (95% {} to {}): {} of {} accounts that missed it churned, {} of {} that reached it, over {}",
                    w.name,
                    scope_words(&w.map_segment, &w.map_tenure),
                    percent(w.weight),
                    percent(low),
                    percent(high),
                    m.missed_churned,
                    m.missed,
                    m.achieved_churned,
                    m.achieved,
                    // The map's own scope, or every account's when its own line was small or missing.
                    scope_words(&m.segment, &m.tenure)
                ),
                _ => format!(
                    "{} ({}): not measured yet, so a miss puts the default {} at risk ({})",
                    w.name,
                    scope_words(&w.map_segment, &w.map_tenure),
                    percent(w.weight),
                    w.unmeasured.as_deref().unwrap_or("no measure")
                ),
            })
            .collect(),
        comparison: q.comparison.as_ref().map(|c| ComparisonView {
            heading: format!(
                "The simulator's comparison kept on {}: the proposed maps ({}) against the maps it was given as current ({}), replayed on {} accounts from {} to {}, a CSM task counted as {} minutes",
                fmt_date(c.kept_at),
                c.proposed_maps.join(", "),
                c.current_maps.join(", "),
                c.accounts,
                fmt_date(c.from.and_time(chrono::NaiveTime::MIN).and_utc()),
                fmt_date(c.until.and_time(chrono::NaiveTime::MIN).and_utc()),
                c.minutes_per_task
            ),
            rows: super::compared(&c.current, &c.proposed),
        }),
    }
}

/// What one digest shows: the week's report, all time's (the uplift), and
/// on a quarter's first Monday its map review.
pub struct DigestFigures<'a> {
    pub week: &'a milepost_domain::report::Week,
    pub week_report: &'a milepost_domain::report::Report,
    pub all_time: &'a milepost_domain::report::Report,
    pub quarterly: Option<&'a milepost_domain::map_review::QuarterlyReview>,
}

pub(super) struct TopAtRiskRow {
    account_id: String,
    account_name: String,
    arr_at_risk: String,
    misses: u64,
    stage: &'static str,
    owner: String,
    /// The account's page in the console, where it is served.
    console: Option<String>,
}

pub(super) struct LapsedRow {
    account_id: String,
    account_name: String,
    milestone_name: String,
    arr_at_risk: String,
    /// `12 days ago (3 Apr 2026)`, or `before ages were kept`.
    age: String,
    owner: String,
    console: Option<String>,
}

pub(super) fn split(counts: milepost_domain::report::ByGroup) -> String {
    format!(
        "{} with the playbook, {} in the control group",
        counts.playbook, counts.control
    )
}

pub(super) fn percent(rate: f64) -> String {
    format!("{:.0}%", rate * 100.0)
}

/// The uplift sentence: measured once the all-time interval is narrow enough.
pub(super) fn uplift_words(all_time: &milepost_domain::report::Report) -> (bool, String) {
    use milepost_domain::report::ACTIONABLE_WIDTH;
    let Some(row) = all_time.overall() else {
        return (
            false,
            "No misses have had their full recovery window yet, so the playbook's effect cannot be measured."
                .to_string(),
        );
    };
    match (row.recovery_rate_playbook, row.recovery_rate_control, row.uplift, row.uplift_ci) {
        (Some(p), Some(c), Some(d), Some([low, high])) if !row.small_sample => (
            true,
            format!(
                "Customers who got the playbook caught up within {} days {} of the time ({} of {}; 95% CI {} to {}), against {} in the control group ({} of {}; {} to {}): {:+.0} points (95% CI {:+.0} to {:+.0}).",
                all_time.window_days,
                percent(p.rate),
                row.recovered_playbook,
                row.missed_playbook,
                percent(p.ci[0]),
                percent(p.ci[1]),
                percent(c.rate),
                row.recovered_control,
                row.missed_control,
                percent(c.ci[0]),
                percent(c.ci[1]),
                d * 100.0,
                low * 100.0,
                high * 100.0
            ),
        ),
        (_, _, Some(_), Some([low, high])) => (
            false,
            format!(
                "Not enough misses yet to tell what the playbook adds: the uplift's 95% interval is still {:.0} points wide ({} playbook and {} control misses with a closed window). It appears here once it is narrower than {:.0} points.",
                (high - low) * 100.0,
                row.missed_playbook,
                row.missed_control,
                ACTIONABLE_WIDTH * 100.0
            ),
        ),
        _ => (
            false,
            "No misses in the control group yet: set `holdout` in a milestone map to measure what the playbook adds.".to_string(),
        ),
    }
}

/// The weekly leadership digest: `week_report` is `milepost report` for the
/// week, `all_time` over all time (its uplift); both as of `now`.
pub fn weekly_digest(
    cfg: &Config,
    figures: &DigestFigures<'_>,
    recipient: &Contact,
    key: SendKey,
    now: Timestamp,
) -> Result<OutgoingEmail, RenderError> {
    let (week, week_report, all_time) = (figures.week, figures.week_report, figures.all_time);
    let day = |d: chrono::NaiveDate| fmt_date(d.and_time(chrono::NaiveTime::MIN).and_utc());
    let activity = week_report.activity;
    let at_risk = &week_report.at_risk;
    let week_ago = at_risk.arr_at_start.unwrap_or(0);
    let arr_change = match at_risk.arr_now.cmp(&week_ago) {
        std::cmp::Ordering::Greater => format!("up {}", fmt_money(at_risk.arr_now - week_ago)),
        std::cmp::Ordering::Less => format!("down {}", fmt_money(week_ago - at_risk.arr_now)),
        std::cmp::Ordering::Equal => "unchanged".to_string(),
    };
    let (uplift_measured, uplift) = uplift_words(all_time);
    let view = WeeklyDigestView {
        subject: clean_header(&format!(
            "[Milepost] Week of {}: {} new misses, {} recoveries, {} ARR at risk{}",
            day(week.since),
            activity.new_misses.total(),
            activity.recoveries.total(),
            fmt_money(at_risk.arr_now),
            figures
                .quarterly
                .map_or(String::new(), |q| format!("; {} map review", q.quarter))
        )),
        period: format!("{} to {}", day(week.since), day(week.until)),
        new_misses: activity.new_misses.total(),
        new_misses_split: split(activity.new_misses),
        recoveries: activity.recoveries.total(),
        recoveries_split: split(activity.recoveries),
        open_escalations: activity.open_escalations,
        open_tasks: week_report.tasks.iter().map(|t| t.open + t.snoozed).sum(),
        arr_now: fmt_money(at_risk.arr_now),
        arr_week_ago: fmt_money(week_ago),
        week_start: day(week.since),
        arr_change,
        accounts_at_risk: at_risk.accounts_now,
        expansion_opportunities: week_report.expansion.opportunities,
        expansion_pipeline: fmt_money(week_report.expansion.pipeline_arr),
        expansion_unpriced: week_report.expansion.unpriced,
        top: at_risk
            .top_accounts
            .iter()
            .map(|a| TopAtRiskRow {
                account_id: a.account_id.clone(),
                account_name: a.account_name.clone(),
                arr_at_risk: fmt_money(a.arr_at_risk),
                misses: a.misses,
                stage: a.stage.label(),
                owner: a.owner.clone(),
                console: console_account_url(cfg, &milepost_domain::AccountId::new(a.account_id.clone())),
            })
            .collect(),
        lapsed_misses: at_risk.lapsed_misses,
        lapsed_arr: fmt_money(at_risk.lapsed_arr),
        lapsed: at_risk
            .top_lapsed
            .iter()
            .map(|l| LapsedRow {
                account_id: l.account_id.clone(),
                account_name: l.account_name.clone(),
                milestone_name: l.milestone_name.clone(),
                arr_at_risk: fmt_money(l.arr_at_risk),
                age: match (l.lapsed_days, l.lapsed_at) {
                    (Some(d), Some(at)) => format!("{} ({})", days_ago(d), fmt_date(at)),
                    _ => "date not recorded".to_string(),
                },
                owner: l.owner.clone(),
                console: console_account_url(cfg, &milepost_domain::AccountId::new(l.account_id.clone())),
            })
            .collect(),
        uplift,
        uplift_measured,
        window_days: all_time.window_days,
        reproduce: format!("milepost report --since {} --until {}", week.since, week.until),
        review: figures.quarterly.map(|q| review_view(q, week_report)),
    };
    Ok(OutgoingEmail {
        in_reply_to: None,
        key,
        kind: EmailKind::WeeklyDigest,
        // About every account, not one: the week names the email in outboxes.
        account_id: milepost_domain::AccountId::new(format!("week-{}", week.since)),
        milestone_id: "weekly-digest".to_string(),
        from: cfg.sender.clone(),
        to: vec![recipient.clone()],
        subject: view.subject.clone(),
        text: WeeklyDigestText { v: &view }.render()?,
        html: WeeklyDigestHtml { v: &view }.render()?,
        reply_to: None,
        list_unsubscribe: None,
        date: now,
        names: Vec::new(),
    })
}
