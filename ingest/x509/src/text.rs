//! Certificate text: ASN.1 string types to Rust strings, and distinguished names.
//!
//! Certificate text is attacker-controlled and often malformed: decoding is lossy, never fails,
//! and U+0000 becomes U+2400 (␀) because PostgreSQL `text` cannot hold NUL and a hidden NUL is how
//! `null.python.org\0example.org`-style names fool matchers.

use certhist_model::DistinguishedName;
use x509_parser::der_parser::asn1_rs::{Any, Class, Tag};
use x509_parser::x509::X509Name;

/// Makes NUL visible (U+2400 SYMBOL FOR NULL).
pub(crate) fn visible_nul(s: String) -> String {
    if s.contains('\0') {
        s.replace('\0', "\u{2400}")
    } else {
        s
    }
}

/// Bytes as UTF-8, or Latin-1 when they are not UTF-8 (T.61 strings are in practice either).
fn utf8_or_latin1(data: &[u8]) -> String {
    match std::str::from_utf8(data) {
        Ok(s) => s.to_owned(),
        Err(_) => data.iter().map(|b| char::from(*b)).collect(),
    }
}

/// UTF-16BE (BMPString, X.680 §41); an odd trailing byte and lone surrogates become U+FFFD.
fn utf16be(data: &[u8]) -> String {
    let units = data
        .chunks(2)
        .map(|c| match c {
            [a, b] => u16::from_be_bytes([*a, *b]),
            _ => 0xfffd,
        })
        .collect::<Vec<_>>();
    String::from_utf16_lossy(&units)
}

/// UTF-32BE (UniversalString, X.680 §41); invalid code points become U+FFFD.
fn utf32be(data: &[u8]) -> String {
    data.chunks(4)
        .map(|c| match c {
            [a, b, x, y] => {
                char::from_u32(u32::from_be_bytes([*a, *b, *x, *y])).unwrap_or('\u{fffd}')
            }
            _ => '\u{fffd}',
        })
        .collect()
}

/// Decodes a universal-class string value; `None` when the tag is not a string type.
pub(crate) fn decode_string(tag: Tag, data: &[u8]) -> Option<String> {
    let s = match tag {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::NumericString
        | Tag::Ia5String
        | Tag::VisibleString
        | Tag::GraphicString
        | Tag::GeneralString => String::from_utf8_lossy(data).into_owned(),
        Tag::T61String | Tag::VideotexString => utf8_or_latin1(data),
        Tag::BmpString => utf16be(data),
        Tag::UniversalString => utf32be(data),
        _ => return None,
    };
    Some(visible_nul(s))
}

/// The value of an attribute as text: a string type decoded, anything else as `#` + hex of its
/// encoding (RFC 4514 §2.4).
pub(crate) fn any_to_text(value: &Any<'_>) -> String {
    if value.class() == Class::Universal {
        if let Some(s) = decode_string(value.tag(), value.data) {
            return s;
        }
    }
    let mut out = String::from("#");
    let tag_num = value.tag().0;
    if tag_num < 31 {
        let class_bits: u8 = match value.class() {
            Class::Universal => 0x00,
            Class::Application => 0x40,
            Class::ContextSpecific => 0x80,
            Class::Private => 0xc0,
        };
        let constructed: u8 = if value.header.is_constructed() {
            0x20
        } else {
            0
        };
        let mut enc = vec![class_bits | constructed | tag_num as u8];
        super::der::push_len(&mut enc, value.data.len());
        out.push_str(&hex::encode(enc));
    }
    out.push_str(&hex::encode(value.data));
    out
}

/// Short names of RFC 4514 §3; other attribute types are written as dotted OIDs.
fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.6" => "C",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// Escapes an attribute value as RFC 4514 §2.4 asks.
fn escape_value(value: &str, out: &mut String) {
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, '"' | '+' | ',' | ';' | '<' | '>' | '\\')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
}

pub(crate) const OID_CN: &str = "2.5.4.3";
pub(crate) const OID_EMAIL: &str = "1.2.840.113549.1.9.1";

/// Builds the stored form of a Name: the RFC 4514 string (RDNs last-to-first, as RFC 4514 §2.1
/// orders them; multi-valued RDNs joined with `+`) and the first value of each pivot attribute.
pub(crate) fn distinguished_name(name: &X509Name<'_>) -> DistinguishedName {
    let mut dn = DistinguishedName::default();
    let mut rdn_texts: Vec<String> = Vec::new();
    for rdn in name.iter_rdn() {
        let mut text = String::new();
        for (i, atv) in rdn.iter().enumerate() {
            if i > 0 {
                text.push('+');
            }
            let oid = atv.attr_type().to_id_string();
            let value = any_to_text(atv.attr_value());
            match short_name(&oid) {
                Some(short) => text.push_str(short),
                None => text.push_str(&oid),
            }
            text.push('=');
            escape_value(&value, &mut text);
            let slot = match oid.as_str() {
                OID_CN => &mut dn.cn,
                "2.5.4.10" => &mut dn.o,
                "2.5.4.11" => &mut dn.ou,
                "2.5.4.6" => &mut dn.c,
                "2.5.4.7" => &mut dn.l,
                "2.5.4.8" => &mut dn.st,
                OID_EMAIL => &mut dn.email,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value);
            }
        }
        rdn_texts.push(text);
    }
    if !rdn_texts.is_empty() {
        rdn_texts.reverse();
        dn.dn = Some(rdn_texts.join(","));
    }
    dn
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_types() {
        assert_eq!(
            decode_string(Tag::BmpString, &[0x00, 0x41, 0x00, 0xf1]).unwrap(),
            "Añ"
        );
        assert_eq!(
            decode_string(Tag::BmpString, &[0x00, 0x41, 0x00]).unwrap(),
            "A\u{fffd}"
        );
        assert_eq!(
            decode_string(Tag::UniversalString, &[0, 0, 0, 0x41, 0, 0x11, 0, 0]).unwrap(),
            "A\u{fffd}"
        );
        assert_eq!(decode_string(Tag::T61String, &[0x41, 0xe9]).unwrap(), "Aé");
        assert_eq!(
            decode_string(Tag::T61String, "Aé".as_bytes()).unwrap(),
            "Aé"
        );
        assert_eq!(
            decode_string(Tag::Utf8String, &[0x41, 0xff]).unwrap(),
            "A\u{fffd}"
        );
        assert_eq!(
            decode_string(Tag::Ia5String, b"a\0b").unwrap(),
            "a\u{2400}b"
        );
        assert!(decode_string(Tag::Integer, &[1]).is_none());
    }

    #[test]
    fn escaping() {
        let mut out = String::new();
        escape_value(" #a,b+c\\ ", &mut out);
        assert_eq!(out, "\\ #a\\,b\\+c\\\\\\ ");
        let mut out = String::new();
        escape_value("#x", &mut out);
        assert_eq!(out, "\\#x");
    }
}
