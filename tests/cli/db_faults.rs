//! The database killed under a running import: `certhist import observations` while the
//! postmaster of a cluster of this test's own (not the shared test cluster) is SIGKILLed. The
//! command must stop with a clear message and a non-zero exit (no hang, no panic), and after the
//! cluster is restarted a re-run must leave the same observations as one clean run (checksum
//! over every row, counts and sum of sightings: no duplicates, no gaps). The same for
//! `certhist ingest ct` against the loopback static-CT log of ct.rs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use certhist_store::cluster::{self, ClusterInfo, StartOptions};

const ROWS: u32 = 200_000;

fn start_cluster(home: &Path) -> ClusterInfo {
    let options = StartOptions {
        settings: vec![("fsync".to_owned(), "off".to_owned())],
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
/// Columns filled by `now()` or a sequence are left out (they differ between two runs of the
/// same data by design: times of the run, and sequence values a rolled-back batch consumed).
async fn database_digest(info: &ClusterInfo, dbname: &str) -> Vec<(String, i64, String)> {
    let c = connect(info, dbname).await;
    let tables = c
        .query(
            "SELECT c.relname,
                    (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
                       FROM pg_attribute a
                       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                      WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                        AND coalesce(pg_get_expr(d.adbin, d.adrelid), '') !~* '(now|nextval|clock_timestamp|current_timestamp)'),
                    (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.ord)
                       FROM pg_index i
                       CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
                      WHERE i.indrelid = c.oid AND i.indisprimary)
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

#[tokio::test]
async fn an_import_whose_database_is_killed_fails_clearly_and_a_rerun_equals_a_clean_run() {
    let tmp = std::env::var_os("TMPDIR").unwrap_or_else(|| "/tmp".into());
    let home = Path::new(&tmp).join(format!("certhist-import-fault-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let h = home.clone();
    let info = tokio::task::spawn_blocking(move || start_cluster(&h))
        .await
        .unwrap();
    for db in ["crashed", "clean"] {
        certhist_store::ensure_database(&info.pg_config(db))
            .await
            .unwrap();
    }

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.csv.gz");
    {
        let file = std::fs::File::create(&path).unwrap();
        let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        for i in 0..ROWS {
            let ip = format!("10.{}.{}.{}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
            // Distinct keys, one sighting each: a lost batch lowers the count, a repeated one
            // raises the sum.
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
    let killed = Command::new("kill")
        .args(["-KILL", &info.pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // The import must end by itself (bounded), with a non-zero exit and a clear message.
    let out = tokio::task::spawn_blocking(move || {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        rx.recv_timeout(Duration::from_secs(120))
            .expect("the import hung after the database was killed")
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exit status {}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("the database connection was lost or refused")
            && stderr.contains("run the same command again"),
        "the message says what happened and what to do: {stderr}"
    );
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
    let tmp = std::env::var_os("TMPDIR").unwrap_or_else(|| "/tmp".into());
    let home = Path::new(&tmp).join(format!("certhist-ct-fault-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let _guard = ClusterGuard(home.clone());
    let h = home.clone();
    let info = tokio::task::spawn_blocking(move || start_cluster(&h))
        .await
        .unwrap();
    for db in ["crashed", "clean"] {
        certhist_store::ensure_database(&info.pg_config(db))
            .await
            .unwrap();
    }
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
    let killed = Command::new("kill")
        .args(["-KILL", &info.pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
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
    for (a, b) in crashed.iter().zip(&clean) {
        assert_eq!(a, b, "table {} differs from the clean run's", b.0);
    }
    assert_eq!(crashed.len(), clean.len());
}
