//! Integration tests of certhist-files: certificate and observation files, the import driver.
//!
//! Fixtures live in `tests/data/certs/` at the workspace root (provenance in its README.md).

mod certfile;
mod driver;

use std::path::PathBuf;

use certhist_files::certfile::CertReader;

/// `tests/data/certs/` at the workspace root.
pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/certs")
}

/// The single certificate of a fixture file.
pub fn read_one(rel: &str) -> Vec<u8> {
    let path = data_dir().join(rel);
    let mut all: Vec<Vec<u8>> = CertReader::new([path.clone()])
        .map(|item| match item {
            Ok(found) => found.der,
            Err(problem) => panic!("reading {}: {problem}", path.display()),
        })
        .collect();
    assert_eq!(all.len(), 1, "{rel} should hold one certificate");
    all.remove(0)
}
