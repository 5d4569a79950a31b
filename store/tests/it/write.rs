//! Bulk write path: certificate inserts, issuer linking, observation merge semantics.

use certhist_model::CertHash;
use certhist_store::read::{self, TimeWindow};
use certhist_test_support::TestDb;

use crate::support::{cert, certs, obs, sha1, t};

const GOOGLE_SHA1: &str = "570fe2e3bfee986ed4a158aed8770f2e21614659";

#[tokio::test]
async fn certificates_insert_once_and_count_new_known_unparsable() {
    let db = TestDb::new().await;
    let store = db.store();
    let mut batch = certs("certificate-transparency/python/ct/crypto/testdata/google_cert.pem");
    // BER with indefinite lengths: stored with its parse error.
    batch.extend(certs(
        "certificate-transparency/python/ct/crypto/testdata/asn1_indefinite_length_encoding.pem",
    ));
    // The same certificate twice in one batch counts once.
    batch.push(batch[0].clone());
    let mut conn = store.conn().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    let stats = tx.write_certs(&batch).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!((stats.new, stats.known, stats.unparsable), (2, 1, 1));

    let mut tx = conn.begin().await.unwrap();
    let again = tx.write_certs(&batch).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!((again.new, again.known), (0, 3));

    let rec = read::cert_by_hash(&conn, &CertHash::Sha1(sha1(GOOGLE_SHA1)))
        .await
        .unwrap()
        .expect("google cert stored");
    assert_eq!(rec.summary.subject_cn.as_deref(), Some("*.google.com"));
    assert_eq!(
        rec.summary.serial.as_ref().unwrap().to_string(),
        "605381F50001000088BD"
    );
    assert!(rec.names.iter().any(|n| n.name == "*.youtube.com"));
    // 44 DNS SANs (fixture README) plus the CN.
    assert_eq!(
        rec.names
            .iter()
            .filter(|n| n.kind.as_str() == "dns")
            .count(),
        44
    );

    let bad = read::cert_by_hash(
        &conn,
        &CertHash::Sha1(sha1("6ce14224b0d012be388443df1b0dbb08cabc4424")),
    )
    .await
    .unwrap()
    .expect("unparsable cert stored");
    assert!(bad.summary.parse_error.is_some());
    assert!(!bad.der.is_empty());
}

#[tokio::test]
async fn issuer_key_hash_is_filled_in_either_order() {
    // certificate.der (x509-parser assets) is issued by Let's Encrypt Authority X3, whose
    // public key SHA-1 (= its method-1 SKI) is a84a6a63047dddbae6d139b7a64565eff3a8eca1.
    let leaf = cert("x509-parser/assets/certificate.der");
    let x3 = cert("x509-parser/assets/lets-encrypt-x3-cross-signed.der");
    let want = hex::decode("a84a6a63047dddbae6d139b7a64565eff3a8eca1").unwrap();
    for order in [[leaf.clone(), x3.clone()], [x3.clone(), leaf.clone()]] {
        let db = TestDb::new().await;
        let store = db.store();
        let mut conn = store.conn().await.unwrap();
        for c in &order {
            let mut tx = conn.begin().await.unwrap();
            tx.write_certs(std::slice::from_ref(c)).await.unwrap();
            tx.commit().await.unwrap();
        }
        let rec = read::cert_by_hash(&conn, &CertHash::Sha1(leaf.sha1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            rec.issuer_key_hash.as_deref(),
            Some(&want[..]),
            "order {:?}",
            order[0].subject.cn
        );
    }
}

/// A plain client on the test database, for checks below the store API.
async fn raw_client(db: &TestDb) -> tokio_postgres::Client {
    let (client, connection) = db.pg_config().connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

#[tokio::test]
async fn issuer_key_hash_is_filled_within_one_batch_and_across_shards() {
    let leaf = cert("x509-parser/assets/certificate.der");
    let x3 = cert("x509-parser/assets/lets-encrypt-x3-cross-signed.der");
    let want = hex::decode("a84a6a63047dddbae6d139b7a64565eff3a8eca1").unwrap();

    // Child first, issuer in a later split batch: linked once that batch's parts committed.
    let db = TestDb::new().await;
    let store = db.store();
    store
        .write_certs_parallel(std::slice::from_ref(&leaf), 2)
        .await
        .unwrap();
    store
        .write_certs_parallel(std::slice::from_ref(&x3), 2)
        .await
        .unwrap();
    let conn = store.conn().await.unwrap();
    let rec = read::cert_by_hash(&conn, &CertHash::Sha1(leaf.sha1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.issuer_key_hash.as_deref(), Some(&want[..]));

    // The leaf and its issuer (LE X3) arrive in the same batch, written on one connection or
    // split by sha1 over several (sha1s 5c… and e6…: different parts when split in four or
    // five, and the resolution happens before the split).
    assert_ne!(leaf.sha1[0] % 4, x3.sha1[0] % 4, "fixture split assumption");
    for shards in [1, 2, 4, 5] {
        let db = TestDb::new().await;
        let store = db.store();
        let conn = store.conn().await.unwrap();
        let stats = store
            .write_certs_parallel(&[leaf.clone(), x3.clone()], shards)
            .await
            .unwrap();
        assert_eq!((stats.new, stats.known), (2, 0), "shards {shards}");
        let rec = read::cert_by_hash(&conn, &CertHash::Sha1(leaf.sha1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            rec.issuer_key_hash.as_deref(),
            Some(&want[..]),
            "shards {shards}"
        );
    }
}

#[tokio::test]
async fn a_name_that_is_cn_and_san_is_one_row_with_both_kinds() {
    let db = TestDb::new().await;
    let store = db.store();
    let mut conn = store.conn().await.unwrap();
    let github = certs("rustls/rustls-test/benches/data/cert-github.0.der");
    let mut tx = conn.begin().await.unwrap();
    tx.write_certs(&github).await.unwrap();
    tx.commit().await.unwrap();
    let sha1 = github[0].sha1.to_vec();
    let rows = raw_client(&db)
        .await
        .query(
            "SELECT name, kinds FROM certificate_names WHERE sha1 = $1 ORDER BY name",
            &[&sha1],
        )
        .await
        .unwrap();
    let got: Vec<(String, i16)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    // Subject CN github.com; SANs github.com and www.github.com (openssl x509 -ext subjectAltName).
    assert_eq!(
        got,
        vec![
            ("github.com".to_owned(), 3),
            ("www.github.com".to_owned(), 2)
        ]
    );
    let names = read::cert_names(&conn, &github[0].sha1).await.unwrap();
    let shown: Vec<(&str, &str)> = names
        .iter()
        .map(|n| (n.kind.as_str(), n.name.as_str()))
        .collect();
    assert_eq!(
        shown,
        vec![
            ("cn", "github.com"),
            ("dns", "github.com"),
            ("dns", "www.github.com")
        ]
    );
}

#[tokio::test]
async fn names_hold_each_distinct_name_once_and_are_added_again_on_a_rerun() {
    // google_cert.pem: 44 DNS SANs, its CN *.google.com among them (openssl x509
    // -ext subjectAltName); cert-github: github.com (CN and SAN) and www.github.com.
    let mut batch = certs("certificate-transparency/python/ct/crypto/testdata/google_cert.pem");
    let github = certs("rustls/rustls-test/benches/data/cert-github.0.der");
    batch.extend(github.clone());
    let db = TestDb::new().await;
    let store = db.store();
    let raw = raw_client(&db).await;
    let names = |sql: &'static str| {
        let raw = &raw;
        async move {
            raw.query(sql, &[])
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>()
        }
    };
    // Split over two connections, as the CT ingest writes (the names added after).
    store.write_certs_parallel(&batch, 2).await.unwrap();
    let stored = names("SELECT name FROM names ORDER BY name").await;
    assert_eq!(stored.len(), 46);
    assert_eq!(
        stored,
        names("SELECT DISTINCT name FROM certificate_names ORDER BY name").await
    );
    assert!(stored.iter().any(|n| n == "*.google.com"));
    assert!(stored.iter().any(|n| n == "www.github.com"));

    // The same certificates again, and github twice: nothing new.
    batch.extend(github.clone());
    let stats = store.write_certs_parallel(&batch, 2).await.unwrap();
    assert_eq!((stats.new, stats.known), (0, 3));
    assert_eq!(names("SELECT name FROM names ORDER BY name").await, stored);

    // As after a crash between the certificates' commit and the names': a re-run of the batch
    // finds the certificates stored and still adds their names.
    raw.execute("DELETE FROM names WHERE name LIKE '%github.com'", &[])
        .await
        .unwrap();
    let mut conn = store.conn().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    tx.write_certs(&github).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(names("SELECT name FROM names ORDER BY name").await, stored);
    // and a substring search finds the certificate through them.
    let hits = read::search(
        &conn,
        read::SearchField::Name,
        &read::MatchPattern::parse("*ww.githu*").unwrap(),
        None,
        10,
    )
    .await
    .unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].matched, "www.github.com");
    assert_eq!(hits[0].cert.sha1, github[0].sha1);
}

#[tokio::test]
async fn a_certificate_stored_concurrently_is_merged_not_failed() {
    // Transaction A stores the leaf and stays open; B then writes the leaf and X3. B's check
    // for stored certificates cannot see A's uncommitted row, so B's direct COPY waits for A
    // and hits the unique key once A commits: B rolls back to its savepoint and merges.
    let leaf = cert("x509-parser/assets/certificate.der");
    let x3 = cert("x509-parser/assets/lets-encrypt-x3-cross-signed.der");
    let db = TestDb::new().await;
    let store = db.store();
    let mut a_conn = store.conn().await.unwrap();
    let mut a = a_conn.begin().await.unwrap();
    a.write_certs(std::slice::from_ref(&leaf)).await.unwrap();
    let b = {
        let store = store.clone();
        let batch = vec![leaf.clone(), x3.clone()];
        tokio::spawn(async move {
            let mut conn = store.conn().await.unwrap();
            let mut tx = conn.begin().await.unwrap();
            let stats = tx.write_certs(&batch).await.unwrap();
            tx.commit().await.unwrap();
            stats
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!b.is_finished(), "B waits for A's row");
    a.commit().await.unwrap();
    let stats = b.await.unwrap();
    assert_eq!((stats.new, stats.known), (1, 1));
    let conn = store.conn().await.unwrap();
    let count: i64 = raw_client(&db)
        .await
        .query_one("SELECT count(*) FROM certificates", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 2);
    // The leaf, stored by A without its issuer, was linked when B stored X3.
    let rec = read::cert_by_hash(&conn, &CertHash::Sha1(leaf.sha1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        rec.issuer_key_hash.map(hex::encode).as_deref(),
        Some("a84a6a63047dddbae6d139b7a64565eff3a8eca1")
    );
}

#[tokio::test]
async fn observations_merge_least_greatest_sum_union() {
    let db = TestDb::new().await;
    let store = db.store();
    let mut conn = store.conn().await.unwrap();
    let h = "7cf01be9117755a7268ddc2dbf2bace7752488a4";
    let mut tx = conn.begin().await.unwrap();
    let keys = tx
        .write_observations(&[
            obs(
                "192.0.2.1",
                443,
                h,
                "2024-02-01T00:00:00Z",
                "2024-03-01T00:00:00Z",
                2,
                "scan",
            ),
            // Same key twice in one batch: combined before the merge.
            obs(
                "192.0.2.1",
                443,
                h,
                "2024-02-10T00:00:00Z",
                "2024-02-11T00:00:00Z",
                1,
                "scan",
            ),
        ])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(keys, 1);
    // An older dataset arrives later (out of order) from another source.
    let mut tx = conn.begin().await.unwrap();
    tx.write_observations(&[obs(
        "192.0.2.1",
        443,
        h,
        "2023-12-01T00:00:00Z",
        "2024-01-15T00:00:00Z",
        4,
        "sonar",
    )])
    .await
    .unwrap();
    tx.commit().await.unwrap();
    // A newer sighting from a known source.
    let mut tx = conn.begin().await.unwrap();
    tx.write_observations(&[obs(
        "192.0.2.1",
        443,
        h,
        "2024-05-01T00:00:00Z",
        "2024-05-01T00:00:00Z",
        1,
        "scan",
    )])
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let rows = read::ip_history(
        &conn,
        &"192.0.2.1/32".parse().unwrap(),
        &TimeWindow::default(),
        None,
        10,
    )
    .await
    .unwrap();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r.first_seen, t("2023-12-01T00:00:00Z"));
    assert_eq!(r.last_seen, t("2024-05-01T00:00:00Z"));
    assert_eq!(r.times_seen, 8);
    assert_eq!(r.sources, vec!["scan".to_owned(), "sonar".to_owned()]);
    assert!(
        r.cert.is_none(),
        "observation stored without its certificate"
    );
}

#[tokio::test]
async fn rollback_keeps_nothing() {
    let db = TestDb::new().await;
    let store = db.store();
    let mut conn = store.conn().await.unwrap();
    {
        let mut tx = conn.begin().await.unwrap();
        tx.write_certs(&certs(
            "certificate-transparency/python/ct/crypto/testdata/google_cert.pem",
        ))
        .await
        .unwrap();
        // dropped without commit
    }
    let counts = read::counts(&conn).await.unwrap();
    assert_eq!(counts.certificates, 0);
}
