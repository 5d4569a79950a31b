//! Log clients behind one trait: [`Rfc6962Client`] (RFC 6962 §4 JSON API) and [`StaticClient`]
//! (c2sp.org/static-ct-api tiles over HTTP, or a local directory / `file://` mirror).

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use certhist_fetch::{url_with_query, FetchConfig, Fetcher};
use sha2::{Digest, Sha256};

use crate::checkpoint::Checkpoint;
use crate::leaf::{self, LogEntry};
use crate::merkle;
use crate::sig::PublicKey;
use crate::sth::{self, TreeHead};
use crate::tile::{self, TILE_WIDTH};
use crate::{CtError, Hash, ParseError};

/// The two CT APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    /// RFC 6962 `/ct/v1/` JSON API.
    Rfc6962,
    /// c2sp.org/static-ct-api tiles.
    Static,
}

impl LogKind {
    /// The `ct_logs.kind` label.
    pub fn as_str(self) -> &'static str {
        match self {
            LogKind::Rfc6962 => "rfc6962",
            LogKind::Static => "static",
        }
    }
}

/// A CT log, whatever its API.
pub trait LogClient: Send + Sync {
    /// Which API.
    fn kind(&self) -> LogKind;
    /// The log's base URL (as stored in `ct_logs.url`).
    fn url(&self) -> &str;
    /// The log's key, if known.
    fn key(&self) -> Option<&PublicKey>;
    /// The checkpoint origin (static logs).
    fn origin(&self) -> Option<String>;
    /// The latest tree head; its signature is verified when the key is known.
    fn tree_head(&self) -> impl Future<Output = Result<TreeHead, CtError>> + Send;
    /// Entries from `start` (inclusive) towards `end` (exclusive) in a tree of `tree_size`:
    /// at least one entry, possibly fewer than asked (server batch caps, tile ends).
    fn entries(
        &self,
        start: u64,
        end: u64,
        tree_size: u64,
    ) -> impl Future<Output = Result<Vec<LogEntry>, CtError>> + Send;
    /// Inclusion proof (bottom-up audit path) of leaf `index` with `leaf_hash` in `tree_size`.
    fn inclusion_proof(
        &self,
        index: u64,
        leaf_hash: &Hash,
        tree_size: u64,
    ) -> impl Future<Output = Result<Vec<Hash>, CtError>> + Send;
    /// Consistency proof between two tree sizes, where the API provides one.
    fn consistency_proof(
        &self,
        first: u64,
        second: u64,
    ) -> impl Future<Output = Result<Option<Vec<Hash>>, CtError>> + Send;
    /// The DER certificate with SHA-256 `fingerprint` (static `issuer/`), checked and cached.
    fn issuer(
        &self,
        fingerprint: &Hash,
    ) -> impl Future<Output = Result<Arc<Vec<u8>>, CtError>> + Send;
}

fn join(base: &str, path: &str) -> String {
    format!("{}/{}", base.trim_end_matches('/'), path)
}

fn parse_err(url: &str, source: ParseError) -> CtError {
    CtError::Parse {
        url: url.to_owned(),
        source,
    }
}

fn check_sig(url: &str, key: Option<&PublicKey>, th: &TreeHead) -> Result<(), CtError> {
    match key {
        Some(k) => th.verify(k).map_err(|detail| CtError::BadSignature {
            log: url.to_owned(),
            detail,
        }),
        None => {
            tracing::warn!(
                ct_log.url = url,
                "no log key: tree head signature not checked"
            );
            Ok(())
        }
    }
}

/// RFC 6962 client.
#[derive(Debug, Clone)]
pub struct Rfc6962Client {
    base: String,
    key: Option<PublicKey>,
    http: Fetcher,
}

impl Rfc6962Client {
    /// A client of the log at `base` (the prefix before `/ct/v1/`).
    pub fn new(base: &str, key: Option<PublicKey>, config: FetchConfig) -> Result<Self, CtError> {
        Ok(Rfc6962Client {
            base: base.trim_end_matches('/').to_owned(),
            key,
            http: Fetcher::new(config)?,
        })
    }

    /// GETs `path` (below the base URL) with `query`, parsed by `parse` (a body that does not
    /// parse, such as truncated JSON, is fetched again).
    async fn get_json<T>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        parse: impl Fn(&[u8]) -> Result<T, ParseError>,
    ) -> Result<T, CtError> {
        let url = url_with_query(&join(&self.base, path), query);
        Ok(self.http.get_checked(&url, parse).await?)
    }
}

impl LogClient for Rfc6962Client {
    fn kind(&self) -> LogKind {
        LogKind::Rfc6962
    }
    fn url(&self) -> &str {
        &self.base
    }
    fn key(&self) -> Option<&PublicKey> {
        self.key.as_ref()
    }
    fn origin(&self) -> Option<String> {
        None
    }

    async fn tree_head(&self) -> Result<TreeHead, CtError> {
        let th = self
            .get_json("ct/v1/get-sth", &[], sth::parse_get_sth)
            .await?;
        check_sig(&self.base, self.key.as_ref(), &th)?;
        Ok(th)
    }

    async fn entries(
        &self,
        start: u64,
        end: u64,
        _tree_size: u64,
    ) -> Result<Vec<LogEntry>, CtError> {
        let (first, last) = (
            start.to_string(),
            end.saturating_sub(1).max(start).to_string(),
        );
        let query = [("start", first.as_str()), ("end", last.as_str())];
        let want = end.saturating_sub(start).max(1) as usize;
        // Parse the entries inside the retry loop: a truncated or invalid body is retried.
        let entries = self
            .get_json("ct/v1/get-entries", &query, |body| {
                let raw = sth::parse_get_entries(body)?;
                if raw.is_empty() {
                    return Err(ParseError::invalid("get-entries", "no entries"));
                }
                if raw.len() > want {
                    return Err(ParseError::invalid(
                        "get-entries",
                        format!("{} entries, asked for {want}", raw.len()),
                    ));
                }
                raw.iter()
                    .enumerate()
                    .map(|(i, (l, x))| leaf::entry_from_rfc6962(start + i as u64, l, x))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        Ok(entries)
    }

    async fn inclusion_proof(
        &self,
        index: u64,
        leaf_hash: &Hash,
        tree_size: u64,
    ) -> Result<Vec<Hash>, CtError> {
        let hash = base64::engine::general_purpose::STANDARD.encode(leaf_hash);
        let size = tree_size.to_string();
        let (li, proof) = self
            .get_json(
                "ct/v1/get-proof-by-hash",
                &[("hash", &hash), ("tree_size", &size)],
                sth::parse_proof_by_hash,
            )
            .await?;
        if li != index {
            return Err(CtError::Inconsistent {
                log: self.base.clone(),
                detail: format!(
                    "proof for leaf {index} came back for index {li} (duplicate leaf?)"
                ),
            });
        }
        Ok(proof)
    }

    async fn consistency_proof(
        &self,
        first: u64,
        second: u64,
    ) -> Result<Option<Vec<Hash>>, CtError> {
        let (first, second) = (first.to_string(), second.to_string());
        let query = [("first", first.as_str()), ("second", second.as_str())];
        Ok(Some(
            self.get_json("ct/v1/get-sth-consistency", &query, sth::parse_consistency)
                .await?,
        ))
    }

    async fn issuer(&self, fingerprint: &Hash) -> Result<Arc<Vec<u8>>, CtError> {
        Err(CtError::Usage(format!(
            "RFC 6962 logs carry chains inline; no issuer {} to fetch",
            hex::encode(fingerprint)
        )))
    }
}

/// Hash tiles by (level, index, width).
type HashTileCache = HashMap<(u32, u64, u64), Arc<Vec<Hash>>>;

/// Where static-CT tiles come from.
#[derive(Debug, Clone)]
enum Source {
    Http(Fetcher),
    Dir(PathBuf),
}

/// static-ct-api client (HTTP or a local tile directory).
#[derive(Debug)]
pub struct StaticClient {
    base: String,
    source: Source,
    key: Option<PublicKey>,
    origin: Mutex<Option<String>>,
    issuers: Mutex<HashMap<Hash, Arc<Vec<u8>>>>,
    hash_tiles: Mutex<HashTileCache>,
}

/// Is `url` a local path or `file://` URL?
pub fn local_path(url: &str) -> Option<PathBuf> {
    if let Some(p) = url.strip_prefix("file://") {
        return Some(PathBuf::from(p));
    }
    (!url.starts_with("http://") && !url.starts_with("https://")).then(|| PathBuf::from(url))
}

fn maybe_gunzip(data: Vec<u8>) -> Vec<u8> {
    if data.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        if std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&data[..]), &mut out)
            .is_ok()
        {
            return out;
        }
    }
    data
}

impl StaticClient {
    /// A client of the static log at `base` (monitoring prefix, directory or `file://` URL).
    pub fn new(base: &str, key: Option<PublicKey>, config: FetchConfig) -> Result<Self, CtError> {
        let source = match local_path(base) {
            Some(p) => Source::Dir(p),
            None => Source::Http(Fetcher::new(config)?),
        };
        Ok(StaticClient {
            base: base.trim_end_matches('/').to_owned(),
            source,
            key,
            origin: Mutex::new(None),
            issuers: Mutex::new(HashMap::new()),
            hash_tiles: Mutex::new(HashMap::new()),
        })
    }

    /// Fetches `path` and validates it; `Ok(None)` if absent.
    async fn fetch<T>(
        &self,
        path: &str,
        validate: impl Fn(&[u8]) -> Result<T, ParseError>,
    ) -> Result<Option<T>, CtError> {
        let url = join(&self.base, path);
        match &self.source {
            Source::Http(f) => match f.get_checked(&url, validate).await {
                Ok(v) => Ok(Some(v)),
                Err(e) if e.is_not_found() => Ok(None),
                Err(e) => Err(e.into()),
            },
            Source::Dir(dir) => {
                let p = dir.join(path);
                match tokio::fs::read(&p).await {
                    Ok(d) => validate(&maybe_gunzip(d))
                        .map(Some)
                        .map_err(|e| parse_err(&url, e)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(source) => Err(CtError::Io {
                        path: p.display().to_string(),
                        source,
                    }),
                }
            }
        }
    }

    async fn must<T>(
        &self,
        path: &str,
        validate: impl Fn(&[u8]) -> Result<T, ParseError>,
    ) -> Result<T, CtError> {
        self.fetch(path, validate)
            .await?
            .ok_or_else(|| CtError::NotFound {
                url: join(&self.base, path),
            })
    }

    /// Hash tile `index` at `level` for a tree of `tree_size` (partial tile, or the full one if the
    /// partial is gone), cached. `None` if the log does not serve it.
    async fn hash_tile(
        &self,
        level: u32,
        index: u64,
        tree_size: u64,
    ) -> Result<Option<Arc<Vec<Hash>>>, CtError> {
        let width = tile::tile_width(level, index, tree_size);
        if let Some(t) = self
            .hash_tiles
            .lock()
            .ok()
            .and_then(|c| c.get(&(level, index, width)).cloned())
        {
            return Ok(Some(t));
        }
        let path = tile::hash_tile_path(level, index, width);
        let mut hashes = match self
            .fetch(&path, |d| tile::parse_hash_tile(d, width))
            .await?
        {
            Some(h) => h,
            None if width < TILE_WIDTH => {
                match self
                    .fetch(&tile::hash_tile_path(level, index, TILE_WIDTH), |d| {
                        tile::parse_hash_tile(d, TILE_WIDTH)
                    })
                    .await?
                {
                    Some(h) => h,
                    None => return Ok(None),
                }
            }
            None => return Ok(None),
        };
        hashes.truncate(width as usize);
        let t = Arc::new(hashes);
        if let Ok(mut c) = self.hash_tiles.lock() {
            if c.len() > 256 {
                c.clear();
            }
            c.insert((level, index, width), t.clone());
        }
        Ok(Some(t))
    }

    /// The nodes at height `8 * level`, indices `[first, first + count)` (within one tile), from
    /// hash tiles; a missing tile above level 0 is recomputed from the level below.
    fn tile_nodes(
        &self,
        level: u32,
        first: u64,
        count: u64,
        tree_size: u64,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Vec<Hash>, CtError>> + Send + '_>> {
        Box::pin(async move {
            let n = first / TILE_WIDTH;
            let off = (first % TILE_WIDTH) as usize;
            if let Some(t) = self.hash_tile(level, n, tree_size).await? {
                return t
                    .get(off..off + count as usize)
                    .map(<[Hash]>::to_vec)
                    .ok_or_else(|| CtError::Inconsistent {
                        log: self.base.clone(),
                        detail: format!("hash tile {level}/{n} too short"),
                    });
            }
            if level == 0 {
                return Err(CtError::NotFound {
                    url: join(
                        &self.base,
                        &tile::hash_tile_path(0, n, tile::tile_width(0, n, tree_size)),
                    ),
                });
            }
            let mut out = Vec::with_capacity(count as usize);
            for i in first..first + count {
                let below = self
                    .tile_nodes(level - 1, i * TILE_WIDTH, TILE_WIDTH, tree_size)
                    .await?;
                out.push(merkle::root_of_leaves(&below));
            }
            Ok(out)
        })
    }

    /// Root of the full subtree of `height` at `index` (at that height), from hash tiles.
    async fn node(&self, height: u32, index: u64, tree_size: u64) -> Result<Hash, CtError> {
        let (level, r) = (height / 8, height % 8);
        let hs = self
            .tile_nodes(level, index << r, 1u64 << r, tree_size)
            .await?;
        Ok(merkle::root_of_leaves(&hs))
    }

    async fn subtree(&self, start: u64, end: u64, tree_size: u64) -> Result<Hash, CtError> {
        let mut hs = Vec::new();
        for (h, i) in merkle::aligned_subtrees(start, end) {
            hs.push(self.node(h, i, tree_size).await?);
        }
        Ok(merkle::fold_subtrees(&hs))
    }
}

impl LogClient for StaticClient {
    fn kind(&self) -> LogKind {
        LogKind::Static
    }
    fn url(&self) -> &str {
        &self.base
    }
    fn key(&self) -> Option<&PublicKey> {
        self.key.as_ref()
    }
    fn origin(&self) -> Option<String> {
        self.origin.lock().ok().and_then(|o| o.clone())
    }

    async fn tree_head(&self) -> Result<TreeHead, CtError> {
        let cp = self.must("checkpoint", Checkpoint::parse).await?;
        let th = match &self.key {
            Some(k) => cp
                .verify_rfc6962(k)
                .map_err(|detail| CtError::BadSignature {
                    log: self.base.clone(),
                    detail,
                })?,
            None => {
                tracing::warn!(ct_log.url = %self.base, "no log key: checkpoint signature not checked");
                cp.rfc6962_tree_head(None)
                    .map_err(|detail| CtError::BadSignature {
                        log: self.base.clone(),
                        detail,
                    })?
            }
        };
        if let Ok(mut o) = self.origin.lock() {
            *o = Some(cp.origin.clone());
        }
        Ok(th)
    }

    async fn entries(
        &self,
        start: u64,
        end: u64,
        tree_size: u64,
    ) -> Result<Vec<LogEntry>, CtError> {
        let t = start / TILE_WIDTH;
        let width = tile::tile_width(0, t, tree_size);
        if width == 0 {
            return Err(CtError::Usage(format!(
                "entry {start} is beyond tree size {tree_size}"
            )));
        }
        let first = t * TILE_WIDTH;
        let path = tile::data_tile_path(t, width);
        let mut entries = match self
            .fetch(&path, |d| leaf::parse_data_tile(d, first))
            .await?
        {
            Some(e) => e,
            None if width < TILE_WIDTH => {
                self.must(&tile::data_tile_path(t, TILE_WIDTH), |d| {
                    leaf::parse_data_tile(d, first)
                })
                .await?
            }
            None => {
                return Err(CtError::NotFound {
                    url: join(&self.base, &path),
                })
            }
        };
        if (entries.len() as u64) < width {
            return Err(CtError::Inconsistent {
                log: self.base.clone(),
                detail: format!(
                    "data tile {path} has {} entries, expected {width}",
                    entries.len()
                ),
            });
        }
        entries.truncate(width as usize);
        let lo = (start - first) as usize;
        let hi = (end.min(first + width) - first) as usize;
        Ok(entries.drain(lo..hi.max(lo + 1)).collect())
    }

    async fn inclusion_proof(
        &self,
        index: u64,
        _leaf_hash: &Hash,
        tree_size: u64,
    ) -> Result<Vec<Hash>, CtError> {
        // RFC 6962 §2.1.1 PATH, each node recomputed from hash tiles.
        let mut ranges = Vec::new();
        merkle::inclusion_path(index, tree_size, |s, e| {
            ranges.push((s, e));
            Ok::<_, ()>([0u8; 32])
        })
        .ok();
        let mut out = Vec::with_capacity(ranges.len());
        for (s, e) in ranges {
            out.push(self.subtree(s, e, tree_size).await?);
        }
        Ok(out)
    }

    async fn consistency_proof(
        &self,
        _first: u64,
        _second: u64,
    ) -> Result<Option<Vec<Hash>>, CtError> {
        Ok(None)
    }

    async fn issuer(&self, fingerprint: &Hash) -> Result<Arc<Vec<u8>>, CtError> {
        if let Some(c) = self
            .issuers
            .lock()
            .ok()
            .and_then(|m| m.get(fingerprint).cloned())
        {
            return Ok(c);
        }
        let fp = *fingerprint;
        let path = format!("issuer/{}", hex::encode(fingerprint));
        let der = self
            .must(&path, |d| {
                let got: Hash = Sha256::digest(d).into();
                if got == fp {
                    Ok(d.to_vec())
                } else {
                    Err(ParseError::invalid(
                        "issuer",
                        format!("SHA-256 is {}", hex::encode(got)),
                    ))
                }
            })
            .await?;
        let der = Arc::new(der);
        if let Ok(mut m) = self.issuers.lock() {
            m.insert(fp, der.clone());
        }
        Ok(der)
    }
}

/// The API of the log at `url`: static-CT if it serves a `checkpoint` that parses (or is a local
/// directory), else RFC 6962.
pub async fn detect_kind(url: &str, config: &FetchConfig) -> Result<LogKind, CtError> {
    if local_path(url).is_some() {
        return Ok(LogKind::Static);
    }
    let f = Fetcher::new(FetchConfig {
        max_attempts: 3,
        ..config.clone()
    })?;
    let probe = f
        .get_checked(&join(url, "checkpoint"), |d| {
            Checkpoint::parse(d).map(|_| ())
        })
        .await;
    Ok(if probe.is_ok() {
        LogKind::Static
    } else {
        LogKind::Rfc6962
    })
}
