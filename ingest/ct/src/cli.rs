//! `certhist ingest ct`: arguments and entry points for the binary.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use certhist_store::Store;

use crate::client::{detect_kind, LogKind, Rfc6962Client, StaticClient};
use crate::http::FetchConfig;
use crate::ingest::{ingest_log, IngestOptions, IngestStats};
use crate::sig::PublicKey;
use crate::{loglist, CtError};

/// `--kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KindArg {
    /// Probe for a static-CT `checkpoint`, else RFC 6962.
    Auto,
    /// RFC 6962 JSON API.
    Rfc6962,
    /// c2sp.org/static-ct-api tiles.
    Static,
}

/// Arguments of `certhist ingest ct`.
#[derive(Debug, Clone, clap::Args)]
pub struct CtArgs {
    /// Log URL (RFC 6962 prefix before /ct/v1, static-CT monitoring prefix, directory or file:// URL).
    #[arg(long, required_unless_present = "log_list")]
    pub log: Option<String>,
    /// Log API.
    #[arg(long, value_enum, default_value = "auto")]
    pub kind: KindArg,
    /// First entry index (default: resume from the verified position).
    #[arg(long)]
    pub from: Option<u64>,
    /// Stop before this entry index (exclusive).
    #[arg(long)]
    pub to: Option<u64>,
    /// Keep polling the tree head and ingest new entries.
    #[arg(long)]
    pub follow: bool,
    /// Requests in flight per log.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Database connections writing each batch (certificates split by sha1; more than the
    /// server's cores does not help).
    #[arg(long, default_value_t = 2)]
    pub writers: usize,
    /// Requests per second per log.
    #[arg(long = "rate")]
    pub rate_per_s: Option<f64>,
    /// The log's public key: a file (DER, PEM or base64) or base64 DER SPKI.
    #[arg(long)]
    pub public_key: Option<String>,
    /// A v3 log list JSON file.
    #[arg(long, requires = "logs")]
    pub log_list: Option<PathBuf>,
    /// Logs to ingest from the list (comma-separated descriptions, URL parts or log IDs).
    #[arg(long, value_delimiter = ',')]
    pub logs: Vec<String>,
    /// Seconds between tree-head polls with --follow.
    #[arg(long, default_value_t = 30)]
    pub poll_seconds: u64,
    /// Entries per database transaction (the most a crash can lose).
    #[arg(long, default_value_t = 8192, hide = true)]
    pub batch_entries: u64,
}

fn load_key(s: &str) -> Result<PublicKey, CtError> {
    let p = std::path::Path::new(s);
    if p.is_file() {
        let data = std::fs::read(p).map_err(|source| CtError::Io {
            path: s.to_owned(),
            source,
        })?;
        return PublicKey::from_text_or_der(&data);
    }
    PublicKey::from_text_or_der(s.as_bytes())
}

/// Ingests one log with an already-chosen kind.
pub async fn ingest_one(
    url: &str,
    kind: LogKind,
    key: Option<PublicKey>,
    fetch: FetchConfig,
    store: &Store,
    opts: &IngestOptions,
) -> Result<IngestStats, CtError> {
    match kind {
        LogKind::Rfc6962 => {
            ingest_log(Arc::new(Rfc6962Client::new(url, key, fetch)?), store, opts).await
        }
        LogKind::Static => {
            ingest_log(Arc::new(StaticClient::new(url, key, fetch)?), store, opts).await
        }
    }
}

fn print(stats: &IngestStats, json: bool) {
    if json {
        if let Ok(s) = serde_json::to_string(stats) {
            println!("{s}");
        }
    } else {
        println!(
            "{}: {} new entries, {} new certificates ({} unparsable), verified {}/{}",
            stats.url,
            stats.entries,
            stats.certs_new,
            stats.certs_unparsable,
            stats.verified_position,
            stats.tree_size
        );
    }
}

/// Runs `certhist ingest ct`. Prints one line (or one JSON object) per log.
///
/// The selected logs are ingested concurrently (each with its own rate and concurrency limits).
/// With `--follow` this runs until Ctrl-C, which stops every log after its current batch is
/// committed. A log that fails does not stop the others; the first error is returned at the end.
pub async fn run(args: CtArgs, store: &Store, json: bool) -> Result<Vec<IngestStats>, CtError> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    if args.follow {
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::info!("stopping after the current batches");
                let _ = stop_tx.send(true);
            }
        });
    }
    run_until(args, store, json, Some(stop_rx)).await
}

/// [`run`] with a caller-controlled stop signal instead of Ctrl-C (tests, embedding).
pub async fn run_until(
    args: CtArgs,
    store: &Store,
    json: bool,
    stop: Option<tokio::sync::watch::Receiver<bool>>,
) -> Result<Vec<IngestStats>, CtError> {
    let fetch = FetchConfig {
        concurrency: args.concurrency.max(1),
        rate_per_s: args.rate_per_s,
        ..FetchConfig::default()
    };
    let opts = IngestOptions {
        from: args.from,
        to: args.to,
        follow: args.follow,
        poll_interval: Duration::from_secs(args.poll_seconds.max(1)),
        concurrency: args.concurrency.max(1),
        writers: args.writers.max(1),
        progress: !json,
        batch_entries: args.batch_entries.max(1),
        stop,
        ..IngestOptions::default()
    };
    let mut targets: Vec<(String, Option<LogKind>, Option<PublicKey>)> = Vec::new();
    if let Some(list) = &args.log_list {
        let data = std::fs::read(list).map_err(|source| CtError::Io {
            path: list.display().to_string(),
            source,
        })?;
        let logs = loglist::parse(&data)?;
        for l in loglist::select(&logs, &args.logs)? {
            let key = l
                .key
                .as_deref()
                .map(|k| PublicKey::from_text_or_der(k.as_bytes()))
                .transpose()?;
            targets.push((l.url.clone(), Some(l.kind), key));
        }
    }
    if let Some(url) = &args.log {
        let key = args.public_key.as_deref().map(load_key).transpose()?;
        let kind = match args.kind {
            KindArg::Auto => None,
            KindArg::Rfc6962 => Some(LogKind::Rfc6962),
            KindArg::Static => Some(LogKind::Static),
        };
        targets.push((url.clone(), kind, key));
    }
    // One progress bar per run: with several logs at once, bars would overwrite each other on
    // stderr, so progress then comes from the per-log log lines only.
    let single = targets.len() == 1;
    let runs = targets.into_iter().map(|(url, kind, key)| {
        let (fetch, mut opts) = (fetch.clone(), opts.clone());
        opts.progress &= single;
        async move {
            let kind = match kind {
                Some(k) => k,
                None => detect_kind(&url, &fetch).await?,
            };
            tracing::info!(ct_log.url = %url, ct_log.kind = kind.as_str(), "ingesting CT log");
            let r = ingest_one(&url, kind, key, fetch, store, &opts).await;
            match &r {
                Ok(stats) => print(stats, json),
                Err(e) => tracing::error!(ct_log.url = %url, "{e}"),
            }
            r
        }
    });
    let mut out = Vec::new();
    let mut first_err = None;
    for r in futures_util::future::join_all(runs).await {
        match r {
            Ok(s) => out.push(s),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// `certhist demo`: ingests the bundled static-CT tiles in `tiles_dir` (a directory holding
/// `checkpoint`, `tile/` and `issuer/`), served from disk.
pub async fn demo_ingest(
    store: &Store,
    tiles_dir: &std::path::Path,
) -> Result<IngestStats, CtError> {
    let url = tiles_dir.display().to_string();
    let opts = IngestOptions::default();
    ingest_one(
        &url,
        LogKind::Static,
        None,
        FetchConfig::default(),
        store,
        &opts,
    )
    .await
}

impl LogKind {
    /// Parses `rfc6962` / `static`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "rfc6962" => Some(LogKind::Rfc6962),
            "static" => Some(LogKind::Static),
            _ => None,
        }
    }
}
