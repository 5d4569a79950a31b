//! CryptnetUrlCache, OCSP CertID decoding and resolution for certhist.
//!
//! Windows caches OCSP requests/responses, CRLs and certificates under
//! `%USERPROFILE%\AppData\LocalLow\Microsoft\CryptnetUrlCache\{MetaData,Content}`. This crate
//! reads such caches (and `certutil -urlcache` dumps or URL lists), decodes the OCSP CertIDs in
//! the GET URLs (RFC 6960 Appendix A.1), resolves them against the certhist store (and crt.sh) to
//! certificates, their names and the IPs that served them, and builds one report row per entry
//! and CertID ([`CryptnetRow`], a view of `certhist_model::views::cryptnet`).
//!
//! The entry point is [`analyze_paths`] with typed [`AnalyzeOptions`]; it returns rows and
//! warnings and reports [`Progress`] through a callback. Rendering is the caller's business.

pub mod analyze;
pub mod content;
pub mod der;
pub mod entry;
pub mod inputs;
pub mod metadata;
pub mod ocsp;
pub mod report;
pub mod resolve;

pub use analyze::{
    analyze, analyze_paths, load_paths, Analysis, AnalyzeOptions, Progress, ResolveMode,
};
pub use certhist_model::views::cryptnet::{
    CacheContentKind, CacheEntryKind, CertIdMatch, CertIdMatchKind, CertIdResolution, CryptnetRow,
    OcspStatus, ResolutionSource, ServingHost,
};
pub use content::{classify, Content, ContentDetail, CrlInfo};
pub use entry::{CacheEntry, Origin};
pub use inputs::{load_path, Loaded};
pub use metadata::{parse_metadata, Metadata, MetadataError, NameCheck};
pub use ocsp::{build_get_url, decode_get_url, CertId, CertStatus, HashAlgorithm, OcspResponse};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptnetError {
    /// A path could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The path holds no cache folder, MetaData file or URL.
    #[error("{0}: no CryptnetUrlCache folder, MetaData file or URL found")]
    NoCache(String),
    /// None of the inputs held a cache entry (the caller gave nothing to analyse).
    #[error("no cache entries found")]
    NoEntries {
        /// Why inputs could not be read (unreadable paths, folders without a cache).
        warnings: Vec<String>,
    },
    /// A zip archive could not be read.
    #[error("{path}: zip: {message}")]
    Zip {
        /// The archive.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The database failed.
    #[error("database: {0}")]
    Store(#[from] certhist_store::StoreError),
    /// crt.sh failed.
    #[error("crt.sh: {0}")]
    Crtsh(String),
    /// The task reading the inputs did not finish (it panicked or was cancelled).
    #[error("reading the inputs failed: {0}")]
    Task(String),
}
