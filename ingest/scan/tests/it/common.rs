//! Helpers: fixture paths and direct SQL on the test database (the checks are independent of the
//! crate's own code).

use std::path::PathBuf;

use certhist_test_support::TestDb;
use chrono::{DateTime, Utc};

pub fn data(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/scans")
        .join(rel)
}

pub async fn client(db: &TestDb) -> tokio_postgres::Client {
    let (client, conn) = db.pg_config().connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

/// One observation row as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Obs {
    pub ip: String,
    pub port: i32,
    pub sha1: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub times_seen: i64,
    pub sources: Vec<String>,
}

pub async fn observations(c: &tokio_postgres::Client, ip: &str) -> Vec<Obs> {
    c.query(
        "SELECT host(ip), port, encode(sha1, 'hex'), first_seen, last_seen, times_seen, sources
         FROM observations WHERE ip = $1::text::inet ORDER BY port, sha1",
        &[&ip],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| Obs {
        ip: r.get(0),
        port: r.get(1),
        sha1: r.get(2),
        first_seen: r.get(3),
        last_seen: r.get(4),
        times_seen: r.get(5),
        sources: r.get(6),
    })
    .collect()
}

pub async fn cert_exists(c: &tokio_postgres::Client, sha1_hex: &str) -> bool {
    c.query_opt(
        "SELECT 1 FROM certificates WHERE sha1 = decode($1, 'hex')",
        &[&sha1_hex],
    )
    .await
    .unwrap()
    .is_some()
}

pub async fn scalar(c: &tokio_postgres::Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).await.unwrap().get(0)
}

// ---- hand-built TLS 1.2 server messages (RFC 5246), for the hostile and absurd peers

/// `n` as a TLS u24 (big-endian, 3 bytes).
pub fn u24(n: usize) -> [u8; 3] {
    let b = u32::try_from(n).unwrap().to_be_bytes();
    [b[1], b[2], b[3]]
}

/// A TLS 1.2 record (RFC 5246 §6.2.1) of content type 22 (handshake) holding `msg_type` with `body`
/// (§7.4).
pub fn handshake_record(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let mut msg = vec![msg_type];
    msg.extend(u24(body.len()));
    msg.extend(body);
    let mut rec = vec![22, 3, 3];
    rec.extend(u16::try_from(msg.len()).unwrap().to_be_bytes());
    rec.extend(msg);
    rec
}

/// ServerHello (§7.4.1.3): TLS 1.2, a fixed random (no RFC 8446 §4.1.3 downgrade marker), no
/// session id, TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, no compression, no extensions.
pub fn server_hello() -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend([0x42; 32]);
    b.push(0);
    b.extend([0xc0, 0x2b]);
    b.push(0);
    b.extend([0, 0]);
    handshake_record(2, &b)
}
