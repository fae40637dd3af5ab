//! Reading `milepost discover`'s input: the accounts with their renewal
//! decision (CSV), and product events (CSV or JSON Lines, either optionally
//! gzipped) streamed record by record so ten million events never sit in
//! memory at once. A bad row is counted and described with its line number,
//! never a panic; the caller decides whether problems fail the run (`--strict`).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::error::{DiscoverError, Result, RowProblem};
use chrono::{DateTime, NaiveDate, Utc};
use milepost_domain::{AccountId, RenewalDecision, Segment};
use serde::Deserialize;

/// How many problems are described; the rest are only counted.
const PROBLEMS_SHOWN: usize = 5;

/// The cohort an account is judged in: the first of the two compared
/// (`Renewed`: renewed, or expanded under `--cohorts expansion`) or the
/// second (`Churned`: churned, or renewed without expanding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Renewed,
    Churned,
}

/// Which two cohorts `discover` compares.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CohortSplit {
    /// Renewed (renewed, expanded or contracted) against churned.
    #[default]
    Renewal,
    /// Expanded against renewed without expanding (flat or contracted);
    /// churned accounts are in neither.
    Expansion,
}

impl CohortSplit {
    pub fn parse(s: &str) -> Option<CohortSplit> {
        match s {
            "renewal" => Some(CohortSplit::Renewal),
            "expansion" => Some(CohortSplit::Expansion),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CohortSplit::Renewal => "renewal",
            CohortSplit::Expansion => "expansion",
        }
    }

    /// The cohort `decision` puts an account in; none: left out.
    pub fn cohort_of(self, decision: RenewalDecision) -> Option<Outcome> {
        match (self, decision) {
            (CohortSplit::Renewal, d) if d.retained() => Some(Outcome::Renewed),
            (CohortSplit::Renewal, _) => Some(Outcome::Churned),
            (CohortSplit::Expansion, RenewalDecision::Expanded) => Some(Outcome::Renewed),
            (CohortSplit::Expansion, RenewalDecision::Churned) => None,
            (CohortSplit::Expansion, _) => Some(Outcome::Churned),
        }
    }

    /// The two cohorts' names as fields and headings take them: `renewed`
    /// and `churned`, or `expanded` and `not_expanded`.
    pub fn names(self) -> (&'static str, &'static str) {
        match self {
            CohortSplit::Renewal => ("renewed", "churned"),
            CohortSplit::Expansion => ("expanded", "not_expanded"),
        }
    }

    /// The measure of a miss: the second cohort's rate among those who
    /// missed over those who achieved (`churn_risk_if_missed`).
    pub fn risk_name(self) -> &'static str {
        match self {
            CohortSplit::Renewal => "churn_risk_if_missed",
            CohortSplit::Expansion => "no_expansion_risk_if_missed",
        }
    }

    /// Whether expansion milestones are judged: only against expansion,
    /// never as predictors of renewal.
    pub fn judges_expansion_milestones(self) -> bool {
        self == CohortSplit::Expansion
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct AccountRecord {
    pub account_id: AccountId,
    pub segment: Segment,
    pub contract_start: NaiveDate,
    pub decision_date: NaiveDate,
    /// What was decided, as the file says it.
    pub decision: RenewalDecision,
    /// Its cohort: under `CohortSplit::Renewal` as read; `run` sorts it for
    /// another split. An account in neither cohort of that split keeps this
    /// and is given no candidate, so nothing of it is counted.
    pub outcome: Outcome,
    pub arr: Option<u64>,
    pub tenure_year: u32,
    /// From the optional `licensed_seats` column; seat-ratio milestones need it.
    pub licensed_seats: Option<u32>,
}

/// One event as read, borrowing the input's buffers: nothing is allocated per event.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EventRecord<'a> {
    /// As read: matched against the accounts' ids, so never checked for UTF-8 itself.
    pub account_id: &'a [u8],
    pub event: &'a [u8],
    pub timestamp: DateTime<Utc>,
    pub user_id: Option<&'a str>,
    pub value: Option<f64>,
    /// Where it was read: the line (CSV counts the header as line 1).
    pub line: u64,
}

/// One bad input row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub line: u64,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

/// Bad input rows: how many, and the first few with file and line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Problems {
    pub count: usize,
    pub shown: Vec<Problem>,
}

impl Problems {
    pub fn add(&mut self, file: &Path, line: u64, message: impl Into<String>) {
        self.count += 1;
        if self.shown.len() < PROBLEMS_SHOWN {
            self.shown.push(Problem {
                file: file.to_path_buf(),
                line,
                message: message.into(),
            });
        }
    }

    pub fn merge(&mut self, other: Problems) {
        self.count += other.count;
        let room = PROBLEMS_SHOWN.saturating_sub(self.shown.len());
        self.shown.extend(other.shown.into_iter().take(room));
    }

    /// For a part of a file read on its own: its lines counted from the file's start.
    fn shift_lines(&mut self, by: u64) {
        for p in &mut self.shown {
            p.line += by;
        }
    }
}

/// Opens `path`, decompressing it when it is gzip (by its magic bytes, so a
/// misnamed file still reads).
fn open(path: &Path) -> Result<Box<dyn BufRead>> {
    let mut file = BufReader::new(File::open(path).map_err(DiscoverError::file("opening", path))?);
    let gzip = file
        .fill_buf()
        .map_err(DiscoverError::file("reading", path))?
        .starts_with(&[0x1f, 0x8b]);
    Ok(if gzip {
        Box::new(BufReader::new(flate2::bufread::MultiGzDecoder::new(file)))
    } else {
        Box::new(file)
    })
}

/// JSON Lines when the name (less any `.gz`) ends in `.jsonl` or `.ndjson`; CSV otherwise.
fn is_json_lines(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(name);
    name.ends_with(".jsonl") || name.ends_with(".ndjson")
}

/// A CSV reader over `input` whose header must hold `required` (any order,
/// extra columns ignored); returns it with each required column's index.
fn csv_with_columns<R: Read>(
    input: R,
    path: &Path,
    required: &[&str],
) -> Result<(csv::Reader<R>, Vec<usize>, csv::StringRecord)> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
    let header = reader
        .headers()
        .map_err(|source| DiscoverError::Csv {
            path: path.to_path_buf(),
            line: 1,
            source,
        })?
        .clone();
    let columns = required
        .iter()
        .map(|name| header.iter().position(|h| h.trim() == *name))
        .collect::<Option<Vec<_>>>();
    let Some(columns) = columns else {
        let missing: Vec<_> = required
            .iter()
            .filter(|n| !header.iter().any(|h| h.trim() == **n))
            .collect();
        return Err(DiscoverError::Input(format!(
            "{}:1: the header lacks {missing:?} (expected {})",
            path.display(),
            required.join(",")
        )));
    };
    Ok((reader, columns, header))
}

const ACCOUNT_COLUMNS: [&str; 7] = [
    "account_id",
    "segment",
    "contract_start",
    "decision_date",
    "outcome",
    "arr",
    "tenure_year",
];

/// Reads every account (a few thousand: small enough to hold).
pub fn read_accounts(path: &Path) -> Result<(Vec<AccountRecord>, Problems)> {
    let (mut reader, cols, header) = csv_with_columns(open(path)?, path, &ACCOUNT_COLUMNS)?;
    let seats_column = header.iter().position(|h| h.trim() == "licensed_seats");
    let mut accounts = Vec::new();
    let mut problems = Problems::default();
    let mut seen = std::collections::HashSet::new();
    for row in reader.records() {
        let row = match row {
            Ok(row) => row,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                problems.add(path, line, format!("unreadable row: {e}"));
                continue;
            }
        };
        let line = row.position().map_or(0, |p| p.line());
        let field = |i: usize| row.get(cols[i]).unwrap_or("").trim();
        let seats = seats_column.and_then(|c| row.get(c)).unwrap_or("").trim();
        match parse_account([0, 1, 2, 3, 4, 5, 6].map(field), seats) {
            Ok(account) if !seen.insert(account.account_id.clone()) => {
                problems.add(path, line, format!("account {} appears twice", account.account_id));
            }
            Ok(account) => accounts.push(account),
            Err(message) => problems.add(path, line, message),
        }
    }
    Ok((accounts, problems))
}

fn parse_account(
    [id, segment, start, decision, outcome, arr, tenure]: [&str; 7],
    seats: &str,
) -> std::result::Result<AccountRecord, RowProblem> {
    if id.is_empty() {
        return Err("account_id is empty".into());
    }
    let date = |name: &str, value: &str| {
        NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| format!("{name} `{value}` is not a YYYY-MM-DD date"))
    };
    let contract_start = date("contract_start", start)?;
    let decision_date = date("decision_date", decision)?;
    if decision_date < contract_start {
        return Err(format!("decision_date {decision_date} is before contract_start {contract_start}").into());
    }
    let decision = RenewalDecision::parse(outcome)
        .ok_or_else(|| format!("outcome `{outcome}` is not one of {}", RenewalDecision::expected()))?;
    Ok(AccountRecord {
        account_id: AccountId::new(id),
        segment: segment.parse().map_err(|e| format!("segment: {e}"))?,
        contract_start,
        decision_date,
        decision,
        outcome: CohortSplit::Renewal
            .cohort_of(decision)
            .expect("every decision has a renewal cohort"),
        arr: match arr {
            "" => None,
            v => Some(
                v.parse::<u64>()
                    .ok()
                    .filter(|arr| *arr <= milepost_domain::limits::MAX_ARR)
                    .ok_or_else(|| {
                        format!(
                            "arr `{v}` is not a whole number up to {}",
                            milepost_domain::limits::MAX_ARR
                        )
                    })?,
            ),
        },
        tenure_year: match tenure {
            "" => 1,
            v => match v.parse() {
                Ok(year) if year >= 1 => year,
                _ => return Err(format!("tenure_year `{v}` is not a year from 1").into()),
            },
        },
        licensed_seats: match seats {
            "" => None,
            v => match v.parse() {
                Ok(n) if n > 0 => Some(n),
                _ => return Err(format!("licensed_seats `{v}` is not a positive whole number").into()),
            },
        },
    })
}

const EVENT_COLUMNS: [&str; 5] = ["account_id", "event", "timestamp", "user_id", "value"];

#[derive(Deserialize)]
struct JsonEvent<'a> {
    #[serde(borrow)]
    account_id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    event: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    timestamp: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    user_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    value: Option<serde_json::Value>,
}

/// Streams the events of `path` into `each`, one at a time, in file order.
/// A row `each` refuses (say, an unknown account) is a problem like a
/// malformed one, reported with its line.
pub fn for_each_event(
    path: &Path,
    mut each: impl FnMut(EventRecord<'_>) -> std::result::Result<(), RowProblem>,
) -> Result<Problems> {
    let mut problems = Problems::default();
    let input = open(path)?;
    if is_json_lines(path) {
        let mut input = input;
        let mut line = String::new();
        let mut line_no = 0u64;
        loop {
            line.clear();
            line_no += 1;
            let read = input.read_line(&mut line).map_err(|source| DiscoverError::Csv {
                path: path.to_path_buf(),
                line: line_no,
                source: source.into(),
            })?;
            if read == 0 {
                break;
            }
            if line.trim().is_empty() {
                continue;
            }
            let result = serde_json::from_str::<JsonEvent>(&line)
                .map_err(|e| format!("not an event: {e}"))
                .and_then(|j| {
                    let number;
                    let value = match &j.value {
                        None | Some(serde_json::Value::Null) => "",
                        Some(serde_json::Value::Number(n)) => {
                            number = n.to_string();
                            &number
                        }
                        Some(serde_json::Value::String(s)) => s,
                        Some(other) => return Err(format!("value `{other}` is not a number")),
                    };
                    let user = j.user_id.as_deref().unwrap_or("");
                    let event = parse_event([&j.account_id, &j.event, &j.timestamp, user, value], line_no)?;
                    each(event).map_err(String::from)
                });
            if let Err(message) = result {
                problems.add(path, line_no, message);
            }
        }
    } else {
        let (mut reader, cols, _) = csv_with_columns(input, path, &EVENT_COLUMNS)?;
        problems = csv_events(&mut reader, &cols, path, each)?;
    }
    Ok(problems)
}

fn csv_events<R: Read>(
    reader: &mut csv::Reader<R>,
    cols: &[usize],
    path: &Path,
    mut each: impl FnMut(EventRecord<'_>) -> std::result::Result<(), RowProblem>,
) -> Result<Problems> {
    let mut problems = Problems::default();
    let mut row = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut row) {
            Ok(false) => break,
            Ok(true) => {
                let line = row.position().map_or(0, |p| p.line());
                let result = csv_event(&row, cols, line).and_then(&mut each);
                if let Err(message) = result {
                    problems.add(path, line, message);
                }
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                if e.is_io_error() {
                    return Err(DiscoverError::Csv {
                        path: path.to_path_buf(),
                        line,
                        source: e,
                    });
                }
                problems.add(path, line, format!("unreadable row: {e}"));
            }
        }
    }
    Ok(problems)
}

/// By default files smaller than this are read by one thread: splitting would not pay.
pub const PARALLEL_FROM_BYTES: u64 = 32 << 20;

/// Byte ranges splitting a plain CSV events file at line ends into up to
/// `parts` pieces to read in parallel (the first holds the header), or `None`
/// for gzip, JSON Lines and files under `min_bytes`. A quoted field may hold a line break,
/// so whoever reads the parts must check `parts_split_cleanly` afterwards.
pub fn csv_parts(path: &Path, parts: usize, min_bytes: u64) -> Result<Option<CsvParts>> {
    let io = DiscoverError::file;
    let size = std::fs::metadata(path).map_err(io("reading", path))?.len();
    if parts < 2 || size < min_bytes.max(1) || is_json_lines(path) {
        return Ok(None);
    }
    let mut file = File::open(path).map_err(io("opening", path))?;
    let mut head = [0u8; 2];
    if file.read(&mut head).map_err(io("reading", path))? == 2 && head == [0x1f, 0x8b] {
        return Ok(None);
    }
    let mut starts = vec![0u64];
    let mut window = vec![0u8; 1 << 20];
    for k in 1..parts as u64 {
        let guess = size * k / parts as u64;
        file.seek(SeekFrom::Start(guess)).map_err(io("reading", path))?;
        let n = file.read(&mut window).map_err(io("reading", path))?;
        if let Some(i) = memchr::memchr(b'\n', &window[..n]) {
            let start = guess + i as u64 + 1;
            if start < size && start > *starts.last().expect("starts at 0") {
                starts.push(start);
            }
        }
    }
    let mut ranges: Vec<Range<u64>> = starts.windows(2).map(|w| w[0]..w[1]).collect();
    ranges.push(*starts.last().expect("starts at 0")..size);
    file.seek(SeekFrom::Start(0)).map_err(io("reading", path))?;
    let (_, columns, _) = csv_with_columns(BufReader::new(file), path, &EVENT_COLUMNS)?;
    Ok(Some(CsvParts { ranges, columns }))
}

/// A plain CSV events file cut into parts at line ends, with its header's
/// columns, read once for all of them.
pub struct CsvParts {
    pub ranges: Vec<Range<u64>>,
    columns: Vec<usize>,
}

/// A reader counting the `"` bytes that pass, to tell afterwards whether a
/// part boundary fell inside a quoted field (an odd count before it).
struct QuoteCounter<R> {
    inner: R,
    quotes: u64,
}

impl<R: Read> Read for QuoteCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.quotes += memchr::memchr_iter(b'"', &buf[..n]).count() as u64;
        Ok(n)
    }
}

/// What reading one part found: its problems (lines counted within the part
/// for all but the first) and how many `"` it held.
pub struct PartRead {
    pub problems: Problems,
    pub quotes: u64,
}

/// Streams the events of part `index` of `parts` (the first holds the header).
pub fn for_each_event_in_part(
    path: &Path,
    parts: &CsvParts,
    index: usize,
    each: impl FnMut(EventRecord<'_>) -> std::result::Result<(), RowProblem>,
) -> Result<PartRead> {
    let range = &parts.ranges[index];
    let mut file = File::open(path).map_err(DiscoverError::file("opening", path))?;
    file.seek(SeekFrom::Start(range.start))
        .map_err(DiscoverError::file("reading", path))?;
    let counted = QuoteCounter {
        inner: BufReader::with_capacity(1 << 16, file.take(range.end - range.start)),
        quotes: 0,
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(range.start == 0)
        .from_reader(counted);
    let problems = csv_events(&mut reader, &parts.columns, path, each)?;
    Ok(PartRead {
        problems,
        quotes: reader.into_inner().quotes,
    })
}

/// Whether every boundary between `parts` fell outside a quoted field, so the
/// parts read exactly what one pass over the file would have.
pub fn parts_split_cleanly(parts: &[PartRead]) -> bool {
    let mut before = 0;
    for part in parts {
        if before % 2 == 1 {
            return false;
        }
        before += part.quotes;
    }
    true
}

/// Renumbers the problems of each part but the first from the file's start.
pub fn problems_of_parts(path: &Path, parts: &CsvParts, read: Vec<PartRead>) -> Result<Problems> {
    let mut problems = Problems::default();
    // Newlines before `counted_to`, counted only as far as a part with problems needs.
    let (mut lines_before, mut counted_to) = (0, 0);
    for (range, mut part) in parts.ranges.iter().zip(read) {
        if range.start > 0 && !part.problems.shown.is_empty() {
            lines_before += newlines_between(path, counted_to..range.start)?;
            counted_to = range.start;
            part.problems.shift_lines(lines_before);
        }
        problems.merge(part.problems);
    }
    Ok(problems)
}

fn newlines_between(path: &Path, range: Range<u64>) -> Result<u64> {
    let io = DiscoverError::file;
    let mut file = File::open(path).map_err(io("opening", path))?;
    file.seek(SeekFrom::Start(range.start)).map_err(io("reading", path))?;
    let mut input = BufReader::with_capacity(1 << 20, file.take(range.end - range.start));
    let mut count = 0;
    loop {
        let buf = input.fill_buf().map_err(io("reading", path))?;
        if buf.is_empty() {
            return Ok(count);
        }
        count += memchr::memchr_iter(b'\n', buf).count() as u64;
        let n = buf.len();
        input.consume(n);
    }
}

fn csv_event<'a>(
    row: &'a csv::ByteRecord,
    cols: &[usize],
    line: u64,
) -> std::result::Result<EventRecord<'a>, RowProblem> {
    let field = |i: usize| trim_ascii(row.get(cols[i]).unwrap_or_default());
    let text = |i: usize| std::str::from_utf8(field(i)).map_err(|_| format!("{} is not UTF-8", EVENT_COLUMNS[i]));
    let timestamp = field(2);
    let timestamp = match fast_timestamp(timestamp) {
        Some(t) => Ok(t),
        None => Err(String::from_utf8_lossy(timestamp).into_owned()),
    };
    let (user, value) = (field(3), field(4));
    let user = if user.is_empty() { "" } else { text(3)? };
    let value = if value.is_empty() { "" } else { text(4)? };
    parse_event_with(
        [field(0), field(1), b"", user.as_bytes(), value.as_bytes()],
        timestamp,
        line,
    )
}

/// `trim_ascii`, without the loop when there is nothing to trim (nearly always).
fn trim_ascii(field: &[u8]) -> &[u8] {
    match (field.first(), field.last()) {
        (Some(a), Some(b)) if a.is_ascii_whitespace() || b.is_ascii_whitespace() => field.trim_ascii(),
        _ => field,
    }
}

fn parse_event<'a>(fields: [&'a str; 5], line: u64) -> std::result::Result<EventRecord<'a>, RowProblem> {
    let timestamp = fast_timestamp(fields[2].as_bytes()).ok_or_else(|| fields[2].to_string());
    parse_event_with(fields.map(str::as_bytes), timestamp, line)
}

/// `timestamp`: parsed by the fast path, or the text for chrono to judge.
/// `user` and `value` are UTF-8 already.
fn parse_event_with<'a>(
    [account, event, _, user, value]: [&'a [u8]; 5],
    timestamp: std::result::Result<DateTime<Utc>, String>,
    line: u64,
) -> std::result::Result<EventRecord<'a>, RowProblem> {
    if account.is_empty() {
        return Err("account_id is empty".into());
    }
    if event.is_empty() {
        return Err("event is empty".into());
    }
    let timestamp = match timestamp {
        Ok(t) => t,
        Err(text) => parse_timestamp(text.trim()).ok_or_else(|| format!("timestamp `{text}` is not RFC 3339"))?,
    };
    let utf8 = |b: &'a [u8]| std::str::from_utf8(b).unwrap_or_default();
    let value = match utf8(value) {
        "" => None,
        v => match v.parse::<f64>() {
            Ok(x) if x.is_finite() => Some(x),
            _ => return Err(format!("value `{v}` is not a number").into()),
        },
    };
    Ok(EventRecord {
        account_id: account,
        event,
        timestamp,
        user_id: (!user.is_empty()).then(|| utf8(user)),
        value,
        line,
    })
}

/// RFC 3339, with a fast path for the shape exports almost always use
/// (`2025-03-01T10:00:00Z`, optional fraction, `Z` or `±hh:mm`): ten million
/// of them are parsed per run. Anything else goes to chrono, which decides.
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    fast_timestamp(s.as_bytes()).or_else(|| DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc)))
}

fn fast_timestamp(b: &[u8]) -> Option<DateTime<Utc>> {
    fn num(b: &[u8]) -> Option<u32> {
        b.iter()
            .try_fold(0u32, |n, &c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')))
    }
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(&b[0..4])?, num(&b[5..7])?, num(&b[8..10])?);
    let (hour, minute, second) = (num(&b[11..13])?, num(&b[14..16])?, num(&b[17..19])?);
    let mut rest = &b[19..];
    let mut nanos = 0u32;
    if let [b'.', tail @ ..] = rest {
        let digits = tail.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        nanos = num(&tail[..digits])? * 10u32.pow(9 - digits as u32);
        rest = &tail[digits..];
    }
    let offset_seconds = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (num(&[*h1, *h2])?, num(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let seconds = i64::from(h * 3600 + m * 60);
            if *sign == b'-' {
                -seconds
            } else {
                seconds
            }
        }
        _ => return None,
    };
    // A leap second (:60) is left to chrono.
    let local = NaiveDate::from_ymd_opt(year as i32, month, day)?.and_hms_nano_opt(hour, minute, second, nanos)?;
    Some(match offset_seconds {
        0 => local.and_utc(),
        offset => local.and_utc() - chrono::Duration::seconds(offset),
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn file(dir: &tempfile::TempDir, name: &str, content: &[u8]) -> std::path::PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    fn gzip(content: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(content).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn accounts_are_read_and_every_bad_row_is_reported_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(
            &dir,
            "accounts.csv",
            b"account_id,segment,contract_start,decision_date,outcome,arr,tenure_year\n\
              a1,smb,2025-01-01,2025-12-15,renewed,12000,\n\
              a2,enterprise,2025-02-01,2026-01-20,churned,,2\n\
              a3,smb,2025-13-01,2025-12-15,renewed,,\n\
              a4,smb,2025-06-01,2025-05-01,renewed,,\n\
              a5,startup,2025-01-01,2025-12-15,renewed,,\n\
              a6,smb,2025-01-01,2025-12-15,maybe,,\n\
              a1,smb,2025-01-01,2025-12-15,renewed,,\n",
        );
        let (accounts, problems) = read_accounts(&path).unwrap();
        assert_eq!(accounts.len(), 2);
        assert_eq!(accounts[0].arr, Some(12000));
        assert_eq!((accounts[0].tenure_year, accounts[1].tenure_year), (1, 2));
        assert_eq!(accounts[1].outcome, Outcome::Churned);
        assert_eq!(problems.count, 5);
        let shown: Vec<String> = problems.shown.iter().map(ToString::to_string).collect();
        let shown = shown.join("\n");
        for expected in [
            "accounts.csv:4: contract_start `2025-13-01` is not a YYYY-MM-DD date",
            "accounts.csv:5: decision_date 2025-05-01 is before contract_start 2025-06-01",
            "accounts.csv:6: segment: unknown segment `startup`",
            "accounts.csv:7: outcome `maybe` is not one of renewed, churned, expanded or contracted",
            "accounts.csv:8: account a1 appears twice",
        ] {
            assert!(shown.contains(expected), "missing {expected:?} in\n{shown}");
        }
    }

    /// Issue 36: a renewal decision is any of the four the store keeps;
    /// renewal cohorts take expanded and contracted as renewed, expansion
    /// cohorts compare expanded with the other renewals and leave churn out.
    #[test]
    fn every_decision_has_its_cohort_and_churn_is_in_neither_expansion_cohort() {
        use RenewalDecision::*;
        for (decision, renewal, expansion) in [
            (Renewed, Some(Outcome::Renewed), Some(Outcome::Churned)),
            (Expanded, Some(Outcome::Renewed), Some(Outcome::Renewed)),
            (Contracted, Some(Outcome::Renewed), Some(Outcome::Churned)),
            (Churned, Some(Outcome::Churned), None),
        ] {
            assert_eq!(CohortSplit::Renewal.cohort_of(decision), renewal, "{decision}");
            assert_eq!(CohortSplit::Expansion.cohort_of(decision), expansion, "{decision}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = file(
            &dir,
            "accounts.csv",
            b"account_id,segment,contract_start,decision_date,outcome,arr,tenure_year\n\
              a1,smb,2025-01-01,2025-12-15,Expanded,,\n\
              a2,smb,2025-01-01,2025-12-15, contracted ,,\n",
        );
        let (accounts, problems) = read_accounts(&path).unwrap();
        assert_eq!(problems.count, 0, "{:?}", problems.shown);
        let read: Vec<(RenewalDecision, Outcome)> = accounts.iter().map(|a| (a.decision, a.outcome)).collect();
        assert_eq!(read, [(Expanded, Outcome::Renewed), (Contracted, Outcome::Renewed)]);
    }

    #[test]
    fn a_header_without_a_required_column_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(&dir, "accounts.csv", b"account_id,segment,outcome\na1,smb,renewed\n");
        let err = read_accounts(&path).unwrap_err().to_string();
        assert!(err.contains("contract_start") && err.contains("decision_date"), "{err}");
    }

    #[test]
    fn events_stream_from_csv_json_lines_and_gzip_alike() {
        let dir = tempfile::tempdir().unwrap();
        let csv = b"account_id,event,timestamp,user_id,value\n\
                    a1,report.shared,2025-03-01T10:00:00Z,u1,\n\
                    a1,cost.saved,2025-03-02T10:00:00+02:00,,4.5\n\
                    a2,report.shared,yesterday,u2,\n\
                    a2,cost.saved,2025-03-02T10:00:00Z,,lots\n";
        let jsonl = b"{\"account_id\":\"a1\",\"event\":\"report.shared\",\"timestamp\":\"2025-03-01T10:00:00Z\",\"user_id\":\"u1\"}\n\
                      {\"account_id\":\"a1\",\"event\":\"cost.saved\",\"timestamp\":\"2025-03-02T10:00:00+02:00\",\"value\":4.5}\n\
                      {\"account_id\":\"a2\",\"event\":\"report.shared\",\"timestamp\":\"yesterday\"}\n\
                      not json\n";
        for path in [
            file(&dir, "events.csv", csv),
            file(&dir, "events.csv.gz", &gzip(csv)),
            file(&dir, "events.jsonl", jsonl),
            file(&dir, "events.jsonl.gz", &gzip(jsonl)),
        ] {
            let mut events = Vec::new();
            let problems = for_each_event(&path, |e| {
                events.push((e.user_id.map(String::from), e.value, e.timestamp.to_rfc3339()));
                Ok(())
            })
            .unwrap();
            assert_eq!(events.len(), 2, "{}", path.display());
            assert_eq!(events[0].0.as_deref(), Some("u1"));
            assert_eq!(events[1].1, Some(4.5));
            assert_eq!(events[1].2, "2025-03-02T08:00:00+00:00");
            assert_eq!(problems.count, 2, "{}: {:?}", path.display(), problems);
            // CSV counts its header as line 1.
            let line = if is_json_lines(&path) { 3 } else { 4 };
            let expected = format!(":{line}: timestamp `yesterday` is not RFC 3339");
            assert!(
                problems.shown[0].to_string().contains(&expected),
                "{:?}",
                problems.shown
            );
        }
    }

    #[test]
    fn a_refused_event_is_a_problem_at_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(
            &dir,
            "events.csv",
            b"account_id,event,timestamp,user_id,value\na1,x,2025-03-01T10:00:00Z,,\nzz,x,2025-03-01T10:00:00Z,,\n",
        );
        let problems = for_each_event(&path, |e| match e.account_id {
            b"a1" => Ok(()),
            other => Err(format!("unknown account {}", String::from_utf8_lossy(other)).into()),
        })
        .unwrap();
        assert_eq!(problems.count, 1);
        assert!(
            problems.shown[0]
                .to_string()
                .ends_with("events.csv:3: unknown account zz"),
            "{:?}",
            problems.shown
        );
    }

    #[test]
    fn the_fast_timestamp_path_agrees_with_chrono() {
        for s in [
            "2025-03-01T10:00:00Z",
            "2025-03-01t10:00:00z",
            "2025-03-01T10:00:00.5Z",
            "2025-03-01T10:00:00.123456789Z",
            "2025-03-01T10:00:00+02:00",
            "2025-03-01T00:30:00-05:30",
            "2024-02-29T23:59:59Z",
            "1999-12-31T23:59:59.999+14:00",
        ] {
            let chrono = DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
            assert_eq!(fast_timestamp(s.as_bytes()), Some(chrono), "{s}");
        }
        // Not the fast shape, or not a time at all: chrono decides.
        for s in [
            "2025-02-29T10:00:00Z",
            "2025-03-01T24:00:00Z",
            "2025-03-01T10:00:00",
            "2025-03-01T10:00:00.Z",
            "2025-03-01 10:00:00Z",
            "2025-03-01T10:00:00+2:00",
            "yesterday",
            "",
        ] {
            assert_eq!(
                parse_timestamp(s),
                DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc)),
                "{s}"
            );
        }
        assert!(
            parse_timestamp("2025-03-01 10:00:00Z").is_some(),
            "RFC 3339 allows a space"
        );
    }
}
