//! `GET /api/v1/certificates/{hash}` (record, or the certificate itself with `?format=pem|der`)
//! and `GET /api/v1/certificates/{hash}/hosts` (reverse search).

use std::net::IpAddr;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use certhist_model::views::{CertificateRecord, HostItem, Page};
use certhist_model::{CertHash, Sha1};
use certhist_store::read::{self, TimeWindow};
use serde::{Deserialize, Serialize};

use crate::error::{bad_request, not_found, shorten, ApiError};
use crate::ndjson::{self, STREAM_PAGE};
use crate::params::{cert_hash, Params};
use crate::routes::{page, stream_next};
use crate::{json, AppState};

/// The full record of a certificate by SHA-1 or SHA-256: fields, names, CT entries, cache
/// entries, commonness; or the certificate itself (`format=der` → `application/pkix-cert`,
/// RFC 2585 §4.1; `format=pem` → RFC 7468 text).
#[utoipa::path(
    get,
    path = "/api/v1/certificates/{hash}",
    tag = "certhist",
    params(
        ("hash" = crate::params::CertHashText, Path, description = "SHA-1 (40 hex digits) or SHA-256 (64), `:` separators allowed"),
        ("format" = Option<crate::params::CertFormatName>, Query, description = "`json` (default), `pem` or `der`"),
    ),
    responses(
        (status = 200, description = "The record (or the certificate in PEM / DER). A certificate known only by its SHA-256 from a sensor log (Zeek >= 4.1) answers a CertStubRecord (`\"stub\": true`) instead", body = CertificateRecord),
        (status = 400, description = "Bad hash or format", body = crate::error::ErrorBody),
        (status = 404, description = "No certificate with this hash is stored", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn certificate(
    State(state): State<AppState>,
    Path(hash): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let mut p = Params::parse(raw.as_deref())?;
    let hash = cert_hash("hash", &hash)?;
    let format = p.one("format")?;
    p.finish()?;
    let conn = state.read_conn().await?;
    let Some(record) = read::certificate(&conn, &hash, state.config.shared_threshold).await? else {
        // Known only by SHA-256 from a sensor log: the log's text (`"stub": true`), no DER.
        if let CertHash::Sha256(sha256) = &hash {
            if let Some(stub) = read::cert_stub(&conn, sha256).await? {
                return match format.as_deref() {
                    None | Some("json") => Ok(json(&stub)),
                    Some("der") | Some("pem") => Err(not_found(format!(
                        "certificate {hash} is known only by its SHA-256 from a sensor log; its DER is not stored"
                    ))),
                    Some(other) => Err(bad_request(
                        "format",
                        format!("{:?} is not one of json, pem, der", shorten(other)),
                    )),
                };
            }
        }
        return Err(not_found(format!(
            "no certificate with hash {hash} is stored"
        )));
    };
    let sha1 = record.summary.sha1;
    match format.as_deref() {
        None | Some("json") => Ok(json(&record)),
        Some("der") => Ok(download(
            record.der,
            "application/pkix-cert",
            &format!("{}.der", certhist_model::hex_lower(sha1)),
        )),
        Some("pem") => Ok(download(
            pem(&record.der).into_bytes(),
            "application/x-pem-file",
            &format!("{}.pem", certhist_model::hex_lower(sha1)),
        )),
        Some(other) => Err(bad_request(
            "format",
            format!("{:?} is not one of json, pem, der", shorten(other)),
        )),
    }
}

/// RFC 7468 §2 text encoding: base64 in 64-character lines between the labels.
pub(crate) fn pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

fn download(body: Vec<u8>, content_type: &'static str, filename: &str) -> Response {
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        Body::from(body),
    )
        .into_response()
}

/// Keyset cursor: (ip, port).
#[derive(Serialize, Deserialize)]
struct Cursor(IpAddr, u16);

/// Reverse search: every address:port that served the certificate, with periods, in (ip, port)
/// order. A SHA-1 known only from observations (no DER stored) works too.
#[utoipa::path(
    get,
    path = "/api/v1/certificates/{hash}/hosts",
    tag = "certhist",
    params(
        ("hash" = crate::params::CertHashText, Path, description = "SHA-1 or SHA-256 in hex"),
        ("since" = Option<crate::params::Timestamp>, Query, description = "Keep rows last seen at or after this time"),
        ("until" = Option<crate::params::Timestamp>, Query, description = "Keep rows first seen at or before this time"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Page size"),
        ("cursor" = Option<crate::params::CursorText>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of hosts (or NDJSON)", body = Page<HostItem>),
        (status = 400, description = "Bad parameter", body = crate::error::ErrorBody),
        (status = 404, description = "Hash unknown (neither stored nor observed)", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn hosts(
    State(state): State<AppState>,
    Path(hash): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut p = Params::parse(raw.as_deref())?;
    let hash = cert_hash("hash", &hash)?;
    let window = p.window()?;
    let limit = p.limit(&state.config)?;
    let cursor: Option<Cursor> = p.cursor()?;
    p.finish()?;
    let after = cursor.map(|c| (c.0, c.1));
    let conn = state.read_conn().await?;
    // Fast path (one round trip): a SHA-1 with sightings needs no resolution. An empty page
    // falls through to resolve_hash, which tells "unknown hash" (404) from "nothing in window".
    if let (CertHash::Sha1(sha1), false) = (&hash, ndjson::wanted(&headers)) {
        let rows = read::cert_hosts(&conn, sha1, &window, after, limit + 1).await?;
        if !rows.is_empty() {
            drop(conn); // back to the pool before the answer is built (issue 17)
            return Ok(json(&page(rows, limit, |r: &HostItem| {
                Cursor(r.ip, r.port)
            })));
        }
    }
    let Some(resolved) = read::resolve_hash(&conn, &hash).await? else {
        // Known only by SHA-256 from a sensor log: its sightings (one page; NDJSON the same).
        if let CertHash::Sha256(sha256) = &hash {
            if read::cert_stub(&conn, sha256).await?.is_some() {
                let rows = read::stub_hosts(&conn, sha256, &window, after, limit + 1).await?;
                if ndjson::wanted(&headers) {
                    let mut out = Vec::new();
                    for r in rows
                        .iter()
                        .take(usize::try_from(limit).unwrap_or(usize::MAX))
                    {
                        ndjson::push_line(&mut out, r);
                    }
                    return Ok((
                        [(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static(ndjson::NDJSON),
                        )],
                        Body::from(out),
                    )
                        .into_response());
                }
                return Ok(json(&page(rows, limit, |r: &HostItem| {
                    Cursor(r.ip, r.port)
                })));
            }
        }
        return Err(not_found(format!(
            "no certificate with hash {hash} is stored or observed"
        )));
    };
    let sha1 = resolved.sha1;
    if ndjson::wanted(&headers) {
        drop(conn);
        return Ok(ndjson::stream(
            state,
            after,
            move |state: AppState, after: Option<(IpAddr, u16)>| {
                stream_page(state, sha1, window, after)
            },
        ));
    }
    let rows = read::cert_hosts(&conn, &sha1, &window, after, limit + 1).await?;
    Ok(json(&page(rows, limit, |r: &HostItem| {
        Cursor(r.ip, r.port)
    })))
}

async fn stream_page(
    state: AppState,
    sha1: Sha1,
    window: TimeWindow,
    after: Option<(IpAddr, u16)>,
) -> Result<(Vec<u8>, Option<(IpAddr, u16)>), ApiError> {
    let conn = state.read_conn().await?;
    let rows = read::cert_hosts(&conn, &sha1, &window, after, STREAM_PAGE).await?;
    let mut out = Vec::new();
    for r in &rows {
        ndjson::push_line(&mut out, r);
    }
    Ok((out, stream_next(&rows, |r| (r.ip, r.port))))
}
