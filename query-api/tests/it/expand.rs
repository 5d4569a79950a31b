//! GET /api/v1/expand: bounded graph, shared-certificate guard, node budget.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use serde_json::Value;

use crate::*;

fn ids(body: &Value, kind: &str) -> BTreeSet<String> {
    body["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == kind)
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect()
}

fn strs(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

fn edges(body: &Value) -> BTreeSet<(String, String)> {
    body["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["ip"].as_str().unwrap().to_owned(),
                e["sha1"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn two_hops_from_an_address() {
    let db = seeded().await;
    let (status, body) = get(&app(&db), "/api/v1/expand?seed=192.0.2.12&hops=2").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // .12 served SERVO and HN; HN was also on .10 and .11.
    assert_eq!(
        ids(&body, "ip"),
        strs(&["192.0.2.10", "192.0.2.11", "192.0.2.12"])
    );
    assert_eq!(ids(&body, "certificate"), strs(&[SERVO.sha1, HN.sha1]));
    assert_eq!(
        edges(&body),
        [
            ("192.0.2.12", SERVO.sha1),
            ("192.0.2.12", HN.sha1),
            ("192.0.2.10", HN.sha1),
            ("192.0.2.11", HN.sha1)
        ]
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
    );
    let hn_edge = body["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["ip"] == "192.0.2.11")
        .unwrap();
    assert_eq!(hn_edge["ports"], serde_json::json!([8443]));
    assert_eq!(hn_edge["first_seen"], "2024-07-01T00:00:00Z");
    let hn = body["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == HN.sha1)
        .unwrap();
    assert_eq!(hn["distinct_ips"], 3);
    assert_eq!(hn["shared"], false);
    assert_eq!(hn["hop"], 1);
    assert_eq!(body["pruned"]["node_limit_reached"], false);
    // .10 and .11 were found at the last hop: not expanded.
    assert_eq!(body["pruned"]["unexpanded_nodes"], 2);
}

#[tokio::test]
async fn shared_certificates_are_not_expanded_unless_asked() {
    let db = seeded().await;
    let app = app(&db);
    let (_, body) = get(&app, "/api/v1/expand?seed=192.0.2.12&hops=4").await;
    // Hop 3 reaches GitHub and WIKIPEDIA (from .10); WIKIPEDIA is on 61 addresses > 50.
    assert_eq!(
        ids(&body, "certificate"),
        strs(&[SERVO.sha1, HN.sha1, GITHUB.sha1, WIKIPEDIA.sha1])
    );
    assert_eq!(
        body["pruned"]["shared_certificates"],
        serde_json::json!([WIKIPEDIA.sha1])
    );
    let wiki = body["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == WIKIPEDIA.sha1)
        .unwrap();
    assert_eq!(wiki["shared"], true);
    assert_eq!(wiki["expanded"], false);
    // Counted up to threshold + 1 only.
    assert_eq!(wiki["distinct_ips"], 51);
    assert!(!ids(&body, "ip")
        .iter()
        .any(|ip| ip.starts_with("198.51.100.")));

    let (_, body) = get(
        &app,
        "/api/v1/expand?seed=192.0.2.12&hops=4&include_shared=true",
    )
    .await;
    let ips = ids(&body, "ip");
    assert_eq!(
        ips.iter()
            .filter(|ip| ip.starts_with("198.51.100."))
            .count(),
        usize::from(SHARED_IPS)
    );
    assert_eq!(body["pruned"]["shared_certificates"], serde_json::json!([]));

    // A lower threshold from the configuration makes HN (3 addresses) shared too.
    let config = certhist_api::ServeConfig {
        shared_threshold: 2,
        ..certhist_api::ServeConfig::default()
    };
    let (_, body) = get(
        &app_with(&db, config),
        "/api/v1/expand?seed=192.0.2.12&hops=2",
    )
    .await;
    assert_eq!(ids(&body, "ip"), strs(&["192.0.2.12"]));
    assert_eq!(
        body["pruned"]["shared_certificates"],
        serde_json::json!([HN.sha1])
    );
}

#[tokio::test]
async fn node_budget_and_other_seeds() {
    let db = seeded().await;
    let app = app(&db);
    let (_, body) = get(
        &app,
        "/api/v1/expand?seed=192.0.2.12&hops=4&include_shared=true&max_nodes=5",
    )
    .await;
    assert_eq!(body["nodes"].as_array().unwrap().len(), 5);
    assert_eq!(body["pruned"]["node_limit_reached"], true);
    // Every edge joins two returned nodes.
    let nodes: BTreeSet<String> = ids(&body, "ip")
        .union(&ids(&body, "certificate"))
        .cloned()
        .collect();
    for (ip, sha1) in edges(&body) {
        assert!(nodes.contains(&ip) && nodes.contains(&sha1));
    }
    // Seed by hash (SHA-256), by name, by CIDR block.
    let (_, body) = get(
        &app,
        &format!("/api/v1/expand?seed={}&hops=1", GITHUB.sha256),
    )
    .await;
    assert_eq!(ids(&body, "ip"), strs(&["192.0.2.10", "192.0.2.11"]));
    let (_, body) = get(&app, "/api/v1/expand?seed=servo.org&hops=1").await;
    assert_eq!(ids(&body, "certificate"), strs(&[SERVO.sha1]));
    assert_eq!(ids(&body, "ip"), strs(&["192.0.2.12"]));
    let (_, body) = get(&app, "/api/v1/expand?seed=2001:db8::%2F64&hops=1").await;
    assert_eq!(ids(&body, "certificate"), strs(&[RUSTLANG.sha1]));
    assert_eq!(ids(&body, "ip"), strs(&["2001:db8::1", "2001:db8::2"]));
    // Unknown seeds.
    let (status, body) = get(&app, "/api/v1/expand?seed=nothing.example").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = get(&app, &format!("/api/v1/expand?seed={}", "00".repeat(20))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
