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
}

impl Server {
    async fn start() -> Server {
        Server::start_with(&[]).await
    }

    /// The seeded database plus the first certificate of each of these PEM files.
    async fn start_with(extra_pem: &[&str]) -> Server {
        let db = seeded().await;
        if !extra_pem.is_empty() {
            let records: Vec<_> = extra_pem
                .iter()
                .map(|pem| certhist_x509::parse_der(&first_pem_block(pem)))
                .collect();
            let store = db.store();
            let mut conn = store.conn().await.unwrap();
            let mut tx = conn.begin().await.unwrap();
            tx.write_certs(&records).await.unwrap();
            tx.commit().await.unwrap();
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(certhist_api::serve_on(
            listener,
            db.store(),
            ServeConfig::default(),
            async {
                let _ = rx.await;
            },
        ));
        Server {
            addr,
            stop: Some(tx),
            task,
            _db: db,
        }
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
    let script = PathBuf::from(WORKSPACE).join("tests/compat").join(script);
    let py = py.to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&py)
            .arg(&script)
            .args(&args)
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
    let server = Server::start().await;
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
        "token-query:192.0.2.12".to_owned(),
    ];
    let out = run(
        &py,
        "circl.py",
        [base, "reader".into(), "reader-key".into()]
            .into_iter()
            .chain(ops.iter().cloned())
            .collect(),
    )
    .await;

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
    server.stop().await;
}

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
    let server = Server::start().await;
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
    let out = run(
        &py,
        "pt.py",
        [
            server.addr.to_string(),
            "reader".into(),
            "reader-key".into(),
        ]
        .into_iter()
        .chain(ops)
        .collect(),
    )
    .await;
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
    let server = Server::start().await;
    let base = format!("http://{}/compat/circl/", server.addr);
    let out = run(
        &py,
        "misp_circl.py",
        vec![
            base,
            "reader".into(),
            "reader-key".into(),
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

/// The DER of the first PEM block of a file under tests/data/certs.
fn first_pem_block(path: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(format!("{WORKSPACE}/tests/data/certs/{path}")).unwrap();
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
