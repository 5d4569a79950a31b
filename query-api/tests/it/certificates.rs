//! GET /api/v1/certificates/{hash}, ?format=pem|der, /hosts

use std::collections::HashSet;

use axum::http::StatusCode;
use base64::Engine;

use crate::*;

#[tokio::test]
async fn record_by_sha1_has_inventory_values_names_and_commonness() {
    let db = seeded().await;
    let app = app(&db);
    let (status, body) = get(&app, &format!("/api/v1/certificates/{}", GITHUB.sha1)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["sha1"], GITHUB.sha1);
    assert_eq!(body["sha256"], GITHUB.sha256);
    assert_eq!(body["serial"], GITHUB.serial);
    assert_eq!(body["subject"]["cn"], GITHUB.cn);
    assert_eq!(body["issuer"]["o"], "Sectigo Limited");
    assert_eq!(body["not_before"], GITHUB.not_before);
    assert_eq!(body["not_after"], GITHUB.not_after);
    let names: Vec<&str> = body["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"github.com"), "{names:?}");
    // Served by 192.0.2.10 and 192.0.2.11.
    assert_eq!(
        body["commonness"],
        serde_json::json!({"distinct_ips": 2, "shared": false, "shared_threshold": 50})
    );
    assert_eq!(body["ct_entries"], serde_json::json!([]));

    let (_, wiki) = get(&app, &format!("/api/v1/certificates/{}", WIKIPEDIA.sha1)).await;
    assert_eq!(
        wiki["commonness"]["distinct_ips"],
        i64::from(SHARED_IPS) + 1
    );
    assert_eq!(wiki["commonness"]["shared"], true);
}

#[tokio::test]
async fn record_snapshot() {
    let db = seeded().await;
    let (_, body) = get(&app(&db), &format!("/api/v1/certificates/{}", GITHUB.sha1)).await;
    insta::assert_json_snapshot!("github_record", body, { ".added_at" => "[added_at]" });
}

#[tokio::test]
async fn record_by_sha256_with_colons_and_upper_case() {
    let db = seeded().await;
    let colons: Vec<String> = LISTS
        .sha256
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).to_uppercase())
        .collect();
    let (status, body) = get(
        &app(&db),
        &format!("/api/v1/certificates/{}", colons.join(":")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["sha1"], LISTS.sha1);
    assert_eq!(body["subject"]["cn"], LISTS.cn);
    assert_eq!(body["serial"], LISTS.serial);
    assert_eq!(body["commonness"]["distinct_ips"], 0);
}

#[tokio::test]
async fn der_and_pem_downloads_are_the_stored_certificate() {
    let db = seeded().await;
    let app = app(&db);
    let (status, headers, der) = get_raw(
        &app,
        &format!("/api/v1/certificates/{}?format=der", GITHUB.sha1),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/pkix-cert");
    assert_eq!(der, GITHUB.der);
    let (status, headers, pem) = get_raw(
        &app,
        &format!("/api/v1/certificates/{}?format=pem", GITHUB.sha256),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/x-pem-file");
    let text = String::from_utf8(pem).unwrap();
    assert!(text.starts_with("-----BEGIN CERTIFICATE-----\n"));
    assert!(text.ends_with("-----END CERTIFICATE-----\n"));
    assert!(text.lines().all(|l| l.len() <= 64));
    let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
        GITHUB.der
    );
}

#[tokio::test]
async fn unknown_hashes_are_404_and_hash_only_certificates_have_hosts() {
    let db = seeded().await;
    let app = app(&db);
    let unknown = "00".repeat(20);
    let (status, body) = get(&app, &format!("/api/v1/certificates/{unknown}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(error_detail(&body).contains(&unknown));
    let (status, _) = get(&app, &format!("/api/v1/certificates/{unknown}/hosts")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = get(
        &app,
        &format!("/api/v1/certificates/{}/hosts", "ab".repeat(32)),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Observed but no DER: no record, but reverse search works.
    let (status, _) = get(&app, &format!("/api/v1/certificates/{HASH_ONLY}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = get(&app, &format!("/api/v1/certificates/{HASH_ONLY}/hosts")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["items"][0]["ip"], "192.0.2.13");
}

#[tokio::test]
async fn hosts_page_completely_and_filter_by_time() {
    let db = seeded().await;
    let app = app(&db);
    let mut want: Vec<_> = observations()
        .into_iter()
        .filter(|o| hex::encode(o.sha1) == WIKIPEDIA.sha1)
        .map(|o| (o.ip, o.port))
        .collect();
    want.sort();
    assert_eq!(want.len(), usize::from(SHARED_IPS) + 1);
    for limit in [1, 9, 61, 100] {
        let (items, _) = all_pages(
            &app,
            &format!(
                "/api/v1/certificates/{}/hosts?limit={limit}",
                WIKIPEDIA.sha1
            ),
        )
        .await;
        let got: Vec<_> = items
            .iter()
            .map(|v| (ip_of(v), v["port"].as_u64().unwrap() as u16))
            .collect();
        assert_eq!(got, want, "limit {limit}");
        assert_eq!(got.iter().collect::<HashSet<_>>().len(), got.len());
    }
    // By SHA-256 and in a window that leaves out 192.0.2.10's 2023 sighting.
    let (_, body) = get(
        &app,
        &format!(
            "/api/v1/certificates/{}/hosts?since=2024-01-01&limit=1000",
            WIKIPEDIA.sha256
        ),
    )
    .await;
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), usize::from(SHARED_IPS));
    assert!(items
        .iter()
        .all(|v| v["ip"].as_str().unwrap().starts_with("198.51.100.")));
    assert_eq!(items[0]["first_seen"], "2024-01-01T00:00:00Z");
    // NDJSON: everything.
    let (_, headers, body) = get_raw(
        &app,
        &format!("/api/v1/certificates/{}/hosts", WIKIPEDIA.sha1),
        Some("application/x-ndjson"),
    )
    .await;
    assert_eq!(headers["content-type"], "application/x-ndjson");
    assert_eq!(String::from_utf8(body).unwrap().lines().count(), want.len());
}
