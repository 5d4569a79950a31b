//! Error types of this crate.

/// Malformed protocol data (TLS structures, JSON, notes, tiles).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The input ended before a field was complete.
    #[error("truncated {what}: needed {needed} more bytes")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Bytes missing.
        needed: usize,
    },
    /// Bytes were left after the structure ended.
    #[error("{count} trailing bytes after {what}")]
    Trailing {
        /// The structure.
        what: &'static str,
        /// Bytes left.
        count: usize,
    },
    /// A field holds a value the spec does not allow.
    #[error("invalid {what}: {detail}")]
    Invalid {
        /// The field.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
}

impl ParseError {
    pub(crate) fn invalid(what: &'static str, detail: impl Into<String>) -> Self {
        ParseError::Invalid {
            what,
            detail: detail.into(),
        }
    }
}

/// Errors of CT clients and ingestion.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CtError {
    /// The log sent data that does not parse.
    #[error("{url}: {source}")]
    Parse {
        /// Where the data came from.
        url: String,
        /// What was wrong.
        #[source]
        source: ParseError,
    },
    /// An HTTP request failed for good (after the retries the fetch layer makes).
    #[error(transparent)]
    Fetch(#[from] certhist_fetch::FetchError),
    /// The log does not serve something it must (HTTP 404, or a file missing from a local
    /// mirror).
    #[error("{url}: not found")]
    NotFound {
        /// What was asked for.
        url: String,
    },
    /// Reading a local tile mirror failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A tree head's or checkpoint's signature does not verify under the log's key.
    #[error("log {log}: tree head signature invalid: {detail}")]
    BadSignature {
        /// The log.
        log: String,
        /// Details.
        detail: String,
    },
    /// The log served data that does not match its own signed tree head: it is refused.
    #[error("log {log} refused: {detail}")]
    Inconsistent {
        /// The log.
        log: String,
        /// What did not match.
        detail: String,
    },
    /// A public key could not be decoded or is of an unsupported type.
    #[error("bad public key: {0}")]
    BadKey(String),
    /// Bad input: a log list that does not parse, a log name that matches no listed log.
    #[error("{0}")]
    Usage(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] certhist_store::StoreError),
}
