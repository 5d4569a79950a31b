//! The page handlers: parameters read with the API's `Params` (same validation, same
//! messages), rows read with the API's store functions, view rows prepared as strings and
//! links for the templates.

use std::collections::HashMap;
use std::net::IpAddr;

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use certhist_model::views::{
    CertSummary, CertificateRecord, MatchMode, Role, StubSightingItem, Target,
};
use certhist_model::{CertHash, Serial, Sha1};
use certhist_store::read::{self, MatchPattern, SearchKey, ValidityFilter};
use chrono::{DateTime, Utc};

use super::recognise::{recognise, Reading};
use super::tagging::{panel, TagPanel};
use super::timeline::{Span, Timeline};
use super::Viewer;
use super::{html, links, visible, Chrome, PageError};
use crate::error::{bad_request, not_found, shorten};
use crate::params::{cert_hash, encode_cursor, hash20, ip_or_cidr, Params};
use crate::AppState;

type PageResult = Result<Response, PageError>;

fn date(t: DateTime<Utc>) -> String {
    certhist_model::ymd(t)
}

fn datetime(t: Option<DateTime<Utc>>) -> String {
    t.map(certhist_model::ymd_hm).unwrap_or_default()
}

/// "for 3 months", "for 1 day".
fn period(first: DateTime<Utc>, last: DateTime<Utc>) -> String {
    let days = (last - first).num_days();
    match days {
        d if d < 1 => "under a day".to_owned(),
        1 => "1 day".to_owned(),
        d if d < 62 => format!("{d} days"),
        d if d < 730 => format!("{} months", d / 30),
        d => format!("{:.1} years", d as f64 / 365.25),
    }
}

fn short(sha1: &[u8]) -> String {
    certhist_model::hex_lower(sha1.get(..6).unwrap_or(sha1))
}

/// A text with an optional link.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    pub text: String,
    pub href: Option<String>,
}

impl Link {
    pub(crate) fn to(text: impl AsRef<str>, href: impl Into<String>) -> Self {
        Link {
            text: visible(text.as_ref()),
            href: Some(href.into()),
        }
    }
    pub(crate) fn plain(text: impl AsRef<str>) -> Self {
        Link {
            text: visible(text.as_ref()),
            href: None,
        }
    }
}

/// A certificate as list rows show it.
#[derive(Debug, Clone)]
pub(crate) struct CertCell {
    pub href: String,
    pub sha1: String,
    pub sha1_short: String,
    pub cn: String,
    pub issuer: String,
    pub not_before: String,
    pub not_after: String,
    pub flags: String,
}

impl CertCell {
    fn from_summary(c: &CertSummary) -> Self {
        let mut flags = Vec::new();
        if c.is_ca {
            flags.push("CA");
        }
        if c.is_precert {
            flags.push("precert");
        }
        if c.parse_error.is_some() {
            flags.push("unparsed");
        }
        CertCell {
            href: links::cert(&c.sha1),
            sha1: certhist_model::hex_lower(c.sha1),
            sha1_short: short(&c.sha1),
            cn: visible(c.subject_cn.as_deref().unwrap_or_default()),
            issuer: visible(
                c.issuer_cn
                    .as_deref()
                    .or(c.issuer_o.as_deref())
                    .unwrap_or_default(),
            ),
            not_before: c.not_before.map(date).unwrap_or_default(),
            not_after: c.not_after.map(date).unwrap_or_default(),
            flags: flags.join(" "),
        }
    }

    fn hash_only(sha1: &Sha1) -> Self {
        CertCell {
            href: links::cert(sha1),
            sha1: certhist_model::hex_lower(sha1),
            sha1_short: short(sha1),
            cn: String::new(),
            issuer: String::new(),
            not_before: String::new(),
            not_after: String::new(),
            flags: "hash only".to_owned(),
        }
    }
}

// ---------------------------------------------------------------- home and search box

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    chrome: Chrome,
    title: String,
}

pub(crate) async fn home(principal: Viewer) -> PageResult {
    principal.require(Role::Reader)?;
    let mut chrome = Chrome::new(&principal, "");
    chrome.autofocus = true;
    Ok(html(
        StatusCode::OK,
        &HomePage {
            chrome,
            title: "certhist".to_owned(),
        },
    ))
}

#[derive(Template)]
#[template(path = "readings.html")]
struct ReadingsPage {
    chrome: Chrome,
    title: String,
    readings: Vec<Link>,
}

/// `/search?q=…`: one reading → there; several → the choice; none → say so.
pub(crate) async fn search(principal: Viewer, RawQuery(raw): RawQuery) -> PageResult {
    principal.require(Role::Reader)?;
    let mut p = Params::parse(raw.as_deref())?;
    let q = p.one("q")?.unwrap_or_default();
    p.finish()?;
    let readings = recognise(&q);
    if let [only] = readings.as_slice() {
        return Ok(Redirect::to(&only.href()).into_response());
    }
    let status = if readings.is_empty() {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::OK
    };
    Ok(html(
        status,
        &ReadingsPage {
            chrome: Chrome::new(&principal, q),
            title: "Search".to_owned(),
            readings: readings
                .iter()
                .map(|r: &Reading| Link::to(r.describe(), r.href()))
                .collect(),
        },
    ))
}

// ---------------------------------------------------------------- IP / CIDR

#[derive(Debug)]
pub(crate) struct IpRow {
    pub ip: String,
    pub ip_href: String,
    pub port: u16,
    pub cert: CertCell,
    pub first_seen: String,
    pub last_seen: String,
    pub period: String,
    pub times_seen: i64,
    pub sources: String,
    pub others: Option<Link>,
    pub shared: bool,
    pub tags: Vec<Link>,
}

/// A sighting of a certificate known only by SHA-256 (a sensor-log stub), as the address page
/// lists it after the history: the log's text, the hash a pivot to the stub's record.
#[derive(Debug)]
pub(crate) struct StubRow {
    pub ip: String,
    pub ip_href: String,
    pub port: u16,
    pub sha256: String,
    pub sha256_short: String,
    /// The stub's record (`/api/v1/certificates/{sha256}`: the log's text and its hosts are
    /// one request away; the certificate page needs the DER).
    pub href: String,
    /// Subject CN as the log gave it, a link to the certificates with that name.
    pub cn: Link,
    pub issuer: String,
    pub not_before: String,
    pub not_after: String,
    pub first_seen: String,
    pub last_seen: String,
    pub period: String,
    pub times_seen: i64,
    pub sources: String,
}

impl StubRow {
    fn new(s: &StubSightingItem) -> Self {
        let cn = s.subject_cn.as_deref().filter(|c| !c.is_empty());
        StubRow {
            ip: s.ip.to_string(),
            ip_href: links::ip(s.ip),
            port: s.port,
            sha256: certhist_model::hex_lower(s.sha256),
            sha256_short: short(&s.sha256),
            href: format!(
                "/api/v1/certificates/{}",
                certhist_model::hex_lower(s.sha256)
            ),
            cn: cn.map_or_else(|| Link::plain(""), |c| Link::to(c, links::exact("name", c))),
            issuer: visible(s.issuer_dn.as_deref().unwrap_or_default()),
            not_before: s.not_before.map(date).unwrap_or_default(),
            not_after: s.not_after.map(date).unwrap_or_default(),
            first_seen: date(s.first_seen),
            last_seen: date(s.last_seen),
            period: period(s.first_seen, s.last_seen),
            times_seen: s.times_seen,
            sources: visible(&s.sources.join(", ")),
        }
    }
}

#[derive(Template)]
#[template(path = "ip.html")]
struct IpPage {
    chrome: Chrome,
    title: String,
    target: String,
    is_block: bool,
    rows: Vec<IpRow>,
    /// Sightings of certificates known only by SHA-256, on the first page.
    stubs: Vec<StubRow>,
    /// More stub sightings than listed.
    stubs_truncated: bool,
    timeline: Option<Timeline>,
    next: Option<String>,
    first_page: Option<String>,
    api: String,
    export: String,
    compare: String,
    graph: String,
    shared_threshold: i64,
    tags: Option<TagPanel>,
    stix: String,
    misp: String,
}

pub(crate) async fn ip(
    principal: Viewer,
    State(state): State<AppState>,
    Path(ip): Path<String>,
    RawQuery(raw): RawQuery,
) -> PageResult {
    ip_page(principal, state, &ip, raw.as_deref()).await
}

pub(crate) async fn ip_cidr(
    principal: Viewer,
    State(state): State<AppState>,
    Path((addr, len)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> PageResult {
    ip_page(principal, state, &format!("{addr}/{len}"), raw.as_deref()).await
}

async fn ip_page(principal: Viewer, state: AppState, text: &str, raw: Option<&str>) -> PageResult {
    principal.require(Role::Reader)?;
    let mut p = Params::parse(raw)?;
    let net = ip_or_cidr("ip", text, &state.config)?;
    let window = p.window()?;
    let limit = p.limit(&state.config)?;
    let cursor: Option<(IpAddr, u16, String)> = p.cursor()?;
    p.finish()?;
    let after = cursor
        .map(|(ip, port, sha)| {
            hex::decode(&sha)
                .ok()
                .and_then(|b| Sha1::try_from(b).ok())
                .map(|s| (ip, port, s))
                .ok_or_else(|| bad_request("cursor", "not a cursor returned by this page"))
        })
        .transpose()?;
    let is_block = net.prefix_len() != net.max_prefix_len();
    let target = if is_block {
        net.to_string()
    } else {
        net.addr().to_string()
    };
    let conn = state.read_conn().await?;
    let mut rows = read::ip_history(&conn, &net, &window, after.as_ref(), limit + 1).await?;
    let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let mut sha1s: Vec<Sha1> = rows.iter().map(|r| r.sha1).collect();
    sha1s.sort_unstable();
    sha1s.dedup();
    let threshold = state.config.shared_threshold;
    let counts = read::distinct_ip_counts(&conn, &sha1s, threshold + 1).await?;
    // Certificates known only by SHA-256 (sensor logs): on the first page, as the API has them.
    let (mut stubs, mut stubs_truncated) = (Vec::new(), false);
    if after.is_none() {
        stubs = read::stub_sightings(&conn, &net, &window, None, limit + 1).await?;
        stubs_truncated = stubs.len() > usize::try_from(limit).unwrap_or(usize::MAX);
        stubs.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    }
    let base = links::net(&net);
    let page_target = if is_block {
        Target::Cidr(net.trunc())
    } else {
        Target::Ip(net.addr())
    };
    let tags = panel(&conn, &page_target, &principal, base.clone()).await?;
    drop(conn);
    let next = if more {
        rows.last().map(|r| {
            links::with_cursor(
                &base,
                &encode_cursor(&(r.ip, r.port, certhist_model::hex_lower(r.sha1))),
            )
        })
    } else {
        None
    };
    // Colour by certificate, in order of first appearance.
    let mut group: HashMap<Sha1, usize> = HashMap::new();
    let mut by_first: Vec<&certhist_model::views::IpHistoryItem> = rows.iter().collect();
    by_first.sort_by_key(|r| (r.first_seen, r.port, r.sha1));
    for r in &by_first {
        let n = group.len();
        group.entry(r.sha1).or_insert(n);
    }
    let spans: Vec<Span> = by_first
        .iter()
        .map(|r| {
            let name = r
                .cert
                .as_ref()
                .and_then(|c| c.subject_cn.clone())
                .unwrap_or_else(|| short(&r.sha1));
            let label = if is_block {
                format!("{}:{} {}", r.ip, r.port, name)
            } else {
                format!("{} {}", r.port, name)
            };
            Span {
                title: format!(
                    "{} port {} · {} · {} · {} → {} ({})",
                    r.ip,
                    r.port,
                    visible(&name),
                    certhist_model::hex_lower(r.sha1),
                    date(r.first_seen),
                    date(r.last_seen),
                    period(r.first_seen, r.last_seen)
                ),
                label: truncate(&visible(&label), 40),
                href: links::cert(&r.sha1),
                group: group.get(&r.sha1).copied().unwrap_or(0),
                first: r.first_seen,
                last: r.last_seen,
            }
        })
        .collect();
    let rows: Vec<IpRow> = rows
        .iter()
        .map(|r| {
            let distinct = counts.get(&r.sha1).copied().unwrap_or(0);
            let others = (distinct - 1).max(0);
            let others_text = if distinct > threshold {
                format!("on more than {threshold} addresses")
            } else if others == 0 {
                String::new()
            } else if others == 1 {
                "also on 1 other address".to_owned()
            } else {
                format!("also on {others} other addresses")
            };
            IpRow {
                ip: r.ip.to_string(),
                ip_href: links::ip(r.ip),
                port: r.port,
                cert: r
                    .cert
                    .as_ref()
                    .map_or_else(|| CertCell::hash_only(&r.sha1), CertCell::from_summary),
                first_seen: date(r.first_seen),
                last_seen: date(r.last_seen),
                period: period(r.first_seen, r.last_seen),
                times_seen: r.times_seen,
                sources: visible(&r.sources.join(", ")),
                others: (!others_text.is_empty())
                    .then(|| Link::to(others_text, format!("{}#hosts", links::cert(&r.sha1)))),
                shared: distinct > threshold,
                tags: r.tags.iter().map(|t| Link::to(t, links::tag(t))).collect(),
            }
        })
        .collect();
    let api_path = if is_block {
        format!("/api/v1/ip/{}/{}", net.network(), net.prefix_len())
    } else {
        format!("/api/v1/ip/{}", net.addr())
    };
    let export = {
        let mut s = form_urlencoded::Serializer::new(String::new());
        s.append_pair("ip", &net.to_string());
        s.finish()
    };
    Ok(html(
        StatusCode::OK,
        &IpPage {
            chrome: Chrome::new(&principal, target.clone()),
            title: format!("{target} · certificate history"),
            is_block,
            timeline: Timeline::new(&spans),
            rows,
            stubs: stubs.iter().map(StubRow::new).collect(),
            stubs_truncated,
            first_page: after.map(|_| base.clone()),
            next,
            api: api_path,
            export,
            compare: {
                let mut s = form_urlencoded::Serializer::new(String::new());
                s.append_pair("members", &net.addr().to_string());
                format!("/overlap?{}", s.finish())
            },
            graph: graph_href(&net.to_string()),
            shared_threshold: threshold,
            tags: Some(tags),
            stix: links::export("stix", &[("ip", &target)]),
            misp: links::export("misp", &[("ip", &target)]),
            target,
        },
    ))
}

pub(crate) fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(n - 1).collect();
        out.push('…');
        out
    }
}

// ---------------------------------------------------------------- certificate

#[derive(Debug)]
pub(crate) struct Field {
    pub label: &'static str,
    pub values: Vec<Link>,
    pub mono: bool,
}

#[derive(Debug)]
pub(crate) struct HostRow {
    pub ip: String,
    pub href: String,
    pub port: u16,
    pub first_seen: String,
    pub last_seen: String,
    pub period: String,
    pub times_seen: i64,
    pub sources: String,
}

#[derive(Debug)]
pub(crate) struct CtRow {
    pub log_url: String,
    pub index: i64,
    pub timestamp: String,
    pub entry_type: String,
    pub sha1: Link,
}

#[derive(Debug)]
pub(crate) struct CacheRow {
    pub collection: String,
    pub url: String,
    pub kind: String,
    pub downloaded: String,
    pub status: String,
}

#[derive(Template)]
#[template(path = "certificate.html")]
struct CertPage {
    chrome: Chrome,
    title: String,
    heading: String,
    stored: bool,
    fields: Vec<Field>,
    names: Vec<(Link, String, Option<Link>)>,
    siblings: Vec<CertCell>,
    ct: Vec<CtRow>,
    cache: Vec<CacheRow>,
    commonness: String,
    shared: bool,
    hosts: Vec<HostRow>,
    timeline: Option<Timeline>,
    next: Option<String>,
    first_page: Option<String>,
    pem: String,
    der: String,
    graph: String,
    api: String,
    export: String,
    tags: Option<TagPanel>,
    stix: String,
    misp: String,
}

fn opt_field(label: &'static str, value: Option<&String>, field: &str) -> Option<Field> {
    value.filter(|v| !v.is_empty()).map(|v| Field {
        label,
        values: vec![Link::to(v.clone(), links::exact(field, v))],
        mono: false,
    })
}

fn hex_field(label: &'static str, value: Option<&Vec<u8>>, search: Option<&str>) -> Option<Field> {
    value.map(|v| {
        let h = certhist_model::hex_lower(v);
        Field {
            label,
            values: vec![match search {
                Some(f) => Link::to(h.clone(), links::exact(f, &h)),
                None => Link::plain(h),
            }],
            mono: true,
        }
    })
}

fn record_fields(r: &CertificateRecord) -> Vec<Field> {
    let s = &r.summary;
    let mut f: Vec<Field> = Vec::new();
    f.extend(opt_field("Subject CN", r.subject.cn.as_ref(), "cn"));
    f.extend(opt_field("Subject O", r.subject.o.as_ref(), "subject-o"));
    f.extend(opt_field("Subject OU", r.subject.ou.as_ref(), "subject-ou"));
    if let Some(dn) = &r.subject.dn {
        f.push(Field {
            label: "Subject",
            values: vec![Link::plain(dn.clone())],
            mono: false,
        });
    }
    f.extend(opt_field("Issuer CN", r.issuer.cn.as_ref(), "issuer-cn"));
    f.extend(opt_field("Issuer O", r.issuer.o.as_ref(), "issuer-o"));
    if let Some(dn) = &r.issuer.dn {
        f.push(Field {
            label: "Issuer",
            values: vec![Link::plain(dn.clone())],
            mono: false,
        });
    }
    if let Some(serial) = &s.serial {
        let hex = serial.to_hex();
        f.push(Field {
            label: "Serial",
            values: vec![Link::to(
                format!("{}{hex}", if r.serial_negative { "-" } else { "" }),
                links::serial(&hex, None, None),
            )],
            mono: true,
        });
    }
    let validity = match (s.not_before, s.not_after) {
        (Some(a), Some(b)) => Some(format!(
            "{} → {} ({})",
            datetime(Some(a)),
            datetime(Some(b)),
            period(a, b)
        )),
        _ => None,
    };
    if let Some(v) = validity {
        f.push(Field {
            label: "Validity",
            values: vec![Link::plain(v)],
            mono: false,
        });
    }
    let mut key = Vec::new();
    if let Some(a) = &r.key_algorithm {
        key.push(a.clone());
    }
    if let Some(b) = r.key_bits {
        key.push(format!("{b} bits"));
    }
    if !key.is_empty() {
        f.push(Field {
            label: "Key",
            values: vec![Link::plain(key.join(" "))],
            mono: false,
        });
    }
    if let Some(a) = &r.signature_algorithm {
        f.push(Field {
            label: "Signature",
            values: vec![Link::plain(a.clone())],
            mono: false,
        });
    }
    f.extend(hex_field(
        "SPKI SHA-256",
        r.spki_sha256.as_ref(),
        Some("spki"),
    ));
    f.extend(hex_field("Subject key ID", r.subject_key_id.as_ref(), None));
    f.extend(hex_field(
        "Authority key ID",
        r.authority_key_id.as_ref(),
        None,
    ));
    if let (Some(serial), Some(n)) = (&s.serial, &r.issuer_name_hash) {
        let n = certhist_model::hex_lower(n);
        let k = r.issuer_key_hash.as_ref().map(certhist_model::hex_lower);
        f.push(Field {
            label: "OCSP CertID",
            values: vec![Link::to(
                format!(
                    "name {n} · key {} · serial {}",
                    k.as_deref().unwrap_or("?"),
                    serial.to_hex()
                ),
                links::serial(&serial.to_hex(), Some(&n), k.as_deref()),
            )],
            mono: true,
        });
    }
    f.push(Field {
        label: "SHA-256",
        values: vec![Link::plain(certhist_model::hex_lower(s.sha256))],
        mono: true,
    });
    f.push(Field {
        label: "SHA-1",
        values: vec![Link::plain(certhist_model::hex_lower(s.sha1))],
        mono: true,
    });
    if let Some(t) = r.first_seen_in_ct {
        f.push(Field {
            label: "First in CT",
            values: vec![Link::plain(datetime(Some(t)))],
            mono: false,
        });
    }
    f.push(Field {
        label: "Stored",
        values: vec![Link::plain(datetime(Some(r.added_at)))],
        mono: false,
    });
    if let Some(e) = &s.parse_error {
        f.push(Field {
            label: "Parse error",
            values: vec![Link::plain(e.clone())],
            mono: false,
        });
    }
    f
}

/// One row per name (a name that is both the CN and a SAN is one row, `cn, dns`), in the
/// record's order.
fn name_rows(names: &[certhist_model::CertName]) -> Vec<(Link, String, Option<Link>)> {
    let mut rows: Vec<(Link, String, Option<Link>)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for n in names {
        if let Some(i) = index.get(n.name.as_str()) {
            if let Some(row) = rows.get_mut(*i) {
                row.1.push_str(", ");
                row.1.push_str(n.kind.as_str());
            }
            continue;
        }
        index.insert(&n.name, rows.len());
        rows.push((
            Link::to(&n.name, links::exact("name", &n.name)),
            n.kind.as_str().to_owned(),
            n.registered_domain
                .as_ref()
                .map(|d| Link::to(d, links::exact("registered-domain", d))),
        ));
    }
    rows
}

pub(crate) async fn certificate(
    principal: Viewer,
    State(state): State<AppState>,
    Path(hash): Path<String>,
    RawQuery(raw): RawQuery,
) -> PageResult {
    principal.require(Role::Reader)?;
    let mut p = Params::parse(raw.as_deref())?;
    let hash = cert_hash("hash", &hash)?;
    let window = p.window()?;
    let limit = p.limit(&state.config)?;
    let cursor: Option<(IpAddr, u16)> = p.cursor()?;
    p.finish()?;
    let threshold = state.config.shared_threshold;
    let conn = state.conn().await?;
    let record = read::certificate(&conn, &hash, threshold).await?;
    let sha1 = match (&record, &hash) {
        (Some(r), _) => r.summary.sha1,
        (None, h) => match read::resolve_hash(&conn, h).await? {
            Some(r) => r.sha1,
            None => {
                return Err(not_found(format!(
                    "no certificate with hash {hash} is stored or observed"
                ))
                .into())
            }
        },
    };
    let mut hosts = read::cert_hosts(&conn, &sha1, &window, cursor, limit + 1).await?;
    let distinct = match &record {
        Some(r) => r.commonness.distinct_ips,
        None => read::distinct_ip_counts(&conn, &[sha1], i64::MAX - 1)
            .await?
            .get(&sha1)
            .copied()
            .unwrap_or(0),
    };
    let tags = panel(
        &conn,
        &Target::Certificate(sha1),
        &principal,
        links::cert(&sha1),
    )
    .await?;
    drop(conn);
    let more = hosts.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    hosts.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let sha1_hex = certhist_model::hex_lower(sha1);
    let base = links::cert(&sha1);
    let next = if more {
        hosts
            .last()
            .map(|h| links::with_cursor(&base, &encode_cursor(&(h.ip, h.port))) + "#hosts")
    } else {
        None
    };
    let mut by_first: Vec<&certhist_model::views::HostItem> = hosts.iter().collect();
    by_first.sort_by_key(|h| (h.first_seen, h.ip, h.port));
    let spans: Vec<Span> = by_first
        .iter()
        .map(|h| Span {
            label: format!("{} :{}", h.ip, h.port),
            title: format!(
                "{} port {} · {} → {} ({})",
                h.ip,
                h.port,
                date(h.first_seen),
                date(h.last_seen),
                period(h.first_seen, h.last_seen)
            ),
            href: links::ip(h.ip),
            group: 0,
            first: h.first_seen,
            last: h.last_seen,
        })
        .collect();
    let host_rows: Vec<HostRow> = hosts
        .iter()
        .map(|h| HostRow {
            ip: h.ip.to_string(),
            href: links::ip(h.ip),
            port: h.port,
            first_seen: date(h.first_seen),
            last_seen: date(h.last_seen),
            period: period(h.first_seen, h.last_seen),
            times_seen: h.times_seen,
            sources: visible(&h.sources.join(", ")),
        })
        .collect();
    let shared = distinct > threshold;
    let commonness = match distinct {
        0 => "never seen on an address".to_owned(),
        1 => "served by 1 address".to_owned(),
        n => format!("served by {n} addresses"),
    };
    let (heading, fields, names, siblings, ct, cache) = match &record {
        Some(r) => (
            visible(
                r.summary
                    .subject_cn
                    .as_deref()
                    .or(r.subject.dn.as_deref())
                    .unwrap_or(&sha1_hex),
            ),
            record_fields(r),
            name_rows(&r.names),
            r.ct_siblings.iter().map(CertCell::from_summary).collect(),
            r.ct_entries
                .iter()
                .map(|e| CtRow {
                    log_url: visible(&e.log_url),
                    index: e.entry_index,
                    timestamp: datetime(Some(e.entry_timestamp)),
                    entry_type: e.entry_type.as_str().to_owned(),
                    sha1: if e.sha1 == sha1 {
                        Link::plain("this certificate")
                    } else {
                        Link::to(short(&e.sha1), links::cert(&e.sha1))
                    },
                })
                .collect(),
            r.cache_entries
                .iter()
                .map(|c| CacheRow {
                    collection: visible(&c.collection),
                    url: visible(&c.url),
                    kind: c.kind.as_str().to_owned(),
                    downloaded: datetime(c.downloaded_at),
                    status: c
                        .ocsp_status
                        .map(|s| s.as_str().to_owned())
                        .unwrap_or_default(),
                })
                .collect(),
        ),
        None => (
            sha1_hex.clone(),
            vec![Field {
                label: "SHA-1",
                values: vec![Link::plain(sha1_hex.clone())],
                mono: true,
            }],
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        ),
    };
    let export = {
        let mut s = form_urlencoded::Serializer::new(String::new());
        s.append_pair("hash", &sha1_hex);
        format!("/export/hosts.ndjson?{}", s.finish())
    };
    Ok(html(
        StatusCode::OK,
        &CertPage {
            chrome: Chrome::new(&principal, sha1_hex.clone()),
            title: format!("{} · certificate", truncate(&heading, 80)),
            heading,
            stored: record.is_some(),
            fields,
            names,
            siblings,
            ct,
            cache,
            commonness,
            shared,
            timeline: Timeline::new(&spans),
            hosts: host_rows,
            first_page: cursor.map(|_| format!("{base}#hosts")),
            next,
            graph: graph_href(&sha1_hex),
            pem: format!("/api/v1/certificates/{sha1_hex}?format=pem"),
            der: format!("/api/v1/certificates/{sha1_hex}?format=der"),
            api: format!("/api/v1/certificates/{sha1_hex}"),
            export,
            tags: Some(tags),
            stix: links::export("stix", &[("sha1", &sha1_hex)]),
            misp: links::export("misp", &[("sha1", &sha1_hex)]),
        },
    ))
}

// ---------------------------------------------------------------- field search

#[derive(Debug)]
pub(crate) struct ResultRow {
    pub matched: String,
    pub cert: CertCell,
}

#[derive(Template)]
#[template(path = "results.html")]
struct ResultsPage {
    chrome: Chrome,
    title: String,
    heading: String,
    field: String,
    q: String,
    q_shown: String,
    mode: String,
    valid_at: String,
    fields: Vec<&'static str>,
    rows: Vec<ResultRow>,
    next: Option<String>,
    first_page: Option<String>,
    api: String,
    export: String,
    tags: Option<TagPanel>,
    stix: String,
    misp: String,
}

fn pattern(mode: Option<&str>, q: &str) -> Result<MatchPattern, PageError> {
    let mode = match mode.filter(|m| !m.is_empty()) {
        None => MatchMode::Auto,
        Some(m) => MatchMode::from_name(m).ok_or_else(|| {
            bad_request(
                "match",
                format!(
                    "{:?} is not one of auto, exact, prefix, suffix, contains, regex",
                    shorten(m)
                ),
            )
        })?,
    };
    MatchPattern::with_mode(mode, q).map_err(|e| bad_request("q", e).into())
}

/// `/names?field=…&q=…[&match=…][&valid_at=…][&cursor=…]`.
pub(crate) async fn names(
    principal: Viewer,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> PageResult {
    principal.require(Role::Reader)?;
    let mut p = Params::parse(raw.as_deref())?;
    let field_text = p.one("field")?.unwrap_or_else(|| "name".to_owned());
    let field = read::search::parse_field(&field_text).map_err(|e| bad_request("field", e))?;
    let q = p.required("q")?;
    let mode = p.one("match")?;
    let pattern = pattern(mode.as_deref(), &q)?;
    let valid_at_text = p.one("valid_at")?.filter(|v| !v.is_empty());
    let valid_at = valid_at_text
        .as_deref()
        .map(|v| certhist_model::parse_timestamp(v).map_err(|e| bad_request("valid_at", e)))
        .transpose()?;
    let validity = ValidityFilter {
        valid_at,
        ..ValidityFilter::default()
    };
    let limit = p.limit(&state.config)?;
    let cursor: Option<(String, String)> = p.cursor()?;
    p.finish()?;
    let after: Option<SearchKey> = cursor
        .map(|(m, s)| {
            hex::decode(&s)
                .ok()
                .and_then(|b| Sha1::try_from(b).ok())
                .map(|s| (m, s))
                .ok_or_else(|| bad_request("cursor", "not a cursor returned by this page"))
        })
        .transpose()?;
    let conn = state.read_conn().await?;
    let mut rows =
        read::search_filtered(&conn, field, &pattern, &validity, after.as_ref(), limit + 1).await?;
    // A name (not a pattern) can carry tags and notes: shown with the results.
    let name_target = (field.as_str() == "name"
        && mode.as_deref().is_none_or(|m| m.is_empty() || m == "exact")
        && !q.trim_start_matches("*.").contains('*'))
    .then(|| Target::parse_kind(certhist_model::views::TargetKind::Name, &q).ok())
    .flatten();
    let tags = match &name_target {
        Some(t) => Some(panel(&conn, t, &principal, super::tagging::target_href(t)).await?),
        None => None,
    };
    drop(conn);
    let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let mut query = vec![("field", field.as_str()), ("q", q.as_str())];
    if let Some(m) = mode.as_deref().filter(|m| !m.is_empty()) {
        query.push(("match", m));
    }
    if let Some(v) = valid_at_text.as_deref() {
        query.push(("valid_at", v));
    }
    let qs = {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &query {
            s.append_pair(k, v);
        }
        s.finish()
    };
    let base = format!("/names?{qs}");
    let stix = links::export("stix", &query);
    let misp = links::export("misp", &query);
    let next = if more {
        rows.last().map(|r| {
            links::with_cursor(
                &base,
                &encode_cursor(&(r.matched.clone(), certhist_model::hex_lower(r.cert.sha1))),
            )
        })
    } else {
        None
    };
    Ok(html(
        StatusCode::OK,
        &ResultsPage {
            chrome: Chrome::new(&principal, q.clone()),
            title: format!("{} {} · search", field.as_str(), truncate(&q, 80)),
            heading: format!("Certificates by {}", field.as_str()),
            q_shown: visible(&q),
            field: field.as_str().to_owned(),
            mode: mode.unwrap_or_default(),
            valid_at: valid_at_text.unwrap_or_default(),
            fields: certhist_model::views::SearchField::ALL
                .iter()
                .map(|f| f.as_str())
                .collect(),
            rows: rows
                .iter()
                .map(|r| ResultRow {
                    matched: visible(&r.matched),
                    cert: CertCell::from_summary(&r.cert),
                })
                .collect(),
            first_page: after.map(|_| base.clone()),
            next,
            api: format!("/api/v1/search?{qs}"),
            export: qs.clone(),
            tags,
            stix,
            misp,
            q,
        },
    ))
}

// ---------------------------------------------------------------- serials

#[derive(Template)]
#[template(path = "serial.html")]
struct SerialPage {
    chrome: Chrome,
    title: String,
    serial: String,
    certid: Option<String>,
    rows: Vec<CertCell>,
    next: Option<String>,
    first_page: Option<String>,
    api: String,
    stix: String,
    misp: String,
}

/// `/serial/{serial}[?issuer_name_hash=…&issuer_key_hash=…]`.
pub(crate) async fn serial(
    principal: Viewer,
    State(state): State<AppState>,
    Path(serial): Path<String>,
    RawQuery(raw): RawQuery,
) -> PageResult {
    principal.require(Role::Reader)?;
    let mut p = Params::parse(raw.as_deref())?;
    let serials = Serial::parse_candidates(&serial).map_err(|e| bad_request("serial", e))?;
    let name_hash = p
        .one("issuer_name_hash")?
        .map(|v| hash20("issuer_name_hash", &v))
        .transpose()?;
    let key_hash = p
        .one("issuer_key_hash")?
        .map(|v| hash20("issuer_key_hash", &v))
        .transpose()?;
    let limit = p.limit(&state.config)?;
    let cursor: Option<String> = p.cursor()?;
    p.finish()?;
    let after = cursor
        .map(|c| {
            hex::decode(&c)
                .ok()
                .and_then(|b| Sha1::try_from(b).ok())
                .ok_or_else(|| bad_request("cursor", "not a cursor returned by this page"))
        })
        .transpose()?;
    let conn = state.read_conn().await?;
    let mut rows = read::certs_by_serial(
        &conn,
        &serials,
        name_hash.as_ref().map(|h| h.as_slice()),
        key_hash.as_ref().map(|h| h.as_slice()),
        after.as_ref(),
        limit + 1,
    )
    .await?;
    drop(conn);
    let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let clean: String = serial
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let n_hex = name_hash.map(certhist_model::hex_lower);
    let k_hex = key_hash.map(certhist_model::hex_lower);
    let base = links::serial(&clean, n_hex.as_deref(), k_hex.as_deref());
    let next = if more {
        rows.last()
            .map(|r| links::with_cursor(&base, &encode_cursor(&certhist_model::hex_lower(r.sha1))))
    } else {
        None
    };
    let certid = match (&n_hex, &k_hex) {
        (None, None) => None,
        (n, k) => Some(format!(
            "issuer name hash {} · issuer key hash {}",
            n.as_deref().unwrap_or("any"),
            k.as_deref().unwrap_or("any")
        )),
    };
    let api = base.replacen("/serial/", "/api/v1/serials/", 1);
    Ok(html(
        StatusCode::OK,
        &SerialPage {
            chrome: Chrome::new(&principal, clean.clone()),
            title: format!("serial {clean}"),
            certid,
            rows: rows.iter().map(CertCell::from_summary).collect(),
            first_page: after.map(|_| base.clone()),
            next,
            api,
            stix: links::export("stix", &[("field", "serial"), ("q", &clean)]),
            misp: links::export("misp", &[("field", "serial"), ("q", &clean)]),
            serial: clean,
        },
    ))
}

// ---------------------------------------------------------------- exports

fn ndjson_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::ACCEPT,
        HeaderValue::from_static(crate::ndjson::NDJSON),
    );
    h
}

fn attachment(mut resp: Response, name: &'static str) -> Response {
    if resp.status().is_success() {
        resp.headers_mut()
            .insert(header::CONTENT_DISPOSITION, HeaderValue::from_static(name));
    }
    resp
}

/// `/export/search.ndjson?…`: the API's NDJSON stream of a field search, as a download.
pub(crate) async fn export_search(
    principal: Viewer,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, crate::ApiError> {
    principal.require(Role::Reader)?;
    let resp = crate::routes::search::search(State(state), RawQuery(raw), ndjson_headers()).await?;
    Ok(attachment(
        resp,
        "attachment; filename=\"certhist-search.ndjson\"",
    ))
}

/// Splits `key=…` out of a query string: (its value, the rest re-encoded).
fn take_param(raw: Option<&str>, key: &str) -> Result<(String, Option<String>), crate::ApiError> {
    let mut value = None;
    let mut rest = form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        if k == key && value.is_none() {
            value = Some(v.into_owned());
        } else {
            rest.append_pair(&k, &v);
            any = true;
        }
    }
    let value = value.ok_or_else(|| bad_request(key, "missing (required)"))?;
    Ok((value, any.then(|| rest.finish())))
}

/// `/export/ip.ndjson?ip=…`: the API's NDJSON stream of an address's history.
pub(crate) async fn export_ip(
    principal: Viewer,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, crate::ApiError> {
    principal.require(Role::Reader)?;
    let (ip, rest) = take_param(raw.as_deref(), "ip")?;
    let resp =
        crate::routes::ip::ip_history(State(state), Path(ip), RawQuery(rest), ndjson_headers())
            .await?;
    Ok(attachment(
        resp,
        "attachment; filename=\"certhist-ip.ndjson\"",
    ))
}

/// `/export/hosts.ndjson?hash=…`: the API's NDJSON stream of a certificate's hosts.
pub(crate) async fn export_hosts(
    principal: Viewer,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, crate::ApiError> {
    principal.require(Role::Reader)?;
    let (hash, rest) = take_param(raw.as_deref(), "hash")?;
    // Validate before handing on (the value becomes a path parameter).
    let _: CertHash = cert_hash("hash", &hash)?;
    let resp = crate::routes::certificates::hosts(
        State(state),
        Path(hash),
        RawQuery(rest),
        ndjson_headers(),
    )
    .await?;
    Ok(attachment(
        resp,
        "attachment; filename=\"certhist-hosts.ndjson\"",
    ))
}

// ---------------------------------------------------------------- overlap

#[derive(Debug)]
pub(crate) struct OverlapRow {
    /// The shared thing: a certificate (by addresses) or an address (by certificates).
    pub cert: Option<CertCell>,
    pub ip: Option<Link>,
    /// One line per member: its period.
    pub periods: Vec<(Link, String)>,
    pub intersection: String,
}

#[derive(Template)]
#[template(path = "overlap.html")]
struct OverlapPage {
    chrome: Chrome,
    title: String,
    members: String,
    by_ips: bool,
    asked: bool,
    rows: Vec<OverlapRow>,
    timeline: Option<Timeline>,
    next: Option<String>,
    first_page: Option<String>,
}

/// Most members an overlap takes (the API's bound).
const MAX_MEMBERS: usize = 20;

/// `/overlap?members=…` (addresses or certificate hashes, separated by spaces, commas or new
/// lines; also `ip=` / `sha1=` repeated): what they share, with every period and the
/// intersection, on one timeline.
pub(crate) async fn overlap(
    principal: Viewer,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> PageResult {
    principal.require(Role::Reader)?;
    let mut p = Params::parse(raw.as_deref())?;
    let mut texts: Vec<String> = p.all("ip");
    texts.extend(p.all("sha1"));
    if let Some(m) = p.one("members")? {
        texts.extend(
            m.split(|c: char| c.is_whitespace() || c == ',')
                .filter(|t| !t.is_empty())
                .map(str::to_owned),
        );
    }
    let window = p.window()?;
    let limit = p.limit(&state.config)?;
    let cursor_text = p.one("cursor")?;
    let had_cursor = cursor_text.is_some();
    p.finish()?;
    let mut ips: Vec<IpAddr> = Vec::new();
    let mut hashes: Vec<CertHash> = Vec::new();
    for t in &texts {
        if let Ok(ip) = t.parse::<IpAddr>() {
            ips.push(ip);
        } else {
            hashes.push(cert_hash("members", t).map_err(|_| {
                bad_request(
                    "members",
                    format!(
                        "{:?} is neither an IP address nor a SHA-1/SHA-256",
                        shorten(t)
                    ),
                )
            })?);
        }
    }
    ips.sort();
    ips.dedup();
    let members_text = texts.join(" ");
    let mut page = OverlapPage {
        chrome: Chrome::new(&principal, ""),
        title: "Overlap".to_owned(),
        members: members_text.clone(),
        by_ips: hashes.is_empty(),
        asked: !texts.is_empty(),
        rows: Vec::new(),
        timeline: None,
        next: None,
        first_page: None,
    };
    if texts.is_empty() {
        return Ok(html(StatusCode::OK, &page));
    }
    if !ips.is_empty() && !hashes.is_empty() {
        return Err(bad_request("members", "give addresses or certificates, not both").into());
    }
    let base = {
        let mut s = form_urlencoded::Serializer::new(String::new());
        s.append_pair("members", &members_text);
        format!("/overlap?{}", s.finish())
    };
    let limit_rows = usize::try_from(limit).unwrap_or(usize::MAX);
    let conn = state.read_conn().await?;
    let mut spans: Vec<Span> = Vec::new();
    if hashes.is_empty() {
        if !(2..=MAX_MEMBERS).contains(&ips.len()) {
            return Err(bad_request(
                "members",
                format!("give 2 to {MAX_MEMBERS} distinct addresses"),
            )
            .into());
        }
        let after = cursor_text
            .map(|c| crate::params::decode_cursor::<String>(&c))
            .transpose()?
            .map(|h| {
                hex::decode(&h)
                    .ok()
                    .and_then(|b| Sha1::try_from(b).ok())
                    .ok_or_else(|| bad_request("cursor", "not a cursor returned by this page"))
            })
            .transpose()?;
        let mut rows =
            read::overlap_by_ips(&conn, &ips, &window, after.as_ref(), limit + 1).await?;
        let more = rows.len() > limit_rows;
        rows.truncate(limit_rows);
        if more {
            page.next = rows.last().map(|r| {
                links::with_cursor(&base, &encode_cursor(&certhist_model::hex_lower(r.sha1)))
            });
        }
        for (g, r) in rows.iter().enumerate() {
            let name = r
                .cert
                .as_ref()
                .and_then(|c| c.subject_cn.clone())
                .unwrap_or_else(|| short(&r.sha1));
            for ip in &r.periods {
                spans.push(Span {
                    label: truncate(&visible(&format!("{} {}", ip.ip, name)), 40),
                    title: format!(
                        "{} · {} · {} → {}",
                        ip.ip,
                        certhist_model::hex_lower(r.sha1),
                        date(ip.first_seen),
                        date(ip.last_seen)
                    ),
                    href: links::ip(ip.ip),
                    group: g,
                    first: ip.first_seen,
                    last: ip.last_seen,
                });
            }
        }
        page.rows = rows
            .iter()
            .map(|r| OverlapRow {
                cert: Some(
                    r.cert
                        .as_ref()
                        .map_or_else(|| CertCell::hash_only(&r.sha1), CertCell::from_summary),
                ),
                ip: None,
                periods: r
                    .periods
                    .iter()
                    .map(|p| {
                        (
                            Link::to(p.ip.to_string(), links::ip(p.ip)),
                            format!("{} → {}", date(p.first_seen), date(p.last_seen)),
                        )
                    })
                    .collect(),
                intersection: intersection(r.intersection),
            })
            .collect();
    } else {
        let keys = read::resolve_members(&conn, &hashes).await?;
        if !(2..=MAX_MEMBERS).contains(&keys.len()) {
            return Err(bad_request(
                "members",
                format!("give 2 to {MAX_MEMBERS} distinct known certificates"),
            )
            .into());
        }
        let after = cursor_text
            .map(|c| crate::params::decode_cursor::<IpAddr>(&c))
            .transpose()?;
        let mut rows = read::overlap_by_certs(&conn, &keys, &window, after, limit + 1).await?;
        let more = rows.len() > limit_rows;
        rows.truncate(limit_rows);
        if more {
            page.next = rows
                .last()
                .map(|r| links::with_cursor(&base, &encode_cursor(&r.ip)));
        }
        let group: HashMap<Sha1, usize> = keys.iter().enumerate().map(|(i, k)| (*k, i)).collect();
        for r in &rows {
            for c in &r.periods {
                spans.push(Span {
                    label: format!("{} {}", r.ip, short(&c.sha1)),
                    title: format!(
                        "{} · {} · {} → {}",
                        r.ip,
                        certhist_model::hex_lower(c.sha1),
                        date(c.first_seen),
                        date(c.last_seen)
                    ),
                    href: links::cert(&c.sha1),
                    group: group.get(&c.sha1).copied().unwrap_or(0),
                    first: c.first_seen,
                    last: c.last_seen,
                });
            }
        }
        page.rows = rows
            .iter()
            .map(|r| OverlapRow {
                cert: None,
                ip: Some(Link::to(r.ip.to_string(), links::ip(r.ip))),
                periods: r
                    .periods
                    .iter()
                    .map(|c| {
                        (
                            Link::to(short(&c.sha1), links::cert(&c.sha1)),
                            format!("{} → {}", date(c.first_seen), date(c.last_seen)),
                        )
                    })
                    .collect(),
                intersection: intersection(r.intersection),
            })
            .collect();
    }
    drop(conn);
    page.first_page = had_cursor.then_some(base);
    page.timeline = Timeline::new(&spans);
    Ok(html(StatusCode::OK, &page))
}

fn intersection(p: Option<certhist_model::views::Period>) -> String {
    match p {
        Some(p) => format!(
            "{} → {} ({})",
            date(p.start),
            date(p.end),
            period(p.start, p.end)
        ),
        None => "never at the same time".to_owned(),
    }
}

// ---------------------------------------------------------------- graph

/// A drawn graph node.
#[derive(Debug)]
pub(crate) struct GNode {
    pub x: i64,
    pub y: i64,
    pub is_ip: bool,
    pub class: String,
    pub label: String,
    pub title: String,
    pub href: String,
    pub graph_href: String,
    pub hop: u32,
}

/// A drawn edge.
#[derive(Debug)]
pub(crate) struct GEdge {
    pub x1: i64,
    pub y1: i64,
    pub x2: i64,
    pub y2: i64,
}

#[derive(Template)]
#[template(path = "graph.html")]
struct GraphPage {
    chrome: Chrome,
    title: String,
    seed: String,
    hops: i64,
    max_nodes: i64,
    include_shared: bool,
    asked: bool,
    width: i64,
    height: i64,
    nodes: Vec<GNode>,
    edges: Vec<GEdge>,
    pruned: String,
    json: String,
    stix: String,
    misp: String,
}

/// Largest node budget the page draws.
const GRAPH_MAX_NODES: i64 = 300;
const COL_W: i64 = 300;
const ROW_H: i64 = 26;

/// `/graph?seed=…[&hops=…][&max_nodes=…][&include_shared=…]`: the bounded IP ↔ certificate
/// graph around a seed (the API's `expand`), drawn as SVG with a deterministic layered layout:
/// one column per hop, nodes in discovery order; every node links to its page.
pub(crate) async fn graph(
    principal: Viewer,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> PageResult {
    principal.require(Role::Reader)?;
    let config = &state.config;
    let mut p = Params::parse(raw.as_deref())?;
    let seed_text = p.one("seed")?.unwrap_or_default();
    let hops = p
        .int("hops", 1, i64::from(config.max_expand_hops))?
        .unwrap_or(2);
    let max_nodes = p
        .int(
            "max_nodes",
            1,
            GRAPH_MAX_NODES.min(i64::try_from(config.max_expand_nodes).unwrap_or(i64::MAX)),
        )?
        .unwrap_or(60);
    let include_shared = p.boolean("include_shared")?.unwrap_or(false);
    let window = p.window()?;
    p.finish()?;
    let mut page = GraphPage {
        chrome: Chrome::new(&principal, seed_text.clone()),
        title: "Graph".to_owned(),
        seed: seed_text.clone(),
        hops,
        max_nodes,
        include_shared,
        asked: !seed_text.trim().is_empty(),
        width: 0,
        height: 0,
        nodes: Vec::new(),
        edges: Vec::new(),
        pruned: String::new(),
        json: String::new(),
        stix: links::export("stix", &[("seed", seed_text.trim())]),
        misp: links::export("misp", &[("seed", seed_text.trim())]),
    };
    if !page.asked {
        return Ok(html(StatusCode::OK, &page));
    }
    let seed = match read::Seed::parse(&seed_text) {
        read::Seed::Net(_) => read::Seed::Net(ip_or_cidr("seed", &seed_text, config)?),
        other => other,
    };
    let request = read::ExpandRequest {
        seed_text: seed_text.clone(),
        seed,
        hops: u32::try_from(hops).unwrap_or(1),
        max_nodes: usize::try_from(max_nodes).unwrap_or(1),
        shared_threshold: config.shared_threshold,
        include_shared,
        window,
    };
    let conn = state.read_conn().await?;
    let g = read::expand(&conn, &request).await?;
    drop(conn);
    // Layout: column = hop, row = order of discovery within the hop.
    let mut per_hop: HashMap<u32, i64> = HashMap::new();
    let mut pos: HashMap<&str, (i64, i64)> = HashMap::new();
    for n in &g.nodes {
        let row = per_hop.entry(n.hop).or_insert(0);
        let x = 40 + i64::from(n.hop) * COL_W;
        let y = 24 + *row * ROW_H;
        *row += 1;
        pos.insert(n.id.as_str(), (x, y));
    }
    let rows = per_hop.values().copied().max().unwrap_or(1);
    let cols = per_hop
        .keys()
        .copied()
        .max()
        .map_or(1, |h| i64::from(h) + 1);
    page.width = (cols * COL_W).max(600);
    page.height = 24 + rows * ROW_H;
    let graph_link = |seed: &str| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        s.append_pair("seed", seed);
        s.append_pair("hops", &hops.to_string());
        s.append_pair("max_nodes", &max_nodes.to_string());
        if include_shared {
            s.append_pair("include_shared", "true");
        }
        format!("/graph?{}", s.finish())
    };
    page.edges = g
        .edges
        .iter()
        .filter_map(|e| {
            let a = pos.get(e.ip.to_string().as_str())?;
            let b = pos.get(certhist_model::hex_lower(e.sha1).as_str())?;
            Some(GEdge {
                x1: a.0,
                y1: a.1,
                x2: b.0,
                y2: b.1,
            })
        })
        .collect();
    page.nodes = g
        .nodes
        .iter()
        .map(|n| {
            let (x, y) = pos.get(n.id.as_str()).copied().unwrap_or((0, 0));
            let is_ip = n.kind == certhist_model::views::NodeKind::Ip;
            let shared = n.shared == Some(true);
            let href = if is_ip {
                n.id.parse::<IpAddr>().map(links::ip).unwrap_or_default()
            } else {
                format!("/certificate/{}", hex_only(&n.id))
            };
            let name = n.label.clone().unwrap_or_else(|| {
                if is_ip {
                    n.id.clone()
                } else {
                    n.id.get(..12).unwrap_or(&n.id).to_owned()
                }
            });
            GNode {
                x,
                y,
                is_ip,
                class: format!(
                    "node {}{}{}",
                    if is_ip { "ip" } else { "cert" },
                    if shared { " shared" } else { "" },
                    if n.hop == 0 { " seed" } else { "" }
                ),
                label: truncate(&visible(&name), 34),
                title: format!(
                    "{}{}{}",
                    visible(&n.id),
                    n.distinct_ips
                        .map(|d| format!(" · on {d} addresses"))
                        .unwrap_or_default(),
                    if shared {
                        " · shared (not expanded)"
                    } else {
                        ""
                    }
                ),
                graph_href: graph_link(&n.id),
                href,
                hop: n.hop,
            }
        })
        .collect();
    let mut pruned = Vec::new();
    if !g.pruned.shared_certificates.is_empty() {
        pruned.push(format!(
            "{} shared certificate(s) not expanded",
            g.pruned.shared_certificates.len()
        ));
    }
    if g.pruned.node_limit_reached {
        pruned.push(format!("node budget of {max_nodes} reached"));
    }
    if g.pruned.unexpanded_nodes > 0 {
        pruned.push(format!(
            "{} node(s) at the edge not expanded",
            g.pruned.unexpanded_nodes
        ));
    }
    page.pruned = pruned.join(" · ");
    page.json = format!(
        "/api/v1/expand?{}",
        graph_link(&seed_text).trim_start_matches("/graph?")
    );
    Ok(html(StatusCode::OK, &page))
}

/// `/graph?seed=…` with the default controls.
fn graph_href(seed: &str) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    s.append_pair("seed", seed);
    format!("/graph?{}", s.finish())
}

/// Keeps only hex digits (node ids of certificates are SHA-1 hex).
fn hex_only(s: &str) -> String {
    s.chars().filter(char::is_ascii_hexdigit).collect()
}

// ---------------------------------------------------------------- CSV exports

/// Most rows a CSV export holds (NDJSON streams everything).
const CSV_MAX_ROWS: usize = 100_000;

/// One CSV field (RFC 4180 quoting). A value that a spreadsheet would read as a formula
/// (`=`, `+`, `-`, `@`, tab, CR at the start) gets a leading `'`: certificate text is
/// attacker-controlled.
fn csv_field(out: &mut String, value: &str) {
    let guarded = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let needs_quotes = guarded || value.contains([',', '"', '\n', '\r']);
    if needs_quotes {
        out.push('"');
        if guarded {
            out.push('\'');
        }
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

fn csv_line(out: &mut String, fields: &[&str]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(out, f);
    }
    out.push_str("\r\n");
}

fn csv_response(body: String, name: &'static str) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (header::CONTENT_DISPOSITION, HeaderValue::from_static(name)),
        ],
        body,
    )
        .into_response()
}

fn rfc3339(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// `/export/ip.csv?ip=…[&since=…][&until=…]`: an address's (or block's) history as CSV.
pub(crate) async fn export_ip_csv(
    principal: Viewer,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, crate::ApiError> {
    principal.require(Role::Reader)?;
    let (ip, rest) = take_param(raw.as_deref(), "ip")?;
    let mut p = Params::parse(rest.as_deref())?;
    let net = ip_or_cidr("ip", &ip, &state.config)?;
    let window = p.window()?;
    p.finish()?;
    let conn = state.read_conn().await?;
    let mut out = String::new();
    csv_line(
        &mut out,
        &[
            "ip",
            "port",
            "sha1",
            "subject_cn",
            "issuer_cn",
            "not_before",
            "not_after",
            "first_seen",
            "last_seen",
            "times_seen",
            "sources",
            "tags",
        ],
    );
    let mut after = None;
    let mut n = 0;
    loop {
        let rows = read::ip_history(
            &conn,
            &net,
            &window,
            after.as_ref(),
            crate::ndjson::STREAM_PAGE,
        )
        .await?;
        for r in &rows {
            let c = r.cert.as_ref();
            csv_line(
                &mut out,
                &[
                    &r.ip.to_string(),
                    &r.port.to_string(),
                    &certhist_model::hex_lower(r.sha1),
                    c.and_then(|c| c.subject_cn.as_deref()).unwrap_or_default(),
                    c.and_then(|c| c.issuer_cn.as_deref()).unwrap_or_default(),
                    &rfc3339(c.and_then(|c| c.not_before)),
                    &rfc3339(c.and_then(|c| c.not_after)),
                    &rfc3339(Some(r.first_seen)),
                    &rfc3339(Some(r.last_seen)),
                    &r.times_seen.to_string(),
                    &r.sources.join(" "),
                    &r.tags.join(" "),
                ],
            );
        }
        n += rows.len();
        match crate::routes::stream_next(&rows, |r| (r.ip, r.port, r.sha1)) {
            Some(k) if n < CSV_MAX_ROWS => after = Some(k),
            _ => break,
        }
    }
    Ok(csv_response(
        out,
        "attachment; filename=\"certhist-ip.csv\"",
    ))
}

/// `/export/search.csv?field=…&q=…[&match=…][&valid_at=…]`: field search hits as CSV.
pub(crate) async fn export_search_csv(
    principal: Viewer,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    principal.require(Role::Reader)?;
    let mut p = Params::parse(raw.as_deref())?;
    let field_text = p.required("field")?;
    let field = read::search::parse_field(&field_text).map_err(|e| bad_request("field", e))?;
    let q = p.required("q")?;
    let mode = p.one("match")?;
    let pattern = pattern(mode.as_deref(), &q)?;
    let validity = ValidityFilter {
        valid_at: p.timestamp("valid_at")?,
        ..ValidityFilter::default()
    };
    p.finish()?;
    let conn = state.read_conn().await?;
    let mut out = String::new();
    csv_line(
        &mut out,
        &[
            "matched",
            "sha1",
            "sha256",
            "serial",
            "subject_cn",
            "subject_o",
            "issuer_cn",
            "issuer_o",
            "not_before",
            "not_after",
            "tags",
        ],
    );
    let mut after: Option<SearchKey> = None;
    let mut n = 0;
    loop {
        let rows = read::search_filtered(
            &conn,
            field,
            &pattern,
            &validity,
            after.as_ref(),
            crate::ndjson::STREAM_PAGE,
        )
        .await?;
        for r in &rows {
            let c = &r.cert;
            csv_line(
                &mut out,
                &[
                    &r.matched,
                    &certhist_model::hex_lower(c.sha1),
                    &certhist_model::hex_lower(c.sha256),
                    &c.serial.as_ref().map(Serial::to_hex).unwrap_or_default(),
                    c.subject_cn.as_deref().unwrap_or_default(),
                    c.subject_o.as_deref().unwrap_or_default(),
                    c.issuer_cn.as_deref().unwrap_or_default(),
                    c.issuer_o.as_deref().unwrap_or_default(),
                    &rfc3339(c.not_before),
                    &rfc3339(c.not_after),
                    &c.tags.join(" "),
                ],
            );
        }
        n += rows.len();
        match crate::routes::stream_next(&rows, |r| (r.matched.clone(), r.cert.sha1)) {
            Some(k) if n < CSV_MAX_ROWS => after = Some(k),
            _ => break,
        }
    }
    Ok(csv_response(
        out,
        "attachment; filename=\"certhist-search.csv\"",
    ))
}

#[cfg(test)]
mod tests {
    use super::csv_line;

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let mut out = String::new();
        csv_line(
            &mut out,
            &[
                "plain",
                "a,b",
                "say \"hi\"",
                "=HYPERLINK(\"x\")",
                "-1",
                "two\nlines",
            ],
        );
        assert_eq!(
            out,
            "plain,\"a,b\",\"say \"\"hi\"\"\",\"'=HYPERLINK(\"\"x\"\")\",\"'-1\",\"two\nlines\"\r\n"
        );
    }
}
