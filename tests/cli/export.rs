//! Exports (issue 14): `certhist export` and `GET /api/v1/export` on the demo data
//! (tests/data/demo), every selector in every format. Expected values come from the fixture
//! files, read here independently of certhist: the sightings of
//! `tests/data/demo/observations.csv`, the certificates of `tests/data/demo/certs.pem`, and the
//! sha256 / serial columns of `tests/data/certs/CERT_INVENTORY.tsv` (OpenSSL / Python
//! cryptography). STIX bundles are checked with the real stix2-validator and stix2 library and
//! MISP events are loaded with the real pymisp (`tests/compat/stix_check.py`, `misp_check.py`,
//! from the venv `.ci/run` creates at target/pyenv; `CERTHIST_COMPAT_OPTIONAL=1` skips those
//! checks when the venv is missing). The server is the real binary on a loopback port.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::support::{certhist, data, demo_db, ok, pem_blocks, sha1_hex, stdout, Server};

const WIKI: &str = "390917308a9acfd9af6fbe16586c31eaf62a3bd5";
/// Served on 203.0.113.5 and 2001:db8::5: tagged in the test.
const TAGGED_CERT: &str = "8a98933100dbfecdc3806abb0e794b1d64a5766f";
const TAGGED_IP: &str = "198.51.100.21";
/// Observed, DER not stored.
const HASH_ONLY: &str = "40cef3046c916ed7ae557f60e76842828b51de53";
const TAG: &str = "apt-demo";

/// One row of observations.csv.
#[derive(Clone, Debug)]
struct Obs {
    ip: String,
    port: u16,
    sha1: String,
    first: String,
    last: String,
    count: i64,
    source: String,
}

fn fixture() -> Vec<Obs> {
    let text = std::fs::read_to_string(data("demo/observations.csv")).unwrap();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            // The deliberately broken line does not parse (certhist skips it too).
            Some(Obs {
                ip: f.first()?.parse::<std::net::IpAddr>().ok()?.to_string(),
                port: f.get(1)?.parse().ok()?,
                sha1: (*f.get(2)?).to_owned(),
                first: (*f.get(3)?).to_owned(),
                last: (*f.get(4)?).to_owned(),
                count: f.get(5)?.parse().ok()?,
                source: (*f.get(6)?).to_owned(),
            })
        })
        .collect()
}

fn ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The inventory's (sha256, serial as certhist writes it: upper case, no leading zeros).
fn inventory(sha1: &str) -> (String, String) {
    let tsv = std::fs::read_to_string(data("certs/CERT_INVENTORY.tsv")).unwrap();
    let mut lines = tsv.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    for l in lines {
        let f: Vec<&str> = l.split('\t').collect();
        if f[col("sha1")] == sha1 {
            let serial = f[col("serial")].to_uppercase();
            return (
                f[col("sha256")].to_owned(),
                serial.trim_start_matches('0').to_owned(),
            );
        }
    }
    panic!("{sha1} not in the inventory");
}

/// The DER of a demo certificate, from certs.pem.
fn demo_der(sha1: &str) -> Option<Vec<u8>> {
    let pem = std::fs::read_to_string(data("demo/certs.pem")).unwrap();
    pem_blocks(&pem).into_iter().find(|d| sha1_hex(d) == sha1)
}

/// The rows an expansion from `seed` (2 hops, nothing shared in the demo data) covers:
/// addresses → their certificates → the addresses serving those, computed on the fixture.
fn expansion(rows: &[Obs], seed: &str) -> Vec<Obs> {
    let certs: BTreeSet<&str> = rows
        .iter()
        .filter(|o| o.ip == seed)
        .map(|o| o.sha1.as_str())
        .collect();
    let ips: BTreeSet<&str> = rows
        .iter()
        .filter(|o| certs.contains(o.sha1.as_str()))
        .map(|o| o.ip.as_str())
        .collect();
    rows.iter()
        .filter(|o| ips.contains(o.ip.as_str()) && certs.contains(o.sha1.as_str()))
        .cloned()
        .collect()
}

/// `GET path` from `server`: (status, content-type, content-disposition, body).
async fn get(server: &Server, path: &str) -> (u16, String, String, String) {
    let resp = reqwest::Client::new()
        .get(format!("{}{path}", server.base))
        .send()
        .await
        .expect("request");
    let h = |n: &str| {
        resp.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (ct, cd) = (h("content-type"), h("content-disposition"));
    (
        resp.status().as_u16(),
        ct,
        cd,
        resp.text().await.expect("body"),
    )
}

/// The venv's python, or `None` when the checks may be skipped.
fn python() -> Option<PathBuf> {
    let py = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/pyenv/bin/python");
    if py.exists() {
        return Some(py);
    }
    let how = "python3 -m venv target/pyenv && target/pyenv/bin/pip install --no-deps -r tests/compat/requirements.txt";
    if std::env::var("CERTHIST_COMPAT_OPTIONAL").as_deref() == Ok("1") {
        eprintln!(
            "SKIPPED: the STIX / MISP checks need {}; {how}",
            py.display()
        );
        return None;
    }
    panic!(
        "the export tests need stix2, stix2-validator and pymisp in {}; create them with: {how} \
         (or set CERTHIST_COMPAT_OPTIONAL=1 to skip these checks locally)",
        py.display()
    );
}

fn run_py(py: &PathBuf, script: &str, files: &[PathBuf]) -> Value {
    let out = Command::new(py)
        .arg(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("tests/compat")
                .join(script),
        )
        .args(files)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from the checker")
}

/// (ip, port, sha1, first, last, count, sources) of the fixture rows, times in Unix seconds.
type Row = (String, u16, String, i64, i64, i64, String);

fn expected_rows(rows: &[Obs]) -> BTreeSet<Row> {
    rows.iter()
        .map(|o| {
            (
                o.ip.clone(),
                o.port,
                o.sha1.clone(),
                ts(&o.first).timestamp(),
                ts(&o.last).timestamp(),
                o.count,
                o.source.clone(),
            )
        })
        .collect()
}

fn ndjson_rows(text: &str) -> BTreeSet<Row> {
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("NDJSON line");
            let keys: BTreeSet<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(
                keys,
                BTreeSet::from([
                    "ip",
                    "port",
                    "cert_sha1",
                    "time_first",
                    "time_last",
                    "count",
                    "source"
                ])
            );
            let sources: Vec<&str> = v["source"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap())
                .collect();
            (
                v["ip"].as_str().unwrap().to_owned(),
                u16::try_from(v["port"].as_u64().unwrap()).unwrap(),
                v["cert_sha1"].as_str().unwrap().to_owned(),
                v["time_first"].as_i64().unwrap(),
                v["time_last"].as_i64().unwrap(),
                v["count"].as_i64().unwrap(),
                sources.join(";"),
            )
        })
        .collect()
}

fn csv_rows(text: &str) -> BTreeSet<Row> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(
        r.headers().unwrap().iter().collect::<Vec<_>>(),
        [
            "ip",
            "port",
            "cert_sha1",
            "time_first",
            "time_last",
            "count",
            "source"
        ]
    );
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            (
                rec[0].to_owned(),
                rec[1].parse().unwrap(),
                rec[2].to_owned(),
                ts(&rec[3]).timestamp(),
                ts(&rec[4]).timestamp(),
                rec[5].parse().unwrap(),
                rec[6].to_owned(),
            )
        })
        .collect()
}

struct Case {
    name: &'static str,
    cli: Vec<&'static str>,
    query: &'static str,
    rows: Vec<Obs>,
}

#[tokio::test]
async fn exports_of_every_selector_in_every_format() {
    let db = demo_db().await;
    ok(&db, &["tag", "add", "ip", TAGGED_IP, TAG]);
    ok(&db, &["tag", "add", "certificate", TAGGED_CERT, TAG]);
    let server = Server::start(&db);
    let all = fixture();
    assert_eq!(all.len(), 10, "the fixture's sightings");
    let cases = vec![
        Case {
            name: "ip",
            cli: vec!["ip", TAGGED_IP],
            query: "ip=198.51.100.21",
            rows: all.iter().filter(|o| o.ip == TAGGED_IP).cloned().collect(),
        },
        Case {
            name: "cidr",
            cli: vec!["ip", "203.0.113.0/24"],
            query: "ip=203.0.113.0/24",
            rows: all
                .iter()
                .filter(|o| o.ip.starts_with("203.0.113."))
                .cloned()
                .collect(),
        },
        Case {
            name: "cert",
            cli: vec!["cert", WIKI],
            query: "sha1=390917308A9ACFD9AF6FBE16586C31EAF62A3BD5",
            rows: all.iter().filter(|o| o.sha1 == WIKI).cloned().collect(),
        },
        Case {
            name: "search",
            cli: vec!["search", "name", "*.wikipedia.org"],
            query: "field=name&q=*.wikipedia.org",
            rows: all.iter().filter(|o| o.sha1 == WIKI).cloned().collect(),
        },
        Case {
            name: "expand",
            cli: vec!["expand", TAGGED_IP],
            query: "seed=198.51.100.21",
            rows: expansion(&all, TAGGED_IP),
        },
        Case {
            name: "tag",
            cli: vec!["tag", TAG],
            query: "tag=apt-demo",
            rows: all
                .iter()
                .filter(|o| o.ip == TAGGED_IP || o.sha1 == TAGGED_CERT)
                .cloned()
                .collect(),
        },
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut stix_files = Vec::new();
    let mut misp_files = Vec::new();
    for case in &cases {
        assert!(!case.rows.is_empty(), "{}: the case covers rows", case.name);
        for format in ["ndjson", "csv", "stix", "misp"] {
            let mut args = vec!["export", "--format", format];
            args.extend(case.cli.iter().copied());
            let cli = ok(&db, &args);
            let (status, ct, cd, api) = get(
                &server,
                &format!("/api/v1/export?format={format}&{}", case.query),
            )
            .await;
            assert_eq!(status, 200, "{} {format}: {api}", case.name);
            assert_eq!(
                cli, api,
                "{} {format}: the CLI and the API write the same bytes",
                case.name
            );
            let (want_ct, ext) = match format {
                "ndjson" => ("application/x-ndjson", "ndjson"),
                "csv" => ("text/csv; charset=utf-8; header=present", "csv"),
                "stix" => ("application/stix+json;version=2.1", "stix.json"),
                _ => ("application/json", "misp.json"),
            };
            assert_eq!(ct, want_ct, "{} {format}", case.name);
            let kind = if case.name == "cidr" { "ip" } else { case.name };
            assert_eq!(
                cd,
                format!("attachment; filename=\"certhist-{kind}.{ext}\""),
                "{} {format}",
                case.name
            );
            match format {
                "ndjson" => assert_eq!(
                    ndjson_rows(&cli),
                    expected_rows(&case.rows),
                    "{} ndjson rows",
                    case.name
                ),
                "csv" => assert_eq!(
                    csv_rows(&cli),
                    expected_rows(&case.rows),
                    "{} csv rows",
                    case.name
                ),
                "stix" => {
                    let p = dir.path().join(format!("{}.stix.json", case.name));
                    std::fs::write(&p, &cli).unwrap();
                    stix_files.push(p);
                }
                _ => {
                    let p = dir.path().join(format!("{}.misp.json", case.name));
                    std::fs::write(&p, &cli).unwrap();
                    misp_files.push(p);
                }
            }
        }
    }
    // -o FILE writes the same bytes.
    let out = dir.path().join("out.stix.json");
    ok(
        &db,
        &[
            "export",
            "--format",
            "stix",
            "-o",
            out.to_str().unwrap(),
            "ip",
            TAGGED_IP,
        ],
    );
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(dir.path().join("ip.stix.json")).unwrap()
    );

    let Some(py) = python() else { return };
    let stix = run_py(&py, "stix_check.py", &stix_files);
    for (case, file) in cases.iter().zip(&stix_files) {
        let r = &stix[file.to_str().unwrap()];
        let name = case.name;
        assert_eq!(
            r["errors"],
            serde_json::json!([]),
            "{name}: validator errors"
        );
        assert_eq!(
            r["warnings"],
            serde_json::json!([]),
            "{name}: validator warnings"
        );
        assert_eq!(r["parsed"], true, "{name}: stix2.parse(allow_custom=False)");
        assert_eq!(r["id_mismatches"], serde_json::json!([]), "{name}: SCO ids");
        let certs: BTreeSet<&str> = case.rows.iter().map(|o| o.sha1.as_str()).collect();
        let ips: BTreeSet<&str> = case.rows.iter().map(|o| o.ip.as_str()).collect();
        assert!(
            r["sco_ids_checked"].as_u64().unwrap() >= (certs.len() + ips.len()) as u64,
            "{name}: every certificate and address has an SCO"
        );
        // observed-data: one per sighting, with the fixture's times and counts.
        let got: BTreeSet<(String, String, i64, i64, i64)> = r["observed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["ip"].as_str().unwrap().to_owned(),
                    o["sha1"].as_str().unwrap().to_owned(),
                    ts(o["first"].as_str().unwrap()).timestamp(),
                    ts(o["last"].as_str().unwrap()).timestamp(),
                    o["count"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(r["observed"].as_array().unwrap().len(), case.rows.len());
        let want: BTreeSet<(String, String, i64, i64, i64)> = case
            .rows
            .iter()
            .map(|o| {
                (
                    o.ip.clone(),
                    o.sha1.clone(),
                    ts(&o.first).timestamp(),
                    ts(&o.last).timestamp(),
                    o.count,
                )
            })
            .collect();
        assert_eq!(got, want, "{name}: observed-data");
        // Tags as labels: the tagged address's and the tagged certificate's sightings.
        for o in r["observed"].as_array().unwrap() {
            let tagged = o["ip"] == TAGGED_IP || o["sha1"] == TAGGED_CERT;
            let labels = if tagged {
                serde_json::json!([TAG])
            } else {
                serde_json::json!([])
            };
            assert_eq!(o["labels"], labels, "{name}: labels of {o}");
        }
        // Certificates: the inventory's SHA-256 and serial; a hash-only one has its SHA-1 only.
        for (sha1, c) in r["certificates"].as_object().unwrap() {
            if sha1 == HASH_ONLY {
                assert!(c["sha256"].is_null() && c["serial_number"].is_null());
                continue;
            }
            let (sha256, serial) = inventory(sha1);
            assert_eq!(c["sha256"], sha256.as_str(), "{name}: {sha1}");
            assert_eq!(c["serial_number"], serial.as_str(), "{name}: {sha1}");
        }
        assert_eq!(
            r["certificates"].as_object().unwrap().len(),
            certs.len(),
            "{name}"
        );
        assert_eq!(
            r["relationships"].as_u64().unwrap() as usize,
            case.rows.len()
        );
    }
    let cidr = &stix[stix_files[1].to_str().unwrap()]["certificates"];
    assert!(
        cidr[HASH_ONLY].is_object(),
        "the hash-only certificate is exported"
    );

    let misp = run_py(&py, "misp_check.py", &misp_files);
    for (case, file) in cases.iter().zip(&misp_files) {
        let r = &misp[file.to_str().unwrap()];
        let name = case.name;
        assert_eq!(
            r["warnings"],
            serde_json::json!([]),
            "{name}: pymisp warnings"
        );
        // One ip-dst per sighting, with its period.
        let got: BTreeSet<(String, i64, i64)> = r["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                assert_eq!(a["type"], "ip-dst");
                (
                    a["value"].as_str().unwrap().to_owned(),
                    ts(a["first_seen"].as_str().unwrap()).timestamp(),
                    ts(a["last_seen"].as_str().unwrap()).timestamp(),
                )
            })
            .collect();
        let want: BTreeSet<(String, i64, i64)> = case
            .rows
            .iter()
            .map(|o| {
                (
                    o.ip.clone(),
                    ts(&o.first).timestamp(),
                    ts(&o.last).timestamp(),
                )
            })
            .collect();
        assert_eq!(got, want, "{name}: ip-dst attributes");
        for a in r["attributes"].as_array().unwrap() {
            let comment = a["comment"].as_str().unwrap();
            let tagged = a["value"] == TAGGED_IP || comment.contains(TAGGED_CERT);
            let tags = if tagged {
                serde_json::json!([TAG])
            } else {
                serde_json::json!([])
            };
            assert_eq!(a["tags"], tags, "{name}: tags of {a}");
        }
        // One x509 object per certificate.
        let mut per_cert: BTreeMap<&str, Vec<&Obs>> = BTreeMap::new();
        for o in &case.rows {
            per_cert.entry(o.sha1.as_str()).or_default().push(o);
        }
        let objects = r["objects"].as_array().unwrap();
        assert_eq!(objects.len(), per_cert.len(), "{name}: x509 objects");
        for obj in objects {
            assert_eq!(obj["name"], "x509");
            assert_eq!(obj["template_uuid"], "d1ab756a-26b5-4349-9f43-765630f0911c");
            assert_eq!(obj["template_version"], "14");
            let f = &obj["fields"];
            let sha1 = f["x509-fingerprint-sha1"][0].as_str().unwrap();
            let rows = &per_cert[sha1];
            let first = rows.iter().map(|o| ts(&o.first)).min().unwrap();
            let last = rows.iter().map(|o| ts(&o.last)).max().unwrap();
            assert_eq!(
                ts(obj["first_seen"].as_str().unwrap()),
                first,
                "{name} {sha1}"
            );
            assert_eq!(
                ts(obj["last_seen"].as_str().unwrap()),
                last,
                "{name} {sha1}"
            );
            // seen-by: one reference to each sighting's ip-dst.
            let refs: BTreeSet<(String, String)> = obj["seen_by"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    assert_eq!(s["relationship"], "seen-by");
                    (
                        s["ip"].as_str().expect("reference resolves").to_owned(),
                        s["comment"].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            assert_eq!(refs.len(), rows.len(), "{name} {sha1}: references");
            for (ip, comment) in &refs {
                assert!(
                    rows.iter()
                        .any(|o| &o.ip == ip && comment.contains(&format!("port {}", o.port)))
                        && comment.contains(sha1),
                    "{name} {sha1}: reference to {ip} ({comment})"
                );
            }
            if sha1 == HASH_ONLY {
                assert!(f.get("pem").is_none() && f.get("x509-fingerprint-sha256").is_none());
                continue;
            }
            let (sha256, serial) = inventory(sha1);
            assert_eq!(f["x509-fingerprint-sha256"][0], sha256.as_str(), "{name}");
            assert_eq!(f["serial-number"][0], serial.as_str(), "{name}");
            // The PEM is the real certificate: its DER is the fixture's.
            let pem = f["pem"][0].as_str().unwrap();
            let der = pem_blocks(pem);
            assert_eq!(der.len(), 1);
            assert_eq!(Some(&der[0]), demo_der(sha1).as_ref(), "{name} {sha1}: PEM");
            use base64::Engine;
            assert_eq!(
                base64::engine::general_purpose::STANDARD
                    .decode(f["raw-base64"][0].as_str().unwrap())
                    .unwrap(),
                der[0]
            );
        }
    }
}

#[tokio::test]
async fn bad_selectors_are_400_naming_the_parameter() {
    let db = demo_db().await;
    let server = Server::start(&db);
    for (query, param) in [
        ("format=stix", "`ip`"),
        ("format=stix&ip=198.51.100.21&tag=x", "`tag`"),
        ("format=stix&sha1=00&seed=1.2.3.4", "`seed`"),
        ("format=xml&ip=198.51.100.21", "`format`"),
        ("ip=198.51.100.21", "`format`"),
        ("format=csv&ip=198.51.100.21&q=x", "`q`"),
        ("format=csv&field=name", "`q`"),
        ("format=csv&field=bogus&q=x", "`field`"),
        ("format=csv&sha1=not-a-hash", "`sha1`"),
        ("format=csv&ip=999.1.1.1", "`ip`"),
        ("format=csv&ip=198.51.100.21&hops=2", "`hops`"),
        ("format=csv&tag=", "`tag`"),
        ("format=csv&ip=198.51.100.21&bogus=1", "`bogus`"),
    ] {
        let (status, ct, _, body) = get(&server, &format!("/api/v1/export?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(ct.starts_with("application/json"), "{query}");
        assert!(body.contains(param), "{query}: {body} should name {param}");
    }
    // Unknown certificate: 404 from the API, exit 3 from the CLI, nothing written.
    let unknown = "0123456789abcdef0123456789abcdef01234567";
    let (status, _, _, body) = get(
        &server,
        &format!("/api/v1/export?format=stix&sha1={unknown}"),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let o = certhist(&db, &["export", "--format", "stix", "cert", unknown]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stdout(&o).is_empty());
    let o = certhist(&db, &["export", "--format", "yaml", "ip", "198.51.100.21"]);
    assert_eq!(o.status.code(), Some(2));
}
