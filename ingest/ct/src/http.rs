//! A polite HTTP fetcher for CT logs: a per-log concurrency limit and request-rate limit, retries
//! on 429/503 honouring `Retry-After` (delta-seconds or HTTP-date, RFC 9110 §10.2.3), exponential
//! backoff with jitter on 5xx, connection errors, truncated bodies and responses that fail
//! validation (invalid JSON, short tiles), and a descriptive User-Agent.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tokio::sync::{Mutex, Semaphore};

use crate::{CtError, ParseError};

/// Politeness and retry settings of one log.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Requests per second (None: unlimited).
    pub rate_per_s: Option<f64>,
    /// Attempts after the first.
    pub max_retries: u32,
    /// First backoff delay.
    pub backoff_base: Duration,
    /// Longest wait between attempts (also caps Retry-After).
    pub backoff_max: Duration,
    /// Timeout of one request.
    pub timeout: Duration,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            concurrency: 4,
            rate_per_s: None,
            max_retries: 8,
            backoff_base: Duration::from_millis(250),
            backoff_max: Duration::from_secs(60),
            timeout: Duration::from_secs(60),
        }
    }
}

/// Shared HTTP fetcher of one log.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    permits: Arc<Semaphore>,
    next_slot: Arc<Mutex<Instant>>,
    config: FetchConfig,
}

/// Parses a `Retry-After` value: delta-seconds or an HTTP-date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

fn jitter(d: Duration) -> Duration {
    // Cheap jitter in [50%, 100%] from the clock's nanoseconds (no RNG dependency needed).
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0);
    let frac = 0.5 + f64::from(nanos % 1000) / 2000.0;
    d.mul_f64(frac)
}

enum Attempt<T> {
    Done(T),
    NotFound,
    Retry {
        detail: String,
        status: Option<u16>,
        wait: Option<Duration>,
    },
    Fail {
        detail: String,
        status: Option<u16>,
    },
}

impl Fetcher {
    /// Builds a fetcher (rustls with ring, gzip).
    pub fn new(config: FetchConfig) -> Result<Self, CtError> {
        let client = reqwest::Client::builder()
            .user_agent(crate::USER_AGENT)
            .timeout(config.timeout)
            .gzip(true)
            .build()
            .map_err(|e| CtError::Http {
                url: String::new(),
                detail: format!("cannot build HTTP client: {e}"),
                status: None,
            })?;
        Ok(Fetcher {
            client,
            permits: Arc::new(Semaphore::new(config.concurrency.max(1))),
            next_slot: Arc::new(Mutex::new(Instant::now())),
            config,
        })
    }

    /// The settings.
    pub fn config(&self) -> &FetchConfig {
        &self.config
    }

    async fn wait_rate_slot(&self) {
        let Some(rate) = self.config.rate_per_s.filter(|r| *r > 0.0) else {
            return;
        };
        let slot = {
            let mut next = self.next_slot.lock().await;
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + Duration::from_secs_f64(1.0 / rate);
            slot
        };
        tokio::time::sleep_until(slot.into()).await;
    }

    async fn attempt<T>(
        &self,
        url: &str,
        validate: &impl Fn(&[u8]) -> Result<T, ParseError>,
    ) -> Attempt<T> {
        self.wait_rate_slot().await;
        let _permit = self.permits.acquire().await;
        let resp = match self.client.get(url).send().await {
            Ok(r) => r,
            Err(e) => {
                return Attempt::Retry {
                    detail: format!("request failed: {e}"),
                    status: None,
                    wait: None,
                }
            }
        };
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Attempt::NotFound;
        }
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS
            || status == reqwest::StatusCode::SERVICE_UNAVAILABLE
            || status.is_server_error()
        {
            let wait = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            return Attempt::Retry {
                detail: format!("HTTP {status}"),
                status: Some(status.as_u16()),
                wait,
            };
        }
        if !status.is_success() {
            return Attempt::Fail {
                detail: format!("HTTP {status}"),
                status: Some(status.as_u16()),
            };
        }
        let body: Bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => {
                return Attempt::Retry {
                    detail: format!("reading body failed: {e}"),
                    status: Some(status.as_u16()),
                    wait: None,
                }
            }
        };
        match validate(&body) {
            Ok(v) => Attempt::Done(v),
            Err(e) => Attempt::Retry {
                detail: format!("invalid response ({} bytes): {e}", body.len()),
                status: Some(status.as_u16()),
                wait: None,
            },
        }
    }

    /// GETs `url` and validates the body, retrying transient failures (and bodies that fail
    /// `validate`, such as truncated JSON). `Ok(None)` on 404.
    pub async fn get<T>(
        &self,
        url: &str,
        validate: impl Fn(&[u8]) -> Result<T, ParseError>,
    ) -> Result<Option<T>, CtError> {
        let mut delay = self.config.backoff_base;
        let mut attempt = 0u32;
        loop {
            match self.attempt(url, &validate).await {
                Attempt::Done(v) => return Ok(Some(v)),
                Attempt::NotFound => return Ok(None),
                Attempt::Fail { detail, status } => {
                    return Err(CtError::Http {
                        url: url.to_owned(),
                        detail,
                        status,
                    })
                }
                Attempt::Retry {
                    detail,
                    status,
                    wait,
                } => {
                    if attempt >= self.config.max_retries {
                        return Err(CtError::Http {
                            url: url.to_owned(),
                            detail: format!("{detail} (gave up after {} attempts)", attempt + 1),
                            status,
                        });
                    }
                    attempt += 1;
                    let sleep = match wait {
                        Some(w) => w.min(self.config.backoff_max),
                        None => jitter(delay),
                    };
                    tracing::warn!(
                        http.url = url,
                        http.status = status,
                        retry.attempt = attempt,
                        retry.wait_ms = sleep.as_millis() as u64,
                        "{detail}; retrying"
                    );
                    tokio::time::sleep(sleep).await;
                    delay = (delay * 2).min(self.config.backoff_max);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_both_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:02 GMT", now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
