//! The OpenAPI document, generated from the handlers.

use axum::http::StatusCode;

use crate::*;

#[tokio::test]
async fn openapi_document_snapshot() {
    let doc = serde_json::to_value(certhist_api::openapi()).unwrap();
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    for p in [
        "/api/v1/ip/{query}",
        "/api/v1/certificates/{hash}",
        "/api/v1/certificates/{hash}/hosts",
        "/api/v1/search",
        "/api/v1/serials/{serial}",
        "/api/v1/overlap",
        "/api/v1/expand",
        "/api/v1/stats",
        "/healthz",
    ] {
        assert!(
            paths.iter().any(|x| x.as_str() == p),
            "{p} missing from {paths:?}"
        );
    }
    insta::assert_json_snapshot!("openapi", doc, { ".info.version" => "[version]" });
}

#[tokio::test]
async fn served_document_is_the_generated_one() {
    let db = TestDb::new().await;
    let (status, served) = get(&app(&db), "/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        served,
        serde_json::to_value(certhist_api::openapi()).unwrap()
    );
}
