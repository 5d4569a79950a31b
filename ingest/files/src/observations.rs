//! Observation files: sightings as CSV, TSV or NDJSON.
//!
//! Columns `ip, port, sha1, first_seen, last_seen[, count][, source]` by position, or by name
//! when the first line is a header (`ip`, `port`, `sha1`|`cert_sha1`|`fingerprint`,
//! `first_seen`|`time_first`, `last_seen`|`time_last`, `count`|`times_seen`, `source`). NDJSON
//! objects use the same names. Times are RFC 3339 or epoch seconds. Invalid rows are reported
//! with their line number and skipped; reading goes on. [`crate::formats::ObservationFiles`]
//! imports them through the driver.

use std::io::{BufRead, Read};
use std::net::IpAddr;

use certhist_model::{parse_timestamp, ObservationRow, PORT_UNKNOWN};

/// A row that could not be used, with its 1-based line number.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct RowProblem {
    /// 1-based line number in the (decompressed) file.
    pub line: u64,
    /// What is wrong, naming the field.
    pub message: String,
}

/// File layout, detected from the first non-empty line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Comma-separated.
    Csv,
    /// Tab-separated.
    Tsv,
    /// One JSON object per line.
    Ndjson,
}

#[derive(Clone, Copy, Debug, Default)]
struct Columns {
    ip: usize,
    port: Option<usize>,
    sha1: usize,
    first_seen: usize,
    last_seen: Option<usize>,
    count: Option<usize>,
    source: Option<usize>,
}

const POSITIONAL: Columns = Columns {
    ip: 0,
    port: Some(1),
    sha1: 2,
    first_seen: 3,
    last_seen: Some(4),
    count: Some(5),
    source: Some(6),
};

/// Streams [`ObservationRow`]s (or [`RowProblem`]s) from a reader. Items come in file order;
/// [`ObservationReader::line`] tells how many lines were consumed (the resume cursor).
#[derive(Debug)]
pub struct ObservationReader<R> {
    input: R,
    layout: Option<Layout>,
    columns: Columns,
    line: u64,
    default_source: String,
    failed: bool,
}

impl<R: BufRead> ObservationReader<R> {
    /// Reads sightings from `input`; rows without a source get `default_source`.
    pub fn new(input: R, default_source: &str) -> Self {
        ObservationReader {
            input,
            layout: None,
            columns: POSITIONAL,
            line: 0,
            default_source: default_source.to_owned(),
            failed: false,
        }
    }

    /// Lines consumed so far.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// The detected layout (after the first row).
    pub fn layout(&self) -> Option<Layout> {
        self.layout
    }

    fn problem(&self, message: impl Into<String>) -> RowProblem {
        RowProblem {
            line: self.line,
            message: message.into(),
        }
    }

    fn parse_line(&mut self, text: &str) -> Option<Result<ObservationRow, RowProblem>> {
        let layout = match self.layout {
            Some(l) => l,
            None => {
                let l = if text.starts_with('{') {
                    Layout::Ndjson
                } else if text.contains('\t') {
                    Layout::Tsv
                } else {
                    Layout::Csv
                };
                self.layout = Some(l);
                if l != Layout::Ndjson {
                    let fields = split_fields(text, l);
                    if let Some(first) = fields.first() {
                        if first.trim().parse::<IpAddr>().is_err() {
                            return match header_columns(&fields) {
                                Ok(c) => {
                                    self.columns = c;
                                    None
                                }
                                Err(m) => Some(Err(self.problem(m))),
                            };
                        }
                    }
                }
                l
            }
        };
        Some(match layout {
            Layout::Ndjson => self.parse_json(text),
            Layout::Csv | Layout::Tsv => {
                let fields = split_fields(text, layout);
                self.parse_fields(&fields)
            }
        })
    }

    fn parse_fields(&self, fields: &[String]) -> Result<ObservationRow, RowProblem> {
        let get = |i: Option<usize>| {
            i.and_then(|i| fields.get(i))
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
        };
        let c = self.columns;
        let row = RawRow {
            ip: get(Some(c.ip)),
            port: get(c.port),
            sha1: get(Some(c.sha1)),
            first_seen: get(Some(c.first_seen)),
            last_seen: get(c.last_seen),
            count: get(c.count),
            source: get(c.source),
        };
        row.build(&self.default_source).map_err(|m| self.problem(m))
    }

    fn parse_json(&self, text: &str) -> Result<ObservationRow, RowProblem> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| self.problem(format!("invalid JSON: {e}")))?;
        let obj = value
            .as_object()
            .ok_or_else(|| self.problem("expected a JSON object"))?;
        let field = |names: &[&str]| -> Option<String> {
            names.iter().find_map(|n| match obj.get(*n) {
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                _ => None,
            })
        };
        let ip = field(&["ip"]);
        let port = field(&["port"]);
        let sha1 = field(&["sha1", "cert_sha1", "fingerprint"]);
        let first = field(&["first_seen", "time_first"]);
        let last = field(&["last_seen", "time_last"]);
        let count = field(&["count", "times_seen"]);
        let source = field(&["source"]);
        RawRow {
            ip: ip.as_deref(),
            port: port.as_deref(),
            sha1: sha1.as_deref(),
            first_seen: first.as_deref(),
            last_seen: last.as_deref(),
            count: count.as_deref(),
            source: source.as_deref(),
        }
        .build(&self.default_source)
        .map_err(|m| self.problem(m))
    }
}

impl<R: BufRead> ObservationReader<R> {
    /// The next row or bad row, `Ok(None)` at the end; `Err` when the input cannot be read on
    /// (I/O, corrupt compression).
    pub fn read_next(&mut self) -> std::io::Result<Option<Result<ObservationRow, RowProblem>>> {
        let mut raw = Vec::new();
        loop {
            raw.clear();
            if self.input.read_until(b'\n', &mut raw)? == 0 {
                return Ok(None);
            }
            self.line += 1;
            let text = match std::str::from_utf8(&raw) {
                Ok(t) => t,
                Err(_) => return Ok(Some(Err(self.problem("line is not UTF-8")))),
            };
            let text = text
                .trim_end_matches(['\n', '\r'])
                .trim_start_matches('\u{feff}');
            if text.trim().is_empty() || text.starts_with('#') {
                continue;
            }
            let owned = text.to_owned();
            if let Some(item) = self.parse_line(&owned) {
                return Ok(Some(item));
            }
        }
    }
}

/// Rows and bad rows; a read error is one last problem, then the end.
impl<R: BufRead> Iterator for ObservationReader<R> {
    type Item = Result<ObservationRow, RowProblem>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.read_next() {
            Ok(item) => item,
            Err(e) => {
                self.failed = true;
                self.line += 1;
                Some(Err(self.problem(format!("read error: {e}"))))
            }
        }
    }
}

struct RawRow<'a> {
    ip: Option<&'a str>,
    port: Option<&'a str>,
    sha1: Option<&'a str>,
    first_seen: Option<&'a str>,
    last_seen: Option<&'a str>,
    count: Option<&'a str>,
    source: Option<&'a str>,
}

impl RawRow<'_> {
    fn build(self, default_source: &str) -> Result<ObservationRow, String> {
        let ip_text = self.ip.ok_or("missing ip")?;
        let ip: IpAddr = ip_text
            .parse()
            .map_err(|_| format!("ip {:?} is not an IPv4 or IPv6 address", short(ip_text)))?;
        let port = match self.port {
            None | Some("?") | Some("-") => PORT_UNKNOWN,
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| format!("port {:?} is not a number from 0 to 65535", short(p)))?,
        };
        let sha1_text = self.sha1.ok_or("missing sha1")?;
        let sha1_clean: String = sha1_text.chars().filter(|c| *c != ':').collect();
        let sha1: [u8; 20] = hex::decode(&sha1_clean)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("sha1 {:?} is not 40 hex digits", short(sha1_text)))?;
        let first_text = self.first_seen.ok_or("missing first_seen")?;
        let first_seen = parse_timestamp(first_text).map_err(|e| format!("first_seen: {e}"))?;
        let last_seen = match self.last_seen {
            Some(t) => parse_timestamp(t).map_err(|e| format!("last_seen: {e}"))?,
            None => first_seen,
        };
        if last_seen < first_seen {
            return Err(format!(
                "last_seen {last_seen} is before first_seen {first_seen}"
            ));
        }
        let times_seen = match self.count {
            None => 1,
            Some(c) => match c.parse::<i64>() {
                Ok(n) if n >= 1 => n,
                _ => return Err(format!("count {:?} is not a positive integer", short(c))),
            },
        };
        let source = self.source.unwrap_or(default_source);
        if source.contains('\0') || source.chars().count() > 200 {
            return Err("source must be at most 200 characters without NUL".to_owned());
        }
        Ok(ObservationRow {
            ip,
            port,
            sha1,
            first_seen,
            last_seen,
            times_seen,
            source: source.to_owned(),
        })
    }
}

fn short(s: &str) -> String {
    s.chars().take(60).collect()
}

/// Splits one CSV/TSV line (CSV with RFC 4180 double quotes).
fn split_fields(text: &str, layout: Layout) -> Vec<String> {
    let delimiter = if layout == Layout::Tsv { b'\t' } else { b',' };
    if layout == Layout::Tsv || !text.contains('"') {
        return text.split(delimiter as char).map(str::to_owned).collect();
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(delimiter)
        .flexible(true)
        .quoting(layout == Layout::Csv)
        .from_reader(text.as_bytes());
    let mut record = csv::StringRecord::new();
    match reader.read_record(&mut record) {
        Ok(true) => record.iter().map(str::to_owned).collect(),
        _ => text.split(delimiter as char).map(str::to_owned).collect(),
    }
}

fn header_columns(fields: &[String]) -> Result<Columns, String> {
    let find = |names: &[&str]| {
        fields
            .iter()
            .position(|f| names.iter().any(|n| f.trim().eq_ignore_ascii_case(n)))
    };
    let ip = find(&["ip", "ip_address", "address"]);
    let sha1 = find(&["sha1", "cert_sha1", "fingerprint", "certificate_sha1"]);
    let first = find(&["first_seen", "time_first", "firstseen"]);
    match (ip, sha1, first) {
        (Some(ip), Some(sha1), Some(first_seen)) => Ok(Columns {
            ip,
            port: find(&["port"]),
            sha1,
            first_seen,
            last_seen: find(&["last_seen", "time_last", "lastseen"]),
            count: find(&["count", "times_seen"]),
            source: find(&["source"]),
        }),
        _ => Err(
            "header must name at least the columns ip, sha1 and first_seen (or give rows without a header: ip, port, sha1, first_seen, last_seen[, count][, source])"
                .to_owned(),
        ),
    }
}

/// Wraps a reader so compressed input (gzip, bzip2; told apart by magic bytes) is decompressed
/// transparently; see [`crate::input::decompress`].
pub fn maybe_gunzip<R: Read + Send + 'static>(input: R) -> std::io::Result<crate::input::Input> {
    crate::input::decompress(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Vec<Result<ObservationRow, RowProblem>> {
        ObservationReader::new(text.as_bytes(), "test").collect()
    }

    #[test]
    fn csv_positional_and_problems() {
        let rows = read(
            "192.0.2.1,443,7cf01be9117755a7268ddc2dbf2bace7752488a4,2024-01-01T00:00:00Z,2024-02-01T00:00:00Z,3,scan\n\
             not-an-ip,443,7cf01be9117755a7268ddc2dbf2bace7752488a4,2024-01-01T00:00:00Z,2024-02-01T00:00:00Z\n\
             \n\
             2001:db8::1,?,7CF01BE9117755A7268DDC2DBF2BACE7752488A4,1704067200,1704067200\n\
             192.0.2.1,443,abcd,2024-01-01T00:00:00Z,2024-02-01T00:00:00Z\n\
             192.0.2.1,443,7cf01be9117755a7268ddc2dbf2bace7752488a4,2024-03-01T00:00:00Z,2024-02-01T00:00:00Z\n",
        );
        assert_eq!(rows.len(), 5);
        let first = rows[0].as_ref().unwrap();
        assert_eq!(first.ip, "192.0.2.1".parse::<IpAddr>().unwrap());
        assert_eq!(first.times_seen, 3);
        assert_eq!(first.source, "scan");
        assert_eq!(rows[1].as_ref().unwrap_err().line, 2);
        assert!(rows[1].as_ref().unwrap_err().message.contains("not-an-ip"));
        let v6 = rows[2].as_ref().unwrap();
        assert_eq!(v6.port, PORT_UNKNOWN);
        assert_eq!(v6.source, "test");
        assert_eq!(v6.first_seen.timestamp(), 1_704_067_200);
        assert_eq!(rows[3].as_ref().unwrap_err().line, 5);
        assert!(rows[4]
            .as_ref()
            .unwrap_err()
            .message
            .contains("before first_seen"));
    }

    #[test]
    fn header_tsv_and_ndjson() {
        let tsv = "source\tsha1\tip\tfirst_seen\n\
                   sonar\t7cf01be9117755a7268ddc2dbf2bace7752488a4\t198.51.100.7\t2017-01-02\n";
        let rows = read(tsv);
        let r = rows[0].as_ref().unwrap();
        assert_eq!(r.source, "sonar");
        assert_eq!(r.port, PORT_UNKNOWN);
        assert_eq!(r.first_seen, r.last_seen);
        let nd = "{\"ip\":\"198.51.100.7\",\"port\":8443,\"cert_sha1\":\"7cf01be9117755a7268ddc2dbf2bace7752488a4\",\"time_first\":1483315200,\"time_last\":\"2017-02-01T00:00:00Z\",\"count\":2}\n{broken\n";
        let rows = read(nd);
        let r = rows[0].as_ref().unwrap();
        assert_eq!(r.port, 8443);
        assert_eq!(r.times_seen, 2);
        assert_eq!(rows[1].as_ref().unwrap_err().line, 2);
    }
}
