//! GET /api/v1/serials/{serial}

use axum::http::StatusCode;

use crate::*;

#[tokio::test]
async fn serial_in_any_notation_and_exact_cert_id() {
    let db = seeded().await;
    let app = app(&db);
    let (status, body) = get(&app, &format!("/api/v1/serials/{}", GITHUB.serial)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["sha1"], GITHUB.sha1);
    assert_eq!(items[0]["subject_cn"], GITHUB.cn);
    // Lower case with 0x prefix.
    let (_, body) = get(
        &app,
        &format!("/api/v1/serials/0x{}", GITHUB.serial.to_lowercase()),
    )
    .await;
    assert_eq!(body["items"][0]["sha1"], GITHUB.sha1);

    let (_, rec) = get(&app, &format!("/api/v1/certificates/{}", GITHUB.sha1)).await;
    let name_hash = rec["issuer_name_hash"].as_str().unwrap();
    assert_eq!(name_hash.len(), 40);
    let (_, body) = get(
        &app,
        &format!(
            "/api/v1/serials/{}?issuer_name_hash={name_hash}",
            GITHUB.serial
        ),
    )
    .await;
    assert_eq!(body["items"][0]["sha1"], GITHUB.sha1);
    let (_, body) = get(
        &app,
        &format!(
            "/api/v1/serials/{}?issuer_name_hash={}",
            GITHUB.serial,
            "00".repeat(20)
        ),
    )
    .await;
    assert_eq!(body["items"], serde_json::json!([]));
    // The serial of another certificate with GitHub's issuer name hash: nothing.
    let (_, body) = get(
        &app,
        &format!("/api/v1/serials/{}?issuer_name_hash={name_hash}", HN.serial),
    )
    .await;
    assert_eq!(body["items"], serde_json::json!([]));
}
