//! `certhist db start|stop|status|url`.

use std::io::Write;

use anyhow::Context;
use certhist_store::cluster::{
    self, ClusterError, ClusterInfo, Listener, ListenerKind, StartOptions,
};
use certhist_store::read;
use clap::Subcommand;
use ipnet::IpNet;
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
        /// Also listen on this TCP address (e.g. 127.0.0.1:5433) for other tools. TCP clients
        /// log in with the password of role certhist (SCRAM-SHA-256), kept in
        /// $CERTHIST_HOME/pgpass (mode 0600); `certhist db url --tcp` prints a URL using it.
        #[arg(long, value_name = "ADDR:PORT")]
        listen: Option<std::net::SocketAddr>,
        /// A network (CIDR, or a single address) of other hosts allowed to connect over TCP,
        /// with the password; repeatable. Required to listen on a non-loopback address.
        #[arg(long, value_name = "CIDR", requires = "listen", value_parser = parse_cidr)]
        allow_remote: Vec<IpNet>,
    },
    /// Stop the managed cluster.
    Stop,
    /// Show the cluster state, its listeners and their authentication, and row counts.
    Status,
    /// Print a connection URL for psql and other tools (the Unix socket by default).
    Url {
        /// A URL over TCP (the cluster must have been started with --listen) that reads the
        /// password from $CERTHIST_HOME/pgpass (`passfile=`), for psql and other libpq clients.
        #[arg(long)]
        tcp: bool,
        /// With --tcp: put the password itself into the URL, for clients that read no password
        /// file. Keep the output private.
        #[arg(long, requires = "tcp")]
        with_password: bool,
    },
    /// Finish a schema upgrade that converts data in place: the observations of a database
    /// created before schema V7 are copied into the lean layout in committed batches, with
    /// progress and an estimate of the time left. Interrupted, it continues where it stopped.
    Upgrade {
        /// Rows (and certificate identities) per committed batch.
        #[arg(long, default_value_t = 50_000, value_name = "N")]
        batch_rows: i64,
    },
    /// Read replicas of the managed cluster (hot standbys by streaming replication) for
    /// `certhist serve --replica-url`.
    #[command(subcommand)]
    Replica(super::replica::ReplicaCommand),
}

/// A network for --allow-remote: `192.0.2.0/24`, `2001:db8::/32`, or one address.
fn parse_cidr(text: &str) -> Result<IpNet, String> {
    let t = text.trim();
    if let Ok(net) = t.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    t.parse::<std::net::IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("not a network (CIDR such as 192.0.2.0/24) or an IP address: {t:?}"))
}

pub(crate) async fn run(cli: &Cli, command: &DbCommand) -> Result<u8, Failure> {
    if let DbCommand::Replica(command) = command {
        return super::replica::run(cli, command).await;
    }
    let mut out = std::io::stdout().lock();
    if let DbCommand::Upgrade { batch_rows } = command {
        return upgrade(cli, *batch_rows, &mut out).await;
    }
    if cli.database_url.is_some() {
        return external(cli, command, &mut out).await;
    }
    let home = cli.home.clone();
    let config = crate::cluster_config(cli);
    match command {
        DbCommand::Start {
            listen,
            allow_remote,
        } => {
            if let Some(address) = *listen {
                if !address.ip().is_loopback() && allow_remote.is_empty() {
                    return Err(Failure::Usage(
                        ClusterError::RemoteNotAllowed { address }.to_string(),
                    ));
                }
            }
            let options = StartOptions {
                tcp: *listen,
                allow_remote: allow_remote.clone(),
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
            crate::open_store_unchecked(cli).await?;
            if cli.json {
                ndjson(
                    &mut out,
                    &serde_json::json!({
                        "running": true,
                        "url": info.url("certhist"),
                        "tcp_url": info.tcp_url("certhist"),
                    }),
                )?;
            } else {
                writeln!(out, "managed PostgreSQL running in {}", home.display())?;
                writeln!(out, "url: {}", info.url("certhist"))?;
                if let Some(url) = info.tcp_url("certhist") {
                    writeln!(out, "tcp: {url}")?;
                    writeln!(
                        out,
                        "     (password of role certhist in {}; `certhist db url --tcp --with-password` for clients without passfile support)",
                        info.passfile.display()
                    )?;
                }
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
                        tcp_url: status.info.as_ref().and_then(|i| i.tcp_url("certhist")),
                        listeners: status.listeners.clone(),
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
                    if let Some(url) = info.tcp_url("certhist") {
                        writeln!(out, "tcp url:        {url}")?;
                    }
                }
                if !status.listeners.is_empty() {
                    writeln!(out, "listeners:")?;
                    for l in &status.listeners {
                        print_listener(l, &mut out)?;
                    }
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
        DbCommand::Replica(command) => super::replica::run(cli, command).await,
        DbCommand::Upgrade { .. } => unreachable!("handled above"),
        DbCommand::Url { tcp, with_password } => {
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
            crate::open_store_unchecked(cli).await?;
            if *tcp {
                writeln!(out, "{}", tcp_url(&home, &info, *with_password)?)?;
            } else {
                writeln!(out, "{}", info.url("certhist"))?;
            }
            Ok(exit::OK)
        }
    }
}

/// The TCP URL of the running cluster: with `passfile=`, or with the password inline.
fn tcp_url(
    home: &std::path::Path,
    info: &ClusterInfo,
    with_password: bool,
) -> Result<String, Failure> {
    let not_listening = || {
        Failure::Usage(format!(
            "the managed PostgreSQL in {} does not listen on TCP; restart it with a TCP listener: `certhist db stop && certhist db start --listen 127.0.0.1:5433`",
            home.display()
        ))
    };
    if !with_password {
        return info.tcp_url("certhist").ok_or_else(not_listening);
    }
    let password = cluster::tcp_password(home).map_err(certhist_store::StoreError::from)?;
    let url = info
        .tcp_url_with_password("certhist", &password)
        .ok_or_else(not_listening)?;
    Ok(url.expose_secret().to_owned())
}

fn print_listener(l: &Listener, out: &mut impl Write) -> std::io::Result<()> {
    let kind = match l.kind {
        ListenerKind::Unix => "unix socket",
        ListenerKind::Tcp => "tcp",
    };
    writeln!(out, "  {kind} {}", l.address)?;
    if l.authentication.is_empty() {
        writeln!(
            out,
            "    (no pg_hba.conf rule readable: nobody can connect this way)"
        )?;
    }
    for r in &l.authentication {
        let from = r
            .address
            .as_deref()
            .map(|a| format!(" from {a}"))
            .unwrap_or_default();
        writeln!(
            out,
            "    {}: database {}, user {}{from}",
            r.method, r.database, r.user
        )?;
    }
    Ok(())
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
    tcp_url: Option<String>,
    listeners: Vec<Listener>,
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
        DbCommand::Upgrade { .. } => unreachable!("handled by run"),
        DbCommand::Start { .. } | DbCommand::Stop | DbCommand::Replica(_) => Err(Failure::Usage(
            "DATABASE_URL is set: certhist does not start or stop that server (unset DATABASE_URL to use the managed cluster)".to_owned(),
        )),
        DbCommand::Url { tcp: true, .. } => Err(Failure::Usage(
            "DATABASE_URL is set: --tcp is for the managed cluster; the URL is DATABASE_URL itself (`certhist db url`)".to_owned(),
        )),
        DbCommand::Url { .. } => {
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

/// One line of `db upgrade --json`.
#[derive(Serialize)]
struct UpgradeEvent<'a> {
    /// "keys" (certificate identities), "rows" (the copy), "finished" or "current".
    phase: &'a str,
    rows_done: i64,
    rows_total: i64,
    keys_done: i64,
    /// Rows per second of this run's row batches so far.
    rows_per_second: Option<f64>,
    /// Rows left ÷ rows per second.
    seconds_left: Option<f64>,
    elapsed_seconds: f64,
}

/// `certhist db upgrade`: applies pending migrations and finishes an in-place conversion.
async fn upgrade(cli: &Cli, batch_rows: i64, out: &mut impl Write) -> Result<u8, Failure> {
    use certhist_store::convert::{self, ConversionStep};
    if batch_rows < 1 {
        return Err(Failure::Usage("--batch-rows must be at least 1".to_owned()));
    }
    let store = crate::open_store_unchecked(cli).await?;
    let mut conn = match store.conversion_conn().await? {
        Some(conn) => conn,
        None => {
            // Another upgrade, or the server session of one just killed (it holds the lock until
            // it has rolled back its batch).
            eprintln!("waiting for another `certhist db upgrade` of this database to stop …");
            store.conversion_conn_wait().await?
        }
    };
    let Some(mut progress) = convert::conversion_progress(&conn).await? else {
        if cli.json {
            ndjson(
                out,
                &serde_json::json!({"phase": "current", "schema_version": certhist_store::applied_versions().last().map(|v| v.0)}),
            )?;
        } else {
            writeln!(out, "the database is up to date (nothing to convert)")?;
        }
        return Ok(exit::OK);
    };
    if !cli.json {
        writeln!(
            out,
            "converting {} observations to the lean layout (schema V7), {} per batch; interrupt at any time, run again to continue",
            progress.rows_total, batch_rows
        )?;
        out.flush()?;
    }
    // Tests slow the batches down to kill the command between two of them.
    let pause = std::env::var("CERTHIST_UPGRADE_PAUSE_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(std::time::Duration::from_millis);
    let started = std::time::Instant::now();
    let mut row_time = std::time::Duration::ZERO;
    let mut rows_this_run: i64 = 0;
    let mut last_report: Option<std::time::Instant> = None;
    loop {
        let t0 = std::time::Instant::now();
        let step = convert::convert_batch(&mut conn, batch_rows).await?;
        let phase = match step {
            ConversionStep::Nothing => break,
            ConversionStep::Keys(n) => {
                progress.keys_done += n;
                "keys"
            }
            ConversionStep::Rows(n) => {
                row_time += t0.elapsed();
                rows_this_run += n;
                progress.rows_done += n;
                "rows"
            }
            ConversionStep::Finished => "finished",
        };
        let rate = (rows_this_run > 0).then(|| rows_this_run as f64 / row_time.as_secs_f64());
        let left = rate.map(|r| (progress.rows_total - progress.rows_done).max(0) as f64 / r);
        let finished = phase == "finished";
        if cli.json {
            ndjson(
                out,
                &UpgradeEvent {
                    phase,
                    rows_done: progress.rows_done,
                    rows_total: progress.rows_total,
                    keys_done: progress.keys_done,
                    rows_per_second: rate,
                    seconds_left: left,
                    elapsed_seconds: started.elapsed().as_secs_f64(),
                },
            )?;
        } else if finished {
            writeln!(
                out,
                "done: {} rows, {} certificate keys in {:.1} s; indexes built, old table dropped",
                progress.rows_done,
                progress.keys_done,
                started.elapsed().as_secs_f64()
            )?;
        } else if !matches!(last_report, Some(t) if t.elapsed() < std::time::Duration::from_secs(2))
        {
            last_report = Some(std::time::Instant::now());
            match (phase, rate, left) {
                ("keys", _, _) => writeln!(
                    out,
                    "certificate keys: {} (then {} rows)",
                    progress.keys_done, progress.rows_total
                )?,
                (_, Some(rate), Some(left)) => writeln!(
                    out,
                    "rows: {} of {} ({:.1} %), {:.0} rows/s, about {:.0} s left",
                    progress.rows_done,
                    progress.rows_total,
                    100.0 * progress.rows_done as f64 / progress.rows_total.max(1) as f64,
                    rate,
                    left
                )?,
                _ => {}
            }
        }
        out.flush()?;
        if finished {
            break;
        }
        if let Some(pause) = pause {
            tokio::time::sleep(pause).await;
        }
    }
    Ok(exit::OK)
}
