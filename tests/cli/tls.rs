//! `certhist serve --tls-self-signed` (issue 12): the real binary, the real `curl --cacert`
//! over HTTP/1.1 and HTTP/2, the printed fingerprint against the certificate file, a plain-HTTP
//! request refused without breaking the server, and the certificate reused on the next start.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use certhist_test_support::TestDb;
use sha2::Digest;

use crate::support::{pem_blocks, url};

/// `certhist serve --tls-self-signed --listen 127.0.0.1:0` with `home` as CERTHIST_HOME.
struct TlsServer {
    child: Child,
    /// `https://127.0.0.1:PORT`
    base: String,
    port: u16,
    /// The fingerprint line as printed.
    fingerprint_line: String,
}

impl TlsServer {
    fn start(db: &TestDb, home: &Path) -> TlsServer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_certhist"))
            .args(["serve", "--tls-self-signed", "--listen", "127.0.0.1:0"])
            .env("DATABASE_URL", url(db))
            .env("CERTHIST_HOME", home)
            .env_remove("RUST_LOG")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start certhist serve");
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let mut line = String::new();
        stderr.read_line(&mut line).expect("the serving line");
        // "certhist: serving https://127.0.0.1:PORT/api/v1 (Ctrl-C to stop)"
        let base = line
            .split_whitespace()
            .find(|w| w.starts_with("https://"))
            .and_then(|w| w.strip_suffix("/api/v1"))
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_owned();
        let port = base
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port");
        let mut fingerprint_line = String::new();
        stderr
            .read_line(&mut fingerprint_line)
            .expect("the fingerprint line");
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            let _ = stderr.read_to_string(&mut sink);
        });
        TlsServer {
            child,
            base,
            port,
            fingerprint_line,
        }
    }

    /// The printed fingerprint, as lower-case hex without separators.
    fn fingerprint(&self) -> String {
        // "certhist: TLS certificate SHA-256 AB:CD:… (PATH[, generated now])"
        let word = self
            .fingerprint_line
            .split_whitespace()
            .find(|w| w.len() == 95 && w.contains(':'))
            .unwrap_or_else(|| panic!("no fingerprint in {:?}", self.fingerprint_line));
        word.replace(':', "").to_lowercase()
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn curl_available() -> bool {
    Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `curl EXTRA… URL`: (status code, HTTP version, body).
fn curl(extra: &[&str], target: &str) -> (String, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-o", "-"])
        .args(["-w", "\n%{http_code} %{http_version}"])
        .args(extra)
        .arg(target)
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, tail) = text.rsplit_once('\n').unwrap_or(("", &text));
    let mut parts = tail.split_whitespace();
    let code = parts.next().unwrap_or("").to_owned();
    let version = parts.next().unwrap_or("").to_owned();
    (code, version, body.to_owned())
}

fn cert_path(home: &Path) -> PathBuf {
    home.join("tls").join("cert.pem")
}

#[tokio::test]
async fn curl_with_cacert_reaches_the_self_signed_server_over_http1_and_http2() {
    if !curl_available() {
        eprintln!("SKIPPED: curl is not installed; the TLS test needs the real curl");
        return;
    }
    let db = TestDb::new().await;
    let home = tempfile::tempdir().unwrap();
    let server = TlsServer::start(&db, home.path());
    assert!(
        server.fingerprint_line.contains("generated now"),
        "{:?}",
        server.fingerprint_line
    );

    // The printed fingerprint is the SHA-256 of the certificate's DER in the file.
    let pem = std::fs::read_to_string(cert_path(home.path())).unwrap();
    let ders = pem_blocks(&pem);
    assert_eq!(ders.len(), 1);
    assert_eq!(
        server.fingerprint(),
        hex::encode(sha2::Sha256::digest(&ders[0]))
    );

    // The key is readable by its owner only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(home.path().join("tls/key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let cacert = cert_path(home.path());
    let cacert = cacert.to_str().unwrap();
    let stats = format!("{}/api/v1/stats", server.base);
    let (code, version, body) = curl(&["--cacert", cacert, "--http1.1"], &stats);
    assert_eq!((code.as_str(), version.as_str()), ("200", "1.1"), "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON stats");
    assert_eq!(json["observations"], 0, "{json}");
    let (code, version, body) = curl(&["--cacert", cacert, "--http2"], &stats);
    assert_eq!((code.as_str(), version.as_str()), ("200", "2"), "{body}");
    assert!(serde_json::from_str::<serde_json::Value>(&body).is_ok());
    // The name `localhost` is in the certificate too.
    let by_name = format!("https://localhost:{}/api/v1/stats", server.port);
    let (code, _, _) = curl(
        &[
            "--cacert",
            cacert,
            "--resolve",
            &format!("localhost:{}:127.0.0.1", server.port),
        ],
        &by_name,
    );
    assert_eq!(code, "200");
    // Without the CA, curl refuses the certificate (it is not trusted by default).
    let (code, _, _) = curl(&[], &stats);
    assert_eq!(code, "000");

    // Plain HTTP to the TLS port: no 200; the answer, if any, says the port speaks HTTPS.
    let mut tcp = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    tcp.write_all(b"GET /api/v1/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 400") && answer.contains("this port speaks HTTPS"),
        "{answer:?}"
    );
    let plain = format!("http://127.0.0.1:{}/api/v1/stats", server.port);
    let (code, _, _) = curl(&[], &plain);
    assert_ne!(code, "200");
    // Garbage that is neither HTTP nor TLS: the connection is closed.
    let mut tcp = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    tcp.write_all(&[0u8; 64]).unwrap();
    let mut rest = Vec::new();
    let _ = tcp.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{rest:?}");

    // The server still serves TLS afterwards, also an upload over HTTP/2 (the demo sightings:
    // 10 good rows, line 12 broken — tests/data/demo/README.md).
    let (code, _, body) = curl(&["--cacert", cacert], &stats);
    assert_eq!(code, "200", "{body}");
    let file = format!(
        "@{}",
        crate::support::data("demo/observations.csv").display()
    );
    let upload = format!(
        "{}/api/v1/uploads/observations?filename=observations.csv",
        server.base
    );
    let (code, version, body) = curl(
        &[
            "--cacert",
            cacert,
            "--http2",
            "-H",
            "Content-Type: text/csv",
            "--data-binary",
            &file,
        ],
        &upload,
    );
    assert_eq!((code.as_str(), version.as_str()), ("207", "2"), "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["rows_stored"], 10, "{json}");
    assert_eq!(json["problems"][0]["line"], 12, "{json}");
    let (_, _, body) = curl(&["--cacert", cacert], &stats);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["observations"], 10, "{json}");
}

#[tokio::test]
async fn the_self_signed_certificate_is_reused_on_the_next_start() {
    let db = TestDb::new().await;
    let home = tempfile::tempdir().unwrap();
    let first = TlsServer::start(&db, home.path());
    let fingerprint = first.fingerprint();
    let pem = std::fs::read(cert_path(home.path())).unwrap();
    drop(first);
    let second = TlsServer::start(&db, home.path());
    assert_eq!(second.fingerprint(), fingerprint);
    assert!(
        !second.fingerprint_line.contains("generated now"),
        "{:?}",
        second.fingerprint_line
    );
    assert_eq!(std::fs::read(cert_path(home.path())).unwrap(), pem);
}

#[tokio::test]
async fn tls_flags_are_checked_before_serving() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let o = Command::new(env!("CARGO_BIN_EXE_certhist"))
        .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&missing)
        .arg("--tls-key")
        .arg(&missing)
        .env("DATABASE_URL", url(&db))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("TLS") && err.contains("missing.pem"), "{err}");
    // --tls-cert without --tls-key is a usage error.
    let o = Command::new(env!("CARGO_BIN_EXE_certhist"))
        .args(["serve", "--tls-cert"])
        .arg(&missing)
        .env("DATABASE_URL", url(&db))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}
