//! A reader for the TLS presentation language (RFC 5246 §4) used by RFC 6962 structures:
//! big-endian integers and length-prefixed vectors. Never panics on short input.

use crate::ParseError;

/// A cursor over TLS-encoded bytes.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    /// The whole input.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Reads `n` raw bytes.
    pub fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ParseError> {
        let rest = &self.data[self.pos..];
        match rest.get(..n) {
            Some(b) => {
                self.pos += n;
                Ok(b)
            }
            None => Err(ParseError::Truncated {
                what,
                needed: n - rest.len(),
            }),
        }
    }

    /// Reads a fixed-size array.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], ParseError> {
        let b = self.bytes(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    /// Reads a big-endian unsigned integer of `width` bytes (1..=8).
    pub fn uint(&mut self, width: usize, what: &'static str) -> Result<u64, ParseError> {
        let b = self.bytes(width, what)?;
        Ok(b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    }

    /// Reads `opaque x<0..2^(8*width)-1>`: a length of `width` bytes, then the bytes.
    pub fn vec(&mut self, width: usize, what: &'static str) -> Result<&'a [u8], ParseError> {
        let len = self.uint(width, what)?;
        let len =
            usize::try_from(len).map_err(|_| ParseError::invalid(what, "length overflows"))?;
        self.bytes(len, what)
    }

    /// Fails if bytes are left.
    pub fn finish(&self, what: &'static str) -> Result<(), ParseError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(ParseError::Trailing { what, count }),
        }
    }
}

/// Appends `opaque x<..>` with a `width`-byte length prefix.
pub fn put_vec(out: &mut Vec<u8>, width: usize, data: &[u8]) {
    let len = data.len() as u64;
    out.extend_from_slice(&len.to_be_bytes()[8 - width..]);
    out.extend_from_slice(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_input_is_an_error() {
        let mut r = Reader::new(&[0, 0, 5, 1, 2]);
        assert_eq!(
            r.vec(3, "x"),
            Err(ParseError::Truncated {
                what: "x",
                needed: 3
            })
        );
        let mut r = Reader::new(&[0, 2, 7, 8, 9]);
        assert_eq!(r.vec(2, "x"), Ok(&[7u8, 8][..]));
        assert_eq!(
            r.finish("y"),
            Err(ParseError::Trailing {
                what: "y",
                count: 1
            })
        );
    }
}
