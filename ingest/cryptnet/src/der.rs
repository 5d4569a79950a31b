//! A thin adapter over [`asn1_rs`] for walking the DER structures of RFC 6960 (OCSP) element by
//! element.
//!
//! The identifier and length octets (X.690 §8.1, §10.1) are decoded by `asn1-rs`
//! ([`Header::from_der`]); this module only turns its results into [`Tlv`]s with offsets and its
//! failures into [`DerError`]s. Only definite lengths are accepted (DER forbids the indefinite
//! form), and every claimed length is checked against the bytes that remain, so nothing here
//! panics or reads past its input.

use std::borrow::Cow;
use std::fmt;

use asn1_rs::{FromBer, FromDer, Header, Length, Oid, ToDer};

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

/// Identifier octets of the universal types used here (X.680 §8.6; SEQUENCE with the
/// constructed bit set).
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

    /// The identifier octet of the next element, if any.
    pub fn peek_tag(&self) -> Option<u8> {
        self.rest().first().copied()
    }

    /// Reads the next element.
    pub fn next_tlv(&mut self) -> Result<Tlv<'a>, DerError> {
        let input = self.rest();
        let offset = self.base + self.pos;
        let end_of_input = self.base + self.data.len();
        let found = input.first().copied().unwrap_or_default();
        let (after_header, header) =
            Header::from_der(input).map_err(|e| header_error(e, offset, end_of_input, found))?;
        let tag = match header.raw_tag() {
            Some([identifier]) => *identifier,
            _ => return Err(high_tag(found, offset)),
        };
        let Length::Definite(claimed) = header.length() else {
            return Err(DerError::BadLength { offset });
        };
        if claimed > after_header.len() {
            return Err(DerError::LengthTooLong {
                offset,
                claimed,
                available: after_header.len(),
            });
        }
        let (after, value) = header
            .parse_der_content(after_header)
            .map_err(|e| header_error(e, offset, end_of_input, found))?;
        let raw = input
            .get(..input.len() - after.len())
            .ok_or(DerError::Truncated { offset })?;
        self.pos += raw.len();
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

fn high_tag(found: u8, offset: usize) -> DerError {
    DerError::UnexpectedTag {
        expected: "a low-number tag",
        found,
        offset,
    }
}

/// Maps an `asn1-rs` header failure of the element at `offset` to a [`DerError`].
fn header_error(
    e: asn1_rs::Err<asn1_rs::Error>,
    offset: usize,
    end_of_input: usize,
    found: u8,
) -> DerError {
    use asn1_rs::Error;
    match e {
        // More bytes were needed where the input ends.
        asn1_rs::Err::Incomplete(_) => DerError::Truncated {
            offset: end_of_input,
        },
        asn1_rs::Err::Error(e) | asn1_rs::Err::Failure(e) => match e {
            Error::InvalidTag => high_tag(found, offset),
            Error::InvalidLength
            | Error::IndefiniteLengthUnexpected
            | Error::DerConstraintFailed(_) => DerError::BadLength { offset },
            _ => DerError::Invalid("DER header"),
        },
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

/// The identifier octet of the first element of `data` and the bytes after its header, also
/// when the content is cut short (to label a truncated file by what it was meant to be). BER
/// rules, so an indefinite length is read too; `None` when even the header is incomplete.
pub fn header_and_rest(data: &[u8]) -> Option<(u8, &[u8])> {
    let (rest, header) = Header::from_ber(data).ok()?;
    match header.raw_tag() {
        Some([identifier]) => Some((*identifier, rest)),
        _ => None,
    }
}

/// Dotted text of an OBJECT IDENTIFIER's content (X.690 §8.19), as [`Oid::to_id_string`] gives
/// it (hex when an arc does not fit 64 bits).
pub fn oid_to_string(value: &[u8]) -> Result<String, DerError> {
    // §8.19.2: every subidentifier, so the content too, ends in an octet with bit 8 clear.
    match value.last() {
        Some(last) if last & 0x80 == 0 => Ok(Oid::new(Cow::Borrowed(value)).to_id_string()),
        _ => Err(DerError::Invalid("OBJECT IDENTIFIER")),
    }
}

/// Encodes one TLV with the single identifier octet `tag` (length octets by `asn1-rs`, X.690
/// §10.1: definite, minimal).
pub fn encode(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 10);
    out.push(tag);
    // Writing to a Vec cannot fail, and a definite length always has an encoding.
    let _written = Length::Definite(value.len()).write_der_header(&mut out);
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

    // Issue 11: the reader is now built on asn1-rs; these pin the edges the old tests left open.
    #[test]
    fn long_form_lengths_and_nested_offsets() {
        // SEQUENCE (0x81: one length octet, 203) { OCTET STRING (0x81 0xc8: 200) { 0x5a * 200 } }
        let mut data = vec![0x30, 0x81, 203, 0x04, 0x81, 200];
        data.extend([0x5a; 200]);
        let outer = single(&data, tag::SEQUENCE, "outer").unwrap();
        assert_eq!(
            (outer.offset, outer.value.len(), outer.raw.len()),
            (0, 203, 206)
        );
        let mut r = Reader::inside(&outer);
        let inner = r.expect(tag::OCTET_STRING, "inner").unwrap();
        assert_eq!(
            (inner.offset, inner.value.len(), inner.raw.len()),
            (3, 200, 203)
        );
        assert!(inner.value.iter().all(|b| *b == 0x5a));
        assert!(r.is_empty());
        // Two length octets: 0x012c = 300.
        let mut two = vec![0x04, 0x82, 0x01, 0x2c];
        two.extend([1u8; 300]);
        assert_eq!(
            single(&two, tag::OCTET_STRING, "x").unwrap().value.len(),
            300
        );
    }

    #[test]
    fn hostile_headers_are_refused() {
        fn first(data: &[u8]) -> Result<Tlv<'_>, DerError> {
            Reader::new(data).next_tlv()
        }
        // Empty input and a length cut inside its long form: more bytes needed at the end.
        assert_eq!(first(&[]), Err(DerError::Truncated { offset: 0 }));
        assert_eq!(
            first(&[0x30, 0x82, 0x01]),
            Err(DerError::Truncated { offset: 3 })
        );
        // High tag number form (X.690 §8.1.2.4), complete and cut short.
        for data in [&[0x1f, 0x22, 0x00][..], &[0x3f, 0x81][..]] {
            assert!(
                matches!(
                    first(data),
                    Err(DerError::UnexpectedTag {
                        expected: "a low-number tag",
                        offset: 0,
                        ..
                    })
                ),
                "{data:02x?}"
            );
        }
        // Nine length octets, the reserved 0xff, and an indefinite primitive.
        for data in [
            &[0x30, 0x89, 1, 2, 3, 4, 5, 6, 7, 8, 9][..],
            &[0x30, 0xff][..],
            &[0x04, 0x80, 0x00, 0x00][..],
        ] {
            assert_eq!(
                first(data),
                Err(DerError::BadLength { offset: 0 }),
                "{data:02x?}"
            );
        }
        // A complete outer element whose child claims more than the parent holds.
        let data = [0x30, 0x03, 0x04, 0x05, 0xaa];
        let outer = single(&data, tag::SEQUENCE, "outer").unwrap();
        assert_eq!(
            Reader::inside(&outer).next_tlv(),
            Err(DerError::LengthTooLong {
                offset: 2,
                claimed: 5,
                available: 1
            })
        );
        assert_eq!(
            single(&[0x05, 0x00, 0x05, 0x00], tag::NULL, "NULL"),
            Err(DerError::Invalid("trailing bytes after the outer element"))
        );
    }

    #[test]
    fn encoded_lengths_are_minimal() {
        for (len, header) in [
            (0usize, &[0x04, 0x00][..]),
            (0x7f, &[0x04, 0x7f][..]),
            (0x80, &[0x04, 0x81, 0x80][..]),
            (0x100, &[0x04, 0x82, 0x01, 0x00][..]),
            (0x1_0000, &[0x04, 0x83, 0x01, 0x00, 0x00][..]),
        ] {
            let enc = encode(0x04, &vec![0xee; len]);
            assert_eq!(enc.get(..header.len()), Some(header), "{len}");
            assert_eq!(enc.len(), header.len() + len);
        }
    }

    #[test]
    fn header_of_a_truncated_element() {
        // SEQUENCE claiming 0x0500 bytes of which only an ENUMERATED's start is present.
        assert_eq!(
            header_and_rest(&[0x30, 0x82, 0x05, 0x00, 0x0a, 0x01]),
            Some((0x30, &[0x0a, 0x01][..]))
        );
        // Indefinite length (BER) still shows what follows.
        assert_eq!(
            header_and_rest(&[0x30, 0x80, 0x0a]),
            Some((0x30, &[0x0a][..]))
        );
        assert_eq!(header_and_rest(&[0x30, 0x82]), None);
        assert_eq!(header_and_rest(&[]), None);
    }

    #[test]
    fn more_oids() {
        // id-sha256 (RFC 5754 §2) and id-pkix-ocsp-basic (RFC 6960 §4.2.1).
        assert_eq!(
            oid_to_string(&[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01]).unwrap(),
            "2.16.840.1.101.3.4.2.1"
        );
        assert_eq!(
            oid_to_string(&[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01]).unwrap(),
            "1.3.6.1.5.5.7.48.1.1"
        );
        assert!(oid_to_string(&[]).is_err());
    }
}
