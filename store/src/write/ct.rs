//! Certificate Transparency: logs (registration, cursors, verified tree heads) and the
//! provenance row of every entry.

use std::pin::pin;

use certhist_model::{Sha1, Sha256};
use chrono::{DateTime, Utc};
use postgres_types::{ToSql, Type};
use tokio_postgres::binary_copy::BinaryCopyInWriter;

use super::StoreTx;
use crate::StoreError;

/// Registers a log by URL, or returns the stored one (filling in what it lacked).
const REGISTER_CT_LOG: &str = include_str!("register_ct_log.sql");

/// One CT log entry's provenance row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CtEntryRow {
    /// `ct_logs.id`.
    pub log_id: i32,
    /// Index of the entry in the log.
    pub entry_index: i64,
    /// SHA-1 of the certificate or precertificate DER.
    pub sha1: Sha1,
    /// The SCT timestamp of the entry.
    pub entry_timestamp: DateTime<Utc>,
    /// `x509` or `precert`.
    pub entry_type: &'static str,
    /// RFC 6962 leaf hash, when computed.
    pub leaf_hash: Option<Sha256>,
}

/// A CT log's stored state (cursors and the latest verified tree head).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CtLogState {
    /// `ct_logs.id`.
    pub id: i32,
    /// Base URL as given.
    pub url: String,
    /// `rfc6962` or `static`.
    pub kind: String,
    /// SHA-256 of the log's public key.
    pub log_id: Option<Vec<u8>>,
    /// DER SubjectPublicKeyInfo.
    pub public_key: Option<Vec<u8>>,
    /// Checkpoint origin line (static CT).
    pub origin: Option<String>,
    /// Verified tree size.
    pub tree_size: Option<i64>,
    /// Verified root hash.
    pub root_hash: Option<Vec<u8>>,
    /// Entries [0, downloaded_position) are stored.
    pub downloaded_position: i64,
    /// Entries [0, verified_position) are verified against a tree head.
    pub verified_position: i64,
}

impl StoreTx<'_> {
    /// Registers a CT log (or returns the stored one) by URL.
    pub async fn ct_log_register(
        &mut self,
        url: &str,
        kind: &str,
        log_id: Option<&[u8]>,
        public_key: Option<&[u8]>,
        origin: Option<&str>,
    ) -> Result<CtLogState, StoreError> {
        let row = self
            .tx
            .query_one(
                REGISTER_CT_LOG,
                &[&url, &kind, &log_id, &public_key, &origin],
            )
            .await?;
        Ok(CtLogState {
            id: row.get(0),
            url: row.get(1),
            kind: row.get(2),
            log_id: row.get(3),
            public_key: row.get(4),
            origin: row.get(5),
            tree_size: row.get(6),
            root_hash: row.get(7),
            downloaded_position: row.get(8),
            verified_position: row.get(9),
        })
    }

    /// Stores CT provenance rows (idempotent on (log, index)).
    pub async fn write_ct_entries(&mut self, rows: &[CtEntryRow]) -> Result<u64, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let mut unique: Vec<&CtEntryRow> = rows.iter().collect();
        unique.sort_by_key(|r| (r.log_id, r.entry_index));
        unique.dedup_by_key(|r| (r.log_id, r.entry_index));
        // A range of one log with nothing stored yet (the usual case: entries past the
        // cursor) is COPYed straight into ct_entries; otherwise, or if a concurrent writer
        // stored some of it meanwhile, merged through the staging table.
        let (first, last) = (unique[0], unique[unique.len() - 1]);
        if first.log_id == last.log_id {
            let stored: i64 = self
                .tx
                .query_one(
                    "SELECT count(*) FROM ct_entries
                     WHERE log_id = $1 AND entry_index BETWEEN $2 AND $3",
                    &[&first.log_id, &first.entry_index, &last.entry_index],
                )
                .await?
                .get(0);
            if stored == 0 {
                self.tx.batch_execute("SAVEPOINT certhist_copy").await?;
                let copied = self.copy_ct_entry_rows(&unique, "ct_entries").await;
                if self.end_copy_savepoint(copied).await? {
                    return Ok(unique.len() as u64);
                }
            }
        }
        self.ensure_staging().await?;
        self.copy_ct_entry_rows(&unique, "stage_ct_entries").await?;
        let n = self
            .tx
            .execute(
                "INSERT INTO ct_entries SELECT * FROM stage_ct_entries ON CONFLICT DO NOTHING",
                &[],
            )
            .await?;
        self.tx.batch_execute("TRUNCATE stage_ct_entries").await?;
        Ok(n)
    }

    /// COPYs CT entry rows into `target` (`ct_entries` or its staging table).
    async fn copy_ct_entry_rows(
        &mut self,
        rows: &[&CtEntryRow],
        target: &str,
    ) -> Result<(), StoreError> {
        let types = [
            Type::INT4,
            Type::INT8,
            Type::BYTEA,
            Type::TIMESTAMPTZ,
            Type::TEXT,
            Type::BYTEA,
        ];
        let sink = self
            .tx
            .copy_in(&format!(
                "COPY {target} (log_id, entry_index, sha1, entry_timestamp, entry_type, leaf_hash) \
                 FROM STDIN (FORMAT binary)"
            ))
            .await?;
        let mut writer = pin!(BinaryCopyInWriter::new(sink, &types));
        for r in rows {
            let leaf = r.leaf_hash.as_ref().map(|h| &h[..]);
            let row: [&(dyn ToSql + Sync); 6] = [
                &r.log_id,
                &r.entry_index,
                &&r.sha1[..],
                &r.entry_timestamp,
                &r.entry_type,
                &leaf,
            ];
            writer.as_mut().write(&row).await?;
        }
        writer.finish().await?;
        Ok(())
    }

    /// Moves a log's cursors (in the same transaction as the entries they cover).
    pub async fn set_ct_positions(
        &mut self,
        log_id: i32,
        downloaded: i64,
        verified: i64,
    ) -> Result<(), StoreError> {
        self.tx
            .execute(
                "UPDATE ct_logs SET downloaded_position = $2, verified_position = $3, updated_at = now() WHERE id = $1",
                &[&log_id, &downloaded, &verified],
            )
            .await?;
        Ok(())
    }

    /// Records the latest verified tree head of a log.
    pub async fn set_ct_tree_head(
        &mut self,
        log_id: i32,
        tree_size: i64,
        root_hash: &[u8],
        timestamp: DateTime<Utc>,
        signature: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        self.tx
            .execute(
                "UPDATE ct_logs SET tree_size = $2, root_hash = $3, tree_head_timestamp = $4,
                        tree_head_signature = $5, updated_at = now() WHERE id = $1",
                &[&log_id, &tree_size, &root_hash, &timestamp, &signature],
            )
            .await?;
        Ok(())
    }
}
