//! The certificate history of an address or block.

use std::net::IpAddr;

use certhist_model::views::{IpHistoryItem, StubSightingItem};
use certhist_model::Sha1;
use ipnet::IpNet;
use postgres_types::Type;

use super::{check_limit, fixed, port_from, summary_from, TimeWindow};
use crate::stage::{timed, timed_sync, Stage};
use crate::{Conn, StoreError};

pub(crate) const IP_HISTORY: &str = include_str!("ip_history.sql");

/// Paging key of [`ip_history`]: (ip, port, sha1) of the last row seen (the SHA-1 stands for
/// its compact key, which orders the rows of one ip:port).
pub type IpHistoryKey = (IpAddr, u16, Sha1);

/// Certificates served by an address or block, overlapping the time window, in (ip, port) order
/// after `after`; the certificates of one ip:port in the order certhist first saw them (the
/// primary key's order, so a page costs its own rows however long the history).
pub async fn ip_history(
    conn: &Conn,
    net: &IpNet,
    window: &TimeWindow,
    after: Option<&IpHistoryKey>,
    limit: i64,
) -> Result<Vec<IpHistoryItem>, StoreError> {
    let limit = check_limit(limit)?;
    let net_text = net.trunc().to_string();
    let (after_ip, after_port, after_sha1) = match after {
        Some((ip, port, sha1)) => (Some(*ip), Some(i32::from(*port)), Some(sha1.to_vec())),
        None => (None, None, None),
    };
    // query_typed: one round trip, planned with the actual values (the `<<=` range on the
    // primary key needs the block as a constant at planning time).
    let rows = timed(
        Stage::Query,
        conn.client().query_typed(
            IP_HISTORY,
            &[
                (&net_text, Type::TEXT),
                (&window.since, Type::TIMESTAMPTZ),
                (&window.until, Type::TIMESTAMPTZ),
                (&after_ip, Type::INET),
                (&after_port, Type::INT4),
                (&after_sha1, Type::BYTEA),
                (&limit, Type::INT8),
            ],
        ),
    )
    .await?;
    let mut items = timed_sync(Stage::Decode, || {
        rows.iter()
            .map(|r| {
                Ok(IpHistoryItem {
                    ip: r.get(0),
                    port: port_from(r.get(1)),
                    sha1: fixed(r.get::<_, Vec<u8>>(2))?,
                    first_seen: r.get(3),
                    last_seen: r.get(4),
                    times_seen: r.get(5),
                    sources: r.get(6),
                    cert: if r.get::<_, bool>(7) {
                        Some(summary_from(r, 8)?)
                    } else {
                        None
                    },
                    names_seen: r.get(20),
                    tags: Vec::new(),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()
    })?;
    // The tags of the page's addresses (and blocks containing them) and certificates: one
    // statement for the page.
    let ips: Vec<IpAddr> = items.iter().map(|i| i.ip).collect();
    let sha1s: Vec<Sha1> = items.iter().map(|i| i.sha1).collect();
    let index = super::tags::tags_touching(conn, &ips, &sha1s, &[]).await?;
    if !index.is_empty() {
        for item in &mut items {
            item.tags = index.ip_and_cert(&item.ip, &item.sha1);
            if let Some(c) = item.cert.as_mut() {
                c.tags = index.cert(&c.sha1);
            }
        }
    }
    Ok(items)
}

/// Distinct observed addresses inside `net`, in order; at most `limit`.
pub async fn ips_in_net(conn: &Conn, net: &IpNet, limit: i64) -> Result<Vec<IpAddr>, StoreError> {
    let limit = check_limit(limit)?;
    let rows = conn
        .client()
        .query(
            "SELECT DISTINCT ip FROM sightings WHERE ip <<= $1::text::cidr ORDER BY ip LIMIT $2",
            &[&net.trunc().to_string(), &limit],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Paging key of [`stub_sightings`]: (ip, port, sha256) of the last row seen.
pub type StubSightingKey = (IpAddr, u16, certhist_model::Sha256);

/// Sightings of certificates known only by SHA-256 (sensor-log stubs) on an address or block,
/// overlapping the window, in (ip, port, sha256) order after `after`; at most `limit`, with the
/// stub's text (subject, issuer, serial, validity as the log gave them).
pub async fn stub_sightings(
    conn: &Conn,
    net: &IpNet,
    window: &TimeWindow,
    after: Option<&StubSightingKey>,
    limit: i64,
) -> Result<Vec<StubSightingItem>, StoreError> {
    let limit = check_limit(limit)?;
    let (after_ip, after_port, after_sha) = match after {
        Some((ip, port, sha)) => (Some(*ip), Some(i32::from(*port)), Some(sha.to_vec())),
        None => (None, None, None),
    };
    let rows = conn
        .client()
        .query_typed(
            "SELECT o.ip, o.port, o.sha256, o.first_seen, o.last_seen, o.times_seen, o.sources,
                    s.subject_cn, s.subject_dn, s.issuer_dn, s.serial_text, s.not_before,
                    s.not_after
             FROM observations_sha256 o
             LEFT JOIN certificate_stubs s ON s.sha256 = o.sha256
             WHERE o.ip <<= $1::text::cidr
               AND ($2::timestamptz IS NULL OR o.last_seen >= $2)
               AND ($3::timestamptz IS NULL OR o.first_seen <= $3)
               AND ($4::inet IS NULL OR (o.ip, o.port, o.sha256) > ($4, $5, $6))
             ORDER BY o.ip, o.port, o.sha256
             LIMIT $7",
            &[
                (&net.trunc().to_string(), Type::TEXT),
                (&window.since, Type::TIMESTAMPTZ),
                (&window.until, Type::TIMESTAMPTZ),
                (&after_ip, Type::INET),
                (&after_port, Type::INT4),
                (&after_sha, Type::BYTEA),
                (&limit, Type::INT8),
            ],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(StubSightingItem {
                stub: true,
                ip: r.get(0),
                port: port_from(r.get(1)),
                sha256: fixed(r.get::<_, Vec<u8>>(2))?,
                first_seen: r.get(3),
                last_seen: r.get(4),
                times_seen: r.get(5),
                sources: r.get(6),
                subject_cn: r.get(7),
                subject_dn: r.get(8),
                issuer_dn: r.get(9),
                serial: r.get(10),
                not_before: r.get(11),
                not_after: r.get(12),
            })
        })
        .collect()
}
