//! A small, bounds-checked DER reader (X.690 §8 and §10) for the OCSP structures of RFC 6960.
//!
//! Only definite lengths are accepted (DER forbids the indefinite form). Every length is checked
//! against the remaining input; nothing here indexes or slices without a check.

use std::fmt;

/// Why DER could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DerError {
    /// The input ended inside a tag or length.
    #[error("DER truncated at offset {offset}")]
    Truncated {
        /// Offset where more bytes were needed.
        offset: usize,
    },
    /// A length field claims more bytes than remain.
    #[error("DER length {claimed} at offset {offset} exceeds the {available} bytes available")]
    LengthTooLong {
        /// Offset of the element.
        offset: usize,
        /// Claimed content length.
        claimed: usize,
        /// Bytes actually left.
        available: usize,
    },
    /// Indefinite or over-long length encodings.
    #[error("unsupported DER length encoding at offset {offset}")]
    BadLength {
        /// Offset of the element.
        offset: usize,
    },
    /// A different tag was found than the structure requires.
    #[error("expected {expected} at offset {offset}, found tag 0x{found:02x}")]
    UnexpectedTag {
        /// What the structure requires.
        expected: &'static str,
        /// Tag byte found.
        found: u8,
        /// Offset of the element.
        offset: usize,
    },
    /// The structure is otherwise invalid (explained).
    #[error("invalid {0}")]
    Invalid(&'static str),
}

/// One TLV element.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The identifier octet (single-byte tags only; high tag numbers are rejected).
    pub tag: u8,
    /// Content octets.
    pub value: &'a [u8],
    /// The whole encoding (tag + length + content).
    pub raw: &'a [u8],
    /// Offset of the element in the outermost input.
    pub offset: usize,
}

impl fmt::Debug for Tlv<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Tlv(tag=0x{:02x}, len={}, at {})",
            self.tag,
            self.value.len(),
            self.offset
        )
    }
}

/// Universal tags used here.
pub mod tag {
    /// BOOLEAN
    pub const BOOLEAN: u8 = 0x01;
    /// INTEGER
    pub const INTEGER: u8 = 0x02;
    /// BIT STRING
    pub const BIT_STRING: u8 = 0x03;
    /// OCTET STRING
    pub const OCTET_STRING: u8 = 0x04;
    /// NULL
    pub const NULL: u8 = 0x05;
    /// OBJECT IDENTIFIER
    pub const OID: u8 = 0x06;
    /// ENUMERATED
    pub const ENUMERATED: u8 = 0x0a;
    /// UTCTime
    pub const UTC_TIME: u8 = 0x17;
    /// GeneralizedTime
    pub const GENERALIZED_TIME: u8 = 0x18;
    /// SEQUENCE (constructed)
    pub const SEQUENCE: u8 = 0x30;
}

/// A cursor over consecutive TLVs.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    /// Reads `data`, reporting offsets relative to its start.
    pub fn new(data: &'a [u8]) -> Self {
        Reader {
            data,
            pos: 0,
            base: 0,
        }
    }

    /// Reads the content of `tlv`, keeping offsets relative to the outermost input.
    pub fn inside(tlv: &Tlv<'a>) -> Self {
        let header = tlv.raw.len() - tlv.value.len();
        Reader {
            data: tlv.value,
            pos: 0,
            base: tlv.offset + header,
        }
    }

    /// True when every byte was consumed.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// Bytes not yet read.
    pub fn rest(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or_default()
    }

    /// The tag of the next element, if any.
    pub fn peek_tag(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    /// Reads the next element.
    pub fn next_tlv(&mut self) -> Result<Tlv<'a>, DerError> {
        let start = self.pos;
        let offset = self.base + start;
        let tag = *self.data.get(start).ok_or(DerError::Truncated { offset })?;
        if tag & 0x1f == 0x1f {
            return Err(DerError::UnexpectedTag {
                expected: "a low-number tag",
                found: tag,
                offset,
            });
        }
        let first = *self
            .data
            .get(start + 1)
            .ok_or(DerError::Truncated { offset: offset + 1 })?;
        let (len, header) = if first < 0x80 {
            (usize::from(first), 2usize)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 {
                return Err(DerError::BadLength { offset });
            }
            let bytes = self
                .data
                .get(start + 2..start + 2 + n)
                .ok_or(DerError::Truncated { offset: offset + 2 })?;
            let len = bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, 2 + n)
        };
        let available = self.data.len().saturating_sub(start + header);
        if len > available {
            return Err(DerError::LengthTooLong {
                offset,
                claimed: len,
                available,
            });
        }
        let end = start + header + len;
        let raw = self
            .data
            .get(start..end)
            .ok_or(DerError::Truncated { offset })?;
        let value = self
            .data
            .get(start + header..end)
            .ok_or(DerError::Truncated { offset })?;
        self.pos = end;
        Ok(Tlv {
            tag,
            value,
            raw,
            offset,
        })
    }

    /// Reads the next element and checks its tag.
    pub fn expect(&mut self, want: u8, what: &'static str) -> Result<Tlv<'a>, DerError> {
        let offset = self.base + self.pos;
        let t = self.next_tlv()?;
        if t.tag != want {
            return Err(DerError::UnexpectedTag {
                expected: what,
                found: t.tag,
                offset,
            });
        }
        Ok(t)
    }

    /// Reads the next element only when it has tag `want`.
    pub fn optional(&mut self, want: u8) -> Result<Option<Tlv<'a>>, DerError> {
        if self.peek_tag() == Some(want) {
            self.next_tlv().map(Some)
        } else {
            Ok(None)
        }
    }
}

/// Parses a whole input as exactly one element of tag `want`.
pub fn single<'a>(data: &'a [u8], want: u8, what: &'static str) -> Result<Tlv<'a>, DerError> {
    let mut r = Reader::new(data);
    let t = r.expect(want, what)?;
    if !r.is_empty() {
        return Err(DerError::Invalid("trailing bytes after the outer element"));
    }
    Ok(t)
}

/// Dotted text of an OBJECT IDENTIFIER's content (X.690 §8.19).
pub fn oid_to_string(value: &[u8]) -> Result<String, DerError> {
    let mut arcs: Vec<u128> = Vec::new();
    let mut acc: u128 = 0;
    let mut in_arc = false;
    for b in value {
        if acc > (u128::MAX >> 8) {
            return Err(DerError::Invalid("OID arc too large"));
        }
        acc = (acc << 7) | u128::from(b & 0x7f);
        in_arc = true;
        if b & 0x80 == 0 {
            arcs.push(acc);
            acc = 0;
            in_arc = false;
        }
    }
    if in_arc || arcs.is_empty() {
        return Err(DerError::Invalid("OBJECT IDENTIFIER"));
    }
    let first = arcs.remove(0);
    let (a, b) = if first < 40 {
        (0, first)
    } else if first < 80 {
        (1, first - 40)
    } else {
        (2, first - 80)
    };
    let mut s = format!("{a}.{b}");
    for arc in arcs {
        s.push('.');
        s.push_str(&arc.to_string());
    }
    Ok(s)
}

/// Encodes a DER length (X.690 §10.1).
pub fn encode_len(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(bytes.len() - 1);
        let used = bytes.get(skip..).unwrap_or_default();
        out.push(0x80 | used.len() as u8);
        out.extend_from_slice(used);
    }
}

/// Encodes one TLV.
pub fn encode(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 6);
    out.push(tag);
    encode_len(value.len(), &mut out);
    out.extend_from_slice(value);
    out
}

/// Parses UTCTime / GeneralizedTime content (RFC 5280 §4.1.2.5 profile: `Z`, optional fraction).
pub fn parse_time(t: &Tlv<'_>) -> Result<chrono::DateTime<chrono::Utc>, DerError> {
    use chrono::NaiveDateTime;
    let text = std::str::from_utf8(t.value).map_err(|_| DerError::Invalid("time is not ASCII"))?;
    let body = text
        .strip_suffix('Z')
        .ok_or(DerError::Invalid("time without Z"))?;
    let (main, frac) = match body.split_once('.') {
        Some((m, f)) => (m, Some(f)),
        None => (body, None),
    };
    let full = match t.tag {
        tag::UTC_TIME => {
            let yy: u32 = main
                .get(0..2)
                .and_then(|y| y.parse().ok())
                .ok_or(DerError::Invalid("UTCTime"))?;
            // RFC 5280 §4.1.2.5.1: YY >= 50 is 19YY, else 20YY.
            let century = if yy >= 50 { "19" } else { "20" };
            format!("{century}{main}")
        }
        tag::GENERALIZED_TIME => main.to_owned(),
        _ => return Err(DerError::Invalid("time tag")),
    };
    let fmt = if full.len() == 14 {
        "%Y%m%d%H%M%S"
    } else {
        "%Y%m%d%H%M"
    };
    let naive =
        NaiveDateTime::parse_from_str(&full, fmt).map_err(|_| DerError::Invalid("time value"))?;
    let mut dt = naive.and_utc();
    if let Some(f) = frac {
        if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) {
            let nanos: i64 = format!("{f:0<9}").parse().unwrap_or(0);
            dt += chrono::Duration::nanoseconds(nanos);
        }
    }
    Ok(dt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_checked() {
        assert!(matches!(
            Reader::new(&[0x30, 0x05, 0x01]).next_tlv(),
            Err(DerError::LengthTooLong {
                claimed: 5,
                available: 1,
                ..
            })
        ));
        assert!(matches!(
            Reader::new(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).next_tlv(),
            Err(DerError::LengthTooLong { .. })
        ));
        assert!(matches!(
            Reader::new(&[0x30, 0x80]).next_tlv(),
            Err(DerError::BadLength { .. })
        ));
        assert!(matches!(
            Reader::new(&[0x30]).next_tlv(),
            Err(DerError::Truncated { .. })
        ));
        let enc = encode(0x04, &[7u8; 300]);
        let t = single(&enc, 0x04, "x").unwrap();
        assert_eq!(t.value.len(), 300);
    }

    #[test]
    fn oids() {
        // 1.3.14.3.2.26 = SHA-1 (RFC 3279 §2.2.1)
        assert_eq!(
            oid_to_string(&[0x2b, 0x0e, 0x03, 0x02, 0x1a]).unwrap(),
            "1.3.14.3.2.26"
        );
        assert!(oid_to_string(&[0x2b, 0x8e]).is_err());
    }
}
