//! `certhist import zgrab2|sonar|nmap|masscan` end to end.

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use certhist_test_support::TestDb;

use crate::support::{client, data, stderr, stdout, url};

/// Runs the same `certhist ARGS` twice at once and waits for both.
fn run_twice(db: &TestDb, args: &[&str]) -> (Output, Output) {
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_certhist"))
            .args(args)
            .env("DATABASE_URL", url(db))
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    (a.wait_with_output().unwrap(), b.wait_with_output().unwrap())
}

/// Of two concurrent imports of one file, one imports it. The other is refused at once (exit 2,
/// "is being imported by another certhist process": it does not wait for the lock), or, when it
/// only starts after the first has finished, finds the file already imported (exit 0).
fn assert_one_imported(a: &Output, b: &Output) {
    let codes = [a.status.code(), b.status.code()];
    assert!(
        codes.contains(&Some(0)),
        "{codes:?}\n{}\n{}",
        stderr(a),
        stderr(b)
    );
    for o in [a, b] {
        match o.status.code() {
            Some(0) => {}
            Some(2) => assert!(
                stderr(o).contains("is being imported by another certhist process"),
                "{}",
                stderr(o)
            ),
            other => panic!("exit {other:?}: {}", stderr(o)),
        }
    }
    let done = [a, b]
        .iter()
        .filter(|o| o.status.success() && !stdout(o).contains("already imported"))
        .count();
    assert_eq!(done, 1, "{}\n{}", stdout(a), stdout(b));
}

async fn sum_times_seen(db: &TestDb) -> i64 {
    client(db)
        .await
        .query_one(
            "SELECT coalesce(sum(times_seen), 0)::bigint FROM observations",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// Issue 11 (regression): `import sonar` took no per-file lock, so two concurrent imports of one
/// hosts file both added to `times_seen`. The real 10,000-line Sonar hosts file, in batches of 100
/// so the imports overlap: every sighting counted once.
#[tokio::test]
async fn concurrent_sonar_imports_of_one_file_count_once() {
    let db = TestDb::new().await;
    let hosts = data("scans/crocs-muni__cevast/10000-hosts.gz");
    // Independently: the `ip,sha1` lines of the decompressed file.
    let expected = {
        let gz = flate2::read::GzDecoder::new(std::fs::File::open(&hosts).unwrap());
        std::io::BufReader::new(gz)
            .lines()
            .map(Result::unwrap)
            .filter(|l| {
                l.split_once(',').is_some_and(|(ip, sha1)| {
                    ip.parse::<std::net::IpAddr>().is_ok()
                        && sha1.len() == 40
                        && sha1.bytes().all(|b| b.is_ascii_hexdigit())
                })
            })
            .count() as i64
    };
    assert_eq!(expected, 10_000);
    let p = hosts.to_str().unwrap();
    let (a, b) = run_twice(
        &db,
        &[
            "import", "sonar", "--hosts", p, "--date", "20200608", "--batch", "100",
        ],
    );
    assert_one_imported(&a, &b);
    assert_eq!(sum_times_seen(&db).await, expected);
}

/// One ZGrab 2015 log line per record of `zmap__ztag/test.json`, `copies` times over.
fn repeated_ztag(dir: &Path, copies: usize) -> std::path::PathBuf {
    let text = std::fs::read_to_string(data("scans/zmap__ztag/test.json")).unwrap();
    let path = dir.join("ztag-repeated.json");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for _ in 0..copies {
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            writeln!(f, "{line}").unwrap();
        }
    }
    f.flush().unwrap();
    path
}

/// Issue 11 (regression): the same for `import zgrab2`. The real ZGrab log records of
/// `zmap__ztag/test.json`, repeated 100 times in one file and imported in batches of 5 by two
/// processes at once: each (ip, port, leaf) counted 100 times, not 200.
#[tokio::test]
async fn concurrent_zgrab2_imports_of_one_file_count_once() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let copies = 100;
    let path = repeated_ztag(dir.path(), copies);
    // Independently, from EXPECTED.tsv: the leaf (chain position 0) rows of the file, one per
    // record and address.
    let leaves: Vec<(String, String)> = std::fs::read_to_string(data("scans/EXPECTED.tsv"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            (c[0] == "zmap__ztag/test.json" && c[7] == "0")
                .then(|| (c[2].to_owned(), c[8].to_owned()))
        })
        .collect();
    assert_eq!(leaves.len(), 10);
    let p = path.to_str().unwrap();
    let (a, b) = run_twice(&db, &["import", "zgrab2", p, "--batch", "5"]);
    assert_one_imported(&a, &b);
    assert_eq!(sum_times_seen(&db).await, (leaves.len() * copies) as i64);
    let c = client(&db).await;
    for (ip, sha1) in &leaves {
        let n: i64 = c
            .query_one(
                "SELECT times_seen FROM observations WHERE ip = $1::text::inet AND sha1 = decode($2, 'hex')",
                &[ip, sha1],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, copies as i64, "{ip} {sha1}");
    }
}

/// A scan file imported again is detected by its content and changes nothing; `--force` adds its
/// counts again.
#[tokio::test]
async fn reimport_is_reported_and_force_adds_again() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let path = repeated_ztag(dir.path(), 1);
    let p = path.to_str().unwrap();
    let first = crate::support::ok(&db, &["import", "zgrab2", p]);
    assert!(
        first.contains("records 10 (0 without certificate)"),
        "{first}"
    );
    let again = crate::support::ok(&db, &["import", "zgrab2", p]);
    assert!(again.contains("already imported"), "{again}");
    assert_eq!(sum_times_seen(&db).await, 10);
    let forced = crate::support::ok(&db, &["--json", "import", "zgrab2", p, "--force"]);
    let v: serde_json::Value = serde_json::from_str(forced.trim()).unwrap();
    assert_eq!(
        (v["already_imported"].as_bool(), v["sightings"].as_u64()),
        (Some(false), Some(10))
    );
    assert_eq!(sum_times_seen(&db).await, 20);
}
