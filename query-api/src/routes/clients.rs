//! `GET /api/v1/clients/{ip-or-cidr}`: the clients seen contacting a server address or block
//! (stored only by `certhist import pcap --keep-clients`).

use std::net::IpAddr;

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use certhist_model::views::{ClientContactItem, Page};
use certhist_store::read::{self, ClientContactKey};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::params::{ip_or_cidr, Params};
use crate::routes::page;
use crate::{json, AppState};

/// Keyset cursor: (server ip, server port, client ip, client certificate SHA-1 hex or empty).
#[derive(Serialize, Deserialize)]
struct Cursor(IpAddr, u16, IpAddr, String);

fn key_of(r: &ClientContactItem) -> Cursor {
    Cursor(
        r.server_ip,
        r.server_port,
        r.client_ip,
        r.client_cert_sha1
            .map(certhist_model::hex_lower)
            .unwrap_or_default(),
    )
}

fn store_key(c: &Cursor) -> Result<ClientContactKey, ApiError> {
    let bad = || crate::error::bad_request("cursor", "not a cursor returned by this endpoint");
    let cert = if c.3.is_empty() {
        None
    } else {
        Some(
            hex::decode(&c.3)
                .ok()
                .and_then(|b| <[u8; 20]>::try_from(b).ok())
                .ok_or_else(bad)?,
        )
    };
    Ok((c.0, c.1, c.2, cert))
}

/// Clients seen talking TLS to a server address or CIDR block (`/` percent-encoded), with the
/// certificate each presented, in (server_ip, server_port, client_ip, client_cert_sha1) order.
/// Client addresses are stored only when a capture was imported with `--keep-clients`
/// (privacy by default): an empty list means none were kept, not none were seen.
#[utoipa::path(
    get,
    path = "/api/v1/clients/{query}",
    tag = "certhist",
    params(
        ("query" = crate::params::IpOrCidrText, Path, description = "Server IP address or CIDR block (`/` percent-encoded)"),
        ("since" = Option<crate::params::Timestamp>, Query, description = "Keep contacts last seen at or after this time (RFC 3339, date, or Unix seconds)"),
        ("until" = Option<crate::params::Timestamp>, Query, description = "Keep contacts first seen at or before this time"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Page size (default 100, at most the server's maximum)"),
        ("cursor" = Option<crate::params::CursorText>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of client contacts", body = Page<ClientContactItem>),
        (status = 400, description = "Bad parameter (named in the message)", body = crate::error::ErrorBody),
        (status = 503, description = "Statement timeout or database unavailable", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn clients(
    State(state): State<AppState>,
    Path(query): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let mut p = Params::parse(raw.as_deref())?;
    let net = ip_or_cidr("ip", &query, &state.config)?;
    let window = p.window()?;
    let limit = p.limit(&state.config)?;
    let cursor: Option<Cursor> = p.cursor()?;
    p.finish()?;
    let after = cursor.as_ref().map(store_key).transpose()?;
    let conn = state.read_conn().await?;
    let rows = read::client_contacts(&conn, &net, &window, after.as_ref(), limit + 1).await?;
    Ok(json(&page(rows, limit, key_of)))
}
