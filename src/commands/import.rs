//! `certhist import certs|observations`.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use certhist_files::certfile::CertReader;
use certhist_files::observations::{maybe_gunzip, ObservationReader};
use certhist_model::{CertRecord, ObservationRow};
use certhist_store::{ImportState, Store};
use certhist_x509::parse_many;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use sha2::Digest;
use tokio::sync::mpsc;

use super::Failure;
use crate::cli::{Cli, ImportCertsArgs, ImportCommand, ImportObservationsArgs};
use crate::exit;
use crate::output::ndjson;

/// Importer kind recorded in `imported_files`.
const OBSERVATIONS_KIND: &str = "observations";

pub(crate) async fn run(cli: &Cli, command: &ImportCommand) -> Result<u8, Failure> {
    match command {
        ImportCommand::Scan(format) => super::scan::import(cli, format).await,
        ImportCommand::Certs(a) => {
            let store = crate::open_store(cli).await?;
            let summary = import_certs(&store, a).await?;
            let mut out = std::io::stdout().lock();
            if cli.json {
                ndjson(&mut out, &summary)?;
            } else {
                writeln!(
                    out,
                    "read {} certificate(s) from {} file(s): {} new, {} already known, {} unparsable (stored with their parse error); {} problem(s), {} non-certificate PEM block(s) skipped",
                    summary.read, summary.files, summary.new, summary.known, summary.unparsable, summary.problems, summary.skipped_blocks
                )?;
            }
            Ok(if summary.read == 0 {
                exit::FAILURE
            } else {
                exit::OK
            })
        }
        ImportCommand::Observations(a) => {
            let store = crate::open_store(cli).await?;
            let summary = import_observations(&store, a).await?;
            let mut out = std::io::stdout().lock();
            if cli.json {
                ndjson(&mut out, &summary)?;
            } else if summary.already_imported {
                writeln!(
                    out,
                    "{} was already imported (same content, sha256 {}): nothing changed; use --force to add its counts again",
                    a.file.display(),
                    summary.content_sha256
                )?;
            } else {
                writeln!(
                    out,
                    "{}: {} valid row(s) stored as {} merged observation key(s){}, {} invalid row(s) skipped",
                    a.file.display(),
                    summary.rows,
                    summary.keys_written,
                    if summary.resumed_after_line > 0 {
                        format!(" (resumed after line {})", summary.resumed_after_line)
                    } else {
                        String::new()
                    },
                    summary.invalid
                )?;
            }
            Ok(if summary.rows == 0 && summary.invalid > 0 {
                exit::USAGE
            } else {
                exit::OK
            })
        }
    }
}

/// What `import certs` did.
#[derive(Debug, Default, Serialize)]
pub(crate) struct CertImportSummary {
    pub files: u64,
    pub read: u64,
    pub new: u64,
    pub known: u64,
    pub unparsable: u64,
    pub problems: u64,
    pub skipped_blocks: u64,
    pub seconds: f64,
}

fn progress(what: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} {human_pos} {msg} ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(what.to_owned());
    bar
}

/// Imports certificates from files and directories; reading and parsing (rayon) run in a
/// blocking thread while batches are written.
pub(crate) async fn import_certs(
    store: &Store,
    a: &ImportCertsArgs,
) -> Result<CertImportSummary, Failure> {
    let started = Instant::now();
    let paths = a.paths.clone();
    let batch_size = a.batch_size as usize;
    let (sender, mut receiver) = mpsc::channel::<Vec<CertRecord>>(2);
    let reader = tokio::task::spawn_blocking(move || {
        let mut reader = CertReader::new(paths);
        let mut ders = Vec::with_capacity(batch_size);
        let mut problems = 0u64;
        for item in reader.by_ref() {
            match item {
                Ok(found) => {
                    ders.push(found.der);
                    if ders.len() >= batch_size {
                        let batch = std::mem::take(&mut ders);
                        if sender.blocking_send(parse_many(&batch)).is_err() {
                            break;
                        }
                    }
                }
                Err(problem) => {
                    problems += 1;
                    eprintln!("certhist: {problem}");
                }
            }
        }
        if !ders.is_empty() {
            let _ = sender.blocking_send(parse_many(&ders));
        }
        (reader.stats(), problems)
    });
    let bar = progress("certificates");
    let mut summary = CertImportSummary::default();
    while let Some(records) = receiver.recv().await {
        // Certificates are content-addressed and there is no cursor to keep with them: parts
        // committed before a failure are found stored by a re-run.
        let stats = store
            .write_certs_parallel(&records, a.writers as usize)
            .await?;
        summary.read += records.len() as u64;
        summary.new += stats.new;
        summary.known += stats.known;
        summary.unparsable += stats.unparsable;
        bar.inc(records.len() as u64);
    }
    bar.finish_and_clear();
    let (stats, problems) = reader.await.context("certificate reader thread failed")?;
    summary.files = stats.files;
    summary.problems = problems;
    summary.skipped_blocks = stats.skipped_blocks;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// What `import observations` did.
#[derive(Debug, Default, Serialize)]
pub(crate) struct ObservationImportSummary {
    pub content_sha256: String,
    pub already_imported: bool,
    pub resumed_after_line: u64,
    pub rows: u64,
    pub keys_written: u64,
    pub invalid: u64,
    pub lines: u64,
    pub seconds: f64,
}

/// SHA-256 of a file's bytes, streaming.
pub(crate) fn file_sha256(path: &Path) -> Result<[u8; 32], Failure> {
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}

/// Imports a sightings file in batches; each batch commits with the file's line cursor, so an
/// interrupted import resumes where it stopped and a finished one is not applied twice.
pub(crate) async fn import_observations(
    store: &Store,
    a: &ImportObservationsArgs,
) -> Result<ObservationImportSummary, Failure> {
    let started = Instant::now();
    let path = a.file.clone();
    let content_sha256 = {
        let p = path.clone();
        tokio::task::spawn_blocking(move || file_sha256(&p))
            .await
            .context("hashing thread failed")??
    };
    let summary = ObservationImportSummary {
        content_sha256: hex::encode(content_sha256),
        ..Default::default()
    };
    let mut conn = store.conn().await?;
    if !conn.try_lock_file(&content_sha256).await? {
        return Err(Failure::Usage(format!(
            "{} (sha256 {}) is being imported by another certhist process; wait for it to finish",
            path.display(),
            summary.content_sha256
        )));
    }
    let result = import_observations_locked(a, &mut conn, content_sha256, summary, started).await;
    conn.unlock_file(&content_sha256).await?;
    result
}

async fn import_observations_locked(
    a: &ImportObservationsArgs,
    conn: &mut certhist_store::Conn,
    content_sha256: [u8; 32],
    mut summary: ObservationImportSummary,
    started: Instant,
) -> Result<ObservationImportSummary, Failure> {
    let path = a.file.clone();
    let path_text = path.display().to_string();
    let state = {
        let tx = conn.begin().await?;
        let s = tx.import_state(&content_sha256, OBSERVATIONS_KIND).await?;
        tx.commit().await?;
        s
    };
    let resume_after = match state {
        Some(s) if s.complete && !a.force => {
            summary.already_imported = true;
            return Ok(summary);
        }
        Some(s) if !s.complete => u64::try_from(s.rows_done).unwrap_or(0),
        _ => 0,
    };
    summary.resumed_after_line = resume_after;
    let source = a.source.clone().unwrap_or_else(|| {
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "import".to_owned())
    });
    let batch_size = a.batch_size as usize;
    let (sender, mut receiver) = mpsc::channel::<(Vec<ObservationRow>, u64)>(2);
    let reader_path = path.clone();
    let reader = tokio::task::spawn_blocking(move || -> Result<(u64, u64), Failure> {
        let file = File::open(&reader_path)
            .with_context(|| format!("cannot open {}", reader_path.display()))?;
        let input =
            maybe_gunzip(file).with_context(|| format!("cannot read {}", reader_path.display()))?;
        let mut reader = ObservationReader::new(input, &source);
        let mut batch = Vec::with_capacity(batch_size);
        let mut invalid = 0u64;
        while let Some(item) = reader.next() {
            let line = reader.line();
            if line <= resume_after {
                continue;
            }
            match item {
                Ok(row) => batch.push(row),
                Err(problem) => {
                    invalid += 1;
                    eprintln!(
                        "certhist: {}:{}: {}",
                        reader_path.display(),
                        problem.line,
                        problem.message
                    );
                }
            }
            if batch.len() >= batch_size
                && sender
                    .blocking_send((std::mem::take(&mut batch), line))
                    .is_err()
            {
                return Ok((invalid, line));
            }
        }
        let lines = reader.line();
        let _ = sender.blocking_send((batch, lines));
        Ok((invalid, lines))
    });
    let bar = progress("observation rows");
    while let Some((rows, line)) = receiver.recv().await {
        let mut tx = conn.begin().await?;
        summary.keys_written += tx.write_observations(&rows).await?;
        tx.set_import_state(
            &content_sha256,
            OBSERVATIONS_KIND,
            &path_text,
            &ImportState {
                rows_done: i64::try_from(line).unwrap_or(i64::MAX),
                complete: false,
            },
        )
        .await?;
        tx.commit().await?;
        summary.rows += rows.len() as u64;
        bar.inc(rows.len() as u64);
    }
    bar.finish_and_clear();
    let (invalid, lines) = reader.await.context("observation reader thread failed")??;
    let mut tx = conn.begin().await?;
    tx.set_import_state(
        &content_sha256,
        OBSERVATIONS_KIND,
        &path_text,
        &ImportState {
            rows_done: i64::try_from(lines).unwrap_or(i64::MAX),
            complete: true,
        },
    )
    .await?;
    tx.commit().await?;
    summary.invalid = invalid;
    summary.lines = lines;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}
