//! Content files: classification and parsing of what the cache holds (OCSP responses, CRLs,
//! certificates, CAB/CTL files).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use certhist_model::views::cryptnet::CacheContentKind;
use certhist_model::CertRecord;

use crate::der::{tag, Reader};
use crate::ocsp::{parse_ocsp_response, OcspResponse};

/// A parsed CRL's summary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CrlInfo {
    /// Issuer name (RFC 4514 text).
    pub issuer: String,
    /// thisUpdate.
    pub this_update: DateTime<Utc>,
    /// nextUpdate when present.
    pub next_update: Option<DateTime<Utc>>,
    /// Number of revokedCertificates entries.
    pub entry_count: usize,
}

/// What was parsed out of a Content file.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ContentDetail {
    /// An OCSP response.
    Ocsp(OcspResponse),
    /// A CRL.
    Crl(CrlInfo),
    /// A certificate (DER) and its record.
    Certificate(Box<CertRecord>),
    /// Nothing parsed.
    None,
}

/// A Content file after classification.
#[derive(Clone, Debug)]
pub struct Content {
    /// What it is.
    pub kind: CacheContentKind,
    /// File length.
    pub size_bytes: u64,
    /// SHA-256 of the bytes (`None` when missing).
    pub sha256: Option<[u8; 32]>,
    /// Parsed details.
    pub detail: ContentDetail,
    /// Why parsing failed although the kind was recognised.
    pub error: Option<String>,
}

impl Content {
    /// A missing Content file.
    pub fn missing() -> Self {
        Content {
            kind: CacheContentKind::Missing,
            size_bytes: 0,
            sha256: None,
            detail: ContentDetail::None,
            error: None,
        }
    }
}

/// What a PEM `CERTIFICATE` block (RFC 7468 §5) in a Content file gave.
enum Pem {
    /// No `CERTIFICATE` block: not PEM, or PEM of another kind.
    Absent,
    /// The DER of the first `CERTIFICATE` block.
    Certificate(Vec<u8>),
    /// A `CERTIFICATE` block that does not decode (why).
    Broken(String),
}

/// The first PEM `CERTIFICATE` block of `data`, read by `rustls-pki-types`.
fn pem_certificate(data: &[u8]) -> Pem {
    use rustls_pki_types::pem::{Error, PemObject};
    use rustls_pki_types::CertificateDer;
    match CertificateDer::from_pem_slice(data) {
        Ok(der) => Pem::Certificate(der.to_vec()),
        Err(Error::MissingSectionEnd { end_marker }) if end_marker == b"CERTIFICATE" => {
            Pem::Broken("PEM certificate has no END CERTIFICATE line".into())
        }
        Err(Error::Base64Decode(e)) => Pem::Broken(format!("PEM base64: {e}")),
        // Not a certificate block at all (or a malformed BEGIN line of something else).
        Err(_) => Pem::Absent,
    }
}

/// Classifies and parses a Content file.
pub fn classify(data: &[u8]) -> Content {
    let sha256: [u8; 32] = Sha256::digest(data).into();
    let mut c = Content {
        kind: CacheContentKind::Other,
        size_bytes: data.len() as u64,
        sha256: Some(sha256),
        detail: ContentDetail::None,
        error: None,
    };
    if data.is_empty() {
        c.kind = CacheContentKind::Empty;
        return c;
    }
    if data.starts_with(b"MSCF") {
        c.kind = CacheContentKind::Cab;
        return c;
    }
    match pem_certificate(data) {
        Pem::Certificate(der) => {
            c.kind = CacheContentKind::Certificate;
            c.detail = ContentDetail::Certificate(Box::new(certhist_x509::parse_der(&der)));
            return c;
        }
        Pem::Broken(why) => {
            c.kind = CacheContentKind::Certificate;
            c.error = Some(why);
            return c;
        }
        Pem::Absent => {}
    }
    // DER: look at the outer SEQUENCE's first element to tell the structures apart.
    let mut r = Reader::new(data);
    let outer = r.expect(tag::SEQUENCE, "SEQUENCE");
    let first = match &outer {
        Ok(o) => Reader::inside(o).peek_tag(),
        // Truncated DER: still tell what it was meant to be from the header bytes.
        Err(_) => first_inner_tag(data),
    };
    if let Err(e) = &outer {
        if first.is_some() {
            c.error = Some(format!("truncated or corrupt DER: {e}"));
        }
    }
    let Ok(outer) = outer else {
        c.kind = match first {
            Some(tag::ENUMERATED) => CacheContentKind::OcspResponse,
            Some(tag::SEQUENCE) => CacheContentKind::Certificate,
            _ => CacheContentKind::Other,
        };
        return c;
    };
    match first {
        // OCSPResponse starts with responseStatus ENUMERATED.
        Some(tag::ENUMERATED) => {
            c.kind = CacheContentKind::OcspResponse;
            match parse_ocsp_response(data) {
                Ok(resp) => c.detail = ContentDetail::Ocsp(resp),
                Err(e) => c.error = Some(format!("OCSP response: {e}")),
            }
        }
        // Certificate and CertificateList both start with a TBS SEQUENCE.
        Some(tag::SEQUENCE) => {
            if let Ok((_, crl)) = x509_parser::parse_x509_crl(data) {
                c.kind = CacheContentKind::Crl;
                c.detail = ContentDetail::Crl(CrlInfo {
                    issuer: crl.issuer().to_string(),
                    this_update: to_chrono(crl.last_update()),
                    next_update: crl.next_update().map(to_chrono),
                    entry_count: crl.iter_revoked_certificates().count(),
                });
            } else if x509_parser::parse_x509_certificate(data).is_ok() {
                c.kind = CacheContentKind::Certificate;
                c.detail = ContentDetail::Certificate(Box::new(certhist_x509::parse_der(data)));
            } else if looks_like_crl(&outer) {
                c.kind = CacheContentKind::Crl;
                c.error = Some("CRL does not parse".into());
            } else {
                c.kind = CacheContentKind::Certificate;
                c.error = Some("certificate does not parse".into());
                c.detail = ContentDetail::Certificate(Box::new(certhist_x509::parse_der(data)));
            }
        }
        _ => {}
    }
    c
}

/// The tag of the first element inside a SEQUENCE whose length may overrun the data.
fn first_inner_tag(data: &[u8]) -> Option<u8> {
    let (outer, content) = crate::der::header_and_rest(data)?;
    if outer != tag::SEQUENCE {
        return None;
    }
    content
        .first()
        .copied()
        .filter(|t| matches!(*t, tag::ENUMERATED | tag::SEQUENCE))
}

/// A TBSCertList has thisUpdate (a time) as its 3rd/4th element, a TBSCertificate has a
/// validity SEQUENCE: use that to label unparsable structures.
fn looks_like_crl(outer: &crate::der::Tlv<'_>) -> bool {
    let mut r = Reader::inside(outer);
    let Ok(tbs) = r.expect(tag::SEQUENCE, "tbs") else {
        return false;
    };
    let mut t = Reader::inside(&tbs);
    for _ in 0..4 {
        match t.next_tlv() {
            Ok(x) if x.tag == tag::UTC_TIME || x.tag == tag::GENERALIZED_TIME => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

fn to_chrono(t: x509_parser::time::ASN1Time) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    /// A certificate Content file of the fixtures (DER, 1398 bytes; tests/data/cryptnet).
    fn fixture_cert() -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(
            "../../tests/data/cryptnet/32204232__portfolio/81b48a9be9c1/Content/2733EDAF2FA0DD860F0080BA2B92D941",
        );
        std::fs::read(path).unwrap()
    }

    /// PEM encoding (RFC 7468 §2) with CRLF line ends, 64 characters a line.
    fn pem(label: &str, der: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\r\n{}\r\n-----END {label}-----\r\n",
            lines.join("\r\n")
        )
    }

    // Issue 11: PEM Content files are read by rustls-pki-types.
    #[test]
    fn pem_certificate_content() {
        let der = fixture_cert();
        assert_eq!(der.len(), 1398);
        let text = format!("Subject: example\r\n{}", pem("CERTIFICATE", &der));
        let c = classify(text.as_bytes());
        assert_eq!(c.kind, CacheContentKind::Certificate);
        assert_eq!(c.error, None);
        let ContentDetail::Certificate(rec) = c.detail else {
            panic!("no certificate detail");
        };
        assert_eq!(rec.der, der);
        assert_eq!(c.size_bytes, text.len() as u64);
    }

    #[test]
    fn broken_pem_certificate_is_reported() {
        let c = classify(b"-----BEGIN CERTIFICATE-----\nMIIB!!!!\n-----END CERTIFICATE-----\n");
        assert_eq!(c.kind, CacheContentKind::Certificate);
        let error = c.error.unwrap();
        assert!(error.starts_with("PEM base64: "), "{error}");
        assert!(matches!(c.detail, ContentDetail::None));

        let full = pem("CERTIFICATE", &fixture_cert());
        let cut = full.get(..full.len() / 2).unwrap();
        let c = classify(cut.as_bytes());
        assert_eq!(c.kind, CacheContentKind::Certificate);
        assert_eq!(
            c.error.as_deref(),
            Some("PEM certificate has no END CERTIFICATE line")
        );
    }

    #[test]
    fn pem_of_another_kind_is_not_a_certificate() {
        let c = classify(pem("PUBLIC KEY", &[0x30, 0x03, 0x02, 0x01, 0x05]).as_bytes());
        assert_eq!(c.kind, CacheContentKind::Other);
        assert_eq!(c.error, None);
    }

    // Issue 11: a Content file whose outer length is indefinite (BER) is refused as DER but
    // still labelled by its first inner element.
    #[test]
    fn indefinite_length_ocsp_response() {
        let c = classify(&[0x30, 0x80, 0x0a, 0x01, 0x00, 0x00, 0x00]);
        assert_eq!(c.kind, CacheContentKind::OcspResponse);
        let error = c.error.unwrap();
        assert!(
            error.contains("unsupported DER length encoding at offset 0"),
            "{error}"
        );
    }
}
