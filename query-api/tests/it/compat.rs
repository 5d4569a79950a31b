//! Compatibility APIs (issue 14) driven by the real PyPI clients: pypssl 2.2 (CIRCL Passive SSL)
//! and passivetotal 2.5.9 (PassiveTotal v2 SSL, its `SslRequest` and analyzer), from the venv
//! `.ci/run` creates at `target/pyenv` (`tests/compat/requirements.txt`). The scripts in
//! `tests/compat/` call the clients and print JSON; the values are asserted here against the
//! observation list of `main.rs` and `tests/data/certs/CERT_INVENTORY.tsv` (OpenSSL / Python
//! cryptography), computed independently of the server.
//!
//! Without the venv the tests fail with the command that creates it, unless
//! `CERTHIST_COMPAT_OPTIONAL=1` (then they print that and pass).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use certhist_api::ServeConfig;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::*;

const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// The venv's python, or `None` (after saying why) when the tests may skip.
pub(crate) fn python() -> Option<PathBuf> {
    let py = PathBuf::from(WORKSPACE).join("target/pyenv/bin/python");
    if py.exists() {
        return Some(py);
    }
    let how = "python3 -m venv target/pyenv && target/pyenv/bin/pip install -r tests/compat/requirements.txt";
    if std::env::var("CERTHIST_COMPAT_OPTIONAL").as_deref() == Ok("1") {
        eprintln!(
            "SKIPPED: no client venv at {}; create it with: {how}",
            py.display()
        );
        return None;
    }
    panic!(
        "the compatibility tests need the PyPI clients in {}; create them with (from the repository root): {how}  \
         (or set CERTHIST_COMPAT_OPTIONAL=1 to skip these tests locally)",
        py.display()
    );
}

/// A real server on a loopback port over the seeded test database.
struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), certhist_api::ServeError>>,
    _db: certhist_test_support::TestDb,
    /// The account the clients use (`alice`, a reader), when the server has accounts.
    account: Option<Account>,
    /// The self-signed certificate (PEM file) of a TLS server.
    tls_cert: Option<PathBuf>,
    _tls_dir: Option<tempfile::TempDir>,
}

/// A reader account: name, its API key and its password.
#[derive(Clone, Debug)]
struct Account {
    user: String,
    key: String,
    password: String,
}

/// How to start a [`Server`].
#[derive(Default)]
struct Opts<'a> {
    /// The first certificate of each of these files (PEM, or DER) is stored too.
    extra: &'a [&'a str],
    /// Accounts exist (so every request needs credentials, loopback too).
    accounts: bool,
    /// Serve HTTPS with a self-signed certificate (as `certhist serve --tls-self-signed`).
    tls: bool,
}

impl Server {
    async fn start() -> Server {
        Server::start_opts(Opts::default()).await
    }

    /// The seeded database plus the first certificate of each of these PEM files.
    async fn start_with(extra_pem: &[&str]) -> Server {
        Server::start_opts(Opts {
            extra: extra_pem,
            ..Opts::default()
        })
        .await
    }

    async fn start_opts(opts: Opts<'_>) -> Server {
        let db = seeded().await;
        if !opts.extra.is_empty() {
            let records: Vec<_> = opts
                .extra
                .iter()
                .map(|path| certhist_x509::parse_der(&first_pem_block(path)))
                .collect();
            let store = db.store();
            let mut conn = store.conn().await.unwrap();
            let mut tx = conn.begin().await.unwrap();
            tx.write_certs(&records).await.unwrap();
            tx.commit().await.unwrap();
        }
        let account = if opts.accounts {
            let store = db.store();
            let mut conn = store.conn().await.unwrap();
            let who = certhist_store::Actor {
                name: Some("cli:test".to_owned()),
                source: Some("cli".to_owned()),
            };
            let password = "correct horse battery staple".to_owned();
            let key = conn
                .user_add(
                    &who,
                    "alice",
                    certhist_model::views::Role::Reader,
                    Some(&password),
                )
                .await
                .unwrap();
            Some(Account {
                user: "alice".to_owned(),
                key: key.secret().to_owned(),
                password,
            })
        } else {
            None
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async {
            let _ = rx.await;
        };
        let (task, tls_cert, tls_dir) = if opts.tls {
            // The same certificate `certhist serve --tls-self-signed` generates and uses.
            let dir = tempfile::tempdir().unwrap();
            let setup = certhist_api::tls::self_signed(&dir.path().join("tls"), addr.ip()).unwrap();
            let cert = setup.cert_path.clone();
            let task = tokio::spawn(certhist_api::serve_tls_on(
                listener,
                db.store(),
                ServeConfig::default(),
                setup.config,
                shutdown,
            ));
            (task, Some(cert), Some(dir))
        } else {
            let task = tokio::spawn(certhist_api::serve_on(
                listener,
                db.store(),
                ServeConfig::default(),
                shutdown,
            ));
            (task, None, None)
        };
        Server {
            addr,
            stop: Some(tx),
            task,
            _db: db,
            account,
            tls_cert,
            _tls_dir: tls_dir,
        }
    }

    fn account(&self) -> Account {
        self.account.clone().expect("a server with accounts")
    }

    /// Adds observations.
    async fn observe(&self, rows: &[certhist_model::ObservationRow]) {
        let store = self._db.store();
        let mut conn = store.conn().await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        tx.write_observations(rows).await.unwrap();
        tx.commit().await.unwrap();
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// Runs `tests/compat/<script>` with the venv's python; returns its JSON output.
async fn run(py: &Path, script: &str, args: Vec<String>) -> Value {
    run_env(py, script, args, Vec::new()).await
}

/// [`run`] with extra environment variables (the CA bundle of a TLS server).
async fn run_env(py: &Path, script: &str, args: Vec<String>, env: Vec<(String, String)>) -> Value {
    let script = PathBuf::from(WORKSPACE).join("tests/compat").join(script);
    let py = py.to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&py)
            .arg(&script)
            .args(&args)
            .env_remove("REQUESTS_CA_BUNDLE")
            .env_remove("CURL_CA_BUNDLE")
            .envs(env)
            // Loopback only: no proxy from the environment may intercept the clients.
            .env_remove("HTTP_PROXY")
            .env_remove("HTTPS_PROXY")
            .env_remove("http_proxy")
            .env_remove("https_proxy")
            .env_remove("ALL_PROXY")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
            .expect("run python")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "python failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The passivetotal client may log to stdout; the JSON is the last line.
    let last = stdout.lines().last().unwrap_or("");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

// ---- expected values, from the observation list and the inventory ----

/// One observation: (ip, port, first, last, times).
type Sighting = (String, u16, DateTime<Utc>, DateTime<Utc>, i64);

/// Every observation of `sha1`.
fn sightings(sha1_hex: &str) -> Vec<Sighting> {
    observations()
        .into_iter()
        .filter(|o| hex::encode(o.sha1) == sha1_hex)
        .map(|o| {
            (
                o.ip.to_string(),
                o.port,
                o.first_seen,
                o.last_seen,
                o.times_seen,
            )
        })
        .collect()
}

/// The inventory row of a certificate: (subject, issuer) in RFC 4514 form.
fn inventory(sha1_hex: &str) -> (String, String) {
    let tsv = include_str!("../../../tests/data/certs/CERT_INVENTORY.tsv");
    let mut lines = tsv.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (sha1_col, subject_col, issuer_col) = (col("sha1"), col("subject"), col("issuer"));
    for line in lines {
        let f: Vec<&str> = line.split('\t').collect();
        if f.get(sha1_col) == Some(&sha1_hex) {
            return (f[subject_col].to_owned(), f[issuer_col].to_owned());
        }
    }
    panic!("{sha1_hex} not in the inventory");
}

/// RFC 4514 (last RDN first; no escaped commas in these fixtures) → CIRCL's one-line order.
fn oneline(rfc4514: &str) -> String {
    rfc4514.split(',').rev().collect::<Vec<_>>().join(", ")
}

/// The value of attribute `key` in an RFC 4514 string.
fn attr(rfc4514: &str, key: &str) -> Option<String> {
    rfc4514
        .split(',')
        .find_map(|rdn| rdn.strip_prefix(&format!("{key}=")).map(str::to_owned))
}

fn z(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn colons(sha1_hex: &str) -> String {
    sha1_hex
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).to_uppercase())
        .collect::<Vec<_>>()
        .join(":")
}

#[tokio::test]
async fn pypssl_query_cquery_cfetch_return_the_database_values() {
    let Some(py) = python() else { return };
    // With an account: every request carries real credentials (Basic user:KEY, and the bare
    // `Authorization: KEY` of pypssl's auth_token for the token-* ops).
    let server = Server::start_opts(Opts {
        accounts: true,
        extra: &[ED25519_DER, DSA_DER],
        ..Opts::default()
    })
    .await;
    let alice = server.account();
    let base = format!("http://{}/compat/circl/", server.addr);
    let ops = [
        "query:192.0.2.10".to_owned(),
        "query:192.0.2.0/24".to_owned(),
        "query:203.0.113.7".to_owned(),
        "query:2001:db8::1".to_owned(),
        "query:192.0.0.0/16".to_owned(),
        format!("cquery:{}", colons(GITHUB.sha1)),
        format!("cquery:{}", HN.sha1.to_uppercase()),
        "cquery:2222222222222222222222222222222222222222".to_owned(),
        "cquery:not-a-hash".to_owned(),
        format!("cfetch:{}", GITHUB.sha1),
        format!("cfetch:{}", RUSTLANG.sha1),
        format!("cfetch:{HASH_ONLY}"),
        "cfetch:zz".to_owned(),
        format!("cfetch:{ED25519_SHA1}"),
        format!("cfetch:{DSA_SHA1}"),
        "query:192.0.2.96/27".to_owned(),
        format!("cquery:{}", GOOGLE_WWW.sha1),
        "token-query:192.0.2.12".to_owned(),
        "token-query:192.0.2.10".to_owned(),
    ];
    let out = run(
        &py,
        "circl.py",
        [base.clone(), alice.user.clone(), alice.key.clone()]
            .into_iter()
            .chain(ops.iter().cloned())
            .collect(),
    )
    .await;
    // Basic with the account's password instead of a key: the same answers.
    let by_password = run(
        &py,
        "circl.py",
        [base, alice.user.clone(), alice.password.clone()]
            .into_iter()
            .chain(ops[..10].iter().cloned())
            .collect(),
    )
    .await;
    for op in &ops[..10] {
        assert_eq!(by_password[op], out[op], "{op} with the password");
    }

    // query of one address: every certificate it served, most recently seen first, each with
    // its subject and certhist's per-address sightings.
    let q = &out["query:192.0.2.10"];
    let ip = &q["192.0.2.10"];
    let mut want: Vec<(&str, DateTime<Utc>)> = [GITHUB.sha1, HN.sha1, WIKIPEDIA.sha1]
        .iter()
        .map(|s| {
            let last = sightings(s)
                .into_iter()
                .filter(|o| o.0 == "192.0.2.10")
                .map(|o| o.3)
                .max()
                .unwrap();
            (*s, last)
        })
        .collect();
    want.sort_by_key(|w| std::cmp::Reverse(w.1));
    let want_order: Vec<&str> = want.iter().map(|w| w.0).collect();
    assert_eq!(ip["certificates"], json!(want_order), "{q}");
    assert_eq!(q.as_object().unwrap().len(), 1, "{q}");
    for s in [GITHUB.sha1, HN.sha1, WIKIPEDIA.sha1] {
        let (subject, _) = inventory(s);
        assert_eq!(
            ip["subjects"][s]["values"],
            json!([oneline(&subject)]),
            "{s}"
        );
        let obs: Vec<_> = sightings(s)
            .into_iter()
            .filter(|o| o.0 == "192.0.2.10")
            .collect();
        assert_eq!(obs.len(), 1);
        assert_eq!(
            ip["x_certhist"][s],
            json!({"first_seen": z(obs[0].2), "last_seen": z(obs[0].3), "times_seen": obs[0].4, "ports": [obs[0].1]})
        );
    }

    // query of a block (pypssl sends it as two path segments): every observed address in it.
    let block = out["query:192.0.2.0/24"].as_object().unwrap();
    let want_ips: BTreeSet<String> = observations()
        .iter()
        .filter(|o| o.ip.to_string().starts_with("192.0.2.") && hex::encode(o.sha1) != HASH_ONLY)
        .map(|o| o.ip.to_string())
        .collect();
    let got_ips: BTreeSet<String> = block.keys().cloned().collect();
    assert_eq!(got_ips, want_ips);
    // 192.0.2.11 served HN on 8443 only.
    assert_eq!(
        block["192.0.2.11"]["x_certhist"][HN.sha1]["ports"],
        json!([8443])
    );
    // A hash-only certificate (no DER stored) is not listed (clients cfetch every listed one),
    // and an address that served only such certificates is left out.
    assert!(block.get("192.0.2.13").is_none(), "{block:?}");
    // An unseen address: {} (the MISP module reads a falsy answer as "not found").
    assert_eq!(out["query:203.0.113.7"], json!({}));
    // The client refuses IPv6 and blocks wider than /23 itself (tested over raw HTTP below).
    assert_eq!(
        out["query:2001:db8::1"],
        json!({"error": "IPv6 is not (yet) supported"})
    );
    assert_eq!(
        out["query:192.0.0.0/16"],
        json!({"error": "Maximum CIDR block size reached >/23"})
    );

    // cquery: upper case and colons accepted; the addresses that served it, with sightings.
    let c = &out[&format!("cquery:{}", colons(GITHUB.sha1))];
    let obs = sightings(GITHUB.sha1);
    let want_seen: Vec<String> = obs.iter().map(|o| o.0.clone()).collect();
    assert_eq!(c["certificate"], GITHUB.sha1);
    assert_eq!(c["seen"], json!(want_seen));
    assert_eq!(c["hits"], json!(want_seen.len()));
    for o in &obs {
        assert_eq!(
            c["x_certhist"][&o.0],
            json!({"first_seen": z(o.2), "last_seen": z(o.3), "times_seen": o.4, "ports": [o.1]})
        );
    }
    let hn = &out[&format!("cquery:{}", HN.sha1.to_uppercase())];
    assert_eq!(hn["certificate"], HN.sha1);
    let hn_ips: BTreeSet<String> = sightings(HN.sha1).into_iter().map(|o| o.0).collect();
    assert_eq!(hn["hits"], json!(hn_ips.len()));
    assert_eq!(
        out["cquery:2222222222222222222222222222222222222222"],
        json!({"certificate": "2222222222222222222222222222222222222222", "hits": 0, "seen": [], "x_certhist": {}})
    );
    assert_eq!(
        out["cquery:not-a-hash"],
        json!({"error": "Incorrect format of the certificate fingerprint (expected SHA1 in hex format)"})
    );

    // cfetch: PEM of the stored DER, fields, dates that dateutil parsed, ICSI-style sightings.
    let f = &out[&format!("cfetch:{}", GITHUB.sha1)];
    let (subject, issuer) = inventory(GITHUB.sha1);
    let info = &f["info"];
    assert_eq!(info["subject"], oneline(&subject));
    assert_eq!(info["issuer"], oneline(&issuer));
    assert_eq!(info["fingerprint"], GITHUB.sha1.to_uppercase());
    // `openssl x509 -noout -text`: "Public-Key: (256 bit)" (EC P-256); rust-lang: 2048 (RSA).
    assert_eq!(info["keylength"], 256);
    assert_eq!(
        out[&format!("cfetch:{}", RUSTLANG.sha1)]["info"]["keylength"],
        2048
    );
    let nb = t(GITHUB.not_before);
    let na = t(GITHUB.not_after);
    assert_eq!(
        info["not_before"],
        json!({"type": "datetime", "iso": nb.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()})
    );
    assert_eq!(
        info["not_after"],
        json!({"type": "datetime", "iso": na.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()})
    );
    let pem = f["pem"].as_str().unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
        GITHUB.der
    );
    let first = obs.iter().map(|o| o.2).min().unwrap();
    let last = obs.iter().map(|o| o.3).max().unwrap();
    let times: i64 = obs.iter().map(|o| o.4).sum();
    assert_eq!(
        f["icsi"],
        json!({
            "first_seen": (first.timestamp() / 86_400).to_string(),
            "last_seen": (last.timestamp() / 86_400).to_string(),
            "times_seen": times.to_string(),
            "validated": "0",
            "version": "1",
        })
    );
    assert!(
        info["extension"]["subjectAltName"]
            .as_str()
            .unwrap()
            .split(", ")
            .any(|s| s == "DNS:github.com"),
        "{info}"
    );
    // Not stored (only observed, or unknown) → the error dict, which fetch_cert passes through.
    assert_eq!(
        out[&format!("cfetch:{HASH_ONLY}")],
        json!({"error": "Not existing certificate"})
    );
    assert_eq!(
        out["cfetch:zz"],
        json!({"error": "Incorrect format of the certificate fingerprint (expected SHA1 in hex format)"})
    );
    // The bare-token form (`Authorization: <token>`) reaches the same data.
    let tq = &out["token-query:192.0.2.12"]["192.0.2.12"]["certificates"];
    assert_eq!(tq.as_array().unwrap().len(), 2, "{tq}");
    assert_eq!(out["token-query:192.0.2.10"], out["query:192.0.2.10"]);

    // Key sizes for every key type (`openssl x509 -inform der -noout -text`): Ed25519 (a
    // 32-byte key, RFC 8032: 256 bits) and DSA ("Public-Key: (2048 bit)"); EC and RSA above.
    for (sha1, bits) in [(ED25519_SHA1, 256), (DSA_SHA1, 2048)] {
        let info = &out[&format!("cfetch:{sha1}")]["info"];
        assert_eq!(info["keylength"], bits, "{sha1}: {info}");
        assert_eq!(info["fingerprint"], sha1.to_uppercase());
    }

    // Per-address sightings, complete: every address of a block and every address of a
    // certificate carries first/last seen, times seen and ports merged over its ports, as the
    // observation list says (192.0.2.100-119 served GOOGLE_WWW on 443 and 8443).
    let merged = |sha1: &str, ip: &str| -> Value {
        let obs: Vec<_> = sightings(sha1).into_iter().filter(|o| o.0 == ip).collect();
        let ports: BTreeSet<u16> = obs.iter().map(|o| o.1).collect();
        json!({
            "first_seen": z(obs.iter().map(|o| o.2).min().unwrap()),
            "last_seen": z(obs.iter().map(|o| o.3).max().unwrap()),
            "times_seen": obs.iter().map(|o| o.4).sum::<i64>(),
            "ports": ports,
        })
    };
    let block = out["query:192.0.2.96/27"].as_object().unwrap();
    let want_block: BTreeSet<String> = (100..120).map(|i| format!("192.0.2.{i}")).collect();
    assert_eq!(block.keys().cloned().collect::<BTreeSet<_>>(), want_block);
    for (ip, v) in block {
        assert_eq!(v["certificates"], json!([GOOGLE_WWW.sha1]), "{ip}");
        assert_eq!(
            v["x_certhist"][GOOGLE_WWW.sha1],
            merged(GOOGLE_WWW.sha1, ip),
            "{ip}"
        );
        assert_eq!(
            v["x_certhist"][GOOGLE_WWW.sha1]["ports"],
            json!([443, 8443])
        );
    }
    let c = &out[&format!("cquery:{}", GOOGLE_WWW.sha1)];
    assert_eq!(c["hits"], 20);
    let ext = c["x_certhist"].as_object().unwrap();
    assert_eq!(ext.keys().cloned().collect::<BTreeSet<_>>(), want_block);
    for (ip, v) in ext {
        assert_eq!(v, &merged(GOOGLE_WWW.sha1, ip), "{ip}");
    }
    // Every address of the one-address and /24 queries, every certificate.
    for key in ["query:192.0.2.10", "query:192.0.2.0/24"] {
        for (ip, v) in out[key].as_object().unwrap() {
            for (sha1, ext) in v["x_certhist"].as_object().unwrap() {
                assert_eq!(ext, &merged(sha1, ip), "{key} {ip} {sha1}");
            }
            let listed: BTreeSet<&str> = v["certificates"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap())
                .collect();
            let all: BTreeSet<String> = sightings_on(ip);
            let stored: BTreeSet<&str> = all
                .iter()
                .map(String::as_str)
                .filter(|s| *s != HASH_ONLY)
                .collect();
            assert_eq!(listed, stored, "{key} {ip}");
        }
    }
    server.stop().await;
}

/// The Ed25519 and DSA certificates of tests/data/certs (see CERT_INVENTORY.tsv).
const ED25519_DER: &str = "x509-parser/assets/ed25519.der";
const ED25519_SHA1: &str = "14e85e305ce8bea7d92be8f008a7aa2db7b9130d";
const DSA_DER: &str = "certificate-transparency/python/ct/crypto/testdata/dsa_with_sha256.der";
const DSA_SHA1: &str = "db345e2d8aceea38f05dcbe07eb92cb047818ae0";

/// What pypssl cannot send (it checks IPv6 and /23 itself) and what raw HTTP callers get:
/// IPv6 addresses and blocks, the width limit, statuses and JSON error bodies.
#[tokio::test]
async fn circl_raw_http_ipv6_limits_and_errors() {
    let server = Server::start().await;
    let base = format!("http://{}/compat/circl/v2pssl", server.addr);
    let client = reqwest::Client::new();
    let get = |path: String| {
        let client = client.clone();
        let base = base.clone();
        async move {
            let resp = client.get(format!("{base}/{path}")).send().await.unwrap();
            let status = resp.status().as_u16();
            let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
            assert_eq!(ct, "application/json", "{path}");
            (status, resp.json::<Value>().await.unwrap())
        }
    };
    let (s, v6) = get("query/2001:db8::1".into()).await;
    assert_eq!(s, 200);
    assert_eq!(v6["2001:db8::1"]["certificates"], json!([RUSTLANG.sha1]));
    let (_, v6net) = get("query/2001:db8::/64".into()).await;
    let keys: BTreeSet<&str> = v6net
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, BTreeSet::from(["2001:db8::1", "2001:db8::2"]));
    // /23 is the widest IPv4 block (the upstream's limit); /22 is refused.
    assert_eq!(get("query/192.0.2.0/23".into()).await.0, 200);
    assert_eq!(
        get("query/192.0.0.0/22".into()).await,
        (
            400,
            json!({"error": "Maximum CIDR block size reached >/23"})
        )
    );
    for bad in [
        "query/nope",
        "query/192.0.2.300",
        "query/192.0.2.0/33",
        "query/%FF%FE",
    ] {
        assert_eq!(
            get(bad.into()).await,
            (400, json!({"error": "Incorrect format"})),
            "{bad}"
        );
    }
    let bad_sha1 = json!({"error": "Incorrect format of the certificate fingerprint (expected SHA1 in hex format)"});
    for bad in [
        "cquery/abc",
        "cfetch/abc",
        &format!("cquery/{}", GITHUB.sha256),
    ] {
        assert_eq!(get(bad.to_owned()).await, (400, bad_sha1.clone()), "{bad}");
    }
    assert_eq!(
        get(format!("cfetch/{HASH_ONLY}")).await,
        (404, json!({"error": "Not existing certificate"}))
    );
    let (s, body) = get("nothing-here".into()).await;
    assert_eq!(s, 404);
    assert!(body["error"].as_str().unwrap().contains("v2pssl/query"));
    server.stop().await;
}

#[tokio::test]
async fn passivetotal_ssl_client_and_analyzer_return_the_database_values() {
    let Some(py) = python() else { return };
    // The unmodified client over TLS (the self-signed certificate `certhist serve
    // --tls-self-signed` makes), with an account: Basic user + API key on every request.
    let server = Server::start_opts(Opts {
        accounts: true,
        tls: true,
        ..Opts::default()
    })
    .await;
    let alice = server.account();
    let port = server.addr.port();
    let le = "Let's Encrypt";
    let github_serial_decimal = "3272902241247380829979740935184468926"; // python3: int("02765689fee52f85c4c8a47650e84bbe", 16)
    let ops: Vec<String> = vec![
        "history:192.0.2.10".into(),
        format!("history:{}", GITHUB.sha1),
        format!("history:{}", LISTS.sha1),
        "history:2222222222222222222222222222222222222222".into(),
        "history:2001:db8::1".into(),
        format!("details:{}", GITHUB.sha1),
        "details:2222222222222222222222222222222222222222".into(),
        "details:192.0.2.10".into(),
        "search:subjectCommonName:github.com".into(),
        format!("search:issuerOrganizationName:{le}"),
        format!("search:serialNumber:{github_serial_decimal}"),
        "search:name:ycombinator".into(),
        format!("search:sha1:{}", GITHUB.sha1),
        "search:subjectAlternativeName:rust-lang.org".into(),
        "search:sslVersion:3".into(),
        "keyword:ycombinator".into(),
        "history:not-an-ip".into(),
        "analyzer-ip:192.0.2.10".into(),
        format!("analyzer-cert-ips:{}", GITHUB.sha1),
        "analyzer-hostname:news.ycombinator.com".into(),
    ];
    let pt_args = |host: String, ops: &[String]| -> Vec<String> {
        [
            "--tls".to_owned(),
            host,
            alice.user.clone(),
            alice.key.clone(),
        ]
        .into_iter()
        .chain(ops.iter().cloned())
        .collect()
    };
    // server="127.0.0.1:PORT/compat/pt": the client turns verification off by itself for
    // 127.0.0.1 (api.py).
    let out = run(&py, "pt.py", pt_args(format!("127.0.0.1:{port}"), &ops)).await;
    // server="localhost:PORT/compat/pt": verified, with the server's certificate as the CA
    // bundle from the environment (REQUESTS_CA_BUNDLE): the same answers.
    let ca = server.tls_cert.clone().unwrap().display().to_string();
    let verified = run_env(
        &py,
        "pt.py",
        pt_args(format!("localhost:{port}"), &ops),
        vec![("REQUESTS_CA_BUNDLE".to_owned(), ca)],
    )
    .await;
    for op in &ops {
        assert_eq!(verified[op], out[op], "{op} over verified TLS");
    }
    // Without the bundle the client refuses the self-signed certificate: verification is on.
    let refused = run(
        &py,
        "pt.py",
        pt_args(
            format!("localhost:{port}"),
            &["history:192.0.2.10".to_owned()],
        ),
    )
    .await;
    let e = &refused["history:192.0.2.10"];
    assert_eq!(e["exception"], "SSLError", "{e}");
    assert!(
        e["repr"]
            .as_str()
            .unwrap()
            .contains("CERTIFICATE_VERIFY_FAILED"),
        "{e}"
    );
    let day = |t: DateTime<Utc>| t.format("%Y-%m-%d").to_string();

    // History by address: one record per certificate, most recently seen first.
    let h = &out["history:192.0.2.10"];
    assert_eq!(h["success"], true);
    let mut want: Vec<Value> = [GITHUB.sha1, HN.sha1, WIKIPEDIA.sha1]
        .iter()
        .map(|s| {
            let o: Vec<_> = sightings(s)
                .into_iter()
                .filter(|o| o.0 == "192.0.2.10")
                .collect();
            json!({"sha1": s, "firstSeen": day(o[0].2), "lastSeen": day(o[0].3), "ipAddresses": ["192.0.2.10"]})
        })
        .collect();
    want.sort_by(|a, b| b["lastSeen"].as_str().cmp(&a["lastSeen"].as_str()));
    assert_eq!(h["results"], json!(want));
    // History by certificate: one record over every address.
    let obs = sightings(GITHUB.sha1);
    let ips: BTreeSet<String> = obs.iter().map(|o| o.0.clone()).collect();
    assert_eq!(
        out[&format!("history:{}", GITHUB.sha1)]["results"],
        json!([{
            "sha1": GITHUB.sha1,
            "firstSeen": day(obs.iter().map(|o| o.2).min().unwrap()),
            "lastSeen": day(obs.iter().map(|o| o.3).max().unwrap()),
            "ipAddresses": ips,
        }])
    );
    // A stored certificate never seen on an address; an unknown one; IPv6.
    assert_eq!(
        out[&format!("history:{}", LISTS.sha1)]["results"],
        json!([{"sha1": LISTS.sha1, "firstSeen": null, "lastSeen": null, "ipAddresses": []}])
    );
    assert_eq!(
        out["history:2222222222222222222222222222222222222222"]["results"],
        json!([])
    );
    let v6 = &out["history:2001:db8::1"]["results"];
    assert_eq!(v6[0]["sha1"], RUSTLANG.sha1);
    assert_eq!(v6.as_array().unwrap().len(), 1);

    // Details: the fields the client, the analyzer and XSOAR read.
    let d = &out[&format!("details:{}", GITHUB.sha1)]["results"];
    assert_eq!(d.as_array().unwrap().len(), 1, "{d}");
    let r = &d[0];
    let (subject, issuer) = inventory(GITHUB.sha1);
    let lower = |v: Option<String>| json!(v.map(|s| s.to_lowercase()));
    assert_eq!(r["sha1"], GITHUB.sha1);
    assert_eq!(r["fingerprint"], colons(GITHUB.sha1).to_lowercase());
    assert_eq!(r["serialNumber"], github_serial_decimal);
    assert_eq!(r["subjectCommonName"], lower(attr(&subject, "CN")));
    assert_eq!(r["subjectOrganizationName"], Value::Null);
    assert_eq!(r["issuerCommonName"], lower(attr(&issuer, "CN")));
    assert_eq!(r["issuerOrganizationName"], lower(attr(&issuer, "O")));
    assert_eq!(r["issuerCountry"], lower(attr(&issuer, "C")));
    let nb = t(GITHUB.not_before)
        .format("%b %d %H:%M:%S %Y GMT")
        .to_string();
    assert_eq!(r["issueDate"], nb);
    assert_eq!(r["issuerDate"], nb, "the analyzer reads issuerDate");
    assert_eq!(
        r["expirationDate"],
        t(GITHUB.not_after)
            .format("%b %d %H:%M:%S %Y GMT")
            .to_string()
    );
    assert_eq!(
        r["firstSeen"],
        obs.iter().map(|o| o.2).min().unwrap().timestamp_millis()
    );
    assert_eq!(
        r["lastSeen"],
        obs.iter().map(|o| o.3).max().unwrap().timestamp_millis()
    );
    assert!(r["subjectAlternativeNames"]
        .as_array()
        .unwrap()
        .contains(&json!("github.com")));
    for field in [
        "subjectSurname",
        "subjectStreetAddress",
        "issuerEmailAddress",
        "sslVersion",
    ] {
        assert!(r.get(field).is_some(), "{field} present (null when absent)");
    }
    assert_eq!(
        out["details:2222222222222222222222222222222222222222"]["results"],
        json!([])
    );

    // Details by address: the records of the certificates it served, most recently seen first.
    let by_ip: Vec<&Value> = out["details:192.0.2.10"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["sha1"])
        .collect();
    let want_ip_order: Vec<&Value> = want.iter().map(|w| &w["sha1"]).collect();
    assert_eq!(by_ip, want_ip_order);

    // Field search.
    let sha1s_of = |v: &Value| -> BTreeSet<String> {
        v["results"]
            .as_array()
            .unwrap_or_else(|| panic!("{v}"))
            .iter()
            .map(|r| r["sha1"].as_str().unwrap().to_owned())
            .collect()
    };
    let one = |s: &str| BTreeSet::from([s.to_owned()]);
    assert_eq!(
        sha1s_of(&out["search:subjectCommonName:github.com"]),
        one(GITHUB.sha1)
    );
    let want_le: BTreeSet<String> = ALL
        .iter()
        .filter(|f| attr(&inventory(f.sha1).1, "O").as_deref() == Some(le))
        .map(|f| f.sha1.to_owned())
        .collect();
    assert!(want_le.len() >= 3);
    assert_eq!(
        sha1s_of(&out[&format!("search:issuerOrganizationName:{le}")]),
        want_le
    );
    assert_eq!(
        sha1s_of(&out[&format!("search:serialNumber:{github_serial_decimal}")]),
        one(GITHUB.sha1)
    );
    assert_eq!(sha1s_of(&out["search:name:ycombinator"]), one(HN.sha1));
    assert_eq!(
        sha1s_of(&out[&format!("search:sha1:{}", GITHUB.sha1)]),
        one(GITHUB.sha1)
    );
    assert_eq!(
        sha1s_of(&out["search:subjectAlternativeName:rust-lang.org"]),
        one(RUSTLANG.sha1)
    );
    // A field the client allows but certhist does not store: a 400 in PassiveTotal's envelope,
    // which the client raises with the response.
    let e = &out["search:sslVersion:3"];
    assert_eq!(e["status"], 400, "{e}");
    assert_eq!(e["body"]["error"]["http_code"], 400);
    assert!(e["body"]["message"]
        .as_str()
        .unwrap()
        .contains("sslVersion"));
    let e = &out["history:not-an-ip"];
    assert_eq!(e["status"], 400, "{e}");
    assert!(e["body"]["error"]["developer_message"].as_str().is_some());

    // Keyword.
    let k = &out["keyword:ycombinator"];
    assert_eq!(k["queryValue"], "ycombinator");
    let fields: BTreeSet<&str> = k["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["focusPoint"], HN.sha1);
            r["fieldMatch"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        fields,
        BTreeSet::from(["subjectAlternativeNames", "subjectCommonName"])
    );

    // The analyzer: IPAddress.certificates (history), detail fields it fetches per certificate
    // (details), date_issued through the issuerDate alias; a certificate's IPs; Hostname search.
    let a = out["analyzer-ip:192.0.2.10"]
        .as_array()
        .unwrap_or_else(|| panic!("{out}"));
    let got: Vec<&str> = a.iter().map(|c| c["sha1"].as_str().unwrap()).collect();
    let want_order: Vec<&str> = want.iter().map(|w| w["sha1"].as_str().unwrap()).collect();
    assert_eq!(got, want_order);
    let gh = a.iter().find(|c| c["sha1"] == GITHUB.sha1).unwrap();
    assert_eq!(gh["subjectCommonName"], GITHUB.cn);
    assert_eq!(
        gh["date_issued"],
        t(GITHUB.not_before).format("%Y-%m-%d %H:%M:%S").to_string()
    );
    assert_eq!(
        gh["date_expires"],
        t(GITHUB.not_after).format("%Y-%m-%d %H:%M:%S").to_string()
    );
    assert_eq!(
        gh["days_valid"],
        (t(GITHUB.not_after) - t(GITHUB.not_before)).num_days()
    );
    assert_eq!(
        out[&format!("analyzer-cert-ips:{}", GITHUB.sha1)],
        json!(ips)
    );
    assert_eq!(
        out["analyzer-hostname:news.ycombinator.com"],
        json!([HN.sha1])
    );
    server.stop().await;
}

/// What the client checks before sending, tested over raw HTTP: unknown fields, a missing
/// query, unknown paths — each a JSON error in PassiveTotal's envelope.
#[tokio::test]
async fn passivetotal_raw_http_errors() {
    let server = Server::start().await;
    let base = format!("http://{}/compat/pt/v2", server.addr);
    let client = reqwest::Client::new();
    for (path, status, needle) in [
        ("ssl-certificate/search?query=x&field=bogus", 400, "bogus"),
        ("ssl-certificate/search?query=x", 400, "field"),
        ("ssl-certificate/history", 400, "query"),
        ("ssl-certificate?query=", 400, "query"),
        ("ssl-certificate?query=%FF", 400, "query"),
        (
            "ssl-certificate/search?query=1x&field=serialNumber",
            400,
            "decimal",
        ),
        ("ssl-certificate/search?query=ab&field=sha1", 400, "SHA-1"),
        ("whois?query=x", 404, "no such endpoint"),
    ] {
        let resp = client.get(format!("{base}/{path}")).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{path}");
        let body: Value = resp.json().await.unwrap();
        let msg = body["message"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}: {body}"));
        assert!(msg.contains(needle), "{path}: {body}");
        assert_eq!(body["error"]["http_code"], status, "{path}");
        assert_eq!(body["error"]["message"], msg);
    }
    server.stop().await;
}

/// Errors made outside the compatibility handlers (here: method not allowed, answered by the
/// router in certhist's shape) reach the clients in the upstream envelopes too.
#[tokio::test]
async fn errors_from_outside_the_handlers_use_the_upstream_envelopes() {
    let db = seeded().await;
    let app = app(&db);
    let send = |method: &str, uri: &str, body: Vec<u8>| {
        let app = app.clone();
        let req = axum::http::Request::builder()
            .method(method)
            .uri(uri)
            .header("content-length", body.len())
            .body(axum::body::Body::from(body))
            .unwrap();
        async move {
            use tower::ServiceExt;
            let resp = app.oneshot(req).await.unwrap();
            let status = resp.status().as_u16();
            let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap();
            (status, serde_json::from_slice::<Value>(&bytes).unwrap())
        }
    };
    let (s, v) = send("POST", "/compat/circl/v2pssl/query/192.0.2.10", Vec::new()).await;
    assert_eq!(s, 405);
    assert!(
        v["error"].as_str().unwrap().contains("method not allowed"),
        "{v}"
    );
    assert!(v.get("errors").is_none());
    let (s, v) = send("POST", "/compat/pt/v2/ssl-certificate?query=x", Vec::new()).await;
    assert_eq!(s, 405);
    assert_eq!(v["error"]["http_code"], 405, "{v}");
    assert!(v["message"]
        .as_str()
        .unwrap()
        .contains("method not allowed"));
    // /api/v1 keeps certhist's own shape.
    let (s, v) = send("POST", "/api/v1/ip/192.0.2.10", Vec::new()).await;
    assert_eq!(s, 405);
    assert!(v["errors"][0]["detail"].is_string(), "{v}");
}

/// misp-modules' `circl_passivessl` expansion module (with its base URL default patched in the
/// test, as docs/API.md tells users): an IP expands into one `x509` object per certificate the
/// address served, with the fields the module maps from `cfetch`.
#[tokio::test]
async fn misp_circl_passivessl_module_expands_an_ip_into_x509_objects() {
    let Some(py) = python() else { return };
    // The module's username/password settings are the certhist account and its password.
    let server = Server::start_opts(Opts {
        accounts: true,
        ..Opts::default()
    })
    .await;
    let alice = server.account();
    let base = format!("http://{}/compat/circl/", server.addr);
    let out = run(
        &py,
        "misp_circl.py",
        vec![
            base,
            alice.user.clone(),
            alice.password.clone(),
            "192.0.2.10".into(),
            "192.0.2.11|8443".into(),
            "192.0.2.13".into(),
            "203.0.113.7".into(),
        ],
    )
    .await;
    let r = &out["192.0.2.10"]["results"];
    let attrs = r["Attribute"].as_array().unwrap_or_else(|| panic!("{out}"));
    assert_eq!(attrs.len(), 1, "the input attribute only: {r}");
    assert_eq!(attrs[0]["value"], "192.0.2.10");
    let objects = r["Object"].as_array().unwrap();
    let want: BTreeSet<String> = sightings_on("192.0.2.10");
    let mut got = BTreeSet::new();
    for o in objects {
        assert_eq!(o["name"], "x509");
        let value = |rel: &str| -> Value {
            o["Attribute"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["object_relation"] == rel)
                .map(|a| a["value"].clone())
                .unwrap_or(Value::Null)
        };
        let sha1 = value("x509-fingerprint-sha1").as_str().unwrap().to_owned();
        let fixture = ALL.iter().find(|f| f.sha1 == sha1).unwrap();
        let (subject, issuer) = inventory(&sha1);
        assert_eq!(value("subject"), oneline(&subject));
        assert_eq!(value("issuer"), oneline(&issuer));
        // pymisp keeps datetime values as ISO 8601 text in JSON.
        let nb = value("validity-not-before");
        let nb = nb.as_str().unwrap();
        assert_eq!(
            DateTime::parse_from_rfc3339(nb).unwrap(),
            t(fixture.not_before),
            "{nb}"
        );
        assert_eq!(value("pubkey-info-size"), key_bits(&sha1).to_string());
        got.insert(sha1);
    }
    assert_eq!(got, want);
    // The port form of the attribute; an address never seen ("Not found", from the empty {}).
    let r11 = out["192.0.2.11|8443"]["results"]["Object"]
        .as_array()
        .unwrap();
    assert_eq!(r11.len(), sightings_on("192.0.2.11").len());
    assert_eq!(out["203.0.113.7"], json!({"error": "Not found"}));
    // An address seen only with a hash-only certificate: "Not found" rather than the module's
    // crash (KeyError 'Object') on an expansion without objects.
    assert_eq!(out["192.0.2.13"], json!({"error": "Not found"}));
    server.stop().await;
}

/// The certificates observed on one address.
fn sightings_on(ip: &str) -> BTreeSet<String> {
    observations()
        .iter()
        .filter(|o| o.ip.to_string() == ip)
        .map(|o| hex::encode(o.sha1))
        .collect()
}

/// Key sizes from `openssl x509 -inform der -noout -text` ("Public-Key: (N bit)").
fn key_bits(sha1_hex: &str) -> u32 {
    if sha1_hex == RUSTLANG.sha1 {
        2048
    } else if [GITHUB.sha1, HN.sha1, WIKIPEDIA.sha1, SERVO.sha1].contains(&sha1_hex) {
        256
    } else {
        panic!("no key size recorded for {sha1_hex}")
    }
}

/// The DER of the first PEM block of a file under tests/data/certs (a DER file as it is).
fn first_pem_block(path: &str) -> Vec<u8> {
    let bytes = std::fs::read(format!("{WORKSPACE}/tests/data/certs/{path}")).unwrap();
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return bytes;
    }
    let text = String::from_utf8(bytes).unwrap();
    let b64: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .unwrap()
}

/// Every value of attribute `key` in an RFC 4514 string (values without escaped commas).
fn attrs(rfc4514: &str, key: &str) -> Vec<String> {
    rfc4514
        .split(',')
        .filter_map(|rdn| rdn.strip_prefix(&format!("{key}=")).map(str::to_owned))
        .collect()
}

/// PassiveTotal's search by the name fields certhist has no index for (columns and attributes
/// found in the stored RFC 4514 name), over raw HTTP (the client only forwards the field).
#[tokio::test]
async fn passivetotal_search_by_unindexed_name_fields() {
    const ADDRESS: &str =
        "certificate-transparency/python/ct/crypto/testdata/cert_with_address.pem";
    const EV: &str = "certificate-transparency/python/ct/crypto/testdata/ev_chain.pem";
    const NAMED: &str =
        "certificate-transparency-go/x509/testdata/invalid/xf-der-pubkey-rsa-nonminimal-int.pem";
    let extra = [ADDRESS, EV, NAMED];
    let server = Server::start_with(&extra).await;
    // The SHA-1s of the loaded certificates, and their inventory rows.
    let mut loaded: Vec<String> = ALL.iter().map(|f| f.sha1.to_owned()).collect();
    loaded.extend(extra.iter().map(|p| {
        let der = first_pem_block(p);
        hex::encode(<sha1::Sha1 as sha1::Digest>::digest(&der))
    }));
    let client = reqwest::Client::new();
    let base = format!("http://{}/compat/pt/v2/ssl-certificate/search", server.addr);
    for (field, side, key, value) in [
        ("subjectStreetAddress", 0, "STREET", "Building 19"),
        ("subjectStreetAddress", 0, "STREET", "CQ Mail Centre"),
        ("subjectStreetAddress", 0, "STREET", "Paradeplatz 8"),
        ("subjectSerialNumber", 0, "2.5.4.5", "CH-020.3.906.075-9"),
        ("subjectSurname", 0, "2.5.4.4", "RFC5280 appendix A"),
        (
            "subjectGivenName",
            0,
            "2.5.4.42",
            "Non-minimal INTEGER in DER for public key",
        ),
        ("subjectLocalityName", 0, "L", "Rockhampton"),
        ("subjectStateOrProvinceName", 0, "ST", "Queensland"),
        ("subjectProvince", 0, "ST", "Queensland"),
        ("subjectCountry", 0, "C", "AU"),
        (
            "issuerOrganizationUnitName",
            1,
            "OU",
            "Certificate Services",
        ),
        ("issuerLocalityName", 1, "L", "London"),
        ("issuerCountry", 1, "C", "GB"),
    ] {
        let want: BTreeSet<String> = loaded
            .iter()
            .filter(|sha1| {
                let (subject, issuer) = inventory(sha1);
                let name = if side == 0 { subject } else { issuer };
                attrs(&name, key)
                    .iter()
                    .any(|v| v.eq_ignore_ascii_case(value))
            })
            .cloned()
            .collect();
        assert!(!want.is_empty(), "{field}={value} matches a fixture");
        // Case-insensitive, as upstream: send the value lower-cased.
        let resp = client
            .get(&base)
            .query(&[("query", value.to_lowercase().as_str()), ("field", field)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{field}");
        let body: Value = resp.json().await.unwrap();
        let got: BTreeSet<String> = body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["sha1"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(got, want, "{field}={value}");
    }
    // A prefix of an attribute value is not a match; neither is a value with regex characters.
    for (field, value) in [
        ("subjectSerialNumber", "CH-020.3.906"),
        ("subjectSerialNumber", "CH-020.3.906.075-."),
        ("subjectStreetAddress", ".*"),
    ] {
        let body: Value = client
            .get(&base)
            .query(&[("query", value), ("field", field)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["results"], json!([]), "{field}={value}");
    }
    // The record carries the attribute values (lower-case, as upstream).
    let address_sha1 = &loaded[ALL.len()];
    let body: Value = client
        .get(format!(
            "http://{}/compat/pt/v2/ssl-certificate",
            server.addr
        ))
        .query(&[("query", address_sha1.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = &body["results"][0];
    // The first street in the certificate's (DER) order; RFC 4514 text lists the last RDN first.
    assert_eq!(r["subjectStreetAddress"], "cq mail centre");
    assert_eq!(r["subjectLocalityName"], "rockhampton");
    assert_eq!(r["subjectProvince"], "queensland");
    assert_eq!(r["issuerOrganizationUnitName"], "certificate services");
    server.stop().await;
}

/// A stored certificate that does not parse has no dates, which pypssl's fetch_cert (and the
/// MISP module after it) would parse unchecked: query does not list it, and cfetch answers a
/// JSON error naming where the PEM is.
#[tokio::test]
async fn circl_certificates_that_do_not_parse() {
    const BROKEN: &str =
        "certificate-transparency/python/ct/crypto/testdata/asn1_indefinite_length_encoding.pem";
    let server = Server::start_with(&[BROKEN]).await;
    let sha1 = hex::encode(<sha1::Sha1 as sha1::Digest>::digest(first_pem_block(
        BROKEN,
    )));
    let client = reqwest::Client::new();
    let api = format!("http://{}", server.addr);
    // Precondition (certhist's own record): the DER is stored with a parse error.
    let record: Value = client
        .get(format!("{api}/api/v1/certificates/{sha1}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(record["parse_error"].is_string(), "{record}");
    let day = t("2024-05-01T00:00:00Z");
    server
        .observe(&[
            certhist_model::ObservationRow {
                ip: "192.0.2.200".parse().unwrap(),
                port: 443,
                sha1: crate::sha1(&sha1),
                first_seen: day,
                last_seen: day,
                times_seen: 1,
                source: "test".to_owned(),
            },
            certhist_model::ObservationRow {
                ip: "192.0.2.200".parse().unwrap(),
                port: 443,
                sha1: crate::sha1(GITHUB.sha1),
                first_seen: day,
                last_seen: day,
                times_seen: 1,
                source: "test".to_owned(),
            },
        ])
        .await;
    let q: Value = client
        .get(format!("{api}/compat/circl/v2pssl/query/192.0.2.200"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        q["192.0.2.200"]["certificates"],
        json!([GITHUB.sha1]),
        "{q}"
    );
    assert_eq!(q["192.0.2.200"]["x_certhist"][&sha1]["listed"], false);
    let resp = client
        .get(format!("{api}/compat/circl/v2pssl/cfetch/{sha1}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let body: Value = resp.json().await.unwrap();
    let msg = body["error"].as_str().unwrap();
    assert!(
        msg.contains(&format!("/api/v1/certificates/{sha1}?format=pem")),
        "{msg}"
    );
    server.stop().await;
}

// ---- Maltego TRX ----

/// A TRX request fixture under tests/data/compat/maltego.
fn trx_fixture(name: &str) -> String {
    format!("{WORKSPACE}/tests/data/compat/maltego/{name}.xml")
}

/// The properties of an entity as `maltego.py` reports them: Name → value.
fn props(entity: &Value) -> std::collections::BTreeMap<String, String> {
    entity["fields"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v["value"].as_str().unwrap().to_owned()))
        .collect()
}

/// The certificate properties certhist sends for a fixture (inventory values).
fn cert_props(f: &Fixture) -> Vec<(&'static str, String)> {
    let (subject, issuer) = inventory(f.sha1);
    vec![
        ("sha256", f.sha256.to_owned()),
        ("serial", f.serial.to_owned()),
        ("subject_cn", f.cn.to_owned()),
        ("subject", oneline(&subject)),
        ("issuer", oneline(&issuer)),
        ("not_before", z(t(f.not_before))),
        ("not_after", z(t(f.not_after))),
    ]
}

/// Merged sightings of `sha1` over the observations `keep` selects: (first, last, times, ports).
fn merged_over(
    sha1: &str,
    keep: impl Fn(&Sighting) -> bool,
) -> (DateTime<Utc>, DateTime<Utc>, i64, BTreeSet<u16>) {
    let obs: Vec<Sighting> = sightings(sha1).into_iter().filter(|o| keep(o)).collect();
    assert!(!obs.is_empty(), "{sha1} observed");
    (
        obs.iter().map(|o| o.2).min().unwrap(),
        obs.iter().map(|o| o.3).max().unwrap(),
        obs.iter().map(|o| o.4).sum(),
        obs.iter().map(|o| o.1).collect(),
    )
}

fn assert_sighting_props(
    p: &std::collections::BTreeMap<String, String>,
    (first, last, times, ports): &(DateTime<Utc>, DateTime<Utc>, i64, BTreeSet<u16>),
    with_ports: bool,
    ctx: &str,
) {
    assert_eq!(p["first_seen"], z(*first), "{ctx}");
    assert_eq!(p["last_seen"], z(*last), "{ctx}");
    assert_eq!(p["times_seen"], times.to_string(), "{ctx}");
    if with_ports {
        let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
        assert_eq!(p["ports"], ports.join(","), "{ctx}");
        assert_eq!(
            p["link#maltego.link.label"],
            format!(
                "{}..{} :{}",
                first.format("%Y-%m-%d"),
                last.format("%Y-%m-%d"),
                ports.join(",")
            ),
            "{ctx}"
        );
    }
}

/// The TRX requests a Maltego TDS sends (fixtures; read back by maltego-trx's own request
/// parser), posted over HTTP to every transform: entities, values, properties and the
/// SoftLimit truncation asserted against the observation list and the inventory; every answer
/// is the document maltego-trx's MaltegoTransform writes for the same content.
#[tokio::test]
async fn maltego_transforms_answer_trx_requests_from_the_database() {
    let Some(py) = python() else { return };
    let server = Server::start().await;
    let base = format!("http://{}/compat/maltego/run/", server.addr);
    let github_serial_decimal = "3272902241247380829979740935184468926";
    let op = |id: &str, transform: &str, fixture: &str, extra: Value| -> String {
        let mut o = json!({"id": id, "transform": transform, "fixture": trx_fixture(fixture)});
        for (k, v) in extra.as_object().unwrap() {
            o[k] = v.clone();
        }
        o.to_string()
    };
    let ops = vec![
        op("ip", "ip-to-certificates", "ip-to-certificates", json!({})),
        op(
            "ip-all",
            "ip-to-certificates",
            "ip-to-certificates",
            json!({"soft": 12}),
        ),
        op(
            "ip-v6-block",
            "ip-to-certificates",
            "ip-to-certificates",
            json!({"value": "2001:db8::/64", "soft": 12}),
        ),
        op(
            "ip-netblock",
            "ip-to-certificates",
            "ip-to-certificates",
            json!({"value": "192.0.2.96-192.0.2.127"}),
        ),
        op(
            "ip-hash-only",
            "ip-to-certificates",
            "ip-to-certificates",
            json!({"value": "192.0.2.13"}),
        ),
        op(
            "ip-unseen",
            "ip-to-certificates",
            "ip-to-certificates",
            json!({"value": "203.0.113.7"}),
        ),
        op(
            "ip-bad",
            "ip-to-certificates",
            "ip-to-certificates",
            json!({"value": "not-an-ip"}),
        ),
        op(
            "ip-too-wide",
            "ip-to-certificates",
            "ip-to-certificates",
            json!({"value": "10.0.0.0/8"}),
        ),
        op(
            "cert-ips",
            "certificate-to-ips",
            "certificate-to-ips",
            json!({}),
        ),
        op(
            "cert-ips-hn",
            "certificate-to-ips",
            "certificate-to-ips",
            json!({"value": HN.sha1.to_uppercase()}),
        ),
        op(
            "cert-ips-sha256",
            "certificate-to-ips",
            "certificate-to-ips",
            json!({"value": GITHUB.sha256}),
        ),
        op(
            "cert-ips-unknown",
            "certificate-to-ips",
            "certificate-to-ips",
            json!({"value": "2222222222222222222222222222222222222222"}),
        ),
        op(
            "cert-ips-bad",
            "certificate-to-ips",
            "certificate-to-ips",
            json!({"value": "xyz"}),
        ),
        op(
            "names",
            "certificate-to-names",
            "certificate-to-names",
            json!({}),
        ),
        op(
            "names-hash-only",
            "certificate-to-names",
            "certificate-to-names",
            json!({"value": HASH_ONLY}),
        ),
        op(
            "names-limited",
            "certificate-to-names",
            "certificate-to-names",
            json!({"soft": 1}),
        ),
        op(
            "name",
            "name-to-certificates",
            "name-to-certificates",
            json!({}),
        ),
        op(
            "name-none",
            "name-to-certificates",
            "name-to-certificates",
            json!({"value": "nothing.example"}),
        ),
        op(
            "serial",
            "serial-to-certificates",
            "serial-to-certificates",
            json!({}),
        ),
        op(
            "serial-decimal",
            "serial-to-certificates",
            "serial-to-certificates",
            json!({"value": github_serial_decimal}),
        ),
        op(
            "serial-bad",
            "serial-to-certificates",
            "serial-to-certificates",
            json!({"value": "not a serial"}),
        ),
        // Upper-case name and trailing slash, as maltego-trx's server accepts.
        op(
            "upper",
            "IP-To-Certificates/",
            "ip-to-certificates",
            json!({"soft": 12}),
        ),
    ];
    let out = run(
        &py,
        "maltego.py",
        std::iter::once(base).chain(ops.iter().cloned()).collect(),
    )
    .await;
    for (id, r) in out.as_object().unwrap() {
        assert_eq!(r["status"], 200, "{id}: {r}");
        assert_eq!(r["content_type"], "text/xml; charset=utf-8", "{id}");
        assert_eq!(r["root"], "MaltegoMessage", "{id}");
        assert_eq!(r["same_as_trx"], true, "{id}: {r}");
        for e in r["entities"].as_array().unwrap() {
            assert_eq!(e["weight"], "100", "{id}");
            for f in e["fields"].as_object().unwrap().values() {
                assert_eq!(f["matching"], "loose");
            }
        }
    }
    let messages = |id: &str| -> Vec<(String, String)> {
        out[id]["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m[0].as_str().unwrap().to_owned(),
                    m[1].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let entities = |id: &str| out[id]["entities"].as_array().unwrap().clone();
    let values = |id: &str| -> Vec<String> {
        entities(id)
            .iter()
            .map(|e| e["value"].as_str().unwrap().to_owned())
            .collect()
    };

    // What maltego-trx's parser read from the fixture: the request certhist answered.
    let req = &out["ip"]["request"];
    assert_eq!(req["type"], "maltego.IPv4Address");
    assert_eq!(req["value"], "192.0.2.10");
    assert_eq!(req["slider"], 2);
    assert_eq!(req["properties"]["ipv4-address"], "192.0.2.10");

    // ip-to-certificates, SoftLimit 2 of the 3 certificates 192.0.2.10 served: the two most
    // recently seen, and an Inform message saying so.
    let on_10 = |s: &Sighting| s.0 == "192.0.2.10";
    let mut ranked: Vec<(&Fixture, DateTime<Utc>)> = [&GITHUB, &HN, &WIKIPEDIA]
        .into_iter()
        .map(|f| (f, merged_over(f.sha1, on_10).1))
        .collect();
    ranked.sort_by_key(|r| std::cmp::Reverse(r.1));
    let want: Vec<&str> = ranked.iter().map(|r| r.0.sha1).collect();
    assert_eq!(values("ip"), want[..2].to_vec());
    assert_eq!(values("ip-all"), want);
    assert_eq!(values("upper"), want);
    for e in entities("ip-all") {
        assert_eq!(e["type"], "certhist.X509Certificate");
        let f = ALL
            .iter()
            .find(|f| f.sha1 == e["value"].as_str().unwrap())
            .unwrap();
        let p = props(&e);
        for (k, v) in cert_props(f) {
            assert_eq!(p[k], v, "{} {k}", f.sha1);
        }
        assert_sighting_props(&p, &merged_over(f.sha1, on_10), true, f.sha1);
    }
    let m = messages("ip");
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(m[0].0, "Inform");
    assert!(m[0].1.starts_with("2 of 3 certificates shown"), "{m:?}");
    assert!(messages("ip-all").is_empty());

    // A block: sightings merged over its addresses (2001:db8::1 and ::2 served RUSTLANG).
    let v6 = entities("ip-v6-block");
    assert_eq!(values("ip-v6-block"), vec![RUSTLANG.sha1]);
    assert_sighting_props(
        &props(&v6[0]),
        &merged_over(RUSTLANG.sha1, |s| s.0.starts_with("2001:db8::")),
        true,
        "v6",
    );
    // A maltego.Netblock range that is one block (192.0.2.96/27: GOOGLE_WWW on 20 addresses).
    assert_eq!(values("ip-netblock"), vec![GOOGLE_WWW.sha1]);
    assert_sighting_props(
        &props(&entities("ip-netblock")[0]),
        &merged_over(GOOGLE_WWW.sha1, |s| s.0.starts_with("192.0.2.1")),
        true,
        "netblock",
    );
    // A certificate known by its hash only: the entity, its sightings, no certificate fields.
    let ho = entities("ip-hash-only");
    assert_eq!(values("ip-hash-only"), vec![HASH_ONLY]);
    let p = props(&ho[0]);
    assert_eq!(p["stored"], "false");
    assert!(!p.contains_key("subject"));
    assert_sighting_props(&p, &merged_over(HASH_ONLY, |_| true), true, "hash-only");
    // Nothing seen: no entity, an Inform message. Bad input: a FatalError message, 200.
    assert!(entities("ip-unseen").is_empty());
    assert_eq!(messages("ip-unseen")[0].0, "Inform");
    for (id, needle) in [
        ("ip-bad", "not an IP address"),
        ("ip-too-wide", "wider than"),
        ("cert-ips-bad", "not a certificate SHA-1"),
        ("serial-bad", "not a serial number"),
    ] {
        assert!(entities(id).is_empty(), "{id}");
        let m = messages(id);
        assert_eq!(m.len(), 1, "{id}: {m:?}");
        assert_eq!(m[0].0, "FatalError", "{id}");
        assert!(m[0].1.contains(needle), "{id}: {m:?}");
    }

    // certificate-to-ips, SoftLimit 12 of the 20 addresses that served GOOGLE_WWW (each on 443
    // and 8443): the 12 most recently seen.
    let mut ips: Vec<(String, DateTime<Utc>)> = sightings(GOOGLE_WWW.sha1)
        .into_iter()
        .map(|o| o.0)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|ip| {
            let last = merged_over(GOOGLE_WWW.sha1, |s| s.0 == ip).1;
            (ip, last)
        })
        .collect();
    assert_eq!(ips.len(), 20);
    ips.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let want: Vec<String> = ips.iter().take(12).map(|i| i.0.clone()).collect();
    assert_eq!(values("cert-ips"), want);
    for e in entities("cert-ips") {
        assert_eq!(e["type"], "maltego.IPv4Address");
        let ip = e["value"].as_str().unwrap().to_owned();
        let p = props(&e);
        assert_sighting_props(&p, &merged_over(GOOGLE_WWW.sha1, |s| s.0 == ip), true, &ip);
        assert_eq!(p["ports"], "443,8443");
    }
    let m = messages("cert-ips");
    assert!(m[0].1.starts_with("12 of 20 addresses shown"), "{m:?}");
    // Upper-case SHA-1; the SHA-256 of a stored certificate; unknown.
    let hn_ips: Vec<String> = {
        let mut v: Vec<(String, DateTime<Utc>)> =
            sightings(HN.sha1).into_iter().map(|o| (o.0, o.3)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v.into_iter().map(|x| x.0).collect()
    };
    assert_eq!(values("cert-ips-hn"), hn_ips);
    let gh_ips: BTreeSet<String> = sightings(GITHUB.sha1).into_iter().map(|o| o.0).collect();
    assert_eq!(
        values("cert-ips-sha256")
            .into_iter()
            .collect::<BTreeSet<_>>(),
        gh_ips
    );
    assert!(entities("cert-ips-unknown").is_empty());
    assert!(messages("cert-ips-unknown")[0]
        .1
        .contains("knows no certificate"));

    // certificate-to-names (the fixture's value: upper case with colons). GITHUB's names from
    // `openssl x509 -ext subjectAltName -subject`: CN=github.com; DNS:github.com,
    // DNS:www.github.com.
    let names: BTreeSet<(String, String, String)> = entities("names")
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_owned(),
                e["value"].as_str().unwrap().to_owned(),
                props(e)["name_source"].clone(),
            )
        })
        .collect();
    let dns = |v: &str, src: &str| ("maltego.DNSName".to_owned(), v.to_owned(), src.to_owned());
    let want_names: BTreeSet<_> = [
        dns("github.com", "subject CN, SAN dNSName"),
        dns("www.github.com", "SAN dNSName"),
    ]
    .into_iter()
    .collect();
    // The order of the kinds is the store's; compare them as sets.
    let norm =
        |s: &BTreeSet<(String, String, String)>| -> BTreeSet<(String, String, BTreeSet<String>)> {
            s.iter()
                .map(|(a, b, c)| {
                    (
                        a.clone(),
                        b.clone(),
                        c.split(", ").map(str::to_owned).collect(),
                    )
                })
                .collect()
        };
    assert_eq!(norm(&names), norm(&want_names));
    assert_eq!(entities("names-limited").len(), 1);
    assert!(messages("names-limited")[0]
        .1
        .starts_with("1 of 2 names shown"));
    assert!(entities("names-hash-only").is_empty());
    assert!(messages("names-hash-only")[0].1.contains("does not store"));

    // name-to-certificates: HN, with its sightings over every address.
    assert_eq!(values("name"), vec![HN.sha1]);
    let p = props(&entities("name")[0]);
    for (k, v) in cert_props(&HN) {
        assert_eq!(p[k], v, "{k}");
    }
    assert_sighting_props(&p, &merged_over(HN.sha1, |_| true), false, "name");
    assert!(entities("name-none").is_empty());

    // serial-to-certificates: colon hex (the fixture) and decimal.
    assert_eq!(values("serial"), vec![GITHUB.sha1]);
    assert_eq!(values("serial-decimal"), vec![GITHUB.sha1]);
    assert_sighting_props(
        &props(&entities("serial")[0]),
        &merged_over(GITHUB.sha1, |_| true),
        false,
        "serial",
    );
    server.stop().await;
}

/// The parts of a TRX answer, read with quick-xml: (entity values, (MessageType, text)).
fn read_trx(body: &str) -> (Vec<String>, Vec<(String, String)>) {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(body);
    let mut values = Vec::new();
    let mut messages = Vec::new();
    let mut kind = String::new();
    let mut text = String::new();
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) => {
                text.clear();
                if e.name().as_ref() == b"UIMessage" {
                    kind = e
                        .try_get_attribute("MessageType")
                        .unwrap()
                        .unwrap()
                        .unescape_value()
                        .unwrap()
                        .into_owned();
                }
            }
            Event::Text(t) => text.push_str(&t.decode().unwrap()),
            Event::GeneralRef(r) => text.push_str(match r.decode().unwrap().as_ref() {
                "lt" => "<",
                "gt" => ">",
                "amp" => "&",
                "quot" => "\"",
                "apos" => "'",
                other => panic!("entity {other}"),
            }),
            Event::End(e) => match e.name().as_ref() {
                b"Value" => values.push(std::mem::take(&mut text)),
                b"UIMessage" => messages.push((kind.clone(), std::mem::take(&mut text))),
                _ => text.clear(),
            },
            Event::Eof => break,
            _ => {}
        }
    }
    (values, messages)
}

/// Raw HTTP: hostile and broken XML, sizes, unknown transforms, and authentication on a server
/// with accounts — the key in the transform settings (what a TDS can send), in a header, wrong,
/// missing. Every answer is a TRX document; none is a 5xx.
#[tokio::test]
async fn maltego_errors_limits_and_credentials() {
    let server = Server::start_opts(Opts {
        accounts: true,
        ..Opts::default()
    })
    .await;
    let alice = server.account();
    let url = |name: &str| format!("http://{}/compat/maltego/run/{name}", server.addr);
    let client = reqwest::Client::new();
    let fixture = std::fs::read_to_string(trx_fixture("name-to-certificates")).unwrap();
    let with_key = |key: &str| fixture.replace(">KEY<", &format!(">{key}<"));
    let post = |name: &str, body: String, auth: Option<String>| {
        let mut req = client.post(url(name)).body(body);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let ct = resp
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned());
            let www = resp.headers().contains_key("www-authenticate");
            let body = resp.text().await.unwrap();
            assert!(status < 500, "{status}: {body}");
            (status, ct, www, body)
        }
    };
    let bearer = format!("Bearer {}", alice.key);

    // The key in the transform settings (Bearer), or with certhist.username (Basic).
    let (s, ct, _, body) = post("name-to-certificates", with_key(&alice.key), None).await;
    assert_eq!(
        (s, ct.as_deref()),
        (200, Some("text/xml; charset=utf-8")),
        "{body}"
    );
    assert_eq!(read_trx(&body).0, vec![HN.sha1]);
    let basic = with_key(&alice.password).replace(
        "</TransformFields>",
        "<Field Name=\"certhist.username\">alice</Field></TransformFields>",
    );
    let (s, _, _, body) = post("name-to-certificates", basic, None).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(read_trx(&body).0, vec![HN.sha1]);
    // A header works too (and wins over the settings).
    let (s, _, _, body) = post(
        "name-to-certificates",
        with_key("chk_wrong"),
        Some(bearer.clone()),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(read_trx(&body).0, vec![HN.sha1]);

    // Broken and hostile XML: 200 with a FatalError message, nothing expanded.
    let xxe = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE m [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>{}",
        fixture.replace("news.ycombinator.com</Value>", "&x;</Value>")
    );
    let laughs = format!(
        "<!DOCTYPE m [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">]>{}",
        fixture.replace("news.ycombinator.com</Value>", "&b;</Value>")
    );
    let undeclared = fixture.replace("news.ycombinator.com</Value>", "&x;</Value>");
    for (what, body, needle) in [
        ("xxe", xxe, "DTD"),
        ("laughs", laughs, "DTD"),
        ("undeclared", undeclared, "undeclared entity"),
        (
            "cut",
            fixture[..fixture.len() / 2].to_owned(),
            "the document ends inside",
        ),
        (
            "mismatched",
            "<MaltegoMessage><a></b></MaltegoMessage>".to_owned(),
            "well-formed",
        ),
        ("json", "{\"value\": 1}".to_owned(), "MaltegoMessage"),
        ("empty", String::new(), "not a Maltego transform request"),
    ] {
        let (s, ct, _, resp) = post("name-to-certificates", body, Some(bearer.clone())).await;
        assert_eq!(s, 200, "{what}: {resp}");
        assert_eq!(ct.as_deref(), Some("text/xml; charset=utf-8"), "{what}");
        let (values, msgs) = read_trx(&resp);
        assert!(values.is_empty(), "{what}");
        assert_eq!(msgs.len(), 1, "{what}: {resp}");
        assert_eq!(msgs[0].0, "FatalError", "{what}");
        assert!(msgs[0].1.contains(needle), "{what}: {msgs:?}");
        assert!(
            !resp.contains("root:"),
            "{what}: nothing read from the file system"
        );
    }
    // Larger than the server's body limit: 413, as a TRX document (with and without a header).
    let big = fixture.replace(
        "news.ycombinator.com</Value>",
        &format!("{}</Value>", "a".repeat(70 * 1024)),
    );
    for auth in [None, Some(bearer.clone())] {
        let (s, ct, _, resp) = post("name-to-certificates", big.clone(), auth).await;
        assert_eq!(s, 413, "{resp}");
        assert_eq!(ct.as_deref(), Some("text/xml; charset=utf-8"));
        let (_, msgs) = read_trx(&resp);
        assert_eq!(msgs[0].0, "FatalError");
        assert!(
            msgs[0].1.contains("too large") || msgs[0].1.contains("larger"),
            "{msgs:?}"
        );
    }
    // An unknown transform: 404 (as maltego-trx), naming the transforms there are.
    let (s, _, _, resp) = post("dns-to-ip", with_key(&alice.key), None).await;
    assert_eq!(s, 404);
    let (_, msgs) = read_trx(&resp);
    assert!(msgs[0].1.contains("ip-to-certificates"), "{msgs:?}");
    // GET: the text maltego-trx answers.
    let resp = client
        .get(url("ip-to-certificates"))
        .header("authorization", bearer.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("POST"));

    // More sightings than one answer reads (5000): the SoftLimit still applies, and the
    // message says the total is a lower bound. LISTS on 10.1.0.0 … 10.1.19.136 (5001 addresses).
    let day0 = t("2025-01-01T00:00:00Z");
    let rows: Vec<certhist_model::ObservationRow> = (0..5001u32)
        .map(|i| certhist_model::ObservationRow {
            ip: std::net::IpAddr::V4(std::net::Ipv4Addr::from(0x0a01_0000 + i)),
            port: 443,
            sha1: crate::sha1(LISTS.sha1),
            first_seen: day0,
            last_seen: day0 + chrono::Duration::minutes(i64::from(i)),
            times_seen: 1,
            source: "test".to_owned(),
        })
        .collect();
    server.observe(&rows).await;
    let many = fixture.replace(
        "news.ycombinator.com</Value>",
        &format!("{}</Value>", LISTS.sha1),
    );
    let started = std::time::Instant::now();
    let (s, _, _, resp) = post("certificate-to-ips", many, Some(bearer.clone())).await;
    eprintln!(
        "certificate-to-ips over 5001 sightings: {:?} (load {})",
        started.elapsed(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    assert_eq!(s, 200, "{resp}");
    let (values, msgs) = read_trx(&resp);
    assert_eq!(values.len(), 12);
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert!(
        msgs[0].1.starts_with("12 of at least 5000 addresses shown"),
        "{msgs:?}"
    );

    // No credentials; a wrong key in the settings; a wrong password: 401 in the TRX envelope.
    let no_key = fixture.replace("<Field Name=\"certhist.apikey\">KEY</Field>", "");
    for (what, body, needle) in [
        ("missing", no_key, "authentication required"),
        (
            "wrong key",
            with_key("chk_not_a_key"),
            "API key is not valid",
        ),
        (
            "wrong password",
            with_key("wrong").replace(
                "</TransformFields>",
                "<Field Name=\"certhist.username\">alice</Field></TransformFields>",
            ),
            "wrong user name or password",
        ),
    ] {
        let (s, ct, www, resp) = post("name-to-certificates", body, None).await;
        assert_eq!(s, 401, "{what}: {resp}");
        assert!(www, "{what}: WWW-Authenticate");
        assert_eq!(ct.as_deref(), Some("text/xml; charset=utf-8"), "{what}");
        let (values, msgs) = read_trx(&resp);
        assert!(values.is_empty());
        assert_eq!(msgs[0].0, "FatalError", "{what}");
        assert!(msgs[0].1.contains(needle), "{what}: {msgs:?}");
    }
    server.stop().await;
}

/// The real clients with wrong credentials on a server with accounts: each sees the error the
/// way it expects it (pypssl: the `{"error"}` dict; passivetotal: an exception carrying the
/// 401 response and PassiveTotal's JSON envelope; the MISP module: its `error` answer), no 5xx.
#[tokio::test]
async fn compat_clients_with_wrong_credentials() {
    let Some(py) = python() else { return };
    let server = Server::start_opts(Opts {
        accounts: true,
        ..Opts::default()
    })
    .await;
    let alice = server.account();
    let base = format!("http://{}/compat/circl/", server.addr);
    let key_error = "the API key is not valid (unknown, revoked, or its account is disabled)";
    let pw_error = "wrong user name or password (or the account is disabled)";
    // A revoked-looking key (Basic), and the bare token form with it.
    let out = run(
        &py,
        "circl.py",
        vec![
            base.clone(),
            alice.user.clone(),
            "chk_not_a_key".into(),
            "query:192.0.2.10".into(),
            format!("cfetch:{}", GITHUB.sha1),
            "token-query:192.0.2.10".into(),
        ],
    )
    .await;
    for op in [
        "query:192.0.2.10",
        &format!("cfetch:{}", GITHUB.sha1),
        "token-query:192.0.2.10",
    ] {
        assert_eq!(out[op], json!({"error": key_error}), "{op}");
    }
    // A wrong password.
    let out = run(
        &py,
        "circl.py",
        vec![
            base.clone(),
            alice.user.clone(),
            "not the password".into(),
            format!("cquery:{}", GITHUB.sha1),
        ],
    )
    .await;
    assert_eq!(
        out[&format!("cquery:{}", GITHUB.sha1)],
        json!({"error": pw_error})
    );
    // passivetotal: the client raises with the response; status 401, PassiveTotal's envelope.
    let out = run(
        &py,
        "pt.py",
        vec![
            server.addr.to_string(),
            alice.user.clone(),
            "chk_not_a_key".into(),
            "history:192.0.2.10".into(),
            format!("details:{}", GITHUB.sha1),
        ],
    )
    .await;
    for op in [
        "history:192.0.2.10".to_owned(),
        format!("details:{}", GITHUB.sha1),
    ] {
        let e = &out[&op];
        assert_eq!(e["status"], 401, "{op}: {e}");
        assert_eq!(e["body"]["message"], key_error, "{op}");
        assert_eq!(e["body"]["error"]["http_code"], 401, "{op}");
        assert_eq!(e["body"]["error"]["message"], key_error, "{op}");
    }
    // The MISP module: the error passed through to MISP.
    let out = run(
        &py,
        "misp_circl.py",
        vec![
            base,
            alice.user.clone(),
            "not the password".into(),
            "192.0.2.10".into(),
        ],
    )
    .await;
    assert_eq!(out["192.0.2.10"], json!({"error": pw_error}), "{out}");
    server.stop().await;
}
