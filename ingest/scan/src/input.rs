//! Opening scan files: transparent gzip / bzip2 decompression (told apart by magic bytes, not by
//! file name), content hashing for re-import detection, and a line-counting reader.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use certhist_model::Sha256;
use sha2::Digest;

use crate::ScanError;

/// Read buffer size for scan files.
const BUF_BYTES: usize = 256 * 1024;

/// A decompressed, buffered reader over a scan file.
pub type Input = Box<dyn BufRead + Send>;

/// Opens `path`, decompressing gzip (RFC 1952, also multi-member) or bzip2 when its first bytes say
/// so; anything else is read as is.
pub fn open(path: &Path) -> Result<Input, ScanError> {
    let file = File::open(path).map_err(|e| ScanError::io(path, e))?;
    let mut reader = BufReader::with_capacity(BUF_BYTES, file);
    let head = reader.fill_buf().map_err(|e| ScanError::io(path, e))?;
    let boxed: Input = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(BufReader::with_capacity(
            BUF_BYTES,
            flate2::bufread::MultiGzDecoder::new(reader),
        ))
    } else if head.starts_with(b"BZh") {
        Box::new(BufReader::with_capacity(
            BUF_BYTES,
            bzip2::bufread::MultiBzDecoder::new(reader),
        ))
    } else {
        Box::new(reader)
    };
    Ok(boxed)
}

/// SHA-256 of the file's bytes as stored (compressed or not): the identity of an import.
pub fn content_sha256(path: &Path) -> Result<Sha256, ScanError> {
    let mut file = File::open(path).map_err(|e| ScanError::io(path, e))?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; BUF_BYTES];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ScanError::io(path, e)),
        };
        hasher.update(buf.get(..n).unwrap_or_default());
    }
    Ok(hasher.finalize().into())
}

/// Reads lines as bytes (no UTF-8 requirement), numbering them from 1, with the line ending
/// (`\n` or `\r\n`) removed. Lines longer than `max_line_bytes` are cut and flagged.
#[derive(Debug)]
pub struct Lines<R> {
    reader: R,
    line_no: u64,
    buf: Vec<u8>,
    max_line_bytes: usize,
}

/// One line from [`Lines`].
#[derive(Debug)]
pub struct Line<'a> {
    /// 1-based line number.
    pub number: u64,
    /// The bytes without the line ending.
    pub bytes: &'a [u8],
    /// The line was longer than the limit and was cut.
    pub too_long: bool,
}

impl<R: BufRead> Lines<R> {
    /// Wraps a reader; lines above `max_line_bytes` are cut (the rest is skipped).
    pub fn new(reader: R, max_line_bytes: usize) -> Self {
        Lines {
            reader,
            line_no: 0,
            buf: Vec::new(),
            max_line_bytes,
        }
    }

    /// The next line, `None` at the end.
    pub fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        self.buf.clear();
        let mut too_long = false;
        let mut any = false;
        loop {
            let chunk = match self.reader.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                break;
            }
            any = true;
            let (take, done) = match chunk.iter().position(|b| *b == b'\n') {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            let room = self.max_line_bytes.saturating_sub(self.buf.len());
            let part = chunk.get(..take).unwrap_or_default();
            if part.len() > room + 1 {
                too_long = true;
                self.buf
                    .extend_from_slice(part.get(..room).unwrap_or_default());
            } else {
                self.buf.extend_from_slice(part);
            }
            self.reader.consume(take);
            if done {
                break;
            }
        }
        if !any {
            return Ok(None);
        }
        self.line_no += 1;
        while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
            self.buf.pop();
        }
        Ok(Some(Line {
            number: self.line_no,
            bytes: &self.buf,
            too_long,
        }))
    }
}

/// A `BufRead` wrapper that counts the newlines consumed through it (for XML line numbers).
#[derive(Debug)]
pub struct CountingReader<R> {
    inner: R,
    newlines: u64,
}

impl<R> CountingReader<R> {
    /// Wraps a reader.
    pub fn new(inner: R) -> Self {
        CountingReader { inner, newlines: 0 }
    }

    /// 1-based number of the line the next unread byte is on.
    pub fn line(&self) -> u64 {
        self.newlines + 1
    }
}

impl<R: BufRead> Read for CountingReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        if let (Some(dst), Some(src)) = (out.get_mut(..n), avail.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for CountingReader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        if let Ok(buf) = self.inner.fill_buf() {
            let n = amt.min(buf.len());
            self.newlines += buf
                .get(..n)
                .unwrap_or_default()
                .iter()
                .filter(|b| **b == b'\n')
                .count() as u64;
        }
        self.inner.consume(amt);
    }
}

/// Port from a file name that ends in `_<port>` before its extensions (`results_8_8_8_8_443.json`,
/// `https_get_443_hosts.gz` does not qualify: use the Sonar rules for those).
pub fn port_from_file_name(path: &Path) -> Option<u16> {
    let name = path.file_name()?.to_str()?;
    let stem = name.split('.').next()?;
    let last = stem.rsplit('_').next()?;
    if last.len() == stem.len() || last.is_empty() || last.len() > 5 {
        return None;
    }
    last.parse::<u16>().ok().filter(|p| *p != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_strip_endings_and_number() {
        let data: &[u8] = b"a\r\nbb\n\nccc";
        let mut l = Lines::new(data, 100);
        let mut got = Vec::new();
        while let Some(line) = l.next_line().unwrap() {
            got.push((line.number, line.bytes.to_vec(), line.too_long));
        }
        assert_eq!(
            got,
            vec![
                (1, b"a".to_vec(), false),
                (2, b"bb".to_vec(), false),
                (3, b"".to_vec(), false),
                (4, b"ccc".to_vec(), false)
            ]
        );
    }

    #[test]
    fn long_lines_are_cut() {
        let data: &[u8] = b"abcdefgh\nxy\n";
        let mut l = Lines::new(std::io::BufReader::with_capacity(3, data), 4);
        let first = l.next_line().unwrap().unwrap();
        assert_eq!((first.bytes, first.too_long), (&b"abcd"[..], true));
        let second = l.next_line().unwrap().unwrap();
        assert_eq!(
            (second.number, second.bytes, second.too_long),
            (2, &b"xy"[..], false)
        );
    }

    #[test]
    fn port_from_names() {
        assert_eq!(
            port_from_file_name(Path::new("d/results_8_8_8_8_443.json")),
            Some(443)
        );
        assert_eq!(port_from_file_name(Path::new("x_8443.json.gz")), Some(8443));
        assert_eq!(port_from_file_name(Path::new("output.json")), None);
        assert_eq!(port_from_file_name(Path::new("ftp-authtls.json")), None);
        assert_eq!(port_from_file_name(Path::new("a_99999.json")), None);
    }
}
