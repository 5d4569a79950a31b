//! `certhist cryptnet`: the report as a table, CSV and NDJSON, terminal safety, exit codes.

use certhist_cryptnet::ocsp::{build_get_url, cert_id_of};
use certhist_cryptnet::HashAlgorithm;
use certhist_test_support::TestDb;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SerialNumber};

use crate::support::{certhist, ok, sha1_hex, stderr, stdout};

/// An ANSI colour sequence, a right-to-left override and a NUL: what a hostile cache or
/// certificate would use to rewrite the analyst's screen.
const EVIL: &str = "\u{1b}[31m\u{202e}\0";

/// The leaf's serial number.
const SERIAL: [u8; 9] = [0x7e, 0x11, 0x0a, 0x00, 0xc3, 0x5e, 0x21, 0x9f, 0x42];

/// What `clean` (src/output.rs) shows for `text`, written out independently: ESC and U+202E as
/// `\u{…}`, NUL as `\u{0}`.
fn escaped(text: &str) -> String {
    text.replace('\u{1b}', "\\u{1b}")
        .replace('\u{202e}', "\\u{202e}")
        .replace('\0', "\\u{0}")
}

/// True when `text` holds a raw ESC, U+202E or NUL.
fn has_raw_controls(text: &str) -> bool {
    text.contains(['\u{1b}', '\u{202e}', '\0'])
}

struct Fixture {
    ca_der: Vec<u8>,
    leaf_der: Vec<u8>,
    ca_cn: String,
    leaf_cn: String,
    url: String,
}

/// A CA and a leaf whose subject CN and O carry [`EVIL`], stored with a sighting of the leaf; a
/// URL list holding the OCSP GET URL of the leaf at a responder whose path carries [`EVIL`].
async fn fixture(db: &TestDb, dir: &std::path::Path) -> Fixture {
    let ca_cn = format!("Evil CA {EVIL}R1");
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, ca_cn.clone());
    ca_params
        .distinguished_name
        .push(DnType::OrganizationName, format!("Org{EVIL}"));
    let ca = ca_params.self_signed(&ca_key).unwrap();

    let leaf_cn = format!("leaf{EVIL}.example");
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params = CertificateParams::new(vec!["leaf.example".to_owned()]).unwrap();
    leaf_params.serial_number = Some(SerialNumber::from(SERIAL.to_vec()));
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, leaf_cn.clone());
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).unwrap();

    let pem = dir.join("evil.pem");
    std::fs::write(&pem, format!("{}{}", ca.pem(), leaf.pem())).unwrap();
    ok(db, &["import", "certs", pem.to_str().unwrap()]);
    let obs = dir.join("obs.csv");
    std::fs::write(
        &obs,
        format!(
            "ip,port,sha1,first_seen,last_seen\n192.0.2.44,443,{},2024-01-01T00:00:00Z,2024-01-02T00:00:00Z\n",
            sha1_hex(leaf.der())
        ),
    )
    .unwrap();
    ok(db, &["import", "observations", obs.to_str().unwrap()]);

    let id = cert_id_of(leaf.der(), ca.der(), HashAlgorithm::Sha1).unwrap();
    let url = build_get_url(
        &format!("http://ocsp.evil.example/{EVIL}x"),
        std::slice::from_ref(&id),
    )
    .unwrap();
    std::fs::write(dir.join("urls.txt"), format!("{url}\n")).unwrap();
    Fixture {
        ca_der: ca.der().to_vec(),
        leaf_der: leaf.der().to_vec(),
        ca_cn,
        leaf_cn,
        url,
    }
}

/// Issue 11: the human report used to replace only `\n\r\t`, so ESC sequences and U+202E from a
/// suspect machine's cache and from certificates reached the analyst's terminal.
#[tokio::test]
async fn human_report_escapes_urls_and_certificate_names() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let f = fixture(&db, dir.path()).await;
    let list = dir.path().join("urls.txt");
    let out = ok(&db, &["cryptnet", list.to_str().unwrap()]);
    assert!(!has_raw_controls(&out), "raw control characters in {out:?}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("TIME"), "{out}");
    // The URL is cut to the table's cell width, but not before the escapes.
    assert!(
        lines[1].contains("http://ocsp.evil.example/\\u{1b}[31m\\u{202e}\\u{0}x/"),
        "{out}"
    );
    assert!(lines[1].contains("7E110A00C35E219F42"), "{out}");
    // Names and DNs were stored with NUL made visible (U+2400): shown as such, the rest escaped.
    let ca_cn = escaped(&f.ca_cn.replace('\0', "\u{2400}"));
    let leaf_cn = escaped(&f.leaf_cn.replace('\0', "\u{2400}"));
    assert!(ca_cn.contains("\\u{1b}[31m\\u{202e}␀"), "{ca_cn}");
    let detail = |label: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(&format!("    {label}")))
            .unwrap_or_else(|| panic!("no {label} line in {out}"))
            .trim()
            .to_owned()
    };
    assert!(detail("issuer:").contains(&format!("CN={ca_cn}")), "{out}");
    assert_eq!(
        detail("cert:"),
        format!("{} (exact)", sha1_hex(&f.leaf_der))
    );
    assert!(detail("names:").contains(&leaf_cn), "{out}");
    assert!(
        detail("ips:").starts_with("192.0.2.44:443 2024-01-01 00:00:00Z..2024-01-02 00:00:00Z"),
        "{out}"
    );
}

/// Issue 11: a CSV ends up in terminals too; its cells are escaped like the table's.
#[tokio::test]
async fn csv_report_escapes_every_cell() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let f = fixture(&db, dir.path()).await;
    let list = dir.path().join("urls.txt");
    let out = ok(&db, &["cryptnet", "--csv", list.to_str().unwrap()]);
    assert!(!has_raw_controls(&out), "raw control characters in {out:?}");
    let mut reader = csv::Reader::from_reader(out.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1, "{out}");
    let row = &rows[0];
    assert_eq!(&row[col("url")], escaped(&f.url));
    assert_eq!(&row[col("kind")], "ocsp");
    assert_eq!(&row[col("serial")], "7E110A00C35E219F42");
    let mut names: Vec<&str> = row[col("names")].split(' ').collect();
    names.sort_unstable();
    let leaf_cn = escaped(&f.leaf_cn.replace('\0', "\u{2400}"));
    let mut want = vec!["leaf.example", leaf_cn.as_str()];
    want.sort_unstable();
    assert_eq!(names, want);
    assert!(row[col("issuer")].contains(&escaped(&f.ca_cn.replace('\0', "\u{2400}"))));
    assert_eq!(
        &row[col("matched_cert")],
        format!("{} (exact)", sha1_hex(&f.leaf_der))
    );
    assert_eq!(
        &row[col("ips")],
        "192.0.2.44:443 2024-01-01 00:00:00..2024-01-02 00:00:00"
    );
    assert_eq!(&row[col("source")], format!("{}:1", list.display()));
}

/// Issue 11: `--json` prints NDJSON (one row per line, the view's fields and enum labels), not
/// one pretty array; JSON keeps the values as they are (escaped by JSON where it must).
#[tokio::test]
async fn json_report_is_ndjson_of_views() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let f = fixture(&db, dir.path()).await;
    let list = dir.path().join("urls.txt");
    std::fs::write(&list, format!("{}\nhttp://crl.example/ca.crl\n", f.url)).unwrap();
    let out = ok(&db, &["--json", "cryptnet", list.to_str().unwrap()]);
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert!(!out.contains('\u{1b}'), "JSON escapes ESC: {out}");
    let r = &rows[0];
    assert_eq!(r["url"], f.url.as_str());
    assert_eq!(r["kind"], "ocsp");
    assert_eq!(r["cert_index"], 0);
    assert_eq!(r["hash_algorithm"], "sha1");
    assert_eq!(r["serial"], "7E110A00C35E219F42");
    let id = cert_id_of(&f.leaf_der, &f.ca_der, HashAlgorithm::Sha1).unwrap();
    assert_eq!(r["issuer_name_hash"], hex::encode(&id.issuer_name_hash));
    assert_eq!(r["issuer_key_hash"], hex::encode(&id.issuer_key_hash));
    let res = &r["resolution"];
    assert_eq!(res["source"], "local");
    assert_eq!(res["certs"][0]["sha1"], sha1_hex(&f.leaf_der));
    assert_eq!(res["certs"][0]["match_kind"], "exact");
    let names: Vec<&str> = res["certs"][0]["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(
        names.contains(&f.leaf_cn.replace('\0', "\u{2400}").as_str()),
        "{names:?}"
    );
    let host = &res["certs"][0]["hosts"][0];
    assert_eq!(host["ip"], "192.0.2.44");
    assert_eq!(host["port"], 443);
    assert_eq!(host["first_seen"], "2024-01-01T00:00:00Z");
    assert_eq!(host["times_seen"], 1);
    assert_eq!(rows[1]["kind"], "crl");
    assert_eq!(rows[1]["resolution"], serde_json::Value::Null);
    assert_eq!(rows[1]["source"], format!("{}:2", list.display()));
}

/// Issue 11 (found while testing the escapes): a NUL in a cached URL made `--store` fail as a
/// whole (PostgreSQL text cannot hold NUL); it is stored as U+2400 like certificate text.
#[tokio::test]
async fn store_keeps_urls_holding_nul() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let f = fixture(&db, dir.path()).await;
    let list = dir.path().join("urls.txt");
    ok(
        &db,
        &[
            "cryptnet",
            "--store",
            "--label",
            "case-7",
            list.to_str().unwrap(),
        ],
    );
    let client = crate::support::client(&db).await;
    let rows = client
        .query(
            "SELECT url, serial FROM cache_entries WHERE collection = 'case-7'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, String>(0), f.url.replace('\0', "\u{2400}"));
    assert_eq!(rows[0].get::<_, Vec<u8>>(1), SERIAL.to_vec());
}

/// Issue 11: "nothing to analyse" is a typed library error the binary maps to exit code 2; the
/// read warnings (attacker-named paths) are printed first, escaped.
#[tokio::test]
async fn no_entries_is_a_usage_error_with_escaped_warnings() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("no-urls-\u{1b}[31m.txt");
    std::fs::write(&empty, "nothing to see\n").unwrap();
    let o = certhist(&db, &["cryptnet", empty.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(!has_raw_controls(&err), "{err:?}");
    assert!(
        err.contains("warning: ") && err.contains("no-urls-\\u{1b}[31m.txt"),
        "{err}"
    );
    assert!(
        err.contains("no CryptnetUrlCache folder, MetaData file or URL found"),
        "{err}"
    );
    assert!(err.contains("certhist: no cache entries found"), "{err}");
    assert!(stdout(&o).is_empty());
}
