//! crt.sh as a certhist source: a client of its JSON search and PEM downloads, and
//! [`ingest`], which searches, downloads, checks and stores certificates.

pub mod client;
mod ingest;

pub use client::{
    parse_rows, pem_to_der, CrtshClient, CrtshConfig, CrtshError, CrtshRow, MatchMode, Query,
    QueryResult, ROW_CAP,
};
pub use ingest::{ingest, IngestError, IngestRequest, IngestSummary};
