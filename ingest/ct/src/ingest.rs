//! The ingest pipeline, three stages joined by bounded channels so that only the database write is
//! serial:
//! 1. fetch (tokio task, `concurrency` requests in flight, results in log order);
//! 2. prepare (tokio task): assemble batches, verify them (every leaf hash recomputed, each batch
//!    proven included in the signed tree head, each precert entry's stored precertificate and
//!    issuer checked against its leaf: [`crate::precert`]), fetch new issuers, parse (rayon),
//!    build rows;
//! 3. write: per batch, the certificates over `writers` connections (each part committed on
//!    its own), then the entries and the log's cursors in one transaction, in log order. Two
//!    batches are written at once: batch k+1's certificates while batch k's entries commit.
//!
//! While batches are being written, the next is being verified and parsed and later tiles
//! fetched.
//!
//! Verification keeps a [`CompactRange`] of `[0, position)`. For a batch `[s, b)`, the inclusion
//! proof of leaf `b-1` in the signed tree of size N must verify against the signed root, and its
//! left siblings must equal the compact range of `[0, b-1)` computed from our own leaf hashes:
//! then every downloaded leaf in `[0, b)` is in the signed tree (RFC 9162 §2.1.3.2). When `b = N`
//! the root itself is compared. Nothing is written from a batch that fails; the log is refused.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use certhist_model::CertRecord;
use certhist_store::{CtEntryRow, Store};
use chrono::DateTime;
use futures_util::StreamExt as _;
use tokio::sync::{mpsc, oneshot, watch};

use crate::client::LogClient;
use crate::leaf::{Chain, LogEntry};
use crate::merkle::{self, CompactRange};
use crate::precert::{check_precert, IssuerInfo};
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
    /// Database connections writing each batch's certificates (split by sha1).
    pub writers: usize,
    /// Receives [`Progress`] events (`None`: none are made).
    pub progress: Option<ProgressFn>,
    /// Stop after this many batches (tests: simulate an interruption).
    pub max_batches: Option<u64>,
    /// Graceful stop: when the value becomes `true`, the run returns after the batch being
    /// written is committed (or at once while waiting between `follow` polls).
    pub stop: Option<watch::Receiver<bool>>,
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
            writers: 2,
            progress: None,
            max_batches: None,
            stop: None,
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

/// What an ingest run reports while it works, through [`IngestOptions::progress`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// Entries `[start, end)` of the log at `url` are this run's work: sent before the first
    /// batch, and again with a larger `end` when `follow` sees the tree grow.
    Range {
        /// The log.
        url: String,
        /// The first entry of the run.
        start: u64,
        /// One past the last entry to ingest.
        end: u64,
    },
    /// A batch of `entries` entries (new or already stored) was committed, ending at `position`.
    Committed {
        /// The log.
        url: String,
        /// Entries in the batch.
        entries: u64,
        /// One past the batch's last entry.
        position: u64,
    },
}

/// A receiver of [`Progress`] events. It is called on the ingest's own task, between batches:
/// it must return quickly (update a progress bar, send on a channel).
#[derive(Clone)]
pub struct ProgressFn(Arc<dyn Fn(&Progress) + Send + Sync>);

impl ProgressFn {
    /// Wraps `f`.
    pub fn new(f: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        ProgressFn(Arc::new(f))
    }

    fn send(&self, event: &Progress) {
        (self.0)(event);
    }
}

impl fmt::Debug for ProgressFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProgressFn")
    }
}

fn inconsistent(url: &str, detail: String) -> CtError {
    CtError::Inconsistent {
        log: url.to_owned(),
        detail,
    }
}

/// Fetches `[start, end)` in order, with `concurrency` requests in flight, into a channel of
/// `buffer_chunks` chunks (so fetching runs ahead while earlier batches are prepared and written).
fn spawn_fetcher<C: LogClient + 'static>(
    client: Arc<C>,
    start: u64,
    end: u64,
    tree_size: u64,
    chunk: u64,
    concurrency: usize,
    buffer_chunks: usize,
) -> mpsc::Receiver<Result<Vec<LogEntry>, CtError>> {
    let (tx, rx) = mpsc::channel(buffer_chunks.max(1));
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

/// Has the caller asked to stop?
fn stop_requested(stop: Option<&watch::Receiver<bool>>) -> bool {
    stop.is_some_and(|s| *s.borrow())
}

/// Sleeps `d`, or less if a stop is requested meanwhile. Returns whether to stop.
async fn sleep_or_stop(d: Duration, stop: Option<&watch::Receiver<bool>>) -> bool {
    let Some(stop) = stop else {
        tokio::time::sleep(d).await;
        return false;
    };
    let mut stop = stop.clone();
    let stopped = tokio::select! {
        () = tokio::time::sleep(d) => return false,
        r = stop.wait_for(|v| *v) => r.is_ok(),
    };
    if !stopped {
        // The sender is gone: nobody can ask to stop any more.
        tokio::time::sleep(d).await;
    }
    stopped
}

/// A verified and parsed batch, ready for one transaction.
struct Prepared {
    /// Chain certificates first, then one record per entry.
    records: Vec<CertRecord>,
    rows: Vec<CtEntryRow>,
    /// One past the last entry.
    batch_end: u64,
    /// Time spent waiting for fetched entries.
    fetch_wait: Duration,
    /// Time spent verifying (inclusion proof) and fetching issuers.
    verify: Duration,
    /// Time spent parsing and building rows.
    parse: Duration,
}

/// What the prepare stage hands back when its range is done: the compact range of `[0, end)`
/// from our own leaf hashes (reused by the next `follow` pass) and the issuers already sent.
type PrepareState = (CompactRange, HashSet<Hash>);

/// Stage 2: batches from the fetched chunks, verified and parsed, into a channel of one batch.
#[expect(clippy::too_many_arguments, reason = "internal stage of ingest_log")]
async fn prepare_stage<C: LogClient + 'static>(
    client: Arc<C>,
    mut fetched: mpsc::Receiver<Result<Vec<LogEntry>, CtError>>,
    mut cr: CompactRange,
    th: TreeHead,
    log_id: i32,
    batch_entries: u64,
    mut issuers: HashSet<Hash>,
    out: mpsc::Sender<Result<Prepared, CtError>>,
) -> PrepareState {
    let mut batch: Vec<LogEntry> = Vec::new();
    let mut infos: HashMap<Hash, IssuerInfo> = HashMap::new();
    let mut done = false;
    let mut fetch_wait = Duration::ZERO;
    while !done {
        let t = Instant::now();
        let got = fetched.recv().await;
        fetch_wait += t.elapsed();
        match got {
            Some(Ok(v)) => batch.extend(v),
            Some(Err(e)) => {
                let _ = out.send(Err(e)).await;
                break;
            }
            None => done = true,
        }
        if batch.is_empty() || (!done && (batch.len() as u64) < batch_entries) {
            continue;
        }
        let b = std::mem::take(&mut batch);
        let r = prepare(
            client.as_ref(),
            &mut cr,
            b,
            &th,
            log_id,
            &mut issuers,
            &mut infos,
        )
        .await
        .map(|mut p| {
            p.fetch_wait = std::mem::take(&mut fetch_wait);
            p
        });
        let failed = r.is_err();
        if out.send(r).await.is_err() || failed {
            break;
        }
    }
    (cr, issuers)
}

/// Verifies one batch (extending `cr`), fetches issuers not sent before, parses certificates and
/// builds the `ct_entries` rows.
async fn prepare<C: LogClient>(
    client: &C,
    cr: &mut CompactRange,
    batch: Vec<LogEntry>,
    th: &TreeHead,
    log_id: i32,
    issuers: &mut HashSet<Hash>,
    infos: &mut HashMap<Hash, IssuerInfo>,
) -> Result<Prepared, CtError> {
    let t = Instant::now();
    let mut batch = batch;
    verify_batch(client, cr, &batch, th).await?;
    let checks = precert_checks(client, &mut batch, infos).await?;
    let batch_end = batch.last().map_or(0, |e| e.index + 1);
    // Chain certificates first (deduplicated), then the entries' certificates.
    let mut ders: Vec<Vec<u8>> = Vec::new();
    let mut fresh = Vec::new();
    for e in &batch {
        match &e.chain {
            Chain::Fingerprints(fps) => {
                for fp in fps {
                    if issuers.insert(*fp) {
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
                    if issuers.insert(fp) {
                        ders.push(c.clone());
                    }
                }
            }
        }
    }
    for fp in fresh {
        ders.push(client.issuer(&fp).await?.as_ref().clone());
    }
    let verify = t.elapsed();
    let t = Instant::now();
    let n_chain = ders.len();
    let meta: Vec<(u64, u64, &'static str, Hash)> = batch
        .iter()
        .map(|e| (e.index, e.timestamp_ms, e.entry_type.as_str(), e.leaf_hash))
        .collect();
    ders.extend(batch.into_iter().map(|e| e.cert_der));
    let records: Vec<CertRecord> =
        tokio::task::spawn_blocking(move || certhist_x509::parse_many(&ders))
            .await
            .map_err(|e| CtError::Usage(format!("parser task failed: {e}")))?;
    for c in &checks {
        let rec = records.get(n_chain + c.position);
        let der = rec.map(|r| &r.der[..]).unwrap_or_default();
        let noct = rec.and_then(|r| r.tbs_noct_sha256);
        check_precert(&c.leaf_tbs, &c.issuer_key_hash, der, noct, &c.chain)
            .map_err(|d| inconsistent(client.url(), format!("precert entry {}: {d}", c.index)))?;
    }
    let mut rows = Vec::with_capacity(meta.len());
    for ((index, timestamp_ms, entry_type, leaf_hash), rec) in
        meta.into_iter().zip(records.iter().skip(n_chain))
    {
        let ts = i64::try_from(timestamp_ms)
            .ok()
            .and_then(DateTime::from_timestamp_millis)
            .ok_or_else(|| {
                inconsistent(
                    client.url(),
                    format!("entry {index} has timestamp {timestamp_ms} out of range"),
                )
            })?;
        rows.push(CtEntryRow {
            log_id,
            entry_index: index as i64,
            sha1: rec.sha1,
            entry_timestamp: ts,
            entry_type,
            leaf_hash: Some(leaf_hash),
        });
    }
    Ok(Prepared {
        records,
        rows,
        batch_end,
        fetch_wait: Duration::ZERO,
        verify,
        parse: t.elapsed(),
    })
}

/// What one precert entry's leaf says, to be checked against its stored precertificate.
struct PrecertCheck {
    /// Position in the batch.
    position: usize,
    /// Log index.
    index: u64,
    /// `PreCert.tbs_certificate`.
    leaf_tbs: Vec<u8>,
    /// `PreCert.issuer_key_hash`.
    issuer_key_hash: Hash,
    /// `chain[0]`, and `chain[1]` when `chain[0]` is a Precertificate Signing Certificate.
    chain: Vec<IssuerInfo>,
}

/// Collects the [`PrecertCheck`] of every precert entry of `batch` (taking its leaf TBS),
/// reading the chain certificates it needs (inline, or `issuer/` from the client's cache).
async fn precert_checks<C: LogClient>(
    client: &C,
    batch: &mut [LogEntry],
    infos: &mut HashMap<Hash, IssuerInfo>,
) -> Result<Vec<PrecertCheck>, CtError> {
    let mut out = Vec::new();
    for (position, e) in batch.iter_mut().enumerate() {
        let Some(leaf_tbs) = e.precert_tbs.take() else {
            continue;
        };
        let Some(issuer_key_hash) = e.issuer_key_hash else {
            return Err(inconsistent(
                client.url(),
                format!("precert entry {} has no issuer_key_hash", e.index),
            ));
        };
        let mut chain = Vec::with_capacity(2);
        for i in 0..2 {
            let (fp, der) = match &e.chain {
                Chain::Certs(certs) => match certs.get(i) {
                    Some(d) => (
                        sha2::Digest::finalize(sha2::Digest::chain_update(
                            <sha2::Sha256 as sha2::Digest>::new(),
                            d,
                        ))
                        .into(),
                        Some(d),
                    ),
                    None => break,
                },
                Chain::Fingerprints(fps) => match fps.get(i) {
                    Some(fp) => (*fp, None),
                    None => break,
                },
            };
            let info = match infos.get(&fp) {
                Some(info) => *info,
                None => {
                    let fetched;
                    let der = match der {
                        Some(d) => &d[..],
                        None => {
                            fetched = client.issuer(&fp).await?;
                            &fetched[..]
                        }
                    };
                    let info = IssuerInfo::from_der(der).ok_or_else(|| {
                        inconsistent(
                            client.url(),
                            format!(
                                "precert entry {}: chain[{i}] ({}) is not a certificate",
                                e.index,
                                hex::encode(fp)
                            ),
                        )
                    })?;
                    infos.insert(fp, info);
                    info
                }
            };
            chain.push(info);
            if !info.precert_signing {
                break;
            }
        }
        out.push(PrecertCheck {
            position,
            index: e.index,
            leaf_tbs,
            issuer_key_hash,
            chain,
        });
    }
    Ok(out)
}

/// Ingests one log into `store`. Resumes from the stored verified position.
///
/// With `follow`, polls the tree head every `poll_interval` and ingests what was added; each
/// new tree head must extend the entries already verified (consistency proof where the API has
/// one; otherwise the next batch's inclusion proof must agree with our own hashes of all earlier
/// entries). Returns when `to` is reached, after `max_batches`, or when `stop` turns true.
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
    let stop = opts.stop.as_ref();
    let mut pos = start;
    let mut issuers: HashSet<Hash> = HashSet::new();
    // Compact range of [0, pos) from our own leaf hashes, kept across `follow` passes.
    let mut kept: Option<(u64, CompactRange)> = None;
    let progress = |event: Progress| {
        if let Some(p) = &opts.progress {
            p.send(&event);
        }
    };
    let mut batches = 0u64;
    let mut announced_end = None;
    loop {
        let end = opts.to.map_or(th.tree_size, |t| t.min(th.tree_size));
        stats.tree_size = th.tree_size;
        if announced_end != Some(end) {
            announced_end = Some(end);
            progress(Progress::Range {
                url: url.clone(),
                start,
                end: end.max(start),
            });
        }
        if pos < end {
            let cr = match kept.take() {
                Some((p, cr)) if p == pos => cr,
                _ => seed(client.as_ref(), pos, &th).await?,
            };
            let chunk = match client.kind() {
                crate::client::LogKind::Static => crate::tile::TILE_WIDTH,
                crate::client::LogKind::Rfc6962 => opts.request_entries.max(1),
            };
            let batch_entries = opts.batch_entries.max(1);
            let fetched = spawn_fetcher(
                client.clone(),
                pos,
                end,
                th.tree_size,
                chunk,
                opts.concurrency,
                (batch_entries / chunk) as usize + opts.concurrency,
            );
            let (tx, mut rx) = mpsc::channel(1);
            let preparer = tokio::spawn(prepare_stage(
                client.clone(),
                fetched,
                cr,
                th.clone(),
                state.id,
                batch_entries,
                std::mem::take(&mut issuers),
                tx,
            ));
            // Up to two batches are written at once: batch k+1's certificates while batch k's
            // entries and cursors commit (in log order, see `write_batch`).
            let mut inflight: VecDeque<tokio::task::JoinHandle<Result<BatchDone, CtError>>> =
                VecDeque::new();
            let mut prev: Option<oneshot::Receiver<()>> = None;
            let mut last_end = stats.verified_position;
            let mut spawned = 0u64;
            let mut stopping = false;
            let mut failed: Option<CtError> = None;
            loop {
                let next = if stopping || failed.is_some() {
                    None
                } else {
                    rx.recv().await
                };
                match next {
                    Some(Ok(p)) => {
                        let advance = contiguous && p.batch_end > last_end;
                        last_end = last_end.max(p.batch_end);
                        let (done_tx, done_rx) = oneshot::channel();
                        inflight.push_back(tokio::spawn(write_batch(
                            store.clone(),
                            opts.writers,
                            state.id,
                            p,
                            th.clone(),
                            advance,
                            prev.replace(done_rx),
                            done_tx,
                        )));
                        spawned += 1;
                        if opts.max_batches.is_some_and(|m| batches + spawned >= m) {
                            stopping = true;
                        }
                        if inflight.len() < 2 && !stopping {
                            continue;
                        }
                    }
                    Some(Err(e)) => failed = Some(e),
                    None => {}
                }
                let Some(h) = inflight.pop_front() else {
                    break;
                };
                let done = h
                    .await
                    .map_err(|e| CtError::Usage(format!("batch write task failed: {e}")))
                    .and_then(|r| r);
                match done {
                    Ok(d) => {
                        spawned -= 1;
                        batches += 1;
                        pos = d.batch_end;
                        progress(Progress::Committed {
                            url: url.clone(),
                            entries: d.entries_in_batch,
                            position: d.batch_end,
                        });
                        stats.entries += d.entries;
                        stats.certs_new += d.certs_new;
                        stats.certs_unparsable += d.certs_unparsable;
                        if d.advanced {
                            stats.verified_position = d.batch_end;
                        }
                    }
                    // Later batches in flight cannot commit their cursors now (their
                    // predecessor failed); their certificates may be stored, harmlessly.
                    Err(e) => {
                        failed.get_or_insert(e);
                    }
                }
                if stop_requested(stop) {
                    stopping = true;
                }
            }
            if let Some(e) = failed {
                return Err(e);
            }
            if stopping {
                return Ok(stats);
            }
            let (cr, sent) = preparer
                .await
                .map_err(|e| CtError::Usage(format!("prepare task failed: {e}")))?;
            if pos != end {
                return Err(inconsistent(
                    &url,
                    format!("ingest stopped at {pos} before {end}"),
                ));
            }
            kept = Some((pos, cr));
            issuers = sent;
        }
        if !opts.follow || opts.to.is_some_and(|t| pos >= t) || stop_requested(stop) {
            break;
        }
        if sleep_or_stop(opts.poll_interval, stop).await {
            break;
        }
        let new = match client.tree_head().await {
            Ok(new) => new,
            // A log that is briefly unreachable is polled again; bad data is not tolerated.
            Err(e @ CtError::Fetch(_)) => {
                tracing::warn!(ct_log.url = %url, "tree head poll failed: {e}");
                continue;
            }
            Err(e) => return Err(e),
        };
        if new.tree_size == th.tree_size && new.root != th.root {
            return Err(inconsistent(
                &url,
                format!("two roots for tree size {}", th.tree_size),
            ));
        }
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
            tracing::info!(
                ct_log.url = %url,
                ct.tree_size = new.tree_size,
                "tree grew"
            );
            th = new;
        }
    }
    Ok(stats)
}

/// What one batch's write did.
#[derive(Debug)]
struct BatchDone {
    batch_end: u64,
    entries_in_batch: u64,
    entries: u64,
    certs_new: u64,
    certs_unparsable: u64,
    advanced: bool,
}

/// Writes one prepared batch: its certificates first, committed by their own writers
/// (content-addressed, so harmless if what follows fails), then, once the previous batch's
/// transaction has committed (`prev`), its entries and the cursors in one transaction, after
/// which `done` tells the next batch. Entries and cursors thus commit in log order, each only
/// after every certificate it refers to; a task holds no connection while it waits.
#[expect(clippy::too_many_arguments, reason = "internal stage of ingest_log")]
async fn write_batch(
    store: Store,
    writers: usize,
    log_id: i32,
    p: Prepared,
    th: TreeHead,
    advance: bool,
    prev: Option<oneshot::Receiver<()>>,
    done: oneshot::Sender<()>,
) -> Result<BatchDone, CtError> {
    let th_ts = i64::try_from(th.timestamp_ms)
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .unwrap_or_default();
    let t0 = Instant::now();
    let ws = store.write_certs_parallel(&p.records, writers).await?;
    let t_certs = t0.elapsed();
    if let Some(prev) = prev {
        prev.await.map_err(|_| {
            CtError::Usage(format!(
                "batch ending at {} not committed: an earlier batch failed",
                p.batch_end
            ))
        })?;
    }
    let t_wait = t0.elapsed() - t_certs;
    let mut conn = store.conn().await?;
    let mut tx = conn.begin().await?;
    let entries = tx.write_ct_entries(&p.rows).await?;
    if advance {
        tx.set_ct_positions(log_id, p.batch_end as i64, p.batch_end as i64)
            .await?;
    }
    let sig = (!th.signature.is_empty()).then_some(&th.signature[..]);
    tx.set_ct_tree_head(log_id, th.tree_size as i64, &th.root, th_ts, sig)
        .await?;
    tx.commit().await?;
    let _ = done.send(());
    tracing::debug!(
        ct_log.id = log_id,
        ct.batch_end = p.batch_end,
        ct.entries = p.rows.len(),
        ct.fetch_wait_ms = p.fetch_wait.as_millis() as u64,
        ct.verify_ms = p.verify.as_millis() as u64,
        ct.parse_ms = p.parse.as_millis() as u64,
        ct.write_certs_ms = t_certs.as_millis() as u64,
        ct.wait_previous_ms = t_wait.as_millis() as u64,
        ct.write_ms = t0.elapsed().as_millis() as u64,
        "batch committed"
    );
    Ok(BatchDone {
        batch_end: p.batch_end,
        entries_in_batch: p.rows.len() as u64,
        entries,
        certs_new: ws.new,
        certs_unparsable: ws.unparsable,
        advanced: advance,
    })
}
