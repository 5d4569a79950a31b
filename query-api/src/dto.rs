//! Response bodies. They mirror the store's rows with stable, documented field names (hashes in
//! lower-case hex, serials in upper-case hex, times in RFC 3339 UTC).

use std::net::IpAddr;

use certhist_store::read::CtEntryInfo;
use certhist_store::read::{CertDetail, CertSummary, HostRow, IpHistoryRow, SearchHit};
use certhist_store::read_api::{CacheEntryInfo, Edge, MemberPeriod, Stats};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// A page of a list: `next_cursor` is `null` on the last page.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    /// The rows of this page.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` when this is the last page.
    pub next_cursor: Option<String>,
}

/// A compact certificate description.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CertSummaryDto {
    /// SHA-1 of the DER (hex).
    pub sha1: String,
    /// SHA-256 of the DER (hex).
    pub sha256: String,
    /// Serial number (upper-case hex, normalised).
    pub serial: Option<String>,
    /// Subject commonName.
    pub subject_cn: Option<String>,
    /// Subject organizationName.
    pub subject_o: Option<String>,
    /// Issuer commonName.
    pub issuer_cn: Option<String>,
    /// Issuer organizationName.
    pub issuer_o: Option<String>,
    /// Start of validity.
    pub not_before: Option<DateTime<Utc>>,
    /// End of validity.
    pub not_after: Option<DateTime<Utc>>,
    /// CA certificate.
    pub is_ca: bool,
    /// Precertificate (RFC 6962 §3.1 poison extension).
    pub is_precert: bool,
    /// Why the DER did not parse, when it did not.
    pub parse_error: Option<String>,
}

impl From<&CertSummary> for CertSummaryDto {
    fn from(c: &CertSummary) -> Self {
        CertSummaryDto {
            sha1: hex::encode(c.sha1),
            sha256: hex::encode(c.sha256),
            serial: c.serial.as_ref().map(|s| s.to_hex()),
            subject_cn: c.subject_cn.clone(),
            subject_o: c.subject_o.clone(),
            issuer_cn: c.issuer_cn.clone(),
            issuer_o: c.issuer_o.clone(),
            not_before: c.not_before,
            not_after: c.not_after,
            is_ca: c.is_ca,
            is_precert: c.is_precert,
            parse_error: c.parse_error.clone(),
        }
    }
}

/// One row of an address's certificate history.
#[derive(Debug, Serialize, ToSchema)]
pub struct IpHistoryItem {
    /// The address.
    #[schema(value_type = String, example = "192.0.2.10")]
    pub ip: IpAddr,
    /// TCP port (0 = unknown).
    pub port: u16,
    /// Certificate SHA-1 (hex).
    pub sha1: String,
    /// First sighting.
    pub first_seen: DateTime<Utc>,
    /// Last sighting.
    pub last_seen: DateTime<Utc>,
    /// Number of sightings.
    pub times_seen: i64,
    /// Sources that reported it.
    pub sources: Vec<String>,
    /// The certificate, when its DER is stored.
    pub cert: Option<CertSummaryDto>,
}

impl From<&IpHistoryRow> for IpHistoryItem {
    fn from(r: &IpHistoryRow) -> Self {
        IpHistoryItem {
            ip: r.ip,
            port: r.port,
            sha1: hex::encode(r.sha1),
            first_seen: r.first_seen,
            last_seen: r.last_seen,
            times_seen: r.times_seen,
            sources: r.sources.clone(),
            cert: r.cert.as_ref().map(CertSummaryDto::from),
        }
    }
}

/// One address:port that served a certificate.
#[derive(Debug, Serialize, ToSchema)]
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
}

impl From<&HostRow> for HostItem {
    fn from(r: &HostRow) -> Self {
        HostItem {
            ip: r.ip,
            port: r.port,
            first_seen: r.first_seen,
            last_seen: r.last_seen,
            times_seen: r.times_seen,
            sources: r.sources.clone(),
        }
    }
}

/// One search hit.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchItem {
    /// The value that matched (a name, an issuer CN, a serial in hex, …).
    pub matched: String,
    /// The certificate.
    pub cert: CertSummaryDto,
}

impl From<&SearchHit> for SearchItem {
    fn from(h: &SearchHit) -> Self {
        SearchItem {
            matched: h.matched.clone(),
            cert: CertSummaryDto::from(&h.cert),
        }
    }
}

/// A distinguished name and its parts.
#[derive(Debug, Serialize, ToSchema)]
pub struct DnDto {
    /// The whole DN (RFC 4514 string).
    pub dn: Option<String>,
    /// commonName.
    pub cn: Option<String>,
    /// organizationName.
    pub o: Option<String>,
    /// organizationalUnitName.
    pub ou: Option<String>,
    /// countryName.
    pub c: Option<String>,
    /// localityName.
    pub l: Option<String>,
    /// stateOrProvinceName.
    pub st: Option<String>,
    /// emailAddress.
    pub email: Option<String>,
}

impl From<&certhist_model::DistinguishedName> for DnDto {
    fn from(d: &certhist_model::DistinguishedName) -> Self {
        DnDto {
            dn: d.dn.clone(),
            cn: d.cn.clone(),
            o: d.o.clone(),
            ou: d.ou.clone(),
            c: d.c.clone(),
            l: d.l.clone(),
            st: d.st.clone(),
            email: d.email.clone(),
        }
    }
}

/// One name of a certificate.
#[derive(Debug, Serialize, ToSchema)]
pub struct NameDto {
    /// Lower-cased name.
    pub name: String,
    /// cn | dns | ip | email | uri.
    pub kind: String,
    /// eTLD+1 of a DNS-like name.
    pub registered_domain: Option<String>,
}

/// How common a certificate is: the distinct addresses that served it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Commonness {
    /// Distinct IP addresses that served it.
    pub distinct_ips: i64,
    /// True when `distinct_ips` is above `shared_threshold` (CDN defaults, appliance certs).
    pub shared: bool,
    /// The server's threshold.
    pub shared_threshold: i64,
}

/// A CT log entry of the certificate or of its precertificate / final certificate.
#[derive(Debug, Serialize, ToSchema)]
pub struct CtEntryDto {
    /// Log URL.
    pub log_url: String,
    /// Entry index.
    pub entry_index: i64,
    /// Entry timestamp.
    pub entry_timestamp: DateTime<Utc>,
    /// x509 | precert.
    pub entry_type: String,
    /// SHA-1 (hex) of the logged DER: this certificate's, or a sibling's in `ct_siblings`.
    pub sha1: String,
}

impl From<&CtEntryInfo> for CtEntryDto {
    fn from(e: &CtEntryInfo) -> Self {
        CtEntryDto {
            log_url: e.log_url.clone(),
            entry_index: e.entry_index,
            entry_timestamp: e.entry_timestamp,
            entry_type: e.entry_type.clone(),
            sha1: hex::encode(e.sha1),
        }
    }
}

/// A cache artifact (CryptnetUrlCache, certutil) whose OCSP CertID names the certificate.
#[derive(Debug, Serialize, ToSchema)]
pub struct CacheEntryDto {
    /// Collection label.
    pub collection: String,
    /// URL fetched.
    pub url: String,
    /// ocsp | crl | cert | cab | other.
    pub kind: String,
    /// Download time.
    pub downloaded_at: Option<DateTime<Utc>>,
    /// HTTP Last-Modified.
    pub last_modified: Option<DateTime<Utc>>,
    /// OCSP certStatus.
    pub ocsp_status: Option<String>,
    /// OCSP thisUpdate.
    pub this_update: Option<DateTime<Utc>>,
    /// OCSP nextUpdate.
    pub next_update: Option<DateTime<Utc>>,
}

impl From<&CacheEntryInfo> for CacheEntryDto {
    fn from(e: &CacheEntryInfo) -> Self {
        CacheEntryDto {
            collection: e.collection.clone(),
            url: e.url.clone(),
            kind: e.kind.clone(),
            downloaded_at: e.downloaded_at,
            last_modified: e.last_modified,
            ocsp_status: e.ocsp_status.clone(),
            this_update: e.this_update,
            next_update: e.next_update,
        }
    }
}

/// The full certificate record.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateDoc {
    /// List fields.
    #[serde(flatten)]
    pub summary: CertSummaryDto,
    /// True when the DER INTEGER serial was negative.
    pub serial_negative: bool,
    /// Subject.
    pub subject: DnDto,
    /// Issuer.
    pub issuer: DnDto,
    /// SHA-256 of the SubjectPublicKeyInfo (hex).
    pub spki_sha256: Option<String>,
    /// SHA-1 of the public key bits: the OCSP issuerKeyHash of its children (RFC 6960 §4.1.1).
    pub key_sha1: Option<String>,
    /// Key algorithm.
    pub key_algorithm: Option<String>,
    /// Key size in bits.
    pub key_bits: Option<i32>,
    /// Signature algorithm.
    pub signature_algorithm: Option<String>,
    /// OCSP issuerNameHash (hex).
    pub issuer_name_hash: Option<String>,
    /// OCSP issuerKeyHash (hex), when the issuer is known.
    pub issuer_key_hash: Option<String>,
    /// authorityKeyIdentifier (hex).
    pub authority_key_id: Option<String>,
    /// subjectKeyIdentifier (hex).
    pub subject_key_id: Option<String>,
    /// SHA-256 of the TBS without CT extensions (links precertificate and final certificate).
    pub tbs_noct_sha256: Option<String>,
    /// When certhist stored it.
    pub added_at: DateTime<Utc>,
    /// Names (CN, SAN, email).
    pub names: Vec<NameDto>,
    /// Precertificate ↔ final certificate siblings.
    pub ct_siblings: Vec<CertSummaryDto>,
    /// CT log entries of this certificate and its siblings, oldest first.
    pub ct_entries: Vec<CtEntryDto>,
    /// Earliest CT timestamp of the certificate or a sibling.
    pub first_seen_in_ct: Option<DateTime<Utc>>,
    /// Cache artifacts naming this certificate's CertID.
    pub cache_entries: Vec<CacheEntryDto>,
    /// Distinct addresses that served it.
    pub commonness: Commonness,
}

fn hex_opt(v: &Option<Vec<u8>>) -> Option<String> {
    v.as_ref().map(hex::encode)
}

impl CertificateDoc {
    /// Builds the record from the store's detail and the cache entries.
    pub fn new(d: &CertDetail, cache: &[CacheEntryInfo], shared_threshold: i64) -> Self {
        CertificateDoc {
            summary: CertSummaryDto::from(&d.summary),
            serial_negative: d.serial_negative,
            subject: DnDto::from(&d.subject),
            issuer: DnDto::from(&d.issuer),
            spki_sha256: hex_opt(&d.spki_sha256),
            key_sha1: hex_opt(&d.key_sha1),
            key_algorithm: d.key_algorithm.clone(),
            key_bits: d.key_bits,
            signature_algorithm: d.signature_algorithm.clone(),
            issuer_name_hash: hex_opt(&d.issuer_name_hash),
            issuer_key_hash: hex_opt(&d.issuer_key_hash),
            authority_key_id: hex_opt(&d.authority_key_id),
            subject_key_id: hex_opt(&d.subject_key_id),
            tbs_noct_sha256: hex_opt(&d.tbs_noct_sha256),
            added_at: d.added_at,
            names: d
                .names
                .iter()
                .map(|n| NameDto {
                    name: n.name.clone(),
                    kind: n.kind.as_str().to_owned(),
                    registered_domain: n.registered_domain.clone(),
                })
                .collect(),
            ct_siblings: d.ct_siblings.iter().map(CertSummaryDto::from).collect(),
            ct_entries: d.ct_entries.iter().map(CtEntryDto::from).collect(),
            first_seen_in_ct: d.first_seen_in_ct,
            cache_entries: cache.iter().map(CacheEntryDto::from).collect(),
            commonness: Commonness {
                distinct_ips: d.distinct_ips,
                shared: d.distinct_ips > shared_threshold,
                shared_threshold,
            },
        }
    }
}

/// A period [start, end] (inclusive).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct Period {
    /// Start.
    pub start: DateTime<Utc>,
    /// End.
    pub end: DateTime<Utc>,
}

/// The intersection of members' periods, `None` when they do not all overlap.
pub fn intersection<'a>(periods: impl Iterator<Item = &'a MemberPeriod>) -> Option<Period> {
    let mut out: Option<Period> = None;
    for p in periods {
        out = Some(match out {
            None => Period {
                start: p.first_seen,
                end: p.last_seen,
            },
            Some(acc) => Period {
                start: acc.start.max(p.first_seen),
                end: acc.end.min(p.last_seen),
            },
        });
    }
    out.filter(|p| p.start <= p.end)
}

/// An address's period with a shared certificate.
#[derive(Debug, Serialize, ToSchema)]
pub struct IpPeriod {
    /// The address.
    #[schema(value_type = String)]
    pub ip: IpAddr,
    /// First sighting (all ports).
    pub first_seen: DateTime<Utc>,
    /// Last sighting (all ports).
    pub last_seen: DateTime<Utc>,
    /// Sightings (all ports).
    pub times_seen: i64,
}

/// A certificate shared by every requested address.
#[derive(Debug, Serialize, ToSchema)]
pub struct OverlapCertItem {
    /// Certificate SHA-1.
    pub sha1: String,
    /// The certificate, when stored.
    pub cert: Option<CertSummaryDto>,
    /// Each address's period, in address order.
    pub periods: Vec<IpPeriod>,
    /// When every address served it at the same time; `null` if never simultaneously.
    pub intersection: Option<Period>,
}

/// A certificate's period on a shared address.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertPeriod {
    /// Certificate SHA-1.
    pub sha1: String,
    /// First sighting (all ports).
    pub first_seen: DateTime<Utc>,
    /// Last sighting (all ports).
    pub last_seen: DateTime<Utc>,
    /// Sightings (all ports).
    pub times_seen: i64,
}

/// An address that served every requested certificate.
#[derive(Debug, Serialize, ToSchema)]
pub struct OverlapIpItem {
    /// The address.
    #[schema(value_type = String)]
    pub ip: IpAddr,
    /// Each certificate's period on it, in sha1 order.
    pub periods: Vec<CertPeriod>,
    /// When it served all of them; `null` if never all at once.
    pub intersection: Option<Period>,
}

/// A node of the expansion graph.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeDto {
    /// `ip` or `certificate`.
    pub kind: String,
    /// The address, or the certificate SHA-1 in hex.
    pub id: String,
    /// Hops from the seed (0 = seed).
    pub hop: u32,
    /// Whether its neighbours were fetched.
    pub expanded: bool,
    /// Certificates: distinct addresses (counted up to the threshold + 1).
    pub distinct_ips: Option<i64>,
    /// Certificates: served by more than the threshold of addresses.
    pub shared: Option<bool>,
}

/// An IP ↔ certificate edge.
#[derive(Debug, Serialize, ToSchema)]
pub struct EdgeDto {
    /// The address.
    #[schema(value_type = String)]
    pub ip: IpAddr,
    /// Certificate SHA-1.
    pub sha1: String,
    /// Ports (0 = unknown).
    pub ports: Vec<u16>,
    /// First sighting.
    pub first_seen: DateTime<Utc>,
    /// Last sighting.
    pub last_seen: DateTime<Utc>,
    /// Sightings.
    pub times_seen: i64,
}

impl From<&Edge> for EdgeDto {
    fn from(e: &Edge) -> Self {
        EdgeDto {
            ip: e.ip,
            sha1: hex::encode(e.sha1),
            ports: e.ports.clone(),
            first_seen: e.first_seen,
            last_seen: e.last_seen,
            times_seen: e.times_seen,
        }
    }
}

/// What the expansion left out.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Pruned {
    /// Shared certificates not expanded (sha1 hex).
    pub shared_certificates: Vec<String>,
    /// True when `max_nodes` (or the per-hop edge budget) stopped the expansion.
    pub node_limit_reached: bool,
    /// Nodes discovered at the last hop or cut by the limit, whose neighbours were not fetched.
    pub unexpanded_nodes: usize,
}

/// The bounded graph around a seed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExpandDoc {
    /// The seed as given.
    pub seed: String,
    /// Hops asked for.
    pub hops: u32,
    /// Node budget.
    pub max_nodes: usize,
    /// Certificates above this many addresses are shared.
    pub shared_threshold: i64,
    /// Whether shared certificates were expanded.
    pub include_shared: bool,
    /// Nodes, in discovery order.
    pub nodes: Vec<NodeDto>,
    /// Edges.
    pub edges: Vec<EdgeDto>,
    /// What was left out.
    pub pruned: Pruned,
}

/// Table sizes.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsDoc {
    /// True when figures are the planner's estimates (large tables).
    pub estimated: bool,
    /// Certificates.
    pub certificates: i64,
    /// Names.
    pub names: i64,
    /// Observations.
    pub observations: i64,
    /// Distinct addresses.
    pub distinct_ips: i64,
    /// CT entries.
    pub ct_entries: i64,
    /// Cache entries.
    pub cache_entries: i64,
}

impl From<&Stats> for StatsDoc {
    fn from(s: &Stats) -> Self {
        StatsDoc {
            estimated: s.estimated,
            certificates: s.certificates,
            names: s.names,
            observations: s.observations,
            distinct_ips: s.distinct_ips,
            ct_entries: s.ct_entries,
            cache_entries: s.cache_entries,
        }
    }
}

/// Health.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}
