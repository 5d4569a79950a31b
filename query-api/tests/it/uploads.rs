//! `POST /api/v1/uploads/…` (issue 12): real fixture files sent through the router (and, for the
//! cut-off upload, through a real socket), counts checked against values computed here from the
//! files themselves and against the same files imported by the import driver the CLI uses.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use certhist_api::auth::Principal;
use certhist_api::ServeConfig;
use certhist_model::views::Role;
use certhist_test_support::TestDb;
use serde_json::Value;
use tower::ServiceExt;

use crate::{app, app_with, error_detail};

fn data(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data")
        .join(rel)
}

/// POST `body` to `uri` through the router, as `principal` when given.
async fn post(
    app: &Router,
    uri: &str,
    body: Vec<u8>,
    content_type: Option<&str>,
    principal: Option<Principal>,
) -> (StatusCode, Value) {
    let mut req = Request::post(uri);
    if let Some(ct) = content_type {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    if let Some(p) = principal {
        req = req.extension(p);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{uri}: not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
    (status, json)
}

async fn client(db: &TestDb) -> tokio_postgres::Client {
    let (client, conn) = db.pg_config().connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    client(db).await.query_one(sql, &[]).await.unwrap().get(0)
}

/// The valid rows of a CSV observation file, by an independent reader: (ip, port, sha1) of every
/// line whose first field is an address, and the 1-based numbers of the other non-header lines.
fn csv_rows(text: &str) -> (Vec<(IpAddr, u16, String)>, Vec<u64>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split(',').collect();
        if i == 0 && f[0] == "ip" {
            continue;
        }
        match (
            f[0].parse::<IpAddr>(),
            f.get(1).and_then(|p| p.parse::<u16>().ok()),
        ) {
            (Ok(ip), Some(port)) => good.push((ip, port, f[2].to_owned())),
            _ => bad.push(i as u64 + 1),
        }
    }
    (good, bad)
}

#[tokio::test]
async fn observations_upload_stores_what_the_file_holds_and_reports_the_bad_line() {
    let db = TestDb::new().await;
    let app = app(&db);
    let path = data("demo/observations.csv");
    let bytes = std::fs::read(&path).unwrap();
    let (good, bad) = csv_rows(&String::from_utf8_lossy(&bytes));
    assert_eq!(
        (good.len(), bad.as_slice()),
        (10, &[12][..]),
        "fixture README: one broken line"
    );
    let keys: BTreeSet<_> = good.iter().collect();

    let (status, body) = post(
        &app,
        "/api/v1/uploads/observations?filename=observations.csv",
        bytes.clone(),
        Some("text/csv"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::MULTI_STATUS, "{body}");
    assert_eq!(body["kind"], "observations");
    assert_eq!(body["file"], "observations.csv");
    assert_eq!(body["size_bytes"], bytes.len());
    assert_eq!(body["rows_stored"], good.len());
    assert_eq!(body["bad_rows"], 1);
    assert_eq!(body["observation_keys"], keys.len());
    assert_eq!(body["duplicates"], good.len() - keys.len());
    assert_eq!(body["already_imported"], false);
    assert_eq!(body["problems"].as_array().unwrap().len(), 1);
    assert_eq!(body["problems"][0]["line"], 12);
    assert_eq!(body["problems_truncated"], false);
    {
        use sha2::Digest;
        assert_eq!(
            body["content_sha256"],
            hex::encode(sha2::Sha256::digest(&bytes))
        );
    }
    assert_eq!(
        count(&db, "SELECT count(*) FROM observations").await,
        keys.len() as i64
    );
    // The counts of the file, summed independently, are in the database.
    let total: i64 = bytes
        .split(|b| *b == b'\n')
        .filter_map(|l| std::str::from_utf8(l).ok())
        .filter_map(|l| l.split(',').nth(5)?.parse::<i64>().ok())
        .sum();
    assert_eq!(
        count(&db, "SELECT sum(times_seen)::bigint FROM observations").await,
        total
    );
    // Rows without a source of their own would get the file name (here every row has one).
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM observations WHERE sources && ARRAY['demo-scan','demo-sonar']"
        )
        .await,
        keys.len() as i64
    );

    // The same bytes again: nothing changes (the CLI's re-import rule).
    let (status, body) = post(
        &app,
        "/api/v1/uploads/observations?filename=again.csv",
        bytes.clone(),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["already_imported"], true);
    assert_eq!(
        count(&db, "SELECT sum(times_seen)::bigint FROM observations").await,
        total
    );

    // One audit entry per upload, with the counts.
    let rows = client(&db)
        .await
        .query(
            "SELECT action, target, detail FROM audit_log ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].get::<_, String>(0), "upload.observations");
    assert_eq!(
        rows[0].get::<_, Option<String>>(1).as_deref(),
        Some("observations.csv")
    );
    let detail: Value = rows[0].get(2);
    assert_eq!(detail["rows_stored"], good.len());
    assert_eq!(detail["bad_rows"], 1);
    assert_eq!(
        rows[1].get::<_, Option<String>>(1).as_deref(),
        Some("again.csv")
    );
    assert_eq!(rows[1].get::<_, Value>(2)["already_imported"], true);
}

#[tokio::test]
async fn upload_counts_equal_the_cli_import_driver_on_the_same_file() {
    // The same file through the driver (what `certhist import observations` runs) into one
    // database and through the API into another: the same summary and the same rows.
    let path = data("demo/observations.csv");
    let by_driver = TestDb::new().await;
    let report = certhist_files::import_files(
        &by_driver.store(),
        Arc::new(certhist_files::ObservationFiles {
            source: Some("same".into()),
        }),
        std::slice::from_ref(&path),
        &certhist_files::ImportOptions::default(),
        &certhist_files::NoProgress,
    )
    .await
    .unwrap();
    let by_api = TestDb::new().await;
    let (status, body) = post(
        &app(&by_api),
        "/api/v1/uploads/observations?source=same&format=csv",
        std::fs::read(&path).unwrap(),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::MULTI_STATUS, "{body}");
    let t = &report.totals;
    assert_eq!(body["rows_read"], t.items);
    assert_eq!(body["rows_stored"], t.records);
    assert_eq!(body["bad_rows"], t.problems);
    assert_eq!(body["observation_keys"], t.observation_keys);
    let dump = "SELECT string_agg(concat_ws(' ', ip, port, encode(sha1, 'hex'), first_seen, last_seen, times_seen, sources), E'\\n' ORDER BY ip, port, sha1) FROM observations";
    let a: String = client(&by_driver)
        .await
        .query_one(dump, &[])
        .await
        .unwrap()
        .get(0);
    let b: String = client(&by_api)
        .await
        .query_one(dump, &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(a, b);
}

#[tokio::test]
async fn ndjson_and_gzip_observations_and_the_bad_row_list_is_capped() {
    let db = TestDb::new().await;
    let app = app(&db);
    // 3 good NDJSON rows (two share a key) and 150 bad ones, gzip-compressed.
    let mut text = String::new();
    for ip in ["192.0.2.1", "192.0.2.2", "192.0.2.1"] {
        text.push_str(&format!(
            "{{\"ip\":\"{ip}\",\"port\":443,\"sha1\":\"{}\",\"first_seen\":\"2024-01-01T00:00:00Z\",\"last_seen\":\"2024-02-01T00:00:00Z\",\"count\":2}}\n",
            "ab".repeat(20)
        ));
    }
    for i in 0..150 {
        text.push_str(&format!("{{\"ip\":\"not-an-ip-{i}\"}}\n"));
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let (status, body) = post(
        &app,
        "/api/v1/uploads/observations?format=ndjson&filename=rows.ndjson.gz",
        gz,
        Some("application/gzip"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::MULTI_STATUS, "{body}");
    assert_eq!(body["rows_stored"], 3);
    assert_eq!(body["observation_keys"], 2);
    assert_eq!(body["duplicates"], 1);
    assert_eq!(body["bad_rows"], 150);
    let problems = body["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 100);
    assert_eq!(body["problems_truncated"], true);
    assert_eq!(problems[0]["line"], 4);
    assert_eq!(problems[99]["line"], 103);
    assert_eq!(count(&db, "SELECT count(*) FROM observations").await, 2);
    assert_eq!(
        count(
            &db,
            "SELECT times_seen FROM observations WHERE ip = '192.0.2.1'"
        )
        .await,
        4
    );
    // The file name is the default source label, as on the command line.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM observations WHERE sources = ARRAY['rows.ndjson.gz']"
        )
        .await,
        2
    );
}

#[tokio::test]
async fn certificates_upload_stores_every_certificate_of_the_pem_file() {
    let db = TestDb::new().await;
    let app = app(&db);
    let pem = std::fs::read_to_string(data("demo/certs.pem")).unwrap();
    let blocks = pem.matches("-----BEGIN CERTIFICATE-----").count();
    assert_eq!(blocks, 15, "fixture README: 12 + 2 + 1 certificates");
    let (status, body) = post(
        &app,
        "/api/v1/uploads/certificates?filename=certs.pem",
        pem.clone().into_bytes(),
        Some("application/x-pem-file"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["kind"], "certs");
    assert_eq!(body["certificates_seen"], blocks);
    assert_eq!(body["certificates_new"], blocks);
    // The BER certificate of the README is stored with its parse error.
    assert_eq!(body["certificates_unparsable"], 1);
    assert_eq!(body["bad_rows"], 0);
    assert_eq!(
        count(&db, "SELECT count(*) FROM certificates").await,
        blocks as i64
    );
    // Again: every one is known now.
    let (status, body) = post(
        &app,
        "/api/v1/uploads/certificates",
        pem.into_bytes(),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["certificates_new"], 0);
    assert_eq!(body["duplicates"], blocks);
    // A DER file works the same way.
    let der = std::fs::read(data(
        "certs/rustls/rustls-test/benches/data/cert-github.0.der",
    ))
    .unwrap();
    let (status, body) = post(
        &app,
        "/api/v1/uploads/certificates?filename=github.der",
        der,
        Some("application/pkix-cert"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["certificates_seen"], 1);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM audit_log WHERE action = 'upload.certificates'"
        )
        .await,
        3
    );
}

#[tokio::test]
async fn scan_uploads_use_the_cli_formats() {
    let db = TestDb::new().await;
    let app = app(&db);
    // masscan XML, bzip2 (scans README: 48 hosts on port 443, 38 distinct certificates).
    let (status, body) = post(
        &app,
        "/api/v1/uploads/scan/masscan?filename=test-T443.xml.bz2",
        std::fs::read(data("scans/ivre__ivre-test-samples/test-T443.xml.bz2")).unwrap(),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["kind"], "masscan");
    assert_eq!(body["sightings"], 48);
    assert_eq!(body["observation_keys"], 48);
    assert_eq!(body["certificates_new"], 38);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM observations WHERE port = 443 AND sources = ARRAY['masscan']"
        )
        .await,
        48
    );

    // nmap XML: 10.10.10.17:443 served f448e798….
    let (status, body) = post(
        &app,
        "/api/v1/uploads/scan/nmap?filename=initial.xml&label=htb",
        std::fs::read(data("scans/montyshyama__htb-brainfuck/nmap/initial.xml")).unwrap(),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["sightings"], 1);
    assert_eq!(
        count(&db, "SELECT count(*) FROM observations WHERE ip = '10.10.10.17' AND port = 443 AND encode(sha1, 'hex') = 'f448e798a8175580879c8fb8ef0e2d3dc656cb66' AND sources = ARRAY['htb']").await,
        1
    );

    // Sonar hosts: the file name has no date, so `date` is needed — before the body is read.
    let hosts = std::fs::read(data("scans/crocs-muni__cevast/3-hosts.gz")).unwrap();
    let (status, body) = post(
        &app,
        "/api/v1/uploads/scan/sonar-hosts?filename=3-hosts.gz",
        hosts.clone(),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // 3 lines, the third's SHA-1 is not hex (README): 2 sightings and one bad row, line 3.
    let (status, body) = post(
        &app,
        "/api/v1/uploads/scan/sonar-hosts?filename=3-hosts.gz&date=20200608&port=8443",
        hosts,
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::MULTI_STATUS, "{body}");
    assert_eq!(
        body["kind"].as_str().unwrap().split(':').next(),
        Some("sonar-hosts")
    );
    assert_eq!(body["sightings"], 2);
    assert_eq!(body["bad_rows"], 1);
    assert_eq!(body["problems"][0]["line"], 3);
    assert_eq!(
        count(&db, "SELECT count(*) FROM observations WHERE port = 8443 AND first_seen = '2020-06-08T00:00:00Z'").await,
        2
    );

    // Unknown formats and parameters a format does not use.
    let (status, body) = post(&app, "/api/v1/uploads/scan/pcap", b"x".to_vec(), None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = post(
        &app,
        "/api/v1/uploads/scan/nmap?date=20200101",
        b"x".to_vec(),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_detail(&body).contains("`date`"), "{body}");
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM audit_log WHERE action LIKE 'upload.scan.%'"
        )
        .await,
        3
    );
}

/// A zip of the cache folder `dir` (MetaData and Content) as collected from a profile:
/// `Users/bob/AppData/LocalLow/Microsoft/CryptnetUrlCache/…`.
fn zip_cache(dir: &Path) -> Vec<u8> {
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for sub in ["MetaData", "Content"] {
        let mut files: Vec<_> = std::fs::read_dir(dir.join(sub))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for p in files {
            let name = format!(
                "Users/bob/AppData/LocalLow/Microsoft/CryptnetUrlCache/{sub}/{}",
                p.file_name().unwrap().to_str().unwrap()
            );
            out.start_file(name, options).unwrap();
            let mut bytes = Vec::new();
            std::fs::File::open(&p)
                .unwrap()
                .read_to_end(&mut bytes)
                .unwrap();
            out.write_all(&bytes).unwrap();
        }
    }
    out.finish().unwrap().into_inner()
}

#[tokio::test]
async fn cryptnet_zip_upload_gives_the_report_and_stores_it_under_the_label() {
    let zip = zip_cache(&data("cryptnet/mohdan__codingTest/7de46a191103"));
    // The same zip through the library, as `certhist cryptnet --store --label case-7` runs it.
    let by_library = TestDb::new().await;
    let tmp = tempfile::tempdir().unwrap();
    let zip_path = tmp.path().join("cache.zip");
    std::fs::write(&zip_path, &zip).unwrap();
    let analysis = certhist_cryptnet::analyze_paths(
        std::slice::from_ref(&zip_path),
        &certhist_cryptnet::AnalyzeOptions {
            resolve: certhist_cryptnet::ResolveMode::Local,
            store_label: Some("case-7".into()),
            ..Default::default()
        },
        &by_library.store(),
        |_| {},
    )
    .await
    .unwrap();
    // 12 MetaData files in the fixture (cryptnet/EXPECTED.tsv), one row each at least.
    assert!(analysis.rows.len() >= 12, "{}", analysis.rows.len());

    let db = TestDb::new().await;
    let app = app(&db);
    let (status, body) = post(
        &app,
        "/api/v1/uploads/cryptnet?label=case-7&filename=cache.zip",
        zip.clone(),
        Some("application/zip"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["label"], "case-7");
    let rows = body["rows"].as_array().unwrap();
    assert_eq!(rows.len(), analysis.rows.len());
    // Row for row the library's report, except where it was read from.
    for (api, lib) in rows.iter().zip(&analysis.rows) {
        let mut lib = serde_json::to_value(lib).unwrap();
        let lib_source = lib["source"].as_str().unwrap().to_owned();
        let api_source = api["source"].as_str().unwrap();
        assert!(
            !api_source.contains("certhist-upload-"),
            "the spool path is not shown: {api_source}"
        );
        assert_eq!(
            api_source.strip_prefix("cache.zip"),
            lib_source.strip_prefix(zip_path.to_str().unwrap())
        );
        lib["source"] = api["source"].clone();
        assert_eq!(api, &lib);
    }
    let stored = "SELECT count(*) FROM cache_entries WHERE collection = 'case-7'";
    assert_eq!(count(&db, stored).await, count(&by_library, stored).await);
    assert!(count(&db, stored).await > 0);
    // Stored under the upload's name, not the server's spool path.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM cache_entries WHERE source_path LIKE 'cache.zip!Users/bob/%'"
        )
        .await,
        count(&db, stored).await
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM audit_log WHERE action = 'upload.cryptnet' AND target = 'case-7'"
        )
        .await,
        1
    );

    // The label is required; a body without cache entries is a 400.
    let (status, body) = post(&app, "/api/v1/uploads/cryptnet", zip, None, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_detail(&body).contains("`label`"), "{body}");
    let (status, body) = post(
        &app,
        "/api/v1/uploads/cryptnet?label=x",
        b"no cache here".to_vec(),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn uploads_need_the_analyst_role_and_check_their_input() {
    let db = TestDb::new().await;
    let app = app(&db);
    let reader = Principal {
        user: Some("rita".into()),
        role: Role::Reader,
        source: None,
    };
    let analyst = Principal {
        user: Some("anna".into()),
        role: Role::Analyst,
        source: Some("192.0.2.50".parse().unwrap()),
    };
    let csv = b"192.0.2.1,443,abababababababababababababababababababab,2024-01-01T00:00:00Z,2024-01-02T00:00:00Z\n".to_vec();
    for uri in [
        "/api/v1/uploads/observations",
        "/api/v1/uploads/certificates",
        "/api/v1/uploads/scan/nmap",
        "/api/v1/uploads/cryptnet?label=x",
    ] {
        let (status, body) = post(&app, uri, csv.clone(), None, Some(reader.clone())).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{uri}: {body}");
        assert!(error_detail(&body).contains("analyst"), "{body}");
    }
    assert_eq!(count(&db, "SELECT count(*) FROM observations").await, 0);
    let (status, body) = post(
        &app,
        "/api/v1/uploads/observations?filename=one.csv",
        csv.clone(),
        None,
        Some(analyst),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let row = client(&db)
        .await
        .query_one("SELECT actor, source FROM audit_log", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<String>>(0).as_deref(), Some("anna"));
    assert_eq!(
        row.get::<_, Option<String>>(1).as_deref(),
        Some("192.0.2.50")
    );

    // Bad input: empty body, unknown parameter, unsupported format / Content-Type.
    let (status, body) = post(&app, "/api/v1/uploads/observations", Vec::new(), None, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_detail(&body).contains("`body`"), "{body}");
    let (status, body) = post(
        &app,
        "/api/v1/uploads/observations?nope=1",
        csv.clone(),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_detail(&body).contains("nope"), "{body}");
    let (status, _) = post(
        &app,
        "/api/v1/uploads/observations?format=xml",
        csv.clone(),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, _) = post(
        &app,
        "/api/v1/uploads/observations",
        csv.clone(),
        Some("image/png"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, body) = post(
        &app,
        "/api/v1/uploads/observations?filename=..",
        csv,
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_detail(&body).contains("`filename`"), "{body}");
}

#[tokio::test]
async fn the_upload_limit_is_separate_from_the_body_limit() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let config = ServeConfig {
        body_limit_bytes: 16,
        upload_limit_bytes: 4096,
        upload_dir: Some(dir.path().to_owned()),
        ..ServeConfig::default()
    };
    let app = app_with(&db, config);
    let csv = std::fs::read(data("demo/observations.csv")).unwrap();
    assert!(csv.len() > 16 && csv.len() < 4096);
    let (status, body) = post(&app, "/api/v1/uploads/observations", csv, None, None).await;
    assert_eq!(status, StatusCode::MULTI_STATUS, "{body}");
    let big = vec![b'x'; 5000];
    let (status, body) = post(&app, "/api/v1/uploads/certificates", big, None, None).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(error_detail(&body).contains("4096"), "{body}");
    // The spool is cleaned up after every upload.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// The entries of `dir` (the spool directories of uploads in progress).
fn spool_dirs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

/// Polls `cond` until it holds (no timing assertion: the cap only stops a hung test).
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..6000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("gave up waiting until {what}");
}

#[tokio::test]
async fn an_upload_cut_off_mid_stream_writes_nothing() {
    let db = TestDb::new().await;
    let spool = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let config = ServeConfig {
        upload_dir: Some(spool.path().to_owned()),
        ..ServeConfig::default()
    };
    let server = tokio::spawn(certhist_api::serve_on(
        listener,
        db.store(),
        config,
        async {
            let _ = stop_rx.await;
        },
    ));
    // 2,000 good rows (several database batches' worth would be the same: nothing is imported
    // before the whole body is in).
    let mut text = String::new();
    for i in 0..2000u32 {
        text.push_str(&format!(
            "10.{}.{}.{},443,{:040x},2024-01-01T00:00:00Z,2024-01-02T00:00:00Z,1,cut\n",
            i / 65536,
            (i / 256) % 256,
            i % 256,
            i
        ));
    }
    let sent = text.len() / 2;
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    write!(
        tcp,
        "POST /api/v1/uploads/observations?filename=cut.csv HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/csv\r\nContent-Length: {}\r\n\r\n",
        text.len()
    )
    .unwrap();
    tcp.write_all(&text.as_bytes()[..sent]).unwrap();
    tcp.flush().unwrap();
    // The server is receiving the body into its spool file…
    let spool_dir = spool.path().to_owned();
    wait_until("the upload is being spooled", || {
        spool_dirs(&spool_dir)
            .iter()
            .any(|d| d.join("cut.csv").exists())
    })
    .await;
    // …then the client goes away.
    drop(tcp);
    wait_until("the handler is done and the spool removed", || {
        spool_dirs(&spool_dir).is_empty()
    })
    .await;
    assert_eq!(count(&db, "SELECT count(*) FROM observations").await, 0);
    assert_eq!(count(&db, "SELECT count(*) FROM imported_files").await, 0);
    assert_eq!(count(&db, "SELECT count(*) FROM audit_log").await, 0);

    // The whole file afterwards imports completely.
    let resp = reqwest::Client::new()
        .post(format!(
            "http://{addr}/api/v1/uploads/observations?filename=cut.csv"
        ))
        .body(text.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["rows_stored"], 2000);
    assert_eq!(count(&db, "SELECT count(*) FROM observations").await, 2000);
    stop_tx.send(()).unwrap();
    let _ = server.await;
}
