//! The managed local PostgreSQL cluster (the embedded default). See `ensure_running`.

use std::path::{Path, PathBuf};

/// Why the managed cluster could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// No PostgreSQL server binaries were found.
    #[error("no PostgreSQL server binaries found (looked in: {searched}); install them, e.g. `apt-get install -y postgresql`, or set DATABASE_URL to use an existing server")]
    NoBinaries {
        /// Where we looked.
        searched: String,
    },
    /// Anything else, with the message saying what failed and how to fix it.
    #[error("managed PostgreSQL cluster: {0}")]
    Other(String),
}

/// A running managed cluster and how to reach it.
#[derive(Clone, Debug)]
pub struct ClusterInfo {
    /// Directory holding the Unix socket.
    pub socket_dir: PathBuf,
    /// Port number (names the socket file `.s.PGSQL.<port>`).
    pub port: u16,
    /// Database superuser to connect as.
    pub user: String,
    /// The cluster's data directory.
    pub data_dir: PathBuf,
}

impl ClusterInfo {
    /// Connection settings for database `dbname` on this cluster.
    pub fn pg_config(&self, dbname: &str) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host_path(&self.socket_dir)
            .port(self.port)
            .user(&self.user)
            .dbname(dbname)
            .application_name("certhist");
        c
    }
}

/// Initialises (once) and starts (when not running) the cluster under `home`; returns how to reach it.
pub fn ensure_running(home: &Path) -> Result<ClusterInfo, ClusterError> {
    Err(ClusterError::Other(format!("not built yet ({})", home.display())))
}
