//! Reading certificates from files: certificates found anywhere in text, DER files.
//!
//! [`CertReader`] walks paths (files, and directories recursively in sorted order); each file is
//! read by a [`CertFileReader`], which the import driver also uses
//! ([`crate::formats::CertificateFiles`]). Compression (gzip, bzip2) is told apart by magic bytes
//! and undone ([`crate::input`]). Reading streams: a file of 200k certificates is never held in
//! memory as a whole (except DER files, which hold one or a few certificates).
//!
//! Formats, told apart by content, not by file name:
//! - Text: PEM blocks (also with escaped newlines inside JSON strings and log lines), base64 DER
//!   lines and base64 DER inside JSON fields or CSV columns; see [`crate::findcerts`] for the
//!   rules. Any other text is ignored.
//! - DER: a file starting with a SEQUENCE; several concatenated certificates are split.
//!
//! DER that decodes from a PEM block or a base64 line but is not a valid certificate is not a
//! problem here: it is yielded, and later stored with its parse error. Problems (unreadable file,
//! truncated PEM block, bad base64, file without certificates) are yielded as [`ReadProblem`]s
//! with file and line, and reading goes on.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, BufRead, Read};
use std::path::{Path, PathBuf};

use certhist_x509::der_element_len;

use crate::findcerts::{Found, TextScanner};
use crate::input::{Input, Walk};
use crate::record::{Item, ItemReader, Record};

/// Longest text line we read (a minified JSON document with many chains is one line).
pub const MAX_LINE_BYTES: usize = 64 << 20;

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
    /// A PEM certificate block has no END boundary (the file ends or another block begins
    /// first).
    #[error("PEM block \"{label}\" is not terminated by an END line")]
    TruncatedPem {
        /// The block's label, e.g. `CERTIFICATE`.
        label: String,
    },
    /// A PEM certificate block or a base64 line is not valid base64.
    #[error("invalid base64: {0}")]
    BadBase64(String),
    /// A line is longer than [`MAX_LINE_BYTES`]; it was skipped.
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
    walk: Walk,
    current: Option<CertFileReader>,
    stats: ReadStats,
}

impl CertReader {
    /// A reader over the given paths (files or directories).
    pub fn new<I, P>(paths: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        CertReader {
            walk: Walk::new(paths),
            current: None,
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
}

impl Iterator for CertReader {
    type Item = Result<FoundCert, ReadProblem>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(file) = self.current.as_mut() {
                match file.next_found() {
                    Some(FileItem::Cert(c)) => {
                        self.stats.certificates += 1;
                        return Some(Ok(c));
                    }
                    Some(FileItem::Problem(p)) => {
                        self.stats.problems += 1;
                        return Some(Err(p));
                    }
                    Some(FileItem::Skipped(_)) => {
                        self.stats.skipped_blocks += 1;
                        continue;
                    }
                    None => {
                        self.current = None;
                        continue;
                    }
                }
            }
            let path = match self.walk.next()? {
                Ok(p) => p,
                Err((path, e)) => {
                    self.stats.problems += 1;
                    return Some(Err(ReadProblem {
                        path,
                        line: None,
                        kind: ProblemKind::Io(e),
                    }));
                }
            };
            self.stats.files += 1;
            match crate::input::open(&path).and_then(|input| CertFileReader::new(&path, input)) {
                Ok(reader) => self.current = Some(reader),
                Err(e) => {
                    self.stats.problems += 1;
                    return Some(Err(ReadProblem {
                        path,
                        line: None,
                        kind: ProblemKind::Io(e),
                    }));
                }
            }
        }
    }
}

/// One thing a [`CertFileReader`] found.
#[derive(Debug)]
#[non_exhaustive]
pub enum FileItem {
    /// A certificate.
    Cert(FoundCert),
    /// A problem; reading goes on.
    Problem(ReadProblem),
    /// A PEM block that holds no certificate (a key, a CRL), with the line it starts on.
    Skipped(u64),
}

/// Finds the certificates of one opened (decompressed) file: DER, or text read line by line.
pub struct CertFileReader {
    path: PathBuf,
    state: FileState,
    queue: VecDeque<Found>,
    /// Certificates yielded so far (the next one's index).
    index: usize,
}

enum FileState {
    /// A DER file, read whole on the first step.
    Der(Input),
    /// A text file, read line by line.
    Text {
        reader: Input,
        scanner: TextScanner,
        line_no: u64,
        buf: Vec<u8>,
    },
    /// Nothing more to read.
    Done,
}

impl fmt::Debug for CertFileReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            FileState::Der(_) => "der".to_owned(),
            FileState::Text { line_no, .. } => format!("text:{line_no}"),
            FileState::Done => "done".to_owned(),
        };
        f.debug_struct("CertFileReader")
            .field("path", &self.path)
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

/// Lines read per step (bounded work between yields).
const LINES_PER_STEP: usize = 256;

impl CertFileReader {
    /// Reads `input` (the decompressed content of `path`); DER or text is decided by its first
    /// bytes.
    pub fn new(path: &Path, mut input: Input) -> io::Result<Self> {
        let head = input.fill_buf()?;
        // A certificate is a SEQUENCE longer than 127 bytes: 0x30 then a long-form length. Text
        // starting with the digit '0' (0x30) is followed by a printable byte, never by 0x81..0x84.
        let is_der = matches!(head, [0x30, 0x81..=0x84, ..]);
        let state = if is_der {
            FileState::Der(input)
        } else {
            FileState::Text {
                reader: input,
                scanner: TextScanner::default(),
                line_no: 0,
                buf: Vec::new(),
            }
        };
        Ok(CertFileReader {
            path: path.to_owned(),
            state,
            queue: VecDeque::new(),
            index: 0,
        })
    }

    /// The next certificate, problem or skipped block; `None` at the end of the file.
    pub fn next_found(&mut self) -> Option<FileItem> {
        loop {
            if let Some(found) = self.queue.pop_front() {
                return Some(match found {
                    Found::Cert { der, line } => {
                        let origin = Origin {
                            path: self.path.clone(),
                            line: (line > 0).then_some(line),
                            index: self.index,
                        };
                        self.index += 1;
                        FileItem::Cert(FoundCert { der, origin })
                    }
                    Found::Problem { line, kind } => FileItem::Problem(ReadProblem {
                        path: self.path.clone(),
                        line,
                        kind,
                    }),
                    Found::Skipped { line } => FileItem::Skipped(line),
                });
            }
            if matches!(self.state, FileState::Done) {
                return None;
            }
            self.step();
        }
    }

    /// Reads some more, queueing what it finds.
    fn step(&mut self) {
        let mut out = Vec::new();
        match std::mem::replace(&mut self.state, FileState::Done) {
            FileState::Done => {}
            FileState::Der(mut reader) => {
                let mut data = Vec::new();
                match reader.read_to_end(&mut data) {
                    Ok(_) => {
                        for der in split_der(data) {
                            out.push(Found::Cert { der, line: 0 });
                        }
                    }
                    Err(e) => out.push(Found::Problem {
                        line: None,
                        kind: ProblemKind::Io(e),
                    }),
                }
            }
            FileState::Text {
                mut reader,
                mut scanner,
                mut line_no,
                mut buf,
            } => {
                let mut more = true;
                for _ in 0..LINES_PER_STEP {
                    buf.clear();
                    let read = (&mut reader)
                        .take(MAX_LINE_BYTES as u64 + 1)
                        .read_until(b'\n', &mut buf);
                    match read {
                        Ok(0) => {
                            scanner.finish(&mut out);
                            more = false;
                            break;
                        }
                        Ok(_) => {}
                        Err(e) => {
                            line_no += 1;
                            out.push(Found::Problem {
                                line: Some(line_no),
                                kind: ProblemKind::Io(e),
                            });
                            more = false;
                            break;
                        }
                    }
                    line_no += 1;
                    if buf.len() > MAX_LINE_BYTES && !buf.ends_with(b"\n") {
                        skip_rest_of_line(&mut reader);
                        scanner.problems += 1;
                        out.push(Found::Problem {
                            line: Some(line_no),
                            kind: ProblemKind::LineTooLong,
                        });
                        continue;
                    }
                    scanner.line(line_no, &buf, &mut out);
                }
                if more {
                    self.state = FileState::Text {
                        reader,
                        scanner,
                        line_no,
                        buf,
                    };
                }
            }
        }
        self.queue.extend(out);
    }
}

fn skip_rest_of_line(reader: &mut Input) {
    let mut sink = Vec::new();
    loop {
        sink.clear();
        match reader
            .take(MAX_LINE_BYTES as u64)
            .read_until(b'\n', &mut sink)
        {
            Ok(0) => break,
            Ok(_) if sink.ends_with(b"\n") => break,
            Ok(_) => {}
            Err(_) => break,
        }
    }
}

impl ItemReader for CertFileReader {
    /// One item per certificate (a record of one certificate, no sighting), problem or skipped
    /// block. Never `Err`: I/O errors are problems that end the file.
    fn next_item(&mut self) -> io::Result<Option<Item>> {
        Ok(self.next_found().map(|found| match found {
            FileItem::Cert(c) => Item::Record(Record {
                line: c.origin.line.unwrap_or(0),
                certs: vec![c.der],
                sightings: Vec::new(),
            }),
            FileItem::Problem(p) => Item::Problem(p.line.unwrap_or(0), p.kind.to_string()),
            FileItem::Skipped(line) => Item::Ignored(line),
        }))
    }
}

/// Splits concatenated DER elements; when the data is not a clean sequence of SEQUENCEs it is
/// kept whole (one certificate, which will then carry its parse error).
fn split_der(data: Vec<u8>) -> Vec<Vec<u8>> {
    let mut parts = Vec::new();
    let mut rest = data.as_slice();
    while !rest.is_empty() {
        match der_element_len(rest) {
            Some(len) if rest.first() == Some(&0x30) && len <= rest.len() => {
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

#[cfg(test)]
mod tests {
    use super::*;

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

    /// Found by fuzzing (`fuzz/`, target `certfile`): a PEM block whose body holds no base64
    /// gave a certificate of zero bytes. It is a problem, never a certificate.
    #[test]
    fn fuzz_regression_empty_pem_body() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/data/certs/fuzz-regressions"
        );
        let crash = std::fs::read(format!("{dir}/certfile-empty-pem-body")).unwrap();
        let inputs: [&[u8]; 3] = [
            &crash,
            b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
            b"-----BEGIN CERTIFICATE-----\n====\n-----END CERTIFICATE-----\n",
        ];
        for data in inputs {
            let input: Input = Box::new(std::io::Cursor::new(data.to_vec()));
            let mut reader = CertFileReader::new(Path::new("x.pem"), input).unwrap();
            let mut problems = 0;
            while let Some(item) = reader.next_found() {
                match item {
                    FileItem::Cert(c) => assert!(!c.der.is_empty(), "an empty certificate"),
                    FileItem::Problem(_) => problems += 1,
                    FileItem::Skipped(_) => {}
                }
            }
            assert!(problems > 0, "the empty block is reported");
        }
    }
}
