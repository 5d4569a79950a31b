//! Issue 11 (regression): certificate text reaches the terminal only through the one escaping
//! function (`output::clean`). A certificate whose subject CN, O and SAN hold ESC `[31m`,
//! U+202E (right-to-left override) and NUL is imported and seen on two addresses; every human
//! output that shows it — `query ip`, `cert`, `search`, `serial`, `overlap`, `expand` — shows
//! those characters escaped and lets none of them through raw. (The scan summary and the
//! cryptnet report have their own tests in `scan.rs` and `cryptnet.rs`.)

use std::io::Write;

use certhist_test_support::TestDb;

use crate::support::{certhist, hostile_cert, ok, sha1_hex, stderr};

fn assert_clean(what: &str, out: &str) {
    for bad in ['\u{1b}', '\u{202e}', '\0'] {
        assert!(
            !out.contains(bad),
            "{what}: raw {bad:?} in stdout:\n{out:?}"
        );
    }
}

#[tokio::test]
async fn every_human_query_output_escapes_certificate_text() {
    let db = TestDb::new().await;
    let (cert, _key) = hostile_cert();
    let sha1 = sha1_hex(cert.der());
    let dir = tempfile::tempdir().unwrap();
    let cert_file = dir.path().join("hostile.pem");
    std::fs::write(&cert_file, cert.pem()).unwrap();
    let obs_file = dir.path().join("sightings.csv");
    let mut f = std::fs::File::create(&obs_file).unwrap();
    writeln!(f, "ip,port,sha1,first_seen,last_seen,count,source").unwrap();
    writeln!(
        f,
        "192.0.2.201,443,{sha1},2026-01-01T00:00:00Z,2026-02-01T00:00:00Z,3,test"
    )
    .unwrap();
    writeln!(
        f,
        "192.0.2.202,443,{sha1},2026-01-15T00:00:00Z,2026-03-01T00:00:00Z,2,test"
    )
    .unwrap();
    drop(f);
    ok(&db, &["import", "certs", cert_file.to_str().unwrap()]);
    ok(&db, &["import", "observations", obs_file.to_str().unwrap()]);

    // CN as stored: NUL becomes U+2400 (␀) at parse time; ESC and U+202E are shown as escapes.
    let cn = "evil\\u{1b}[31m\\u{202e}gpj.exe\u{2400}cn";
    let org = "Org\\u{1b}[31m\\u{202e}\u{2400}o";
    let san = "x\\u{1b}[31mred\u{2400}.example";
    // Table cells are cut at 64 characters; the CN and O fit.
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec!["query", "ip", "192.0.2.201"], vec![cn]),
        (vec!["query", "cert", &sha1], vec![cn, org, san]),
        (
            vec!["query", "search", "name", "*hostile.example"],
            vec![cn],
        ),
        (vec!["query", "search", "subject-o", "org*"], vec![cn]),
        (
            vec!["query", "overlap", "192.0.2.201", "192.0.2.202"],
            vec![cn],
        ),
        (vec!["query", "expand", &sha1], vec![cn]),
    ];
    for (args, wanted) in &cases {
        let out = ok(&db, args);
        assert_clean(&args.join(" "), &out);
        for w in wanted {
            assert!(out.contains(w), "{}: {w:?} not in\n{out}", args.join(" "));
        }
    }
    // By serial, in the notation the record gives.
    let record = ok(&db, &["--json", "query", "cert", &sha1]);
    let v: serde_json::Value = serde_json::from_str(record.trim()).unwrap();
    let serial = v["serial"].as_str().unwrap().to_owned();
    let out = ok(&db, &["query", "serial", &serial]);
    assert_clean("query serial", &out);
    assert!(out.contains(cn), "{out}");
}

/// Issue 11: error messages quote input (paths, URLs, server answers) and reach the terminal
/// through the same escaping.
#[tokio::test]
async fn error_messages_are_escaped() {
    let db = TestDb::new().await;
    let o = certhist(
        &db,
        &[
            "import",
            "observations",
            "/nonexistent/\u{1b}[31mred\u{202e}x.csv",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("/nonexistent/\\u{1b}[31mred\\u{202e}x.csv"),
        "{err}"
    );
    assert_clean("import error", &err);
}
