//! Issue 19: `certhist import zeek|suricata` (and `--follow`) end to end, asserting every Zeek and
//! Suricata row of `tests/data/passive/logs/EXPECTED.tsv`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use certhist_test_support::TestDb;
use chrono::{DateTime, Timelike, Utc};

use crate::support::{certhist, client, data, ok, stderr, stdout, Server};

/// One expected (ip, port, leaf) key: count, first and last seen, subject CN.
#[derive(Debug, Default)]
struct Want {
    count: i64,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
    cn: String,
}

/// How a key is stored: by SHA-1 in `observations`, or by SHA-256 in `observations_sha256`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Sha1(String, i32, String),
    Sha256(String, i32, String),
}

fn ts(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// The expected keys of the EXPECTED.tsv rows whose file starts with one of `prefixes`, and the
/// number of records that have no hash the log can give (not storable as sightings).
fn expected(prefixes: &[&str]) -> (BTreeMap<Key, Want>, usize) {
    let text = std::fs::read_to_string(data("passive/logs/EXPECTED.tsv")).unwrap();
    let mut out: BTreeMap<Key, Want> = BTreeMap::new();
    let mut unhashed = 0;
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let (file, record, t, ip, port, sha1, sha256, cn, note) =
            (f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8]);
        if !prefixes.iter().any(|p| file.starts_with(p)) || record.starts_with('-') {
            continue;
        }
        let (count, first, last) = match record.strip_prefix("agg:") {
            Some(n) => {
                let last = note
                    .split("; ")
                    .find_map(|p| p.strip_prefix("last_seen="))
                    .unwrap_or_else(|| panic!("no last_seen in {note}"));
                (n.parse::<i64>().unwrap(), ts(t), ts(last))
            }
            None => (1, ts(t), ts(t)),
        };
        let port: i32 = port.parse().unwrap();
        // The log itself gives a SHA-1 for Suricata and for old Zeek via files.log; a Zeek >= 4.1
        // log gives only the SHA-256 (a SHA-1 in EXPECTED then came from the matching capture).
        let log_has_sha1 = !sha1.is_empty()
            && (file.ends_with(".json") && !file.contains("zeek") && !file.contains("zat")
                || note.contains("sha1 from files.log"));
        let key = if log_has_sha1 {
            Key::Sha1(ip.to_owned(), port, sha1.to_owned())
        } else if !sha256.is_empty() {
            Key::Sha256(ip.to_owned(), port, sha256.to_owned())
        } else {
            unhashed += count as usize;
            continue;
        };
        let w = out.entry(key).or_default();
        w.count += count;
        w.first = Some(w.first.map_or(first, |x| x.min(first)));
        w.last = Some(w.last.map_or(last, |x| x.max(last)));
        w.cn = cn.to_owned();
    }
    (out, unhashed)
}

/// Every stored sighting key with (count, first, last).
async fn stored(db: &TestDb) -> BTreeMap<Key, (i64, DateTime<Utc>, DateTime<Utc>)> {
    let c = client(db).await;
    let mut out = BTreeMap::new();
    for r in c
        .query(
            "SELECT host(ip), port, encode(sha1, 'hex'), times_seen, first_seen, last_seen FROM observations",
            &[],
        )
        .await
        .unwrap()
    {
        out.insert(
            Key::Sha1(r.get(0), r.get(1), r.get(2)),
            (r.get(3), r.get(4), r.get(5)),
        );
    }
    for r in c
        .query(
            "SELECT host(ip), port, encode(sha256, 'hex'), times_seen, first_seen, last_seen FROM observations_sha256",
            &[],
        )
        .await
        .unwrap()
    {
        out.insert(
            Key::Sha256(r.get(0), r.get(1), r.get(2)),
            (r.get(3), r.get(4), r.get(5)),
        );
    }
    out
}

/// Asserts each expected key is stored with exactly its count and first/last seen.
fn assert_keys(
    want: &BTreeMap<Key, Want>,
    got: &BTreeMap<Key, (i64, DateTime<Utc>, DateTime<Utc>)>,
) {
    for (k, w) in want {
        let g = got
            .get(k)
            .unwrap_or_else(|| panic!("expected sighting {k:?} not stored"));
        // Sightings by SHA-1 keep whole seconds since schema V7 (`sightings`); the SHA-256-only
        // sightings of stubs keep the log's microseconds.
        let whole = |t: Option<DateTime<Utc>>| match k {
            Key::Sha1(..) => t.map(|t| t.with_nanosecond(0).unwrap()),
            _ => t,
        };
        assert_eq!(
            (g.0, Some(g.1), Some(g.2)),
            (w.count, whole(w.first), whole(w.last)),
            "sighting {k:?}"
        );
    }
}

/// A text snapshot of every passive table, to compare before and after a re-import.
async fn snapshot(db: &TestDb) -> String {
    let c = client(db).await;
    let mut s = String::new();
    for q in [
        "SELECT ip::text, port, encode(sha1,'hex'), first_seen::text, last_seen::text, times_seen, sources::text FROM observations ORDER BY 1,2,3",
        "SELECT ip::text, port, encode(sha256,'hex'), first_seen::text, last_seen::text, times_seen, sources::text FROM observations_sha256 ORDER BY 1,2,3",
        "SELECT ip::text, port, name, first_seen::text, last_seen::text, times_seen, sources::text FROM sni_names ORDER BY 1,2,3",
        "SELECT encode(sha256,'hex'), coalesce(subject_dn,''), coalesce(serial_text,''), '', '', 0::bigint, sources::text FROM certificate_stubs ORDER BY 1",
        "SELECT encode(sha1,'hex'), '', '', '', '', 0::bigint, '' FROM certificates ORDER BY 1",
    ] {
        for r in c.query(q, &[]).await.unwrap() {
            let cols: Vec<String> = (0..7)
                .map(|i| match i {
                    1 => r.try_get::<_, i32>(i).map(|v| v.to_string()).unwrap_or_else(|_| r.get::<_, String>(i)),
                    5 => r.get::<_, i64>(i).to_string(),
                    _ => r.get::<_, String>(i),
                })
                .collect();
            s.push_str(&cols.join("|"));
            s.push('\n');
        }
        s.push_str("--\n");
    }
    s
}

const ZEEK: &[&str] = &[
    "chad314159__infectedPCAP/ssl.log",
    "Papertrailhack__zeek-intrusion-project/logs/ssl.log",
    "Kavya-Ilangovan__tls_metadata_ids/zeek_logs/ssl.log",
    "cyberspatiallabs__maccdc2012_00016-zeek/ssl.log",
    "SuperCowPowers__zat/data/json/ssl.log",
    "o5edaxi__doh-hunter/ssl.log",
    "brimdata__zed-sample-data/zeek-default/ssl.log.gz",
];

const SURICATA: &[&str] = &[
    "sashalarso__MSSIS-suricata/eve.json",
    "sashalarso__MSSIS-suricata/1.json",
    "MAGNC__suricata_data_training/eve.json",
];

#[tokio::test]
async fn zeek_logs_give_every_expected_sighting_once() {
    let db = TestDb::new().await;
    let (want, unhashed) = expected(ZEEK);
    // Independent sanity: the fixture's own counts.
    assert_eq!(unhashed, 27, "zat records 24..50 have no hash in the log");
    let dir = data("passive/logs");
    let out = ok(&db, &["import", "zeek", dir.to_str().unwrap()]);
    for f in ZEEK {
        assert!(out.contains(f), "{f} not imported:\n{out}");
    }
    let got = stored(&db).await;
    assert_keys(&want, &got);
    // Nothing else was stored as a sighting: the keys are exactly the expected ones.
    assert_eq!(got.len(), want.len(), "{got:#?}");

    let c = client(&db).await;
    // SHA-256-only leaves are stubs with the x509.log text (subject CN as EXPECTED gives it).
    for (k, w) in &want {
        if let Key::Sha256(_, _, sha256) = k {
            let row = c
                .query_one(
                    "SELECT subject_cn FROM certificate_stubs WHERE sha256 = decode($1, 'hex')",
                    &[sha256],
                )
                .await
                .unwrap_or_else(|e| panic!("no stub for {sha256}: {e}"));
            let cn: Option<String> = row.get(0);
            if !w.cn.is_empty() {
                assert_eq!(cn.as_deref(), Some(w.cn.as_str()), "stub {sha256}");
            }
        }
    }
    // Bro 2.5: the chain came from extract_files, so the leaf is a real certificate.
    let cn: String = c
        .query_one(
            "SELECT subject_cn FROM certificates WHERE sha1 = decode('7e639183b90e6db44af6eeac6e55489467497f8f', 'hex')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(cn, "urs.microsoft.com");
    let chain: i64 = c
        .query_one("SELECT count(*) FROM certificates", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(chain, 3, "the three extracted DER files");
    // SNI names: the TLS 1.3-only log gives names and no sighting.
    let doh: i64 = c
        .query_one(
            "SELECT count(*) FROM sni_names WHERE 'zeek' = ANY(sources)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(doh > 0);
    let n: i64 = c
        .query_one(
            "SELECT times_seen FROM sni_names WHERE ip = '150.171.27.11' AND port = 443 AND name = 'edge.microsoft.com'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        n, 2,
        "Papertrailhack records 2 and 3 (the second without certificate)"
    );
    // Client addresses are not stored anywhere.
    let clients: i64 = c
        .query_one(
            "SELECT (SELECT count(*) FROM observations WHERE ip = '10.0.2.4')
                  + (SELECT count(*) FROM observations_sha256 WHERE ip = '10.0.2.4')
                  + (SELECT count(*) FROM sni_names WHERE ip = '10.0.2.4')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(clients, 0);

    // Importing again changes nothing.
    let before = snapshot(&db).await;
    let again = ok(&db, &["import", "zeek", dir.to_str().unwrap()]);
    assert!(again.contains("already imported"), "{again}");
    assert_eq!(snapshot(&db).await, before);
}

#[tokio::test]
async fn suricata_eve_gives_every_expected_sighting_once() {
    let db = TestDb::new().await;
    let (want, unhashed) = expected(SURICATA);
    assert_eq!(unhashed, 0);
    let files: Vec<String> = SURICATA
        .iter()
        .map(|f| data(&format!("passive/logs/{f}")).display().to_string())
        .collect();
    let mut args = vec!["import", "suricata"];
    args.extend(files.iter().map(String::as_str));
    ok(&db, &args);
    let got = stored(&db).await;
    assert_keys(&want, &got);
    assert_eq!(got.len(), want.len());
    let c = client(&db).await;
    // The server side is dest_ip:dest_port; the monitored clients (10.10.31.101, …) are absent.
    let clients: i64 = c
        .query_one(
            "SELECT count(*) FROM observations WHERE ip << '10.0.0.0/8' OR ip << '192.168.0.0/16'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let private_servers = want
        .keys()
        .filter(|k| matches!(k, Key::Sha1(ip, _, _) if ip.starts_with("10.") || ip.starts_with("192.168.")))
        .count() as i64;
    assert_eq!(clients, private_servers);
    let sni: i64 = c
        .query_one(
            "SELECT count(*) FROM sni_names WHERE ip = '23.102.129.60' AND name = 'msedge.api.cdp.microsoft.com'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(sni, 1);
    let before = snapshot(&db).await;
    let again = ok(&db, &args);
    assert!(again.contains("already imported"), "{again}");
    assert_eq!(snapshot(&db).await, before);
}

/// A log cut off in the middle of a record and with a corrupted line: the intact records are
/// stored, the bad ones reported with file:line, nothing panics.
#[tokio::test]
async fn truncated_and_corrupted_logs_keep_intact_records() {
    let db = TestDb::new().await;
    let tmp = tempfile::tempdir().unwrap();
    let text =
        std::fs::read_to_string(data("passive/logs/sashalarso__MSSIS-suricata/eve.json")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Lines 1..=14 intact (tls events on lines 9, 11, 13, 14), line 15 corrupted, then line 23
    // (a tls event) cut in half at the end of the file.
    let mut out = String::new();
    for l in &lines[..14] {
        out.push_str(l);
        out.push('\n');
    }
    out.push_str("{\"event_type\":\"tls\",\"timestamp\":\"2023-11-01T00:46:41+0100\",\"dest_ip\":\"not an ip\"}\n");
    let cut = lines[22];
    assert!(cut.contains("\"event_type\":\"tls\""));
    out.push_str(&cut[..cut.len() / 2]);
    let path = tmp.path().join("eve.json");
    std::fs::write(&path, out).unwrap();
    let o = certhist(&db, &["import", "suricata", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    let shown = path.display().to_string();
    assert!(err.contains(&format!("{shown}:15:")), "{err}");
    assert!(err.contains(&format!("{shown}:16:")), "{err}");
    let (want, _) = expected(&["sashalarso__MSSIS-suricata/eve.json"]);
    let got = stored(&db).await;
    let total: i64 = got.values().map(|v| v.0).sum();
    assert_eq!(total, 4, "{}", stdout(&o));
    for k in got.keys() {
        assert!(want.contains_key(k), "{k:?}");
    }

    // Zeek: a TSV line with too few fields and a JSON line cut short.
    let zdir = tmp.path().join("zeek");
    std::fs::create_dir(&zdir).unwrap();
    let ssl = std::fs::read_to_string(data(
        "passive/logs/Papertrailhack__zeek-intrusion-project/logs/ssl.log",
    ))
    .unwrap();
    let mut bad = String::new();
    for (i, l) in ssl.lines().enumerate() {
        bad.push_str(if i == 9 {
            "1748757368.916869\tCveGrj4Vh9BptzpBCf"
        } else {
            l
        });
        bad.push('\n');
    }
    std::fs::write(zdir.join("ssl.log"), bad).unwrap();
    std::fs::copy(
        data("passive/logs/Papertrailhack__zeek-intrusion-project/logs/x509.log"),
        zdir.join("x509.log"),
    )
    .unwrap();
    let o = certhist(&db, &["import", "zeek", zdir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("ssl.log:10:"), "{}", stderr(&o));
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// `--follow`: records written, the log rotated (renamed, a new file created) and appended to
/// while followed; each record counted once; a restart resumes without counting any again.
#[tokio::test]
async fn follow_through_rotation_counts_every_record_once() {
    let db = TestDb::new().await;
    let tmp = tempfile::tempdir().unwrap();
    let eve =
        std::fs::read_to_string(data("passive/logs/sashalarso__MSSIS-suricata/eve.json")).unwrap();
    let tls: Vec<&str> = eve
        .lines()
        .filter(|l| l.contains("\"event_type\":\"tls\""))
        .collect();
    let other: Vec<&str> = eve
        .lines()
        .filter(|l| !l.contains("\"event_type\":\"tls\""))
        .take(5)
        .collect();
    assert_eq!(tls.len(), 38);
    let path = tmp.path().join("eve.json");
    let lines =
        |r: std::ops::Range<usize>| -> String { tls[r].iter().map(|l| format!("{l}\n")).collect() };
    append(&path, &lines(0..10));
    append(&path, &format!("{}\n", other[0]));
    let p = path.to_str().unwrap().to_owned();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_certhist"))
        .args([
            "import",
            "suricata",
            "--follow",
            "--poll",
            "0.1",
            "--follow-exit-idle",
            "3",
            "--batch",
            "4",
            &p,
        ])
        .env("DATABASE_URL", crate::support::url(&db))
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait (by content, not by time) until the first records are in.
    let c = client(&db).await;
    let count = || async {
        c.query_one(
            "SELECT coalesce(sum(times_seen), 0)::bigint FROM observations",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0)
    };
    for _ in 0..600 {
        if count().await == 10 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(count().await, 10);
    // Half a line, then its end: read once complete.
    let half = tls[10].len() / 2;
    append(&path, &tls[10][..half]);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    append(&path, &format!("{}\n", &tls[10][half..]));
    append(&path, &lines(11..15));
    // Rotate: rename, new file, write to both the new file.
    std::fs::rename(&path, tmp.path().join("eve.json.1")).unwrap();
    append(&path, &lines(15..25));
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        count().await,
        25,
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Restart: more records in the current file; only those are added.
    append(&path, &lines(25..38));
    let o = ok(
        &db,
        &[
            "import",
            "suricata",
            "--follow",
            "--poll",
            "0.1",
            "--follow-exit-idle",
            "1",
            &p,
        ],
    );
    assert_eq!(count().await, 38, "{o}");
    // Every expected key of the file, exactly as a plain import gives it.
    let (want, _) = expected(&["sashalarso__MSSIS-suricata/eve.json"]);
    assert_keys(&want, &stored(&db).await);
}

/// Issue 19: a certificate known only by SHA-256 (Zeek >= 4.1) is found by `query cert` and
/// `query hosts` with the x509.log text and its sightings; `query ip` shows the SNI names; when
/// the DER arrives (here: `import certs`), the stub joins the certificate and its sightings
/// move to the SHA-1 history, found by either hash.
#[tokio::test]
async fn stub_certificates_are_found_and_join_their_der() {
    let db = TestDb::new().await;
    let dir = data("passive/logs/chad314159__infectedPCAP");
    let tmp = tempfile::tempdir().unwrap();
    // A Zeek >= 4.1 style log naming the Bro 2.5 leaf by SHA-256, with its x509 text.
    let der =
        std::fs::read(dir.join("extract_files/extract-1268758221.744665-SSL-FOXSw43hGklBYILWHh"))
            .unwrap();
    let sha256 = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&der))
    };
    assert_eq!(
        sha256,
        "1747a2b1652e907a46798b9d7df334dd95b41c58817cb304f4b573588092434b"
    );
    let hdr = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n";
    std::fs::write(
        tmp.path().join("ssl.log"),
        format!("{hdr}#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tserver_name\tcert_chain_fps\n\
                 1268758221.508194\tC1\t192.168.23.129\t1062\t65.55.195.250\t443\tURS.microsoft.com\t{sha256}\n\
                 1268758300.000001\tC2\t192.168.23.129\t1063\t65.55.195.250\t443\turs.microsoft.com\t{sha256}\n"),
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("x509.log"),
        format!("{hdr}#fields\tts\tfingerprint\tcertificate.serial\tcertificate.subject\tcertificate.issuer\tcertificate.not_valid_before\tcertificate.not_valid_after\tsan.dns\n\
                 1268758221.744665\t{sha256}\t4B31635D000500015CB5\tCN=urs.microsoft.com,O=Microsoft Corporation\tCN=Microsoft Secure Server Authority\t1262647546.000000\t1294183546.000000\turs.microsoft.com,\\x1b[31mevil\n"),
    )
    .unwrap();
    ok(&db, &["import", "zeek", tmp.path().to_str().unwrap()]);
    let cert = ok(&db, &["query", "cert", &sha256]);
    assert!(
        cert.contains("CN=urs.microsoft.com,O=Microsoft Corporation"),
        "{cert}"
    );
    assert!(cert.contains("4B31635D000500015CB5"), "{cert}");
    assert!(cert.contains("65.55.195.250"), "{cert}");
    assert!(!cert.contains('\u{1b}'), "escaped: {cert:?}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(&db, &["--json", "query", "cert", &sha256])).unwrap();
    assert_eq!(json["stub"], true);
    assert_eq!(json["subject_cn"], "urs.microsoft.com");
    assert_eq!(json["not_before"], "2010-01-04T23:25:46Z");
    let hosts = ok(&db, &["--json", "query", "hosts", &sha256]);
    let h: serde_json::Value = serde_json::from_str(hosts.trim()).unwrap();
    assert_eq!(h["ip"], "65.55.195.250");
    assert_eq!(h["times_seen"], 2);

    // Before the DER: `query ip` lists the stub sighting with the log's CN, escaped SNI names.
    let human = ok(&db, &["query", "ip", "65.55.195.250"]);
    assert!(human.contains("known only by SHA-256"), "{human}");
    assert!(human.contains(&sha256), "{human}");
    assert!(human.contains("urs.microsoft.com"), "{human}");

    // The DER arrives: the stub joins the certificate; both hashes find it with its sightings.
    ok(
        &db,
        &[
            "import",
            "certs",
            dir.join("extract_files").to_str().unwrap(),
        ],
    );
    let c = client(&db).await;
    let stubs: i64 = c
        .query_one("SELECT count(*) FROM certificate_stubs", &[])
        .await
        .unwrap()
        .get(0);
    let left: i64 = c
        .query_one("SELECT count(*) FROM observations_sha256", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!((stubs, left), (0, 0));
    for hash in [sha256.as_str(), "7e639183b90e6db44af6eeac6e55489467497f8f"] {
        let out = ok(&db, &["--json", "query", "hosts", hash]);
        let h: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(h["times_seen"], 2, "{hash}");
        // Joined into `sightings`: whole seconds since schema V7.
        assert_eq!(h["first_seen"], "2010-03-16T16:50:21Z");
    }
    // A later SHA-256-only sighting of a stored certificate goes straight to its SHA-1 history.
    let later = tempfile::tempdir().unwrap();
    std::fs::write(
        later.path().join("ssl.log"),
        format!(
            "{hdr}#fields\tts\tid.resp_h\tid.resp_p\tcert_chain_fps\n\
             1268759000.5\t65.55.195.250\t443\t{sha256}\n"
        ),
    )
    .unwrap();
    ok(&db, &["import", "zeek", later.path().to_str().unwrap()]);
    let (n, last): (i64, DateTime<Utc>) = {
        let r = c
            .query_one(
                "SELECT times_seen, last_seen FROM observations WHERE sha1 = decode('7e639183b90e6db44af6eeac6e55489467497f8f', 'hex')",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    // The sighting at 17:03:20.5; `sightings` keeps whole seconds (schema V7).
    assert_eq!((n, last), (3, ts("2010-03-16T17:03:20Z")));
    let stubs: i64 = c
        .query_one("SELECT count(*) FROM certificate_stubs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stubs, 0);
    // `query ip`: the history row carries the SNI names (lower-cased, once).
    let ip = ok(&db, &["--json", "query", "ip", "65.55.195.250"]);
    let row: serde_json::Value = serde_json::from_str(ip.trim()).unwrap();
    assert_eq!(row["sha1"], "7e639183b90e6db44af6eeac6e55489467497f8f");
    assert_eq!(row["names_seen"], serde_json::json!(["urs.microsoft.com"]));
    let human = ok(&db, &["query", "ip", "65.55.195.250"]);
    assert!(human.contains("names seen (SNI)"), "{human}");
    assert!(!human.contains("known only by SHA-256"), "{human}");
}

/// `--follow` on a Zeek TSV log: a restart resumes after the committed records with the
/// `#fields` header (before the cursor) read again, so later records still parse.
#[tokio::test]
async fn follow_zeek_resumes_with_its_header() {
    let db = TestDb::new().await;
    let tmp = tempfile::tempdir().unwrap();
    let src = data("passive/logs/Papertrailhack__zeek-intrusion-project/logs");
    std::fs::copy(src.join("x509.log"), tmp.path().join("x509.log")).unwrap();
    let ssl = std::fs::read_to_string(src.join("ssl.log")).unwrap();
    let (head, rest): (Vec<&str>, Vec<&str>) = ssl.lines().partition(|l| l.starts_with('#'));
    let path = tmp.path().join("ssl.log");
    let header: String = head
        .iter()
        .filter(|l| !l.starts_with("#close"))
        .map(|l| format!("{l}\n"))
        .collect();
    append(&path, &header);
    append(&path, &format!("{}\n{}\n", rest[0], rest[1]));
    let p = path.to_str().unwrap();
    let follow = [
        "import",
        "zeek",
        "--follow",
        "--poll",
        "0.1",
        "--follow-exit-idle",
        "1",
        p,
    ];
    ok(&db, &follow);
    for l in &rest[2..] {
        append(&path, &format!("{l}\n"));
    }
    ok(&db, &follow);
    ok(&db, &follow);
    let (want, _) = expected(&["Papertrailhack__zeek-intrusion-project/logs/ssl.log"]);
    let got = stored(&db).await;
    assert_keys(&want, &got);
    assert_eq!(got.len(), want.len());
}

/// `certhist import pcap` over every capture fixture: exactly the server observations of
/// `tests/data/passive/pcap/EXPECTED.tsv` (by ip, port, leaf SHA-1: count and first/last seen),
/// no client certificate stored as a server observation, the TLS 1.3 captures give no
/// observation but keep their SNI, broken captures are reported and the rest kept; re-importing
/// changes nothing.
#[tokio::test]
async fn pcap_captures_give_every_expected_observation_once() {
    let db = TestDb::new().await;
    let text = std::fs::read_to_string(data("passive/pcap/EXPECTED.tsv")).unwrap();
    let mut want: BTreeMap<Key, Want> = BTreeMap::new();
    let mut clients = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let (record, t, ip, port, sha1) = (f[1], f[2], f[3], f[4], f[5]);
        if record.starts_with("-c") {
            clients.push(ip.to_owned());
        }
        if record.starts_with('-') {
            continue;
        }
        let key = Key::Sha1(ip.to_owned(), port.parse().unwrap(), sha1.to_owned());
        let w = want.entry(key).or_default();
        let t = ts(t);
        w.count += 1;
        w.first = Some(w.first.map_or(t, |x| x.min(t)));
        w.last = Some(w.last.map_or(t, |x| x.max(t)));
    }
    assert!(want.len() >= 20, "{} keys", want.len());
    // tls1.2.pcap.xz (README: an `xz -9` copy made to test xz input) is a second capture of the
    // same handshake: one more sighting of its key at the same time.
    want.get_mut(&Key::Sha1(
        "68.233.76.12".to_owned(),
        443,
        "3367a1824a6013c02a3e25bbe4da863387faf134".to_owned(),
    ))
    .unwrap()
    .count += 1;
    let dir = data("passive/pcap").display().to_string();
    let out = certhist(&db, &["import", "pcap", &dir]);
    let err = stderr(&out);
    // The broken captures are reported, and the import goes on.
    assert!(err.contains("capture not read to its end"), "{err}");
    let got = stored(&db).await;
    assert_keys(&want, &got);
    assert_eq!(got.len(), want.len(), "no other observations: {got:?}");
    let c = client(&db).await;
    for ip in &clients {
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM observations WHERE host(ip) = $1",
                &[ip],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "client {ip} stored as a server");
    }
    // Each chain certificate is stored (CHAIN.tsv lists every certificate of every chain).
    let chain = std::fs::read_to_string(data("passive/pcap/CHAIN.tsv")).unwrap();
    let header: Vec<&str> = chain.lines().next().unwrap().split('\t').collect();
    let col = header.iter().position(|h| *h == "sha1").unwrap();
    for line in chain.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let sha1 = f[col];
        // Client certificates (`-cN`) and broken messages (`-malformed`) are not stored.
        if sha1.is_empty() || f[1].starts_with('-') {
            continue;
        }
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM certificates WHERE encode(sha1, 'hex') = $1",
                &[&sha1],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 1, "chain certificate {sha1} not stored");
    }
    // SNI names: every one tshark decoded from a ClientHello whose server answered is kept
    // for that server; the TLS 1.3-only captures give names and no observation.
    let sni = std::fs::read_to_string(data("passive/pcap/SNI.tsv")).unwrap();
    let tls13_files: Vec<&str> = text
        .lines()
        .filter(|l| l.split('\t').nth(1) == Some("-none"))
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(tls13_files.len(), 2);
    let mut decoded = std::collections::BTreeSet::new();
    let mut tls13_names = std::collections::BTreeSet::new();
    for line in sni.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 4 || f[3].is_empty() {
            continue;
        }
        // `ip:port`, IPv6 without brackets: the port follows the last colon.
        let (ip, port) = f[2].rsplit_once(':').unwrap();
        let ip: std::net::IpAddr = ip.parse().unwrap();
        let key = (
            ip.to_string(),
            port.parse::<i32>().unwrap(),
            f[3].to_ascii_lowercase(),
        );
        if tls13_files.contains(&f[0]) {
            tls13_names.insert(key.clone());
        }
        decoded.insert(key);
    }
    assert!(!tls13_names.is_empty());
    let stored_names: std::collections::BTreeSet<(String, i32, String)> = c
        .query("SELECT host(ip), port, name FROM sni_names", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert!(
        stored_names.is_subset(&decoded),
        "names tshark did not decode: {:?}",
        stored_names.difference(&decoded).collect::<Vec<_>>()
    );
    assert!(
        tls13_names.is_subset(&stored_names),
        "TLS 1.3 names missing: {:?}",
        tls13_names.difference(&stored_names).collect::<Vec<_>>()
    );
    let before = snapshot(&db).await;
    let again = ok(&db, &["import", "pcap", &dir]);
    assert!(again.contains("already imported"), "{again}");
    assert_eq!(snapshot(&db).await, before);
}

/// A plain import of a growing sensor log and `--follow` of the same file share its cursor:
/// Zeek imported then followed, and Suricata followed then imported, each record counted once;
/// importing the file again afterwards changes nothing.
#[tokio::test]
async fn plain_import_and_follow_of_one_file_count_each_record_once() {
    let db = TestDb::new().await;
    let tmp = tempfile::tempdir().unwrap();
    // Zeek: import the first records, append the rest, follow.
    let src = data("passive/logs/Papertrailhack__zeek-intrusion-project/logs");
    std::fs::copy(src.join("x509.log"), tmp.path().join("x509.log")).unwrap();
    let ssl = std::fs::read_to_string(src.join("ssl.log")).unwrap();
    let (head, rest): (Vec<&str>, Vec<&str>) = ssl.lines().partition(|l| l.starts_with('#'));
    assert!(rest.len() >= 4, "{} records", rest.len());
    let zeek = tmp.path().join("ssl.log");
    let header: String = head
        .iter()
        .filter(|l| !l.starts_with("#close"))
        .map(|l| format!("{l}\n"))
        .collect();
    append(&zeek, &header);
    append(&zeek, &format!("{}\n{}\n", rest[0], rest[1]));
    let z = zeek.to_str().unwrap();
    ok(&db, &["import", "zeek", z]);
    for l in &rest[2..] {
        append(&zeek, &format!("{l}\n"));
    }
    let follow = |p: &str, kind: &str| {
        ok(
            &db,
            &[
                "--json",
                "import",
                kind,
                "--follow",
                "--poll",
                "0.1",
                "--follow-exit-idle",
                "0.5",
                p,
            ],
        )
    };
    let out = follow(z, "zeek");
    let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        summary["records"].as_u64(),
        Some(rest.len() as u64 - 2),
        "the follow reads only what the import had not: {out}"
    );
    let (want, _) = expected(&["Papertrailhack__zeek-intrusion-project/logs/ssl.log"]);
    let got = stored(&db).await;
    assert_keys(&want, &got);
    assert_eq!(got.len(), want.len());
    // The whole file imported plainly now (new bytes, so no content-hash match): nothing added.
    let before = snapshot(&db).await;
    ok(&db, &["import", "zeek", z]);
    assert_eq!(snapshot(&db).await, before, "plain import after follow");

    // Suricata: follow the first half, then a plain import of the grown file.
    let eve_src =
        std::fs::read_to_string(data("passive/logs/MAGNC__suricata_data_training/eve.json"))
            .unwrap();
    let lines: Vec<&str> = eve_src.lines().collect();
    let eve = tmp.path().join("eve.json");
    let half = lines.len() / 2;
    append(
        &eve,
        &lines[..half]
            .iter()
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    );
    let e = eve.to_str().unwrap();
    follow(e, "suricata");
    append(
        &eve,
        &lines[half..]
            .iter()
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    );
    ok(&db, &["import", "suricata", e]);
    // And a follow after that finds nothing new.
    let out = follow(e, "suricata");
    let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(summary["records"], 0, "{out}");
    let (want_eve, _) = expected(&["MAGNC__suricata_data_training/eve.json"]);
    let got = stored(&db).await;
    assert_keys(&want_eve, &got);
    assert_keys(&want, &got);
    assert_eq!(got.len(), want.len() + want_eve.len());
}

/// Sightings known only by SHA-256 (a Zeek >= 4.1 log, no DER) are part of `query ip --json`
/// (lines with `"stub": true` after the history) and of `/api/v1/ip/…` (`stub_sightings` on the
/// page, the same lines in the NDJSON stream), with the x509.log's subject, issuer, serial and
/// validity.
#[tokio::test]
async fn stub_sightings_are_in_ip_json_and_the_api() {
    let db = TestDb::new().await;
    let dir = data("passive/logs/Kavya-Ilangovan__tls_metadata_ids/zeek_logs");
    ok(&db, &["import", "zeek", dir.to_str().unwrap()]);
    let (want, _) = expected(&["Kavya-Ilangovan__tls_metadata_ids/zeek_logs/ssl.log"]);
    let ip = "54.187.159.182";
    let sha256 = "27452fa6a1be17c9738151ed60b066827196d3726dbdf0835d7d3cb053de9c19";
    let w = want
        .get(&Key::Sha256(ip.to_owned(), 443, sha256.to_owned()))
        .expect("EXPECTED.tsv has the stub key");
    let cli = ok(&db, &["--json", "query", "ip", ip]);
    let lines: Vec<serde_json::Value> = cli
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let stubs: Vec<&serde_json::Value> = lines.iter().filter(|l| l["stub"] == true).collect();
    // Every key of this address in EXPECTED.tsv is a SHA-256-only one.
    let of_ip: Vec<_> = want
        .keys()
        .filter(|k| matches!(k, Key::Sha256(i, _, _) if i == ip))
        .collect();
    assert_eq!(stubs.len(), of_ip.len(), "{cli}");
    let s = stubs
        .iter()
        .find(|s| s["sha256"] == sha256)
        .unwrap_or_else(|| panic!("{cli}"));
    assert_eq!(s["ip"], ip);
    assert_eq!(s["port"], 443);
    assert_eq!(s["times_seen"].as_i64(), Some(w.count));
    let t = |v: &serde_json::Value| ts(v.as_str().unwrap());
    assert_eq!(Some(t(&s["first_seen"])), w.first);
    assert_eq!(Some(t(&s["last_seen"])), w.last);
    assert_eq!(s["subject_cn"], w.cn.as_str());
    // The x509.log row of this fingerprint (fixture text): serial, issuer, validity.
    assert_eq!(s["serial"], "0A44762D3A10D96E856F5667B6B94E4D");
    assert_eq!(
        s["issuer_dn"],
        "CN=DigiCert TLS Hybrid ECC SHA384 2020 CA1,O=DigiCert Inc,C=US"
    );
    assert!(
        s["subject_dn"]
            .as_str()
            .is_some_and(|d| d.starts_with("CN=*.stripe.com,O=Stripe")),
        "{s}"
    );
    assert_eq!(s["not_before"], "2025-06-10T18:30:00Z");
    assert_eq!(s["not_after"], "2025-10-02T18:29:59Z");

    // The API: the same lines in the NDJSON stream, byte for byte; the page lists them.
    let server = Server::start(&db);
    assert_eq!(server.get(&format!("/api/v1/ip/{ip}"), true).await, cli);
    let page: serde_json::Value =
        serde_json::from_str(&server.get(&format!("/api/v1/ip/{ip}"), false).await).unwrap();
    let listed: Vec<&serde_json::Value> =
        page["stub_sightings"].as_array().unwrap().iter().collect();
    assert_eq!(listed, stubs);
    assert_eq!(page["stub_sightings_truncated"], false);
    // Paged: the first page names them, later pages do not; truncated when over the limit.
    let small: serde_json::Value =
        serde_json::from_str(&server.get(&format!("/api/v1/ip/{ip}?limit=1"), false).await)
            .unwrap();
    assert_eq!(small["stub_sightings"].as_array().unwrap().len(), 1);
    assert_eq!(small["stub_sightings_truncated"], stubs.len() > 1);
    // A block: the same sightings.
    let block: serde_json::Value =
        serde_json::from_str(&server.get("/api/v1/ip/54.187.159.0/24", false).await).unwrap();
    assert!(block["stub_sightings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["sha256"] == sha256));
}

/// A zip of the files under `dir` (paths relative to it).
fn zip_dir(dir: &Path) -> Vec<u8> {
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let mut stack = vec![dir.to_path_buf()];
    let mut files = Vec::new();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    for p in files {
        let name = p.strip_prefix(dir).unwrap().to_str().unwrap().to_owned();
        out.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        out.write_all(&std::fs::read(&p).unwrap()).unwrap();
    }
    out.finish().unwrap().into_inner()
}

/// `POST /api/v1/uploads/{pcap,zeek,suricata}` store exactly what `certhist import` stores from
/// the same files (every passive table compared), a second upload changes nothing, a damaged
/// upload answers 207 with its bad records and keeps the rest, and each upload is audited.
#[tokio::test]
async fn uploads_store_what_the_cli_imports() {
    let cli_db = TestDb::new().await;
    let api_db = TestDb::new().await;
    let zeek_dir = data("passive/logs/chad314159__infectedPCAP");
    let zeek_gz = data("passive/logs/brimdata__zed-sample-data/zeek-default");
    let eve = data("passive/logs/sashalarso__MSSIS-suricata/eve.json");
    let pcap = data("passive/pcap/chad314159__infectedPCAP/infected.pcap");
    let pcap_rows = std::fs::read_to_string(data("passive/pcap/EXPECTED.tsv"))
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("chad314159__infectedPCAP/infected.pcap\t"))
        .filter(|l| !l.split('\t').nth(1).unwrap().starts_with('-'))
        .count();
    assert!(pcap_rows > 0);
    ok(&cli_db, &["import", "zeek", zeek_dir.to_str().unwrap()]);
    ok(&cli_db, &["import", "zeek", zeek_gz.to_str().unwrap()]);
    ok(&cli_db, &["import", "suricata", eve.to_str().unwrap()]);
    ok(&cli_db, &["import", "pcap", pcap.to_str().unwrap()]);

    let server = Server::start(&api_db);
    let (status, a) = server
        .post(
            "/api/v1/uploads/zeek?filename=infected.zip",
            zip_dir(&zeek_dir),
        )
        .await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["kind"], "zeek-ssl");
    assert_eq!(a["sightings"], 1, "{a}");
    assert_eq!(a["certificates_new"], 3, "the extracted chain: {a}");
    let (status, b) = server
        .post("/api/v1/uploads/zeek?filename=brim.zip", zip_dir(&zeek_gz))
        .await;
    assert_eq!(status, 200, "{b}");
    let (status, c) = server
        .post("/api/v1/uploads/suricata", std::fs::read(&eve).unwrap())
        .await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["kind"], "suricata-eve");
    let (status, d) = server
        .post(
            "/api/v1/uploads/pcap?filename=infected.pcap",
            std::fs::read(&pcap).unwrap(),
        )
        .await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["kind"], "pcap");
    assert_eq!(d["sightings"], pcap_rows as u64, "{d}");
    assert_eq!(snapshot(&api_db).await, snapshot(&cli_db).await);

    // The same upload again: already imported, nothing changes.
    let before = snapshot(&api_db).await;
    let (status, again) = server
        .post(
            "/api/v1/uploads/zeek?filename=infected.zip",
            zip_dir(&zeek_dir),
        )
        .await;
    assert_eq!(
        (status, &again["already_imported"]),
        (200, &serde_json::json!(true)),
        "{again}"
    );
    let (_, again) = server
        .post("/api/v1/uploads/suricata", std::fs::read(&eve).unwrap())
        .await;
    assert_eq!(again["already_imported"], true);
    assert_eq!(snapshot(&api_db).await, before);

    // A damaged eve.json: 207, the bad line listed with its number, the good record kept.
    let good = r#"{"timestamp":"2024-01-02T03:04:05.000000+0000","event_type":"tls","src_ip":"198.51.100.7","src_port":50000,"dest_ip":"192.0.2.77","dest_port":8443,"proto":"TCP","tls":{"fingerprint":"aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd","sni":"x.example"}}"#;
    let body = format!("{{\"event_type\":\"tls\",\"timestamp\":\n{good}\n");
    let (status, e) = server
        .post(
            "/api/v1/uploads/suricata?filename=bad.json",
            body.into_bytes(),
        )
        .await;
    assert_eq!(status, 207, "{e}");
    assert_eq!(e["bad_rows"], 1, "{e}");
    assert_eq!(e["problems"][0]["line"], 1, "{e}");
    assert_eq!(e["sightings"], 1, "{e}");
    // A zip without an ssl log, and a pcap that is no capture: 400, nothing stored.
    let mut empty = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    empty
        .start_file("notes.txt", zip::write::SimpleFileOptions::default())
        .unwrap();
    empty.write_all(b"no logs here").unwrap();
    let (status, f) = server
        .post(
            "/api/v1/uploads/zeek?filename=x.zip",
            empty.finish().unwrap().into_inner(),
        )
        .await;
    assert_eq!(status, 400, "{f}");
    let (status, g) = server
        .post("/api/v1/uploads/pcap", b"not a capture at all".to_vec())
        .await;
    assert_eq!(status, 400, "{g}");
    let cl = client(&api_db).await;
    let n: i64 = cl
        .query_one(
            "SELECT count(*) FROM observations WHERE ip = '192.0.2.77' AND port = 8443",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    // Audited: one entry per upload that reached the database.
    let actions: Vec<String> = cl
        .query("SELECT action FROM audit_log ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for (action, n) in [
        ("upload.zeek", 3),
        ("upload.suricata", 3),
        ("upload.pcap", 2),
    ] {
        assert_eq!(
            actions.iter().filter(|a| *a == action).count(),
            n,
            "{action}: {actions:?}"
        );
    }
}

/// `import pcap --keep-clients`: the client of each handshake and the certificate a client
/// presented (mutual TLS) are stored in `client_contacts` with the client certificate's DER; the
/// server observations are exactly those of an import without the flag (a client is never a
/// server), and without the flag no client address is stored anywhere.
#[tokio::test]
async fn keep_clients_stores_clients_apart_from_servers() {
    let with = TestDb::new().await;
    let without = TestDb::new().await;
    let cap = data("passive/pcap/zeek__zeek/testing/btest/Traces/tls/client-certificate.pcap");
    let cap = cap.to_str().unwrap();
    ok(&with, &["import", "pcap", "--keep-clients", cap]);
    ok(&without, &["import", "pcap", cap]);
    // EXPECTED.tsv: the server row and the client-certificate row (`-c1`) of this capture.
    let text = std::fs::read_to_string(data("passive/pcap/EXPECTED.tsv")).unwrap();
    let rows: Vec<Vec<&str>> = text
        .lines()
        .filter(|l| l.contains("tls/client-certificate.pcap\t"))
        .map(|l| l.split('\t').collect())
        .collect();
    let server = rows.iter().find(|r| r[1] == "1").unwrap();
    let client_row = rows.iter().find(|r| r[1] == "-c1").unwrap();
    // The client row names the client as its "server_ip" column, and the server in its note.
    let (client_ip, client_sha1) = (client_row[3], client_row[5]);
    assert!(client_row[8].contains(&format!("to server {}:{}", server[3], server[4])));
    assert_eq!(
        snapshot(&with).await.split("--\n").next(),
        snapshot(&without).await.split("--\n").next(),
        "same observations"
    );
    let c = client(&with).await;
    let contacts: Vec<(String, String, i32, String, i64, DateTime<Utc>)> = c
        .query(
            "SELECT host(client_ip), host(server_ip), server_port, encode(client_cert_sha1, 'hex'), times_seen, first_seen
             FROM client_contacts ORDER BY 4",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect();
    let port: i32 = server[4].parse().unwrap();
    assert_eq!(
        contacts,
        vec![
            // The handshake (the server's certificate) …
            (
                client_ip.to_owned(),
                server[3].to_owned(),
                port,
                String::new(),
                1,
                ts(server[2])
            ),
            // … and the certificate the client presented.
            (
                client_ip.to_owned(),
                server[3].to_owned(),
                port,
                client_sha1.to_owned(),
                1,
                ts(client_row[2])
            ),
        ]
    );
    // The client certificate's DER is stored (it is a certificate), with no observation.
    let (stored, observed): (i64, i64) = {
        let r = c
            .query_one(
                "SELECT (SELECT count(*) FROM certificates WHERE sha1 = decode($1, 'hex')),
                        (SELECT count(*) FROM observations WHERE sha1 = decode($1, 'hex') OR host(ip) = $2)",
                &[&client_sha1, &client_ip],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!((stored, observed), (1, 0));
    // The contacts are readable: `query clients` (NDJSON = the API's items), the API route, and
    // a section of `query ip` for the server.
    let want = |sha: &str, t: &str| {
        serde_json::json!({
            "server_ip": server[3], "server_port": port, "client_ip": client_ip,
            "client_cert_sha1": if sha.is_empty() { serde_json::Value::Null } else { sha.into() },
            "first_seen": ts(t).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            "last_seen": ts(t).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            "times_seen": 1, "sources": ["pcap"],
        })
    };
    // Ordered by the client certificate: none (empty) first.
    let expected = vec![want("", server[2]), want(client_sha1, client_row[2])];
    let cli = ok(&with, &["--json", "query", "clients", server[3]]);
    let lines: Vec<serde_json::Value> = cli
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, expected, "{cli}");
    let block = format!("{}/24", server[3]);
    let api = Server::start(&with);
    let page: serde_json::Value = serde_json::from_str(
        &api.get(
            &format!("/api/v1/clients/{}", block.replace('/', "%2F")),
            false,
        )
        .await,
    )
    .unwrap();
    assert_eq!(page["items"], serde_json::Value::from(expected.clone()));
    assert_eq!(page["next_cursor"], serde_json::Value::Null);
    // Paged one by one: the same rows.
    let first: serde_json::Value = serde_json::from_str(
        &api.get(&format!("/api/v1/clients/{}?limit=1", server[3]), false)
            .await,
    )
    .unwrap();
    assert_eq!(first["items"][0], expected[0]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second: serde_json::Value = serde_json::from_str(
        &api.get(
            &format!("/api/v1/clients/{}?limit=1&cursor={cursor}", server[3]),
            false,
        )
        .await,
    )
    .unwrap();
    assert_eq!(second["items"][0], expected[1]);
    assert_eq!(second["next_cursor"], serde_json::Value::Null);
    // The client is no server: nobody contacted it.
    let as_server = ok(&with, &["--json", "query", "clients", client_ip]);
    assert_eq!(as_server, "");
    let text = ok(&with, &["query", "ip", server[3]]);
    assert!(
        text.contains("clients seen contacting it") && text.contains(client_sha1),
        "{text}"
    );
    let text = ok(&without, &["query", "ip", server[3]]);
    assert!(!text.contains("clients seen"), "{text}");
    let none: i64 = client(&without)
        .await
        .query_one("SELECT count(*) FROM client_contacts", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(none, 0);
}

/// The TLS 1.3 captures: no certificate observation, the handshakes reported (one per
/// ClientHello tshark decoded in SNI.tsv, each answered by a TLS 1.3 ServerHello as EXPECTED.tsv
/// notes), their SNI names kept.
#[tokio::test]
async fn tls13_captures_report_their_handshakes_and_keep_sni() {
    let sni = std::fs::read_to_string(data("passive/pcap/SNI.tsv")).unwrap();
    for file in [
        "zeek__zeek/testing/btest/Traces/tls/chrome-1250-tls-x25519-kyber.pcap",
        "FoxIO-LLC__ja4/pcap/tls-non-ascii-alpn.pcapng",
    ] {
        let db = TestDb::new().await;
        let hellos: Vec<Vec<&str>> = sni
            .lines()
            .filter(|l| l.starts_with(&format!("{file}\t")))
            .map(|l| l.split('\t').collect())
            .collect();
        assert!(!hellos.is_empty());
        let path = data(&format!("passive/pcap/{file}"));
        let json = ok(&db, &["--json", "import", "pcap", path.to_str().unwrap()]);
        let s: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
        assert_eq!(
            s["records_without_certificate"],
            hellos.len(),
            "{file}: {s}"
        );
        assert_eq!(s["sightings"], 0, "{file}: {s}");
        let db2 = TestDb::new().await;
        let human = ok(&db2, &["import", "pcap", path.to_str().unwrap()]);
        assert!(
            human.contains(&format!(
                "TLS 1.3 handshakes (no certificate in clear; SNI names kept): {}",
                hellos.len()
            )),
            "{human}"
        );
        let c = client(&db).await;
        let obs: i64 = c
            .query_one("SELECT count(*) FROM observations", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(obs, 0);
        let names: Vec<(String, i32, String)> = c
            .query(
                "SELECT host(ip), port, name FROM sni_names ORDER BY 1, 2, 3",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let want: Vec<(String, i32, String)> = hellos
            .iter()
            .map(|h| {
                let (ip, port) = h[2].rsplit_once(':').unwrap();
                (
                    ip.to_owned(),
                    port.parse().unwrap(),
                    h[3].to_ascii_lowercase(),
                )
            })
            .collect();
        assert_eq!(names, want, "{file}");
    }
}
