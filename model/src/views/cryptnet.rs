//! Views of a CryptnetUrlCache analysis (`certhist cryptnet`, the web UI's upload page): one
//! [`CryptnetRow`] per cache entry and OCSP CertID, with what the store (or crt.sh) knows about
//! the certificate the CertID names.
//!
//! Text fields (URLs, names, distinguished names, errors) come from a suspect machine's cache or
//! from certificates and are attacker-controlled: a printer escapes them before they reach a
//! terminal.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

pub use super::certificate::{CacheEntryKind, OcspStatus};

/// What a cached Content file holds (`cache_entries.content_kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CacheContentKind {
    /// A DER `OCSPResponse` (RFC 6960 §4.2.1).
    OcspResponse,
    /// A DER `CertificateList` (RFC 5280 §5.1).
    Crl,
    /// A DER or PEM certificate (RFC 5280 §4.1).
    Certificate,
    /// A Microsoft cabinet (`MSCF`), e.g. authroot/disallowed/pinrules CTLs.
    Cab,
    /// Zero bytes.
    Empty,
    /// Anything else.
    Other,
    /// No Content file for this MetaData.
    Missing,
}

impl CacheContentKind {
    /// The label used in JSON and stored in `cache_entries.content_kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheContentKind::OcspResponse => "ocsp_response",
            CacheContentKind::Crl => "crl",
            CacheContentKind::Certificate => "certificate",
            CacheContentKind::Cab => "cab",
            CacheContentKind::Empty => "empty",
            CacheContentKind::Other => "other",
            CacheContentKind::Missing => "missing",
        }
    }
}

/// How well a certificate matches a CertID. Ordered best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CertIdMatchKind {
    /// Serial, issuer name hash and issuer key hash all equal.
    Exact,
    /// Serial and issuer name hash equal; the issuer key of the certificate is not known.
    SerialAndIssuerName,
    /// Only the serial is equal: a candidate, not a match.
    SerialOnly,
}

impl CertIdMatchKind {
    /// `exact`, `serial_and_issuer_name` or `serial_only`.
    pub fn as_str(self) -> &'static str {
        match self {
            CertIdMatchKind::Exact => "exact",
            CertIdMatchKind::SerialAndIssuerName => "serial_and_issuer_name",
            CertIdMatchKind::SerialOnly => "serial_only",
        }
    }
}

/// Where a CertID was resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ResolutionSource {
    /// The certhist database, as it was before the analysis.
    Local,
    /// crt.sh: the certificate was downloaded, checked against the CertID and stored.
    Crtsh,
}

impl ResolutionSource {
    /// `local` or `crtsh`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResolutionSource::Local => "local",
            ResolutionSource::Crtsh => "crtsh",
        }
    }
}

/// One IP:port that served a matched certificate, with its period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct ServingHost {
    /// Address.
    #[schema(value_type = String, example = "192.0.2.10")]
    pub ip: IpAddr,
    /// Port (0 = unknown).
    pub port: u16,
    /// First sighting (RFC 3339, UTC).
    #[serde(serialize_with = "crate::serde_time::utc")]
    pub first_seen: DateTime<Utc>,
    /// Last sighting (RFC 3339, UTC).
    #[serde(serialize_with = "crate::serde_time::utc")]
    pub last_seen: DateTime<Utc>,
    /// Sightings.
    pub times_seen: i64,
}

/// A certificate that matches (or may match) a CertID.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct CertIdMatch {
    /// SHA-1 of the certificate (lower-case hex).
    #[schema(example = "390917308a9acfd9af6fbe16586c31eaf62a3bd5")]
    pub sha1: String,
    /// Match quality.
    pub match_kind: CertIdMatchKind,
    /// Subject DN.
    pub subject: Option<String>,
    /// Issuer DN (for serial-only candidates: the candidate's issuer).
    pub issuer: Option<String>,
    /// Start of validity (RFC 3339, UTC).
    #[serde(serialize_with = "crate::serde_time::option_utc")]
    pub not_before: Option<DateTime<Utc>>,
    /// End of validity (RFC 3339, UTC).
    #[serde(serialize_with = "crate::serde_time::option_utc")]
    pub not_after: Option<DateTime<Utc>>,
    /// Names (CN, SAN), deduplicated.
    pub names: Vec<String>,
    /// IPs that served it (at most a bounded number per certificate).
    pub hosts: Vec<ServingHost>,
}

/// What is known about one CertID.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct CertIdResolution {
    /// Matching certificates, best first. Serial-only candidates appear only when nothing better
    /// matched.
    pub certs: Vec<CertIdMatch>,
    /// Subject DN of the issuing CA, when a CA certificate with that name hash is known.
    pub issuer: Option<String>,
    /// Where the answer came from; absent when no certificate matched.
    pub source: Option<ResolutionSource>,
}

impl CertIdResolution {
    /// True when some certificate matches serial and issuer name.
    pub fn resolved(&self) -> bool {
        self.certs
            .iter()
            .any(|c| c.match_kind != CertIdMatchKind::SerialOnly)
    }
}

/// One row of a cache analysis: a cache entry, and for OCSP URLs one row per CertID of the
/// request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct CryptnetRow {
    /// When the entry was downloaded (MetaData LastDownloadTime; RFC 3339, UTC).
    #[serde(serialize_with = "crate::serde_time::option_utc")]
    pub time: Option<DateTime<Utc>>,
    /// Where the entry was read: a MetaData file path or `file:line`.
    pub source: String,
    /// The URL fetched (absent when the MetaData is unreadable).
    pub url: Option<String>,
    /// What the URL fetched.
    pub kind: CacheEntryKind,
    /// What the Content file holds (absent for dumps and URL lists).
    pub content_kind: Option<CacheContentKind>,
    /// Index of the CertID in the OCSP request; 0 otherwise.
    pub cert_index: u32,
    /// CertID hash algorithm: `sha1`, `sha256`, `sha384`, `sha512` or a dotted OID.
    pub hash_algorithm: Option<String>,
    /// CertID serial (upper-case hex).
    #[schema(example = "32048030BBB3410F9093C57F2CB8308C805")]
    pub serial: Option<String>,
    /// CertID issuerNameHash (lower-case hex).
    pub issuer_name_hash: Option<String>,
    /// CertID issuerKeyHash (lower-case hex).
    pub issuer_key_hash: Option<String>,
    /// Issuer: the known CA for the CertID, the CRL's issuer or the certificate's issuer.
    pub issuer: Option<String>,
    /// Status of this CertID in the cached OCSP response.
    pub status: Option<OcspStatus>,
    /// Revocation time when revoked (RFC 3339, UTC).
    #[serde(serialize_with = "crate::serde_time::option_utc")]
    pub revoked_at: Option<DateTime<Utc>>,
    /// thisUpdate of the OCSP response or CRL, else of the MetaData (RFC 3339, UTC).
    #[serde(serialize_with = "crate::serde_time::option_utc")]
    pub this_update: Option<DateTime<Utc>>,
    /// nextUpdate (RFC 3339, UTC).
    #[serde(serialize_with = "crate::serde_time::option_utc")]
    pub next_update: Option<DateTime<Utc>>,
    /// What is known about the CertID (absent when not resolved or not an OCSP request).
    pub resolution: Option<CertIdResolution>,
    /// Problems with this entry (unreadable MetaData, size mismatch, parse errors).
    pub errors: Vec<String>,
}
