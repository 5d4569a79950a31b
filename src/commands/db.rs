//! `certhist db start|stop|status|url`.

use std::io::Write;

use anyhow::Context;
use certhist_store::cluster::{self, StartOptions};
use certhist_store::read;
use clap::Subcommand;
use secrecy::ExposeSecret;
use serde::Serialize;

use super::Failure;
use crate::cli::Cli;
use crate::exit;
use crate::output::ndjson;

/// `certhist db …`
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Initialise (once) and start the managed cluster.
    Start {
        /// Also listen on this TCP address (e.g. 127.0.0.1:5433) for other tools.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Stop the managed cluster.
    Stop,
    /// Show the cluster state and row counts.
    Status,
    /// Print a connection URL for psql and other tools.
    Url,
}

pub(crate) async fn run(cli: &Cli, command: &DbCommand) -> Result<u8, Failure> {
    let mut out = std::io::stdout().lock();
    if cli.database_url.is_some() {
        return external(cli, command, &mut out).await;
    }
    let home = cli.home.clone();
    let config = crate::cluster_config(cli);
    match command {
        DbCommand::Start { listen } => {
            let options = StartOptions {
                tcp: *listen,
                cluster: config,
                ..StartOptions::default()
            };
            let h = home.clone();
            let info =
                tokio::task::spawn_blocking(move || cluster::ensure_running_with(&h, &options))
                    .await
                    .context("cluster thread failed")?
                    .map_err(certhist_store::StoreError::from)?;
            // Create and migrate the certhist database too, so `db url` works with psql at once.
            crate::open_store(cli).await?;
            if cli.json {
                ndjson(
                    &mut out,
                    &serde_json::json!({"running": true, "url": info.url("certhist")}),
                )?;
            } else {
                writeln!(out, "managed PostgreSQL running in {}", home.display())?;
                writeln!(out, "url: {}", info.url("certhist"))?;
            }
            Ok(exit::OK)
        }
        DbCommand::Stop => {
            let h = home.clone();
            let was_running = tokio::task::spawn_blocking(move || cluster::stop_with(&h, &config))
                .await
                .context("cluster thread failed")?
                .map_err(certhist_store::StoreError::from)?;
            if cli.json {
                ndjson(&mut out, &serde_json::json!({"stopped": was_running}))?;
            } else if was_running {
                writeln!(out, "stopped the managed PostgreSQL in {}", home.display())?;
            } else {
                writeln!(
                    out,
                    "the managed PostgreSQL in {} was not running",
                    home.display()
                )?;
            }
            Ok(exit::OK)
        }
        DbCommand::Status => {
            let h = home.clone();
            let status = tokio::task::spawn_blocking(move || cluster::status_with(&h, &config))
                .await
                .context("cluster thread failed")?
                .map_err(certhist_store::StoreError::from)?;
            let counts = if status.running {
                let store = crate::open_store(cli).await?;
                let conn = store.conn().await?;
                Some(read::counts(&conn).await?)
            } else {
                None
            };
            if cli.json {
                ndjson(
                    &mut out,
                    &StatusOutput {
                        initialised: status.initialised,
                        running: status.running,
                        pid: status.pid,
                        data_dir: status.data_dir.display().to_string(),
                        socket_dir: status.socket_dir.display().to_string(),
                        server_version: status.server_version.clone(),
                        url: status.info.as_ref().map(|i| i.url("certhist")),
                        counts: counts.clone(),
                    },
                )?;
            } else {
                writeln!(out, "data directory: {}", status.data_dir.display())?;
                writeln!(out, "initialised:    {}", status.initialised)?;
                writeln!(
                    out,
                    "running:        {}{}",
                    status.running,
                    status
                        .pid
                        .map(|p| format!(" (pid {p})"))
                        .unwrap_or_default()
                )?;
                if let Some(v) = &status.server_version {
                    writeln!(out, "server:         {v}")?;
                }
                writeln!(out, "log:            {}", status.log_file.display())?;
                if let Some(info) = &status.info {
                    writeln!(out, "url:            {}", info.url("certhist"))?;
                }
                if let Some(c) = &counts {
                    print_counts(c, &mut out)?;
                }
            }
            Ok(if status.running {
                exit::OK
            } else {
                exit::NOT_FOUND
            })
        }
        DbCommand::Url => {
            let h = home.clone();
            let options = StartOptions {
                cluster: config,
                ..StartOptions::default()
            };
            let info =
                tokio::task::spawn_blocking(move || cluster::ensure_running_with(&h, &options))
                    .await
                    .context("cluster thread failed")?
                    .map_err(certhist_store::StoreError::from)?;
            crate::open_store(cli).await?;
            writeln!(out, "{}", info.url("certhist"))?;
            Ok(exit::OK)
        }
    }
}

#[derive(Serialize)]
struct StatusOutput {
    initialised: bool,
    running: bool,
    pid: Option<u32>,
    data_dir: String,
    socket_dir: String,
    server_version: Option<String>,
    url: Option<String>,
    counts: Option<read::Counts>,
}

fn print_counts(c: &read::Counts, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "certificates:   {} ({} unparsable)",
        c.certificates, c.unparsable
    )?;
    writeln!(out, "names:          {}", c.names)?;
    writeln!(
        out,
        "observations:   {} ({} distinct IPs)",
        c.observations, c.distinct_ips
    )?;
    writeln!(out, "ct entries:     {}", c.ct_entries)?;
    writeln!(out, "cache entries:  {}", c.cache_entries)
}

/// With DATABASE_URL the server is not ours: only status and url make sense.
async fn external(cli: &Cli, command: &DbCommand, out: &mut impl Write) -> Result<u8, Failure> {
    match command {
        DbCommand::Start { .. } | DbCommand::Stop => Err(Failure::Usage(
            "DATABASE_URL is set: certhist does not start or stop that server (unset DATABASE_URL to use the managed cluster)".to_owned(),
        )),
        DbCommand::Url => {
            // Asked for: the URL as given, password included.
            let url = cli.database_url.as_ref().map(|u| u.expose_secret());
            writeln!(out, "{}", url.unwrap_or_default())?;
            Ok(exit::OK)
        }
        DbCommand::Status => {
            let store = crate::open_store(cli).await?;
            let conn = store.conn().await?;
            let counts = read::counts(&conn).await?;
            if cli.json {
                ndjson(out, &counts)?;
            } else {
                writeln!(out, "using the server given by DATABASE_URL")?;
                print_counts(&counts, out)?;
            }
            Ok(exit::OK)
        }
    }
}
