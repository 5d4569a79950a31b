//! Certificate Transparency ingestion for certhist: RFC 6962 and static-ct-api (c2sp.org/static-ct-api)
//! logs, verified against the log's own Merkle tree, resumable, polite.
//!
//! Layers, bottom up:
//! - pure protocol code: [`tls`] (TLS presentation-language reader), [`leaf`] (RFC 6962 §3.4
//!   `MerkleTreeLeaf`, static-ct `TileLeaf`), [`merkle`] (RFC 9162 §2.1 hashing and proofs),
//!   [`sig`] (RFC 5246 §4.7 `digitally-signed` over RFC 6962 §3.5 tree heads), [`sth`], [`checkpoint`]
//!   (tlog checkpoint notes with `RFC6962NoteSignature`), [`tile`] (tlog-tiles paths and tiles);
//! - [`http`]: a polite HTTP fetcher (rate and concurrency limits, retries, Retry-After);
//! - [`client`]: one [`client::LogClient`] trait with RFC 6962 and static-CT implementations;
//! - [`precert`]: a precert entry's stored precertificate and issuer checked against its leaf;
//! - [`ingest`]: fetch → parse → verify → write batches with cursors in one transaction;
//! - [`cli`]: `certhist ingest ct` arguments and entry point; [`loglist`]: v3 log lists.

pub mod checkpoint;
pub mod cli;
pub mod client;
pub mod error;
pub mod http;
pub mod ingest;
pub mod leaf;
pub mod loglist;
pub mod merkle;
pub mod precert;
pub mod sig;
pub mod sth;
pub mod tile;
pub mod tls;

pub use error::{CtError, ParseError};

/// A SHA-256 digest (Merkle tree node, leaf hash, fingerprint).
pub type Hash = [u8; 32];

/// The User-Agent sent to logs.
pub const USER_AGENT: &str = concat!(
    "certhist/",
    env!("CARGO_PKG_VERSION"),
    " (+https://github.com/certhist)"
);
