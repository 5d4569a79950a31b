//! Paths under a cluster home, and the lock that serialises initialisation, start and stop.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

use super::{io_err, ClusterError, LOCK_TIMEOUT};

/// Longest Unix socket path (`sun_path` is 108 bytes including the terminating NUL).
const SOCKET_PATH_MAX_BYTES: usize = 107;

/// Paths of a cluster home.
#[derive(Clone, Debug)]
pub(super) struct Layout {
    pub(super) home: PathBuf,
    pub(super) data_dir: PathBuf,
    pub(super) log_file: PathBuf,
    pub(super) lock_file: PathBuf,
    pub(super) socket_dir: PathBuf,
    /// The password of role certhist for TCP clients (libpq password file, mode 0600).
    pub(super) passfile: PathBuf,
}

impl Layout {
    /// `home` must be absolute (and canonical, when it exists).
    pub(super) fn new(home: &Path) -> Layout {
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
            passfile: home.join("pgpass"),
        }
    }

    pub(super) fn init_tmp_dir(&self) -> PathBuf {
        self.home.join("pgdata.initdb-tmp")
    }

    pub(super) fn initialised(&self) -> bool {
        self.data_dir.join("PG_VERSION").is_file()
    }

    pub(super) fn data_version(&self) -> Option<String> {
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

pub(super) fn absolute_home(home: &Path) -> Result<PathBuf, ClusterError> {
    let abs = std::path::absolute(home).map_err(io_err("cannot resolve", home))?;
    Ok(fs::canonicalize(&abs).unwrap_or(abs))
}

/// Takes `cluster.lock` (waiting up to [`LOCK_TIMEOUT`] for another certhist process).
pub(super) fn lock_home(layout: &Layout) -> Result<Flock<File>, ClusterError> {
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
}
