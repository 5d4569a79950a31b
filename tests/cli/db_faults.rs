//! The database killed under a running import: `certhist import observations` while the
//! postmaster of a cluster of this test's own (not the shared test cluster) is SIGKILLed. The
//! command must stop with a clear message and a non-zero exit (no hang, no panic), and after the
//! cluster is restarted a re-run must leave the same observations as one clean run (checksum
//! over every row, counts and sum of sightings: no duplicates, no gaps). The same for
//! `certhist ingest ct` against the loopback static-CT log of ct.rs, and for `import sonar`,
//! `import zeek` and `import certs` (`killed_mid_import`); a full data or WAL disk for
//! `import observations`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use certhist_store::cluster::{self, ClusterInfo, StartOptions};

const ROWS: u32 = 200_000;

fn start_cluster(home: &Path) -> ClusterInfo {
    start_cluster_with(home, &[])
}

/// Starts (or restarts) the cluster under `home` with `fsync = off` and `extra` settings.
fn start_cluster_with(home: &Path, extra: &[(&str, &str)]) -> ClusterInfo {
    let mut settings = vec![("fsync".to_owned(), "off".to_owned())];
    settings.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let options = StartOptions {
        settings,
        cluster: certhist_test_support::test_cluster_config(),
        ..StartOptions::default()
    };
    // Backends of a killed postmaster exit on their own; until then a new one cannot start.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match cluster::ensure_running_with(home, &options) {
            Ok(info) => return info,
            Err(e) if Instant::now() < deadline => {
                eprintln!("cluster not startable yet: {e}");
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => panic!("cluster did not restart: {e}"),
        }
    }
}

/// A cluster of the test's own under `$TMPDIR/certhist-{name}-fault-PID` (removed when the guard
/// drops) with two databases: `crashed` (the run that is interrupted) and `clean` (the reference).
async fn fault_cluster(name: &str) -> (PathBuf, ClusterGuard, ClusterInfo) {
    let tmp = std::env::var_os("TMPDIR").unwrap_or_else(|| "/tmp".into());
    let home = Path::new(&tmp).join(format!("certhist-{name}-fault-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let guard = ClusterGuard(home.clone());
    let h = home.clone();
    let info = tokio::task::spawn_blocking(move || start_cluster(&h))
        .await
        .unwrap();
    for db in ["crashed", "clean"] {
        certhist_store::ensure_database(&info.pg_config(db))
            .await
            .unwrap();
    }
    (home, guard, info)
}

/// Stops the test's cluster and removes its directory when the test ends, passed or not.
struct ClusterGuard(PathBuf);

impl Drop for ClusterGuard {
    fn drop(&mut self) {
        let _ = cluster::stop_with(&self.0, &certhist_test_support::test_cluster_config());
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Waits (off the runtime thread, which may be serving a loopback log) for a child, at most
/// `secs`: a hang is a failure.
async fn wait_bounded(child: std::process::Child, secs: u64, what: &str) -> std::process::Output {
    let what = what.to_owned();
    tokio::task::spawn_blocking(move || {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        rx.recv_timeout(Duration::from_secs(secs))
            .unwrap_or_else(|_| panic!("{what} hung for {secs} s after the database was killed"))
            .unwrap()
    })
    .await
    .unwrap()
}

/// SIGKILL to the cluster's postmaster (its backends notice and exit; nothing is shut down).
fn kill_postmaster(info: &ClusterInfo) {
    let killed = Command::new("kill")
        .args(["-KILL", &info.pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success(), "kill -KILL {}", info.pid);
}

/// Asserts a command that lost its database failed with the clear message and no panic.
fn assert_clear_unavailable_failure(out: &std::process::Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exit status {}", out.status);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("the database connection was lost or refused")
            && stderr.contains("run the same command again"),
        "the message says what happened and what to do: {stderr}"
    );
}

/// Per table of the public schema: (table, rows, md5 over every row in primary-key order).
/// Columns filled by `now()` or a sequence, and the `…_at` times of the run (`updated_at`,
/// `started_at`, `finished_at`), are left out: they differ between two runs of the same data by
/// design (when it ran; sequence values a rolled-back batch consumed). Data times
/// (`first_seen`, `entry_timestamp`, …) are compared.
async fn database_digest(info: &ClusterInfo, dbname: &str) -> Vec<(String, i64, String)> {
    let c = connect(info, dbname).await;
    let tables = c
        .query(
            "SELECT c.relname,
                    (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
                       FROM pg_attribute a
                       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                      WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                        AND coalesce(pg_get_expr(d.adbin, d.adrelid), '') !~* '(now|nextval|clock_timestamp|current_timestamp)'
                        AND a.attidentity = ''
                        AND a.attname !~ '_at$'),
                    (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.ord)
                       FROM pg_index i
                       CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
                      WHERE i.indrelid = c.oid AND i.indisprimary
                     HAVING bool_and(a.attidentity = ''))
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
              ORDER BY c.relname",
            &[],
        )
        .await
        .unwrap();
    let mut out = Vec::new();
    for t in tables {
        let (name, cols, key): (String, Option<String>, Option<String>) =
            (t.get(0), t.get(1), t.get(2));
        // Generated ids (cert_keys, source_sets) depend on the order of writes, not on the data:
        // sightings are compared as the `observations` view shows them.
        let (name, cols, key) = if name == "sightings" {
            (
                "observations".to_owned(),
                Some("ip, port, sha1, first_seen, last_seen, times_seen, sources".to_owned()),
                Some("ip, port, sha1".to_owned()),
            )
        } else {
            (name, cols, key)
        };
        // A table of generated columns only is compared by its count.
        let cols = cols.unwrap_or_else(|| "NULL".to_owned());
        // Without a primary key, the whole row text is the order.
        let order = key.unwrap_or_else(|| format!("ROW({cols})::text"));
        let q = format!(
            "SELECT count(*), coalesce(md5(string_agg(ROW({cols})::text, E'\\n' ORDER BY {order})), '')
               FROM {table}",
            table = format_ident(&name),
        );
        let r = c.query_one(&q, &[]).await.unwrap();
        out.push((name, r.get(0), r.get(1)));
    }
    out
}

fn format_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn conninfo(info: &ClusterInfo, dbname: &str) -> String {
    format!(
        "host={} port={} user={} dbname={dbname}",
        info.socket_dir.display(),
        info.port,
        info.user
    )
}

async fn connect(info: &ClusterInfo, dbname: &str) -> tokio_postgres::Client {
    let (c, conn) = info
        .pg_config(dbname)
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    c
}

/// (rows, sum of times_seen, md5 over every row in key order).
async fn digest(info: &ClusterInfo, dbname: &str) -> (i64, i64, String) {
    let c = connect(info, dbname).await;
    let r = c
        .query_one(
            "SELECT count(*), coalesce(sum(times_seen), 0)::bigint,
                    md5(coalesce(string_agg(host(ip) || port || encode(sha1,'hex') || first_seen || last_seen || times_seen, ',' ORDER BY ip, port, sha1), ''))
             FROM observations",
            &[],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1), r.get(2))
}

/// A gzipped observations CSV of `rows` distinct keys, one sighting each: a lost batch lowers
/// the count, a repeated one raises the sum of sightings.
fn write_observations(path: &Path, rows: u32) {
    let file = std::fs::File::create(path).unwrap();
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    for i in 0..rows {
        let ip = format!("10.{}.{}.{}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
        writeln!(
            gz,
            "{ip},443,{:040x},{},{},1,bench",
            i,
            1_700_000_000 + i,
            1_700_000_000 + i
        )
        .unwrap();
    }
    gz.finish().unwrap();
}

#[tokio::test]
async fn an_import_whose_database_is_killed_fails_clearly_and_a_rerun_equals_a_clean_run() {
    let (home, _guard, info) = fault_cluster("import").await;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.csv.gz");
    write_observations(&path, ROWS);
    let p = path.to_str().unwrap().to_owned();
    let import = |dbname: &str| {
        Command::new(env!("CARGO_BIN_EXE_certhist"))
            .args(["import", "observations", &p, "--batch-size", "2000"])
            .env("DATABASE_URL", conninfo(&info, dbname))
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };

    // Kill the postmaster once the import has committed some batches.
    let child = import("crashed");
    let c = connect(&info, "crashed").await;
    let started = Instant::now();
    loop {
        let done: Option<i64> = c
            .query_opt("SELECT rows_done FROM imported_files", &[])
            .await
            .ok()
            .flatten()
            .map(|r| r.get(0));
        if done.is_some_and(|d| d > 0) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the import committed nothing in 120 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(c);
    kill_postmaster(&info);
    // The import must end by itself (bounded), with a non-zero exit and a clear message.
    let out = wait_bounded(child, 120, "certhist import observations").await;
    assert_clear_unavailable_failure(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("import during the kill: {} — {}", out.status, stderr.trim());

    let h = home.clone();
    let restarted = tokio::task::spawn_blocking(move || start_cluster(&h))
        .await
        .unwrap();
    assert_ne!(restarted.pid, info.pid);
    // Re-run and clean run, each checked by exit status.
    for db in ["crashed", "clean"] {
        let o = Command::new(env!("CARGO_BIN_EXE_certhist"))
            .args(["import", "observations", &p, "--batch-size", "2000"])
            .env("DATABASE_URL", conninfo(&restarted, db))
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{db}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let crashed = digest(&restarted, "crashed").await;
    let clean = digest(&restarted, "clean").await;
    let h = home.clone();
    tokio::task::spawn_blocking(move || {
        let _ = cluster::stop_with(&h, &certhist_test_support::test_cluster_config());
    })
    .await
    .unwrap();
    let _ = std::fs::remove_dir_all(&home);
    assert_eq!(clean.0, i64::from(ROWS));
    assert_eq!(clean.1, i64::from(ROWS));
    assert_eq!(crashed, clean);
}

/// `certhist ingest ct --log URL --kind static --public-key KEY --batch-entries 256` on `dbname`.
fn ingest_ct(info: &ClusterInfo, dbname: &str, url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_certhist"));
    cmd.args([
        "--json",
        "ingest",
        "ct",
        "--log",
        url,
        "--kind",
        "static",
        "--public-key",
        &crate::ct::b64(&crate::ct::log_server::public_key_der()),
        "--batch-entries",
        "256",
    ])
    .env("DATABASE_URL", conninfo(info, dbname))
    .env_remove("RUST_LOG")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd
}

/// Runs a command to its end off the runtime thread (the loopback log lives on this runtime).
async fn run_ok(mut cmd: Command, what: &str) -> std::process::Output {
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[tokio::test]
async fn a_ct_ingest_whose_database_is_killed_fails_clearly_and_a_rerun_equals_a_clean_run() {
    let (home, _guard, info) = fault_cluster("ct").await;
    let srv = crate::ct::log_server::start(1024, crate::ct::NAVIGLI_ROOT_1024).await;
    // Tiles 1–3 are held back: the ingest commits tile 0 (256 entries), then waits for tile 1.
    srv.held
        .lock()
        .unwrap()
        .extend(["/tile/data/001", "/tile/data/002", "/tile/data/003"].map(str::to_owned));
    let mut child = ingest_ct(&info, "crashed", &srv.url).spawn().unwrap();
    let c = connect(&info, "crashed").await;
    let started = Instant::now();
    let committed = loop {
        let d: Option<i64> = c
            .query_opt("SELECT downloaded_position FROM ct_logs", &[])
            .await
            .ok()
            .flatten()
            .map(|r| r.get(0));
        if let Some(d) = d.filter(|d| *d > 0) {
            break d;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("certhist ingest ct exited early: {status}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the CT ingest committed nothing in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(committed, 256, "tile 0 only");
    // The cluster runs with synchronous_commit = off (docs/ARCHITECTURE.md: a crash may lose the
    // last few hundred milliseconds of commits). A synchronous commit flushes the WAL up to here,
    // so the batch seen committed survives the kill and the re-run must resume after it.
    c.batch_execute(
        "BEGIN; SET LOCAL synchronous_commit = on; CREATE TEMP TABLE flush_wal (); COMMIT;",
    )
    .await
    .unwrap();
    drop(c);
    kill_postmaster(&info);
    // The log answers again: the next batch finds the database gone.
    srv.held.lock().unwrap().clear();
    let out = wait_bounded(child, 120, "certhist ingest ct").await;
    assert_clear_unavailable_failure(&out);
    eprintln!(
        "CT ingest during the kill: {} — {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );

    let h = home.clone();
    let restarted = tokio::task::spawn_blocking(move || start_cluster(&h))
        .await
        .unwrap();
    assert_ne!(restarted.pid, info.pid);
    // What survived the kill is consistent: entries exactly up to the committed cursor.
    let c = connect(&restarted, "crashed").await;
    let r = c
        .query_one(
            "SELECT (SELECT count(*) FROM ct_entries), downloaded_position, verified_position FROM ct_logs",
            &[],
        )
        .await
        .unwrap();
    let (n, downloaded, verified): (i64, i64, i64) = (r.get(0), r.get(1), r.get(2));
    assert_eq!((n, downloaded, verified), (256, 256, 256));
    drop(c);

    let rerun = run_ok(ingest_ct(&restarted, "crashed", &srv.url), "re-run").await;
    let line: serde_json::Value = serde_json::from_slice(&rerun.stdout).unwrap();
    assert_eq!(line["entries"], 1024 - 256);
    assert_eq!(line["verified_position"], 1024);
    run_ok(ingest_ct(&restarted, "clean", &srv.url), "clean run").await;

    let crashed = database_digest(&restarted, "crashed").await;
    let clean = database_digest(&restarted, "clean").await;
    let rows = |d: &[(String, i64, String)], t: &str| {
        d.iter().find(|(n, _, _)| n == t).map(|(_, c, _)| *c)
    };
    // Independent of the digest: 1024 entries, their 1024 precertificates and 5 issuers.
    assert_eq!(rows(&clean, "ct_entries"), Some(1024));
    assert_eq!(rows(&clean, "certificates"), Some(1029));
    assert_eq!(rows(&clean, "ct_logs"), Some(1));
    assert_same_tables(&crashed, &clean);
}

/// Set to 1 to skip the full-disk test where a tmpfs cannot be mounted (not root, no
/// CAP_SYS_ADMIN); without it such a machine fails the test rather than passing it unseen.
const NO_TMPFS_ENV: &str = "CERTHIST_TEST_NO_TMPFS";

/// A tmpfs mounted on the cluster's home: on drop, the cluster is stopped, the tmpfs unmounted
/// and the directory removed.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` on `dir` (created); `None` when mounting is not permitted and
    /// the environment opts out.
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "certhist-full-disk",
            ])
            .arg(dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs(dir.to_owned())),
            other => {
                let why = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_owned(),
                    Err(e) => e.to_string(),
                };
                let _ = std::fs::remove_dir(dir);
                if std::env::var(NO_TMPFS_ENV).is_ok_and(|v| v == "1") {
                    eprintln!("SKIPPED: cannot mount a tmpfs ({why}) and {NO_TMPFS_ENV}=1");
                    return None;
                }
                panic!(
                    "the full-disk test mounts a tmpfs and cannot here ({why}); run it as root \
                     (or with CAP_SYS_ADMIN), or set {NO_TMPFS_ENV}=1 to skip it"
                );
            }
        }
    }

    /// Grows (or shrinks) the tmpfs in place: `mount -o remount,size=…`.
    fn resize(&self, size: &str) {
        let o = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "remount: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// (used, size) in bytes, as statvfs reports them (`df -B1`).
    fn usage(&self) -> (u64, u64) {
        let o = Command::new("df")
            .args(["-B1", "--output=used,size"])
            .arg(&self.0)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        let nums: Vec<u64> = text
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect();
        (nums[0], nums[1])
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = cluster::stop_with(&self.0, &certhist_test_support::test_cluster_config());
        let ok = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Rows of the full-disk import: about 75 MB of table and indexes, far more than the space
/// left free on the small tmpfs.
const FULL_ROWS: u32 = 300_000;
/// What the tmpfs leaves free for the import before it is full.
const FREE_BYTES: u64 = 40 << 20;

/// The data directory on a small tmpfs, its WAL on the larger disk (as `initdb --waldir` puts
/// it): the tables fill the disk, PostgreSQL refuses the batch with SQLSTATE 53100 and keeps
/// running.
#[tokio::test]
async fn an_import_onto_a_full_data_disk_fails_clearly_and_resumes_once_space_is_freed() {
    full_disk(false).await;
}

/// The whole cluster, WAL included, on the small tmpfs: when PostgreSQL cannot write its WAL it
/// stops itself (PANIC), so certhist sees the connection lost (or, when a table file runs out
/// first, the disk-full error); the cluster recovers once space is freed.
#[tokio::test]
async fn an_import_onto_a_full_wal_disk_fails_clearly_and_resumes_once_space_is_freed() {
    full_disk(true).await;
}

async fn full_disk(wal_on_tmpfs: bool) {
    let tmp = std::env::var_os("TMPDIR").unwrap_or_else(|| "/tmp".into());
    let tag = if wal_on_tmpfs { "wal" } else { "data" };
    let home = Path::new(&tmp).join(format!("certhist-full-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let Some(fs) = Tmpfs::mount(&home, "1g") else {
        return;
    };
    let wal_home = tempfile::tempdir().unwrap();
    // Small WAL (recycled at checkpoints).
    let settings = [("max_wal_size", "48MB"), ("min_wal_size", "32MB")];
    let h = home.clone();
    let info = tokio::task::spawn_blocking(move || start_cluster_with(&h, &settings))
        .await
        .unwrap();
    certhist_store::ensure_database(&info.pg_config("certhist"))
        .await
        .unwrap();
    let info = if wal_on_tmpfs {
        info
    } else {
        // Move pg_wal off the tmpfs and leave a symbolic link, as `initdb --waldir` does.
        let h = home.clone();
        let wal = wal_home.path().join("pg_wal");
        tokio::task::spawn_blocking(move || {
            cluster::stop_with(&h, &certhist_test_support::test_cluster_config()).unwrap();
            let pg_wal = h.join("pgdata/pg_wal");
            let o = Command::new("mv").arg(&pg_wal).arg(&wal).output().unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            std::os::unix::fs::symlink(&wal, &pg_wal).unwrap();
            // The server's account must reach the WAL directory.
            let o = Command::new("chmod")
                .arg("0755")
                .arg(wal.parent().unwrap())
                .output()
                .unwrap();
            assert!(o.status.success());
            start_cluster_with(&h, &settings)
        })
        .await
        .unwrap()
    };
    let (used, _) = fs.usage();
    fs.resize(&format!("{}", used + FREE_BYTES));
    eprintln!(
        "tmpfs: {} MB used, {} MB free for the import",
        used >> 20,
        FREE_BYTES >> 20
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("full.csv.gz");
    write_observations(&path, FULL_ROWS);
    let p = path.to_str().unwrap().to_owned();
    // Database `certhist` through `--home` (the managed cluster, whose server log certhist reads
    // when the connection goes away), `clean` through DATABASE_URL.
    let import = |info: &ClusterInfo, dbname: &str| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_certhist"));
        if dbname == "certhist" {
            command.arg("--home").arg(&home).env_remove("DATABASE_URL");
        } else {
            command.env("DATABASE_URL", conninfo(info, dbname));
        }
        command
            .args(["import", "observations", &p, "--batch-size", "5000"])
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let out = wait_bounded(
        import(&info, "certhist"),
        300,
        "the import onto a full disk",
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "import onto the full disk: {} — {}",
        out.status,
        stderr.trim()
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    if stderr.contains("could not extend file") {
        // A table file could not grow: PostgreSQL's own words ("could not extend file …: No
        // space left on device", or "wrote only 4096 of 8192 bytes" when the last page fits
        // half) and its hint; the server keeps running.
        assert!(
            stderr.contains("Check free disk space"),
            "the message names the cause: {stderr}"
        );
    } else {
        // The WAL could not be written first (only possible with the WAL on the tmpfs): the
        // server stopped itself (PANIC) and closed the connection; certhist quotes its log.
        // (Which of WAL and table files runs out first varies from run to run.)
        assert!(wal_on_tmpfs, "{stderr}");
        assert!(
            stderr.contains("the database server stopped; its log (")
                && stderr.contains("PANIC:")
                && stderr.contains("No space left on device"),
            "the message quotes the server log: {stderr}"
        );
    }
    assert!(
        stderr.contains("disk is full") && stderr.contains("run the same command again"),
        "the message says what to do: {stderr}"
    );
    let (used_full, size_full) = fs.usage();
    eprintln!(
        "tmpfs at the failure: {} of {} MB",
        used_full >> 20,
        size_full >> 20
    );

    // Space freed: the tmpfs grows; the cluster restarts (crash recovery if it went down).
    fs.resize("2g");
    // A fast shutdown sent while the server is in crash recovery after a checkpointer PANIC
    // can fail to finish (seen once in CI, 2026-12-04): `stop_with` then stops it immediately,
    // one more crash for the restart's recovery, which the checks below see.
    let h = home.clone();
    tokio::task::spawn_blocking(move || {
        cluster::stop_with(&h, &certhist_test_support::test_cluster_config()).unwrap()
    })
    .await
    .unwrap();
    let h = home.clone();
    let info = tokio::task::spawn_blocking(move || start_cluster_with(&h, &settings))
        .await
        .unwrap();
    // Nothing partial: every row is in a committed batch, and the file's cursor counts them.
    let c = connect(&info, "certhist").await;
    let r = c
        .query_one(
            "SELECT (SELECT count(*) FROM observations),
                    (SELECT coalesce(sum(rows_done), 0)::bigint FROM imported_files)",
            &[],
        )
        .await
        .unwrap();
    let (rows, done): (i64, i64) = (r.get(0), r.get(1));
    eprintln!("after the restart: {rows} rows stored, cursor at {done}");
    assert_eq!(rows, done, "rows beyond the committed cursor");
    assert_eq!(rows % 5000, 0, "a partial batch: {rows}");
    assert!(
        rows < i64::from(FULL_ROWS),
        "the import did not stop on the full disk"
    );
    // Nothing corrupted: amcheck verifies every B-tree index of the database against its
    // table (heapallindexed: each heap tuple has its index entry).
    c.batch_execute("CREATE EXTENSION IF NOT EXISTS amcheck")
        .await
        .unwrap();
    let checked: i64 = c
        .query_one(
            "SELECT count(bt_index_check(i.indexrelid, true))
               FROM pg_index i JOIN pg_class r ON r.oid = i.indexrelid
               JOIN pg_am a ON a.oid = r.relam JOIN pg_namespace n ON n.oid = r.relnamespace
              WHERE a.amname = 'btree' AND n.nspname = 'public'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(checked > 0);
    c.batch_execute("DROP EXTENSION amcheck").await.unwrap();
    drop(c);

    certhist_store::ensure_database(&info.pg_config("clean"))
        .await
        .unwrap();
    for db in ["certhist", "clean"] {
        let out = wait_bounded(import(&info, db), 300, "an import after freeing space").await;
        assert!(
            out.status.success(),
            "{db}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let resumed = digest(&info, "certhist").await;
    let clean = digest(&info, "clean").await;
    assert_eq!(clean.0, i64::from(FULL_ROWS));
    assert_eq!(clean.1, i64::from(FULL_ROWS));
    assert_eq!(resumed, clean);
    let resumed = database_digest(&info, "certhist").await;
    let clean = database_digest(&info, "clean").await;
    assert_same_tables(&resumed, &clean);
    drop(fs);
}

/// The same for a scan-file import: `certhist import sonar` of the real 10,000-line Sonar hosts
/// file (tests/data/scans/crocs-muni__cevast), in batches of 10.
#[tokio::test]
async fn a_scan_file_import_whose_database_is_killed_fails_clearly_and_a_rerun_equals_a_clean_run()
{
    let hosts = crate::support::data("scans/crocs-muni__cevast/10000-hosts.gz");
    let p = hosts.to_str().unwrap();
    let args = [
        "import", "sonar", "--hosts", p, "--date", "20200608", "--batch", "10",
    ];
    let run = killed_mid_import(
        "scan",
        &args,
        "SELECT rows_done FROM imported_files",
        "imported_files",
    )
    .await;
    // 10,000 sightings (counted independently in scan_import.rs), each once.
    let clean = digest(&run.restarted, "clean").await;
    assert_eq!(clean.1, 10_000);
    assert_eq!(digest(&run.restarted, "crashed").await, clean);
    run.assert_same_tables();
}

/// The same for a passive sensor log: `certhist import zeek` of the real 49,483-line Zeek
/// ssl.log of brimdata/zed-sample-data (with its x509.log), in batches of 100.
#[tokio::test]
async fn a_zeek_import_whose_database_is_killed_fails_clearly_and_a_rerun_equals_a_clean_run() {
    let dir = crate::support::data("passive/logs/brimdata__zed-sample-data/zeek-default");
    let args = ["import", "zeek", dir.to_str().unwrap(), "--batch", "100"];
    let run = killed_mid_import(
        "zeek",
        &args,
        "SELECT rows_done FROM imported_files",
        "imported_files",
    )
    .await;
    run.assert_same_tables();
    // Its certificates are known by SHA-256 only (no x509.log hashes): sightings by SHA-256.
    assert!(run.rows("observations_sha256") > 0, "{:?}", run.clean);
}

/// The same for certificate files: `certhist import certs` of one PEM bundle holding the
/// PEM files of tests/data/certs 40 times over (duplicates are merged), in batches of 10.
#[tokio::test]
async fn a_certificate_import_whose_database_is_killed_fails_clearly_and_a_rerun_equals_a_clean_run(
) {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle.pem");
    let mut pems = String::new();
    for entry in walk(&crate::support::data("certs")) {
        if let Ok(text) = std::fs::read_to_string(&entry) {
            if text.contains("-----BEGIN CERTIFICATE-----") {
                pems.push_str(&text);
                pems.push('\n');
            }
        }
    }
    assert!(!pems.is_empty());
    std::fs::write(&bundle, pems.repeat(40)).unwrap();
    let args = [
        "import",
        "certs",
        bundle.to_str().unwrap(),
        "--batch-size",
        "10",
    ];
    let run = killed_mid_import(
        "certs",
        &args,
        "SELECT count(*) FROM certificates",
        "certificates",
    )
    .await;
    run.assert_same_tables();
    assert!(run.rows("certificates") > 100, "{:?}", run.clean);
}

/// Files under `dir`, recursively.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Every table of `resumed` (a digest of [`database_digest`]) equals the clean run's.
fn assert_same_tables(resumed: &[(String, i64, String)], clean: &[(String, i64, String)]) {
    assert_eq!(resumed.len(), clean.len());
    for (a, b) in resumed.iter().zip(clean) {
        assert_eq!(a, b, "table {} differs from the clean run's", b.0);
    }
}

/// A command interrupted by a database kill and run again (see [`killed_mid_import`]).
struct KilledRun {
    _guard: ClusterGuard,
    restarted: ClusterInfo,
    crashed: Vec<(String, i64, String)>,
    clean: Vec<(String, i64, String)>,
}

impl KilledRun {
    /// Every table of the interrupted-and-resumed database equals the clean run's.
    fn assert_same_tables(&self) {
        assert_same_tables(&self.crashed, &self.clean);
    }

    /// Rows of a table in the clean run.
    fn rows(&self, table: &str) -> i64 {
        self.clean
            .iter()
            .find(|(n, _, _)| n == table)
            .map_or(0, |(_, c, _)| *c)
    }
}

/// Runs `certhist ARGS` into database `crashed` of a cluster of its own and SIGKILLs the
/// postmaster with exactly the command's first batch committed and its second in flight, its
/// writes uncommitted. The test holds the command there by locks, not by timing (a kill at an
/// arbitrary moment once a batch was seen committed let a fast import finish first): it holds
/// `LOCK TABLE hold IN SHARE MODE`, which every batch's transaction needs to write
/// (`imported_files` for the cursor of a counted file, `certificates` for certificate files),
/// before the command starts; once the first batch waits for it, releases it and at once asks
/// for it again, so the first batch commits and the second waits behind the test. `progress` (a
/// one-value query) must then be above 0. Checks the clear failure, restarts the cluster, runs
/// the same command again into `crashed` and once into `clean`. Returns the restarted cluster
/// and the digests of both databases.
async fn killed_mid_import(name: &str, args: &[&str], progress: &str, hold: &str) -> KilledRun {
    let (home, guard, info) = fault_cluster(name).await;
    let run = |info: &ClusterInfo, dbname: &str| {
        Command::new(env!("CARGO_BIN_EXE_certhist"))
            .args(args)
            .env("DATABASE_URL", conninfo(info, dbname))
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // One table only, so the command never holds a lock the test waits for while it waits for
    // the test's (no deadlock): at most the test waits for the batch in flight to commit.
    let lock = format!("BEGIN; LOCK TABLE {hold} IN SHARE MODE");
    // The schema first (the command would create it), so there is a table to hold.
    drop(
        certhist_store::Store::open_with(info.pg_config("crashed"), 1)
            .await
            .unwrap(),
    );
    let c = connect(&info, "crashed").await;
    c.batch_execute(&lock).await.unwrap();
    let mut child = run(&info, "crashed");
    let waiting = format!(
        "SELECT count(*) FROM pg_locks WHERE relation = '{hold}'::regclass AND NOT granted"
    );
    let wait_for_batch = async |child: &mut std::process::Child, which: &str| {
        let started = Instant::now();
        loop {
            let n: i64 = c.query_one(&waiting, &[]).await.unwrap().get(0);
            if n > 0 {
                return;
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("{name}: the command ended before its {which} batch waited for {hold}: {status}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{name}: the {which} batch did not wait for {hold} in 60 s"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    wait_for_batch(&mut child, "first").await;
    // The first batch is granted the lock as the test's transaction ends; the test's new request
    // queues before the second batch's, which then waits behind it.
    c.batch_execute(&format!("COMMIT; {lock}")).await.unwrap();
    let done: i64 = c.query_one(progress, &[]).await.unwrap().get(0);
    assert!(
        done > 0,
        "{name}: the first batch committed: {progress} = {done}"
    );
    eprintln!("{name}: first batch committed ({progress} = {done}), the second waits");
    wait_for_batch(&mut child, "second").await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "{name}: the command finished before the kill"
    );
    kill_postmaster(&info);
    let out = wait_bounded(child, 120, name).await;
    assert_clear_unavailable_failure(&out);
    drop(c);

    let h = home.clone();
    let restarted = tokio::task::spawn_blocking(move || start_cluster(&h))
        .await
        .unwrap();
    assert_ne!(restarted.pid, info.pid);
    for db in ["crashed", "clean"] {
        let out = wait_bounded(run(&restarted, db), 120, "a run after the restart").await;
        assert!(
            out.status.success(),
            "{name} {db}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    KilledRun {
        crashed: database_digest(&restarted, "crashed").await,
        clean: database_digest(&restarted, "clean").await,
        restarted,
        _guard: guard,
    }
}
