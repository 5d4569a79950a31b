//! `certhist db replica create|start|stop|status DIR`: hot standbys of the managed cluster
//! (issue 15), for `certhist serve --replica-url`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use certhist_store::cluster::{self, StartOptions};
use certhist_store::{Store, StoreError};
use clap::Subcommand;
use serde::Serialize;

use super::Failure;
use crate::cli::Cli;
use crate::exit;
use crate::output::{clean, ndjson};

/// `certhist db replica …`
#[derive(Debug, Subcommand)]
pub enum ReplicaCommand {
    /// Make a hot standby of the managed cluster in DIR (pg_basebackup; the primary is started
    /// when it is not running). DIR must not hold a replica yet.
    Create {
        /// Directory of the replica (its data directory, log and socket go there).
        dir: PathBuf,
    },
    /// Start the replica in DIR; prints its connection URL for `serve --replica-url`.
    Start {
        /// Directory of the replica.
        dir: PathBuf,
        /// Also listen on this TCP address (loopback only; clients log in with the password of
        /// role certhist, the same as the primary's, in DIR/pgpass).
        #[arg(long, value_name = "ADDR:PORT")]
        listen: Option<std::net::SocketAddr>,
    },
    /// Stop the replica in DIR.
    Stop {
        /// Directory of the replica.
        dir: PathBuf,
    },
    /// Show whether the replica in DIR runs, and how far it lags behind the primary.
    Status {
        /// Directory of the replica.
        dir: PathBuf,
    },
}

#[derive(Serialize)]
struct StatusOutput {
    dir: String,
    running: bool,
    pid: Option<u32>,
    url: Option<String>,
    tcp_url: Option<String>,
    in_recovery: Option<bool>,
    lag_bytes: Option<u64>,
    lag_seconds: Option<f64>,
    replay_age_seconds: Option<f64>,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, cluster::ClusterError> + Send + 'static,
) -> Result<T, Failure> {
    Ok(tokio::task::spawn_blocking(f)
        .await
        .context("cluster thread failed")?
        .map_err(StoreError::from)?)
}

pub(crate) async fn run(cli: &Cli, command: &ReplicaCommand) -> Result<u8, Failure> {
    if cli.database_url.is_some() {
        return Err(Failure::Usage(
            "DATABASE_URL is set: `certhist db replica` makes and runs replicas of the managed cluster (unset DATABASE_URL); for another server use its own tools (pg_basebackup -R)".to_owned(),
        ));
    }
    let mut out = std::io::stdout().lock();
    let config = crate::cluster_config(cli);
    match command {
        ReplicaCommand::Create { dir } => {
            let home = cli.home.clone();
            let d = dir.clone();
            let options = StartOptions {
                cluster: config,
                ..StartOptions::default()
            };
            eprintln!("certhist: taking a base backup of the managed cluster (pg_basebackup)…");
            let made = blocking(move || cluster::create_replica(&home, &options, &d)).await?;
            if cli.json {
                ndjson(&mut out, &made)?;
            } else {
                writeln!(
                    out,
                    "replica created in {}",
                    clean(&made.dir.display().to_string())
                )?;
                writeln!(
                    out,
                    "  data directory: {}",
                    clean(&made.data_dir.display().to_string())
                )?;
                writeln!(out, "  copied:         {} MB", made.bytes / 1_000_000)?;
                writeln!(
                    out,
                    "  streams from:   the primary over {} (application_name {})",
                    made.via, made.application_name
                )?;
                writeln!(
                    out,
                    "start it with `certhist db replica start {}`",
                    clean(&made.dir.display().to_string())
                )?;
            }
            Ok(exit::OK)
        }
        ReplicaCommand::Start { dir, listen } => {
            if let Some(addr) = listen {
                if !addr.ip().is_loopback() {
                    return Err(Failure::Usage(format!(
                        "--listen {addr}: a replica listens on a loopback address only (e.g. 127.0.0.1:{})",
                        addr.port()
                    )));
                }
            }
            let options = StartOptions {
                tcp: *listen,
                cluster: config,
                ..StartOptions::default()
            };
            let d = dir.clone();
            let info = blocking(move || cluster::start_replica(&d, &options)).await?;
            if cli.json {
                ndjson(
                    &mut out,
                    &serde_json::json!({
                        "running": true,
                        "pid": info.pid,
                        "url": info.url("certhist"),
                        "tcp_url": info.tcp_url("certhist"),
                    }),
                )?;
            } else {
                writeln!(
                    out,
                    "replica running in {} (pid {})",
                    clean(&dir.display().to_string()),
                    info.pid
                )?;
                writeln!(out, "url: {}", info.url("certhist"))?;
                if let Some(url) = info.tcp_url("certhist") {
                    writeln!(out, "tcp: {url}")?;
                }
                writeln!(
                    out,
                    "serve with: certhist serve --replica-url '{}'",
                    info.url("certhist")
                )?;
            }
            Ok(exit::OK)
        }
        ReplicaCommand::Stop { dir } => {
            check_replica(dir)?;
            let d = dir.clone();
            let was = blocking(move || cluster::stop_with(&d, &config)).await?;
            if cli.json {
                ndjson(&mut out, &serde_json::json!({ "stopped": was }))?;
            } else if was {
                writeln!(
                    out,
                    "stopped the replica in {}",
                    clean(&dir.display().to_string())
                )?;
            } else {
                writeln!(
                    out,
                    "the replica in {} was not running",
                    clean(&dir.display().to_string())
                )?;
            }
            Ok(exit::OK)
        }
        ReplicaCommand::Status { dir } => {
            check_replica(dir)?;
            let d = dir.clone();
            let c = config.clone();
            let status = blocking(move || cluster::status_with(&d, &c)).await?;
            let home = cli.home.clone();
            let primary = blocking(move || cluster::status_with(&home, &config)).await?;
            let mut o = StatusOutput {
                dir: dir.display().to_string(),
                running: status.running,
                pid: status.pid,
                url: status.info.as_ref().map(|i| i.url("certhist")),
                tcp_url: status.info.as_ref().and_then(|i| i.tcp_url("certhist")),
                in_recovery: None,
                lag_bytes: None,
                lag_seconds: None,
                replay_age_seconds: None,
            };
            if let Some(info) = &status.info {
                let replica = Store::connect_only(info.pg_config("certhist"), 1)?;
                let seen = replica.conn().await?.replay_state().await?;
                o.in_recovery = Some(seen.in_recovery);
                o.replay_age_seconds = seen.replay_age_seconds;
                if let (Some(p), Some(replay)) = (&primary.info, seen.replay_lsn) {
                    let primary = Store::connect_only(p.pg_config("certhist"), 1)?;
                    let lsn = primary.conn().await?.current_wal_lsn().await?;
                    let bytes = lsn.saturating_sub(replay);
                    o.lag_bytes = Some(bytes);
                    o.lag_seconds = if bytes == 0 {
                        Some(0.0)
                    } else {
                        seen.replay_age_seconds.map(|a| a.max(0.0))
                    };
                }
            }
            if cli.json {
                ndjson(&mut out, &o)?;
            } else {
                writeln!(out, "replica:      {}", clean(&o.dir))?;
                writeln!(
                    out,
                    "running:      {}{}",
                    o.running,
                    o.pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
                )?;
                if let Some(u) = &o.url {
                    writeln!(out, "url:          {u}")?;
                }
                if let Some(u) = &o.tcp_url {
                    writeln!(out, "tcp url:      {u}")?;
                }
                if let Some(r) = o.in_recovery {
                    writeln!(
                        out,
                        "standby:      {}",
                        if r {
                            "yes (in recovery)"
                        } else {
                            "NO: promoted or not a replica"
                        }
                    )?;
                }
                match (o.lag_bytes, o.lag_seconds) {
                    (Some(b), Some(s)) => {
                        writeln!(out, "lag:          {b} bytes of WAL, {s:.1} s")?
                    }
                    (Some(b), None) => writeln!(out, "lag:          {b} bytes of WAL")?,
                    _ if o.running => {
                        writeln!(out, "lag:          unknown (the primary is not running)")?
                    }
                    _ => {}
                }
            }
            Ok(if o.running { exit::OK } else { exit::NOT_FOUND })
        }
    }
}

fn check_replica(dir: &Path) -> Result<(), Failure> {
    if cluster::is_replica(dir) {
        Ok(())
    } else {
        Err(Failure::Usage(format!(
            "{} holds no replica (make one with `certhist db replica create {}`)",
            clean(&dir.display().to_string()),
            clean(&dir.display().to_string())
        )))
    }
}
