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

/// Three certificates with one serial (as from three issuers): pages of one, none lost or
/// repeated, `next_cursor` null on the last.
#[tokio::test]
async fn serial_pages_with_cursor() {
    use sha2::Digest as _;
    let db = seeded().await;
    let base = certhist_x509::parse_der(GITHUB.der);
    let mut twins = Vec::new();
    for i in 0..2u8 {
        let mut r = base.clone();
        r.der.push(i);
        r.sha1 = sha1::Sha1::digest(&r.der).into();
        r.sha256 = sha2::Sha256::digest(&r.der).into();
        twins.push(r);
    }
    let store = db.store();
    let mut conn = store.conn().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    tx.write_certs(&twins).await.unwrap();
    tx.commit().await.unwrap();
    let app = app(&db);
    let mut seen = Vec::new();
    let mut uri = format!("/api/v1/serials/{}?limit=1", GITHUB.serial);
    loop {
        let (status, body) = get(&app, &uri).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let items = body["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{body}");
        seen.push(items[0]["sha1"].as_str().unwrap().to_owned());
        match body["next_cursor"].as_str() {
            Some(c) => uri = format!("/api/v1/serials/{}?limit=1&cursor={c}", GITHUB.serial),
            None => break,
        }
    }
    let mut want: Vec<String> = std::iter::once(GITHUB.sha1.to_owned())
        .chain(twins.iter().map(|r| hex::encode(r.sha1)))
        .collect();
    want.sort();
    assert_eq!(seen, want);
    let (status, body) = get(
        &app,
        &format!("/api/v1/serials/{}?cursor=zz", GITHUB.serial),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}
