//! `certhist serve`: the HTTP API (crate certhist-api).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use certhist_api::auth::{LoginLimit, RateLimit};
use certhist_api::replicas::{self, ReplicaPools, ReplicaSet};
use certhist_api::tls::{self, TlsSetup};
use certhist_api::ServeConfig;
use certhist_store::{read, Store};
use clap::Args;

use super::Failure;
use crate::cli::Cli;
use crate::exit;
use crate::output::clean;

/// Serve the HTTP query API (`/api/v1`, OpenAPI document at `/api/v1/openapi.json`).
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "CERTHIST_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Statement timeout of every query, in milliseconds (a cancelled query answers 503).
    #[arg(long, env = "CERTHIST_STATEMENT_TIMEOUT_MS", default_value_t = 5000)]
    pub statement_timeout_ms: u64,
    /// Whole-request timeout, in seconds.
    #[arg(long, default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// Widest IPv4 CIDR block accepted (prefix length).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u8).range(0..=32))]
    pub widest_prefix_v4: u8,
    /// Widest IPv6 CIDR block accepted (prefix length).
    #[arg(long, default_value_t = 48, value_parser = clap::value_parser!(u8).range(0..=128))]
    pub widest_prefix_v6: u8,
    /// Certificates served by more than this many distinct addresses are `shared` and not
    /// expanded by /expand unless asked.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..))]
    pub shared_threshold: i64,
    /// Largest request body, in bytes.
    #[arg(long, default_value_t = 65536)]
    pub body_limit_bytes: usize,
    /// Page size when `limit` is not given.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..=10000))]
    pub default_page_size: i64,
    /// Largest `limit` accepted.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(i64).range(1..=9999))]
    pub max_page_size: i64,
    /// Pooled database connections [default: two per CPU core, at most 32]. Requests beyond
    /// them wait in the pool, first come first served; more backends than cores only move the
    /// queue into the kernel's scheduler, where it becomes tail latency (docs/BENCHMARKS.md,
    /// "API tail latency").
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_connections: Option<u32>,
    /// Serve without authentication on any address (every request acts as an admin). Without
    /// it, a non-loopback --listen needs at least one account (`certhist user add`).
    #[arg(long)]
    pub no_auth: bool,
    /// Requests per second per source address, as RATE or RATE:BURST (0 = unlimited).
    /// Applies when authentication is on.
    #[arg(long, default_value = "100:200", value_parser = parse_rate, value_name = "RATE[:BURST]")]
    pub rate_limit_per_ip: RateArg,
    /// Requests per second per API key (or per account for password and session requests),
    /// as RATE or RATE:BURST (0 = unlimited).
    #[arg(long, default_value = "50:100", value_parser = parse_rate, value_name = "RATE[:BURST]")]
    pub rate_limit_per_key: RateArg,
    /// Failed logins (wrong key or password) per minute per source address — and per account
    /// name for addresses that failed — after the burst.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub login_failures_per_minute: u32,
    /// Failed logins allowed at once before the limit applies.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub login_failure_burst: u32,
    /// Lifetime of a web session (from POST /login), in hours.
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u64).range(1..=720))]
    pub session_hours: u64,
    /// Serve HTTPS with this PEM certificate chain (leaf first); needs `--tls-key`.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        conflicts_with = "tls_self_signed"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `--tls-cert`.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve HTTPS with a self-signed certificate generated once and kept in
    /// `$CERTHIST_HOME/tls/` (cert.pem, key.pem with mode 0600); its SHA-256 is printed at start.
    #[arg(long)]
    pub tls_self_signed: bool,
    /// Largest upload (`POST /api/v1/uploads/…`), in bytes; `--body-limit-bytes` does not apply
    /// to uploads.
    #[arg(long, default_value_t = 1 << 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub upload_limit_bytes: u64,
    /// Time an upload may take (receiving and importing), in seconds.
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
    pub upload_timeout_secs: u64,
    /// Where uploads are spooled before they are imported (default: the system's temporary
    /// directory).
    #[arg(long, value_name = "DIR")]
    pub upload_dir: Option<PathBuf>,
    /// A read replica (hot standby of the database, e.g. from `certhist db replica start`) to
    /// send reads to; repeatable. Writes (tags, notes, uploads, accounts, sessions, audit) and
    /// authentication go to the primary, and so do reads while no replica is usable.
    #[arg(long = "replica-url", value_name = "URL")]
    pub replica_urls: Vec<String>,
    /// Largest replication lag, in seconds, at which a replica still serves reads.
    #[arg(long, default_value_t = 5.0, value_parser = parse_seconds, value_name = "SECONDS")]
    pub replica_max_lag: f64,
    /// How often the replicas' health and lag are checked, in milliseconds.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(50..=600_000))]
    pub replica_check_ms: u64,
    /// Time every request by stage (pool wait, query, decode, serialise, write) into per-route
    /// histograms: served at /debug/stage-timing to loopback admins, logged at shutdown.
    /// For benchmarks (scripts/bench-api.sh); off, it costs nothing.
    #[arg(long, env = "CERTHIST_STAGE_TIMING")]
    pub stage_timing: bool,
}

/// Seconds, a non-negative number (`0.5`, `10`).
fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(s) if (0.0..=86_400.0).contains(&s) => Ok(s),
        _ => Err(format!(
            "{text:?}: expected a number of seconds between 0 and 86400"
        )),
    }
}

/// A request limit from the command line; `None` = unlimited.
#[derive(Debug, Clone, Copy)]
pub struct RateArg(pub Option<RateLimit>);

/// `RATE` or `RATE:BURST` requests per second; `0` means unlimited.
fn parse_rate(text: &str) -> Result<RateArg, String> {
    let (rate, burst) = text.split_once(':').unwrap_or((text, ""));
    let rate: u32 = rate
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: expected RATE or RATE:BURST (whole numbers)"))?;
    let burst: u32 = if burst.is_empty() {
        rate
    } else {
        burst
            .trim()
            .parse()
            .map_err(|_| format!("{text:?}: expected RATE or RATE:BURST (whole numbers)"))?
    };
    if rate == 0 {
        return Ok(RateArg(None));
    }
    Ok(RateArg(Some(RateLimit {
        per_second: rate,
        burst: burst.max(1),
    })))
}

/// The default pool: two connections per core (at least 2, at most 32). On the 20M dataset at
/// 8 and 32 client connections on 2 cores, 4 pooled connections gave the throughput of 8 or 32
/// and a p99 2–18× lower: with more backends than the cores can run, a backend waits for a CPU
/// for up to ~300 ms when the scheduler favours the other process group (PostgreSQL's session
/// against the server's).
pub fn default_pool_size() -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    u32::try_from(2 * cores).unwrap_or(u32::MAX).clamp(2, 32)
}

impl ServeArgs {
    /// Pooled database connections: `--max-connections`, else [`default_pool_size`].
    pub fn pool_size(&self) -> u32 {
        self.max_connections.unwrap_or_else(default_pool_size)
    }

    /// The typed configuration.
    pub fn config(&self) -> ServeConfig {
        ServeConfig {
            listen: self.listen,
            statement_timeout: Duration::from_millis(self.statement_timeout_ms),
            request_timeout: Duration::from_secs(self.request_timeout_secs.max(1)),
            widest_prefix_v4: self.widest_prefix_v4,
            widest_prefix_v6: self.widest_prefix_v6,
            shared_threshold: self.shared_threshold,
            body_limit_bytes: self.body_limit_bytes,
            default_page_size: self.default_page_size.min(self.max_page_size),
            max_page_size: self.max_page_size,
            no_auth: self.no_auth,
            rate_limit_per_ip: self.rate_limit_per_ip.0,
            rate_limit_per_key: self.rate_limit_per_key.0,
            login_failure_limit: LoginLimit {
                per_minute: self.login_failures_per_minute,
                burst: self.login_failure_burst,
            },
            session_ttl: Duration::from_secs(self.session_hours * 3600),
            upload_limit_bytes: self.upload_limit_bytes,
            upload_timeout: Duration::from_secs(self.upload_timeout_secs),
            upload_dir: self.upload_dir.clone(),
            stage_timing: self.stage_timing,
            ..ServeConfig::default()
        }
    }
}

pub(crate) async fn run(cli: &Cli, args: &ServeArgs) -> Result<u8, Failure> {
    // Certificate problems are reported before the database is opened.
    let tls = tls_setup(cli, args)?;
    let mut db = crate::db_config(cli);
    db.max_connections = args.pool_size() as usize;
    let store = Store::open(&db).await?;
    store.refuse_if_converting().await?;
    let mut config = args.config();
    config.replicas = replicas(args, &store, &config).await?;
    let auth_mode = check_auth(&store, &config).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    // The bound address: `--listen 127.0.0.1:0` picks a free port, and this line says which.
    let local = listener.local_addr()?;
    if config.no_auth {
        tracing::warn!(
            http.listen = %local,
            "authentication is OFF (--no-auth): anyone who reaches {local} can read everything and act as an admin"
        );
    }
    let shutdown = certhist_api::shutdown_signal();
    // The first line names the address (tests and scripts read it) and the authentication mode.
    match tls {
        None => {
            eprintln!("certhist: serving http://{local}/api/v1 (Ctrl-C to stop); {auth_mode}");
            certhist_api::serve_on(listener, store, config, shutdown).await
        }
        Some(tls) => {
            eprintln!("certhist: serving https://{local}/api/v1 (Ctrl-C to stop); {auth_mode}");
            eprintln!(
                "certhist: TLS certificate SHA-256 {} ({}{})",
                tls.fingerprint_sha256,
                clean(&tls.cert_path.display().to_string()),
                if tls.generated { ", generated now" } else { "" }
            );
            certhist_api::serve_tls_on(listener, store, config, tls.config, shutdown).await
        }
    }
    .map_err(|e| Failure::Other(anyhow::Error::new(e)))?;
    Ok(exit::OK)
}

/// The replicas of `--replica-url`, checked once (so reads use them from the first request)
/// and then every `--replica-check-ms` by a background task.
async fn replicas(
    args: &ServeArgs,
    primary: &Store,
    config: &ServeConfig,
) -> Result<Option<ReplicaSet>, Failure> {
    if args.replica_urls.is_empty() {
        return Ok(None);
    }
    let mut list = Vec::new();
    for url in &args.replica_urls {
        let name = certhist_store::redact_url(url);
        let usage = |e: certhist_store::StoreError| Failure::Usage(format!("--replica-url: {e}"));
        let reads = Store::connect_replica(url, args.pool_size() as usize)
            .map_err(usage)?
            .for_requests(config.statement_timeout)?;
        let checks = Store::connect_replica(url, 1).map_err(usage)?;
        list.push(ReplicaPools {
            name,
            reads,
            checks,
        });
    }
    let set = ReplicaSet::new(list, Duration::from_secs_f64(args.replica_max_lag));
    // The checks' own pool on the primary (a busy API pool never delays them).
    let primary = &primary.for_requests(replicas::CHECK_TIMEOUT)?;
    set.check_once(primary).await;
    for st in set.states() {
        match &st.reason {
            None => eprintln!(
                "certhist: read replica {} in use (lag {:.1} s)",
                clean(&st.name),
                st.lag_seconds.unwrap_or_default()
            ),
            Some(why) => eprintln!(
                "certhist: read replica {} not used for now: {}",
                clean(&st.name),
                clean(why)
            ),
        }
    }
    set.spawn_monitor(
        primary.clone(),
        Duration::from_millis(args.replica_check_ms),
    );
    Ok(Some(set))
}

/// Secure by default: refuses a non-loopback listener when no account exists, unless
/// `--no-auth` (which `run` warns about at every start). Returns the mode, for the start line.
async fn check_auth(store: &Store, config: &ServeConfig) -> Result<&'static str, Failure> {
    let accounts = read::accounts::has_accounts(&store.conn().await?).await?;
    if config.no_auth {
        return Ok("authentication OFF (--no-auth)");
    }
    if !accounts && !config.listen.ip().is_loopback() {
        return Err(Failure::Usage(format!(
            "refusing to serve on {} without authentication: no accounts exist yet. Create one first with `certhist user add NAME --role admin` (it prints an API key), or pass --no-auth to serve without authentication (not recommended)",
            config.listen
        )));
    }
    Ok(if accounts {
        "authentication required (API key, Basic, or sign in at /login)"
    } else {
        "no accounts: open to local requests (`certhist user add NAME --role admin` turns authentication on)"
    })
}

/// The TLS configuration asked for by the flags, if any.
fn tls_setup(cli: &Cli, args: &ServeArgs) -> Result<Option<TlsSetup>, Failure> {
    let setup = if args.tls_self_signed {
        tls::self_signed(&cli.home.join("tls"), args.listen.ip())
    } else if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        tls::load_pem_files(cert, key)
    } else {
        return Ok(None);
    };
    setup
        .map(Some)
        .map_err(|e| Failure::Usage(format!("TLS: {e}")))
}
