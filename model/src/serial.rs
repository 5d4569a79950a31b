//! Certificate serial numbers in every notation analysts paste.
//!
//! Stored form: the big-endian magnitude with no leading zero bytes (RFC 5280 §4.1.2.2 serials are
//! positive INTEGERs; the DER encoding adds a `00` byte when the high bit is set, which crt.sh and
//! OpenSSL then print). A zero serial is stored as one `00` byte. Negative serials (seen in the wild)
//! keep their magnitude and a sign flag.

use std::fmt;

use crate::hash::truncate_for_error;

/// A serial number as a big-endian magnitude without leading zero bytes.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serial(Vec<u8>);

/// Why a text is not a serial number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SerialParseError {
    /// Nothing left after removing separators.
    #[error("serial is empty")]
    Empty,
    /// Not hex (with optional `:`/space/`-` separators or `0x`) and not decimal.
    #[error("serial {0:?} is neither hexadecimal nor decimal")]
    Invalid(String),
    /// Longer than any real serial (RFC 5280 caps them at 20 octets; we accept up to 64).
    #[error("serial is {0} bytes long; at most 64 are accepted")]
    TooLong(usize),
}

const MAX_SERIAL_BYTES: usize = 64;

impl Serial {
    /// Normalises big-endian bytes (as found in DER, possibly with leading zeros).
    pub fn from_be_bytes(bytes: &[u8]) -> Self {
        let first_nonzero = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
        let magnitude = &bytes[first_nonzero..];
        if magnitude.is_empty() {
            Serial(vec![0])
        } else {
            Serial(magnitude.to_vec())
        }
    }

    /// The normalised magnitude bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Upper-case hex of the magnitude, no separators (`349CAC26…`); a leading zero nibble is
    /// dropped, as certutil and the Windows UI print (`0x0349…` → `349…`).
    pub fn to_hex(&self) -> String {
        let h = hex::encode_upper(&self.0);
        let trimmed = h.trim_start_matches('0');
        if trimmed.is_empty() {
            "0".to_owned()
        } else {
            trimmed.to_owned()
        }
    }

    /// Parses what a user typed. Accepted:
    /// - hex with optional `0x`, `:`/`-`/space separators, any case, leading zeros;
    /// - decimal, when the text has only digits and is marked decimal by the caller
    ///   (see [`Serial::parse_candidates`]; a digits-only string is ambiguous).
    pub fn parse_hex(text: &str) -> Result<Self, SerialParseError> {
        let mut cleaned: String = text
            .trim()
            .chars()
            .filter(|c| !matches!(c, ':' | ' ' | '-'))
            .collect();
        if let Some(rest) = cleaned
            .strip_prefix("0x")
            .or_else(|| cleaned.strip_prefix("0X"))
        {
            cleaned = rest.to_owned();
        }
        if cleaned.is_empty() {
            return Err(SerialParseError::Empty);
        }
        if !cleaned.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(SerialParseError::Invalid(truncate_for_error(text)));
        }
        if cleaned.len() % 2 == 1 {
            cleaned.insert(0, '0');
        }
        let bytes = hex::decode(&cleaned)
            .map_err(|_| SerialParseError::Invalid(truncate_for_error(text)))?;
        let serial = Serial::from_be_bytes(&bytes);
        if serial.0.len() > MAX_SERIAL_BYTES {
            return Err(SerialParseError::TooLong(serial.0.len()));
        }
        Ok(serial)
    }

    /// Parses a decimal serial (digits only, optional leading `-` ignored for the magnitude).
    pub fn parse_decimal(text: &str) -> Result<Self, SerialParseError> {
        let digits = text.trim().trim_start_matches('-');
        if digits.is_empty() {
            return Err(SerialParseError::Empty);
        }
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(SerialParseError::Invalid(truncate_for_error(text)));
        }
        // Schoolbook base conversion: multiply the big-endian byte vector by 10 and add the digit.
        let mut bytes: Vec<u8> = vec![0];
        for d in digits.bytes() {
            let mut carry = u32::from(d - b'0');
            for b in bytes.iter_mut().rev() {
                let v = u32::from(*b) * 10 + carry;
                *b = (v & 0xff) as u8;
                carry = v >> 8;
            }
            while carry > 0 {
                bytes.insert(0, (carry & 0xff) as u8);
                carry >>= 8;
            }
            if bytes.len() > MAX_SERIAL_BYTES + 1 {
                return Err(SerialParseError::TooLong(bytes.len()));
            }
        }
        let serial = Serial::from_be_bytes(&bytes);
        if serial.0.len() > MAX_SERIAL_BYTES {
            return Err(SerialParseError::TooLong(serial.0.len()));
        }
        Ok(serial)
    }

    /// All serials a user's text may mean: a digits-only string is both a decimal and a hex
    /// serial; anything else is hex. Errors only when no reading works.
    pub fn parse_candidates(text: &str) -> Result<Vec<Self>, SerialParseError> {
        let t = text.trim();
        let digits_only = !t.is_empty()
            && t.trim_start_matches('-')
                .chars()
                .all(|c| c.is_ascii_digit());
        let mut out = Vec::new();
        if let Ok(h) = Serial::parse_hex(t) {
            out.push(h);
        }
        if digits_only {
            if let Ok(d) = Serial::parse_decimal(t) {
                if !out.contains(&d) {
                    out.push(d);
                }
            }
        }
        if out.is_empty() {
            // Report the hex error: it is the more general notation.
            Serial::parse_hex(t)?;
        }
        Ok(out)
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode_upper(&self.0))
    }
}

impl serde::Serialize for Serial {
    /// Upper-case hex of the magnitude without separators ([`Serial::to_hex`]).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl fmt::Debug for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Serial({})", hex::encode_upper(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notations_agree() {
        // google_cert.pem from certificate-transparency: serial 454887626504608315115709 = 0x605381f50001000088bd.
        let hex_form = Serial::parse_hex("60:53:81:f5:00:01:00:00:88:bd").unwrap();
        let dec_form = Serial::parse_decimal("454887626504608315115709").unwrap();
        assert_eq!(hex_form, dec_form);
        assert_eq!(hex_form.to_string(), "605381F50001000088BD");
        let leading = Serial::parse_hex("00605381F50001000088BD").unwrap();
        assert_eq!(leading, hex_form);
        assert_eq!(
            Serial::parse_hex("0x605381f50001000088bd").unwrap(),
            hex_form
        );
    }

    #[test]
    fn odd_nibble_and_zero() {
        // The cryptnet seed URL's serial as certutil prints it (odd number of digits).
        let s = Serial::parse_hex("349CAC261DE48DA54F81C5C20C750D356B0").unwrap();
        assert_eq!(s.as_bytes()[0], 0x03);
        assert_eq!(s.to_hex(), "349CAC261DE48DA54F81C5C20C750D356B0");
        assert_eq!(Serial::from_be_bytes(&[0, 0]).as_bytes(), &[0]);
    }

    #[test]
    fn candidates_for_digits_only() {
        let c = Serial::parse_candidates("1234").unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].as_bytes(), &[0x12, 0x34]);
        assert_eq!(c[1].as_bytes(), &[0x04, 0xd2]);
        assert!(Serial::parse_candidates("xyz").is_err());
        assert!(Serial::parse_candidates("").is_err());
    }
}
