//! `certhist`: parses the command line, sets up logging, runs the command.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// mimalloc: the API's hot path allocates per row and per request; glibc malloc was ~17% of a
/// `/hosts` profile (docs/BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let _ = dotenvy::dotenv();
    let mut cli = certhist::cli::Cli::parse();
    // The one read of PATH: where the managed cluster looks for `pg_config` and, last, the
    // PostgreSQL server binaries (the store reads no environment).
    cli.search_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    // The author of tags and notes made from the command line (`cli:USER`).
    cli.user = std::env::var("USER").ok();
    let default_level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = certhist::worker_threads(&cli) {
        builder.worker_threads(n);
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("certhist: cannot start the async runtime: {e}");
            return ExitCode::from(certhist::exit::FAILURE);
        }
    };
    runtime.block_on(certhist::run(cli))
}
