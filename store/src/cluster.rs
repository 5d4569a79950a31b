//! The managed local PostgreSQL cluster (the embedded default).
//!
//! [`ensure_running`] initialises a cluster under a home directory (once), starts it when it is
//! not running and returns how to reach it. The server listens only on a Unix socket (no TCP
//! unless asked for with [`StartOptions::tcp`]), so it never clashes with a system server on
//! `127.0.0.1:5432`.
//!
//! Layout under `home`:
//! - `pgdata/` — the data directory (`initdb -U certhist --auth=trust -E UTF8`);
//! - `postgres.log` — the server log;
//! - `cluster.lock` — an exclusive `flock` held around initialisation, start and stop, so that two
//!   certhist processes starting at once neither both run `initdb` nor both start a server;
//! - `run/` — the socket directory, or `/tmp/certhist-<hash of home>` when
//!   `<home>/run/.s.PGSQL.<port>` would exceed the 107-byte limit of a Unix socket path.
//!
//! When run as root (initdb and postgres refuse root), the server binaries run as the owner of an
//! existing data directory, else as `postgres`, else as `nobody`; the client keeps connecting as
//! database user `certhist` over the socket.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use nix::unistd::{Gid, Uid, User};

/// Database superuser created by `initdb` and used by certhist to connect.
pub const DB_USER: &str = "certhist";
/// Port naming the socket file (`.s.PGSQL.5432`); only bumped when our own socket directory
/// already holds another live cluster's socket of that number.
pub const DEFAULT_PORT: u16 = 5432;
/// Longest Unix socket path (`sun_path` is 108 bytes including the terminating NUL).
const SOCKET_PATH_MAX_BYTES: usize = 107;
/// How long `pg_ctl` may take to start or stop the server.
const PG_CTL_TIMEOUT_SECS: u64 = 120;
/// How long we wait for another process holding `cluster.lock`.
const LOCK_TIMEOUT: Duration = Duration::from_secs(300);
/// Lines of the server log quoted in start errors.
const LOG_TAIL_LINES: usize = 30;

/// Why the managed cluster could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// No PostgreSQL server binaries were found.
    #[error("no PostgreSQL server binaries (initdb, pg_ctl, postgres) found (looked in: {searched}); install them, e.g. `apt-get install -y postgresql`, or set DATABASE_URL to use an existing server")]
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
}

/// Percent-encodes everything but RFC 3986 unreserved characters (and `/` when `keep_slash`).
fn percent_encode(bytes: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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
}

/// Options for [`ensure_running_with`].
#[derive(Clone, Debug, Default)]
pub struct StartOptions {
    /// Also listen on this TCP address (its port then names the socket too). `None` = Unix
    /// socket only.
    pub tcp: Option<SocketAddr>,
    /// Extra server settings (`name`, `value`) written after the defaults, e.g. `fsync = off`
    /// for throw-away test clusters. Applied when the server starts.
    pub settings: Vec<(String, String)>,
}

/// Server settings for a local analytics database (bulk loads, few connections).
const DEFAULT_SETTINGS: &[(&str, &str)] = &[
    ("max_connections", "100"),
    ("shared_buffers", "512MB"),
    ("work_mem", "32MB"),
    ("maintenance_work_mem", "512MB"),
    ("effective_cache_size", "4GB"),
    ("max_wal_size", "4GB"),
    ("min_wal_size", "256MB"),
    ("checkpoint_timeout", "15min"),
    ("checkpoint_completion_target", "0.9"),
    ("synchronous_commit", "off"),
    ("wal_compression", "on"),
    ("huge_pages", "try"),
    ("dynamic_shared_memory_type", "posix"),
    ("log_timezone", "UTC"),
    ("timezone", "UTC"),
    ("log_min_duration_statement", "10s"),
];

/// Paths of a cluster home.
#[derive(Clone, Debug)]
struct Layout {
    home: PathBuf,
    data_dir: PathBuf,
    log_file: PathBuf,
    lock_file: PathBuf,
    socket_dir: PathBuf,
}

impl Layout {
    /// `home` must be absolute (and canonical, when it exists).
    fn new(home: &Path) -> Layout {
        let in_home = home.join("run");
        let longest_socket = in_home.join(".s.PGSQL.65535");
        let socket_dir = if longest_socket.as_os_str().len() <= SOCKET_PATH_MAX_BYTES {
            in_home
        } else {
            PathBuf::from(format!(
                "/tmp/certhist-{:016x}",
                fnv1a64(home.as_os_str().as_encoded_bytes())
            ))
        };
        Layout {
            home: home.to_owned(),
            data_dir: home.join("pgdata"),
            log_file: home.join("postgres.log"),
            lock_file: home.join("cluster.lock"),
            socket_dir,
        }
    }

    fn init_tmp_dir(&self) -> PathBuf {
        self.home.join("pgdata.initdb-tmp")
    }

    fn initialised(&self) -> bool {
        self.data_dir.join("PG_VERSION").is_file()
    }

    fn data_version(&self) -> Option<String> {
        fs::read_to_string(self.data_dir.join("PG_VERSION"))
            .ok()
            .map(|s| s.trim().to_owned())
    }
}

/// FNV-1a, 64-bit: a stable, dependency-free hash for short directory names.
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn absolute_home(home: &Path) -> Result<PathBuf, ClusterError> {
    let abs = std::path::absolute(home).map_err(io_err("cannot resolve", home))?;
    Ok(fs::canonicalize(&abs).unwrap_or(abs))
}

/// Initialises (once) and starts (when not running) the cluster under `home`; returns how to reach it.
pub fn ensure_running(home: &Path) -> Result<ClusterInfo, ClusterError> {
    ensure_running_with(home, &StartOptions::default())
}

/// [`ensure_running`] with options (TCP listening, extra settings). A server that is already
/// running is reused as it is.
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
    let home = absolute_home(home)?;
    let layout = Layout::new(&home);
    let _lock = lock_home(&layout)?;

    if let Some(info) = running_info(&layout) {
        tracing::debug!(cluster.data_dir = %layout.data_dir.display(), cluster.pid = info.pid, "reusing running cluster");
        return Ok(info);
    }

    let wanted_major = layout.data_version();
    let bins = find_binaries(wanted_major.as_deref(), &layout.data_dir)?;
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
/// whether it was running.
pub fn stop(home: &Path) -> Result<bool, ClusterError> {
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
    let bins = find_binaries(layout.data_version().as_deref(), &layout.data_dir)?;
    let account = server_account(&layout)?;
    let mut cmd = server_command(&bins.pg_ctl(), account.as_ref(), &layout.home);
    cmd.arg("stop")
        .arg("-D")
        .arg(&layout.data_dir)
        .args(["-m", "fast", "-w", "-s", "-t"])
        .arg(PG_CTL_TIMEOUT_SECS.to_string());
    let out = run(&mut cmd, "pg_ctl stop")?;
    if !out.status.success() && is_live_postmaster(pid_file.pid, &layout.data_dir) {
        return Err(ClusterError::Other(format!(
            "pg_ctl stop failed for {}: {}",
            layout.data_dir.display(),
            output_text(&out)
        )));
    }
    tracing::info!(cluster.data_dir = %layout.data_dir.display(), cluster.pid = pid_file.pid, "stopped cluster");
    Ok(true)
}

/// Reports on the cluster under `home` without changing anything.
pub fn status(home: &Path) -> Result<ClusterStatus, ClusterError> {
    let home = absolute_home(home)?;
    let layout = Layout::new(&home);
    let data_version = layout.data_version();
    let bins = find_binaries(data_version.as_deref(), &layout.data_dir).ok();
    let info = running_info(&layout);
    let (socket_dir, port) = match &info {
        Some(i) => (i.socket_dir.clone(), i.port),
        None => (layout.socket_dir.clone(), DEFAULT_PORT),
    };
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
    })
}

// ---------------------------------------------------------------------------------------------
// Locking

fn lock_home(layout: &Layout) -> Result<Flock<File>, ClusterError> {
    let started = Instant::now();
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o644)
        .open(&layout.lock_file)
        .map_err(io_err("cannot open lock file", &layout.lock_file))?;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((f, errno))
                if errno == nix::errno::Errno::EWOULDBLOCK || errno == nix::errno::Errno::EINTR =>
            {
                if started.elapsed() > LOCK_TIMEOUT {
                    return Err(ClusterError::LockTimeout {
                        lock_file: layout.lock_file.clone(),
                        waited_secs: started.elapsed().as_secs(),
                    });
                }
                file = f;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err((_, errno)) => {
                return Err(ClusterError::Io {
                    what: "cannot lock",
                    path: layout.lock_file.clone(),
                    source: errno.into(),
                })
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Binaries

#[derive(Clone, Debug)]
struct Binaries {
    bindir: PathBuf,
    /// `postgres --version` output, e.g. `postgres (PostgreSQL) 15.13 (Debian 15.13-0+deb12u1)`.
    version: String,
    /// Major version: `15`.
    major: String,
}

impl Binaries {
    fn pg_ctl(&self) -> PathBuf {
        self.bindir.join("pg_ctl")
    }
}

const SERVER_BINARIES: [&str; 3] = ["initdb", "pg_ctl", "postgres"];

fn has_server_binaries(dir: &Path) -> bool {
    SERVER_BINARIES.iter().all(|b| {
        fs::metadata(dir.join(b))
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    })
}

/// Candidate binary directories in preference order: `$CERTHIST_PG_BINDIR`, `pg_config --bindir`,
/// `/usr/lib/postgresql/<highest>/bin`, `/usr/local/pgsql/bin`, then `$PATH`.
fn candidate_bindirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os("CERTHIST_PG_BINDIR") {
        dirs.push(PathBuf::from(d));
    }
    if let Ok(out) = Command::new("pg_config")
        .arg("--bindir")
        .stdin(Stdio::null())
        .output()
    {
        if out.status.success() {
            let s = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if !s.is_empty() {
                dirs.push(PathBuf::from(s));
            }
        }
    }
    let mut versioned: Vec<(Vec<u32>, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let key: Vec<u32> = name
                .split('.')
                .map(|p| p.parse().ok())
                .collect::<Option<_>>()?;
            Some((key, e.path().join("bin")))
        })
        .collect();
    versioned.sort_by(|a, b| b.0.cmp(&a.0));
    dirs.extend(versioned.into_iter().map(|(_, p)| p));
    dirs.push(PathBuf::from("/usr/local/pgsql/bin"));
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    let mut seen = Vec::new();
    dirs.retain(|d| {
        let key = fs::canonicalize(d).unwrap_or_else(|_| d.clone());
        if seen.contains(&key) {
            false
        } else {
            seen.push(key);
            true
        }
    });
    dirs
}

fn server_version(bindir: &Path) -> Option<(String, String)> {
    let out = Command::new(bindir.join("postgres"))
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let number = text
        .split("(PostgreSQL)")
        .nth(1)?
        .split_whitespace()
        .next()?;
    let major = number
        .split('.')
        .next()?
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .to_owned();
    Some((text, major))
}

/// The first directory holding initdb, pg_ctl and postgres; with `wanted_major` (an existing
/// cluster), the first one of that major version.
fn find_binaries(wanted_major: Option<&str>, data_dir: &Path) -> Result<Binaries, ClusterError> {
    find_binaries_in(&candidate_bindirs(), wanted_major, data_dir)
}

fn find_binaries_in(
    candidates: &[PathBuf],
    wanted_major: Option<&str>,
    data_dir: &Path,
) -> Result<Binaries, ClusterError> {
    let mut found = Vec::new();
    for dir in candidates {
        if !has_server_binaries(dir) {
            continue;
        }
        let Some((version, major)) = server_version(dir) else {
            continue;
        };
        let bins = Binaries {
            bindir: dir.clone(),
            version,
            major,
        };
        match wanted_major {
            Some(w) if w != bins.major => found.push(bins),
            _ => return Ok(bins),
        }
    }
    match wanted_major {
        Some(w) if !found.is_empty() => Err(ClusterError::VersionMismatch {
            data_dir: data_dir.to_owned(),
            cluster_major: w.to_owned(),
            found: found
                .iter()
                .map(|b| b.major.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
        _ => Err(ClusterError::NoBinaries {
            searched: candidates
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// The unprivileged account (when running as root)

#[derive(Clone, Debug)]
struct Account {
    name: String,
    uid: Uid,
    gid: Gid,
    home: PathBuf,
}

/// `None` when not root: the binaries run as ourselves. As root: the owner of an existing data
/// directory, else `postgres`, else `nobody`.
fn server_account(layout: &Layout) -> Result<Option<Account>, ClusterError> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    let lookup_err =
        |e: nix::errno::Errno| ClusterError::Other(format!("cannot read the user database: {e}"));
    let user = match fs::metadata(&layout.data_dir) {
        Ok(meta) if layout.initialised() => {
            if meta.uid() == 0 {
                return Err(ClusterError::Other(format!(
                    "{} is owned by root; PostgreSQL cannot run as root: `chown -R postgres {}`",
                    layout.data_dir.display(),
                    layout.data_dir.display()
                )));
            }
            User::from_uid(Uid::from_raw(meta.uid()))
                .map_err(lookup_err)?
                .ok_or_else(|| {
                    ClusterError::Other(format!(
                        "{} is owned by uid {}, which has no account; `chown -R postgres {}`",
                        layout.data_dir.display(),
                        meta.uid(),
                        layout.data_dir.display()
                    ))
                })?
        }
        _ => match User::from_name("postgres").map_err(lookup_err)? {
            Some(u) => u,
            None => User::from_name("nobody").map_err(lookup_err)?.ok_or_else(|| {
                ClusterError::Other(
                    "running as root, but neither a `postgres` nor a `nobody` account exists to run the server (initdb/postgres refuse root); create one: `useradd --system postgres`".into(),
                )
            })?,
        },
    };
    if user.uid.is_root() {
        return Err(ClusterError::Other(format!(
            "account `{}` has uid 0; PostgreSQL needs an unprivileged account",
            user.name
        )));
    }
    Ok(Some(Account {
        name: user.name,
        uid: user.uid,
        gid: user.gid,
        home: user.dir,
    }))
}

/// Every existing ancestor of `path` (and `path` itself, when it exists) must be searchable by
/// `acct`.
fn check_traversable(path: &Path, acct: &Account) -> Result<(), ClusterError> {
    for dir in path.ancestors() {
        let Ok(meta) = fs::metadata(dir) else {
            continue;
        };
        let mode = meta.permissions().mode();
        let bit = if meta.uid() == acct.uid.as_raw() {
            0o100
        } else if meta.gid() == acct.gid.as_raw() {
            0o010
        } else {
            0o001
        };
        if mode & bit == 0 {
            return Err(ClusterError::NotTraversable {
                dir: dir.to_owned(),
                account: acct.name.clone(),
                fix: format!(
                    "either allow it with `chmod o+x {}` or set CERTHIST_HOME to a directory every user can reach, e.g. CERTHIST_HOME=/var/tmp/certhist",
                    dir.display()
                ),
            });
        }
    }
    Ok(())
}

fn chown_to(path: &Path, acct: Option<&Account>) -> Result<(), ClusterError> {
    if let Some(a) = acct {
        std::os::unix::fs::chown(path, Some(a.uid.as_raw()), Some(a.gid.as_raw()))
            .map_err(io_err("cannot chown", path))?;
    }
    Ok(())
}

/// A command for a server binary: as `acct` when given, with `PG*` variables removed (they would
/// redirect initdb/pg_ctl), a neutral locale, and a working directory the account can enter.
fn server_command(program: &Path, acct: Option<&Account>, cwd: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.stdin(Stdio::null()).current_dir(cwd);
    match acct {
        Some(a) => {
            cmd.env_clear()
                .env("PATH", "/usr/local/bin:/usr/bin:/bin")
                .env("HOME", &a.home)
                .env("USER", &a.name)
                .env("LOGNAME", &a.name)
                .uid(a.uid.as_raw())
                .gid(a.gid.as_raw());
        }
        None => {
            let pg_vars: Vec<OsString> = std::env::vars_os()
                .map(|(k, _)| k)
                .filter(|k| k.to_string_lossy().starts_with("PG"))
                .collect();
            for k in pg_vars {
                cmd.env_remove(k);
            }
        }
    }
    cmd.env("LC_ALL", "C")
        .env_remove("LANG")
        .env_remove("LANGUAGE");
    cmd
}

fn run(cmd: &mut Command, what: &str) -> Result<Output, ClusterError> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.output().map_err(|e| {
        ClusterError::Other(format!(
            "cannot run {what} ({}): {e}",
            cmd.get_program().to_string_lossy()
        ))
    })
}

fn output_text(out: &Output) -> String {
    let mut s = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !stdout.trim().is_empty() {
        if !s.is_empty() {
            s.push('\n');
        }
        s.push_str(stdout.trim());
    }
    s
}

// ---------------------------------------------------------------------------------------------
// initdb

fn initdb(layout: &Layout, bins: &Binaries, acct: Option<&Account>) -> Result<(), ClusterError> {
    // initdb runs in a scratch directory renamed into place only on success, so that a crash
    // mid-initdb never leaves a half-made `pgdata` behind.
    let tmp = layout.init_tmp_dir();
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(io_err("cannot remove leftover", &tmp))?;
    }
    if layout.data_dir.exists() {
        let empty = fs::read_dir(&layout.data_dir)
            .map_err(io_err("cannot read", &layout.data_dir))?
            .next()
            .is_none();
        if !empty {
            return Err(ClusterError::Other(format!(
                "{} exists but is not a PostgreSQL data directory (no PG_VERSION); move it away or choose another CERTHIST_HOME",
                layout.data_dir.display()
            )));
        }
        fs::remove_dir(&layout.data_dir).map_err(io_err("cannot remove", &layout.data_dir))?;
    }
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&tmp)
        .map_err(io_err("cannot create", &tmp))?;
    chown_to(&tmp, acct)?;
    tracing::info!(cluster.data_dir = %layout.data_dir.display(), cluster.version = %bins.version, "initialising PostgreSQL cluster");
    let mut last = String::new();
    let mut ok = false;
    for locale in ["C.UTF-8", "C"] {
        let mut cmd = server_command(&bins.bindir.join("initdb"), acct, &layout.home);
        cmd.arg("-D")
            .arg(&tmp)
            .args([
                "-U",
                DB_USER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-instructions",
            ])
            .arg(format!("--locale={locale}"));
        let out = run(&mut cmd, "initdb")?;
        if out.status.success() {
            ok = true;
            break;
        }
        last = output_text(&out);
        // initdb removes what it created on failure; make sure the directory is empty again.
        if let Ok(entries) = fs::read_dir(&tmp) {
            for e in entries.flatten() {
                let p = e.path();
                let _ = if p.is_dir() {
                    fs::remove_dir_all(&p)
                } else {
                    fs::remove_file(&p)
                };
            }
        }
    }
    if !ok {
        let _ = fs::remove_dir_all(&tmp);
        return Err(ClusterError::Other(format!(
            "initdb failed in {}: {last}",
            layout.data_dir.display()
        )));
    }
    // Our settings live in certhist.conf (rewritten at every start), included last.
    let conf = tmp.join("postgresql.conf");
    let mut text = fs::read_to_string(&conf).map_err(io_err("cannot read", &conf))?;
    text.push_str("\n# Added by certhist: settings of the managed cluster (rewritten at every start).\ninclude_if_exists = 'certhist.conf'\n");
    fs::write(&conf, text).map_err(io_err("cannot write", &conf))?;
    fs::rename(&tmp, &layout.data_dir).map_err(io_err(
        "cannot rename initialised cluster to",
        &layout.data_dir,
    ))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// postmaster.pid and liveness

/// The lines of `postmaster.pid` we use (see PostgreSQL's `pidfile.h`).
#[derive(Clone, Debug)]
struct PidFile {
    pid: u32,
    port: Option<u16>,
    socket_dir: Option<PathBuf>,
    listen_addr: Option<String>,
    status: Option<String>,
}

fn read_pid_file(data_dir: &Path) -> Option<PidFile> {
    let text = fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    parse_lock_file(&text)
}

fn parse_lock_file(text: &str) -> Option<PidFile> {
    let lines: Vec<&str> = text.lines().collect();
    let pid: i64 = lines.first()?.trim().parse().ok()?;
    let line = |i: usize| lines.get(i).map(|l| l.trim()).filter(|l| !l.is_empty());
    Some(PidFile {
        // A negative PID marks a standalone backend: treat like any other owner.
        pid: u32::try_from(pid.unsigned_abs()).ok()?,
        port: line(3).and_then(|p| p.parse().ok()),
        socket_dir: line(4).map(PathBuf::from),
        listen_addr: line(5).map(str::to_owned),
        status: line(7).map(str::to_owned),
    })
}

/// True when `pid` is a live (non-zombie) postgres process whose working directory is
/// `data_dir` (the postmaster chdirs into its data directory). A PID reused by an unrelated
/// process, a dead PID or a postgres of another cluster gives false.
fn is_live_postmaster(pid: u32, data_dir: &Path) -> bool {
    if pid == 0 {
        return false;
    }
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let Ok(stat) = fs::read_to_string(proc_dir.join("stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    if matches!(state, Some("Z") | Some("X") | None) {
        return false;
    }
    let Ok(cmdline) = fs::read(proc_dir.join("cmdline")) else {
        return false;
    };
    let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    let argv0 = String::from_utf8_lossy(argv0);
    let base = argv0.rsplit('/').next().unwrap_or_default();
    if !(base.starts_with("postgres") || base.starts_with("postmaster")) {
        return false;
    }
    let want = fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_owned());
    match fs::read_link(proc_dir.join("cwd")) {
        Ok(cwd) => cwd == want,
        // Not ours to inspect (another user's process): a postgres we cannot rule out.
        Err(_) => true,
    }
}

/// The running server's connection details, when a live postmaster owns the data directory and
/// reports `ready`.
fn running_info(layout: &Layout) -> Option<ClusterInfo> {
    let pf = read_pid_file(&layout.data_dir)?;
    if !is_live_postmaster(pf.pid, &layout.data_dir) {
        return None;
    }
    if pf.status.as_deref() != Some("ready") {
        return None;
    }
    let socket_dir = pf.socket_dir.clone()?;
    let port = pf.port?;
    let tcp = pf
        .listen_addr
        .as_deref()
        .filter(|a| !a.is_empty() && *a != "*")
        .and_then(|a| a.parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, port));
    Some(ClusterInfo {
        socket_dir,
        port,
        user: DB_USER.to_owned(),
        data_dir: layout.data_dir.clone(),
        log_file: layout.log_file.clone(),
        pid: pf.pid,
        tcp,
    })
}

fn remove_stale_pid_file(layout: &Layout, pf: &PidFile) -> Result<(), ClusterError> {
    let path = layout.data_dir.join("postmaster.pid");
    tracing::warn!(cluster.data_dir = %layout.data_dir.display(), cluster.stale_pid = pf.pid, "removing stale postmaster.pid (no live postgres owns it)");
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ClusterError::Io {
            what: "cannot remove stale",
            path,
            source: e,
        }),
    }
}

/// Processes (other than a postmaster) still working in `data_dir`: the children of a
/// postmaster that was killed. They hold the old shared memory, which makes a new postmaster
/// refuse to start until they exit.
fn orphan_server_processes(data_dir: &Path) -> Vec<u32> {
    let want = fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_owned());
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let dir = PathBuf::from(format!("/proc/{pid}"));
            let zombie = fs::read_to_string(dir.join("stat"))
                .map(|s| {
                    s.rsplit_once(')')
                        .and_then(|(_, r)| r.split_whitespace().next())
                        == Some("Z")
                })
                .unwrap_or(true);
            // Server processes only (argv[0] `postgres…`, retitled `postgres: checkpointer`),
            // not a shell or this process that happens to sit in the directory.
            let is_postgres = fs::read(dir.join("cmdline"))
                .map(|c| c.starts_with(b"postgres") || c.windows(10).any(|w| w == b"/postgres\0"))
                .unwrap_or(false);
            *pid != std::process::id()
                && !zombie
                && is_postgres
                && fs::read_link(dir.join("cwd"))
                    .map(|c| c == want)
                    .unwrap_or(false)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Start

/// Quotes a `postgresql.conf` string value.
fn conf_quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

fn path_str(path: &Path) -> Result<&str, ClusterError> {
    path.to_str()
        .ok_or_else(|| ClusterError::Other(format!("path is not valid UTF-8: {}", path.display())))
}

fn prepare_socket_dir(layout: &Layout, acct: Option<&Account>) -> Result<(), ClusterError> {
    let dir = &layout.socket_dir;
    match fs::symlink_metadata(dir) {
        Ok(meta) => {
            let expected_uid = acct
                .map(|a| a.uid.as_raw())
                .unwrap_or_else(|| Uid::effective().as_raw());
            if !meta.is_dir() || meta.uid() != expected_uid {
                return Err(ClusterError::Other(format!(
                    "socket directory {} exists but is not a directory owned by uid {expected_uid}; remove it",
                    dir.display()
                )));
            }
            if meta.permissions().mode() & 0o077 != 0 {
                fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                    .map_err(io_err("cannot chmod", dir))?;
            }
        }
        Err(_) => {
            fs::DirBuilder::new()
                .mode(0o700)
                .create(dir)
                .map_err(io_err("cannot create socket directory", dir))?;
            chown_to(dir, acct)?;
        }
    }
    Ok(())
}

/// The port to name the socket with: the default unless our socket directory holds a live
/// lock of another cluster for it. Stale socket lock files are removed.
fn choose_port(layout: &Layout, wanted: u16) -> Result<u16, ClusterError> {
    for port in wanted..wanted.saturating_add(100) {
        let lock = layout.socket_dir.join(format!(".s.PGSQL.{port}.lock"));
        let Ok(text) = fs::read_to_string(&lock) else {
            return Ok(port);
        };
        let owner_dir = text.lines().nth(1).map(PathBuf::from);
        let Some(pf) = parse_lock_file(&text) else {
            let _ = fs::remove_file(&lock);
            return Ok(port);
        };
        let owner_alive = owner_dir
            .as_deref()
            .map(|d| is_live_postmaster(pf.pid, d))
            .unwrap_or(false);
        if !owner_alive {
            let _ = fs::remove_file(&lock);
            let _ = fs::remove_file(layout.socket_dir.join(format!(".s.PGSQL.{port}")));
            return Ok(port);
        }
        tracing::info!(cluster.socket_dir = %layout.socket_dir.display(), cluster.port = port, "socket name taken by another live cluster; trying the next port");
    }
    Err(ClusterError::Other(format!(
        "no free socket name in {} for ports {wanted}..{}",
        layout.socket_dir.display(),
        wanted.saturating_add(100)
    )))
}

fn write_settings(layout: &Layout, port: u16, options: &StartOptions) -> Result<(), ClusterError> {
    let socket_dir = path_str(&layout.socket_dir)?;
    let mut text = String::from(
        "# Written by certhist at every start of the managed cluster; do not edit (use ALTER SYSTEM).\n",
    );
    let listen = options.tcp.map(|a| a.ip().to_string()).unwrap_or_default();
    text.push_str(&format!("listen_addresses = {}\n", conf_quote(&listen)));
    text.push_str(&format!("port = {port}\n"));
    let dirs = format!("\"{}\"", socket_dir.replace('"', "\"\""));
    text.push_str(&format!(
        "unix_socket_directories = {}\n",
        conf_quote(&dirs)
    ));
    text.push_str("unix_socket_permissions = 0700\n");
    for (k, v) in DEFAULT_SETTINGS {
        text.push_str(&format!("{k} = {}\n", conf_quote(v)));
    }
    for (k, v) in &options.settings {
        if !k
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            || k.is_empty()
        {
            return Err(ClusterError::Other(format!(
                "invalid server setting name {k:?}"
            )));
        }
        text.push_str(&format!("{k} = {}\n", conf_quote(v)));
    }
    let path = layout.data_dir.join("certhist.conf");
    fs::write(&path, text).map_err(io_err("cannot write", &path))?;
    Ok(())
}

fn log_tail(path: &Path) -> String {
    let Ok(mut f) = File::open(path) else {
        return "(no log file)".into();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(16 * 1024)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}

fn start(
    layout: &Layout,
    bins: &Binaries,
    acct: Option<&Account>,
    options: &StartOptions,
) -> Result<ClusterInfo, ClusterError> {
    let start_failed = |reason: String| ClusterError::StartFailed {
        data_dir: layout.data_dir.clone(),
        reason,
        log_file: layout.log_file.clone(),
        log_tail: log_tail(&layout.log_file),
    };

    // A pid file without a live postmaster is left over from a crash (or names a PID now used by
    // another process, which postgres itself would refuse to overrule).
    if let Some(pf) = read_pid_file(&layout.data_dir) {
        if is_live_postmaster(pf.pid, &layout.data_dir) {
            // Alive but not (yet) ready: another start in progress outside our lock, or a
            // shutdown. Give it time, then reuse it.
            let deadline = Instant::now() + Duration::from_secs(PG_CTL_TIMEOUT_SECS);
            while Instant::now() < deadline && is_live_postmaster(pf.pid, &layout.data_dir) {
                if let Some(info) = running_info(layout) {
                    return Ok(info);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            if let Some(info) = running_info(layout) {
                return Ok(info);
            }
            if is_live_postmaster(pf.pid, &layout.data_dir) {
                return Err(start_failed(format!(
                    "postmaster {} is alive but never became ready",
                    pf.pid
                )));
            }
        }
        if read_pid_file(&layout.data_dir).is_some() {
            remove_stale_pid_file(layout, &pf)?;
        }
    }
    // Children of a killed postmaster still hold its shared memory; they exit on their own
    // within moments of noticing the postmaster's death.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let orphans = orphan_server_processes(&layout.data_dir);
        if orphans.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            return Err(start_failed(format!(
                "processes {orphans:?} of a previous server are still running in the data directory; stop them (`kill {}`) and retry",
                orphans.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    prepare_socket_dir(layout, acct)?;
    let port = choose_port(
        layout,
        options.tcp.map(|a| a.port()).unwrap_or(DEFAULT_PORT),
    )?;
    write_settings(layout, port, options)?;
    if !layout.log_file.exists() {
        File::create(&layout.log_file).map_err(io_err("cannot create", &layout.log_file))?;
    }
    chown_to(&layout.log_file, acct)?;

    tracing::info!(cluster.data_dir = %layout.data_dir.display(), cluster.socket_dir = %layout.socket_dir.display(), cluster.port = port, "starting PostgreSQL");
    let mut cmd = server_command(&bins.pg_ctl(), acct, &layout.home);
    cmd.arg("start")
        .arg("-D")
        .arg(&layout.data_dir)
        .arg("-l")
        .arg(&layout.log_file)
        .args(["-w", "-s", "-t"])
        .arg(PG_CTL_TIMEOUT_SECS.to_string());
    let out = run(&mut cmd, "pg_ctl start")?;
    if !out.status.success() {
        return Err(start_failed(format!(
            "pg_ctl start failed: {}",
            output_text(&out)
        )));
    }
    let info = running_info(layout).ok_or_else(|| {
        start_failed("pg_ctl reported success but postmaster.pid names no ready server".into())
    })?;
    wait_ready(&info, bins).map_err(start_failed)?;
    Ok(info)
}

/// Waits until the server accepts connections on its socket (`pg_isready`, else a plain socket
/// connect).
fn wait_ready(info: &ClusterInfo, bins: &Binaries) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let pg_isready = bins.bindir.join("pg_isready");
    let mut last = String::new();
    while Instant::now() < deadline {
        if pg_isready.is_file() {
            let out = Command::new(&pg_isready)
                .arg("-h")
                .arg(&info.socket_dir)
                .arg("-p")
                .arg(info.port.to_string())
                .args(["-U", DB_USER, "-d", "postgres", "-t", "5", "-q"])
                .stdin(Stdio::null())
                .output();
            match out {
                Ok(o) if o.status.success() => return Ok(()),
                Ok(o) => last = format!("pg_isready exit status {}", o.status),
                Err(e) => last = format!("cannot run pg_isready: {e}"),
            }
        } else {
            match std::os::unix::net::UnixStream::connect(info.socket_path()) {
                Ok(_) => return Ok(()),
                Err(e) => last = format!("connect {}: {e}", info.socket_path().display()),
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "server not accepting connections on {}: {last}",
        info.socket_path().display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_home_falls_back_to_tmp_socket_dir() {
        let short = Layout::new(Path::new("/var/tmp/h"));
        assert_eq!(short.socket_dir, PathBuf::from("/var/tmp/h/run"));
        let long_home = PathBuf::from(format!("/var/tmp/{}", "x".repeat(100)));
        let long = Layout::new(&long_home);
        assert!(long
            .socket_dir
            .to_string_lossy()
            .starts_with("/tmp/certhist-"));
        assert_eq!(
            long.socket_dir,
            Layout::new(&long_home).socket_dir,
            "deterministic"
        );
        assert!(long.socket_dir.join(".s.PGSQL.65535").as_os_str().len() <= SOCKET_PATH_MAX_BYTES);
    }

    #[test]
    fn lock_file_parsing() {
        let text = "1234\n/var/tmp/h/pgdata\n1700000000\n5432\n/var/tmp/h/run\n\n  5432001   1\nready   \n";
        let pf = parse_lock_file(text).unwrap();
        assert_eq!(pf.pid, 1234);
        assert_eq!(pf.port, Some(5432));
        assert_eq!(pf.socket_dir, Some(PathBuf::from("/var/tmp/h/run")));
        assert_eq!(pf.listen_addr, None);
        assert_eq!(pf.status.as_deref(), Some("ready"));
        assert!(parse_lock_file("garbage\n").is_none());
        assert!(parse_lock_file("").is_none());
    }

    #[test]
    fn conf_quoting() {
        assert_eq!(conf_quote("it's"), "'it''s'");
        assert_eq!(conf_quote(r"a\b"), r"'a\\b'");
    }

    #[test]
    fn percent_encoding() {
        assert_eq!(percent_encode(b"/tmp/a b&c", true), "/tmp/a%20b%26c");
        assert_eq!(percent_encode(b"db/x", false), "db%2Fx");
    }

    #[test]
    fn no_binaries_says_what_to_install() {
        let empty = std::env::temp_dir();
        let err = find_binaries_in(
            std::slice::from_ref(&empty),
            None,
            Path::new("/nonexistent"),
        )
        .unwrap_err();
        assert!(matches!(err, ClusterError::NoBinaries { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("apt-get install -y postgresql"), "{msg}");
        assert!(msg.contains(&empty.display().to_string()), "{msg}");
    }

    #[test]
    fn own_process_is_not_a_postmaster() {
        assert!(!is_live_postmaster(std::process::id(), Path::new("/")));
        assert!(!is_live_postmaster(0, Path::new("/")));
    }
}
