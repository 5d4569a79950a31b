//! `GET /api/v1/ip/{ip-or-cidr}`: the certificate history of an address or block.

use std::net::IpAddr;

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use certhist_model::views::{IpHistoryItem, IpHistoryPage};
use certhist_store::read::{self, IpHistoryKey, StubSightingKey, TimeWindow};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::ndjson::{self, STREAM_PAGE};
use crate::params::{ip_or_cidr, Params};
use crate::routes::{page, stream_next};
use crate::{json, AppState};

/// Keyset cursor: (ip, port, sha1 hex).
#[derive(Serialize, Deserialize)]
struct Cursor(IpAddr, u16, String);

fn key_of(r: &IpHistoryItem) -> Cursor {
    Cursor(r.ip, r.port, certhist_model::hex_lower(r.sha1))
}

fn store_key(c: &Cursor) -> Result<IpHistoryKey, ApiError> {
    let sha1 = hex::decode(&c.2)
        .ok()
        .and_then(|b| <[u8; 20]>::try_from(b).ok())
        .ok_or_else(|| {
            crate::error::bad_request("cursor", "not a cursor returned by this endpoint")
        })?;
    Ok((c.0, c.1, sha1))
}

/// Certificate history of an address or CIDR block (the block percent-encoded, `10.0.0.0%2F24`,
/// or as two path segments, `/ip/10.0.0.0/24`), in (ip, port) order (one ip:port's certificates in
/// the order certhist first saw them). Sightings of
/// certificates known only by SHA-256 (sensor logs, until their DER arrives) come in
/// `stub_sightings` on the first page, and after the history rows in the NDJSON stream (lines
/// with `"stub": true`).
#[utoipa::path(
    get,
    path = "/api/v1/ip/{query}",
    tag = "certhist",
    params(
        ("query" = crate::params::IpOrCidrText, Path, description = "IP address or CIDR block (`/` percent-encoded)"),
        ("since" = Option<crate::params::Timestamp>, Query, description = "Keep rows last seen at or after this time (RFC 3339, date, or Unix seconds)"),
        ("until" = Option<crate::params::Timestamp>, Query, description = "Keep rows first seen at or before this time"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Page size (default 100, at most the server's maximum)"),
        ("cursor" = Option<crate::params::CursorText>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of history rows (or NDJSON with `Accept: application/x-ndjson`)", body = IpHistoryPage),
        (status = 400, description = "Bad parameter (named in the message)", body = crate::error::ErrorBody),
        (status = 503, description = "Statement timeout or database unavailable", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn ip_history(
    State(state): State<AppState>,
    Path(query): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    history(state, &query, raw.as_deref(), &headers).await
}

/// The same as `/ip/{query}` with the CIDR block as two path segments.
#[utoipa::path(
    get,
    path = "/api/v1/ip/{address}/{prefix_len}",
    tag = "certhist",
    params(
        ("address" = crate::params::IpText, Path, description = "Network address"),
        ("prefix_len" = u8, Path, minimum = 16, maximum = 128, description = "Prefix length (IPv4: 16–32, IPv6: 48–128 with the default bounds)"),
        ("since" = Option<crate::params::Timestamp>, Query, description = "Keep rows last seen at or after this time"),
        ("until" = Option<crate::params::Timestamp>, Query, description = "Keep rows first seen at or before this time"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Page size"),
        ("cursor" = Option<crate::params::CursorText>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of history rows", body = IpHistoryPage),
        (status = 400, description = "Bad parameter", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn ip_history_cidr(
    State(state): State<AppState>,
    Path((address, prefix_len)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    history(
        state,
        &format!("{address}/{prefix_len}"),
        raw.as_deref(),
        &headers,
    )
    .await
}

async fn history(
    state: AppState,
    query: &str,
    raw: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let mut p = Params::parse(raw)?;
    let net = ip_or_cidr("ip", query, &state.config)?;
    let window = p.window()?;
    let limit = p.limit(&state.config)?;
    let cursor: Option<Cursor> = p.cursor()?;
    p.finish()?;
    let after = cursor.as_ref().map(store_key).transpose()?;
    if ndjson::wanted(headers) {
        return Ok(ndjson::stream(
            state,
            after.map(StreamAt::History),
            move |state: AppState, at: Option<StreamAt>| stream_page(state, net, window, at),
        ));
    }
    let conn = state.read_conn().await?;
    let rows = read::ip_history(&conn, &net, &window, after.as_ref(), limit + 1).await?;
    let (mut stub_sightings, mut stub_sightings_truncated) = (Vec::new(), false);
    if after.is_none() {
        stub_sightings = read::stub_sightings(&conn, &net, &window, None, limit + 1).await?;
        stub_sightings_truncated = stub_sightings.len() as i64 > limit;
        stub_sightings.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    }
    drop(conn); // back to the pool before the answer is built (issue 17)
    let p = page(rows, limit, key_of);
    Ok(json(&IpHistoryPage {
        items: p.items,
        next_cursor: p.next_cursor,
        stub_sightings,
        stub_sightings_truncated,
    }))
}

/// Where an NDJSON stream of an address's history is: in the rows by SHA-1, or past them in
/// the stub sightings.
enum StreamAt {
    History(IpHistoryKey),
    Stubs(Option<StubSightingKey>),
}

/// `None` starts a stream at the beginning of the history.
async fn stream_page(
    state: AppState,
    net: IpNet,
    window: TimeWindow,
    at: Option<StreamAt>,
) -> Result<(Vec<u8>, Option<StreamAt>), ApiError> {
    let conn = state.read_conn().await?;
    let mut out = Vec::new();
    let after = match at {
        None => None,
        Some(StreamAt::History(k)) => Some(k),
        Some(StreamAt::Stubs(after)) => {
            let rows =
                read::stub_sightings(&conn, &net, &window, after.as_ref(), STREAM_PAGE).await?;
            for r in &rows {
                ndjson::push_line(&mut out, r);
            }
            let next = stream_next(&rows, |r| (r.ip, r.port, r.sha256));
            return Ok((out, next.map(|k| StreamAt::Stubs(Some(k)))));
        }
    };
    let rows = read::ip_history(&conn, &net, &window, after.as_ref(), STREAM_PAGE).await?;
    for r in &rows {
        ndjson::push_line(&mut out, r);
    }
    let next = match stream_next(&rows, |r| (r.ip, r.port, r.sha1)) {
        Some(k) => StreamAt::History(k),
        None => StreamAt::Stubs(None),
    };
    Ok((out, Some(next)))
}
