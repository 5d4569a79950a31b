//! `certhist import certs|observations` end to end.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use certhist_test_support::TestDb;

use crate::support::{certhist, client, data, ok, pem_blocks, sha1_hex, stderr, stdout, url};

/// Every certificate of CERT_INVENTORY.tsv (recomputed independently with Python's cryptography)
/// is stored with the listed SHA-1, SHA-256, serial and subject; the ones a strict DER parser
/// rejects are stored anyway, with their parse error.
#[tokio::test]
async fn inventory_certificates_import_with_listed_values() {
    let db = TestDb::new().await;
    let out = ok(
        &db,
        &["--json", "import", "certs", data("certs").to_str().unwrap()],
    );
    let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(summary["read"].as_u64().unwrap() >= 200, "{summary}");
    let c = client(&db).await;
    let tsv = std::fs::read_to_string(data("certs/CERT_INVENTORY.tsv")).unwrap();
    let mut rows = 0;
    let mut strict_failures = 0;
    for line in tsv.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let (file, status, sha1, sha256, serial, subject) = (f[0], f[2], f[3], f[4], f[5], f[6]);
        let r = c
            .query_opt(
                "SELECT encode(sha256, 'hex'), encode(serial, 'hex'), serial_negative, subject_dn, parse_error
                 FROM certificates WHERE sha1 = decode($1, 'hex')",
                &[&sha1],
            )
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{file}: certificate {sha1} not stored"));
        rows += 1;
        assert_eq!(r.get::<_, String>(0), sha256, "{file}: sha256");
        let parse_error: Option<String> = r.get(4);
        if status == "ok" {
            assert_eq!(
                parse_error, None,
                "{file}: a strict parser reads it, so must we"
            );
            let want_serial = serial.trim_start_matches('-').trim_start_matches('0');
            let got: String = r.get::<_, Option<String>>(1).unwrap();
            assert_eq!(got.trim_start_matches('0'), want_serial, "{file}: serial");
            assert_eq!(
                r.get::<_, bool>(2),
                serial.starts_with('-'),
                "{file}: serial sign"
            );
            // An empty subject is NULL here; cert_bad_utf8_subject.pem is decoded lossily by us
            // (tests/data/certs/README.md), so only its DER-level values are compared.
            if !file.ends_with("cert_bad_utf8_subject.pem") {
                let dn = r.get::<_, Option<String>>(3).unwrap_or_default();
                // RFC 4514 escapes NUL as \\00; certhist shows it as U+2400 (text columns cannot hold NUL).
                assert_eq!(dn, subject.replace("\\00", "\u{2400}"), "{file}: subject");
            }
        } else {
            strict_failures += 1;
            // Either stored with its parse error, or read leniently with the right serial.
            if parse_error.is_none() {
                let got: Option<String> = r.get(1);
                assert!(
                    got.is_some(),
                    "{file}: parsed leniently but without a serial"
                );
            }
        }
    }
    assert_eq!(rows, 218);
    assert_eq!(strict_failures, 11);
    let with_errors: i64 = c
        .query_one(
            "SELECT count(*) FROM certificates WHERE parse_error IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        with_errors >= 1,
        "malformed certificates are stored with their parse error"
    );
}

/// The system CA bundle imports completely, and ISRG Root X1 is found by its CN.
#[tokio::test]
async fn system_ca_bundle_imports_completely() {
    let db = TestDb::new().await;
    let dir = std::path::Path::new("/etc/ssl/certs");
    let mut expected = BTreeSet::new();
    for entry in std::fs::read_dir(dir).expect("/etc/ssl/certs (install ca-certificates)") {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "pem") {
            for der in pem_blocks(&std::fs::read_to_string(&p).unwrap()) {
                expected.insert(sha1_hex(&der));
            }
        }
    }
    assert!(expected.len() > 100);
    let args: Vec<String> = std::iter::once("import".to_owned())
        .chain(std::iter::once("certs".to_owned()))
        .chain(std::fs::read_dir(dir).unwrap().filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "pem").then(|| p.display().to_string())
        }))
        .collect();
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&db, &argv);
    let c = client(&db).await;
    let stored: BTreeSet<String> = c
        .query(
            "SELECT encode(sha1, 'hex') FROM certificates WHERE parse_error IS NULL",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let missing: Vec<&String> = expected.difference(&stored).collect();
    assert!(
        missing.is_empty(),
        "not stored (or not parsed): {missing:?}"
    );
    let found = ok(&db, &["--json", "query", "search", "cn", "ISRG Root X1"]);
    assert!(
        found.contains("\"sha1\":\"cabd2a79a1076a31f21d253635cb039d4329a5e8\""),
        "{found}"
    );
}

const SHA_A: &str = "7cf01be9117755a7268ddc2dbf2bace7752488a4";
const SHA_B: &str = "e4b1743d5e839344a168d643e2f7bdd194ce5ab2";

/// Bad rows are reported with line numbers and skipped; the rest are stored and merged; a
/// second import of the same file changes nothing.
#[tokio::test]
async fn observations_import_reports_bad_rows_and_is_idempotent() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sightings.csv");
    std::fs::write(
        &path,
        format!(
            "ip,port,sha1,first_seen,last_seen,count,source\n\
             192.0.2.1,443,{SHA_A},2024-01-01T00:00:00Z,2024-01-10T00:00:00Z,2,scan\n\
             192.0.2.1,443,{SHA_A},1700000000,1700000100,1,scan\n\
             192.0.2.300,443,{SHA_A},2024-01-01T00:00:00Z,2024-01-10T00:00:00Z\n\
             192.0.2.2,99999,{SHA_B},2024-01-01T00:00:00Z,2024-01-10T00:00:00Z\n\
             192.0.2.2,443,{SHA_B},2024-02-01T00:00:00Z,2024-02-10T00:00:00Z,5,sonar\n"
        ),
    )
    .unwrap();
    let p = path.to_str().unwrap();
    let first = certhist(&db, &["import", "observations", p]);
    assert!(first.status.success(), "{}", stderr(&first));
    let err = stderr(&first);
    assert!(err.contains("sightings.csv:4: ip \"192.0.2.300\""), "{err}");
    assert!(err.contains("sightings.csv:5: port \"99999\""), "{err}");
    assert!(
        stdout(&first).contains("3 valid row(s)"),
        "{}",
        stdout(&first)
    );

    let c = client(&db).await;
    let snapshot = || async {
        c.query(
            "SELECT host(ip), port, encode(sha1,'hex'), first_seen::text, last_seen::text, times_seen, sources
             FROM observations ORDER BY 1, 2, 3",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {} {} {} {:?}",
                r.get::<_, String>(0),
                r.get::<_, i32>(1),
                r.get::<_, String>(2),
                r.get::<_, String>(3),
                r.get::<_, String>(4),
                r.get::<_, i64>(5),
                r.get::<_, Vec<String>>(6)
            )
        })
        .collect::<Vec<_>>()
    };
    let before = snapshot().await;
    assert_eq!(
        before,
        vec![
            format!(
                "192.0.2.1 443 {SHA_A} 2023-11-14 22:13:20+00 2024-01-10 00:00:00+00 3 [\"scan\"]"
            ),
            format!(
                "192.0.2.2 443 {SHA_B} 2024-02-01 00:00:00+00 2024-02-10 00:00:00+00 5 [\"sonar\"]"
            ),
        ]
    );
    let again = ok(&db, &["import", "observations", p]);
    assert!(again.contains("already imported"), "{again}");
    assert_eq!(snapshot().await, before);
    // A file with nothing valid fails with exit code 2.
    let junk = dir.path().join("junk.tsv");
    std::fs::write(&junk, "a\tb\tc\n").unwrap();
    let o = certhist(&db, &["import", "observations", junk.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

/// kill -9 in the middle of an import, then run it again: the same database as one clean run.
#[tokio::test]
async fn observations_import_resumes_after_a_crash() {
    let crashed = TestDb::new().await;
    let clean = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.csv.gz");
    {
        let file = std::fs::File::create(&path).unwrap();
        let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        for i in 0..120_000u32 {
            let ip = format!("10.{}.{}.{}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
            // Distinct keys, one sighting each: a lost batch lowers the count, a repeated one raises the sum.
            let sha = format!("{:040x}", i);
            writeln!(
                gz,
                "{ip},443,{sha},{},{},1,bench",
                1_700_000_000 + i,
                1_700_000_000 + i
            )
            .unwrap();
        }
        gz.finish().unwrap();
    }
    let p = path.to_str().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_certhist"))
        .args(["import", "observations", p, "--batch-size", "2000"])
        .env("DATABASE_URL", url(&crashed))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let c = client(&crashed).await;
    let started = Instant::now();
    loop {
        let done: Option<i64> = c
            .query_opt("SELECT rows_done FROM imported_files", &[])
            .await
            .unwrap()
            .map(|r| r.get(0));
        if done.is_some_and(|d| d > 0) || started.elapsed() > Duration::from_secs(120) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    ok(
        &crashed,
        &["import", "observations", p, "--batch-size", "2000"],
    );
    ok(&clean, &["import", "observations", p]);
    let digest = |db: &TestDb| {
        let db_cfg = db.pg_config();
        async move {
            let (c, conn) = db_cfg.connect(tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            let r = c
                .query_one(
                    "SELECT count(*), sum(times_seen)::bigint,
                            md5(string_agg(host(ip) || port || encode(sha1,'hex') || first_seen || last_seen || times_seen, ',' ORDER BY ip, port, sha1))
                     FROM observations",
                    &[],
                )
                .await
                .unwrap();
            (
                r.get::<_, i64>(0),
                r.get::<_, i64>(1),
                r.get::<_, String>(2),
            )
        }
    };
    let a = digest(&crashed).await;
    let b = digest(&clean).await;
    assert_eq!(a.0, 120_000);
    assert_eq!(a.1, 120_000);
    assert_eq!(a, b);
}

/// Two processes importing the same file at once: one imports, the other is refused (or sees
/// it already imported); the counts are those of one import.
#[tokio::test]
async fn concurrent_imports_of_one_file_count_once() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("twice.csv");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        for i in 0..40_000u32 {
            writeln!(
                f,
                "192.0.{}.{},443,{:040x},1700000000,1700000000,1,x",
                i >> 8 & 0xff,
                i & 0xff,
                i % 1000
            )
            .unwrap();
        }
    }
    let p = path.to_str().unwrap();
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_certhist"))
            .args(["import", "observations", p, "--batch-size", "1000"])
            .env("DATABASE_URL", url(&db))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let codes = [a.status.code(), b.status.code()];
    assert!(codes.contains(&Some(0)), "{codes:?}");
    for o in [&a, &b] {
        if o.status.code() == Some(2) {
            assert!(
                stderr(o).contains("is being imported by another certhist process"),
                "{}",
                stderr(o)
            );
        }
    }
    let c = client(&db).await;
    let total: i64 = c
        .query_one("SELECT sum(times_seen)::bigint FROM observations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(total, 40_000);
}

/// SHA-1s of one fixture file's certificates, from CERT_INVENTORY.tsv (computed with Python's
/// cryptography, independently of certhist).
fn inventory_sha1s(file: &str) -> Vec<String> {
    let tsv = std::fs::read_to_string(data("certs/CERT_INVENTORY.tsv")).unwrap();
    let rows: Vec<String> = tsv
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0] == file).then(|| f[3].to_owned())
        })
        .collect();
    assert!(!rows.is_empty(), "{file} is not in the inventory");
    rows
}

/// Issue 11: an analyst's JSON export of certificate chains imports. PEM chains inside JSON
/// strings (newlines escaped as `\n`), a chain JSON-encoded twice (`\\n`), a PEM block in a log
/// line, base64 DER in `"raw"` fields, PHP-style `\/` escapes, and a minified document on one
/// line: every certificate is stored. A block with bad base64 is reported with file and line,
/// and the rest is imported.
#[tokio::test]
async fn json_documents_with_escaped_pem_chains_import_every_certificate() {
    use base64::Engine;
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let read = |rel: &str| std::fs::read_to_string(data(&format!("certs/{rel}"))).unwrap();
    let subleaf = "certificate-transparency-go/trillian/testdata/subleaf.chain";
    let leaf01 = "certificate-transparency-go/trillian/testdata/leaf01.chain";
    let embedded =
        "certificate-transparency/test/testdata/test-embedded-with-intermediate-cert.pem";
    let e5 = "letsencrypt-website/static/certs/staging/2024/e5.der";
    let r10 = "letsencrypt-website/static/certs/staging/2024/r10.der";
    let b64 = |rel: &str| {
        base64::engine::general_purpose::STANDARD
            .encode(std::fs::read(data(&format!("certs/{rel}"))).unwrap())
    };

    // 1. Pretty-printed: two chains as JSON strings, and a block whose base64 is broken.
    let broken = "-----BEGIN CERTIFICATE-----\nMIIB!!!!notbase64\n-----END CERTIFICATE-----\n";
    let pretty = serde_json::to_string_pretty(&serde_json::json!({
        "case": "incident 42",
        "chains": [
            {"host": "198.51.100.7", "pem": read(subleaf)},
            {"host": "198.51.100.8", "pem": read(leaf01)},
        ],
        "broken": broken,
    }))
    .unwrap();
    assert!(
        pretty.contains("-----BEGIN CERTIFICATE-----\\nMII"),
        "{pretty}"
    );
    let broken_line = pretty
        .lines()
        .position(|l| l.contains("notbase64"))
        .unwrap()
        + 1;
    let chains = dir.path().join("chains.json");
    std::fs::write(&chains, &pretty).unwrap();

    // 2. Minified, one line: a chain encoded twice, DER in "raw" fields, a log line holding a
    // PEM block; then every '/' escaped as `\/` (valid JSON, as PHP writes it).
    let twice = serde_json::to_string(&read(leaf01)).unwrap();
    let minified = serde_json::to_string(&serde_json::json!({
        "nested": twice,
        "certificates": [{"raw": b64(e5)}, {"raw": b64(r10)}],
        "log": format!("2025-01-02T03:04:05Z nginx client_cert=\"{}\" ok", read(embedded)),
    }))
    .unwrap()
    .replace('/', "\\/");
    assert!(minified.contains("\\\\n") && minified.contains("\\/"));
    assert!(!minified.contains('\n'));
    let export = dir.path().join("export.json");
    std::fs::write(&export, &minified).unwrap();

    let o = certhist(
        &db,
        &[
            "--json",
            "import",
            "certs",
            chains.to_str().unwrap(),
            export.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("chains.json:{broken_line}: invalid base64")),
        "{err}"
    );
    let summary: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let mut expected = BTreeSet::new();
    for file in [subleaf, leaf01, embedded, e5, r10] {
        expected.extend(inventory_sha1s(file));
    }
    assert_eq!(expected.len(), 9);
    // leaf01's two certificates are in both documents.
    assert_eq!(summary["read"], 11, "{summary}");
    assert_eq!(summary["new"], 9, "{summary}");
    assert_eq!(summary["problems"], 1, "{summary}");
    let c = client(&db).await;
    let stored: BTreeSet<String> = c
        .query("SELECT encode(sha1, 'hex') FROM certificates", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(stored, expected);
}
