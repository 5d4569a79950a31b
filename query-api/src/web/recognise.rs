//! What the search box was given: every plausible reading of the text, most likely first.
//! One reading → the UI goes straight there; several → it offers them as links; none → it says
//! so. Every link is built from the parsed value (an address, hex digits), never from the raw
//! text, except names and field values, which only ever go into a query string.

use std::net::IpAddr;

use certhist_cryptnet::ocsp::{decode_get_url, HashAlgorithm};
use ipnet::IpNet;

use super::links;

/// One reading of the search text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reading {
    /// An IP address.
    Ip(IpAddr),
    /// A CIDR block (more than one address).
    Cidr(IpNet),
    /// A certificate SHA-1 (lower-case hex).
    Sha1(String),
    /// A certificate SHA-256 (lower-case hex).
    Sha256(String),
    /// A serial number as typed without separators (hex or decimal; the serial page tries
    /// every reading).
    Serial(String),
    /// An OCSP CertID taken from an OCSP GET URL.
    CertId {
        /// Serial in upper-case hex.
        serial: String,
        /// issuerNameHash (hex), when SHA-1 (the only hash the store indexes).
        name_hash: Option<String>,
        /// issuerKeyHash (hex), when SHA-1.
        key_hash: Option<String>,
    },
    /// A tag (lower case; may hold `*` wildcards): the targets carrying it.
    Tag(String),
    /// A certificate field search (`field` is a `SearchField` name; `exact` adds `match=exact`).
    Field {
        /// The field.
        field: &'static str,
        /// The value or `*` pattern.
        q: String,
    },
}

impl Reading {
    /// Where the reading leads.
    pub fn href(&self) -> String {
        match self {
            Reading::Ip(ip) => links::ip(*ip),
            Reading::Cidr(net) => links::net(net),
            Reading::Sha1(h) | Reading::Sha256(h) => format!("/certificate/{h}"),
            Reading::Serial(s) => links::serial(s, None, None),
            Reading::CertId {
                serial,
                name_hash,
                key_hash,
            } => links::serial(serial, name_hash.as_deref(), key_hash.as_deref()),
            Reading::Field { field, q } => links::search(field, q, None),
            Reading::Tag(t) => links::tag(t),
        }
    }

    /// How the readings list describes it.
    pub fn describe(&self) -> String {
        match self {
            Reading::Ip(ip) => format!("IP address {ip}: its certificate history"),
            Reading::Cidr(net) => format!("CIDR block {net}: certificate history of the block"),
            Reading::Sha1(h) => format!("certificate with SHA-1 {h}"),
            Reading::Sha256(h) => format!("certificate with SHA-256 {h}"),
            Reading::Serial(s) => format!("certificates with serial number {s}"),
            Reading::CertId {
                serial, name_hash, ..
            } => match name_hash {
                Some(n) => format!("OCSP CertID: serial {serial}, issuer name hash {n}"),
                None => format!("OCSP CertID: serial {serial} (non-SHA-1 issuer hashes)"),
            },
            Reading::Field { field, q } => {
                let what = match *field {
                    "name" => "certificates for the name",
                    "email" => "certificates for the email address",
                    "cn" => "certificates whose subject CN is",
                    "subject-o" => "certificates whose subject O is",
                    "issuer-o" => "certificates whose issuer O is",
                    "issuer-cn" => "certificates whose issuer CN is",
                    other => other,
                };
                format!("{what} {q}")
            }
            Reading::Tag(t) => format!("addresses, certificates and names tagged {t}"),
        }
    }
}

/// Longest text the box reads (longer input is not a value anyone types).
pub const MAX_QUERY: usize = 2048;

/// Every reading of `text`, most likely first.
pub fn recognise(text: &str) -> Vec<Reading> {
    let t = text.trim();
    if t.is_empty() || t.len() > MAX_QUERY {
        return Vec::new();
    }
    let lower = t.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return url_readings(t);
    }
    // `tag:NAME` or `#NAME` (a `*` pattern allowed): a tag and nothing else.
    if let Some(rest) = lower
        .strip_prefix("tag:")
        .or_else(|| lower.strip_prefix('#'))
    {
        return tag_reading(rest).into_iter().collect();
    }
    // An address, optionally bracketed (`[2001:db8::1]`).
    let unbracketed = t
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(t);
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        return vec![Reading::Ip(ip)];
    }
    if t.contains('/') {
        if let Ok(net) = t.parse::<IpNet>() {
            return vec![if net.prefix_len() == net.max_prefix_len() {
                Reading::Ip(net.addr())
            } else {
                Reading::Cidr(net.trunc())
            }];
        }
        return Vec::new();
    }
    if let Some(r) = hex_readings(t) {
        return r;
    }
    if is_email(t) {
        return vec![Reading::Field {
            field: "email",
            q: lower,
        }];
    }
    if is_host_pattern(&lower) {
        let mut out = vec![Reading::Field {
            field: "name",
            q: lower.clone(),
        }];
        // A bare word (no dot, no `*`): also the names containing it, and an organisation.
        if !lower.contains('.') && !lower.contains('*') {
            if lower.len() >= 3 {
                out.push(Reading::Field {
                    field: "name",
                    q: format!("*{lower}*"),
                });
            }
            out.push(Reading::Field {
                field: "subject-o",
                q: t.to_owned(),
            });
            // … and a tag of that name.
            out.extend(tag_reading(&lower));
        }
        return out;
    }
    // Free text (spaces, punctuation): an organisation or CN.
    vec![
        Reading::Field {
            field: "subject-o",
            q: t.to_owned(),
        },
        Reading::Field {
            field: "issuer-o",
            q: t.to_owned(),
        },
        Reading::Field {
            field: "cn",
            q: t.to_owned(),
        },
        Reading::Field {
            field: "issuer-cn",
            q: t.to_owned(),
        },
    ]
}

/// A tag reading when `text` is a tag (or a `*` pattern of one).
fn tag_reading(text: &str) -> Option<Reading> {
    let text = text.trim();
    let bare = text.replace('*', "");
    if text.contains("**") || bare.is_empty() {
        return None;
    }
    // Validate the literal parts: a pattern `apt*` checks as `apt`.
    let probe = if text.starts_with('*') {
        format!("a{bare}")
    } else {
        bare
    };
    certhist_model::views::parse_tag(&probe)
        .ok()
        .map(|_| Reading::Tag(text.to_owned()))
}

/// An OCSP GET URL → its CertIDs; any other URL → a name search of its host.
fn url_readings(url: &str) -> Vec<Reading> {
    if let Ok(decoded) = decode_get_url(url) {
        let mut out: Vec<Reading> = Vec::new();
        for id in decoded.cert_ids {
            let sha1 = id.hash_algorithm == HashAlgorithm::Sha1;
            let r = Reading::CertId {
                serial: id.serial.to_hex(),
                name_hash: sha1.then(|| certhist_model::hex_lower(&id.issuer_name_hash)),
                key_hash: sha1.then(|| certhist_model::hex_lower(&id.issuer_key_hash)),
            };
            if !out.contains(&r) {
                out.push(r);
            }
        }
        if !out.is_empty() {
            return out;
        }
    }
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = after_scheme
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    let host = host.to_ascii_lowercase();
    if let Ok(ip) = host.parse::<IpAddr>() {
        return vec![Reading::Ip(ip)];
    }
    if !host.is_empty() && is_host_pattern(&host) {
        return vec![Reading::Field {
            field: "name",
            q: host,
        }];
    }
    Vec::new()
}

/// Hex (with or without `:` / space separators, optional `0x`) and decimal digits.
fn hex_readings(t: &str) -> Option<Vec<Reading>> {
    let body = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let separated = body.contains([':', ' ']);
    let digits: String = body.chars().filter(|c| !matches!(c, ':' | ' ')).collect();
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    if separated
        && !body
            .split([':', ' '])
            .all(|g| g.len() <= 2 && !g.is_empty())
    {
        // `12 34 5678` is not a hex dump; `a:b` pairs must be octets.
        return None;
    }
    let lower = digits.to_ascii_lowercase();
    let has_prefix = body.len() != t.len();
    let all_decimal = digits.chars().all(|c| c.is_ascii_digit());
    let has_digit = digits.chars().any(|c| c.is_ascii_digit());
    let serial = Reading::Serial(digits.to_ascii_uppercase());
    if has_prefix {
        return Some(vec![serial]);
    }
    match digits.len() {
        40 => Some(vec![Reading::Sha1(lower), serial]),
        64 => Some(vec![Reading::Sha256(lower)]),
        _ if separated || all_decimal => Some(vec![serial]),
        // Hex without separators: a serial if it looks like one (a digit and 8+ characters),
        // otherwise a word (`cafe`, `deadbeef` is both).
        n if has_digit && n >= 8 => Some(vec![serial]),
        n if n >= 8 => Some(vec![
            serial,
            Reading::Field {
                field: "name",
                q: lower,
            },
        ]),
        _ => None,
    }
}

fn is_email(t: &str) -> bool {
    let Some((local, domain)) = t.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && !t.chars().any(|c| c.is_whitespace() || c.is_control())
        && domain.contains('.')
}

/// Host-name characters, with `*` wildcards.
fn is_host_pattern(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 253
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '*'))
        && t.chars().any(|c| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(field: &'static str, q: &str) -> Reading {
        Reading::Field {
            field,
            q: q.to_owned(),
        }
    }

    #[test]
    fn addresses_and_blocks() {
        assert_eq!(
            recognise(" 192.0.2.10 "),
            vec![Reading::Ip("192.0.2.10".parse().unwrap())]
        );
        assert_eq!(
            recognise("2001:db8::1"),
            vec![Reading::Ip("2001:db8::1".parse().unwrap())]
        );
        assert_eq!(
            recognise("[2001:db8::1]"),
            vec![Reading::Ip("2001:db8::1".parse().unwrap())]
        );
        assert_eq!(
            recognise("192.0.2.0/24"),
            vec![Reading::Cidr("192.0.2.0/24".parse().unwrap())]
        );
        // Host bits are dropped; a /32 is the address.
        assert_eq!(
            recognise("192.0.2.77/24"),
            vec![Reading::Cidr("192.0.2.0/24".parse().unwrap())]
        );
        assert_eq!(
            recognise("192.0.2.7/32"),
            vec![Reading::Ip("192.0.2.7".parse().unwrap())]
        );
        assert_eq!(
            recognise("2001:db8::/48"),
            vec![Reading::Cidr("2001:db8::/48".parse().unwrap())]
        );
        assert_eq!(recognise("192.0.2.0/33"), vec![]);
        assert_eq!(recognise("a/b"), vec![]);
        assert_eq!(recognise("999.1.1.1"), vec![field("name", "999.1.1.1")]);
    }

    #[test]
    fn hashes_and_serials() {
        let sha1 = "e3b32dab1e685b16945d1499824f6569583a9a61";
        assert_eq!(
            recognise(sha1),
            vec![
                Reading::Sha1(sha1.to_owned()),
                Reading::Serial(sha1.to_uppercase())
            ]
        );
        // Colon-separated fingerprints, upper case.
        let colons = "E3:B3:2D:AB:1E:68:5B:16:94:5D:14:99:82:4F:65:69:58:3A:9A:61";
        assert_eq!(recognise(colons)[0], Reading::Sha1(sha1.to_owned()));
        let sha256 = "541cd0298cf1f19aaef4386e0fc4c13e892785e71dba5133b6b9820ef61b2ce8";
        assert_eq!(
            recognise(&sha256.to_uppercase()),
            vec![Reading::Sha256(sha256.to_owned())]
        );
        assert_eq!(
            recognise("02:76:56:89:fe"),
            vec![Reading::Serial("02765689FE".to_owned())]
        );
        assert_eq!(
            recognise("0x2765689FEE52F85C4C8A47650E84BBE"),
            vec![Reading::Serial(
                "2765689FEE52F85C4C8A47650E84BBE".to_owned()
            )]
        );
        assert_eq!(
            recognise("2765689FEE52F85C4C8A47650E84BBE"),
            vec![Reading::Serial(
                "2765689FEE52F85C4C8A47650E84BBE".to_owned()
            )]
        );
        // Decimal.
        assert_eq!(
            recognise("123456789"),
            vec![Reading::Serial("123456789".to_owned())]
        );
        assert_eq!(recognise("443"), vec![Reading::Serial("443".to_owned())]);
        // Letters-only hex of 8+: a serial or a word.
        assert_eq!(
            recognise("deadbeef"),
            vec![
                Reading::Serial("DEADBEEF".to_owned()),
                field("name", "deadbeef")
            ]
        );
        // Short hex words are words.
        assert_eq!(
            recognise("cafe"),
            vec![
                field("name", "cafe"),
                field("name", "*cafe*"),
                field("subject-o", "cafe"),
                Reading::Tag("cafe".to_owned()),
            ]
        );
        // Bad separators: not a hex dump.
        assert_eq!(recognise("12 3456")[0], field("subject-o", "12 3456"));
        assert_eq!(recognise("ab:cdef")[0], field("subject-o", "ab:cdef"));
        // `ab::cd` is an IPv6 address.
        assert_eq!(
            recognise("ab::cd"),
            vec![Reading::Ip("ab::cd".parse().unwrap())]
        );
    }

    #[test]
    fn names_and_patterns() {
        assert_eq!(recognise("GitHub.com"), vec![field("name", "github.com")]);
        assert_eq!(
            recognise("*.example.com"),
            vec![field("name", "*.example.com")]
        );
        assert_eq!(recognise("*part*"), vec![field("name", "*part*")]);
        assert_eq!(recognise("www.*"), vec![field("name", "www.*")]);
        assert_eq!(
            recognise("paypal"),
            vec![
                field("name", "paypal"),
                field("name", "*paypal*"),
                field("subject-o", "paypal"),
                Reading::Tag("paypal".to_owned()),
            ]
        );
        assert_eq!(
            recognise("ab"),
            vec![
                field("name", "ab"),
                field("subject-o", "ab"),
                Reading::Tag("ab".to_owned())
            ]
        );
        assert_eq!(recognise("*")[0], field("subject-o", "*"));
    }

    #[test]
    fn tags() {
        let tag = |t: &str| Reading::Tag(t.to_owned());
        assert_eq!(recognise("tag:APT28"), vec![tag("apt28")]);
        assert_eq!(recognise("#campaign-x"), vec![tag("campaign-x")]);
        assert_eq!(
            recognise(" #c2:cobalt/strike "),
            vec![tag("c2:cobalt/strike")]
        );
        assert_eq!(recognise("tag:apt*"), vec![tag("apt*")]);
        assert_eq!(recognise("#*strike"), vec![tag("*strike")]);
        // Not a tag: the syntax is refused, nothing is read.
        assert_eq!(recognise("#<script>"), vec![]);
        assert_eq!(recognise("tag:"), vec![]);
        assert_eq!(recognise("#-x"), vec![]);
        // A bare word offers its tag among the readings.
        assert!(recognise("campaign-x").contains(&tag("campaign-x")));
        assert_eq!(tag("a b&c").href(), "/tags?q=a+b%26c");
    }

    #[test]
    fn emails_and_free_text() {
        assert_eq!(
            recognise("Admin@Example.com"),
            vec![field("email", "admin@example.com")]
        );
        assert_eq!(
            recognise("Let's Encrypt"),
            vec![
                field("subject-o", "Let's Encrypt"),
                field("issuer-o", "Let's Encrypt"),
                field("cn", "Let's Encrypt"),
                field("issuer-cn", "Let's Encrypt"),
            ]
        );
        // Hostile text is only ever a field value (it goes into a query string).
        let xss = "<script>alert(1)</script>";
        assert!(recognise(xss)
            .iter()
            .all(|r| matches!(r, Reading::Field { q, .. } if q == xss)));
        assert_eq!(recognise(""), vec![]);
        assert_eq!(recognise("   "), vec![]);
        assert_eq!(recognise(&"a".repeat(MAX_QUERY + 1)), vec![]);
    }

    #[test]
    fn urls() {
        // An OCSP GET URL (built with the cryptnet code from a known CertID).
        let id = certhist_cryptnet::ocsp::CertId {
            hash_algorithm: HashAlgorithm::Sha1,
            issuer_name_hash: vec![0x11; 20],
            issuer_key_hash: vec![0x22; 20],
            serial: certhist_model::Serial::from_be_bytes(&[0x0a, 0xbc]),
        };
        let url =
            certhist_cryptnet::ocsp::build_get_url("http://ocsp.example.net", &[id]).expect("url");
        assert_eq!(
            recognise(&url),
            vec![Reading::CertId {
                serial: "ABC".to_owned(),
                name_hash: Some("11".repeat(20)),
                key_hash: Some("22".repeat(20)),
            }]
        );
        // Other URLs: their host.
        assert_eq!(
            recognise("https://user@WWW.Example.com:8443/path?q=1"),
            vec![field("name", "www.example.com")]
        );
        assert_eq!(
            recognise("http://192.0.2.1/x"),
            vec![Reading::Ip("192.0.2.1".parse().unwrap())]
        );
        assert_eq!(
            recognise("http://[2001:db8::5]:80/"),
            vec![Reading::Ip("2001:db8::5".parse().unwrap())]
        );
        assert_eq!(recognise("https://"), vec![]);
    }

    #[test]
    fn links_come_from_parsed_values() {
        assert_eq!(
            Reading::Ip("2001:db8::1".parse().unwrap()).href(),
            "/ip/2001:db8::1"
        );
        assert_eq!(
            Reading::Cidr("192.0.2.0/24".parse().unwrap()).href(),
            "/ip/192.0.2.0/24"
        );
        assert_eq!(
            field("name", "*.example.com").href(),
            "/names?field=name&q=*.example.com"
        );
        assert_eq!(
            field("subject-o", "a&b=c <x>").href(),
            "/names?field=subject-o&q=a%26b%3Dc+%3Cx%3E"
        );
        assert_eq!(
            Reading::CertId {
                serial: "ABC".into(),
                name_hash: Some("11".into()),
                key_hash: Some("22".into())
            }
            .href(),
            "/serial/ABC?issuer_name_hash=11&issuer_key_hash=22"
        );
    }
}
