//! PassiveTotal v2 SSL (`/compat/pt/v2/ssl-certificate…`), as `passivetotal` 2.5.9's
//! `SslRequest` and its analyzer call it: details (`ssl-certificate?query=`), history
//! (`…/history?query=`, by address or SHA-1), field search (`…/search?query=&field=`) and keyword
//! search (`…/search/keyword?query=`). Answers are `{"results": […], "success": true}`; no data is
//! an empty `results` (never the upstream's "N/A" record, Cortex-Analyzers#513). Errors use
//! PassiveTotal's envelope `{"message", "error": {"http_code", "message", "developer_message"}}`.
//!
//! Field names and formats follow the upstream fixtures (passivetotal/python_api
//! `tests/resources/v2/ssl-certificate*.json`): history dates are `YYYY-MM-DD`, details carry
//! `issueDate`/`expirationDate` as `Apr 28 00:00:00 2015 GMT` and `firstSeen`/`lastSeen` as epoch
//! milliseconds; `issuerDate` repeats `issueDate` because the analyzer reads that name.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use certhist_model::views::{MatchMode, Role, SearchField};
use certhist_model::{CertHash, NameKind, Serial, Sha1};
use certhist_store::read::{self, CertDetails, DnAttribute, DnSide, MatchPattern, TimeWindow};
use chrono::{DateTime, Utc};
use ipnet::IpNet;
use serde_json::{json, Value};

use super::{attributes, first_value, message_of, parse_hash, serial_decimal, MAX_ROWS};
use crate::auth::Principal;
use crate::error::{shorten, ApiError};
use crate::params::Params;
use crate::{json, AppState};

/// The fields `SslRequest.search_ssl_certificate_by_field` accepts (passivetotal 2.5.9
/// `common/const.py` `SSL_VALID_FIELDS`).
pub(crate) const VALID_FIELDS: [&str; 30] = [
    "issuerSurname",
    "subjectOrganizationName",
    "issuerCountry",
    "issuerOrganizationUnitName",
    "fingerprint",
    "subjectOrganizationUnitName",
    "serialNumber",
    "subjectEmailAddress",
    "subjectCountry",
    "issuerGivenName",
    "subjectCommonName",
    "issuerCommonName",
    "issuerStateOrProvinceName",
    "issuerProvince",
    "subjectStateOrProvinceName",
    "sha1",
    "sslVersion",
    "subjectStreetAddress",
    "subjectSerialNumber",
    "issuerOrganizationName",
    "subjectSurname",
    "subjectLocalityName",
    "issuerStreetAddress",
    "issuerLocalityName",
    "subjectGivenName",
    "subjectProvince",
    "issuerSerialNumber",
    "issuerEmailAddress",
    "subjectAlternativeName",
    "name",
];

/// An error in PassiveTotal's envelope.
#[derive(Debug)]
pub(crate) struct PtError {
    status: StatusCode,
    message: String,
}

impl PtError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        PtError {
            status,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        PtError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl From<ApiError> for PtError {
    fn from(e: ApiError) -> Self {
        PtError::new(e.status, message_of(&e))
    }
}

impl From<certhist_store::StoreError> for PtError {
    fn from(e: certhist_store::StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for PtError {
    fn into_response(self) -> Response {
        let body = json!({
            "message": self.message,
            "error": {
                "http_code": self.status.as_u16(),
                "message": self.message,
                "developer_message": self.message,
            },
        });
        let mut resp = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"certhist\""),
            );
        }
        resp
    }
}

type PtResult = Result<Response, PtError>;

fn reader(principal: Result<Principal, ApiError>) -> Result<(), PtError> {
    principal?.require(Role::Reader)?;
    Ok(())
}

/// The `query` parameter (required). Other parameters the client passes through
/// (`compact_record`, `type`, …) are accepted and ignored, as upstream did.
fn query_param(raw: Option<&str>) -> Result<(String, Params), PtError> {
    let mut p = Params::parse(raw)?;
    let q = p
        .one("query")?
        .map(|q| q.trim().to_owned())
        .filter(|q| !q.is_empty())
        .ok_or_else(|| PtError::bad("missing required parameter: query"))?;
    Ok((q, p))
}

/// What a `query` value names.
enum Subject {
    Ip(IpAddr),
    Cert(Sha1),
    /// A well-formed hash nobody stored or observed.
    Unknown,
}

async fn subject_of(conn: &certhist_store::Conn, q: &str) -> Result<Subject, PtError> {
    if let Ok(ip) = q.parse::<IpAddr>() {
        return Ok(Subject::Ip(ip));
    }
    let Some(hash) = parse_hash(q) else {
        return Err(PtError::bad(format!(
            "query {:?} is not an IP address or a SHA-1 certificate hash",
            shorten(q)
        )));
    };
    Ok(match read::resolve_hash(conn, &hash).await? {
        Some(r) => Subject::Cert(r.sha1),
        None => Subject::Unknown,
    })
}

/// `GET /compat/pt/v2/ssl-certificate?query=SHA1|IP`: the full record of a certificate (or of
/// the certificates an address served, at most the server's page size), most recently seen
/// first.
pub(crate) async fn details(
    State(state): State<AppState>,
    principal: Result<Principal, ApiError>,
    RawQuery(raw): RawQuery,
) -> PtResult {
    reader(principal)?;
    let (q, _) = query_param(raw.as_deref())?;
    let conn = state.read_conn().await?;
    let sha1s = match subject_of(&conn, &q).await? {
        Subject::Cert(sha1) => vec![sha1],
        Subject::Unknown => Vec::new(),
        Subject::Ip(ip) => {
            let rows = read::ip_history(
                &conn,
                &IpNet::from(ip),
                &TimeWindow::default(),
                None,
                MAX_ROWS,
            )
            .await?;
            // The most recently seen certificates, at most a page of them.
            let mut last: BTreeMap<Sha1, DateTime<Utc>> = BTreeMap::new();
            for r in &rows {
                let e = last.entry(r.sha1).or_insert(r.last_seen);
                *e = (*e).max(r.last_seen);
            }
            let mut by_recency: Vec<(Sha1, DateTime<Utc>)> = last.into_iter().collect();
            by_recency.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            by_recency.truncate(usize::try_from(state.config.max_page_size).unwrap_or(1000));
            by_recency.into_iter().map(|(s, _)| s).collect()
        }
    };
    let results = records(&conn, &sha1s).await?;
    Ok(json(&json!({ "results": results, "success": true })))
}

/// `GET /compat/pt/v2/ssl-certificate/history?query=SHA1|IP`: by address, one record per
/// certificate it served; by certificate, one record with every address that served it.
pub(crate) async fn history(
    State(state): State<AppState>,
    principal: Result<Principal, ApiError>,
    RawQuery(raw): RawQuery,
) -> PtResult {
    reader(principal)?;
    let (q, _) = query_param(raw.as_deref())?;
    let conn = state.read_conn().await?;
    let day = certhist_model::ymd;
    let results: Vec<Value> = match subject_of(&conn, &q).await? {
        Subject::Unknown => Vec::new(),
        Subject::Ip(ip) => {
            let rows = read::ip_history(
                &conn,
                &IpNet::from(ip),
                &TimeWindow::default(),
                None,
                MAX_ROWS,
            )
            .await?;
            let mut per_cert: BTreeMap<Sha1, (DateTime<Utc>, DateTime<Utc>)> = BTreeMap::new();
            for r in &rows {
                per_cert
                    .entry(r.sha1)
                    .and_modify(|(f, l)| {
                        *f = (*f).min(r.first_seen);
                        *l = (*l).max(r.last_seen);
                    })
                    .or_insert((r.first_seen, r.last_seen));
            }
            let mut list: Vec<(Sha1, DateTime<Utc>, DateTime<Utc>)> =
                per_cert.into_iter().map(|(s, (f, l))| (s, f, l)).collect();
            list.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
            list.into_iter()
                .map(|(sha1, first, last)| {
                    json!({
                        "sha1": certhist_model::hex_lower(sha1),
                        "firstSeen": day(first),
                        "lastSeen": day(last),
                        "ipAddresses": [ip.to_string()],
                    })
                })
                .collect()
        }
        Subject::Cert(sha1) => {
            let rows =
                read::cert_hosts(&conn, &sha1, &TimeWindow::default(), None, MAX_ROWS).await?;
            let first = rows.iter().map(|r| r.first_seen).min();
            let last = rows.iter().map(|r| r.last_seen).max();
            let ips: BTreeSet<IpAddr> = rows.iter().map(|r| r.ip).collect();
            // A stored certificate never seen on an address keeps its record, with null dates.
            vec![json!({
                "sha1": certhist_model::hex_lower(sha1),
                "firstSeen": first.map(day),
                "lastSeen": last.map(day),
                "ipAddresses": ips.iter().map(ToString::to_string).collect::<Vec<_>>(),
            })]
        }
    };
    Ok(json(&json!({ "results": results, "success": true })))
}

/// How a PassiveTotal search field maps onto certhist's search.
enum Target {
    /// A certhist search field and how the value matches.
    Field(SearchField, MatchMode),
    /// `sha1` / `fingerprint`: the certificate itself.
    Hash,
    /// `serialNumber`: a decimal serial.
    Serial,
    /// A subject or issuer attribute certhist has no search index for.
    Attribute(DnSide, DnAttribute),
}

fn target(field: &str) -> Result<Target, PtError> {
    if !VALID_FIELDS.contains(&field) {
        return Err(PtError::bad(format!(
            "field {:?} is not one of: {}",
            shorten(field),
            VALID_FIELDS.join(", ")
        )));
    }
    Ok(match field {
        "subjectCommonName" => Target::Field(SearchField::Cn, MatchMode::Exact),
        "subjectAlternativeName" => Target::Field(SearchField::San, MatchMode::Exact),
        // `name` is a substring match over the subject CN and SANs (passivetotal 2.5.8).
        "name" => Target::Field(SearchField::Name, MatchMode::Contains),
        "subjectEmailAddress" => Target::Field(SearchField::Email, MatchMode::Exact),
        "subjectOrganizationName" => Target::Field(SearchField::SubjectO, MatchMode::Exact),
        "subjectOrganizationUnitName" => Target::Field(SearchField::SubjectOu, MatchMode::Exact),
        "issuerCommonName" => Target::Field(SearchField::IssuerCn, MatchMode::Exact),
        "issuerOrganizationName" => Target::Field(SearchField::IssuerO, MatchMode::Exact),
        "sha1" | "fingerprint" => Target::Hash,
        "serialNumber" => Target::Serial,
        "sslVersion" => {
            return Err(PtError::bad(
                "field sslVersion is not searchable on this server (it does not store the X.509 version)",
            ))
        }
        other => {
            let (side, rest) = match other.strip_prefix("subject") {
                Some(rest) => (DnSide::Subject, rest),
                None => (DnSide::Issuer, other.strip_prefix("issuer").unwrap_or(other)),
            };
            let attribute = match rest {
                "Country" => DnAttribute::Country,
                "LocalityName" => DnAttribute::Locality,
                "StateOrProvinceName" | "Province" => DnAttribute::StateOrProvince,
                "OrganizationUnitName" => DnAttribute::OrganizationalUnit,
                "EmailAddress" => DnAttribute::Email,
                "Surname" => DnAttribute::Surname,
                "GivenName" => DnAttribute::GivenName,
                "StreetAddress" => DnAttribute::Street,
                "SerialNumber" => DnAttribute::SerialNumber,
                _ => {
                    return Err(PtError::bad(format!(
                        "field {other} is not searchable on this server"
                    )))
                }
            };
            Target::Attribute(side, attribute)
        }
    })
}

/// The certificates whose `target` matches `value`, at most `limit`.
async fn find(
    conn: &certhist_store::Conn,
    target: &Target,
    value: &str,
    limit: i64,
) -> Result<Vec<Sha1>, PtError> {
    Ok(match target {
        Target::Hash => match parse_hash(value) {
            Some(hash @ CertHash::Sha1(_)) => read::resolve_hash(conn, &hash)
                .await?
                .filter(|r| r.has_cert)
                .map(|r| vec![r.sha1])
                .unwrap_or_default(),
            _ => return Err(PtError::bad("query is not a SHA-1 in hex")),
        },
        Target::Serial => {
            let digits = value.trim().trim_start_matches('-');
            let serial = Serial::parse_decimal(digits)
                .map_err(|_| PtError::bad("serialNumber is a decimal number"))?;
            let hits = read::search(
                conn,
                SearchField::Serial,
                &MatchPattern::Exact(serial.to_hex()),
                None,
                limit,
            )
            .await?;
            // The serial search also reads a digits-only hex text as decimal: keep exact hits.
            hits.into_iter()
                .filter(|h| h.cert.serial.as_ref() == Some(&serial))
                .map(|h| h.cert.sha1)
                .collect()
        }
        Target::Attribute(side, attribute) => {
            read::search_dn_attribute(conn, *side, *attribute, value, limit)
                .await?
                .into_iter()
                .map(|c| c.sha1)
                .collect()
        }
        Target::Field(field, mode) => {
            let mode = if *mode == MatchMode::Contains && value.trim().chars().count() < 3 {
                MatchMode::Exact
            } else {
                *mode
            };
            let pattern = MatchPattern::with_mode(mode, value)?;
            read::search(conn, *field, &pattern, None, limit)
                .await?
                .into_iter()
                .map(|h| h.cert.sha1)
                .collect()
        }
    })
}

/// `GET /compat/pt/v2/ssl-certificate/search?query=&field=`: full records of the certificates
/// whose field matches, most recently seen first (at most the server's page size).
pub(crate) async fn search(
    State(state): State<AppState>,
    principal: Result<Principal, ApiError>,
    RawQuery(raw): RawQuery,
) -> PtResult {
    reader(principal)?;
    let (q, mut p) = query_param(raw.as_deref())?;
    let field = p
        .one("field")?
        .ok_or_else(|| PtError::bad("missing required parameter: field"))?;
    let target = target(field.trim())?;
    let conn = state.read_conn().await?;
    let sha1s = find(&conn, &target, &q, state.config.max_page_size).await?;
    let results = records(&conn, &sha1s).await?;
    Ok(json(&json!({ "results": results, "success": true })))
}

/// `GET /compat/pt/v2/ssl-certificate/search/keyword?query=`: certificates with the keyword in
/// a name or an organisation, one hit per (certificate, field).
pub(crate) async fn keyword(
    State(state): State<AppState>,
    principal: Result<Principal, ApiError>,
    RawQuery(raw): RawQuery,
) -> PtResult {
    reader(principal)?;
    let (q, _) = query_param(raw.as_deref())?;
    let conn = state.read_conn().await?;
    let mode = if q.chars().count() >= 3 {
        MatchMode::Contains
    } else {
        MatchMode::Exact
    };
    let pattern = MatchPattern::with_mode(mode, &q)?;
    let mut results = Vec::new();
    let mut seen: BTreeSet<(Sha1, &str)> = BTreeSet::new();
    for (field, name) in [
        (SearchField::Cn, "subjectCommonName"),
        (SearchField::San, "subjectAlternativeNames"),
        (SearchField::SubjectO, "subjectOrganizationName"),
        (SearchField::IssuerCn, "issuerCommonName"),
        (SearchField::IssuerO, "issuerOrganizationName"),
    ] {
        let hits = read::search(&conn, field, &pattern, None, state.config.max_page_size).await?;
        for h in hits {
            if seen.insert((h.cert.sha1, name)) {
                results.push(json!({
                    "focusPoint": certhist_model::hex_lower(h.cert.sha1),
                    "matchType": "sha1",
                    "fieldMatch": name,
                }));
            }
        }
    }
    Ok(json(
        &json!({ "results": results, "queryValue": q, "success": true }),
    ))
}

/// Any other path under `/compat/pt/`: 404 in PassiveTotal's envelope.
pub(crate) async fn unknown() -> PtError {
    PtError::new(
        StatusCode::NOT_FOUND,
        "no such endpoint; this server answers v2/ssl-certificate, v2/ssl-certificate/history, \
         v2/ssl-certificate/search and v2/ssl-certificate/search/keyword",
    )
}

/// Full records of the stored certificates among `sha1s`, most recently seen first (never-seen
/// ones last), then by SHA-1.
async fn records(conn: &certhist_store::Conn, sha1s: &[Sha1]) -> Result<Vec<Value>, PtError> {
    let mut keys = sha1s.to_vec();
    keys.sort_unstable();
    keys.dedup();
    let mut details = read::details_batch(conn, &keys, true).await?;
    let mut sans: BTreeMap<Sha1, Vec<String>> = BTreeMap::new();
    for n in read::names_batch(conn, &keys).await? {
        if matches!(n.kind, NameKind::Dns | NameKind::Ip) {
            sans.entry(n.sha1).or_default().push(n.name);
        }
    }
    details.sort_by(|a, b| {
        let last = |d: &CertDetails| d.sightings.map(|s| s.last_seen);
        last(b)
            .cmp(&last(a))
            .then(a.summary.sha1.cmp(&b.summary.sha1))
    });
    Ok(details
        .iter()
        .map(|d| record(d, sans.remove(&d.summary.sha1).unwrap_or_default()))
        .collect())
}

/// One certificate in PassiveTotal's record shape: every name field present (`null` when the
/// certificate lacks it), lower-case values as upstream.
fn record(d: &CertDetails, sans: Vec<String>) -> Value {
    let s = &d.summary;
    let pt_date =
        |t: Option<DateTime<Utc>>| t.map(|t| t.format("%b %d %H:%M:%S %Y GMT").to_string());
    let issued = pt_date(s.not_before);
    let subject = attributes(&d.subject);
    let issuer = attributes(&d.issuer);
    let mut out = serde_json::Map::new();
    for (prefix, dn, attrs) in [
        ("subject", &d.subject, &subject),
        ("issuer", &d.issuer, &issuer),
    ] {
        let st = dn.st.clone();
        let fields: [(&str, Option<String>); 12] = [
            ("CommonName", dn.cn.clone()),
            ("OrganizationName", dn.o.clone()),
            ("OrganizationUnitName", dn.ou.clone()),
            ("Country", dn.c.clone()),
            ("StateOrProvinceName", st.clone()),
            ("Province", st),
            ("LocalityName", dn.l.clone()),
            (
                "StreetAddress",
                first_value(attrs, "STREET").map(str::to_owned),
            ),
            ("EmailAddress", dn.email.clone()),
            (
                "SerialNumber",
                first_value(attrs, "serialNumber").map(str::to_owned),
            ),
            ("Surname", first_value(attrs, "SN").map(str::to_owned)),
            ("GivenName", first_value(attrs, "GN").map(str::to_owned)),
        ];
        for (name, value) in fields {
            out.insert(
                format!("{prefix}{name}"),
                json!(value.map(|v| v.to_lowercase())),
            );
        }
    }
    let colons: Vec<String> = s.sha1.iter().map(|b| format!("{b:02x}")).collect();
    out.insert("sha1".to_owned(), json!(certhist_model::hex_lower(s.sha1)));
    out.insert("fingerprint".to_owned(), json!(colons.join(":")));
    out.insert(
        "serialNumber".to_owned(),
        json!(s
            .serial
            .as_ref()
            .map(|v| serial_decimal(v, d.serial_negative))),
    );
    // certhist does not store the X.509 version field.
    out.insert("sslVersion".to_owned(), Value::Null);
    out.insert("issueDate".to_owned(), json!(issued));
    out.insert("issuerDate".to_owned(), json!(issued));
    out.insert("expirationDate".to_owned(), json!(pt_date(s.not_after)));
    out.insert("subjectAlternativeNames".to_owned(), json!(sans));
    out.insert(
        "firstSeen".to_owned(),
        json!(d.sightings.map(|x| x.first_seen.timestamp_millis())),
    );
    out.insert(
        "lastSeen".to_owned(),
        json!(d.sightings.map(|x| x.last_seen.timestamp_millis())),
    );
    Value::Object(out)
}
