//! crt.sh client against a local HTTP/1.1 server on 127.0.0.1 serving the recorded JSON
//! (tests/data/crtsh) and PEMs of fixture certificates, plus 404 / 429 / 503 / timeout /
//! truncated-JSON cases.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use certhist_crtsh::{
    CrtshClient, CrtshConfig, CrtshError, FetchConfig, FetchError, IngestRequest, MatchMode, Query,
};
use certhist_cryptnet::ocsp::{build_get_url, cert_id_of};
use certhist_cryptnet::CertIdMatchKind;
use certhist_cryptnet::HashAlgorithm;
use certhist_cryptnet::{analyze, ResolutionSource, ResolveMode};
use certhist_test_support::TestDb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIG_ID: u64 = 9_876_543_210; // > 2^32
const ISSUER_ID: u64 = 16;

fn recorded(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/crtsh")
            .join(name),
    )
    .unwrap()
}

fn pem(der: &[u8]) -> Vec<u8> {
    let b = base64::engine::general_purpose::STANDARD.encode(der);
    let mut s = String::from("-----BEGIN CERTIFICATE-----\n");
    for c in b.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(c).unwrap());
        s.push('\n');
    }
    s.push_str("-----END CERTIFICATE-----\n");
    s.into_bytes()
}

struct Server {
    base: String,
    hits: Arc<std::sync::Mutex<HashMap<String, usize>>>,
}

async fn serve() -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    let hits: Arc<std::sync::Mutex<HashMap<String, usize>>> = Arc::default();
    let (leaf, issuer) = crate::db::leaf_and_issuer();
    let serial_hex = hex::encode(
        cert_id_of(&leaf, &issuer, HashAlgorithm::Sha1)
            .unwrap()
            .serial
            .as_bytes(),
    );
    let h = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let hits = h.clone();
            let (leaf, issuer, serial_hex) = (leaf.clone(), issuer.clone(), serial_hex.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut n = 0;
                while !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf[n..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => n += k,
                    }
                }
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let target = req.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let count = {
                    let mut m = hits.lock().unwrap();
                    let c = m.entry(target.clone()).or_insert(0);
                    *c += 1;
                    *c
                };
                let q = target.trim_start_matches("/?");
                let json = |b: Vec<u8>| {
                    (
                        200u16,
                        vec![("Content-Type", "application/json".to_owned())],
                        b,
                    )
                };
                let (status, headers, body): (u16, Vec<(&str, String)>, Vec<u8>) = match q {
                    "q=crt.sh&output=json" => json(recorded("1_1.response.json")),
                    "q=crt.sh&match=LIKE&output=json" => json(recorded("when_given_match_param/1_2_1.response.json")),
                    "q=crt.sh&exclude=expired&output=json" => {
                        json(recorded("when_given_exclude_param/1_3_1.response.json"))
                    }
                    "q=crt.sh&match=LIKE&exclude=expired&output=json" => {
                        json(recorded("when_given_match_exclude_params/1_4_1.response.json"))
                    }
                    "q=truncated&output=json" => {
                        let b = recorded("1_1.response.json");
                        json(b[..b.len() / 2].to_vec())
                    }
                    "q=busy&output=json" => (503, vec![], b"busy".to_vec()),
                    "q=slow&output=json" => {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        json(b"[]".to_vec())
                    }
                    "q=nothing&output=json" => json(Vec::new()),
                    _ if q == format!("serial={serial_hex}&output=json") => json(
                        format!(
                            r#"[{{"issuer_ca_id":16418,"issuer_name":"C=US, O=Let's Encrypt, CN=Let's Encrypt Authority X3","common_name":"lists.for-our.info","name_value":"lists.for-our.info","id":{BIG_ID},"entry_timestamp":null,"not_before":"2016-04-28T13:40:00","not_after":"2016-07-27T13:40:00","serial_number":"{serial_hex}"}},{{"issuer_ca_id":1,"issuer_name":"x","id":{ISSUER_ID},"entry_timestamp":"2016-01-01T00:00:00.123"}}]"#
                        )
                        .into_bytes(),
                    ),
                    // first try rate-limited with Retry-After, then served
                    _ if q == format!("d={BIG_ID}") && count == 1 => {
                        (429, vec![("Retry-After", "1".to_owned())], b"slow down".to_vec())
                    }
                    _ if q == format!("d={BIG_ID}") => (200, vec![], pem(&leaf)),
                    _ if q == format!("d={ISSUER_ID}") => (200, vec![], pem(&issuer)),
                    _ => (404, vec![], b"not found".to_vec()),
                };
                let reason = match status {
                    200 => "OK",
                    404 => "Not Found",
                    429 => "Too Many Requests",
                    _ => "Service Unavailable",
                };
                let mut head = format!(
                    "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n",
                    body.len()
                );
                for (k, v) in headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&body).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    Server { base, hits }
}

fn config(base: &str) -> CrtshConfig {
    CrtshConfig {
        base_url: base.to_owned(),
        fetch: FetchConfig {
            concurrency: 2,
            max_attempts: 3,
            backoff_base: Duration::from_millis(20),
            retry_after_cap: Duration::from_secs(2),
            timeout: Duration::from_millis(700),
            ..FetchConfig::default()
        },
    }
}

#[tokio::test]
async fn recorded_queries_and_failures() {
    let s = serve().await;
    let c = CrtshClient::new(config(&s.base)).unwrap();
    let name = |mode, ex| Query::Name {
        name: "crt.sh".into(),
        mode,
        exclude_expired: ex,
    };
    let all = c.query(&name(None, false)).await.unwrap();
    assert_eq!(all.rows.len(), 50);
    assert!(!all.capped);
    assert!(all
        .rows
        .iter()
        .any(|r| r.id == 2_202_554_056 && r.issuer_ca_id == Some(1582)));
    assert!(all.rows.iter().all(|r| r
        .name_value
        .as_deref()
        .is_some_and(|n| n.contains("crt.sh"))));
    assert_eq!(
        c.query(&name(Some(MatchMode::Like), false))
            .await
            .unwrap()
            .rows
            .len(),
        50
    );
    assert_eq!(c.query(&name(None, true)).await.unwrap().rows.len(), 12);
    assert_eq!(
        c.query(&name(Some(MatchMode::Like), true))
            .await
            .unwrap()
            .rows
            .len(),
        12
    );
    let other = |n: &str| Query::Name {
        name: n.into(),
        mode: None,
        exclude_expired: false,
    };
    assert!(c.query(&other("nothing")).await.unwrap().rows.is_empty());
    assert!(matches!(
        c.query(&other("truncated")).await,
        Err(CrtshError::Json { .. })
    ));
    assert!(matches!(
        c.query(&other("busy")).await,
        Err(CrtshError::Fetch(FetchError::StatusAfterRetries {
            status: 503,
            ..
        }))
    ));
    assert!(matches!(
        c.query(&other("slow")).await,
        Err(CrtshError::Fetch(FetchError::Timeout { .. }))
    ));
    assert!(matches!(
        c.download(1).await,
        Err(CrtshError::Fetch(FetchError::Status { status: 404, .. }))
    ));
    {
        let hits = s.hits.lock().unwrap();
        assert_eq!(
            hits.get("/?q=busy&output=json"),
            Some(&3),
            "retried up to max_attempts"
        );
        assert_eq!(hits.get("/?q=truncated&output=json"), Some(&3));
        assert_eq!(hits.get("/?d=1"), Some(&1), "404 is not retried");
    }
    // 429 with Retry-After, then the PEM; id above 2^32
    let der = c.download(BIG_ID).await.unwrap();
    assert_eq!(der, crate::db::leaf_and_issuer().0);
    assert_eq!(
        s.hits.lock().unwrap().get(&format!("/?d={BIG_ID}")),
        Some(&2)
    );
}

#[tokio::test]
async fn ingest_by_serial_and_cryptnet_resolve_via_crtsh() {
    let s = serve().await;
    let db = TestDb::new().await;
    let store = db.store();
    let (leaf, issuer) = crate::db::leaf_and_issuer();
    let id = cert_id_of(&leaf, &issuer, HashAlgorithm::Sha1).unwrap();

    // cryptnet --resolve crtsh on an empty database: the leaf is downloaded, checked against the
    // CertID (the issuer, also returned for that serial query, is rejected) and stored.
    let url = build_get_url(
        "http://ocsp.int-x3.letsencrypt.org",
        std::slice::from_ref(&id),
    )
    .unwrap();
    let entries = vec![certhist_cryptnet::CacheEntry::from_url(
        "t:1".into(),
        certhist_cryptnet::Origin::UrlList,
        &url,
    )];
    let o = crate::db::opts(ResolveMode::Both, None, config(&s.base));
    let rows = analyze(&entries, &o, &store, &|_| {}).await.unwrap().rows;
    let r = rows[0].resolution.as_ref().unwrap();
    assert_eq!(r.source, Some(ResolutionSource::Crtsh));
    assert_eq!(r.certs.len(), 1);
    assert_ne!(r.certs[0].match_kind, CertIdMatchKind::SerialOnly);
    assert_eq!(
        r.certs[0].sha1,
        hex::encode(certhist_x509::parse_der(&leaf).sha1)
    );
    assert!(r.certs[0].names.contains(&"lists.for-our.info".to_owned()));

    // ingest crtsh --serial: the serial row's leaf matches, the other row's certificate does not
    let args = IngestRequest {
        serial: Some(hex::encode(id.serial.as_bytes())),
        ..IngestRequest::default()
    };
    let sum = certhist_crtsh::ingest(&args, &store, config(&s.base))
        .await
        .unwrap();
    assert_eq!(
        (sum.rows, sum.downloaded, sum.mismatched, sum.failed),
        (2, 1, 1, 0)
    );
    assert_eq!(
        (sum.new, sum.known),
        (0, 1),
        "already stored by the crt.sh resolution"
    );
    // --id of the issuer: stored as new
    let args2 = IngestRequest {
        serial: None,
        ids: vec![ISSUER_ID, 424242],
        ..args
    };
    let sum2 = certhist_crtsh::ingest(&args2, &store, config(&s.base))
        .await
        .unwrap();
    assert_eq!((sum2.downloaded, sum2.new, sum2.failed), (1, 1, 1));
}
