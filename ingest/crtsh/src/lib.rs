//! crt.sh as a certhist source: a client of its JSON search and PEM downloads (over the shared
//! fetch layer, certhist-fetch, whose [`FetchConfig`] and [`FetchError`] are re-exported), and
//! [`ingest`], which searches, downloads, checks and stores certificates. It parses no flags and
//! prints nothing: `certhist ingest crtsh` does.

pub mod client;
mod ingest;

pub use certhist_fetch::{FetchConfig, FetchError};
pub use client::{
    parse_rows, pem_to_der, CrtshClient, CrtshConfig, CrtshError, CrtshRow, MatchMode, Query,
    QueryResult, ROW_CAP,
};
pub use ingest::{ingest, IngestError, IngestRequest, IngestSummary};
