//! An error and its causes on one line, for logs: our errors keep the
//! adapter's error as their `source` rather than copying its text, so a
//! log line walks the chain.

use std::error::Error;
use std::fmt;

/// Displays `error: its source: that one's source ...`.
pub struct ErrorChain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(e) = cause {
            write!(f, ": {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{PublishError, StoreError};

    #[test]
    fn a_log_line_names_the_cause_the_error_keeps() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset by peer");
        let store = StoreError::backend(io);
        assert_eq!(
            store.source().map(|s| s.to_string()).as_deref(),
            Some("connection reset by peer")
        );
        assert_eq!(
            ErrorChain(&store).to_string(),
            "the store failed: connection reset by peer"
        );
        let publish = PublishError::new("ThrottlingException: Rate exceeded");
        assert_eq!(
            ErrorChain(&publish).to_string(),
            "publishing to the event bus failed: ThrottlingException: Rate exceeded"
        );
    }
}
