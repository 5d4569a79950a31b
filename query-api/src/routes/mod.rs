//! The `/api/v1` handlers, one module per route family.

pub(crate) mod audit;
pub(crate) mod certificates;
pub(crate) mod clients;
pub(crate) mod expand;
pub(crate) mod export;
pub(crate) mod ip;
pub(crate) mod overlap;
pub(crate) mod search;
pub(crate) mod serials;
pub(crate) mod session;
pub(crate) mod stats;
pub(crate) mod tags;
pub(crate) mod uploads;

use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::params::encode_cursor;
use crate::{ApiDoc, AppState};
use certhist_model::views::Page;

/// Every documented route.
pub(crate) fn openapi_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(ip::ip_history))
        .routes(routes!(ip::ip_history_cidr))
        .routes(routes!(clients::clients))
        .routes(routes!(certificates::certificate))
        .routes(routes!(certificates::hosts))
        .routes(routes!(search::search))
        .routes(routes!(serials::serials))
        .routes(routes!(overlap::overlap))
        .routes(routes!(expand::expand))
        .routes(routes!(export::export))
        .routes(routes!(stats::stats))
        .routes(routes!(stats::healthz))
        .routes(routes!(stats::healthz_v1))
        .routes(routes!(session::login_form, session::login))
        .routes(routes!(session::logout))
        .routes(routes!(session::session))
        .routes(routes!(audit::audit))
        .routes(routes!(tags::put_tag, tags::delete_tag))
        .routes(routes!(tags::get_target))
        .routes(routes!(tags::post_note))
        .routes(routes!(tags::delete_note))
        .routes(routes!(uploads::observations))
        .routes(routes!(uploads::certificates))
        .routes(routes!(uploads::scan))
        .routes(routes!(uploads::cryptnet))
        .routes(routes!(uploads::pcap))
        .routes(routes!(uploads::zeek))
        .routes(routes!(uploads::suricata))
}

/// Builds a page from `limit + 1` fetched rows: the extra row only says "there is more".
pub(crate) fn page<T, K>(mut rows: Vec<T>, limit: i64, key: impl Fn(&T) -> K) -> Page<T>
where
    T: utoipa::ToSchema,
    K: serde::Serialize,
{
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = if more {
        rows.last().map(|r| encode_cursor(&key(r)))
    } else {
        None
    };
    Page {
        items: rows,
        next_cursor,
    }
}

/// The key to continue streaming after a page of `rows`, or `None` at the end.
pub(crate) fn stream_next<R, K>(rows: &[R], key: impl Fn(&R) -> K) -> Option<K> {
    if i64::try_from(rows.len()).unwrap_or(i64::MAX) < crate::ndjson::STREAM_PAGE {
        None
    } else {
        rows.last().map(key)
    }
}
