//! Database faults under load: the PostgreSQL postmaster of a cluster of this test's own (not
//! the shared test cluster) is killed with SIGKILL while concurrent clients query a real server
//! on a loopback socket, then restarted by the test. Every answer during the outage is a 503 in
//! the one error shape with `Retry-After` (no 500, no hang past the request timeout), and the
//! same server — not restarted — answers correctly again once the database is back.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use certhist_api::ServeConfig;
use certhist_store::cluster::{self, ClusterInfo, StartOptions};
use certhist_store::Store;
use serde_json::Value;

use crate::*;

/// The server's whole-request timeout in this test.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

fn start_cluster(home: &std::path::Path) -> ClusterInfo {
    let options = StartOptions {
        settings: vec![("fsync".to_owned(), "off".to_owned())],
        cluster: certhist_test_support::test_cluster_config(),
        ..StartOptions::default()
    };
    // After a SIGKILL of the postmaster its backends notice and exit; until they have, a new
    // postmaster refuses to start ("pre-existing shared memory block is still in use").
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match cluster::ensure_running_with(home, &options) {
            Ok(info) => return info,
            Err(e) if Instant::now() < deadline => {
                eprintln!("cluster not startable yet: {e}");
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => panic!("cluster did not restart: {e}"),
        }
    }
}

/// One answer seen by a client.
#[derive(Debug)]
struct Answer {
    path: String,
    status: Option<u16>,
    retry_after: Option<String>,
    body: Option<Value>,
    elapsed: Duration,
    error: Option<String>,
}

/// The expected answer of each probe path, from the seeded observation list.
fn probes() -> Vec<(String, usize)> {
    let obs = observations();
    let mut out = Vec::new();
    for f in [GITHUB, HN] {
        let n = obs
            .iter()
            .filter(|o| hex::encode(o.sha1) == f.sha1)
            .map(|o| (o.ip, o.port))
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        out.push((format!("/api/v1/certificates/{}/hosts", f.sha1), n));
    }
    let ip: std::net::IpAddr = "192.0.2.10".parse().unwrap();
    let n = obs
        .iter()
        .filter(|o| o.ip == ip)
        .map(|o| (o.port, o.sha1))
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    out.push(("/api/v1/ip/192.0.2.10".to_owned(), n));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postmaster_killed_under_load_answers_503_and_the_server_recovers_by_itself() {
    let home = PathBuf::from(std::env::var_os("TMPDIR").unwrap_or_else(|| "/tmp".into()))
        .join(format!("certhist-fault-cluster-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let h = home.clone();
    let info = tokio::task::spawn_blocking(move || start_cluster(&h))
        .await
        .unwrap();
    let pg = info.pg_config("certhist");
    certhist_store::ensure_database(&pg).await.unwrap();
    let store = Store::open_with(pg, 8).await.unwrap();
    {
        let records: Vec<_> = ALL
            .iter()
            .map(|f| certhist_x509::parse_der(f.der))
            .collect();
        let mut conn = store.conn().await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        tx.write_certs(&records).await.unwrap();
        tx.write_observations(&observations()).await.unwrap();
        tx.commit().await.unwrap();
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = ServeConfig {
        request_timeout: REQUEST_TIMEOUT,
        statement_timeout: Duration::from_secs(2),
        rate_limit_per_ip: None,
        rate_limit_per_key: None,
        ..ServeConfig::default()
    };
    let server = tokio::spawn(certhist_api::serve_on(listener, store, config, async {
        let _ = stopped.await;
    }));

    // Eight clients, each looping over the probes until told to stop. The client's own timeout
    // is twice the server's request timeout: hitting it means a request hung.
    let answers: Arc<Mutex<Vec<Answer>>> = Arc::default();
    let running = Arc::new(AtomicBool::new(true));
    let probes = probes();
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT * 2)
        .no_proxy()
        .build()
        .unwrap();
    let mut clients = Vec::new();
    for i in 0..8 {
        let (client, answers, running, probes) = (
            client.clone(),
            answers.clone(),
            running.clone(),
            probes.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut k = i;
            while running.load(Ordering::Relaxed) {
                let (path, _) = &probes[k % probes.len()];
                k += 1;
                let t = Instant::now();
                let res = client.get(format!("http://{addr}{path}")).send().await;
                let answer = match res {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        let retry_after = resp
                            .headers()
                            .get("retry-after")
                            .map(|v| v.to_str().unwrap_or("?").to_owned());
                        let body = resp.json::<Value>().await.ok();
                        Answer {
                            path: path.clone(),
                            status: Some(status),
                            retry_after,
                            body,
                            elapsed: t.elapsed(),
                            error: None,
                        }
                    }
                    Err(e) => Answer {
                        path: path.clone(),
                        status: None,
                        retry_after: None,
                        body: None,
                        elapsed: t.elapsed(),
                        error: Some(e.to_string()),
                    },
                };
                answers.lock().unwrap().push(answer);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    let count =
        |pred: &dyn Fn(&Answer) -> bool| answers.lock().unwrap().iter().filter(|a| pred(a)).count();
    let wait_for = |what: &'static str, pred: Box<dyn Fn(&Answer) -> bool + Send>, after: usize| {
        let answers = answers.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(90);
            loop {
                if answers.lock().unwrap().iter().skip(after).any(&pred) {
                    return;
                }
                assert!(Instant::now() < deadline, "no {what} within 90 s");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };

    // Healthy load first.
    wait_for(
        "200 before the fault",
        Box::new(|a| a.status == Some(200)),
        0,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    // SIGKILL the postmaster.
    let killed_at = answers.lock().unwrap().len();
    let status = std::process::Command::new("kill")
        .args(["-KILL", &info.pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -KILL {}", info.pid);
    wait_for(
        "503 after the kill",
        Box::new(|a| a.status == Some(503)),
        killed_at,
    )
    .await;
    // The outage lasts a while under load.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Restart the cluster; the server must recover without a restart.
    let h = home.clone();
    let restarted = tokio::task::spawn_blocking(move || start_cluster(&h))
        .await
        .unwrap();
    assert_ne!(restarted.pid, info.pid, "a new postmaster");
    let restarted_at = answers.lock().unwrap().len();
    wait_for(
        "200 after the restart",
        Box::new(|a| a.status == Some(200)),
        restarted_at,
    )
    .await;
    // A while of healthy load again: no lingering errors from dead pooled connections.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let settled_at = answers.lock().unwrap().len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    running.store(false, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let _ = stop_server.send(());
    let _ = server.await;
    let h = home.clone();
    tokio::task::spawn_blocking(move || {
        let _ = cluster::stop_with(&h, &certhist_test_support::test_cluster_config());
    })
    .await
    .unwrap();
    let _ = std::fs::remove_dir_all(&home);

    let n200 = count(&|a| a.status == Some(200));
    let n503 = count(&|a| a.status == Some(503));
    let answers = answers.lock().unwrap();
    let expected: std::collections::HashMap<String, usize> = probes.into_iter().collect();
    eprintln!(
        "{} requests: {n200} × 200, {n503} × 503, slowest {:?}",
        answers.len(),
        answers.iter().map(|a| a.elapsed).max().unwrap()
    );
    for a in answers.iter() {
        assert!(a.error.is_none(), "request failed or hung: {a:?}");
        match a.status {
            Some(200) => {
                let items = a.body.as_ref().unwrap()["items"].as_array().unwrap().len();
                assert_eq!(items, expected[&a.path], "{a:?}");
            }
            Some(503) => {
                let body = a.body.as_ref().expect("JSON body");
                let detail = body["errors"][0]["detail"].as_str().expect("error shape");
                assert!(
                    detail.contains("database is unavailable")
                        || detail.contains("longer than the server allows"),
                    "{detail}"
                );
                assert_eq!(body["errors"].as_array().unwrap().len(), 1, "{body}");
                let retry: u64 = a
                    .retry_after
                    .as_deref()
                    .expect("Retry-After")
                    .parse()
                    .unwrap();
                assert!(retry >= 1);
            }
            other => panic!("unexpected status {other:?}: {a:?}"),
        }
    }
    assert!(
        answers
            .iter()
            .skip(settled_at)
            .all(|a| a.status == Some(200)),
        "errors after recovery"
    );
    assert!(answers.len() > settled_at, "requests after recovery");
}
