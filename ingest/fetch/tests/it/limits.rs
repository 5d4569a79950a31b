//! The response size limit, the rate limit and the configuration checks (issue 11).

use std::io::Write as _;
use std::time::{Duration, Instant};

use certhist_fetch::{FetchConfig, FetchError, Fetcher};

use crate::server::{self, status, Reply};

const LIMIT: u64 = 10_000;

fn limited() -> FetchConfig {
    FetchConfig {
        max_response_bytes: LIMIT,
        max_attempts: 3,
        backoff_base: Duration::from_millis(10),
        timeout: Duration::from_secs(20),
        ..FetchConfig::default()
    }
}

fn assert_too_large(err: &FetchError, url: &str) {
    assert_eq!(
        *err,
        FetchError::TooLarge {
            url: url.to_owned(),
            limit_bytes: LIMIT
        }
    );
    assert!(err.to_string().contains("10000 bytes"), "{err}");
}

#[tokio::test]
async fn a_body_over_the_limit_with_content_length_fails_once() {
    let srv = server::start(|_| status(200, &[b'x'; LIMIT as usize + 1])).await;
    let f = Fetcher::new(limited()).unwrap();
    let err = f.get(&srv.url).await.unwrap_err();
    assert_too_large(&err, &srv.url);
    assert_eq!(srv.count(), 1, "a too-large response is not retried");
    // Exactly the limit is accepted.
    let ok = server::start(|_| status(200, &[b'x'; LIMIT as usize])).await;
    assert_eq!(f.get(&ok.url).await.unwrap().len() as u64, LIMIT);
}

#[tokio::test]
async fn an_endless_body_without_content_length_is_cut_at_the_limit() {
    // The server would write forever: only the streaming check ends the request.
    let srv = server::start(|_| Reply::Endless(vec![b'y'; 4096])).await;
    let f = Fetcher::new(limited()).unwrap();
    let err = f.get(&srv.url).await.unwrap_err();
    assert_too_large(&err, &srv.url);
    assert_eq!(srv.count(), 1);
}

#[tokio::test]
async fn a_body_trickled_one_byte_a_second_ends_at_the_attempt_timeout() {
    // Headers at once, then a byte a second forever: never over the size limit, so only the
    // per-attempt timeout (connect, headers and the whole body) can end it (issue 16).
    let srv = server::start(|_| Reply::Trickle).await;
    let f = Fetcher::new(FetchConfig {
        timeout: Duration::from_millis(1500),
        max_attempts: 2,
        ..limited()
    })
    .unwrap();
    let started = Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(60), f.get(&srv.url))
        .await
        .expect("the fetch of an endless trickle did not end")
        .unwrap_err();
    assert_eq!(
        err,
        FetchError::Timeout {
            url: srv.url.clone(),
            attempts: 2,
            timeout: Duration::from_millis(1500)
        }
    );
    assert_eq!(srv.count(), 2);
    assert!(started.elapsed() >= Duration::from_millis(3000));
}

#[tokio::test]
async fn the_limit_applies_to_the_decoded_body_of_a_gzip_response() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&[0u8; 1 << 20]).unwrap();
    let small = gz.finish().unwrap();
    assert!((small.len() as u64) < LIMIT);
    let srv = server::start(move |_| {
        Reply::Full(200, vec!["Content-Encoding: gzip".into()], small.clone())
    })
    .await;
    let f = Fetcher::new(limited()).unwrap();
    let err = f.get(&srv.url).await.unwrap_err();
    assert_too_large(&err, &srv.url);
    // And a gzip body within the limit arrives decoded.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"decoded text").unwrap();
    let body = gz.finish().unwrap();
    let ok = server::start(move |_| {
        Reply::Full(200, vec!["Content-Encoding: gzip".into()], body.clone())
    })
    .await;
    assert_eq!(&f.get(&ok.url).await.unwrap()[..], b"decoded text");
}

#[tokio::test]
async fn the_rate_limit_spaces_requests() {
    // 5 per second with a burst of one: request k may leave 200 ms·k after the first, so six
    // requests take at least one second from before the first was asked for.
    let srv = server::start(|_| status(200, b"ok")).await;
    let f = Fetcher::new(FetchConfig {
        rate_per_s: Some(5.0),
        concurrency: 6,
        ..FetchConfig::default()
    })
    .unwrap();
    let start = Instant::now();
    let all = (0..6).map(|i| {
        let f = f.clone();
        let url = format!("{}/{i}", srv.url);
        async move { f.get(&url).await }
    });
    for r in futures_join(all).await {
        r.unwrap();
    }
    let seen = srv.requests();
    assert_eq!(seen.len(), 6);
    let last = seen.iter().map(|s| s.at).max().unwrap();
    assert!(
        last.duration_since(start) >= Duration::from_secs(1),
        "six requests within {:?}",
        last.duration_since(start)
    );
}

async fn futures_join<F: std::future::Future + Send + 'static>(
    futs: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn a_rate_that_is_not_positive_is_refused() {
    for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let err = Fetcher::new(FetchConfig {
            rate_per_s: Some(rate),
            ..FetchConfig::default()
        })
        .unwrap_err();
        assert!(matches!(err, FetchError::Config { .. }), "{rate}: {err}");
    }
}
