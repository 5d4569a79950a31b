//! Command-line configuration: every flag and environment variable, read once into typed structs.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Parser, Subcommand};
use secrecy::SecretString;

/// certhist — passive certificate-history intelligence database.
///
/// Which certificates did this IP serve and when; which other IPs served this certificate; what
/// else shares this name, serial, issuer or key. Without DATABASE_URL, certhist runs its own
/// PostgreSQL cluster in $CERTHIST_HOME (default ./certhist-data).
#[derive(Debug, Parser)]
#[command(name = "certhist", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// PostgreSQL server to use instead of the managed local cluster (postgres://…). A secret:
    /// never shown in help, `Debug` output or logs with its password.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<SecretString>,
    /// Home of the managed local cluster (data directory, socket, logs).
    #[arg(
        long,
        env = "CERTHIST_HOME",
        global = true,
        default_value = "certhist-data"
    )]
    pub home: PathBuf,
    /// Directory of the PostgreSQL server binaries (initdb, pg_ctl, postgres) for the managed
    /// cluster, tried before `pg_config --bindir`, /usr/lib/postgresql/*/bin and PATH.
    #[arg(long, env = "CERTHIST_PG_BINDIR", global = true, value_name = "DIR")]
    pub pg_bindir: Option<PathBuf>,
    /// The directories of `PATH` (where `pg_config` and, last, the server binaries are looked
    /// for): filled by `main` from the environment, not a flag.
    #[arg(skip)]
    pub search_path: Vec<PathBuf>,
    /// Machine-readable output: JSON for a record, NDJSON (one object per line) for lists.
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage the local PostgreSQL cluster (start, stop, status, url).
    #[command(subcommand)]
    Db(DbCommand),
    /// Import certificates or observations from files.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Query the history: by IP or CIDR, certificate, field or serial; overlap and graph.
    #[command(subcommand)]
    Query(crate::commands::QueryCommand),
    /// Fetch certificates from a source: Certificate Transparency logs or crt.sh.
    #[command(subcommand)]
    Ingest(IngestCommand),
    /// TLS-scan hosts (IPs, CIDRs, ranges, names, files of targets) and record what they serve.
    Scan(ScanArgs),
    /// CryptnetUrlCache / certutil dump / OCSP URLs → CertIDs → certificates → names → IPs.
    Cryptnet(crate::commands::cryptnet::CryptnetArgs),
    /// Serve the HTTP API (/api/v1, OpenAPI at /api/v1/openapi.json).
    Serve(crate::commands::ServeArgs),
    /// Start the database, load the bundled sample data and show example queries.
    Demo(DemoArgs),
}

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

/// `certhist ingest …`
#[derive(Debug, Subcommand)]
pub enum IngestCommand {
    /// Certificate Transparency logs (RFC 6962 or static-ct-api), verified and resumable.
    Ct(crate::commands::ct::CtArgs),
    /// crt.sh: search by name, serial, hash or id; certificates are downloaded and stored.
    Crtsh(CrtshArgs),
}

/// `certhist ingest crtsh …`
#[derive(Clone, Debug, Args)]
pub struct CrtshArgs {
    /// Identity (domain, name) search.
    #[arg(long)]
    pub query: Option<String>,
    /// Match mode for --query.
    #[arg(long = "match", value_enum)]
    pub match_mode: Option<CrtshMatch>,
    /// Leave out expired certificates.
    #[arg(long)]
    pub exclude_expired: bool,
    /// Serial number (hex).
    #[arg(long)]
    pub serial: Option<String>,
    /// Certificate SHA-1.
    #[arg(long)]
    pub sha1: Option<String>,
    /// Certificate SHA-256.
    #[arg(long)]
    pub sha256: Option<String>,
    /// crt.sh certificate ids to download.
    #[arg(long)]
    pub id: Vec<u64>,
    /// crt.sh base URL.
    #[arg(long, default_value = "https://crt.sh/")]
    pub crtsh_url: String,
    /// Requests in flight.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
}

/// crt.sh identity match mode (`--match`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CrtshMatch {
    /// Exact (`=`).
    #[value(name = "=")]
    Exact,
    /// Case-insensitive LIKE.
    #[value(name = "ILIKE")]
    Ilike,
    /// LIKE.
    #[value(name = "LIKE")]
    Like,
}

impl From<CrtshMatch> for certhist_crtsh::MatchMode {
    fn from(m: CrtshMatch) -> Self {
        match m {
            CrtshMatch::Exact => certhist_crtsh::MatchMode::Exact,
            CrtshMatch::Ilike => certhist_crtsh::MatchMode::Ilike,
            CrtshMatch::Like => certhist_crtsh::MatchMode::Like,
        }
    }
}

/// `certhist import …`
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Certificates found anywhere in files or directories (recursive): PEM (also with escaped
    /// newlines inside JSON strings and log lines), base64 DER lines and JSON fields, DER.
    Certs(ImportCertsArgs),
    /// Sightings (ip, port, sha1, first_seen, last_seen[, count][, source]) from CSV, TSV or NDJSON.
    Observations(ImportObservationsArgs),
    /// ZGrab2 JSON (tls, http over TLS, other modules with a tls block), pretty-printed JSON, 2015 ZGrab logs.
    Zgrab2(Zgrab2Args),
    /// Rapid7 Project Sonar SSL certs (`sha1,base64-DER`) and hosts (`ip,sha1`) files.
    Sonar(SonarArgs),
    /// nmap XML with the ssl-cert script.
    Nmap(ScanFilesArgs),
    /// masscan -oX / -oJ / -oD / -oL output with X509 banners.
    Masscan(ScanFilesArgs),
}

/// `certhist import certs`
#[derive(Debug, Args)]
pub struct ImportCertsArgs {
    /// Files or directories (gzip / bzip2 read transparently).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Certificates per database batch.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_size: u32,
    /// Database connections writing each batch (certificates split by sha1; more than the
    /// server's cores does not help).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub writers: u32,
}

/// `certhist import observations`
#[derive(Debug, Args)]
pub struct ImportObservationsArgs {
    /// The file (gzip / bzip2 read transparently).
    pub file: PathBuf,
    /// Source label for rows that do not name one (default: the file name).
    #[arg(long)]
    pub source: Option<String>,
    /// Rows per database batch (each batch commits with the file's resume cursor).
    #[arg(long, default_value_t = 50_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub batch_size: u32,
    /// Import even if this exact file was imported before (counts are added again).
    #[arg(long)]
    pub force: bool,
}

/// Options shared by the scan-file imports.
#[derive(Debug, Clone, Args)]
pub struct CommonImportArgs {
    /// Source label stored with the sightings (default: the format name).
    #[arg(long)]
    pub label: Option<String>,
    /// Records per batch (one transaction each, with the file's resume cursor).
    #[arg(long, default_value_t = 50_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub batch: u32,
    /// Import even if this exact file was imported before with the same settings (counts are
    /// added again).
    #[arg(long)]
    pub force: bool,
}

/// `certhist import zgrab2 FILE...`
#[derive(Debug, Clone, Args)]
pub struct Zgrab2Args {
    /// Files or directories (gzip / bzip2 read transparently).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Port for records that do not state one and whose file name does not end in `_<port>`.
    #[arg(long)]
    pub port: Option<u16>,
    /// Shared import options.
    #[command(flatten)]
    pub common: CommonImportArgs,
}

/// `certhist import sonar --certs FILE --hosts FILE`
#[derive(Debug, Clone, Args)]
pub struct SonarArgs {
    /// Certificates file (`sha1,base64-DER` lines).
    #[arg(long, required_unless_present = "hosts")]
    pub certs: Option<PathBuf>,
    /// Hosts file (`ip,sha1` lines).
    #[arg(long)]
    pub hosts: Option<PathBuf>,
    /// Scan date YYYYMMDD (or YYYY-MM-DD); default: from the hosts file name.
    #[arg(long, value_parser = parse_date)]
    pub date: Option<DateTime<Utc>>,
    /// Port of the sightings (default: from the file name, else 443).
    #[arg(long)]
    pub port: Option<u16>,
    /// Shared import options.
    #[command(flatten)]
    pub common: CommonImportArgs,
}

/// `certhist import nmap|masscan FILE...`
#[derive(Debug, Clone, Args)]
pub struct ScanFilesArgs {
    /// Files or directories (gzip / bzip2 read transparently).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Shared import options.
    #[command(flatten)]
    pub common: CommonImportArgs,
}

/// `certhist scan TARGET...`
#[derive(Debug, Clone, Args)]
pub struct ScanArgs {
    /// IP addresses, CIDR blocks, ranges (a-b), host names, or files of targets (`@FILE` or a path).
    #[arg(required = true)]
    pub targets: Vec<String>,
    /// Ports to scan on every address.
    #[arg(long, value_delimiter = ',', default_value = "443")]
    pub ports: Vec<u16>,
    /// SNI name to send to every target (default: the host name for host-name targets, none for addresses).
    #[arg(long, conflicts_with = "sni_from_names")]
    pub sni: Option<String>,
    /// After each handshake, handshake again with each DNS name of the certificate received (virtual hosts).
    #[arg(long)]
    pub sni_from_names: bool,
    /// Handshakes in flight at most.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// New connections per second at most.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Per-connection timeout (`5s`, `500ms`, `1m`).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// File of addresses / CIDR blocks never to connect to.
    #[arg(long)]
    pub exclude: Option<PathBuf>,
    /// Source label stored with the sightings (default `scan`).
    #[arg(long)]
    pub label: Option<String>,
}

/// Parses `5s`, `500ms`, `2m`, or a number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, mult) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (5s, 500ms, 1m)"))?;
    if !(v.is_finite() && v > 0.0 && v * mult < 86_400.0) {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(v * mult))
}

/// Parses `YYYYMMDD` or `YYYY-MM-DD` as midnight UTC.
pub fn parse_date(text: &str) -> Result<DateTime<Utc>, String> {
    let t = text.trim();
    let d = NaiveDate::parse_from_str(t, "%Y%m%d")
        .or_else(|_| NaiveDate::parse_from_str(t, "%Y-%m-%d"))
        .map_err(|_| format!("{text:?} is not a date (YYYYMMDD)"))?;
    d.and_hms_opt(0, 0, 0)
        .map(|d| d.and_utc())
        .ok_or_else(|| format!("{text:?} is not a date"))
}

/// `certhist demo`
#[derive(Debug, Args)]
pub struct DemoArgs {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_dates() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("x").is_err());
        assert_eq!(
            parse_date("20170102").unwrap().to_rfc3339(),
            "2017-01-02T00:00:00+00:00"
        );
        assert!(parse_date("20171302").is_err());
    }
}
