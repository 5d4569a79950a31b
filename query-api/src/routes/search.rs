//! `GET /api/v1/search?field=…&q=…`: certificates by a field value.

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use certhist_model::views::{MatchMode, Page, SearchItem};
use certhist_store::read::{self, MatchPattern, SearchKey, ValidityFilter};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{bad_request, shorten, ApiError};
use crate::ndjson::{self, STREAM_PAGE};
use crate::params::Params;
use crate::routes::{page, stream_next};
use crate::{json, AppState};

/// Keyset cursor: (matched value, sha1 hex).
#[derive(Serialize, Deserialize)]
struct Cursor(String, String);

fn store_key(c: Cursor) -> Result<SearchKey, ApiError> {
    let sha1 = hex::decode(&c.1)
        .ok()
        .and_then(|b| <[u8; 20]>::try_from(b).ok())
        .ok_or_else(|| bad_request("cursor", "not a cursor returned by this endpoint"))?;
    Ok((c.0, sha1))
}

/// Reads `q` under `match` (`auto` when absent).
fn pattern(mode: Option<&str>, q: &str) -> Result<MatchPattern, ApiError> {
    let mode = match mode {
        None => MatchMode::Auto,
        Some(m) => MatchMode::from_name(m).ok_or_else(|| {
            bad_request(
                "match",
                format!(
                    "{:?} is not one of auto, exact, prefix, suffix, contains, regex",
                    shorten(m)
                ),
            )
        })?,
    };
    MatchPattern::with_mode(mode, q).map_err(|e| bad_request("q", e))
}

/// A search hit: a certificate (every field but `tag`) or a tagged target (`field=tag`).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[expect(
    dead_code,
    reason = "documents the response; the handler serialises the variants' types directly"
)]
pub(crate) enum SearchHit {
    /// A certificate whose field matched.
    Certificate(SearchItem),
    /// A target (address, block, certificate or name) carrying a matching tag.
    Tagged(certhist_model::views::TaggedItem),
}

/// Certificates whose field matches, ordered by (matched value, sha1). Fields: name, cn, san,
/// email, registered-domain, serial, issuer-cn, issuer-o, subject-o, subject-ou, spki. Matching
/// is case-insensitive; serial and spki take exact values only. `field=tag` lists the tagged
/// targets instead (addresses, blocks, certificates, names; items are `TaggedItem`s in (tag,
/// kind, value) order).
#[utoipa::path(
    get,
    path = "/api/v1/search",
    tag = "certhist",
    params(
        ("field" = crate::params::SearchFieldName, Query, description = "name | cn | san | email | registered-domain | serial | issuer-cn | issuer-o | subject-o | subject-ou | spki | tag"),
        ("q" = String, Query, min_length = 1, max_length = 2048, description = "The value: `example.com`, `*.example.com`, `www.*`, `*paypal*`, or a POSIX regex with match=regex"),
        ("match" = Option<crate::params::MatchModeName>, Query, description = "auto (default: read the `*` notation) | exact | prefix | suffix | contains | regex"),
        ("valid_at" = Option<crate::params::Timestamp>, Query, description = "Valid at this time (not_before ≤ t ≤ not_after)"),
        ("not_before_after" = Option<crate::params::Timestamp>, Query, description = "not_before ≥ t"),
        ("not_before_before" = Option<crate::params::Timestamp>, Query, description = "not_before ≤ t"),
        ("not_after_after" = Option<crate::params::Timestamp>, Query, description = "not_after ≥ t"),
        ("not_after_before" = Option<crate::params::Timestamp>, Query, description = "not_after ≤ t"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Page size"),
        ("cursor" = Option<crate::params::CursorText>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of hits (or NDJSON): `SearchItem`s, or `TaggedItem`s for field=tag", body = Page<SearchHit>),
        (status = 400, description = "Bad parameter", body = crate::error::ErrorBody),
        (status = 503, description = "Statement timeout", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn search(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut p = Params::parse(raw.as_deref())?;
    let field_text = p.required("field")?;
    if field_text.trim().eq_ignore_ascii_case("tag") {
        return super::tags::search_tags(state, p, &headers, |p, q| {
            let mode = p.one("match")?;
            pattern(mode.as_deref(), q)
        })
        .await;
    }
    let field = read::search::parse_field(&field_text).map_err(|e| bad_request("field", e))?;
    let q = p.required("q")?;
    let mode = p.one("match")?;
    let pattern = pattern(mode.as_deref(), &q)?;
    let validity = ValidityFilter {
        valid_at: p.timestamp("valid_at")?,
        not_before_after: p.timestamp("not_before_after")?,
        not_before_before: p.timestamp("not_before_before")?,
        not_after_after: p.timestamp("not_after_after")?,
        not_after_before: p.timestamp("not_after_before")?,
    };
    let limit = p.limit(&state.config)?;
    let cursor: Option<Cursor> = p.cursor()?;
    p.finish()?;
    let after = cursor.map(store_key).transpose()?;
    if ndjson::wanted(&headers) {
        return Ok(ndjson::stream(
            state,
            after,
            move |state: AppState, after: Option<SearchKey>| {
                let pattern = pattern.clone();
                async move {
                    let conn = state.read_conn().await?;
                    let rows = read::search_filtered(
                        &conn,
                        field,
                        &pattern,
                        &validity,
                        after.as_ref(),
                        STREAM_PAGE,
                    )
                    .await?;
                    let mut out = Vec::new();
                    for r in &rows {
                        ndjson::push_line(&mut out, r);
                    }
                    Ok((
                        out,
                        stream_next(&rows, |r: &SearchItem| (r.matched.clone(), r.cert.sha1)),
                    ))
                }
            },
        ));
    }
    let conn = state.read_conn().await?;
    let rows =
        read::search_filtered(&conn, field, &pattern, &validity, after.as_ref(), limit + 1).await?;
    drop(conn); // back to the pool before the answer is built (issue 17)
    Ok(json(&page(rows, limit, |h: &SearchItem| {
        Cursor(h.matched.clone(), certhist_model::hex_lower(h.cert.sha1))
    })))
}
