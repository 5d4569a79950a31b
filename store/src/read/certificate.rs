//! Certificates: the full record, names, the hosts that served one (reverse search), hash
//! resolution, and batched lookups for resolving many CertIDs at once.

use std::net::IpAddr;

use certhist_model::views::{
    CacheEntry, CacheEntryKind, CertStubRecord, CertSummary, CertificateRecord, Commonness,
    CtEntry, CtEntryType, HostItem, OcspStatus,
};
use certhist_model::{CertHash, CertName, DistinguishedName, NameKind, Sha1};
use chrono::{DateTime, Utc};
use postgres_types::Type;

use super::{check_limit, fixed, port_from, summary_from, TimeWindow};
use crate::{Conn, StoreError};

pub(crate) const CERTIFICATE: &str = include_str!("certificate.sql");
pub(crate) const CT_SIBLINGS: &str = include_str!("ct_siblings.sql");
const CT_ENTRIES: &str = include_str!("ct_entries.sql");
const CACHE_ENTRIES_OF: &str = include_str!("cache_entries_of.sql");
const CERT_HOSTS: &str = include_str!("cert_hosts.sql");
const HOSTS_BATCH: &str = include_str!("hosts_batch.sql");

/// Cache entries listed in a record at most.
const CACHE_ENTRIES_LIMIT: i64 = 1000;

/// [`certificate`] with the default shared threshold
/// ([`Commonness::DEFAULT_THRESHOLD`]).
pub async fn cert_by_hash(
    conn: &Conn,
    hash: &CertHash,
) -> Result<Option<CertificateRecord>, StoreError> {
    certificate(conn, hash, Commonness::DEFAULT_THRESHOLD).await
}

/// The full record of a certificate by SHA-1 or SHA-256: fields, names, CT entries of it and
/// its precertificate / final certificate, cache artifacts naming its CertID, and how many
/// distinct addresses served it (`shared` above `shared_threshold`). `None` when no
/// certificate with this hash is stored.
pub async fn certificate(
    conn: &Conn,
    hash: &CertHash,
    shared_threshold: i64,
) -> Result<Option<CertificateRecord>, StoreError> {
    let (column, value) = match hash {
        CertHash::Sha1(h) => ("sha1", h.to_vec()),
        CertHash::Sha256(h) => ("sha256", h.to_vec()),
    };
    let sql = CERTIFICATE.replace("{column}", column);
    let Some(r) = conn.client().query_opt(&sql, &[&value]).await? else {
        return Ok(None);
    };
    let summary = summary_from(&r, 0)?;
    let dn = |at: usize| DistinguishedName {
        dn: r.get(at),
        cn: r.get(at + 1),
        o: r.get(at + 2),
        ou: r.get(at + 3),
        c: r.get(at + 4),
        l: r.get(at + 5),
        st: r.get(at + 6),
        email: r.get(at + 7),
    };
    let names = cert_names(conn, &summary.sha1).await?;
    let tbs: Option<Vec<u8>> = r.get(39);
    let ct_siblings = match &tbs {
        Some(t) => conn
            .client()
            .query_typed(
                CT_SIBLINGS,
                &[(t, Type::BYTEA), (&summary.sha1.to_vec(), Type::BYTEA)],
            )
            .await?
            .iter()
            .map(|row| summary_from(row, 0))
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    let mut family: Vec<Vec<u8>> = vec![summary.sha1.to_vec()];
    family.extend(ct_siblings.iter().map(|c: &CertSummary| c.sha1.to_vec()));
    let ct_entries = conn
        .client()
        .query_typed(CT_ENTRIES, &[(&family, Type::BYTEA_ARRAY)])
        .await?
        .iter()
        .map(|e| {
            let entry_type: String = e.get(3);
            Ok(CtEntry {
                log_url: e.get(0),
                entry_index: e.get(1),
                entry_timestamp: e.get(2),
                entry_type: CtEntryType::from_db(&entry_type).ok_or_else(|| {
                    StoreError::Corrupt(format!("unknown CT entry type {entry_type:?}"))
                })?,
                sha1: fixed(e.get::<_, Vec<u8>>(4))?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let first_seen_in_ct = ct_entries.first().map(|e| e.entry_timestamp);
    let cache_entries = cache_entries_of(conn, &summary.sha1, CACHE_ENTRIES_LIMIT).await?;
    // Tags on the certificate or one of its names (with author and time), its notes, and the
    // siblings' own tags.
    let mut summary = summary;
    let mut ct_siblings = ct_siblings;
    let name_texts: Vec<String> = names.iter().map(|n| n.name.clone()).collect();
    let tag_details = super::tags::cert_tag_details(conn, &summary.sha1, &name_texts).await?;
    summary.tags = tag_details
        .iter()
        .map(|t| t.tag.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let notes = super::tags::notes_of(
        conn,
        &certhist_model::views::Target::Certificate(summary.sha1),
    )
    .await?;
    super::tags::fill_summaries(conn, ct_siblings.iter_mut()).await?;
    Ok(Some(CertificateRecord {
        tag_details,
        notes,
        ct_entries,
        first_seen_in_ct,
        der: r.get(12),
        serial_negative: r.get(13),
        subject: dn(14),
        issuer: dn(22),
        spki_sha256: r.get(30),
        key_sha1: r.get(31),
        key_algorithm: r.get(32),
        key_bits: r.get(33),
        signature_algorithm: r.get(34),
        issuer_name_hash: r.get(35),
        issuer_key_hash: r.get(36),
        authority_key_id: r.get(37),
        subject_key_id: r.get(38),
        tbs_noct_sha256: tbs,
        added_at: r.get(40),
        commonness: Commonness::new(r.get(41), shared_threshold),
        names,
        ct_siblings,
        cache_entries,
        summary,
    }))
}

/// Cache entries whose CertID (serial + issuer name hash) is this certificate's; at most `limit`.
async fn cache_entries_of(
    conn: &Conn,
    sha1: &Sha1,
    limit: i64,
) -> Result<Vec<CacheEntry>, StoreError> {
    let limit = check_limit(limit)?;
    let rows = conn
        .client()
        .query_typed(
            CACHE_ENTRIES_OF,
            &[(&sha1.to_vec(), Type::BYTEA), (&limit, Type::INT8)],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let kind: String = r.get(2);
            let status: Option<String> = r.get(5);
            Ok(CacheEntry {
                collection: r.get(0),
                url: r.get(1),
                kind: CacheEntryKind::from_db(&kind).ok_or_else(|| {
                    StoreError::Corrupt(format!("unknown cache entry kind {kind:?}"))
                })?,
                downloaded_at: r.get(3),
                last_modified: r.get(4),
                ocsp_status: status
                    .map(|s| {
                        OcspStatus::from_db(&s).ok_or_else(|| {
                            StoreError::Corrupt(format!("unknown OCSP status {s:?}"))
                        })
                    })
                    .transpose()?,
                this_update: r.get(6),
                next_update: r.get(7),
            })
        })
        .collect()
}

/// Names of a certificate, sorted by kind then name.
pub async fn cert_names(conn: &Conn, sha1: &Sha1) -> Result<Vec<CertName>, StoreError> {
    let rows = conn
        .client()
        .query_typed(
            "SELECT kind, name, registered_domain FROM certificate_name_kinds WHERE sha1 = $1 ORDER BY kind, name",
            &[(&sha1.to_vec(), Type::BYTEA)],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let kind: &str = r.get(0);
            Ok(CertName {
                kind: NameKind::from_db(kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown name kind {kind:?}")))?,
                name: r.get(1),
                registered_domain: r.get(2),
            })
        })
        .collect()
}

/// Reverse search: every ip:port that served the certificate, in (ip, port) order after `after`.
pub async fn cert_hosts(
    conn: &Conn,
    sha1: &Sha1,
    window: &TimeWindow,
    after: Option<(IpAddr, u16)>,
    limit: i64,
) -> Result<Vec<HostItem>, StoreError> {
    let limit = check_limit(limit)?;
    let (after_ip, after_port) = match after {
        Some((ip, port)) => (Some(ip), Some(i32::from(port))),
        None => (None, None),
    };
    let rows = crate::stage::timed(
        crate::stage::Stage::Query,
        conn.client().query_typed(
            CERT_HOSTS,
            &[
                (&sha1.to_vec(), Type::BYTEA),
                (&window.since, Type::TIMESTAMPTZ),
                (&window.until, Type::TIMESTAMPTZ),
                (&after_ip, Type::INET),
                (&after_port, Type::INT4),
                (&limit, Type::INT8),
            ],
        ),
    )
    .await?;
    host_items(conn, &rows).await
}

/// What is known about a certificate hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResolvedHash {
    /// The certificate's SHA-1 (the observation key).
    pub sha1: Sha1,
    /// True when the DER is stored.
    pub has_cert: bool,
}

/// Resolves a SHA-1 or SHA-256 to the SHA-1 key. A SHA-256 resolves only through a stored
/// certificate; a SHA-1 also resolves when only observations mention it (hash-only sources).
/// `None` when nothing is known.
pub async fn resolve_hash(
    conn: &Conn,
    hash: &CertHash,
) -> Result<Option<ResolvedHash>, StoreError> {
    match hash {
        CertHash::Sha256(h) => {
            let row = conn
                .client()
                .query_typed(
                    "SELECT sha1 FROM certificates WHERE sha256 = $1",
                    &[(&h.to_vec(), Type::BYTEA)],
                )
                .await?
                .into_iter()
                .next();
            row.map(|r| {
                Ok(ResolvedHash {
                    sha1: fixed(r.get::<_, Vec<u8>>(0))?,
                    has_cert: true,
                })
            })
            .transpose()
        }
        CertHash::Sha1(h) => {
            let r = conn
                .client()
                .query_typed(
                    "SELECT EXISTS (SELECT 1 FROM certificates WHERE sha1 = $1),
                            EXISTS (SELECT 1 FROM cert_keys k JOIN sightings o ON o.cert_id = k.id
                                    WHERE k.sha1 = $1)",
                    &[(&h.to_vec(), Type::BYTEA)],
                )
                .await?
                .into_iter()
                .next()
                .ok_or_else(|| StoreError::Corrupt("no row from EXISTS".to_owned()))?;
            let (has_cert, observed): (bool, bool) = (r.get(0), r.get(1));
            Ok((has_cert || observed).then_some(ResolvedHash { sha1: *h, has_cert }))
        }
    }
}

/// A stored certificate's DER.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCert {
    /// SHA-1 of the DER.
    pub sha1: Sha1,
    /// The DER.
    pub der: Vec<u8>,
}

/// DER of those of `sha1s` that are stored, in no particular order.
pub async fn certs_batch(conn: &Conn, sha1s: &[Sha1]) -> Result<Vec<StoredCert>, StoreError> {
    let keys: Vec<Vec<u8>> = sha1s.iter().map(|s| s.to_vec()).collect();
    let rows = conn
        .client()
        .query_typed(
            "SELECT sha1, der FROM certificates WHERE sha1 = ANY($1)",
            &[(&keys, Type::BYTEA_ARRAY)],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(StoredCert {
                sha1: fixed(r.get::<_, Vec<u8>>(0))?,
                der: r.get(1),
            })
        })
        .collect()
}

/// One name of one certificate, from [`names_batch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertNameRow {
    /// The certificate.
    pub sha1: Sha1,
    /// Where in the certificate the name is.
    pub kind: NameKind,
    /// The name (lower-cased).
    pub name: String,
}

/// Names of the given certificates, ordered by (sha1, kind, name).
pub async fn names_batch(conn: &Conn, sha1s: &[Sha1]) -> Result<Vec<CertNameRow>, StoreError> {
    let keys: Vec<Vec<u8>> = sha1s.iter().map(|s| s.to_vec()).collect();
    let rows = conn
        .client()
        .query_typed(
            "SELECT sha1, kind, name FROM certificate_name_kinds WHERE sha1 = ANY($1) ORDER BY sha1, kind, name",
            &[(&keys, Type::BYTEA_ARRAY)],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let kind: &str = r.get(1);
            Ok(CertNameRow {
                sha1: fixed(r.get::<_, Vec<u8>>(0))?,
                kind: NameKind::from_db(kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown name kind {kind:?}")))?,
                name: r.get(2),
            })
        })
        .collect()
}

/// One observation of a certificate, from [`hosts_batch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertHost {
    /// Certificate SHA-1.
    pub sha1: Sha1,
    /// Address that served it.
    pub ip: IpAddr,
    /// Port (0 = unknown).
    pub port: u16,
    /// First sighting.
    pub first_seen: DateTime<Utc>,
    /// Last sighting.
    pub last_seen: DateTime<Utc>,
    /// Number of sightings.
    pub times_seen: i64,
}

/// Observations of the given certificates, at most `per_cert` each (most recently seen first),
/// ordered by sha1.
pub async fn hosts_batch(
    conn: &Conn,
    sha1s: &[Sha1],
    per_cert: i64,
) -> Result<Vec<CertHost>, StoreError> {
    let keys: Vec<Vec<u8>> = sha1s.iter().map(|s| s.to_vec()).collect();
    let rows = conn
        .client()
        .query_typed(
            HOSTS_BATCH,
            &[(&keys, Type::BYTEA_ARRAY), (&per_cert, Type::INT8)],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(CertHost {
                sha1: fixed(r.get::<_, Vec<u8>>(0))?,
                ip: r.get(1),
                port: port_from(r.get(2)),
                first_seen: r.get(3),
                last_seen: r.get(4),
                times_seen: r.get(5),
            })
        })
        .collect()
}

pub(crate) const DETAILS_BATCH: &str = include_str!("details_batch.sql");

/// When and how often a certificate was seen, across every address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sightings {
    /// Earliest first sighting.
    pub first_seen: DateTime<Utc>,
    /// Latest last sighting.
    pub last_seen: DateTime<Utc>,
    /// Sum of the sightings.
    pub times_seen: i64,
}

/// The fields of a stored certificate that the compatibility APIs (CIRCL, PassiveTotal) answer
/// with, from [`details_batch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertDetails {
    /// The list fields.
    pub summary: CertSummary,
    /// True when the DER INTEGER serial was negative.
    pub serial_negative: bool,
    /// Subject.
    pub subject: DistinguishedName,
    /// Issuer.
    pub issuer: DistinguishedName,
    /// Key algorithm.
    pub key_algorithm: Option<String>,
    /// Key size in bits.
    pub key_bits: Option<i32>,
    /// Its sightings (when asked for); `None` when no address was seen serving it.
    pub sightings: Option<Sightings>,
}

/// Details of those of `sha1s` that are stored (one query), ordered by sha1; with their
/// sightings over every address when `with_sightings` (this reads every observation of each
/// certificate: costly for one served by millions of addresses).
pub async fn details_batch(
    conn: &Conn,
    sha1s: &[Sha1],
    with_sightings: bool,
) -> Result<Vec<CertDetails>, StoreError> {
    let keys: Vec<Vec<u8>> = sha1s.iter().map(|s| s.to_vec()).collect();
    let rows = conn
        .client()
        .query_typed(
            DETAILS_BATCH,
            &[(&keys, Type::BYTEA_ARRAY), (&with_sightings, Type::BOOL)],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let dn = |at: usize| DistinguishedName {
                dn: r.get(at),
                cn: r.get(at + 1),
                o: r.get(at + 2),
                ou: r.get(at + 3),
                c: r.get(at + 4),
                l: r.get(at + 5),
                st: r.get(at + 6),
                email: r.get(at + 7),
            };
            let first_seen: Option<DateTime<Utc>> = r.get(31);
            let last_seen: Option<DateTime<Utc>> = r.get(32);
            let sightings = match (first_seen, last_seen) {
                (Some(first_seen), Some(last_seen)) => Some(Sightings {
                    first_seen,
                    last_seen,
                    times_seen: r.get::<_, Option<i64>>(33).unwrap_or(0),
                }),
                _ => None,
            };
            Ok(CertDetails {
                summary: summary_from(r, 0)?,
                serial_negative: r.get(12),
                subject: dn(13),
                issuer: dn(21),
                key_algorithm: r.get(29),
                key_bits: r.get(30),
                sightings,
            })
        })
        .collect()
}

/// A certificate known only by SHA-256 (a stub from a sensor log), when no certificate with that
/// SHA-256 is stored. `None` otherwise.
pub async fn cert_stub(
    conn: &Conn,
    sha256: &certhist_model::Sha256,
) -> Result<Option<CertStubRecord>, StoreError> {
    let row = conn
        .client()
        .query_opt(
            "SELECT sha256, subject_dn, subject_cn, issuer_dn, serial_text, not_before, not_after,
                    san_dns, sources, added_at
             FROM certificate_stubs WHERE sha256 = $1",
            &[&sha256.to_vec()],
        )
        .await?;
    row.map(|r| {
        Ok(CertStubRecord {
            stub: true,
            sha256: fixed(r.get::<_, Vec<u8>>(0))?,
            subject_dn: r.get(1),
            subject_cn: r.get(2),
            issuer_dn: r.get(3),
            serial: r.get(4),
            not_before: r.get(5),
            not_after: r.get(6),
            san_dns: r.get(7),
            sources: r.get(8),
            added_at: r.get(9),
        })
    })
    .transpose()
}

/// Reverse search for a stub: every ip:port that served the certificate known only by
/// `sha256`, in (ip, port) order after `after`, as [`cert_hosts`] does for a SHA-1.
pub async fn stub_hosts(
    conn: &Conn,
    sha256: &certhist_model::Sha256,
    window: &TimeWindow,
    after: Option<(IpAddr, u16)>,
    limit: i64,
) -> Result<Vec<HostItem>, StoreError> {
    let limit = check_limit(limit)?;
    let (after_ip, after_port) = match after {
        Some((ip, port)) => (Some(ip), Some(i32::from(port))),
        None => (None, None),
    };
    let rows = conn
        .client()
        .query_typed(
            "SELECT ip, port, first_seen, last_seen, times_seen, sources
             FROM observations_sha256
             WHERE sha256 = $1
               AND ($2::timestamptz IS NULL OR last_seen >= $2)
               AND ($3::timestamptz IS NULL OR first_seen <= $3)
               AND ($4::inet IS NULL OR (ip, port) > ($4, $5))
             ORDER BY ip, port
             LIMIT $6",
            &[
                (&sha256.to_vec(), Type::BYTEA),
                (&window.since, Type::TIMESTAMPTZ),
                (&window.until, Type::TIMESTAMPTZ),
                (&after_ip, Type::INET),
                (&after_port, Type::INT4),
                (&limit, Type::INT8),
            ],
        )
        .await?;
    host_items(conn, &rows).await
}

/// Host list rows (ip, port, first seen, last seen, times seen, sources) as items, with the
/// tags of their addresses (one lookup for the page).
async fn host_items(
    conn: &Conn,
    rows: &[tokio_postgres::Row],
) -> Result<Vec<HostItem>, StoreError> {
    let mut hosts: Vec<HostItem> = crate::stage::timed_sync(crate::stage::Stage::Decode, || {
        rows.iter()
            .map(|r| HostItem {
                ip: r.get(0),
                port: port_from(r.get(1)),
                first_seen: r.get(2),
                last_seen: r.get(3),
                times_seen: r.get(4),
                sources: r.get(5),
                tags: Vec::new(),
            })
            .collect()
    });
    let ips: Vec<IpAddr> = hosts.iter().map(|h| h.ip).collect();
    let index = super::tags::tags_touching(conn, &ips, &[], &[]).await?;
    if !index.is_empty() {
        for h in &mut hosts {
            h.tags = index.ip(&h.ip);
        }
    }
    Ok(hosts)
}
