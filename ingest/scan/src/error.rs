//! Errors of the live scanner (scan-file imports fail with [`certhist_files::ImportError`]).

use std::path::PathBuf;

/// What stopped a scan. Failed handshakes are not errors: they are counted by kind in the
/// summary.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// A file (of targets, of excluded addresses) could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The database refused a batch; everything committed before it is kept.
    #[error(transparent)]
    Store(#[from] certhist_store::StoreError),
    /// An argument is invalid (the message says which and how to fix it).
    #[error("{0}")]
    InvalidArgument(String),
    /// A target (IP, CIDR, range, host name or file line) cannot be used.
    #[error("target {target:?}: {reason}")]
    BadTarget {
        /// The target as given.
        target: String,
        /// Why it cannot be scanned.
        reason: String,
    },
    /// TLS set-up failed (certificate generation for the demo servers, configuration).
    #[error("TLS set-up: {0}")]
    Tls(String),
    /// A background task panicked or was cancelled.
    #[error("internal task failed: {0}")]
    Task(String),
}

impl ScanError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ScanError::Io {
            path: path.into(),
            source,
        }
    }
}
