//! Read queries the HTTP API needs beyond [`crate::read`]: hash resolution, per-connection
//! statement timeout, commonness (distinct IPs per certificate, counted with a cap), overlap of
//! addresses / certificates, the edges of graph expansion, CT and cache provenance of a
//! certificate, and cheap statistics.
//!
//! Commonness is computed at query time, never stored: `observations_sha1_idx` (sha1, ip, port)
//! lets Postgres count the distinct addresses of one certificate with an index-only scan that
//! stops after `cap` addresses, so the cost is bounded by the cap, not by how common the
//! certificate is.

use std::collections::HashMap;
use std::net::IpAddr;

use certhist_model::{serde_hex, CertHash, Sha1};
use chrono::{DateTime, Utc};
use ipnet::IpNet;
use serde::Serialize;

use postgres_types::Type;

use crate::read::{
    check_limit, fixed, port_from, summary_from, CertSummary, TimeWindow, SUMMARY_COLUMNS,
};
use crate::{Conn, StoreError};

/// What is known about a certificate hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResolvedHash {
    /// The certificate's SHA-1 (the observation key).
    pub sha1: Sha1,
    /// True when the DER is stored.
    pub has_cert: bool,
}

/// Resolves a SHA-1 or SHA-256 to the SHA-1 key. A SHA-256 resolves only through a stored
/// certificate; a SHA-1 also resolves when only observations mention it (hash-only sources).
/// `None` when nothing is known.
pub async fn resolve_hash(
    conn: &Conn,
    hash: &CertHash,
) -> Result<Option<ResolvedHash>, StoreError> {
    match hash {
        CertHash::Sha256(h) => {
            let row = conn
                .client()
                .query_typed(
                    "SELECT sha1 FROM certificates WHERE sha256 = $1",
                    &[(&h.to_vec(), Type::BYTEA)],
                )
                .await?
                .into_iter()
                .next();
            row.map(|r| {
                Ok(ResolvedHash {
                    sha1: fixed(r.get::<_, Vec<u8>>(0))?,
                    has_cert: true,
                })
            })
            .transpose()
        }
        CertHash::Sha1(h) => {
            let r = conn
                .client()
                .query_typed(
                    "SELECT EXISTS (SELECT 1 FROM certificates WHERE sha1 = $1),
                            EXISTS (SELECT 1 FROM observations WHERE sha1 = $1)",
                    &[(&h.to_vec(), Type::BYTEA)],
                )
                .await?
                .into_iter()
                .next()
                .ok_or_else(|| StoreError::Corrupt("no row from EXISTS".to_owned()))?;
            let (has_cert, observed): (bool, bool) = (r.get(0), r.get(1));
            Ok((has_cert || observed).then_some(ResolvedHash { sha1: *h, has_cert }))
        }
    }
}

/// Distinct addresses that served each certificate, counting at most `cap` per certificate (a
/// result equal to `cap` means "at least `cap`"). Certificates never observed count 0.
pub async fn distinct_ip_counts(
    conn: &Conn,
    sha1s: &[Sha1],
    cap: i64,
) -> Result<HashMap<Sha1, i64>, StoreError> {
    if sha1s.is_empty() {
        return Ok(HashMap::new());
    }
    let keys: Vec<Vec<u8>> = sha1s.iter().map(|s| s.to_vec()).collect();
    let rows = conn
        .client()
        .query(
            "SELECT s.sha1,
                    (SELECT count(*) FROM (SELECT DISTINCT o.ip FROM observations o
                                           WHERE o.sha1 = s.sha1 LIMIT $2) d)
             FROM unnest($1::bytea[]) AS s(sha1)",
            &[&keys, &cap.max(1)],
        )
        .await?;
    rows.iter()
        .map(|r| Ok((fixed(r.get::<_, Vec<u8>>(0))?, r.get::<_, i64>(1))))
        .collect()
}

/// One member's period in an overlap: when it was seen with the shared key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MemberPeriod {
    /// Earliest sighting (over all ports).
    pub first_seen: DateTime<Utc>,
    /// Latest sighting (over all ports).
    pub last_seen: DateTime<Utc>,
    /// Sightings summed over ports.
    pub times_seen: i64,
}

/// A certificate shared by every requested address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SharedCert {
    /// The certificate's SHA-1.
    #[serde(with = "serde_hex")]
    pub sha1: Sha1,
    /// Each address's period, in the order of the addresses asked for.
    pub periods: Vec<(IpAddr, MemberPeriod)>,
    /// The stored certificate, when its DER is known.
    pub cert: Option<CertSummary>,
}

/// An address shared by every requested certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SharedIp {
    /// The address.
    pub ip: IpAddr,
    /// Each certificate's period on this address, in the order of the certificates asked for.
    pub periods: Vec<(Sha1, MemberPeriod)>,
}

fn member_periods<K: Copy>(
    keys: Vec<K>,
    firsts: Vec<DateTime<Utc>>,
    lasts: Vec<DateTime<Utc>>,
    counts: Vec<i64>,
) -> Vec<(K, MemberPeriod)> {
    keys.into_iter()
        .zip(firsts)
        .zip(lasts)
        .zip(counts)
        .map(|(((k, first_seen), last_seen), times_seen)| {
            (
                k,
                MemberPeriod {
                    first_seen,
                    last_seen,
                    times_seen,
                },
            )
        })
        .collect()
}

/// Certificates served by every address in `ips` (distinct; at least 2) within `window`, in
/// sha1 order after `after`.
pub async fn overlap_by_ips(
    conn: &Conn,
    ips: &[IpAddr],
    window: &TimeWindow,
    after: Option<&Sha1>,
    limit: i64,
) -> Result<Vec<SharedCert>, StoreError> {
    let limit = check_limit(limit)?;
    let n = i64::try_from(ips.len()).unwrap_or(i64::MAX);
    let after = after.map(|s| s.to_vec());
    let sql = format!(
        "WITH per AS (
            SELECT o.sha1, o.ip, min(o.first_seen) AS f, max(o.last_seen) AS l, sum(o.times_seen)::bigint AS t
            FROM observations o
            WHERE o.ip = ANY($1::inet[])
              AND ($2::timestamptz IS NULL OR o.last_seen >= $2)
              AND ($3::timestamptz IS NULL OR o.first_seen <= $3)
              AND ($5::bytea IS NULL OR o.sha1 > $5)
            GROUP BY o.sha1, o.ip
         ), shared AS (
            SELECT sha1, array_agg(ip ORDER BY ip) AS ips, array_agg(f ORDER BY ip) AS fs,
                   array_agg(l ORDER BY ip) AS ls, array_agg(t ORDER BY ip) AS ts
            FROM per GROUP BY sha1 HAVING count(*) = $4
            ORDER BY sha1 LIMIT $6
         )
         SELECT s.sha1, s.ips, s.fs, s.ls, s.ts, c.sha1 IS NOT NULL, {SUMMARY_COLUMNS}
         FROM shared s LEFT JOIN certificates c ON c.sha1 = s.sha1
         ORDER BY s.sha1"
    );
    let rows = conn
        .client()
        .query(
            &sql,
            &[&ips, &window.since, &window.until, &n, &after, &limit],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(SharedCert {
                sha1: fixed(r.get::<_, Vec<u8>>(0))?,
                periods: member_periods(r.get(1), r.get(2), r.get(3), r.get(4)),
                cert: if r.get::<_, bool>(5) {
                    Some(summary_from(r, 6)?)
                } else {
                    None
                },
            })
        })
        .collect()
}

/// Addresses that served every certificate in `sha1s` (distinct; at least 2) within `window`,
/// in address order after `after`.
pub async fn overlap_by_certs(
    conn: &Conn,
    sha1s: &[Sha1],
    window: &TimeWindow,
    after: Option<IpAddr>,
    limit: i64,
) -> Result<Vec<SharedIp>, StoreError> {
    let limit = check_limit(limit)?;
    let n = i64::try_from(sha1s.len()).unwrap_or(i64::MAX);
    let keys: Vec<Vec<u8>> = sha1s.iter().map(|s| s.to_vec()).collect();
    let rows = conn
        .client()
        .query(
            "WITH per AS (
                SELECT o.ip, o.sha1, min(o.first_seen) AS f, max(o.last_seen) AS l, sum(o.times_seen)::bigint AS t
                FROM observations o
                WHERE o.sha1 = ANY($1::bytea[])
                  AND ($2::timestamptz IS NULL OR o.last_seen >= $2)
                  AND ($3::timestamptz IS NULL OR o.first_seen <= $3)
                  AND ($5::inet IS NULL OR o.ip > $5)
                GROUP BY o.ip, o.sha1
             )
             SELECT ip, array_agg(sha1 ORDER BY sha1), array_agg(f ORDER BY sha1),
                    array_agg(l ORDER BY sha1), array_agg(t ORDER BY sha1)
             FROM per GROUP BY ip HAVING count(*) = $4
             ORDER BY ip LIMIT $6",
            &[&keys, &window.since, &window.until, &n, &after, &limit],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let sha1s: Vec<Vec<u8>> = r.get(1);
            let sha1s = sha1s
                .into_iter()
                .map(fixed)
                .collect::<Result<Vec<Sha1>, _>>()?;
            Ok(SharedIp {
                ip: r.get(0),
                periods: member_periods(sha1s, r.get(2), r.get(3), r.get(4)),
            })
        })
        .collect()
}

/// An IP ↔ certificate edge: the certificate was served by the address (over all ports).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Edge {
    /// The address.
    pub ip: IpAddr,
    /// The certificate.
    #[serde(with = "serde_hex")]
    pub sha1: Sha1,
    /// Ports it was seen on (0 = unknown).
    pub ports: Vec<u16>,
    /// Earliest sighting.
    pub first_seen: DateTime<Utc>,
    /// Latest sighting.
    pub last_seen: DateTime<Utc>,
    /// Sightings summed over ports.
    pub times_seen: i64,
}

fn edge_from(r: &tokio_postgres::Row) -> Result<Edge, StoreError> {
    let ports: Vec<i32> = r.get(2);
    Ok(Edge {
        ip: r.get(0),
        sha1: fixed(r.get::<_, Vec<u8>>(1))?,
        ports: ports.into_iter().map(port_from).collect(),
        first_seen: r.get(3),
        last_seen: r.get(4),
        times_seen: r.get(5),
    })
}

/// Edges from these addresses to the certificates they served, in (ip, sha1) order; at most
/// `limit` rows.
pub async fn edges_from_ips(
    conn: &Conn,
    ips: &[IpAddr],
    window: &TimeWindow,
    limit: i64,
) -> Result<Vec<Edge>, StoreError> {
    let limit = check_limit(limit)?;
    let rows = conn
        .client()
        .query(
            "SELECT ip, sha1, array_agg(port ORDER BY port), min(first_seen), max(last_seen), sum(times_seen)::bigint
             FROM observations
             WHERE ip = ANY($1::inet[])
               AND ($2::timestamptz IS NULL OR last_seen >= $2)
               AND ($3::timestamptz IS NULL OR first_seen <= $3)
             GROUP BY ip, sha1 ORDER BY ip, sha1 LIMIT $4",
            &[&ips, &window.since, &window.until, &limit],
        )
        .await?;
    rows.iter().map(edge_from).collect()
}

/// Edges from these certificates to the addresses that served them, in (sha1, ip) order; at
/// most `limit` rows.
pub async fn edges_from_certs(
    conn: &Conn,
    sha1s: &[Sha1],
    window: &TimeWindow,
    limit: i64,
) -> Result<Vec<Edge>, StoreError> {
    let limit = check_limit(limit)?;
    let keys: Vec<Vec<u8>> = sha1s.iter().map(|s| s.to_vec()).collect();
    let rows = conn
        .client()
        .query(
            "SELECT ip, sha1, array_agg(port ORDER BY port), min(first_seen), max(last_seen), sum(times_seen)::bigint
             FROM observations
             WHERE sha1 = ANY($1::bytea[])
               AND ($2::timestamptz IS NULL OR last_seen >= $2)
               AND ($3::timestamptz IS NULL OR first_seen <= $3)
             GROUP BY sha1, ip ORDER BY sha1, ip LIMIT $4",
            &[&keys, &window.since, &window.until, &limit],
        )
        .await?;
    rows.iter().map(edge_from).collect()
}

/// Distinct observed addresses inside `net`, in order; at most `limit`.
pub async fn ips_in_net(conn: &Conn, net: &IpNet, limit: i64) -> Result<Vec<IpAddr>, StoreError> {
    let limit = check_limit(limit)?;
    let rows = conn
        .client()
        .query(
            "SELECT DISTINCT ip FROM observations WHERE ip <<= $1::text::cidr ORDER BY ip LIMIT $2",
            &[&net.trunc().to_string(), &limit],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// A CryptnetUrlCache / certutil artifact whose OCSP CertID names a certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CacheEntryInfo {
    /// Collection label (host or case).
    pub collection: String,
    /// The URL fetched.
    pub url: String,
    /// ocsp | crl | cert | cab | other.
    pub kind: String,
    /// When the machine downloaded it.
    pub downloaded_at: Option<DateTime<Utc>>,
    /// HTTP Last-Modified.
    pub last_modified: Option<DateTime<Utc>>,
    /// OCSP certStatus when the response was in the cache.
    pub ocsp_status: Option<String>,
    /// OCSP thisUpdate.
    pub this_update: Option<DateTime<Utc>>,
    /// OCSP nextUpdate.
    pub next_update: Option<DateTime<Utc>>,
}

/// Cache entries whose CertID (serial + issuer name hash) is this certificate's; at most `limit`.
pub async fn cache_entries_of(
    conn: &Conn,
    sha1: &Sha1,
    limit: i64,
) -> Result<Vec<CacheEntryInfo>, StoreError> {
    let limit = check_limit(limit)?;
    let rows = conn
        .client()
        .query(
            "SELECT e.collection, e.url, e.kind, e.downloaded_at, e.last_modified, e.ocsp_status,
                    e.this_update, e.next_update
             FROM certificates c
             JOIN cache_entries e ON e.serial = c.serial AND e.issuer_name_hash = c.issuer_name_hash
             WHERE c.sha1 = $1
             ORDER BY e.collection, e.url, e.cert_index LIMIT $2",
            &[&sha1.to_vec(), &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| CacheEntryInfo {
            collection: r.get(0),
            url: r.get(1),
            kind: r.get(2),
            downloaded_at: r.get(3),
            last_modified: r.get(4),
            ocsp_status: r.get(5),
            this_update: r.get(6),
            next_update: r.get(7),
        })
        .collect())
}

/// Table sizes for `/stats`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// True when some figure is the planner's estimate (tables at or above the exact-count
    /// threshold); false when every figure is an exact count.
    pub estimated: bool,
    /// Certificates stored.
    pub certificates: i64,
    /// Certificate names.
    pub names: i64,
    /// Observations (ip, port, sha1).
    pub observations: i64,
    /// Distinct addresses observed.
    pub distinct_ips: i64,
    /// CT entries.
    pub ct_entries: i64,
    /// Cache entries.
    pub cache_entries: i64,
}

/// Table sizes: exact counts for tables the planner estimates below `exact_below` rows (or has
/// never analysed), otherwise the estimate (`pg_class.reltuples`, `pg_stats.n_distinct`), so
/// the call stays cheap on a database of any size.
pub async fn stats(conn: &Conn, exact_below: i64) -> Result<Stats, StoreError> {
    let est = conn
        .client()
        .query_one(
            "SELECT (SELECT reltuples::bigint FROM pg_class WHERE oid = 'certificates'::regclass),
                    (SELECT reltuples::bigint FROM pg_class WHERE oid = 'certificate_names'::regclass),
                    (SELECT reltuples::bigint FROM pg_class WHERE oid = 'observations'::regclass),
                    (SELECT reltuples::bigint FROM pg_class WHERE oid = 'ct_entries'::regclass),
                    (SELECT reltuples::bigint FROM pg_class WHERE oid = 'cache_entries'::regclass),
                    (SELECT n_distinct::float8 FROM pg_stats
                      WHERE schemaname = current_schema() AND tablename = 'observations' AND attname = 'ip')",
            &[],
        )
        .await?;
    let mut estimated = false;
    let mut figure = |estimate: i64, table: &str| {
        let exact = estimate < exact_below;
        if !exact {
            estimated = true;
        }
        (exact, estimate, table.to_owned())
    };
    let parts = [
        figure(est.get(0), "certificates"),
        figure(est.get(1), "certificate_names"),
        figure(est.get(2), "observations"),
        figure(est.get(3), "ct_entries"),
        figure(est.get(4), "cache_entries"),
    ];
    let mut values = [0i64; 5];
    for (slot, (exact, estimate, table)) in values.iter_mut().zip(parts.iter()) {
        *slot = if *exact {
            // `table` is one of the fixed names above, never user input.
            conn.client()
                .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                .await?
                .get(0)
        } else {
            *estimate
        };
    }
    let observations_exact = parts[2].0;
    let distinct_ips = if observations_exact {
        conn.client()
            .query_one("SELECT count(DISTINCT ip) FROM observations", &[])
            .await?
            .get(0)
    } else {
        let n_distinct: Option<f64> = est.get(5);
        match n_distinct {
            Some(d) if d < 0.0 => (-d * values[2] as f64) as i64,
            Some(d) => d as i64,
            None => 0,
        }
    };
    Ok(Stats {
        estimated,
        certificates: values[0],
        names: values[1],
        observations: values[2],
        distinct_ips,
        ct_entries: values[3],
        cache_entries: values[4],
    })
}

/// SQLSTATE codes callers match on (so they need not depend on tokio-postgres).
pub mod sqlstate {
    /// 2201B: the server rejected a regular expression.
    pub const INVALID_REGULAR_EXPRESSION: tokio_postgres::error::SqlState =
        tokio_postgres::error::SqlState::INVALID_REGULAR_EXPRESSION;
}
