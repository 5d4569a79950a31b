//! Shared helpers of the store tests: fixture certificates parsed by the real parser.

use std::path::PathBuf;

use certhist_files::certfile::CertReader;
use certhist_model::{CertRecord, ObservationRow};
use certhist_x509::parse_der;
use chrono::{DateTime, Utc};

/// `tests/data/certs/<rel>` at the workspace root.
pub fn cert_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/certs")
        .join(rel)
}

/// Every certificate in a fixture file, parsed.
pub fn certs(rel: &str) -> Vec<CertRecord> {
    CertReader::new([cert_path(rel)])
        .map(|r| parse_der(&r.expect("fixture reads").der))
        .collect()
}

/// The first certificate in a fixture file.
pub fn cert(rel: &str) -> CertRecord {
    certs(rel)
        .into_iter()
        .next()
        .expect("fixture holds a certificate")
}

pub fn t(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("test time")
        .with_timezone(&Utc)
}

pub fn sha1(hex_text: &str) -> [u8; 20] {
    hex::decode(hex_text)
        .expect("hex")
        .try_into()
        .expect("20 bytes")
}

pub fn obs(
    ip: &str,
    port: u16,
    sha1_hex: &str,
    first: &str,
    last: &str,
    n: i64,
    source: &str,
) -> ObservationRow {
    ObservationRow {
        ip: ip.parse().expect("test ip"),
        port,
        sha1: sha1(sha1_hex),
        first_seen: t(first),
        last_seen: t(last),
        times_seen: n,
        source: source.to_owned(),
    }
}
