//! Every row of EXPECTED.tsv after importing the real scan files.

use std::collections::HashMap;

use certhist_scan::{ImportOptions, ImportSummary};
use certhist_test_support::TestDb;
use chrono::{DateTime, TimeZone, Utc};

use crate::common::{cert_exists, client, data, observations, scalar};

struct Row {
    file: String,
    record: u64,
    ip: String,
    port: Option<i32>,
    observed: String,
    status: String,
    location: String,
    chain_pos: Option<u32>,
    sha1: String,
}

fn expected() -> Vec<Row> {
    let text = std::fs::read_to_string(data("EXPECTED.tsv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            Row {
                file: c[0].to_owned(),
                record: c[1].parse().unwrap(),
                ip: c[2].to_owned(),
                port: c[3].parse().ok(),
                observed: c[4].to_owned(),
                status: c[5].to_owned(),
                location: c[6].to_owned(),
                chain_pos: c[7].parse().ok(),
                sha1: c[8].to_owned(),
            }
        })
        .collect()
}

/// The port our rules give ZGrab records without one (record → file name `_443` → --port →
/// module default): tls and http-over-TLS 443, ftp 21, amqp091 5671; 2015 logs 443.
fn zgrab_port(file: &str) -> i32 {
    if file.ends_with("_443.json")
        || file.contains("sample-oputput")
        || file.contains("ztag")
        || file.contains("http-https")
    {
        443
    } else if file.contains("ftp-authtls") {
        21
    } else if file.ends_with("zgrab2/output.json") {
        5671
    } else {
        panic!("no port rule for {file}")
    }
}

fn time_of(row: &Row) -> DateTime<Utc> {
    if let Ok(secs) = row.observed.parse::<i64>() {
        return Utc.timestamp_opt(secs, 0).unwrap();
    }
    // "tls:2025-05-21T03:40:02Z" or a bare RFC 3339 time.
    let t = match row.observed.split_once(':') {
        Some((m, rest))
            if m.chars().all(|c| c.is_ascii_alphanumeric())
                && !m.chars().all(|c| c.is_ascii_digit()) =>
        {
            rest
        }
        _ => row.observed.as_str(),
    };
    DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc)
}

async fn import_all(store: &certhist_store::Store) -> HashMap<String, ImportSummary> {
    let opts = ImportOptions::default();
    let mut out = HashMap::new();
    let mut files: Vec<String> = expected().iter().map(|r| r.file.clone()).collect();
    files.dedup();
    let sonar_date = Utc.with_ymd_and_hms(2017, 1, 2, 0, 0, 0).unwrap();
    for f in files {
        let p = data(&f);
        let summary = if f.ends_with(".json") {
            certhist_scan::import_zgrab2(store, &p, None, "zgrab2", &opts)
                .await
                .unwrap()
        } else if f.ends_with("3-certs.gz") {
            certhist_scan::import_sonar(store, Some(&p), None, None, None, "sonar", &opts)
                .await
                .unwrap()
                .remove(0)
        } else if f.ends_with("3-hosts.gz") {
            certhist_scan::import_sonar(
                store,
                None,
                Some(&p),
                Some(sonar_date),
                None,
                "sonar",
                &opts,
            )
            .await
            .unwrap()
            .remove(0)
        } else if f.ends_with(".xml.bz2") {
            certhist_scan::import_masscan(store, &p, "masscan", &opts)
                .await
                .unwrap()
        } else if f.ends_with(".xml") {
            certhist_scan::import_nmap(store, &p, "nmap", &opts)
                .await
                .unwrap()
        } else {
            panic!("unknown fixture {f}")
        };
        assert!(
            summary.complete && !summary.already_imported,
            "{f}: {summary:?}"
        );
        out.insert(f, summary);
    }
    out
}

#[tokio::test]
async fn every_expected_row_is_stored() {
    let db = TestDb::new().await;
    let store = db.store();
    let summaries = import_all(&store).await;
    let c = client(&db).await;
    let rows = expected();
    let mut leaf_keys = std::collections::BTreeSet::new();
    for row in &rows {
        let ctx = format!("{} record {} {}", row.file, row.record, row.sha1);
        let summary = &summaries[&row.file];
        match row.status.as_str() {
            "certs" => {
                if row.location == "sha1 column matches" {
                    assert!(
                        cert_exists(&c, &row.sha1).await,
                        "{ctx}: certificate missing"
                    );
                } else {
                    // The deliberate defect: bad base64, reported with its line, nothing stored.
                    assert!(row.location.starts_with("base64 error"), "{ctx}");
                    assert!(!cert_exists(&c, &row.sha1).await, "{ctx}");
                    let p = summary
                        .problems
                        .iter()
                        .find(|p| p.line == row.record)
                        .unwrap_or_else(|| panic!("{ctx}: {summary:?}"));
                    assert!(p.message.contains("base64"), "{ctx}: {p:?}");
                }
            }
            "hosts" => {
                if row.sha1.len() == 40 && row.sha1.chars().all(|c| c.is_ascii_hexdigit()) {
                    let obs = observations(&c, &row.ip).await;
                    assert_eq!(obs.len(), 1, "{ctx}: {obs:?}");
                    assert_eq!(
                        (obs[0].port, obs[0].sha1.as_str()),
                        (443, row.sha1.as_str()),
                        "{ctx}"
                    );
                    assert_eq!(
                        obs[0].first_seen,
                        Utc.with_ymd_and_hms(2017, 1, 2, 0, 0, 0).unwrap()
                    );
                    assert_eq!(obs[0].last_seen, obs[0].first_seen);
                    assert_eq!(obs[0].sources, vec!["sonar".to_owned()]);
                    leaf_keys.insert((row.ip.clone(), 443, row.sha1.clone()));
                } else {
                    assert!(observations(&c, &row.ip).await.is_empty(), "{ctx}");
                    let p = summary
                        .problems
                        .iter()
                        .find(|p| p.line == row.record)
                        .unwrap_or_else(|| panic!("{ctx}: {summary:?}"));
                    assert!(p.message.contains("SHA-1"), "{ctx}: {p:?}");
                }
            }
            s if s.ends_with("unknown-error") => {
                assert!(observations(&c, &row.ip).await.is_empty(), "{ctx}");
                assert_eq!(summary.records_without_certificate, 1, "{ctx}");
            }
            _ => {
                let pos = row.chain_pos.unwrap();
                assert!(
                    cert_exists(&c, &row.sha1).await,
                    "{ctx}: certificate missing"
                );
                let port = row.port.unwrap_or_else(|| zgrab_port(&row.file));
                let obs = observations(&c, &row.ip).await;
                let hit = obs.iter().find(|o| o.sha1 == row.sha1 && o.port == port);
                if pos == 0 {
                    let o =
                        hit.unwrap_or_else(|| panic!("{ctx}: no sighting on port {port}: {obs:?}"));
                    assert_eq!(o.first_seen, time_of(row), "{ctx}");
                    assert_eq!(o.last_seen, time_of(row), "{ctx}");
                    assert_eq!(o.times_seen, 1, "{ctx}");
                    leaf_keys.insert((row.ip.clone(), port, row.sha1.clone()));
                } else {
                    assert!(
                        hit.is_none(),
                        "{ctx}: a chain certificate recorded as served leaf"
                    );
                }
            }
        }
    }
    // Nothing else was recorded: exactly one observation per leaf occurrence.
    assert_eq!(
        scalar(&c, "SELECT count(*) FROM observations").await,
        leaf_keys.len() as i64
    );
    // One row per distinct certificate occurrence (20 distinct in the ztag file, 38 in masscan, …).
    let distinct_certs: std::collections::BTreeSet<&str> = rows
        .iter()
        .filter(|r| r.chain_pos.is_some() || r.location == "sha1 column matches")
        .map(|r| r.sha1.as_str())
        .collect();
    assert_eq!(
        scalar(&c, "SELECT count(*) FROM certificates").await,
        distinct_certs.len() as i64
    );
    // Summaries: problems only where the fixtures have defects.
    for (f, s) in &summaries {
        let want = if f.ends_with("3-certs.gz") || f.ends_with("3-hosts.gz") {
            1
        } else {
            0
        };
        assert_eq!(s.problems_total, want, "{f}: {:?}", s.problems);
    }
    let ztag = &summaries["zmap__ztag/test.json"];
    assert_eq!(
        (ztag.records, ztag.certs_seen, ztag.sightings),
        (10, 21, 10)
    );
    let masscan = &summaries["ivre__ivre-test-samples/test-T443.xml.bz2"];
    assert_eq!(
        (masscan.records, masscan.sightings, masscan.certs_new),
        (48, 48, 38)
    );
}

#[tokio::test]
async fn sonar_hosts_extract_counts() {
    let db = TestDb::new().await;
    let store = db.store();
    let date = Utc.with_ymd_and_hms(2020, 6, 8, 0, 0, 0).unwrap();
    let s = certhist_scan::import_sonar(
        &store,
        None,
        Some(&data("crocs-muni__cevast/10000-hosts.gz")),
        Some(date),
        None,
        "sonar",
        &ImportOptions::default(),
    )
    .await
    .unwrap()
    .remove(0);
    assert_eq!(
        (s.records, s.sightings, s.problems_total),
        (10_000, 10_000, 0)
    );
    let c = client(&db).await;
    assert_eq!(
        scalar(&c, "SELECT count(DISTINCT ip) FROM observations").await,
        4752
    );
    assert_eq!(
        scalar(&c, "SELECT count(DISTINCT sha1) FROM observations").await,
        4559
    );
    assert_eq!(
        scalar(&c, "SELECT sum(times_seen)::bigint FROM observations").await,
        10_000
    );
    // Figures from the fixture README: SHA-1s shared with other files.
    for (sha1, lines) in [
        ("02faf3e291435468607857694df5e45b68851868", 113),
        ("6be9068844b12c2bdf0af2d4d6244449e3991e6a", 20),
        ("58aea24b5a84d4c04d6423643216b73465976e2e", 13),
        ("d6db83318b39a30bfcd1ff73ddabe98f90f0a7c8", 4),
        ("40cef3046c916ed7ae557f60e76842828b51de53", 22),
    ] {
        let n: i64 = c
            .query_one("SELECT coalesce(sum(times_seen), 0)::bigint FROM observations WHERE sha1 = decode($1, 'hex')", &[&sha1])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, lines, "{sha1}");
    }
}
