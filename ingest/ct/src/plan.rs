//! What to ingest ([`IngestPlan`]: logs with their kinds and keys, HTTP settings, run options)
//! and [`run`], which ingests every log of a plan concurrently.

use std::path::Path;
use std::sync::Arc;

use certhist_fetch::FetchConfig;
use certhist_store::Store;

use crate::client::{detect_kind, LogKind, Rfc6962Client, StaticClient};
use crate::ingest::{ingest_log, IngestOptions, IngestStats};
use crate::sig::PublicKey;
use crate::{loglist, CtError};

/// One log to ingest.
#[derive(Debug, Clone)]
pub struct LogTarget {
    /// The log's URL: the RFC 6962 prefix before `/ct/v1/`, a static-CT monitoring prefix, a
    /// directory or a `file://` URL.
    pub url: String,
    /// Its API; `None`: probed ([`detect_kind`]).
    pub kind: Option<LogKind>,
    /// Its key; `None`: tree-head signatures are not checked (a warning is logged).
    pub key: Option<PublicKey>,
}

impl LogTarget {
    /// The logs of a v3 log list (JSON) that `names` select ([`loglist::select`]), each with the
    /// kind and key the list gives. A name that matches no log is [`CtError::Usage`].
    pub fn from_log_list(list_json: &[u8], names: &[String]) -> Result<Vec<LogTarget>, CtError> {
        let logs = loglist::parse(list_json)?;
        loglist::select(&logs, names)?
            .into_iter()
            .map(|l| {
                let key = l
                    .key
                    .as_deref()
                    .map(|k| PublicKey::from_text_or_der(k.as_bytes()))
                    .transpose()?;
                Ok(LogTarget {
                    url: l.url.clone(),
                    kind: Some(l.kind),
                    key,
                })
            })
            .collect()
    }
}

/// Everything one ingest run needs.
#[derive(Debug, Clone, Default)]
pub struct IngestPlan {
    /// The logs, ingested concurrently; the outcomes come back in this order.
    pub logs: Vec<LogTarget>,
    /// HTTP settings; each log gets a fetcher of its own (its own rate and concurrency limits).
    pub fetch: FetchConfig,
    /// Options of every log's run: range, `follow`, batch sizes, stop signal, progress events.
    pub options: IngestOptions,
}

/// How one log's ingest ended.
#[derive(Debug)]
pub struct LogOutcome {
    /// The log's URL, as in the plan.
    pub url: String,
    /// What the run did, or why it stopped.
    pub result: Result<IngestStats, CtError>,
}

/// Ingests every log of `plan` into `store`, concurrently. A log that fails does not stop the
/// others. With `follow`, runs until [`IngestOptions::stop`] turns true (each log stops after
/// its current batch is committed).
pub async fn run(plan: IngestPlan, store: &Store) -> Vec<LogOutcome> {
    let IngestPlan {
        logs,
        fetch,
        options,
    } = plan;
    let runs = logs.into_iter().map(|target| {
        let (fetch, options) = (fetch.clone(), options.clone());
        async move {
            let result = async {
                let kind = match target.kind {
                    Some(k) => k,
                    None => detect_kind(&target.url, &fetch).await?,
                };
                tracing::info!(
                    ct_log.url = %target.url,
                    ct_log.kind = kind.as_str(),
                    "ingesting CT log {} ({})",
                    target.url,
                    kind.as_str()
                );
                ingest_one(&target.url, kind, target.key, fetch, store, &options).await
            }
            .await;
            if let Err(e) = &result {
                tracing::error!(ct_log.url = %target.url, "CT log {}: {e}", target.url);
            }
            LogOutcome {
                url: target.url,
                result,
            }
        }
    });
    futures_util::future::join_all(runs).await
}

/// Ingests the log at `url`, of a known kind, into `store` ([`ingest_log`] with a client built
/// from `fetch`).
pub async fn ingest_one(
    url: &str,
    kind: LogKind,
    key: Option<PublicKey>,
    fetch: FetchConfig,
    store: &Store,
    options: &IngestOptions,
) -> Result<IngestStats, CtError> {
    match kind {
        LogKind::Rfc6962 => {
            let client = Rfc6962Client::new(url, key, fetch)?;
            ingest_log(Arc::new(client), store, options).await
        }
        LogKind::Static => {
            let client = StaticClient::new(url, key, fetch)?;
            ingest_log(Arc::new(client), store, options).await
        }
    }
}

/// Ingests the static-CT log mirrored in directory `dir` (`checkpoint`, `tile/`, `issuer/`),
/// without a key, with default options (`certhist demo` uses it on the bundled tiles).
pub async fn ingest_static_dir(store: &Store, dir: &Path) -> Result<IngestStats, CtError> {
    ingest_one(
        &dir.display().to_string(),
        LogKind::Static,
        None,
        FetchConfig::default(),
        store,
        &IngestOptions::default(),
    )
    .await
}
