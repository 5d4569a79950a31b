//! One JSON contract (issue 11): `certhist query … --json` prints exactly what `/api/v1`
//! answers — a record byte for byte, a list as the same items in the same order (the API's
//! NDJSON stream byte for byte where the route streams). The server is the real binary
//! (`certhist serve`) on a loopback port, over real HTTP.

use crate::support::{demo_db, ok, Server};

const WIKI: &str = "390917308a9acfd9af6fbe16586c31eaf62a3bd5";
const WIKI_SERIAL: &str = "05:46:04:f1:9a:cc:fa:08:9f:22:15:f0:e2:f2:a4:70:8c:82";

/// Re-serialises NDJSON line by line through `serde_json::Value` (key order of the
/// original is kept by neither side: serde_json's map is sorted), for comparisons with pages.
fn canonical(ndjson: &str) -> String {
    ndjson
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
            format!("{v}\n")
        })
        .collect()
}

#[tokio::test]
async fn cli_json_equals_api_json() {
    let db = demo_db().await;
    let server = Server::start(&db);

    // ip: the NDJSON stream, byte for byte, and the page's items.
    let cli = ok(&db, &["--json", "query", "ip", "198.51.100.0/24"]);
    assert_eq!(cli.lines().count(), 5, "{cli}");
    assert_eq!(cli, server.get("/api/v1/ip/198.51.100.0/24", true).await);
    assert_eq!(
        canonical(&cli),
        server.items("/api/v1/ip/198.51.100.0/24?limit=1000").await
    );
    let cli = ok(
        &db,
        &[
            "--json",
            "query",
            "ip",
            "198.51.100.21",
            "--since",
            "2026-03-02",
        ],
    );
    assert_eq!(
        cli,
        server
            .get("/api/v1/ip/198.51.100.21?since=2026-03-02", true)
            .await
    );

    // cert: the record, byte for byte.
    let cli = ok(&db, &["--json", "query", "cert", WIKI]);
    let api = server
        .get(&format!("/api/v1/certificates/{WIKI}"), false)
        .await;
    assert_eq!(cli, format!("{api}\n"));
    let record: serde_json::Value = serde_json::from_str(&api).unwrap();
    assert_eq!(record["serial"], "54604F19ACCFA089F2215F0E2F2A4708C82");

    // hosts: the reverse search.
    let cli = ok(&db, &["--json", "query", "hosts", WIKI]);
    assert_eq!(cli.lines().count(), 3, "{cli}");
    let path = format!("/api/v1/certificates/{WIKI}/hosts");
    assert_eq!(cli, server.get(&path, true).await);
    assert_eq!(canonical(&cli), server.items(&path).await);

    // search, in two modes.
    for (field, q, query) in [
        ("name", "*.wikipedia.org", "field=name&q=*.wikipedia.org"),
        ("issuer-cn", "E8", "field=issuer-cn&q=E8"),
    ] {
        let cli = ok(&db, &["--json", "query", "search", field, q]);
        assert!(!cli.is_empty(), "{field} {q}");
        let path = format!("/api/v1/search?{query}");
        assert_eq!(cli, server.get(&path, true).await, "{field} {q}");
        assert_eq!(canonical(&cli), server.items(&path).await, "{field} {q}");
    }

    // serials: colons in the CLI, the same serial URL-encoded for the API.
    let cli = ok(&db, &["--json", "query", "serial", WIKI_SERIAL]);
    assert_eq!(cli.lines().count(), 1, "{cli}");
    assert!(cli.contains(WIKI));
    let api = server
        .items(&format!(
            "/api/v1/serials/{}",
            WIKI_SERIAL.replace(':', "%3A")
        ))
        .await;
    assert_eq!(canonical(&cli), api);

    // overlap and expand, which moved out of the HTTP handlers into the store.
    let cli = ok(
        &db,
        &[
            "--json",
            "query",
            "overlap",
            "198.51.100.20",
            "198.51.100.22",
        ],
    );
    assert_eq!(cli.lines().count(), 1, "{cli}");
    assert_eq!(
        canonical(&cli),
        server
            .items("/api/v1/overlap?ip=198.51.100.20&ip=198.51.100.22")
            .await
    );
    let cli = ok(&db, &["--json", "query", "expand", "198.51.100.21"]);
    let api = server.get("/api/v1/expand?seed=198.51.100.21", false).await;
    assert_eq!(cli, format!("{api}\n"));
}
