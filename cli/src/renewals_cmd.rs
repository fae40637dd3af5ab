//! `milepost renewals import FILE.csv`: renewal outcomes from a CRM export
//! (`account_id,decision_date,outcome,arr_after`), all or nothing: every row
//! is checked, and every account looked up, before anything is written. A
//! file imported twice changes nothing the second time.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;

use chrono::NaiveDate;
use milepost_app::ports::{AccountStore, StoreError};
use milepost_app::writes::record_renewals;
use milepost_domain::limits::TimeLimits;
use milepost_domain::renewal::Recorded;
use milepost_domain::{AccountId, RenewalDecision, RenewalOutcome};
use serde::Serialize;

/// The columns of an import file; `arr_after` may be left out or empty.
pub const COLUMNS: [&str; 4] = ["account_id", "decision_date", "outcome", "arr_after"];

/// A row that cannot be imported, where and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub line: u64,
    pub field: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}: {}", self.line, self.field, self.message)
    }
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub rows: usize,
    pub accounts: usize,
    /// Outcomes new for their account and decision date.
    pub added: usize,
    /// Outcomes that replaced another for the same date.
    pub replaced: usize,
    /// Outcomes recorded already (a file imported again).
    pub unchanged: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Rows that cannot be imported: nothing was written.
    #[error("{} problem(s); nothing imported", .0.len())]
    Problems(Vec<Problem>),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// One checked row.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub line: u64,
    pub account_id: AccountId,
    pub outcome: RenewalOutcome,
}

/// Reads and checks every row (decision dates in the range `limits` allows
/// contract dates, seen from `today`); the problems of all rows, or the rows.
pub fn parse(mut input: impl Read, limits: &TimeLimits, today: NaiveDate) -> Result<Vec<Row>, Vec<Problem>> {
    let mut text = Vec::new();
    if let Err(e) = input.read_to_end(&mut text) {
        return Err(vec![Problem {
            line: 0,
            field: "file".into(),
            message: e.to_string(),
        }]);
    }
    // The file's own line of a record: the csv reader skips blank lines in its count.
    let line_at = |pos: Option<&csv::Position>| {
        pos.map_or(0, |p| {
            // A record's position is where the reader started it, before any blank lines.
            let mut end = (p.byte() as usize).min(text.len());
            while end < text.len() && matches!(text[end], b'\n' | b'\r') {
                end += 1;
            }
            1 + text[..end].iter().filter(|b| **b == b'\n').count() as u64
        })
    };
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(&text[..]);
    let header = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => return Err(vec![problem_at(1, "header", e.to_string())]),
    };
    let column = |name: &str| header.iter().position(|h| h.trim() == name);
    let mut cols = [None; 4];
    let mut problems = Vec::new();
    for (i, name) in COLUMNS.iter().enumerate() {
        cols[i] = column(name);
        if cols[i].is_none() && *name != "arr_after" {
            problems.push(problem_at(
                1,
                "header",
                format!("needs a column `{name}` ({})", COLUMNS.join(",")),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut rows = Vec::new();
    // (account, date) → the line and outcome that said it first.
    let mut said: BTreeMap<(String, NaiveDate), (u64, RenewalOutcome)> = BTreeMap::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = line_at(e.position());
                problems.push(problem_at(line, "row", e.to_string()));
                continue;
            }
        };
        let line = line_at(record.position());
        let cell = |i: usize| cols[i].and_then(|c| record.get(c)).map(str::trim).unwrap_or("");
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let cells: [&str; 4] = std::array::from_fn(cell);
        let Some((account, outcome)) = check_row(&cells, line, limits, today, &mut problems) else {
            continue;
        };
        let date = outcome.decision_date;
        match said.get(&(account.to_string(), date)) {
            Some((first, earlier)) if *earlier != outcome => {
                let message = format!("{account} on {date}: conflicts with line {first}");
                problems.push(problem_at(line, "outcome", message));
                continue;
            }
            Some(_) => continue, // said twice alike
            None => {
                said.insert((account.to_string(), date), (line, outcome.clone()));
            }
        }
        rows.push(Row {
            line,
            account_id: AccountId::new(account),
            outcome,
        });
    }
    if problems.is_empty() {
        Ok(rows)
    } else {
        Err(problems)
    }
}

/// One row's cells (account, decision date, outcome, ARR after) checked:
/// its account and outcome, or None with every problem of the row added.
fn check_row<'a>(
    cells: &[&'a str; 4],
    line: u64,
    limits: &TimeLimits,
    today: NaiveDate,
    problems: &mut Vec<Problem>,
) -> Option<(&'a str, RenewalOutcome)> {
    let account = cells[0];
    if account.is_empty() {
        problems.push(problem_at(line, "account_id", "is required".into()));
    }
    let date = match NaiveDate::parse_from_str(cells[1], "%Y-%m-%d") {
        Ok(d) => match limits.check_contract_date("decision_date", d, today) {
            Ok(()) => Some(d),
            Err(e) => {
                problems.push(problem_at(line, "decision_date", e.message));
                None
            }
        },
        Err(_) => {
            let message = format!("must be a date (YYYY-MM-DD), not `{}`", cells[1]);
            problems.push(problem_at(line, "decision_date", message));
            None
        }
    };
    let outcome = RenewalDecision::parse(cells[2]);
    if outcome.is_none() {
        let message = format!(
            "unknown outcome `{}` (expected {})",
            cells[2],
            RenewalDecision::expected()
        );
        problems.push(problem_at(line, "outcome", message));
    }
    let arr_after = match cells[3] {
        "" => Some(None),
        text => text
            .parse::<u64>()
            .ok()
            .filter(|arr| *arr <= milepost_domain::limits::MAX_ARR)
            .map(Some),
    };
    if arr_after.is_none() {
        let message = format!(
            "must be a whole amount up to {}, not `{}`",
            milepost_domain::limits::MAX_ARR,
            cells[3]
        );
        problems.push(problem_at(line, "arr_after", message));
    }
    let (Some(date), Some(outcome), Some(arr_after), false) = (date, outcome, arr_after, account.is_empty()) else {
        return None;
    };
    let outcome = RenewalOutcome {
        decision_date: date,
        outcome,
        arr_after,
    };
    Some((account, outcome))
}

fn problem_at(line: u64, field: &str, message: String) -> Problem {
    Problem {
        line,
        field: field.to_string(),
        message,
    }
}

/// Imports the file's outcomes: every row checked and every account found
/// first, then each account written once, on the account read (again if a
/// `group` call changed it meanwhile).
pub async fn import(
    store: &dyn AccountStore,
    input: impl Read,
    limits: &TimeLimits,
    today: NaiveDate,
) -> Result<ImportReport, ImportError> {
    let rows = parse(input, limits, today).map_err(ImportError::Problems)?;
    let mut by_account: BTreeMap<AccountId, Vec<&Row>> = BTreeMap::new();
    for row in &rows {
        by_account.entry(row.account_id.clone()).or_default().push(row);
    }
    let mut unknown = Vec::new();
    for (id, rows) in &by_account {
        if store.get_account(id).await.map_err(anyhow::Error::from)?.is_none() {
            unknown.push(Problem {
                line: rows[0].line,
                field: "account_id".into(),
                message: format!("no account `{id}` in Milepost (it is created by a `group` call)"),
            });
        }
    }
    if !unknown.is_empty() {
        return Err(ImportError::Problems(unknown));
    }
    let mut report = ImportReport {
        rows: rows.len(),
        accounts: by_account.len(),
        ..Default::default()
    };
    for (id, rows) in &by_account {
        record_all(store, id, rows, &mut report).await?;
    }
    Ok(report)
}

/// Records `rows` on account `id` in one write on the account read, again
/// if a `group` call changed it meanwhile.
async fn record_all(
    store: &dyn AccountStore,
    id: &AccountId,
    rows: &[&Row],
    report: &mut ImportReport,
) -> anyhow::Result<()> {
    let outcomes: Vec<RenewalOutcome> = rows.iter().map(|r| r.outcome.clone()).collect();
    let recorded = record_renewals(store, id, &outcomes)
        .await?
        .ok_or_else(|| StoreError::backend(format!("account {id} disappeared during the import")))?;
    let mut counts = ImportReport::default();
    for r in recorded {
        match r {
            Recorded::Added => counts.added += 1,
            Recorded::Replaced => counts.replaced += 1,
            Recorded::Unchanged => counts.unchanged += 1,
        }
    }
    report.added += counts.added;
    report.replaced += counts.replaced;
    report.unchanged += counts.unchanged;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2027, 3, 1).unwrap()
    }

    #[test]
    fn every_bad_row_is_named_with_its_line_and_field() {
        let file = "account_id,decision_date,outcome,arr_after\n\
                    acme,2027-02-20,renewed,52000\n\
                    globex,20/02/2027,churned,\n\
                    initech,2027-03-01,lost,\n\
                    ,2027-03-01,renewed,\n\
                    umbrella,2027-03-01,expanded,lots\n\
                    acme,2027-02-20,churned,\n\
                    hooli,2090-01-01,renewed,\n";
        let problems = parse(file.as_bytes(), &TimeLimits::default(), today()).unwrap_err();
        let seen: Vec<(u64, &str)> = problems.iter().map(|p| (p.line, p.field.as_str())).collect();
        assert_eq!(
            seen,
            [
                (3, "decision_date"),
                (4, "outcome"),
                (5, "account_id"),
                (6, "arr_after"),
                (7, "outcome"),
                (8, "decision_date")
            ]
        );
        assert!(problems[4].message.contains("conflicts with line 2"), "{}", problems[4]);
    }

    #[test]
    fn a_clean_file_reads_in_any_column_order_without_arr_after() {
        let file = "outcome,account_id,decision_date\nExpanded,acme,2027-02-20\n\nrenewed,globex,2027-03-01\nrenewed,globex,2027-03-01\n";
        let rows = parse(file.as_bytes(), &TimeLimits::default(), today()).unwrap();
        assert_eq!(rows.len(), 2, "the blank line and the repeat are skipped");
        assert_eq!(rows[0].outcome.outcome, RenewalDecision::Expanded);
        assert_eq!(rows[1].line, 4);
        let missing = parse(
            "account_id,outcome\nacme,renewed\n".as_bytes(),
            &TimeLimits::default(),
            today(),
        )
        .unwrap_err();
        assert_eq!(missing[0].field, "header");
        assert!(missing[0].message.contains("decision_date"));
    }
}
