//! [`FetchConfig`]: every setting of a [`crate::Fetcher`].

use std::time::Duration;

/// The `User-Agent` certhist sends (default of [`FetchConfig::user_agent`]).
pub const USER_AGENT: &str = concat!("certhist/", env!("CARGO_PKG_VERSION"));

/// Politeness, retry and safety settings of one [`crate::Fetcher`] (one per CT log, one per
/// crt.sh client).
#[derive(Debug, Clone, PartialEq)]
pub struct FetchConfig {
    /// The `User-Agent` header.
    pub user_agent: String,
    /// Timeout of one attempt: connecting, sending, and receiving the whole body.
    pub timeout: Duration,
    /// Attempts per request, the first included (0 counts as 1).
    pub max_attempts: u32,
    /// Backoff before the first retry; it doubles with each retry, and jitter adds up to as much
    /// again.
    pub backoff_base: Duration,
    /// Longest backoff between two attempts (jitter included).
    pub backoff_cap: Duration,
    /// Longest wait honoured from a `Retry-After` header; a longer one waits this long.
    pub retry_after_cap: Duration,
    /// Requests per second, every attempt counted (`None`: unlimited). Must be positive.
    pub rate_per_s: Option<f64>,
    /// Requests in flight at once (0 counts as 1).
    pub concurrency: usize,
    /// Largest response body accepted, in bytes (after gzip decoding).
    pub max_response_bytes: u64,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            user_agent: USER_AGENT.to_owned(),
            timeout: Duration::from_secs(60),
            max_attempts: 9,
            backoff_base: Duration::from_millis(250),
            backoff_cap: Duration::from_secs(60),
            retry_after_cap: Duration::from_secs(120),
            rate_per_s: None,
            concurrency: 4,
            max_response_bytes: 64 << 20,
        }
    }
}
