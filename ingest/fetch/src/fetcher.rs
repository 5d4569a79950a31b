//! [`Fetcher`]: GET with limits, retries and a size cap.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use backon::{ExponentialBuilder, Retryable as _};
use bytes::Bytes;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::Semaphore;

use crate::{parse_retry_after, FetchConfig, FetchError};

/// Statuses that are retried (RFC 9110 §15.5.30 429, §15.6.1 500, §15.6.3 502, §15.6.4 503,
/// §15.6.5 504); any other non-2xx status is final.
const RETRYABLE_STATUSES: [u16; 5] = [429, 500, 502, 503, 504];

/// An HTTP GET client of one source: shared limits, retries and a response size cap (see the
/// crate documentation). Cheap to clone; clones share the limits.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    permits: Arc<Semaphore>,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
    config: FetchConfig,
}

impl fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fetcher")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Why one attempt failed, and whether another may succeed.
#[derive(Debug)]
enum AttemptError {
    /// Connection failure or broken transfer (retried).
    Transport(String),
    /// The per-attempt timeout passed (retried).
    Timeout,
    /// 429, 500, 502, 503 or 504 (retried), with the server's `Retry-After`.
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// The caller's check refused the body (retried).
    Invalid(String),
    /// Not retried.
    Final(FetchError),
}

impl AttemptError {
    fn retryable(&self) -> bool {
        !matches!(self, AttemptError::Final(_))
    }

    fn detail(&self) -> String {
        match self {
            AttemptError::Transport(d) => d.clone(),
            AttemptError::Timeout => "timed out".to_owned(),
            AttemptError::Status { status, .. } => format!("HTTP {status}"),
            AttemptError::Invalid(d) => format!("invalid response: {d}"),
            AttemptError::Final(e) => e.to_string(),
        }
    }

    fn status(&self) -> Option<u16> {
        match self {
            AttemptError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    fn into_fetch_error(self, url: &str, attempts: u32, timeout: Duration) -> FetchError {
        let url = url.to_owned();
        match self {
            AttemptError::Transport(detail) => FetchError::Transport {
                url,
                attempts,
                detail,
            },
            AttemptError::Timeout => FetchError::Timeout {
                url,
                attempts,
                timeout,
            },
            AttemptError::Status { status, .. } => FetchError::StatusAfterRetries {
                url,
                status,
                attempts,
            },
            AttemptError::Invalid(detail) => FetchError::Invalid {
                url,
                attempts,
                detail,
            },
            AttemptError::Final(e) => e,
        }
    }
}

/// A transport error's message with its causes, without the URL (the error names it once).
fn transport_detail(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let text = s.to_string();
        if !detail.contains(&text) {
            detail.push_str(": ");
            detail.push_str(&text);
        }
        source = s.source();
    }
    detail
}

fn classify(url: &str, e: reqwest::Error) -> AttemptError {
    if e.is_builder() {
        AttemptError::Final(FetchError::InvalidUrl {
            url: url.to_owned(),
            detail: transport_detail(e),
        })
    } else if e.is_timeout() {
        AttemptError::Timeout
    } else {
        AttemptError::Transport(transport_detail(e))
    }
}

impl Fetcher {
    /// Builds a fetcher (rustls, gzip) from `config`.
    pub fn new(config: FetchConfig) -> Result<Self, FetchError> {
        let limiter = match config.rate_per_s {
            None => None,
            Some(rate) => {
                let period = (rate.is_finite() && rate > 0.0)
                    .then(|| Duration::try_from_secs_f64(1.0 / rate).ok())
                    .flatten()
                    .and_then(Quota::with_period)
                    .ok_or_else(|| FetchError::Config {
                        detail: format!(
                            "a rate of {rate} requests per second: give a positive number"
                        ),
                    })?;
                Some(Arc::new(RateLimiter::direct(period)))
            }
        };
        let client = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .timeout(config.timeout)
            .gzip(true)
            .build()
            .map_err(|e| FetchError::Config {
                detail: format!("cannot build the HTTP client: {}", transport_detail(e)),
            })?;
        Ok(Fetcher {
            client,
            permits: Arc::new(Semaphore::new(config.concurrency.max(1))),
            limiter,
            config,
        })
    }

    /// The settings.
    pub fn config(&self) -> &FetchConfig {
        &self.config
    }

    /// GETs `url` and returns the body of its 2xx response, retrying transient failures.
    pub async fn get(&self, url: &str) -> Result<Bytes, FetchError> {
        self.get_checked(url, |body| Ok::<_, std::convert::Infallible>(body.to_vec()))
            .await
            .map(Bytes::from)
    }

    /// GETs `url` and runs `check` on the body of its 2xx response. A body that `check` refuses
    /// (truncated JSON, a short tile) is fetched again like any transient failure; when every
    /// attempt fails, the error is [`FetchError::Invalid`] with the check's message.
    pub async fn get_checked<T, E: fmt::Display>(
        &self,
        url: &str,
        check: impl Fn(&[u8]) -> Result<T, E>,
    ) -> Result<T, FetchError> {
        let attempts = AtomicU32::new(0);
        let config = &self.config;
        let backoff = ExponentialBuilder::default()
            .with_min_delay(config.backoff_base)
            .with_max_delay(config.backoff_cap)
            .with_max_times(config.max_attempts.max(1) as usize - 1)
            .with_jitter();
        let check = &check;
        let counter = &attempts;
        let result = (|| async move {
            counter.fetch_add(1, Ordering::Relaxed);
            self.attempt(url, check).await
        })
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(AttemptError::retryable)
        .adjust(|e, next| {
            // Backoff (jittered, capped) unless the server said how long to wait.
            next.map(|d| match e {
                AttemptError::Status {
                    retry_after: Some(r),
                    ..
                } => (*r).min(config.retry_after_cap),
                _ => d.min(config.backoff_cap),
            })
        })
        .notify(|e, wait| {
            tracing::warn!(
                http.url = url,
                http.status = e.status(),
                retry.attempt = attempts.load(Ordering::Relaxed),
                retry.wait_ms = wait.as_millis() as u64,
                "GET {url}: {}; retrying in {wait:?}",
                e.detail()
            );
        })
        .await;
        result
            .map_err(|e| e.into_fetch_error(url, attempts.load(Ordering::Relaxed), config.timeout))
    }

    /// One attempt: a permit, a rate slot, the request, the body (within the size limit), the
    /// check.
    async fn attempt<T, E: fmt::Display>(
        &self,
        url: &str,
        check: &impl Fn(&[u8]) -> Result<T, E>,
    ) -> Result<T, AttemptError> {
        // The semaphore is never closed; a failure here cannot happen.
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| AttemptError::Transport(e.to_string()))?;
        // The slot is taken after the permit, so that requests leave spaced by the rate even
        // when many waited for a permit.
        if let Some(limiter) = &self.limiter {
            limiter.until_ready().await;
        }
        let mut resp = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| classify(url, e))?;
        let status = resp.status().as_u16();
        if !resp.status().is_success() {
            if RETRYABLE_STATUSES.contains(&status) {
                let retry_after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, SystemTime::now()));
                return Err(AttemptError::Status {
                    status,
                    retry_after,
                });
            }
            return Err(AttemptError::Final(FetchError::Status {
                url: url.to_owned(),
                status,
            }));
        }
        let limit = self.config.max_response_bytes;
        let too_large = || {
            AttemptError::Final(FetchError::TooLarge {
                url: url.to_owned(),
                limit_bytes: limit,
            })
        };
        // A declared length over the limit fails before any of the body is read.
        let declared = resp.content_length();
        if declared.is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let mut body = Vec::with_capacity(declared.unwrap_or(0) as usize);
        while let Some(chunk) = resp.chunk().await.map_err(|e| classify(url, e))? {
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        check(&body).map_err(|e| AttemptError::Invalid(format!("{e} ({} bytes)", body.len())))
    }
}
