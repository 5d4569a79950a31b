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
    pub fn timestamp(&mut self, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        self.one(name)?
            .map(|v| parse_timestamp(&v).map_err(|e| bad_request(name, e)))
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
