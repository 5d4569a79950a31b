//! Serial numbers and OCSP CertIDs (RFC 6960 §4.1.1: hash algorithm, issuer name hash, issuer
//! key hash, serial): certificates by serial in any notation, and the batched lookups that
//! resolve many CertIDs of a CryptnetUrlCache at once (a few round trips per chunk instead of
//! several per entry).

use certhist_model::views::CertSummary;
use certhist_model::{Serial, Sha1};
use chrono::{DateTime, Utc};

use super::{check_limit, fixed, summary_from};
use crate::{Conn, StoreError};

pub(crate) const CERTS_BY_SERIAL: &str = include_str!("certs_by_serial.sql");

/// Certificates with one of these serials, optionally narrowed to an exact OCSP CertID
/// (issuer name hash and/or issuer key hash). Ordered by sha1 after `after`; at most `limit`.
pub async fn certs_by_serial(
    conn: &Conn,
    serials: &[Serial],
    issuer_name_hash: Option<&[u8]>,
    issuer_key_hash: Option<&[u8]>,
    after: Option<&Sha1>,
    limit: i64,
) -> Result<Vec<CertSummary>, StoreError> {
    let limit = check_limit(limit)?;
    let values: Vec<Vec<u8>> = serials.iter().map(|s| s.as_bytes().to_vec()).collect();
    let after = after.map(|a| a.to_vec());
    let rows = conn
        .client()
        .query(
            CERTS_BY_SERIAL,
            &[&values, &issuer_name_hash, &issuer_key_hash, &after, &limit],
        )
        .await?;
    let mut certs = rows
        .iter()
        .map(|r| summary_from(r, 0))
        .collect::<Result<Vec<_>, _>>()?;
    super::tags::fill_summaries(conn, certs.iter_mut()).await?;
    Ok(certs)
}

/// A certificate whose serial matched one of the asked serials ([`certs_by_serials`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SerialCandidate {
    /// SHA-1 of the DER.
    pub sha1: Sha1,
    /// Normalised serial.
    pub serial: Serial,
    /// SHA-1 of the issuer Name DER (OCSP issuerNameHash).
    pub issuer_name_hash: Option<Sha1>,
    /// SHA-1 of the issuer key (OCSP issuerKeyHash), when the issuer is known.
    pub issuer_key_hash: Option<Sha1>,
    /// Subject DN.
    pub subject_dn: Option<String>,
    /// Issuer DN.
    pub issuer_dn: Option<String>,
    /// Validity start.
    pub not_before: Option<DateTime<Utc>>,
    /// Validity end.
    pub not_after: Option<DateTime<Utc>>,
}

/// Every certificate whose serial is one of `serials`, ordered by (serial, sha1).
pub async fn certs_by_serials(
    conn: &Conn,
    serials: &[Serial],
) -> Result<Vec<SerialCandidate>, StoreError> {
    let values: Vec<Vec<u8>> = serials.iter().map(|s| s.as_bytes().to_vec()).collect();
    let rows = conn
        .client()
        .query(
            "SELECT sha1, serial, issuer_name_hash, issuer_key_hash, subject_dn, issuer_dn, not_before, not_after
             FROM certificates WHERE serial = ANY($1) ORDER BY serial, sha1",
            &[&values],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(SerialCandidate {
                sha1: fixed(r.get::<_, Vec<u8>>(0))?,
                serial: Serial::from_be_bytes(&r.get::<_, Vec<u8>>(1)),
                issuer_name_hash: r.get::<_, Option<Vec<u8>>>(2).map(fixed).transpose()?,
                issuer_key_hash: r.get::<_, Option<Vec<u8>>>(3).map(fixed).transpose()?,
                subject_dn: r.get(4),
                issuer_dn: r.get(5),
                not_before: r.get(6),
                not_after: r.get(7),
            })
        })
        .collect()
}

/// A CA certificate that may have issued certificates of a CertID ([`issuers_by_name_hash`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issuer {
    /// SHA-1 of its subject Name DER (the children's issuerNameHash).
    pub subject_name_hash: Sha1,
    /// SHA-1 of its DER.
    pub sha1: Sha1,
    /// Its subject DN.
    pub subject_dn: Option<String>,
    /// SHA-1 of its public key bits (the children's issuerKeyHash).
    pub key_sha1: Option<Sha1>,
}

/// CA certificates whose subject name hash is one of `hashes` (the issuers named by CertIDs),
/// ordered by (subject name hash, sha1).
pub async fn issuers_by_name_hash(conn: &Conn, hashes: &[Sha1]) -> Result<Vec<Issuer>, StoreError> {
    let values: Vec<Vec<u8>> = hashes.iter().map(|h| h.to_vec()).collect();
    let rows = conn
        .client()
        .query(
            "SELECT subject_name_hash, sha1, subject_dn, key_sha1 FROM certificates
             WHERE is_ca AND subject_name_hash = ANY($1) ORDER BY subject_name_hash, sha1",
            &[&values],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Issuer {
                subject_name_hash: fixed(r.get::<_, Vec<u8>>(0))?,
                sha1: fixed(r.get::<_, Vec<u8>>(1))?,
                subject_dn: r.get(2),
                key_sha1: r.get::<_, Option<Vec<u8>>>(3).map(fixed).transpose()?,
            })
        })
        .collect()
}
