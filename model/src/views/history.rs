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
    #[serde(serialize_with = "crate::serde_time::utc")]
    pub first_seen: DateTime<Utc>,
    /// Last sighting.
    #[serde(serialize_with = "crate::serde_time::utc")]
    pub last_seen: DateTime<Utc>,
    /// Number of sightings.
    pub times_seen: i64,
    /// Sources that reported it.
    pub sources: Vec<String>,
    /// The certificate, when its DER is stored.
    pub cert: Option<CertSummary>,
    /// Host names clients asked this address:port for (TLS SNI seen by network sensors),
    /// sorted; empty when none were recorded.
    pub names_seen: Vec<String>,
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
    #[serde(serialize_with = "crate::serde_time::utc")]
    pub first_seen: DateTime<Utc>,
    /// Last sighting.
    #[serde(serialize_with = "crate::serde_time::utc")]
    pub last_seen: DateTime<Utc>,
    /// Number of sightings.
    pub times_seen: i64,
    /// Sources that reported it.
    pub sources: Vec<String>,
    /// Tags on the address and on blocks containing it (names only, sorted; always present).
    pub tags: Vec<String>,
}

/// A certificate known only by its SHA-256 (a Zeek >= 4.1 log names certificates by SHA-256 and
/// gives their text fields, no DER): what the sensor log said, until the DER arrives from any
/// source and the stub joins the certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct CertStubRecord {
    /// Always true: this is a stub, not a parsed certificate.
    pub stub: bool,
    /// SHA-256 (hex).
    #[serde(with = "serde_hex")]
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub sha256: crate::Sha256,
    /// Subject DN as the sensor wrote it.
    pub subject_dn: Option<String>,
    /// CN of the subject DN.
    pub subject_cn: Option<String>,
    /// Issuer DN as the sensor wrote it.
    pub issuer_dn: Option<String>,
    /// Serial as the sensor wrote it (hex).
    pub serial: Option<String>,
    /// Validity start.
    #[serde(serialize_with = "crate::serde_time::option_utc")]
    pub not_before: Option<DateTime<Utc>>,
    /// Validity end.
    #[serde(serialize_with = "crate::serde_time::option_utc")]
    pub not_after: Option<DateTime<Utc>>,
    /// SAN dNSNames the sensor listed.
    pub san_dns: Vec<String>,
    /// Sources that reported it.
    pub sources: Vec<String>,
    /// When it was first stored.
    #[serde(serialize_with = "crate::serde_time::utc")]
    pub added_at: DateTime<Utc>,
}

/// A sighting of a certificate known only by SHA-256 (a stub from a sensor log), in an address's
/// history until the certificate's DER arrives and the sighting joins the SHA-1 history. The
/// text fields are what the sensor log wrote (not parsed from a DER).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct StubSightingItem {
    /// Always true: the certificate is known only by SHA-256 (tells these apart from history
    /// rows in an NDJSON stream).
    pub stub: bool,
    /// The address.
    #[schema(value_type = String, example = "192.0.2.10")]
    pub ip: IpAddr,
    /// TCP port (0 = unknown).
    pub port: u16,
    /// Certificate SHA-256 (hex).
    #[serde(with = "serde_hex")]
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub sha256: crate::Sha256,
    /// First sighting.
    #[serde(serialize_with = "crate::serde_time::utc")]
    pub first_seen: DateTime<Utc>,
    /// Last sighting.
    #[serde(serialize_with = "crate::serde_time::utc")]
    pub last_seen: DateTime<Utc>,
    /// Number of sightings.
    pub times_seen: i64,
    /// Sources that reported it.
    pub sources: Vec<String>,
    /// Subject CN as the sensor log gave it.
    pub subject_cn: Option<String>,
    /// Subject DN as the sensor log gave it.
    pub subject_dn: Option<String>,
    /// Issuer DN as the sensor log gave it.
    pub issuer_dn: Option<String>,
    /// Serial as the sensor log gave it (hex).
    pub serial: Option<String>,
    /// Validity start, when the log gave it.
    #[serde(serialize_with = "crate::serde_time::option_utc")]
    pub not_before: Option<DateTime<Utc>>,
    /// Validity end, when the log gave it.
    #[serde(serialize_with = "crate::serde_time::option_utc")]
    pub not_after: Option<DateTime<Utc>>,
}

/// A page of an address's history (`/api/v1/ip/…`): the rows by SHA-1, and on the first page
/// the sightings of certificates known only by SHA-256.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct IpHistoryPage {
    /// The rows of this page.
    pub items: Vec<IpHistoryItem>,
    /// Pass as `cursor` to get the next page; `null` when this is the last page.
    pub next_cursor: Option<String>,
    /// Sightings of certificates known only by SHA-256 (sensor-log stubs whose DER has not
    /// arrived), in (ip, port, sha256) order: on the first page (no `cursor`), at most `limit`
    /// of them; empty on later pages.
    pub stub_sightings: Vec<StubSightingItem>,
    /// True when there are more stub sightings than listed (narrow the block or the window,
    /// or stream NDJSON).
    pub stub_sightings_truncated: bool,
}

/// A client seen talking TLS to a server (`import pcap --keep-clients` only: client addresses
/// are not stored by default), with the certificate it presented, if any.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct ClientContactItem {
    /// The server address the client contacted.
    #[schema(value_type = String, example = "192.0.2.10")]
    pub server_ip: IpAddr,
    /// The server's TCP port (0 = unknown).
    pub server_port: u16,
    /// The client's address.
    #[schema(value_type = String, example = "198.51.100.7")]
    pub client_ip: IpAddr,
    /// SHA-1 (hex) of the certificate the client presented (TLS client authentication); `null`
    /// when it presented none.
    #[serde(with = "crate::serde_hex::option")]
    #[schema(value_type = Option<String>, pattern = "^[0-9a-f]{40}$")]
    pub client_cert_sha1: Option<Sha1>,
    /// First contact seen.
    #[serde(serialize_with = "crate::serde_time::utc")]
    pub first_seen: DateTime<Utc>,
    /// Last contact seen.
    #[serde(serialize_with = "crate::serde_time::utc")]
    pub last_seen: DateTime<Utc>,
    /// Number of contacts (handshakes) seen.
    pub times_seen: i64,
    /// Sources that reported it.
    pub sources: Vec<String>,
}
