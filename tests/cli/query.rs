//! `certhist query ip|cert|search` output, JSON and exit codes.

use crate::support::{certhist, demo_db, ok, stderr, stdout};

const WIKI: &str = "390917308a9acfd9af6fbe16586c31eaf62a3bd5";

#[tokio::test]
async fn ip_history_table_and_ndjson() {
    let db = demo_db().await;
    let table = ok(&db, &["query", "ip", "198.51.100.21"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("IP"), "{table}");
    assert_eq!(lines.len(), 4, "{table}");
    assert!(lines[1].contains(WIKI) && lines[1].contains("*.wikipedia.org"));
    // Rotation on 198.51.100.21:8443: stackoverflow.com until 2026-03-01, then news.ycombinator.com.
    assert!(lines[2].contains("stackoverflow.com") && lines[2].contains("2026-03-01 09:00:00Z"));
    assert!(lines[3].contains("news.ycombinator.com") && lines[3].contains("2026-03-02 09:00:00Z"));
    let json = ok(
        &db,
        &[
            "--json",
            "query",
            "ip",
            "198.51.100.0/24",
            "--until",
            "2025-12-11",
        ],
    );
    let rows: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["ip"], "198.51.100.20");
    assert_eq!(rows[0]["times_seen"], 12);
    assert_eq!(rows[0]["cert"]["issuer_cn"], "E8");
    // A sighting whose certificate is not stored.
    let bare = ok(&db, &["query", "ip", "203.0.113.99"]);
    assert!(bare.contains("(certificate not stored)"), "{bare}");
}

#[tokio::test]
async fn cert_reverse_search() {
    let db = demo_db().await;
    let out = ok(&db, &["query", "cert", WIKI]);
    assert!(
        out.contains("serial: 054604F19ACCFA089F2215F0E2F2A4708C82"),
        "{out}"
    );
    assert!(out.contains("seen on 3 host(s)"), "{out}");
    for ip in ["198.51.100.20", "198.51.100.21", "198.51.100.22"] {
        assert!(out.contains(ip));
    }
    let json = ok(&db, &["--json", "query", "cert", &WIKI.to_uppercase()]);
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(
        v["sha256"],
        "97399eb8d314310069fd4b2ca05a1cf5180bd9cdf397a27bda6e154b2f89214a"
    );
    assert_eq!(v["commonness"]["distinct_ips"], 3);
    // Its hosts are a list of their own (issue 11: one JSON contract with the API).
    let hosts = ok(&db, &["--json", "query", "hosts", WIKI]);
    assert_eq!(hosts.lines().count(), 3, "{hosts}");
    // Known only from a sighting (no DER).
    let bare = ok(
        &db,
        &["query", "cert", "40cef3046c916ed7ae557f60e76842828b51de53"],
    );
    assert!(
        bare.contains("is not stored, but was seen on 1 host(s)"),
        "{bare}"
    );
}

#[tokio::test]
async fn search_modes_and_serial_notations() {
    let db = demo_db().await;
    let out = ok(&db, &["query", "search", "name", "*.wikipedia.org"]);
    assert!(out.contains(WIKI));
    let serial = ok(
        &db,
        &[
            "--json",
            "query",
            "search",
            "serial",
            "05:46:04:f1:9a:cc:fa:08:9f:22:15:f0:e2:f2:a4:70:8c:82",
        ],
    );
    assert!(serial.contains(WIKI), "{serial}");
    let org = ok(
        &db,
        &["--json", "query", "search", "subject-o", "*duck duck*"],
    );
    assert!(
        org.contains("e061daf12c9a5556aba57787c1684d9b7bcc9fc5"),
        "{org}"
    );
}

#[tokio::test]
async fn bad_input_and_not_found_exit_codes() {
    let db = demo_db().await;
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["query", "ip", "999.1.1.1"],
            2,
            "not an IP address or CIDR block",
        ),
        (
            &["query", "ip", "10.0.0.0/33"],
            2,
            "not an IP address or CIDR block",
        ),
        (
            &["query", "ip", "192.0.2.1", "--since", "yesterday"],
            2,
            "--since",
        ),
        (
            &["query", "cert", "abcd"],
            2,
            "expected 40 (SHA-1) or 64 (SHA-256)",
        ),
        (
            &["query", "cert", "'; DROP TABLE certificates; --"],
            2,
            "not hexadecimal",
        ),
        (
            &["query", "search", "colour", "x"],
            2,
            "unknown search field",
        ),
        (
            &["query", "search", "serial", "xyz"],
            2,
            "neither hexadecimal nor decimal",
        ),
        (
            &["query", "search", "name", "*ab*"],
            2,
            "at least 3 characters",
        ),
        (
            &["query", "cert", "0000000000000000000000000000000000000000"],
            3,
            "no certificate or sighting",
        ),
        (
            &["query", "hosts", "0000000000000000000000000000000000000000"],
            3,
            "no certificate with hash",
        ),
        (
            &["query", "overlap", "198.51.100.20", "not-an-ip"],
            2,
            "is not an IP address",
        ),
        (
            &["query", "expand", "nothing.example"],
            3,
            "no certificate has the name",
        ),
    ];
    for (args, code, message) in cases {
        let o = certhist(&db, args);
        assert_eq!(o.status.code(), Some(*code), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(message), "{args:?}: {}", stderr(&o));
    }
    let o = certhist(&db, &["query", "ip", "192.0.2.128/25"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stdout(&o).contains("no certificates seen on 192.0.2.128/25"));
    // The certificate table survived the injection attempt.
    ok(&db, &["query", "cert", WIKI]);
}
