//! `milepost outcomes`: customers' success plans, the outcomes each agreed.
//! `import FILE.csv` takes a row per outcome (an account's rows are its
//! plan), all or nothing: every row checked and every account found before
//! anything is kept, each problem named with its line and field; a file
//! imported again keeps nothing new. `set` puts one outcome in a plan;
//! `show` and `list` read them back.

use std::collections::BTreeMap;
use std::io::Read;

use chrono::NaiveDate;
use milepost_app::ports::PlanStore;
use milepost_app::success_plans::{set_plan, PlanError, PlanSet};
use milepost_domain::success_plan::{amount, check};
use milepost_domain::{AccountId, AgreedOutcome, Checkpoint, Measure, SuccessPlan, Timestamp};
use serde::Serialize;

/// The columns of an import file; `checkpoints` may be empty
/// (`2026-04-01=5;2026-07-01=10`: a date and the value due by it, each).
pub const COLUMNS: [&str; 12] = [
    "account_id",
    "outcome_id",
    "title",
    "event",
    "property",
    "unit",
    "baseline",
    "target",
    "starts_on",
    "by",
    "checkpoints",
    "agreed_by",
];

// A bad row and a failed import are named as `renewals import` names them.
pub use crate::renewals_cmd::{ImportError, Problem};

/// An account's outcomes as read, each with its line.
pub type Plans = Vec<(AccountId, Vec<(u64, AgreedOutcome)>)>;

/// `2026-04-01=5;2026-07-01=10` as checkpoints.
pub fn parse_checkpoints(text: &str) -> Result<Vec<Checkpoint>, String> {
    text.split(';')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (on, value) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not DATE=VALUE"))?;
            Ok(Checkpoint {
                on: NaiveDate::parse_from_str(on.trim(), "%Y-%m-%d")
                    .map_err(|_| format!("{on:?} is not a date (YYYY-MM-DD)"))?,
                value: value.trim().parse().map_err(|_| format!("{value:?} is not a number"))?,
            })
        })
        .collect()
}

/// Reads and checks every row: the plans, or every problem of every row.
pub fn parse(mut input: impl Read) -> Result<Plans, Vec<Problem>> {
    let mut text = Vec::new();
    let problem = |line, field: &str, message: String| Problem {
        line,
        field: field.to_string(),
        message,
    };
    if let Err(e) = input.read_to_end(&mut text) {
        return Err(vec![problem(0, "file", e.to_string())]);
    }
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(&text[..]);
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => return Err(vec![problem(1, "header", e.to_string())]),
    };
    let missing: Vec<&str> = COLUMNS
        .iter()
        .copied()
        .filter(|c| !headers.iter().any(|h| h == *c))
        .collect();
    if !missing.is_empty() {
        return Err(vec![problem(
            1,
            "header",
            format!(
                "missing column(s) {}; expected {}",
                missing.join(", "),
                COLUMNS.join(",")
            ),
        )]);
    }
    let column = |name: &str| headers.iter().position(|h| h == name).expect("checked above");
    let mut problems = Vec::new();
    let mut plans: Plans = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                problems.push(problem(line, "row", e.to_string()));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let get = |name: &str| record.get(column(name)).unwrap_or_default();
        let mut bad = |field: &str, message: String| problems.push(problem(line, field, message));
        let number = |name: &str, bad: &mut dyn FnMut(&str, String)| match get(name).parse::<f64>() {
            Ok(v) if v.is_finite() => v,
            _ => {
                bad(name, format!("{:?} is not a number", get(name)));
                0.0
            }
        };
        let day = |name: &str, bad: &mut dyn FnMut(&str, String)| {
            NaiveDate::parse_from_str(get(name), "%Y-%m-%d").unwrap_or_else(|_| {
                bad(name, format!("{:?} is not a date (YYYY-MM-DD)", get(name)));
                NaiveDate::MIN
            })
        };
        let account = get("account_id");
        if account.is_empty() {
            bad("account_id", "must not be empty".into());
        }
        let (baseline, target) = (number("baseline", &mut bad), number("target", &mut bad));
        let (starts_on, by) = (day("starts_on", &mut bad), day("by", &mut bad));
        let checkpoints = parse_checkpoints(get("checkpoints")).unwrap_or_else(|e| {
            bad("checkpoints", e);
            Vec::new()
        });
        let outcome = AgreedOutcome {
            id: get("outcome_id").to_string(),
            title: get("title").to_string(),
            measure: Measure {
                event: get("event").to_string(),
                property: get("property").to_string(),
            },
            unit: get("unit").to_string(),
            baseline,
            target,
            starts_on,
            by,
            checkpoints,
            agreed_by: get("agreed_by").to_string(),
        };
        let id = AccountId::new(account);
        match plans.iter_mut().find(|(a, _)| *a == id) {
            Some((_, outcomes)) => outcomes.push((line, outcome)),
            None => plans.push((id, vec![(line, outcome)])),
        }
    }
    // The plan's own rules, each problem put back on its row and column.
    for (_, outcomes) in &plans {
        let only: Vec<AgreedOutcome> = outcomes.iter().map(|(_, o)| o.clone()).collect();
        for p in check(&only) {
            let (index, field) = p
                .field
                .strip_prefix("outcomes[")
                .and_then(|rest| rest.split_once("]."))
                .and_then(|(i, f)| Some((i.parse::<usize>().ok()?, f)))
                .unwrap_or((0, p.field.as_str()));
            let line = outcomes.get(index).map_or(0, |(l, _)| *l);
            let field = match field.split('[').next().unwrap_or(field) {
                "id" => "outcome_id",
                "checkpoints" => "checkpoints",
                other => other,
            };
            // A rule over a value that did not read (a bad date, a bad
            // number) would only repeat that problem in other words.
            let unread = |names: &[&str]| {
                problems
                    .iter()
                    .any(|q: &Problem| q.line == line && names.contains(&q.field.as_str()))
            };
            let follows = match field {
                "by" => unread(&["starts_on", "by"]),
                "checkpoints" => unread(&["starts_on", "by", "checkpoints"]),
                "target" => unread(&["baseline", "target"]),
                other => unread(&[other]),
            };
            if !follows {
                problems.push(problem(line, field, p.message));
            }
        }
    }
    if problems.is_empty() {
        Ok(plans)
    } else {
        problems.sort_by_key(|p| p.line);
        Err(problems)
    }
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub rows: usize,
    pub accounts: usize,
    /// Plans kept as a new version.
    pub changed: usize,
    /// Plans as they stood already.
    pub unchanged: usize,
}

/// Imports every plan of `input`, set by `by` at `now`: nothing unless every
/// row is good and every account known.
pub async fn import<S: PlanStore + ?Sized>(
    store: &S,
    input: impl Read,
    by: &str,
    now: Timestamp,
) -> Result<ImportReport, ImportError> {
    let read = parse(input).map_err(ImportError::Problems)?;
    let mut unknown = Vec::new();
    for (account, outcomes) in &read {
        if store.get_account(account).await.map_err(anyhow::Error::from)?.is_none() {
            unknown.push(Problem {
                line: outcomes[0].0,
                field: "account_id".into(),
                message: format!("no account {account} in Milepost"),
            });
        }
    }
    if !unknown.is_empty() {
        return Err(ImportError::Problems(unknown));
    }
    let mut report = ImportReport {
        rows: read.iter().map(|(_, o)| o.len()).sum(),
        accounts: read.len(),
        ..Default::default()
    };
    for (account, outcomes) in read {
        let outcomes = outcomes.into_iter().map(|(_, o)| o).collect();
        match set_plan(store, &account, outcomes, by, now).await {
            Ok(PlanSet::New(_)) => report.changed += 1,
            Ok(PlanSet::Unchanged(_)) => report.unchanged += 1,
            Err(PlanError::Store(e)) => return Err(ImportError::Failed(e.into())),
            Err(e) => return Err(ImportError::Failed(anyhow::anyhow!("{account}: {e}"))),
        }
    }
    Ok(report)
}

/// A plan as `outcomes show` prints it: each outcome as agreed, then its checkpoints.
pub fn render_plan(plan: &SuccessPlan) -> String {
    let mut out = format!(
        "{}: success plan version {}, set {} by {}\n",
        plan.account_id,
        plan.version,
        plan.set_at.format("%Y-%m-%d %H:%M UTC"),
        plan.set_by
    );
    for o in &plan.outcomes {
        out.push_str(&format!(
            "\n  {}: {}\n    measured by {}.{}\n    checkpoints: {}\n",
            o.id,
            o.words(),
            o.measure.event,
            o.measure.property,
            o.checkpoints()
                .iter()
                .map(|c| format!("{} by {}", amount(c.value, &o.unit), c.on))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out
}

/// `outcomes list`: each account with a plan, its version and outcomes.
pub fn render_list(plans: &[SuccessPlan]) -> String {
    let mut sorted: Vec<&SuccessPlan> = plans.iter().collect();
    sorted.sort_by(|a, b| a.account_id.cmp(&b.account_id));
    let mut by_account = BTreeMap::new();
    for p in sorted {
        by_account.insert(p.account_id.to_string(), p);
    }
    let mut out = format!("{:<24} {:>7}  outcomes\n", "account", "version");
    for (account, p) in by_account {
        let ids: Vec<&str> = p.outcomes.iter().map(|o| o.id.as_str()).collect();
        out.push_str(&format!("{account:<24} {:>7}  {}\n", p.version, ids.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "account_id,outcome_id,title,event,property,unit,baseline,target,starts_on,by,checkpoints,agreed_by\n";

    #[test]
    fn an_accounts_rows_are_its_plan() {
        let file = format!(
            "{HEADER}acme,costs,Lower logistics costs,outcome.measured,cost_savings_pct,%,0,30,2026-01-01,2027-01-01,2026-04-01=5,\"Dana Chen, VP Operations\"\n\
             acme,close,Close the books faster,close.finished,days,days,10,3,2026-01-01,2026-07-01,,Dana Chen\n\
             globex,costs,Lower costs,outcome.measured,cost_savings_pct,%,0,10,2026-02-01,2027-02-01,,Ivo\n"
        );
        let plans = parse(file.as_bytes()).unwrap();
        assert_eq!(plans.len(), 2);
        assert_eq!(plans[0].0.as_str(), "acme");
        let (line, costs) = &plans[0].1[0];
        assert_eq!((*line, costs.agreed_by.as_str()), (2, "Dana Chen, VP Operations"));
        assert_eq!(
            costs.checkpoints,
            [Checkpoint {
                on: NaiveDate::from_ymd_opt(2026, 4, 1).unwrap(),
                value: 5.0
            }]
        );
        assert_eq!(plans[0].1[1].0, 3);
    }

    #[test]
    fn every_problem_is_named_with_its_line_and_column() {
        let file = format!(
            "{HEADER}acme,costs,Lower costs,outcome.measured,cost_savings_pct,%,zero,30,2026-01-01,2027-01-01,,Dana\n\
             acme,costs,Again,outcome.measured,cost_savings_pct,%,0,30,2026-01-01,2027-01-01,,Dana\n\
             globex,Bad Id,,outcome.measured,p,%,0,10,2026-02-01,2025-02-01,2026-03-01=x,Ivo\n"
        );
        let problems = parse(file.as_bytes()).unwrap_err();
        let said: Vec<(u64, &str)> = problems.iter().map(|p| (p.line, p.field.as_str())).collect();
        assert_eq!(
            said,
            [
                (2, "baseline"),
                (3, "outcome_id"),
                (4, "checkpoints"),
                (4, "outcome_id"),
                (4, "title"),
                (4, "by"),
            ],
            "{problems:?}"
        );
        let missing = parse("account_id,outcome_id\nacme,costs\n".as_bytes()).unwrap_err();
        assert_eq!((missing[0].line, missing[0].field.as_str()), (1, "header"));
        assert!(missing[0].message.contains("title"), "{}", missing[0].message);
    }
}
