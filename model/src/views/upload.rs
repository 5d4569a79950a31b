//! Answers of the upload routes (`POST /api/v1/uploads/…`, issue 12).

use serde::Serialize;
use utoipa::ToSchema;

use super::cryptnet::CryptnetRow;

/// Bad rows listed in an [`UploadSummary`]; `bad_rows` counts them all.
pub const UPLOAD_PROBLEMS_LISTED: usize = 100;

/// What an upload of observations, certificates or a scan file did (the same counts
/// `certhist import` prints for the same file).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct UploadSummary {
    /// The import kind: `observations`, `certs`, `zgrab2`, `sonar-certs`, `sonar-hosts`, `nmap`,
    /// `masscan`.
    pub kind: String,
    /// The file name given with `filename` (or the default of the route).
    pub file: String,
    /// Bytes received.
    pub size_bytes: u64,
    /// SHA-256 of the bytes received (lower-case hex): with the kind, the identity of the import.
    pub content_sha256: String,
    /// The same bytes were imported completely before: nothing changed (`force=true` adds
    /// their counts again).
    pub already_imported: bool,
    /// Rows (lines, records, certificates) read: good, bad and ignored.
    pub rows_read: u64,
    /// Good rows stored (observation rows, certificates, scan records).
    pub rows_stored: u64,
    /// Rows that added nothing new: certificates already stored or repeated in the upload;
    /// observation rows merged with another row of the same (ip, port, sha1).
    pub duplicates: u64,
    /// Rows skipped as bad (every one; the first ones are in `problems`).
    pub bad_rows: u64,
    /// Sightings written (merged into observations).
    pub sightings: u64,
    /// Distinct (ip, port, sha1) keys written.
    pub observation_keys: u64,
    /// Certificate occurrences read.
    pub certificates_seen: u64,
    /// Certificates new to the database.
    pub certificates_new: u64,
    /// Of the new certificates, how many did not parse (stored with their parse error).
    pub certificates_unparsable: u64,
    /// Blocks that hold nothing to store and are no problem (PEM blocks of keys).
    pub ignored: u64,
    /// The first bad rows (at most 100), with line numbers.
    pub problems: Vec<UploadProblem>,
    /// More bad rows than `problems` lists.
    pub problems_truncated: bool,
    /// Wall time of the import (after the body was received), in milliseconds.
    pub elapsed_ms: u64,
}

/// A bad row of an upload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct UploadProblem {
    /// 1-based line number; 0 when the problem concerns the whole file or a file without
    /// lines (DER).
    pub line: u64,
    /// What is wrong with it.
    pub detail: String,
}

/// What a CryptnetUrlCache upload did: the entries stored under `label` and the report rows
/// (the rows `certhist cryptnet --store --label LABEL --json` prints).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct CryptnetUpload {
    /// The collection label the entries are stored under.
    pub label: String,
    /// Bytes received.
    pub size_bytes: u64,
    /// SHA-256 of the bytes received (lower-case hex).
    pub content_sha256: String,
    /// One row per cache entry and CertID.
    pub rows: Vec<CryptnetRow>,
    /// Problems that did not stop the analysis (unreadable entries).
    pub warnings: Vec<String>,
}
