//! Opening input files: compression told apart by magic bytes (not by file name) and undone
//! once, the content hash that identifies an import, directory walks, and line readers.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use certhist_model::Sha256;
use sha2::Digest;

/// Read buffer size for input files.
const BUF_BYTES: usize = 256 * 1024;

/// A decompressed, buffered reader over a file.
pub type Input = Box<dyn BufRead + Send>;

/// Compression of an input file, from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// Read as it is.
    None,
    /// gzip (RFC 1952 §2.3.1 magic `1f 8b`), also multi-member.
    Gzip,
    /// bzip2 (`BZh`), also multi-stream.
    Bzip2,
    /// xz (`fd 37 7a 58 5a 00`), also multi-stream.
    Xz,
}

impl Compression {
    /// Tells the compression from a file's first bytes.
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(b"BZh") {
            Compression::Bzip2
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Compression::Xz
        } else {
            Compression::None
        }
    }
}

/// Wraps `reader`, decompressing gzip, bzip2 or xz when its first bytes say so.
pub fn decompress<R: Read + Send + 'static>(reader: R) -> io::Result<Input> {
    let mut buffered = BufReader::with_capacity(BUF_BYTES, reader);
    let head = buffered.fill_buf()?;
    Ok(match Compression::sniff(head) {
        Compression::Gzip => Box::new(BufReader::with_capacity(
            BUF_BYTES,
            flate2::bufread::MultiGzDecoder::new(buffered),
        )),
        Compression::Bzip2 => Box::new(BufReader::with_capacity(
            BUF_BYTES,
            bzip2::bufread::MultiBzDecoder::new(buffered),
        )),
        Compression::Xz => Box::new(BufReader::with_capacity(
            BUF_BYTES,
            lzma_rust2::XzReader::new(buffered, true),
        )),
        Compression::None => Box::new(buffered),
    })
}

/// Opens `path` and undoes its compression ([`decompress`]).
pub fn open(path: &Path) -> io::Result<Input> {
    decompress(File::open(path)?)
}

/// SHA-256 of the file's bytes as stored (compressed or not): with the importer kind, the
/// identity of an import.
pub fn content_sha256(path: &Path) -> io::Result<Sha256> {
    let mut file = File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; BUF_BYTES];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(buf.get(..n).unwrap_or_default());
    }
    Ok(hasher.finalize().into())
}

/// A reader that hashes (SHA-256) and counts the bytes read through it, so a file can be hashed
/// while it is read instead of in a pass of its own. [`HashingReader::handle`] gives the digest
/// once reading is done (the reader may have moved into a decompressor by then).
#[derive(Debug)]
pub struct HashingReader<R> {
    inner: R,
    state: HashState,
}

type HashState = std::sync::Arc<std::sync::Mutex<(sha2::Sha256, u64)>>;

/// The digest and byte count of a [`HashingReader`].
#[derive(Clone, Debug)]
pub struct HashHandle(HashState);

impl HashHandle {
    fn with<T>(&self, f: impl FnOnce(&(sha2::Sha256, u64)) -> T) -> T {
        match self.0.lock() {
            Ok(s) => f(&s),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    /// The SHA-256 of the bytes read so far.
    pub fn digest(&self) -> Sha256 {
        self.with(|(h, _)| h.clone().finalize().into())
    }

    /// How many bytes were read so far.
    pub fn bytes_read(&self) -> u64 {
        self.with(|(_, n)| *n)
    }
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            state: Default::default(),
        }
    }

    /// A handle to the digest.
    pub fn handle(&self) -> HashHandle {
        HashHandle(self.state.clone())
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(out)?;
        if let (Ok(mut s), Some(read)) = (self.state.lock(), out.get(..n)) {
            s.0.update(read);
            s.1 += n as u64;
        }
        Ok(n)
    }
}

/// Files under `paths`: files as given, directories recursively with their entries in sorted
/// order (symlinked directories are not followed, symlinked files are). Paths that cannot be
/// listed come out as errors, in their place.
#[derive(Debug)]
pub struct Walk {
    /// Paths still to visit, as a stack (next on top).
    todo: Vec<PathBuf>,
}

impl Walk {
    /// A walk over `paths`.
    pub fn new<I, P>(paths: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        let mut todo: Vec<PathBuf> = paths.into_iter().map(Into::into).collect();
        todo.reverse();
        Walk { todo }
    }
}

impl Iterator for Walk {
    type Item = Result<PathBuf, (PathBuf, io::Error)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let path = self.todo.pop()?;
            let meta = match std::fs::metadata(&path) {
                Ok(m) => m,
                Err(e) => return Some(Err((path, e))),
            };
            if !meta.is_dir() {
                return Some(Ok(path));
            }
            let entries =
                match std::fs::read_dir(&path).and_then(|rd| rd.collect::<Result<Vec<_>, _>>()) {
                    Ok(e) => e,
                    Err(e) => return Some(Err((path, e))),
                };
            let mut children: Vec<PathBuf> = entries
                .into_iter()
                .filter(|e| {
                    // Do not follow symlinked directories (loops); symlinked files are read.
                    let is_link = e.file_type().map(|t| t.is_symlink()).unwrap_or(false);
                    !(is_link && e.path().is_dir())
                })
                .map(|e| e.path())
                .collect();
            children.sort();
            children.reverse();
            self.todo.extend(children);
        }
    }
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
    fn compression_by_magic() {
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(Compression::sniff(b"BZh91AY"), Compression::Bzip2);
        assert_eq!(
            Compression::sniff(&[0xfd, b'7', b'z', b'X', b'Z', 0, 0]),
            Compression::Xz
        );
        assert_eq!(Compression::sniff(b"-----BEGIN"), Compression::None);
        // xz: the fixture capture and its `xz -9` copy read the same.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/passive/pcap/zeek__zeek/testing/btest/Traces/tls");
        let plain = std::fs::read(dir.join("tls1.2.pcap")).unwrap();
        let mut unpacked = Vec::new();
        open(&dir.join("tls1.2.pcap.xz"))
            .unwrap()
            .read_to_end(&mut unpacked)
            .unwrap();
        assert_eq!(unpacked, plain);
        // A corrupt xz stream is an error, not a panic.
        let mut broken = Vec::new();
        let err = decompress(std::io::Cursor::new(vec![
            0xfd, b'7', b'z', b'X', b'Z', 0, 1,
        ]))
        .and_then(|mut r| r.read_to_end(&mut broken));
        assert!(err.is_err());
    }

    #[test]
    fn hashing_reader_matches_a_second_pass() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        std::fs::write(&path, vec![7u8; 300_000]).unwrap();
        let mut r = HashingReader::new(File::open(&path).unwrap());
        let h = r.handle();
        std::io::copy(&mut r, &mut std::io::sink()).unwrap();
        assert_eq!(h.digest(), content_sha256(&path).unwrap());
        assert_eq!(h.bytes_read(), 300_000);
    }
}
