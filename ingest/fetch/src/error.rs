//! [`FetchError`].

use std::time::Duration;

/// Why a fetch failed. Every variant that follows retries says how many attempts were made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The configuration cannot be used (a rate that is not a positive number) or the HTTP
    /// client could not be built.
    #[error("bad fetch configuration: {detail}")]
    Config {
        /// What is wrong.
        detail: String,
    },
    /// The URL cannot be requested (not a valid http(s) URL); nothing was sent.
    #[error("{url}: invalid URL: {detail}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// Why it is invalid.
        detail: String,
    },
    /// Connection failure or broken transfer, on every attempt.
    #[error("{url}: {detail} (gave up after {attempts} attempts)")]
    Transport {
        /// The URL.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        detail: String,
    },
    /// No complete response within the per-attempt timeout, on the last attempt.
    #[error("{url}: no complete response within {timeout:?} (gave up after {attempts} attempts)")]
    Timeout {
        /// The URL.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The per-attempt timeout.
        timeout: Duration,
    },
    /// A status that is never retried: 404, any other 4xx but 429, any other non-2xx.
    #[error("{url}: HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// A retryable status (429, 500, 502, 503, 504) still answered on the last attempt.
    #[error("{url}: HTTP {status} (gave up after {attempts} attempts)")]
    StatusAfterRetries {
        /// The URL.
        url: String,
        /// The last HTTP status.
        status: u16,
        /// Attempts made.
        attempts: u32,
    },
    /// The response body is larger than the limit (not retried).
    #[error("{url}: response larger than the limit of {limit_bytes} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// [`crate::FetchConfig::max_response_bytes`].
        limit_bytes: u64,
    },
    /// The body failed the caller's check (truncated or invalid data) on the last attempt.
    #[error("{url}: invalid response: {detail} (gave up after {attempts} attempts)")]
    Invalid {
        /// The URL.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The check's message.
        detail: String,
    },
}

impl FetchError {
    /// The URL that failed, if the failure was a request's.
    pub fn url(&self) -> Option<&str> {
        match self {
            FetchError::Config { .. } => None,
            FetchError::InvalidUrl { url, .. }
            | FetchError::Transport { url, .. }
            | FetchError::Timeout { url, .. }
            | FetchError::Status { url, .. }
            | FetchError::StatusAfterRetries { url, .. }
            | FetchError::TooLarge { url, .. }
            | FetchError::Invalid { url, .. } => Some(url),
        }
    }

    /// The HTTP status the request ended with, if it ended with one.
    pub fn status(&self) -> Option<u16> {
        match self {
            FetchError::Status { status, .. } | FetchError::StatusAfterRetries { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }

    /// True for a 404 Not Found.
    pub fn is_not_found(&self) -> bool {
        matches!(self, FetchError::Status { status: 404, .. })
    }
}
