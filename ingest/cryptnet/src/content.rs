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

fn pem_certificate(data: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(data).ok()?;
    let start = text.find("-----BEGIN CERTIFICATE-----")? + "-----BEGIN CERTIFICATE-----".len();
    let end = text.get(start..)?.find("-----END CERTIFICATE-----")? + start;
    let b64: String = text
        .get(start..end)?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
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
    if let Some(der) = pem_certificate(data) {
        c.kind = CacheContentKind::Certificate;
        c.detail = ContentDetail::Certificate(Box::new(certhist_x509::parse_der(&der)));
        return c;
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
    if *data.first()? != tag::SEQUENCE {
        return None;
    }
    let l = *data.get(1)?;
    let header = if l < 0x80 {
        2
    } else {
        2 + usize::from(l & 0x7f)
    };
    data.get(header)
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
