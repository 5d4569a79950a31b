//! End-to-end ingest against local servers on 127.0.0.1 into a real Postgres (TestDb).

use std::sync::Arc;
use std::time::Duration;

use certhist_ct::client::{LogClient, Rfc6962Client, StaticClient};
use certhist_ct::ingest::{ingest_log, IngestOptions};
use certhist_ct::CtError;
use certhist_ct::FetchConfig;
use certhist_test_support::TestDb;

use crate::logs::*;
use crate::server::{self, Fault};

fn fast() -> FetchConfig {
    FetchConfig {
        concurrency: 4,
        backoff_base: Duration::from_millis(20),
        backoff_cap: Duration::from_secs(3),
        max_attempts: 7,
        ..FetchConfig::default()
    }
}

fn opts(batch: u64) -> IngestOptions {
    IngestOptions {
        batch_entries: batch,
        request_entries: 1000,
        ..IngestOptions::default()
    }
}

/// (count, verified_position, root) of the only log, plus a digest of all ct_entries rows.
async fn snapshot(db: &TestDb) -> (i64, i64, Option<Vec<u8>>, String) {
    let (c, conn) = db.pg_config().connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let n: i64 = c
        .query_one("SELECT count(*) FROM ct_entries", &[])
        .await
        .unwrap()
        .get(0);
    let r = c
        .query_one("SELECT verified_position, root_hash FROM ct_logs", &[])
        .await
        .unwrap();
    let digest: String = c
        .query_one(
            "SELECT coalesce(md5(string_agg(entry_index || ':' || encode(sha1, 'hex') || ':' || entry_type || ':' || encode(leaf_hash, 'hex') || ':' || extract(epoch from entry_timestamp), ',' ORDER BY entry_index)), '') FROM ct_entries",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    (n, r.get(0), r.get(1), digest)
}

async fn sql_client(db: &TestDb) -> tokio_postgres::Client {
    let (c, conn) = db.pg_config().connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    c
}

fn static_client(url: &str) -> Arc<StaticClient> {
    Arc::new(StaticClient::new(url, Some(test_public_key()), fast()).unwrap())
}

#[tokio::test]
async fn navigli_all_1024_entries_verified_with_issuers() {
    let db = TestDb::new().await;
    let srv = server::start(navigli_handler(1024, NAVIGLI_ROOT_1024, None)).await;
    let stats = ingest_log(static_client(&srv.url), &db.store(), &opts(300))
        .await
        .unwrap();
    assert_eq!(
        (stats.entries, stats.verified_position, stats.tree_size),
        (1024, 1024, 1024)
    );
    let (n, verified, root, _) = snapshot(&db).await;
    assert_eq!((n, verified), (1024, 1024));
    assert_eq!(root.unwrap(), b64_32(NAVIGLI_ROOT_1024));
    let c = sql_client(&db).await;
    let precerts: i64 = c
        .query_one(
            "SELECT count(*) FROM ct_entries WHERE entry_type = 'precert'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(precerts, 1024);
    let row = c
        .query_one(
            "SELECT encode(e.sha1, 'hex'), encode(e.leaf_hash, 'hex'), (extract(epoch from e.entry_timestamp) * 1000)::bigint,
                    encode(c.serial, 'hex'), c.subject_cn, c.is_precert, c.issuer_key_hash IS NOT NULL
             FROM ct_entries e JOIN certificates c ON c.sha1 = e.sha1 WHERE e.entry_index = 0",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        row.get::<_, String>(0),
        "7cf01be9117755a7268ddc2dbf2bace7752488a4"
    );
    assert_eq!(
        row.get::<_, String>(1),
        "c853d5121104135a85f8a66a9d16d62234d541473ed78424032622564baddddf"
    );
    assert_eq!(row.get::<_, i64>(2), 1746292399101);
    assert_eq!(
        row.get::<_, String>(3).to_uppercase(),
        "2CD9F1FA9D6BDF32183A294D63683152AA60"
    );
    assert_eq!(
        row.get::<_, Option<String>>(4).as_deref(),
        Some("*.gated.dev-euw1.x0a839b.drive-platform.io")
    );
    assert!(row.get::<_, bool>(5), "entry 0 is a precertificate");
    assert!(
        row.get::<_, bool>(6),
        "issuer_key_hash filled from the chain certificate"
    );
    // The five issuer certificates (4 intermediates + root) fetched via issuer/<sha256>.
    let issuers: i64 = c
        .query_one(
            "SELECT count(*) FROM certificates WHERE encode(sha256, 'hex') = ANY($1)",
            &[&vec![
                "e70570a989f8565aabdf7cae27abd1621872d6a3f811e3fef27e3dba02912198",
                "a0249f0ed148f481e1c1b423dfb7e93b1e3ec8e917b7982a9b698ca786d08b92",
                "8dbfd9adf53278fccfee54d18d60c1639986ee288f45ceaf6e27d33a3fed0842",
                "54588456f084df53d35714fb90760edaf1d222500858b4c07d3a4d91308dec42",
                "a9933c5ccae8726c528541bbe6176ad20f922bf139b9430077bf6036a2979d28",
            ]],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(issuers, 5);
    let missing_ikh: i64 = c
        .query_one(
            "SELECT count(*) FROM ct_entries e JOIN certificates c ON c.sha1 = e.sha1 WHERE c.issuer_key_hash IS NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(missing_ikh, 0);
}

#[tokio::test]
async fn navigli_778_via_partial_tile_then_grows_to_1024() {
    let db = TestDb::new().await;
    let srv = server::start(navigli_handler(778, NAVIGLI_ROOT_778, None)).await;
    let stats = ingest_log(static_client(&srv.url), &db.store(), &opts(256))
        .await
        .unwrap();
    assert_eq!((stats.entries, stats.verified_position), (778, 778));
    assert!(srv
        .log
        .lock()
        .unwrap()
        .iter()
        .any(|p| p == "/tile/data/003.p/10"));
    assert_eq!(snapshot(&db).await.2.unwrap(), b64_32(NAVIGLI_ROOT_778));
    // Same URL later serving the 1024 tree: resumes from 778 (seeded from hash tiles).
    let srv2 = server::start(navigli_handler(1024, NAVIGLI_ROOT_1024, None)).await;
    let c = StaticClient::new(&srv2.url, Some(test_public_key()), fast()).unwrap();
    // Register under the first URL so the stored state is reused.
    let _ = c;
    let store = db.store();
    let sc = sql_client(&db).await;
    sc.execute("UPDATE ct_logs SET url = $1", &[&srv2.url])
        .await
        .unwrap();
    let stats = ingest_log(static_client(&srv2.url), &store, &opts(256))
        .await
        .unwrap();
    assert_eq!((stats.entries, stats.verified_position), (1024 - 778, 1024));
    let (n, v, root, _) = snapshot(&db).await;
    assert_eq!((n, v), (1024, 1024));
    assert_eq!(root.unwrap(), b64_32(NAVIGLI_ROOT_1024));
    // A 256-entry tree: root check at the end of the tree without a proof.
    let db3 = TestDb::new().await;
    let srv3 = server::start(navigli_handler(256, NAVIGLI_ROOT_256, None)).await;
    let s3 = ingest_log(static_client(&srv3.url), &db3.store(), &opts(1000))
        .await
        .unwrap();
    assert_eq!(s3.verified_position, 256);
}

#[tokio::test]
async fn tampered_data_tile_is_refused_and_nothing_of_it_verified() {
    let db = TestDb::new().await;
    let srv = server::start(navigli_handler(
        1024,
        NAVIGLI_ROOT_1024,
        Some("tile/data/002"),
    ))
    .await;
    let err = ingest_log(static_client(&srv.url), &db.store(), &opts(256))
        .await
        .unwrap_err();
    assert!(matches!(err, CtError::Inconsistent { .. }), "{err}");
    let (n, verified, _, _) = snapshot(&db).await;
    assert_eq!(
        (n, verified),
        (512, 512),
        "tiles 0 and 1 committed, tile 2 refused"
    );
    // A wrong checkpoint root is refused too (signed with the right key, wrong tree).
    let db2 = TestDb::new().await;
    let srv2 = server::start(navigli_handler(1024, NAVIGLI_ROOT_778, None)).await;
    let err = ingest_log(static_client(&srv2.url), &db2.store(), &opts(256))
        .await
        .unwrap_err();
    assert!(matches!(err, CtError::Inconsistent { .. }), "{err}");
    assert_eq!(snapshot(&db2).await.0, 0);
    // A checkpoint signed by another key is refused before anything is fetched.
    let other =
        certhist_ct::sig::PublicKey::from_text_or_der(&crate::read("hash-tree/icarus.pubkey.der"))
            .unwrap();
    let c = Arc::new(StaticClient::new(&srv.url, Some(other), fast()).unwrap());
    assert!(matches!(
        c.tree_head().await,
        Err(CtError::BadSignature { .. })
    ));
}

#[tokio::test]
async fn faults_429_5xx_truncation_resets_gzip_then_same_data() {
    let db = TestDb::new().await;
    let srv = server::start(navigli_handler(1024, NAVIGLI_ROOT_1024, None)).await;
    srv.gzip.store(true, std::sync::atomic::Ordering::SeqCst);
    let soon = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(1));
    srv.faults.lock().unwrap().extend([
        Fault::TooMany("1".into()),
        Fault::TooMany(soon),
        Fault::Status(503),
        Fault::Status(500),
        Fault::Truncate,
        Fault::Reset,
        Fault::Status(502),
        Fault::Truncate,
    ]);
    // All eight faults may hit the same request: allow enough retries.
    let cfg = FetchConfig {
        max_attempts: 13,
        ..fast()
    };
    let c = Arc::new(StaticClient::new(&srv.url, Some(test_public_key()), cfg).unwrap());
    let stats = ingest_log(c, &db.store(), &opts(256)).await.unwrap();
    assert_eq!(stats.verified_position, 1024);
    assert!(srv.faults.lock().unwrap().is_empty());
    let faulty = snapshot(&db).await;
    let clean_db = TestDb::new().await;
    let clean = server::start(navigli_handler(1024, NAVIGLI_ROOT_1024, None)).await;
    ingest_log(static_client(&clean.url), &clean_db.store(), &opts(256))
        .await
        .unwrap();
    let clean = snapshot(&clean_db).await;
    assert_eq!(faulty.0, 1024);
    assert_eq!(faulty.3, clean.3);
}

#[tokio::test]
async fn interrupted_run_resumes_to_the_same_rows() {
    let db = TestDb::new().await;
    let srv = server::start(navigli_handler(1024, NAVIGLI_ROOT_1024, None)).await;
    let mut o = opts(256);
    o.max_batches = Some(1);
    let s = ingest_log(static_client(&srv.url), &db.store(), &o)
        .await
        .unwrap();
    assert_eq!(s.verified_position, 256);
    assert_eq!(snapshot(&db).await.0, 256);
    let s = ingest_log(static_client(&srv.url), &db.store(), &opts(256))
        .await
        .unwrap();
    assert_eq!((s.entries, s.verified_position), (768, 1024));
    // Re-running from 0 adds nothing and keeps the cursor.
    let mut again = opts(256);
    again.from = Some(0);
    let s = ingest_log(static_client(&srv.url), &db.store(), &again)
        .await
        .unwrap();
    assert_eq!((s.entries, s.verified_position), (0, 1024));
    let resumed = snapshot(&db).await;
    let db2 = TestDb::new().await;
    ingest_log(static_client(&srv.url), &db2.store(), &opts(256))
        .await
        .unwrap();
    assert_eq!(resumed.3, snapshot(&db2).await.3);
    assert_eq!(resumed.0, 1024);
}

#[tokio::test]
async fn local_directory_mirror() {
    let dir = tempfile::tempdir().unwrap();
    let src = crate::fixture(crate::NAVIGLI);
    copy_dir(&src, dir.path());
    std::fs::write(
        dir.path().join("checkpoint"),
        navigli_checkpoint(1024, &b64_32(NAVIGLI_ROOT_1024)),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("issuer")).unwrap();
    for (h, der) in issuers() {
        std::fs::write(dir.path().join("issuer").join(h), der).unwrap();
    }
    let db = TestDb::new().await;
    let url = format!("file://{}", dir.path().display());
    let s = ingest_log(static_client(&url), &db.store(), &opts(4096))
        .await
        .unwrap();
    assert_eq!((s.entries, s.verified_position), (1024, 1024));
    let d = certhist_ct::ingest_static_dir(&db.store(), dir.path())
        .await
        .unwrap();
    assert_eq!(d.verified_position, 1024);
}

fn copy_dir(src: &std::path::Path, dst: &std::path::Path) {
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&to).unwrap();
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), to).unwrap();
        }
    }
}

#[tokio::test]
async fn pilot_rfc6962_short_reads_and_bogus_sth() {
    let db = TestDb::new().await;
    let srv = server::start(pilot_handler(3, None)).await;
    srv.faults
        .lock()
        .unwrap()
        .extend([Fault::Truncate, Fault::TooMany("0".into())]);
    let c = Arc::new(Rfc6962Client::new(&srv.url, Some(test_public_key()), fast()).unwrap());
    let mut o = opts(2);
    o.request_entries = 4;
    let s = ingest_log(c, &db.store(), &o).await.unwrap();
    assert_eq!((s.entries, s.verified_position), (4, 4));
    let sc = sql_client(&db).await;
    let rows = sc
        .query("SELECT encode(sha1, 'hex'), encode(leaf_hash, 'hex') FROM ct_entries ORDER BY entry_index", &[])
        .await
        .unwrap();
    let sha1s: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(
        sha1s,
        [
            "e4b1743d5e839344a168d643e2f7bdd194ce5ab2",
            "d974f6cb6f101b6680b05208f120845eb1121336",
            "8a3adaa6df00aea321317d30d6a841d63b363014",
            "f4062300d5f4422f895760a11da1446ec1e7eafe"
        ]
    );
    assert_eq!(
        rows[0].get::<_, String>(1),
        "c036e5ae4065859ed4aa298e6914b5f0c8eabcdcadfc5736b5ccba9d638d63ce"
    );
    let root: Vec<u8> = sc
        .query_one("SELECT root_hash FROM ct_logs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        hex::encode(root),
        "036ead9a071a509a64157169933092f1b276f5c4011201312806052fc8622791"
    );
    // Chain certificates were stored (2 + 3 + 3 + 2 certs, some shared).
    let chain: i64 = sc
        .query_one(
            "SELECT count(*) FROM certificates WHERE sha1 NOT IN (SELECT sha1 FROM ct_entries)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(chain >= 3, "{chain}");

    // The bogus FourEntrySTH: refused with the key (placeholder signature) and without it
    // (its root is not the MTH of the entries).
    let bogus = crate::read("certificate-transparency-go/scanner/FourEntrySTH.get-sth.json");
    let srv = server::start(pilot_handler(3, Some(bogus))).await;
    let db2 = TestDb::new().await;
    let c = Arc::new(Rfc6962Client::new(&srv.url, Some(test_public_key()), fast()).unwrap());
    assert!(matches!(
        ingest_log(c, &db2.store(), &o).await,
        Err(CtError::BadSignature { .. })
    ));
    let c = Arc::new(Rfc6962Client::new(&srv.url, None, fast()).unwrap());
    let err = ingest_log(c, &db2.store(), &o).await.unwrap_err();
    assert!(matches!(err, CtError::Inconsistent { .. }), "{err}");
    assert_eq!(snapshot(&db2).await.1, 0, "nothing verified");
}
