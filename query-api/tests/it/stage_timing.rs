//! `serve --stage-timing` (issue 17): the report at /debug/stage-timing exists only when asked
//! for, is well-formed (JSON and text), counts the requests and statements of each route,
//! resets, and is refused to non-loopback or non-admin callers. No timing value is asserted.

use axum::http::{Request, StatusCode};
use certhist_api::auth::Principal;
use certhist_api::stage_timing::COLUMNS;
use certhist_api::ServeConfig;
use certhist_model::views::Role;
use serde_json::Value;
use tower::ServiceExt;

use crate::*;

fn timing_config() -> ServeConfig {
    ServeConfig {
        stage_timing: true,
        ..ServeConfig::default()
    }
}

#[tokio::test]
async fn report_counts_requests_and_statements_per_route() {
    let db = seeded().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(certhist_api::serve_on(
        listener,
        db.store(),
        timing_config(),
        async {
            let _ = stop_rx.await;
        },
    ));
    let client = reqwest::Client::new();
    let base = format!("http://{addr}");
    for _ in 0..3 {
        let resp = client
            .get(format!("{base}/api/v1/ip/192.0.2.10"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        // The body is read in full: the request is recorded when hyper has taken it.
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["items"].as_array().unwrap().len(), 3);
    }
    let resp = client
        .get(format!("{base}/api/v1/certificates/{}/hosts", GITHUB.sha1))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.bytes().await.unwrap();

    let resp = client
        .get(format!("{base}/debug/stage-timing"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let report: Value = resp.json().await.unwrap();
    assert_eq!(report["unit"], "µs");
    let routes = report["routes"].as_array().unwrap();
    let route = |name: &str| {
        routes
            .iter()
            .find(|r| r["route"] == name)
            .unwrap_or_else(|| panic!("no {name} in {report}"))
    };
    // /ip: the history and the page's tags, two statements per request.
    let ip = route("GET /api/v1/ip/{query}");
    assert_eq!(ip["requests"], 3);
    assert_eq!(ip["statements_per_request"], 2.0);
    // /hosts of a SHA-1 with sightings: the hosts and their tags.
    let hosts = route("GET /api/v1/certificates/{hash}/hosts");
    assert_eq!(hosts["requests"], 1);
    assert_eq!(hosts["statements_per_request"], 2.0);
    // The report's own request is not in it.
    assert_eq!(routes.len(), 2, "{report}");
    for r in routes {
        let stages = r["stages"].as_object().unwrap();
        assert_eq!(
            stages.keys().map(String::as_str).collect::<Vec<_>>().len(),
            COLUMNS.len()
        );
        for column in COLUMNS {
            let s = &stages[column];
            let v = |k: &str| {
                s[k].as_u64()
                    .unwrap_or_else(|| panic!("{column}.{k} not a number: {r}"))
            };
            assert!(v("p50") <= v("p99") && v("p99") <= v("p99_9"), "{r}");
            v("mean");
            v("max");
        }
    }

    let text = client
        .get(format!("{base}/debug/stage-timing?format=text"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let header = text.lines().next().unwrap();
    for column in COLUMNS {
        assert!(header.contains(column), "{header}");
    }
    // One line per route and percentile.
    assert_eq!(text.lines().count(), 1 + 2 * 3, "{text}");
    assert!(text
        .lines()
        .any(|l| l.starts_with("GET /api/v1/ip/{query}") && l.contains("p99")));

    let resp = client
        .get(format!("{base}/debug/stage-timing?format=xml"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(error_detail(&body).contains("`format`"), "{body}");

    let resp = client
        .delete(format!("{base}/debug/stage-timing"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let report: Value = client
        .get(format!("{base}/debug/stage-timing"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["routes"], serde_json::json!([]));

    stop_tx.send(()).unwrap();
    let result = tokio::time::timeout(std::time::Duration::from_secs(10), server).await;
    assert!(matches!(result, Ok(Ok(Ok(())))), "{result:?}");
}

#[tokio::test]
async fn report_is_absent_when_off_and_refused_to_others() {
    let db = seeded().await;
    // Off (the default): no such route.
    let (status, _) = get(&app(&db), "/debug/stage-timing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let app = app_with(&db, timing_config());
    let ask = |principal: Principal| {
        let app = app.clone();
        async move {
            let mut req = Request::get("/debug/stage-timing")
                .body(axum::body::Body::empty())
                .unwrap();
            req.extensions_mut().insert(principal);
            app.oneshot(req).await.unwrap().status()
        }
    };
    let loopback = Some("127.0.0.1".parse().unwrap());
    let remote = Some("192.0.2.1".parse().unwrap());
    let who = |role, source| Principal {
        user: Some("someone".to_owned()),
        role,
        source,
    };
    assert_eq!(ask(who(Role::Admin, loopback)).await, StatusCode::OK);
    assert_eq!(ask(who(Role::Admin, remote)).await, StatusCode::FORBIDDEN);
    assert_eq!(ask(who(Role::Admin, None)).await, StatusCode::FORBIDDEN);
    assert_eq!(
        ask(who(Role::Analyst, loopback)).await,
        StatusCode::FORBIDDEN
    );
}
