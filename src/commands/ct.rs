//! `certhist ingest ct`: its flags, the plan built from them, the progress bar and the per-log
//! summary. The work is crate certhist-ct's ([`certhist_ct::run`]).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use certhist_ct::client::LogKind;
use certhist_ct::sig::PublicKey;
use certhist_ct::{
    CtError, FetchConfig, IngestOptions, IngestPlan, IngestStats, LogTarget, Progress, ProgressFn,
};
use indicatif::{ProgressBar, ProgressStyle};

use super::Failure;
use crate::cli::Cli;
use crate::exit;
use crate::output::Table;

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
    /// Keep polling the tree head and ingest new entries (until Ctrl-C).
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
    #[arg(long = "rate", value_parser = positive_rate)]
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

fn positive_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!(
            "{s:?} is not a positive number of requests per second"
        )),
    }
}

impl From<CtError> for Failure {
    fn from(e: CtError) -> Self {
        match e {
            CtError::Usage(m) => Failure::Usage(m),
            e @ CtError::BadKey(_) => Failure::Usage(e.to_string()),
            // Keep the store error itself, so the failure can tell a lost database apart.
            CtError::Store(e) => Failure::from(e),
            other => Failure::Other(anyhow::Error::new(other)),
        }
    }
}

/// Runs `certhist ingest ct`: one summary row (or NDJSON object) per log that finished; the
/// first log error, if any, is the command's failure.
pub(crate) async fn run(cli: &Cli, args: &CtArgs) -> Result<u8, Failure> {
    let mut plan = plan(args)?;
    let store = crate::open_store(cli).await?;
    if args.follow {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::info!("stopping after the current batches");
                let _ = stop_tx.send(true);
            }
        });
        plan.options.stop = Some(stop_rx);
    }
    // One progress bar per run: with several logs at once, bars would overwrite each other on
    // stderr, so progress then comes from the per-log log lines only.
    let bar = (plan.logs.len() == 1 && !cli.json).then(progress_bar);
    plan.options.progress = bar.clone().map(|bar| {
        ProgressFn::new(move |event| match event {
            Progress::Range { start, end, .. } => bar.set_length(end.saturating_sub(*start)),
            Progress::Committed { entries, .. } => bar.inc(*entries),
            _ => {}
        })
    });
    let outcomes = certhist_ct::run(plan, &store).await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let mut stats = Vec::new();
    let mut first_err = None;
    for o in outcomes {
        match o.result {
            Ok(s) => stats.push(s),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    print(&stats, cli.json)?;
    if let Some(e) = first_err {
        return Err(e.into());
    }
    Ok(if stats.is_empty() {
        exit::NOT_FOUND
    } else {
        exit::OK
    })
}

/// The plan the flags describe: the selected logs of `--log-list`, then `--log`.
fn plan(args: &CtArgs) -> Result<IngestPlan, Failure> {
    let mut logs = Vec::new();
    if let Some(list) = &args.log_list {
        let data = std::fs::read(list)
            .with_context(|| format!("cannot read the log list {}", list.display()))?;
        logs.extend(LogTarget::from_log_list(&data, &args.logs)?);
    }
    if let Some(url) = &args.log {
        logs.push(LogTarget {
            url: url.clone(),
            kind: match args.kind {
                KindArg::Auto => None,
                KindArg::Rfc6962 => Some(LogKind::Rfc6962),
                KindArg::Static => Some(LogKind::Static),
            },
            key: args
                .public_key
                .as_deref()
                .map(PublicKey::from_file_or_text)
                .transpose()?,
        });
    }
    Ok(IngestPlan {
        logs,
        fetch: FetchConfig {
            concurrency: args.concurrency.max(1),
            rate_per_s: args.rate_per_s,
            ..FetchConfig::default()
        },
        options: IngestOptions {
            from: args.from,
            to: args.to,
            follow: args.follow,
            poll_interval: Duration::from_secs(args.poll_seconds.max(1)),
            concurrency: args.concurrency.max(1),
            writers: args.writers.max(1),
            batch_entries: args.batch_entries.max(1),
            ..IngestOptions::default()
        },
    })
}

fn progress_bar() -> ProgressBar {
    let pb = ProgressBar::new(0);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} entries {per_sec} eta {eta} {msg}")
    {
        pb.set_style(style);
    }
    pb
}

/// NDJSON (one object per log) or a table.
fn print(stats: &[IngestStats], json: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        for s in stats {
            crate::output::ndjson(&mut out, s)?;
        }
        return out.flush();
    }
    if stats.is_empty() {
        return Ok(());
    }
    let mut t = Table::new(&[
        "LOG",
        "NEW ENTRIES",
        "NEW CERTS",
        "UNPARSABLE",
        "VERIFIED",
        "TREE SIZE",
    ]);
    for s in stats {
        t.row(vec![
            s.url.clone(),
            s.entries.to_string(),
            s.certs_new.to_string(),
            s.certs_unparsable.to_string(),
            s.verified_position.to_string(),
            s.tree_size.to_string(),
        ]);
    }
    t.print(&mut out)
}
