//! Command implementations. Each returns an exit code or a [`Failure`].

pub(crate) mod audit;
pub(crate) mod crtsh;
pub(crate) mod cryptnet;
pub(crate) mod ct;
pub(crate) mod db;
pub(crate) mod demo;
pub(crate) mod export;
pub(crate) mod import;
pub(crate) mod query;
pub(crate) mod replica;
pub(crate) mod scan;
pub(crate) mod serve;
pub(crate) mod tag;
pub(crate) mod user;

use std::fmt;

use certhist_store::StoreError;

use crate::cli::{Cli, Command, IngestCommand};
use crate::exit;

/// Why a command failed, and so which exit code it ends with.
#[derive(Debug)]
pub enum Failure {
    /// Bad input or usage (exit 2); the message says what to fix.
    Usage(String),
    /// Nothing found (exit 3).
    NotFound(String),
    /// Anything else (exit 1), with its context chain.
    Other(anyhow::Error),
}

impl Failure {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => exit::USAGE,
            Failure::NotFound(_) => exit::NOT_FOUND,
            Failure::Other(_) => exit::FAILURE,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(m) | Failure::NotFound(m) => f.write_str(m),
            Failure::Other(e) => {
                // The context chain, "outer: inner: …", without a cause the text already says
                // (errors that print their source in their own message would repeat it).
                // A server log quote (outermost context, see `with_server_log`) goes last.
                let server_log = e.downcast_ref::<ServerLog>();
                let mut text = String::new();
                for cause in e.chain().skip(usize::from(server_log.is_some())) {
                    let s = cause.to_string();
                    if !text.contains(&s) {
                        if !text.is_empty() {
                            text.push_str(": ");
                        }
                        text.push_str(&s);
                    }
                }
                f.write_str(&text)?;
                // The database went away (killed, restarted, unreachable): say what to do.
                let unavailable = any_store_error(e, StoreError::is_unavailable);
                if let Some(log) = server_log {
                    write!(f, "\n{log}")?;
                }
                let disk_full = any_store_error(e, StoreError::is_disk_full)
                    || server_log.is_some_and(ServerLog::disk_full);
                if disk_full {
                    f.write_str("\nthe database server's disk is full; free space (or move the data directory to a larger disk), then run the same command again (imports resume where they stopped, without duplicates)")?;
                } else if unavailable {
                    f.write_str("\nthe database connection was lost or refused; once the database is back, run the same command again (imports resume where they stopped, without duplicates)")?;
                }
                Ok(())
            }
        }
    }
}

/// True when a store error in the cause chain of `e` passes `test`.
fn any_store_error(e: &anyhow::Error, test: fn(&StoreError) -> bool) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<StoreError>())
        .any(test)
}

/// What the managed cluster's server log said when the connection to it went away: the server
/// stopped itself (a PANIC, e.g. when its WAL cannot be written for lack of space), and the
/// client saw only a closed connection. Added by [`Failure::with_server_log`].
#[derive(Debug)]
pub struct ServerLog {
    file: std::path::PathBuf,
    line: String,
}

impl ServerLog {
    fn disk_full(&self) -> bool {
        self.line.contains("No space left on device")
    }
}

impl fmt::Display for ServerLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the database server stopped; its log ({}) says: {}",
            self.file.display(),
            self.line
        )
    }
}

impl std::error::Error for ServerLog {}

impl Failure {
    /// True when the database went away or could not be reached (see
    /// [`StoreError::is_unavailable`]).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Failure::Other(e) if any_store_error(e, StoreError::is_unavailable))
    }

    /// This failure with the managed cluster's own account of it (`certhist_store::cluster::
    /// server_log_failure`), printed after the error and choosing the hint.
    pub fn with_server_log(self, file: std::path::PathBuf, line: String) -> Self {
        match self {
            Failure::Other(e) => Failure::Other(e.context(ServerLog { file, line })),
            other => other,
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::InvalidInput(m) => Failure::Usage(m),
            StoreError::NotFound(m) => Failure::NotFound(m),
            other => Failure::Other(anyhow::Error::new(other)),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Other(e)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Other(anyhow::Error::new(e))
    }
}

pub(crate) async fn dispatch(cli: Cli) -> Result<u8, Failure> {
    match &cli.command {
        Command::Db(c) => db::run(&cli, c).await,
        Command::Import(c) => import::run(&cli, c).await,
        Command::Query(c) => query::run(&cli, c).await,
        Command::Demo(a) => demo::run(&cli, a).await,
        Command::Export(a) => export::run(&cli, a).await,
        Command::Ingest(IngestCommand::Ct(a)) => ct::run(&cli, a).await,
        Command::Ingest(IngestCommand::Crtsh(a)) => crtsh::run(&cli, a).await,
        Command::Cryptnet(a) => cryptnet::run(&cli, a).await,
        Command::Scan(a) => scan::scan(&cli, a).await,
        Command::Serve(a) => serve::run(&cli, a).await,
        Command::User(c) => user::run(&cli, c).await,
        Command::Audit(a) => audit::run(&cli, a).await,
        Command::Tag(c) => tag::run_tag(&cli, c).await,
        Command::Note(c) => tag::run_note(&cli, c).await,
    }
}
