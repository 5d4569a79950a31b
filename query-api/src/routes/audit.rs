//! `GET /api/v1/audit`: the audit log (admin).

use axum::extract::{RawQuery, State};
use axum::response::Response;
use certhist_model::views::{AuditEntryView, Page, Role};
use certhist_store::read;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::params::Params;
use crate::routes::page;
use crate::{json, AppState};

/// The audit log, newest first: logins, failed logins, account changes and every write, with
/// who, when, what and from where. Admin only. Paged with `cursor` like every list.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "certhist",
    params(
        ("since" = Option<crate::params::Timestamp>, Query, description = "Only entries at or after this time (RFC 3339, a date, or Unix seconds)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Page size (default 100, at most the server's maximum)"),
        ("cursor" = Option<crate::params::CursorText>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "Audit entries, newest first", body = Page<AuditEntryView>),
        (status = 400, description = "Bad parameter", body = crate::error::ErrorBody),
        (status = 401, description = "Not authenticated", body = crate::error::ErrorBody),
        (status = 403, description = "Not an admin", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn audit(
    State(state): State<AppState>,
    principal: Principal,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    principal.require(Role::Admin)?;
    let mut p = Params::parse(raw.as_deref())?;
    let since = p.timestamp("since")?;
    let limit = p.limit(&state.config)?;
    let before: Option<i64> = p.cursor()?;
    p.finish()?;
    let conn = state.conn().await?;
    let rows = read::accounts::audit_entries(&conn, since, before, limit + 1).await?;
    Ok(json(&page(rows, limit, |r: &AuditEntryView| r.id)))
}
