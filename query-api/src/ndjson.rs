//! `Accept: application/x-ndjson`: a whole list streamed as one JSON object per line, fetched
//! page by page with the keyset key (each page is one statement, under the statement timeout),
//! without the page-size cap. An error after the first line ends the stream with one
//! `{"errors":[…]}` line.

use std::future::Future;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream;

use crate::error::ErrorBody;
use crate::{ApiError, AppState};

/// Rows fetched per statement while streaming.
pub(crate) const STREAM_PAGE: i64 = 1000;

/// The media type.
pub(crate) const NDJSON: &str = "application/x-ndjson";

/// True when the client asked for NDJSON.
pub(crate) fn wanted(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|part| part.trim().starts_with(NDJSON)))
}

/// Appends `value` as one NDJSON line.
pub(crate) fn push_line<T: serde::Serialize>(out: &mut Vec<u8>, value: &T) {
    if serde_json::to_writer(&mut *out, value).is_ok() {
        out.push(b'\n');
    }
}

enum Next<K> {
    Page(Option<K>),
    Done,
}

/// Streams pages from `start` (exclusive; `None` = the beginning): `fetch(state, after)` returns the lines of one page and the key to continue
/// after (`None` at the end).
pub(crate) fn stream<K, F, Fut>(state: AppState, start: Option<K>, fetch: F) -> Response
where
    K: Send + 'static,
    F: Fn(AppState, Option<K>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(Vec<u8>, Option<K>), ApiError>> + Send + 'static,
{
    let body = stream::unfold(Next::Page(start), move |next| {
        let state = state.clone();
        let page = match next {
            Next::Page(after) => Some(fetch(state, after)),
            Next::Done => None,
        };
        async move {
            let page = page?;
            match page.await {
                Ok((lines, Some(key))) => Some((
                    Ok::<_, std::convert::Infallible>(Bytes::from(lines)),
                    Next::Page(Some(key)),
                )),
                Ok((lines, None)) => Some((Ok(Bytes::from(lines)), Next::Done)),
                Err(e) => {
                    let mut line = Vec::new();
                    push_line(
                        &mut line,
                        &ErrorBody {
                            errors: vec![crate::error::ErrorDetail { detail: e.detail }],
                        },
                    );
                    Some((Ok(Bytes::from(line)), Next::Done))
                }
            }
        }
    });
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(NDJSON))],
        Body::from_stream(body),
    )
        .into_response()
}
