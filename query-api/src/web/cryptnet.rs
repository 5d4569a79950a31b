//! The cryptnet page (`/cryptnet`): a CryptnetUrlCache collected from a suspect machine, or OCSP
//! URLs pasted from anywhere, turned into the report of `certhist cryptnet` — time, URL, the
//! CertID inside each OCSP request, the certificate it names, its names and the addresses that
//! served it with their periods — every value a link into the rest of the UI.
//!
//! The analysis is the library's (`certhist_cryptnet::analyze`, CertIDs resolved against this
//! database only; crt.sh is never asked from a page), the same as the CLI and
//! `/api/v1/uploads/cryptnet` run.
//!
//! Roles: **pasting URLs** (`POST /cryptnet`, a form) resolves and stores nothing, so readers may;
//! **uploading a cache** (`POST /cryptnet/upload`, multipart: `csrf` first, `label`, `file`)
//! needs the analyst role, as the API's upload does, and when a label is given the entries and
//! the certificates found in the cache are stored under it (audited as `upload.cryptnet`).
//! Without a label the upload is analysed and discarded.

use askama::Template;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use certhist_cryptnet::{analyze, inputs::urls_from_text, load_paths, AnalyzeOptions, ResolveMode};
use certhist_model::views::cryptnet::{CertIdMatch, CryptnetRow};
use certhist_model::views::Role;
use certhist_store::AuditEntry;

use super::pages::Link;
use super::{html, links, visible, Chrome, PageError, Viewer};
use crate::error::{bad_request, shorten, ApiError};
use crate::AppState;

type PageResult = Result<Response, PageError>;

/// Most URLs read from one paste.
const MAX_PASTED_URLS: usize = 1000;
/// Largest cache upload held for analysis (the server's upload limit applies first).
const MAX_UPLOAD_BYTES: usize = 256 << 20;
/// Longest collection label.
const MAX_LABEL_CHARS: usize = 200;

/// An address that served a matched certificate.
#[derive(Debug)]
pub(crate) struct HostCell {
    pub ip: String,
    pub href: String,
    pub port: u16,
    pub period: String,
}

/// A certificate matching a CertID.
#[derive(Debug)]
pub(crate) struct MatchCell {
    pub sha1: String,
    pub href: String,
    pub kind: &'static str,
    pub subject: String,
    pub names: Vec<Link>,
    pub hosts: Vec<HostCell>,
}

/// One report row.
#[derive(Debug)]
pub(crate) struct ReportRow {
    pub time: String,
    pub url: String,
    pub kind: &'static str,
    /// The CertID's serial, linked to the serial page (narrowed to the issuer hashes when SHA-1).
    pub serial: Option<Link>,
    pub algorithm: String,
    pub name_hash: String,
    pub key_hash: String,
    pub status: String,
    pub issuer: String,
    pub matches: Vec<MatchCell>,
    pub errors: Vec<String>,
}

/// What was analysed and what came out.
#[derive(Debug)]
pub(crate) struct Report {
    pub what: String,
    pub rows: Vec<ReportRow>,
    pub resolved: usize,
    pub warnings: Vec<String>,
}

#[derive(Template)]
#[template(path = "cryptnet.html")]
struct CryptnetPage {
    chrome: Chrome,
    title: String,
    urls: String,
    report: Option<Report>,
}

fn page_response(viewer: &Viewer, urls: String, report: Option<Report>) -> Response {
    html(
        StatusCode::OK,
        &CryptnetPage {
            chrome: Chrome::new(viewer, ""),
            title: "Cryptnet cache".to_owned(),
            urls,
            report,
        },
    )
}

/// `GET /cryptnet`: the upload and paste forms.
pub(crate) async fn page(viewer: Viewer) -> PageResult {
    viewer.require(Role::Reader)?;
    Ok(page_response(&viewer, String::new(), None))
}

fn day(t: chrono::DateTime<chrono::Utc>) -> String {
    certhist_model::ymd(t)
}

fn match_cell(m: &CertIdMatch) -> MatchCell {
    let sha1_bytes = hex::decode(&m.sha1).unwrap_or_default();
    MatchCell {
        href: links::cert(&sha1_bytes),
        sha1: certhist_model::hex_lower(&sha1_bytes),
        kind: m.match_kind.as_str(),
        subject: visible(m.subject.as_deref().unwrap_or_default()),
        names: m
            .names
            .iter()
            .map(|n| Link::to(n, links::exact("name", n)))
            .collect(),
        hosts: m
            .hosts
            .iter()
            .map(|h| HostCell {
                ip: h.ip.to_string(),
                href: links::ip(h.ip),
                port: h.port,
                period: format!(
                    "{} → {} ({}×)",
                    day(h.first_seen),
                    day(h.last_seen),
                    h.times_seen
                ),
            })
            .collect(),
    }
}

fn report_row(r: &CryptnetRow) -> ReportRow {
    let sha1_ids = r.hash_algorithm.as_deref() == Some("sha1");
    ReportRow {
        time: r
            .time
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default(),
        url: visible(r.url.as_deref().unwrap_or_default()),
        kind: r.kind.as_str(),
        serial: r.serial.as_deref().map(|s| {
            let (n, k) = if sha1_ids {
                (r.issuer_name_hash.as_deref(), r.issuer_key_hash.as_deref())
            } else {
                (None, None)
            };
            Link::to(s, links::serial(s, n, k))
        }),
        algorithm: visible(r.hash_algorithm.as_deref().unwrap_or_default()),
        name_hash: visible(r.issuer_name_hash.as_deref().unwrap_or_default()),
        key_hash: visible(r.issuer_key_hash.as_deref().unwrap_or_default()),
        status: r.status.map(|s| s.as_str().to_owned()).unwrap_or_default(),
        issuer: visible(
            r.resolution
                .as_ref()
                .and_then(|res| res.issuer.as_deref())
                .or(r.issuer.as_deref())
                .unwrap_or_default(),
        ),
        matches: r
            .resolution
            .iter()
            .flat_map(|res| res.certs.iter())
            .map(match_cell)
            .collect(),
        errors: r.errors.iter().map(|e| visible(e)).collect(),
    }
}

fn report(what: String, rows: &[CryptnetRow], warnings: &[String]) -> Report {
    Report {
        what,
        resolved: rows
            .iter()
            .filter(|r| r.resolution.as_ref().is_some_and(|res| res.resolved()))
            .count(),
        rows: rows.iter().map(report_row).collect(),
        warnings: warnings.iter().map(|w| visible(w)).collect(),
    }
}

fn internal(e: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "cryptnet page");
    ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        detail: "internal error; the server log has the details".to_owned(),
    }
}

fn analysis_error(e: certhist_cryptnet::CryptnetError) -> ApiError {
    match e {
        certhist_cryptnet::CryptnetError::Store(e) => e.into(),
        other => internal(&other),
    }
}

/// `POST /cryptnet` (form field `urls`): the report of pasted OCSP (or any) URLs, resolved against
/// this database; nothing is stored (reader).
pub(crate) async fn paste(
    State(state): State<AppState>,
    viewer: Viewer,
    body: Bytes,
) -> PageResult {
    viewer.require(Role::Reader)?;
    let text = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "urls")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let mut entries = urls_from_text("pasted", &text);
    if entries.is_empty() {
        return Err(bad_request(
            "urls",
            "no http:// or https:// URLs in the text (paste OCSP GET URLs, one per line)",
        )
        .into());
    }
    if entries.len() > MAX_PASTED_URLS {
        return Err(bad_request(
            "urls",
            format!(
                "{} URLs pasted; at most {MAX_PASTED_URLS} at a time (upload a file for more)",
                entries.len()
            ),
        )
        .into());
    }
    for e in &mut entries {
        // `pasted:3` → `line 3`.
        e.source = e.source.replacen("pasted:", "line ", 1);
    }
    let options = AnalyzeOptions {
        resolve: ResolveMode::Local,
        store_label: None,
        ..AnalyzeOptions::default()
    };
    let analysis = analyze(&entries, &options, &state.store, &|_| {})
        .await
        .map_err(analysis_error)?;
    let what = format!(
        "{} pasted URL(s), resolved against this database; nothing stored",
        entries.len()
    );
    Ok(page_response(
        &viewer,
        text,
        Some(report(what, &analysis.rows, &analysis.warnings)),
    ))
}

/// One part of a `multipart/form-data` body.
struct Part<'a> {
    name: String,
    filename: Option<String>,
    data: &'a [u8],
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A parameter (`name="…"`) of a Content-Disposition header.
fn disposition_param(header_line: &str, key: &str) -> Option<String> {
    header_line.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(key)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// Splits a whole `multipart/form-data` body into its parts.
fn parts<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<Part<'a>>, ApiError> {
    let bad = |why: &str| bad_request("body", format!("not a multipart form: {why}"));
    let delim = format!("--{boundary}");
    let next_delim = format!("\r\n--{boundary}");
    let start = find(body, delim.as_bytes()).ok_or_else(|| bad("no boundary"))?;
    let mut rest = &body[start + delim.len()..];
    let mut out = Vec::new();
    loop {
        if rest.starts_with(b"--") {
            return Ok(out);
        }
        rest = rest
            .strip_prefix(b"\r\n")
            .ok_or_else(|| bad("a boundary without a line end"))?;
        let head_end = find(rest, b"\r\n\r\n").ok_or_else(|| bad("a part without headers"))?;
        let head = String::from_utf8_lossy(&rest[..head_end]).into_owned();
        let after_head = &rest[head_end + 4..];
        let end =
            find(after_head, next_delim.as_bytes()).ok_or_else(|| bad("a part is cut off"))?;
        let disposition = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
            .unwrap_or_default();
        out.push(Part {
            name: disposition_param(disposition, "name").unwrap_or_default(),
            filename: disposition_param(disposition, "filename"),
            data: &after_head[..end],
        });
        rest = &after_head[end + next_delim.len()..];
    }
}

/// A file name safe to create in a fresh temporary directory (the upload's own name when it is
/// plain, else `upload`).
fn spool_name(name: Option<&str>) -> String {
    let base = name
        .unwrap_or_default()
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default();
    let ok = !base.is_empty()
        && base.len() <= 100
        && !base.starts_with('.')
        && base
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        base.to_owned()
    } else {
        "upload".to_owned()
    }
}

/// `POST /cryptnet/upload` (multipart: `csrf`, `label`, `file`): a collected cache (zip of a
/// CryptnetUrlCache folder, a certutil dump or a URL list), analysed; stored under `label` when
/// one is given (analyst).
pub(crate) async fn upload(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    body: Body,
) -> PageResult {
    viewer.require(Role::Analyst)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let boundary = content_type
        .split(';')
        .skip(1)
        .find_map(|p| {
            let (k, v) = p.trim().split_once('=')?;
            k.eq_ignore_ascii_case("boundary")
                .then(|| v.trim_matches('"').to_owned())
        })
        .filter(|b| !b.is_empty() && content_type.starts_with("multipart/form-data"))
        .ok_or_else(|| bad_request("body", "send the upload form (multipart/form-data)"))?;
    let limit = usize::try_from(state.config.upload_limit_bytes)
        .unwrap_or(usize::MAX)
        .min(MAX_UPLOAD_BYTES);
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            detail: format!("the upload is larger than {limit} bytes, or it was cut off"),
        })?;
    let all = parts(&bytes, &boundary)?;
    let label = all
        .iter()
        .find(|p| p.name == "label")
        .map(|p| String::from_utf8_lossy(p.data).trim().to_owned())
        .filter(|l| !l.is_empty());
    if let Some(l) = &label {
        if l.chars().count() > MAX_LABEL_CHARS || l.chars().any(char::is_control) {
            return Err(bad_request(
                "label",
                format!("at most {MAX_LABEL_CHARS} characters, no control characters"),
            )
            .into());
        }
    }
    let file = all
        .iter()
        .find(|p| p.name == "file")
        .filter(|p| !p.data.is_empty())
        .ok_or_else(|| {
            bad_request(
                "file",
                "choose a file to upload (a zip of the cache folder)",
            )
        })?;
    let shown_name = visible(file.filename.as_deref().unwrap_or("upload"));
    let dir = tempfile::Builder::new()
        .prefix("certhist-cryptnet-")
        .tempdir_in(
            state
                .config
                .upload_dir
                .clone()
                .unwrap_or_else(std::env::temp_dir),
        )
        .map_err(|e| internal(&e))?;
    let path = dir.path().join(spool_name(file.filename.as_deref()));
    let size = file.data.len();
    let data = file.data.to_vec();
    drop(all);
    let loaded = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || {
            std::fs::write(&path, &data)?;
            Ok::<_, std::io::Error>(load_paths(&[path], &|_| {}))
        })
        .await
        .map_err(|e| internal(&e))?
        .map_err(|e| internal(&e))?
    };
    let spooled = path.display().to_string();
    let hide = |s: &str| s.replace(&spooled, &shown_name);
    if loaded.entries.is_empty() {
        let why = loaded
            .warnings
            .first()
            .map(|w| format!(" ({})", shorten(&hide(w))))
            .unwrap_or_default();
        return Err(bad_request(
            "file",
            format!("no CryptnetUrlCache entries found in the upload{why}"),
        )
        .into());
    }
    let mut entries = loaded.entries;
    for e in &mut entries {
        e.source = hide(&e.source);
    }
    let options = AnalyzeOptions {
        resolve: ResolveMode::Local,
        store_label: label.clone(),
        ..AnalyzeOptions::default()
    };
    let analysis = analyze(&entries, &options, &state.import_store, &|_| {})
        .await
        .map_err(analysis_error)?;
    drop(dir);
    let mut warnings: Vec<String> = loaded.warnings.iter().map(|w| hide(w)).collect();
    warnings.extend(analysis.warnings.iter().map(|w| hide(w)));
    if let Some(l) = &label {
        let entry = AuditEntry {
            actor: viewer.actor(),
            action: "upload.cryptnet".to_owned(),
            target: Some(l.clone()),
            source: viewer.source_text(),
            detail: Some(serde_json::json!({
                "file": shown_name,
                "size_bytes": size,
                "rows": analysis.rows.len(),
                "via": "web",
            })),
        };
        match state.store.conn().await {
            Ok(conn) => {
                if let Err(e) = conn.audit(&entry).await {
                    tracing::error!(error = %e, "cannot audit a cryptnet upload");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot audit a cryptnet upload"),
        }
    }
    let what = match &label {
        Some(l) => format!(
            "{shown_name} ({size} bytes, {} cache entries): stored under label {}",
            entries.len(),
            visible(l)
        ),
        None => format!(
            "{shown_name} ({size} bytes, {} cache entries): analysed, not stored (no label given)",
            entries.len()
        ),
    };
    Ok(page_response(
        &viewer,
        String::new(),
        Some(report(what, &analysis.rows, &warnings)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_parts_are_split() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\ntok\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.zip\"\r\nContent-Type: application/zip\r\n\r\nPK\x03\x04\r\n--x\r\n--XyZ--\r\n";
        let p = parts(body, "XyZ").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].name.as_str(), p[0].data), ("csrf", &b"tok"[..]));
        assert_eq!(p[1].filename.as_deref(), Some("a.zip"));
        assert_eq!(p[1].data, b"PK\x03\x04\r\n--x");
        assert!(parts(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end",
            "XyZ"
        )
        .is_err());
    }

    #[test]
    fn spool_names_are_plain() {
        assert_eq!(spool_name(Some("cache.zip")), "cache.zip");
        assert_eq!(spool_name(Some("C:\\Users\\x\\cache.zip")), "cache.zip");
        assert_eq!(spool_name(Some("../../etc/passwd")), "passwd");
        assert_eq!(spool_name(Some("..")), "upload");
        assert_eq!(spool_name(Some("a b.zip")), "upload");
        assert_eq!(spool_name(None), "upload");
    }
}
