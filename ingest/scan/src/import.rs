//! The import driver: reads a scan file on a blocking thread, parses certificates there, and writes
//! batches through [`certhist_store::StoreTx`] — certificates, sightings and the file's cursor in
//! one transaction per batch.
//!
//! Contract: idempotent and resumable. A file is identified by the SHA-256 of its bytes and the
//! importer kind. A complete import of the same bytes is detected and changes nothing; an
//! interrupted one resumes after the last committed batch (the cursor counts reader items, which are
//! deterministic for the same bytes). Sightings merge by least/greatest, so importing an older
//! dataset after a newer one still gives the right first/last seen.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use certhist_model::{CertRecord, ObservationRow, Sha1, Sha256};
use certhist_store::{ImportState, Store};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::input::{self, Input};
use crate::record::{Item, ItemReader, Problem};
use crate::ScanError;

/// Problems kept in a summary (the total is always counted).
pub const MAX_PROBLEMS_KEPT: usize = 1000;

/// Distinct certificates remembered per import to avoid re-parsing repeats (cleared when full).
const SEEN_CERTS_CAP: usize = 2_000_000;

/// How an import runs.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Reader items (lines / records) per batch and transaction.
    pub batch_items: usize,
    /// Stop after this many committed batches (the import then stays resumable). For tests and
    /// for splitting long imports; `None` = run to the end.
    pub max_batches: Option<u64>,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            batch_items: 50_000,
            max_batches: None,
            progress: false,
        }
    }
}

/// What an import of one file did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ImportSummary {
    /// The file as given.
    pub file: String,
    /// Importer kind (`zgrab2`, `sonar-certs`, `sonar-hosts`, `nmap`, `masscan`).
    pub kind: String,
    /// SHA-256 of the file's bytes (hex).
    pub content_sha256: String,
    /// The same bytes were imported completely before: nothing was written.
    pub already_imported: bool,
    /// Items skipped because an earlier, interrupted run committed them.
    pub resumed_after_items: u64,
    /// Items read in this run (records and problems).
    pub items: u64,
    /// Good records read in this run.
    pub records: u64,
    /// Records that held no certificate (e.g. failed handshakes in ZGrab2 output).
    pub records_without_certificate: u64,
    /// Certificate occurrences in the records.
    pub certs_seen: u64,
    /// Certificates that were not in the database before.
    pub certs_new: u64,
    /// Certificate occurrences that added no row (already stored, or repeated in the file).
    pub certs_known: u64,
    /// Of the new certificates, how many did not parse (stored with hashes and DER).
    pub certs_unparsable: u64,
    /// Sightings written (merged into observations).
    pub sightings: u64,
    /// Bad records skipped.
    pub problems_total: u64,
    /// The first [`MAX_PROBLEMS_KEPT`] problems with their line numbers.
    pub problems: Vec<Problem>,
    /// The whole file is now imported.
    pub complete: bool,
    /// Wall time.
    pub elapsed_ms: u64,
}

struct Batch {
    certs: Vec<CertRecord>,
    dup_certs: u64,
    sightings: Vec<ObservationRow>,
    problems: Vec<(u64, String)>,
    items: u64,
    records: u64,
    without_cert: u64,
    items_end: u64,
    last: bool,
}

impl Batch {
    fn new() -> Self {
        Batch {
            certs: Vec::new(),
            dup_certs: 0,
            sightings: Vec::new(),
            problems: Vec::new(),
            items: 0,
            records: 0,
            without_cert: 0,
            items_end: 0,
            last: false,
        }
    }
}

/// Makes the format reader for an opened file.
pub type ReaderFactory = Box<dyn FnOnce(Input) -> Box<dyn ItemReader> + Send>;

/// Imports one file with the given reader; `source` names the sightings (`observations.sources`).
pub async fn import_file(
    store: &Store,
    path: &Path,
    kind: &str,
    source: &str,
    make_reader: ReaderFactory,
    options: &ImportOptions,
) -> Result<ImportSummary, ScanError> {
    let started = Instant::now();
    let path_buf = path.to_path_buf();
    let sha: Sha256 = {
        let p = path_buf.clone();
        tokio::task::spawn_blocking(move || input::content_sha256(&p))
            .await
            .map_err(|e| ScanError::Task(e.to_string()))??
    };
    let mut summary = ImportSummary {
        file: path.display().to_string(),
        kind: kind.to_owned(),
        content_sha256: hex::encode(sha),
        ..ImportSummary::default()
    };
    let mut conn = store.conn().await?;
    let state = {
        let tx = conn.begin().await?;
        let st = tx.import_state(&sha, kind).await?;
        drop(tx);
        st
    };
    if let Some(st) = &state {
        if st.complete {
            summary.already_imported = true;
            summary.complete = true;
            tracing::info!(import.file = %summary.file, import.kind = kind, "already imported; nothing to do");
            return Ok(summary);
        }
    }
    let skip = state
        .map(|s| u64::try_from(s.rows_done).unwrap_or(0))
        .unwrap_or(0);
    summary.resumed_after_items = skip;

    let (tx_batches, mut rx_batches) = mpsc::channel::<Result<Batch, ScanError>>(2);
    let batch_items = options.batch_items.max(1);
    let source_owned = source.to_owned();
    let producer = tokio::task::spawn_blocking(move || {
        produce(
            &path_buf,
            make_reader,
            skip,
            batch_items,
            &source_owned,
            &tx_batches,
        );
    });

    let bar = progress_bar(options.progress, &summary.file);
    let mut batches_done = 0u64;
    let mut result = Ok(());
    while let Some(batch) = rx_batches.recv().await {
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                result = Err(e);
                break;
            }
        };
        let mut tx = conn.begin().await?;
        let stats = tx.write_certs(&batch.certs).await?;
        tx.write_observations(&batch.sightings).await?;
        let rows_done = i64::try_from(batch.items_end).unwrap_or(i64::MAX);
        tx.set_import_state(
            &sha,
            kind,
            &summary.file,
            &ImportState {
                rows_done,
                complete: batch.last,
            },
        )
        .await?;
        tx.commit().await?;
        let seen = batch.certs.len() as u64 + batch.dup_certs;
        summary.items += batch.items;
        summary.records += batch.records;
        summary.records_without_certificate += batch.without_cert;
        summary.certs_seen += seen;
        summary.certs_new += stats.new;
        summary.certs_known += seen - stats.new;
        summary.certs_unparsable += stats.unparsable;
        summary.sightings += batch.sightings.len() as u64;
        for (line, message) in batch.problems {
            summary.problems_total += 1;
            tracing::warn!(import.file = %summary.file, import.line = line, "{message}");
            if summary.problems.len() < MAX_PROBLEMS_KEPT {
                summary.problems.push(Problem {
                    file: summary.file.clone(),
                    line,
                    message,
                });
            }
        }
        summary.complete = batch.last;
        if let Some(b) = &bar {
            b.set_position(batch.items_end);
        }
        batches_done += 1;
        if options.max_batches.is_some_and(|m| batches_done >= m) && !batch.last {
            break;
        }
    }
    drop(rx_batches);
    let _ = producer.await;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    summary.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    result.map(|()| summary)
}

fn progress_bar(enabled: bool, file: &str) -> Option<indicatif::ProgressBar> {
    if !enabled {
        return None;
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} {msg}: {pos} records ({per_sec}) {elapsed}",
    ) {
        bar.set_style(style);
    }
    bar.set_message(file.to_owned());
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
}

/// Reads items on the blocking thread and sends batches; stops when the receiver goes away.
fn produce(
    path: &PathBuf,
    make_reader: ReaderFactory,
    skip: u64,
    batch_items: usize,
    source: &str,
    out: &mpsc::Sender<Result<Batch, ScanError>>,
) {
    let input = match input::open(path) {
        Ok(i) => i,
        Err(e) => {
            let _ = out.blocking_send(Err(e));
            return;
        }
    };
    let mut reader = make_reader(input);
    let mut seen: HashSet<Sha1> = HashSet::new();
    let mut ders: Vec<Vec<u8>> = Vec::new();
    let mut batch = Batch::new();
    let mut position = 0u64;
    loop {
        let item = match reader.next_item() {
            Ok(i) => i,
            Err(e) => {
                // Send what was read before the error, then the error: nothing read is lost.
                batch.items_end = position;
                batch.certs = certhist_x509::parse_many(&ders);
                let _ = out.blocking_send(Ok(batch));
                let _ = out.blocking_send(Err(ScanError::io(path, e)));
                return;
            }
        };
        let Some(item) = item else { break };
        position += 1;
        if position <= skip {
            continue;
        }
        batch.items += 1;
        match item {
            Item::Problem(line, message) => batch.problems.push((line, message)),
            Item::Record(rec) => {
                batch.records += 1;
                if rec.certs.is_empty() && rec.sightings.is_empty() {
                    batch.without_cert += 1;
                }
                for der in rec.certs {
                    let sha1 = crate::record::sha1_of(&der);
                    if seen.len() >= SEEN_CERTS_CAP {
                        seen.clear();
                    }
                    if seen.insert(sha1) {
                        ders.push(der);
                    } else {
                        batch.dup_certs += 1;
                    }
                }
                for s in rec.sightings {
                    batch.sightings.push(ObservationRow {
                        ip: s.ip,
                        port: s.port,
                        sha1: s.leaf_sha1,
                        first_seen: s.time,
                        last_seen: s.time,
                        times_seen: 1,
                        source: source.to_owned(),
                    });
                }
            }
        }
        if batch.items as usize >= batch_items {
            batch.items_end = position;
            batch.certs = certhist_x509::parse_many(&ders);
            ders.clear();
            let full = std::mem::replace(&mut batch, Batch::new());
            if out.blocking_send(Ok(full)).is_err() {
                return;
            }
        }
    }
    batch.items_end = position;
    batch.certs = certhist_x509::parse_many(&ders);
    batch.last = true;
    let _ = out.blocking_send(Ok(batch));
}
