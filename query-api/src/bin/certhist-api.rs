//! Standalone API server (the same code as `certhist serve`), used by scripts/bench-api.sh so
//! the benchmark does not depend on the whole CLI.
//!
//! `certhist-api --home DIR [--print-url]` uses (and starts) the managed cluster under DIR;
//! `--database-url URL` uses a given server.

use std::path::PathBuf;
use std::process::ExitCode;

use certhist_api::cli::ServeArgs;
use certhist_store::{cluster, DbConfig, Store};
use clap::Parser;

/// mimalloc: the API's hot path allocates per row and per request; glibc malloc was ~17% of a
/// `/hosts` profile (docs/BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "certhist-api", about = "certhist HTTP query API server")]
struct Args {
    /// Managed cluster directory.
    #[arg(long, env = "CERTHIST_HOME", default_value = "./certhist-data")]
    home: PathBuf,
    /// A PostgreSQL URL instead of the managed cluster.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Start the managed cluster, apply migrations, print its URL and exit.
    #[arg(long)]
    print_url: bool,
    /// Pooled connections.
    #[arg(long, default_value_t = 8)]
    max_connections: usize,
    #[command(flatten)]
    serve: ServeArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let config = DbConfig {
        url: args.database_url.clone().map(Into::into),
        home: args.home.clone(),
        max_connections: args.max_connections,
        cluster: Default::default(),
    };
    let store = match Store::open(&config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("certhist-api: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.print_url {
        let home = args.home.clone();
        return match tokio::task::spawn_blocking(move || cluster::ensure_running(&home)).await {
            Ok(Ok(info)) => {
                println!("{}", info.url("certhist"));
                ExitCode::SUCCESS
            }
            Ok(Err(e)) => {
                eprintln!("certhist-api: {e}");
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("certhist-api: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match certhist_api::cli::run(args.serve, store).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("certhist-api: {e}");
            ExitCode::FAILURE
        }
    }
}
