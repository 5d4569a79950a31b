//! IP sightings: rows of a batch combined per (ip, port, sha1), then merged (least first seen,
//! greatest last seen, summed count, united sources).

use std::net::IpAddr;
use std::pin::pin;

use certhist_model::{ObservationRow, Sha1};
use chrono::{DateTime, Utc};
use postgres_types::{ToSql, Type};
use tokio_postgres::binary_copy::BinaryCopyInWriter;

use super::StoreTx;
use crate::StoreError;

/// Staged sightings into `sightings` (schema V7).
pub(super) const MERGE_OBSERVATIONS: &str = include_str!("merge_observations.sql");
/// The `cert_keys` rows the staged sightings need, run before [`MERGE_OBSERVATIONS`].
pub(super) const MERGE_OBSERVATION_KEYS: &str = include_str!("merge_observation_keys.sql");

/// One (ip, port, sha1) key of a batch after combining its rows.
#[derive(Debug)]
struct Combined<'r> {
    first_seen: DateTime<Utc>,
    last_seen: DateTime<Utc>,
    times_seen: i64,
    sources: Vec<&'r str>,
}

/// Combines rows with the same key (least / greatest / sum / sorted union) and orders the keys
/// as the primary key does (inet orders IPv4 before IPv6, then by address, like `IpAddr`).
fn combine_observations(rows: &[ObservationRow]) -> Vec<((IpAddr, u16, Sha1), Combined<'_>)> {
    let mut map: std::collections::HashMap<(IpAddr, u16, Sha1), Combined<'_>> =
        std::collections::HashMap::with_capacity(rows.len());
    for r in rows {
        map.entry((r.ip, r.port, r.sha1))
            .and_modify(|m| {
                m.first_seen = m.first_seen.min(r.first_seen);
                m.last_seen = m.last_seen.max(r.last_seen);
                m.times_seen = m.times_seen.saturating_add(r.times_seen);
                if let Err(at) = m.sources.binary_search(&r.source.as_str()) {
                    m.sources.insert(at, &r.source);
                }
            })
            .or_insert_with(|| Combined {
                first_seen: r.first_seen,
                last_seen: r.last_seen,
                times_seen: r.times_seen,
                sources: vec![&r.source],
            });
    }
    let mut out: Vec<_> = map.into_iter().collect();
    out.sort_unstable_by_key(|e| e.0);
    out
}

impl StoreTx<'_> {
    /// Merges sightings: first_seen = least, last_seen = greatest, times_seen summed, sources
    /// united. Rows with the same (ip, port, sha1) within the batch are combined here first (ON
    /// CONFLICT may touch a row only once per statement), and the batch is sent in key order so
    /// the primary-key inserts are local. Returns the number of distinct keys written.
    pub async fn write_observations(&mut self, rows: &[ObservationRow]) -> Result<u64, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        self.ensure_staging().await?;
        let merged = combine_observations(rows);
        let keyed = merged.iter().map(|(k, m)| {
            (
                (k.0, k.1, &k.2[..]),
                m.first_seen,
                m.last_seen,
                m.times_seen,
                &m.sources[..],
            )
        });
        self.copy_sighting_rows("stage_observations", Type::BYTEA, keyed)
            .await?;
        self.tx.execute(MERGE_OBSERVATION_KEYS, &[]).await?;
        let written = self.tx.execute(MERGE_OBSERVATIONS, &[]).await?;
        self.tx.batch_execute("TRUNCATE stage_observations").await?;
        Ok(written)
    }

    /// Benchmark ceiling: COPY sightings into the staging table and insert them into
    /// `sightings` without merging (keys must be unique and new; the certificate keys are added
    /// as by every write). Only for `scripts/bench-import.sh`.
    pub async fn copy_observations_raw(
        &mut self,
        rows: &[ObservationRow],
    ) -> Result<(), StoreError> {
        let sources: Vec<[&str; 1]> = rows.iter().map(|r| [r.source.as_str()]).collect();
        let keyed = rows.iter().zip(&sources).map(|(r, s)| {
            (
                (r.ip, r.port, &r.sha1[..]),
                r.first_seen,
                r.last_seen,
                r.times_seen,
                &s[..],
            )
        });
        self.ensure_staging().await?;
        self.copy_sighting_rows("stage_observations", Type::BYTEA, keyed)
            .await?;
        self.tx.execute(MERGE_OBSERVATION_KEYS, &[]).await?;
        self.tx
            .batch_execute(
                "WITH sets AS MATERIALIZED (
                     SELECT d.sources, source_set_id(d.sources) AS id
                     FROM (SELECT DISTINCT sources FROM stage_observations) d
                 )
                 INSERT INTO sightings (cert_id, first_seen, last_seen, times_seen, port, sources, ip)
                 SELECT k.id, s2k(o.first_seen), s2k(o.last_seen),
                        least(o.times_seen, 2147483647)::integer, (o.port - 32768)::smallint,
                        sets.id, o.ip
                 FROM stage_observations o
                 JOIN cert_keys k ON k.sha1 = o.sha1
                 JOIN sets ON sets.sources = o.sources;
                 TRUNCATE stage_observations",
            )
            .await?;
        Ok(())
    }

    /// COPYs sighting rows ((ip, port, key), first, last, count, sources) into `target`, whose
    /// third column has type `key_type` (`bytea` for a SHA-1 or SHA-256, `text` for a name):
    /// the one COPY of every sighting table (`observations`, `observations_sha256`,
    /// `sni_names`) and their staging tables.
    pub(super) async fn copy_sighting_rows<'r, K: ToSql + Sync>(
        &mut self,
        target: &str,
        key_type: Type,
        rows: impl Iterator<
            Item = (
                (IpAddr, u16, K),
                DateTime<Utc>,
                DateTime<Utc>,
                i64,
                &'r [&'r str],
            ),
        >,
    ) -> Result<(), StoreError> {
        let types = [
            Type::INET,
            Type::INT4,
            key_type,
            Type::TIMESTAMPTZ,
            Type::TIMESTAMPTZ,
            Type::INT8,
            Type::TEXT_ARRAY,
        ];
        let sink = self
            .tx
            .copy_in(&format!("COPY {target} FROM STDIN (FORMAT binary)"))
            .await?;
        let mut writer = pin!(BinaryCopyInWriter::new(sink, &types));
        for ((ip, port, key), first_seen, last_seen, times_seen, sources) in rows {
            let port = i32::from(port);
            let row: [&(dyn ToSql + Sync); 7] = [
                &ip,
                &port,
                &key,
                &first_seen,
                &last_seen,
                &times_seen,
                &sources,
            ];
            writer.as_mut().write(&row).await?;
        }
        writer.finish().await?;
        Ok(())
    }
}
