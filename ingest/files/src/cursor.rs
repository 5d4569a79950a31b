//! The cursor of a sensor log (`followed_files`), shared by the import driver (a plain
//! `import zeek|suricata FILE`) and `--follow`: the file's identity (device, inode, and the
//! SHA-256 of its first bytes) and where reading stopped, so whichever reads a file second
//! resumes where the first stopped and no record is counted twice.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use certhist_store::{FollowCursor, StoreTx};
use sha2::Digest;

use crate::input::Compression;
use crate::ImportError;

/// Bytes of a file's start whose hash is part of its identity.
pub const HEAD_BYTES: u64 = 4096;

/// The file's identity: (device, inode).
pub fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

/// SHA-256 of the first `len` bytes of `file` (read at their position: the file's own position
/// is not moved); `None` when it is shorter.
pub fn head_sha256(file: &File, len: u64) -> io::Result<Option<[u8; 32]>> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; usize::try_from(len.min(HEAD_BYTES)).unwrap_or(0)];
    match file.read_exact_at(&mut buf, 0) {
        Ok(()) => Ok(Some(sha2::Sha256::digest(&buf).into())),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

/// Is the file stored compressed (gzip, bzip2, xz)? Compressed files keep no line cursor.
pub fn is_compressed(path: &Path) -> io::Result<bool> {
    let mut head = [0u8; 6];
    let mut file = File::open(path)?;
    let mut n = 0;
    while n < head.len() {
        let got = file.read(&mut head[n..])?;
        if got == 0 {
            break;
        }
        n += got;
    }
    Ok(Compression::sniff(&head[..n]) != Compression::None)
}

/// The cursor stored for the file at `path` (identity `meta`) of `kind`, if it is this file:
/// same device and inode, no longer than the file, and the same first bytes.
pub async fn stored(
    tx: &mut StoreTx<'_>,
    kind: &str,
    path: &Path,
    meta: &std::fs::Metadata,
) -> Result<Option<FollowCursor>, ImportError> {
    let (dev, inode) = identity(meta);
    let Some(c) = tx.follow_cursor(kind, dev, inode).await? else {
        return Ok(None);
    };
    if c.offset > meta.len() {
        // Truncated in place: the content is new.
        return Ok(None);
    }
    if let Some(want) = c.head_sha256 {
        let got = File::open(path)
            .and_then(|f| head_sha256(&f, u64::from(c.head_len)))
            .map_err(|e| ImportError::io(path, e))?;
        if got != Some(want) {
            // Another file with a reused inode.
            return Ok(None);
        }
    }
    Ok(Some(c))
}

/// The cursor of the open `file` (identity `dev`, `inode`) after `offset` bytes and `lines`
/// lines.
pub fn at(
    file: &File,
    (dev, inode): (u64, u64),
    offset: u64,
    lines: u64,
    records: u64,
) -> io::Result<FollowCursor> {
    let head_len = offset.min(HEAD_BYTES);
    Ok(FollowCursor {
        dev,
        inode,
        offset,
        records,
        lines: Some(lines),
        head_len: u32::try_from(head_len).unwrap_or(0),
        head_sha256: head_sha256(file, head_len)?,
    })
}

/// [`at`] for the file now at `path`, when it still is the file with identity `id` (`None`
/// when it was replaced meanwhile: no cursor is recorded for it then).
pub fn at_path(
    path: &Path,
    id: (u64, u64),
    offset: u64,
    lines: u64,
    records: u64,
) -> Result<Option<FollowCursor>, ImportError> {
    let file = File::open(path).map_err(|e| ImportError::io(path, e))?;
    let meta = file.metadata().map_err(|e| ImportError::io(path, e))?;
    if identity(&meta) != id {
        return Ok(None);
    }
    at(&file, id, offset, lines, records)
        .map(Some)
        .map_err(|e| ImportError::io(path, e))
}
