//! Command-line entry points: `certhist cryptnet …` and the cryptnet part of `certhist demo`.

use std::path::PathBuf;

use certhist_store::{CacheEntryRow, Store};

use crate::content::ContentDetail;
use crate::entry::CacheEntry;
use crate::ocsp::{cert_matches_id, CertId};
use crate::report::{self, Format, ReportRow};
use crate::resolve::{resolve_local, Resolution};
use crate::CryptnetError;
use certhist_crtsh::{CrtshClient, CrtshConfig, Query};

/// Where CertIDs are resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ResolveMode {
    /// The local database.
    Local,
    /// crt.sh only.
    Crtsh,
    /// The database, then crt.sh for what it cannot resolve.
    Both,
    /// Parse and decode only.
    None,
}

/// `certhist cryptnet PATH...`
#[derive(Clone, Debug, clap::Args)]
pub struct CryptnetArgs {
    /// CryptnetUrlCache folder, MetaData folder, collected disk/profile tree, .zip of one,
    /// `certutil -urlcache` dump or URL list.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Collection label (host or case) for `--store`.
    #[arg(long, default_value = "unlabelled")]
    pub label: String,
    /// Where to resolve CertIDs.
    #[arg(long, value_enum, default_value = "local")]
    pub resolve: ResolveMode,
    /// Keep every entry in the database (cache_entries) and import cached certificates.
    #[arg(long)]
    pub store: bool,
    /// CSV output (the global `--json` gives JSON).
    #[arg(long)]
    pub csv: bool,
    /// crt.sh base URL (mirrors, tests).
    #[arg(long, default_value = "https://crt.sh/")]
    pub crtsh_url: String,
    /// crt.sh requests in flight.
    #[arg(long, default_value_t = 4)]
    pub crtsh_concurrency: usize,
}

/// Options of [`analyze`].
#[derive(Clone, Debug)]
pub struct AnalyzeOptions {
    /// Resolution mode.
    pub resolve: ResolveMode,
    /// Store entries under this label.
    pub store_label: Option<String>,
    /// crt.sh client settings.
    pub crtsh: CrtshConfig,
}

/// Loads every path, reporting unreadable ones as warnings.
pub fn load_all(paths: &[PathBuf]) -> (Vec<CacheEntry>, Vec<String>) {
    let mut entries = Vec::new();
    let mut warnings = Vec::new();
    for p in paths {
        match crate::inputs::load_path(p) {
            Ok(l) => {
                entries.extend(l.entries);
                warnings.extend(l.warnings);
            }
            Err(e) => warnings.push(e.to_string()),
        }
    }
    (entries, warnings)
}

/// Cache entries as database rows (one per CertID).
pub fn cache_rows(label: &str, entries: &[CacheEntry]) -> Vec<CacheEntryRow> {
    let mut rows = Vec::new();
    for e in entries {
        let Some(url) = &e.url else { continue };
        let m = e.metadata.as_ref();
        let ocsp = match e.content.as_ref().map(|c| &c.detail) {
            Some(ContentDetail::Ocsp(r)) => Some(r),
            _ => None,
        };
        let base = CacheEntryRow {
            collection: label.to_owned(),
            source_path: Some(e.source.clone()),
            url: url.clone(),
            cert_index: 0,
            kind: e.kind().as_str().to_owned(),
            downloaded_at: m.and_then(|m| m.last_download),
            last_modified: m.and_then(|m| m.last_modified),
            etag: m.and_then(|m| m.etag.clone()),
            size_bytes: e.content.as_ref().map(|c| c.size_bytes as i64),
            content_sha256: e.content.as_ref().and_then(|c| c.sha256),
            content_kind: e.content.as_ref().map(|c| c.kind.as_str().to_owned()),
            this_update: m.and_then(|m| m.this_update),
            next_update: m.and_then(|m| m.next_update),
            ..CacheEntryRow::default()
        };
        if e.cert_ids.is_empty() {
            rows.push(base);
            continue;
        }
        for (i, id) in e.cert_ids.iter().enumerate() {
            let mut r = base.clone();
            r.cert_index = i as i32;
            r.hash_algorithm = Some(id.hash_algorithm.as_str().to_owned());
            r.issuer_name_hash = Some(id.issuer_name_hash.clone());
            r.issuer_key_hash = Some(id.issuer_key_hash.clone());
            r.serial = Some(id.serial.as_bytes().to_vec());
            if let Some(s) = ocsp.and_then(|o| o.responses.iter().find(|s| &s.cert_id == id)) {
                r.ocsp_status = Some(s.status.as_str().to_owned());
                r.this_update = Some(s.this_update);
                r.next_update = s.next_update;
            }
            rows.push(r);
        }
    }
    rows
}

/// Certificates found in the cache: Content certificates and OCSP responder certificates.
pub fn cached_certs(entries: &[CacheEntry]) -> Vec<certhist_model::CertRecord> {
    let mut ders: Vec<Vec<u8>> = Vec::new();
    for e in entries {
        match e.content.as_ref().map(|c| &c.detail) {
            Some(ContentDetail::Certificate(rec)) => ders.push(rec.der.clone()),
            Some(ContentDetail::Ocsp(r)) => ders.extend(r.certs.iter().cloned()),
            _ => {}
        }
    }
    ders.sort();
    ders.dedup();
    certhist_x509::parse_many(&ders)
}

/// Parses, stores (optionally) and resolves entries; returns the report rows.
pub async fn analyze(
    entries: &[CacheEntry],
    opts: &AnalyzeOptions,
    store: &Store,
) -> Result<Vec<ReportRow>, CryptnetError> {
    if let Some(label) = &opts.store_label {
        let rows = cache_rows(label, entries);
        let certs = cached_certs(entries);
        let mut conn = store.conn().await?;
        let mut tx = conn.begin().await?;
        for chunk in certs.chunks(1000) {
            tx.write_certs(chunk).await?;
        }
        for chunk in rows.chunks(5000) {
            tx.write_cache_entries(chunk).await?;
        }
        tx.commit().await?;
        tracing::info!(
            cryptnet.rows = rows.len(),
            cryptnet.certs = certs.len(),
            "cache entries stored"
        );
    }
    let ids: Vec<&CertId> = entries.iter().flat_map(|e| e.cert_ids.iter()).collect();
    let mut res: Vec<Option<Resolution>> = vec![None; ids.len()];
    if matches!(opts.resolve, ResolveMode::Local | ResolveMode::Both) && !ids.is_empty() {
        let conn = store.conn().await?;
        for (slot, r) in res.iter_mut().zip(resolve_local(&conn, &ids).await?) {
            *slot = Some(r);
        }
    }
    if matches!(opts.resolve, ResolveMode::Crtsh | ResolveMode::Both) {
        resolve_crtsh(&ids, &mut res, &opts.crtsh, store).await?;
    }
    let mut rows = Vec::new();
    let mut k = 0;
    for e in entries {
        let n = e.cert_ids.len();
        let slice = res.get(k..k + n).unwrap_or_default();
        rows.extend(report::rows_for(e, slice));
        k += n;
    }
    Ok(rows)
}

/// Most crt.sh candidates downloaded per serial.
pub const CRTSH_CANDIDATES: usize = 10;

/// Resolves CertIDs the database could not through crt.sh: search by serial, download each
/// candidate, keep those whose serial and issuer name hash are the CertID's, store them and
/// resolve again locally.
pub async fn resolve_crtsh(
    ids: &[&CertId],
    res: &mut [Option<Resolution>],
    config: &CrtshConfig,
    store: &Store,
) -> Result<(), CryptnetError> {
    let client =
        CrtshClient::new(config.clone()).map_err(|e| CryptnetError::Crtsh(e.to_string()))?;
    let mut todo: Vec<usize> = (0..ids.len())
        .filter(|i| {
            !res.get(*i)
                .and_then(Option::as_ref)
                .is_some_and(Resolution::resolved)
        })
        .collect();
    todo.dedup_by_key(|i| ids.get(*i).map(|id| (*id).clone()));
    let mut found: Vec<certhist_model::CertRecord> = Vec::new();
    let mut resolved_idx = Vec::new();
    let futs = todo.iter().map(|&i| {
        let client = client.clone();
        let id = ids.get(i).map(|x| (*x).clone());
        async move {
            let id = id?;
            let q = Query::Serial(hex::encode(id.serial.as_bytes()));
            let rows = match client.query(&q).await {
                Ok(r) => r.rows,
                Err(e) => {
                    tracing::warn!(error = %e, "crt.sh serial search failed");
                    return None;
                }
            };
            let mut good = Vec::new();
            for row in rows.iter().take(CRTSH_CANDIDATES) {
                match client.download(row.id).await {
                    Ok(der) if cert_matches_id(&der, &id) => good.push(der),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "crt.sh download failed"),
                }
            }
            Some((i, good))
        }
    });
    for r in futures_util::future::join_all(futs)
        .await
        .into_iter()
        .flatten()
    {
        if !r.1.is_empty() {
            resolved_idx.push(r.0);
        }
        found.extend(r.1.iter().map(|d| certhist_x509::parse_der(d)));
    }
    if found.is_empty() {
        return Ok(());
    }
    let mut conn = store.conn().await?;
    let mut tx = conn.begin().await?;
    tx.write_certs(&found).await?;
    tx.commit().await?;
    // Resolve every id again (others may share the serial) and mark the source.
    let again = resolve_local(&conn, ids).await?;
    for (i, r) in again.into_iter().enumerate() {
        let was = res
            .get(i)
            .and_then(Option::as_ref)
            .is_some_and(Resolution::resolved);
        if !was && r.resolved() {
            if let Some(slot) = res.get_mut(i) {
                let mut r = r;
                r.source = Some("crtsh".into());
                *slot = Some(r);
            }
        }
    }
    Ok(())
}

/// `certhist cryptnet`: prints the report to stdout, warnings to stderr.
/// `json` is the global `--json` flag.
pub async fn run_cryptnet(
    args: &CryptnetArgs,
    store: &Store,
    json: bool,
) -> Result<usize, CryptnetError> {
    let progress = indicatif::ProgressBar::new_spinner();
    progress.set_message("reading caches");
    let paths = args.paths.clone();
    let (entries, warnings) = tokio::task::spawn_blocking(move || load_all(&paths))
        .await
        .map_err(|e| CryptnetError::Output(e.to_string()))?;
    progress.finish_and_clear();
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    if entries.is_empty() {
        return Err(CryptnetError::Usage("no cache entries found".into()));
    }
    let opts = AnalyzeOptions {
        resolve: args.resolve,
        store_label: args.store.then(|| args.label.clone()),
        crtsh: CrtshConfig {
            base_url: args.crtsh_url.clone(),
            fetch: certhist_crtsh::FetchConfig {
                concurrency: args.crtsh_concurrency,
                ..CrtshConfig::default().fetch
            },
        },
    };
    let rows = analyze(&entries, &opts, store).await?;
    let format = if json {
        Format::Json
    } else if args.csv {
        Format::Csv
    } else {
        Format::Human
    };
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    report::write(&rows, format, &mut lock).map_err(|e| CryptnetError::Output(e.to_string()))?;
    Ok(rows.len())
}

/// `certhist demo`: analyses the cache folder `cache_dir` (e.g. tests/data/cryptnet/…), stores
/// it under the label `demo` and prints the human report.
pub async fn demo(store: &Store, cache_dir: &std::path::Path) -> Result<usize, CryptnetError> {
    let args = CryptnetArgs {
        paths: vec![cache_dir.to_path_buf()],
        label: "demo".into(),
        resolve: ResolveMode::Local,
        store: true,
        csv: false,
        crtsh_url: "https://crt.sh/".into(),
        crtsh_concurrency: 1,
    };
    run_cryptnet(&args, store, false).await
}
