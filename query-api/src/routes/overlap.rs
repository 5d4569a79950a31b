//! `GET /api/v1/overlap?ip=A&ip=B[&ip=…]` (certificates shared by addresses) and
//! `GET /api/v1/overlap?sha1=X&sha1=Y[&sha1=…]` (addresses shared by certificates).

use std::net::IpAddr;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use certhist_model::views::{OverlapCertItem, OverlapIpItem, Page};
use certhist_model::Sha1;
use certhist_store::read;

use crate::error::{bad_request, ApiError};
use crate::params::{cert_hash, ip, Params};
use crate::routes::page;
use crate::{json, AppState};

/// Most members one overlap query may name.
const MAX_MEMBERS: usize = 20;

/// Certificates served by every given address (`ip=`, 2–20 addresses), with each address's
/// period and the intersection of the periods; or, with `sha1=` (SHA-1 or SHA-256, 2–20), the
/// addresses that served every given certificate (items then have `ip` and per-certificate
/// `periods`). Paged by sha1 (or by address).
#[utoipa::path(
    get,
    path = "/api/v1/overlap",
    tag = "certhist",
    params(
        ("ip" = Option<Vec<crate::params::IpText>>, Query, min_items = 2, max_items = 20, description = "An address (repeat 2–20 times)"),
        ("sha1" = Option<Vec<crate::params::CertHashText>>, Query, min_items = 2, max_items = 20, description = "A certificate hash (repeat 2–20 times; instead of ip)"),
        ("since" = Option<crate::params::Timestamp>, Query, description = "Keep sightings last seen at or after this time"),
        ("until" = Option<crate::params::Timestamp>, Query, description = "Keep sightings first seen at or before this time"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Page size"),
        ("cursor" = Option<crate::params::CursorText>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "Shared certificates (`ip=`) — or shared addresses (`sha1=`, items of OverlapIpItem)", body = Page<OverlapCertItem>),
        (status = 400, description = "Bad parameter", body = crate::error::ErrorBody),
        (status = 404, description = "A given certificate hash is unknown", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn overlap(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let mut p = Params::parse(raw.as_deref())?;
    let ips = p.all("ip");
    let hashes = p.all("sha1");
    let window = p.window()?;
    let limit = p.limit(&state.config)?;
    match (ips.is_empty(), hashes.is_empty()) {
        (false, true) => {
            let mut addrs: Vec<IpAddr> =
                ips.iter().map(|t| ip("ip", t)).collect::<Result<_, _>>()?;
            addrs.sort();
            addrs.dedup();
            check_count("ip", addrs.len())?;
            let cursor: Option<String> = p.cursor()?;
            p.finish()?;
            let after = cursor.map(|c| sha1_hex("cursor", &c)).transpose()?;
            let conn = state.read_conn().await?;
            let rows =
                read::overlap_by_ips(&conn, &addrs, &window, after.as_ref(), limit + 1).await?;
            drop(conn); // back to the pool before the answer is built (issue 17)
            Ok(json(&page(rows, limit, |r: &OverlapCertItem| {
                certhist_model::hex_lower(r.sha1)
            })))
        }
        (true, false) => {
            let hashes = hashes
                .iter()
                .map(|h| cert_hash("sha1", h))
                .collect::<Result<Vec<_>, _>>()?;
            let conn = state.read_conn().await?;
            let keys = read::resolve_members(&conn, &hashes).await?;
            check_count("sha1", keys.len())?;
            let cursor: Option<IpAddr> = p.cursor()?;
            p.finish()?;
            let rows = read::overlap_by_certs(&conn, &keys, &window, cursor, limit + 1).await?;
            drop(conn);
            Ok(json(&page(rows, limit, |r: &OverlapIpItem| r.ip)))
        }
        (true, true) => Err(bad_request(
            "ip",
            "give at least two `ip` (or two `sha1`) parameters",
        )),
        (false, false) => Err(bad_request(
            "sha1",
            "give either `ip` or `sha1` parameters, not both",
        )),
    }
}

fn check_count(name: &str, n: usize) -> Result<(), ApiError> {
    if !(2..=MAX_MEMBERS).contains(&n) {
        return Err(bad_request(
            name,
            format!("give between 2 and {MAX_MEMBERS} distinct values, got {n}"),
        ));
    }
    Ok(())
}

fn sha1_hex(name: &str, text: &str) -> Result<Sha1, ApiError> {
    hex::decode(text)
        .ok()
        .and_then(|b| <[u8; 20]>::try_from(b).ok())
        .ok_or_else(|| bad_request(name, "not a cursor returned by this endpoint"))
}
