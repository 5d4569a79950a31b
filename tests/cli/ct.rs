//! `certhist ingest ct` as a user runs it, against a loopback static-CT log serving the real
//! navigli tiles (tests/data/ct) with a checkpoint signed by a test key: the process killed with
//! SIGKILL mid-ingest then resumed (issue 3; moved here from certhist-ct's tests in issue 11,
//! when the `ct-ingest` binary was removed), and the summary it prints.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use certhist_test_support::TestDb;

use crate::support;

/// The root of the navigli tree of size 1024 (tests/data/ct/README.md).
pub(crate) const NAVIGLI_ROOT_1024: &str = "EMfGG85uIddeOXt5/wdQGP3IQd0COCqoLg9Q6CsPLJA=";

pub(crate) fn b64(d: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(d)
}

/// A static-CT log on 127.0.0.1 serving navigli: `checkpoint`, `tile/…` and `issuer/…` (also used
/// by db_faults.rs).
pub(crate) mod log_server {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use base64::Engine as _;
    use certhist_ct::checkpoint::encode_checkpoint;
    use certhist_ct::sig::{tree_head_signature_input, PublicKey};
    use p256::ecdsa::signature::Signer as _;
    use sha2::Digest as _;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use crate::support;

    const ORIGIN: &str = "navigli2025h2.sunlight.geomys.org";

    fn signing_key() -> p256::ecdsa::SigningKey {
        p256::ecdsa::SigningKey::from_bytes(&[7u8; 32].into()).unwrap()
    }

    /// The test key's SubjectPublicKeyInfo (id-ecPublicKey, prime256v1, uncompressed point).
    pub fn public_key_der() -> Vec<u8> {
        let mut der = hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200").unwrap();
        der.extend_from_slice(
            signing_key()
                .verifying_key()
                .to_encoded_point(false)
                .as_bytes(),
        );
        der
    }

    /// A checkpoint of the tree of `size` with `root`, signed by the test key.
    fn checkpoint(size: u64, root_b64: &str) -> String {
        let root: [u8; 32] = base64::engine::general_purpose::STANDARD
            .decode(root_b64)
            .unwrap()
            .try_into()
            .unwrap();
        let ts = 1746292700000;
        let sig: p256::ecdsa::DerSignature =
            signing_key().sign(&tree_head_signature_input(ts, size, &root));
        let mut ds = vec![4u8, 3];
        ds.extend_from_slice(&(sig.as_bytes().len() as u16).to_be_bytes());
        ds.extend_from_slice(sig.as_bytes());
        let log_id = PublicKey::from_spki_der(&public_key_der())
            .unwrap()
            .log_id();
        encode_checkpoint(ORIGIN, size, &root, &log_id, ts, &ds)
    }

    /// Issuer DER by hex SHA-256 (the letsencrypt-website staging certificates).
    fn issuers() -> HashMap<String, Vec<u8>> {
        let dir = support::data("ct/letsencrypt-website/static/certs/staging");
        [
            "letsencrypt-stg-root-x1.der",
            "2024/e5.der",
            "2024/e6.der",
            "2024/e5-cross.der",
            "2024/e6-cross.der",
            "2024/r10.der",
            "2024/r11.der",
        ]
        .iter()
        .map(|f| {
            let der = std::fs::read(dir.join(f)).unwrap();
            (hex::encode(sha2::Sha256::digest(&der)), der)
        })
        .collect()
    }

    pub struct LogServer {
        /// `http://127.0.0.1:PORT`.
        pub url: String,
        /// Requests whose path starts with one of these wait (unanswered) until it is removed.
        pub held: Arc<Mutex<Vec<String>>>,
    }

    /// Serves navigli with a checkpoint of `size` and `root_b64` (HTTP/1.1, one request per
    /// connection).
    pub async fn start(size: u64, root_b64: &str) -> LogServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let held: Arc<Mutex<Vec<String>>> = Arc::default();
        let cp = checkpoint(size, root_b64);
        let issuers = Arc::new(issuers());
        let tiles = support::data("ct/sunlight/testdata/navigli2025h2");
        let h = held.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let (held, cp, issuers, tiles) =
                    (h.clone(), cp.clone(), issuers.clone(), tiles.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&buf).to_string();
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    while held
                        .lock()
                        .unwrap()
                        .iter()
                        .any(|p| path.starts_with(p.as_str()))
                    {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    let p = path.trim_start_matches('/');
                    let body = if p == "checkpoint" {
                        Some(cp.into_bytes())
                    } else if let Some(h) = p.strip_prefix("issuer/") {
                        issuers.get(h).cloned()
                    } else if p.starts_with("tile/") && !p.contains("..") {
                        std::fs::read(tiles.join(p)).ok()
                    } else {
                        None
                    };
                    let (status, body) = match body {
                        Some(b) => (200, b),
                        None => (404, b"not found".to_vec()),
                    };
                    let hdr = format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = sock.write_all(hdr.as_bytes()).await;
                    let _ = sock.write_all(&body).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        LogServer { url, held }
    }
}

/// md5 over all ct_entries rows (index, sha1, type, leaf hash, timestamp) and over the sorted
/// certificate SHA-1s.
async fn digests(db: &TestDb) -> (i64, String, String) {
    let c = support::client(db).await;
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

/// `certhist [--json] ingest ct --log URL --kind static --public-key KEY --batch-entries 256`
/// on the test database.
fn ingest_ct(db: &TestDb, url: &str, json: bool) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_certhist"));
    if json {
        cmd.arg("--json");
    }
    cmd.args([
        "ingest",
        "ct",
        "--log",
        url,
        "--kind",
        "static",
        "--public-key",
        &b64(&log_server::public_key_der()),
        "--batch-entries",
        "256",
    ])
    .env("DATABASE_URL", support::url(db))
    .env_remove("RUST_LOG")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd
}

#[tokio::test]
async fn sigkill_after_first_batch_then_rerun_gives_the_clean_database() {
    let srv = log_server::start(1024, NAVIGLI_ROOT_1024).await;
    // Tiles 2 and 3 are held back: the process commits tile 0 (and maybe tile 1), then waits.
    srv.held
        .lock()
        .unwrap()
        .extend(["/tile/data/002".to_owned(), "/tile/data/003".to_owned()]);
    let db = TestDb::new().await;
    let c = support::client(&db).await;
    let mut child = ingest_ct(&db, &srv.url, true).spawn().unwrap();
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
            panic!("certhist ingest ct exited early: {status}");
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
    let mut cmd = ingest_ct(&db, &srv.url, true);
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
    let mut cmd = ingest_ct(&clean_db, &srv.url, true);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    assert!(out.status.success());
    let clean = digests(&clean_db).await;
    assert_eq!(resumed, clean);
    assert_eq!(resumed.0, 1024);
}

/// The human summary is a table with one row per log (issue 11: printed by the binary, not by
/// certhist-ct); a second run adds nothing.
#[tokio::test]
async fn human_summary_is_one_table_row_per_log() {
    let srv = log_server::start(1024, NAVIGLI_ROOT_1024).await;
    let db = TestDb::new().await;
    let run = |db: &TestDb| {
        let mut cmd = ingest_ct(db, &srv.url, false);
        async move {
            tokio::task::spawn_blocking(move || cmd.output())
                .await
                .unwrap()
                .unwrap()
        }
    };
    let out = run(&db).await;
    assert!(out.status.success(), "{}", support::stderr(&out));
    let text = support::stdout(&out);
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines,
        [
            vec![
                "LOG",
                "NEW",
                "ENTRIES",
                "NEW",
                "CERTS",
                "UNPARSABLE",
                "VERIFIED",
                "TREE",
                "SIZE"
            ],
            // 1024 precertificate entries plus the 5 issuers of their chains.
            vec![srv.url.as_str(), "1024", "1029", "0", "1024", "1024"],
        ]
    );
    let again = run(&db).await;
    assert!(again.status.success());
    assert_eq!(
        support::stdout(&again)
            .lines()
            .nth(1)
            .map(|l| l.split_whitespace().collect::<Vec<_>>()),
        Some(vec![srv.url.as_str(), "0", "0", "0", "1024", "1024"])
    );
}

/// Flag values the binary refuses before opening the database (issue 11: `--rate` is checked by
/// the flag parser; a bad key is a usage error).
#[test]
fn bad_rate_and_bad_key_are_usage_errors() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_certhist"))
            .args(["ingest", "ct", "--log", "http://127.0.0.1:9/"])
            .args(args)
            .env("DATABASE_URL", "host=/nonexistent dbname=none")
            .output()
            .unwrap()
    };
    for rate in ["0", "-3", "NaN", "inf", "fast"] {
        let out = run(&[&format!("--rate={rate}")]);
        assert_eq!(out.status.code(), Some(2), "--rate {rate}");
        assert!(
            support::stderr(&out).contains("--rate"),
            "{}",
            support::stderr(&out)
        );
    }
    let out = run(&["--public-key", "not a key!"]);
    assert_eq!(out.status.code(), Some(2), "{}", support::stderr(&out));
    assert!(
        support::stderr(&out).contains("bad public key"),
        "{}",
        support::stderr(&out)
    );
}
