//! Input discovery: cache folders, MetaData folders, collected trees, zips of them, `certutil
//! -urlcache` dumps and URL lists.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::entry::{CacheEntry, Origin};
use crate::CryptnetError;

/// Largest single file read from a cache (Content files are HTTP bodies; CRLs can be big).
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// The result of reading one input path.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Every entry found, in a stable order (cache folder, then file name).
    pub entries: Vec<CacheEntry>,
    /// Cache folders found (paths, or `zip!prefix`).
    pub caches: Vec<String>,
    /// Problems that did not stop the scan (unreadable files or folders).
    pub warnings: Vec<String>,
}

fn eq_ci(a: &std::ffi::OsStr, b: &str) -> bool {
    a.to_str().is_some_and(|s| s.eq_ignore_ascii_case(b))
}

fn child_ci(dir: &Path, name: &str) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .find(|e| eq_ci(&e.file_name(), name) && e.path().is_dir())
        .map(|e| e.path())
}

fn read_limited(path: &Path) -> std::io::Result<Vec<u8>> {
    let f = std::fs::File::open(path)?;
    let mut out = Vec::new();
    f.take(MAX_FILE_BYTES + 1).read_to_end(&mut out)?;
    if out.len() as u64 > MAX_FILE_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than {MAX_FILE_BYTES} bytes"
        )));
    }
    Ok(out)
}

/// Reads every entry of a MetaData folder, pairing each with the same-named file in `content`.
pub fn load_metadata_dir(metadata: &Path, content: Option<&Path>, out: &mut Loaded) {
    let mut files: Vec<(String, PathBuf)> = match std::fs::read_dir(metadata) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
            .collect(),
        Err(e) => {
            out.warnings.push(format!("{}: {e}", metadata.display()));
            return;
        }
    };
    files.sort();
    let content_files: HashMap<String, PathBuf> = content
        .and_then(|c| std::fs::read_dir(c).ok())
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().to_ascii_uppercase(),
                        e.path(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let entries: Vec<CacheEntry> = files
        .par_iter()
        .map(|(name, path)| {
            let source = path.display().to_string();
            let meta = match read_limited(path) {
                Ok(m) => m,
                Err(e) => {
                    let mut entry = CacheEntry::from_files(source, name, &[], None);
                    entry.errors = vec![format!("cannot read MetaData: {e}")];
                    return entry;
                }
            };
            let content_bytes = content_files
                .get(&name.to_ascii_uppercase())
                .map(|p| read_limited(p));
            match content_bytes {
                Some(Ok(c)) => CacheEntry::from_files(source, name, &meta, Some(&c)),
                Some(Err(e)) => {
                    let mut entry = CacheEntry::from_files(source, name, &meta, None);
                    entry.errors.push(format!("cannot read Content: {e}"));
                    entry
                }
                None => CacheEntry::from_files(source, name, &meta, None),
            }
        })
        .collect();
    out.entries.extend(entries);
}

fn find_caches(root: &Path, found: &mut Vec<PathBuf>, warnings: &mut Vec<String>) {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) => {
                warnings.push(format!("{}: {e}", dir.display()));
                continue;
            }
        };
        let mut subdirs = Vec::new();
        for e in rd.filter_map(Result::ok) {
            // symlinks are not followed (loops, and they point outside the collection)
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if eq_ci(&e.file_name(), "CryptnetUrlCache") {
                found.push(e.path());
            } else {
                subdirs.push(e.path());
            }
        }
        subdirs.sort();
        stack.extend(subdirs.into_iter().rev());
    }
}

/// Reads one input path of any supported kind.
pub fn load_path(path: &Path) -> Result<Loaded, CryptnetError> {
    let mut out = Loaded::default();
    let meta = std::fs::metadata(path).map_err(|e| CryptnetError::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    if meta.is_dir() {
        let is_metadata_dir = path.file_name().is_some_and(|n| eq_ci(n, "MetaData"));
        if is_metadata_dir {
            let content = path.parent().and_then(|p| child_ci(p, "Content"));
            out.caches.push(path.display().to_string());
            load_metadata_dir(path, content.as_deref(), &mut out);
        } else if let Some(md) = child_ci(path, "MetaData") {
            out.caches.push(path.display().to_string());
            let content = child_ci(path, "Content");
            load_metadata_dir(&md, content.as_deref(), &mut out);
        } else {
            let mut caches = Vec::new();
            find_caches(path, &mut caches, &mut out.warnings);
            if caches.is_empty() {
                return Err(CryptnetError::NoCache(path.display().to_string()));
            }
            for c in caches {
                out.caches.push(c.display().to_string());
                match child_ci(&c, "MetaData") {
                    Some(md) => {
                        load_metadata_dir(&md, child_ci(&c, "Content").as_deref(), &mut out)
                    }
                    None => out
                        .warnings
                        .push(format!("{}: no MetaData folder", c.display())),
                }
            }
        }
        return Ok(out);
    }
    let bytes = read_limited(path).map_err(|e| CryptnetError::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        load_zip(path, &bytes, &mut out)?;
        return Ok(out);
    }
    // A single MetaData file inside a MetaData folder.
    if path
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|n| eq_ci(n, "MetaData"))
    {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let content = path
            .parent()
            .and_then(Path::parent)
            .and_then(|p| child_ci(p, "Content"))
            .map(|c| c.join(&name))
            .and_then(|p| read_limited(&p).ok());
        out.entries.push(CacheEntry::from_files(
            path.display().to_string(),
            &name,
            &bytes,
            content.as_deref(),
        ));
        return Ok(out);
    }
    let text = String::from_utf8_lossy(&bytes);
    out.entries = urls_from_text(&path.display().to_string(), &text);
    if out.entries.is_empty() {
        return Err(CryptnetError::NoCache(path.display().to_string()));
    }
    Ok(out)
}

/// Extracts URLs from a `certutil -urlcache` dump or a URL list (one entry per URL found).
pub fn urls_from_text(source: &str, text: &str) -> Vec<CacheEntry> {
    let text = text.trim_start_matches('\u{feff}');
    let certutil =
        text.contains("WinHttp Cache") || text.contains("CertUtil:") || text.contains("-URLCache");
    let origin = if certutil {
        Origin::CertutilDump
    } else {
        Origin::UrlList
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        for token in line.split_whitespace() {
            let lower = token.get(..8).unwrap_or(token).to_ascii_lowercase();
            if lower.starts_with("http://") || lower.starts_with("https://") {
                let url = token
                    .trim_end_matches([',', ';', '"', '\''])
                    .trim_start_matches(['"', '\'']);
                out.push(CacheEntry::from_url(
                    format!("{source}:{}", i + 1),
                    origin,
                    url,
                ));
            }
        }
    }
    out
}

fn load_zip(path: &Path, bytes: &[u8], out: &mut Loaded) -> Result<(), CryptnetError> {
    let zip_err = |e: zip::result::ZipError| CryptnetError::Zip {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(zip_err)?;
    // cache root prefix → (MetaData files, Content files by upper-case name)
    type Files = (Vec<(String, Vec<u8>)>, HashMap<String, Vec<u8>>);
    let mut caches: std::collections::BTreeMap<String, Files> = std::collections::BTreeMap::new();
    for i in 0..archive.len() {
        let mut f = match archive.by_index(i) {
            Ok(f) => f,
            Err(e) => {
                out.warnings
                    .push(format!("{}: entry {i}: {e}", path.display()));
                continue;
            }
        };
        if f.is_dir() {
            continue;
        }
        let name = f.name().replace('\\', "/");
        let parts: Vec<&str> = name.split('/').collect();
        let Some(pos) = parts
            .iter()
            .rposition(|p| p.eq_ignore_ascii_case("CryptnetUrlCache"))
        else {
            continue;
        };
        let (Some(sub), Some(file), true) = (
            parts.get(pos + 1),
            parts.get(pos + 2),
            parts.len() == pos + 3,
        ) else {
            continue;
        };
        if f.size() > MAX_FILE_BYTES {
            out.warnings.push(format!(
                "{}!{name}: larger than {MAX_FILE_BYTES} bytes",
                path.display()
            ));
            continue;
        }
        let mut data = Vec::new();
        if let Err(e) = (&mut f).take(MAX_FILE_BYTES).read_to_end(&mut data) {
            out.warnings.push(format!("{}!{name}: {e}", path.display()));
            continue;
        }
        let root = parts.get(..=pos).unwrap_or_default().join("/");
        let slot = caches.entry(root).or_default();
        if sub.eq_ignore_ascii_case("MetaData") {
            slot.0.push(((*file).to_owned(), data));
        } else if sub.eq_ignore_ascii_case("Content") {
            slot.1.insert(file.to_ascii_uppercase(), data);
        }
    }
    if caches.is_empty() {
        return Err(CryptnetError::NoCache(path.display().to_string()));
    }
    for (root, (mut metas, contents)) in caches {
        out.caches.push(format!("{}!{root}", path.display()));
        metas.sort_by(|a, b| a.0.cmp(&b.0));
        let entries: Vec<CacheEntry> = metas
            .par_iter()
            .map(|(name, data)| {
                let source = format!("{}!{root}/MetaData/{name}", path.display());
                let content = contents.get(&name.to_ascii_uppercase()).map(Vec::as_slice);
                CacheEntry::from_files(source, name, data, content)
            })
            .collect();
        out.entries.extend(entries);
    }
    Ok(())
}
