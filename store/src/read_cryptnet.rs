//! Batched read queries for CryptnetUrlCache resolution (certhist-cryptnet): many OCSP CertIDs
//! at once, so resolving a 100k-entry cache takes a few round trips per chunk instead of several
//! per entry.

use std::net::IpAddr;

use chrono::{DateTime, Utc};

use crate::{Conn, StoreError};

/// A certificate whose serial matched one of the asked serials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SerialCandidate {
    /// SHA-1 of the DER.
    pub sha1: Vec<u8>,
    /// Normalised serial.
    pub serial: Vec<u8>,
    /// SHA-1 of the issuer Name DER (OCSP issuerNameHash).
    pub issuer_name_hash: Option<Vec<u8>>,
    /// SHA-1 of the issuer key (OCSP issuerKeyHash), when the issuer is known.
    pub issuer_key_hash: Option<Vec<u8>>,
    /// Subject DN.
    pub subject_dn: Option<String>,
    /// Issuer DN.
    pub issuer_dn: Option<String>,
    /// Validity start.
    pub not_before: Option<DateTime<Utc>>,
    /// Validity end.
    pub not_after: Option<DateTime<Utc>>,
}

/// Every certificate whose serial is one of `serials` (normalised big-endian magnitudes).
pub async fn certs_by_serials(
    conn: &Conn,
    serials: &[Vec<u8>],
) -> Result<Vec<SerialCandidate>, StoreError> {
    let rows = conn
        .client()
        .query(
            "SELECT sha1, serial, issuer_name_hash, issuer_key_hash, subject_dn, issuer_dn, not_before, not_after
             FROM certificates WHERE serial = ANY($1) ORDER BY serial, sha1",
            &[&serials],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| SerialCandidate {
            sha1: r.get(0),
            serial: r.get(1),
            issuer_name_hash: r.get(2),
            issuer_key_hash: r.get(3),
            subject_dn: r.get(4),
            issuer_dn: r.get(5),
            not_before: r.get(6),
            not_after: r.get(7),
        })
        .collect())
}

/// DER of the given certificates: `(sha1, der)`.
pub async fn cert_ders(
    conn: &Conn,
    sha1s: &[Vec<u8>],
) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
    let rows = conn
        .client()
        .query(
            "SELECT sha1, der FROM certificates WHERE sha1 = ANY($1)",
            &[&sha1s],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Names of the given certificates: `(sha1, kind, name)`, ordered.
pub async fn names_of(
    conn: &Conn,
    sha1s: &[Vec<u8>],
) -> Result<Vec<(Vec<u8>, String, String)>, StoreError> {
    let rows = conn
        .client()
        .query(
            "SELECT sha1, kind, name FROM certificate_name_kinds WHERE sha1 = ANY($1) ORDER BY sha1, kind, name",
            &[&sha1s],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// One observation of a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPeriod {
    /// Certificate SHA-1.
    pub sha1: Vec<u8>,
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

/// Observations of the given certificates, at most `per_cert` each (most recent first).
pub async fn hosts_of(
    conn: &Conn,
    sha1s: &[Vec<u8>],
    per_cert: i64,
) -> Result<Vec<HostPeriod>, StoreError> {
    let rows = conn
        .client()
        .query(
            "SELECT sha1, ip, port, first_seen, last_seen, times_seen FROM (
                 SELECT o.*, row_number() OVER (PARTITION BY sha1 ORDER BY last_seen DESC, ip, port) AS rn
                 FROM observations o WHERE sha1 = ANY($1)) t
             WHERE rn <= $2 ORDER BY sha1, last_seen DESC, ip, port",
            &[&sha1s, &per_cert],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| HostPeriod {
            sha1: r.get(0),
            ip: r.get(1),
            port: u16::try_from(r.get::<_, i32>(2)).unwrap_or(0),
            first_seen: r.get(3),
            last_seen: r.get(4),
            times_seen: r.get(5),
        })
        .collect())
}

/// CA certificates whose subject name hash is one of `hashes` (the issuers named by CertIDs):
/// `(subject_name_hash, sha1, subject_dn, key_sha1)`.
pub async fn issuers_by_name_hash(
    conn: &Conn,
    hashes: &[Vec<u8>],
) -> Result<Vec<(Vec<u8>, Vec<u8>, Option<String>, Option<Vec<u8>>)>, StoreError> {
    let rows = conn
        .client()
        .query(
            "SELECT subject_name_hash, sha1, subject_dn, key_sha1 FROM certificates
             WHERE is_ca AND subject_name_hash = ANY($1) ORDER BY subject_name_hash, sha1",
            &[&hashes],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect())
}
