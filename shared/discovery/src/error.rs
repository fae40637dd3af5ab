//! Why `discover` stopped, and why it skipped a row.

use std::path::PathBuf;

/// A failure that stops the run: a file that cannot be read or written, or
/// input that cannot be used at all. The underlying error is the source.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("{doing} {}", path.display())]
    File {
        doing: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Reading a CSV file failed at `line` (a fault of the file or the disk;
    /// a malformed row is a `RowProblem` instead).
    #[error("{}:{line}: reading", path.display())]
    Csv {
        path: PathBuf,
        line: u64,
        #[source]
        source: csv::Error,
    },
    /// What was given cannot be used: a header without the needed columns,
    /// invalid maps, no maps at all.
    #[error("{0}")]
    Input(String),
    #[error("writing the results")]
    Output(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl DiscoverError {
    pub(crate) fn file(doing: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self + use<> {
        let path = path.to_path_buf();
        move |source| DiscoverError::File { doing, path, source }
    }
}

/// Why one row was skipped: reported with its file and line, never fatal.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RowProblem(pub String);

impl From<String> for RowProblem {
    fn from(message: String) -> Self {
        RowProblem(message)
    }
}

impl From<&str> for RowProblem {
    fn from(message: &str) -> Self {
        RowProblem(message.to_string())
    }
}

impl From<RowProblem> for String {
    fn from(problem: RowProblem) -> Self {
        problem.0
    }
}

/// Writing the CSV output failed.
impl From<csv::Error> for DiscoverError {
    fn from(e: csv::Error) -> Self {
        DiscoverError::Output(e.into())
    }
}

impl From<csv::IntoInnerError<csv::Writer<Vec<u8>>>> for DiscoverError {
    fn from(e: csv::IntoInnerError<csv::Writer<Vec<u8>>>) -> Self {
        DiscoverError::Output(e.into_error().into())
    }
}

pub type Result<T> = std::result::Result<T, DiscoverError>;
