//! Finding certificates anywhere in text, line by line.
//!
//! What is found, in any text (PEM bundles, JSON documents, CSV, log lines):
//! - PEM blocks (RFC 7468) whose boundaries sit anywhere in a line and whose body is spread over
//!   lines, or on one line with its newlines escaped: `\n`, `\r\n` and `\\n` (JSON strings, log
//!   lines), `\/` (JSON's escaped slash), `\u000a`, spaces or tabs, and percent-encoded PEM
//!   (`-----BEGIN%20CERTIFICATE-----%0A…`, nginx's `$ssl_client_escaped_cert`). Labels
//!   `CERTIFICATE`, `X509 CERTIFICATE` and `TRUSTED CERTIFICATE` hold certificates (of the last,
//!   the leading certificate: OpenSSL appends trust settings); other blocks (`PRIVATE KEY`, …)
//!   are skipped and counted. The base64 of a block is decoded by `rustls-pki-types`.
//! - A line that is one base64 DER (`MII…`): yielded whatever it decodes to (a DER that is not a
//!   certificate is stored with its parse error, as DER files are).
//! - Base64 DER inside a line (a JSON field `"raw": "MII…"`, a CSV column): yielded when it
//!   decodes to one or more whole DER elements shaped like a certificate (a SEQUENCE of
//!   SEQUENCE, SEQUENCE, BIT STRING whose TBS starts with an optional `[0]` version, an INTEGER
//!   serial and three SEQUENCEs). Other base64 (public keys, CRLs, OCSP responses) is left alone
//!   without a problem.
//!
//! Problems (a certificate block without END, bad base64 in a certificate block) are reported
//! with the line the block starts on, and reading goes on.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use certhist_x509::der::read_tlv;
use certhist_x509::der_element_len;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::certfile::ProblemKind;

/// Standard alphabet, padding optional (some tools strip it).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Base64 characters an embedded run needs before it is decoded (90 bytes of DER; the smallest
/// real certificates are about three times as long).
const MIN_EMBEDDED_BASE64: usize = 120;

/// Longest label of a PEM boundary we accept (RFC 7468 labels are short words).
const MAX_LABEL_BYTES: usize = 64;

/// What a scanner found.
#[derive(Debug)]
pub(crate) enum Found {
    /// A certificate's DER, with the line of its PEM `BEGIN` or base64.
    Cert { der: Vec<u8>, line: u64 },
    /// A problem at a line (or in the whole file).
    Problem {
        line: Option<u64>,
        kind: ProblemKind,
    },
    /// A PEM block that holds no certificate (a key, a CRL), with the line it starts on.
    Skipped { line: u64 },
}

/// A PEM block being read.
#[derive(Debug)]
struct Block {
    label: String,
    start_line: u64,
    is_cert: bool,
    /// Body bytes as found (escapes not undone), line ends as `\n`.
    body: Vec<u8>,
}

/// Finds certificates in the lines of one text file; see the module documentation.
#[derive(Debug, Default)]
pub(crate) struct TextScanner {
    block: Option<Block>,
    /// Certificates found so far.
    pub(crate) certs: usize,
    /// Problems met so far.
    pub(crate) problems: usize,
}

impl TextScanner {
    /// Scans line `no` (without its line ending).
    pub(crate) fn line(&mut self, no: u64, raw: &[u8], out: &mut Vec<Found>) {
        let decoded;
        let mut line = trim_ascii(raw);
        if contains(line, b"-----BEGIN%20") || contains(line, b"-----END%20") {
            decoded = percent_decode(line);
            line = trim_ascii(&decoded);
        }
        let whole = line;
        let mut rest = line;
        loop {
            if let Some(block) = self.block.as_mut() {
                let end = find(rest, b"-----END ");
                if let Some(pos) = find_begin(rest).filter(|b| end.is_none_or(|e| *b < e)) {
                    // Another block begins before this one ends: it was cut off.
                    if let Some(open) = self.block.take() {
                        self.truncated(open, out);
                    }
                    rest = rest.get(pos..).unwrap_or_default();
                    continue;
                }
                let Some(pos) = end else {
                    block.body.extend_from_slice(rest);
                    block.body.push(b'\n');
                    return;
                };
                block
                    .body
                    .extend_from_slice(rest.get(..pos).unwrap_or_default());
                let after = rest.get(pos + 9..).unwrap_or_default();
                rest = match find(after, b"-----") {
                    Some(e) => after.get(e + 5..).unwrap_or_default(),
                    None => b"",
                };
                if let Some(block) = self.block.take() {
                    self.end_block(block, out);
                }
                continue;
            }
            match find_begin(rest) {
                Some(pos) => {
                    self.scan_text(no, rest.get(..pos).unwrap_or_default(), false, out);
                    let after = rest.get(pos + 11..).unwrap_or_default();
                    let Some(end) = find(after, b"-----") else {
                        // "-----BEGIN " without a closing dash run: not a boundary.
                        self.scan_text(no, after, false, out);
                        return;
                    };
                    let label = String::from_utf8_lossy(after.get(..end).unwrap_or_default())
                        .trim()
                        .to_owned();
                    let is_cert = is_cert_label(&label);
                    if !is_cert {
                        out.push(Found::Skipped { line: no });
                    }
                    self.block = Some(Block {
                        label,
                        start_line: no,
                        is_cert,
                        body: Vec::new(),
                    });
                    rest = after.get(end + 5..).unwrap_or_default();
                }
                None => {
                    let is_whole = rest.len() == whole.len();
                    self.scan_text(no, rest, is_whole, out);
                    return;
                }
            }
        }
    }

    /// The end of the file: a block still open was cut off; a file without certificates and
    /// without problems is a problem of its own.
    pub(crate) fn finish(&mut self, out: &mut Vec<Found>) {
        if let Some(open) = self.block.take() {
            self.truncated(open, out);
        }
        if self.certs == 0 && self.problems == 0 {
            self.problem(None, ProblemKind::NoCertificate, out);
        }
    }

    fn problem(&mut self, line: Option<u64>, kind: ProblemKind, out: &mut Vec<Found>) {
        self.problems += 1;
        out.push(Found::Problem { line, kind });
    }

    fn cert(&mut self, der: Vec<u8>, line: u64, out: &mut Vec<Found>) {
        self.certs += 1;
        out.push(Found::Cert { der, line });
    }

    fn truncated(&mut self, open: Block, out: &mut Vec<Found>) {
        if open.is_cert {
            self.problem(
                Some(open.start_line),
                ProblemKind::TruncatedPem { label: open.label },
                out,
            );
        }
    }

    fn end_block(&mut self, block: Block, out: &mut Vec<Found>) {
        if !block.is_cert {
            return;
        }
        match decode_pem_body(&block.body) {
            Ok(mut der) => {
                if block.label == "TRUSTED CERTIFICATE" {
                    // OpenSSL's X509_AUX: the certificate, then trust settings.
                    if let Some(len) = der_element_len(&der) {
                        der.truncate(len);
                    }
                }
                self.cert(der, block.start_line, out);
            }
            Err(message) => {
                self.problem(Some(block.start_line), ProblemKind::BadBase64(message), out)
            }
        }
    }

    /// Text outside PEM blocks: a whole base64 DER line, or base64 DER embedded in the text.
    fn scan_text(&mut self, no: u64, text: &[u8], whole_line: bool, out: &mut Vec<Found>) {
        // DER certificates start 0x30 0x8x, which base64 writes as "MI".
        if whole_line
            && text.starts_with(b"MI")
            && text.len() >= 64
            && text.iter().copied().all(is_base64)
        {
            match BASE64.decode(text) {
                Ok(der) => self.cert(der, no, out),
                Err(e) => self.problem(Some(no), ProblemKind::BadBase64(e.to_string()), out),
            }
            return;
        }
        let mut i = 0;
        while i + 1 < text.len() {
            let starts = text.get(i..i + 2) == Some(&b"MI"[..]) && at_token_start(text, i);
            if !starts {
                i += 1;
                continue;
            }
            let mut j = i;
            let mut chars = 0usize;
            while let Some(&b) = text.get(j) {
                if is_base64(b) {
                    chars += 1;
                    j += 1;
                } else if b == b'\\' && matches!(text.get(j + 1), Some(b'/' | b'n' | b'r')) {
                    j += 2;
                } else {
                    break;
                }
            }
            if chars >= MIN_EMBEDDED_BASE64 {
                for der in embedded_certificates(text.get(i..j).unwrap_or_default()) {
                    self.cert(der, no, out);
                }
            }
            i = j.max(i + 1);
        }
    }
}

/// Labels of PEM blocks holding a certificate (RFC 7468 §5 and the legacy OpenSSL labels).
fn is_cert_label(label: &str) -> bool {
    matches!(
        label,
        "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE"
    )
}

fn is_base64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')
}

/// Whether a base64 run may start at `i`: at the start, after a byte that is not base64, or
/// right after an escaped line end (`\n`, `\r`, `\t`).
fn at_token_start(text: &[u8], i: usize) -> bool {
    let Some(prev) = i.checked_sub(1).and_then(|p| text.get(p)) else {
        return true;
    };
    if !is_base64(*prev) {
        return true;
    }
    matches!(*prev, b'n' | b'r' | b't')
        && i.checked_sub(2).and_then(|p| text.get(p)) == Some(&b'\\')
}

/// The certificates in one embedded base64 run (several when it holds concatenated DER).
fn embedded_certificates(run: &[u8]) -> Vec<Vec<u8>> {
    let text = unescape(run);
    let b64: Vec<u8> = text
        .into_iter()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let Ok(data) = BASE64.decode(&b64) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut rest = data.as_slice();
    while let Some(len) = der_element_len(rest) {
        let (head, tail) = rest.split_at(len.min(rest.len()));
        if !looks_like_certificate(head) {
            break;
        }
        out.push(head.to_vec());
        rest = tail;
    }
    out
}

/// A DER element's (first) tag octet, header length and total length.
fn tlv(data: &[u8]) -> Option<(u8, usize, usize)> {
    let (t, _) = read_tlv(data)?;
    let total = t.raw.len();
    Some((*t.tag.first()?, total - t.content.len(), total))
}

/// The tags of the elements that make up `content` exactly, or `None`.
fn child_tags(content: &[u8], max: usize) -> Option<Vec<(u8, &[u8])>> {
    let mut out = Vec::new();
    let mut rest = content;
    while !rest.is_empty() {
        if out.len() == max {
            return None;
        }
        let (tag, header, total) = tlv(rest)?;
        out.push((tag, rest.get(header..total)?));
        rest = rest.get(total..)?;
    }
    Some(out)
}

/// Whether `der` is one DER element shaped like an X.509 certificate (RFC 5280 §4.1): a SEQUENCE
/// of TBSCertificate (SEQUENCE), signatureAlgorithm (SEQUENCE) and signatureValue (BIT STRING);
/// the TBS starts with an optional `[0]` version, the serial (INTEGER) and the signature,
/// issuer and validity SEQUENCEs. CRLs, OCSP responses and public keys do not pass.
pub fn looks_like_certificate(der: &[u8]) -> bool {
    let Some((0x30, header, total)) = tlv(der) else {
        return false;
    };
    if total != der.len() {
        return false;
    }
    let Some(outer) = der.get(header..).and_then(|c| child_tags(c, 3)) else {
        return false;
    };
    let [(0x30, tbs), (0x30, _), (0x03, _)] = outer.as_slice() else {
        return false;
    };
    let Some(fields) = child_tags(tbs, 16) else {
        return false;
    };
    let mut tags = fields.iter().map(|(t, _)| *t).peekable();
    if tags.peek() == Some(&0xa0) {
        tags.next();
    }
    let head: Vec<u8> = tags.take(4).collect();
    head == [0x02, 0x30, 0x30, 0x30]
}

/// The base64 of a PEM body decoded (through `rustls-pki-types`): escapes undone, RFC 1421
/// header lines (`Proc-Type: …`) and whitespace dropped.
fn decode_pem_body(body: &[u8]) -> Result<Vec<u8>, String> {
    let text = unescape(body);
    let mut b64 = Vec::with_capacity(text.len());
    for piece in text.split(|b| *b == b'\n') {
        if piece.contains(&b':') {
            continue;
        }
        b64.extend(piece.iter().filter(|b| !b.is_ascii_whitespace()));
    }
    if let Some(bad) = b64.iter().find(|b| !is_base64(**b)) {
        return Err(format!("byte 0x{bad:02x} is not base64"));
    }
    // An empty body (found by fuzzing: `fuzz/`, target `certfile`) is no certificate.
    if b64.iter().all(|b| *b == b'=') {
        return Err("no base64 in the block".to_owned());
    }
    let mut pem = Vec::with_capacity(b64.len() + b64.len() / 64 + 64);
    pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.chunks(64) {
        pem.extend_from_slice(chunk);
        pem.push(b'\n');
    }
    pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
    match CertificateDer::from_pem_slice(&pem) {
        Ok(der) => Ok(der.to_vec()),
        // Unpadded base64 (some tools strip the `=`), which rustls-pki-types refuses.
        Err(e) => BASE64.decode(&b64).map_err(|_| e.to_string()),
    }
}

/// Undoes the escapes text formats put on PEM and base64: `\n`, `\r`, `\\n` and `\u000a` become
/// line ends, `\t` a space, `\/` and `\u002f` a slash; other backslashes are dropped.
fn unescape(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while let Some(&b) = body.get(i) {
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let mut j = i;
        while body.get(j) == Some(&b'\\') {
            j += 1;
        }
        match body.get(j) {
            Some(b'n' | b'r') => {
                out.push(b'\n');
                i = j + 1;
            }
            Some(b't') => {
                out.push(b' ');
                i = j + 1;
            }
            Some(b'/') => {
                out.push(b'/');
                i = j + 1;
            }
            Some(b'u') => match body.get(j + 1..j + 5).and_then(hex4) {
                Some(0x0a | 0x0d) => {
                    out.push(b'\n');
                    i = j + 5;
                }
                Some(cp @ 0x21..=0x7e) => {
                    out.push(u8::try_from(cp).unwrap_or(b' '));
                    i = j + 5;
                }
                Some(_) => {
                    out.push(b' ');
                    i = j + 5;
                }
                None => i = j,
            },
            _ => i = j,
        }
    }
    out
}

fn hex4(digits: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(digits).ok()?;
    u32::from_str_radix(text, 16).ok()
}

/// Decodes `%XX` sequences (other bytes, malformed escapes included, as they are).
fn percent_decode(text: &[u8]) -> Vec<u8> {
    percent_encoding::percent_decode(text).collect()
}

/// Position of the first `-----BEGIN ` that starts a boundary with a plausible label.
fn find_begin(text: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(pos) = text.get(from..).and_then(|t| find(t, b"-----BEGIN ")) {
        let at = from + pos;
        let after = text.get(at + 11..).unwrap_or_default();
        if let Some(end) = find(after, b"-----") {
            let label = after.get(..end).unwrap_or_default();
            if label.len() <= MAX_LABEL_BYTES
                && label
                    .iter()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b' ')
            {
                return Some(at);
            }
        }
        from = at + 11;
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    let first = *needle.first()?;
    let mut from = 0;
    while let Some(p) = haystack.get(from..)?.iter().position(|b| *b == first) {
        let at = from + p;
        if haystack.get(at..at + needle.len()) == Some(needle) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle).is_some()
}

pub(crate) fn trim_ascii(line: &[u8]) -> &[u8] {
    let start = line
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(line.len());
    let end = line
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |p| p + 1);
    line.get(start..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(text: &str) -> Vec<Found> {
        let mut s = TextScanner::default();
        let mut out = Vec::new();
        for (i, line) in text.split('\n').enumerate() {
            s.line(i as u64 + 1, line.as_bytes(), &mut out);
        }
        s.finish(&mut out);
        out
    }

    #[test]
    fn escapes_are_undone() {
        assert_eq!(unescape(br"ab\ncd\\nef\/g\u000ah\tz"), b"ab\ncd\nef/g\nh z");
        assert_eq!(percent_decode(b"a%20b%0A%zz"), b"a b\n%zz");
        assert_eq!(trim_ascii(b"  ab \r\n"), b"ab");
        assert_eq!(trim_ascii(b" \r\n"), b"");
    }

    #[test]
    fn boundaries_need_a_label_and_closing_dashes() {
        assert_eq!(find_begin(b"x -----BEGIN CERTIFICATE----- y"), Some(2));
        assert_eq!(find_begin(b"-----BEGIN certificate-----"), None);
        assert_eq!(find_begin(b"-----BEGIN CERTIFICATE"), None);
    }

    #[test]
    fn shapes_of_non_certificates_are_refused() {
        // A SEQUENCE holding an INTEGER: DER, but no certificate.
        assert!(!looks_like_certificate(&[0x30, 0x03, 0x02, 0x01, 0x05]));
        assert!(!looks_like_certificate(&[0x30, 0x82, 0x01]));
        assert!(!looks_like_certificate(&[]));
    }

    #[test]
    fn a_non_certificate_block_is_skipped_and_a_file_without_certificates_is_a_problem() {
        let found = scan("-----BEGIN PRIVATE KEY-----\\nMIIB\\n-----END PRIVATE KEY-----\n");
        assert!(
            matches!(
                found.as_slice(),
                [
                    Found::Skipped { line: 1 },
                    Found::Problem {
                        line: None,
                        kind: ProblemKind::NoCertificate
                    }
                ]
            ),
            "{found:?}"
        );
    }
}
