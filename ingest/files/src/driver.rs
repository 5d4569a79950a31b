//! The import driver: every file import (certificates, observations, ZGrab2, Sonar, nmap,
//! masscan, …) runs through [`import_files`], which does once what each importer used to do on
//! its own:
//!
//! 1. walks the given paths (directories recursively, entries in sorted order);
//! 2. opens each file and undoes gzip / bzip2 by magic bytes ([`crate::input`]);
//! 3. computes the SHA-256 of the file's bytes: with the format's kind, the identity of an import;
//! 4. for formats whose batches add counts ([`Replay::Counted`]): takes the per-file advisory lock
//!    (`Conn::try_lock_file`) for the whole import of the file, so two processes never import the
//!    same bytes at once — the second fails with [`ImportError::Busy`] at once, it does not wait;
//!    reads the resume cursor (`imported_files`), skips a complete file unless
//!    [`ImportOptions::force`] (reported as `already_imported`), resumes after the cursor of an
//!    interrupted import, and commits each batch together with the file's cursor in one
//!    transaction (the last batch also marks the file complete);
//! 5. reads items on a blocking thread, parses certificates there (rayon) and writes batches on
//!    the caller's task, so reading, parsing and writing overlap;
//! 6. reports progress as [`ImportEvent`]s to a [`ProgressSink`]; it never prints.
//!
//! A format plugs in as a [`FileFormat`]: a name, a kind, its [`Replay`] class and an
//! [`ItemReader`] over an opened file.
//!
//! **Contract.** An import is idempotent: running it again over the same bytes changes nothing
//! (counted formats are skipped as complete; harmless formats only find their certificates
//! stored). A *batch* is up to [`ImportOptions::batch_items`] items of a reader, in file order;
//! for counted formats a batch never spans files and commits in one transaction with the
//! *cursor*: the reader's [`ItemReader::cursor`] after the batch's last item (by default the
//! number of items read from the start of the file; lines for observation files). A crash loses
//! at most the batch in flight and never applies one twice. Harmless formats (certificates only,
//! content-addressed) keep no cursor and take no lock; their batches span files, so a directory
//! of many small files is written in few batches.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use certhist_model::{CertRecord, ClientContact, ObservationRow, PassiveSighting, Sha1};
use certhist_store::{CacheEntryRow, Conn, ImportState, Store};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::input::{self, HashHandle, HashingReader, Input, Walk};
use crate::record::{sha1_of, Item, ItemReader, Problem};
use crate::ImportError;

/// Problems kept in a summary (the total is always counted; every problem is an event).
pub const MAX_PROBLEMS_KEPT: usize = 1000;

/// Distinct certificates remembered per import to avoid re-parsing repeats (cleared when full).
const SEEN_CERTS_CAP: usize = 2_000_000;

/// Whether writing a batch twice changes the stored data; decides how the driver keeps state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replay {
    /// Batches only add content-addressed or upserted rows (certificates, cache entries):
    /// writing one twice is harmless. No lock, no cursor; batches span files. The items must not
    /// hold sightings (they would be counted again by a re-run).
    Harmless,
    /// Batches add counts (sightings merge into `times_seen`): lock, cursor, skip when complete.
    Counted,
}

/// One file format the driver can import.
pub trait FileFormat: Send + Sync {
    /// Short name for messages and the default kind (`zgrab2`, `certs`, `observations`).
    fn name(&self) -> &str;

    /// How the driver keeps state for this format.
    fn replay(&self) -> Replay {
        Replay::Counted
    }

    /// The import's identity together with the content SHA-256 (`imported_files.kind`):
    /// settings that change what is stored (a fallback port, a scan date) belong in it. `Err`
    /// when `path` cannot be imported with these settings (the message says how to fix it).
    fn kind(&self, _path: &Path) -> Result<String, ImportError> {
        Ok(self.name().to_owned())
    }

    /// For sensor logs that `--follow` can read too (`zeek-ssl`, `suricata-eve`): the kind of
    /// their cursor in `followed_files`. An uncompressed file of such a format resumes after the
    /// lines a follow (or an earlier import of the file while it was shorter) consumed, and
    /// records its cursor with every batch, so a follow afterwards starts where the import
    /// stopped. `None` (the default): no such cursor.
    fn follow_kind(&self) -> Option<&str> {
        None
    }

    /// The label stored with the sightings of [`crate::Record`]s (`observations.sources`).
    fn source(&self) -> &str {
        self.name()
    }

    /// A reader over `input`, the decompressed content of `path`.
    fn reader(&self, path: &Path, input: Input) -> std::io::Result<Box<dyn ItemReader>>;
}

/// How an import runs.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Items (lines, records, certificates) per batch; for counted formats one transaction each.
    pub batch_items: usize,
    /// Stop after this many committed batches per file (the import then stays resumable). For
    /// tests and for splitting long imports; `None` = run to the end.
    pub max_batches: Option<u64>,
    /// Import a file again even if its bytes were imported completely before (counts are added
    /// again).
    pub force: bool,
    /// Connections writing each batch of a harmless format (certificates split by SHA-1).
    pub writers: usize,
    /// Read and write the sensor-log cursors of formats with a [`FileFormat::follow_kind`]
    /// (off for temporary files, e.g. spooled uploads, whose inodes mean nothing later).
    pub follow_cursors: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            batch_items: 50_000,
            max_batches: None,
            force: false,
            writers: 2,
            follow_cursors: true,
        }
    }
}

/// Progress of an import, for a progress display drawn by the caller.
#[derive(Debug)]
#[non_exhaustive]
pub enum ImportEvent<'a> {
    /// A file is about to be read (after its lock and cursor, for counted formats).
    FileStarted {
        /// The file.
        path: &'a Path,
        /// The import's kind.
        kind: &'a str,
        /// Cursor an interrupted import resumes after (0 for a fresh one).
        resumed_after: u64,
    },
    /// More items were read and written.
    Progress {
        /// Items read and written so far in this import (all files).
        items: u64,
    },
    /// A bad record was skipped (reading goes on).
    Problem(&'a Problem),
    /// A file is done (or was already imported).
    FileFinished(&'a FileSummary),
}

/// Receives [`ImportEvent`]s (a progress bar, a log).
pub trait ProgressSink: Sync {
    /// Called on the importing task, in order.
    fn event(&self, event: &ImportEvent<'_>);
}

impl<F: Fn(&ImportEvent<'_>) + Sync> ProgressSink for F {
    fn event(&self, event: &ImportEvent<'_>) {
        self(event)
    }
}

/// Ignores every event.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn event(&self, _event: &ImportEvent<'_>) {}
}

/// What an import of one file did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FileSummary {
    /// The file as given (or as reached in a directory).
    pub file: String,
    /// Importer kind (`zgrab2`, `sonar-certs`, `observations`, …).
    pub kind: String,
    /// SHA-256 of the file's bytes (hex); empty when the file could not be read to the end.
    pub content_sha256: String,
    /// The same bytes were imported completely before: nothing was written.
    pub already_imported: bool,
    /// Cursor an earlier, interrupted run had committed, which this run resumed after (items;
    /// lines for observation files).
    pub resumed_after_items: u64,
    /// Items read in this run (records, problems, ignored blocks).
    pub items: u64,
    /// Good records read in this run (observation rows, certificates of certificate files).
    pub records: u64,
    /// Records that held no certificate and no sighting (e.g. failed handshakes in ZGrab2).
    pub records_without_certificate: u64,
    /// Certificate occurrences in the records.
    pub certs_seen: u64,
    /// Certificates that were not in the database before (counted formats; harmless formats
    /// share batches across files and count these in [`ImportReport::totals`] only).
    pub certs_new: u64,
    /// Certificate occurrences that added no row (already stored, or repeated in the file).
    pub certs_known: u64,
    /// Of the new certificates, how many did not parse (stored with hashes and DER).
    pub certs_unparsable: u64,
    /// Sightings and observation rows written (merged into observations).
    pub sightings: u64,
    /// Observation keys (ip, port, sha1) written after merging the rows of each batch.
    pub observation_keys: u64,
    /// Cache entries (CryptnetUrlCache, certutil, URL lists) written.
    pub cache_entries: u64,
    /// Items that hold nothing to store and are no problem (PEM blocks of keys).
    pub ignored: u64,
    /// Bad records skipped.
    pub problems_total: u64,
    /// The first [`MAX_PROBLEMS_KEPT`] problems with their line numbers.
    pub problems: Vec<Problem>,
    /// The whole file is now imported.
    pub complete: bool,
    /// The cursor after this run (items; lines for observation files).
    pub cursor: u64,
    /// Wall time.
    pub elapsed_ms: u64,
}

/// Sums over the files of an import.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Totals {
    /// Files read (or found already imported).
    pub files: u64,
    /// Items read.
    pub items: u64,
    /// Good records read.
    pub records: u64,
    /// Certificate occurrences.
    pub certs_seen: u64,
    /// Certificates new to the database.
    pub certs_new: u64,
    /// Certificate occurrences that added no row.
    pub certs_known: u64,
    /// Of the new certificates, how many did not parse.
    pub certs_unparsable: u64,
    /// Sightings and observation rows written.
    pub sightings: u64,
    /// Observation keys written.
    pub observation_keys: u64,
    /// Cache entries written.
    pub cache_entries: u64,
    /// Items ignored.
    pub ignored: u64,
    /// Problems met.
    pub problems: u64,
    /// Wall time.
    pub elapsed_ms: u64,
}

/// What an import did: one summary per file, and the sums.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ImportReport {
    /// Per file, in the order read.
    pub files: Vec<FileSummary>,
    /// Sums over the files.
    pub totals: Totals,
}

/// Imports the files under `paths` in `format`; see the module documentation.
pub async fn import_files(
    store: &Store,
    format: Arc<dyn FileFormat>,
    paths: &[PathBuf],
    options: &ImportOptions,
    progress: &dyn ProgressSink,
) -> Result<ImportReport, ImportError> {
    let started = Instant::now();
    let walk_paths = paths.to_vec();
    let files: Vec<_> = tokio::task::spawn_blocking(move || Walk::new(walk_paths).collect())
        .await
        .map_err(|e| ImportError::Task(e.to_string()))?;
    let mut report = ImportReport::default();
    match format.replay() {
        Replay::Counted => {
            for entry in files {
                let path = entry.map_err(|(p, e)| ImportError::io(p, e))?;
                let summary =
                    import_counted(store, format.clone(), &path, options, progress, &mut report)
                        .await?;
                progress.event(&ImportEvent::FileFinished(&summary));
                report.files.push(summary);
            }
        }
        Replay::Harmless => {
            import_harmless(store, format, files, options, progress, &mut report).await?;
        }
    }
    let t = &mut report.totals;
    t.files = report.files.len() as u64;
    for f in &report.files {
        t.items += f.items;
        t.records += f.records;
        t.certs_seen += f.certs_seen;
        t.cache_entries += f.cache_entries;
        t.ignored += f.ignored;
        t.problems += f.problems_total;
    }
    t.elapsed_ms = elapsed_ms(started);
    Ok(report)
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Counts of reading, per batch and per file.
#[derive(Clone, Debug, Default)]
struct Facts {
    items: u64,
    records: u64,
    without_cert: u64,
    certs_seen: u64,
    sightings: u64,
    cache_entries: u64,
    ignored: u64,
    problems_total: u64,
}

impl Facts {
    fn add(&mut self, f: &Facts) {
        self.items += f.items;
        self.records += f.records;
        self.without_cert += f.without_cert;
        self.certs_seen += f.certs_seen;
        self.sightings += f.sightings;
        self.cache_entries += f.cache_entries;
        self.ignored += f.ignored;
        self.problems_total += f.problems_total;
    }

    fn add_to(&self, s: &mut FileSummary) {
        s.items += self.items;
        s.records += self.records;
        s.records_without_certificate += self.without_cert;
        s.certs_seen += self.certs_seen;
        s.sightings += self.sightings;
        s.cache_entries += self.cache_entries;
        s.ignored += self.ignored;
        s.problems_total += self.problems_total;
    }
}

/// A batch read and parsed, ready to write.
#[derive(Debug, Default)]
struct Batch {
    certs: Vec<CertRecord>,
    rows: Vec<ObservationRow>,
    passive: Vec<PassiveSighting>,
    clients: Vec<ClientContact>,
    cache_entries: Vec<CacheEntryRow>,
    problems: Vec<Problem>,
    facts: Facts,
    /// The file's cursor after the batch's last item (counted formats).
    cursor_end: u64,
    /// The file's last batch (counted formats).
    last: bool,
    /// (bytes, lines) of the complete lines consumed after the batch's last item (readers with
    /// a [`ItemReader::line_position`]).
    line_end: Option<(u64, u64)>,
}

/// What the reading thread sends.
enum Msg {
    /// A harmless-format file is being read.
    FileStarted { path: PathBuf },
    /// A batch.
    Batch(Batch),
    /// A harmless-format file is done: its reading counts and hash.
    FileDone(Box<FileSummary>),
    /// Reading stopped (counted formats; after the batch of what was read before).
    Failed(ImportError),
}

/// Turns items into batches: dedups certificates, labels sightings, counts.
struct Builder {
    source: String,
    seen: HashSet<Sha1>,
    ders: Vec<Vec<u8>>,
    rows: Vec<ObservationRow>,
    passive: Vec<PassiveSighting>,
    clients: Vec<ClientContact>,
    cache_entries: Vec<CacheEntryRow>,
    problems: Vec<Problem>,
    batch: Facts,
    file: Facts,
    file_problems: Vec<Problem>,
}

impl Builder {
    fn new(source: &str) -> Self {
        Builder {
            source: source.to_owned(),
            seen: HashSet::new(),
            ders: Vec::new(),
            rows: Vec::new(),
            passive: Vec::new(),
            clients: Vec::new(),
            cache_entries: Vec::new(),
            problems: Vec::new(),
            batch: Facts::default(),
            file: Facts::default(),
            file_problems: Vec::new(),
        }
    }

    fn push(&mut self, file: &str, item: Item) {
        let mut f = Facts {
            items: 1,
            ..Facts::default()
        };
        match item {
            Item::Record(rec) => {
                f.records = 1;
                if rec.certs.is_empty() && rec.sightings.is_empty() {
                    f.without_cert = 1;
                }
                for der in rec.certs {
                    f.certs_seen += 1;
                    if self.seen.len() >= SEEN_CERTS_CAP {
                        self.seen.clear();
                    }
                    if self.seen.insert(sha1_of(&der)) {
                        self.ders.push(der);
                    }
                }
                for s in &rec.sightings {
                    self.rows.push(s.to_row(&self.source));
                    f.sightings += 1;
                }
            }
            Item::Passive { certs, sighting } => {
                f.records = 1;
                if sighting.leaf.is_none() && certs.is_empty() {
                    f.without_cert = 1;
                } else {
                    f.sightings = 1;
                }
                for der in certs {
                    f.certs_seen += 1;
                    if self.seen.len() >= SEEN_CERTS_CAP {
                        self.seen.clear();
                    }
                    if self.seen.insert(sha1_of(&der)) {
                        self.ders.push(der);
                    }
                }
                self.passive.push(*sighting);
            }
            Item::Client { certs, contact } => {
                f.records = 1;
                for der in certs {
                    f.certs_seen += 1;
                    if self.seen.len() >= SEEN_CERTS_CAP {
                        self.seen.clear();
                    }
                    if self.seen.insert(sha1_of(&der)) {
                        self.ders.push(der);
                    }
                }
                self.clients.push(*contact);
            }
            Item::Observation(row) => {
                f.records = 1;
                f.sightings = 1;
                self.rows.push(row);
            }
            Item::CacheEntry(entry) => {
                f.records = 1;
                f.cache_entries = 1;
                self.cache_entries.push(*entry);
            }
            Item::Ignored(_) => f.ignored = 1,
            Item::Problem(line, message) => {
                f.problems_total = 1;
                let p = Problem {
                    file: file.to_owned(),
                    line,
                    message,
                };
                if self.file_problems.len() < MAX_PROBLEMS_KEPT {
                    self.file_problems.push(p.clone());
                }
                self.problems.push(p);
            }
        }
        self.batch.add(&f);
        self.file.add(&f);
    }

    fn is_empty(&self) -> bool {
        self.batch.items == 0
    }

    /// The batch so far, certificates parsed (on rayon).
    fn take(&mut self) -> Batch {
        let ders = std::mem::take(&mut self.ders);
        Batch {
            certs: certhist_x509::parse_many(&ders),
            rows: std::mem::take(&mut self.rows),
            passive: std::mem::take(&mut self.passive),
            clients: std::mem::take(&mut self.clients),
            cache_entries: std::mem::take(&mut self.cache_entries),
            problems: std::mem::take(&mut self.problems),
            facts: std::mem::take(&mut self.batch),
            cursor_end: 0,
            last: false,
            line_end: None,
        }
    }

    /// The current file's counts and kept problems, reset for the next file.
    fn take_file(&mut self) -> (Facts, Vec<Problem>) {
        (
            std::mem::take(&mut self.file),
            std::mem::take(&mut self.file_problems),
        )
    }
}

/// One counted-format file: hash, lock, cursor, batches with the cursor.
async fn import_counted(
    store: &Store,
    format: Arc<dyn FileFormat>,
    path: &Path,
    options: &ImportOptions,
    progress: &dyn ProgressSink,
    report: &mut ImportReport,
) -> Result<FileSummary, ImportError> {
    let started = Instant::now();
    let kind = format.kind(path)?;
    let sha = {
        let p = path.to_owned();
        tokio::task::spawn_blocking(move || input::content_sha256(&p))
            .await
            .map_err(|e| ImportError::Task(e.to_string()))?
            .map_err(|e| ImportError::io(path, e))?
    };
    let mut summary = FileSummary {
        file: path.display().to_string(),
        kind,
        content_sha256: hex::encode(sha),
        ..FileSummary::default()
    };
    let mut conn = store.conn().await?;
    if !conn.try_lock_file(&sha).await? {
        return Err(ImportError::Busy {
            path: path.to_owned(),
            content_sha256: summary.content_sha256,
        });
    }
    let result = import_locked(
        &mut conn,
        format,
        path,
        &sha,
        &mut summary,
        options,
        progress,
        report,
    )
    .await;
    let unlocked = conn.unlock_file(&sha).await;
    result?;
    unlocked?;
    summary.elapsed_ms = elapsed_ms(started);
    Ok(summary)
}

#[expect(
    clippy::too_many_arguments,
    reason = "the per-file state of import_counted, split out so the lock is always released"
)]
async fn import_locked(
    conn: &mut Conn,
    format: Arc<dyn FileFormat>,
    path: &Path,
    sha: &[u8; 32],
    summary: &mut FileSummary,
    options: &ImportOptions,
    progress: &dyn ProgressSink,
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    let state = {
        let tx = conn.begin().await?;
        let st = tx.import_state(sha, &summary.kind).await?;
        drop(tx);
        st
    };
    let mut skip = match state {
        Some(st) if st.complete && !options.force => {
            summary.already_imported = true;
            summary.complete = true;
            summary.cursor = u64::try_from(st.rows_done).unwrap_or(0);
            tracing::info!(import.file = %summary.file, import.kind = %summary.kind, "already imported; nothing to do");
            return Ok(());
        }
        Some(st) if !st.complete => u64::try_from(st.rows_done).unwrap_or(0),
        _ => 0,
    };
    // A sensor log another reader (`--follow`, or an import of the file while it was shorter)
    // consumed part of: resume after its lines.
    let mut sensor = None;
    if let Some(follow_kind) = format.follow_kind().filter(|_| options.follow_cursors) {
        let meta = std::fs::metadata(path).map_err(|e| ImportError::io(path, e))?;
        if !crate::cursor::is_compressed(path).map_err(|e| ImportError::io(path, e))? {
            let mut tx = conn.begin().await?;
            let stored = crate::cursor::stored(&mut tx, follow_kind, path, &meta).await?;
            drop(tx);
            sensor = Some((
                follow_kind.to_owned(),
                crate::cursor::identity(&meta),
                stored.map_or(0, |c| c.records),
            ));
            if let Some(lines) = stored.and_then(|c| c.lines) {
                if lines > skip {
                    tracing::info!(import.file = %summary.file, lines, "resuming after the lines a follow or earlier import of this file consumed");
                }
                skip = skip.max(lines);
            }
        }
    }
    summary.resumed_after_items = skip;
    summary.cursor = skip;
    progress.event(&ImportEvent::FileStarted {
        path,
        kind: &summary.kind,
        resumed_after: skip,
    });
    let source = format.source().to_owned();
    let (sender, mut receiver) = mpsc::channel::<Msg>(2);
    let producer = {
        let path = path.to_owned();
        let batch_items = options.batch_items.max(1);
        tokio::task::spawn_blocking(move || {
            produce(
                format,
                vec![Ok(path)],
                Replay::Counted,
                skip,
                batch_items,
                &sender,
            )
        })
    };
    let mut batches_done = 0u64;
    let mut result = Ok(());
    while let Some(msg) = receiver.recv().await {
        let batch = match msg {
            Msg::Batch(b) => b,
            Msg::Failed(e) => {
                result = Err(e);
                break;
            }
            Msg::FileStarted { .. } | Msg::FileDone(_) => continue,
        };
        for p in &batch.problems {
            progress.event(&ImportEvent::Problem(p));
        }
        let mut tx = conn.begin().await?;
        let stats = tx.write_certs(&batch.certs).await?;
        let mut keys = tx.write_observations(&batch.rows).await?;
        if !batch.passive.is_empty() {
            // After the certificates: a leaf named by SHA-256 whose DER is in the batch is found.
            let p = tx.write_passive_batch(&batch.passive, &source).await?;
            keys += p.observation_keys + p.stub_keys;
        }
        if !batch.clients.is_empty() {
            tx.write_client_contacts(&batch.clients, &source).await?;
        }
        if !batch.cache_entries.is_empty() {
            tx.write_cache_entries(&batch.cache_entries).await?;
        }
        tx.set_import_state(
            sha,
            &summary.kind,
            &summary.file,
            &ImportState {
                rows_done: i64::try_from(batch.cursor_end).unwrap_or(i64::MAX),
                complete: batch.last,
            },
        )
        .await?;
        if let (Some((kind, id, records)), Some((offset, lines))) =
            (sensor.as_mut(), batch.line_end)
        {
            if offset > 0 {
                *records += batch.facts.records;
                if let Some(c) = crate::cursor::at_path(path, *id, offset, lines, *records)? {
                    tx.set_follow_cursor(&summary.file, kind, &c).await?;
                }
            }
        }
        tx.commit().await?;
        batch.facts.add_to(summary);
        summary.certs_new += stats.new;
        summary.certs_known += batch.facts.certs_seen.saturating_sub(stats.new);
        summary.certs_unparsable += stats.unparsable;
        summary.observation_keys += keys;
        summary.cursor = batch.cursor_end;
        summary.complete = batch.last;
        let kept = MAX_PROBLEMS_KEPT.saturating_sub(summary.problems.len());
        summary
            .problems
            .extend(batch.problems.into_iter().take(kept));
        report.totals.certs_new += stats.new;
        report.totals.certs_known += batch.facts.certs_seen.saturating_sub(stats.new);
        report.totals.certs_unparsable += stats.unparsable;
        report.totals.sightings += batch.facts.sightings;
        report.totals.observation_keys += keys;
        let earlier: u64 = report.files.iter().map(|f| f.items).sum();
        progress.event(&ImportEvent::Progress {
            items: earlier + summary.items,
        });
        batches_done += 1;
        if options.max_batches.is_some_and(|m| batches_done >= m) && !batch.last {
            break;
        }
    }
    drop(receiver);
    producer
        .await
        .map_err(|e| ImportError::Task(e.to_string()))?;
    result
}

/// Harmless-format files: batches span files; no lock, no cursor.
async fn import_harmless(
    store: &Store,
    format: Arc<dyn FileFormat>,
    files: Vec<Result<PathBuf, (PathBuf, std::io::Error)>>,
    options: &ImportOptions,
    progress: &dyn ProgressSink,
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    let kind = format.name().to_owned();
    let (sender, mut receiver) = mpsc::channel::<Msg>(2);
    let producer = {
        let batch_items = options.batch_items.max(1);
        tokio::task::spawn_blocking(move || {
            produce(format, files, Replay::Harmless, 0, batch_items, &sender)
        })
    };
    let mut batches_done = 0u64;
    let mut items = 0u64;
    let mut result = Ok(());
    while let Some(msg) = receiver.recv().await {
        match msg {
            Msg::FileStarted { path } => progress.event(&ImportEvent::FileStarted {
                path: &path,
                kind: &kind,
                resumed_after: 0,
            }),
            Msg::FileDone(summary) => {
                progress.event(&ImportEvent::FileFinished(&summary));
                report.files.push(*summary);
            }
            Msg::Failed(e) => {
                result = Err(e);
                break;
            }
            Msg::Batch(batch) => {
                for p in &batch.problems {
                    progress.event(&ImportEvent::Problem(p));
                }
                let stats = store
                    .write_certs_parallel(&batch.certs, options.writers.max(1))
                    .await?;
                let mut keys = 0;
                if !batch.rows.is_empty() || !batch.cache_entries.is_empty() {
                    // After the certificates they may refer to.
                    let mut conn = store.conn().await?;
                    let mut tx = conn.begin().await?;
                    keys = tx.write_observations(&batch.rows).await?;
                    if !batch.cache_entries.is_empty() {
                        tx.write_cache_entries(&batch.cache_entries).await?;
                    }
                    tx.commit().await?;
                }
                let t = &mut report.totals;
                t.certs_new += stats.new;
                t.certs_known += batch.facts.certs_seen.saturating_sub(stats.new);
                t.certs_unparsable += stats.unparsable;
                t.sightings += batch.facts.sightings;
                t.observation_keys += keys;
                items += batch.facts.items;
                progress.event(&ImportEvent::Progress { items });
                batches_done += 1;
                if options.max_batches.is_some_and(|m| batches_done >= m) {
                    break;
                }
            }
        }
    }
    drop(receiver);
    producer
        .await
        .map_err(|e| ImportError::Task(e.to_string()))?;
    result
}

/// Opens a harmless-format file, hashing its bytes as they are read.
fn open_hashing(path: &Path) -> std::io::Result<(Input, HashHandle, u64)> {
    let file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    let hashing = HashingReader::new(file);
    let handle = hashing.handle();
    Ok((input::decompress(hashing)?, handle, size))
}

/// Reads `files` on the blocking thread and sends batches; stops when the receiver goes away.
fn produce(
    format: Arc<dyn FileFormat>,
    files: Vec<Result<PathBuf, (PathBuf, std::io::Error)>>,
    replay: Replay,
    skip: u64,
    batch_items: usize,
    out: &mpsc::Sender<Msg>,
) {
    let mut builder = Builder::new(format.source());
    for entry in files {
        let (path, opened) = match entry {
            Ok(path) => {
                let opened = match replay {
                    Replay::Counted => input::open(&path).map(|i| (i, None)),
                    Replay::Harmless => {
                        open_hashing(&path).map(|(i, h, size)| (i, Some((h, size))))
                    }
                };
                (path, opened)
            }
            Err((path, e)) => (path, Err(e)),
        };
        let file = path.display().to_string();
        if replay == Replay::Harmless
            && out
                .blocking_send(Msg::FileStarted { path: path.clone() })
                .is_err()
        {
            return;
        }
        let started = Instant::now();
        let mut hash = None;
        let reader = opened.and_then(|(input, h)| {
            hash = h;
            format.reader(&path, input)
        });
        let mut position = 0u64;
        let mut cursor = 0u64;
        let mut line_end = None;
        match reader {
            Err(e) => {
                if replay == Replay::Counted {
                    let _ = out.blocking_send(Msg::Failed(ImportError::io(&path, e)));
                    return;
                }
                builder.push(&file, Item::Problem(0, format!("cannot read: {e}")));
            }
            Ok(mut reader) => loop {
                let item = match reader.next_item() {
                    Ok(Some(item)) => item,
                    Ok(None) => {
                        // Lines after the last item (blank, comments) are read too.
                        cursor = reader.cursor().unwrap_or(position).max(cursor);
                        line_end = reader.line_position();
                        break;
                    }
                    Err(e) => {
                        if replay == Replay::Counted {
                            // Send what was read before the error, then the error: nothing read
                            // is lost, and the cursor says where it stopped.
                            let mut batch = builder.take();
                            batch.cursor_end = cursor.max(skip);
                            batch.line_end = line_end.filter(|_| cursor > skip);
                            let _ = out.blocking_send(Msg::Batch(batch));
                            let _ = out.blocking_send(Msg::Failed(ImportError::io(&path, e)));
                            return;
                        }
                        builder.push(&file, Item::Problem(0, format!("cannot read: {e}")));
                        break;
                    }
                };
                position += 1;
                cursor = reader.cursor().unwrap_or(position);
                line_end = reader.line_position();
                if cursor <= skip {
                    continue;
                }
                builder.push(&file, item);
                if builder.batch.items as usize >= batch_items {
                    let mut batch = builder.take();
                    batch.cursor_end = cursor;
                    batch.line_end = line_end;
                    if out.blocking_send(Msg::Batch(batch)).is_err() {
                        return;
                    }
                }
            },
        }
        match replay {
            Replay::Counted => {
                let mut batch = builder.take();
                batch.cursor_end = cursor.max(skip);
                batch.last = true;
                // Past the lines skipped: the position is this run's (else the stored cursor
                // stays as it is).
                batch.line_end = line_end.filter(|p| p.1 >= skip && cursor > skip);
                let _ = out.blocking_send(Msg::Batch(batch));
                return;
            }
            Replay::Harmless => {
                let (facts, problems) = builder.take_file();
                let mut summary = FileSummary {
                    file,
                    kind: format.name().to_owned(),
                    complete: true,
                    cursor: position,
                    problems,
                    elapsed_ms: elapsed_ms(started),
                    ..FileSummary::default()
                };
                facts.add_to(&mut summary);
                if let Some((h, size)) = hash {
                    if h.bytes_read() == size {
                        summary.content_sha256 = hex::encode(h.digest());
                    }
                }
                if out.blocking_send(Msg::FileDone(Box::new(summary))).is_err() {
                    return;
                }
            }
        }
    }
    if !builder.is_empty() {
        let _ = out.blocking_send(Msg::Batch(builder.take()));
    }
}
