//! `POST /api/v1/uploads/…` (issue 12, analyst role): observation files, certificates, scan
//! files, CryptnetUrlCache zips and passive-sensor input (issue 19: packet captures, Zeek logs —
//! one ssl.log or a zip of a log directory — and Suricata eve.json) sent as the request body.
//!
//! Every upload is spooled to a temporary file first (bounded by `upload_limit_bytes`), and only
//! a body received completely is imported — by the same import driver and formats as
//! `certhist import` (`certhist_files::import_files`) or the same analysis as `certhist cryptnet
//! --store` — so an upload cut off mid-stream writes nothing. The file name given with
//! `filename` plays the part of the CLI's file name (the default source label of observations,
//! the scan date in a Sonar hosts file name, the port in a ZGrab2 file name `…_443.json`).
//! Each upload that reaches the database is audited (`upload.observations`, …).

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use certhist_files::{
    import_files, CertificateFiles, FileFormat, ImportError, ImportOptions, ImportReport,
    NoProgress, ObservationFiles,
};
use certhist_model::views::{
    CryptnetUpload, Role, UploadProblem, UploadSummary, UPLOAD_PROBLEMS_LISTED,
};
use certhist_scan::formats::{
    MasscanFiles, NmapFiles, SonarCertsFile, SonarHostsFile, Zgrab2Files,
};
use certhist_store::AuditEntry;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::auth::Principal;
use crate::error::{bad_request, shorten, ApiError};
use crate::params::Params;
use crate::{json, AppState};

/// Longest label or source accepted, in characters.
const MAX_LABEL_CHARS: usize = 200;

/// Observations as CSV, TSV or NDJSON (gzip / bzip2 accepted): the body of `certhist import
/// observations`. The layout is detected from the first line, as the CLI does; `format` or the
/// Content-Type only has to name a supported one.
#[utoipa::path(
    post,
    path = "/api/v1/uploads/observations",
    tag = "certhist",
    params(
        ("format" = Option<crate::params::UploadFormatName>, Query, description = "`csv`, `tsv` or `ndjson` (default: from the Content-Type; the layout itself is detected from the first line)"),
        ("filename" = Option<String>, Query, min_length = 1, description = "Name of the uploaded file (default `upload`): the default source label"),
        ("source" = Option<String>, Query, min_length = 1, description = "Source label for rows that name none (default: the file name)"),
        ("force" = Option<bool>, Query, description = "Import even if these exact bytes were imported before (counts are added again)"),
    ),
    request_body(content = String, description = "The file: `ip,port,sha1,first_seen,last_seen[,count][,source]` rows (header optional), TSV, or NDJSON objects with those names", content_type = "text/csv"),
    responses(
        (status = 200, description = "Imported; every row was good", body = UploadSummary),
        (status = 207, description = "Imported; some rows were bad (listed with line numbers)", body = UploadSummary),
        (status = 400, description = "Bad parameter, empty or cut-off body, unreadable compression", body = crate::error::ErrorBody),
        (status = 403, description = "Needs the analyst role", body = crate::error::ErrorBody),
        (status = 409, description = "The same bytes are being imported right now", body = crate::error::ErrorBody),
        (status = 413, description = "Body larger than the server's upload limit", body = crate::error::ErrorBody),
        (status = 415, description = "Unsupported format or Content-Type", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn observations(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    principal.require(Role::Analyst)?;
    let mut params = Params::parse(raw.as_deref())?;
    observation_format(params.one("format")?.as_deref(), &headers)?;
    let filename = file_name(params.one("filename")?, "upload")?;
    let source = params
        .one("source")?
        .map(|s| label("source", s))
        .transpose()?;
    let force = params.boolean("force")?.unwrap_or(false);
    params.finish()?;
    let spooled = spool(&state, body, &filename).await?;
    let format = ObservationFiles { source };
    let options = ImportOptions {
        force,
        ..ImportOptions::default()
    };
    detached(async move {
        run_import(
            &state,
            &principal,
            "upload.observations",
            Arc::new(format),
            &spooled,
            &options,
        )
        .await
    })
    .await
}

/// Certificates: PEM, DER, or any text with PEM blocks or base64 DER in it (gzip / bzip2
/// accepted): the body of `certhist import certs`.
#[utoipa::path(
    post,
    path = "/api/v1/uploads/certificates",
    tag = "certhist",
    params(
        ("filename" = Option<String>, Query, min_length = 1, description = "Name of the uploaded file (default `upload.pem`), for messages and the audit log"),
    ),
    request_body(content = String, description = "PEM, DER, or text holding certificates", content_type = "application/x-pem-file"),
    responses(
        (status = 200, description = "Imported; nothing was bad", body = UploadSummary),
        (status = 207, description = "Imported; some blocks were bad (listed)", body = UploadSummary),
        (status = 400, description = "Bad parameter, empty or cut-off body", body = crate::error::ErrorBody),
        (status = 403, description = "Needs the analyst role", body = crate::error::ErrorBody),
        (status = 413, description = "Body larger than the server's upload limit", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn certificates(
    State(state): State<AppState>,
    principal: Principal,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    principal.require(Role::Analyst)?;
    let mut params = Params::parse(raw.as_deref())?;
    let filename = file_name(params.one("filename")?, "upload.pem")?;
    params.finish()?;
    let spooled = spool(&state, body, &filename).await?;
    detached(async move {
        run_import(
            &state,
            &principal,
            "upload.certificates",
            Arc::new(CertificateFiles),
            &spooled,
            &ImportOptions::default(),
        )
        .await
    })
    .await
}

/// A scan file in one of the formats `certhist import` reads: `zgrab2`, `nmap`, `masscan`,
/// `sonar-certs` (`sha1,base64-DER` lines) or `sonar-hosts` (`ip,sha1` lines).
#[utoipa::path(
    post,
    path = "/api/v1/uploads/scan/{format}",
    tag = "certhist",
    params(
        ("format" = crate::params::ScanFormatName, Path, description = "`zgrab2`, `nmap`, `masscan`, `sonar-certs` or `sonar-hosts`"),
        ("filename" = Option<String>, Query, min_length = 1, description = "Name of the uploaded file (a Sonar hosts file's name gives its scan date, a ZGrab2 file name ending in `_<port>` its port)"),
        ("label" = Option<String>, Query, min_length = 1, description = "Source label of the sightings (default: the format name)"),
        ("port" = Option<u16>, Query, minimum = 0, maximum = 65535, description = "zgrab2: port of records that state none; sonar-hosts: port of the sightings (default from the file name, else 443)"),
        ("date" = Option<String>, Query, min_length = 1, description = "sonar-hosts: scan date YYYYMMDD or YYYY-MM-DD (default: from the file name)"),
        ("force" = Option<bool>, Query, description = "Import even if these exact bytes were imported before (counts are added again)"),
    ),
    request_body(content = String, description = "The scan file (gzip / bzip2 accepted)", content_type = "application/octet-stream"),
    responses(
        (status = 200, description = "Imported; nothing was bad", body = UploadSummary),
        (status = 207, description = "Imported; some records were bad (listed with line numbers)", body = UploadSummary),
        (status = 400, description = "Bad parameter, empty or cut-off body", body = crate::error::ErrorBody),
        (status = 403, description = "Needs the analyst role", body = crate::error::ErrorBody),
        (status = 404, description = "Unknown scan format", body = crate::error::ErrorBody),
        (status = 409, description = "The same bytes are being imported right now", body = crate::error::ErrorBody),
        (status = 413, description = "Body larger than the server's upload limit", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn scan(
    State(state): State<AppState>,
    principal: Principal,
    Path(format_name): Path<String>,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    principal.require(Role::Analyst)?;
    let mut params = Params::parse(raw.as_deref())?;
    let filename = params.one("filename")?;
    let label = params
        .one("label")?
        .map(|l| label("label", l))
        .transpose()?;
    let port = params
        .int("port", 0, i64::from(u16::MAX))?
        .map(|p| u16::try_from(p).unwrap_or_default());
    let date = params.one("date")?.map(|d| scan_date(&d)).transpose()?;
    let force = params.boolean("force")?.unwrap_or(false);
    let no = |name: &str| bad_request(name, format!("not used by the {format_name} format"));
    let (format, default_file): (Arc<dyn FileFormat>, &str) = match format_name.as_str() {
        "zgrab2" => {
            if date.is_some() {
                return Err(no("date"));
            }
            let source = label.unwrap_or_else(|| "zgrab2".to_owned());
            (Arc::new(Zgrab2Files { port, source }), "upload.json")
        }
        "nmap" | "masscan" | "sonar-certs" => {
            if date.is_some() {
                return Err(no("date"));
            }
            if port.is_some() {
                return Err(no("port"));
            }
            match format_name.as_str() {
                "nmap" => {
                    let source = label.unwrap_or_else(|| "nmap".to_owned());
                    (Arc::new(NmapFiles { source }), "upload.xml")
                }
                "masscan" => {
                    let source = label.unwrap_or_else(|| "masscan".to_owned());
                    (Arc::new(MasscanFiles { source }), "upload.masscan")
                }
                _ => {
                    let source = label.unwrap_or_else(|| "sonar".to_owned());
                    (Arc::new(SonarCertsFile { source }), "upload-certs")
                }
            }
        }
        "sonar-hosts" => {
            let source = label.unwrap_or_else(|| "sonar".to_owned());
            (
                Arc::new(SonarHostsFile { date, port, source }),
                "upload-hosts",
            )
        }
        other => {
            return Err(crate::error::not_found(format!(
                "no scan format {:?}; use zgrab2, nmap, masscan, sonar-certs or sonar-hosts",
                shorten(other)
            )))
        }
    };
    let filename = file_name(filename, default_file)?;
    params.finish()?;
    // Settings that depend on the file name (a Sonar hosts file's date) fail before the body is
    // read.
    format
        .kind(FsPath::new(&filename))
        .map_err(|e| import_error(e, &filename))?;
    let spooled = spool(&state, body, &filename).await?;
    let options = ImportOptions {
        force,
        ..ImportOptions::default()
    };
    let action = format!("upload.scan.{format_name}");
    detached(
        async move { run_import(&state, &principal, &action, format, &spooled, &options).await },
    )
    .await
}

/// A packet capture (pcap or pcapng; gzip, bzip2 or xz accepted), read as `certhist import pcap`
/// reads it: every server Certificate message is a sighting with its chain stored, TLS 1.3
/// handshakes keep their SNI name, client addresses and client certificates are not stored.
#[utoipa::path(
    post,
    path = "/api/v1/uploads/pcap",
    tag = "certhist",
    params(
        ("filename" = Option<String>, Query, description = "Name of the uploaded file (default `upload.pcap`), for messages and the audit log"),
        ("label" = Option<String>, Query, description = "Source label of the sightings (default `pcap`)"),
        ("force" = Option<bool>, Query, description = "Import even if these exact bytes were imported before (counts are added again)"),
    ),
    request_body(content = String, description = "The capture file", content_type = "application/vnd.tcpdump.pcap"),
    responses(
        (status = 200, description = "Imported; nothing was bad", body = UploadSummary),
        (status = 207, description = "Imported; some handshakes were bad or the capture ends early (listed; what came before is kept)", body = UploadSummary),
        (status = 400, description = "Bad parameter, empty or cut-off body, not a capture", body = crate::error::ErrorBody),
        (status = 403, description = "Needs the analyst role", body = crate::error::ErrorBody),
        (status = 409, description = "The same bytes are being imported right now", body = crate::error::ErrorBody),
        (status = 413, description = "Body larger than the server's upload limit", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn pcap(
    State(state): State<AppState>,
    principal: Principal,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    passive_upload(state, principal, raw, body, Sensor::Pcap).await
}

/// Zeek (or Bro) logs, read as `certhist import zeek` reads them: the body is one `ssl.log` (TSV
/// or JSON, gzip accepted; no x509.log to join, so SHA-256-only records keep no certificate
/// text), or a **zip of a log directory** (recognised by its magic bytes): every `ssl*.log[.gz]`
/// in it is imported with the `x509*.log`, `files*.log` and `extract_files/` beside it, each
/// ssl log with the same identity (its bytes) as when imported from the command line.
#[utoipa::path(
    post,
    path = "/api/v1/uploads/zeek",
    tag = "certhist",
    params(
        ("filename" = Option<String>, Query, description = "Name of the uploaded file (default `ssl.log`, or `zeek.zip` for a zip), for messages and the audit log"),
        ("label" = Option<String>, Query, description = "Source label of the sightings (default `zeek`)"),
        ("force" = Option<bool>, Query, description = "Import even if these exact bytes were imported before (counts are added again)"),
    ),
    request_body(content = String, description = "One ssl.log, or a zip of a Zeek log directory (ssl, x509 and files logs, extract_files/)", content_type = "application/zip"),
    responses(
        (status = 200, description = "Imported; nothing was bad", body = UploadSummary),
        (status = 207, description = "Imported; some records were bad (listed with line numbers, prefixed with the log's path in the zip)", body = UploadSummary),
        (status = 400, description = "Bad parameter, empty or cut-off body, a zip without an ssl log or with a bad entry", body = crate::error::ErrorBody),
        (status = 403, description = "Needs the analyst role", body = crate::error::ErrorBody),
        (status = 409, description = "The same bytes are being imported right now", body = crate::error::ErrorBody),
        (status = 413, description = "Body (or the zip's content) larger than the server's upload limit", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn zeek(
    State(state): State<AppState>,
    principal: Principal,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    passive_upload(state, principal, raw, body, Sensor::Zeek).await
}

/// A Suricata `eve.json` (gzip accepted), read as `certhist import suricata` reads it:
/// `event_type: tls` records, other events skipped.
#[utoipa::path(
    post,
    path = "/api/v1/uploads/suricata",
    tag = "certhist",
    params(
        ("filename" = Option<String>, Query, description = "Name of the uploaded file (default `eve.json`), for messages and the audit log"),
        ("label" = Option<String>, Query, description = "Source label of the sightings (default `suricata`)"),
        ("force" = Option<bool>, Query, description = "Import even if these exact bytes were imported before (counts are added again)"),
    ),
    request_body(content = String, description = "The eve.json log", content_type = "application/x-ndjson"),
    responses(
        (status = 200, description = "Imported; nothing was bad", body = UploadSummary),
        (status = 207, description = "Imported; some records were bad (listed with line numbers)", body = UploadSummary),
        (status = 400, description = "Bad parameter, empty or cut-off body", body = crate::error::ErrorBody),
        (status = 403, description = "Needs the analyst role", body = crate::error::ErrorBody),
        (status = 409, description = "The same bytes are being imported right now", body = crate::error::ErrorBody),
        (status = 413, description = "Body larger than the server's upload limit", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn suricata(
    State(state): State<AppState>,
    principal: Principal,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    passive_upload(state, principal, raw, body, Sensor::Suricata).await
}

/// The passive-sensor upload routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sensor {
    Pcap,
    Zeek,
    Suricata,
}

/// Most files a Zeek zip may hold.
const MAX_ZIP_ENTRIES: usize = 10_000;

/// Spool, (for a Zeek zip) unpack, import through the driver with the CLI's format, audit.
async fn passive_upload(
    state: AppState,
    principal: Principal,
    raw: Option<String>,
    body: Body,
    sensor: Sensor,
) -> Result<Response, ApiError> {
    principal.require(Role::Analyst)?;
    let mut params = Params::parse(raw.as_deref())?;
    let (name, default_file) = match sensor {
        Sensor::Pcap => ("pcap", "upload.pcap"),
        Sensor::Zeek => ("zeek", "ssl.log"),
        Sensor::Suricata => ("suricata", "eve.json"),
    };
    let given = params.one("filename")?;
    let source = params
        .one("label")?
        .map(|l| label("label", l))
        .transpose()?
        .unwrap_or_else(|| name.to_owned());
    let force = params.boolean("force")?.unwrap_or(false);
    params.finish()?;
    let filename = file_name(given, default_file)?;
    let format: Arc<dyn FileFormat> = match sensor {
        Sensor::Pcap => Arc::new(certhist_sensors::PcapCapture {
            source,
            keep_clients: false,
        }),
        Sensor::Zeek => Arc::new(certhist_sensors::ZeekSsl { source }),
        Sensor::Suricata => Arc::new(certhist_sensors::SuricataEve { source }),
    };
    let spooled = spool(&state, body, &filename).await?;
    let options = ImportOptions {
        force,
        // A spool file's inode means nothing to a later `--follow`.
        follow_cursors: false,
        ..ImportOptions::default()
    };
    let action = format!("upload.{name}");
    detached(async move {
        let paths = if sensor == Sensor::Zeek {
            let limit = state.config.upload_limit_bytes;
            let zip = spooled.path.clone();
            let into = spooled.unpacked();
            tokio::task::spawn_blocking(move || unpack_zeek_zip(&zip, &into, limit))
                .await
                .map_err(|e| internal(&e))??
        } else {
            None
        };
        match paths {
            None => run_import(&state, &principal, &action, format, &spooled, &options).await,
            Some(paths) => {
                run_import_paths(
                    &state, &principal, &action, format, &spooled, &paths, &options,
                )
                .await
            }
        }
    })
    .await
}

/// When `zip` is a zip archive: unpacks it under `into` (entry names kept inside it, at most
/// `limit` bytes in all) and returns its Zeek ssl logs, sorted; `None` when it is no zip.
fn unpack_zeek_zip(
    zip: &FsPath,
    into: &FsPath,
    limit: u64,
) -> Result<Option<Vec<PathBuf>>, ApiError> {
    use std::io::Read;
    let mut file = std::fs::File::open(zip).map_err(|e| internal(&e))?;
    let mut magic = [0u8; 4];
    let n = file.read(&mut magic).map_err(|e| internal(&e))?;
    if n < 4 || magic != *b"PK\x03\x04" {
        return Ok(None);
    }
    let bad = |detail: String| bad_request("body", detail);
    let mut archive =
        zip::ZipArchive::new(file).map_err(|e| bad(format!("not a readable zip: {e}")))?;
    if archive.len() > MAX_ZIP_ENTRIES {
        return Err(bad(format!(
            "the zip holds {} entries; at most {MAX_ZIP_ENTRIES} are read",
            archive.len()
        )));
    }
    let mut left = limit;
    let mut logs = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| bad(format!("zip entry {i}: {e}")))?;
        if entry.is_dir() {
            continue;
        }
        let Some(rel) = entry.enclosed_name() else {
            return Err(bad(format!(
                "zip entry {:?} points outside the archive",
                shorten(entry.name())
            )));
        };
        let path = into.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| internal(&e))?;
        }
        let mut out = std::fs::File::create(&path).map_err(|e| internal(&e))?;
        let copied = std::io::copy(&mut (&mut entry).take(left + 1), &mut out).map_err(|e| {
            bad(format!(
                "zip entry {:?}: {e}",
                shorten(&rel.display().to_string())
            ))
        })?;
        if copied > left {
            return Err(too_large(limit));
        }
        left -= copied;
        if rel
            .file_name()
            .is_some_and(|n| certhist_sensors::zeek::is_ssl_log_name(&n.to_string_lossy()))
        {
            logs.push(path);
        }
    }
    if logs.is_empty() {
        return Err(bad(
            "the zip holds no Zeek ssl log (ssl.log, ssl.*.log, ssl.log.gz …)".to_owned(),
        ));
    }
    logs.sort();
    Ok(Some(logs))
}

/// A CryptnetUrlCache (a zip of a cache folder, MetaData folder or collected tree; also a
/// `certutil -urlcache` dump or URL list): analysed and stored under `label`, as `certhist
/// cryptnet --store --label LABEL` does, CertIDs resolved against this database.
#[utoipa::path(
    post,
    path = "/api/v1/uploads/cryptnet",
    tag = "certhist",
    params(
        ("label" = String, Query, description = "Collection label (host or case) the entries are stored under"),
        ("filename" = Option<String>, Query, min_length = 1, description = "Name of the uploaded file (default `upload.zip`), for messages and the audit log"),
    ),
    request_body(content = String, description = "A zip of a CryptnetUrlCache folder, a certutil dump or a URL list", content_type = "application/zip"),
    responses(
        (status = 200, description = "Stored; the report rows", body = CryptnetUpload),
        (status = 400, description = "Bad parameter, empty or cut-off body, no cache entries in the upload", body = crate::error::ErrorBody),
        (status = 403, description = "Needs the analyst role", body = crate::error::ErrorBody),
        (status = 413, description = "Body larger than the server's upload limit", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn cryptnet(
    State(state): State<AppState>,
    principal: Principal,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    principal.require(Role::Analyst)?;
    let mut params = Params::parse(raw.as_deref())?;
    let label = label("label", params.required("label")?)?;
    let filename = file_name(params.one("filename")?, "upload.zip")?;
    params.finish()?;
    let spooled = spool(&state, body, &filename).await?;
    detached(cryptnet_import(state, principal, label, filename, spooled)).await
}

/// The analysis and storage of a spooled cryptnet upload.
async fn cryptnet_import(
    state: AppState,
    principal: Principal,
    label: String,
    filename: String,
    spooled: Spooled,
) -> Result<Response, ApiError> {
    use certhist_cryptnet::{analyze, load_paths, AnalyzeOptions, CryptnetError, ResolveMode};

    let content_sha256 = {
        let path = spooled.path.clone();
        tokio::task::spawn_blocking(move || certhist_files::input::content_sha256(&path))
            .await
            .map_err(|e| internal(&e))?
            .map_err(|e| internal(&e))?
    };
    let options = AnalyzeOptions {
        resolve: ResolveMode::Local,
        store_label: Some(label.clone()),
        ..AnalyzeOptions::default()
    };
    // Read like `analyze_paths` does, with the entries' sources named after the upload instead
    // of the spool path (they are stored as `cache_entries.source_path`).
    let loaded = {
        let path = spooled.path.clone();
        tokio::task::spawn_blocking(move || load_paths(&[path], &|_| {}))
            .await
            .map_err(|e| internal(&e))?
    };
    let mut warnings: Vec<String> = loaded
        .warnings
        .iter()
        .map(|w| hide_path(w, &spooled))
        .collect();
    if loaded.entries.is_empty() {
        let why = warnings
            .first()
            .map(|w| format!(" ({})", shorten(w)))
            .unwrap_or_default();
        return Err(bad_request(
            "body",
            format!("no CryptnetUrlCache entries found in the upload{why}"),
        ));
    }
    let mut entries = loaded.entries;
    for entry in &mut entries {
        entry.source = hide_path(&entry.source, &spooled);
    }
    let analysis = match analyze(&entries, &options, &state.import_store, &|_| {}).await {
        Ok(a) => a,
        Err(CryptnetError::Store(e)) => return Err(e.into()),
        Err(e) => return Err(internal(&e)),
    };
    warnings.extend(analysis.warnings.iter().map(|w| hide_path(w, &spooled)));
    let upload = CryptnetUpload {
        label: label.clone(),
        size_bytes: spooled.size_bytes,
        content_sha256: certhist_model::hex_lower(content_sha256),
        rows: analysis.rows,
        warnings,
    };
    let detail = serde_json::json!({
        "file": filename,
        "size_bytes": upload.size_bytes,
        "content_sha256": upload.content_sha256,
        "rows": upload.rows.len(),
        "warnings": upload.warnings.len(),
    });
    audit(&state, &principal, "upload.cryptnet", &label, detail).await;
    Ok(json(&upload))
}

/// Runs the import of a spooled upload on a task of its own: once the whole body is in, a client
/// that goes away does not cancel the import half-way (its answer is just not read).
async fn detached<F>(work: F) -> Result<Response, ApiError>
where
    F: std::future::Future<Output = Result<Response, ApiError>> + Send + 'static,
{
    tokio::spawn(work).await.map_err(|e| internal(&e))?
}

/// The upload on disk: removed with its directory when dropped.
#[derive(Debug)]
struct Spooled {
    _dir: tempfile::TempDir,
    path: PathBuf,
    name: String,
    size_bytes: u64,
}

impl Spooled {
    /// Where an archive upload is unpacked (inside the spool directory).
    fn unpacked(&self) -> PathBuf {
        self._dir.path().join("unpacked")
    }
}

/// Streams `body` into `<spool dir>/<random>/<file_name>`; 413 beyond the upload limit, 400 when
/// the body ends early (client gone, shorter than its Content-Length) or is empty.
async fn spool(state: &AppState, body: Body, file_name: &str) -> Result<Spooled, ApiError> {
    let limit = state.config.upload_limit_bytes;
    let dir = {
        let base = state.config.upload_dir.clone();
        tokio::task::spawn_blocking(move || {
            let mut builder = tempfile::Builder::new();
            builder.prefix("certhist-upload-");
            match base {
                Some(base) => {
                    std::fs::create_dir_all(&base)?;
                    builder.tempdir_in(base)
                }
                None => builder.tempdir(),
            }
        })
        .await
        .map_err(|e| internal(&e))?
        .map_err(|e| internal(&e))?
    };
    let path = dir.path().join(file_name);
    let file = tokio::fs::File::create(&path)
        .await
        .map_err(|e| internal(&e))?;
    let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
    let mut stream = body.into_data_stream();
    let mut size_bytes = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                if is_length_limit(&e) {
                    return Err(too_large(limit));
                }
                tracing::info!(upload.file = %file_name, upload.bytes = size_bytes, error = %e, "upload cut off; nothing imported");
                return Err(bad_request(
                    "body",
                    format!("the upload ended after {size_bytes} bytes, before the body was complete ({e}); nothing was imported"),
                ));
            }
        };
        size_bytes += chunk.len() as u64;
        if size_bytes > limit {
            return Err(too_large(limit));
        }
        out.write_all(&chunk).await.map_err(|e| internal(&e))?;
    }
    out.flush().await.map_err(|e| internal(&e))?;
    drop(out);
    if size_bytes == 0 {
        return Err(bad_request(
            "body",
            "empty; send the file as the request body",
        ));
    }
    Ok(Spooled {
        _dir: dir,
        path,
        name: file_name.to_owned(),
        size_bytes,
    })
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}

fn too_large(limit: u64) -> ApiError {
    ApiError {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        detail: format!(
            "the upload is larger than the server's limit of {limit} bytes (--upload-limit-bytes)"
        ),
    }
}

/// Imports the spooled file through the import driver, audits, and answers 200 / 207.
async fn run_import(
    state: &AppState,
    principal: &Principal,
    action: &str,
    format: Arc<dyn FileFormat>,
    spooled: &Spooled,
    options: &ImportOptions,
) -> Result<Response, ApiError> {
    let paths = std::slice::from_ref(&spooled.path);
    run_import_paths(state, principal, action, format, spooled, paths, options).await
}

/// Imports `paths` (the spooled file, or the files unpacked from it) through the import driver,
/// audits, and answers 200 / 207.
async fn run_import_paths(
    state: &AppState,
    principal: &Principal,
    action: &str,
    format: Arc<dyn FileFormat>,
    spooled: &Spooled,
    paths: &[PathBuf],
    options: &ImportOptions,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let result = import_files(&state.import_store, format, paths, options, &NoProgress).await;
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            let err = import_error(e, &spooled.name);
            if err.status.is_server_error() || err.status == StatusCode::BAD_REQUEST {
                // Batches committed before the failure stay, with the file's cursor: sending the
                // same bytes again resumes after them.
                let detail = serde_json::json!({
                    "file": spooled.name,
                    "size_bytes": spooled.size_bytes,
                    "error": err.detail,
                });
                audit(state, principal, action, &spooled.name, detail).await;
            }
            return Err(err);
        }
    };
    let mut summary = summarise(&report, spooled);
    if report.files.len() > 1 {
        // Several logs of one upload: the identity shown is that of the bytes received (each
        // log's own is in the import state, as for the command line).
        let path = spooled.path.clone();
        summary.content_sha256 =
            tokio::task::spawn_blocking(move || certhist_files::input::content_sha256(&path))
                .await
                .map_err(|e| internal(&e))?
                .map(certhist_model::hex_lower)
                .map_err(|e| internal(&e))?;
    }
    summary.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let detail = serde_json::json!({
        "kind": summary.kind,
        "size_bytes": summary.size_bytes,
        "content_sha256": summary.content_sha256,
        "already_imported": summary.already_imported,
        "rows_read": summary.rows_read,
        "rows_stored": summary.rows_stored,
        "bad_rows": summary.bad_rows,
        "observation_keys": summary.observation_keys,
        "certificates_new": summary.certificates_new,
    });
    audit(state, principal, action, &spooled.name, detail).await;
    let status = if summary.bad_rows > 0 {
        StatusCode::MULTI_STATUS
    } else {
        StatusCode::OK
    };
    let mut response = json(&summary);
    *response.status_mut() = status;
    Ok(response)
}

/// The summary of a one-file import report.
fn summarise(report: &ImportReport, spooled: &Spooled) -> UploadSummary {
    let t = &report.totals;
    let file = report.files.first();
    let several = report.files.len() > 1;
    let mut problems = Vec::new();
    for p in report.files.iter().flat_map(|f| f.problems.iter()) {
        if problems.len() == UPLOAD_PROBLEMS_LISTED {
            break;
        }
        let detail = if several {
            // Which log of the archive: its path inside the zip.
            format!("{}: {}", hide_path(&p.file, spooled), p.message)
        } else {
            p.message.clone()
        };
        problems.push(UploadProblem {
            line: p.line,
            detail: hide_path(&detail, spooled),
        });
    }
    UploadSummary {
        kind: file.map(|f| f.kind.clone()).unwrap_or_default(),
        file: spooled.name.clone(),
        size_bytes: spooled.size_bytes,
        content_sha256: file.map(|f| f.content_sha256.clone()).unwrap_or_default(),
        already_imported: file.is_some() && report.files.iter().all(|f| f.already_imported),
        rows_read: t.items,
        rows_stored: t.records,
        duplicates: t.certs_known + t.sightings.saturating_sub(t.observation_keys),
        bad_rows: t.problems,
        sightings: t.sightings,
        observation_keys: t.observation_keys,
        certificates_seen: t.certs_seen,
        certificates_new: t.certs_new,
        certificates_unparsable: t.certs_unparsable,
        ignored: t.ignored,
        problems_truncated: t.problems > problems.len() as u64,
        problems,
        elapsed_ms: 0,
    }
}

/// Records an upload in the audit log; a failure is logged (the data is already written).
async fn audit(
    state: &AppState,
    principal: &Principal,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) {
    let entry = AuditEntry {
        actor: principal.actor(),
        action: action.to_owned(),
        target: Some(target.to_owned()),
        source: principal.source_text(),
        detail: Some(detail),
    };
    let written = match state.import_store.conn().await {
        Ok(conn) => conn.audit(&entry).await,
        Err(e) => Err(e),
    };
    if let Err(e) = written {
        tracing::error!(error = %e, audit.action = %action, "cannot write the audit entry of an upload");
    }
}

/// An import error as an answer; the spool path never reaches the client.
fn import_error(e: ImportError, name: &str) -> ApiError {
    match e {
        ImportError::InvalidArgument(m) => ApiError {
            status: StatusCode::BAD_REQUEST,
            detail: m,
        },
        ImportError::Busy { content_sha256, .. } => ApiError {
            status: StatusCode::CONFLICT,
            detail: format!("these bytes (sha256 {content_sha256}) are being imported by another request or process; retry when it is done"),
        },
        ImportError::Io { source, .. } => bad_request(
            "body",
            format!("{}: cannot be read: {source}", shorten(name)),
        ),
        ImportError::Store(s) => s.into(),
        other => internal(&other),
    }
}

fn internal(e: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "upload failed");
    ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        detail: "internal error; the server log has the details".to_owned(),
    }
}

/// Replaces the spool directory in a message by the file's name (and the unpack directory of an
/// archive by the archive's name).
fn hide_path(text: &str, spooled: &Spooled) -> String {
    text.replace(&spooled.path.display().to_string(), &spooled.name)
        .replace(&spooled.unpacked().display().to_string(), &spooled.name)
}

/// The observation format named by `format` or the Content-Type, checked (415 otherwise).
fn observation_format(format: Option<&str>, headers: &HeaderMap) -> Result<(), ApiError> {
    if let Some(f) = format {
        return match f {
            "csv" | "tsv" | "ndjson" => Ok(()),
            other => Err(ApiError {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                detail: format!(
                    "invalid parameter `format`: {:?} is not csv, tsv or ndjson",
                    shorten(other)
                ),
            }),
        };
    }
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let mime = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    const ACCEPTED: [&str; 11] = [
        "text/csv",
        "text/tab-separated-values",
        "application/x-ndjson",
        "application/ndjson",
        "application/jsonl",
        "application/json",
        "text/plain",
        "application/octet-stream",
        "application/gzip",
        "application/x-bzip2",
        "application/x-www-form-urlencoded",
    ];
    if ACCEPTED.contains(&mime.as_str()) {
        Ok(())
    } else {
        Err(ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            detail: format!(
                "Content-Type {:?} is not an observation format; send text/csv, text/tab-separated-values or application/x-ndjson, or give `format`",
                shorten(&mime)
            ),
        })
    }
}

/// A safe file name from `filename` (its last path component; characters outside
/// `[A-Za-z0-9._-]` become `_`), or `default`.
fn file_name(given: Option<String>, default: &str) -> Result<String, ApiError> {
    let Some(given) = given else {
        return Ok(default.to_owned());
    };
    let last = given.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last
        .chars()
        .take(MAX_LABEL_CHARS)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() || cleaned.chars().all(|c| c == '.') {
        return Err(bad_request("filename", "needs a file name, e.g. scan.csv"));
    }
    Ok(cleaned)
}

/// A label or source: 1–200 characters, no control characters.
fn label(name: &str, value: String) -> Result<String, ApiError> {
    if value.trim().is_empty() {
        return Err(bad_request(name, "empty"));
    }
    if value.chars().count() > MAX_LABEL_CHARS {
        return Err(bad_request(
            name,
            format!("longer than {MAX_LABEL_CHARS} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(bad_request(name, "holds control characters"));
    }
    Ok(value)
}

/// `YYYYMMDD` or `YYYY-MM-DD` as midnight UTC (the CLI's `--date`).
fn scan_date(text: &str) -> Result<chrono::DateTime<chrono::Utc>, ApiError> {
    let t = text.trim();
    chrono::NaiveDate::parse_from_str(t, "%Y%m%d")
        .or_else(|_| chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d"))
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
        .ok_or_else(|| {
            bad_request(
                "date",
                format!("{:?} is not a date (YYYYMMDD)", shorten(text)),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_reduced_to_a_safe_last_component() {
        assert_eq!(file_name(None, "upload").unwrap(), "upload");
        assert_eq!(
            file_name(Some("../../etc/passwd".into()), "x").unwrap(),
            "passwd"
        );
        assert_eq!(
            file_name(Some("C:\\scans\\20170102-https.gz".into()), "x").unwrap(),
            "20170102-https.gz"
        );
        assert_eq!(
            file_name(Some("a b\u{1b}[31m.csv".into()), "x").unwrap(),
            "a_b__31m.csv"
        );
        assert!(file_name(Some("..".into()), "x").is_err());
        assert!(file_name(Some("dir/".into()), "x").is_err());
    }

    #[test]
    fn observation_formats() {
        let mut h = HeaderMap::new();
        assert!(observation_format(None, &h).is_ok());
        assert!(observation_format(Some("tsv"), &h).is_ok());
        assert_eq!(
            observation_format(Some("xml"), &h).unwrap_err().status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        h.insert(
            header::CONTENT_TYPE,
            "text/csv; charset=utf-8".parse().unwrap(),
        );
        assert!(observation_format(None, &h).is_ok());
        h.insert(header::CONTENT_TYPE, "image/png".parse().unwrap());
        assert!(observation_format(None, &h).is_err());
    }
}
