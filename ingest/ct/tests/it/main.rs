//! Integration tests of certhist-ct against the real fixture data in `tests/data/ct`.

mod protocol;

use std::path::PathBuf;

/// Path of a fixture under the workspace's `tests/data/ct`.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/ct")
        .join(rel)
}

/// Reads a fixture.
pub fn read(rel: &str) -> Vec<u8> {
    std::fs::read(fixture(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The navigli static-CT tile directory.
pub const NAVIGLI: &str = "sunlight/testdata/navigli2025h2";

mod clients;
mod ingest;
mod linking;
mod logs;
mod precert;
mod runs;
mod server;
