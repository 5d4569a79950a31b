//! Integration tests of certhist-scan: imports of the real scan fixtures (every row of
//! `tests/data/scans/EXPECTED.tsv`), malformed input, re-import and resume, out-of-order imports,
//! and live scans of local TLS servers. Issue 4.

mod common;
mod fixtures;
mod history;
mod hostile;
mod robustness;
mod scanning;
mod sni;
