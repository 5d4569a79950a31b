//! GET /api/v1/overlap

use axum::http::StatusCode;
use serde_json::json;

use crate::*;

#[tokio::test]
async fn certificates_shared_by_addresses_with_periods_and_intersection() {
    let db = seeded().await;
    let app = app(&db);
    let (status, body) = get(&app, "/api/v1/overlap?ip=192.0.2.11&ip=192.0.2.10").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let items = body["items"].as_array().unwrap();
    // Shared: HN (7fb4…) and GitHub (e3b3…), in sha1 order. WIKIPEDIA was on .10 only.
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["sha1"], HN.sha1);
    assert_eq!(items[1]["sha1"], GITHUB.sha1);
    assert_eq!(items[1]["cert"]["subject_cn"], GITHUB.cn);
    assert_eq!(
        items[1]["periods"],
        json!([
            {"ip": "192.0.2.10", "first_seen": "2024-01-01T00:00:00Z", "last_seen": "2024-03-01T00:00:00Z", "times_seen": 5},
            {"ip": "192.0.2.11", "first_seen": "2024-02-15T00:00:00Z", "last_seen": "2024-04-01T00:00:00Z", "times_seen": 2},
        ])
    );
    assert_eq!(
        items[1]["intersection"],
        json!({"start": "2024-02-15T00:00:00Z", "end": "2024-03-01T00:00:00Z"})
    );
    // HN: .10 Feb–Jun, .11 Jul–Aug: never at the same time.
    assert_eq!(items[0]["intersection"], serde_json::Value::Null);

    // A window that excludes .11's HN sighting leaves GitHub only.
    let (_, body) = get(
        &app,
        "/api/v1/overlap?ip=192.0.2.10&ip=192.0.2.11&until=2024-06-30",
    )
    .await;
    assert_eq!(body["items"].as_array().unwrap().len(), 1);
    assert_eq!(body["items"][0]["sha1"], GITHUB.sha1);
    // Three addresses: only HN was on all of them.
    let (_, body) = get(
        &app,
        "/api/v1/overlap?ip=192.0.2.10&ip=192.0.2.11&ip=192.0.2.12",
    )
    .await;
    assert_eq!(body["items"].as_array().unwrap().len(), 1);
    assert_eq!(body["items"][0]["sha1"], HN.sha1);
    // Paging by one.
    let (items, pages) =
        all_pages(&app, "/api/v1/overlap?ip=192.0.2.10&ip=192.0.2.11&limit=1").await;
    assert_eq!(pages, 2);
    assert_eq!(items[0]["sha1"], HN.sha1);
    assert_eq!(items[1]["sha1"], GITHUB.sha1);
}

#[tokio::test]
async fn addresses_shared_by_certificates() {
    let db = seeded().await;
    let app = app(&db);
    let (status, body) = get(
        &app,
        &format!("/api/v1/overlap?sha1={}&sha1={}", GITHUB.sha1, HN.sha256),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let items = body["items"].as_array().unwrap();
    let ips: Vec<&str> = items.iter().map(|i| i["ip"].as_str().unwrap()).collect();
    assert_eq!(ips, ["192.0.2.10", "192.0.2.11"]);
    // On .10: HN Feb–Jun, GitHub Jan–Mar → Feb 1 – Mar 1.
    assert_eq!(
        items[0]["intersection"],
        json!({"start": "2024-02-01T00:00:00Z", "end": "2024-03-01T00:00:00Z"})
    );
    assert_eq!(items[0]["periods"][0]["sha1"], HN.sha1);
    let (_, body) = get(
        &app,
        &format!("/api/v1/overlap?sha1={}&sha1={}", GITHUB.sha1, SERVO.sha1),
    )
    .await;
    assert_eq!(body["items"], json!([]));
}
