//! Bad input: every malformed parameter is a 400 (404 for unknown hashes) in the one error
//! shape, naming the parameter; never a 500; the database is untouched afterwards.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

use crate::*;

/// (uri, expected status, text the detail must contain)
const CASES: &[(&str, u16, &str)] = &[
    // addresses and blocks
    ("/api/v1/ip/not-an-ip", 400, "`ip`"),
    ("/api/v1/ip/999.1.1.1", 400, "`ip`"),
    ("/api/v1/ip/192.0.2.1%2F33", 400, "`ip`"),
    (
        "/api/v1/ip/10.0.0.0%2F8",
        400,
        "larger than this server allows",
    ),
    ("/api/v1/ip/10.0.0.0/8", 400, "at most /16"),
    ("/api/v1/ip/0.0.0.0/0", 400, "`ip`"),
    ("/api/v1/ip/2001:db8::%2F32", 400, "at most /48"),
    ("/api/v1/ip/10.0.0.0/abc", 400, "`ip`"),
    // limits
    ("/api/v1/ip/192.0.2.10?limit=-1", 400, "`limit`"),
    ("/api/v1/ip/192.0.2.10?limit=0", 400, "`limit`"),
    ("/api/v1/ip/192.0.2.10?limit=1001", 400, "`limit`"),
    (
        "/api/v1/ip/192.0.2.10?limit=99999999999999999999999",
        400,
        "`limit`",
    ),
    ("/api/v1/ip/192.0.2.10?limit=ten", 400, "`limit`"),
    (
        "/api/v1/ip/192.0.2.10?limit=1&limit=2",
        400,
        "given more than once",
    ),
    // cursors
    ("/api/v1/ip/192.0.2.10?cursor=garbage!!", 400, "`cursor`"),
    ("/api/v1/ip/192.0.2.10?cursor=eyJhIjoxfQ", 400, "`cursor`"),
    (
        "/api/v1/ip/192.0.2.10?cursor=WyIxOTIuMC4yLjEwIiw0NDMsIm5vdGhleCJd",
        400,
        "`cursor`",
    ),
    (
        "/api/v1/certificates/e3b32dab1e685b16945d1499824f6569583a9a61/hosts?cursor=%27%3B--",
        400,
        "`cursor`",
    ),
    ("/api/v1/search?field=name&q=x&cursor=WzFd", 400, "`cursor`"),
    // times
    ("/api/v1/ip/192.0.2.10?since=yesterday", 400, "`since`"),
    ("/api/v1/ip/192.0.2.10?until=2024-13-45", 400, "`until`"),
    (
        "/api/v1/ip/192.0.2.10?since=2024-02-01&until=2024-01-01",
        400,
        "`until`",
    ),
    // unknown fields
    (
        "/api/v1/ip/192.0.2.10?foo=1",
        400,
        "unknown parameter `foo`",
    ),
    (
        "/api/v1/stats?verbose=1",
        400,
        "unknown parameter `verbose`",
    ),
    (
        "/api/v1/search?field=name&q=x&%3Cscript%3E=1",
        400,
        "unknown parameter `<script>`",
    ),
    // hashes
    ("/api/v1/certificates/xyz", 400, "`hash`"),
    (
        "/api/v1/certificates/e3b32dab1e685b16945d1499824f6569583a9a6",
        400,
        "`hash`",
    ),
    (
        "/api/v1/certificates/0000000000000000000000000000000000000000",
        404,
        "no certificate",
    ),
    (
        "/api/v1/certificates/e3b32dab1e685b16945d1499824f6569583a9a61?format=gif",
        400,
        "`format`",
    ),
    (
        "/api/v1/certificates/%27%20OR%201%3D1%20--/hosts",
        400,
        "`hash`",
    ),
    // search
    ("/api/v1/search?field=bogus&q=x", 400, "`field`"),
    ("/api/v1/search?q=x", 400, "`field`"),
    ("/api/v1/search?field=name", 400, "`q`"),
    ("/api/v1/search?field=name&q=", 400, "`q`"),
    ("/api/v1/search?field=name&q=x&match=fuzzy", 400, "`match`"),
    (
        "/api/v1/search?field=name&q=(unclosed&match=regex",
        400,
        "`q`",
    ),
    ("/api/v1/search?field=name&q=ab&match=contains", 400, "`q`"),
    ("/api/v1/search?field=name&q=*ab*", 400, "`q`"),
    ("/api/v1/search?field=serial&q=*abc", 400, "exact value"),
    ("/api/v1/search?field=spki&q=1234", 400, "spki"),
    (
        "/api/v1/search?field=name&q=x&valid_at=soon",
        400,
        "`valid_at`",
    ),
    // serials
    ("/api/v1/serials/zz-not-a-serial", 400, "`serial`"),
    (
        "/api/v1/serials/01?issuer_name_hash=abc",
        400,
        "`issuer_name_hash`",
    ),
    (
        "/api/v1/serials/01?issuer_key_hash=%3Cb%3E",
        400,
        "`issuer_key_hash`",
    ),
    // overlap
    ("/api/v1/overlap", 400, "`ip`"),
    ("/api/v1/overlap?ip=192.0.2.10", 400, "`ip`"),
    ("/api/v1/overlap?ip=192.0.2.10&ip=192.0.2.10", 400, "`ip`"),
    ("/api/v1/overlap?ip=192.0.2.10&ip=bad", 400, "`ip`"),
    (
        "/api/v1/overlap?ip=192.0.2.10&sha1=e3b32dab1e685b16945d1499824f6569583a9a61",
        400,
        "`sha1`",
    ),
    (
        "/api/v1/overlap?sha1=e3b32dab1e685b16945d1499824f6569583a9a61&sha1=00",
        400,
        "`sha1`",
    ),
    // expand
    ("/api/v1/expand", 400, "`seed`"),
    ("/api/v1/expand?seed=10.0.0.0/8", 400, "`seed`"),
    ("/api/v1/expand?seed=192.0.2.10&hops=0", 400, "`hops`"),
    ("/api/v1/expand?seed=192.0.2.10&hops=100", 400, "`hops`"),
    (
        "/api/v1/expand?seed=192.0.2.10&max_nodes=-5",
        400,
        "`max_nodes`",
    ),
    (
        "/api/v1/expand?seed=192.0.2.10&max_nodes=1000000",
        400,
        "`max_nodes`",
    ),
    (
        "/api/v1/expand?seed=192.0.2.10&include_shared=maybe",
        400,
        "`include_shared`",
    ),
    // routes
    ("/api/v1/nope", 404, "no such endpoint"),
    ("/api/v1/ip/", 404, "no such endpoint"),
];

#[tokio::test]
async fn bad_input_table() {
    let db = seeded().await;
    let app = app(&db);
    for (uri, status, needle) in CASES {
        let (got, headers, body) = get_raw(&app, uri, None).await;
        assert_eq!(
            got.as_u16(),
            *status,
            "{uri}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(headers["content-type"], "application/json", "{uri}");
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let detail = error_detail(&json);
        assert!(
            detail.contains(needle),
            "{uri}: detail {detail:?} lacks {needle:?}"
        );
        assert!(
            !detail.to_lowercase().contains("sqlstate") && !detail.contains("postgres"),
            "{uri}: {detail}"
        );
    }
}

#[tokio::test]
async fn injection_strings_are_just_values() {
    let db = seeded().await;
    let app = app(&db);
    for q in [
        "%27%20OR%20%271%27%3D%271",                     // ' OR '1'='1
        "x%27%3B%20DROP%20TABLE%20observations%3B%20--", // x'; DROP TABLE observations; --
        "%3Cscript%3Ealert(1)%3C%2Fscript%3E",           // <script>alert(1)</script>
        "%5C%5C%25%25",                                  // \\%%
    ] {
        for m in ["exact", "prefix", "suffix", "contains", "regex"] {
            let uri = format!("/api/v1/search?field=name&q={q}&match={m}");
            let (status, headers, body) = get_raw(&app, &uri, None).await;
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(headers["content-type"], "application/json", "{uri}");
            // A regex may be invalid (400); anything else matches nothing.
            if status == StatusCode::OK {
                assert_eq!(json["items"], serde_json::json!([]), "{uri}");
            } else {
                assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {json}");
                assert!(error_detail(&json).contains("`q`"));
            }
        }
    }
    // Echoed input is JSON-escaped text in a JSON body, never HTML.
    let (_, headers, body) =
        get_raw(&app, "/api/v1/ip/%3Cscript%3Ealert(1)%3C%2Fscript%3E", None).await;
    assert_eq!(headers["content-type"], "application/json");
    assert!(serde_json::from_slice::<serde_json::Value>(&body).is_ok());
    // The database is intact.
    let (_, stats) = get(&app, "/api/v1/stats").await;
    assert_eq!(stats["observations"], observations().len());
}

#[tokio::test]
async fn wrong_method_and_oversized_body_use_the_error_shape() {
    let db = seeded().await;
    let config = certhist_api::ServeConfig {
        body_limit_bytes: 16,
        ..certhist_api::ServeConfig::default()
    };
    let app = app_with(&db, config);
    let resp = app
        .clone()
        .oneshot(
            Request::post("/api/v1/stats")
                .body(Body::from("x".repeat(64)))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    assert!(
        status == StatusCode::METHOD_NOT_ALLOWED || status == StatusCode::PAYLOAD_TOO_LARGE,
        "{status}"
    );
    error_detail(&serde_json::from_slice(&body).unwrap());
    let resp = app
        .oneshot(
            Request::delete("/api/v1/ip/192.0.2.10")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    assert!(error_detail(&serde_json::from_slice(&body).unwrap()).contains("method not allowed"));
}
