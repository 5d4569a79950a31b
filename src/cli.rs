//! Command-line configuration: the global flags and the command tree. Each command's own flags
//! are a typed struct in its module under `commands/`, beside the code that runs it.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
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
    /// The login name (`USER`), recorded as `cli:USER` on tags and notes: filled by `main` from
    /// the environment, not a flag.
    #[arg(skip)]
    pub user: Option<String>,
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
    Db(crate::commands::db::DbCommand),
    /// Import certificates or observations from files.
    #[command(subcommand)]
    Import(crate::commands::import::ImportCommand),
    /// Query the history: by IP or CIDR, certificate, field or serial; overlap and graph.
    #[command(subcommand)]
    Query(crate::commands::query::QueryCommand),
    /// Export a lookup (IP/CIDR history, reverse search, field search, expansion graph, tag) as
    /// NDJSON, CSV, a STIX 2.1 bundle or a MISP event, streamed without a row cap.
    Export(crate::commands::export::ExportArgs),
    /// Fetch certificates from a source: Certificate Transparency logs or crt.sh.
    #[command(subcommand)]
    Ingest(IngestCommand),
    /// TLS-scan hosts (IPs, CIDRs, ranges, names, files of targets) and record what they serve.
    Scan(crate::commands::scan::ScanArgs),
    /// CryptnetUrlCache / certutil dump / OCSP URLs → CertIDs → certificates → names → IPs.
    Cryptnet(crate::commands::cryptnet::CryptnetArgs),
    /// Serve the HTTP API (/api/v1, OpenAPI at /api/v1/openapi.json).
    Serve(crate::commands::serve::ServeArgs),
    /// Accounts of the team server: add, list, disable, enable, passwd, key new|revoke.
    #[command(subcommand)]
    User(crate::commands::user::UserCommand),
    /// Show the audit log (logins, failed logins, account changes, writes), newest first.
    Audit(crate::commands::audit::AuditArgs),
    /// Start the database, load the bundled sample data and show example queries.
    Demo(crate::commands::demo::DemoArgs),
    /// Tags shared between analysts, on addresses, CIDR blocks, certificates and names.
    #[command(subcommand)]
    Tag(crate::commands::tag::TagCommand),
    /// Notes shared between analysts, on addresses, CIDR blocks, certificates and names.
    #[command(subcommand)]
    Note(crate::commands::tag::NoteCommand),
}

/// `certhist ingest …`
#[derive(Debug, Subcommand)]
pub enum IngestCommand {
    /// Certificate Transparency logs (RFC 6962 or static-ct-api), verified and resumable.
    Ct(crate::commands::ct::CtArgs),
    /// crt.sh: search by name, serial, hash or id; certificates are downloaded and stored.
    Crtsh(crate::commands::crtsh::CrtshArgs),
}
