//! GET /api/v1/ip/{ip-or-cidr}

use std::collections::HashSet;
use std::net::IpAddr;

use axum::http::StatusCode;
use ipnet::IpNet;

use crate::*;

/// Rows of `observations()` inside `net` and overlapping [since, until], in (ip, port, sha1) order.
fn expected(net: &str, since: Option<&str>, until: Option<&str>) -> Vec<(IpAddr, u16, String)> {
    let net: IpNet = net.parse().unwrap();
    let mut rows: Vec<_> = observations()
        .into_iter()
        .filter(|o| net.contains(&o.ip))
        .filter(|o| since.is_none_or(|s| o.last_seen >= t(s)))
        .filter(|o| until.is_none_or(|u| o.first_seen <= t(u)))
        .map(|o| (o.ip, o.port, hex::encode(o.sha1)))
        .collect();
    rows.sort();
    rows
}

fn keys(items: &[serde_json::Value]) -> Vec<(IpAddr, u16, String)> {
    items
        .iter()
        .map(|v| {
            (
                ip_of(v),
                v["port"].as_u64().unwrap() as u16,
                v["sha1"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn history_of_one_address_with_certificate_summaries() {
    let db = seeded().await;
    let app = app(&db);
    let (status, body) = get(&app, "/api/v1/ip/192.0.2.10").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let items = body["items"].as_array().unwrap();
    assert_eq!(keys(items), expected("192.0.2.10/32", None, None));
    assert_eq!(body["next_cursor"], serde_json::Value::Null);
    let github = items.iter().find(|i| i["sha1"] == GITHUB.sha1).unwrap();
    assert_eq!(github["first_seen"], "2024-01-01T00:00:00Z");
    assert_eq!(github["last_seen"], "2024-03-01T00:00:00Z");
    assert_eq!(github["times_seen"], 5);
    assert_eq!(github["sources"], serde_json::json!(["test"]));
    assert_eq!(github["cert"]["subject_cn"], GITHUB.cn);
    assert_eq!(github["cert"]["serial"], GITHUB.serial);
    assert_eq!(github["cert"]["sha256"], GITHUB.sha256);
    assert_eq!(github["cert"]["not_before"], GITHUB.not_before);
    assert_eq!(github["cert"]["not_after"], GITHUB.not_after);
}

#[tokio::test]
async fn hash_only_observation_has_no_certificate_summary() {
    let db = seeded().await;
    let (status, body) = get(&app(&db), "/api/v1/ip/192.0.2.13").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["items"][0]["sha1"], HASH_ONLY);
    assert_eq!(body["items"][0]["port"], 0);
    assert_eq!(body["items"][0]["cert"], serde_json::Value::Null);
}

#[tokio::test]
async fn time_windows_keep_overlapping_periods_only() {
    let db = seeded().await;
    let app = app(&db);
    for (since, until) in [
        (Some("2024-01-01T00:00:00Z"), Some("2024-01-31T00:00:00Z")),
        (Some("2024-03-02T00:00:00Z"), None),
        (None, Some("2023-12-31T00:00:00Z")),
        (Some("2025-01-01T00:00:00Z"), None),
    ] {
        let mut uri = "/api/v1/ip/192.0.2.0%2F24?limit=1000".to_owned();
        if let Some(s) = since {
            uri.push_str(&format!("&since={s}"));
        }
        if let Some(u) = until {
            uri.push_str(&format!("&until={u}"));
        }
        let (status, body) = get(&app, &uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        assert_eq!(
            keys(body["items"].as_array().unwrap()),
            expected("192.0.2.0/24", since, until),
            "{uri}"
        );
    }
    // Dates and Unix seconds are accepted too.
    let (_, a) = get(&app, "/api/v1/ip/192.0.2.10?since=2024-03-02").await;
    let (_, b) = get(&app, "/api/v1/ip/192.0.2.10?since=1709337600").await;
    assert_eq!(a["items"], b["items"]);
    assert_eq!(
        keys(a["items"].as_array().unwrap()),
        expected("192.0.2.10/32", Some("2024-03-02T00:00:00Z"), None)
    );
}

#[tokio::test]
async fn cidr_blocks_in_both_spellings_and_ipv6() {
    let db = seeded().await;
    let app = app(&db);
    let (_, encoded) = get(&app, "/api/v1/ip/192.0.2.0%2F24?limit=1000").await;
    let (_, segments) = get(&app, "/api/v1/ip/192.0.2.0/24?limit=1000").await;
    assert_eq!(encoded["items"], segments["items"]);
    let want = expected("192.0.2.0/24", None, None);
    assert_eq!(want.len(), 48);
    assert_eq!(keys(encoded["items"].as_array().unwrap()), want);
    // A host address inside the block is truncated to the block.
    let (_, truncated) = get(&app, "/api/v1/ip/192.0.2.77/24?limit=1000").await;
    assert_eq!(truncated["items"], encoded["items"]);
    let (_, v6) = get(&app, "/api/v1/ip/2001:db8::%2F64").await;
    assert_eq!(
        keys(v6["items"].as_array().unwrap()),
        expected("2001:db8::/64", None, None)
    );
    assert_eq!(v6["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn paging_loses_and_repeats_nothing() {
    let db = seeded().await;
    let app = app(&db);
    let want = expected("192.0.2.0/24", None, None);
    for limit in [1, 7, 47, 48, 49] {
        let (items, pages) =
            all_pages(&app, &format!("/api/v1/ip/192.0.2.0%2F24?limit={limit}")).await;
        let got = keys(&items);
        assert_eq!(got, want, "limit {limit}");
        let distinct: HashSet<_> = got.iter().collect();
        assert_eq!(distinct.len(), got.len(), "limit {limit}: repeated rows");
        assert_eq!(pages, want.len().div_ceil(limit), "limit {limit}: pages");
    }
}

#[tokio::test]
async fn ndjson_streams_the_whole_list_without_the_page_cap() {
    let db = seeded().await;
    let config = certhist_api::ServeConfig {
        max_page_size: 5,
        ..certhist_api::ServeConfig::default()
    };
    let app = app_with(&db, config);
    let (status, headers, body) = get_raw(
        &app,
        "/api/v1/ip/192.0.2.0%2F24",
        Some("application/x-ndjson"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/x-ndjson");
    let text = String::from_utf8(body).unwrap();
    let items: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(keys(&items), expected("192.0.2.0/24", None, None));
}

#[tokio::test]
async fn unobserved_address_is_an_empty_list() {
    let db = seeded().await;
    let (status, body) = get(&app(&db), "/api/v1/ip/203.0.113.9").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        serde_json::json!({
            "items": [],
            "next_cursor": null,
            "stub_sightings": [],
            "stub_sightings_truncated": false
        })
    );
}
