//! Identifiers and timestamps of the STIX and MISP exports.
//!
//! - STIX Cyber-observable ids are what the `stix2` library computes (stix2 3.0.2
//!   `base.py` `_generate_id`): UUIDv5 in the namespace `00abedb4-aa42-466c-9c01-fed23315a9b7`
//!   over the JSON-canonical (RFC 8785) form of the id-contributing properties.
//! - Every other id (bundle, identity, observed-data, MISP event, attribute, object, reference)
//!   is a version-4-form UUID whose bits come from SHA-256 of what the object describes: the same
//!   data exported twice gives the same ids (the CLI and the API write the same bytes, and a
//!   platform re-importing an export recognises the objects), and a changed count or time gives
//!   a new one.

use chrono::{DateTime, SecondsFormat, Utc};
use sha1::Digest as _;

/// The STIX 2.1 namespace of deterministic SCO ids.
const SCO_NAMESPACE: [u8; 16] = [
    0x00, 0xab, 0xed, 0xb4, 0xaa, 0x42, 0x46, 0x6c, 0x9c, 0x01, 0xfe, 0xd2, 0x33, 0x15, 0xa9, 0xb7,
];

fn format(b: &[u8; 16]) -> String {
    let h = certhist_model::hex_lower(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn with_version(digest: &[u8], version: u8) -> [u8; 16] {
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | (version << 4);
    b[8] = (b[8] & 0x3f) | 0x80;
    b
}

/// UUIDv5 (RFC 4122 §4.3) of `name` in the STIX SCO namespace.
pub(crate) fn sco_uuid(name: &str) -> String {
    let mut h = sha1::Sha1::new();
    h.update(SCO_NAMESPACE);
    h.update(name.as_bytes());
    format(&with_version(&h.finalize(), 5))
}

/// A version-4-form UUID derived from `parts` (see the module documentation).
pub(crate) fn derived_uuid(parts: &[&[u8]]) -> String {
    format(&derived_bytes(parts))
}

/// The bytes of [`derived_uuid`].
pub(crate) fn derived_bytes(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(u64::try_from(p.len()).unwrap_or(0).to_be_bytes());
        h.update(p);
    }
    with_version(&h.finalize(), 4)
}

/// Formats UUID bytes.
pub(crate) fn uuid_text(b: &[u8; 16]) -> String {
    format(b)
}

/// A JSON string literal.
pub(crate) fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

/// RFC 3339 UTC with `Z` and whole seconds unless the time has a fraction (CSV, MISP).
pub(crate) fn time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// RFC 3339 UTC with `Z` and milliseconds (STIX timestamps).
pub(crate) fn stix_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sco_ids_match_the_stix2_library() {
        // Computed with stix2 3.0.2: IPv4Address(value="203.0.113.5").id.
        assert_eq!(
            sco_uuid(r#"{"value":"203.0.113.5"}"#),
            "826fe3cb-56b0-5620-9d30-4c17ed7b24e3"
        );
        let d = derived_uuid(&[b"x"]);
        assert_eq!(&d[14..15], "4");
    }
}
