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
