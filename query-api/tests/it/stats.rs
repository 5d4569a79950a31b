//! GET /api/v1/stats, /healthz, and the statement timeout.

use std::collections::HashSet;
use std::time::Duration;

use axum::http::StatusCode;

use crate::*;

#[tokio::test]
async fn stats_count_the_database() {
    let db = seeded().await;
    let app = app(&db);
    let (status, body) = get(&app, "/api/v1/stats").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let obs = observations();
    let ips: HashSet<_> = obs.iter().map(|o| o.ip).collect();
    assert_eq!(body["estimated"], false);
    assert_eq!(body["certificates"], ALL.len());
    assert_eq!(body["observations"], obs.len());
    assert_eq!(body["distinct_ips"], ips.len());
    assert_eq!(body["ct_entries"], 0);
    for path in ["/healthz", "/api/v1/healthz"] {
        let (status, body) = get(&app, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(body["status"], "ok", "{path}");
    }
}

#[tokio::test]
async fn a_query_over_the_statement_timeout_is_a_503_without_internals() {
    let db = seeded().await;
    let (client, connection) = db.pg_config().connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(
            "INSERT INTO cert_keys (sha1)
             SELECT decode(md5(i::text) || '00000000', 'hex') FROM generate_series(1, 400000) AS i
             ON CONFLICT (sha1) DO NOTHING;
             INSERT INTO sightings (cert_id, first_seen, last_seen, times_seen, port, ip)
             SELECT k.id, s2k(now()), s2k(now()), 1, (443 - 32768)::smallint,
                    ('10.' || (i / 65536) % 256 || '.' || (i / 256) % 256 || '.' || i % 256)::inet
             FROM generate_series(1, 400000) AS i
             JOIN cert_keys k ON k.sha1 = decode(md5(i::text) || '00000000', 'hex')",
        )
        .await
        .unwrap();
    let config = certhist_api::ServeConfig {
        statement_timeout: Duration::from_millis(1),
        ..certhist_api::ServeConfig::default()
    };
    // count(*) over 400k rows takes far longer than 1 ms.
    let (status, body) = get(&app_with(&db, config), "/api/v1/stats").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let detail = error_detail(&body);
    assert!(detail.contains("statement timeout"), "{detail}");
    assert!(!detail.contains("canceling"), "{detail}");
}
