//! Errors of the store.

use crate::cluster::ClusterError;

/// What went wrong talking to the database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The connection string does not parse.
    #[error("invalid database URL {url}: {reason}")]
    BadUrl {
        /// The connection string with its password masked.
        url: String,
        /// Why it does not parse (with any password masked).
        reason: String,
    },
    /// The connection pool could not be built.
    #[error("cannot set up the connection pool: {0}")]
    PoolSetup(String),
    /// The managed local cluster could not be set up or started.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// No connection could be taken from the pool (server down, authentication, timeout).
    #[error("cannot connect to the database: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// A statement failed.
    #[error("database error: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// A migration failed to apply; the database is left at the previous version.
    #[error("migration V{version}__{name} failed: {source}")]
    Migration {
        /// Version number of the failing migration.
        version: u32,
        /// Its name.
        name: String,
        /// The database error.
        source: tokio_postgres::Error,
    },
    /// An applied migration's embedded SQL no longer matches the checksum recorded when it was
    /// applied: the migration file was edited after it shipped.
    #[error(
        "migration V{version}__{name} was changed after it was applied to this database (recorded SHA-256 {recorded_sha256}, this certhist's {embedded_sha256}); an applied migration must never be edited: restore schema/V{version}__{name}.sql as it was and put the change in a new migration (see schema/README.md)"
    )]
    MigrationChanged {
        /// Version number of the changed migration.
        version: u32,
        /// Its name.
        name: String,
        /// Hex SHA-256 recorded when it was applied.
        recorded_sha256: String,
        /// Hex SHA-256 of the SQL embedded in this binary.
        embedded_sha256: String,
    },
    /// The database has migrations this binary does not know (a newer certhist wrote it).
    #[error(
        "database schema version {0} is newer than this certhist knows ({1}); upgrade certhist"
    )]
    SchemaTooNew(u32, u32),
    /// The database's observations are being converted to the lean layout of schema V7; the
    /// conversion must finish (`certhist db upgrade`) before observations are read or written.
    #[error(
        "this database's observations are being converted to the lean layout of schema V7 ({rows_done} of {rows_total} rows copied); run `certhist db upgrade` to finish the conversion (it continues where it stopped), then run this command again"
    )]
    ConversionPending {
        /// Rows copied so far.
        rows_done: i64,
        /// Rows to copy.
        rows_total: i64,
    },
    /// A query parameter is invalid (the message says which and why).
    #[error("{0}")]
    InvalidInput(String),
    /// The thing asked for does not exist (the message says what).
    #[error("{0}")]
    NotFound(String),
    /// A stored value is not what the schema promises (a hash of the wrong length, an unknown
    /// kind): the database is damaged or was written by something else. Not the caller's fault.
    #[error("corrupt data in the database: {0}")]
    Corrupt(String),
    /// The operating system's random number generator or the password hasher failed.
    #[error("cryptography failed: {0}")]
    Crypto(String),
}

impl StoreError {
    /// The SQLSTATE of a database error, if it is one.
    pub fn code(&self) -> Option<&tokio_postgres::error::SqlState> {
        match self {
            StoreError::Postgres(e) | StoreError::Migration { source: e, .. } => e.code(),
            _ => None,
        }
    }

    /// True when the statement was cancelled by `statement_timeout` (SQLSTATE 57014).
    pub fn is_timeout(&self) -> bool {
        self.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED)
    }

    /// True when the database server could not write for lack of space (SQLSTATE 53100,
    /// "could not extend file …: No space left on device").
    pub fn is_disk_full(&self) -> bool {
        self.code() == Some(&tokio_postgres::error::SqlState::DISK_FULL)
    }

    /// True when the database went away or cannot serve now, so the same request may succeed
    /// later: no connection could be made, the connection was closed under the statement
    /// (server killed or restarted), or the server is shutting down, starting up or in crash
    /// recovery (SQLSTATE class 08 and 57P01–57P03).
    pub fn is_unavailable(&self) -> bool {
        use tokio_postgres::error::SqlState;
        match self {
            StoreError::Pool(_) => true,
            StoreError::Postgres(e) => {
                if e.is_closed() {
                    return true;
                }
                match e.code() {
                    Some(code) => {
                        code.code().starts_with("08")
                            || code == &SqlState::ADMIN_SHUTDOWN
                            || code == &SqlState::CRASH_SHUTDOWN
                            || code == &SqlState::CANNOT_CONNECT_NOW
                    }
                    // No SQLSTATE: an I/O error on the socket (connection reset, EOF).
                    None => std::error::Error::source(e)
                        .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some()),
                }
            }
            _ => false,
        }
    }
}
