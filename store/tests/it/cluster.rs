//! The managed local cluster (issue 2, item 2). Each test uses a home of its own (not the
//! shared test cluster) and stops its server at the end, also when it fails.

use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use certhist_store::cluster::{self, ClusterConfig, ClusterError, ClusterInfo};
use secrecy::ExposeSecret;
use tokio_postgres::config::Host;
use tokio_postgres::NoTls;

/// A temporary cluster home (mode 0755, so that the unprivileged server account can reach it
/// when the tests run as root); stops the cluster and removes everything on drop.
struct Home {
    dir: tempfile::TempDir,
    home: PathBuf,
}

impl Home {
    fn new() -> Home {
        Self::with_subdir("home")
    }

    fn with_subdir(sub: &str) -> Home {
        Self::with_mode(sub, 0o755)
    }

    fn with_mode(sub: &str, mode: u32) -> Home {
        let dir = tempfile::Builder::new()
            .prefix("certhist-cluster-test-")
            .permissions(fs::Permissions::from_mode(mode))
            .tempdir()
            .unwrap();
        let home = dir.path().join(sub);
        Home { dir, home }
    }

    fn path(&self) -> &Path {
        &self.home
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let socket_dir = cluster::status(&self.home).ok().map(|s| s.socket_dir);
        if let Err(e) = cluster::stop(&self.home) {
            eprintln!(
                "warning: cannot stop test cluster in {}: {e}",
                self.home.display()
            );
        }
        // A socket directory outside the home (long paths) is ours to remove too.
        if let Some(d) = socket_dir {
            if !d.starts_with(self.dir.path()) {
                let _ = fs::remove_dir_all(d);
            }
        }
    }
}

/// Runs a query on `dbname` of the cluster and returns the first column of the first row.
fn query_text(info: &ClusterInfo, dbname: &str, sql: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, connection) = info.pg_config(dbname).connect(NoTls).await.unwrap();
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let row = client.query_one(sql, &[]).await.unwrap();
        row.get::<_, String>(0)
    })
}

fn batch(info: &ClusterInfo, sql: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, connection) = info.pg_config("postgres").connect(NoTls).await.unwrap();
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client.batch_execute(sql).await.unwrap();
    })
}

fn process_gone(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // A zombie (not reaped by a container's init) is dead too.
        Ok(stat) => {
            stat.rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().next())
                == Some("Z")
        }
    }
}

fn wait_gone(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !process_gone(pid) {
        assert!(Instant::now() < deadline, "process {pid} did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn init_start_reuse_stop_start() {
    let home = Home::new();
    let before = cluster::status(home.path()).unwrap();
    assert!(!before.initialised && !before.running && before.pid.is_none());

    let info = cluster::ensure_running(home.path()).unwrap();
    assert_eq!(info.user, "certhist");
    assert_eq!(info.port, cluster::DEFAULT_PORT);
    assert_eq!(
        info.data_dir,
        fs::canonicalize(home.path()).unwrap().join("pgdata")
    );
    assert_eq!(
        info.socket_dir,
        fs::canonicalize(home.path()).unwrap().join("run")
    );
    assert!(
        info.socket_path().exists(),
        "{}",
        info.socket_path().display()
    );
    assert!(info.data_dir.join("PG_VERSION").is_file());
    // Unix socket only: never TCP (the system server may own 127.0.0.1:5432).
    assert_eq!(
        query_text(
            &info,
            "postgres",
            "SELECT current_setting('listen_addresses')"
        ),
        ""
    );
    assert_eq!(
        query_text(&info, "postgres", "SELECT current_user::text"),
        "certhist"
    );
    assert_eq!(
        query_text(
            &info,
            "postgres",
            "SELECT current_setting('server_encoding')"
        ),
        "UTF8"
    );
    assert_eq!(
        query_text(
            &info,
            "postgres",
            "SELECT current_setting('synchronous_commit')"
        ),
        "off"
    );
    assert_eq!(
        query_text(
            &info,
            "postgres",
            "SELECT current_setting('shared_buffers')"
        ),
        "512MB"
    );

    // A second call reuses the running server.
    let again = cluster::ensure_running(home.path()).unwrap();
    assert_eq!(again, info);

    let st = cluster::status(home.path()).unwrap();
    assert!(st.initialised && st.running);
    assert_eq!(st.pid, Some(info.pid));
    assert_eq!(st.socket_dir, info.socket_dir);
    assert_eq!(st.data_dir, info.data_dir);
    assert_eq!(st.port, info.port);
    assert!(st.log_file.is_file());
    let version = st.server_version.clone().unwrap();
    assert!(version.contains("(PostgreSQL)"), "{version}");
    let major = st.data_version.clone().unwrap();
    assert!(
        version.contains(&format!(") {major}.")),
        "{version} vs PG_VERSION {major}"
    );
    let server_version_num = query_text(
        &info,
        "postgres",
        "SELECT current_setting('server_version_num')",
    );
    assert!(
        server_version_num.starts_with(&major),
        "{server_version_num} vs {major}"
    );

    assert!(cluster::stop(home.path()).unwrap(), "was running");
    wait_gone(info.pid);
    let st = cluster::status(home.path()).unwrap();
    assert!(st.initialised && !st.running && st.pid.is_none());
    assert!(!cluster::stop(home.path()).unwrap(), "already stopped");

    batch_after_restart(&home);
}

/// Data written before a stop is there after the next start.
fn batch_after_restart(home: &Home) {
    let info = cluster::ensure_running(home.path()).unwrap();
    batch(
        &info,
        "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before stop')",
    );
    assert!(cluster::stop(home.path()).unwrap());
    wait_gone(info.pid);
    let info2 = cluster::ensure_running(home.path()).unwrap();
    assert_ne!(info2.pid, info.pid);
    assert_eq!(
        query_text(&info2, "postgres", "SELECT v FROM kept"),
        "before stop"
    );
}

#[test]
fn url_round_trips_through_tokio_postgres_and_psql() {
    let home = Home::new();
    let info = cluster::ensure_running(home.path()).unwrap();
    let url = info.url("postgres");
    assert_eq!(
        url,
        format!(
            "postgresql://certhist@/postgres?host={}&port=5432",
            info.socket_dir.display()
        )
    );
    let parsed = tokio_postgres::Config::from_str(&url).unwrap();
    assert_eq!(parsed.get_hosts(), &[Host::Unix(info.socket_dir.clone())]);
    assert_eq!(parsed.get_ports(), &[5432]);
    assert_eq!(parsed.get_user(), Some("certhist"));
    assert_eq!(parsed.get_dbname(), Some("postgres"));

    // Odd characters in the database name survive percent-encoding.
    let odd = info.url("a b&c/d");
    let parsed = tokio_postgres::Config::from_str(&odd).unwrap();
    assert_eq!(parsed.get_dbname(), Some("a b&c/d"));

    let psql = Path::new("/usr/bin/psql");
    if psql.exists() {
        let out = std::process::Command::new(psql)
            .arg(&url)
            .args(["-XAtc", "SELECT 40 + 2"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
    } else {
        eprintln!("psql not installed: skipping the psql half of this test");
    }
}

#[test]
fn kill_9_of_the_postmaster_is_survived() {
    let home = Home::new();
    let info = cluster::ensure_running(home.path()).unwrap();
    // synchronous_commit is off by default: make this commit durable before the crash.
    batch(
        &info,
        "SET synchronous_commit = on; CREATE TABLE crash (v int); INSERT INTO crash VALUES (7)",
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(info.pid).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_gone(info.pid);
    assert!(
        info.data_dir.join("postmaster.pid").exists(),
        "the crash leaves the pid file behind"
    );
    assert!(!cluster::status(home.path()).unwrap().running);

    let after = cluster::ensure_running(home.path()).unwrap();
    assert_ne!(after.pid, info.pid);
    assert_eq!(after.socket_dir, info.socket_dir);
    assert_eq!(
        query_text(&after, "postgres", "SELECT v::text FROM crash"),
        "7"
    );
}

/// A fast shutdown that cannot finish (here: a backend frozen with SIGSTOP never acts on the
/// postmaster's SIGTERM; in CI once: a server in crash recovery after a full disk) is made
/// immediate: the server stops, and what was committed is there after the restart.
#[test]
fn a_fast_shutdown_that_hangs_is_made_immediate() {
    let home = Home::new();
    let info = cluster::ensure_running(home.path()).unwrap();
    batch(
        &info,
        "SET synchronous_commit = on; CREATE TABLE kept (v int); INSERT INTO kept VALUES (11)",
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (client, backend) = rt.block_on(async {
        let (client, connection) = info.pg_config("postgres").connect(NoTls).await.unwrap();
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let pid: i32 = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        (client, pid)
    });
    let backend_pid = nix::unistd::Pid::from_raw(backend);
    nix::sys::signal::kill(backend_pid, nix::sys::signal::Signal::SIGSTOP).unwrap();

    let started = Instant::now();
    let was_running = cluster::stop_within(
        home.path(),
        &ClusterConfig::default(),
        Duration::from_secs(2),
    );
    let took = started.elapsed();
    // Looked at before the cleanup below, which would end it anyway.
    let backend_gone = process_gone(u32::try_from(backend).unwrap());
    // Whatever happened, the frozen backend must not outlive the test.
    let _ = nix::sys::signal::kill(backend_pid, nix::sys::signal::Signal::SIGKILL);
    assert!(was_running.unwrap(), "the cluster was running");
    wait_gone(info.pid);
    assert!(backend_gone, "the frozen backend outlived the stop");
    assert!(!cluster::status(home.path()).unwrap().running);
    // 2 s of fast shutdown, then the postmaster's 5 s grace before it kills the frozen child.
    eprintln!("stopped after {took:?}");
    drop(client);
    drop(rt);

    let after = cluster::ensure_running(home.path()).unwrap();
    assert_eq!(
        query_text(&after, "postgres", "SELECT v::text FROM kept"),
        "11"
    );
}

#[test]
fn pid_file_naming_a_live_non_postgres_process_is_stale() {
    let home = Home::new();
    let info = cluster::ensure_running(home.path()).unwrap();
    assert!(cluster::stop(home.path()).unwrap());
    wait_gone(info.pid);
    // After a crash the recorded PID may be reused by an unrelated live process: this one.
    let fake = format!(
        "{}\n{}\n1700000000\n5432\n{}\n\n  5432001         0\nready   \n",
        std::process::id(),
        info.data_dir.display(),
        info.socket_dir.display()
    );
    fs::write(info.data_dir.join("postmaster.pid"), fake).unwrap();
    // ... and the same for the socket lock file.
    fs::write(
        info.socket_dir.join(".s.PGSQL.5432.lock"),
        format!("{}\n{}\n", std::process::id(), info.data_dir.display()),
    )
    .unwrap();
    let st = cluster::status(home.path()).unwrap();
    assert!(
        !st.running,
        "a pid file naming a non-postgres process is not a running server"
    );

    let after = cluster::ensure_running(home.path()).unwrap();
    assert_ne!(after.pid, std::process::id());
    assert_eq!(query_text(&after, "postgres", "SELECT 'up'::text"), "up");
}

#[test]
fn concurrent_starts_make_one_cluster() {
    let home = Home::new();
    let path = home.path().to_owned();
    let barrier = Arc::new(Barrier::new(3));
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let path = path.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                cluster::ensure_running(&path)
            })
        })
        .collect();
    let infos: Vec<ClusterInfo> = threads
        .into_iter()
        .map(|t| t.join().unwrap().unwrap())
        .collect();
    assert!(infos.iter().all(|i| *i == infos[0]), "{infos:?}");
    let canonical = fs::canonicalize(&path).unwrap();
    assert!(!canonical.join("pgdata.initdb-tmp").exists());
    let postmasters = fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            let p = e.path();
            fs::read_link(p.join("cwd")).ok() == Some(canonical.join("pgdata"))
                && fs::read(p.join("cmdline"))
                    .map(|c| c.windows(2).any(|w| w == b"-D"))
                    .unwrap_or(false)
        })
        .count();
    assert_eq!(postmasters, 1, "exactly one postmaster serves the home");
}

#[test]
fn too_long_home_path_uses_a_short_socket_directory() {
    let home = Home::with_subdir(&format!("{}/{}", "a".repeat(60), "b".repeat(40)));
    let info = cluster::ensure_running(home.path()).unwrap();
    assert!(home.path().join("run/.s.PGSQL.5432").as_os_str().len() > 107);
    assert!(
        info.socket_dir
            .to_string_lossy()
            .starts_with("/tmp/certhist-"),
        "{}",
        info.socket_dir.display()
    );
    assert!(info.socket_path().as_os_str().len() <= 107);
    let mode = fs::metadata(&info.socket_dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "socket directory must be private");
    assert_eq!(query_text(&info, "postgres", "SELECT 'long'::text"), "long");
    let st = cluster::status(home.path()).unwrap();
    assert_eq!(st.socket_dir, info.socket_dir);
    // The same home maps to the same socket directory next time.
    assert_eq!(cluster::ensure_running(home.path()).unwrap(), info);
}

#[test]
fn root_needs_a_home_the_server_account_can_reach() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("not root: nothing to check");
        return;
    }
    // A private (0700) parent directory: the unprivileged server account cannot enter it.
    let home = Home::with_mode("home", 0o700);
    let private = home.dir.path().to_owned();
    assert_eq!(
        fs::metadata(&private).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let err = cluster::ensure_running(home.path()).unwrap_err();
    match &err {
        ClusterError::NotTraversable { dir, .. } => assert_eq!(dir, &private),
        other => panic!("expected NotTraversable, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("chmod o+x {}", private.display())),
        "{msg}"
    );
    assert!(msg.contains("CERTHIST_HOME"), "{msg}");
    assert!(!home.path().join("pgdata").exists(), "nothing initialised");

    // Following the advice fixes it.
    fs::set_permissions(&private, fs::Permissions::from_mode(0o701)).unwrap();
    let info = cluster::ensure_running(home.path()).unwrap();
    assert_eq!(
        query_text(&info, "postgres", "SELECT 'reachable'::text"),
        "reachable"
    );
}

#[test]
fn optional_tcp_listener_and_extra_settings() {
    let home = Home::new();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let options = cluster::StartOptions {
        tcp: Some(addr),
        settings: vec![("work_mem".into(), "7MB".into())],
        ..cluster::StartOptions::default()
    };
    let info = cluster::ensure_running_with(home.path(), &options).unwrap();
    assert_eq!(info.tcp, Some(addr));
    assert_eq!(info.port, port, "the TCP port names the socket too");
    assert!(info.socket_path().exists());
    assert_eq!(
        query_text(&info, "postgres", "SELECT current_setting('work_mem')"),
        "7MB"
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Issue 18: over TCP with the password of the home's password file.
    let password = cluster::tcp_password(home.path()).unwrap();
    let over_tcp: String = rt.block_on(async {
        let mut config = tokio_postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(port)
            .user("certhist")
            .password(password.expose_secret())
            .dbname("postgres");
        let (client, connection) = config.connect(NoTls).await.unwrap();
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
            .query_one("SELECT inet_server_addr()::text", &[])
            .await
            .unwrap()
            .get(0)
    });
    assert_eq!(over_tcp, "127.0.0.1/32");
}

#[test]
fn a_server_that_cannot_start_reports_the_log_tail() {
    let home = Home::new();
    let bad = cluster::StartOptions {
        tcp: None,
        settings: vec![("shared_buffers".into(), "plenty".into())],
        ..cluster::StartOptions::default()
    };
    let err = cluster::ensure_running_with(home.path(), &bad).unwrap_err();
    match &err {
        ClusterError::StartFailed { log_tail, .. } => {
            assert!(log_tail.contains("shared_buffers"), "{log_tail}")
        }
        other => panic!("expected StartFailed, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("postgres.log"), "{msg}");
    assert!(!cluster::status(home.path()).unwrap().running);
    // Fixing the settings is enough: the cluster itself was initialised fine.
    let info = cluster::ensure_running(home.path()).unwrap();
    assert_eq!(
        query_text(&info, "postgres", "SELECT 'fixed'::text"),
        "fixed"
    );
}

/// Writes an executable shell script from a child process, so that no file descriptor of this
/// (multi-threaded, process-spawning) test binary is open on it when it is run (ETXTBSY).
fn write_script(path: &Path, body: &str) {
    let status = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(r#"printf '%s\n' "$1" > "$2" && chmod 755 "$2""#)
        .arg("sh")
        .arg(format!("#!/bin/sh\n{body}"))
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Issue 11: where the server binaries are comes from a typed config, never from the
/// environment: `pg_bindir` first, then the `--bindir` of the first `pg_config` on the search
/// path, then the fixed places, then the search path's own directories.
#[test]
fn binary_directories_come_from_the_config_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let path_dir = tmp.path().join("path");
    fs::create_dir(&path_dir).unwrap();
    write_script(
        &path_dir.join("pg_config"),
        "echo /opt/certhist-test/from-pg-config/bin",
    );
    let config = ClusterConfig {
        pg_bindir: Some(PathBuf::from("/opt/certhist-test/first")),
        search_path: vec![path_dir.clone()],
    };
    let dirs = config.candidate_bindirs();
    assert_eq!(
        dirs[0],
        PathBuf::from("/opt/certhist-test/first"),
        "{dirs:?}"
    );
    assert_eq!(
        dirs[1],
        PathBuf::from("/opt/certhist-test/from-pg-config/bin"),
        "{dirs:?}"
    );
    assert_eq!(dirs.last(), Some(&path_dir), "{dirs:?}");
    assert!(dirs.contains(&PathBuf::from("/usr/local/pgsql/bin")));

    // Without a config none of them is looked at, whatever the environment holds.
    let default = ClusterConfig::default().candidate_bindirs();
    assert!(
        !default
            .iter()
            .any(|d| d.starts_with("/opt/certhist-test") || d == &path_dir),
        "{default:?}"
    );
}

/// Issue 11: a `pg_bindir` holding the server binaries is the one used (here: links to the
/// binaries the default search finds, in a directory of their own).
#[test]
fn the_configured_bindir_serves_the_cluster() {
    let found = cluster::status(Path::new("/nonexistent/certhist-home"))
        .unwrap()
        .bindir
        .expect("PostgreSQL server binaries installed");
    let tmp = tempfile::tempdir().unwrap();
    let links = tmp.path().join("bin");
    fs::create_dir(&links).unwrap();
    for b in ["initdb", "pg_ctl", "postgres"] {
        std::os::unix::fs::symlink(found.join(b), links.join(b)).unwrap();
    }
    let home = Home::new();
    let config = ClusterConfig {
        pg_bindir: Some(links.clone()),
        search_path: Vec::new(),
    };
    let st = cluster::status_with(home.path(), &config).unwrap();
    assert_eq!(st.bindir, Some(links.clone()));
    assert!(st.server_version.unwrap().contains("PostgreSQL"));
    // A directory without them is passed over.
    let empty = ClusterConfig {
        pg_bindir: Some(tmp.path().to_owned()),
        search_path: Vec::new(),
    };
    assert_eq!(
        cluster::status_with(home.path(), &empty).unwrap().bindir,
        Some(found)
    );
}

// ---- Issue 18: no `trust` over TCP; the password of role certhist ----

/// A TCP port that was free a moment ago on 127.0.0.1.
fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().port()
}

/// Connects over TCP as certhist to database postgres (with `password`, or none) and returns
/// `current_user`.
fn tcp_login(addr: SocketAddr, password: Option<&str>) -> Result<String, tokio_postgres::Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut config = tokio_postgres::Config::new();
        config
            .host(addr.ip().to_string())
            .port(addr.port())
            .user("certhist")
            .dbname("postgres");
        if let Some(pw) = password {
            config.password(pw);
        }
        let (client, connection) = config.connect(NoTls).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let row = client.query_one("SELECT current_user::text", &[]).await?;
        Ok(row.get(0))
    })
}

/// The `pg_hba.conf` an older certhist left behind: `initdb --auth=trust` writes this (PostgreSQL
/// 16/17), `trust` for the loopback TCP addresses included.
const OLD_TRUST_HBA: &str = "\
# TYPE  DATABASE        USER            ADDRESS                 METHOD

# \"local\" is for Unix domain socket connections only
local   all             all                                     trust
# IPv4 local connections:
host    all             all             127.0.0.1/32            trust
# IPv6 local connections:
host    all             all             ::1/128                 trust
# Allow replication connections from local, by a user with the
# replication privilege.
local   replication     all                                     trust
host    replication     all             127.0.0.1/32            trust
host    replication     all             ::1/128                 trust
";

/// The TCP rules of the cluster's pg_hba.conf.
fn tcp_rules(info: &ClusterInfo) -> Vec<cluster::HbaRule> {
    let text = fs::read_to_string(info.data_dir.join("pg_hba.conf")).unwrap();
    cluster::parse_hba(&text)
        .into_iter()
        .filter(|r| r.is_tcp())
        .collect()
}

/// Command lines and environments of the server processes of `data_dir`.
fn server_process_texts(data_dir: &Path) -> Vec<Vec<u8>> {
    let want = fs::canonicalize(data_dir).unwrap();
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| fs::read_link(e.path().join("cwd")).ok().as_deref() == Some(want.as_path()))
        .filter_map(|e| {
            let mut text = fs::read(e.path().join("cmdline")).ok()?;
            text.extend(fs::read(e.path().join("environ")).unwrap_or_default());
            Some(text)
        })
        .collect()
}

/// An error and its sources, joined.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Issue 18: TCP asks for the password (SCRAM-SHA-256), which lives only in the home's 0600
/// password file; the server stores a verifier; the password is in no log, process title,
/// environment or `Debug` output; psql reads it through `passfile=`; a restart keeps it.
#[test]
fn tcp_listener_requires_the_password() {
    let home = Home::new();
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let options = cluster::StartOptions {
        tcp: Some(addr),
        ..cluster::StartOptions::default()
    };
    let info = cluster::ensure_running_with(home.path(), &options).unwrap();
    assert_eq!(
        info.passfile,
        fs::canonicalize(home.path()).unwrap().join("pgpass")
    );
    let meta = fs::metadata(&info.passfile).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.uid(), nix::unistd::geteuid().as_raw());
    let password = cluster::tcp_password(home.path()).unwrap();
    let pw = password.expose_secret().to_owned();
    assert_eq!(pw.len(), 64, "256 bits, hex");
    let text = fs::read_to_string(&info.passfile).unwrap();
    assert!(
        text.lines().any(|l| l == format!("*:*:*:certhist:{pw}")),
        "libpq password-file line"
    );

    let err = error_chain(&tcp_login(addr, None).unwrap_err());
    assert!(err.contains("password missing"), "{err}");
    let err = tcp_login(addr, Some("not-the-password")).unwrap_err();
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::INVALID_PASSWORD),
        "{err}"
    );
    assert_eq!(tcp_login(addr, Some(&pw)).unwrap(), "certhist");
    // The URL with the password inline works with tokio-postgres.
    let url = info.tcp_url_with_password("postgres", &password).unwrap();
    let parsed = tokio_postgres::Config::from_str(url.expose_secret()).unwrap();
    assert_eq!(parsed.get_hosts(), &[Host::Tcp("127.0.0.1".into())]);
    assert_eq!(parsed.get_ports(), &[addr.port()]);
    assert_eq!(parsed.get_password(), Some(pw.as_bytes()));

    // Every TCP line, replication included, is SCRAM; the socket stays trust.
    let rules = tcp_rules(&info);
    assert!(rules.iter().any(|r| r.database == "replication"));
    assert!(
        rules.iter().all(|r| r.method == "scram-sha-256"),
        "{rules:?}"
    );
    let stored = query_text(
        &info,
        "postgres",
        "SELECT rolpassword FROM pg_authid WHERE rolname = 'certhist'",
    );
    assert!(stored.starts_with("SCRAM-SHA-256$4096:"), "{stored}");
    assert!(!stored.contains(&pw));

    let st = cluster::status(home.path()).unwrap();
    assert_eq!(st.listeners.len(), 2, "{:?}", st.listeners);
    let unix = &st.listeners[0];
    assert_eq!(unix.kind, cluster::ListenerKind::Unix);
    assert_eq!(unix.address, info.socket_path().display().to_string());
    assert!(unix
        .authentication
        .iter()
        .all(|r| r.connection_type == "local" && r.method == "trust"));
    let tcp = &st.listeners[1];
    assert_eq!(tcp.kind, cluster::ListenerKind::Tcp);
    assert_eq!(tcp.address, addr.to_string());
    assert!(tcp.authentication.iter().any(|r| {
        r.address.as_deref() == Some("127.0.0.1/32")
            && r.database == "all"
            && r.method == "scram-sha-256"
    }));

    // psql (libpq) reads the password from the file named in the URL.
    let psql = Path::new("/usr/bin/psql");
    if psql.exists() {
        let url = info.tcp_url("postgres").unwrap();
        assert_eq!(
            url,
            format!(
                "postgresql://certhist@{addr}/postgres?passfile={}",
                info.passfile.display()
            )
        );
        let out = std::process::Command::new(psql)
            .arg(&url)
            .args(["-wXAtc", "SELECT current_user"])
            .env_remove("PGPASSWORD")
            .env_remove("PGPASSFILE")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "certhist");
    } else {
        eprintln!("psql not installed: skipping the psql half of this test");
    }

    // The password is nowhere else.
    let processes = server_process_texts(&info.data_dir);
    assert!(!processes.is_empty());
    assert!(processes.iter().all(|p| !contains(p, &pw)));
    let debug = format!("{info:?} {st:?} {options:?} {password:?}");
    assert!(!debug.contains(&pw), "{debug}");
    assert!(!fs::read_to_string(&info.log_file).unwrap().contains(&pw));

    // A restart keeps the password.
    assert!(cluster::stop(home.path()).unwrap());
    wait_gone(info.pid);
    let again = cluster::ensure_running_with(home.path(), &options).unwrap();
    assert_eq!(
        cluster::tcp_password(home.path()).unwrap().expose_secret(),
        pw
    );
    assert_eq!(tcp_login(addr, Some(&pw)).unwrap(), "certhist");
    assert!(!fs::read_to_string(&again.log_file).unwrap().contains(&pw));
}

/// Issue 18: a stopped cluster of an older certhist (`trust` TCP lines, no password) is upgraded
/// on its next start; its data stays.
#[test]
fn a_stopped_trust_cluster_is_upgraded_on_start() {
    let home = Home::new();
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let options = cluster::StartOptions {
        tcp: Some(addr),
        ..cluster::StartOptions::default()
    };
    let info = cluster::ensure_running_with(home.path(), &options).unwrap();
    batch(
        &info,
        "SET synchronous_commit = on; CREATE TABLE kept (v text); INSERT INTO kept VALUES ('old data'); ALTER ROLE certhist PASSWORD NULL",
    );
    assert!(cluster::stop(home.path()).unwrap());
    wait_gone(info.pid);
    // What the older certhist left: initdb's trust file, no password file.
    fs::write(info.data_dir.join("pg_hba.conf"), OLD_TRUST_HBA).unwrap();
    fs::remove_file(&info.passfile).unwrap();
    assert!(tcp_rules(&info).iter().any(|r| r.method == "trust"));

    let after = cluster::ensure_running_with(home.path(), &options).unwrap();
    let rules = tcp_rules(&after);
    assert!(!rules.is_empty());
    assert!(
        rules.iter().all(|r| r.method == "scram-sha-256"),
        "{rules:?}"
    );
    let meta = fs::metadata(&after.passfile).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(
        query_text(&after, "postgres", "SELECT v FROM kept"),
        "old data"
    );
    let pw = cluster::tcp_password(home.path()).unwrap();
    assert!(tcp_login(addr, None).is_err());
    assert_eq!(
        tcp_login(addr, Some(pw.expose_secret())).unwrap(),
        "certhist"
    );
}

/// Issue 18: a server of an older certhist that is still running (trust over TCP) is upgraded in
/// place by the next certhist that uses it: pg_hba.conf rewritten, password set, reloaded.
#[test]
fn a_running_trust_cluster_is_upgraded_in_place() {
    let home = Home::new();
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let options = cluster::StartOptions {
        tcp: Some(addr),
        ..cluster::StartOptions::default()
    };
    let info = cluster::ensure_running_with(home.path(), &options).unwrap();
    // Turn it into what an older certhist runs: trust over TCP, no password, no password file.
    fs::write(info.data_dir.join("pg_hba.conf"), OLD_TRUST_HBA).unwrap();
    fs::remove_file(&info.passfile).unwrap();
    batch(
        &info,
        "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('live data'); ALTER ROLE certhist PASSWORD NULL; SELECT pg_reload_conf()",
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while tcp_login(addr, None).is_err() {
        assert!(Instant::now() < deadline, "the trust file was never loaded");
        std::thread::sleep(Duration::from_millis(50));
    }

    let after = cluster::ensure_running(home.path()).unwrap();
    assert_eq!(after.pid, info.pid, "upgraded in place, not restarted");
    assert!(tcp_rules(&after)
        .iter()
        .all(|r| r.method == "scram-sha-256"));
    let err = error_chain(&tcp_login(addr, None).unwrap_err());
    assert!(err.contains("password missing"), "{err}");
    let pw = cluster::tcp_password(home.path()).unwrap();
    assert_eq!(
        tcp_login(addr, Some(pw.expose_secret())).unwrap(),
        "certhist"
    );
    assert_eq!(
        query_text(&after, "postgres", "SELECT v FROM kept"),
        "live data"
    );
}

/// Issue 18: a non-loopback listen address needs the networks allowed to connect; those get
/// SCRAM lines.
#[test]
fn non_loopback_listen_needs_allow_remote() {
    let home = Home::new();
    let port = free_port();
    let any = SocketAddr::from(([0, 0, 0, 0], port));
    let refused = cluster::StartOptions {
        tcp: Some(any),
        ..cluster::StartOptions::default()
    };
    let err = cluster::ensure_running_with(home.path(), &refused).unwrap_err();
    assert!(
        matches!(err, ClusterError::RemoteNotAllowed { address } if address == any),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("--allow-remote CIDR"), "{msg}");
    assert!(!home.path().join("pgdata").exists(), "nothing initialised");

    let net: ipnet::IpNet = "192.0.2.0/24".parse().unwrap();
    let allowed = cluster::StartOptions {
        tcp: Some(any),
        allow_remote: vec![net],
        ..cluster::StartOptions::default()
    };
    let info = cluster::ensure_running_with(home.path(), &allowed).unwrap();
    let rules = tcp_rules(&info);
    for db in ["all", "replication"] {
        assert!(
            rules
                .iter()
                .any(|r| r.address.as_deref() == Some("192.0.2.0/24")
                    && r.database == db
                    && r.method == "scram-sha-256"),
            "{rules:?}"
        );
    }
    assert!(rules.iter().all(|r| r.method == "scram-sha-256"));
    // The owner on this host connects through loopback, with the password.
    let local = info.tcp_connect_addr().unwrap();
    assert_eq!(local, SocketAddr::from(([127, 0, 0, 1], port)));
    let pw = cluster::tcp_password(home.path()).unwrap();
    assert!(tcp_login(local, None).is_err());
    assert_eq!(
        tcp_login(local, Some(pw.expose_secret())).unwrap(),
        "certhist"
    );
}
