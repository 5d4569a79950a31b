//! Drop-in compatibility APIs (issue 14): the routes and response shapes of other passive-SSL
//! services, so their existing clients work unchanged when pointed at certhist.
//!
//! - [`circl`]: CIRCL Passive SSL under `/compat/circl/v2pssl/…`, as `pypssl` 2.2 calls it
//!   (`PyPSSL(base_url="http://HOST:PORT/compat/circl/")`);
//! - [`pt`]: PassiveTotal v2 SSL under `/compat/pt/v2/ssl-certificate…`, as `passivetotal` 2.5.9
//!   calls it (`SslRequest(user, key, server="HOST:PORT/compat/pt")`);
//! - [`maltego`]: Maltego TRX transforms at `POST /compat/maltego/run/{name}`, as a Maltego TDS
//!   calls a transform server (maltego-trx 1.7.0's protocol), answering XML.
//!
//! They answer from the same store functions as `/api/v1` (`certhist_store::read`) and take the
//! same [`Principal`](crate::auth::Principal) (reads need `Role::Reader`). **The one exception to
//! the API's single error shape lives here:** each flavour answers errors in its upstream's
//! envelope (`{"error": …}` for CIRCL, `{"message": …, "error": {…}}` for PassiveTotal), because
//! the clients parse those; [`ApiError`]s from shared code are converted at the edge.
//!
//! The routes are not in the OpenAPI document: their contract is the upstream's
//! (`docs/API.md` § Compatibility APIs).

pub(crate) mod circl;
pub(crate) mod maltego;
pub(crate) mod pt;

use std::collections::BTreeSet;
use std::net::IpAddr;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use certhist_model::views::HostItem;
use certhist_model::{CertHash, DistinguishedName, Serial};
use chrono::{DateTime, SecondsFormat, Utc};

use crate::error::ApiError;
use crate::AppState;

/// Every compatibility route (mounted by [`crate::router`]).
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/compat/circl/v2pssl/query/{*q}", get(circl::query))
        .route("/compat/circl/v2pssl/cquery/{sha1}", get(circl::cquery))
        .route("/compat/circl/v2pssl/cfetch/{sha1}", get(circl::cfetch))
        .route("/compat/circl/{*rest}", get(circl::unknown))
        .route("/compat/pt/v2/ssl-certificate", get(pt::details))
        .route("/compat/pt/v2/ssl-certificate/history", get(pt::history))
        .route("/compat/pt/v2/ssl-certificate/search", get(pt::search))
        .route(
            "/compat/pt/v2/ssl-certificate/search/keyword",
            get(pt::keyword),
        )
        .route("/compat/pt/{*rest}", get(pt::unknown))
        .route(
            "/compat/maltego/run/{name}",
            get(maltego::describe).post(maltego::run),
        )
        .route(
            "/compat/maltego/run/{name}/",
            get(maltego::describe).post(maltego::run),
        )
        .with_state(state)
}

/// Most sightings one compatibility answer is built from (the upstream APIs do not page).
pub(crate) const MAX_ROWS: i64 = 5_000;

/// Reads a certificate hash the way the upstream users write it: any case, with or without
/// `:`, `-` or space separators (Cortex-Analyzers#229). `None` when it is not a SHA-1 or
/// SHA-256 in hex.
pub(crate) fn parse_hash(text: &str) -> Option<CertHash> {
    let cleaned: String = text
        .trim()
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | ' '))
        .collect();
    if cleaned.is_empty() || !cleaned.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let bytes = hex::decode(&cleaned).ok()?;
    match bytes.len() {
        20 => bytes.try_into().ok().map(CertHash::Sha1),
        32 => bytes.try_into().ok().map(CertHash::Sha256),
        _ => None,
    }
}

/// RFC 3339 with a `Z`, whole seconds.
pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The sightings of one address for one certificate, merged over ports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PerIp {
    pub(crate) first_seen: DateTime<Utc>,
    pub(crate) last_seen: DateTime<Utc>,
    pub(crate) times_seen: i64,
    pub(crate) ports: BTreeSet<u16>,
}

impl PerIp {
    pub(crate) fn new(
        first_seen: DateTime<Utc>,
        last_seen: DateTime<Utc>,
        n: i64,
        port: u16,
    ) -> Self {
        PerIp {
            first_seen,
            last_seen,
            times_seen: n,
            ports: BTreeSet::from([port]),
        }
    }

    pub(crate) fn merge(
        &mut self,
        first_seen: DateTime<Utc>,
        last_seen: DateTime<Utc>,
        n: i64,
        port: u16,
    ) {
        self.first_seen = self.first_seen.min(first_seen);
        self.last_seen = self.last_seen.max(last_seen);
        self.times_seen = self.times_seen.saturating_add(n);
        self.ports.insert(port);
    }

    /// The `x_certhist` block of the CIRCL answers.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "first_seen": rfc3339(self.first_seen),
            "last_seen": rfc3339(self.last_seen),
            "times_seen": self.times_seen,
            "ports": self.ports.iter().collect::<Vec<_>>(),
        })
    }
}

/// Hosts of a certificate merged per address, in address order.
pub(crate) fn hosts_per_ip(rows: &[HostItem]) -> Vec<(IpAddr, PerIp)> {
    let mut out: Vec<(IpAddr, PerIp)> = Vec::new();
    for r in rows {
        match out.last_mut() {
            Some((ip, per)) if *ip == r.ip => {
                per.merge(r.first_seen, r.last_seen, r.times_seen, r.port);
            }
            _ => out.push((
                r.ip,
                PerIp::new(r.first_seen, r.last_seen, r.times_seen, r.port),
            )),
        }
    }
    out
}

/// The attributes of a distinguished name, most significant first (the reverse of the stored
/// RFC 4514 string), values unescaped, attribute types by their OpenSSL short names.
pub(crate) fn attributes(dn: &DistinguishedName) -> Vec<(String, String)> {
    let Some(text) = dn.dn.as_deref() else {
        return Vec::new();
    };
    // Split into RDNs on unescaped `,` and attributes on unescaped `+` (RFC 4514 §2.1-2.4).
    let mut rdns: Vec<Vec<(String, String)>> = vec![Vec::new()];
    let mut current = String::new();
    let mut escaped = false;
    let flush = |current: &mut String, rdn: &mut Vec<(String, String)>| {
        let raw = std::mem::take(current);
        if let Some((k, v)) = raw.split_once('=') {
            rdn.push((short_name(k.trim()).to_owned(), unescape(v)));
        }
    };
    for ch in text.chars() {
        if escaped {
            current.push('\\');
            current.push(ch);
            escaped = false;
            continue;
        }
        match ch {
            '\\' => escaped = true,
            ',' => {
                let rdn = rdns.last_mut().expect("one RDN at least");
                flush(&mut current, rdn);
                rdns.push(Vec::new());
            }
            '+' => {
                let rdn = rdns.last_mut().expect("one RDN at least");
                flush(&mut current, rdn);
            }
            _ => current.push(ch),
        }
    }
    let rdn = rdns.last_mut().expect("one RDN at least");
    flush(&mut current, rdn);
    rdns.reverse();
    rdns.into_iter().flatten().collect()
}

fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// OpenSSL's short name of an attribute type as the stored DN spells it (RFC 4514 short names
/// or dotted OIDs).
fn short_name(stored: &str) -> &str {
    match stored {
        "1.2.840.113549.1.9.1" => "emailAddress",
        "2.5.4.5" => "serialNumber",
        "2.5.4.4" => "SN",
        "2.5.4.42" => "GN",
        "2.5.4.12" => "title",
        "2.5.4.15" => "businessCategory",
        "2.5.4.17" => "postalCode",
        "1.3.6.1.4.1.311.60.2.1.3" => "jurisdictionC",
        "1.3.6.1.4.1.311.60.2.1.2" => "jurisdictionST",
        "1.3.6.1.4.1.311.60.2.1.1" => "jurisdictionL",
        other => other,
    }
}

/// The first value of attribute `name` (a short name from [`attributes`]).
pub(crate) fn first_value<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The name in OpenSSL's one-line form as CIRCL prints it: `C=.., ST=.., O=.., CN=..`, most
/// significant attribute first, joined with `, `.
pub(crate) fn oneline(dn: &DistinguishedName) -> String {
    attributes(dn)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A serial number in decimal (PassiveTotal's `serialNumber`), `-` first when the DER INTEGER
/// was negative.
pub(crate) fn serial_decimal(serial: &Serial, negative: bool) -> String {
    // Repeated division of the big-endian magnitude by 10.
    let mut digits: Vec<u8> = Vec::new();
    let mut n: Vec<u8> = serial.as_bytes().to_vec();
    while n.iter().any(|b| *b != 0) {
        let mut rem: u32 = 0;
        for b in &mut n {
            let cur = (rem << 8) | u32::from(*b);
            *b = u8::try_from(cur / 10).unwrap_or(0);
            rem = cur % 10;
        }
        digits.push(u8::try_from(rem).unwrap_or(0) + b'0');
    }
    if digits.is_empty() {
        digits.push(b'0');
    }
    digits.reverse();
    let text = String::from_utf8_lossy(&digits).into_owned();
    if negative {
        format!("-{text}")
    } else {
        text
    }
}

/// The message of a shared-code error, as the compatibility envelopes carry it.
pub(crate) fn message_of(e: &ApiError) -> String {
    e.detail.clone()
}

/// The error envelope a path answers in, when it is a compatibility path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavour {
    /// `/compat/circl/…`: `{"error": …}`.
    Circl,
    /// `/compat/pt/…`: `{"message": …, "error": {…}}`.
    PassiveTotal,
    /// `/compat/maltego/…`: a TRX response message with a `FatalError` UIMessage.
    Maltego,
}

impl Flavour {
    /// The flavour of a request path.
    pub(crate) fn of(path: &str) -> Option<Flavour> {
        if path.starts_with("/compat/circl/") {
            Some(Flavour::Circl)
        } else if path.starts_with("/compat/pt/") {
            Some(Flavour::PassiveTotal)
        } else if path.starts_with("/compat/maltego/") {
            Some(Flavour::Maltego)
        } else {
            None
        }
    }

    /// An error response in this flavour's envelope (401s name the Basic scheme both clients
    /// use).
    pub(crate) fn error(self, status: StatusCode, message: String) -> Response {
        match self {
            Flavour::Circl => circl::CirclError::new(status, message).into_response(),
            Flavour::PassiveTotal => pt::PtError::new(status, message).into_response(),
            Flavour::Maltego => maltego::error(status, message),
        }
    }
}

/// Middleware, outermost: error responses on compatibility paths produced outside their
/// handlers (authentication, rate limits, timeouts, body limits, method not allowed — all in
/// certhist's `{"errors":[{"detail"}]}` shape by then) are re-sent in the upstream envelope the
/// clients parse, keeping status and headers (`Retry-After`, `WWW-Authenticate`).
///
/// For Maltego requests without an `Authorization` header it also turns the transform settings
/// naming an API key into one ([`maltego::credentials_of`]), before the authentication layer
/// runs: a TDS cannot send headers.
pub(crate) async fn envelopes(req: Request, next: Next) -> Response {
    let Some(flavour) = Flavour::of(req.uri().path()) else {
        return next.run(req).await;
    };
    let req = if flavour == Flavour::Maltego
        && req.method() == axum::http::Method::POST
        && !req.headers().contains_key(header::AUTHORIZATION)
    {
        let (mut parts, body) = req.into_parts();
        // Read here, before the request timeout of the inner layers: bounded in time too.
        let read = tokio::time::timeout(
            maltego::BODY_TIMEOUT,
            axum::body::to_bytes(body, maltego::MAX_REQUEST_BYTES),
        )
        .await;
        let bytes = match read {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(_)) => {
                return flavour.error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "the request is larger than {} bytes",
                        maltego::MAX_REQUEST_BYTES
                    ),
                )
            }
            Err(_) => {
                return flavour.error(
                    StatusCode::REQUEST_TIMEOUT,
                    "the request body did not arrive in time".to_owned(),
                )
            }
        };
        if let Some(mut value) =
            maltego::credentials_of(&bytes).and_then(|v| header::HeaderValue::from_str(&v).ok())
        {
            value.set_sensitive(true);
            parts.headers.insert(header::AUTHORIZATION, value);
        }
        Request::from_parts(parts, Body::from(bytes))
    } else {
        req
    };
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return flavour.error(status, "error".to_owned());
    };
    let detail = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v["errors"][0]["detail"].as_str().map(str::to_owned));
    let Some(detail) = detail else {
        // Already in the flavour's envelope (a handler's own error).
        return Response::from_parts(parts, Body::from(bytes));
    };
    let mut out = flavour.error(status, detail);
    for (k, v) in &parts.headers {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_serials() {
        let s = Serial::from_be_bytes(&hex::decode("01bdfc8a8ccf2a0c6e4e1a2a38cd9c6b").unwrap());
        // python3 -c 'print(int("01bdfc8a8ccf2a0c6e4e1a2a38cd9c6b", 16))'
        assert_eq!(
            serial_decimal(&s, false),
            "2315694246332893072471559914138737771"
        );
        assert_eq!(serial_decimal(&Serial::from_be_bytes(&[0]), false), "0");
        assert_eq!(
            serial_decimal(&Serial::from_be_bytes(&[1, 0]), true),
            "-256"
        );
    }

    #[test]
    fn oneline_reverses_and_unescapes() {
        let dn = DistinguishedName {
            dn: Some(
                "1.2.840.113549.1.9.1=info@example.lu,CN=*.example.lu,O=Example\\, S.A.+OU=IT,C=LU"
                    .to_owned(),
            ),
            ..DistinguishedName::default()
        };
        assert_eq!(
            oneline(&dn),
            "C=LU, O=Example, S.A., OU=IT, CN=*.example.lu, emailAddress=info@example.lu"
        );
        assert_eq!(oneline(&DistinguishedName::default()), "");
    }

    #[test]
    fn hashes_in_any_notation() {
        let want = "7c552ab044c76d1df4f5ddf358807bfdcd07fa57";
        for text in [
            want,
            "7C552AB044C76D1DF4F5DDF358807BFDCD07FA57",
            "7C:55:2A:B0:44:C7:6D:1D:F4:F5:DD:F3:58:80:7B:FD:CD:07:FA:57",
            "7c-55-2a-b0-44-c7-6d-1d-f4-f5-dd-f3-58-80-7b-fd-cd-07-fa-57",
        ] {
            assert_eq!(
                parse_hash(text).map(|h| h.to_string()),
                Some(want.to_owned())
            );
        }
        assert_eq!(parse_hash("xyz"), None);
        assert_eq!(parse_hash("abcd"), None);
        assert_eq!(parse_hash(""), None);
    }
}
