//! crt.sh client: the JSON search API (`?q=…&output=json`) and PEM downloads (`?d=<id>`), over
//! the shared fetch layer (certhist-fetch: concurrency limit, retries with backoff on
//! 429/500/502/503/504 and timeouts honouring `Retry-After`, size limit).

use std::time::Duration;

use certhist_fetch::{url_with_query, FetchConfig, FetchError, Fetcher};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};

/// Rows crt.sh returns at most for one JSON query; a full page means results were cut.
pub const ROW_CAP: usize = 10_000;

/// crt.sh errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CrtshError {
    /// The request failed: transport or timeout after all retries, an HTTP error status (404,
    /// 400, … at once; 429, 5xx after retries), a response over the size limit.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The JSON body is invalid or truncated (on every attempt).
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
#[derive(Clone, Debug, PartialEq)]
pub struct CrtshConfig {
    /// Base URL (`https://crt.sh/`).
    pub base_url: String,
    /// HTTP settings. crt.sh is slow and shared: the default makes 5 attempts, backs off from
    /// 2 s, waits up to 120 s when told to, 4 requests in flight.
    pub fetch: FetchConfig,
}

impl Default for CrtshConfig {
    fn default() -> Self {
        CrtshConfig {
            base_url: "https://crt.sh/".into(),
            fetch: FetchConfig {
                concurrency: 4,
                max_attempts: 5,
                backoff_base: Duration::from_secs(2),
                retry_after_cap: Duration::from_secs(120),
                timeout: Duration::from_secs(60),
                ..FetchConfig::default()
            },
        }
    }
}

/// A crt.sh client. Cheap to clone; clones share the limits.
#[derive(Clone, Debug)]
pub struct CrtshClient {
    base_url: String,
    http: Fetcher,
}

impl CrtshClient {
    /// Builds a client.
    pub fn new(config: CrtshConfig) -> Result<Self, CrtshError> {
        let mut base_url = config.base_url;
        if !base_url.ends_with('/') {
            base_url.push('/');
        }
        Ok(CrtshClient {
            base_url,
            http: Fetcher::new(config.fetch)?,
        })
    }

    fn url(&self, params: &[(&str, &str)]) -> String {
        url_with_query(&self.base_url, params)
    }

    /// Runs a JSON query. A truncated or invalid body is retried like a failed transfer, then
    /// reported.
    pub async fn query(&self, q: &Query) -> Result<QueryResult, CrtshError> {
        let mut params: Vec<(&str, &str)> = Vec::new();
        match q {
            Query::Name {
                name,
                mode,
                exclude_expired,
            } => {
                params.push(("q", name));
                if let Some(m) = mode {
                    params.push(("match", m.as_str()));
                }
                if *exclude_expired {
                    params.push(("exclude", "expired"));
                }
            }
            Query::Serial(s) => params.push(("serial", s)),
            Query::Sha1(s) => params.push(("sha1", s)),
            Query::Sha256(s) => params.push(("sha256", s)),
        }
        params.push(("output", "json"));
        let url = self.url(&params);
        let mut rows = self
            .http
            .get_checked(&url, parse_rows)
            .await
            .map_err(|e| match e {
                FetchError::Invalid { url, detail, .. } => CrtshError::Json {
                    url,
                    message: detail,
                },
                other => CrtshError::Fetch(other),
            })?;
        let capped = rows.len() >= ROW_CAP;
        if capped {
            tracing::warn!(crtsh.url = %url, crtsh.rows = rows.len(), "crt.sh result hit the 10,000-row cap: {url}");
        }
        rows.sort_by_key(|r| r.id);
        rows.dedup_by_key(|r| r.id);
        Ok(QueryResult { rows, capped })
    }

    /// Downloads certificate `id` (`?d=<id>`) and returns its DER.
    pub async fn download(&self, id: u64) -> Result<Vec<u8>, CrtshError> {
        let url = self.url(&[("d", &id.to_string())]);
        let body = self.http.get(&url).await?;
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

/// The first PEM `CERTIFICATE` block in `body`, as DER.
pub fn pem_to_der(body: &[u8]) -> Option<Vec<u8>> {
    CertificateDer::from_pem_slice(body)
        .ok()
        .map(|c| c.as_ref().to_vec())
}
