//! Whole runs of an [`IngestPlan`]: log-list selection, `follow` on a growing log, the rate
//! limit, progress events. (The run of the real binary killed with SIGKILL mid-ingest then
//! resumed, issue 3, is in the root package's tests/cli/ct.rs since issue 11.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use certhist_ct::client::{LogKind, StaticClient};
use certhist_ct::ingest::{ingest_log, IngestOptions};
use certhist_ct::{
    run, CtError, FetchConfig, IngestPlan, IngestStats, LogOutcome, LogTarget, Progress, ProgressFn,
};
use certhist_test_support::TestDb;

use crate::logs::*;
use crate::server;

/// The plan of `certhist ingest ct --log-list LIST --logs NAMES --batch-entries BATCH`.
fn list_plan(list: &[u8], names: &[&str], batch_entries: u64) -> Result<IngestPlan, CtError> {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    Ok(IngestPlan {
        logs: LogTarget::from_log_list(list, &names)?,
        options: IngestOptions {
            batch_entries,
            ..IngestOptions::default()
        },
        ..IngestPlan::default()
    })
}

/// The stats of every log, or the first error.
fn all_ok(outcomes: Vec<LogOutcome>) -> Result<Vec<IngestStats>, CtError> {
    outcomes.into_iter().map(|o| o.result).collect()
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
    let db = TestDb::new().await;
    let plan = list_plan(
        list(key.spki_der()).as_bytes(),
        &["pilot", "NAVIGLI static"],
        300,
    )
    .unwrap();
    assert_eq!(
        plan.logs
            .iter()
            .map(|l| (l.url.clone(), l.kind))
            .collect::<Vec<_>>(),
        [
            (format!("{}/", pilot.url), Some(LogKind::Rfc6962)),
            (format!("{}/", navigli.url), Some(LogKind::Static)),
        ]
    );
    let stats = all_ok(run(plan, &db.store()).await).unwrap();
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
    let db2 = TestDb::new().await;
    let plan = list_plan(list(&other_key).as_bytes(), &["pilot", "navigli"], 8192).unwrap();
    let outcomes = run(plan, &db2.store()).await;
    assert_eq!(outcomes.len(), 2);
    assert_eq!(outcomes[0].result.as_ref().unwrap().verified_position, 4);
    let err = outcomes[1].result.as_ref().unwrap_err();
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
    assert!(matches!(
        list_plan(list(&other_key).as_bytes(), &["argon2030"], 8192),
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
    let events: Arc<Mutex<Vec<Progress>>> = Arc::default();
    let sink = events.clone();
    let opts = IngestOptions {
        follow: true,
        poll_interval: Duration::from_millis(50),
        batch_entries: 256,
        stop: Some(stop_rx),
        progress: Some(ProgressFn::new(move |e| {
            sink.lock().unwrap().push(e.clone())
        })),
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
    // Progress events (issue 11): the range each time the tree grew, then every committed
    // batch in log order (tiles of 256; the 778 tree ends in a partial tile of 10).
    let url = srv.url.clone();
    let range = |end| Progress::Range {
        url: url.clone(),
        start: 0,
        end,
    };
    let committed = |entries, position| Progress::Committed {
        url: url.clone(),
        entries,
        position,
    };
    assert_eq!(
        *events.lock().unwrap(),
        [
            range(256),
            committed(256, 256),
            range(778),
            committed(256, 512),
            committed(256, 768),
            committed(10, 778),
            range(1024),
            committed(246, 1024),
        ]
    );
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
    // `certhist ingest ct --log URL --kind static --public-key KEY --rate 6 --concurrency 4
    // --batch-entries 256`
    let plan = IngestPlan {
        logs: vec![LogTarget {
            url: srv.url.clone(),
            kind: Some(LogKind::Static),
            key: Some(test_public_key()),
        }],
        fetch: FetchConfig {
            rate_per_s: Some(RATE as f64),
            concurrency: 4,
            ..FetchConfig::default()
        },
        options: IngestOptions {
            concurrency: 4,
            batch_entries: 256,
            ..IngestOptions::default()
        },
    };
    let stats = all_ok(run(plan, &db.store()).await).unwrap();
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
