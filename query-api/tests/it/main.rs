//! Route tests of the certhist API against a real database (certhist_test_support::TestDb):
//! real certificates from tests/data/certs (parsed by certhist_ingest), observations written
//! through StoreTx::write_observations, requests through the router (tower `oneshot`) and, in
//! `socket`, through a real listening socket with a real HTTP client.
//!
//! Expected values come from tests/data/certs/CERT_INVENTORY.tsv (computed with OpenSSL /
//! Python cryptography by the fixture's author) and from the observation list below, filtered
//! independently in Rust.

mod auth;
mod bad_input;
mod certificates;
mod compat;
mod contract;
mod expand;
mod faults;
mod ip;
mod openapi;
mod overlap;
mod search;
mod serials;
mod socket;
mod stage_timing;
mod stats;
mod tags;
mod uploads;

use std::net::IpAddr;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use certhist_api::ServeConfig;
use certhist_model::{ObservationRow, Sha1};
use certhist_test_support::TestDb;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use tower::ServiceExt;

/// A fixture certificate: its file and the inventory's values.
#[derive(Debug)]
pub struct Fixture {
    pub der: &'static [u8],
    pub sha1: &'static str,
    pub sha256: &'static str,
    pub serial: &'static str,
    pub cn: &'static str,
    pub not_before: &'static str,
    pub not_after: &'static str,
}

macro_rules! cert_file {
    ($path:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/data/certs/",
            $path
        ))
    };
}

// Values from tests/data/certs/CERT_INVENTORY.tsv.
pub const GITHUB: Fixture = Fixture {
    der: cert_file!("rustls/rustls-test/benches/data/cert-github.0.der"),
    sha1: "e3b32dab1e685b16945d1499824f6569583a9a61",
    sha256: "541cd0298cf1f19aaef4386e0fc4c13e892785e71dba5133b6b9820ef61b2ce8",
    serial: "2765689FEE52F85C4C8A47650E84BBE",
    cn: "github.com",
    not_before: "2026-01-06T00:00:00Z",
    not_after: "2026-04-05T23:59:59Z",
};
pub const HN: Fixture = Fixture {
    der: cert_file!("rustls/rustls-test/benches/data/cert-hn.0.der"),
    sha1: "7fb49b663c99cbe8adef4be0ad2082241aefd22e",
    sha256: "2e83b2344cabcdf0ff0250e54d79fb429a42a2cb3198116ad1a6d543fc8bfe99",
    serial: "6887B3FD3CC728C0B99BDE42524D0A37836",
    cn: "news.ycombinator.com",
    not_before: "2026-01-11T08:06:31Z",
    not_after: "2026-04-11T08:06:30Z",
};
pub const WIKIPEDIA: Fixture = Fixture {
    der: cert_file!("rustls/rustls-test/benches/data/cert-wikipedia.0.der"),
    sha1: "390917308a9acfd9af6fbe16586c31eaf62a3bd5",
    sha256: "97399eb8d314310069fd4b2ca05a1cf5180bd9cdf397a27bda6e154b2f89214a",
    serial: "54604F19ACCFA089F2215F0E2F2A4708C82",
    cn: "*.wikipedia.org",
    not_before: "2025-12-08T22:27:50Z",
    not_after: "2026-03-08T22:27:49Z",
};
pub const RUSTLANG: Fixture = Fixture {
    der: cert_file!("rustls/rustls-test/benches/data/cert-rustlang.0.der"),
    sha1: "7008df95f98751da9cddeab4390ac92b7944e46e",
    sha256: "a0caa4233d7ee1701f4eca620e448e8313e5cbd3a6addd4251f181c0a1ed342f",
    serial: "51D1B285181A482FD8052FC193FA39BC02D",
    cn: "rust-lang.org",
    not_before: "2026-01-24T13:05:40Z",
    not_after: "2026-04-24T13:05:39Z",
};
pub const SERVO: Fixture = Fixture {
    der: cert_file!("rustls/rustls-test/benches/data/cert-servo.0.der"),
    sha1: "97cdcf7cad72f2d535ff6e68403cade9f105c8c3",
    sha256: "f7c204ee720e921417e6a362a5fa2465559a4618c4dcd77da4acabbe6d86dc00",
    serial: "5A6796FA6DBF64A51138C52210A36ACA",
    cn: "servo.org",
    not_before: "2026-01-24T20:37:05Z",
    not_after: "2026-04-24T21:34:24Z",
};
pub const GOOGLE_WWW: Fixture = Fixture {
    der: cert_file!("rustls/rustls-test/benches/data/cert-google.0.der"),
    sha1: "36c1997cde5d41a3c4039c3484bc7a5136081d43",
    sha256: "15c4728a299d894fb08f6f8745a55c44c9945e826dddcf368c927320b53c8a83",
    serial: "4FB200230E3CCAD910823DA2B577F0B6",
    cn: "www.google.com",
    not_before: "2026-01-12T08:38:41Z",
    not_after: "2026-04-06T08:38:40Z",
};
pub const GOOGLE_2013: Fixture = Fixture {
    der: cert_file!("certificate-transparency/python/ct/crypto/testdata/google_cert.der"),
    sha1: "570fe2e3bfee986ed4a158aed8770f2e21614659",
    sha256: "6d4106b4544e9e5e7a0924ee86a577ffefaadae8b8dad73413a7d874747a81d1",
    serial: "605381F50001000088BD",
    cn: "*.google.com",
    not_before: "2013-05-22T15:49:04Z",
    not_after: "2013-10-31T23:59:59Z",
};
pub const LISTS: Fixture = Fixture {
    der: cert_file!("x509-parser/assets/certificate.der"),
    sha1: "5c1d97cc16c11a4d4fadbab82c9178be1b50b9f4",
    sha256: "8fa4cb4e938b5a855fb1497fa288ac55723e0109d0518b505481348dec0de471",
    serial: "32048030BBB3410F9093C57F2CB8308C805",
    cn: "lists.for-our.info",
    not_before: "2019-07-12T11:12:30Z",
    not_after: "2019-10-10T11:12:30Z",
};

pub const ALL: [&Fixture; 8] = [
    &GITHUB,
    &HN,
    &WIKIPEDIA,
    &RUSTLANG,
    &SERVO,
    &GOOGLE_WWW,
    &GOOGLE_2013,
    &LISTS,
];

/// A SHA-1 observed (Sonar-style, hash only) whose DER is not stored.
pub const HASH_ONLY: &str = "1111111111111111111111111111111111111111";

/// Addresses serving WIKIPEDIA: more than the default shared threshold (50).
pub const SHARED_IPS: u8 = 60;

pub fn sha1(hex_text: &str) -> Sha1 {
    hex::decode(hex_text).unwrap().try_into().unwrap()
}

pub fn t(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn day(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
}

fn o(
    ip: &str,
    port: u16,
    sha: &str,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
    n: i64,
) -> ObservationRow {
    ObservationRow {
        ip: ip.parse().unwrap(),
        port,
        sha1: sha1(sha),
        first_seen: first,
        last_seen: last,
        times_seen: n,
        source: "test".to_owned(),
    }
}

/// Every observation of the test database.
pub fn observations() -> Vec<ObservationRow> {
    let mut v = vec![
        o(
            "192.0.2.10",
            443,
            GITHUB.sha1,
            day(2024, 1, 1),
            day(2024, 3, 1),
            5,
        ),
        o(
            "192.0.2.10",
            443,
            HN.sha1,
            day(2024, 2, 1),
            day(2024, 6, 1),
            3,
        ),
        o(
            "192.0.2.10",
            443,
            WIKIPEDIA.sha1,
            day(2023, 1, 1),
            day(2023, 2, 1),
            1,
        ),
        o(
            "192.0.2.11",
            443,
            GITHUB.sha1,
            day(2024, 2, 15),
            day(2024, 4, 1),
            2,
        ),
        o(
            "192.0.2.11",
            8443,
            HN.sha1,
            day(2024, 7, 1),
            day(2024, 8, 1),
            1,
        ),
        o(
            "192.0.2.12",
            443,
            SERVO.sha1,
            day(2024, 1, 1),
            day(2024, 12, 1),
            7,
        ),
        o(
            "192.0.2.12",
            443,
            HN.sha1,
            day(2024, 3, 1),
            day(2024, 3, 2),
            1,
        ),
        o(
            "192.0.2.13",
            0,
            HASH_ONLY,
            day(2022, 5, 1),
            day(2022, 5, 2),
            1,
        ),
        o(
            "2001:db8::1",
            443,
            RUSTLANG.sha1,
            day(2024, 1, 1),
            day(2024, 2, 1),
            4,
        ),
        o(
            "2001:db8::2",
            443,
            RUSTLANG.sha1,
            day(2024, 1, 15),
            day(2024, 3, 1),
            4,
        ),
    ];
    for i in 1..=SHARED_IPS {
        v.push(o(
            &format!("198.51.100.{i}"),
            443,
            WIKIPEDIA.sha1,
            day(2024, 1, 1),
            day(2024, 1, 2),
            1,
        ));
    }
    // A block with many rows for paging: 20 addresses × 2 ports.
    for i in 100..120u32 {
        for port in [443, 8443] {
            v.push(o(
                &format!("192.0.2.{i}"),
                port,
                GOOGLE_WWW.sha1,
                day(2024, 1, 1) + chrono::Duration::days(i64::from(i)),
                day(2024, 6, 1) + chrono::Duration::days(i64::from(i)),
                1,
            ));
        }
    }
    v
}

/// A test database with every fixture certificate and observation.
pub async fn seeded() -> TestDb {
    let db = TestDb::new().await;
    let records: Vec<_> = ALL
        .iter()
        .map(|f| certhist_x509::parse_der(f.der))
        .collect();
    for (r, f) in records.iter().zip(ALL.iter()) {
        assert_eq!(
            hex::encode(r.sha1),
            f.sha1,
            "fixture parsed to the inventory's SHA-1"
        );
    }
    let store = db.store();
    let mut conn = store.conn().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    tx.write_certs(&records).await.unwrap();
    tx.write_observations(&observations()).await.unwrap();
    tx.commit().await.unwrap();
    db
}

pub fn app(db: &TestDb) -> Router {
    certhist_api::router(db.store(), ServeConfig::default())
}

pub fn app_with(db: &TestDb, config: ServeConfig) -> Router {
    certhist_api::router(db.store(), config)
}

/// GET through the router; the body parsed as JSON.
pub async fn get(app: &Router, uri: &str) -> (StatusCode, Value) {
    let (status, headers, body) = get_raw(app, uri, None).await;
    let json: Value = serde_json::from_slice(&body).unwrap_or_else(|e| {
        panic!(
            "{uri}: body is not JSON ({e}), content-type {:?}: {:?}",
            headers.get(header::CONTENT_TYPE),
            String::from_utf8_lossy(&body)
        )
    });
    (status, json)
}

/// GET through the router with an optional Accept header.
pub async fn get_raw(
    app: &Router,
    uri: &str,
    accept: Option<&str>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let mut req = Request::get(uri);
    if let Some(a) = accept {
        req = req.header(header::ACCEPT, a);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, headers, body.to_vec())
}

/// Asserts the one error shape and returns the detail.
pub fn error_detail(body: &Value) -> String {
    let errors = body["errors"].as_array().expect("errors array");
    assert_eq!(errors.len(), 1, "{body}");
    errors[0]["detail"]
        .as_str()
        .expect("detail string")
        .to_owned()
}

/// Follows `next_cursor` from `first_uri` (which must end in a query) and returns every item.
pub async fn all_pages(app: &Router, first_uri: &str) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut pages = 0;
    let mut uri = first_uri.to_owned();
    loop {
        let (status, body) = get(app, &uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        pages += 1;
        items.extend(body["items"].as_array().unwrap().iter().cloned());
        match body["next_cursor"].as_str() {
            Some(c) => uri = format!("{first_uri}&cursor={c}"),
            None => break,
        }
        assert!(pages < 1000, "paging does not end");
    }
    (items, pages)
}

pub fn ip_of(v: &Value) -> IpAddr {
    v["ip"].as_str().unwrap().parse().unwrap()
}
