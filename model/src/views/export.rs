//! Exports (`certhist export`, `GET /api/v1/export`): the passive-SSL common output format row
//! and the formats an export is written in.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One sighting in the passive-SSL common output format (NDJSON and CSV exports), modelled on
/// the passive DNS common output format (`time_first`, `time_last`, `count`): this address served
/// this certificate on this port between two times.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CofRow {
    /// The address.
    #[schema(value_type = String, example = "203.0.113.5")]
    pub ip: IpAddr,
    /// TCP port (0 = unknown).
    pub port: u16,
    /// Certificate SHA-1 (lower-case hex).
    #[schema(pattern = "^[0-9a-f]{40}$")]
    pub cert_sha1: String,
    /// First sighting, Unix seconds (UTC).
    pub time_first: i64,
    /// Last sighting, Unix seconds (UTC).
    pub time_last: i64,
    /// Number of sightings.
    pub count: i64,
    /// Sources that reported it.
    pub source: Vec<String>,
}

/// The format of an export.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// One [`CofRow`] per line.
    Ndjson,
    /// The [`CofRow`] fields as CSV with a header line (times RFC 3339, sources joined by `;`).
    Csv,
    /// A STIX 2.1 bundle.
    Stix,
    /// A MISP event with `x509` objects.
    Misp,
}

impl ExportFormat {
    /// Every format.
    pub const ALL: [ExportFormat; 4] = [
        ExportFormat::Ndjson,
        ExportFormat::Csv,
        ExportFormat::Stix,
        ExportFormat::Misp,
    ];

    /// The user-facing name.
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Ndjson => "ndjson",
            ExportFormat::Csv => "csv",
            ExportFormat::Stix => "stix",
            ExportFormat::Misp => "misp",
        }
    }

    /// Reads a user-facing name, case-insensitively; `None` when unknown.
    pub fn from_name(text: &str) -> Option<ExportFormat> {
        ExportFormat::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(text.trim()))
    }

    /// The media type of the whole output.
    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Ndjson => "application/x-ndjson",
            ExportFormat::Csv => "text/csv; charset=utf-8; header=present",
            ExportFormat::Stix => "application/stix+json;version=2.1",
            ExportFormat::Misp => "application/json",
        }
    }

    /// The file name extension.
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Ndjson => "ndjson",
            ExportFormat::Csv => "csv",
            ExportFormat::Stix => "stix.json",
            ExportFormat::Misp => "misp.json",
        }
    }
}

impl std::fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
