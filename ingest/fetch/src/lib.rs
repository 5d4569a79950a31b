//! The one HTTP fetch layer of certhist's network sources (CT logs, crt.sh).
//!
//! A [`Fetcher`] is built from a typed [`FetchConfig`] and GETs URLs politely and defensively:
//! - a `User-Agent` of `certhist/<version>` ([`USER_AGENT`]);
//! - a concurrency limit (a semaphore) and a requests-per-second limit ([`governor`], GCRA with
//!   a burst of one), both counting every attempt;
//! - retries on 429, 500, 502, 503 and 504, timeouts, connection errors, broken transfers and
//!   bodies the caller's check refuses (truncated JSON, short tiles), never on other statuses;
//!   exponential backoff with jitter ([`backon`]) between a base and a cap, replaced by the
//!   server's `Retry-After` (delta-seconds or HTTP-date, RFC 9110 §10.2.3) up to its own cap;
//! - a per-attempt timeout covering connect, headers and the whole body;
//! - a response size limit enforced while the body streams in (after gzip decoding), so a
//!   hostile server cannot make us buffer more than [`FetchConfig::max_response_bytes`].
//!
//! Failures are a [`FetchError`]. [`url_with_query`] builds percent-encoded query strings.

mod config;
mod error;
mod fetcher;
mod query;
mod retry_after;

pub use config::{FetchConfig, USER_AGENT};
pub use error::FetchError;
pub use fetcher::Fetcher;
pub use query::url_with_query;
pub use retry_after::parse_retry_after;
