//! Certificate fingerprints: SHA-1 (the passive-SSL world's key) and SHA-256.

use std::fmt;

/// A SHA-1 digest (20 bytes): the key of a certificate in `certificates` and `observations`.
pub type Sha1 = [u8; 20];
/// A SHA-256 digest (32 bytes).
pub type Sha256 = [u8; 32];

/// A certificate hash given by a user: either kind, told apart by length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CertHash {
    /// 40 hex digits.
    Sha1(Sha1),
    /// 64 hex digits.
    Sha256(Sha256),
}

/// Why a text is not a certificate hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashParseError {
    /// The text holds a character that is not a hex digit (after removing `:` and spaces).
    #[error("hash {0:?} is not hexadecimal")]
    NotHex(String),
    /// The text has the wrong number of hex digits.
    #[error("hash has {0} hex digits; expected 40 (SHA-1) or 64 (SHA-256)")]
    WrongLength(usize),
}

/// Parses a SHA-1 or SHA-256 given in hex, with or without `:` separators, any case.
pub fn parse_cert_hash(text: &str) -> Result<CertHash, HashParseError> {
    let cleaned: String = text
        .trim()
        .chars()
        .filter(|c| *c != ':' && *c != ' ')
        .collect();
    if !cleaned.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(HashParseError::NotHex(truncate_for_error(text)));
    }
    let bytes = hex::decode(&cleaned).map_err(|_| HashParseError::WrongLength(cleaned.len()))?;
    match bytes.len() {
        20 => Ok(CertHash::Sha1(bytes.try_into().expect("length checked"))),
        32 => Ok(CertHash::Sha256(bytes.try_into().expect("length checked"))),
        _ => Err(HashParseError::WrongLength(cleaned.len())),
    }
}

impl CertHash {
    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            CertHash::Sha1(b) => b,
            CertHash::Sha256(b) => b,
        }
    }
}

impl fmt::Display for CertHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::hex_lower(self.as_bytes()))
    }
}

/// Shortens attacker-controlled text before it goes into an error message.
pub(crate) fn truncate_for_error(text: &str) -> String {
    const MAX_CHARS: usize = 80;
    if text.chars().count() <= MAX_CHARS {
        text.to_owned()
    } else {
        let mut short: String = text.chars().take(MAX_CHARS).collect();
        short.push('…');
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_lengths_and_separators() {
        let sha1 = "7cf01be9117755a7268ddc2dbf2bace7752488a4";
        assert!(matches!(parse_cert_hash(sha1), Ok(CertHash::Sha1(_))));
        let colons = "7C:F0:1B:E9:11:77:55:A7:26:8D:DC:2D:BF:2B:AC:E7:75:24:88:A4";
        assert_eq!(parse_cert_hash(colons), parse_cert_hash(sha1));
        let sha256 = "f404aa5dd1f97b07be342d17f6db14cd5a3c35bf7057d9431a9cd996f723aff6";
        assert!(matches!(parse_cert_hash(sha256), Ok(CertHash::Sha256(_))));
        assert_eq!(parse_cert_hash("abc"), Err(HashParseError::WrongLength(3)));
        assert!(matches!(
            parse_cert_hash("'; drop table x; --"),
            Err(HashParseError::NotHex(_))
        ));
    }
}
