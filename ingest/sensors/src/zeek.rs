//! Zeek (and Bro) `ssl.log`, joined to `x509.log` and `files.log` of the same directory.
//!
//! Formats: TSV with `#separator` / `#set_separator` / `#empty_field` / `#unset_field` /
//! `#fields` headers (repeated headers, e.g. concatenated logs, are followed) and JSON lines;
//! gzip and bzip2 by magic (through `certhist_files::input`). The leaf certificate of a record
//! comes from:
//! - `cert_chain_fps` (Zeek >= 4.1): fingerprints, SHA-256 by default (`X509::hash_function`),
//!   SHA-1 when a sensor is configured so (told apart by length); the text fields come from
//!   x509.log by `fingerprint` (deduplicated per day by Zeek, so every x509 log of the directory is
//!   read);
//! - `cert_chain_fuids` (Bro/Zeek <= 4.0): file ids, resolved through `files.log` to the DER of an
//!   extracted certificate file (`extracted`, looked for beside the log and in `extract_files/`)
//!   or to the `sha1` column; without either the record has no certificate hash and gives no
//!   sighting (its SNI name is still kept).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use certhist_files::{FileFormat, ImportError, Item, ItemReader};
use certhist_model::{CertRef, CertStub, PassiveSighting};
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::{dn, epoch_decimal, trim_line_end, LineParser, LineReader};

/// Largest extracted certificate file read.
const MAX_CERT_FILE: u64 = 1 << 20;

/// `certhist import zeek`: Zeek `ssl.log` files (the x509 and files logs beside each are read
/// for it).
#[derive(Clone, Debug)]
pub struct ZeekSsl {
    /// Label stored with the sightings.
    pub source: String,
}

impl FileFormat for ZeekSsl {
    fn name(&self) -> &str {
        "zeek"
    }

    fn source(&self) -> &str {
        &self.source
    }

    fn kind(&self, _path: &Path) -> Result<String, ImportError> {
        Ok("zeek-ssl".to_owned())
    }

    fn follow_kind(&self) -> Option<&str> {
        Some("zeek-ssl")
    }

    fn reader(
        &self,
        path: &Path,
        input: certhist_files::input::Input,
    ) -> std::io::Result<Box<dyn ItemReader>> {
        let parser = ZeekParser::for_ssl_log(path)?;
        Ok(Box::new(LineReader::new(input, parser)))
    }
}

/// Is `name` a Zeek ssl log (`ssl.log`, `ssl.log.gz`, `ssl.2024-01-01-00-00-00.log.gz`,
/// `ssl.00:00:00-01:00:00.log.gz`)?
pub fn is_ssl_log_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("ssl") else {
        return false;
    };
    (rest.starts_with('.') || rest.starts_with('_') || rest.starts_with('-'))
        && (rest.ends_with(".log") || rest.contains(".log."))
}

/// The header state of a TSV log.
#[derive(Clone, Debug)]
struct Header {
    separator: u8,
    set_separator: String,
    empty: String,
    unset: String,
    fields: Option<HashMap<String, usize>>,
}

impl Default for Header {
    fn default() -> Self {
        Header {
            separator: b'\t',
            set_separator: ",".to_owned(),
            empty: "(empty)".to_owned(),
            unset: "-".to_owned(),
            fields: None,
        }
    }
}

/// Undoes Zeek's TSV escapes (`\xHH`, `\\`).
fn unescape(raw: &[u8]) -> String {
    if !raw.contains(&b'\\') {
        return String::from_utf8_lossy(raw).into_owned();
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\\' {
            if raw.get(i + 1) == Some(&b'x') {
                if let Some(h) = raw
                    .get(i + 2..i + 4)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    out.push(h);
                    i += 4;
                    continue;
                }
            } else if raw.get(i + 1) == Some(&b'\\') {
                out.push(b'\\');
                i += 2;
                continue;
            }
        }
        out.push(raw[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Header {
    /// Takes a `#` line; returns false if it is not a header this reader knows (ignored).
    fn take(&mut self, line: &[u8]) {
        if let Some(rest) = line.strip_prefix(b"#separator ") {
            let sep = unescape(rest);
            if let Some(b) = sep.bytes().next() {
                self.separator = b;
            }
            return;
        }
        let mut parts = line.split(|b| *b == self.separator);
        let key = parts.next().unwrap_or_default();
        let values: Vec<String> = parts.map(unescape).collect();
        match key {
            b"#set_separator" => {
                if let Some(v) = values.first() {
                    self.set_separator = v.clone();
                }
            }
            b"#empty_field" => {
                if let Some(v) = values.first() {
                    self.empty = v.clone();
                }
            }
            b"#unset_field" => {
                if let Some(v) = values.first() {
                    self.unset = v.clone();
                }
            }
            b"#fields" => {
                self.fields = Some(
                    values
                        .into_iter()
                        .enumerate()
                        .map(|(i, f)| (f, i))
                        .collect(),
                );
            }
            _ => {}
        }
    }
}

/// One record of a log, TSV or JSON.
enum Row<'a> {
    Tsv(&'a Header, Vec<&'a [u8]>),
    Json(serde_json::Map<String, Value>),
}

impl Row<'_> {
    /// A scalar field: `None` when absent or unset.
    fn get(&self, name: &str) -> Option<String> {
        match self {
            Row::Tsv(h, values) => {
                let i = *h.fields.as_ref()?.get(name)?;
                let raw = values.get(i)?;
                if *raw == h.unset.as_bytes() {
                    return None;
                }
                if *raw == h.empty.as_bytes() {
                    return Some(String::new());
                }
                Some(unescape(raw))
            }
            Row::Json(m) => match m.get(name)? {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                Value::Bool(b) => Some(if *b { "T" } else { "F" }.to_owned()),
                _ => None,
            },
        }
    }

    /// A set or vector field: `None` when absent or unset, empty when empty.
    fn list(&self, name: &str) -> Option<Vec<String>> {
        match self {
            Row::Tsv(h, values) => {
                let i = *h.fields.as_ref()?.get(name)?;
                let raw = values.get(i)?;
                if *raw == h.unset.as_bytes() {
                    return None;
                }
                if *raw == h.empty.as_bytes() || raw.is_empty() {
                    return Some(Vec::new());
                }
                let sep = h.set_separator.as_bytes();
                Some(split_bytes(raw, sep).map(unescape).collect())
            }
            Row::Json(m) => match m.get(name)? {
                Value::Array(a) => Some(
                    a.iter()
                        .filter_map(|v| match v {
                            Value::String(s) => Some(s.clone()),
                            Value::Number(n) => Some(n.to_string()),
                            _ => None,
                        })
                        .collect(),
                ),
                Value::String(s) => Some(vec![s.clone()]),
                _ => None,
            },
        }
    }

    /// A time field: epoch seconds (TSV, JSON number or string) or an ISO-8601 string.
    fn time(&self, name: &str) -> Option<DateTime<Utc>> {
        let text = self.get(name)?;
        epoch_decimal(&text).or_else(|| certhist_model::parse_timestamp(&text).ok())
    }
}

fn split_bytes<'a>(raw: &'a [u8], sep: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = Some(raw);
    std::iter::from_fn(move || {
        let r = rest?;
        if sep.is_empty() {
            rest = None;
            return Some(r);
        }
        match r.windows(sep.len()).position(|w| w == sep) {
            Some(at) => {
                rest = Some(&r[at + sep.len()..]);
                Some(&r[..at])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// Reads one line into a row (`Err` = a bad record, `Ok(None)` = header or blank).
fn row_of<'a>(header: &'a mut Header, line: &'a [u8]) -> Result<Option<Row<'a>>, String> {
    let first = line.iter().position(|b| !b.is_ascii_whitespace());
    let Some(first) = first else {
        return Ok(None);
    };
    match line[first] {
        b'{' => match serde_json::from_slice::<Value>(line) {
            Ok(Value::Object(m)) => Ok(Some(Row::Json(m))),
            Ok(_) => Err("not a JSON object".to_owned()),
            Err(e) => Err(format!("bad JSON: {e}")),
        },
        b'#' => {
            header.take(line);
            Ok(None)
        }
        _ => {
            let h: &'a Header = header;
            let Some(fields) = &h.fields else {
                return Err("data line before a #fields header".to_owned());
            };
            let values: Vec<&[u8]> = line.split(|b| *b == h.separator).collect();
            if values.len() < fields.len() {
                return Err(format!(
                    "{} fields; the #fields header names {}",
                    values.len(),
                    fields.len()
                ));
            }
            Ok(Some(Row::Tsv(h, values)))
        }
    }
}

/// What a files.log says about a file id.
#[derive(Clone, Debug, Default)]
struct FileEntry {
    sha1: Option<[u8; 20]>,
    der: Option<Vec<u8>>,
}

/// Certificates of the side logs of a directory.
#[derive(Default)]
struct SideLogs {
    /// x509.log by fingerprint (lower-case hex).
    by_fingerprint: HashMap<String, CertStub>,
    /// files.log by fuid (DER of extracted files, SHA-1).
    files: HashMap<String, FileEntry>,
}

/// Calls `f` with every row of the log at `path` (bad lines skipped: side logs only add text).
fn for_each_row(path: &Path, mut f: impl FnMut(&Row<'_>)) -> std::io::Result<()> {
    let mut input = certhist_files::input::open(path)?;
    let mut header = Header::default();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if std::io::BufRead::read_until(&mut input, b'\n', &mut buf)? == 0 {
            return Ok(());
        }
        let line = trim_line_end(&buf);
        if let Ok(Some(row)) = row_of(&mut header, line) {
            f(&row);
        }
    }
}

fn stub_of(row: &Row<'_>) -> CertStub {
    let subject_dn = row.get("certificate.subject");
    CertStub {
        subject_cn: subject_dn.as_deref().and_then(dn::common_name),
        subject_dn,
        issuer_dn: row.get("certificate.issuer"),
        serial_text: row.get("certificate.serial"),
        not_before: row.time("certificate.not_valid_before"),
        not_after: row.time("certificate.not_valid_after"),
        san_dns: row.list("san.dns").unwrap_or_default(),
    }
}

/// The side logs of kind `prefix` (`x509`, `files`) in `dir`, sorted by name.
fn side_logs(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.strip_prefix(prefix)
                .is_some_and(|r| r.starts_with('.') && (r.ends_with(".log") || r.contains(".log.")))
        })
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

impl SideLogs {
    fn load(dir: &Path) -> std::io::Result<Self> {
        let mut side = SideLogs::default();
        for path in side_logs(dir, "x509") {
            for_each_row(&path, |row| {
                if let Some(fp) = row.get("fingerprint") {
                    side.by_fingerprint
                        .entry(fp.to_ascii_lowercase())
                        .or_insert_with(|| stub_of(row));
                }
            })?;
        }
        for path in side_logs(dir, "files") {
            for_each_row(&path, |row| {
                let Some(fuid) = row.get("fuid") else {
                    return;
                };
                let sha1 = row
                    .get("sha1")
                    .and_then(|h| hex::decode(h).ok())
                    .and_then(|h| <[u8; 20]>::try_from(h).ok());
                let der = row
                    .get("extracted")
                    .and_then(|name| read_extracted(dir, &name));
                if sha1.is_some() || der.is_some() {
                    side.files.insert(fuid, FileEntry { sha1, der });
                }
            })?;
        }
        Ok(side)
    }
}

/// The DER of an extracted file named `name` (beside the log or in `extract_files/`), if it is
/// there, small and looks like a DER SEQUENCE.
fn read_extracted(dir: &Path, name: &str) -> Option<Vec<u8>> {
    if name.is_empty() || name.contains('/') || name.contains('\\') || name.starts_with('.') {
        return None;
    }
    for p in [dir.join("extract_files").join(name), dir.join(name)] {
        let Ok(meta) = std::fs::metadata(&p) else {
            continue;
        };
        if !meta.is_file() || meta.len() > MAX_CERT_FILE {
            continue;
        }
        if let Ok(der) = std::fs::read(&p) {
            if der.first() == Some(&0x30) {
                return Some(der);
            }
        }
    }
    None
}

/// Parses the lines of one ssl.log.
#[derive(Debug)]
pub struct ZeekParser {
    header: Header,
    side: Arc<SideLogs>,
    /// Directory of the side logs, and their (name, size) when read (for [`LineParser::refresh`]).
    dir: PathBuf,
    side_sizes: Vec<(PathBuf, u64)>,
}

/// The x509 and files logs of `dir` with their sizes.
fn side_sizes(dir: &Path) -> Vec<(PathBuf, u64)> {
    side_logs(dir, "x509")
        .into_iter()
        .chain(side_logs(dir, "files"))
        .map(|p| {
            let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            (p, len)
        })
        .collect()
}

impl std::fmt::Debug for SideLogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SideLogs")
            .field("x509", &self.by_fingerprint.len())
            .field("files", &self.files.len())
            .finish()
    }
}

impl ZeekParser {
    /// A parser for the ssl log at `path`, with the x509 and files logs of its directory read.
    pub fn for_ssl_log(path: &Path) -> std::io::Result<Self> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        Ok(ZeekParser {
            header: Header::default(),
            side_sizes: side_sizes(dir),
            side: Arc::new(SideLogs::load(dir)?),
            dir: dir.to_owned(),
        })
    }

    fn record(side: &SideLogs, row: &Row<'_>) -> Result<(Vec<Vec<u8>>, PassiveSighting), String> {
        let time = row.time("ts").ok_or("no valid ts")?;
        let ip: IpAddr = row
            .get("id.resp_h")
            .ok_or("no id.resp_h")?
            .parse()
            .map_err(|_| "id.resp_h is not an address")?;
        let port: u16 = row
            .get("id.resp_p")
            .ok_or("no id.resp_p")?
            .parse()
            .map_err(|_| "id.resp_p is not a port")?;
        let sni = row
            .get("server_name")
            .filter(|s| !s.is_empty())
            .map(|s| s.to_ascii_lowercase());
        let mut certs = Vec::new();
        let mut leaf = None;
        let mut stub = None;
        if let Some(fps) = row.list("cert_chain_fps").filter(|l| !l.is_empty()) {
            let fp = fps[0].to_ascii_lowercase();
            let bytes = hex::decode(&fp).map_err(|_| "cert_chain_fps: not hex")?;
            leaf = Some(match bytes.len() {
                32 => CertRef::Sha256(bytes.try_into().map_err(|_| "fingerprint")?),
                20 => CertRef::Sha1(bytes.try_into().map_err(|_| "fingerprint")?),
                n => return Err(format!("cert_chain_fps: a {n}-byte fingerprint")),
            });
            stub = side.by_fingerprint.get(&fp).cloned();
        } else if let Some(fuids) = row.list("cert_chain_fuids").filter(|l| !l.is_empty()) {
            for fuid in &fuids {
                if let Some(der) = side.files.get(fuid).and_then(|e| e.der.clone()) {
                    certs.push(der);
                } else {
                    break;
                }
            }
            let entry = side.files.get(&fuids[0]);
            leaf = match (certs.first(), entry.and_then(|e| e.sha1)) {
                (Some(der), _) => Some(CertRef::Sha1(crate::sha1_of(der))),
                (None, Some(sha1)) => Some(CertRef::Sha1(sha1)),
                (None, None) => None,
            };
        }
        Ok((
            certs,
            PassiveSighting {
                time,
                ip,
                port,
                leaf,
                stub,
                sni,
            },
        ))
    }
}

impl LineParser for ZeekParser {
    fn refresh(&mut self) {
        let now = side_sizes(&self.dir);
        if now != self.side_sizes {
            if let Ok(side) = SideLogs::load(&self.dir) {
                self.side = Arc::new(side);
                self.side_sizes = now;
            }
        }
    }

    fn line(&mut self, line: &[u8], number: u64) -> Option<Item> {
        let row = match row_of(&mut self.header, line) {
            Ok(Some(row)) => row,
            Ok(None) => return None,
            Err(e) => return Some(Item::Problem(number, e)),
        };
        Some(match Self::record(&self.side, &row) {
            Ok((certs, sighting)) => Item::Passive {
                certs,
                sighting: Box::new(sighting),
            },
            Err(e) => Item::Problem(number, e),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_ssl_log_name("ssl.log"));
        assert!(is_ssl_log_name("ssl.log.gz"));
        assert!(is_ssl_log_name("ssl.2024-01-01-00-00-00.log.gz"));
        assert!(is_ssl_log_name("ssl.00:00:00-01:00:00.log.gz"));
        assert!(!is_ssl_log_name("x509.log"));
        assert!(!is_ssl_log_name("sslx.log"));
        assert!(!is_ssl_log_name("ssl.txt"));
    }

    #[test]
    fn escapes() {
        assert_eq!(unescape(b"a\\x09b"), "a\tb");
        assert_eq!(unescape(b"Solutions\\\\, Inc"), "Solutions\\, Inc");
        assert_eq!(unescape(b"\\x"), "\\x");
    }

    #[test]
    fn bad_lines_are_problems() {
        let mut p = ZeekParser {
            header: Header::default(),
            side: Arc::new(SideLogs::default()),
            dir: PathBuf::from("."),
            side_sizes: Vec::new(),
        };
        assert!(matches!(p.line(b"1\t2", 1), Some(Item::Problem(1, _))));
        assert!(p.line(b"#fields\tts\tid.resp_h\tid.resp_p", 2).is_none());
        assert!(matches!(
            p.line(b"1.5\tnot-ip\t443", 3),
            Some(Item::Problem(3, _))
        ));
        assert!(matches!(p.line(b"{\"ts\":", 4), Some(Item::Problem(4, _))));
        assert!(matches!(
            p.line(b"1.5\t192.0.2.1\t443", 5),
            Some(Item::Passive { .. })
        ));
    }
}
