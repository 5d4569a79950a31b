//! Running the binary against a test database.

use std::path::PathBuf;
use std::process::{Command, Output};

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
