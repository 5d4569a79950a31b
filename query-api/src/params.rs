//! Query-string parsing with errors that name the parameter. Every handler reads its
//! parameters through [`Params`]: unknown or repeated parameters are a 400, never ignored.

use std::net::IpAddr;

use base64::Engine;
use certhist_model::{parse_cert_hash, parse_timestamp, CertHash};
use certhist_store::read::TimeWindow;
use chrono::{DateTime, Utc};
use ipnet::IpNet;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{bad_request, shorten, ApiError};
use crate::ServeConfig;

/// Longest query-parameter value accepted, in bytes.
pub const MAX_VALUE_BYTES: usize = 2048;

/// The parsed query string.
#[derive(Debug, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Parses `a=1&b=2` (percent-decoded; `None` = no query string).
    pub fn parse(query: Option<&str>) -> Result<Params, ApiError> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        for (k, v) in &pairs {
            if v.len() > MAX_VALUE_BYTES {
                return Err(bad_request(
                    k,
                    format!("longer than {MAX_VALUE_BYTES} bytes"),
                ));
            }
        }
        Ok(Params { pairs })
    }

    /// Removes and returns the single value of `name`; 400 when given twice.
    pub fn one(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        let mut values = self.all(name);
        if values.len() > 1 {
            return Err(bad_request(name, "given more than once"));
        }
        Ok(values.pop())
    }

    /// Removes and returns every value of `name`.
    pub fn all(&mut self, name: &str) -> Vec<String> {
        let (hit, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pairs)
            .into_iter()
            .partition(|(k, _)| k == name);
        self.pairs = rest;
        hit.into_iter().map(|(_, v)| v).collect()
    }

    /// Required single value.
    pub fn required(&mut self, name: &str) -> Result<String, ApiError> {
        self.one(name)?
            .ok_or_else(|| bad_request(name, "missing (required)"))
    }

    /// A timestamp (RFC 3339, a date, or Unix seconds — see `certhist_model::parse_timestamp`).
    /// The API takes the forms its OpenAPI schema (`Timestamp`) declares: Unix time as 1–13
    /// digits, not the fractional or negative numbers the file importers also read.
    pub fn timestamp(&mut self, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        self.one(name)?
            .map(|v| {
                let t = v.trim();
                let numeric = t.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'-');
                let is_date = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").is_ok();
                if numeric && !is_date && !(t.bytes().all(|b| b.is_ascii_digit()) && t.len() <= 13)
                {
                    return Err(bad_request(
                        name,
                        format!(
                            "{:?} is not a time: use RFC 3339, a date (YYYY-MM-DD) or Unix seconds (at most 13 digits)",
                            shorten(&v)
                        ),
                    ));
                }
                parse_timestamp(&v).map_err(|e| bad_request(name, e))
            })
            .transpose()
    }

    /// A boolean (`true` / `false` / `1` / `0`).
    pub fn boolean(&mut self, name: &str) -> Result<Option<bool>, ApiError> {
        self.one(name)?
            .map(|v| match v.as_str() {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(bad_request(
                    name,
                    format!("{:?} is not true or false", shorten(&v)),
                )),
            })
            .transpose()
    }

    /// An integer within `min..=max`.
    pub fn int(&mut self, name: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
        self.one(name)?
            .map(|v| match v.trim().parse::<i64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(bad_request(
                    name,
                    format!(
                        "{:?} is not an integer between {min} and {max}",
                        shorten(&v)
                    ),
                )),
            })
            .transpose()
    }

    /// `since` / `until` (an observation overlaps the window when it was last seen at or after
    /// `since` and first seen at or before `until`).
    pub fn window(&mut self) -> Result<TimeWindow, ApiError> {
        let since = self.timestamp("since")?;
        let until = self.timestamp("until")?;
        if let (Some(s), Some(u)) = (since, until) {
            if s > u {
                return Err(bad_request("until", "is before `since`"));
            }
        }
        Ok(TimeWindow { since, until })
    }

    /// `limit` (default and maximum from the configuration).
    pub fn limit(&mut self, config: &ServeConfig) -> Result<i64, ApiError> {
        Ok(self
            .int("limit", 1, config.max_page_size)?
            .unwrap_or(config.default_page_size))
    }

    /// Decodes `cursor` as a key of type `K`.
    pub fn cursor<K: DeserializeOwned>(&mut self) -> Result<Option<K>, ApiError> {
        self.one("cursor")?.map(|c| decode_cursor(&c)).transpose()
    }

    /// 400 naming the first parameter nobody read.
    pub fn finish(self) -> Result<(), ApiError> {
        match self.pairs.into_iter().next() {
            Some((k, _)) => Err(ApiError {
                status: axum::http::StatusCode::BAD_REQUEST,
                detail: format!("unknown parameter `{}`", shorten(&k)),
            }),
            None => Ok(()),
        }
    }
}

/// Encodes a keyset key as an opaque cursor: base64url (no padding) of its JSON.
pub fn encode_cursor<K: Serialize>(key: &K) -> String {
    let json = serde_json::to_vec(key).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

/// Decodes a cursor made by [`encode_cursor`] for the same endpoint.
pub fn decode_cursor<K: DeserializeOwned>(text: &str) -> Result<K, ApiError> {
    let bad = || bad_request("cursor", "not a cursor returned by this endpoint");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim())
        .map_err(|_| bad())?;
    serde_json::from_slice(&bytes).map_err(|_| bad())
}

/// Parses an IP address or CIDR block and checks its size against the configured bounds.
pub fn ip_or_cidr(name: &str, text: &str, config: &ServeConfig) -> Result<IpNet, ApiError> {
    let t = text.trim();
    let net = if t.contains('/') {
        t.parse::<IpNet>().map_err(|_| {
            bad_request(
                name,
                format!("{:?} is not an IP address or CIDR block", shorten(t)),
            )
        })?
    } else {
        IpNet::from(t.parse::<IpAddr>().map_err(|_| {
            bad_request(
                name,
                format!("{:?} is not an IP address or CIDR block", shorten(t)),
            )
        })?)
    };
    let widest = match net {
        IpNet::V4(_) => config.widest_prefix_v4,
        IpNet::V6(_) => config.widest_prefix_v6,
    };
    if net.prefix_len() < widest {
        return Err(bad_request(
            name,
            format!(
                "CIDR block /{} is larger than this server allows (at most /{widest} for {})",
                net.prefix_len(),
                if matches!(net, IpNet::V4(_)) {
                    "IPv4"
                } else {
                    "IPv6"
                }
            ),
        ));
    }
    Ok(net.trunc())
}

/// Parses a single IP address.
pub fn ip(name: &str, text: &str) -> Result<IpAddr, ApiError> {
    text.trim()
        .parse::<IpAddr>()
        .map_err(|_| bad_request(name, format!("{:?} is not an IP address", shorten(text))))
}

/// Parses a SHA-1 or SHA-256 in hex.
pub fn cert_hash(name: &str, text: &str) -> Result<CertHash, ApiError> {
    parse_cert_hash(text).map_err(|e| bad_request(name, e))
}

/// Parses a 20-byte hash in hex (OCSP issuer name / key hash).
pub fn hash20(name: &str, text: &str) -> Result<[u8; 20], ApiError> {
    let cleaned: String = text.trim().chars().filter(|c| *c != ':').collect();
    hex::decode(&cleaned)
        .ok()
        .and_then(|b| <[u8; 20]>::try_from(b).ok())
        .ok_or_else(|| bad_request(name, "expected a SHA-1 in hex (40 digits)"))
}

// ---- The contract of the parameters in the OpenAPI document ----
//
// Named schemas for the parameter grammars the parsers above accept, so generated clients and
// validators (the schemathesis run of `tests/it/contract.rs`) can tell a well-formed request
// from a malformed one without calling the server. Every pattern is anchored and accepts only
// values the parser accepts; the parsers are a little more lenient (surrounding whitespace,
// upper case), never stricter.

/// An IPv4 address in dotted decimal (no leading zeros, as `std::net::Ipv4Addr` reads it).
const IPV4: &str = r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";

/// An IPv6 address (RFC 4291 §2.2 text forms; `::` stands for at least one group, embedded
/// IPv4 after six groups or after `::` / `::ffff:`).
const IPV6: &str = concat!(
    r"(?:(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}",
    r"|(?:[0-9A-Fa-f]{1,4}:){1,7}:",
    r"|(?:[0-9A-Fa-f]{1,4}:){1,6}:[0-9A-Fa-f]{1,4}",
    r"|(?:[0-9A-Fa-f]{1,4}:){1,5}(?::[0-9A-Fa-f]{1,4}){1,2}",
    r"|(?:[0-9A-Fa-f]{1,4}:){1,4}(?::[0-9A-Fa-f]{1,4}){1,3}",
    r"|(?:[0-9A-Fa-f]{1,4}:){1,3}(?::[0-9A-Fa-f]{1,4}){1,4}",
    r"|(?:[0-9A-Fa-f]{1,4}:){1,2}(?::[0-9A-Fa-f]{1,4}){1,5}",
    r"|[0-9A-Fa-f]{1,4}:(?::[0-9A-Fa-f]{1,4}){1,6}",
    r"|:(?:(?::[0-9A-Fa-f]{1,4}){1,7}|:)",
    r"|(?:[0-9A-Fa-f]{1,4}:){6}(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])",
    r"|::(?:[Ff]{4}:)?(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9]))",
);

/// IPv4 prefix lengths the default configuration accepts (at most a /16).
const PREFIX_V4: &str = r"(?:1[6-9]|2[0-9]|3[0-2])";
/// IPv6 prefix lengths the default configuration accepts (at most a /48).
const PREFIX_V6: &str = r"(?:4[89]|[5-9][0-9]|1[01][0-9]|12[0-8])";

fn anchored(body: &str) -> String {
    format!("^(?:{body})$")
}

fn string_schema(
    pattern: Option<String>,
    description: &str,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(pattern)
        .description(Some(description))
        .into()
}

fn enum_schema(
    values: &[&str],
    description: &str,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
        .description(Some(description))
        .into()
}

/// Declares a documentation-only schema type: `$name` appears in `components.schemas` and
/// parameters refer to it.
macro_rules! contract_schema {
    ($(#[$doc:meta])* $name:ident => $schema:expr) => {
        $(#[$doc])*
        pub(crate) struct $name;
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $schema
            }
        }
        impl utoipa::ToSchema for $name {}
    };
}

contract_schema!(
    /// SHA-1 (40 hex digits) or SHA-256 (64), plain or as `:`-separated byte pairs.
    CertHashText => string_schema(
        Some(anchored(
            "[0-9A-Fa-f]{40}|[0-9A-Fa-f]{64}|[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){19}|[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){31}",
        )),
        "A certificate's SHA-1 (40 hex digits) or SHA-256 (64 hex digits), optionally as `:`-separated byte pairs",
    )
);

contract_schema!(
    /// A SHA-1 in hex (OCSP issuer hashes).
    Sha1Text => string_schema(
        Some(anchored("[0-9A-Fa-f]{40}|[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){19}")),
        "A SHA-1 in hex (40 digits, optionally `:`-separated byte pairs)",
    )
);

contract_schema!(
    /// An IPv4 or IPv6 address.
    IpText => string_schema(
        Some(anchored(&format!("{IPV4}|{IPV6}"))),
        "An IPv4 or IPv6 address",
    )
);

contract_schema!(
    /// An address or a CIDR block within the server's size bound.
    IpOrCidrText => string_schema(
        Some(anchored(&format!(
            "{IPV4}(?:/{PREFIX_V4})?|{IPV6}(?:/{PREFIX_V6})?"
        ))),
        "An IPv4 or IPv6 address, or a CIDR block of at most /16 (IPv4) or /48 (IPv6) — the default bounds, `serve --widest-prefix-v4/-v6`; host bits are cleared",
    )
);

contract_schema!(
    /// A point in time.
    Timestamp => {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::String).format(Some(
                utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::DateTime),
            )))
            .item(ObjectBuilder::new().schema_type(Type::String).format(Some(
                utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Date),
            )))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^[0-9]{1,13}$")),
            )
            .description(Some(
                "RFC 3339 date-time, a date (midnight UTC), or Unix seconds (more than 11 digits: milliseconds)",
            ))
            .into()
    }
);

contract_schema!(
    /// The opaque paging cursor.
    CursorText => string_schema(
        Some(anchored("[A-Za-z0-9_-]{1,2048}")),
        "`next_cursor` of the previous page of the same query (opaque; other values answer 400)",
    )
);

contract_schema!(
    /// A search field.
    SearchFieldName => enum_schema(
        &[
            "name",
            "cn",
            "san",
            "email",
            "registered-domain",
            "serial",
            "issuer-cn",
            "issuer-o",
            "subject-o",
            "subject-ou",
            "spki",
            "tag",
        ],
        "The field to search (`tag`: tagged targets instead of certificates)",
    )
);

contract_schema!(
    /// How `q` is read.
    MatchModeName => enum_schema(
        &["auto", "exact", "prefix", "suffix", "contains", "regex"],
        "auto reads the `*` notation; the others take `q` literally (`regex`: POSIX, at most 256 characters)",
    )
);

contract_schema!(
    /// What `GET /certificates/{hash}` answers.
    CertFormatName => enum_schema(&["json", "pem", "der"], "Response format")
);

contract_schema!(
    /// The format of an export.
    ExportFormatName => enum_schema(
        &["ndjson", "csv", "stix", "misp"],
        "Export format: passive-SSL common output (NDJSON), CSV, a STIX 2.1 bundle or a MISP event",
    )
);

contract_schema!(
    /// The kind of a tagged target.
    TargetKindName => enum_schema(
        &["ip", "cidr", "certificate", "name"],
        "The kind of target (`cert` is accepted for `certificate`)",
    )
);

contract_schema!(
    /// A tag.
    TagText => string_schema(
        Some(anchored("[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,63}")),
        "1–64 characters a-z 0-9 . _ : / @ + - starting with a letter or digit (upper case is lower-cased)",
    )
);

contract_schema!(
    /// A certificate serial number.
    SerialText => string_schema(
        Some(anchored(
            "(?:0[xX])?[0-9A-Fa-f]{1,128}|[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){0,63}",
        )),
        "Serial number in hex (optionally `0x` or `:`-separated byte pairs) or decimal; every reading is tried",
    )
);

contract_schema!(
    /// The layout of an observation upload.
    UploadFormatName => enum_schema(&["csv", "tsv", "ndjson"], "Observation file layout")
);

contract_schema!(
    /// The scan-file formats of `POST /api/v1/uploads/scan/{format}`.
    ScanFormatName => enum_schema(
        &["zgrab2", "nmap", "masscan", "sonar-certs", "sonar-hosts"],
        "Scan file format",
    )
);
