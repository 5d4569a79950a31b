//! The analysis of caches: read the inputs, keep them in the store (optionally), resolve every
//! OCSP CertID against the store and crt.sh, and build the report rows.
//!
//! [`analyze_paths`] is the whole run (what `certhist cryptnet` and the web UI's upload page
//! call); [`load_paths`] and [`analyze`] are its two halves. Nothing here prints: problems that
//! do not stop the run come back as [`Analysis::warnings`], progress as [`Progress`] events.

use std::path::PathBuf;
use std::sync::Arc;

use certhist_crtsh::{CrtshClient, CrtshConfig, Query};
use certhist_model::views::cryptnet::{CertIdResolution, CryptnetRow, ResolutionSource};
use certhist_store::{CacheEntryRow, Store};

use crate::content::ContentDetail;
use crate::entry::CacheEntry;
use crate::inputs::Loaded;
use crate::ocsp::{cert_matches_id, CertId};
use crate::report;
use crate::resolve::resolve_local;
use crate::CryptnetError;

/// Most crt.sh candidates downloaded per serial.
pub const CRTSH_CANDIDATES: usize = 10;

/// Where CertIDs are resolved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResolveMode {
    /// The local database.
    #[default]
    Local,
    /// crt.sh only.
    Crtsh,
    /// The database, then crt.sh for what it cannot resolve.
    Both,
    /// Parse and decode only.
    None,
}

/// What an analysis does besides parsing.
#[derive(Clone, Debug, Default)]
pub struct AnalyzeOptions {
    /// Where CertIDs are resolved.
    pub resolve: ResolveMode,
    /// Keep every entry in `cache_entries` under this collection label (host or case), and
    /// import the certificates found in the cache. `None`: store nothing of the cache.
    pub store_label: Option<String>,
    /// crt.sh client settings (used when `resolve` asks crt.sh).
    pub crtsh: CrtshConfig,
}

/// A step of an analysis, for a progress display.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// An input path is being read.
    Reading {
        /// The path.
        path: PathBuf,
    },
    /// Every input is read.
    Loaded {
        /// Cache entries found.
        entries: usize,
    },
    /// Entries and cached certificates are being written to the store.
    Storing {
        /// `cache_entries` rows (one per CertID).
        rows: usize,
        /// Certificates found in the cache.
        certs: usize,
    },
    /// CertIDs are being resolved against the store.
    ResolvingLocal {
        /// CertIDs asked for.
        cert_ids: usize,
    },
    /// CertIDs the store could not resolve are being looked up on crt.sh.
    QueryingCrtsh {
        /// Distinct CertIDs asked for.
        cert_ids: usize,
    },
    /// One crt.sh lookup (serial search and candidate downloads) has finished.
    CrtshDone {
        /// Lookups finished so far.
        done: usize,
        /// Lookups in all.
        total: usize,
    },
}

/// The result of an analysis.
#[derive(Clone, Debug, Default)]
pub struct Analysis {
    /// One row per cache entry and CertID, in input order.
    pub rows: Vec<CryptnetRow>,
    /// Problems that did not stop the analysis: unreadable paths and files, failed crt.sh
    /// requests. Attacker-controlled text (paths, URLs) is included as found.
    pub warnings: Vec<String>,
}

/// Reads every path (any kind [`crate::load_path`] reads); an unreadable path becomes a
/// warning and the rest is read. Blocking (file system, zip): call it off the async runtime.
pub fn load_paths(paths: &[PathBuf], progress: &dyn Fn(Progress)) -> Loaded {
    let mut all = Loaded::default();
    for path in paths {
        progress(Progress::Reading { path: path.clone() });
        match crate::inputs::load_path(path) {
            Ok(loaded) => {
                all.entries.extend(loaded.entries);
                all.caches.extend(loaded.caches);
                all.warnings.extend(loaded.warnings);
            }
            Err(e) => all.warnings.push(e.to_string()),
        }
    }
    progress(Progress::Loaded {
        entries: all.entries.len(),
    });
    all
}

/// Reads every path ([`load_paths`], on a blocking thread), then [`analyze`]s the entries.
///
/// Errors with [`CryptnetError::NoEntries`] (carrying the read warnings) when no path held a
/// cache entry.
pub async fn analyze_paths<P>(
    paths: &[PathBuf],
    opts: &AnalyzeOptions,
    store: &Store,
    progress: P,
) -> Result<Analysis, CryptnetError>
where
    P: Fn(Progress) + Send + Sync + 'static,
{
    let progress = Arc::new(progress);
    let reader_progress = Arc::clone(&progress);
    let owned = paths.to_vec();
    let loaded = tokio::task::spawn_blocking(move || load_paths(&owned, &*reader_progress))
        .await
        .map_err(|e| CryptnetError::Task(e.to_string()))?;
    if loaded.entries.is_empty() {
        return Err(CryptnetError::NoEntries {
            warnings: loaded.warnings,
        });
    }
    let mut analysis = analyze(&loaded.entries, opts, store, &*progress).await?;
    let mut warnings = loaded.warnings;
    warnings.append(&mut analysis.warnings);
    analysis.warnings = warnings;
    Ok(analysis)
}

/// Stores (when `opts.store_label` is set) and resolves entries; returns the report rows.
pub async fn analyze(
    entries: &[CacheEntry],
    opts: &AnalyzeOptions,
    store: &Store,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Analysis, CryptnetError> {
    if let Some(label) = &opts.store_label {
        let rows = cache_rows(label, entries);
        let certs = cached_certs(entries);
        progress(Progress::Storing {
            rows: rows.len(),
            certs: certs.len(),
        });
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
            "cache entries stored: {} rows, {} certificates",
            rows.len(),
            certs.len()
        );
    }
    let ids: Vec<&CertId> = entries.iter().flat_map(|e| e.cert_ids.iter()).collect();
    let mut res: Vec<Option<CertIdResolution>> = vec![None; ids.len()];
    let mut warnings = Vec::new();
    if matches!(opts.resolve, ResolveMode::Local | ResolveMode::Both) && !ids.is_empty() {
        progress(Progress::ResolvingLocal {
            cert_ids: ids.len(),
        });
        let conn = store.conn().await?;
        for (slot, r) in res.iter_mut().zip(resolve_local(&conn, &ids).await?) {
            *slot = Some(r);
        }
    }
    if matches!(opts.resolve, ResolveMode::Crtsh | ResolveMode::Both) {
        warnings = resolve_crtsh(&ids, &mut res, &opts.crtsh, store, progress).await?;
    }
    let mut rows = Vec::new();
    let mut k = 0;
    for e in entries {
        let n = e.cert_ids.len();
        let slice = res.get(k..k + n).unwrap_or_default();
        rows.extend(report::rows_for(e, slice));
        k += n;
    }
    Ok(Analysis { rows, warnings })
}

/// Cache entries as `cache_entries` rows (one per CertID).
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
            source_path: Some(storable(&e.source)),
            url: storable(url),
            cert_index: 0,
            kind: e.kind().as_str().to_owned(),
            downloaded_at: m.and_then(|m| m.last_download),
            last_modified: m.and_then(|m| m.last_modified),
            etag: m.and_then(|m| m.etag.as_deref().map(storable)),
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

/// Text as the store keeps it: NUL, which PostgreSQL `text` cannot hold, becomes U+2400 (␀), as
/// certificate text does (certhist-x509).
fn storable(text: &str) -> String {
    text.replace('\0', "\u{2400}")
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

/// Resolves the CertIDs the database could not through crt.sh: search by serial, download each
/// candidate, keep those whose serial and issuer name hash are the CertID's, store them and
/// resolve again locally. Returns the failed requests as warnings.
async fn resolve_crtsh(
    ids: &[&CertId],
    res: &mut [Option<CertIdResolution>],
    config: &CrtshConfig,
    store: &Store,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Vec<String>, CryptnetError> {
    let client =
        CrtshClient::new(config.clone()).map_err(|e| CryptnetError::Crtsh(e.to_string()))?;
    let mut todo: Vec<usize> = (0..ids.len())
        .filter(|i| {
            !res.get(*i)
                .and_then(Option::as_ref)
                .is_some_and(CertIdResolution::resolved)
        })
        .collect();
    todo.dedup_by_key(|i| ids.get(*i).map(|id| (*id).clone()));
    if todo.is_empty() {
        return Ok(Vec::new());
    }
    progress(Progress::QueryingCrtsh {
        cert_ids: todo.len(),
    });
    let total = todo.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let lookups = todo.iter().map(|&i| {
        let client = client.clone();
        let id = ids.get(i).map(|x| (*x).clone());
        let done = &done;
        async move {
            let id = id?;
            let (good, warnings) = crtsh_candidates(&client, &id).await;
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            progress(Progress::CrtshDone { done: n, total });
            Some((i, good, warnings))
        }
    });
    let mut found: Vec<certhist_model::CertRecord> = Vec::new();
    let mut warnings = Vec::new();
    for (_, good, mut w) in futures_util::future::join_all(lookups)
        .await
        .into_iter()
        .flatten()
    {
        warnings.append(&mut w);
        found.extend(good.iter().map(|d| certhist_x509::parse_der(d)));
    }
    if found.is_empty() {
        return Ok(warnings);
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
            .is_some_and(CertIdResolution::resolved);
        if !was && r.resolved() {
            if let Some(slot) = res.get_mut(i) {
                let mut r = r;
                r.source = Some(ResolutionSource::Crtsh);
                *slot = Some(r);
            }
        }
    }
    Ok(warnings)
}

/// The DER of every crt.sh certificate with the CertID's serial that matches the CertID (at most
/// [`CRTSH_CANDIDATES`] downloads), and the failed requests as warnings.
async fn crtsh_candidates(client: &CrtshClient, id: &CertId) -> (Vec<Vec<u8>>, Vec<String>) {
    let serial = hex::encode(id.serial.as_bytes());
    let mut warnings = Vec::new();
    let rows = match client.query(&Query::Serial(serial.clone())).await {
        Ok(r) => r.rows,
        Err(e) => {
            warnings.push(format!("crt.sh: search for serial {serial} failed: {e}"));
            return (Vec::new(), warnings);
        }
    };
    let mut good = Vec::new();
    for row in rows.iter().take(CRTSH_CANDIDATES) {
        match client.download(row.id).await {
            Ok(der) if cert_matches_id(&der, id) => good.push(der),
            Ok(_) => {}
            Err(e) => warnings.push(format!(
                "crt.sh: download of certificate {} (serial {serial}) failed: {e}",
                row.id
            )),
        }
    }
    (good, warnings)
}
