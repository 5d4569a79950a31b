//! The server process: starting it, `postmaster.pid`, telling a live postmaster from a stale pid
//! file or a reused PID, and waiting out the orphans of a killed one.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::account::{chown_to, clean_command, output_text, run, server_command, Account};
use super::auth::{apply_password, ensure_password, write_hba};
use super::binaries::Binaries;
use super::layout::Layout;
use super::settings::{choose_port, prepare_socket_dir, write_settings};
use super::{
    io_err, ClusterError, ClusterInfo, StartOptions, DB_USER, DEFAULT_PORT, PG_CTL_TIMEOUT_SECS,
};

/// Lines of the server log quoted in start errors.
const LOG_TAIL_LINES: usize = 30;

/// The lines of `postmaster.pid` we use (see PostgreSQL's `pidfile.h`).
#[derive(Clone, Debug)]
pub(super) struct PidFile {
    pub(super) pid: u32,
    port: Option<u16>,
    socket_dir: Option<PathBuf>,
    listen_addr: Option<String>,
    status: Option<String>,
}

pub(super) fn read_pid_file(data_dir: &Path) -> Option<PidFile> {
    let text = fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    parse_lock_file(&text)
}

pub(super) fn parse_lock_file(text: &str) -> Option<PidFile> {
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
pub(super) fn is_live_postmaster(pid: u32, data_dir: &Path) -> bool {
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
pub(super) fn running_info(layout: &Layout) -> Option<ClusterInfo> {
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
        passfile: layout.passfile.clone(),
    })
}

pub(super) fn remove_stale_pid_file(layout: &Layout, pf: &PidFile) -> Result<(), ClusterError> {
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

/// Starts the server with `pg_ctl start` (after clearing a stale pid file and waiting out the
/// orphans of a killed server) and waits until it accepts connections.
pub(super) fn start(
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
    let password = ensure_password(layout)?;
    write_hba(layout, acct, &options.allow_remote)?;
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
    // Until this is done TCP logins fail (SCRAM lines, no or an old verifier): fail closed.
    // A standby is read-only: its password arrives from the primary by replication.
    if !super::replica::is_standby(layout) {
        apply_password(&info, &password, false)?;
    }
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
            let out = clean_command(&pg_isready)
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
    fn own_process_is_not_a_postmaster() {
        assert!(!is_live_postmaster(std::process::id(), Path::new("/")));
        assert!(!is_live_postmaster(0, Path::new("/")));
    }
}
