//! Through a real socket with a real HTTP client: JSON, NDJSON streaming, graceful shutdown.

use certhist_api::ServeConfig;

use crate::*;

#[tokio::test]
async fn real_socket_json_ndjson_and_graceful_shutdown() {
    let db = seeded().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(certhist_api::serve_on(
        listener,
        db.store(),
        ServeConfig::default(),
        async {
            let _ = stop_rx.await;
        },
    ));
    let client = reqwest::Client::new();
    let base = format!("http://{addr}");

    let resp = client
        .get(format!("{base}/api/v1/ip/192.0.2.10"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["items"].as_array().unwrap().len(), 3);

    let resp = client
        .get(format!(
            "{base}/api/v1/certificates/{}/hosts",
            WIKIPEDIA.sha1
        ))
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let text = resp.text().await.unwrap();
    assert_eq!(text.lines().count(), usize::from(SHARED_IPS) + 1);

    let resp = client
        .get(format!("{base}/api/v1/ip/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(error_detail(&body).contains("`ip`"));

    stop_tx.send(()).unwrap();
    let result = tokio::time::timeout(std::time::Duration::from_secs(10), server).await;
    assert!(
        matches!(result, Ok(Ok(Ok(())))),
        "server did not stop cleanly: {result:?}"
    );
    assert!(client.get(format!("{base}/healthz")).send().await.is_err());
}
