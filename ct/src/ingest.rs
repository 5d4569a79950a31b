//! The ingest pipeline: fetch (tokio, concurrent, in order) → verify (every leaf hash recomputed,
//! each batch proven included in the signed tree head) → parse (rayon) → write one batch per
//! transaction with the log's cursors.
//!
//! Verification keeps a [`CompactRange`] of `[0, position)`. For a batch `[s, b)`, the inclusion
//! proof of leaf `b-1` in the signed tree of size N must verify against the signed root, and its
//! left siblings must equal the compact range of `[0, b-1)` computed from our own leaf hashes:
//! then every downloaded leaf in `[0, b)` is in the signed tree (RFC 9162 §2.1.3.2). When `b = N`
//! the root itself is compared. Nothing is written from a batch that fails; the log is refused.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use certhist_model::CertRecord;
use certhist_store::{CtEntryRow, Store};
use chrono::DateTime;
use futures_util::StreamExt as _;
use indicatif::{ProgressBar, ProgressStyle};

use crate::client::LogClient;
use crate::leaf::{Chain, LogEntry};
use crate::merkle::{self, CompactRange};
use crate::sth::TreeHead;
use crate::{CtError, Hash};

/// Options of one ingest run.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// First entry (default: the stored verified position).
    pub from: Option<u64>,
    /// End entry, exclusive (default: the tree size).
    pub to: Option<u64>,
    /// Keep polling the tree head.
    pub follow: bool,
    /// Polling interval with `follow`.
    pub poll_interval: Duration,
    /// Entries per request (RFC 6962; servers may return fewer).
    pub request_entries: u64,
    /// Entries per database transaction.
    pub batch_entries: u64,
    /// Requests in flight.
    pub concurrency: usize,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Stop after this many batches (tests: simulate an interruption).
    pub max_batches: Option<u64>,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            from: None,
            to: None,
            follow: false,
            poll_interval: Duration::from_secs(30),
            request_entries: 1000,
            batch_entries: 8192,
            concurrency: 4,
            progress: false,
            max_batches: None,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct IngestStats {
    /// `ct_logs.id`.
    pub log_id: i32,
    /// Log URL.
    pub url: String,
    /// New `ct_entries` rows.
    pub entries: u64,
    /// New certificates (entries and chains).
    pub certs_new: u64,
    /// Certificates stored with a parse error.
    pub certs_unparsable: u64,
    /// Verified tree size used.
    pub tree_size: u64,
    /// `ct_logs.verified_position` after the run.
    pub verified_position: u64,
}

fn inconsistent(url: &str, detail: String) -> CtError {
    CtError::Inconsistent {
        log: url.to_owned(),
        detail,
    }
}

/// Fetches `[start, end)` in order, with `concurrency` requests in flight, into a channel.
fn spawn_fetcher<C: LogClient + 'static>(
    client: Arc<C>,
    start: u64,
    end: u64,
    tree_size: u64,
    chunk: u64,
    concurrency: usize,
) -> tokio::sync::mpsc::Receiver<Result<Vec<LogEntry>, CtError>> {
    let (tx, rx) = tokio::sync::mpsc::channel(concurrency.max(1) * 2);
    tokio::spawn(async move {
        // Align chunks to multiples of `chunk` (tile boundaries for static logs).
        let mut ranges = Vec::new();
        let mut s = start;
        while s < end {
            let e = ((s / chunk + 1) * chunk).min(end);
            ranges.push((s, e));
            s = e;
        }
        let mut stream = futures_util::stream::iter(ranges)
            .map(|(s, e)| {
                let c = client.clone();
                async move {
                    // Servers cap batches: keep asking from where each reply ended.
                    let mut out = Vec::new();
                    let mut p = s;
                    while p < e {
                        let got = c.entries(p, e, tree_size).await?;
                        let n = got.len() as u64;
                        if n == 0 || got.first().map(|x| x.index) != Some(p) {
                            return Err(inconsistent(
                                c.url(),
                                format!("entries reply at {p} is empty or misplaced"),
                            ));
                        }
                        out.extend(got);
                        p += n;
                    }
                    out.truncate((e - s) as usize);
                    Ok(out)
                }
            })
            .buffered(concurrency.max(1));
        while let Some(r) = stream.next().await {
            let stop = r.is_err();
            if tx.send(r).await.is_err() || stop {
                break;
            }
        }
    });
    rx
}

/// Seeds the compact range of `[0, start)` from the inclusion proof of leaf `start-1`.
async fn seed<C: LogClient>(
    client: &C,
    start: u64,
    th: &TreeHead,
) -> Result<CompactRange, CtError> {
    if start == 0 {
        return Ok(CompactRange::new());
    }
    let prev = client.entries(start - 1, start, th.tree_size).await?;
    let Some(e) = prev.first().filter(|e| e.index == start - 1) else {
        return Err(inconsistent(
            client.url(),
            format!("cannot fetch entry {}", start - 1),
        ));
    };
    let proof = client
        .inclusion_proof(e.index, &e.leaf_hash, th.tree_size)
        .await?;
    let mut cr = merkle::verify_inclusion(e.index, th.tree_size, &e.leaf_hash, &proof, &th.root)
        .map_err(|err| {
            inconsistent(
                client.url(),
                format!("entry {} not in the signed tree: {err}", e.index),
            )
        })?;
    cr.push(e.leaf_hash);
    Ok(cr)
}

/// Checks that `batch` (following `cr`) is in the tree of `th`, extending `cr`.
async fn verify_batch<C: LogClient>(
    client: &C,
    cr: &mut CompactRange,
    batch: &[LogEntry],
    th: &TreeHead,
) -> Result<(), CtError> {
    let Some((last, init)) = batch.split_last() else {
        return Ok(());
    };
    let mut next = cr.clone();
    for e in init {
        next.push(e.leaf_hash);
    }
    if last.index + 1 == th.tree_size {
        next.push(last.leaf_hash);
        if next.root() != th.root {
            return Err(inconsistent(
                client.url(),
                format!(
                    "entries [0, {}) hash to {}, the signed tree head says {}",
                    th.tree_size,
                    hex::encode(next.root()),
                    hex::encode(th.root)
                ),
            ));
        }
    } else {
        let proof = client
            .inclusion_proof(last.index, &last.leaf_hash, th.tree_size)
            .await?;
        let lefts =
            merkle::verify_inclusion(last.index, th.tree_size, &last.leaf_hash, &proof, &th.root)
                .map_err(|e| {
                inconsistent(
                    client.url(),
                    format!(
                        "entry {} not in the signed tree of size {}: {e}",
                        last.index, th.tree_size
                    ),
                )
            })?;
        if lefts != next {
            return Err(inconsistent(
                client.url(),
                format!(
                    "entries before {} do not match the log's tree of size {}",
                    last.index, th.tree_size
                ),
            ));
        }
        next.push(last.leaf_hash);
    }
    *cr = next;
    Ok(())
}

fn progress_bar(enabled: bool, len: u64) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} entries {per_sec} eta {eta} {msg}")
    {
        pb.set_style(style);
    }
    pb
}

/// Ingests one log into `store`. Resumes from the stored verified position.
pub async fn ingest_log<C: LogClient + 'static>(
    client: Arc<C>,
    store: &Store,
    opts: &IngestOptions,
) -> Result<IngestStats, CtError> {
    let url = client.url().to_owned();
    let mut th = client.tree_head().await?;
    let key = client.key().map(|k| k.spki_der().to_vec());
    let log_id = client.key().map(|k| k.log_id());
    let state = {
        let mut conn = store.conn().await?;
        let mut tx = conn.begin().await?;
        let origin = client.origin();
        let s = tx
            .ct_log_register(
                &url,
                client.kind().as_str(),
                log_id.as_ref().map(|x| &x[..]),
                key.as_deref(),
                origin.as_deref(),
            )
            .await?;
        tx.commit().await?;
        s
    };
    // A tree head must be consistent with the one stored before.
    if let (Some(old_size), Some(old_root)) = (state.tree_size, state.root_hash.as_ref()) {
        let old_size = old_size as u64;
        if th.tree_size < old_size {
            return Err(inconsistent(
                &url,
                format!("tree shrank from {old_size} to {}", th.tree_size),
            ));
        }
        if let Ok(old_root) = <[u8; 32]>::try_from(&old_root[..]) {
            if let Some(proof) = client.consistency_proof(old_size, th.tree_size).await? {
                merkle::verify_consistency(old_size, th.tree_size, &old_root, &th.root, &proof)
                    .map_err(|e| {
                        inconsistent(
                            &url,
                            format!(
                                "tree heads {old_size} and {} inconsistent: {e}",
                                th.tree_size
                            ),
                        )
                    })?;
            } else if th.tree_size == old_size && th.root[..] != old_root[..] {
                return Err(inconsistent(
                    &url,
                    format!("two roots for tree size {old_size}"),
                ));
            }
        }
    }
    let verified = state.verified_position as u64;
    let start = opts.from.unwrap_or(verified);
    let contiguous = start <= verified;
    let mut stats = IngestStats {
        log_id: state.id,
        url: url.clone(),
        verified_position: verified,
        ..Default::default()
    };
    let mut pos = start;
    let mut written_issuers: HashSet<Hash> = HashSet::new();
    let pb = progress_bar(opts.progress, 0);
    let mut batches = 0u64;
    loop {
        let end = opts.to.map_or(th.tree_size, |t| t.min(th.tree_size));
        stats.tree_size = th.tree_size;
        pb.set_length(end.saturating_sub(start));
        if pos < end {
            let mut cr = seed(client.as_ref(), pos, &th).await?;
            let chunk = match client.kind() {
                crate::client::LogKind::Static => crate::tile::TILE_WIDTH,
                crate::client::LogKind::Rfc6962 => opts.request_entries.max(1),
            };
            let mut rx = spawn_fetcher(
                client.clone(),
                pos,
                end,
                th.tree_size,
                chunk,
                opts.concurrency,
            );
            let mut batch: Vec<LogEntry> = Vec::new();
            let mut done = false;
            while !done {
                match rx.recv().await {
                    Some(r) => batch.extend(r?),
                    None => done = true,
                }
                if batch.is_empty() || (!done && (batch.len() as u64) < opts.batch_entries) {
                    continue;
                }
                let b = std::mem::take(&mut batch);
                verify_batch(client.as_ref(), &mut cr, &b, &th).await?;
                let batch_end = b.last().map_or(pos, |e| e.index + 1);
                write_batch(
                    client.as_ref(),
                    store,
                    &state.id,
                    &b,
                    &th,
                    batch_end,
                    contiguous,
                    &mut written_issuers,
                    &mut stats,
                )
                .await?;
                pb.inc(b.len() as u64);
                pos = batch_end;
                batches += 1;
                if opts.max_batches.is_some_and(|m| batches >= m) {
                    pb.finish_and_clear();
                    return Ok(stats);
                }
            }
        }
        if !opts.follow || opts.to.is_some_and(|t| pos >= t) {
            break;
        }
        tokio::time::sleep(opts.poll_interval).await;
        let new = client.tree_head().await?;
        if new.tree_size > th.tree_size {
            if let Some(proof) = client
                .consistency_proof(th.tree_size, new.tree_size)
                .await?
            {
                merkle::verify_consistency(
                    th.tree_size,
                    new.tree_size,
                    &th.root,
                    &new.root,
                    &proof,
                )
                .map_err(|e| inconsistent(&url, format!("new tree head inconsistent: {e}")))?;
            }
            th = new;
        }
    }
    pb.finish_and_clear();
    Ok(stats)
}

/// Parses and writes one verified batch and moves the cursors, in one transaction.
#[expect(clippy::too_many_arguments, reason = "internal step of ingest_log")]
async fn write_batch<C: LogClient>(
    client: &C,
    store: &Store,
    log_id: &i32,
    batch: &[LogEntry],
    th: &TreeHead,
    batch_end: u64,
    contiguous: bool,
    written_issuers: &mut HashSet<Hash>,
    stats: &mut IngestStats,
) -> Result<(), CtError> {
    // Chain certificates first (deduplicated), then the entries' certificates.
    let mut ders: Vec<Vec<u8>> = Vec::new();
    let mut fresh = Vec::new();
    for e in batch {
        match &e.chain {
            Chain::Fingerprints(fps) => {
                for fp in fps {
                    if written_issuers.insert(*fp) {
                        fresh.push(*fp);
                    }
                }
            }
            Chain::Certs(certs) => {
                for c in certs {
                    let fp: Hash = sha2::Digest::finalize(sha2::Digest::chain_update(
                        <sha2::Sha256 as sha2::Digest>::new(),
                        c,
                    ))
                    .into();
                    if written_issuers.insert(fp) {
                        ders.push(c.clone());
                    }
                }
            }
        }
    }
    for fp in fresh {
        ders.push(client.issuer(&fp).await?.as_ref().clone());
    }
    let n_chain = ders.len();
    ders.extend(batch.iter().map(|e| e.cert_der.clone()));
    let records: Vec<CertRecord> =
        tokio::task::spawn_blocking(move || certhist_ingest::x509::parse_many(&ders))
            .await
            .map_err(|e| CtError::Usage(format!("parser task failed: {e}")))?;
    let mut rows = Vec::with_capacity(batch.len());
    for (e, rec) in batch.iter().zip(records.iter().skip(n_chain)) {
        let ts = i64::try_from(e.timestamp_ms)
            .ok()
            .and_then(DateTime::from_timestamp_millis)
            .ok_or_else(|| {
                inconsistent(
                    client.url(),
                    format!(
                        "entry {} has timestamp {} out of range",
                        e.index, e.timestamp_ms
                    ),
                )
            })?;
        rows.push(CtEntryRow {
            log_id: *log_id,
            entry_index: e.index as i64,
            sha1: rec.sha1,
            entry_timestamp: ts,
            entry_type: e.entry_type.as_str(),
            leaf_hash: Some(e.leaf_hash),
        });
    }
    let th_ts = i64::try_from(th.timestamp_ms)
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .unwrap_or_default();
    let mut conn = store.conn().await?;
    let mut tx = conn.begin().await?;
    let ws = tx.write_certs(&records).await?;
    stats.entries += tx.write_ct_entries(&rows).await?;
    if contiguous && batch_end > stats.verified_position {
        tx.set_ct_positions(*log_id, batch_end as i64, batch_end as i64)
            .await?;
        stats.verified_position = batch_end;
    }
    let sig = (!th.signature.is_empty()).then_some(&th.signature[..]);
    tx.set_ct_tree_head(*log_id, th.tree_size as i64, &th.root, th_ts, sig)
        .await?;
    tx.commit().await?;
    stats.certs_new += ws.new;
    stats.certs_unparsable += ws.unparsable;
    tracing::debug!(
        ct_log.url = client.url(),
        ct.batch_end = batch_end,
        ct.certs_new = ws.new,
        "batch committed"
    );
    Ok(())
}
