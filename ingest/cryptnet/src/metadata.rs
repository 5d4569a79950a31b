//! CryptnetUrlCache `MetaData` files (layout in tests/data/cryptnet/README.md and the fixture
//! README it was copied from). All fields little-endian; every length is checked against the file.

use chrono::{DateTime, Utc};
use md5::{Digest, Md5};

/// Fixed header size before the URL.
pub const HEADER_LEN: usize = 0x74;
/// Largest MetaData file accepted (real ones are well under 4 KiB).
pub const MAX_METADATA_LEN: usize = 1 << 20;

/// Why a MetaData file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// Shorter than the fixed 0x74-byte header.
    #[error("MetaData is {len} bytes, shorter than the {HEADER_LEN}-byte header")]
    Truncated {
        /// File length.
        len: usize,
    },
    /// Bigger than any real MetaData file.
    #[error("MetaData is {len} bytes; at most {MAX_METADATA_LEN} are accepted")]
    TooLarge {
        /// File length.
        len: usize,
    },
    /// URL + ETag lengths claim more bytes than the file holds.
    #[error("MetaData says URL {url_len} + ETag {etag_len} bytes after the header, but only {available} remain")]
    LengthMismatch {
        /// URL byte length from 0x0C.
        url_len: u32,
        /// ETag byte length from 0x64.
        etag_len: u32,
        /// Bytes after the header.
        available: usize,
    },
    /// A UTF-16 field has an odd byte length.
    #[error("{field} length {len} is odd: not UTF-16")]
    OddUtf16 {
        /// `url` or `etag`.
        field: &'static str,
        /// Byte length.
        len: u32,
    },
    /// A UTF-16 field does not decode (unpaired surrogate).
    #[error("{field} is not valid UTF-16LE")]
    BadUtf16 {
        /// `url` or `etag`.
        field: &'static str,
    },
    /// The URL is empty.
    #[error("MetaData has an empty URL")]
    EmptyUrl,
}

/// How a MetaData file name relates to its URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NameCheck {
    /// The name is the upper-case MD5 of the UTF-16LE URL.
    Full,
    /// The name is `A_B` and B is that MD5.
    Suffix,
    /// The name does not match the URL.
    Mismatch,
}

impl NameCheck {
    /// `full`, `suffix` or `mismatch`.
    pub fn as_str(self) -> &'static str {
        match self {
            NameCheck::Full => "full",
            NameCheck::Suffix => "suffix",
            NameCheck::Mismatch => "mismatch",
        }
    }
}

/// A parsed MetaData file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    /// The URL fetched (without the UTF-16 NUL).
    pub url: String,
    /// FILETIME at 0x10, "LastDownloadTime".
    pub last_download: Option<DateTime<Utc>>,
    /// u32 at 0x1C: 3 = OCSP, 2 = CRL, 0 = cert/CRL/OCSP, 5/6/7 = authroot/disallowed/pinrules CAB.
    pub object_type: u32,
    /// FILETIME at 0x28: thisUpdate of the cached OCSP response / CRL.
    pub this_update: Option<DateTime<Utc>>,
    /// FILETIME at 0x30: nextUpdate.
    pub next_update: Option<DateTime<Utc>>,
    /// FILETIME at 0x48: expiry.
    pub expiry: Option<DateTime<Utc>>,
    /// FILETIME at 0x58: HTTP Last-Modified.
    pub last_modified: Option<DateTime<Utc>>,
    /// ETag as stored (quotes kept), `None` when absent.
    pub etag: Option<String>,
    /// u32 at 0x70: size of the Content file.
    pub content_size_bytes: u32,
    /// Bytes after URL + ETag (real files have none).
    pub trailing_bytes: usize,
}

fn u32_at(data: &[u8], off: usize) -> u32 {
    data.get(off..off + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, u32::from_le_bytes)
}

fn u64_at(data: &[u8], off: usize) -> u64 {
    data.get(off..off + 8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_le_bytes)
}

/// Windows FILETIME (100 ns ticks since 1601-01-01 UTC) → time; 0 and out-of-range values → `None`.
pub fn filetime_to_utc(ft: u64) -> Option<DateTime<Utc>> {
    if ft == 0 {
        return None;
    }
    const EPOCH_DIFF_SECS: i64 = 11_644_473_600;
    let secs = i64::try_from(ft / 10_000_000).ok()? - EPOCH_DIFF_SECS;
    let nanos = u32::try_from((ft % 10_000_000) * 100).ok()?;
    DateTime::from_timestamp(secs, nanos)
}

/// Time → FILETIME (for generated test and benchmark caches).
pub fn utc_to_filetime(t: DateTime<Utc>) -> u64 {
    const EPOCH_DIFF_SECS: i64 = 11_644_473_600;
    let secs = (t.timestamp() + EPOCH_DIFF_SECS).max(0) as u64;
    secs * 10_000_000 + u64::from(t.timestamp_subsec_nanos() / 100)
}

fn utf16_field(bytes: &[u8], field: &'static str) -> Result<String, MetadataError> {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| {
            u16::from_le_bytes([
                c.first().copied().unwrap_or(0),
                c.get(1).copied().unwrap_or(0),
            ])
        })
        .collect();
    let end = units.iter().position(|u| *u == 0).unwrap_or(units.len());
    String::from_utf16(units.get(..end).unwrap_or_default())
        .map_err(|_| MetadataError::BadUtf16 { field })
}

/// Parses a MetaData file.
pub fn parse_metadata(data: &[u8]) -> Result<Metadata, MetadataError> {
    if data.len() > MAX_METADATA_LEN {
        return Err(MetadataError::TooLarge { len: data.len() });
    }
    if data.len() < HEADER_LEN {
        return Err(MetadataError::Truncated { len: data.len() });
    }
    let url_len = u32_at(data, 0x0C);
    let etag_len = u32_at(data, 0x64);
    let available = data.len() - HEADER_LEN;
    let need = u64::from(url_len) + u64::from(etag_len);
    if need > available as u64 {
        return Err(MetadataError::LengthMismatch {
            url_len,
            etag_len,
            available,
        });
    }
    if url_len % 2 != 0 {
        return Err(MetadataError::OddUtf16 {
            field: "url",
            len: url_len,
        });
    }
    if etag_len % 2 != 0 {
        return Err(MetadataError::OddUtf16 {
            field: "etag",
            len: etag_len,
        });
    }
    let url_end = HEADER_LEN + url_len as usize;
    let etag_end = url_end + etag_len as usize;
    let url = utf16_field(data.get(HEADER_LEN..url_end).unwrap_or_default(), "url")?;
    if url.is_empty() {
        return Err(MetadataError::EmptyUrl);
    }
    let etag = if etag_len == 0 {
        None
    } else {
        Some(utf16_field(
            data.get(url_end..etag_end).unwrap_or_default(),
            "etag",
        )?)
        .filter(|e| !e.is_empty())
    };
    Ok(Metadata {
        url,
        last_download: filetime_to_utc(u64_at(data, 0x10)),
        object_type: u32_at(data, 0x1C),
        this_update: filetime_to_utc(u64_at(data, 0x28)),
        next_update: filetime_to_utc(u64_at(data, 0x30)),
        expiry: filetime_to_utc(u64_at(data, 0x48)),
        last_modified: filetime_to_utc(u64_at(data, 0x58)),
        etag,
        content_size_bytes: u32_at(data, 0x70),
        trailing_bytes: data.len() - etag_end,
    })
}

/// Builds a MetaData file (used to generate test and benchmark caches; fields we do not model
/// get the constants observed on real files).
pub fn build_metadata(m: &Metadata) -> Vec<u8> {
    let mut out = vec![0u8; HEADER_LEN];
    let put32 = |out: &mut Vec<u8>, off: usize, v: u32| {
        if let Some(s) = out.get_mut(off..off + 4) {
            s.copy_from_slice(&v.to_le_bytes());
        }
    };
    let url16: Vec<u8> = m
        .url
        .encode_utf16()
        .chain([0])
        .flat_map(u16::to_le_bytes)
        .collect();
    let etag16: Vec<u8> = m
        .etag
        .as_deref()
        .map(|e| {
            e.encode_utf16()
                .chain([0])
                .flat_map(u16::to_le_bytes)
                .collect()
        })
        .unwrap_or_default();
    put32(&mut out, 0x00, 0x70);
    put32(&mut out, 0x04, 0x2002_0101);
    put32(&mut out, 0x08, 1);
    put32(&mut out, 0x0C, url16.len() as u32);
    put32(&mut out, 0x18, 0x28);
    put32(&mut out, 0x1C, m.object_type);
    put32(&mut out, 0x40, 0x10);
    put32(&mut out, 0x50, 0x20);
    put32(&mut out, 0x64, etag16.len() as u32);
    put32(&mut out, 0x70, m.content_size_bytes);
    let mut put64 = |off: usize, t: Option<DateTime<Utc>>| {
        let v = t.map_or(0, utc_to_filetime);
        if let Some(s) = out.get_mut(off..off + 8) {
            s.copy_from_slice(&v.to_le_bytes());
        }
    };
    put64(0x10, m.last_download);
    put64(0x28, m.this_update);
    put64(0x30, m.next_update);
    put64(0x48, m.expiry);
    put64(0x58, m.last_modified);
    out.extend(url16);
    out.extend(etag16);
    out
}

/// Upper-case hex MD5 of the UTF-16LE URL: the cache file name.
pub fn url_md5_name(url: &str) -> String {
    let bytes: Vec<u8> = url.encode_utf16().flat_map(u16::to_le_bytes).collect();
    hex::encode_upper(Md5::digest(bytes))
}

/// Checks a MetaData/Content file name against the URL.
pub fn check_name(file_name: &str, url: &str) -> NameCheck {
    let want = url_md5_name(url);
    if file_name.eq_ignore_ascii_case(&want) {
        NameCheck::Full
    } else if file_name
        .rsplit_once('_')
        .is_some_and(|(_, b)| b.eq_ignore_ascii_case(&want))
    {
        NameCheck::Suffix
    } else {
        NameCheck::Mismatch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_name_from_readme() {
        assert_eq!(
            url_md5_name("http://x1.c.lencr.org/"),
            "103621DE9CD5414CC2538780B4B75751"
        );
        assert_eq!(
            check_name(
                "AB_103621DE9CD5414CC2538780B4B75751",
                "http://x1.c.lencr.org/"
            ),
            NameCheck::Suffix
        );
    }

    #[test]
    fn build_parse_roundtrip_and_corruption() {
        let t = DateTime::from_timestamp(1_700_000_000, 123_400).unwrap();
        let m = Metadata {
            url: "http://example.com/a".into(),
            last_download: Some(t),
            object_type: 3,
            this_update: Some(t),
            next_update: None,
            expiry: None,
            last_modified: None,
            etag: Some("\"abc\"".into()),
            content_size_bytes: 42,
            trailing_bytes: 0,
        };
        let bytes = build_metadata(&m);
        assert_eq!(parse_metadata(&bytes).unwrap(), m);
        for cut in [0, 10, HEADER_LEN - 1] {
            assert!(matches!(
                parse_metadata(&bytes[..cut]),
                Err(MetadataError::Truncated { .. })
            ));
        }
        assert!(matches!(
            parse_metadata(&bytes[..bytes.len() - 1]),
            Err(MetadataError::LengthMismatch { .. })
        ));
        let mut huge = bytes.clone();
        huge[0x0C..0x10].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            parse_metadata(&huge),
            Err(MetadataError::LengthMismatch { .. })
        ));
        let mut odd = bytes.clone();
        odd[0x0C..0x10].copy_from_slice(&3u32.to_le_bytes());
        assert!(matches!(
            parse_metadata(&odd),
            Err(MetadataError::OddUtf16 { .. })
        ));
        let mut bad = bytes.clone();
        bad[HEADER_LEN..HEADER_LEN + 2].copy_from_slice(&0xD800u16.to_le_bytes());
        assert!(matches!(
            parse_metadata(&bad),
            Err(MetadataError::BadUtf16 { .. })
        ));
    }
}
