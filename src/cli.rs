//! Command-line configuration: every flag and environment variable, read once into typed structs.

use std::path::PathBuf;

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
    /// Query the history: by IP or CIDR, by certificate, by field.
    #[command(subcommand)]
    Query(QueryCommand),
    /// Fetch certificates from a source: Certificate Transparency logs or crt.sh.
    #[command(subcommand)]
    Ingest(IngestCommand),
    /// TLS-scan hosts (IPs, CIDRs, ranges, names, files of targets) and record what they serve.
    Scan(certhist_scan::cli::ScanArgs),
    /// CryptnetUrlCache / certutil dump / OCSP URLs → CertIDs → certificates → names → IPs.
    Cryptnet(certhist_cryptnet::cli::CryptnetArgs),
    /// Serve the HTTP API (/api/v1, OpenAPI at /api/v1/openapi.json).
    Serve(certhist_api::cli::ServeArgs),
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
    Ct(certhist_ct::cli::CtArgs),
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
    /// Certificates from PEM bundles, DER files or base64 lines (files or directories, recursive).
    Certs(ImportCertsArgs),
    /// Sightings (ip, port, sha1, first_seen, last_seen[, count][, source]) from CSV, TSV or NDJSON.
    Observations(ImportObservationsArgs),
    /// Scan outputs: zgrab2, sonar, nmap, masscan.
    #[command(flatten)]
    Scan(certhist_scan::cli::ImportFormat),
}

/// `certhist import certs`
#[derive(Debug, Args)]
pub struct ImportCertsArgs {
    /// Files or directories.
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
    /// The file (gzip is detected).
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

/// `certhist query …`
#[derive(Debug, Subcommand)]
pub enum QueryCommand {
    /// Certificate history of an address or CIDR block.
    Ip(QueryIpArgs),
    /// A certificate's record, names and every IP:port that served it.
    Cert(QueryCertArgs),
    /// Certificates by field: name, cn, san, email, registered-domain, serial, issuer-cn,
    /// issuer-o, subject-o, subject-ou, spki. VALUE is exact, `*.suffix`, `prefix*` or `*contains*`.
    Search(QuerySearchArgs),
}

/// `certhist query ip`
#[derive(Debug, Args)]
pub struct QueryIpArgs {
    /// An IPv4/IPv6 address or a CIDR block (192.0.2.0/24).
    pub target: String,
    /// Only sightings last seen at or after this time (RFC 3339, date or epoch seconds).
    #[arg(long)]
    pub since: Option<String>,
    /// Only sightings first seen at or before this time.
    #[arg(long)]
    pub until: Option<String>,
    /// At most this many rows.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(i64).range(1..=1_000_000))]
    pub limit: i64,
}

/// `certhist query cert`
#[derive(Debug, Args)]
pub struct QueryCertArgs {
    /// SHA-1 (40 hex digits) or SHA-256 (64), colons allowed.
    pub hash: String,
    /// At most this many hosts.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(i64).range(1..=1_000_000))]
    pub limit: i64,
}

/// `certhist query search`
#[derive(Debug, Args)]
pub struct QuerySearchArgs {
    /// Field to search.
    pub field: String,
    /// Value: exact, `*.example.com`, `prefix*` or `*contains*`. Serials in hex (colons, leading
    /// zeros allowed) or decimal.
    pub value: String,
    /// At most this many certificates.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(i64).range(1..=1_000_000))]
    pub limit: i64,
}

/// `certhist demo`
#[derive(Debug, Args)]
pub struct DemoArgs {}
