//! OCSP structures (RFC 6960 §4): CertIDs, requests carried in GET URLs (Appendix A.1) and
//! responses (`BasicOCSPResponse`, §4.2.1).

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::Serialize;

use certhist_model::views::cryptnet::OcspStatus;
use certhist_model::Serial;

use crate::der::{self, tag, DerError, Reader, Tlv};

/// id-sha1 (RFC 3279 §2.2.1).
const OID_SHA1: &str = "1.3.14.3.2.26";
/// id-sha256 (RFC 5754 §2).
const OID_SHA256: &str = "2.16.840.1.101.3.4.2.1";
/// id-sha384.
const OID_SHA384: &str = "2.16.840.1.101.3.4.2.2";
/// id-sha512.
const OID_SHA512: &str = "2.16.840.1.101.3.4.2.3";
/// id-pkix-ocsp-basic (RFC 6960 §4.2.1).
const OID_OCSP_BASIC: &str = "1.3.6.1.5.5.7.48.1.1";

/// The hash algorithm of a CertID.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum HashAlgorithm {
    /// SHA-1 (20-byte hashes).
    Sha1,
    /// SHA-256 (32-byte hashes).
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
    /// Anything else, as a dotted OID.
    Other(String),
}

impl HashAlgorithm {
    /// Name stored in `cache_entries.hash_algorithm`.
    pub fn as_str(&self) -> &str {
        match self {
            HashAlgorithm::Sha1 => "sha1",
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha384 => "sha384",
            HashAlgorithm::Sha512 => "sha512",
            HashAlgorithm::Other(oid) => oid,
        }
    }

    fn from_oid(oid: &str) -> Self {
        match oid {
            OID_SHA1 => HashAlgorithm::Sha1,
            OID_SHA256 => HashAlgorithm::Sha256,
            OID_SHA384 => HashAlgorithm::Sha384,
            OID_SHA512 => HashAlgorithm::Sha512,
            other => HashAlgorithm::Other(other.to_owned()),
        }
    }

    /// Encoded OID content bytes for the algorithms we build requests with.
    fn oid_der(&self) -> Option<&'static [u8]> {
        match self {
            HashAlgorithm::Sha1 => Some(&[0x2b, 0x0e, 0x03, 0x02, 0x1a]),
            HashAlgorithm::Sha256 => Some(&[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01]),
            _ => None,
        }
    }
}

/// `CertID` (RFC 6960 §4.1.1): identifies a certificate by its issuer and serial.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CertId {
    /// Hash algorithm of both hashes.
    pub hash_algorithm: HashAlgorithm,
    /// Hash of the issuer's distinguished name (DER).
    pub issuer_name_hash: Vec<u8>,
    /// Hash of the issuer's public key (the subjectPublicKey BIT STRING contents).
    pub issuer_key_hash: Vec<u8>,
    /// Serial number, normalised (big-endian magnitude).
    pub serial: Serial,
}

impl CertId {
    fn parse(t: &Tlv<'_>) -> Result<Self, DerError> {
        let mut r = Reader::inside(t);
        let alg = r.expect(tag::SEQUENCE, "AlgorithmIdentifier")?;
        let mut ar = Reader::inside(&alg);
        let oid = ar.expect(tag::OID, "hash algorithm OID")?;
        let hash_algorithm = HashAlgorithm::from_oid(&der::oid_to_string(oid.value)?);
        let name = r.expect(tag::OCTET_STRING, "issuerNameHash")?;
        let key = r.expect(tag::OCTET_STRING, "issuerKeyHash")?;
        let serial = r.expect(tag::INTEGER, "serialNumber")?;
        if serial.value.is_empty() {
            return Err(DerError::Invalid("empty serialNumber"));
        }
        Ok(CertId {
            hash_algorithm,
            issuer_name_hash: name.value.to_vec(),
            issuer_key_hash: key.value.to_vec(),
            serial: Serial::from_be_bytes(serial.value),
        })
    }

    /// DER encoding (the hash algorithm must be SHA-1 or SHA-256; parameters NULL as
    /// Windows and OpenSSL send them).
    pub fn to_der(&self) -> Option<Vec<u8>> {
        let oid = self.hash_algorithm.oid_der()?;
        let mut alg = der::encode(tag::OID, oid);
        alg.extend_from_slice(&[tag::NULL, 0]);
        let mut body = der::encode(tag::SEQUENCE, &alg);
        body.extend(der::encode(tag::OCTET_STRING, &self.issuer_name_hash));
        body.extend(der::encode(tag::OCTET_STRING, &self.issuer_key_hash));
        // INTEGER: positive, so prefix 00 when the high bit is set (X.690 §8.3).
        let mut serial = self.serial.as_bytes().to_vec();
        if serial.first().is_some_and(|b| b & 0x80 != 0) {
            serial.insert(0, 0);
        }
        body.extend(der::encode(tag::INTEGER, &serial));
        Some(der::encode(tag::SEQUENCE, &body))
    }
}

/// Parses a DER `OCSPRequest` (RFC 6960 §4.1.1) and returns the CertID of every `Request`.
pub fn parse_ocsp_request(data: &[u8]) -> Result<Vec<CertId>, DerError> {
    let outer = der::single(data, tag::SEQUENCE, "OCSPRequest")?;
    let mut r = Reader::inside(&outer);
    let tbs = r.expect(tag::SEQUENCE, "TBSRequest")?;
    let _signature = r.optional(0xa0)?;
    if !r.is_empty() {
        return Err(DerError::Invalid("OCSPRequest has trailing elements"));
    }
    let mut tr = Reader::inside(&tbs);
    let _version = tr.optional(0xa0)?;
    let _requestor = tr.optional(0xa1)?;
    let list = tr.expect(tag::SEQUENCE, "requestList")?;
    let mut lr = Reader::inside(&list);
    let mut ids = Vec::new();
    while !lr.is_empty() {
        let req = lr.expect(tag::SEQUENCE, "Request")?;
        let mut rr = Reader::inside(&req);
        let cid = rr.expect(tag::SEQUENCE, "CertID")?;
        ids.push(CertId::parse(&cid)?);
    }
    if ids.is_empty() {
        return Err(DerError::Invalid("OCSPRequest without any Request"));
    }
    Ok(ids)
}

/// Builds a DER `OCSPRequest` with one `Request` per CertID, no extensions, no signature.
pub fn build_ocsp_request(ids: &[CertId]) -> Option<Vec<u8>> {
    let mut list = Vec::new();
    for id in ids {
        list.extend(der::encode(tag::SEQUENCE, &id.to_der()?));
    }
    let tbs = der::encode(tag::SEQUENCE, &der::encode(tag::SEQUENCE, &list));
    Some(der::encode(tag::SEQUENCE, &tbs))
}

/// The OCSP GET URL for `ids` at `responder` (RFC 6960 Appendix A.1): the base64 of the DER
/// request, with `+`, `/` and `=` percent-encoded as Windows does. `None` when a hash algorithm
/// is neither SHA-1 nor SHA-256, or when the request's base64 is longer than
/// [`MAX_GET_REQUEST_BASE64`] (a URL [`decode_get_url`] does not read, nor a server).
pub fn build_get_url(responder: &str, ids: &[CertId]) -> Option<String> {
    let der = build_ocsp_request(ids)?;
    if der.len().div_ceil(3) * 4 > MAX_GET_REQUEST_BASE64 {
        return None;
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let enc = percent_encoding::utf8_percent_encode(&b64, BASE64_IN_PATH);
    Some(format!("{}/{}", responder.trim_end_matches('/'), enc))
}

/// The base64 characters Windows percent-encodes in an OCSP GET URL path.
const BASE64_IN_PATH: &percent_encoding::AsciiSet = &percent_encoding::AsciiSet::EMPTY
    .add(b'+')
    .add(b'/')
    .add(b'=');

/// Why a URL does not carry an OCSP request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlDecodeError {
    /// Not an `http(s)://host/path` URL (an empty host, as in `http:///…`, included).
    #[error("not an http(s) URL with a host and a path")]
    NotHttp,
    /// No part of the path is base64 of a DER OCSPRequest.
    #[error("no base64 OCSPRequest in the URL path")]
    NoRequest,
}

/// An OCSP GET URL taken apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedUrl {
    /// Scheme, host and any path prefix before the request (`http://ocsp.example/ocsp`).
    pub responder: String,
    /// Every CertID in the request, in order.
    pub cert_ids: Vec<CertId>,
}

/// Percent-decoding (RFC 3986 §2.1) by `percent-encoding`; an invalid escape (`%` not followed
/// by two hex digits) is kept as it is.
pub fn percent_decode(s: &str) -> Vec<u8> {
    percent_encoding::percent_decode_str(s).collect()
}

const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Appends `bytes` to `out` as [`lenient_base64`] reads them: whitespace dropped, the url-safe
/// alphabet and a `+` turned into a space by form decoding mapped to the standard one.
fn clean_base64_into(bytes: &[u8], out: &mut Vec<u8>) {
    out.extend(
        bytes
            .iter()
            .filter(|b| !matches!(b, b'\r' | b'\n' | b'\t'))
            .map(|b| match b {
                b'-' | b' ' => b'+',
                b'_' => b'/',
                other => *other,
            }),
    );
}

/// `bytes` without its trailing `=` padding.
fn trim_padding(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().rposition(|b| *b != b'=').map_or(0, |p| p + 1);
    bytes.get(..end).unwrap_or_default()
}

/// Decodes standard or url-safe base64, padded or not, ignoring whitespace (a `+` turned into a
/// space by form decoding is put back).
pub fn lenient_base64(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut cleaned = Vec::with_capacity(bytes.len());
    clean_base64_into(bytes, &mut cleaned);
    let trimmed = trim_padding(&cleaned);
    if trimmed.is_empty() {
        return None;
    }
    LENIENT.decode(trimmed).ok()
}

/// Longest base64 request [`decode_get_url`] reads, in characters: a DER OCSPRequest of 12 KiB,
/// some 150 CertIDs. Web servers refuse longer request lines (Apache's and nginx's default limit
/// is 8 KiB), so no client sends one; a longer path is not decoded.
pub const MAX_GET_REQUEST_BASE64: usize = 16 * 1024;

/// Whether base64 `candidate` (standard alphabet only, no padding) can be a DER `OCSPRequest` by
/// its first bytes: a SEQUENCE whose definite length is exactly what the rest decodes to, as
/// [`parse_ocsp_request`] requires of the whole. Decodes at most 8 characters.
fn header_fits(candidate: &[u8]) -> bool {
    let Some(head) = candidate.get(..8) else {
        // Short enough to decode whole.
        return true;
    };
    let Ok(head) = LENIENT.decode(head) else {
        return false;
    };
    let decoded_len = candidate.len() / 4 * 3
        + match candidate.len() % 4 {
            0 => 0,
            2 => 1,
            3 => 2,
            _ => return false,
        };
    let total = match head.as_slice() {
        [0x30, short, ..] if *short < 0x80 => 2 + usize::from(*short),
        [0x30, long, rest @ ..] if (0x81..=0x84).contains(long) => {
            let n = usize::from(long & 0x7f);
            let Some(octets) = rest.get(..n) else {
                return false;
            };
            let content = octets
                .iter()
                .fold(0usize, |acc, o| (acc << 8) | usize::from(*o));
            2 + n + content
        }
        // Not a SEQUENCE, an indefinite length, or one of 4 GiB or more.
        _ => return false,
    };
    total == decoded_len
}

/// An OCSP GET URL split for [`decode_get_url`]: the trimmed URL's `scheme://host` and the path
/// after it, without the query and fragment (never part of the base64 alphabet). A URL whose
/// authority is empty (`http:///…`) is not one: RFC 9110 §4.2.1 has a recipient reject an
/// http(s) URI with an empty host, and its responder `http://` would build no URL that decodes.
fn split_get_url(url: &str) -> Result<(&str, &str), UrlDecodeError> {
    let url = url.trim();
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let after_scheme = if lower.starts_with("http://") {
        url.get(7..)
    } else if lower.starts_with("https://") {
        url.get(8..)
    } else {
        None
    }
    .ok_or(UrlDecodeError::NotHttp)?;
    let scheme_len = url.len() - after_scheme.len();
    let slash = after_scheme
        .find('/')
        .filter(|&authority_len| authority_len > 0)
        .ok_or(UrlDecodeError::NotHttp)?;
    let host = url.get(..scheme_len + slash).unwrap_or_default();
    let path = url.get(scheme_len + slash + 1..).unwrap_or_default();
    Ok((host, path.split(['?', '#']).next().unwrap_or_default()))
}

/// The responder of a decoded URL: `host`, and the path `prefix` before the request if any.
fn responder(host: &str, prefix: &str) -> String {
    if prefix.is_empty() {
        host.to_owned()
    } else {
        format!("{host}/{prefix}")
    }
}

/// Finds and decodes the OCSPRequest in an OCSP GET URL.
///
/// Tries, in order: the last raw path segment; the last 2, 3, … raw segments joined by `/` (for
/// clients that leave `/` of the base64 unescaped); the whole path. Each candidate is
/// percent-decoded and read as base64 (standard or url-safe, padding optional); the first one
/// that is a complete DER `OCSPRequest` wins, and everything before it is the responder.
/// Candidates longer than [`MAX_GET_REQUEST_BASE64`] are not tried.
///
/// Linear in the URL's length: the path is percent-decoded and cleaned for base64 once (neither
/// step reads across a `/`, so every candidate is a suffix of the result), and a candidate is
/// decoded only when it holds nothing but base64 and its first bytes announce a SEQUENCE of
/// exactly its length. (Decoding every candidate in full was quadratic: 16 KiB of `/` took 42 s
/// under the fuzzer's sanitizer.)
pub fn decode_get_url(url: &str) -> Result<DecodedUrl, UrlDecodeError> {
    let (host, path) = split_get_url(url)?;
    // Per segment: where it starts in `path` and in `cleaned`.
    let mut starts = Vec::new();
    let mut cleaned = Vec::with_capacity(path.len());
    let mut raw = 0;
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            cleaned.push(b'/');
        }
        starts.push((raw, cleaned.len()));
        clean_base64_into(&percent_decode(segment), &mut cleaned);
        raw += segment.len() + 1;
    }
    let cleaned = trim_padding(&cleaned);
    // A candidate holding a byte outside the alphabet does not decode.
    let decodable_from = cleaned
        .iter()
        .rposition(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/')))
        .map_or(0, |p| p + 1);
    for &(raw_start, start) in starts.iter().rev() {
        let Some(candidate) = cleaned.get(start..).filter(|c| !c.is_empty()) else {
            continue;
        };
        // Every later candidate is longer, and holds this one.
        if candidate.len() > MAX_GET_REQUEST_BASE64 || start < decodable_from {
            break;
        }
        if !header_fits(candidate) {
            continue;
        }
        let Ok(der) = LENIENT.decode(candidate) else {
            continue;
        };
        if let Ok(cert_ids) = parse_ocsp_request(&der) {
            let prefix = path.get(..raw_start.saturating_sub(1)).unwrap_or_default();
            return Ok(DecodedUrl {
                responder: responder(host, prefix),
                cert_ids,
            });
        }
    }
    Err(UrlDecodeError::NoRequest)
}

/// `CertStatus` of one SingleResponse (RFC 6960 §4.2.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
#[non_exhaustive]
pub enum CertStatus {
    /// Not revoked.
    Good,
    /// Revoked at `revocation_time`.
    Revoked {
        /// When.
        revocation_time: DateTime<Utc>,
        /// CRLReason code (RFC 5280 §5.3.1) when given.
        reason: Option<u8>,
    },
    /// The responder does not know the certificate.
    Unknown,
}

impl CertStatus {
    /// `good`, `revoked` or `unknown`.
    pub fn as_str(&self) -> &'static str {
        match self {
            CertStatus::Good => "good",
            CertStatus::Revoked { .. } => "revoked",
            CertStatus::Unknown => "unknown",
        }
    }

    /// The status without its details, as views show it.
    pub fn kind(&self) -> OcspStatus {
        match self {
            CertStatus::Good => OcspStatus::Good,
            CertStatus::Revoked { .. } => OcspStatus::Revoked,
            CertStatus::Unknown => OcspStatus::Unknown,
        }
    }
}

/// One `SingleResponse`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SingleResponse {
    /// Which certificate.
    pub cert_id: CertId,
    /// Its status.
    pub status: CertStatus,
    /// thisUpdate.
    pub this_update: DateTime<Utc>,
    /// nextUpdate, when given.
    pub next_update: Option<DateTime<Utc>>,
}

/// `ResponderID` (RFC 6960 §4.2.1).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponderId {
    /// byName: the Name as RFC 4514 text.
    ByName(String),
    /// byKey: SHA-1 of the responder's public key.
    ByKey(Vec<u8>),
}

impl std::fmt::Display for ResponderId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResponderId::ByName(n) => write!(f, "{n}"),
            ResponderId::ByKey(k) => write!(f, "key:{}", hex::encode(k)),
        }
    }
}

/// `OCSPResponseStatus` (RFC 6960 §4.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseStatus {
    /// 0: response has valid confirmations.
    Successful,
    /// 1: illegal confirmation request.
    MalformedRequest,
    /// 2: internal error in issuer.
    InternalError,
    /// 3: try again later.
    TryLater,
    /// 5: must sign the request.
    SigRequired,
    /// 6: request unauthorized.
    Unauthorized,
    /// Any other value.
    Other(u8),
}

impl ResponseStatus {
    fn from_code(c: u8) -> Self {
        match c {
            0 => Self::Successful,
            1 => Self::MalformedRequest,
            2 => Self::InternalError,
            3 => Self::TryLater,
            5 => Self::SigRequired,
            6 => Self::Unauthorized,
            o => Self::Other(o),
        }
    }
}

/// A parsed `OCSPResponse`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcspResponse {
    /// responseStatus.
    pub status: ResponseStatus,
    /// responderID (successful basic responses only).
    pub responder: Option<ResponderId>,
    /// producedAt.
    pub produced_at: Option<DateTime<Utc>>,
    /// Every SingleResponse, in order.
    pub responses: Vec<SingleResponse>,
    /// DER certificates carried in the `certs` field (responder certificates).
    pub certs: Vec<Vec<u8>>,
}

/// Parses a DER `OCSPResponse` with a `BasicOCSPResponse` (RFC 6960 §4.2.1).
pub fn parse_ocsp_response(data: &[u8]) -> Result<OcspResponse, DerError> {
    let outer = der::single(data, tag::SEQUENCE, "OCSPResponse")?;
    let mut r = Reader::inside(&outer);
    let st = r.expect(tag::ENUMERATED, "responseStatus")?;
    let code = match st.value {
        [c] => *c,
        _ => return Err(DerError::Invalid("responseStatus")),
    };
    let status = ResponseStatus::from_code(code);
    let mut resp = OcspResponse {
        status,
        responder: None,
        produced_at: None,
        responses: Vec::new(),
        certs: Vec::new(),
    };
    let Some(bytes) = r.optional(0xa0)? else {
        return Ok(resp);
    };
    let mut br = Reader::inside(&bytes);
    let rb = br.expect(tag::SEQUENCE, "ResponseBytes")?;
    let mut rbr = Reader::inside(&rb);
    let oid = rbr.expect(tag::OID, "responseType")?;
    if der::oid_to_string(oid.value)? != OID_OCSP_BASIC {
        return Err(DerError::Invalid("responseType is not id-pkix-ocsp-basic"));
    }
    let inner = rbr.expect(tag::OCTET_STRING, "response")?;
    let basic = der::single(inner.value, tag::SEQUENCE, "BasicOCSPResponse")?;
    let mut bar = Reader::inside(&basic);
    let tbs = bar.expect(tag::SEQUENCE, "ResponseData")?;
    let _sig_alg = bar.expect(tag::SEQUENCE, "signatureAlgorithm")?;
    let _sig = bar.expect(tag::BIT_STRING, "signature")?;
    if let Some(certs) = bar.optional(0xa0)? {
        let mut cr = Reader::inside(&certs);
        let seq = cr.expect(tag::SEQUENCE, "certs")?;
        let mut sr = Reader::inside(&seq);
        while !sr.is_empty() {
            resp.certs
                .push(sr.expect(tag::SEQUENCE, "Certificate")?.raw.to_vec());
        }
    }
    let mut tr = Reader::inside(&tbs);
    let _version = tr.optional(0xa0)?;
    let rid = tr.next_tlv()?;
    resp.responder = Some(match rid.tag {
        0xa1 => {
            let mut nr = Reader::inside(&rid);
            let name = nr.expect(tag::SEQUENCE, "responder Name")?;
            ResponderId::ByName(name_to_string(name.raw))
        }
        0xa2 => {
            let mut kr = Reader::inside(&rid);
            ResponderId::ByKey(
                kr.expect(tag::OCTET_STRING, "responder KeyHash")?
                    .value
                    .to_vec(),
            )
        }
        found => {
            return Err(DerError::UnexpectedTag {
                expected: "ResponderID",
                found,
                offset: rid.offset,
            })
        }
    });
    let produced = tr.expect(tag::GENERALIZED_TIME, "producedAt")?;
    resp.produced_at = Some(der::parse_time(&produced)?);
    let list = tr.expect(tag::SEQUENCE, "responses")?;
    let mut lr = Reader::inside(&list);
    while !lr.is_empty() {
        let single = lr.expect(tag::SEQUENCE, "SingleResponse")?;
        let mut sr = Reader::inside(&single);
        let cid = sr.expect(tag::SEQUENCE, "CertID")?;
        let cert_id = CertId::parse(&cid)?;
        let cs = sr.next_tlv()?;
        let status = match cs.tag {
            0x80 => CertStatus::Good,
            0x82 => CertStatus::Unknown,
            0xa1 => {
                let mut rr = Reader::inside(&cs);
                let t = rr.expect(tag::GENERALIZED_TIME, "revocationTime")?;
                let revocation_time = der::parse_time(&t)?;
                let reason = match rr.optional(0xa0)? {
                    Some(rt) => {
                        let mut er = Reader::inside(&rt);
                        er.expect(tag::ENUMERATED, "CRLReason")?
                            .value
                            .first()
                            .copied()
                    }
                    None => None,
                };
                CertStatus::Revoked {
                    revocation_time,
                    reason,
                }
            }
            found => {
                return Err(DerError::UnexpectedTag {
                    expected: "CertStatus",
                    found,
                    offset: cs.offset,
                })
            }
        };
        let tu = sr.expect(tag::GENERALIZED_TIME, "thisUpdate")?;
        let this_update = der::parse_time(&tu)?;
        let next_update = match sr.optional(0xa0)? {
            Some(nu) => {
                let mut nr = Reader::inside(&nu);
                Some(der::parse_time(
                    &nr.expect(tag::GENERALIZED_TIME, "nextUpdate")?,
                )?)
            }
            None => None,
        };
        resp.responses.push(SingleResponse {
            cert_id,
            status,
            this_update,
            next_update,
        });
    }
    Ok(resp)
}

/// RFC 4514-style text of a DER Name (falls back to hex when x509-parser rejects it).
pub fn name_to_string(der_name: &[u8]) -> String {
    use x509_parser::prelude::FromDer;
    match x509_parser::x509::X509Name::from_der(der_name) {
        Ok((_, name)) => name.to_string(),
        Err(_) => format!("hex:{}", hex::encode(der_name)),
    }
}

fn digest(alg: &HashAlgorithm, data: &[u8]) -> Option<Vec<u8>> {
    use sha2::Digest;
    Some(match alg {
        HashAlgorithm::Sha1 => sha1::Sha1::digest(data).to_vec(),
        HashAlgorithm::Sha256 => sha2::Sha256::digest(data).to_vec(),
        HashAlgorithm::Sha384 => sha2::Sha384::digest(data).to_vec(),
        HashAlgorithm::Sha512 => sha2::Sha512::digest(data).to_vec(),
        HashAlgorithm::Other(_) => return None,
    })
}

/// The hash of a certificate's issuer Name DER with `alg` (the CertID issuerNameHash it has).
pub fn issuer_name_hash_of(cert_der: &[u8], alg: &HashAlgorithm) -> Option<Vec<u8>> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    digest(alg, cert.tbs_certificate.issuer.as_raw())
}

/// The CertID of `cert_der` issued by `issuer_der` (RFC 6960 §4.1.1): hash of the issuer Name
/// as it appears in the certificate, hash of the issuer's subjectPublicKey bits, the serial.
pub fn cert_id_of(cert_der: &[u8], issuer_der: &[u8], alg: HashAlgorithm) -> Option<CertId> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    let (_, issuer) = x509_parser::parse_x509_certificate(issuer_der).ok()?;
    Some(CertId {
        issuer_name_hash: digest(&alg, cert.tbs_certificate.issuer.as_raw())?,
        issuer_key_hash: digest(
            &alg,
            &issuer.tbs_certificate.subject_pki.subject_public_key.data,
        )?,
        serial: Serial::from_be_bytes(cert.tbs_certificate.raw_serial()),
        hash_algorithm: alg,
    })
}

/// True when `cert_der` has the serial and issuer name of `id` (the issuer key cannot be checked
/// without the issuer certificate).
pub fn cert_matches_id(cert_der: &[u8], id: &CertId) -> bool {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(cert_der) else {
        return false;
    };
    Serial::from_be_bytes(cert.tbs_certificate.raw_serial()) == id.serial
        && digest(&id.hash_algorithm, cert.tbs_certificate.issuer.as_raw()).as_deref()
            == Some(&id.issuer_name_hash[..])
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = "http://r3.o.lencr.org/MFMwUTBPME0wSzAJBgUrDgMCGgUABBRI2smg%2ByvTLU%2Fw3mjS9We3NfmzxAQUFC6zF7dYVsuuUAlA5h%2BvnYsUwsYCEgNJysJh3kjaVPgcXCDHUNNWsA%3D%3D";

    fn check_seed(d: &DecodedUrl) {
        assert_eq!(d.cert_ids.len(), 1);
        let id = &d.cert_ids[0];
        assert_eq!(id.serial.to_hex(), "349CAC261DE48DA54F81C5C20C750D356B0");
        assert_eq!(
            hex::encode(&id.issuer_name_hash),
            "48dac9a0fb2bd32d4ff0de68d2f567b735f9b3c4"
        );
        assert_eq!(
            hex::encode(&id.issuer_key_hash),
            "142eb317b75856cbae500940e61faf9d8b14c2c6"
        );
        assert_eq!(id.hash_algorithm, HashAlgorithm::Sha1);
    }

    #[test]
    fn seed_url_decodes() {
        let d = decode_get_url(SEED).unwrap();
        assert_eq!(d.responder, "http://r3.o.lencr.org");
        check_seed(&d);
    }

    #[test]
    fn seed_url_variants() {
        let b64 = String::from_utf8(percent_decode(
            SEED.trim_start_matches("http://r3.o.lencr.org/"),
        ))
        .unwrap();
        // raw '/' inside the base64, with a path prefix
        let raw = format!("http://r3.o.lencr.org/ocsp/{b64}");
        let d = decode_get_url(&raw).unwrap();
        check_seed(&d);
        assert_eq!(d.responder, "http://r3.o.lencr.org/ocsp");
        // url-safe, no padding
        let safe = b64.replace('+', "-").replace('/', "_").replace('=', "");
        check_seed(&decode_get_url(&format!("https://r3.o.lencr.org/{safe}")).unwrap());
        // no padding, standard alphabet, percent-encoded
        let nopad = b64
            .trim_end_matches('=')
            .replace('+', "%2B")
            .replace('/', "%2f");
        check_seed(&decode_get_url(&format!("http://r3.o.lencr.org/we2/{nopad}")).unwrap());
        assert_eq!(
            decode_get_url("http://x1.c.lencr.org/"),
            Err(UrlDecodeError::NoRequest)
        );
        assert_eq!(decode_get_url("ftp://x/y"), Err(UrlDecodeError::NotHttp));
    }

    /// `build_get_url` builds only what `decode_get_url` reads: a request whose base64 is over
    /// `MAX_GET_REQUEST_BASE64` gives no URL. (A decoded request can grow when rebuilt: a CertID
    /// sent without the NULL parameters, or with a serial of 0x80…, gains two or one bytes.)
    #[test]
    fn build_get_url_stays_within_what_decode_reads() {
        let id = CertId {
            hash_algorithm: HashAlgorithm::Sha1,
            issuer_name_hash: vec![1; 20],
            issuer_key_hash: vec![2; 20],
            serial: Serial::from_be_bytes(&[0x12, 0x34]),
        };
        // Each Request is 2 + 2 + (2 + 9) + 22 + 22 + 4 = 63 bytes.
        let request_len = |n: usize| build_ocsp_request(&vec![id.clone(); n]).unwrap().len();
        assert_eq!(request_len(6) - request_len(5), 63);
        // The most CertIDs whose request's base64 (as encoded, padding included) fits.
        let base64_len = |n: usize| {
            let der = build_ocsp_request(&vec![id.clone(); n]).unwrap();
            base64::engine::general_purpose::STANDARD.encode(der).len()
        };
        let fits = (1..1000)
            .take_while(|&n| base64_len(n) <= MAX_GET_REQUEST_BASE64)
            .last()
            .unwrap();
        assert!(base64_len(fits + 1) > MAX_GET_REQUEST_BASE64);
        let url = build_get_url("http://h", &vec![id.clone(); fits]).unwrap();
        assert_eq!(decode_get_url(&url).unwrap().cert_ids.len(), fits);
        assert_eq!(build_get_url("http://h", &vec![id; fits + 1]), None);
    }

    /// Found by fuzzing (`fuzz/`, target `ocsp_get_url`, 2026-12-06): `http:////` followed by a
    /// request decoded with the responder `http://`, from which `build_get_url` made
    /// `http:/<request>`, which is no http URL. A URL with an empty host now carries no request;
    /// with a host, the same path decodes and its rebuilt URL decodes to the same CertIDs.
    #[test]
    fn fuzz_regression_empty_host() {
        let crash = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/data/cryptnet/fuzz-regressions/ocsp-get-url-empty-host"
        ))
        .unwrap();
        assert_eq!(decode_get_url(&crash), Err(UrlDecodeError::NotHttp));
        let with_host = crash.replacen("http:////", "http://h//", 1);
        let d = decode_get_url(&with_host).unwrap();
        assert_eq!(d.responder, "http://h");
        assert_eq!(d.cert_ids.len(), 1);
        let rebuilt = build_get_url(&d.responder, &d.cert_ids).unwrap();
        assert!(rebuilt.starts_with("http://h/MF"), "{rebuilt}");
        assert_eq!(decode_get_url(&rebuilt).unwrap().cert_ids, d.cert_ids);

        let b64 = SEED.trim_start_matches("http://r3.o.lencr.org/");
        for empty in ["http:///", "https:///", "HTTP:///ocsp/", "http:////"] {
            let url = format!("{empty}{b64}");
            assert_eq!(decode_get_url(&url), Err(UrlDecodeError::NotHttp), "{url}");
        }
        check_seed(&decode_get_url(&format!("http://h/{b64}")).unwrap());
    }

    /// The decoder as it was before it was made linear (2026-12-06): every candidate percent-
    /// decoded and decoded in full (the URL split and the responder are shared). The reference
    /// the linear one must agree with.
    fn decode_get_url_quadratic(url: &str) -> Result<DecodedUrl, UrlDecodeError> {
        let (host, path) = split_get_url(url)?;
        let segments: Vec<&str> = path.split('/').collect();
        let n = segments.len();
        for k in 1..=n {
            let first = n - k;
            let joined = segments[first..].join("/");
            let Some(der) = lenient_base64(&percent_decode(&joined)) else {
                continue;
            };
            if let Ok(cert_ids) = parse_ocsp_request(&der) {
                return Ok(DecodedUrl {
                    responder: responder(host, &segments[..first].join("/")),
                    cert_ids,
                });
            }
        }
        Err(UrlDecodeError::NoRequest)
    }

    fn agree(url: &str) {
        assert_eq!(
            decode_get_url(url),
            decode_get_url_quadratic(url),
            "{url:?}"
        );
    }

    /// The linear decoder gives what the quadratic one gave: on every input of up to 600 bytes of
    /// the two fuzz corpora that read URLs, on each of those holding a request with a `/`,
    /// `%2F`, `=`, space or newline put at every place, and on 20,000 URLs made of pieces of a
    /// real request and of the characters that matter (separators, padding, escapes, url-safe
    /// letters).
    #[test]
    fn the_linear_decoder_agrees_with_the_quadratic_one() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
        let mut urls = vec![SEED.to_owned()];
        for target in ["ocsp_get_url", "web_recognise"] {
            let dir = std::fs::read_dir(root.join(target)).unwrap();
            for entry in dir {
                if let Ok(text) = std::fs::read_to_string(entry.unwrap().path()) {
                    urls.push(text);
                }
            }
        }
        assert!(urls.len() > 1_000, "{} corpus inputs", urls.len());
        let mut decoded = 0;
        for url in &urls {
            // The reference is quadratic: long inputs are left to the long-path test.
            if url.len() > 600 {
                continue;
            }
            agree(url);
            if decode_get_url(url).is_err() {
                continue;
            }
            decoded += 1;
            for (at, _) in url.char_indices() {
                for insert in ["/", "%2F", "=", " ", "\n"] {
                    agree(&format!("{}{insert}{}", &url[..at], &url[at..]));
                }
            }
        }
        assert!(decoded >= 10, "only {decoded} corpus inputs decode");
        let b64 = String::from_utf8(percent_decode(
            SEED.trim_start_matches("http://r3.o.lencr.org/"),
        ))
        .unwrap();
        let pieces: Vec<&str> = vec![
            &b64[..20],
            &b64[20..44],
            &b64[44..],
            "/",
            "/",
            "%2F",
            "%2f",
            "=",
            "==",
            "%3D",
            "-",
            "_",
            " ",
            "\n",
            "%0A",
            "?",
            "#",
            "A",
            "MFMw",
            "MIIB",
            "MA",
            "%",
            "%4",
            "x",
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state % n as u64).unwrap()
        };
        for _ in 0..20_000 {
            let mut url = String::from("http://ocsp.example/");
            for _ in 0..next(12) {
                url.push_str(pieces[next(pieces.len())]);
            }
            agree(&url);
        }
    }

    /// Paths that made the decoder quadratic (every suffix of the path decoded in full): 64 KiB
    /// of `/`, of `/AAAA`, and of segments that each start like a request. None holds one; a
    /// request after them is found. (A test does not time them: the fuzz seeds of the same
    /// shapes make a slow decoder a fuzz timeout.)
    #[test]
    fn long_paths_of_many_segments_decode_to_nothing() {
        let slashes = format!("http://h/{}", "/".repeat(65_536));
        assert_eq!(decode_get_url(&slashes), Err(UrlDecodeError::NoRequest));
        let short = format!("http://h{}", "/AAAA".repeat(13_000));
        assert_eq!(decode_get_url(&short), Err(UrlDecodeError::NoRequest));
        // Each segment decodes to 30 82 01 00 00 00: a SEQUENCE header, as a request starts.
        let crafted = format!("http://h{}", "/MIIBAAAA".repeat(7_300));
        assert_eq!(decode_get_url(&crafted), Err(UrlDecodeError::NoRequest));
        assert_eq!(
            decode_get_url(&format!(
                "{crafted}/{}",
                SEED.trim_start_matches("http://r3.o.lencr.org/")
            ))
            .map(|d| d.cert_ids.len()),
            Ok(1),
            "a request after them is still found"
        );
    }

    #[test]
    fn build_roundtrip_multi_and_sha256() {
        let d = decode_get_url(SEED).unwrap();
        let mut second = d.cert_ids[0].clone();
        second.hash_algorithm = HashAlgorithm::Sha256;
        second.issuer_name_hash = vec![0xAB; 32];
        second.issuer_key_hash = vec![0xCD; 32];
        second.serial = Serial::from_be_bytes(&[0x80, 0x01]);
        let ids = vec![d.cert_ids[0].clone(), second];
        let url = build_get_url("http://ocsp.example.com/", &ids).unwrap();
        let back = decode_get_url(&url).unwrap();
        assert_eq!(back.cert_ids, ids);
        assert_eq!(back.responder, "http://ocsp.example.com");
        // single request: same bytes as Windows produced
        assert_eq!(
            build_get_url("http://r3.o.lencr.org", &d.cert_ids).unwrap(),
            SEED
        );
    }

    /// A TLV with its length octets written out here (X.690 §8.1.3), independently of
    /// `der::encode`: short form below 128, else one or two length octets.
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let n = content.len();
        let mut out = vec![tag];
        match n {
            0..=0x7f => out.push(n as u8),
            0x80..=0xff => out.extend([0x81, n as u8]),
            _ => out.extend([0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend_from_slice(content);
        out
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        use chrono::TimeZone as _;
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    /// An OCSPResponse (RFC 6960 §4.2.1) whose signature and certs are large enough for
    /// long-form lengths at every level above them: a good and a revoked SingleResponse.
    fn long_form_response() -> (Vec<u8>, Vec<u8>) {
        const SHA1: [u8; 5] = [0x2b, 0x0e, 0x03, 0x02, 0x1a];
        let cert_id = |serial: &[u8]| {
            tlv(
                0x30,
                &cat(&[
                    &tlv(0x30, &cat(&[&tlv(0x06, &SHA1), &[0x05, 0x00]])),
                    &tlv(0x04, &[0x11; 20]),
                    &tlv(0x04, &[0x22; 20]),
                    &tlv(0x02, serial),
                ]),
            )
        };
        let good = tlv(
            0x30,
            &cat(&[
                &cert_id(&[0x01, 0x23]),
                &[0x80, 0x00],
                &tlv(0x18, b"20240301000000Z"),
                &tlv(0xa0, &tlv(0x18, b"20240308000000Z")),
            ]),
        );
        let revoked = tlv(
            0x30,
            &cat(&[
                &cert_id(&[0x00, 0x80]),
                &tlv(
                    0xa1,
                    &cat(&[
                        &tlv(0x18, b"20240102030405Z"),
                        &tlv(0xa0, &tlv(0x0a, &[0x01])),
                    ]),
                ),
                &tlv(0x18, b"20240301000000Z"),
            ]),
        );
        let data = tlv(
            0x30,
            &cat(&[
                &tlv(0xa2, &tlv(0x04, &[0x33; 20])),
                &tlv(0x18, b"20240301120000Z"),
                &tlv(0x30, &cat(&[&good, &revoked])),
            ]),
        );
        // sha256WithRSAEncryption (RFC 4055 §5)
        let sig_alg = tlv(
            0x30,
            &cat(&[
                &tlv(
                    0x06,
                    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b],
                ),
                &[0x05, 0x00],
            ]),
        );
        let signature = tlv(0x03, &cat(&[&[0x00], &[0x44; 256]]));
        let cert = tlv(0x30, &tlv(0x04, &[0x55; 300]));
        let basic = tlv(
            0x30,
            &cat(&[&data, &sig_alg, &signature, &tlv(0xa0, &tlv(0x30, &cert))]),
        );
        let ocsp_basic = [0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];
        let bytes = tlv(
            0xa0,
            &tlv(0x30, &cat(&[&tlv(0x06, &ocsp_basic), &tlv(0x04, &basic)])),
        );
        (tlv(0x30, &cat(&[&[0x0a, 0x01, 0x00], &bytes])), cert)
    }

    // Issue 11: the OCSP parser now reads through asn1-rs; a response with long-form lengths,
    // every truncation of it and an over-long outer length.
    #[test]
    fn response_with_long_form_lengths() {
        let (der, cert) = long_form_response();
        assert_eq!(&der[..2], &[0x30, 0x82], "outer length is long-form");
        let resp = parse_ocsp_response(&der).unwrap();
        assert_eq!(resp.status, ResponseStatus::Successful);
        assert_eq!(resp.responder, Some(ResponderId::ByKey(vec![0x33; 20])));
        assert_eq!(resp.produced_at, Some(utc(2024, 3, 1, 12, 0, 0)));
        assert_eq!(resp.certs, vec![cert]);
        let id = |serial: &[u8]| CertId {
            hash_algorithm: HashAlgorithm::Sha1,
            issuer_name_hash: vec![0x11; 20],
            issuer_key_hash: vec![0x22; 20],
            serial: Serial::from_be_bytes(serial),
        };
        assert_eq!(
            resp.responses,
            vec![
                SingleResponse {
                    cert_id: id(&[0x01, 0x23]),
                    status: CertStatus::Good,
                    this_update: utc(2024, 3, 1, 0, 0, 0),
                    next_update: Some(utc(2024, 3, 8, 0, 0, 0)),
                },
                SingleResponse {
                    cert_id: id(&[0x80]),
                    status: CertStatus::Revoked {
                        revocation_time: utc(2024, 1, 2, 3, 4, 5),
                        reason: Some(1),
                    },
                    this_update: utc(2024, 3, 1, 0, 0, 0),
                    next_update: None,
                },
            ]
        );
        assert_eq!(resp.responses[1].cert_id.serial.to_hex(), "80");
    }

    #[test]
    fn truncated_and_over_long_responses_are_errors() {
        let (der, _) = long_form_response();
        for k in 0..der.len() {
            assert!(
                parse_ocsp_response(&der[..k]).is_err(),
                "prefix of {k} bytes"
            );
        }
        let mut longer = der.clone();
        longer.push(0);
        assert_eq!(
            parse_ocsp_response(&longer),
            Err(DerError::Invalid("trailing bytes after the outer element"))
        );
        // The outer length claims 4 GiB.
        let over = cat(&[&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff], &der[4..]]);
        assert!(matches!(
            parse_ocsp_response(&over),
            Err(DerError::LengthTooLong {
                offset: 0,
                claimed: 0xffff_ffff,
                ..
            })
        ));
        // Indefinite outer length (BER, not DER).
        let indefinite = cat(&[&[0x30, 0x80], &der[4..], &[0x00, 0x00]]);
        assert_eq!(
            parse_ocsp_response(&indefinite),
            Err(DerError::BadLength { offset: 0 })
        );
    }

    // Issue 11: percent-decoding is the percent-encoding crate's; malformed escapes stay as
    // they are, as before.
    #[test]
    fn percent_decoding_is_lenient() {
        assert_eq!(percent_decode("a%2Bb%2f%3D"), b"a+b/=");
        assert_eq!(percent_decode("%zz%4%"), b"%zz%4%");
        assert_eq!(percent_decode("%E2%80%AE"), "\u{202e}".as_bytes());
    }
}
