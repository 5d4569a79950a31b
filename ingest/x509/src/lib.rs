//! DER → [`CertRecord`]: certificate normalisation (RFC 5280 §4.1).
//!
//! Parsing is done by `x509-parser`; hashes of raw sub-structures (SPKI, Names, the TBS without
//! CT extensions) are taken over the bytes exactly as encoded. Nothing here panics on input: a
//! certificate that does not parse still gives a record with its hashes, DER and `parse_error`.

pub mod der;
mod text;

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use certhist_model::{CertName, CertRecord, NameKind, Serial};
use chrono::{DateTime, Utc};
use rayon::prelude::*;
use sha1::Digest;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::time::ASN1Time;
use x509_parser::x509::SubjectPublicKeyInfo;

fn sha1_of(data: &[u8]) -> [u8; 20] {
    sha1::Sha1::digest(data).into()
}

fn sha256_of(data: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(data).into()
}

/// Start of the `parse_error` of a certificate whose parsing panicked: a bug in a parser, caught
/// by [`parse_der`] so that one certificate never takes an import down, and told apart from DER
/// that is merely malformed by [`is_parser_panic`]. Tests assert that it never occurs.
pub const PARSER_PANIC_PREFIX: &str = "internal error: parser panicked";

/// True when a record's `parse_error` says that parsing panicked (a bug to fix), rather than that
/// the DER is malformed.
pub fn is_parser_panic(parse_error: &str) -> bool {
    parse_error.starts_with(PARSER_PANIC_PREFIX)
}

/// Parses one certificate. Never panics: DER that does not parse gives a record with hashes,
/// DER and `parse_error`; a panic inside the parser is caught too and gives a `parse_error`
/// starting with [`PARSER_PANIC_PREFIX`].
pub fn parse_der(der: &[u8]) -> CertRecord {
    let sha1 = sha1_of(der);
    let sha256 = sha256_of(der);
    // Last line of defence: a bug in a parser must not take the import down with it.
    let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse_fields(der)));
    match parsed {
        Ok(Ok(mut record)) => {
            record.sha1 = sha1;
            record.sha256 = sha256;
            record.der = der.to_vec();
            record
        }
        Ok(Err(error)) => CertRecord::unparsed(sha1, sha256, der.to_vec(), error),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            CertRecord::unparsed(
                sha1,
                sha256,
                der.to_vec(),
                format!("{PARSER_PANIC_PREFIX}: {what}"),
            )
        }
    }
}

/// The TBSCertificate of a certificate, re-encoded without the CT poison (1.3.6.1.4.1.11129.2.4.3)
/// and SCT-list (1.3.6.1.4.1.11129.2.4.2) extensions: the `tbs_certificate` a CT log puts in a
/// precertificate's MerkleTreeLeaf (RFC 6962 §3.2), and what `tbs_noct_sha256` hashes. `None`
/// when the DER is not a SEQUENCE holding a well-formed SEQUENCE.
pub fn tbs_noct(der: &[u8]) -> Option<Vec<u8>> {
    der::tbs_without_ct_extensions(der)
}

/// Length of the DER element at the start of `data` (tag, length and contents), if well-formed.
pub fn der_element_len(data: &[u8]) -> Option<usize> {
    der::element_len(data)
}

/// Parses many certificates in parallel (rayon), keeping their order.
pub fn parse_many(ders: &[Vec<u8>]) -> Vec<CertRecord> {
    ders.par_iter().map(|d| parse_der(d)).collect()
}

/// Everything but sha1/sha256/der, or the reason the DER is not a certificate.
fn parse_fields(der: &[u8]) -> Result<CertRecord, String> {
    if der.is_empty() {
        return Err("empty input: no certificate".to_owned());
    }
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|e| format!("X.509 parse error: {e}"))?;
    if !rest.is_empty() {
        return Err(format!(
            "{} bytes of trailing data after the certificate",
            rest.len()
        ));
    }
    let tbs = &cert.tbs_certificate;
    let mut record = CertRecord::default();

    let (serial, negative) = normalise_serial(tbs.raw_serial());
    record.serial = Some(serial);
    record.serial_negative = negative;

    record.subject = text::distinguished_name(&tbs.subject);
    record.issuer = text::distinguished_name(&tbs.issuer);
    record.not_before = to_datetime(&tbs.validity.not_before);
    record.not_after = to_datetime(&tbs.validity.not_after);

    let spki = &tbs.subject_pki;
    record.spki_sha256 = Some(sha256_of(spki.raw));
    record.key_sha1 = Some(sha1_of(&spki.subject_public_key.data));
    let (alg, bits) = key_algorithm(spki);
    record.key_algorithm = Some(alg);
    record.key_bits = bits;
    record.signature_algorithm = Some(signature_algorithm_name(
        &cert.signature_algorithm.algorithm.to_id_string(),
    ));

    record.issuer_name_hash = Some(sha1_of(tbs.issuer.as_raw()));
    record.subject_name_hash = Some(sha1_of(tbs.subject.as_raw()));

    let mut names = NameSet::default();
    for atv in tbs.subject.iter_attributes() {
        let oid = atv.attr_type().to_id_string();
        let kind = match oid.as_str() {
            text::OID_CN => NameKind::Cn,
            text::OID_EMAIL => NameKind::Email,
            _ => continue,
        };
        names.add(text::any_to_text(atv.attr_value()), kind);
    }

    for ext in cert.extensions() {
        let oid = ext.oid.as_bytes();
        if oid == der::OID_CT_POISON {
            record.is_precert = true;
        }
        match ext.parsed_extension() {
            ParsedExtension::BasicConstraints(bc) => record.is_ca = bc.ca,
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                record.authority_key_id = aki.key_identifier.as_ref().map(|k| k.0.to_vec());
            }
            ParsedExtension::SubjectKeyIdentifier(ski) => {
                record.subject_key_id = Some(ski.0.to_vec());
            }
            ParsedExtension::SubjectAlternativeName(san) => {
                for gn in &san.general_names {
                    add_general_name(&mut names, gn);
                }
            }
            _ => {}
        }
    }
    record.names = names.into_vec();

    record.tbs_noct_sha256 = der::tbs_without_ct_extensions(der).map(|tbs| sha256_of(&tbs));
    Ok(record)
}

/// The serial as stored: big-endian magnitude without leading zeros, and its sign. The DER
/// INTEGER is two's complement (X.690 §8.3.3): a set high bit means negative, whose magnitude
/// is the two's complement negation.
fn normalise_serial(raw: &[u8]) -> (Serial, bool) {
    match raw.first() {
        Some(b) if b & 0x80 != 0 => {
            let mut magnitude: Vec<u8> = raw.iter().map(|b| !b).collect();
            // Add one, carrying from the least significant byte.
            for byte in magnitude.iter_mut().rev() {
                let (sum, overflow) = byte.overflowing_add(1);
                *byte = sum;
                if !overflow {
                    break;
                }
            }
            (Serial::from_be_bytes(&magnitude), true)
        }
        _ => (Serial::from_be_bytes(raw), false),
    }
}

fn to_datetime(t: &ASN1Time) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.timestamp(), 0)
}

/// Bit length of a big-endian unsigned integer (leading zero bytes ignored).
fn bit_length(be: &[u8]) -> Option<i32> {
    let skip = be.iter().take_while(|b| **b == 0).count();
    let significant = be.get(skip..)?;
    let first = significant.first()?;
    let bits = (significant.len() - 1) * 8 + (8 - first.leading_zeros() as usize);
    i32::try_from(bits).ok()
}

/// Key algorithm name and size (RFC 3279, RFC 5480, RFC 8410).
fn key_algorithm(spki: &SubjectPublicKeyInfo<'_>) -> (String, Option<i32>) {
    let oid = spki.algorithm.algorithm.to_id_string();
    match oid.as_str() {
        // rsaEncryption, RSASSA-PSS
        "1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.10" => {
            let bits = match spki.parsed() {
                Ok(PublicKey::RSA(rsa)) => bit_length(rsa.modulus),
                _ => None,
            };
            ("rsa".to_owned(), bits)
        }
        // id-ecPublicKey: the size is the named curve's (RFC 5480 §2.1.1.1)
        "1.2.840.10045.2.1" => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            let bits = match curve.as_deref() {
                Some("1.2.840.10045.3.1.1") => Some(192),   // secp192r1
                Some("1.3.132.0.33") => Some(224),          // secp224r1
                Some("1.2.840.10045.3.1.7") => Some(256),   // secp256r1
                Some("1.3.132.0.10") => Some(256),          // secp256k1
                Some("1.3.132.0.34") => Some(384),          // secp384r1
                Some("1.3.132.0.35") => Some(521),          // secp521r1
                Some("1.3.36.3.3.2.8.1.1.7") => Some(256),  // brainpoolP256r1
                Some("1.3.36.3.3.2.8.1.1.11") => Some(384), // brainpoolP384r1
                Some("1.3.36.3.3.2.8.1.1.13") => Some(512), // brainpoolP512r1
                _ => None,
            };
            ("ec".to_owned(), bits)
        }
        "1.3.101.112" => ("ed25519".to_owned(), Some(256)),
        "1.3.101.113" => ("ed448".to_owned(), Some(448)),
        // id-dsa: the size is that of the prime p in Dss-Parms (RFC 3279 §2.3.2)
        "1.2.840.10040.4.1" => {
            let bits = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| der::Children::new(p.data).next())
                .filter(|p| p.tag == [0x02])
                .and_then(|p| bit_length(p.content));
            ("dsa".to_owned(), bits)
        }
        _ => (oid, None),
    }
}

/// Conventional (OpenSSL) names of signature algorithms; other OIDs stay dotted.
fn signature_algorithm_name(oid: &str) -> String {
    let name = match oid {
        "1.2.840.113549.1.1.2" => "md2WithRSAEncryption",
        "1.2.840.113549.1.1.4" => "md5WithRSAEncryption",
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.2.840.113549.1.1.10" => "rsassaPss",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.113549.1.1.14" => "sha224WithRSAEncryption",
        "1.3.14.3.2.29" => "sha1WithRSA",
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
        "1.2.840.10045.4.3.1" => "ecdsa-with-SHA224",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.2.840.10040.4.3" => "dsa-with-SHA1",
        "2.16.840.1.101.3.4.3.1" => "dsa_with_SHA224",
        "2.16.840.1.101.3.4.3.2" => "dsa_with_SHA256",
        "1.3.101.112" => "ED25519",
        "1.3.101.113" => "ED448",
        _ => return oid.to_owned(),
    };
    name.to_owned()
}

/// Certificate names, lower-cased and deduplicated, in the order first seen.
#[derive(Default)]
struct NameSet {
    seen: HashSet<(NameKind, String)>,
    names: Vec<CertName>,
}

impl NameSet {
    fn add(&mut self, name: String, kind: NameKind) {
        let name = text::visible_nul(name).to_lowercase();
        if name.is_empty() || !self.seen.insert((kind, name.clone())) {
            return;
        }
        let registered_domain = match kind {
            NameKind::Cn | NameKind::Dns => registered_domain(&name),
            // Only a plain local@domain: `null@python.org␀user@example.org` is not example.org's.
            NameKind::Email => match name.split_once('@') {
                Some((local, domain))
                    if !local.is_empty() && !local.contains(['\u{2400}', '@']) =>
                {
                    registered_domain(domain)
                }
                _ => None,
            },
            NameKind::Ip | NameKind::Uri => None,
        };
        self.names.push(CertName {
            name,
            kind,
            registered_domain,
        });
    }

    fn into_vec(self) -> Vec<CertName> {
        self.names
    }
}

/// eTLD+1 of a host name (`*.` and a trailing dot ignored) by the Public Suffix List; `None` for
/// text that is not a host name, IP addresses and names under no known public suffix.
fn registered_domain(name: &str) -> Option<String> {
    let host = name.strip_prefix("*.").unwrap_or(name);
    let host = host.strip_suffix('.').unwrap_or(host);
    let hostname_like = host.contains('.')
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !hostname_like || host.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    let domain = psl::domain(host.as_bytes())?;
    if !domain.suffix().is_known() {
        return None;
    }
    std::str::from_utf8(domain.as_bytes())
        .ok()
        .map(str::to_owned)
}

/// A SAN entry as a name (RFC 5280 §4.2.1.6). Entries x509-parser could not decode as text
/// (tag numbers per the GeneralName CHOICE) are decoded lossily.
fn add_general_name(names: &mut NameSet, gn: &GeneralName<'_>) {
    match gn {
        GeneralName::DNSName(s) => names.add((*s).to_owned(), NameKind::Dns),
        GeneralName::RFC822Name(s) => names.add((*s).to_owned(), NameKind::Email),
        GeneralName::URI(s) => names.add((*s).to_owned(), NameKind::Uri),
        GeneralName::IPAddress(bytes) => {
            if let Some(ip) = ip_text(bytes) {
                names.add(ip, NameKind::Ip);
            }
        }
        GeneralName::Invalid(tag, data) => {
            let kind = match tag.0 {
                1 => NameKind::Email,
                2 => NameKind::Dns,
                6 => NameKind::Uri,
                7 => {
                    if let Some(ip) = ip_text(data) {
                        names.add(ip, NameKind::Ip);
                    }
                    return;
                }
                _ => return,
            };
            names.add(String::from_utf8_lossy(data).into_owned(), kind);
        }
        _ => {}
    }
}

/// An iPAddress SAN in canonical text; `None` unless it is 4 or 16 bytes (an 8- or 32-byte value
/// is an address and mask, which belongs in name constraints, not in a SAN).
fn ip_text(bytes: &[u8]) -> Option<String> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        return Some(Ipv4Addr::from(v4).to_string());
    }
    if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
        return Some(Ipv6Addr::from(v6).to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_sign() {
        let (s, neg) = normalise_serial(&[0x00, 0x80, 0x01]);
        assert_eq!((s.as_bytes(), neg), (&[0x80, 0x01][..], false));
        // -1 = 0xff; -256 = 0xff00; -129 = 0xff7f
        let (s, neg) = normalise_serial(&[0xff]);
        assert_eq!((s.as_bytes(), neg), (&[0x01][..], true));
        let (s, neg) = normalise_serial(&[0xff, 0x00]);
        assert_eq!((s.as_bytes(), neg), (&[0x01, 0x00][..], true));
        let (s, neg) = normalise_serial(&[0xff, 0x7f]);
        assert_eq!((s.as_bytes(), neg), (&[0x81][..], true));
        let (s, neg) = normalise_serial(&[]);
        assert_eq!((s.as_bytes(), neg), (&[0x00][..], false));
    }

    #[test]
    fn registered_domains() {
        assert_eq!(
            registered_domain("www.google.co.uk").as_deref(),
            Some("google.co.uk")
        );
        assert_eq!(
            registered_domain("*.google.com").as_deref(),
            Some("google.com")
        );
        assert_eq!(
            registered_domain("example.com.").as_deref(),
            Some("example.com")
        );
        assert_eq!(registered_domain("co.uk"), None);
        assert_eq!(registered_domain("192.0.2.1"), None);
        assert_eq!(registered_domain("localhost"), None);
        assert_eq!(registered_domain("host.invalidtld"), None);
        assert_eq!(registered_domain("Erw Wen Ltd"), None);
    }

    #[test]
    fn ip_lengths() {
        assert_eq!(ip_text(&[192, 0, 2, 1]).as_deref(), Some("192.0.2.1"));
        let mut v6 = [0u8; 16];
        v6[0] = 0x20;
        v6[1] = 0x01;
        v6[2] = 0x0d;
        v6[3] = 0xb8;
        v6[15] = 1;
        assert_eq!(ip_text(&v6).as_deref(), Some("2001:db8::1"));
        assert_eq!(ip_text(&[0, 0, 0, 0, 255, 255, 255, 0]), None);
    }
}
