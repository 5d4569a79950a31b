//! `GET /api/v1/stats`, `GET /healthz` and `GET /api/v1/healthz`.

use axum::extract::{RawQuery, State};
use axum::response::Response;
use certhist_model::views::{Health, Stats};
use certhist_store::read;

use crate::error::ApiError;
use crate::params::Params;
use crate::{json, AppState};

/// Tables the planner estimates below this many rows are counted exactly.
const EXACT_COUNT_BELOW: i64 = 1_000_000;

/// Table sizes: exact below a million rows, the planner's estimates above (`estimated: true`).
#[utoipa::path(
    get,
    path = "/api/v1/stats",
    tag = "certhist",
    responses(
        (status = 200, description = "Table sizes", body = Stats),
        (status = 503, description = "Database unavailable", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn stats(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    Params::parse(raw.as_deref())?.finish()?;
    let conn = state.read_conn().await?;
    Ok(json(&read::stats(&conn, EXACT_COUNT_BELOW).await?))
}

/// Liveness and database reachability.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "certhist",
    responses(
        (status = 200, description = "Serving, database reachable", body = Health),
        (status = 503, description = "Database unavailable", body = crate::error::ErrorBody),
    ),
    security(())
)]
pub(crate) async fn healthz(State(state): State<AppState>) -> Result<Response, ApiError> {
    // A pooled connection may be idle and stale: ask the server.
    state.conn().await?.ping().await?;
    Ok(json(&Health {
        status: "ok".to_owned(),
    }))
}

/// Liveness and database reachability, under the API prefix (same as `/healthz`).
#[utoipa::path(
    get,
    path = "/api/v1/healthz",
    tag = "certhist",
    responses(
        (status = 200, description = "Serving, database reachable", body = Health),
        (status = 503, description = "Database unavailable", body = crate::error::ErrorBody),
    ),
    security(())
)]
pub(crate) async fn healthz_v1(state: State<AppState>) -> Result<Response, ApiError> {
    healthz(state).await
}
