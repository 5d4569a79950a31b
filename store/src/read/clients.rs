//! Client contacts kept by `import pcap --keep-clients` (`client_contacts`): which clients were
//! seen talking TLS to a server address or block, and the certificate each presented.

use std::net::IpAddr;

use certhist_model::views::ClientContactItem;
use certhist_model::Sha1;
use ipnet::IpNet;
use postgres_types::Type;

use super::{check_limit, fixed, port_from, TimeWindow};
use crate::{Conn, StoreError};

/// Paging key of [`client_contacts`]: (server ip, server port, client ip, client certificate
/// SHA-1 or empty) of the last row seen.
pub type ClientContactKey = (IpAddr, u16, IpAddr, Option<Sha1>);

/// Clients seen contacting a server address or block (stored only by `import pcap
/// --keep-clients`), overlapping the window, in (server ip, server port, client ip, client
/// certificate) order after `after`; at most `limit`.
pub async fn client_contacts(
    conn: &Conn,
    net: &IpNet,
    window: &TimeWindow,
    after: Option<&ClientContactKey>,
    limit: i64,
) -> Result<Vec<ClientContactItem>, StoreError> {
    let limit = check_limit(limit)?;
    let (a_server, a_port, a_client, a_cert) = match after {
        Some((s, p, c, cert)) => (
            Some(*s),
            Some(i32::from(*p)),
            Some(*c),
            Some(cert.map(|h| h.to_vec()).unwrap_or_default()),
        ),
        None => (None, None, None, None),
    };
    let rows = conn
        .client()
        .query_typed(
            "SELECT server_ip, server_port, client_ip, client_cert_sha1, first_seen, last_seen,
                    times_seen, sources
             FROM client_contacts
             WHERE server_ip <<= $1::text::cidr
               AND ($2::timestamptz IS NULL OR last_seen >= $2)
               AND ($3::timestamptz IS NULL OR first_seen <= $3)
               AND ($4::inet IS NULL
                    OR (server_ip, server_port, client_ip, client_cert_sha1) > ($4, $5, $6, $7))
             ORDER BY server_ip, server_port, client_ip, client_cert_sha1
             LIMIT $8",
            &[
                (&net.trunc().to_string(), Type::TEXT),
                (&window.since, Type::TIMESTAMPTZ),
                (&window.until, Type::TIMESTAMPTZ),
                (&a_server, Type::INET),
                (&a_port, Type::INT4),
                (&a_client, Type::INET),
                (&a_cert, Type::BYTEA),
                (&limit, Type::INT8),
            ],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let cert: Vec<u8> = r.get(3);
            Ok(ClientContactItem {
                server_ip: r.get(0),
                server_port: port_from(r.get(1)),
                client_ip: r.get(2),
                client_cert_sha1: if cert.is_empty() {
                    None
                } else {
                    Some(fixed(cert)?)
                },
                first_seen: r.get(4),
                last_seen: r.get(5),
                times_seen: r.get(6),
                sources: r.get(7),
            })
        })
        .collect()
}
