//! Which failures are retried, how often, and how long between attempts (issue 11).

use std::time::{Duration, SystemTime};

use certhist_fetch::{FetchConfig, FetchError, Fetcher};

use crate::server::{self, status, Reply};

/// Short backoff, three attempts, a short timeout.
fn quick() -> FetchConfig {
    FetchConfig {
        max_attempts: 3,
        backoff_base: Duration::from_millis(10),
        backoff_cap: Duration::from_millis(50),
        timeout: Duration::from_millis(500),
        ..FetchConfig::default()
    }
}

#[tokio::test]
async fn two_503_then_200_succeeds_on_the_third_request() {
    let srv = server::start(|n| match n {
        0 | 1 => status(503, b"busy"),
        _ => status(200, b"hello"),
    })
    .await;
    let f = Fetcher::new(quick()).unwrap();
    let body = f.get(&format!("{}/x", srv.url)).await.unwrap();
    assert_eq!(&body[..], b"hello");
    assert_eq!(srv.count(), 3);
}

#[tokio::test]
async fn each_retryable_status_is_retried_until_the_attempts_run_out() {
    for code in [429, 500, 502, 503, 504] {
        let srv = server::start(move |_| status(code, b"no")).await;
        let f = Fetcher::new(quick()).unwrap();
        let url = format!("{}/x", srv.url);
        let err = f.get(&url).await.unwrap_err();
        assert_eq!(
            err,
            FetchError::StatusAfterRetries {
                url: url.clone(),
                status: code,
                attempts: 3
            }
        );
        assert_eq!(srv.count(), 3, "HTTP {code}");
    }
}

#[tokio::test]
async fn not_found_and_other_client_errors_are_not_retried() {
    for code in [404, 400, 403, 410, 501] {
        let srv = server::start(move |_| status(code, b"no")).await;
        let f = Fetcher::new(quick()).unwrap();
        let url = format!("{}/missing", srv.url);
        let err = f.get(&url).await.unwrap_err();
        assert_eq!(srv.count(), 1, "HTTP {code} was retried");
        assert_eq!(err.status(), Some(code));
        assert_eq!(err.is_not_found(), code == 404);
        let text = err.to_string();
        assert!(text.contains(&format!("HTTP {code}")), "{text}");
        assert!(text.contains(&url), "{text}");
    }
}

#[tokio::test]
async fn retry_after_seconds_is_waited_for() {
    let srv = server::start(|n| match n {
        0 => Reply::Full(429, vec!["Retry-After: 1".into()], b"slow down".to_vec()),
        _ => status(200, b"ok"),
    })
    .await;
    let f = Fetcher::new(quick()).unwrap();
    f.get(&srv.url).await.unwrap();
    let seen = srv.requests();
    assert_eq!(seen.len(), 2);
    let gap = seen[1].at.duration_since(seen[0].at);
    assert!(
        gap >= Duration::from_secs(1),
        "second request after {gap:?}"
    );
}

#[tokio::test]
async fn retry_after_http_date_is_waited_for() {
    // The date is written 3 s ahead (whole seconds, so 2 to 3 s from when it is written): the
    // second request arrives at or after that date, more than 2 s after the first.
    let srv = server::start(|n| match n {
        0 => {
            let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3));
            Reply::Full(503, vec![format!("Retry-After: {at}")], b"later".to_vec())
        }
        _ => status(200, b"ok"),
    })
    .await;
    let f = Fetcher::new(quick()).unwrap();
    f.get(&srv.url).await.unwrap();
    let seen = srv.requests();
    assert_eq!(seen.len(), 2);
    let gap = seen[1].at.duration_since(seen[0].at);
    assert!(
        gap >= Duration::from_secs(2),
        "second request after {gap:?}"
    );
}

#[tokio::test]
async fn retry_after_is_capped() {
    let srv = server::start(|n| match n {
        0 => Reply::Full(429, vec!["Retry-After: 3600".into()], Vec::new()),
        _ => status(200, b"ok"),
    })
    .await;
    let f = Fetcher::new(FetchConfig {
        retry_after_cap: Duration::from_millis(100),
        ..quick()
    })
    .unwrap();
    // Completes (an hour's wait would time the test out) with the second request.
    let body = tokio::time::timeout(Duration::from_secs(60), f.get(&srv.url))
        .await
        .expect("Retry-After capped")
        .unwrap();
    assert_eq!(&body[..], b"ok");
    assert_eq!(srv.count(), 2);
}

#[tokio::test]
async fn timeouts_are_retried_then_reported() {
    let srv = server::start(|_| Reply::Slow(Duration::from_secs(3), b"late".to_vec())).await;
    let f = Fetcher::new(FetchConfig {
        timeout: Duration::from_millis(200),
        ..quick()
    })
    .unwrap();
    let url = format!("{}/slow", srv.url);
    let err = f.get(&url).await.unwrap_err();
    assert_eq!(
        err,
        FetchError::Timeout {
            url,
            attempts: 3,
            timeout: Duration::from_millis(200)
        }
    );
    assert_eq!(srv.count(), 3);
}

#[tokio::test]
async fn connection_resets_are_retried() {
    let srv = server::start(|n| match n {
        0 => Reply::Reset,
        _ => status(200, b"after reset"),
    })
    .await;
    let f = Fetcher::new(quick()).unwrap();
    assert_eq!(&f.get(&srv.url).await.unwrap()[..], b"after reset");
    assert_eq!(srv.count(), 2);
    // Nobody listening: a transport error after the attempts.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/", l.local_addr().unwrap())
    };
    let err = f.get(&closed).await.unwrap_err();
    assert!(
        matches!(err, FetchError::Transport { attempts: 3, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn bodies_the_check_refuses_are_fetched_again() {
    let srv = server::start(|n| match n {
        0 => status(200, b"[1, 2"),
        _ => status(200, b"[1, 2, 3]"),
    })
    .await;
    let f = Fetcher::new(quick()).unwrap();
    let parse = |b: &[u8]| {
        let t = std::str::from_utf8(b).map_err(|e| e.to_string())?;
        if t.ends_with(']') {
            Ok(t.matches(',').count() + 1)
        } else {
            Err("unterminated list".to_owned())
        }
    };
    assert_eq!(f.get_checked(&srv.url, parse).await.unwrap(), 3);
    assert_eq!(srv.count(), 2);
    // Never valid: the check's message after all attempts.
    let bad = server::start(|_| status(200, b"[1, 2")).await;
    let err = f.get_checked(&bad.url, parse).await.unwrap_err();
    assert!(
        matches!(&err, FetchError::Invalid { attempts: 3, detail, .. } if detail.contains("unterminated list")),
        "{err}"
    );
    assert_eq!(bad.count(), 3);
}

#[tokio::test]
async fn user_agent_is_certhist_and_its_version() {
    let srv = server::start(|_| status(200, b"")).await;
    let f = Fetcher::new(FetchConfig::default()).unwrap();
    f.get(&srv.url).await.unwrap();
    let seen = srv.requests();
    assert_eq!(
        seen[0].header("user-agent").as_deref(),
        Some(format!("certhist/{}", env!("CARGO_PKG_VERSION")).as_str())
    );
    assert_eq!(
        seen[0].head.lines().next(),
        Some("GET / HTTP/1.1"),
        "{}",
        seen[0].head
    );
}

#[tokio::test]
async fn an_invalid_url_fails_without_a_request() {
    let f = Fetcher::new(quick()).unwrap();
    let err = f.get("not a url").await.unwrap_err();
    assert!(matches!(err, FetchError::InvalidUrl { .. }), "{err}");
}
