//! crt.sh client: the JSON search API (`?q=…&output=json`) and PEM downloads (`?d=<id>`), with a
//! concurrency limit and backoff on 429/502/503/504 and timeouts (honouring `Retry-After`).

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

/// Rows crt.sh returns at most for one JSON query; a full page means results were cut.
pub const ROW_CAP: usize = 10_000;

/// crt.sh errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CrtshError {
    /// Transport failure or timeout after all retries.
    #[error("{url}: {message}")]
    Http {
        /// Request URL.
        url: String,
        /// What failed.
        message: String,
    },
    /// A status that is not retried (404, 400, …) or still failing after retries.
    #[error("{url}: HTTP {status}")]
    Status {
        /// Request URL.
        url: String,
        /// HTTP status.
        status: u16,
    },
    /// The JSON body is invalid or truncated.
    #[error("{url}: bad JSON: {message}")]
    Json {
        /// Request URL.
        url: String,
        /// Parser message.
        message: String,
    },
    /// A `?d=` download is not a PEM certificate.
    #[error("{url}: not a PEM certificate")]
    NotPem {
        /// Request URL.
        url: String,
    },
}

/// One row of crt.sh JSON output (2020 and current schemas; unknown fields ignored).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrtshRow {
    /// crt.sh certificate id (exceeds 2^32).
    pub id: u64,
    /// Issuer CA id.
    #[serde(default)]
    pub issuer_ca_id: Option<i64>,
    /// Issuer DN.
    #[serde(default)]
    pub issuer_name: Option<String>,
    /// Subject CN (current schema).
    #[serde(default)]
    pub common_name: Option<String>,
    /// Names, newline-separated.
    #[serde(default)]
    pub name_value: Option<String>,
    /// CT entry time (null for certificates not from CT).
    #[serde(default)]
    pub entry_timestamp: Option<String>,
    /// Validity.
    #[serde(default)]
    pub not_before: Option<String>,
    /// Validity.
    #[serde(default)]
    pub not_after: Option<String>,
    /// Serial as hex (current schema).
    #[serde(default)]
    pub serial_number: Option<String>,
}

/// Identity match mode (`match=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchMode {
    /// Exact (`=`).
    Exact,
    /// Case-insensitive LIKE.
    Ilike,
    /// LIKE.
    Like,
}

impl MatchMode {
    /// Every mode, in the order crt.sh's form lists them.
    pub const ALL: [MatchMode; 3] = [MatchMode::Exact, MatchMode::Ilike, MatchMode::Like];

    /// The `match=` value crt.sh takes.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchMode::Exact => "=",
            MatchMode::Ilike => "ILIKE",
            MatchMode::Like => "LIKE",
        }
    }
}

/// What to ask crt.sh.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    /// Identity search (`q=`).
    Name {
        /// The name.
        name: String,
        /// Match mode.
        mode: Option<MatchMode>,
        /// `exclude=expired`.
        exclude_expired: bool,
    },
    /// `serial=`.
    Serial(String),
    /// `sha1=`.
    Sha1(String),
    /// `sha256=`.
    Sha256(String),
}

/// Result of a JSON query.
#[derive(Clone, Debug, Default)]
pub struct QueryResult {
    /// Rows, deduplicated by id.
    pub rows: Vec<CrtshRow>,
    /// True when crt.sh returned [`ROW_CAP`] rows: the answer is probably cut.
    pub capped: bool,
}

/// Client settings.
#[derive(Clone, Debug)]
pub struct CrtshConfig {
    /// Base URL (`https://crt.sh/`).
    pub base_url: String,
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Attempts per request.
    pub max_attempts: u32,
    /// First backoff delay (doubles each retry) when no Retry-After is given.
    pub backoff: Duration,
    /// Largest wait honoured from Retry-After.
    pub max_retry_after: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl Default for CrtshConfig {
    fn default() -> Self {
        CrtshConfig {
            base_url: "https://crt.sh/".into(),
            concurrency: 4,
            max_attempts: 5,
            backoff: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(120),
            timeout: Duration::from_secs(60),
        }
    }
}

/// A crt.sh client.
#[derive(Clone, Debug)]
pub struct CrtshClient {
    config: CrtshConfig,
    http: reqwest::Client,
    limit: Arc<Semaphore>,
}

impl CrtshClient {
    /// Builds a client.
    pub fn new(config: CrtshConfig) -> Result<Self, CrtshError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("certhist/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CrtshError::Http {
                url: config.base_url.clone(),
                message: e.to_string(),
            })?;
        let limit = Arc::new(Semaphore::new(config.concurrency.max(1)));
        Ok(CrtshClient {
            config,
            http,
            limit,
        })
    }

    fn url(&self, params: &[(&str, String)]) -> String {
        let mut u = self.config.base_url.clone();
        if !u.ends_with('/') {
            u.push('/');
        }
        u.push('?');
        let q: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        u.push_str(&q.join("&"));
        u
    }

    /// GET with retries; returns the body of a 2xx response.
    async fn get(&self, url: &str) -> Result<Vec<u8>, CrtshError> {
        let _permit = self.limit.acquire().await.map_err(|e| CrtshError::Http {
            url: url.to_owned(),
            message: e.to_string(),
        })?;
        let mut delay = self.config.backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= self.config.max_attempts.max(1);
            let wait = match self.http.get(url).send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if resp.status().is_success() {
                        match resp.bytes().await {
                            Ok(b) => return Ok(b.to_vec()),
                            Err(e) if last => {
                                return Err(CrtshError::Http {
                                    url: url.to_owned(),
                                    message: e.to_string(),
                                })
                            }
                            Err(e) => {
                                tracing::warn!(crtsh.url = url, error = %e, "crt.sh body failed; retrying");
                                delay
                            }
                        }
                    } else if matches!(status, 429 | 502 | 503 | 504) && !last {
                        let retry_after = resp
                            .headers()
                            .get(reqwest::header::RETRY_AFTER)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.trim().parse::<u64>().ok())
                            .map(Duration::from_secs);
                        tracing::warn!(
                            crtsh.url = url,
                            http.status = status,
                            "crt.sh busy; retrying"
                        );
                        retry_after.map_or(delay, |r| r.min(self.config.max_retry_after))
                    } else {
                        return Err(CrtshError::Status {
                            url: url.to_owned(),
                            status,
                        });
                    }
                }
                Err(e) if last => {
                    return Err(CrtshError::Http {
                        url: url.to_owned(),
                        message: e.to_string(),
                    })
                }
                Err(e) => {
                    tracing::warn!(crtsh.url = url, error = %e, "crt.sh request failed; retrying");
                    delay
                }
            };
            tokio::time::sleep(wait).await;
            delay = delay.saturating_mul(2);
        }
    }

    /// Runs a JSON query. A truncated or invalid body is retried like a failed transfer, then
    /// reported.
    pub async fn query(&self, q: &Query) -> Result<QueryResult, CrtshError> {
        let mut params: Vec<(&str, String)> = Vec::new();
        match q {
            Query::Name {
                name,
                mode,
                exclude_expired,
            } => {
                params.push(("q", name.clone()));
                if let Some(m) = mode {
                    params.push(("match", m.as_str().to_owned()));
                }
                if *exclude_expired {
                    params.push(("exclude", "expired".to_owned()));
                }
            }
            Query::Serial(s) => params.push(("serial", s.clone())),
            Query::Sha1(s) => params.push(("sha1", s.clone())),
            Query::Sha256(s) => params.push(("sha256", s.clone())),
        }
        params.push(("output", "json".to_owned()));
        let url = self.url(&params);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let body = self.get(&url).await?;
            match parse_rows(&body) {
                Ok(mut rows) => {
                    let capped = rows.len() >= ROW_CAP;
                    if capped {
                        tracing::warn!(crtsh.url = %url, rows = rows.len(), "crt.sh result hit the 10,000-row cap");
                    }
                    rows.sort_by_key(|r| r.id);
                    rows.dedup_by_key(|r| r.id);
                    return Ok(QueryResult { rows, capped });
                }
                Err(message) if attempts >= self.config.max_attempts.max(1) => {
                    return Err(CrtshError::Json { url, message })
                }
                Err(message) => {
                    tracing::warn!(crtsh.url = %url, error = %message, "bad crt.sh JSON; retrying");
                    tokio::time::sleep(self.config.backoff).await;
                }
            }
        }
    }

    /// Downloads certificate `id` (`?d=<id>`) and returns its DER.
    pub async fn download(&self, id: u64) -> Result<Vec<u8>, CrtshError> {
        let url = self.url(&[("d", id.to_string())]);
        let body = self.get(&url).await?;
        pem_to_der(&body).ok_or(CrtshError::NotPem { url })
    }
}

/// Parses a crt.sh JSON body (an array of rows; crt.sh answers `[]` or an empty body when
/// nothing matches).
pub fn parse_rows(body: &[u8]) -> Result<Vec<CrtshRow>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    serde_json::from_slice(body).map_err(|e| e.to_string())
}

/// First PEM certificate in `body`, as DER.
pub fn pem_to_der(body: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let text = std::str::from_utf8(body).ok()?;
    let begin = "-----BEGIN CERTIFICATE-----";
    let start = text.find(begin)? + begin.len();
    let end = start + text.get(start..)?.find("-----END CERTIFICATE-----")?;
    let b64: String = text
        .get(start..end)?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'*') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
