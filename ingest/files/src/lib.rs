//! File imports of certhist: readers for certificate files (PEM, DER, base64) and observation
//! files (CSV, TSV, NDJSON). Records come out as `certhist-model` types; this crate never talks SQL.

pub mod certfile;
pub mod observations;
