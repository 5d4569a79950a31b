//! The DER walker certhist shares (certificate files, CT precertificate checks, the TBS without
//! CT extensions): one element at a time, with the identifier and length octets decoded by
//! `asn1-rs` (the DER library under x509-parser), never by hand.
//!
//! Only definite lengths (X.690 §8.1.3) are accepted, which is all DER allows (X.690 §10.1).
//! Every slice access is checked; malformed input gives `None`, never a panic.

use x509_parser::der_parser::asn1_rs::{FromDer, Header, Length};

/// One tag-length-value element.
#[derive(Debug, Clone, Copy)]
pub struct Tlv<'a> {
    /// The identifier octets (one byte for tag numbers below 31, more for the high-tag form).
    pub tag: &'a [u8],
    /// The contents octets.
    pub content: &'a [u8],
    /// The whole element (identifier, length and contents), exactly as encoded.
    pub raw: &'a [u8],
}

/// Reads one element from the front of `input`; returns it and the rest. `None` when the header
/// is malformed (asn1-rs refuses it), the length is indefinite, or the contents run past the end.
pub fn read_tlv(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let (after_header, header) = Header::from_der(input).ok()?;
    let Length::Definite(len) = header.length() else {
        return None;
    };
    let header_len = input.len().checked_sub(after_header.len())?;
    let tag_len = header.raw_tag().map_or(1, <[u8]>::len);
    let tag = input.get(..tag_len)?;
    let end = header_len.checked_add(len)?;
    let content = input.get(header_len..end)?;
    let raw = input.get(..end)?;
    let rest = input.get(end..)?;
    Some((Tlv { tag, content, raw }, rest))
}

/// Length of the DER element at the start of `data` (tag, length and contents), if well-formed.
pub fn element_len(data: &[u8]) -> Option<usize> {
    read_tlv(data).map(|(tlv, _)| tlv.raw.len())
}

/// All elements of a constructed value's contents; `None` if any is malformed.
pub fn children(content: &[u8]) -> Option<Vec<Tlv<'_>>> {
    let mut all = Children::new(content);
    let out: Vec<Tlv<'_>> = all.by_ref().collect();
    all.clean_end().then_some(out)
}

/// Iterates over the elements of a constructed value's contents; stops at the first malformed one
/// (check [`Children::clean_end`] afterwards).
#[derive(Debug)]
pub struct Children<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Children<'a> {
    /// Walks the elements of `content`.
    pub fn new(content: &'a [u8]) -> Self {
        Children {
            rest: content,
            failed: false,
        }
    }

    /// True when every byte was consumed by well-formed elements.
    pub fn clean_end(&self) -> bool {
        !self.failed && self.rest.is_empty()
    }
}

impl<'a> Iterator for Children<'a> {
    type Item = Tlv<'a>;

    fn next(&mut self) -> Option<Tlv<'a>> {
        if self.rest.is_empty() || self.failed {
            return None;
        }
        match read_tlv(self.rest) {
            Some((tlv, rest)) => {
                self.rest = rest;
                Some(tlv)
            }
            None => {
                self.failed = true;
                None
            }
        }
    }
}

/// Appends a DER length (X.690 §10.1: shortest form).
pub fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        // Fits in 7 bits: the short form.
        out.push(len as u8);
        return;
    }
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    let significant = bytes.get(skip..).unwrap_or_default();
    out.push(0x80 | significant.len() as u8);
    out.extend_from_slice(significant);
}

/// Appends tag, DER length and contents.
pub fn push_tlv(out: &mut Vec<u8>, tag: &[u8], content: &[u8]) {
    out.extend_from_slice(tag);
    push_len(out, content.len());
    out.extend_from_slice(content);
}

/// Content octets of the OID 1.3.6.1.4.1.11129.2.4.3 (CT precertificate poison, RFC 6962 §3.1).
pub(crate) const OID_CT_POISON: &[u8] =
    &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x03];
/// Content octets of the OID 1.3.6.1.4.1.11129.2.4.2 (embedded SCT list, RFC 6962 §3.3).
pub(crate) const OID_CT_SCT_LIST: &[u8] =
    &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x02];

/// The TBSCertificate of a certificate's DER, re-encoded without the CT poison and SCT-list
/// extensions (RFC 6962 §3.2: the TBS a log signs for a precertificate equals the final
/// certificate's TBS minus its SCT list). Everything else is copied byte for byte, lengths are
/// re-encoded. `None` when the DER is not a SEQUENCE holding a SEQUENCE.
pub(crate) fn tbs_without_ct_extensions(cert_der: &[u8]) -> Option<Vec<u8>> {
    let (cert, _) = read_tlv(cert_der)?;
    if cert.tag != [0x30] {
        return None;
    }
    let (tbs, _) = read_tlv(cert.content)?;
    if tbs.tag != [0x30] {
        return None;
    }
    let mut body = Vec::with_capacity(tbs.content.len());
    let mut fields = Children::new(tbs.content);
    for field in fields.by_ref() {
        if field.tag != [0xa3] {
            body.extend_from_slice(field.raw);
            continue;
        }
        // extensions [3] EXPLICIT SEQUENCE SIZE (1..MAX) OF Extension (RFC 5280 §4.1)
        let (list, _) = read_tlv(field.content)?;
        let mut kept = Vec::with_capacity(list.content.len());
        let mut exts = Children::new(list.content);
        for ext in exts.by_ref() {
            let oid = Children::new(ext.content).next()?;
            let drop = oid.tag == [0x06]
                && (oid.content == OID_CT_POISON || oid.content == OID_CT_SCT_LIST);
            if !drop {
                kept.extend_from_slice(ext.raw);
            }
        }
        if !exts.clean_end() {
            return None;
        }
        let mut seq = Vec::with_capacity(kept.len() + 4);
        push_tlv(&mut seq, list.tag, &kept);
        push_tlv(&mut body, field.tag, &seq);
    }
    if !fields.clean_end() {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() + 4);
    push_tlv(&mut out, tbs.tag, &body);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_minimal() {
        for (len, want) in [
            (0usize, vec![0x00]),
            (0x7f, vec![0x7f]),
            (0x80, vec![0x81, 0x80]),
            (0xff, vec![0x81, 0xff]),
            (0x100, vec![0x82, 0x01, 0x00]),
            (0x1_0000, vec![0x83, 0x01, 0x00, 0x00]),
        ] {
            let mut out = Vec::new();
            push_len(&mut out, len);
            assert_eq!(out, want, "length {len}");
        }
    }

    #[test]
    fn reads_back_what_it_writes() {
        for len in [0usize, 1, 127, 128, 255, 256, 70_000] {
            let content = vec![0xab; len];
            let mut enc = Vec::new();
            push_tlv(&mut enc, &[0x04], &content);
            enc.push(0x99);
            let (tlv, rest) = read_tlv(&enc).unwrap();
            assert_eq!(tlv.content.len(), len);
            assert_eq!(rest, &[0x99]);
        }
    }

    #[test]
    fn rejects_indefinite_and_overlong() {
        assert!(read_tlv(&[0x30, 0x80, 0x00, 0x00]).is_none());
        assert!(read_tlv(&[0x30, 0x85, 1, 0, 0, 0, 0]).is_none());
        assert!(read_tlv(&[0x30, 0x05, 0x00]).is_none());
        assert!(read_tlv(&[]).is_none());
        assert!(read_tlv(&[0x1f]).is_none());
    }
}
