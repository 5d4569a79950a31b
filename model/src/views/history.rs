//! Sightings: the certificate history of an address, and the hosts of a certificate.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::views::CertSummary;
use crate::{serde_hex, Sha1};

/// One row of an address's certificate history: this address served this certificate on this
/// port between two times.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct IpHistoryItem {
    /// The address.
    #[schema(value_type = String, example = "192.0.2.10")]
    pub ip: IpAddr,
    /// TCP port (0 = unknown).
    pub port: u16,
    /// Certificate SHA-1 (hex).
    #[serde(with = "serde_hex")]
    #[schema(value_type = String, pattern = "^[0-9a-f]{40}$")]
    pub sha1: Sha1,
    /// First sighting.
    pub first_seen: DateTime<Utc>,
    /// Last sighting.
    pub last_seen: DateTime<Utc>,
    /// Number of sightings.
    pub times_seen: i64,
    /// Sources that reported it.
    pub sources: Vec<String>,
    /// The certificate, when its DER is stored.
    pub cert: Option<CertSummary>,
    /// Tags touching the row: on the address, on blocks containing it, and on the certificate
    /// (names only, sorted; always present).
    pub tags: Vec<String>,
}

/// One address:port that served a certificate (reverse search).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct HostItem {
    /// The address.
    #[schema(value_type = String, example = "192.0.2.10")]
    pub ip: IpAddr,
    /// TCP port (0 = unknown).
    pub port: u16,
    /// First sighting.
    pub first_seen: DateTime<Utc>,
    /// Last sighting.
    pub last_seen: DateTime<Utc>,
    /// Number of sightings.
    pub times_seen: i64,
    /// Sources that reported it.
    pub sources: Vec<String>,
    /// Tags on the address and on blocks containing it (names only, sorted; always present).
    pub tags: Vec<String>,
}
