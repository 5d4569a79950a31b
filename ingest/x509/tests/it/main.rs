//! Integration tests of certhist-x509: certificate normalisation.
//!
//! Fixtures live in `tests/data/certs/` at the workspace root (provenance in its README.md).

mod fixtures;
mod inventory;
mod robustness;

use std::path::PathBuf;

use certhist_files::certfile::CertReader;

/// `tests/data/certs/` at the workspace root.
pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/certs")
}

/// All certificates (DER) of one fixture file, read through [`CertReader`]; panics on problems.
pub fn read_all(rel: &str) -> Vec<Vec<u8>> {
    let path = data_dir().join(rel);
    CertReader::new([path.clone()])
        .map(|item| match item {
            Ok(found) => found.der,
            Err(problem) => panic!("reading {}: {problem}", path.display()),
        })
        .collect()
}

/// The single certificate of a fixture file.
pub fn read_one(rel: &str) -> Vec<u8> {
    let mut all = read_all(rel);
    assert_eq!(all.len(), 1, "{rel} should hold one certificate");
    all.remove(0)
}
