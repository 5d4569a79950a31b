//! Reading certificates from files: PEM bundles, DER, base64 DER lines.
//!
//! [`CertReader`] walks paths (files, and directories recursively in sorted order), opens gzip
//! transparently (by its magic bytes, RFC 1952 §2.3.1) and yields one item per certificate found
//! or per problem met, streaming: a file of 200k certificates is never held in memory as a whole
//! (except DER files, which hold one or a few certificates).
//!
//! Formats, told apart by content, not by file name:
//! - PEM (RFC 7468): `CERTIFICATE`, `X509 CERTIFICATE` and `TRUSTED CERTIFICATE` blocks (of the
//!   last, the leading certificate; OpenSSL appends trust settings). Other blocks (`PRIVATE KEY`,
//!   …) are skipped and counted; any text between blocks is ignored.
//! - Base64 DER lines: one certificate per line (`MII…`), with other text lines ignored.
//! - DER: a file starting with a SEQUENCE; several concatenated certificates are split.
//!
//! DER that decodes from base64 but is not a valid certificate is not a problem here: it is
//! yielded, and later stored with its parse error. Problems (unreadable file, truncated PEM block,
//! bad base64, file without certificates) are yielded as [`ReadProblem`]s and reading goes on.

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use flate2::read::MultiGzDecoder;

use certhist_x509::der_element_len;

/// Standard alphabet, padding optional (some tools strip it).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Longest text line we accept (a base64 line of a 48 KiB certificate is 64 KiB).
const MAX_LINE_BYTES: usize = 1 << 20;

/// Where a certificate was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file (as reached from the given path).
    pub path: PathBuf,
    /// 1-based line of the PEM `BEGIN` line or of the base64 line; `None` for DER files.
    pub line: Option<u64>,
    /// 0-based index of the certificate among those found in this file.
    pub index: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}", self.path.display()),
            None => write!(f, "{}#{}", self.path.display(), self.index),
        }
    }
}

/// One certificate's DER as found in a file (not yet parsed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundCert {
    /// The DER bytes.
    pub der: Vec<u8>,
    /// Where it came from.
    pub origin: Origin,
}

/// Something that went wrong while reading; reading continues after it.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {kind}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ReadProblem {
    /// The file or directory concerned.
    pub path: PathBuf,
    /// 1-based line, when the problem is at a place in a text file.
    pub line: Option<u64>,
    /// What went wrong.
    pub kind: ProblemKind,
}

/// Kinds of [`ReadProblem`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProblemKind {
    /// The file or directory could not be opened or read (including corrupt gzip data).
    #[error("cannot read: {0}")]
    Io(#[source] io::Error),
    /// A PEM certificate block has no END line (the file ends or another block begins first).
    #[error("PEM block \"{label}\" is not terminated by an END line")]
    TruncatedPem {
        /// The block's label, e.g. `CERTIFICATE`.
        label: String,
    },
    /// A PEM certificate block or a base64 line is not valid base64.
    #[error("invalid base64: {0}")]
    BadBase64(String),
    /// A line is longer than any certificate line could be; it was skipped.
    #[error("line longer than {MAX_LINE_BYTES} bytes skipped")]
    LineTooLong,
    /// The file holds no certificate in any supported format.
    #[error("no certificate found")]
    NoCertificate,
}

/// Counters kept while reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Files opened.
    pub files: u64,
    /// Certificates yielded.
    pub certificates: u64,
    /// PEM blocks of other types (keys, CRLs, …) skipped.
    pub skipped_blocks: u64,
    /// Problems yielded.
    pub problems: u64,
}

/// Streams certificates out of files and directories; see the module documentation.
///
/// Iterating yields `Ok(FoundCert)` per certificate and `Err(ReadProblem)` per problem, in a
/// deterministic order (paths as given, directory entries sorted by name).
#[derive(Debug)]
pub struct CertReader {
    /// Paths still to visit, as a stack (next on top).
    todo: Vec<PathBuf>,
    current: Option<FileState>,
    queue: VecDeque<Result<FoundCert, ReadProblem>>,
    stats: ReadStats,
}

impl CertReader {
    /// A reader over the given paths (files or directories).
    pub fn new<I, P>(paths: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        let mut todo: Vec<PathBuf> = paths.into_iter().map(Into::into).collect();
        todo.reverse();
        CertReader {
            todo,
            current: None,
            queue: VecDeque::new(),
            stats: ReadStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> ReadStats {
        self.stats
    }

    /// Up to `max` certificates, and the problems met on the way (for parsing in parallel
    /// batches). An empty certificate list and no problems means the end.
    pub fn next_batch(&mut self, max: usize) -> (Vec<FoundCert>, Vec<ReadProblem>) {
        let mut certs = Vec::new();
        let mut problems = Vec::new();
        while certs.len() < max {
            match self.next() {
                Some(Ok(c)) => certs.push(c),
                Some(Err(p)) => problems.push(p),
                None => break,
            }
        }
        (certs, problems)
    }

    fn problem(path: &Path, line: Option<u64>, kind: ProblemKind) -> ReadProblem {
        ReadProblem {
            path: path.to_owned(),
            line,
            kind,
        }
    }

    /// Expands a directory or opens a file; queues problems.
    fn visit(&mut self, path: PathBuf) {
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                self.queue
                    .push_back(Err(Self::problem(&path, None, ProblemKind::Io(e))));
                return;
            }
        };
        if meta.is_dir() {
            let entries = match std::fs::read_dir(&path) {
                Ok(rd) => rd.collect::<Result<Vec<_>, _>>(),
                Err(e) => Err(e),
            };
            match entries {
                Ok(entries) => {
                    let mut children: Vec<PathBuf> = entries
                        .into_iter()
                        .filter(|e| {
                            // Do not follow symlinked directories (loops); symlinked files are read.
                            let is_link_to_dir =
                                e.file_type().map(|t| t.is_symlink()).unwrap_or(false)
                                    && e.path().is_dir();
                            !is_link_to_dir
                        })
                        .map(|e| e.path())
                        .collect();
                    children.sort();
                    children.reverse();
                    self.todo.extend(children);
                }
                Err(e) => self
                    .queue
                    .push_back(Err(Self::problem(&path, None, ProblemKind::Io(e)))),
            }
            return;
        }
        self.stats.files += 1;
        match open_file(&path) {
            Ok(state) => self.current = Some(state),
            Err(e) => self
                .queue
                .push_back(Err(Self::problem(&path, None, ProblemKind::Io(e)))),
        }
    }
}

impl Iterator for CertReader {
    type Item = Result<FoundCert, ReadProblem>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                match &item {
                    Ok(_) => self.stats.certificates += 1,
                    Err(_) => self.stats.problems += 1,
                }
                return Some(item);
            }
            if let Some(state) = self.current.as_mut() {
                let more = state.step(&mut self.queue, &mut self.stats);
                if !more {
                    self.current = None;
                }
                continue;
            }
            let path = self.todo.pop()?;
            self.visit(path);
        }
    }
}

/// Opens a file, un-gzipping when it starts with the gzip magic, and decides DER vs. text.
fn open_file(path: &Path) -> io::Result<FileState> {
    let mut file = BufReader::new(File::open(path)?);
    let is_gzip = file.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let mut reader: Box<dyn BufRead + Send> = if is_gzip {
        Box::new(BufReader::new(MultiGzDecoder::new(file)))
    } else {
        Box::new(file)
    };
    let head = reader.fill_buf()?;
    // A certificate is a SEQUENCE longer than 127 bytes: 0x30 then a long-form length. Text
    // starting with the digit '0' (0x30) is followed by a printable byte, never by 0x81..0x84.
    let is_der = matches!(head, [0x30, 0x81..=0x84, ..]);
    Ok(if is_der {
        FileState::Der {
            path: path.to_owned(),
            reader,
        }
    } else {
        FileState::Text(TextFile {
            path: path.to_owned(),
            reader,
            line_no: 0,
            block: None,
            found: 0,
            problems: 0,
            buf: Vec::new(),
        })
    })
}

enum FileState {
    /// A DER file, read whole on the first step.
    Der {
        path: PathBuf,
        reader: Box<dyn BufRead + Send>,
    },
    /// A text file, read line by line.
    Text(TextFile),
}

impl fmt::Debug for FileState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileState::Der { path, .. } => write!(f, "Der({})", path.display()),
            FileState::Text(t) => write!(f, "Text({}:{})", t.path.display(), t.line_no),
        }
    }
}

type Queue = VecDeque<Result<FoundCert, ReadProblem>>;

impl FileState {
    /// Does some reading, queueing what it finds; false when the file is done.
    fn step(&mut self, queue: &mut Queue, stats: &mut ReadStats) -> bool {
        match self {
            FileState::Der { path, reader } => {
                let mut data = Vec::new();
                if let Err(e) = reader.read_to_end(&mut data) {
                    queue.push_back(Err(CertReader::problem(path, None, ProblemKind::Io(e))));
                    return false;
                }
                for (index, der) in split_der(data).into_iter().enumerate() {
                    queue.push_back(Ok(FoundCert {
                        der,
                        origin: Origin {
                            path: path.clone(),
                            line: None,
                            index,
                        },
                    }));
                }
                false
            }
            FileState::Text(t) => t.step(queue, stats),
        }
    }
}

/// Splits concatenated DER elements; when the data is not a clean sequence of SEQUENCEs it is
/// kept whole (one certificate, which will then carry its parse error).
fn split_der(data: Vec<u8>) -> Vec<Vec<u8>> {
    let mut parts = Vec::new();
    let mut rest = data.as_slice();
    while !rest.is_empty() {
        match der_element_len(rest) {
            Some(len) if rest.first() == Some(&0x30) => {
                let (head, tail) = rest.split_at(len);
                parts.push(head.to_vec());
                rest = tail;
            }
            _ => return vec![data],
        }
    }
    if parts.len() <= 1 {
        return vec![data];
    }
    parts
}

/// Labels of PEM blocks holding a certificate (RFC 7468 §5 and the legacy OpenSSL labels).
fn is_cert_label(label: &str) -> bool {
    matches!(
        label,
        "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE"
    )
}

/// A PEM block being read.
struct Block {
    label: String,
    start_line: u64,
    is_cert: bool,
    base64: Vec<u8>,
}

struct TextFile {
    path: PathBuf,
    reader: Box<dyn BufRead + Send>,
    line_no: u64,
    block: Option<Block>,
    found: usize,
    problems: usize,
    buf: Vec<u8>,
}

/// Lines read per step (bounded work between yields).
const LINES_PER_STEP: usize = 256;

impl TextFile {
    fn step(&mut self, queue: &mut Queue, stats: &mut ReadStats) -> bool {
        for _ in 0..LINES_PER_STEP {
            self.buf.clear();
            let read = (&mut self.reader)
                .take(MAX_LINE_BYTES as u64 + 1)
                .read_until(b'\n', &mut self.buf);
            match read {
                Ok(0) => {
                    self.finish(queue);
                    return false;
                }
                Ok(_) => {}
                Err(e) => {
                    self.line_no += 1;
                    self.push_problem(queue, Some(self.line_no), ProblemKind::Io(e));
                    self.block = None;
                    return false;
                }
            }
            self.line_no += 1;
            if self.buf.len() > MAX_LINE_BYTES && !self.buf.ends_with(b"\n") {
                // Skip the rest of the over-long line.
                let mut sink = Vec::new();
                loop {
                    sink.clear();
                    match (&mut self.reader)
                        .take(MAX_LINE_BYTES as u64)
                        .read_until(b'\n', &mut sink)
                    {
                        Ok(0) => break,
                        Ok(_) if sink.ends_with(b"\n") => break,
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
                self.push_problem(queue, Some(self.line_no), ProblemKind::LineTooLong);
                continue;
            }
            let line = std::mem::take(&mut self.buf);
            self.line(trim_ascii(&line), queue, stats);
            self.buf = line;
        }
        true
    }

    fn push_problem(&mut self, queue: &mut Queue, line: Option<u64>, kind: ProblemKind) {
        self.problems += 1;
        queue.push_back(Err(CertReader::problem(&self.path, line, kind)));
    }

    fn push_cert(&mut self, queue: &mut Queue, der: Vec<u8>, line: u64) {
        queue.push_back(Ok(FoundCert {
            der,
            origin: Origin {
                path: self.path.clone(),
                line: Some(line),
                index: self.found,
            },
        }));
        self.found += 1;
    }

    fn line(&mut self, line: &[u8], queue: &mut Queue, stats: &mut ReadStats) {
        if let Some(label) = pem_boundary(line, b"-----BEGIN ") {
            if let Some(open) = self.block.take() {
                if open.is_cert {
                    self.push_problem(
                        queue,
                        Some(open.start_line),
                        ProblemKind::TruncatedPem { label: open.label },
                    );
                }
            }
            let is_cert = is_cert_label(&label);
            if !is_cert {
                stats.skipped_blocks += 1;
            }
            self.block = Some(Block {
                label,
                start_line: self.line_no,
                is_cert,
                base64: Vec::new(),
            });
            return;
        }
        if let Some(block) = self.block.as_mut() {
            if pem_boundary(line, b"-----END ").is_some() {
                if let Some(block) = self.block.take() {
                    if block.is_cert {
                        self.end_cert_block(block, queue);
                    }
                }
                return;
            }
            // RFC 1421 encapsulated headers (`Proc-Type: …`) and blank lines carry no base64.
            if block.is_cert && !line.contains(&b':') {
                block
                    .base64
                    .extend(line.iter().filter(|b| !b.is_ascii_whitespace()));
            }
            return;
        }
        // Outside blocks: a base64 DER certificate on its own line, or text to ignore. DER
        // certificates start 0x30 0x8x, which base64 writes as "MI".
        if line.starts_with(b"MI")
            && line.len() >= 64
            && line
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
        {
            match BASE64.decode(line) {
                Ok(der) => self.push_cert(queue, der, self.line_no),
                Err(e) => self.push_problem(
                    queue,
                    Some(self.line_no),
                    ProblemKind::BadBase64(e.to_string()),
                ),
            }
        }
    }

    fn end_cert_block(&mut self, block: Block, queue: &mut Queue) {
        match BASE64.decode(&block.base64) {
            Ok(mut der) => {
                if block.label == "TRUSTED CERTIFICATE" {
                    // OpenSSL's X509_AUX: the certificate, then trust settings.
                    if let Some(len) = der_element_len(&der) {
                        der.truncate(len);
                    }
                }
                self.push_cert(queue, der, block.start_line);
            }
            Err(e) => self.push_problem(
                queue,
                Some(block.start_line),
                ProblemKind::BadBase64(e.to_string()),
            ),
        }
    }

    fn finish(&mut self, queue: &mut Queue) {
        if let Some(open) = self.block.take() {
            if open.is_cert {
                self.push_problem(
                    queue,
                    Some(open.start_line),
                    ProblemKind::TruncatedPem { label: open.label },
                );
            }
        }
        if self.found == 0 && self.problems == 0 {
            self.push_problem(queue, None, ProblemKind::NoCertificate);
        }
    }
}

fn trim_ascii(line: &[u8]) -> &[u8] {
    let start = line
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(line.len());
    let end = line
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |p| p + 1);
    line.get(start..end).unwrap_or_default()
}

/// The label of a `-----BEGIN LABEL-----` / `-----END LABEL-----` line.
fn pem_boundary(line: &[u8], prefix: &[u8]) -> Option<String> {
    let inner = line.strip_prefix(prefix)?.strip_suffix(b"-----")?;
    let label = std::str::from_utf8(inner).ok()?;
    Some(label.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries() {
        assert_eq!(
            pem_boundary(b"-----BEGIN X509 CERTIFICATE-----", b"-----BEGIN ").as_deref(),
            Some("X509 CERTIFICATE")
        );
        assert!(pem_boundary(b"-----BEGIN CERTIFICATE", b"-----BEGIN ").is_none());
        assert_eq!(trim_ascii(b"  ab \r\n"), b"ab");
        assert_eq!(trim_ascii(b" \r\n"), b"");
    }

    #[test]
    fn split_concatenated_der() {
        let a = vec![0x30, 0x03, 1, 2, 3];
        let b = vec![0x30, 0x01, 9];
        let both = [a.clone(), b.clone()].concat();
        assert_eq!(split_der(both), vec![a.clone(), b]);
        let junk = [a.clone(), vec![0xff]].concat();
        assert_eq!(split_der(junk.clone()), vec![junk]);
        assert_eq!(split_der(a.clone()), vec![a]);
    }
}
