//! Certificates: the compact summary lists show, and the full record.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{serde_hex, CertName, DistinguishedName, Serial, Sha1, Sha256};

/// A compact certificate description, as lists show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct CertSummary {
    /// SHA-1 of the DER (hex).
    #[serde(with = "serde_hex")]
    #[schema(value_type = String, pattern = "^[0-9a-f]{40}$")]
    pub sha1: Sha1,
    /// SHA-256 of the DER (hex).
    #[serde(with = "serde_hex")]
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub sha256: Sha256,
    /// Serial number (upper-case hex of the magnitude, no separators).
    #[schema(value_type = Option<String>, pattern = "^[0-9A-F]+$")]
    pub serial: Option<Serial>,
    /// Subject commonName.
    pub subject_cn: Option<String>,
    /// Subject organizationName.
    pub subject_o: Option<String>,
    /// Issuer commonName.
    pub issuer_cn: Option<String>,
    /// Issuer organizationName.
    pub issuer_o: Option<String>,
    /// Start of validity.
    #[serde(serialize_with = "crate::serde_time::option_utc")]
    pub not_before: Option<DateTime<Utc>>,
    /// End of validity.
    #[serde(serialize_with = "crate::serde_time::option_utc")]
    pub not_after: Option<DateTime<Utc>>,
    /// CA certificate (basicConstraints cA).
    pub is_ca: bool,
    /// Precertificate (RFC 6962 §3.1 poison extension).
    pub is_precert: bool,
    /// Why the DER did not parse, when it did not.
    pub parse_error: Option<String>,
    /// Tags on the certificate (names only, sorted; always present). In a full record: every
    /// tag touching it, on the certificate or on one of its names (details in `tag_details`).
    pub tags: Vec<String>,
}

/// How common a certificate is: the distinct addresses that served it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Commonness {
    /// Distinct IP addresses that served it.
    pub distinct_ips: i64,
    /// True when `distinct_ips` is above `shared_threshold` (CDN defaults, appliance certs).
    pub shared: bool,
    /// The threshold in force.
    pub shared_threshold: i64,
}

impl Commonness {
    /// The default threshold above which a certificate is shared (CDN defaults, appliance
    /// certificates).
    pub const DEFAULT_THRESHOLD: i64 = 50;

    /// Commonness of a certificate served by `distinct_ips` addresses.
    pub fn new(distinct_ips: i64, shared_threshold: i64) -> Self {
        Commonness {
            distinct_ips,
            shared: distinct_ips > shared_threshold,
            shared_threshold,
        }
    }
}

/// The type of a CT log entry (RFC 6962 §3.1 `LogEntryType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CtEntryType {
    /// `x509_entry`: a certificate.
    X509,
    /// `precert_entry`: a precertificate.
    Precert,
}

impl CtEntryType {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            CtEntryType::X509 => "x509",
            CtEntryType::Precert => "precert",
        }
    }

    /// Reads the stored text.
    pub fn from_db(text: &str) -> Option<Self> {
        match text {
            "x509" => Some(CtEntryType::X509),
            "precert" => Some(CtEntryType::Precert),
            _ => None,
        }
    }
}

/// A CT log entry of a certificate or of its precertificate / final certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct CtEntry {
    /// Log URL.
    pub log_url: String,
    /// Entry index.
    pub entry_index: i64,
    /// Entry timestamp (the SCT's).
    #[serde(serialize_with = "crate::serde_time::utc")]
    pub entry_timestamp: DateTime<Utc>,
    /// x509 | precert.
    pub entry_type: CtEntryType,
    /// SHA-1 (hex) of the logged DER: this certificate's, or a sibling's in `ct_siblings`.
    #[serde(with = "serde_hex")]
    #[schema(value_type = String, pattern = "^[0-9a-f]{40}$")]
    pub sha1: Sha1,
}

/// What a cache artifact is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CacheEntryKind {
    /// An OCSP request URL (and response, when cached).
    Ocsp,
    /// A CRL.
    Crl,
    /// A certificate (AIA caIssuers).
    Cert,
    /// A cabinet file (Windows root / disallowed lists).
    Cab,
    /// Anything else.
    Other,
}

impl CacheEntryKind {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheEntryKind::Ocsp => "ocsp",
            CacheEntryKind::Crl => "crl",
            CacheEntryKind::Cert => "cert",
            CacheEntryKind::Cab => "cab",
            CacheEntryKind::Other => "other",
        }
    }

    /// Reads the stored text.
    pub fn from_db(text: &str) -> Option<Self> {
        Some(match text {
            "ocsp" => CacheEntryKind::Ocsp,
            "crl" => CacheEntryKind::Crl,
            "cert" => CacheEntryKind::Cert,
            "cab" => CacheEntryKind::Cab,
            "other" => CacheEntryKind::Other,
            _ => return None,
        })
    }
}

/// An OCSP `CertStatus` (RFC 6960 §4.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OcspStatus {
    /// `good`.
    Good,
    /// `revoked`.
    Revoked,
    /// `unknown`.
    Unknown,
}

impl OcspStatus {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            OcspStatus::Good => "good",
            OcspStatus::Revoked => "revoked",
            OcspStatus::Unknown => "unknown",
        }
    }

    /// Reads the stored text.
    pub fn from_db(text: &str) -> Option<Self> {
        Some(match text {
            "good" => OcspStatus::Good,
            "revoked" => OcspStatus::Revoked,
            "unknown" => OcspStatus::Unknown,
            _ => return None,
        })
    }
}

/// A cache artifact (CryptnetUrlCache, certutil) whose OCSP CertID names the certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct CacheEntry {
    /// Collection label (host or case).
    pub collection: String,
    /// URL fetched.
    pub url: String,
    /// What the artifact is.
    pub kind: CacheEntryKind,
    /// When the machine downloaded it.
    #[serde(serialize_with = "crate::serde_time::option_utc")]
    pub downloaded_at: Option<DateTime<Utc>>,
    /// HTTP Last-Modified.
    #[serde(serialize_with = "crate::serde_time::option_utc")]
    pub last_modified: Option<DateTime<Utc>>,
    /// OCSP certStatus, when the response was in the cache.
    pub ocsp_status: Option<OcspStatus>,
    /// OCSP thisUpdate.
    #[serde(serialize_with = "crate::serde_time::option_utc")]
    pub this_update: Option<DateTime<Utc>>,
    /// OCSP nextUpdate.
    #[serde(serialize_with = "crate::serde_time::option_utc")]
    pub next_update: Option<DateTime<Utc>>,
}

/// The full record of a certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct CertificateRecord {
    /// The list fields.
    #[serde(flatten)]
    pub summary: CertSummary,
    /// The DER (not in JSON: the API serves it with `format=der|pem`).
    #[serde(skip)]
    pub der: Vec<u8>,
    /// True when the DER INTEGER serial was negative.
    pub serial_negative: bool,
    /// Subject.
    pub subject: DistinguishedName,
    /// Issuer.
    pub issuer: DistinguishedName,
    /// SHA-256 of the SubjectPublicKeyInfo (hex).
    #[serde(with = "serde_hex::option")]
    #[schema(value_type = Option<String>, pattern = "^[0-9a-f]{64}$")]
    pub spki_sha256: Option<Vec<u8>>,
    /// SHA-1 of the public key bits: the OCSP issuerKeyHash of its children (RFC 6960 §4.1.1).
    #[serde(with = "serde_hex::option")]
    #[schema(value_type = Option<String>, pattern = "^[0-9a-f]{40}$")]
    pub key_sha1: Option<Vec<u8>>,
    /// Key algorithm (`rsa`, `ec`, `ed25519`, …, or a dotted OID).
    pub key_algorithm: Option<String>,
    /// Key size in bits.
    pub key_bits: Option<i32>,
    /// Signature algorithm.
    pub signature_algorithm: Option<String>,
    /// OCSP issuerNameHash: SHA-1 of the issuer Name DER (hex).
    #[serde(with = "serde_hex::option")]
    #[schema(value_type = Option<String>, pattern = "^[0-9a-f]{40}$")]
    pub issuer_name_hash: Option<Vec<u8>>,
    /// OCSP issuerKeyHash (hex), when the issuer is known.
    #[serde(with = "serde_hex::option")]
    #[schema(value_type = Option<String>, pattern = "^[0-9a-f]{40}$")]
    pub issuer_key_hash: Option<Vec<u8>>,
    /// authorityKeyIdentifier (hex).
    #[serde(with = "serde_hex::option")]
    #[schema(value_type = Option<String>, pattern = "^[0-9a-f]*$")]
    pub authority_key_id: Option<Vec<u8>>,
    /// subjectKeyIdentifier (hex).
    #[serde(with = "serde_hex::option")]
    #[schema(value_type = Option<String>, pattern = "^[0-9a-f]*$")]
    pub subject_key_id: Option<Vec<u8>>,
    /// SHA-256 of the TBS without CT extensions: equal for a precertificate and its final
    /// certificate (RFC 6962 §3.2).
    #[serde(with = "serde_hex::option")]
    #[schema(value_type = Option<String>, pattern = "^[0-9a-f]{64}$")]
    pub tbs_noct_sha256: Option<Vec<u8>>,
    /// When certhist stored it.
    #[serde(serialize_with = "crate::serde_time::utc")]
    pub added_at: DateTime<Utc>,
    /// Names (CN, SAN, email), by kind then name.
    pub names: Vec<CertName>,
    /// Precertificate ↔ final certificate siblings.
    pub ct_siblings: Vec<CertSummary>,
    /// CT log entries of this certificate and its siblings, oldest first.
    pub ct_entries: Vec<CtEntry>,
    /// Earliest CT timestamp of the certificate or a sibling.
    #[serde(serialize_with = "crate::serde_time::option_utc")]
    pub first_seen_in_ct: Option<DateTime<Utc>>,
    /// Cache artifacts naming this certificate's CertID.
    pub cache_entries: Vec<CacheEntry>,
    /// Distinct addresses that served it.
    pub commonness: Commonness,
    /// The tags on the certificate and on its names, with author and time (by tag).
    pub tag_details: Vec<crate::views::Tag>,
    /// Notes on the certificate, oldest first.
    pub notes: Vec<crate::views::Note>,
}
