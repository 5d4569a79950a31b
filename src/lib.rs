//! The `certhist` command line: flags are parsed into [`cli::Cli`] by `main`, and [`run`] calls
//! the libraries (`certhist-store`, `certhist-ingest`, …). Output formatting lives in [`output`].

pub mod cli;
mod commands;
pub mod output;

use std::process::ExitCode;

use certhist_store::cluster::ClusterConfig;
use certhist_store::{DbConfig, Store};

pub use commands::Failure;

/// Exit codes: 0 success, 1 failure (database, I/O), 2 bad input or usage, 3 nothing found.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// Database, I/O or other runtime failure.
    pub const FAILURE: u8 = 1;
    /// Invalid input or usage.
    pub const USAGE: u8 = 2;
    /// The thing asked for is not in the database.
    pub const NOT_FOUND: u8 = 3;
}

/// Runs one command.
pub async fn run(cli: cli::Cli) -> ExitCode {
    let started = chrono::Utc::now();
    // The managed cluster's home, whose server log can say why a connection went away.
    let managed_home = cli.database_url.is_none().then(|| cli.home.clone());
    match commands::dispatch(cli).await {
        Ok(code) => ExitCode::from(code),
        Err(mut failure) => {
            if let Some(home) = managed_home.filter(|_| failure.is_unavailable()) {
                if let Some((file, line)) =
                    certhist_store::cluster::server_log_failure(&home, started)
                {
                    failure = failure.with_server_log(file, line);
                }
            }
            // Error text can quote attacker-controlled input (URLs, names, server answers).
            let text = failure.to_string();
            let lines: Vec<String> = text.lines().map(output::clean).collect();
            eprintln!("certhist: {}", lines.join("\n"));
            ExitCode::from(failure.exit_code())
        }
    }
}

/// The database configuration from the global flags.
pub fn db_config(cli: &cli::Cli) -> DbConfig {
    DbConfig {
        url: cli.database_url.clone(),
        home: cli.home.clone(),
        max_connections: 8,
        cluster: cluster_config(cli),
    }
}

/// Where the managed cluster's server binaries are looked for: `--pg-bindir` /
/// `CERTHIST_PG_BINDIR`, then `PATH` (read by `main`).
pub fn cluster_config(cli: &cli::Cli) -> ClusterConfig {
    ClusterConfig {
        pg_bindir: cli.pg_bindir.clone(),
        search_path: cli.search_path.clone(),
    }
}

/// Opens the store (starting the managed cluster when needed); refuses while the observations
/// are being converted to schema V7's layout (`certhist db upgrade` finishes that).
pub async fn open_store(cli: &cli::Cli) -> Result<Store, Failure> {
    let store = open_store_unchecked(cli).await?;
    store.refuse_if_converting().await?;
    Ok(store)
}

/// [`open_store`] without the conversion check: for `db start|url|upgrade`, which do not touch
/// observations.
pub async fn open_store_unchecked(cli: &cli::Cli) -> Result<Store, Failure> {
    Store::open(&db_config(cli)).await.map_err(Failure::from)
}

/// Worker threads of the async runtime for this command line, when not the default (one per
/// core). `certhist serve` runs one per two pooled connections, between one and four per core
/// (issue 17): with the default pool (two connections per core) that is one per core — on the
/// 20M dataset at 8 and 32 client connections on 2 cores, 2 workers served 5–14 % more than 4
/// (fewer wake-ups across threads) — while a large `--max-connections` on a busy machine keeps
/// more workers, so that a worker preempted by a PostgreSQL backend does not hold up every
/// request queued on it (at 32 pooled connections, 8 workers served up to twice as much as 2;
/// docs/BENCHMARKS.md "API tail latency"). `TOKIO_WORKER_THREADS` still overrides.
pub fn worker_threads(cli: &cli::Cli) -> Option<usize> {
    if std::env::var_os("TOKIO_WORKER_THREADS").is_some() {
        return None;
    }
    match &cli.command {
        cli::Command::Serve(args) => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let pool = usize::try_from(args.pool_size()).unwrap_or(usize::MAX);
            Some(pool.div_ceil(2).clamp(cores, 4 * cores))
        }
        _ => None,
    }
}
