//! `ct-ingest`: `certhist ingest ct` as a standalone process, for tests that need a real process
//! to kill (crash/resume) and for scripts. Same arguments; the database comes from DATABASE_URL
//! (a `postgres://` URL or libpq `key=value` string).

use std::process::ExitCode;

use certhist_store::{DbConfig, Store};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "ct-ingest",
    about = "Ingest Certificate Transparency logs into certhist"
)]
struct Cli {
    /// The certhist database.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// NDJSON output.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    ct: certhist_ct::cli::CtArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = DbConfig {
        url: Some(cli.database_url.into()),
        home: std::env::temp_dir(),
        max_connections: 4,
        cluster: Default::default(),
    };
    let store = match Store::open(&config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ct-ingest: {e}");
            return ExitCode::from(2);
        }
    };
    match certhist_ct::cli::run(cli.ct, &store, cli.json).await {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ct-ingest: {e}");
            ExitCode::FAILURE
        }
    }
}
