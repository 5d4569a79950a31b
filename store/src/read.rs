//! Read queries shared by the CLI and the HTTP API: IP history, certificate records, reverse
//! search (hosts of a certificate), field search and serial / CertID lookups.
//!
//! Lists are keyset-paged: each function takes the key of the last row of the previous page
//! (`after`) and a `limit`, and returns rows in a stable order, so no row is lost or repeated.

use std::net::IpAddr;

use certhist_model::{serde_hex, CertHash, CertName, NameKind, Serial, Sha1};
use chrono::{DateTime, Utc};
use ipnet::IpNet;
use postgres_types::{ToSql, Type};
use serde::Serialize;
use tokio_postgres::Row;

use crate::{Conn, StoreError};

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

/// A compact certificate description for lists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CertSummary {
    /// SHA-1 of the DER.
    #[serde(with = "serde_hex")]
    pub sha1: Sha1,
    /// SHA-256 of the DER.
    #[serde(with = "serde_hex")]
    pub sha256: [u8; 32],
    /// Serial (normalised).
    pub serial: Option<Serial>,
    /// Subject CN.
    pub subject_cn: Option<String>,
    /// Subject O.
    pub subject_o: Option<String>,
    /// Issuer CN.
    pub issuer_cn: Option<String>,
    /// Issuer O.
    pub issuer_o: Option<String>,
    /// Start of validity.
    pub not_before: Option<DateTime<Utc>>,
    /// End of validity.
    pub not_after: Option<DateTime<Utc>>,
    /// CA certificate.
    pub is_ca: bool,
    /// Precertificate (CT poison).
    pub is_precert: bool,
    /// Why the DER did not parse, when it did not.
    pub parse_error: Option<String>,
}

pub(crate) const SUMMARY_COLUMNS: &str =
    "c.sha1, c.sha256, c.serial, c.subject_cn, c.subject_o, c.issuer_cn, c.issuer_o, \
     c.not_before, c.not_after, c.is_ca, c.is_precert, c.parse_error";

pub(crate) fn summary_from(row: &Row, at: usize) -> Result<CertSummary, StoreError> {
    Ok(CertSummary {
        sha1: fixed(row.get::<_, Vec<u8>>(at))?,
        sha256: fixed(row.get::<_, Vec<u8>>(at + 1))?,
        serial: row
            .get::<_, Option<Vec<u8>>>(at + 2)
            .map(|b| Serial::from_be_bytes(&b)),
        subject_cn: row.get(at + 3),
        subject_o: row.get(at + 4),
        issuer_cn: row.get(at + 5),
        issuer_o: row.get(at + 6),
        not_before: row.get(at + 7),
        not_after: row.get(at + 8),
        is_ca: row.get(at + 9),
        is_precert: row.get(at + 10),
        parse_error: row.get(at + 11),
    })
}

pub(crate) fn fixed<const N: usize>(bytes: Vec<u8>) -> Result<[u8; N], StoreError> {
    let len = bytes.len();
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("stored hash has {len} bytes, expected {N}")))
}

/// One row of an IP's certificate history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IpHistoryRow {
    /// The address.
    pub ip: IpAddr,
    /// The port (0 = unknown).
    pub port: u16,
    /// Certificate SHA-1.
    #[serde(with = "serde_hex")]
    pub sha1: Sha1,
    /// First sighting.
    pub first_seen: DateTime<Utc>,
    /// Last sighting.
    pub last_seen: DateTime<Utc>,
    /// Number of sightings.
    pub times_seen: i64,
    /// Sources that reported it.
    pub sources: Vec<String>,
    /// The certificate, when its DER is stored.
    pub cert: Option<CertSummary>,
}

/// Paging key of [`ip_history`]: (ip, port, sha1) of the last row seen.
pub type IpHistoryKey = (IpAddr, u16, Sha1);

/// Certificates served by an address or block, overlapping the time window, in (ip, port, sha1)
/// order after `after`.
pub async fn ip_history(
    conn: &Conn,
    net: &IpNet,
    window: &TimeWindow,
    after: Option<&IpHistoryKey>,
    limit: i64,
) -> Result<Vec<IpHistoryRow>, StoreError> {
    let limit = check_limit(limit)?;
    let net_text = net.trunc().to_string();
    let (after_ip, after_port, after_sha1) = match after {
        Some((ip, port, sha1)) => (Some(*ip), Some(i32::from(*port)), Some(sha1.to_vec())),
        None => (None, None, None),
    };
    let sql = format!(
        "SELECT o.ip, o.port, o.sha1, o.first_seen, o.last_seen, o.times_seen, o.sources, c.sha1 IS NOT NULL, {SUMMARY_COLUMNS}
         FROM observations o
         LEFT JOIN certificates c ON c.sha1 = o.sha1
         WHERE o.ip <<= $1::text::cidr
           AND ($2::timestamptz IS NULL OR o.last_seen >= $2)
           AND ($3::timestamptz IS NULL OR o.first_seen <= $3)
           AND ($4::inet IS NULL OR (o.ip, o.port, o.sha1) > ($4, $5, $6))
         ORDER BY o.ip, o.port, o.sha1
         LIMIT $7"
    );
    // query_typed: one round trip, planned with the actual values (the `<<=` range on the
    // primary key needs the block as a constant at planning time).
    let rows = conn
        .client()
        .query_typed(
            &sql,
            &[
                (&net_text, Type::TEXT),
                (&window.since, Type::TIMESTAMPTZ),
                (&window.until, Type::TIMESTAMPTZ),
                (&after_ip, Type::INET),
                (&after_port, Type::INT4),
                (&after_sha1, Type::BYTEA),
                (&limit, Type::INT8),
            ],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(IpHistoryRow {
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
            })
        })
        .collect()
}

pub(crate) fn port_from(v: i32) -> u16 {
    u16::try_from(v).unwrap_or(0)
}

pub(crate) fn check_limit(limit: i64) -> Result<i64, StoreError> {
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(StoreError::InvalidInput(format!(
            "limit must be between 1 and {MAX_LIMIT}, got {limit}"
        )));
    }
    Ok(limit)
}

/// The full stored record of a certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CertDetail {
    /// The list fields.
    #[serde(flatten)]
    pub summary: CertSummary,
    /// The DER.
    #[serde(skip)]
    pub der: Vec<u8>,
    /// True when the DER INTEGER serial was negative.
    pub serial_negative: bool,
    /// Subject DN and parts.
    pub subject: certhist_model::DistinguishedName,
    /// Issuer DN and parts.
    pub issuer: certhist_model::DistinguishedName,
    /// SHA-256 of the SubjectPublicKeyInfo.
    #[serde(with = "serde_hex::option")]
    pub spki_sha256: Option<Vec<u8>>,
    /// SHA-1 of the public key bits (issuerKeyHash of its children).
    #[serde(with = "serde_hex::option")]
    pub key_sha1: Option<Vec<u8>>,
    /// Key algorithm.
    pub key_algorithm: Option<String>,
    /// Key size in bits.
    pub key_bits: Option<i32>,
    /// Signature algorithm.
    pub signature_algorithm: Option<String>,
    /// OCSP issuerNameHash.
    #[serde(with = "serde_hex::option")]
    pub issuer_name_hash: Option<Vec<u8>>,
    /// OCSP issuerKeyHash, when the issuer is known.
    #[serde(with = "serde_hex::option")]
    pub issuer_key_hash: Option<Vec<u8>>,
    /// authorityKeyIdentifier.
    #[serde(with = "serde_hex::option")]
    pub authority_key_id: Option<Vec<u8>>,
    /// subjectKeyIdentifier.
    #[serde(with = "serde_hex::option")]
    pub subject_key_id: Option<Vec<u8>>,
    /// Links precertificates and final certificates.
    #[serde(with = "serde_hex::option")]
    pub tbs_noct_sha256: Option<Vec<u8>>,
    /// When certhist first stored it.
    pub added_at: DateTime<Utc>,
    /// Names (CN, SAN, email), sorted.
    pub names: Vec<CertName>,
    /// Distinct IP addresses that served it.
    pub distinct_ips: i64,
    /// Other certificates with the same TBS apart from CT extensions (precert ↔ final cert).
    pub ct_siblings: Vec<CertSummary>,
    /// CT log entries of this certificate and of its siblings, oldest first.
    pub ct_entries: Vec<CtEntryInfo>,
    /// Earliest CT timestamp of the certificate or a sibling ("first seen in CT").
    pub first_seen_in_ct: Option<DateTime<Utc>>,
}

/// One CT log entry that logged a certificate (or its precertificate / final certificate).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CtEntryInfo {
    /// The log's URL.
    pub log_url: String,
    /// Index in the log.
    pub entry_index: i64,
    /// The entry's SCT timestamp.
    pub entry_timestamp: DateTime<Utc>,
    /// `x509` or `precert`.
    pub entry_type: String,
    /// SHA-1 of the logged DER (this certificate's, or a sibling's).
    #[serde(with = "serde_hex")]
    pub sha1: Sha1,
}

/// Looks a certificate up by SHA-1 or SHA-256.
pub async fn cert_by_hash(conn: &Conn, hash: &CertHash) -> Result<Option<CertDetail>, StoreError> {
    let (column, value) = match hash {
        CertHash::Sha1(h) => ("sha1", h.to_vec()),
        CertHash::Sha256(h) => ("sha256", h.to_vec()),
    };
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS}, c.der, c.serial_negative,
                c.subject_dn, c.subject_cn, c.subject_o, c.subject_ou, c.subject_c, c.subject_l, c.subject_st, c.subject_email,
                c.issuer_dn, c.issuer_cn, c.issuer_o, c.issuer_ou, c.issuer_c, c.issuer_l, c.issuer_st, c.issuer_email,
                c.spki_sha256, c.key_sha1, c.key_algorithm, c.key_bits, c.signature_algorithm,
                c.issuer_name_hash, c.issuer_key_hash, c.authority_key_id, c.subject_key_id, c.tbs_noct_sha256, c.added_at,
                (SELECT count(DISTINCT ip) FROM observations o WHERE o.sha1 = c.sha1)
         FROM certificates c WHERE c.{column} = $1"
    );
    let Some(r) = conn.client().query_opt(&sql, &[&value]).await? else {
        return Ok(None);
    };
    let summary = summary_from(&r, 0)?;
    let dn = |at: usize| certhist_model::DistinguishedName {
        dn: r.get(at),
        cn: r.get(at + 1),
        o: r.get(at + 2),
        ou: r.get(at + 3),
        c: r.get(at + 4),
        l: r.get(at + 5),
        st: r.get(at + 6),
        email: r.get(at + 7),
    };
    let names = cert_names(conn, &summary.sha1).await?;
    let tbs: Option<Vec<u8>> = r.get(39);
    let ct_siblings = match &tbs {
        Some(t) => {
            let sql = format!(
                "SELECT {SUMMARY_COLUMNS} FROM certificates c WHERE c.tbs_noct_sha256 = $1 AND c.sha1 <> $2 ORDER BY c.sha1 LIMIT 100"
            );
            let rows = conn
                .client()
                .query(&sql, &[t, &summary.sha1.to_vec()])
                .await?;
            rows.iter()
                .map(|row| summary_from(row, 0))
                .collect::<Result<_, _>>()?
        }
        None => Vec::new(),
    };
    let mut family: Vec<Vec<u8>> = vec![summary.sha1.to_vec()];
    family.extend(ct_siblings.iter().map(|c: &CertSummary| c.sha1.to_vec()));
    let ct_entries = conn
        .client()
        .query(
            "SELECT l.url, e.entry_index, e.entry_timestamp, e.entry_type, e.sha1
             FROM ct_entries e JOIN ct_logs l ON l.id = e.log_id
             WHERE e.sha1 = ANY($1)
             ORDER BY e.entry_timestamp, l.url, e.entry_index
             LIMIT 1000",
            &[&family],
        )
        .await?
        .iter()
        .map(|e| {
            Ok(CtEntryInfo {
                log_url: e.get(0),
                entry_index: e.get(1),
                entry_timestamp: e.get(2),
                entry_type: e.get(3),
                sha1: fixed(e.get::<_, Vec<u8>>(4))?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let first_seen_in_ct = ct_entries.first().map(|e| e.entry_timestamp);
    Ok(Some(CertDetail {
        ct_entries,
        first_seen_in_ct,
        der: r.get(12),
        serial_negative: r.get(13),
        subject: dn(14),
        issuer: dn(22),
        spki_sha256: r.get(30),
        key_sha1: r.get(31),
        key_algorithm: r.get(32),
        key_bits: r.get(33),
        signature_algorithm: r.get(34),
        issuer_name_hash: r.get(35),
        issuer_key_hash: r.get(36),
        authority_key_id: r.get(37),
        subject_key_id: r.get(38),
        tbs_noct_sha256: r.get(39),
        added_at: r.get(40),
        distinct_ips: r.get(41),
        names,
        ct_siblings,
        summary,
    }))
}

/// Names of a certificate, sorted by kind then name.
pub async fn cert_names(conn: &Conn, sha1: &Sha1) -> Result<Vec<CertName>, StoreError> {
    let rows = conn
        .client()
        .query(
            "SELECT kind, name, registered_domain FROM certificate_name_kinds WHERE sha1 = $1 ORDER BY kind, name",
            &[&sha1.to_vec()],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            Some(CertName {
                kind: NameKind::from_db(r.get::<_, &str>(0))?,
                name: r.get(1),
                registered_domain: r.get(2),
            })
        })
        .collect())
}

/// One address that served a certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HostRow {
    /// The address.
    pub ip: IpAddr,
    /// The port (0 = unknown).
    pub port: u16,
    /// First sighting.
    pub first_seen: DateTime<Utc>,
    /// Last sighting.
    pub last_seen: DateTime<Utc>,
    /// Number of sightings.
    pub times_seen: i64,
    /// Sources that reported it.
    pub sources: Vec<String>,
}

/// Reverse search: every ip:port that served the certificate, in (ip, port) order after `after`.
pub async fn cert_hosts(
    conn: &Conn,
    sha1: &Sha1,
    window: &TimeWindow,
    after: Option<(IpAddr, u16)>,
    limit: i64,
) -> Result<Vec<HostRow>, StoreError> {
    let limit = check_limit(limit)?;
    let (after_ip, after_port) = match after {
        Some((ip, port)) => (Some(ip), Some(i32::from(port))),
        None => (None, None),
    };
    let rows = conn
        .client()
        .query_typed(
            "SELECT ip, port, first_seen, last_seen, times_seen, sources
             FROM observations
             WHERE sha1 = $1
               AND ($2::timestamptz IS NULL OR last_seen >= $2)
               AND ($3::timestamptz IS NULL OR first_seen <= $3)
               AND ($4::inet IS NULL OR (ip, port) > ($4, $5))
             ORDER BY ip, port
             LIMIT $6",
            &[
                (&sha1.to_vec(), Type::BYTEA),
                (&window.since, Type::TIMESTAMPTZ),
                (&window.until, Type::TIMESTAMPTZ),
                (&after_ip, Type::INET),
                (&after_port, Type::INT4),
                (&limit, Type::INT8),
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| HostRow {
            ip: r.get(0),
            port: port_from(r.get(1)),
            first_seen: r.get(2),
            last_seen: r.get(3),
            times_seen: r.get(4),
            sources: r.get(5),
        })
        .collect())
}

/// Fields `search` can pivot on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum SearchField {
    /// Subject CN or any SAN.
    Name,
    /// Subject CN only.
    Cn,
    /// SAN entries (DNS, IP, email, URI).
    San,
    /// Email (subject emailAddress or SAN rfc822Name).
    Email,
    /// eTLD+1 of a name.
    RegisteredDomain,
    /// Serial number (any notation).
    Serial,
    /// Issuer CN.
    IssuerCn,
    /// Issuer O.
    IssuerO,
    /// Subject O.
    SubjectO,
    /// Subject OU.
    SubjectOu,
    /// SHA-256 of the SubjectPublicKeyInfo.
    Spki,
}

impl SearchField {
    /// Every field with its user-facing name.
    pub const ALL: [(&'static str, SearchField); 11] = [
        ("name", SearchField::Name),
        ("cn", SearchField::Cn),
        ("san", SearchField::San),
        ("email", SearchField::Email),
        ("registered-domain", SearchField::RegisteredDomain),
        ("serial", SearchField::Serial),
        ("issuer-cn", SearchField::IssuerCn),
        ("issuer-o", SearchField::IssuerO),
        ("subject-o", SearchField::SubjectO),
        ("subject-ou", SearchField::SubjectOu),
        ("spki", SearchField::Spki),
    ];

    /// Parses a user-facing field name.
    pub fn parse(text: &str) -> Result<SearchField, StoreError> {
        SearchField::ALL
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(text.trim()))
            .map(|(_, f)| *f)
            .ok_or_else(|| {
                let names: Vec<&str> = SearchField::ALL.iter().map(|(n, _)| *n).collect();
                StoreError::InvalidInput(format!(
                    "unknown search field {:?}; use one of: {}",
                    shorten(text),
                    names.join(", ")
                ))
            })
    }
}

/// How a search value matches.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MatchPattern {
    /// The whole value, case-insensitively.
    Exact(String),
    /// Values starting with this (`prefix*`).
    Prefix(String),
    /// Values ending with this (`*.example.com` → ends with `.example.com`).
    Suffix(String),
    /// Values containing this (`*contains*`).
    Contains(String),
    /// A POSIX regular expression (case-insensitive).
    Regex(String),
}

impl MatchPattern {
    /// Reads the CLI / API notation: `*.suffix`, `prefix*`, `*contains*`, otherwise exact.
    /// Wildcards elsewhere in the value are literal characters.
    pub fn parse(value: &str) -> Result<MatchPattern, StoreError> {
        let v = value.trim();
        let starts = v.starts_with('*');
        let ends = v.ends_with('*') && v.len() > 1;
        let pattern = match (starts, ends) {
            (true, true) => MatchPattern::Contains(v[1..v.len() - 1].to_owned()),
            (true, false) => MatchPattern::Suffix(v[1..].to_owned()),
            (false, true) => MatchPattern::Prefix(v[..v.len() - 1].to_owned()),
            (false, false) => MatchPattern::Exact(v.to_owned()),
        };
        let inner = match &pattern {
            MatchPattern::Exact(s)
            | MatchPattern::Prefix(s)
            | MatchPattern::Suffix(s)
            | MatchPattern::Contains(s)
            | MatchPattern::Regex(s) => s,
        };
        if inner.is_empty() {
            return Err(StoreError::InvalidInput(
                "search value is empty: give a value, `*.suffix`, `prefix*` or `*contains*`"
                    .to_owned(),
            ));
        }
        if matches!(pattern, MatchPattern::Contains(_)) && inner.chars().count() < 3 {
            return Err(StoreError::InvalidInput(
                "`*contains*` needs at least 3 characters between the stars".to_owned(),
            ));
        }
        Ok(pattern)
    }

    /// SQL condition on `expr` (already lower-cased), using parameter `$n`, and the parameter value.
    fn condition(&self, expr: &str, n: usize) -> (String, String) {
        match self {
            MatchPattern::Exact(s) => (format!("{expr} = ${n}"), s.to_lowercase()),
            MatchPattern::Prefix(s) => (
                format!("{expr} LIKE ${n}"),
                format!("{}%", like_escape(&s.to_lowercase())),
            ),
            MatchPattern::Suffix(s) => (
                format!("reverse({expr}) LIKE ${n}"),
                format!(
                    "{}%",
                    like_escape(&s.to_lowercase().chars().rev().collect::<String>())
                ),
            ),
            MatchPattern::Contains(s) => (
                format!("{expr} LIKE ${n}"),
                format!("%{}%", like_escape(&s.to_lowercase())),
            ),
            MatchPattern::Regex(s) => (format!("{expr} ~* ${n}"), s.clone()),
        }
    }

    /// A condition on `d.name` (a row of `names`) that every name whose registered domain
    /// matches this pattern meets (a registered domain is a suffix of its name), using the same
    /// parameter `$n` as [`MatchPattern::condition`] on `n.registered_domain`, so the search can
    /// go through the name indexes. `None` for a regex.
    fn registered_domain_names(&self, n: usize) -> Option<String> {
        Some(match self {
            // `$n` is the domain itself: names ending with it, reversed and LIKE-escaped in SQL
            // (folded to a constant prefix when the statement is planned with its value).
            MatchPattern::Exact(_) => format!(
                "reverse(d.name) LIKE replace(replace(replace(reverse(${n}), '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '%'"
            ),
            // `$n` is already a reversed LIKE prefix.
            MatchPattern::Suffix(_) => format!("reverse(d.name) LIKE ${n}"),
            // `$n` is 'text%': the name contains the text.
            MatchPattern::Prefix(_) => format!("d.name LIKE '%' || ${n}"),
            MatchPattern::Contains(_) => format!("d.name LIKE ${n}"),
            MatchPattern::Regex(_) => return None,
        })
    }
}

fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

fn shorten(s: &str) -> String {
    s.chars().take(60).collect()
}

/// One search hit: the matched value and the certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SearchHit {
    /// The value that matched (a name, an issuer CN, a serial in hex, …).
    pub matched: String,
    /// The certificate.
    pub cert: CertSummary,
}

/// Paging key of [`search`]: (matched value, sha1) of the last hit.
pub type SearchKey = (String, Sha1);

/// Validity-period filters of [`search_filtered`]; every bound is inclusive and `None` means
/// "no bound". Certificates without a parsed validity never match a set bound.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ValidityFilter {
    /// Valid at this instant: `not_before <= t <= not_after`.
    pub valid_at: Option<DateTime<Utc>>,
    /// `not_before >= t`.
    pub not_before_after: Option<DateTime<Utc>>,
    /// `not_before <= t`.
    pub not_before_before: Option<DateTime<Utc>>,
    /// `not_after >= t`.
    pub not_after_after: Option<DateTime<Utc>>,
    /// `not_after <= t`.
    pub not_after_before: Option<DateTime<Utc>>,
}

impl ValidityFilter {
    /// True when no bound is set.
    pub fn is_empty(&self) -> bool {
        *self == ValidityFilter::default()
    }

    /// SQL condition on the certificate alias `c`, using parameters `$n..$n+4` in field order.
    fn condition(c: &str, n: usize) -> String {
        format!(
            "(${n}::timestamptz IS NULL OR ({c}.not_before <= ${n} AND {c}.not_after >= ${n}))
             AND (${n1}::timestamptz IS NULL OR {c}.not_before >= ${n1})
             AND (${n2}::timestamptz IS NULL OR {c}.not_before <= ${n2})
             AND (${n3}::timestamptz IS NULL OR {c}.not_after >= ${n3})
             AND (${n4}::timestamptz IS NULL OR {c}.not_after <= ${n4})",
            n1 = n + 1,
            n2 = n + 2,
            n3 = n + 3,
            n4 = n + 4
        )
    }
}

/// Certificates whose `field` matches `pattern`, ordered by (matched value, sha1) after `after`.
pub async fn search(
    conn: &Conn,
    field: SearchField,
    pattern: &MatchPattern,
    after: Option<&SearchKey>,
    limit: i64,
) -> Result<Vec<SearchHit>, StoreError> {
    search_filtered(
        conn,
        field,
        pattern,
        &ValidityFilter::default(),
        after,
        limit,
    )
    .await
}

/// [`search`] narrowed to certificates whose validity period meets `validity`. A regular
/// expression the server rejects gives a database error with SQLSTATE 2201B
/// (`INVALID_REGULAR_EXPRESSION`).
pub async fn search_filtered(
    conn: &Conn,
    field: SearchField,
    pattern: &MatchPattern,
    validity: &ValidityFilter,
    after: Option<&SearchKey>,
    limit: i64,
) -> Result<Vec<SearchHit>, StoreError> {
    let limit = check_limit(limit)?;
    let v = validity;
    let bounds = [
        v.valid_at,
        v.not_before_after,
        v.not_before_before,
        v.not_after_after,
        v.not_after_before,
    ];
    let (after_value, after_sha1) = match after {
        Some((v, s)) => (Some(v.clone()), Some(s.to_vec())),
        None => (None, None),
    };
    // Parameters of the validity filter, appended after each branch's own.
    let bound_params = bounds.iter().map(|b| b as &(dyn ToSql + Sync));
    let rows = match field {
        SearchField::Serial
        | SearchField::Spki
        | SearchField::IssuerCn
        | SearchField::IssuerO
        | SearchField::SubjectO
        | SearchField::SubjectOu => {
            // One column of `certificates`: (matched expression, condition on $1, $1).
            let (matched, cond, first): (String, String, Box<dyn ToSql + Sync + Send>) = match field
            {
                SearchField::Serial | SearchField::Spki => {
                    let column = if field == SearchField::Serial {
                        "serial"
                    } else {
                        "spki_sha256"
                    };
                    (
                        format!("encode(c.{column}, 'hex')"),
                        format!("c.{column} = ANY($1)"),
                        Box::new(exact_hash_values(field, pattern)?),
                    )
                }
                _ => {
                    let column = match field {
                        SearchField::IssuerCn => "issuer_cn",
                        SearchField::IssuerO => "issuer_o",
                        SearchField::SubjectO => "subject_o",
                        _ => "subject_ou",
                    };
                    let expr = format!("lower(c.{column})");
                    let (cond, value) = pattern.condition(&expr, 1);
                    (expr, cond, Box::new(value))
                }
            };
            let sql = format!(
                "SELECT {matched} AS matched, {SUMMARY_COLUMNS}
                 FROM certificates c
                 WHERE {cond}
                   AND ($2::text IS NULL OR ({matched}, c.sha1) > ($2, $3))
                   AND {valid}
                 ORDER BY 1, c.sha1
                 LIMIT $4",
                valid = ValidityFilter::condition("c", 5)
            );
            let params: Vec<&(dyn ToSql + Sync)> = [
                first.as_ref() as &(dyn ToSql + Sync),
                &after_value,
                &after_sha1,
                &limit,
            ]
            .into_iter()
            .chain(bound_params)
            .collect();
            conn.client().query(&sql, &params).await?
        }
        SearchField::Name
        | SearchField::Cn
        | SearchField::San
        | SearchField::Email
        | SearchField::RegisteredDomain => {
            let kinds: &[NameKind] = match field {
                SearchField::Cn => &[NameKind::Cn],
                SearchField::San => &[NameKind::Dns, NameKind::Ip, NameKind::Email, NameKind::Uri],
                SearchField::Email => &[NameKind::Email],
                _ => &NameKind::ALL,
            };
            // certificate_names.kinds has one bit per kind the name appears as.
            let kinds: i16 = kinds.iter().fold(0, |m, k| m | k.bit());
            let expr = if field == SearchField::RegisteredDomain {
                "n.registered_domain"
            } else {
                "n.name"
            };
            // Suffix, substring and regex conditions (and the registered-domain prefilter) find
            // the distinct names in `names`, which has the reverse and trigram indexes; exact
            // and prefix ones go to certificate_names_name_idx directly.
            let (mut cond, value) = pattern.condition(expr, 1);
            if field == SearchField::RegisteredDomain {
                if let Some(names) = pattern.registered_domain_names(1) {
                    cond =
                        format!("{cond} AND n.name IN (SELECT d.name FROM names d WHERE {names})");
                }
            } else if matches!(
                pattern,
                MatchPattern::Suffix(_) | MatchPattern::Contains(_) | MatchPattern::Regex(_)
            ) {
                let (names, _) = pattern.condition("d.name", 1);
                cond = format!("n.name IN (SELECT d.name FROM names d WHERE {names})");
            }
            if validity.is_empty() {
                let sql = format!(
                    "SELECT h.matched, {SUMMARY_COLUMNS}
                     FROM (
                        SELECT DISTINCT {expr} AS matched, n.sha1
                        FROM certificate_names n
                        WHERE {cond} AND n.kinds & $2 <> 0
                          AND ($3::text IS NULL OR ({expr}, n.sha1) > ($3, $4))
                        ORDER BY 1, 2
                        LIMIT $5
                     ) h
                     JOIN certificates c ON c.sha1 = h.sha1
                     ORDER BY h.matched, c.sha1"
                );
                conn.client()
                    .query_typed(
                        &sql,
                        &[
                            (&value, Type::TEXT),
                            (&kinds, Type::INT2),
                            (&after_value, Type::TEXT),
                            (&after_sha1, Type::BYTEA),
                            (&limit, Type::INT8),
                        ],
                    )
                    .await?
            } else {
                let sql = format!(
                    "SELECT h.matched, {SUMMARY_COLUMNS}
                     FROM (
                        SELECT DISTINCT {expr} AS matched, n.sha1
                        FROM certificate_names n
                        JOIN certificates c ON c.sha1 = n.sha1
                        WHERE {cond} AND n.kinds & $2 <> 0
                          AND ($3::text IS NULL OR ({expr}, n.sha1) > ($3, $4))
                          AND {valid}
                        ORDER BY 1, 2
                        LIMIT $5
                     ) h
                     JOIN certificates c ON c.sha1 = h.sha1
                     ORDER BY h.matched, c.sha1",
                    valid = ValidityFilter::condition("c", 6)
                );
                let params: Vec<&(dyn ToSql + Sync)> = [
                    &value as &(dyn ToSql + Sync),
                    &kinds,
                    &after_value,
                    &after_sha1,
                    &limit,
                ]
                .into_iter()
                .chain(bound_params)
                .collect();
                conn.client().query(&sql, &params).await?
            }
        }
    };
    rows.iter()
        .map(|r| {
            Ok(SearchHit {
                matched: r.get(0),
                cert: summary_from(r, 1)?,
            })
        })
        .collect()
}

/// The exact byte values a serial or SPKI search matches (every reading of a serial).
fn exact_hash_values(
    field: SearchField,
    pattern: &MatchPattern,
) -> Result<Vec<Vec<u8>>, StoreError> {
    match (field, pattern) {
        (SearchField::Serial, MatchPattern::Exact(v)) => Ok(Serial::parse_candidates(v)
            .map_err(|e| StoreError::InvalidInput(e.to_string()))?
            .into_iter()
            .map(|s| s.as_bytes().to_vec())
            .collect()),
        (SearchField::Spki, MatchPattern::Exact(v)) => {
            let cleaned: String = v.chars().filter(|c| *c != ':').collect();
            match hex::decode(&cleaned) {
                Ok(b) if b.len() == 32 => Ok(vec![b]),
                _ => Err(StoreError::InvalidInput(format!(
                    "spki must be a SHA-256 in hex (64 digits), got {:?}",
                    shorten(v)
                ))),
            }
        }
        _ => Err(StoreError::InvalidInput(
            "serial and spki search take an exact value (no wildcards)".to_owned(),
        )),
    }
}

/// Certificates with one of these serials, optionally narrowed to an exact OCSP CertID
/// (issuer name hash and/or issuer key hash). Ordered by sha1 after `after`; at most `limit`.
pub async fn certs_by_serial(
    conn: &Conn,
    serials: &[Serial],
    issuer_name_hash: Option<&[u8]>,
    issuer_key_hash: Option<&[u8]>,
    after: Option<&Sha1>,
    limit: i64,
) -> Result<Vec<CertSummary>, StoreError> {
    let limit = check_limit(limit)?;
    let values: Vec<Vec<u8>> = serials.iter().map(|s| s.as_bytes().to_vec()).collect();
    let after = after.map(|a| a.to_vec());
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS} FROM certificates c
         WHERE c.serial = ANY($1)
           AND ($2::bytea IS NULL OR c.issuer_name_hash = $2)
           AND ($3::bytea IS NULL OR c.issuer_key_hash = $3 OR c.issuer_key_hash IS NULL)
           AND ($4::bytea IS NULL OR c.sha1 > $4)
         ORDER BY c.sha1 LIMIT $5"
    );
    let rows = conn
        .client()
        .query(
            &sql,
            &[&values, &issuer_name_hash, &issuer_key_hash, &after, &limit],
        )
        .await?;
    rows.iter().map(|r| summary_from(r, 0)).collect()
}

/// Row counts for `db status` and `/stats`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Certificates stored.
    pub certificates: i64,
    /// Of which stored with a parse error.
    pub unparsable: i64,
    /// Names.
    pub names: i64,
    /// Observations (ip, port, sha1).
    pub observations: i64,
    /// Distinct IPs observed.
    pub distinct_ips: i64,
    /// CT entries.
    pub ct_entries: i64,
    /// Cache entries.
    pub cache_entries: i64,
}

/// Exact row counts (fine for a local database; the API may prefer estimates on big ones).
pub async fn counts(conn: &Conn) -> Result<Counts, StoreError> {
    let r = conn
        .client()
        .query_one(
            "SELECT (SELECT count(*) FROM certificates),
                    (SELECT count(*) FROM certificates WHERE parse_error IS NOT NULL),
                    (SELECT count(*) FROM certificate_names),
                    (SELECT count(*) FROM observations),
                    (SELECT count(DISTINCT ip) FROM observations),
                    (SELECT count(*) FROM ct_entries),
                    (SELECT count(*) FROM cache_entries)",
            &[],
        )
        .await?;
    Ok(Counts {
        certificates: r.get(0),
        unparsable: r.get(1),
        names: r.get(2),
        observations: r.get(3),
        distinct_ips: r.get(4),
        ct_entries: r.get(5),
        cache_entries: r.get(6),
    })
}
