//! What stops a file import.

use std::path::PathBuf;

/// What stopped an import. Bad records inside a file are not errors: they are
/// [`crate::Problem`]s with their line numbers, and reading goes on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// A file could not be opened or read (also: a compressed stream that is corrupt or cut
    /// off). Batches committed before it are kept, with the cursor: a re-run resumes.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Another process holds the file's import lock (it is importing the same bytes now).
    #[error("{} (sha256 {content_sha256}) is being imported by another certhist process; wait for it to finish", path.display())]
    Busy {
        /// The file.
        path: PathBuf,
        /// Its content hash, hex.
        content_sha256: String,
    },
    /// The database refused a batch; everything committed before it is kept.
    #[error(transparent)]
    Store(#[from] certhist_store::StoreError),
    /// An argument is invalid for this file (the message says which and how to fix it).
    #[error("{0}")]
    InvalidArgument(String),
    /// A background task (reading, hashing) panicked or was cancelled.
    #[error("internal task failed: {0}")]
    Task(String),
}

impl ImportError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ImportError::Io {
            path: path.into(),
            source,
        }
    }
}
