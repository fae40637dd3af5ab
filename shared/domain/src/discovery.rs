//! The statistics of `milepost discover`: how a milestone's achievement in
//! the renewed cohort compares with the churned cohort, with the uncertainty
//! small cohorts carry. Plain arithmetic over counts; the definitions are the
//! ones the README and `milepost discover --help` state.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// z for a two-sided 95% interval.
const Z95: f64 = 1.959_963_984_540_054;

/// Cohorts smaller than this are flagged: their rates move a lot with one account.
pub const SMALL_COHORT: u64 = 30;

/// A ratio that may be unbounded (its denominator rate is zero).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Ratio {
    Finite(f64),
    Unbounded,
}

impl Ratio {
    /// `a / b`, unbounded when `b` is zero and `a` is not; `None` when both are.
    pub fn of(a: f64, b: f64) -> Option<Ratio> {
        match (a, b) {
            (a, b) if b > 0.0 => Some(Ratio::Finite(a / b)),
            (a, _) if a > 0.0 => Some(Ratio::Unbounded),
            _ => None,
        }
    }

    /// For sorting: unbounded above every finite ratio.
    pub fn sort_key(self) -> f64 {
        match self {
            Ratio::Finite(r) => r,
            Ratio::Unbounded => f64::INFINITY,
        }
    }
}

impl std::fmt::Display for Ratio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ratio::Finite(r) => write!(f, "{r:.2}"),
            Ratio::Unbounded => f.write_str("unbounded"),
        }
    }
}

/// JSON: a number, or the string `"unbounded"`.
impl Serialize for Ratio {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Ratio::Finite(r) => s.serialize_f64(*r),
            Ratio::Unbounded => s.serialize_str("unbounded"),
        }
    }
}

/// As `milepost discover --format json` prints it: a non-negative number, or "unbounded".
impl<'de> Deserialize<'de> for Ratio {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Printed {
            Number(f64),
            Word(String),
        }
        match Printed::deserialize(d)? {
            Printed::Number(r) if r.is_finite() && r >= 0.0 => Ok(Ratio::Finite(r)),
            Printed::Word(w) if w == "unbounded" => Ok(Ratio::Unbounded),
            _ => Err(D::Error::custom("a ratio is a number of 0 or more, or \"unbounded\"")),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Renewed customers achieve it more than twice as often: a milestone worth escalating.
    Strong,
    Moderate,
    /// Under 1.5: barely tells the cohorts apart.
    Weak,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Strong => "strong",
            Class::Moderate => "moderate",
            Class::Weak => "weak",
        }
    }

    pub fn of(ratio: Ratio) -> Class {
        match ratio.sort_key() {
            r if r > 2.0 => Class::Strong,
            r if r < 1.5 => Class::Weak,
            _ => Class::Moderate,
        }
    }
}

/// The Wilson score interval for `successes` of `n` at 95%; `None` when `n` is 0.
/// Unlike the normal approximation it stays inside [0, 1] and is honest at
/// the small cohorts and extreme rates CS teams have.
pub fn wilson(successes: u64, n: u64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let (n, p) = (n as f64, successes as f64 / n as f64);
    let z2 = Z95 * Z95;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z95 / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    // At 0 and at n the bound is exactly 0 or 1; floating point lands a hair off.
    let lower = if successes == 0 { 0.0 } else { (centre - half).max(0.0) };
    let upper = if p == 1.0 { 1.0 } else { (centre + half).min(1.0) };
    Some((lower, upper))
}

/// A rate with its 95% Wilson interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Rate {
    pub rate: f64,
    pub ci: [f64; 2],
}

impl Rate {
    pub fn of(successes: u64, n: u64) -> Option<Rate> {
        let (low, high) = wilson(successes, n)?;
        Some(Rate {
            rate: successes as f64 / n as f64,
            ci: [low, high],
        })
    }
}

/// Newcombe's hybrid score interval for the difference of two independent
/// proportions, from their Wilson intervals (`report`'s module documentation states the formula).
pub fn newcombe(first: Rate, second: Rate) -> [f64; 2] {
    let d = first.rate - second.rate;
    let (p1, [l1, u1]) = (first.rate, first.ci);
    let (p2, [l2, u2]) = (second.rate, second.ci);
    [
        d - ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt(),
        d + ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt(),
    ]
}

/// The 95% interval of the ratio of two independent proportions `a/n` and
/// `b/m` (Katz's log method). A zero count makes the log undefined, so then
/// every count gets half an account (Haldane's correction) for the interval
/// only. The upper bound may be unbounded when `b` is 0 and `m` is small.
pub fn ratio_interval(a: u64, n: u64, b: u64, m: u64) -> Option<(f64, Ratio)> {
    if n == 0 || m == 0 {
        return None;
    }
    let (mut a, mut n, mut b, mut m) = (a as f64, n as f64, b as f64, m as f64);
    if a == 0.0 || b == 0.0 {
        (a, n, b, m) = (a + 0.5, n + 1.0, b + 0.5, m + 1.0);
    }
    let log_ratio = ((a / n) / (b / m)).ln();
    let se = ((1.0 / a - 1.0 / n) + (1.0 / b - 1.0 / m)).sqrt();
    let upper = (log_ratio + Z95 * se).exp();
    let upper = if upper.is_finite() {
        Ratio::Finite(upper)
    } else {
        Ratio::Unbounded
    };
    Some(((log_ratio - Z95 * se).exp(), upper))
}

/// Churn risk of missing: the churn rate among accounts that missed the
/// milestone over the churn rate among those that achieved it.
pub fn churn_risk_if_missed(cohorts: &Cohorts) -> Option<Ratio> {
    let achieved = cohorts.renewed_achieved + cohorts.churned_achieved;
    let missed = cohorts.renewed_n + cohorts.churned_n - achieved;
    if achieved == 0 || missed == 0 {
        return None;
    }
    let churned_missed = cohorts.churned_n - cohorts.churned_achieved;
    Ratio::of(
        churned_missed as f64 / missed as f64,
        cohorts.churned_achieved as f64 / achieved as f64,
    )
}

/// How many accounts of each cohort were in scope and how many achieved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cohorts {
    pub renewed_n: u64,
    pub renewed_achieved: u64,
    pub churned_n: u64,
    pub churned_achieved: u64,
}

/// Everything `discover` reports about one milestone in one scope.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    pub renewed_n: u64,
    pub renewed_achieved: u64,
    pub churned_n: u64,
    pub churned_achieved: u64,
    pub renewed_rate: Option<f64>,
    pub churned_rate: Option<f64>,
    pub renewed_rate_ci: Option<(f64, f64)>,
    pub churned_rate_ci: Option<(f64, f64)>,
    pub ratio: Option<Ratio>,
    pub ratio_ci: Option<(f64, Ratio)>,
    pub class: Option<Class>,
    pub churn_risk_if_missed: Option<Ratio>,
    pub divergence_month: Option<u32>,
    /// A cohort has fewer than `SMALL_COHORT` accounts.
    pub small_cohort: bool,
}

impl Comparison {
    /// `renewed_days` / `churned_days`: for each achieving account of the
    /// cohort, days from contract start to achievement (for the divergence month).
    pub fn new(c: Cohorts, renewed_days: &[u32], churned_days: &[u32]) -> Comparison {
        let rate = |k: u64, n: u64| (n > 0).then(|| k as f64 / n as f64);
        let (renewed_rate, churned_rate) = (
            rate(c.renewed_achieved, c.renewed_n),
            rate(c.churned_achieved, c.churned_n),
        );
        let ratio = match (renewed_rate, churned_rate) {
            (Some(r), Some(ch)) => Ratio::of(r, ch),
            _ => None,
        };
        Comparison {
            renewed_n: c.renewed_n,
            renewed_achieved: c.renewed_achieved,
            churned_n: c.churned_n,
            churned_achieved: c.churned_achieved,
            renewed_rate,
            churned_rate,
            renewed_rate_ci: wilson(c.renewed_achieved, c.renewed_n),
            churned_rate_ci: wilson(c.churned_achieved, c.churned_n),
            ratio,
            ratio_ci: ratio_interval(c.renewed_achieved, c.renewed_n, c.churned_achieved, c.churned_n),
            class: ratio.map(Class::of),
            churn_risk_if_missed: churn_risk_if_missed(&c),
            divergence_month: divergence_month(c.renewed_n, renewed_days, c.churned_n, churned_days),
            small_cohort: c.renewed_n < SMALL_COHORT || c.churned_n < SMALL_COHORT,
        }
    }
}

/// Cumulative achievement rate of a cohort of `n` by the end of months
/// 1..=12 (30·m days after contract start), from each achiever's days.
pub fn cumulative_by_month(n: u64, days: &[u32]) -> [f64; 12] {
    let mut rates = [0.0; 12];
    if n == 0 {
        return rates;
    }
    for (i, rate) in rates.iter_mut().enumerate() {
        let by = 30 * (i as u32 + 1);
        *rate = days.iter().filter(|&&d| d <= by).count() as f64 / n as f64;
    }
    rates
}

/// The month (1–12) where the renewed cohort's cumulative achievement rate
/// leads the churned cohort's the most; the earliest on ties. `None` without
/// both cohorts.
pub fn divergence_month(renewed_n: u64, renewed_days: &[u32], churned_n: u64, churned_days: &[u32]) -> Option<u32> {
    if renewed_n == 0 || churned_n == 0 {
        return None;
    }
    let renewed = cumulative_by_month(renewed_n, renewed_days);
    let churned = cumulative_by_month(churned_n, churned_days);
    let mut best = (f64::NEG_INFINITY, 0);
    for m in 0..12 {
        let gap = renewed[m] - churned[m];
        // Strictly greater (beyond float noise) keeps the earliest month on ties.
        if gap > best.0 + 1e-12 {
            best = (gap, m as u32 + 1);
        }
    }
    Some(best.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 5e-4
    }

    #[test]
    fn wilson_matches_published_values() {
        // Newcombe (1998), table I: 81/263 → 0.2553–0.3662; 15/148 → 0.0624–0.1605.
        let (lo, hi) = wilson(81, 263).unwrap();
        assert!(close(lo, 0.2553) && close(hi, 0.3662), "{lo} {hi}");
        let (lo, hi) = wilson(15, 148).unwrap();
        assert!(close(lo, 0.0624) && close(hi, 0.1605), "{lo} {hi}");
        // 0 of 10 and 10 of 10 stay inside [0, 1] and are not degenerate.
        let (lo, hi) = wilson(0, 10).unwrap();
        assert!(lo == 0.0 && close(hi, 0.2775), "{lo} {hi}");
        let (lo, hi) = wilson(10, 10).unwrap();
        assert!(close(lo, 0.7225) && hi == 1.0, "{lo} {hi}");
        assert_eq!(wilson(0, 0), None);
    }

    #[test]
    fn ratio_interval_is_katz_and_survives_zero_counts() {
        // 40/50 vs 10/50: ratio 4, Katz 95% interval exp(ln 4 ± 1.96·sqrt(1/40-1/50+1/10-1/50)).
        let (lo, hi) = ratio_interval(40, 50, 10, 50).unwrap();
        let se = (1.0f64 / 40.0 - 1.0 / 50.0 + 1.0 / 10.0 - 1.0 / 50.0).sqrt();
        assert!(close(lo, (4f64.ln() - Z95 * se).exp()), "{lo}");
        assert!(
            matches!(hi, Ratio::Finite(h) if close(h, (4f64.ln() + Z95 * se).exp())),
            "{hi:?}"
        );
        // No churned account achieved it: the point ratio is unbounded, the interval finite.
        let (lo, hi) = ratio_interval(30, 40, 0, 12).unwrap();
        assert!(lo > 1.0, "still clearly above 1: {lo}");
        assert!(matches!(hi, Ratio::Finite(h) if h > lo));
        assert_eq!(ratio_interval(3, 0, 1, 5), None);
    }

    #[test]
    fn classes_follow_the_thresholds() {
        assert_eq!(Class::of(Ratio::Finite(2.01)), Class::Strong);
        assert_eq!(Class::of(Ratio::Finite(2.0)), Class::Moderate);
        assert_eq!(Class::of(Ratio::Finite(1.5)), Class::Moderate);
        assert_eq!(Class::of(Ratio::Finite(1.49)), Class::Weak);
        assert_eq!(Class::of(Ratio::Unbounded), Class::Strong);
    }

    #[test]
    fn a_comparison_states_rates_ratio_risk_and_flags_small_cohorts() {
        let c = Cohorts {
            renewed_n: 100,
            renewed_achieved: 80,
            churned_n: 20,
            churned_achieved: 5,
        };
        let cmp = Comparison::new(c, &[], &[]);
        assert_eq!((cmp.renewed_rate, cmp.churned_rate), (Some(0.8), Some(0.25)));
        assert_eq!(cmp.ratio, Some(Ratio::Finite(3.2)));
        assert_eq!(cmp.class, Some(Class::Strong));
        // Missed: 20 renewed + 15 churned → churn 15/35; achieved: 80 + 5 → 5/85.
        let Some(Ratio::Finite(risk)) = cmp.churn_risk_if_missed else {
            panic!()
        };
        assert!(close(risk, (15.0 / 35.0) / (5.0 / 85.0)), "{risk}");
        assert!(cmp.small_cohort, "20 churned accounts is under 30");
        let json = serde_json::to_value(&cmp).unwrap();
        assert_eq!(json["ratio"], 3.2);
        assert_eq!(json["class"], "strong");

        let none_churned_achieved = Comparison::new(
            Cohorts {
                churned_achieved: 0,
                ..c
            },
            &[],
            &[],
        );
        assert_eq!(none_churned_achieved.ratio, Some(Ratio::Unbounded));
        assert_eq!(serde_json::to_value(none_churned_achieved.ratio).unwrap(), "unbounded");
    }

    #[test]
    fn the_divergence_month_is_where_the_cohorts_differ_most_earliest_on_ties() {
        // Renewed accounts achieve in month 2 (days 31–60), churned ones in month 5.
        let renewed: Vec<u32> = vec![45; 8];
        let churned: Vec<u32> = vec![140; 8];
        assert_eq!(cumulative_by_month(10, &renewed)[1], 0.8);
        // Gap 0.8 from month 2 through month 4, then 0 once churned catch up: month 2.
        assert_eq!(divergence_month(10, &renewed, 10, &churned), Some(2));
        // Churned catch up partly in month 3: the gap is still largest in month 2.
        let churned: Vec<u32> = vec![80, 80, 80, 200];
        assert_eq!(divergence_month(10, &renewed, 10, &churned), Some(2));
        assert_eq!(divergence_month(0, &[], 10, &churned), None);
        // Nobody achieves: every gap is 0, the earliest month wins.
        assert_eq!(divergence_month(5, &[], 5, &[]), Some(1));
    }
}

/// One milestone in one scope of a discovery result, as the console's maps
/// page shows it beside the map: what `milepost discover --format json`
/// prints for it, less the rates and intervals.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiscoveryLine {
    pub milestone: String,
    pub name: String,
    /// A segment, or `all`.
    pub segment: String,
    /// `first_year`, `multi_year`, or `all`.
    pub tenure: String,
    pub renewed_n: u64,
    pub churned_n: u64,
    /// How many of each cohort achieved it (kept since `arr_weight:
    /// discovered`; a line kept before has none, and measures nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewed_achieved: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub churned_achieved: Option<u64>,
    #[serde(default)]
    pub ratio: Option<Ratio>,
    #[serde(default)]
    pub class: Option<Class>,
    /// The first month the cohorts' achievement curves part.
    #[serde(default)]
    pub divergence_month: Option<u32>,
    #[serde(default)]
    pub small_cohort: bool,
}

/// A discovery result kept in the store for the console's maps page: from
/// `milepost discover --from-store`, or a `--format json` result uploaded
/// with `milepost maps discovery`. The latest replaces the one before.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeptDiscovery {
    pub kept_at: crate::Timestamp,
    /// Where it came from, in words ("the store's renewal decisions", a file's name).
    pub source: String,
    pub lines: Vec<DiscoveryLine>,
}

const SEGMENTS: [&str; 4] = ["all", "enterprise", "mid_market", "smb"];
const TENURES: [&str; 3] = ["all", "first_year", "multi_year"];

impl KeptDiscovery {
    /// What `milepost discover --format json` printed (`{"cohorts":
    /// "renewal", "milestones": [...]}`; files from before `cohorts` have
    /// none), checked: renewal cohorts only, every line names a milestone, a
    /// known segment and tenure.
    pub fn from_json(text: &str, source: &str, kept_at: crate::Timestamp) -> Result<KeptDiscovery, String> {
        #[derive(Deserialize)]
        struct Cohorts {
            #[serde(default)]
            cohorts: Option<String>,
        }
        #[derive(Deserialize)]
        struct Printed {
            milestones: Vec<DiscoveryLine>,
        }
        // What a milestone is worth is measured in churn: a comparison of
        // other cohorts (expanded vs not) would be read as churn risk.
        let compared: Cohorts = serde_json::from_str(text)
            .map_err(|e| format!("not what `milepost discover --format json` prints: {e}"))?;
        if let Some(other) = compared.cohorts.filter(|c| c != "renewal") {
            return Err(format!(
                "it compares {other} cohorts, not renewed vs churned accounts: only a renewal discovery is kept"
            ));
        }
        let printed: Printed = serde_json::from_str(text)
            .map_err(|e| format!("not what `milepost discover --format json` prints: {e}"))?;
        if printed.milestones.is_empty() {
            return Err("no milestone in it: nothing to show beside the maps".into());
        }
        for (i, line) in printed.milestones.iter().enumerate() {
            let at = format!("milestones[{i}]");
            if line.milestone.trim().is_empty() {
                return Err(format!("{at}.milestone is empty"));
            }
            if !SEGMENTS.contains(&line.segment.as_str()) {
                return Err(format!(
                    "{at}.segment is {:?}: one of {}",
                    line.segment,
                    SEGMENTS.join(", ")
                ));
            }
            if !TENURES.contains(&line.tenure.as_str()) {
                return Err(format!(
                    "{at}.tenure is {:?}: one of {}",
                    line.tenure,
                    TENURES.join(", ")
                ));
            }
            if let (Some(ratio), Some(class)) = (line.ratio, line.class) {
                if Class::of(ratio) != class {
                    return Err(format!(
                        "{at}.class is {} but its ratio {ratio} makes it {}",
                        class.as_str(),
                        Class::of(ratio).as_str()
                    ));
                }
            }
            for (field, achieved, n, n_field) in [
                ("renewed_achieved", line.renewed_achieved, line.renewed_n, "renewed_n"),
                ("churned_achieved", line.churned_achieved, line.churned_n, "churned_n"),
            ] {
                if achieved.is_some_and(|a| a > n) {
                    return Err(format!("{at}.{field} is more than {at}.{n_field} ({n})"));
                }
            }
        }
        Ok(KeptDiscovery {
            kept_at,
            source: source.to_string(),
            lines: printed.milestones,
        })
    }

    /// `milestone`'s line for a map of `segment` and `tenure` (`all` for
    /// either when the map covers every one): that scope's, else the overall one.
    pub fn line_for(&self, milestone: &str, segment: &str, tenure: &str) -> Option<&DiscoveryLine> {
        let find = |segment: &str, tenure: &str| {
            self.lines
                .iter()
                .find(|l| l.milestone == milestone && l.segment == segment && l.tenure == tenure)
        };
        find(segment, tenure).or_else(|| find("all", "all"))
    }

    /// Renewed and churned accounts behind it: the overall lines' largest cohorts.
    pub fn cohorts(&self) -> (u64, u64) {
        let overall = self.lines.iter().filter(|l| l.segment == "all" && l.tenure == "all");
        overall.fold((0, 0), |(r, c), l| (r.max(l.renewed_n), c.max(l.churned_n)))
    }
}

/// What missing a milestone is measured to cost, for a map's `arr_weight:
/// discovered`: the churn rate among the accounts that missed it less the
/// churn rate among those that achieved it, in one line of a kept
/// discovery, with Newcombe's 95% interval of that difference.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeasuredWeight {
    /// Churn rate of the missers − churn rate of the achievers.
    pub difference: f64,
    pub interval: [f64; 2],
    pub missed: u64,
    pub missed_churned: u64,
    pub achieved: u64,
    pub achieved_churned: u64,
    /// The line's scope: the map's own, or `all` when the discovery has none for it.
    pub segment: String,
    pub tenure: String,
    /// The kept discovery's source and when it was kept.
    pub source: String,
    pub kept_at: crate::Timestamp,
}

impl MeasuredWeight {
    /// `line`'s measure, or why it gives none (in words for the maps page and the report).
    pub fn of(line: &DiscoveryLine, kept: &KeptDiscovery) -> Result<MeasuredWeight, String> {
        let (Some(renewed_achieved), Some(churned_achieved)) = (line.renewed_achieved, line.churned_achieved) else {
            return Err(
                "the kept discovery has no achieved counts (kept by an older version): run discover again".into(),
            );
        };
        let achieved = renewed_achieved + churned_achieved;
        let missed = (line.renewed_n + line.churned_n).saturating_sub(achieved);
        let missed_churned = line.churned_n.saturating_sub(churned_achieved);
        let (Some(missers), Some(achievers)) = (Rate::of(missed_churned, missed), Rate::of(churned_achieved, achieved))
        else {
            return Err(if line.renewed_n + line.churned_n == 0 {
                "no decided account in its scope".into()
            } else if achieved == 0 {
                "no decided account achieved it: nothing to compare a miss with".into()
            } else {
                "every decided account achieved it: no miss to measure".into()
            });
        };
        Ok(MeasuredWeight {
            difference: missers.rate - achievers.rate,
            interval: newcombe(missers, achievers),
            missed,
            missed_churned,
            achieved,
            achieved_churned: churned_achieved,
            segment: line.segment.clone(),
            tenure: line.tenure.clone(),
            source: kept.source.clone(),
            kept_at: kept.kept_at,
        })
    }

    /// The share of an account's ARR a miss puts at risk: the difference,
    /// and nothing when missers churn no more often than achievers.
    pub fn weight(&self) -> f64 {
        self.difference.clamp(0.0, 1.0)
    }

    /// The interval of `weight`, inside [0, 1] like the weight.
    pub fn range(&self) -> [f64; 2] {
        self.interval.map(|v| v.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod kept_tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    fn at() -> crate::Timestamp {
        Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap()
    }

    fn printed(lines: &str) -> String {
        format!("{{\"milestones\": [{lines}], \"review\": []}}")
    }

    const OVERALL: &str = r#"{"milestone": "first", "name": "First", "segment": "all", "tenure": "all",
        "renewed_n": 40, "renewed_achieved": 30, "churned_n": 12, "churned_achieved": 3,
        "ratio": 3.0, "class": "strong", "divergence_month": 2, "small_cohort": false}"#;
    const SMB: &str = r#"{"milestone": "first", "name": "First", "segment": "smb", "tenure": "first_year",
        "renewed_n": 8, "churned_n": 0, "ratio": "unbounded", "class": "strong", "small_cohort": true}"#;

    #[test]
    fn a_printed_result_is_kept_whole_and_found_by_the_maps_scope() {
        let kept = KeptDiscovery::from_json(&printed(&format!("{OVERALL}, {SMB}")), "results.json", at()).unwrap();
        assert_eq!(kept.lines.len(), 2);
        let smb = kept.line_for("first", "smb", "first_year").unwrap();
        assert_eq!((smb.ratio, smb.small_cohort), (Some(Ratio::Unbounded), true));
        let enterprise = kept.line_for("first", "enterprise", "all").unwrap();
        assert_eq!(enterprise.segment, "all", "no enterprise line: the overall one");
        assert_eq!(enterprise.ratio, Some(Ratio::Finite(3.0)));
        assert_eq!(enterprise.divergence_month, Some(2));
        assert!(kept.line_for("second", "all", "all").is_none());
        assert_eq!(kept.cohorts(), (40, 12));
        // Kept as JSON and read back, the same.
        let again: KeptDiscovery = serde_json::from_str(&serde_json::to_string(&kept).unwrap()).unwrap();
        assert_eq!(again, kept);
    }

    #[test]
    fn a_line_measures_the_churn_rate_difference_between_missers_and_achievers() {
        let kept = KeptDiscovery::from_json(&printed(OVERALL), "results.json", at()).unwrap();
        let renewal = format!("{{\"cohorts\": \"renewal\", {}", &printed(OVERALL)[1..]);
        assert!(
            KeptDiscovery::from_json(&renewal, "results.json", at()).is_ok(),
            "as discover prints it now"
        );
        let line = kept.line_for("first", "all", "all").unwrap();
        let measured = MeasuredWeight::of(line, &kept).unwrap();
        // 52 decided, 33 achieved (3 churned), 19 missed (9 churned): 9/19 − 3/33.
        assert_eq!((measured.missed, measured.missed_churned), (19, 9));
        assert_eq!((measured.achieved, measured.achieved_churned), (33, 3));
        assert!(close(measured.difference, 9.0 / 19.0 - 3.0 / 33.0), "{measured:?}");
        let expected = newcombe(Rate::of(9, 19).unwrap(), Rate::of(3, 33).unwrap());
        assert_eq!(measured.interval, expected);
        assert!(measured.interval[0] < measured.difference && measured.difference < measured.interval[1]);
        assert_eq!(measured.weight(), measured.difference);
        assert_eq!((measured.source.as_str(), measured.kept_at), ("results.json", at()));

        // Missers who churn less than achievers put nothing at risk; the range stays in [0, 1].
        let fewer = OVERALL.replace("\"churned_achieved\": 3", "\"churned_achieved\": 12");
        let kept = KeptDiscovery::from_json(&printed(&fewer), "r.json", at()).unwrap();
        let measured = MeasuredWeight::of(&kept.lines[0], &kept).unwrap();
        assert!(measured.difference < 0.0 && measured.weight() == 0.0, "{measured:?}");
        assert!(measured.range().iter().all(|v| (0.0..=1.0).contains(v)));

        // No achiever, no misser, or a line kept without achieved counts: no measure, and why.
        for (text, why) in [
            (
                OVERALL
                    .replace("\"renewed_achieved\": 30", "\"renewed_achieved\": 0")
                    .replace("\"churned_achieved\": 3", "\"churned_achieved\": 0"),
                "no decided account achieved it",
            ),
            (
                OVERALL
                    .replace("\"renewed_achieved\": 30", "\"renewed_achieved\": 40")
                    .replace("\"churned_achieved\": 3", "\"churned_achieved\": 12"),
                "no miss to measure",
            ),
            (SMB.to_string(), "run discover again"),
        ] {
            let kept = KeptDiscovery::from_json(&printed(&text), "r.json", at()).unwrap();
            let refused = MeasuredWeight::of(&kept.lines[0], &kept).unwrap_err();
            assert!(refused.contains(why), "{refused:?} should say {why:?}");
        }
    }

    #[test]
    fn anything_else_is_refused_with_what_is_wrong() {
        for (text, says) in [
            ("[]".to_string(), "not what `milepost discover --format json` prints"),
            (printed(""), "no milestone"),
            (
                printed(&OVERALL.replace("\"all\", \"tenure\"", "\"retail\", \"tenure\"")),
                "milestones[0].segment",
            ),
            (
                printed(&OVERALL.replace("\"tenure\": \"all\"", "\"tenure\": \"ever\"")),
                "milestones[0].tenure",
            ),
            (
                printed(&OVERALL.replace("3.0", "-1")),
                "a ratio is a number of 0 or more",
            ),
            (printed(&OVERALL.replace("\"strong\"", "\"great\"")), "great"),
            (
                printed(&OVERALL.replace("\"strong\"", "\"weak\"")),
                "milestones[0].class is weak but its ratio 3.00 makes it strong",
            ),
            (
                printed(&OVERALL.replace("\"churned_achieved\": 3", "\"churned_achieved\": 13")),
                "milestones[0].churned_achieved is more than milestones[0].churned_n (12)",
            ),
            (
                printed(&OVERALL.replace("\"first\", \"name\"", "\" \", \"name\"")),
                "milestones[0].milestone is empty",
            ),
            // Issue 36: expanded vs not expanded measures no churn.
            (
                format!("{{\"cohorts\": \"expansion\", {}", &printed(OVERALL)[1..]),
                "it compares expansion cohorts, not renewed vs churned accounts",
            ),
        ] {
            let refused = KeptDiscovery::from_json(&text, "f.json", at()).unwrap_err();
            assert!(refused.contains(says), "{refused:?} should say {says:?}");
        }
    }
}
