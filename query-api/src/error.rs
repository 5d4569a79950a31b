//! The one error type of the API and its single response shape, `{"errors":[{"detail": …}]}`
//! (the shape crates.io uses, `docs/API.md` § Errors).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use certhist_store::StoreError;
use serde::Serialize;
use tokio_postgres_sqlstate::INVALID_REGULAR_EXPRESSION;
use utoipa::ToSchema;

/// An error answered to the client. Built through [`bad_request`], [`not_found`] and
/// `From<StoreError>`; internal details are logged once and never sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Message for the client (never internal details).
    pub detail: String,
}

/// The error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// One or more errors.
    pub errors: Vec<ErrorDetail>,
}

/// One error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// What went wrong, naming the parameter at fault.
    pub detail: String,
}

/// 400 naming the parameter.
pub fn bad_request(parameter: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        detail: format!("invalid parameter `{parameter}`: {why}"),
    }
}

/// 404 with a message.
pub fn not_found(what: impl Into<String>) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        detail: what.into(),
    }
}

/// Seconds a client is asked to wait after a 503 (`Retry-After`).
pub const RETRY_AFTER_UNAVAILABLE_SECS: u64 = 5;

/// Builds the error body for `status` and `detail`; a 503 carries `Retry-After`.
pub fn error_response(status: StatusCode, detail: impl Into<String>) -> Response {
    let body = ErrorBody {
        errors: vec![ErrorDetail {
            detail: detail.into(),
        }],
    };
    let mut resp = (status, axum::Json(body)).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from(RETRY_AFTER_UNAVAILABLE_SECS),
        );
    }
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error_response(self.status, self.detail)
    }
}

/// Cuts attacker-controlled text before it is echoed in a message.
pub fn shorten(text: &str) -> String {
    const MAX_CHARS: usize = 80;
    let mut s: String = text.chars().take(MAX_CHARS).collect();
    if text.chars().count() > MAX_CHARS {
        s.push('…');
    }
    s
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if e.is_timeout() {
            tracing::warn!(error = %e, "query cancelled by statement_timeout");
            return ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                detail: "the query took longer than the server's statement timeout; narrow it (a time window, a smaller CIDR block, a more specific pattern) and retry".to_owned(),
            };
        }
        if e.code() == Some(&INVALID_REGULAR_EXPRESSION) {
            return bad_request("q", "not a valid regular expression");
        }
        if e.is_unavailable() {
            tracing::error!(error = %e, "database unavailable");
            return ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                detail: "the database is unavailable; retry later".to_owned(),
            };
        }
        match e {
            StoreError::InvalidInput(msg) => ApiError {
                status: StatusCode::BAD_REQUEST,
                detail: msg,
            },
            StoreError::NotFound(msg) => not_found(msg),
            other => {
                tracing::error!(error = %other, "database error");
                ApiError {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    detail: "internal error; the server log has the details".to_owned(),
                }
            }
        }
    }
}

/// SQLSTATEs the API recognises (the store re-exports tokio-postgres's codes through
/// [`StoreError::code`]).
mod tokio_postgres_sqlstate {
    pub use certhist_store::read::sqlstate::INVALID_REGULAR_EXPRESSION;
}
