//! Passive sightings from network sensors: [`StoreTx::write_passive_batch`] stores sightings by
//! SHA-1 in `observations`, sightings known only by SHA-256 as certificate stubs with their own
//! sightings (`certificate_stubs`, `observations_sha256`), and SNI names (`sni_names`); stubs are
//! joined to their certificate when its DER is stored ([`resolve_stubs`], run by every
//! certificate write). Also the cursors of followed logs (`followed_files`).

use std::collections::HashMap;
use std::net::IpAddr;

use certhist_model::{CertRef, CertStub, ClientContact, PassiveSighting, Sha1, Sha256};
use chrono::{DateTime, Utc};
use postgres_types::{ToSql, Type};

use super::StoreTx;
use crate::StoreError;

const MERGE_SNI_NAMES: &str = include_str!("merge_sni_names.sql");
const MERGE_OBSERVATIONS_SHA256: &str = include_str!("merge_observations_sha256.sql");
const UPSERT_STUBS: &str = include_str!("upsert_stubs.sql");
const RESOLVE_STUBS: &str = include_str!("resolve_stubs.sql");
const RESOLVE_STUB_KEYS: &str = include_str!("resolve_stub_keys.sql");
const MERGE_CLIENT_CONTACTS: &str = include_str!("merge_client_contacts.sql");

/// What [`StoreTx::write_passive_batch`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassiveWriteStats {
    /// Sightings with a certificate (by SHA-1, or by SHA-256 found or stubbed).
    pub sightings: u64,
    /// Observation keys (ip, port, sha1) written.
    pub observation_keys: u64,
    /// SHA-256-only sighting keys (ip, port, sha256) written to stubs' sightings.
    pub stub_keys: u64,
    /// Stubs written (new or updated).
    pub stubs: u64,
    /// SNI keys (ip, port, name) written.
    pub sni_keys: u64,
}

/// The cursor of a sensor log (followed, or imported whole): the file's identity and where
/// reading stopped. One per (kind, dev, inode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FollowCursor {
    /// Device of the file.
    pub dev: u64,
    /// Inode of the file.
    pub inode: u64,
    /// Bytes of the file consumed (always at the end of a line).
    pub offset: u64,
    /// Records read from this file so far.
    pub records: u64,
    /// Lines consumed (`None` for cursors written before schema V6).
    pub lines: Option<u64>,
    /// Bytes of the file's start covered by `head_sha256` (at most 4096 and `offset`).
    pub head_len: u32,
    /// SHA-256 of the file's first `head_len` bytes (`None` for cursors written before V6).
    pub head_sha256: Option<[u8; 32]>,
}

/// Per key: least first, greatest last, count.
type Span = (DateTime<Utc>, DateTime<Utc>, i64);

fn fold<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Span>, key: K, t: DateTime<Utc>) {
    map.entry(key)
        .and_modify(|s| {
            s.0 = s.0.min(t);
            s.1 = s.1.max(t);
            s.2 = s.2.saturating_add(1);
        })
        .or_insert((t, t, 1));
}

/// The keys of `map` in key order (the primary key's order: inet orders IPv4 before IPv6, then
/// by address, like `IpAddr`), so the merge's index inserts are local.
fn sorted<K: Ord>(map: HashMap<K, Span>) -> Vec<(K, Span)> {
    let mut keys: Vec<_> = map.into_iter().collect();
    keys.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    keys
}

/// A table of sightings keyed by (ip, port, key) and how a batch is merged into it: COPYed
/// into its staging table, then one `INSERT … SELECT … ON CONFLICT` from there.
struct SightingTable {
    /// The staging table (staging.sql).
    stage: &'static str,
    /// The type of the key column after (ip, port).
    key_type: Type,
    /// Statements run before `merge` (the certificate keys the sightings need).
    before: &'static [&'static str],
    /// The merge statement, from `stage` into the table.
    merge: &'static str,
}

const OBSERVATIONS: SightingTable = SightingTable {
    stage: "stage_observations",
    key_type: Type::BYTEA,
    before: &[super::observations::MERGE_OBSERVATION_KEYS],
    merge: super::observations::MERGE_OBSERVATIONS,
};

const OBSERVATIONS_SHA256: SightingTable = SightingTable {
    stage: "stage_observations_sha256",
    key_type: Type::BYTEA,
    before: &[],
    merge: MERGE_OBSERVATIONS_SHA256,
};

const SNI_NAMES: SightingTable = SightingTable {
    stage: "stage_sni_names",
    key_type: Type::TEXT,
    before: &[],
    merge: MERGE_SNI_NAMES,
};

/// Moves the sightings of stubs whose certificate (by SHA-256) is now stored into
/// `observations`, and drops those stubs. Returns the sightings moved.
pub(crate) async fn resolve_stubs(
    client: &impl tokio_postgres::GenericClient,
    sha256s: &[&[u8]],
) -> Result<u64, StoreError> {
    if sha256s.is_empty() {
        return Ok(0);
    }
    client
        .execute_typed(RESOLVE_STUB_KEYS, &[(&sha256s, Type::BYTEA_ARRAY)])
        .await?;
    let rows = client
        .query_typed(RESOLVE_STUBS, &[(&sha256s, Type::BYTEA_ARRAY)])
        .await?;
    Ok(rows
        .first()
        .map(|r| u64::try_from(r.get::<_, i64>(0)).unwrap_or(0))
        .unwrap_or(0))
}

impl StoreTx<'_> {
    /// Stores a batch of passive sightings labelled `source`, in this transaction:
    /// - a SHA-1 leaf → `observations` (merged as [`StoreTx::write_observations`] does);
    /// - a SHA-256 leaf whose certificate is stored → `observations` under its SHA-1;
    /// - another SHA-256 leaf → a certificate stub (the log's text) and `observations_sha256`;
    /// - an SNI name → `sni_names` for the server (ip, port), with or without a certificate.
    ///
    /// Chain certificates with DER are written by the caller with [`StoreTx::write_certs`]
    /// *before* this call, so a leaf given by SHA-256 whose DER is in the same batch is found.
    /// Like every sighting write it adds counts: callers keep a cursor so a batch is applied once.
    pub async fn write_passive_batch(
        &mut self,
        sightings: &[PassiveSighting],
        source: &str,
    ) -> Result<PassiveWriteStats, StoreError> {
        let mut stats = PassiveWriteStats::default();
        if sightings.is_empty() {
            return Ok(stats);
        }
        // SHA-256 leaves already stored as certificates.
        let mut wanted: Vec<&[u8]> = sightings
            .iter()
            .filter_map(|s| match &s.leaf {
                Some(CertRef::Sha256(h)) => Some(&h[..]),
                _ => None,
            })
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut known: HashMap<Sha256, Sha1> = HashMap::new();
        if !wanted.is_empty() {
            for r in self
                .tx
                .query_typed(
                    "SELECT sha256, sha1 FROM certificates WHERE sha256 = ANY($1)",
                    &[(&wanted, Type::BYTEA_ARRAY)],
                )
                .await?
            {
                let (a, b): (Vec<u8>, Vec<u8>) = (r.get(0), r.get(1));
                if let (Ok(a), Ok(b)) = (a.try_into(), b.try_into()) {
                    known.insert(a, b);
                }
            }
        }
        let mut by1: HashMap<(IpAddr, u16, Sha1), Span> = HashMap::with_capacity(sightings.len());
        let mut by256: HashMap<(IpAddr, u16, Sha256), Span> = HashMap::new();
        let mut stubs: HashMap<Sha256, &CertStub> = HashMap::new();
        let empty = CertStub::default();
        let mut sni: HashMap<(IpAddr, u16, &str), Span> = HashMap::with_capacity(sightings.len());
        for s in sightings {
            let sha1 = match &s.leaf {
                Some(CertRef::Sha1(h)) => Some(*h),
                Some(CertRef::Sha256(h)) => match known.get(h) {
                    Some(sha1) => Some(*sha1),
                    None => {
                        fold(&mut by256, (s.ip, s.port, *h), s.time);
                        let stub = s.stub.as_ref().unwrap_or(&empty);
                        let slot = stubs.entry(*h).or_insert(stub);
                        if slot.subject_dn.is_none() && stub.subject_dn.is_some() {
                            *slot = stub;
                        }
                        stats.sightings += 1;
                        None
                    }
                },
                None => None,
            };
            if let Some(sha1) = sha1 {
                stats.sightings += 1;
                fold(&mut by1, (s.ip, s.port, sha1), s.time);
            }
            if let Some(name) = s.sni.as_deref().filter(|n| !n.is_empty()) {
                fold(&mut sni, (s.ip, s.port, name), s.time);
            }
        }
        stats.observation_keys = self
            .merge_spans(
                &OBSERVATIONS,
                sorted(by1).iter().map(|(k, v)| ((k.0, k.1, &k.2[..]), *v)),
                source,
            )
            .await?;

        if !stubs.is_empty() {
            let mut list: Vec<(&Sha256, &&CertStub)> = stubs.iter().collect();
            list.sort_unstable_by_key(|e| e.0);
            let sha: Vec<&[u8]> = list.iter().map(|e| &e.0[..]).collect();
            let col = |f: fn(&CertStub) -> Option<&str>| -> Vec<Option<&str>> {
                list.iter().map(|e| f(e.1)).collect()
            };
            let subject = col(|s| s.subject_dn.as_deref());
            let cn = col(|s| s.subject_cn.as_deref());
            let issuer = col(|s| s.issuer_dn.as_deref());
            let serial = col(|s| s.serial_text.as_deref());
            let nb: Vec<Option<DateTime<Utc>>> = list.iter().map(|e| e.1.not_before).collect();
            let na: Vec<Option<DateTime<Utc>>> = list.iter().map(|e| e.1.not_after).collect();
            let san: Vec<Option<String>> = list
                .iter()
                .map(|e| (!e.1.san_dns.is_empty()).then(|| e.1.san_dns.join("\n")))
                .collect();
            stats.stubs = self
                .tx
                .execute_typed(
                    UPSERT_STUBS,
                    &[
                        (&sha, Type::BYTEA_ARRAY),
                        (&subject, Type::TEXT_ARRAY),
                        (&cn, Type::TEXT_ARRAY),
                        (&issuer, Type::TEXT_ARRAY),
                        (&serial, Type::TEXT_ARRAY),
                        (&nb, Type::TIMESTAMPTZ_ARRAY),
                        (&na, Type::TIMESTAMPTZ_ARRAY),
                        (&san, Type::TEXT_ARRAY),
                        (&source, Type::TEXT),
                    ],
                )
                .await?;
            stats.stub_keys = self
                .merge_spans(
                    &OBSERVATIONS_SHA256,
                    sorted(by256)
                        .iter()
                        .map(|(k, v)| ((k.0, k.1, &k.2[..]), *v)),
                    source,
                )
                .await?;
            // A certificate stored meanwhile by another writer joins its stub now.
            resolve_stubs(&*self.tx, &sha).await?;
        }

        stats.sni_keys = self
            .merge_spans(
                &SNI_NAMES,
                sorted(sni).iter().map(|(k, v)| (*k, *v)),
                source,
            )
            .await?;
        Ok(stats)
    }

    /// Merges combined sightings (one per key, in key order, all labelled `source`) into
    /// `table` through its staging table. Returns the keys written.
    async fn merge_spans<K: ToSql + Sync>(
        &mut self,
        table: &SightingTable,
        keys: impl ExactSizeIterator<Item = ((IpAddr, u16, K), Span)>,
        source: &str,
    ) -> Result<u64, StoreError> {
        if keys.len() == 0 {
            return Ok(0);
        }
        self.ensure_staging().await?;
        let sources = [source];
        let rows = keys.map(|(k, (first, last, n))| (k, first, last, n, &sources[..]));
        self.copy_sighting_rows(table.stage, table.key_type.clone(), rows)
            .await?;
        for statement in table.before {
            self.tx.execute(*statement, &[]).await?;
        }
        let written = self.tx.execute(table.merge, &[]).await?;
        self.tx
            .batch_execute(&format!("TRUNCATE {}", table.stage))
            .await?;
        Ok(written)
    }

    /// Stores client contacts (`import pcap --keep-clients`) labelled `source` in
    /// `client_contacts`, merged per (client, server, port, client certificate). Never touches
    /// `observations`: a client is not a server. Returns the keys written.
    pub async fn write_client_contacts(
        &mut self,
        contacts: &[ClientContact],
        source: &str,
    ) -> Result<u64, StoreError> {
        type Key = (IpAddr, IpAddr, u16, Vec<u8>);
        let mut merged: HashMap<Key, Span> = HashMap::new();
        for c in contacts {
            let cert = c.client_cert.map(|h| h.to_vec()).unwrap_or_default();
            fold(
                &mut merged,
                (c.client_ip, c.server_ip, c.server_port, cert),
                c.time,
            );
        }
        if merged.is_empty() {
            return Ok(0);
        }
        let mut keys: Vec<_> = merged.into_iter().collect();
        keys.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let clients: Vec<IpAddr> = keys.iter().map(|e| e.0 .0).collect();
        let servers: Vec<IpAddr> = keys.iter().map(|e| e.0 .1).collect();
        let ports: Vec<i32> = keys.iter().map(|e| i32::from(e.0 .2)).collect();
        let certs: Vec<&[u8]> = keys.iter().map(|e| &e.0 .3[..]).collect();
        let firsts: Vec<DateTime<Utc>> = keys.iter().map(|e| e.1 .0).collect();
        let lasts: Vec<DateTime<Utc>> = keys.iter().map(|e| e.1 .1).collect();
        let counts: Vec<i64> = keys.iter().map(|e| e.1 .2).collect();
        Ok(self
            .tx
            .execute_typed(
                MERGE_CLIENT_CONTACTS,
                &[
                    (&clients, Type::INET_ARRAY),
                    (&servers, Type::INET_ARRAY),
                    (&ports, Type::INT4_ARRAY),
                    (&certs, Type::BYTEA_ARRAY),
                    (&firsts, Type::TIMESTAMPTZ_ARRAY),
                    (&lasts, Type::TIMESTAMPTZ_ARRAY),
                    (&counts, Type::INT8_ARRAY),
                    (&source, Type::TEXT),
                ],
            )
            .await?)
    }

    /// The cursor of the sensor log of `kind` with identity (`dev`, `inode`), under whatever path
    /// it was read.
    pub async fn follow_cursor(
        &mut self,
        kind: &str,
        dev: u64,
        inode: u64,
    ) -> Result<Option<FollowCursor>, StoreError> {
        let (d, i) = (dev as i64, inode as i64);
        let row = self
            .tx
            .query_opt(
                "SELECT byte_offset, records, lines, head_len, head_sha256 FROM followed_files
                 WHERE kind = $1 AND dev = $2 AND inode = $3",
                &[&kind, &d, &i],
            )
            .await?;
        Ok(row.map(|r| FollowCursor {
            dev,
            inode,
            offset: u64::try_from(r.get::<_, i64>(0)).unwrap_or(0),
            records: u64::try_from(r.get::<_, i64>(1)).unwrap_or(0),
            lines: r
                .get::<_, Option<i64>>(2)
                .and_then(|l| u64::try_from(l).ok()),
            head_len: u32::try_from(r.get::<_, i32>(3)).unwrap_or(0),
            head_sha256: r
                .get::<_, Option<Vec<u8>>>(4)
                .and_then(|h| <[u8; 32]>::try_from(h).ok()),
        }))
    }

    /// Records where reading of a sensor log stopped (the file read at `path`); commit it with
    /// the batch read before it.
    pub async fn set_follow_cursor(
        &mut self,
        path: &str,
        kind: &str,
        cursor: &FollowCursor,
    ) -> Result<(), StoreError> {
        let (d, i) = (cursor.dev as i64, cursor.inode as i64);
        let off = i64::try_from(cursor.offset).unwrap_or(i64::MAX);
        let rec = i64::try_from(cursor.records).unwrap_or(i64::MAX);
        let lines = cursor.lines.map(|l| i64::try_from(l).unwrap_or(i64::MAX));
        let head_len = i32::try_from(cursor.head_len.min(4096)).unwrap_or(0);
        let head = cursor.head_sha256.map(|h| h.to_vec());
        self.tx
            .execute(
                "INSERT INTO followed_files
                     (path, kind, dev, inode, byte_offset, records, lines, head_len, head_sha256)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (kind, dev, inode) DO UPDATE
                 SET path = excluded.path, byte_offset = excluded.byte_offset,
                     records = excluded.records, lines = excluded.lines,
                     head_len = excluded.head_len, head_sha256 = excluded.head_sha256,
                     updated_at = now()",
                &[&path, &kind, &d, &i, &off, &rec, &lines, &head_len, &head],
            )
            .await?;
        Ok(())
    }
}
