//! Whole runs as a user starts them: `--log-list` selection, `--follow` on a growing log,
//! `--rate`, and a real process killed with SIGKILL mid-ingest then resumed (issue 3).

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use certhist_ct::cli::{run_until, CtArgs};
use certhist_ct::client::StaticClient;
use certhist_ct::http::FetchConfig;
use certhist_ct::ingest::{ingest_log, IngestOptions};
use certhist_ct::CtError;
use certhist_test_support::TestDb;
use clap::Parser as _;
use tokio_postgres::config::Host;

use crate::logs::*;
use crate::server;

#[derive(clap::Parser)]
struct Args {
    #[command(flatten)]
    ct: CtArgs,
}

/// Parses `certhist ingest ct ARGS` with the real argument definitions.
fn ct_args(args: &[&str]) -> CtArgs {
    Args::try_parse_from(std::iter::once("ct").chain(args.iter().copied()))
        .unwrap()
        .ct
}

fn b64(d: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(d)
}

async fn sql(db: &TestDb) -> tokio_postgres::Client {
    let (c, conn) = db.pg_config().connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    c
}

/// md5 over all ct_entries rows (log URL, index, sha1, type, leaf hash, timestamp) and over the
/// sorted certificate SHA-1s.
async fn digests(db: &TestDb) -> (i64, String, String) {
    let c = sql(db).await;
    let r = c
        .query_one(
            "SELECT (SELECT count(*) FROM ct_entries),
                    (SELECT coalesce(md5(string_agg(e.entry_index || ':' || encode(e.sha1, 'hex') || ':' || e.entry_type || ':' || encode(e.leaf_hash, 'hex') || ':' || extract(epoch from e.entry_timestamp), ',' ORDER BY e.entry_index)), '')
                       FROM ct_entries e),
                    (SELECT coalesce(md5(string_agg(encode(sha1, 'hex'), ',' ORDER BY sha1)), '') FROM certificates)",
            &[],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1), r.get(2))
}

/// Waits until the log's verified position reaches `want` (or fails after `limit`).
async fn wait_verified(c: &tokio_postgres::Client, want: i64, limit: Duration) {
    let t = Instant::now();
    loop {
        let v: Option<i64> = c
            .query_opt("SELECT max(verified_position) FROM ct_logs", &[])
            .await
            .unwrap()
            .and_then(|r| r.get(0));
        if v == Some(want) {
            return;
        }
        assert!(
            t.elapsed() < limit,
            "verified position {v:?}, waiting for {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn log_list_selects_an_rfc6962_and_a_static_log_by_name_with_their_keys() {
    let pilot = server::start(pilot_handler(3, None)).await;
    let navigli = server::start(navigli_handler(1024, NAVIGLI_ROOT_1024, None)).await;
    let unselected = server::start(navigli_handler(1024, NAVIGLI_ROOT_1024, None)).await;
    let key = test_public_key();
    let other_key = crate::read("hash-tree/icarus.pubkey.der");
    let list = |navigli_key: &[u8]| {
        serde_json::json!({
            "version": "99.0",
            "operators": [{
                "name": "Loopback",
                "email": ["ct@example.invalid"],
                "logs": [
                    {"description": "Loopback 'Pilot' replay", "log_id": b64(&key.log_id()),
                     "key": b64(key.spki_der()), "url": format!("{}/", pilot.url), "mmd": 86400},
                    {"description": "Loopback unselected", "log_id": b64(&[1u8; 32]),
                     "key": b64(key.spki_der()), "url": format!("{}/", unselected.url), "mmd": 86400}
                ],
                "tiled_logs": [
                    {"description": "Loopback Navigli static", "log_id": b64(&key.log_id()),
                     "key": b64(navigli_key), "submission_url": "http://127.0.0.1:9/",
                     "monitoring_url": format!("{}/", navigli.url), "mmd": 60}
                ]
            }]
        })
        .to_string()
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log_list.json");
    std::fs::write(&path, list(key.spki_der())).unwrap();
    let p = path.to_str().unwrap();

    let db = TestDb::new().await;
    let args = ct_args(&[
        "--log-list",
        p,
        "--logs",
        "pilot,NAVIGLI static",
        "--batch-entries",
        "300",
    ]);
    let stats = run_until(args, &db.store(), true, None).await.unwrap();
    assert_eq!(stats.len(), 2);
    let c = sql(&db).await;
    let rows = c
        .query(
            "SELECT l.url, l.kind, l.public_key, l.log_id, l.verified_position, l.tree_size,
                    (SELECT count(*) FROM ct_entries e WHERE e.log_id = l.id)
             FROM ct_logs l ORDER BY l.kind",
            &[],
        )
        .await
        .unwrap();
    type Row = (String, String, Vec<u8>, Vec<u8>, i64, i64, i64);
    let got: Vec<Row> = rows
        .iter()
        .map(|r| {
            (
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                r.get(5),
                r.get(6),
            )
        })
        .collect();
    let k = key.spki_der().to_vec();
    let id = key.log_id().to_vec();
    assert_eq!(
        got,
        [
            (
                pilot.url.clone(),
                "rfc6962".into(),
                k.clone(),
                id.clone(),
                4,
                4,
                4
            ),
            (
                navigli.url.clone(),
                "static".into(),
                k,
                id,
                1024,
                1024,
                1024
            ),
        ]
    );
    assert!(
        unselected.log.lock().unwrap().is_empty(),
        "a log not named in --logs was contacted"
    );

    // The key comes from the list: with another key listed for Navigli, its checkpoint
    // signature fails and nothing of it is stored, while the Pilot log is still ingested.
    std::fs::write(&path, list(&other_key)).unwrap();
    let db2 = TestDb::new().await;
    let args = ct_args(&["--log-list", p, "--logs", "pilot,navigli"]);
    let err = run_until(args, &db2.store(), true, None).await.unwrap_err();
    assert!(matches!(err, CtError::BadSignature { .. }), "{err}");
    let c2 = sql(&db2).await;
    let logs: Vec<(String, i64)> = c2
        .query("SELECT url, verified_position FROM ct_logs", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(logs, [(pilot.url.clone(), 4)]);

    // A name that matches nothing is a usage error, before anything is fetched.
    let args = ct_args(&["--log-list", p, "--logs", "argon2030"]);
    assert!(matches!(
        run_until(args, &db2.store(), true, None).await,
        Err(CtError::Usage(_))
    ));
}

#[tokio::test]
async fn follow_ingests_a_growing_static_log_until_stopped() {
    let size = Arc::new(AtomicU64::new(256));
    let srv = server::start(navigli_growing_handler(size.clone())).await;
    let db = TestDb::new().await;
    let c = sql(&db).await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let opts = IngestOptions {
        follow: true,
        poll_interval: Duration::from_millis(50),
        batch_entries: 256,
        stop: Some(stop_rx),
        ..IngestOptions::default()
    };
    let client = Arc::new(
        StaticClient::new(&srv.url, Some(test_public_key()), FetchConfig::default()).unwrap(),
    );
    let store = db.store();
    let follower = tokio::spawn(async move { ingest_log(client, &store, &opts).await });
    let limit = Duration::from_secs(20);
    wait_verified(&c, 256, limit).await;
    size.store(778, Ordering::SeqCst);
    wait_verified(&c, 778, limit).await;
    size.store(1024, Ordering::SeqCst);
    wait_verified(&c, 1024, limit).await;
    let polls_before_stop = srv
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|p| *p == "/checkpoint")
        .count();
    assert!(
        polls_before_stop >= 3,
        "{polls_before_stop} checkpoint fetches"
    );
    stop_tx.send(true).unwrap();
    let stats = tokio::time::timeout(Duration::from_secs(10), follower)
        .await
        .expect("the follower stops when asked")
        .unwrap()
        .unwrap();
    assert_eq!(
        (stats.entries, stats.verified_position, stats.tree_size),
        (1024, 1024, 1024)
    );
    // The 778 tree was read through its partial tile.
    assert!(srv
        .log
        .lock()
        .unwrap()
        .iter()
        .any(|p| p == "/tile/data/003.p/10"));
    let root: Vec<u8> = c
        .query_one("SELECT root_hash FROM ct_logs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(root, b64_32(NAVIGLI_ROOT_1024));
    // Same rows as a one-shot ingest of the 1024 tree.
    let followed = digests(&db).await;
    let clean_db = TestDb::new().await;
    let clean = server::start(navigli_handler(1024, NAVIGLI_ROOT_1024, None)).await;
    let client = Arc::new(
        StaticClient::new(&clean.url, Some(test_public_key()), FetchConfig::default()).unwrap(),
    );
    ingest_log(client, &clean_db.store(), &IngestOptions::default())
        .await
        .unwrap();
    assert_eq!(followed, digests(&clean_db).await);
    assert_eq!(followed.0, 1024);
}

#[tokio::test]
async fn follow_refuses_a_grown_tree_that_does_not_extend_the_verified_entries() {
    // Signed checkpoints: the real 778 tree, then a 1024 tree whose root is not the root of
    // the navigli entries (a fork, or a log rewriting history).
    let current = Arc::new(AtomicU64::new(0));
    let srv = server::start(navigli_switching_handler(
        current.clone(),
        vec![
            navigli_checkpoint(778, &b64_32(NAVIGLI_ROOT_778)),
            navigli_checkpoint(1024, &b64_32(NAVIGLI_ROOT_256)),
        ],
    ))
    .await;
    let db = TestDb::new().await;
    let c = sql(&db).await;
    let opts = IngestOptions {
        follow: true,
        poll_interval: Duration::from_millis(50),
        batch_entries: 256,
        ..IngestOptions::default()
    };
    let client = Arc::new(
        StaticClient::new(&srv.url, Some(test_public_key()), FetchConfig::default()).unwrap(),
    );
    let store = db.store();
    let follower = tokio::spawn(async move { ingest_log(client, &store, &opts).await });
    wait_verified(&c, 778, Duration::from_secs(20)).await;
    current.store(1, Ordering::SeqCst);
    let err = tokio::time::timeout(Duration::from_secs(10), follower)
        .await
        .expect("the follower gives up on the forked log")
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, CtError::Inconsistent { .. }), "{err}");
    let r = c
        .query_one(
            "SELECT verified_position, (SELECT count(*) FROM ct_entries) FROM ct_logs",
            &[],
        )
        .await
        .unwrap();
    assert_eq!((r.get::<_, i64>(0), r.get::<_, i64>(1)), (778, 778));
}

#[tokio::test]
async fn rate_limit_spaces_requests() {
    const RATE: usize = 6;
    let srv = server::start(navigli_handler(1024, NAVIGLI_ROOT_1024, None)).await;
    let db = TestDb::new().await;
    let key = b64(test_public_key().spki_der());
    let rate = RATE.to_string();
    let args = ct_args(&[
        "--log",
        &srv.url,
        "--kind",
        "static",
        "--public-key",
        &key,
        "--rate",
        &rate,
        "--concurrency",
        "4",
        "--batch-entries",
        "256",
    ]);
    let stats = run_until(args, &db.store(), true, None).await.unwrap();
    assert_eq!(stats[0].verified_position, 1024);
    let times = srv.times.lock().unwrap().clone();
    // checkpoint, 4 data tiles, issuers, hash tiles for three inclusion proofs.
    assert!(times.len() >= 3 * RATE, "only {} requests", times.len());
    let busiest = times
        .iter()
        .map(|t0| {
            times
                .iter()
                .filter(|t| **t >= *t0 && t.duration_since(*t0) < Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap();
    assert!(
        busiest <= RATE + 1,
        "{busiest} requests within one second at --rate {RATE} ({} in all)",
        times.len()
    );
}

/// A libpq key=value connection string for a test database (as tests/cli/support.rs builds it).
fn database_url(db: &TestDb) -> String {
    let c = db.pg_config();
    let mut parts = Vec::new();
    match c.get_hosts().first() {
        Some(Host::Unix(p)) => parts.push(format!("host={}", p.display())),
        Some(Host::Tcp(h)) => parts.push(format!("host={h}")),
        None => {}
    }
    if let Some(p) = c.get_ports().first() {
        parts.push(format!("port={p}"));
    }
    if let Some(u) = c.get_user() {
        parts.push(format!("user={u}"));
    }
    if let Some(pw) = c.get_password() {
        parts.push(format!("password={}", String::from_utf8_lossy(pw)));
    }
    parts.push(format!("dbname={}", db.name()));
    parts.join(" ")
}

fn ct_ingest(db: &TestDb, url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ct-ingest"));
    cmd.args([
        "--json",
        "--log",
        url,
        "--kind",
        "static",
        "--public-key",
        &b64(test_public_key().spki_der()),
        "--batch-entries",
        "256",
    ])
    .env("DATABASE_URL", database_url(db))
    .env_remove("RUST_LOG")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd
}

#[tokio::test]
async fn sigkill_after_first_batch_then_rerun_gives_the_clean_database() {
    let srv = server::start(navigli_handler(1024, NAVIGLI_ROOT_1024, None)).await;
    // Tiles 2 and 3 are held back: the process commits tile 0 (and maybe tile 1), then waits.
    srv.held
        .lock()
        .unwrap()
        .extend(["/tile/data/002".to_owned(), "/tile/data/003".to_owned()]);
    let db = TestDb::new().await;
    let c = sql(&db).await;
    let mut child = ct_ingest(&db, &srv.url).spawn().unwrap();
    let t = Instant::now();
    let downloaded = loop {
        let d: Option<i64> = c
            .query_opt("SELECT downloaded_position FROM ct_logs", &[])
            .await
            .unwrap()
            .map(|r| r.get(0));
        if let Some(d) = d.filter(|d| *d > 0) {
            break d;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("ct-ingest exited early: {status}");
        }
        assert!(t.elapsed() < Duration::from_secs(30), "no batch committed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success());
    let (n, verified): (i64, i64) = {
        let r = c
            .query_one(
                "SELECT (SELECT count(*) FROM ct_entries), verified_position FROM ct_logs",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert!(
        downloaded == 256 || downloaded == 512,
        "downloaded {downloaded}"
    );
    assert!(verified == 256 || verified == 512, "verified {verified}");
    assert_eq!(n, verified, "rows beyond the cursor survived the kill");

    srv.held.lock().unwrap().clear();
    // Run it off the runtime thread: the server answering it lives on this runtime.
    let mut cmd = ct_ingest(&db, &srv.url);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["entries"], 1024 - verified);
    assert_eq!(line["verified_position"], 1024);
    let resumed = digests(&db).await;

    let clean_db = TestDb::new().await;
    let mut cmd = ct_ingest(&clean_db, &srv.url);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    assert!(out.status.success());
    let clean = digests(&clean_db).await;
    assert_eq!(resumed, clean);
    assert_eq!(resumed.0, 1024);
}
