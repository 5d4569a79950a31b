//! End to end against a real database: certificate + issuer imported, observations added, the
//! OCSP GET URL built, the cache resolved to names and IPs; `--store` idempotent.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use certhist_crtsh::CrtshConfig;
use certhist_cryptnet::ocsp::{build_get_url, cert_id_of};
use certhist_cryptnet::CertIdMatchKind;
use certhist_cryptnet::HashAlgorithm;
use certhist_cryptnet::{analyze, AnalyzeOptions, ResolveMode};
use certhist_model::ObservationRow;
use certhist_test_support::TestDb;
use chrono::{DateTime, Utc};

pub fn certs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/certs/x509-parser/assets")
}

/// x509-parser/assets/certificate.der (CN=lists.for-our.info, serial
/// 032048030bbb3410f9093c57f2cb8308c805 per tests/data/certs/CERT_INVENTORY.tsv) and its issuer
/// lets-encrypt-x3-cross-signed.der.
pub fn leaf_and_issuer() -> (Vec<u8>, Vec<u8>) {
    (
        std::fs::read(certs_dir().join("certificate.der")).unwrap(),
        std::fs::read(certs_dir().join("lets-encrypt-x3-cross-signed.der")).unwrap(),
    )
}

fn ts(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

pub fn opts(resolve: ResolveMode, label: Option<&str>, crtsh: CrtshConfig) -> AnalyzeOptions {
    AnalyzeOptions {
        resolve,
        store_label: label.map(str::to_owned),
        crtsh,
    }
}

#[tokio::test]
async fn certid_resolves_to_names_and_ips() {
    let db = TestDb::new().await;
    let store = db.store();
    let (leaf, issuer) = leaf_and_issuer();
    let leaf_rec = certhist_x509::parse_der(&leaf);
    let issuer_rec = certhist_x509::parse_der(&issuer);
    assert!(leaf_rec.parse_error.is_none(), "{:?}", leaf_rec.parse_error);
    let obs = [
        (
            "192.0.2.10",
            443,
            "2018-01-02T00:00:00Z",
            "2018-02-01T00:00:00Z",
            5,
        ),
        (
            "2001:db8::7",
            8443,
            "2018-01-10T00:00:00Z",
            "2018-01-11T00:00:00Z",
            1,
        ),
    ];
    {
        let mut conn = store.conn().await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        tx.write_certs(&[issuer_rec.clone(), leaf_rec.clone()])
            .await
            .unwrap();
        let rows: Vec<ObservationRow> = obs
            .iter()
            .map(|(ip, port, f, l, n)| ObservationRow {
                ip: ip.parse().unwrap(),
                port: *port,
                sha1: leaf_rec.sha1,
                first_seen: ts(f),
                last_seen: ts(l),
                times_seen: *n,
                source: "test".into(),
            })
            .collect();
        tx.write_observations(&rows).await.unwrap();
        tx.commit().await.unwrap();
    }
    let exact = cert_id_of(&leaf, &issuer, HashAlgorithm::Sha1).unwrap();
    assert_eq!(exact.serial.to_hex(), "32048030BBB3410F9093C57F2CB8308C805");
    let sha256 = cert_id_of(&leaf, &issuer, HashAlgorithm::Sha256).unwrap();
    let mut wrong_issuer = exact.clone();
    wrong_issuer.issuer_name_hash = vec![0x11; 20];
    let url_exact = build_get_url(
        "http://ocsp.int-x3.letsencrypt.org",
        std::slice::from_ref(&exact),
    )
    .unwrap();
    let url_multi = build_get_url("http://ocsp.example/ocsp", &[wrong_issuer, sha256]).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let list = tmp.path().join("urls.txt");
    std::fs::write(
        &list,
        format!("{url_exact}\n{url_multi}\nhttp://nothing.example/\n"),
    )
    .unwrap();
    let loaded = certhist_cryptnet::load_path(&list).unwrap();
    assert_eq!(loaded.entries.len(), 3);

    let o = opts(ResolveMode::Local, Some("host-a"), CrtshConfig::default());
    let rows = analyze(&loaded.entries, &o, &store, &|_| {})
        .await
        .unwrap()
        .rows;
    assert_eq!(rows.len(), 4, "one row per CertID plus the plain URL");
    let r0 = rows[0].resolution.as_ref().unwrap();
    assert_eq!(r0.certs.len(), 1);
    let m = &r0.certs[0];
    assert_eq!(m.match_kind, CertIdMatchKind::Exact);
    assert_eq!(m.sha1, hex::encode(leaf_rec.sha1));
    assert!(
        m.names.contains(&"lists.for-our.info".to_owned()),
        "{:?}",
        m.names
    );
    let ips: Vec<(IpAddr, u16)> = m.hosts.iter().map(|h| (h.ip, h.port)).collect();
    assert_eq!(ips.len(), 2);
    assert!(ips.contains(&("192.0.2.10".parse().unwrap(), 443)));
    assert!(ips.contains(&("2001:db8::7".parse().unwrap(), 8443)));
    let h = m.hosts.iter().find(|h| h.port == 443).unwrap();
    assert_eq!(
        (h.first_seen, h.last_seen, h.times_seen),
        (ts("2018-01-02T00:00:00Z"), ts("2018-02-01T00:00:00Z"), 5)
    );
    assert!(
        rows[0]
            .issuer
            .as_deref()
            .unwrap()
            .contains("Let's Encrypt Authority X3"),
        "{:?}",
        rows[0].issuer
    );
    // serial-only: same serial, other issuer → shown as a candidate with its issuer
    let r1 = rows[1].resolution.as_ref().unwrap();
    assert!(!r1.resolved());
    assert_eq!(r1.certs[0].match_kind, CertIdMatchKind::SerialOnly);
    assert!(r1.certs[0]
        .issuer
        .as_deref()
        .unwrap()
        .contains("Let's Encrypt"));
    // SHA-256 CertID: issuer name hash recomputed from the stored DER
    let r2 = rows[2].resolution.as_ref().unwrap();
    assert_eq!(r2.certs[0].match_kind, CertIdMatchKind::SerialAndIssuerName);
    assert!(rows[3].resolution.is_none());

    // --store: one row per CertID, idempotent
    let count = || async {
        let (client, conn) = db.pg_config().connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM cache_entries WHERE collection = 'host-a'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        let s: Vec<u8> = client
            .query_one("SELECT serial FROM cache_entries WHERE collection = 'host-a' AND cert_index = 0 AND hash_algorithm = 'sha1' AND url LIKE 'http://ocsp.int-x3%'", &[])
            .await
            .unwrap()
            .get(0);
        (n, s)
    };
    let first = count().await;
    assert_eq!(first.0, 4);
    assert_eq!(first.1, exact.serial.as_bytes());
    analyze(&loaded.entries, &o, &store, &|_| {}).await.unwrap();
    assert_eq!(count().await.0, 4);
}

#[tokio::test]
async fn fixture_cache_stored_and_certs_imported() {
    let db = TestDb::new().await;
    let store = db.store();
    let dir = crate::fixtures::data_dir().join("32204232__portfolio/81b48a9be9c1");
    let loaded = certhist_cryptnet::load_path(&dir).unwrap();
    let o = opts(
        ResolveMode::Local,
        Some("portfolio"),
        CrtshConfig::default(),
    );
    let rows = analyze(&loaded.entries, &o, &store, &|_| {})
        .await
        .unwrap()
        .rows;
    assert_eq!(rows.len(), 93);
    let (client, conn) = db.pg_config().connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let n: i64 = client
        .query_one(
            "SELECT count(*) FROM cache_entries WHERE collection = 'portfolio'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 93);
    // The Content certificates (4 DER .crt downloads in this folder) are in the database.
    let certs: i64 = client
        .query_one("SELECT count(*) FROM certificates", &[])
        .await
        .unwrap()
        .get(0);
    let content_certs = loaded
        .entries
        .iter()
        .filter(|e| {
            e.content
                .as_ref()
                .is_some_and(|c| c.kind == certhist_cryptnet::CacheContentKind::Certificate)
        })
        .count() as i64;
    assert_eq!(
        content_certs, 5,
        "EXPECTED.tsv lists 5 cert contents in this folder"
    );
    assert!(certs >= content_certs, "{certs} < {content_certs}");
}

/// Issue 11: the library reports progress through a callback and "nothing to analyse" as a typed
/// error carrying the read warnings (no printing, no usage error).
#[tokio::test]
async fn analyze_paths_reports_progress_and_no_entries() {
    use std::sync::{Arc, Mutex};

    use certhist_cryptnet::{analyze_paths, CryptnetError, Progress};

    let db = TestDb::new().await;
    let store = db.store();
    let dir = crate::fixtures::data_dir().join("32204232__portfolio/81b48a9be9c1");
    let events: Arc<Mutex<Vec<Progress>>> = Arc::default();
    let sink = Arc::clone(&events);
    let missing = PathBuf::from("/nonexistent/certhist-cryptnet-test");
    let analysis = analyze_paths(
        &[dir.clone(), missing.clone()],
        &opts(ResolveMode::Local, Some("progress"), CrtshConfig::default()),
        &store,
        move |p| sink.lock().unwrap().push(p),
    )
    .await
    .unwrap();
    assert_eq!(analysis.rows.len(), 93);
    assert_eq!(analysis.warnings.len(), 1, "{:?}", analysis.warnings);
    assert!(
        analysis.warnings[0].starts_with("/nonexistent/certhist-cryptnet-test: "),
        "{:?}",
        analysis.warnings
    );
    let events = events.lock().unwrap().clone();
    let cert_ids: usize = analysis.rows.iter().filter(|r| r.serial.is_some()).count();
    let certs = events
        .iter()
        .find_map(|e| match e {
            Progress::Storing { certs, .. } => Some(*certs),
            _ => None,
        })
        .unwrap();
    assert!(certs >= 5, "the 5 Content certificates at least: {certs}");
    assert_eq!(
        events,
        vec![
            Progress::Reading { path: dir },
            Progress::Reading {
                path: missing.clone()
            },
            Progress::Loaded { entries: 93 },
            Progress::Storing { rows: 93, certs },
            Progress::ResolvingLocal { cert_ids },
        ]
    );

    let err = analyze_paths(
        std::slice::from_ref(&missing),
        &AnalyzeOptions::default(),
        &store,
        |_| {},
    )
    .await
    .unwrap_err();
    match err {
        CryptnetError::NoEntries { warnings } => {
            assert_eq!(warnings.len(), 1);
            assert!(
                warnings[0].contains("certhist-cryptnet-test"),
                "{warnings:?}"
            );
        }
        other => panic!("expected NoEntries, got {other:?}"),
    }
}
