//! The database killed under a running import: `certhist import observations` while the
//! postmaster of a cluster of this test's own (not the shared test cluster) is SIGKILLed. The
//! command must stop with a clear message and a non-zero exit (no hang, no panic), and after the
//! cluster is restarted a re-run must leave the same observations as one clean run (checksum
//! over every row, counts and sum of sightings: no duplicates, no gaps).

use std::io::Write;
use std::path::Path;
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
