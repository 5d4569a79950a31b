//! History semantics: re-import detection, resume after an interruption, out-of-order imports,
//! malformed lines with their line numbers.

use std::io::Write;

use certhist_scan::ImportOptions;
use certhist_test_support::TestDb;
use chrono::{TimeZone, Utc};

use crate::common::{client, data, observations, scalar};

#[tokio::test]
async fn reimport_is_detected_and_changes_nothing() {
    let db = TestDb::new().await;
    let store = db.store();
    let c = client(&db).await;
    let date = Some(Utc.with_ymd_and_hms(2017, 1, 2, 0, 0, 0).unwrap());
    let certs = data("crocs-muni__cevast/3-certs.gz");
    let hosts = data("crocs-muni__cevast/3-hosts.gz");
    let first = certhist_scan::import_sonar(
        &store,
        Some(&certs),
        Some(&hosts),
        date,
        None,
        "sonar",
        &ImportOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(first.len(), 2);
    assert!(first.iter().all(|s| !s.already_imported && s.complete));
    assert_eq!((first[0].certs_new, first[1].sightings), (2, 2));
    let before = snapshot(&c).await;
    let again = certhist_scan::import_sonar(
        &store,
        Some(&certs),
        Some(&hosts),
        date,
        None,
        "sonar",
        &ImportOptions::default(),
    )
    .await
    .unwrap();
    assert!(
        again
            .iter()
            .all(|s| s.already_imported && s.records == 0 && s.sightings == 0),
        "{again:?}"
    );
    assert_eq!(snapshot(&c).await, before);
    assert_eq!(before.2[0].times_seen, 1);
}

#[tokio::test]
async fn interrupted_import_resumes_after_last_batch() {
    let db = TestDb::new().await;
    let store = db.store();
    let c = client(&db).await;
    let hosts = data("crocs-muni__cevast/10000-hosts.gz");
    let date = Some(Utc.with_ymd_and_hms(2020, 6, 8, 0, 0, 0).unwrap());
    let opts = ImportOptions {
        batch_items: 1000,
        max_batches: Some(3),
        ..ImportOptions::default()
    };
    let part = certhist_scan::import_sonar(&store, None, Some(&hosts), date, None, "sonar", &opts)
        .await
        .unwrap()
        .remove(0);
    assert!(!part.complete);
    assert_eq!(part.records, 3000);
    assert_eq!(
        scalar(&c, "SELECT sum(times_seen)::bigint FROM observations").await,
        3000
    );
    assert_eq!(
        scalar(&c, "SELECT rows_done FROM imported_files").await,
        3000
    );
    let rest = certhist_scan::import_sonar(
        &store,
        None,
        Some(&hosts),
        date,
        None,
        "sonar",
        &ImportOptions {
            max_batches: None,
            ..opts.clone()
        },
    )
    .await
    .unwrap()
    .remove(0);
    assert_eq!(
        (rest.resumed_after_items, rest.records, rest.complete),
        (3000, 7000, true)
    );
    // Same database as one uninterrupted import: no line counted twice.
    assert_eq!(
        scalar(&c, "SELECT sum(times_seen)::bigint FROM observations").await,
        10_000
    );
    assert_eq!(
        scalar(&c, "SELECT count(DISTINCT ip) FROM observations").await,
        4752
    );
    let third = certhist_scan::import_sonar(&store, None, Some(&hosts), date, None, "sonar", &opts)
        .await
        .unwrap()
        .remove(0);
    assert!(third.already_imported);
}

#[tokio::test]
async fn older_dataset_after_newer_keeps_first_and_last_seen() {
    let db = TestDb::new().await;
    let store = db.store();
    let c = client(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let a = "1f843dcbdc9961b7a26cee59df251c8ad59e77e8";
    let b = "89e7a432a257d79b58b5909d1912124af99f9b35";
    let newer = dir.path().join("20200301_ssl_hosts");
    std::fs::write(&newer, format!("192.0.2.1,{a}\n192.0.2.2,{b}\n")).unwrap();
    let older = dir.path().join("20190101_ssl_hosts");
    std::fs::write(&older, format!("192.0.2.1,{a}\n192.0.2.2,{a}\n")).unwrap();
    let middle = dir.path().join("20190601_ssl_hosts");
    std::fs::write(&middle, format!("192.0.2.1,{a}\n")).unwrap();
    for f in [&newer, &older, &middle] {
        certhist_scan::import_sonar(
            &store,
            None,
            Some(f),
            None,
            None,
            "sonar",
            &ImportOptions::default(),
        )
        .await
        .unwrap();
    }
    let d = |y, m, day| Utc.with_ymd_and_hms(y, m, day, 0, 0, 0).unwrap();
    let one = observations(&c, "192.0.2.1").await;
    assert_eq!(one.len(), 1);
    assert_eq!(
        (one[0].first_seen, one[0].last_seen, one[0].times_seen),
        (d(2019, 1, 1), d(2020, 3, 1), 3)
    );
    // 192.0.2.2 rotated from A (2019) to B (2020): both, each with its own period.
    let two = observations(&c, "192.0.2.2").await;
    let by: Vec<_> = two
        .iter()
        .map(|o| (o.sha1.as_str(), o.first_seen, o.last_seen))
        .collect();
    assert_eq!(
        by,
        vec![
            (a, d(2019, 1, 1), d(2019, 1, 1)),
            (b, d(2020, 3, 1), d(2020, 3, 1))
        ]
    );
}

#[tokio::test]
async fn malformed_lines_are_reported_with_line_numbers() {
    let db = TestDb::new().await;
    let store = db.store();
    let c = client(&db).await;
    let dir = tempfile::tempdir().unwrap();
    // A real ZGrab2 line, a copy cut in half, garbage, the real line again: 1 and 4 import.
    let good = std::fs::read_to_string(data("pfuentes69__tls-discovery/results_8_8_8_8_443.json"))
        .unwrap();
    let good = good.trim_end();
    let other = std::fs::read_to_string(data(
        "pfuentes69__tls-discovery/results_91_209_3_12_443.json",
    ))
    .unwrap();
    let path = dir.path().join("mixed_443.json");
    let mut f = std::fs::File::create(&path).unwrap();
    writeln!(
        f,
        "{good}\n{}\nnot json at all\n{}",
        &good[..good.len() / 2],
        other.trim_end()
    )
    .unwrap();
    drop(f);
    let s = certhist_scan::import_zgrab2(&store, &path, None, "zgrab2", &ImportOptions::default())
        .await
        .unwrap();
    let lines: Vec<u64> = s.problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, vec![2, 3], "{:?}", s.problems);
    assert_eq!((s.records, s.sightings), (2, 2));
    assert_eq!(
        observations(&c, "8.8.8.8").await[0].sha1,
        "c412277b646ca22ddd640d517e6d30b7d0b229a9"
    );
    assert_eq!(
        observations(&c, "91.209.3.12").await[0].sha1,
        "6c299168db4d818945d3d7235cc622c5597da26d"
    );

    // Sonar: the broken lines of the real files, plus a SHA-1 that does not match its DER.
    let certs = dir.path().join("certs.csv");
    let real = {
        use std::io::Read;
        let mut s = String::new();
        flate2::read::GzDecoder::new(
            std::fs::File::open(data("crocs-muni__cevast/3-certs.gz")).unwrap(),
        )
        .read_to_string(&mut s)
        .unwrap();
        s
    };
    let first_line = real.lines().next().unwrap();
    let (_, b64) = first_line.split_once(',').unwrap();
    std::fs::write(
        &certs,
        format!("{real}0000000000000000000000000000000000000000,{b64}\n"),
    )
    .unwrap();
    let s = certhist_scan::import_sonar(
        &store,
        Some(&certs),
        None,
        None,
        None,
        "sonar",
        &ImportOptions::default(),
    )
    .await
    .unwrap()
    .remove(0);
    let got: Vec<(u64, bool)> = s
        .problems
        .iter()
        .map(|p| {
            (
                p.line,
                p.message.contains("base64") || p.message.contains("mismatch"),
            )
        })
        .collect();
    assert_eq!(got, vec![(3, true), (4, true)], "{:?}", s.problems);
    assert!(s.problems[1]
        .message
        .contains("1f843dcbdc9961b7a26cee59df251c8ad59e77e8"));
}

async fn snapshot(c: &tokio_postgres::Client) -> (i64, i64, Vec<crate::common::Obs>) {
    (
        scalar(c, "SELECT count(*) FROM certificates").await,
        scalar(c, "SELECT sum(times_seen)::bigint FROM observations").await,
        observations(c, "24.96.204.13").await,
    )
}
