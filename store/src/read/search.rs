//! Field search: certificates by name (exact, `*.suffix`, `prefix*`, `*contains*`, regex),
//! registered domain, serial, issuer or subject fields, or key.

use certhist_model::views::{MatchMode, SearchField, SearchItem};
use certhist_model::{NameKind, Serial, Sha1};
use chrono::{DateTime, Utc};
use postgres_types::{ToSql, Type};

use super::{check_limit, shorten, summary_from, SUMMARY_COLUMNS};
use crate::stage::{timed, timed_sync, Stage};
use crate::{Conn, StoreError};

/// Reads a user-facing search field name (`name`, `registered-domain`, …), case-insensitively.
pub fn parse_field(text: &str) -> Result<SearchField, StoreError> {
    SearchField::from_name(text).ok_or_else(|| {
        let names: Vec<&str> = SearchField::ALL.iter().map(|f| f.as_str()).collect();
        StoreError::InvalidInput(format!(
            "unknown search field {:?}; use one of: {}, tag",
            shorten(text),
            names.join(", ")
        ))
    })
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

/// Longest regular expression accepted, in characters.
pub const MAX_REGEX_CHARS: usize = 256;

impl MatchPattern {
    /// Reads `value` under `mode`: [`MatchMode::Auto`] reads the notation (see
    /// [`MatchPattern::parse`]); the explicit modes take the value literally.
    pub fn with_mode(mode: MatchMode, value: &str) -> Result<MatchPattern, StoreError> {
        let literal = value.trim();
        if literal.is_empty() {
            return Err(StoreError::InvalidInput("search value is empty".to_owned()));
        }
        Ok(match mode {
            MatchMode::Auto => MatchPattern::parse(value)?,
            MatchMode::Exact => MatchPattern::Exact(literal.to_owned()),
            MatchMode::Prefix => MatchPattern::Prefix(literal.to_owned()),
            MatchMode::Suffix => MatchPattern::Suffix(literal.to_owned()),
            MatchMode::Contains => {
                if literal.chars().count() < 3 {
                    return Err(StoreError::InvalidInput(
                        "`contains` needs at least 3 characters".to_owned(),
                    ));
                }
                MatchPattern::Contains(literal.to_owned())
            }
            MatchMode::Regex => {
                if literal.chars().count() > MAX_REGEX_CHARS {
                    return Err(StoreError::InvalidInput(format!(
                        "regular expression longer than {MAX_REGEX_CHARS} characters"
                    )));
                }
                MatchPattern::Regex(literal.to_owned())
            }
        })
    }

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
    pub(crate) fn condition(&self, expr: &str, n: usize) -> (String, String) {
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
) -> Result<Vec<SearchItem>, StoreError> {
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
) -> Result<Vec<SearchItem>, StoreError> {
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
            timed(Stage::Query, conn.client().query(&sql, &params)).await?
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
                timed(
                    Stage::Query,
                    conn.client().query_typed(
                        &sql,
                        &[
                            (&value, Type::TEXT),
                            (&kinds, Type::INT2),
                            (&after_value, Type::TEXT),
                            (&after_sha1, Type::BYTEA),
                            (&limit, Type::INT8),
                        ],
                    ),
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
                timed(Stage::Query, conn.client().query(&sql, &params)).await?
            }
        }
    };
    let mut items = timed_sync(Stage::Decode, || {
        rows.iter()
            .map(|r| {
                Ok(SearchItem {
                    matched: r.get(0),
                    cert: summary_from(r, 1)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()
    })?;
    super::tags::fill_summaries(conn, items.iter_mut().map(|i| &mut i.cert)).await?;
    Ok(items)
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

/// Which name a [`DnAttribute`] is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DnSide {
    /// The subject.
    Subject,
    /// The issuer.
    Issuer,
}

/// An attribute of a certificate's subject or issuer name that [`search`] has no index for
/// (the compatibility APIs search by them). The first five are stored columns; the others are
/// found in the stored RFC 4514 name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DnAttribute {
    /// countryName (column).
    Country,
    /// localityName (column).
    Locality,
    /// stateOrProvinceName (column).
    StateOrProvince,
    /// organizationalUnitName (column).
    OrganizationalUnit,
    /// emailAddress (column).
    Email,
    /// surname, 2.5.4.4 (in the name).
    Surname,
    /// givenName, 2.5.4.42 (in the name).
    GivenName,
    /// streetAddress, 2.5.4.9 (in the name).
    Street,
    /// serialNumber, 2.5.4.5 (in the name).
    SerialNumber,
}

/// Certificates whose subject or issuer `attribute` equals `value` (case-insensitively), in
/// sha1 order, at most `limit`. None of these has an index: on a large database a rare value
/// scans the table and may meet the statement timeout.
pub async fn search_dn_attribute(
    conn: &Conn,
    side: DnSide,
    attribute: DnAttribute,
    value: &str,
    limit: i64,
) -> Result<Vec<certhist_model::views::CertSummary>, StoreError> {
    let limit = check_limit(limit)?;
    let value = value.trim();
    if value.is_empty() {
        return Err(StoreError::InvalidInput("search value is empty".to_owned()));
    }
    let prefix = match side {
        DnSide::Subject => "subject",
        DnSide::Issuer => "issuer",
    };
    let column = |name: &str| {
        (
            format!("lower(c.{prefix}_{name}) = lower($1)"),
            value.to_owned(),
        )
    };
    // Attributes only in the RFC 4514 text: a case-insensitive regular expression for
    // `TYPE=value` between RDN separators, the value escaped as RFC 4514 §2.4 stores it and then
    // as a regular-expression literal.
    let in_name = |type_text: &str| {
        (
            format!("c.{prefix}_dn ~* $1"),
            format!(
                "(^|[,+]){}=({})([,+]|$)",
                regex_literal(type_text),
                regex_literal(&rfc4514_escape(value))
            ),
        )
    };
    let (condition, param) = match attribute {
        DnAttribute::Country => column("c"),
        DnAttribute::Locality => column("l"),
        DnAttribute::StateOrProvince => column("st"),
        DnAttribute::OrganizationalUnit => column("ou"),
        DnAttribute::Email => column("email"),
        DnAttribute::Surname => in_name("2.5.4.4"),
        DnAttribute::GivenName => in_name("2.5.4.42"),
        DnAttribute::Street => in_name("STREET"),
        DnAttribute::SerialNumber => in_name("2.5.4.5"),
    };
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS} FROM certificates c WHERE {condition} ORDER BY c.sha1 LIMIT $2"
    );
    let rows = conn
        .client()
        .query_typed(&sql, &[(&param, Type::TEXT), (&limit, Type::INT8)])
        .await?;
    rows.iter().map(|r| summary_from(r, 0)).collect()
}

/// A value as the RFC 4514 text of a stored name spells it (§2.4).
fn rfc4514_escape(value: &str) -> String {
    let last = value.chars().count().saturating_sub(1);
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        if matches!(c, '"' | '+' | ',' | ';' | '<' | '>' | '\\')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ')
        {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Text as a literal in a PostgreSQL regular expression: every character that is not a letter
/// or digit is backslash-escaped (PostgreSQL docs §9.7.3.3: `\` + a non-alphanumeric character
/// is that character).
fn regex_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if !c.is_alphanumeric() {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
