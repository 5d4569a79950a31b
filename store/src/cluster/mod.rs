//! The managed local PostgreSQL cluster (the embedded default).
//!
//! [`ensure_running`] initialises a cluster under a home directory (once), starts it when it is
//! not running and returns how to reach it. The server listens only on a Unix socket (no TCP
//! unless asked for with [`StartOptions::tcp`]), so it never clashes with a system server on
//! `127.0.0.1:5432`.
//!
//! Layout under `home`:
//! - `pgdata/` — the data directory (`initdb -U certhist -E UTF8`); its `pg_hba.conf` is
//!   rewritten before every start (see `auth`: `trust` on the Unix socket only, SCRAM-SHA-256 on
//!   every TCP line);
//! - `pgpass` — the password of role certhist for TCP clients (libpq password file, mode 0600);
//! - `postgres.log` — the server log;
//! - `cluster.lock` — an exclusive `flock` held around initialisation, start and stop, so that two
//!   certhist processes starting at once neither both run `initdb` nor both start a server;
//! - `run/` — the socket directory, or `/tmp/certhist-<hash of home>` when
//!   `<home>/run/.s.PGSQL.<port>` would exceed the 107-byte limit of a Unix socket path.
//!
//! When run as root (initdb and postgres refuse root), the server binaries run as the owner of an
//! existing data directory, else as `postgres`, else as `nobody`; the client keeps connecting as
//! database user `certhist` over the socket.
//!
//! This module reads no environment variable: where to look for the server binaries comes in a
//! [`ClusterConfig`] (the binary fills it from `--pg-bindir`/`CERTHIST_PG_BINDIR` and `PATH`), and
//! the server binaries run with an empty environment plus an explicit allow-list (see
//! `account::server_command`), so `PG*` variables of the caller never redirect them.
//!
//! Modules by subject: `layout` (paths under the home, the home lock), `binaries` (finding the
//! server binaries), `account` (the unprivileged account as root, running the binaries), `auth`
//! (pg_hba.conf, the TCP password),
//! `init` (initdb), `settings` (certhist.conf, socket directory, port), `process` (start,
//! pid files, liveness, orphans).

mod account;
mod auth;
mod binaries;
mod init;
mod layout;
mod process;
mod replica;
mod settings;

use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use secrecy::{ExposeSecret, SecretString};

use account::{check_traversable, output_text, run, server_account, server_command};
pub use auth::{parse_hba, HbaRule};
use binaries::find_binaries;
use init::initdb;
pub(crate) use layout::fnv1a64;
use layout::{absolute_home, lock_home, Layout};
use process::{is_live_postmaster, read_pid_file, remove_stale_pid_file, running_info, start};
pub use replica::{create_replica, is_replica, start_replica, ReplicaCreated, REPLICA_SETTINGS};

/// Database superuser created by `initdb` and used by certhist to connect.
pub const DB_USER: &str = "certhist";
/// Port naming the socket file (`.s.PGSQL.5432`); only bumped when our own socket directory
/// already holds another live cluster's socket of that number.
pub const DEFAULT_PORT: u16 = 5432;
/// How long `pg_ctl` may take to start or stop the server.
const PG_CTL_TIMEOUT_SECS: u64 = 120;
/// How long we wait for another process holding `cluster.lock`.
const LOCK_TIMEOUT: Duration = Duration::from_secs(300);

/// Why the managed cluster could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// No PostgreSQL server binaries were found.
    #[error("no PostgreSQL server binaries (initdb, pg_ctl, postgres) found (looked in: {searched}); install them, e.g. `apt-get install -y postgresql`, point CERTHIST_PG_BINDIR (--pg-bindir) at the directory holding them, or set DATABASE_URL to use an existing server")]
    NoBinaries {
        /// Where we looked.
        searched: String,
    },
    /// The data directory was created by another PostgreSQL major version than the binaries found.
    #[error("the cluster in {data_dir} was created by PostgreSQL {cluster_major} but only PostgreSQL {found} server binaries were found; install PostgreSQL {cluster_major} (e.g. `apt-get install -y postgresql-{cluster_major}`) or point CERTHIST_HOME at a new directory")]
    VersionMismatch {
        /// The data directory.
        data_dir: PathBuf,
        /// Major version recorded in `PG_VERSION`.
        cluster_major: String,
        /// Versions of the binaries we found.
        found: String,
    },
    /// Running as root, the unprivileged server account cannot reach the home directory.
    #[error("{dir} is not accessible to the `{account}` account that runs the PostgreSQL server (initdb/postgres refuse to run as root): {fix}")]
    NotTraversable {
        /// The directory the account cannot search.
        dir: PathBuf,
        /// The account.
        account: String,
        /// What to do about it.
        fix: String,
    },
    /// Another process held `cluster.lock` for too long.
    #[error("timed out after {waited_secs} s waiting for {lock_file} (held by another certhist process starting or stopping the cluster)")]
    LockTimeout {
        /// The lock file.
        lock_file: PathBuf,
        /// Seconds waited.
        waited_secs: u64,
    },
    /// The server did not start or did not become ready; the message ends with the log tail.
    #[error("PostgreSQL server in {data_dir} did not start: {reason}\n--- last lines of {log_file} ---\n{log_tail}")]
    StartFailed {
        /// The data directory.
        data_dir: PathBuf,
        /// What failed.
        reason: String,
        /// The server log.
        log_file: PathBuf,
        /// Its last lines.
        log_tail: String,
    },
    /// A file system operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// The operation.
        what: &'static str,
        /// The path it was applied to.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Asked to listen on an address other hosts can reach without saying which hosts may
    /// connect.
    #[error("listening on {address} lets other hosts reach the database; name the networks allowed to connect with --allow-remote CIDR (e.g. --allow-remote 192.0.2.0/24; they log in with the password of role certhist, SCRAM-SHA-256), or listen on a loopback address such as 127.0.0.1:{port}", port = address.port())]
    RemoteNotAllowed {
        /// The non-loopback address asked for.
        address: SocketAddr,
    },
    /// Anything else, with the message saying what failed and how to fix it.
    #[error("managed PostgreSQL cluster: {0}")]
    Other(String),
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ClusterError {
    let path = path.to_owned();
    move |source| ClusterError::Io { what, path, source }
}

/// A running managed cluster and how to reach it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ClusterInfo {
    /// Directory holding the Unix socket.
    pub socket_dir: PathBuf,
    /// Port number (names the socket file `.s.PGSQL.<port>`; also the TCP port when listening).
    pub port: u16,
    /// Database superuser to connect as.
    pub user: String,
    /// The cluster's data directory.
    pub data_dir: PathBuf,
    /// The server log.
    pub log_file: PathBuf,
    /// Process id of the postmaster.
    pub pid: u32,
    /// TCP address the server also listens on, when started with [`StartOptions::tcp`].
    pub tcp: Option<SocketAddr>,
    /// The libpq password file holding the password of [`DB_USER`] for TCP connections.
    pub passfile: PathBuf,
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

    /// A libpq connection URL for `dbname`, e.g.
    /// `postgresql://certhist@/certhist?host=/path/to/run&port=5432` (RFC 3986 percent-encoding
    /// of the user, database and socket directory), usable by `psql` and by
    /// `tokio_postgres::Config::from_str`.
    pub fn url(&self, dbname: &str) -> String {
        format!(
            "postgresql://{}@/{}?host={}&port={}",
            percent_encode(self.user.as_bytes(), false),
            percent_encode(dbname.as_bytes(), false),
            percent_encode(self.socket_dir.as_os_str().as_encoded_bytes(), true),
            self.port
        )
    }

    /// Path of the socket file.
    pub fn socket_path(&self) -> PathBuf {
        self.socket_dir.join(format!(".s.PGSQL.{}", self.port))
    }

    /// The address TCP clients on this host connect to: the listen address, or loopback when
    /// listening on all addresses (`0.0.0.0`, `::`).
    pub fn tcp_connect_addr(&self) -> Option<SocketAddr> {
        let mut addr = self.tcp?;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr.ip() {
                std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        Some(addr)
    }

    fn tcp_authority(&self, userinfo: &str) -> Option<String> {
        let addr = self.tcp_connect_addr()?;
        let host = match addr.ip() {
            std::net::IpAddr::V4(ip) => ip.to_string(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        };
        Some(format!("{userinfo}@{host}:{}", addr.port()))
    }

    /// A libpq URL for `dbname` over TCP that reads the password from [`ClusterInfo::passfile`],
    /// e.g. `postgresql://certhist@127.0.0.1:5433/certhist?passfile=/home/u/.certhist/pgpass`
    /// (for psql and other libpq clients). `None` when the server does not listen on TCP.
    pub fn tcp_url(&self, dbname: &str) -> Option<String> {
        let authority = self.tcp_authority(&percent_encode(self.user.as_bytes(), false))?;
        Some(format!(
            "postgresql://{authority}/{}?passfile={}",
            percent_encode(dbname.as_bytes(), false),
            percent_encode(self.passfile.as_os_str().as_encoded_bytes(), true)
        ))
    }

    /// A URL for `dbname` over TCP with `password` inline, for clients that read no password
    /// file (`tokio-postgres`, JDBC). `None` when the server does not listen on TCP.
    pub fn tcp_url_with_password(
        &self,
        dbname: &str,
        password: &SecretString,
    ) -> Option<SecretString> {
        let authority = self.tcp_authority(&format!(
            "{}:{}",
            percent_encode(self.user.as_bytes(), false),
            percent_encode(password.expose_secret().as_bytes(), false)
        ))?;
        Some(SecretString::from(format!(
            "postgresql://{authority}/{}",
            percent_encode(dbname.as_bytes(), false)
        )))
    }
}

/// The password of [`DB_USER`] for TCP connections to the cluster under `home`, from its password
/// file (created when the cluster starts). `Debug` of the result is redacted.
pub fn tcp_password(home: &Path) -> Result<SecretString, ClusterError> {
    let home = absolute_home(home)?;
    let layout = Layout::new(&home);
    auth::read_passfile(&layout.passfile)?.ok_or_else(|| {
        ClusterError::Other(format!(
            "no usable password file {} (it is created when the cluster starts)",
            layout.passfile.display()
        ))
    })
}

/// A way into a running server.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Listener {
    /// `unix` or `tcp`.
    pub kind: ListenerKind,
    /// The socket file, or the TCP address and port.
    pub address: String,
    /// The `pg_hba.conf` rules for this kind of connection, in order (the first match decides).
    pub authentication: Vec<HbaRule>,
}

/// Kind of a [`Listener`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenerKind {
    /// The Unix socket.
    Unix,
    /// A TCP address.
    Tcp,
}

/// Everything but RFC 3986 §2.3 unreserved characters (ALPHA, DIGIT, `-`, `.`, `_`, `~`).
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// [`NOT_UNRESERVED`] but `/`, for a socket directory path.
const NOT_UNRESERVED_OR_SLASH: &AsciiSet = &NOT_UNRESERVED.remove(b'/');

/// Percent-encodes everything but RFC 3986 unreserved characters (and `/` when `keep_slash`);
/// bytes outside ASCII are always encoded.
fn percent_encode(bytes: &[u8], keep_slash: bool) -> String {
    let set = if keep_slash {
        NOT_UNRESERVED_OR_SLASH
    } else {
        NOT_UNRESERVED
    };
    percent_encoding::percent_encode(bytes, set).to_string()
}

/// What [`status`] found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ClusterStatus {
    /// `initdb` has completed in `data_dir`.
    pub initialised: bool,
    /// A live postmaster owns `data_dir` and reports itself ready.
    pub running: bool,
    /// Its process id.
    pub pid: Option<u32>,
    /// The data directory.
    pub data_dir: PathBuf,
    /// The socket directory (the live server's, else the one a start would use).
    pub socket_dir: PathBuf,
    /// The port (the live server's, else the default).
    pub port: u16,
    /// The server log.
    pub log_file: PathBuf,
    /// `postgres --version` of the binaries that serve (or would serve) this cluster.
    pub server_version: Option<String>,
    /// Major version recorded in the data directory (`PG_VERSION`).
    pub data_version: Option<String>,
    /// Directory of the server binaries, when found.
    pub bindir: Option<PathBuf>,
    /// How to connect, when running.
    pub info: Option<ClusterInfo>,
    /// Where the running server accepts connections and how each authenticates (empty when
    /// not running).
    pub listeners: Vec<Listener>,
}

/// Options for [`ensure_running_with`].
#[derive(Clone, Debug, Default)]
pub struct StartOptions {
    /// Also listen on this TCP address (its port then names the socket too). `None` = Unix
    /// socket only. TCP clients log in with the password of [`DB_USER`] (SCRAM-SHA-256). A
    /// non-loopback address needs [`StartOptions::allow_remote`].
    pub tcp: Option<SocketAddr>,
    /// Networks other than this host allowed to connect over TCP (with the password).
    pub allow_remote: Vec<IpNet>,
    /// Extra server settings (`name`, `value`) written after the defaults, e.g. `fsync = off`
    /// for throw-away test clusters. Applied when the server starts.
    pub settings: Vec<(String, String)>,
    /// Where to find the server binaries.
    pub cluster: ClusterConfig,
}

/// Where the PostgreSQL server binaries are looked for. The library reads no environment: the
/// binary fills this from its flags and environment (`--pg-bindir` / `CERTHIST_PG_BINDIR`, and
/// the directories of `PATH`). The default looks only in the fixed places (see
/// [`ClusterConfig::candidate_bindirs`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterConfig {
    /// A directory holding `initdb`, `pg_ctl` and `postgres`, tried before any other.
    pub pg_bindir: Option<PathBuf>,
    /// The caller's command search path (the directories of `PATH`, in order): the first
    /// `pg_config` found there names a directory tried second, and the directories themselves
    /// are tried last. Never passed on to the server processes.
    pub search_path: Vec<PathBuf>,
}

/// Initialises (once) and starts (when not running) the cluster under `home`; returns how to reach
/// it. Binaries are looked for as [`ClusterConfig::default`] does.
pub fn ensure_running(home: &Path) -> Result<ClusterInfo, ClusterError> {
    ensure_running_with(home, &StartOptions::default())
}

/// [`ensure_running`] with options (TCP listening, extra settings, where the binaries are). A
/// server that is already running is reused as it is.
pub fn ensure_running_with(
    home: &Path,
    options: &StartOptions,
) -> Result<ClusterInfo, ClusterError> {
    if !home.exists() {
        fs::create_dir_all(home).map_err(io_err("cannot create", home))?;
        // Whatever the umask, the server account (root: an unprivileged one) must enter it.
        fs::set_permissions(home, fs::Permissions::from_mode(0o755))
            .map_err(io_err("cannot chmod", home))?;
    }
    if let Some(address) = options.tcp {
        if !address.ip().is_loopback() && options.allow_remote.is_empty() {
            return Err(ClusterError::RemoteNotAllowed { address });
        }
    }
    let home = absolute_home(home)?;
    let layout = Layout::new(&home);
    let _lock = lock_home(&layout)?;

    if let Some(info) = running_info(&layout) {
        tracing::debug!(cluster.data_dir = %layout.data_dir.display(), cluster.pid = info.pid, "reusing running cluster");
        // Started by an older certhist (trust over TCP) or missing its password file.
        let account = server_account(&layout)?;
        auth::upgrade_running(&layout, &info, account.as_ref(), &options.allow_remote)?;
        return Ok(info);
    }

    let wanted_major = layout.data_version();
    let bins = find_binaries(&options.cluster, wanted_major.as_deref(), &layout.data_dir)?;
    let account = server_account(&layout)?;
    if let Some(acct) = &account {
        check_traversable(&layout.home, acct)?;
        check_traversable(&layout.socket_dir, acct)?;
    }

    if !layout.initialised() {
        initdb(&layout, &bins, account.as_ref())?;
    }
    start(&layout, &bins, account.as_ref(), options)
}

/// Stops the cluster under `home` (fast shutdown: open sessions are disconnected). Returns
/// whether it was running. Binaries are looked for as [`ClusterConfig::default`] does.
pub fn stop(home: &Path) -> Result<bool, ClusterError> {
    stop_with(home, &ClusterConfig::default())
}

/// [`stop`], looking for the server binaries as `config` says.
pub fn stop_with(home: &Path, config: &ClusterConfig) -> Result<bool, ClusterError> {
    stop_within(home, config, Duration::from_secs(PG_CTL_TIMEOUT_SECS))
}

/// [`stop_with`], giving the fast shutdown `fast_timeout` (whole seconds, at least one) to
/// finish before it is made immediate.
pub fn stop_within(
    home: &Path,
    config: &ClusterConfig,
    fast_timeout: Duration,
) -> Result<bool, ClusterError> {
    if !home.exists() {
        return Ok(false);
    }
    let home = absolute_home(home)?;
    let layout = Layout::new(&home);
    let _lock = lock_home(&layout)?;
    let Some(pid_file) = read_pid_file(&layout.data_dir) else {
        return Ok(false);
    };
    if !is_live_postmaster(pid_file.pid, &layout.data_dir) {
        remove_stale_pid_file(&layout, &pid_file)?;
        return Ok(false);
    }
    let bins = find_binaries(config, layout.data_version().as_deref(), &layout.data_dir)?;
    let account = server_account(&layout)?;
    let pg_ctl_stop = |mode: &str, timeout_secs: u64| {
        let mut cmd = server_command(&bins.pg_ctl(), account.as_ref(), &layout.home);
        cmd.arg("stop")
            .arg("-D")
            .arg(&layout.data_dir)
            .args(["-m", mode, "-w", "-s", "-t"])
            .arg(timeout_secs.max(1).to_string());
        run(&mut cmd, "pg_ctl stop")
    };
    let out = pg_ctl_stop("fast", fast_timeout.as_secs())?;
    if !out.status.success() && is_live_postmaster(pid_file.pid, &layout.data_dir) {
        // A fast shutdown can fail to finish: seen with a server in crash recovery after a
        // checkpointer PANIC (full disk). An immediate shutdown ends the processes without a
        // checkpoint; the next start replays the WAL, as after a crash, so nothing committed is
        // lost.
        tracing::warn!(
            cluster.data_dir = %layout.data_dir.display(),
            cluster.pid = pid_file.pid,
            "fast shutdown did not finish ({}); stopping immediately",
            output_text(&out)
        );
        // The postmaster kills children that ignore the immediate shutdown after 5 s.
        let out = pg_ctl_stop("immediate", PG_CTL_TIMEOUT_SECS)?;
        if !out.status.success() && is_live_postmaster(pid_file.pid, &layout.data_dir) {
            return Err(ClusterError::Other(format!(
                "pg_ctl stop failed for {}, fast and immediate: {}",
                layout.data_dir.display(),
                output_text(&out)
            )));
        }
    }
    tracing::info!(cluster.data_dir = %layout.data_dir.display(), cluster.pid = pid_file.pid, "stopped cluster");
    Ok(true)
}

/// Reports on the cluster under `home` without changing anything. Binaries are looked for as
/// [`ClusterConfig::default`] does.
pub fn status(home: &Path) -> Result<ClusterStatus, ClusterError> {
    status_with(home, &ClusterConfig::default())
}

/// [`status`], looking for the server binaries as `config` says.
pub fn status_with(home: &Path, config: &ClusterConfig) -> Result<ClusterStatus, ClusterError> {
    let home = absolute_home(home)?;
    let layout = Layout::new(&home);
    let data_version = layout.data_version();
    let bins = find_binaries(config, data_version.as_deref(), &layout.data_dir).ok();
    let info = running_info(&layout);
    let (socket_dir, port) = match &info {
        Some(i) => (i.socket_dir.clone(), i.port),
        None => (layout.socket_dir.clone(), DEFAULT_PORT),
    };
    let mut listeners = Vec::new();
    if let Some(i) = &info {
        let rules = auth::read_hba(&layout);
        let (tcp, local): (Vec<HbaRule>, Vec<HbaRule>) =
            rules.into_iter().partition(|r| r.is_tcp());
        listeners.push(Listener {
            kind: ListenerKind::Unix,
            address: i.socket_path().display().to_string(),
            authentication: local,
        });
        if let Some(addr) = i.tcp {
            listeners.push(Listener {
                kind: ListenerKind::Tcp,
                address: addr.to_string(),
                authentication: tcp,
            });
        }
    }
    Ok(ClusterStatus {
        initialised: layout.initialised(),
        running: info.is_some(),
        pid: info.as_ref().map(|i| i.pid),
        data_dir: layout.data_dir.clone(),
        socket_dir,
        port,
        log_file: layout.log_file.clone(),
        server_version: bins.as_ref().map(|b| b.version.clone()),
        data_version,
        bindir: bins.map(|b| b.bindir),
        info,
        listeners,
    })
}

/// Bytes read from the end of the server log by [`server_log_failure`].
const LOG_FAILURE_WINDOW: u64 = 256 * 1024;

/// Why the managed cluster under `home` went away, in its own words: the first line of its
/// server log written at or after `since` that reports a crash (`PANIC:`) or a full disk (`No
/// space left on device`), without the time and process prefix, with the log's path. A client
/// whose connection was closed sees only that; when the WAL cannot be written, PostgreSQL stops
/// itself and the cause is only in this log (issue 16).
pub fn server_log_failure(
    home: &Path,
    since: chrono::DateTime<chrono::Utc>,
) -> Option<(PathBuf, String)> {
    use std::io::{Read, Seek, SeekFrom};
    let layout = Layout::new(&absolute_home(home).ok()?);
    let mut file = fs::File::open(&layout.log_file).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(LOG_FAILURE_WINDOW)))
        .ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    // Lines start with `log_line_prefix`'s default, `%m [%p] `: "2026-12-04 17:12:46.718 UTC [10340] ".
    let since = since.naive_utc() - chrono::Duration::seconds(1);
    text.lines().find_map(|line| {
        let stamp = line.get(..23)?;
        let at = chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d %H:%M:%S%.3f").ok()?;
        let failure = line.contains("PANIC:") || line.contains("No space left on device");
        let (_, message) = line.split_once("] ")?;
        (at >= since && failure).then(|| (layout.log_file.clone(), message.trim().to_owned()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_log_names_a_failure_after_the_command_started() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().canonicalize().unwrap();
        let at = |s: &str| {
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
                .unwrap()
                .and_utc()
        };
        assert_eq!(server_log_failure(&home, at("2026-12-04 17:00:00")), None);
        std::fs::write(
            home.join("postgres.log"),
            "2026-12-04 16:00:00.000 UTC [7] PANIC:  an old crash\n\
             2026-12-04 17:00:00.500 UTC [9] LOG:  checkpoint starting: wal\n\
             2026-12-04 17:00:01.250 UTC [9] PANIC:  could not write to file \"pg_wal/xlogtemp.9\": No space left on device\n\
             2026-12-04 17:00:01.300 UTC [1] LOG:  server process (PID 9) was terminated by signal 6: Aborted\n",
        )
        .unwrap();
        let (file, line) = server_log_failure(&home, at("2026-12-04 17:00:00")).unwrap();
        assert_eq!(file, home.join("postgres.log"));
        assert_eq!(
            line,
            "PANIC:  could not write to file \"pg_wal/xlogtemp.9\": No space left on device"
        );
        // A crash before the command started is not its cause.
        assert_eq!(server_log_failure(&home, at("2026-12-04 17:00:05")), None);
        assert_eq!(
            server_log_failure(&home, at("2026-12-04 15:00:00"))
                .unwrap()
                .1,
            "PANIC:  an old crash"
        );
    }

    #[test]
    fn percent_encoding() {
        assert_eq!(percent_encode(b"/tmp/a b&c", true), "/tmp/a%20b%26c");
        assert_eq!(percent_encode(b"db/x", false), "db%2Fx");
    }

    // Issue 11: percent-encoding by the `percent-encoding` crate: unreserved characters stay,
    // `%` and bytes outside ASCII (a non-UTF-8 socket path) are encoded, hex in upper case.
    #[test]
    fn percent_encoding_edges() {
        assert_eq!(
            percent_encode(b"/run/\xc3\xa9\xff A-z.0_9~%?#", true),
            "/run/%C3%A9%FF%20A-z.0_9~%25%3F%23"
        );
        assert_eq!(percent_encode(b"", false), "");
    }
}
