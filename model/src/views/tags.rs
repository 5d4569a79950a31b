//! Tags and notes shared between analysts (issue 12): what they are attached to, and how a
//! target and a tag given by a user are read.
//!
//! A tag is attached to an address (`ip`), a CIDR block (`cidr`, stored as its network), a
//! certificate (`certificate`, by SHA-1) or a DNS name (`name`, lower-cased). Records carry the
//! full tag objects ([`Tag`], with author and time) and the notes; list items carry the tag names
//! only.

use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::views::CertSummary;
use crate::Sha1;

/// Longest tag, in characters (the schema's CHECK).
pub const MAX_TAG_CHARS: usize = 64;
/// Longest note, in characters (the schema's CHECK).
pub const MAX_NOTE_CHARS: usize = 10_000;
/// Longest DNS name (RFC 1035 §2.3.4, text form without the root dot).
pub const MAX_NAME_CHARS: usize = 253;

/// What a tag or note is attached to.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// A host address.
    Ip,
    /// A CIDR block (its network address and prefix length).
    Cidr,
    /// A certificate, by SHA-1.
    Certificate,
    /// A DNS name (lower-cased).
    Name,
}

impl TargetKind {
    /// Every kind.
    pub const ALL: [TargetKind; 4] = [
        TargetKind::Ip,
        TargetKind::Cidr,
        TargetKind::Certificate,
        TargetKind::Name,
    ];

    /// The stored and user-facing name.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Ip => "ip",
            TargetKind::Cidr => "cidr",
            TargetKind::Certificate => "certificate",
            TargetKind::Name => "name",
        }
    }

    /// Reads a stored or user-facing name (case-insensitive; `cert` is accepted for
    /// `certificate`).
    pub fn from_name(text: &str) -> Option<TargetKind> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("cert") {
            return Some(TargetKind::Certificate);
        }
        TargetKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(t))
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tagged or annotated thing, normalised: an address, a block (truncated to its network), a
/// certificate SHA-1, or a lower-cased DNS name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// A host address.
    Ip(IpAddr),
    /// A CIDR block, truncated to its network.
    Cidr(IpNet),
    /// A certificate by SHA-1.
    Certificate(Sha1),
    /// A DNS name, lower-cased, without a trailing dot.
    Name(String),
}

/// Why a kind, target value, tag or note given by a user is refused. [`TagInputError::parameter`]
/// names the parameter at fault (`kind`, `value`, `tag`, `body`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TagInputError {
    /// Unknown kind.
    #[error("unknown kind {0:?}; use one of ip, cidr, certificate, name")]
    Kind(String),
    /// The value is not a target of its kind.
    #[error("{0}")]
    Value(String),
    /// The tag breaks the tag syntax.
    #[error("{0}")]
    Tag(String),
    /// The note body is empty or too long.
    #[error("{0}")]
    Body(String),
}

impl TagInputError {
    /// The parameter at fault.
    pub fn parameter(&self) -> &'static str {
        match self {
            TagInputError::Kind(_) => "kind",
            TagInputError::Value(_) => "value",
            TagInputError::Tag(_) => "tag",
            TagInputError::Body(_) => "body",
        }
    }
}

/// Cuts user text before it is quoted in a message.
fn quoted(text: &str) -> String {
    let s: String = text.chars().take(60).collect();
    format!("{s:?}")
}

impl Target {
    /// Reads `value` as a target of `kind` (given by name). Addresses and blocks in any standard
    /// notation (a block may use `_` for `/`: `10.0.0.0_24`, for URL paths; it is truncated to its
    /// network), a certificate as 40 hex digits (`:` separators and any case allowed), a name as
    /// a DNS name (lower-cased; a leading `*.` wildcard and a trailing dot are allowed).
    pub fn parse(kind: &str, value: &str) -> Result<Target, TagInputError> {
        let kind = TargetKind::from_name(kind)
            .ok_or_else(|| TagInputError::Kind(kind.chars().take(60).collect()))?;
        Target::parse_kind(kind, value)
    }

    /// [`Target::parse`] with the kind already read.
    pub fn parse_kind(kind: TargetKind, value: &str) -> Result<Target, TagInputError> {
        let v = value.trim();
        match kind {
            TargetKind::Ip => v.parse::<IpAddr>().map(Target::Ip).map_err(|_| {
                TagInputError::Value(format!(
                    "{} is not an IP address (e.g. 192.0.2.7, 2001:db8::1); use kind cidr for a block",
                    quoted(v)
                ))
            }),
            TargetKind::Cidr => {
                let text = v.replacen('_', "/", 1);
                if let Ok(net) = text.parse::<IpNet>() {
                    // A /32 (/128) is a host: the same stored row as kind ip.
                    if net.prefix_len() == net.max_prefix_len() {
                        return Ok(Target::Ip(net.addr()));
                    }
                    return Ok(Target::Cidr(net.trunc()));
                }
                Err(TagInputError::Value(format!(
                    "{} is not a CIDR block (e.g. 192.0.2.0/24, or 192.0.2.0_24 in a URL path)",
                    quoted(v)
                )))
            }
            TargetKind::Certificate => {
                let cleaned: String = v.chars().filter(|c| *c != ':').collect();
                let bytes = (cleaned.len() == 40)
                    .then(|| hex::decode(&cleaned).ok())
                    .flatten()
                    .and_then(|b| Sha1::try_from(b.as_slice()).ok());
                bytes.map(Target::Certificate).ok_or_else(|| {
                    TagInputError::Value(format!(
                        "{} is not a certificate SHA-1 (40 hex digits)",
                        quoted(v)
                    ))
                })
            }
            TargetKind::Name => parse_name(v).map(Target::Name),
        }
    }

    /// Its kind.
    pub fn kind(&self) -> TargetKind {
        match self {
            Target::Ip(_) => TargetKind::Ip,
            Target::Cidr(_) => TargetKind::Cidr,
            Target::Certificate(_) => TargetKind::Certificate,
            Target::Name(_) => TargetKind::Name,
        }
    }

    /// The canonical value text: the address, `network/prefix`, the SHA-1 in lower-case hex, or
    /// the name.
    pub fn value(&self) -> String {
        match self {
            Target::Ip(ip) => ip.to_string(),
            Target::Cidr(net) => net.to_string(),
            Target::Certificate(sha1) => crate::hex_lower(sha1),
            Target::Name(name) => name.clone(),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind(), self.value())
    }
}

/// A DNS name as tags store it: ASCII (internationalised names in their `xn--` form),
/// lower-cased, labels of 1–63 letters, digits, `-` or `_`, at most 253 characters; a leading
/// `*.` wildcard and a trailing root dot are allowed (the dot is dropped).
fn parse_name(text: &str) -> Result<String, TagInputError> {
    let lower = text.trim().trim_end_matches('.').to_ascii_lowercase();
    let bad = |why: &str| {
        TagInputError::Value(format!("{} is not a DNS name: {why}", quoted(text.trim())))
    };
    if lower.is_empty() {
        return Err(bad("it is empty"));
    }
    if !lower.is_ascii() {
        return Err(bad(
            "use the ASCII (xn--) form of an internationalised name",
        ));
    }
    if lower.len() > MAX_NAME_CHARS {
        return Err(bad("longer than 253 characters"));
    }
    let body = lower.strip_prefix("*.").unwrap_or(&lower);
    for label in body.split('.') {
        if label.is_empty() {
            return Err(bad("empty label"));
        }
        if label.len() > 63 {
            return Err(bad("a label is longer than 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(bad("labels hold only letters, digits, `-` and `_`"));
        }
    }
    Ok(lower)
}

/// Reads a tag: trimmed and lower-cased, then 1–64 characters, starting with a letter or digit,
/// of `a-z 0-9 . _ : / @ + -` (e.g. `apt28`, `tlp:amber`, `campaign/2024-03`).
pub fn parse_tag(text: &str) -> Result<String, TagInputError> {
    let tag = text.trim().to_lowercase();
    let bad = |why: &str| TagInputError::Tag(format!("{} is not a valid tag: {why}", quoted(text)));
    if tag.is_empty() {
        return Err(bad("it is empty"));
    }
    if tag.chars().count() > MAX_TAG_CHARS {
        return Err(bad("longer than 64 characters"));
    }
    let first_ok = tag
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !first_ok {
        return Err(bad("it must start with a letter or a digit"));
    }
    let ok = tag.chars().all(|c| {
        c.is_ascii_lowercase()
            || c.is_ascii_digit()
            || matches!(c, '.' | '_' | ':' | '/' | '@' | '+' | '-')
    });
    if !ok {
        return Err(bad(
            "use only letters a-z, digits and . _ : / @ + - (letters are lower-cased)",
        ));
    }
    Ok(tag)
}

/// Checks a note body: 1–10,000 characters after trimming surrounding whitespace (which is
/// removed).
pub fn parse_note_body(text: &str) -> Result<String, TagInputError> {
    let body = text.trim();
    if body.is_empty() {
        return Err(TagInputError::Body("the note is empty".to_owned()));
    }
    if body.chars().count() > MAX_NOTE_CHARS {
        return Err(TagInputError::Body(format!(
            "the note is longer than {MAX_NOTE_CHARS} characters"
        )));
    }
    Ok(body.to_owned())
}

/// A tag on a target, with the analyst who added it first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Tag {
    /// The tag (lower case).
    #[schema(example = "apt28")]
    pub tag: String,
    /// What it is attached to.
    pub kind: TargetKind,
    /// The target: an address, `network/prefix`, a certificate SHA-1 (hex) or a name.
    pub value: String,
    /// Who added it first (the account name, `local` for the open server, `cli:USER` from the
    /// command line).
    pub author: String,
    /// When it was added.
    #[serde(serialize_with = "crate::serde_time::utc")]
    pub created_at: DateTime<Utc>,
}

/// A note on a target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Note {
    /// Its id (to delete it).
    pub id: i64,
    /// What it is attached to.
    pub kind: TargetKind,
    /// The target: an address, `network/prefix`, a certificate SHA-1 (hex) or a name.
    pub value: String,
    /// The text.
    pub body: String,
    /// Who wrote it.
    pub author: String,
    /// When.
    #[serde(serialize_with = "crate::serde_time::utc")]
    pub created_at: DateTime<Utc>,
}

/// The tags and notes of one target. For an address or block, the tags and notes of the
/// blocks containing it are included (each says which target it is on).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct TargetTags {
    /// The target's kind.
    pub kind: TargetKind,
    /// The target, normalised.
    pub value: String,
    /// Its tags, by tag then target.
    pub tags: Vec<Tag>,
    /// Its notes, oldest first.
    pub notes: Vec<Note>,
}

/// A tagged target, as a tag search lists it: the tag with its target, and the certificate when
/// the target is a stored certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct TaggedItem {
    /// The tag and what it is on.
    #[serde(flatten)]
    pub tag: Tag,
    /// The certificate, when the target is a certificate whose DER is stored.
    pub cert: Option<CertSummary>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_normalised() {
        assert_eq!(
            Target::parse("CIDR", "10.1.2.3_24").unwrap(),
            Target::Cidr("10.1.2.0/24".parse().unwrap())
        );
        assert_eq!(
            Target::parse("cidr", "10.1.2.3/24").unwrap().value(),
            "10.1.2.0/24"
        );
        assert_eq!(
            Target::parse("name", "WWW.Example.COM.").unwrap(),
            Target::Name("www.example.com".into())
        );
        assert_eq!(
            Target::parse("name", "*.example.com").unwrap().value(),
            "*.example.com"
        );
        let sha = "AB:".repeat(19) + "AB";
        assert_eq!(
            Target::parse("cert", &sha).unwrap().value(),
            "ab".repeat(20)
        );
        assert_eq!(
            Target::parse("ip", "2001:DB8::1").unwrap().value(),
            "2001:db8::1"
        );
        assert_eq!(
            Target::parse("cidr", "10.0.0.1/32").unwrap(),
            Target::Ip("10.0.0.1".parse().unwrap())
        );
    }

    #[test]
    fn bad_targets_name_the_parameter() {
        assert_eq!(Target::parse("host", "x").unwrap_err().parameter(), "kind");
        for (kind, value) in [
            ("ip", "10.0.0.0/24"),
            ("cidr", "10.0.0.1"),
            ("certificate", "abcd"),
            ("name", "a..b"),
            ("name", "bad name"),
            ("name", "ex\u{1b}ample.com"),
            ("name", "bücher.de"),
        ] {
            assert_eq!(
                Target::parse(kind, value).unwrap_err().parameter(),
                "value",
                "{kind} {value}"
            );
        }
    }

    #[test]
    fn tags_are_lower_cased_and_checked() {
        assert_eq!(parse_tag(" APT28 ").unwrap(), "apt28");
        assert_eq!(parse_tag("tlp:amber").unwrap(), "tlp:amber");
        assert_eq!(parse_tag("campaign/2024-03").unwrap(), "campaign/2024-03");
        for bad in ["", "-x", "a b", "a\u{202e}", &"a".repeat(65), "é"] {
            assert_eq!(parse_tag(bad).unwrap_err().parameter(), "tag", "{bad:?}");
        }
        assert_eq!(parse_tag(&"a".repeat(64)).unwrap().len(), 64);
    }

    #[test]
    fn note_bodies_are_checked() {
        assert_eq!(parse_note_body("  hi \n").unwrap(), "hi");
        assert!(parse_note_body("   ").is_err());
        assert!(parse_note_body(&"x".repeat(10_001)).is_err());
    }
}
