//! `GET /api/v1/serials/{serial}`: certificates by serial number, or by exact OCSP CertID.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use certhist_model::views::{CertSummary, Page};
use certhist_model::Serial;
use certhist_store::read;

use serde::{Deserialize, Serialize};

use crate::error::{bad_request, ApiError};
use crate::params::{hash20, Params};
use crate::routes::page;
use crate::{json, AppState};

/// Paging key: the sha1 (hex) of the last certificate of the page.
#[derive(Serialize, Deserialize)]
struct Cursor(String);

/// Certificates with this serial (hex with or without `:`/`0x`, or decimal — every reading is
/// tried), narrowed to an exact OCSP CertID (RFC 6960 §4.1.1) by `issuer_name_hash` and
/// `issuer_key_hash`. Ordered by sha1, paged with `cursor` like every list.
#[utoipa::path(
    get,
    path = "/api/v1/serials/{serial}",
    tag = "certhist",
    params(
        ("serial" = crate::params::SerialText, Path, description = "Serial number (hex or decimal)"),
        ("issuer_name_hash" = Option<crate::params::Sha1Text>, Query, description = "SHA-1 of the issuer Name DER (hex)"),
        ("issuer_key_hash" = Option<crate::params::Sha1Text>, Query, description = "SHA-1 of the issuer public key bits (hex)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Page size (default 100, at most the server's maximum)"),
        ("cursor" = Option<crate::params::CursorText>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "Matching certificates", body = Page<CertSummary>),
        (status = 400, description = "Bad parameter", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn serials(
    State(state): State<AppState>,
    Path(serial): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let mut p = Params::parse(raw.as_deref())?;
    let serials = Serial::parse_candidates(&serial).map_err(|e| bad_request("serial", e))?;
    let name_hash = p
        .one("issuer_name_hash")?
        .map(|v| hash20("issuer_name_hash", &v))
        .transpose()?;
    let key_hash = p
        .one("issuer_key_hash")?
        .map(|v| hash20("issuer_key_hash", &v))
        .transpose()?;
    let limit = p.limit(&state.config)?;
    let cursor: Option<Cursor> = p.cursor()?;
    p.finish()?;
    let after = cursor
        .map(|c| {
            hex::decode(&c.0)
                .ok()
                .and_then(|b| <[u8; 20]>::try_from(b).ok())
                .ok_or_else(|| bad_request("cursor", "not a cursor returned by this endpoint"))
        })
        .transpose()?;
    let conn = state.read_conn().await?;
    let rows = read::certs_by_serial(
        &conn,
        &serials,
        name_hash.as_ref().map(|h| h.as_slice()),
        key_hash.as_ref().map(|h| h.as_slice()),
        after.as_ref(),
        limit + 1,
    )
    .await?;
    Ok(json(&page(rows, limit, |r: &CertSummary| {
        Cursor(certhist_model::hex_lower(r.sha1))
    })))
}
