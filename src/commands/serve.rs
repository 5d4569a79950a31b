//! `certhist serve`: the HTTP API (crate certhist-api).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use certhist_api::tls::{self, TlsSetup};
use certhist_api::ServeConfig;
use certhist_store::Store;
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
    /// Pooled database connections.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_connections: u32,
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
}

impl ServeArgs {
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
            upload_limit_bytes: self.upload_limit_bytes,
            upload_timeout: Duration::from_secs(self.upload_timeout_secs),
            upload_dir: self.upload_dir.clone(),
            ..ServeConfig::default()
        }
    }
}

pub(crate) async fn run(cli: &Cli, args: &ServeArgs) -> Result<u8, Failure> {
    // Certificate problems are reported before the database is opened.
    let tls = tls_setup(cli, args)?;
    let mut db = crate::db_config(cli);
    db.max_connections = args.max_connections as usize;
    let store = Store::open(&db).await?;
    let config = args.config();
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    // The bound address: `--listen 127.0.0.1:0` picks a free port, and this line says which.
    let local = listener.local_addr()?;
    let shutdown = certhist_api::shutdown_signal();
    match tls {
        None => {
            eprintln!("certhist: serving http://{local}/api/v1 (Ctrl-C to stop)");
            certhist_api::serve_on(listener, store, config, shutdown).await
        }
        Some(tls) => {
            eprintln!("certhist: serving https://{local}/api/v1 (Ctrl-C to stop)");
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
