//! Read queries, by subject: the certificate history of addresses ([`mod@ip`]), the clients seen contacting them
//! ([`mod@clients`]), certificates and
//! their hosts ([`mod@certificate`]), field search ([`mod@search`]), serials and OCSP CertIDs
//! ([`mod@serials`]), overlap and graph expansion ([`mod@graph`]) table sizes ([`mod@stats`]) and tags and notes ([`mod@tags`]). The CLI,
//! the HTTP API and the web UI call the same functions, and they return the view types of
//! `certhist_model::views`, so no two outputs can disagree.
//!
//! Lists are keyset-paged: each function takes the key of the last row of the previous page
//! (`after`) and a `limit`, and returns rows in a stable order, so no row is lost or repeated.

pub mod accounts;
pub mod certificate;
pub mod clients;
pub mod graph;
pub mod ip;
pub mod search;
pub mod serials;
pub mod stats;
pub mod tags;

use chrono::{DateTime, Utc};
use tokio_postgres::Row;

pub use certhist_model::views::{Counts, SearchField};
pub use certificate::{
    cert_by_hash, cert_hosts, cert_names, cert_stub, certificate, certs_batch, details_batch,
    hosts_batch, names_batch, resolve_hash, stub_hosts, CertDetails, CertHost, CertNameRow,
    ResolvedHash, Sightings, StoredCert,
};
pub use clients::{client_contacts, ClientContactKey};
pub use graph::{
    distinct_ip_counts, edges_from_certs, edges_from_ips, expand, overlap_by_certs, overlap_by_ips,
    resolve_members, ExpandRequest, Seed,
};
pub use ip::{ip_history, ips_in_net, stub_sightings, IpHistoryKey, StubSightingKey};
pub use search::{
    search, search_dn_attribute, search_filtered, DnAttribute, DnSide, MatchPattern, SearchKey,
    ValidityFilter,
};
pub use serials::{
    certs_by_serial, certs_by_serials, issuers_by_name_hash, Issuer, SerialCandidate,
};
pub use stats::{counts, stats};
pub use tags::{
    cert_tag_details, notes_of, tagged, tags_of, tags_touching, target_tags, TagIndex, TaggedKey,
};

use crate::StoreError;

/// The most rows one call may ask for.
pub const MAX_LIMIT: i64 = 10_000;

/// An observation-period filter: rows whose [first_seen, last_seen] overlaps [since, until].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeWindow {
    /// Keep rows last seen at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Keep rows first seen at or before this time.
    pub until: Option<DateTime<Utc>>,
}

/// SQLSTATE codes callers match on (so they need not depend on tokio-postgres).
pub mod sqlstate {
    /// 2201B: the server rejected a regular expression.
    pub const INVALID_REGULAR_EXPRESSION: tokio_postgres::error::SqlState =
        tokio_postgres::error::SqlState::INVALID_REGULAR_EXPRESSION;
}

/// The columns of a [`certhist_model::views::CertSummary`] of certificate `c`, in the order
/// [`summary_from`] reads them. Every `.sql` file that selects a summary spells exactly this
/// list (a unit test checks).
pub(crate) const SUMMARY_COLUMNS: &str =
    "c.sha1, c.sha256, c.serial, c.subject_cn, c.subject_o, c.issuer_cn, c.issuer_o, \
     c.not_before, c.not_after, c.is_ca, c.is_precert, c.parse_error";

/// Reads the summary columns starting at column `at`.
pub(crate) fn summary_from(
    row: &Row,
    at: usize,
) -> Result<certhist_model::views::CertSummary, StoreError> {
    Ok(certhist_model::views::CertSummary {
        sha1: fixed(row.get::<_, Vec<u8>>(at))?,
        sha256: fixed(row.get::<_, Vec<u8>>(at + 1))?,
        serial: row
            .get::<_, Option<Vec<u8>>>(at + 2)
            .map(|b| certhist_model::Serial::from_be_bytes(&b)),
        subject_cn: row.get(at + 3),
        subject_o: row.get(at + 4),
        issuer_cn: row.get(at + 5),
        issuer_o: row.get(at + 6),
        not_before: row.get(at + 7),
        not_after: row.get(at + 8),
        is_ca: row.get(at + 9),
        is_precert: row.get(at + 10),
        parse_error: row.get(at + 11),
        tags: Vec::new(),
    })
}

/// A stored hash as a fixed-size array; another length means the database is damaged.
pub(crate) fn fixed<const N: usize>(bytes: Vec<u8>) -> Result<[u8; N], StoreError> {
    let len = bytes.len();
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("stored hash has {len} bytes, expected {N}")))
}

/// A stored port (`int4`, 0–65535 by a CHECK constraint).
pub(crate) fn port_from(v: i32) -> u16 {
    u16::try_from(v).unwrap_or(0)
}

/// `limit` within 1..=[`MAX_LIMIT`].
pub(crate) fn check_limit(limit: i64) -> Result<i64, StoreError> {
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(StoreError::InvalidInput(format!(
            "limit must be between 1 and {MAX_LIMIT}, got {limit}"
        )));
    }
    Ok(limit)
}

/// Cuts user text before it is quoted in an error.
pub(crate) fn shorten(s: &str) -> String {
    s.chars().take(60).collect()
}

/// The `.sql` files of this module that select a certificate summary.
#[cfg(test)]
const SQL_WITH_SUMMARY: &[(&str, &str)] = &[
    ("ip_history.sql", ip::IP_HISTORY),
    ("certificate.sql", certificate::CERTIFICATE),
    ("ct_siblings.sql", certificate::CT_SIBLINGS),
    ("overlap_by_ips.sql", graph::OVERLAP_BY_IPS),
    ("certs_by_serial.sql", serials::CERTS_BY_SERIAL),
    ("tagged.sql", tags::TAGGED),
    ("details_batch.sql", certificate::DETAILS_BATCH),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_summary_query_selects_the_summary_columns_in_order() {
        let normalised = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        let want = normalised(SUMMARY_COLUMNS);
        for (name, sql) in SQL_WITH_SUMMARY {
            assert!(
                normalised(sql).contains(&want),
                "{name} does not select the summary columns as summary_from reads them"
            );
        }
    }
}
