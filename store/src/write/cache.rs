//! CryptnetUrlCache / certutil / URL-list entries, one row per OCSP CertID.

use certhist_model::Sha256;
use chrono::{DateTime, Utc};

use super::StoreTx;
use crate::StoreError;

/// Insert or update one cache entry by (collection, url, cert_index).
const UPSERT_CACHE_ENTRY: &str = include_str!("upsert_cache_entry.sql");

/// One CryptnetUrlCache / certutil / URL-list entry (one row per OCSP CertID).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheEntryRow {
    /// Host or case label.
    pub collection: String,
    /// Where the entry was read (MetaData file path, dump line).
    pub source_path: Option<String>,
    /// The URL fetched.
    pub url: String,
    /// Index of the CertID within a multi-request OCSP URL; 0 otherwise.
    pub cert_index: i32,
    /// `ocsp`, `crl`, `cert`, `cab` or `other`.
    pub kind: String,
    /// LastDownloadTime.
    pub downloaded_at: Option<DateTime<Utc>>,
    /// HTTP Last-Modified.
    pub last_modified: Option<DateTime<Utc>>,
    /// HTTP ETag as stored (quotes included).
    pub etag: Option<String>,
    /// Content size.
    pub size_bytes: Option<i64>,
    /// SHA-256 of the Content file.
    pub content_sha256: Option<Sha256>,
    /// What the Content holds (`ocsp_response`, `crl`, `certificate`, `cab`, `empty`, `other`, `missing`).
    pub content_kind: Option<String>,
    /// CertID hash algorithm (`sha1`, `sha256`).
    pub hash_algorithm: Option<String>,
    /// CertID issuerNameHash.
    pub issuer_name_hash: Option<Vec<u8>>,
    /// CertID issuerKeyHash.
    pub issuer_key_hash: Option<Vec<u8>>,
    /// CertID serial, normalised.
    pub serial: Option<Vec<u8>>,
    /// OCSP cert status for this serial in the cached response (`good`, `revoked`, `unknown`).
    pub ocsp_status: Option<String>,
    /// thisUpdate of the cached response or CRL.
    pub this_update: Option<DateTime<Utc>>,
    /// nextUpdate of the cached response or CRL.
    pub next_update: Option<DateTime<Utc>>,
}

impl StoreTx<'_> {
    /// Stores cache entries (idempotent on (collection, url, cert_index): a re-run updates them).
    pub async fn write_cache_entries(&mut self, rows: &[CacheEntryRow]) -> Result<u64, StoreError> {
        let mut n = 0;
        let stmt = self.tx.prepare(UPSERT_CACHE_ENTRY).await?;
        for r in rows {
            let content = r.content_sha256.as_ref().map(|h| &h[..]);
            n += self
                .tx
                .execute(
                    &stmt,
                    &[
                        &r.collection,
                        &r.source_path,
                        &r.url,
                        &r.cert_index,
                        &r.kind,
                        &r.downloaded_at,
                        &r.last_modified,
                        &r.etag,
                        &r.size_bytes,
                        &content,
                        &r.content_kind,
                        &r.hash_algorithm,
                        &r.issuer_name_hash,
                        &r.issuer_key_hash,
                        &r.serial,
                        &r.ocsp_status,
                        &r.this_update,
                        &r.next_update,
                    ],
                )
                .await?;
        }
        Ok(n)
    }
}
