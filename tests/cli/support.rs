//! Running the binary against a test database.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

use certhist_test_support::TestDb;
use tokio_postgres::config::Host;

/// The workspace's `tests/data/<rel>`.
pub fn data(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

/// A libpq key=value connection string for a test database.
pub fn url(db: &TestDb) -> String {
    let c = db.pg_config();
    let mut parts = Vec::new();
    if let Some(Host::Unix(p)) = c.get_hosts().first() {
        parts.push(format!("host={}", p.display()));
    } else if let Some(Host::Tcp(h)) = c.get_hosts().first() {
        parts.push(format!("host={h}"));
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

/// Runs `certhist ARGS` on the test database.
pub fn certhist(db: &TestDb, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_certhist"))
        .args(args)
        .env("DATABASE_URL", url(db))
        .env_remove("RUST_LOG")
        .output()
        .expect("run certhist")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs and asserts exit code 0, returning stdout.
pub fn ok(db: &TestDb, args: &[&str]) -> String {
    let o = certhist(db, args);
    assert!(
        o.status.success(),
        "certhist {args:?} failed: {}\n{}",
        stderr(&o),
        stdout(&o)
    );
    stdout(&o)
}

/// A direct client on the test database, for checking what the binary stored.
pub async fn client(db: &TestDb) -> tokio_postgres::Client {
    let (client, conn) = db
        .pg_config()
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
}

/// Independent PEM splitter (not the project's reader): DER of every CERTIFICATE block.
pub fn pem_blocks(text: &str) -> Vec<Vec<u8>> {
    use base64::Engine;
    let mut out = Vec::new();
    let mut inside = false;
    let mut b64 = String::new();
    for line in text.lines() {
        if line.starts_with("-----BEGIN CERTIFICATE-----") {
            inside = true;
            b64.clear();
        } else if line.starts_with("-----END CERTIFICATE-----") {
            inside = false;
            out.push(
                base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .expect("base64"),
            );
        } else if inside {
            b64.push_str(line.trim());
        }
    }
    out
}

pub fn sha1_hex(der: &[u8]) -> String {
    use sha1::Digest;
    hex::encode(sha1::Sha1::digest(der))
}

/// A test database loaded with the bundled demo data (tests/data/demo: certificates and
/// sightings; the sightings file has one deliberately broken line and still imports).
pub async fn demo_db() -> TestDb {
    let db = TestDb::new().await;
    ok(
        &db,
        &["import", "certs", data("demo/certs.pem").to_str().unwrap()],
    );
    ok(
        &db,
        &[
            "import",
            "observations",
            data("demo/observations.csv").to_str().unwrap(),
        ],
    );
    db
}

/// A self-signed certificate (and its key) whose subject CN and O hold ESC `[31m`, U+202E
/// (right-to-left override) and NUL, and whose SAN dNSNames are `x␛[31mred␀.example` (ESC and NUL;
/// IA5String has no U+202E) and `plain-hostile.example`.
pub fn hostile_cert() -> (rcgen::Certificate, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![
        "x\u{1b}[31mred\0.example".to_owned(),
        "plain-hostile.example".to_owned(),
    ])
    .unwrap();
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "evil\u{1b}[31m\u{202e}gpj.exe\0cn",
    );
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Org\u{1b}[31m\u{202e}\0o");
    let cert = params.self_signed(&key).unwrap();
    (cert, key)
}

/// `certhist serve --listen 127.0.0.1:0` on the test database; stopped on drop.
pub struct Server {
    child: Child,
    pub base: String,
}

impl Server {
    pub fn start(db: &TestDb) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_certhist"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("DATABASE_URL", url(db))
            .env_remove("RUST_LOG")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start certhist serve");
        let stderr = child.stderr.take().expect("stderr");
        let mut line = String::new();
        BufReader::new(stderr)
            .read_line(&mut line)
            .expect("read the serving line");
        // "certhist: serving http://127.0.0.1:PORT/api/v1 (Ctrl-C to stop)"
        let base = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .and_then(|w| w.strip_suffix("/api/v1"))
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_owned();
        Server { child, base }
    }

    pub async fn get(&self, path: &str, ndjson: bool) -> String {
        let mut req = reqwest::Client::new().get(format!("{}{path}", self.base));
        if ndjson {
            req = req.header("Accept", "application/x-ndjson");
        }
        let resp = req.send().await.expect("request");
        assert_eq!(resp.status(), 200, "{path}");
        resp.text().await.expect("body")
    }

    /// The `items` of a page, one compact JSON object per line (as NDJSON prints them).
    pub async fn items(&self, path: &str) -> String {
        let page: serde_json::Value =
            serde_json::from_str(&self.get(path, false).await).expect("JSON page");
        assert!(page["next_cursor"].is_null(), "{path}: one page expected");
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|v| format!("{v}\n"))
            .collect()
    }

    /// `POST path` with `body`; the status and the JSON answer.
    pub async fn post(&self, path: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
        let resp = reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/octet-stream")
            .body(body)
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: {text}"));
        (status, json)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
