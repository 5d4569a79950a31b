//! CIRCL Passive SSL API v2 (`/compat/circl/v2pssl/…`), as `pypssl` 2.2 calls it: `query/{ip or
//! cidr}`, `cquery/{sha1}`, `cfetch/{sha1}`. Shapes follow the CIRCL reference server
//! (adulau/crl-monitor `server/ip-ssl-subject-api.py`, `API.md`); certhist adds per-address first
//! and last seen, times seen and ports in `x_certhist` blocks (crl-monitor#7), which the clients
//! ignore. Every error is JSON `{"error": …}` (pypssl raises on any other body), with a status.

use std::collections::BTreeMap;
use std::net::IpAddr;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use certhist_model::views::Role;
use certhist_model::NameKind;
use certhist_model::{CertHash, Sha1};
use certhist_store::read::{self, CertDetails, TimeWindow};
use ipnet::IpNet;
use serde_json::{json, Map, Value};

use super::{hosts_per_ip, message_of, oneline, parse_hash, rfc3339, PerIp, MAX_ROWS};
use crate::auth::Principal;
use crate::error::{shorten, ApiError};
use crate::{json, AppState};

/// The upstream's widest IPv4 block (`ipmaxsize = 512`, a /23).
pub(crate) const UPSTREAM_WIDEST_V4: u8 = 23;

const BAD_IP: &str = "Incorrect format";
const BAD_SHA1: &str =
    "Incorrect format of the certificate fingerprint (expected SHA1 in hex format)";

/// An error in CIRCL's envelope: `{"error": message}`.
#[derive(Debug)]
pub(crate) struct CirclError {
    status: StatusCode,
    message: String,
}

impl CirclError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        CirclError {
            status,
            message: message.into(),
        }
    }
}

impl From<ApiError> for CirclError {
    fn from(e: ApiError) -> Self {
        CirclError::new(e.status, message_of(&e))
    }
}

impl From<certhist_store::StoreError> for CirclError {
    fn from(e: certhist_store::StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for CirclError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(json!({ "error": self.message }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"certhist\""),
            );
        }
        resp
    }
}

type CirclResult = Result<Response, CirclError>;

fn reader(principal: Result<Principal, ApiError>) -> Result<(), CirclError> {
    principal?.require(Role::Reader)?;
    Ok(())
}

fn path_text(path: Result<Path<String>, PathRejection>, bad: &str) -> Result<String, CirclError> {
    path.map(|Path(p)| p)
        .map_err(|_| CirclError::new(StatusCode::BAD_REQUEST, bad))
}

fn sha1_of(text: &str) -> Result<Sha1, CirclError> {
    match parse_hash(text) {
        Some(CertHash::Sha1(h)) => Ok(h),
        _ => Err(CirclError::new(StatusCode::BAD_REQUEST, BAD_SHA1)),
    }
}

/// Parses `query/…`: an address or a block (pypssl sends `10.0.0.0/24` as two path segments,
/// which the wildcard route joins back). IPv4 blocks are limited to the upstream's /23 or the
/// server's configured width, whichever is narrower; IPv6 ones to the configured width.
fn parse_net(text: &str, state: &AppState) -> Result<IpNet, CirclError> {
    let t = text.trim().trim_end_matches('/');
    let bad = || CirclError::new(StatusCode::BAD_REQUEST, BAD_IP);
    let net = if t.contains('/') {
        t.parse::<IpNet>().map_err(|_| bad())?
    } else {
        IpNet::from(t.parse::<IpAddr>().map_err(|_| bad())?)
    };
    let widest = match net {
        IpNet::V4(_) => state.config.widest_prefix_v4.max(UPSTREAM_WIDEST_V4),
        IpNet::V6(_) => state.config.widest_prefix_v6,
    };
    if net.prefix_len() < widest {
        return Err(CirclError::new(
            StatusCode::BAD_REQUEST,
            format!("Maximum CIDR block size reached >/{widest}"),
        ));
    }
    Ok(net.trunc())
}

/// `GET /compat/circl/v2pssl/query/{ip or cidr}`: the certificates each address of the block
/// served, keyed by address (addresses without sightings omitted; `{}` when none).
pub(crate) async fn query(
    State(state): State<AppState>,
    principal: Result<Principal, ApiError>,
    path: Result<Path<String>, PathRejection>,
) -> CirclResult {
    reader(principal)?;
    let net = parse_net(&path_text(path, BAD_IP)?, &state)?;
    let conn = state.read_conn().await?;
    let rows = read::ip_history(&conn, &net, &TimeWindow::default(), None, MAX_ROWS + 1).await?;
    if i64::try_from(rows.len()).unwrap_or(i64::MAX) > MAX_ROWS {
        return Err(CirclError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "More than {MAX_ROWS} sightings in this block; narrow it, or page through /api/v1/ip"
            ),
        ));
    }
    // Per address, per certificate: sightings merged over ports (rows come in (ip, port)
    // order).
    let mut per_ip: BTreeMap<IpAddr, BTreeMap<Sha1, PerIp>> = BTreeMap::new();
    for r in &rows {
        per_ip
            .entry(r.ip)
            .or_default()
            .entry(r.sha1)
            .and_modify(|p| p.merge(r.first_seen, r.last_seen, r.times_seen, r.port))
            .or_insert_with(|| PerIp::new(r.first_seen, r.last_seen, r.times_seen, r.port));
    }
    let mut sha1s: Vec<Sha1> = per_ip.values().flat_map(|m| m.keys().copied()).collect();
    sha1s.sort_unstable();
    sha1s.dedup();
    let subjects: BTreeMap<Sha1, String> = read::details_batch(&conn, &sha1s, false)
        .await?
        .into_iter()
        // Listed only when cfetch can answer with dates (pypssl parses them unchecked).
        .filter(|d| d.summary.not_before.is_some() && d.summary.not_after.is_some())
        .map(|d| (d.summary.sha1, oneline(&d.subject)))
        .collect();
    let mut out = Map::new();
    for (ip, certs) in per_ip {
        // Most recently seen first.
        let mut order: Vec<(&Sha1, &PerIp)> = certs.iter().collect();
        order.sort_by(|a, b| b.1.last_seen.cmp(&a.1.last_seen).then(a.0.cmp(b.0)));
        let mut subj = Map::new();
        let mut ext = Map::new();
        let mut certificates = Vec::new();
        for (sha1, per) in &order {
            let key = certhist_model::hex_lower(sha1);
            let mut sighting = per.to_json();
            match subjects.get(*sha1) {
                Some(subject) => {
                    subj.insert(key.clone(), json!({ "values": [subject] }));
                    certificates.push(key.clone());
                }
                // A certificate cfetch cannot serve (only its hash is known, or its DER does not
                // parse) is not listed in `certificates`: clients call cfetch for every listed
                // one and read its `info` unchecked (the MISP module). Its sightings stay in
                // `x_certhist`.
                None => sighting["listed"] = json!(false),
            }
            ext.insert(key, sighting);
        }
        // An address that served only hash-only certificates is left out as an unseen one is:
        // misp-modules 3.1.1's circl_passivessl fails (KeyError 'Object') on an address that
        // yields no x509 object, and reads `{}` as "Not found".
        if certificates.is_empty() {
            continue;
        }
        out.insert(
            ip.to_string(),
            json!({ "certificates": certificates, "subjects": subj, "x_certhist": ext }),
        );
    }
    Ok(json(&Value::Object(out)))
}

/// `GET /compat/circl/v2pssl/cquery/{sha1}`: the addresses that served a certificate. An
/// unknown certificate gives `hits: 0` (as upstream).
pub(crate) async fn cquery(
    State(state): State<AppState>,
    principal: Result<Principal, ApiError>,
    path: Result<Path<String>, PathRejection>,
) -> CirclResult {
    reader(principal)?;
    let sha1 = sha1_of(&path_text(path, BAD_SHA1)?)?;
    let conn = state.read_conn().await?;
    let rows = read::cert_hosts(&conn, &sha1, &TimeWindow::default(), None, MAX_ROWS + 1).await?;
    let truncated = i64::try_from(rows.len()).unwrap_or(i64::MAX) > MAX_ROWS;
    let rows = &rows[..rows
        .len()
        .min(usize::try_from(MAX_ROWS).unwrap_or(usize::MAX))];
    let hosts = hosts_per_ip(rows);
    let seen: Vec<String> = hosts.iter().map(|(ip, _)| ip.to_string()).collect();
    let ext: Map<String, Value> = hosts
        .iter()
        .map(|(ip, per)| (ip.to_string(), per.to_json()))
        .collect();
    let mut body = json!({
        "certificate": certhist_model::hex_lower(sha1),
        "hits": seen.len(),
        "seen": seen,
        "x_certhist": ext,
    });
    if truncated {
        body["x_certhist_truncated"] = json!(true);
    }
    Ok(json(&body))
}

/// `GET /compat/circl/v2pssl/cfetch/{sha1}`: the certificate (PEM) and its parsed fields, plus
/// `icsi` sightings across every address (days since 1970-01-01, as strings, as the ICSI
/// notary wrote them); 404 `{"error": "Not existing certificate"}` when it is not stored.
pub(crate) async fn cfetch(
    State(state): State<AppState>,
    principal: Result<Principal, ApiError>,
    path: Result<Path<String>, PathRejection>,
) -> CirclResult {
    reader(principal)?;
    let sha1 = sha1_of(&path_text(path, BAD_SHA1)?)?;
    let conn = state.read_conn().await?;
    let Some(record) =
        read::certificate(&conn, &CertHash::Sha1(sha1), state.config.shared_threshold).await?
    else {
        return Err(CirclError::new(
            StatusCode::NOT_FOUND,
            "Not existing certificate",
        ));
    };
    let s = &record.summary;
    let (Some(not_before), Some(not_after)) = (s.not_before, s.not_after) else {
        // pypssl's fetch_cert parses info.not_before/not_after unchecked: no partial record.
        return Err(CirclError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "The certificate is stored but does not parse{}; fetch it from /api/v1/certificates/{}?format=pem",
                s.parse_error
                    .as_deref()
                    .map(|e| format!(" ({})", shorten(e)))
                    .unwrap_or_default(),
                certhist_model::hex_lower(sha1)
            ),
        ));
    };
    let details: Option<CertDetails> = read::details_batch(&conn, &[sha1], true).await?.pop();
    let mut extension = Map::new();
    if s.is_ca {
        extension.insert("basicConstraints".to_owned(), json!("CA:TRUE"));
    }
    let san: Vec<String> = record
        .names
        .iter()
        .filter_map(|n| {
            let label = match n.kind {
                NameKind::Dns => "DNS",
                NameKind::Ip => "IP Address",
                NameKind::Email => "email",
                NameKind::Uri => "URI",
                NameKind::Cn => return None,
            };
            Some(format!("{label}:{}", n.name))
        })
        .collect();
    if !san.is_empty() {
        extension.insert("subjectAltName".to_owned(), json!(san.join(", ")));
    }
    let offset = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string();
    let mut body = json!({
        "pem": crate::routes::certificates::pem(&record.der),
        "info": {
            "subject": oneline(&record.subject),
            "issuer": oneline(&record.issuer),
            "fingerprint": hex::encode_upper(sha1),
            "keylength": record.key_bits,
            "not_before": offset(not_before),
            "not_after": offset(not_after),
            "extension": extension,
        },
        "x_certhist": {
            "sha256": certhist_model::hex_lower(s.sha256),
            "serial": s.serial.as_ref().map(ToString::to_string),
            "key_algorithm": record.key_algorithm,
            "signature_algorithm": record.signature_algorithm,
            "distinct_ips": record.commonness.distinct_ips,
        },
    });
    if let Some(seen) = details.and_then(|d| d.sightings) {
        let day = |t: chrono::DateTime<chrono::Utc>| t.timestamp().div_euclid(86_400).to_string();
        body["icsi"] = json!({
            "first_seen": day(seen.first_seen),
            "last_seen": day(seen.last_seen),
            "times_seen": seen.times_seen.to_string(),
            "validated": "0",
            "version": "1",
        });
        body["x_certhist"]["first_seen"] = json!(rfc3339(seen.first_seen));
        body["x_certhist"]["last_seen"] = json!(rfc3339(seen.last_seen));
    }
    Ok(json(&body))
}

/// Any other path under `/compat/circl/`: 404 in the CIRCL envelope.
pub(crate) async fn unknown() -> CirclError {
    CirclError::new(
        StatusCode::NOT_FOUND,
        "No such endpoint; this server answers v2pssl/query, v2pssl/cquery and v2pssl/cfetch",
    )
}
