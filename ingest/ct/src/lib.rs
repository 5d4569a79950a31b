//! Certificate Transparency ingestion for certhist: RFC 6962 and static-ct-api (c2sp.org/static-ct-api)
//! logs, verified against the log's own Merkle tree, resumable, polite.
//!
//! Layers, bottom up:
//! - pure protocol code: [`tls`] (TLS presentation-language reader), [`leaf`] (RFC 6962 §3.4
//!   `MerkleTreeLeaf`, static-ct `TileLeaf`), [`merkle`] (RFC 9162 §2.1 hashing and proofs),
//!   [`sig`] (RFC 5246 §4.7 `digitally-signed` over RFC 6962 §3.5 tree heads), [`sth`], [`checkpoint`]
//!   (tlog checkpoint notes with `RFC6962NoteSignature`), [`tile`] (tlog-tiles paths and tiles);
//! - HTTP through `certhist-fetch` ([`FetchConfig`]: rate and concurrency limits, retries,
//!   Retry-After, size limit);
//! - [`client`]: one [`client::LogClient`] trait with RFC 6962 and static-CT implementations;
//! - [`precert`]: a precert entry's stored precertificate and issuer checked against its leaf;
//! - [`ingest`]: fetch → parse → verify → write batches with cursors in one transaction,
//!   reporting [`Progress`] events to a callback;
//! - [`plan`]: what to ingest ([`IngestPlan`], logs picked from a v3 [`loglist`]) and [`run`].
//!
//! This crate parses no flags and prints nothing: `certhist ingest ct` (the binary) builds the
//! plan from its flags and draws the progress bar and the summary.

pub mod checkpoint;
pub mod client;
pub mod error;
pub mod ingest;
pub mod leaf;
pub mod loglist;
pub mod merkle;
pub mod plan;
pub mod precert;
pub mod sig;
pub mod sth;
pub mod tile;
pub mod tls;

pub use certhist_fetch::FetchConfig;
pub use error::{CtError, ParseError};
pub use ingest::{IngestOptions, IngestStats, Progress, ProgressFn};
pub use plan::{ingest_one, ingest_static_dir, run, IngestPlan, LogOutcome, LogTarget};

/// A SHA-256 digest (Merkle tree node, leaf hash, fingerprint).
pub type Hash = [u8; 32];
