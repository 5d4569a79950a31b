//! Following growing sensor logs (`--follow`): like `tail -F`, across rotation and truncation,
//! committing every batch together with the file's cursor.
//!
//! Each file has one cursor in `followed_files` (kind, device, inode → byte offset of the end
//! of the last complete line consumed, lines, records, and a hash of the file's first bytes;
//! [`certhist_files::cursor`]), shared with the plain import of the same file (which resumes
//! after a follow's cursor and leaves its own for a follow after it). A batch's
//! certificates, sightings and SNI names commit in the same transaction as the cursor after its
//! last line, so a restart resumes exactly after the last committed line: nothing is counted
//! twice and nothing committed is lost. Rotation (the path names another inode, or is gone) is
//! noticed once the open file is read to its end: the rest of the old file was read, the new
//! file is opened and read from its own cursor (0 for a new file). Truncation (the file is
//! shorter than the cursor) restarts the file at 0. A line without its line end yet is left
//! for the next read. Compressed files cannot be followed (import them without --follow).

use std::future::Future;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use certhist_files::{ImportError, ImportEvent, Item, Problem, ProgressSink};
use certhist_model::PassiveSighting;
use certhist_store::Store;
use serde::Serialize;

use crate::{trim_line_end, LineParser, MAX_LINE_BYTES};

/// A log format that can be followed.
pub trait FollowFormat: Send + Sync {
    /// The cursor's kind (`zeek-ssl`, `suricata-eve`).
    fn follow_kind(&self) -> &str;
    /// The label stored with the sightings.
    fn follow_source(&self) -> &str;
    /// A line parser for the log at `path`.
    fn parser(&self, path: &Path) -> std::io::Result<Box<dyn LineParser>>;
}

impl FollowFormat for crate::ZeekSsl {
    fn follow_kind(&self) -> &str {
        "zeek-ssl"
    }
    fn follow_source(&self) -> &str {
        &self.source
    }
    fn parser(&self, path: &Path) -> std::io::Result<Box<dyn LineParser>> {
        Ok(Box::new(crate::ZeekParser::for_ssl_log(path)?))
    }
}

impl FollowFormat for crate::SuricataEve {
    fn follow_kind(&self) -> &str {
        "suricata-eve"
    }
    fn follow_source(&self) -> &str {
        &self.source
    }
    fn parser(&self, _path: &Path) -> std::io::Result<Box<dyn LineParser>> {
        Ok(Box::new(crate::EveParser))
    }
}

/// How to follow.
#[derive(Clone, Debug)]
pub struct FollowOptions {
    /// Records per batch (one transaction with the cursor).
    pub batch_items: usize,
    /// Wait between checks when no log grew.
    pub poll: Duration,
    /// Stop when no log grew for this long (`None`: until `stop`).
    pub exit_after_idle: Option<Duration>,
}

/// What following one path did (this run).
#[derive(Clone, Debug, Default, Serialize)]
pub struct FollowSummary {
    /// The followed path.
    pub path: String,
    /// Files read under it (1 + rotations seen).
    pub files: u64,
    /// Records read (sightings, handshakes without certificate).
    pub records: u64,
    /// Sightings with a certificate.
    pub sightings: u64,
    /// Bad records skipped (each reported as a progress event).
    pub problems: u64,
}

/// The open file of a followed path.
struct Open {
    reader: BufReader<std::fs::File>,
    dev: u64,
    inode: u64,
    /// End of the last complete line consumed.
    offset: u64,
    /// Lines consumed (for problem positions).
    line: u64,
    records: u64,
    parser: Box<dyn LineParser>,
    partial: Vec<u8>,
}

struct Followed {
    path: PathBuf,
    key: String,
    open: Option<Open>,
    summary: FollowSummary,
}

use certhist_files::cursor::identity;

/// Follows `paths` until `stop` completes or (with [`FollowOptions::exit_after_idle`]) the logs
/// stop growing; see the module documentation.
pub async fn follow<F: FollowFormat + ?Sized>(
    store: &Store,
    format: Arc<F>,
    paths: &[PathBuf],
    options: &FollowOptions,
    progress: &dyn ProgressSink,
    stop: impl Future<Output = ()>,
) -> Result<Vec<FollowSummary>, ImportError> {
    let mut stop = pin!(stop);
    let mut all: Vec<Followed> = paths
        .iter()
        .map(|p| Followed {
            path: p.clone(),
            key: p.display().to_string(),
            open: None,
            summary: FollowSummary {
                path: p.display().to_string(),
                ..FollowSummary::default()
            },
        })
        .collect();
    let mut idle = Duration::ZERO;
    loop {
        let mut grew = false;
        for f in &mut all {
            grew |= step(store, &*format, f, options, progress).await?;
        }
        if grew {
            idle = Duration::ZERO;
            continue;
        }
        if options.exit_after_idle.is_some_and(|limit| idle >= limit) {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(options.poll) => idle += options.poll,
            _ = &mut stop => break,
        }
    }
    Ok(all.into_iter().map(|f| f.summary).collect())
}

/// Opens the file now at `f.path` at its cursor (headers before the cursor are fed to the
/// parser). `Ok(false)` when there is no file.
async fn open_at_cursor<F: FollowFormat + ?Sized>(
    store: &Store,
    format: &F,
    f: &mut Followed,
    progress: &dyn ProgressSink,
) -> Result<bool, ImportError> {
    let file = match std::fs::File::open(&f.path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(ImportError::io(&f.path, e)),
    };
    let meta = file.metadata().map_err(|e| ImportError::io(&f.path, e))?;
    let (dev, inode) = identity(&meta);
    // Truncated in place, or a new file on a reused inode: no cursor (read from the start).
    let cursor = {
        let mut conn = store.conn().await?;
        let mut tx = conn.begin().await?;
        certhist_files::cursor::stored(&mut tx, format.follow_kind(), &f.path, &meta).await?
    };
    let cursor = cursor.unwrap_or_default();
    let mut parser = format
        .parser(&f.path)
        .map_err(|e| ImportError::io(&f.path, e))?;
    let mut reader = BufReader::new(file);
    let mut line = 0;
    if cursor.offset > 0 {
        // Headers (Zeek TSV `#fields` …) before the cursor; data lines there were committed.
        let mut prefix = (&mut reader).take(cursor.offset);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            if prefix
                .read_until(b'\n', &mut buf)
                .map_err(|e| ImportError::io(&f.path, e))?
                == 0
            {
                break;
            }
            line += 1;
            if buf.first() == Some(&b'#') {
                let _ = parser.line(trim_line_end(&buf), line);
            }
        }
        reader
            .seek(SeekFrom::Start(cursor.offset))
            .map_err(|e| ImportError::io(&f.path, e))?;
    }
    progress.event(&ImportEvent::FileStarted {
        path: &f.path,
        kind: format.follow_kind(),
        resumed_after: cursor.offset,
    });
    f.summary.files += 1;
    f.open = Some(Open {
        reader,
        dev,
        inode,
        offset: cursor.offset,
        line,
        records: cursor.records,
        parser,
        partial: Vec::new(),
    });
    Ok(true)
}

/// Reads and commits what one followed path has now; `Ok(true)` if anything was consumed.
async fn step<F: FollowFormat + ?Sized>(
    store: &Store,
    format: &F,
    f: &mut Followed,
    options: &FollowOptions,
    progress: &dyn ProgressSink,
) -> Result<bool, ImportError> {
    if f.open.is_none() && !open_at_cursor(store, format, f, progress).await? {
        return Ok(false);
    }
    let Some(open) = f.open.as_mut() else {
        return Ok(false);
    };
    open.parser.refresh();
    let mut ders: Vec<Vec<u8>> = Vec::new();
    let mut sightings: Vec<PassiveSighting> = Vec::new();
    let mut problems: Vec<Problem> = Vec::new();
    let start = open.offset;
    let mut items = 0usize;
    let mut eof = false;
    while items < options.batch_items.max(1) {
        let n = open
            .reader
            .read_until(b'\n', &mut open.partial)
            .map_err(|e| ImportError::io(&f.path, e))?;
        if n == 0 || open.partial.last() != Some(&b'\n') {
            if open.partial.len() > MAX_LINE_BYTES {
                // A runaway line without end: skip what is there.
                open.offset += open.partial.len() as u64;
                open.partial.clear();
                problems.push(Problem {
                    file: f.key.clone(),
                    line: open.line + 1,
                    message: format!("line longer than {MAX_LINE_BYTES} bytes"),
                });
            }
            eof = true;
            break;
        }
        open.offset += open.partial.len() as u64;
        open.line += 1;
        let item = open.parser.line(trim_line_end(&open.partial), open.line);
        open.partial.clear();
        match item {
            Some(Item::Passive { certs, sighting }) => {
                items += 1;
                open.records += 1;
                f.summary.records += 1;
                if sighting.leaf.is_some() {
                    f.summary.sightings += 1;
                }
                ders.extend(certs);
                sightings.push(*sighting);
            }
            Some(Item::Problem(line, message)) => {
                items += 1;
                f.summary.problems += 1;
                problems.push(Problem {
                    file: f.key.clone(),
                    line,
                    message,
                });
            }
            _ => {}
        }
    }
    for p in &problems {
        progress.event(&ImportEvent::Problem(p));
    }
    let consumed = open.offset > start;
    if consumed {
        ders.sort();
        ders.dedup();
        let certs = certhist_x509::parse_many(&ders);
        let mut conn = store.conn().await?;
        let mut tx = conn.begin().await?;
        tx.write_certs(&certs).await?;
        tx.write_passive_batch(&sightings, format.follow_source())
            .await?;
        let cursor = certhist_files::cursor::at(
            open.reader.get_ref(),
            (open.dev, open.inode),
            open.offset,
            open.line,
            open.records,
        )
        .map_err(|e| ImportError::io(&f.path, e))?;
        tx.set_follow_cursor(&f.key, format.follow_kind(), &cursor)
            .await?;
        tx.commit().await?;
        progress.event(&ImportEvent::Progress {
            items: f.summary.records,
        });
    }
    if eof && open.partial.is_empty() {
        // At the end of the open file: rotated or truncated?
        match std::fs::metadata(&f.path) {
            Ok(meta) if identity(&meta) == (open.dev, open.inode) => {
                if meta.len() < open.offset {
                    f.open = None;
                    return Ok(true);
                }
            }
            // Gone or another file: the old one was read to its end.
            _ => {
                f.open = None;
                return Ok(true);
            }
        }
    }
    Ok(consumed)
}
