//! `milepost discover`: which milestones predict renewal, from past renewed
//! and churned cohorts. The statistics are in `milepost_domain::discovery`.

pub mod chart;
pub mod error;
pub mod evaluate;
pub mod input;
pub mod records;
pub mod report;
pub mod review;

use std::path::{Path, PathBuf};

use milepost_domain::MilestoneMap;

pub use self::error::{DiscoverError, RowProblem};

use self::evaluate::{Evaluation, Skipped};
use self::input::{CohortSplit, Outcome, Problems};
use self::report::Row;
use self::review::Finding;

#[derive(Clone, Debug)]
pub struct DiscoverOptions {
    pub accounts: PathBuf,
    pub events: Vec<PathBuf>,
    /// Candidate maps (files or directories).
    pub maps: Vec<PathBuf>,
    /// Existing maps to review (files or directories).
    pub review: Vec<PathBuf>,
    /// Only rows of this segment (`all` for the overall rows).
    pub segment: Option<String>,
    /// Only rows of this tenure (`first_year`, `multi_year` or `all`).
    pub tenure: Option<String>,
    /// Threads reading a plain CSV events file; `None`: one per core, for files from 32 MiB.
    pub threads: Option<usize>,
    /// The two cohorts compared: renewed vs churned, or expanded vs not.
    pub cohorts: CohortSplit,
}

/// Everything one run found.
#[derive(Debug)]
pub struct Discovery {
    pub cohorts: CohortSplit,
    pub rows: Vec<Row>,
    pub review: Vec<Finding>,
    pub problems: Problems,
    pub skipped: Skipped,
    /// The accounts of the first cohort (renewed, or expanded) and the second.
    pub renewed: usize,
    pub churned: usize,
    /// Accounts in neither cohort (churned, comparing expansion).
    pub not_in_cohorts: usize,
    pub events_read: u64,
}

/// Loads every map under `paths`; any invalid map stops the run with all its problems.
fn load_maps(paths: &[PathBuf]) -> error::Result<Vec<MilestoneMap>> {
    let files = milepost_maps::map_files(paths).map_err(|source| DiscoverError::File {
        doing: "listing map files in",
        path: paths.first().cloned().unwrap_or_default(),
        source,
    })?;
    if files.is_empty() {
        return Err(DiscoverError::Input(format!("no map files (*.yaml) in {paths:?}")));
    }
    let read = milepost_maps::read_maps(&files).map_err(|source| DiscoverError::File {
        doing: "reading maps in",
        path: paths.first().cloned().unwrap_or_default(),
        source,
    })?;
    match read {
        Ok(maps) => Ok(maps),
        Err(problems) => {
            let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
            Err(DiscoverError::Input(format!("invalid map(s):\n{}", list.join("\n"))))
        }
    }
}

pub fn run(opts: &DiscoverOptions) -> error::Result<Discovery> {
    let candidates = if opts.maps.is_empty() {
        Vec::new()
    } else {
        load_maps(&opts.maps)?
    };
    let reviewed = if opts.review.is_empty() {
        Vec::new()
    } else {
        load_maps(&opts.review)?
    };
    if candidates.is_empty() && reviewed.is_empty() {
        return Err(DiscoverError::Input(
            "give candidate milestones with --maps, or a map to review with --review".into(),
        ));
    }
    // The reviewed maps first: where both define a milestone for the same
    // accounts, the map in use is the one judged.
    let all_maps: Vec<MilestoneMap> = reviewed.iter().chain(&candidates).cloned().collect();

    if opts.cohorts != CohortSplit::Renewal && !reviewed.is_empty() {
        return Err(DiscoverError::Input(
            "--review judges maps by what predicts renewal: run it without --cohorts expansion".into(),
        ));
    }
    let (mut accounts, mut problems) = input::read_accounts(&opts.accounts)?;
    // Each in its cohort; one in neither stays known (its events are no bad
    // rows) and is given no candidate.
    for a in &mut accounts {
        if let Some(outcome) = opts.cohorts.cohort_of(a.decision) {
            a.outcome = outcome;
        }
    }
    let cohort_of = |a: &input::AccountRecord| opts.cohorts.cohort_of(a.decision);
    let mut evaluation = Evaluation::new(&accounts, &all_maps, opts.cohorts);
    let (threads, min_bytes) = match opts.threads {
        Some(n) => (n.max(1), 0),
        None => (
            std::thread::available_parallelism().map_or(1, |n| n.get()).min(8),
            input::PARALLEL_FROM_BYTES,
        ),
    };
    for path in &opts.events {
        let parts = input::csv_parts(path, threads, min_bytes)?;
        problems.merge(read_events(path, parts, &mut evaluation)?);
    }
    let judgements = evaluation.judgements();
    let all_rows = report::rows(&accounts, &evaluation.candidates, &judgements);
    let review = review::review(&reviewed, &all_rows);
    let rows = all_rows
        .into_iter()
        .filter(|r| opts.segment.as_deref().is_none_or(|s| r.segment == s))
        .filter(|r| opts.tenure.as_deref().is_none_or(|t| r.tenure == t))
        .collect();
    let count = |cohort| accounts.iter().filter(|a| cohort_of(a) == cohort).count();
    Ok(Discovery {
        cohorts: opts.cohorts,
        rows,
        review,
        problems,
        skipped: evaluation.skipped.clone(),
        renewed: count(Some(Outcome::Renewed)),
        churned: count(Some(Outcome::Churned)),
        not_in_cohorts: count(None),
        events_read: evaluation.events_read(),
    })
}

/// `run` on Milepost's own records (`records::RecordsBuilder`, filled from
/// the store) instead of exported files: `review` maps are reviewed against
/// them as with files; `segment` and `tenure` filter the rows.
pub fn run_on_records(
    records: records::Records,
    review: &[PathBuf],
    segment: Option<&str>,
    tenure: Option<&str>,
) -> error::Result<Discovery> {
    if records.cohorts != CohortSplit::Renewal && !review.is_empty() {
        return Err(DiscoverError::Input(
            "--review judges maps by what predicts renewal: run it without --cohorts expansion".into(),
        ));
    }
    let reviewed = if review.is_empty() {
        Vec::new()
    } else {
        load_maps(review)?
    };
    let all_rows = report::rows(&records.accounts, &records.candidates, &records.judgements);
    let review = review::review(&reviewed, &all_rows);
    let rows = all_rows
        .into_iter()
        .filter(|r| segment.is_none_or(|s| r.segment == s))
        .filter(|r| tenure.is_none_or(|t| r.tenure == t))
        .collect();
    let renewed = records
        .accounts
        .iter()
        .filter(|a| a.outcome == Outcome::Renewed)
        .count();
    Ok(Discovery {
        cohorts: records.cohorts,
        rows,
        review,
        problems: Problems::default(),
        skipped: Skipped::default(),
        renewed,
        churned: records.accounts.len() - renewed,
        not_in_cohorts: records.not_in_cohorts,
        events_read: 0,
    })
}

/// Folds the events of `path` into `evaluation`: a plain CSV file split into
/// `parts` (`input::csv_parts`) is read a part per thread, each into its own
/// `fresh_copy` of `evaluation`, merged after; anything else in one pass.
fn read_events(
    path: &Path,
    parts: Option<input::CsvParts>,
    evaluation: &mut Evaluation<'_>,
) -> error::Result<Problems> {
    let Some(parts) = parts else {
        return input::for_each_event(path, |e| evaluation.observe(e));
    };
    let results: Vec<(Evaluation, error::Result<input::PartRead>)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..parts.ranges.len())
            .map(|index| {
                let mut part = evaluation.fresh_copy();
                let parts = &parts;
                s.spawn(move || {
                    let read = input::for_each_event_in_part(path, parts, index, |e| part.observe(e));
                    (part, read)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a reader thread panicked"))
            .collect()
    });
    let mut reads = Vec::new();
    let mut evaluations = Vec::new();
    for (part, read) in results {
        reads.push(read?);
        evaluations.push(part);
    }
    if !input::parts_split_cleanly(&reads) {
        // A line break inside a quoted field straddled a boundary: read it whole.
        tracing::debug!(
            "{} has a quoted line break at a part boundary; reading it in one pass",
            path.display()
        );
        return input::for_each_event(path, |e| evaluation.observe(e));
    }
    for part in evaluations {
        evaluation.merge(part);
    }
    input::problems_of_parts(path, &parts, reads)
}

/// The results as `format` (`table`, `json` or `csv`), with the review's
/// findings when `with_review` (CSV has no place for them).
pub fn render(found: &Discovery, format: &str, with_review: bool) -> error::Result<String> {
    Ok(match format {
        "json" => {
            let rows: Vec<serde_json::Value> = found
                .rows
                .iter()
                .map(|r| serde_json::to_value(r).map(|row| report::relabel(row, found.cohorts)))
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| DiscoverError::Output(e.into()))?;
            let mut json = serde_json::json!({ "cohorts": found.cohorts.as_str(), "milestones": rows });
            if with_review {
                json["review"] = serde_json::to_value(&found.review).map_err(|e| DiscoverError::Output(e.into()))?;
            }
            serde_json::to_string_pretty(&json).map_err(|e| DiscoverError::Output(e.into()))? + "\n"
        }
        "csv" => report::render_csv(&found.rows, found.cohorts)?,
        _ if with_review => {
            report::render_table(&found.rows, found.cohorts) + "\n" + &review::render_table(&found.review)
        }
        _ => report::render_table(&found.rows, found.cohorts),
    })
}

/// The `--chart` SVG and how many panels it has: one per milestone, its row
/// for the scope `--segment`/`--tenure` chose (overall by default).
pub fn chart_svg(found: &Discovery, segment: Option<&str>, tenure: Option<&str>) -> (String, usize) {
    let segment = segment.unwrap_or("all");
    let tenure = tenure.unwrap_or("all");
    let rows: Vec<&Row> = found
        .rows
        .iter()
        .filter(|r| r.segment == segment && r.tenure == tenure)
        .collect();
    (chart::render(&rows, found.cohorts), rows.len())
}

/// What the run read and left out, for stderr.
pub fn summary(d: &Discovery) -> String {
    let mut out = match d.cohorts {
        CohortSplit::Renewal => format!(
            "{} renewed and {} churned accounts, {} events of known accounts read\n",
            d.renewed, d.churned, d.events_read
        ),
        CohortSplit::Expansion => format!(
            "{} expanded and {} not expanded (renewed flat or contracted) accounts, {} churned left out, \
             {} events of known accounts read\n",
            d.renewed, d.churned, d.not_in_cohorts, d.events_read
        ),
    };
    for id in &d.skipped.manual {
        out.push_str(&format!(
            "skipped {id}: a manual milestone cannot be judged from events\n"
        ));
    }
    for id in &d.skipped.agreed_outcome {
        out.push_str(&format!(
            "skipped {id}: its checkpoints come from each account's success plan, not from events\n"
        ));
    }
    for id in &d.skipped.expansion {
        out.push_str(&format!(
            "skipped {id}: an expansion milestone is a growth signal, never missed, not a predictor of renewal or churn \
             (judged with --cohorts expansion)\n"
        ));
    }
    out.push_str(&empty_cohort_warning(d));
    for (id, n) in &d.skipped.without_seats {
        out.push_str(&format!(
            "{id}: {n} account(s) without licensed_seats left out (a seat-ratio milestone needs them)\n"
        ));
    }
    if d.problems.count > 0 {
        out.push_str(&format!(
            "{} bad input row(s) skipped{}:\n",
            d.problems.count,
            if d.problems.count > d.problems.shown.len() {
                format!(", the first {} shown", d.problems.shown.len())
            } else {
                String::new()
            }
        ));
        for p in &d.problems.shown {
            out.push_str(&format!("  {p}\n"));
        }
    }
    out
}

/// A line saying a cohort is empty, so no ratio can be measured (an
/// accounts file or store with no `expanded` decision, compared for
/// expansion); empty when both have accounts.
pub fn empty_cohort_warning(d: &Discovery) -> String {
    let (first, second) = d.cohorts.names();
    let empty: Vec<&str> = [(first, d.renewed), (second, d.churned)]
        .into_iter()
        .filter(|(_, n)| *n == 0)
        .map(|(name, _)| name)
        .collect();
    match empty.as_slice() {
        [] => String::new(),
        names => format!(
            "no {} account: a ratio needs both cohorts, so none is measured{}\n",
            names.join(" and no ").replace('_', " "),
            match d.cohorts {
                CohortSplit::Expansion => " (is the outcome column, or the store's decisions, ever `expanded`?)",
                CohortSplit::Renewal => "",
            }
        ),
    }
}

/// Writes `text` to `path`, creating its directory.
pub fn write_file(path: &Path, text: &str) -> error::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(DiscoverError::file("creating", dir))?;
    }
    std::fs::write(path, text).map_err(DiscoverError::file("writing", path))
}
