//! ZGrab2 JSON (one object per line, or pretty-printed objects spanning lines) and the 2015
//! ZGrab "log" format.
//!
//! ZGrab2 records look like `{"ip":…, "domain":…, "data": {"<module>": {"status":…,
//! "timestamp":…, "result": {…}}}}`. The TLS handshake log (`server_certificates.certificate.raw`
//! and `.chain[].raw`, base64 DER) sits at `result.handshake_log` (module `tls`),
//! `result.tls.handshake_log` (STARTTLS-style modules: ftp, amqp091, smtp, imap, pop3, …) or
//! `result.response.request.tls_log.handshake_log` (http over TLS). The 2015 format has `host`,
//! `time` and `log[]` with a `tls_handshake` entry whose `data.server_certificates.raw[]` lists
//! the chain, leaf first.

use std::io::BufRead;
use std::net::IpAddr;

use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::input::Lines;
use crate::record::{excerpt, sha1_of, Item, ItemReader, Record, Sighting};

/// Largest JSON record accepted (a pretty-printed object is accumulated up to this size).
const MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;

/// How ports are chosen for records that do not carry one.
#[derive(Clone, Copy, Debug, Default)]
pub struct PortHints {
    /// From the file name (`…_443.json`).
    pub from_file_name: Option<u16>,
    /// Given on the command line (`--port`).
    pub from_user: Option<u16>,
}

/// Default port of a ZGrab2 module when it spoke TLS (IANA service ports; `http` over TLS is
/// HTTPS).
fn module_default_port(module: &str) -> Option<u16> {
    Some(match module {
        "tls" | "http" | "https" => 443,
        "ftp" => 21,
        "amqp091" => 5671,
        "smtp" => 25,
        "imap" => 143,
        "pop3" => 110,
        "mysql" => 3306,
        "postgres" => 5432,
        "mssql" => 1433,
        "mqtt" => 8883,
        "redis" => 6379,
        "ipp" => 631,
        "smb" => 445,
        _ => return None,
    })
}

/// Reads ZGrab2 / 2015 ZGrab JSON.
#[derive(Debug)]
pub struct ZgrabReader<R> {
    lines: Lines<R>,
    hints: PortHints,
    pending: Vec<u8>,
    start_line: u64,
    depth: i64,
    queued: Option<Item>,
}

impl<R: BufRead> ZgrabReader<R> {
    /// A reader over decompressed input.
    pub fn new(reader: R, hints: PortHints) -> Self {
        ZgrabReader {
            lines: Lines::new(reader, MAX_RECORD_BYTES),
            hints,
            pending: Vec::new(),
            start_line: 0,
            depth: 0,
            queued: None,
        }
    }

    fn finish_pending(&mut self) -> Item {
        let line = self.start_line;
        let bytes = std::mem::take(&mut self.pending);
        self.depth = 0;
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(v) => parse_value(&v, line, self.hints),
            Err(e) => Item::Problem(line, format!("invalid JSON: {e}")),
        }
    }
}

/// Scans one line for JSON structure: returns (depth change, ends inside a string).
fn scan_depth(bytes: &[u8]) -> (i64, bool) {
    let mut depth = 0i64;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth -= 1,
            _ => {}
        }
    }
    (depth, in_string)
}

impl<R: BufRead + Send> ItemReader for ZgrabReader<R> {
    fn next_item(&mut self) -> std::io::Result<Option<Item>> {
        if let Some(item) = self.queued.take() {
            return Ok(Some(item));
        }
        loop {
            let Some(line) = self.lines.next_line()? else {
                if !self.pending.is_empty() {
                    let line = self.start_line;
                    self.pending.clear();
                    self.depth = 0;
                    return Ok(Some(Item::Problem(
                        line,
                        "truncated JSON record at end of file".to_owned(),
                    )));
                }
                return Ok(None);
            };
            let number = line.number;
            if line.too_long {
                let had_pending = !self.pending.is_empty();
                let start = self.start_line;
                self.pending.clear();
                self.depth = 0;
                let item = Item::Problem(
                    number,
                    format!("record longer than {MAX_RECORD_BYTES} bytes"),
                );
                if had_pending {
                    self.queued = Some(item);
                    return Ok(Some(Item::Problem(
                        start,
                        "truncated JSON record".to_owned(),
                    )));
                }
                return Ok(Some(item));
            }
            let bytes = line.bytes;
            if self.pending.is_empty() {
                match Self::fresh_line(
                    &mut self.pending,
                    &mut self.start_line,
                    &mut self.depth,
                    self.hints,
                    number,
                    bytes,
                ) {
                    Some(item) => return Ok(Some(item)),
                    None => continue,
                }
            }
            // Inside a multi-line object. A line starting at column 0 with anything but a closing
            // bracket, a quote or a comma begins a new record: the pending one was cut off.
            let continues = matches!(
                bytes.first(),
                None | Some(b' ' | b'\t' | b'}' | b']' | b'"' | b',')
            );
            if !continues {
                let start = self.start_line;
                self.pending.clear();
                self.depth = 0;
                self.queued = Self::fresh_line(
                    &mut self.pending,
                    &mut self.start_line,
                    &mut self.depth,
                    self.hints,
                    number,
                    bytes,
                );
                return Ok(Some(Item::Problem(
                    start,
                    "truncated JSON record".to_owned(),
                )));
            }
            let (depth, in_string) = scan_depth(bytes);
            if in_string {
                let start = self.start_line;
                self.pending.clear();
                self.depth = 0;
                return Ok(Some(Item::Problem(
                    start,
                    "truncated JSON record".to_owned(),
                )));
            }
            self.pending.extend_from_slice(bytes);
            self.pending.push(b'\n');
            self.depth += depth;
            if self.pending.len() > MAX_RECORD_BYTES {
                let start = self.start_line;
                self.pending.clear();
                self.depth = 0;
                return Ok(Some(Item::Problem(
                    start,
                    format!("record longer than {MAX_RECORD_BYTES} bytes"),
                )));
            }
            if self.depth <= 0 {
                return Ok(Some(self.finish_pending()));
            }
        }
    }
}

impl<R: BufRead> ZgrabReader<R> {
    /// A line outside any pending record: an item, or `None` when it is blank or opens a
    /// multi-line object.
    fn fresh_line(
        pending: &mut Vec<u8>,
        start_line: &mut u64,
        depth_out: &mut i64,
        hints: PortHints,
        number: u64,
        bytes: &[u8],
    ) -> Option<Item> {
        let trimmed = bytes.trim_ascii();
        if trimmed.is_empty() {
            return None;
        }
        if !trimmed.starts_with(b"{") {
            return Some(Item::Problem(
                number,
                format!("not a JSON object: {:?}", excerpt(trimmed)),
            ));
        }
        let (depth, in_string) = scan_depth(bytes);
        if in_string || depth < 0 {
            return Some(Item::Problem(number, truncated_message(bytes)));
        }
        if depth == 0 {
            return Some(match serde_json::from_slice::<Value>(bytes) {
                Ok(v) => parse_value(&v, number, hints),
                Err(e) => Item::Problem(number, format!("invalid JSON: {e}")),
            });
        }
        pending.extend_from_slice(bytes);
        pending.push(b'\n');
        *start_line = number;
        *depth_out = depth;
        None
    }
}

fn truncated_message(bytes: &[u8]) -> String {
    format!("truncated or invalid JSON record ({} bytes)", bytes.len())
}

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, key| cur.get(*key))
}

fn decode_b64(text: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| format!("certificate base64: {e}"))
}

/// Turns one JSON value into a record or a problem.
pub(crate) fn parse_value(v: &Value, line: u64, hints: PortHints) -> Item {
    if !v.is_object() {
        return Item::Problem(line, "not a JSON object".to_owned());
    }
    if v.get("log").is_some_and(Value::is_array) {
        return parse_log_format(v, line, hints);
    }
    let Some(data) = v.get("data").and_then(Value::as_object) else {
        return Item::Problem(line, "no `data` object (not a ZGrab2 record)".to_owned());
    };
    let ip_text = v.get("ip").and_then(Value::as_str);
    let record_port = port_of(v.get("port"));
    let mut record = Record {
        line,
        ..Record::default()
    };
    for (module, body) in data {
        let Some(hs) = handshake_log(body) else {
            continue;
        };
        let chain = match certificates(hs) {
            Ok(c) => c,
            Err(msg) => return Item::Problem(line, format!("module {module}: {msg}")),
        };
        let Some(leaf) = chain.first() else {
            continue;
        };
        let Some(ip_text) = ip_text else {
            return Item::Problem(line, "record has certificates but no `ip`".to_owned());
        };
        let Ok(ip) = ip_text.trim().parse::<IpAddr>() else {
            return Item::Problem(
                line,
                format!("invalid ip {:?}", excerpt(ip_text.as_bytes())),
            );
        };
        let Some(ts) = body.get("timestamp").and_then(Value::as_str) else {
            return Item::Problem(line, format!("module {module}: no `timestamp`"));
        };
        let time = match parse_time(ts) {
            Ok(t) => t,
            Err(msg) => return Item::Problem(line, format!("module {module}: {msg}")),
        };
        let port = record_port
            .or_else(|| port_of(body.get("port")))
            .or(hints.from_file_name)
            .or(hints.from_user)
            .or_else(|| module_default_port(module))
            .unwrap_or(certhist_model::PORT_UNKNOWN);
        record.sightings.push(Sighting {
            ip,
            port,
            leaf_sha1: sha1_of(leaf),
            time,
        });
        for der in chain {
            if !record.certs.contains(&der) {
                record.certs.push(der);
            }
        }
    }
    Item::Record(record)
}

fn port_of(v: Option<&Value>) -> Option<u16> {
    match v? {
        Value::Number(n) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn parse_time(ts: &str) -> Result<DateTime<Utc>, String> {
    certhist_model::parse_timestamp(ts).map_err(|e| e.to_string())
}

/// Where a module's result keeps its handshake log.
fn handshake_log(module_body: &Value) -> Option<&Value> {
    let result = module_body.get("result")?;
    [
        &["handshake_log"][..],
        &["tls", "handshake_log"],
        &["response", "request", "tls_log", "handshake_log"],
        &["tls_log", "handshake_log"],
    ]
    .iter()
    .find_map(|p| get(result, p))
    .filter(|v| v.is_object())
}

/// Leaf then chain, decoded.
fn certificates(hs: &Value) -> Result<Vec<Vec<u8>>, String> {
    let Some(sc) = hs.get("server_certificates") else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    if let Some(raw) = get(sc, &["certificate", "raw"]).and_then(Value::as_str) {
        out.push(decode_b64(raw)?);
    }
    if let Some(chain) = sc.get("chain").and_then(Value::as_array) {
        if out.is_empty() && !chain.is_empty() {
            return Err("chain without a leaf certificate".to_owned());
        }
        for (i, c) in chain.iter().enumerate() {
            let Some(raw) = c.get("raw").and_then(Value::as_str) else {
                return Err(format!("chain[{i}] has no `raw`"));
            };
            out.push(decode_b64(raw).map_err(|e| format!("chain[{i}]: {e}"))?);
        }
    }
    Ok(out)
}

/// The 2015 ZGrab format (`host`, `time`, `log[]`).
fn parse_log_format(v: &Value, line: u64, hints: PortHints) -> Item {
    let mut record = Record {
        line,
        ..Record::default()
    };
    let Some(entries) = v.get("log").and_then(Value::as_array) else {
        return Item::Record(record);
    };
    let Some(hs) = entries
        .iter()
        .find(|e| e.get("type").and_then(Value::as_str) == Some("tls_handshake"))
    else {
        return Item::Record(record);
    };
    let Some(raws) = get(hs, &["data", "server_certificates", "raw"]).and_then(Value::as_array)
    else {
        return Item::Record(record);
    };
    let mut chain = Vec::with_capacity(raws.len());
    for (i, r) in raws.iter().enumerate() {
        let Some(text) = r.as_str() else {
            return Item::Problem(
                line,
                format!("server_certificates.raw[{i}] is not a string"),
            );
        };
        match decode_b64(text) {
            Ok(der) => chain.push(der),
            Err(e) => return Item::Problem(line, format!("server_certificates.raw[{i}]: {e}")),
        }
    }
    let Some(leaf) = chain.first() else {
        return Item::Record(record);
    };
    let Some(host) = v.get("host").and_then(Value::as_str) else {
        return Item::Problem(line, "record has certificates but no `host`".to_owned());
    };
    let Ok(ip) = host.trim().parse::<IpAddr>() else {
        return Item::Problem(line, format!("invalid host {:?}", excerpt(host.as_bytes())));
    };
    let Some(ts) = v.get("time").and_then(Value::as_str) else {
        return Item::Problem(line, "no `time`".to_owned());
    };
    let time = match parse_time(ts) {
        Ok(t) => t,
        Err(msg) => return Item::Problem(line, msg),
    };
    let port = port_of(v.get("port"))
        .or(hints.from_file_name)
        .or(hints.from_user)
        .unwrap_or(443);
    record.sightings.push(Sighting {
        ip,
        port,
        leaf_sha1: sha1_of(leaf),
        time,
    });
    for der in chain {
        if !record.certs.contains(&der) {
            record.certs.push(der);
        }
    }
    Item::Record(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(text: &str) -> Vec<Item> {
        let mut r = ZgrabReader::new(text.as_bytes(), PortHints::default());
        let mut out = Vec::new();
        while let Some(i) = r.next_item().unwrap() {
            out.push(i);
        }
        out
    }

    const CERT_B64: &str = "MAMCAQE="; // not a certificate, only bytes: the reader does not parse DER

    fn line(ip: &str) -> String {
        format!(
            r#"{{"ip":"{ip}","data":{{"tls":{{"status":"success","timestamp":"2020-01-02T03:04:05Z","result":{{"handshake_log":{{"server_certificates":{{"certificate":{{"raw":"{CERT_B64}"}}}}}}}}}}}}}}"#
        )
    }

    #[test]
    fn truncated_line_between_good_lines() {
        let good = line("192.0.2.1");
        let cut = &good[..good.len() / 2];
        let text = format!("{good}\n{cut}\n{}\n", line("192.0.2.2"));
        let got = items(&text);
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(matches!(&got[0], Item::Record(r) if r.line == 1 && r.sightings.len() == 1));
        assert!(matches!(&got[1], Item::Problem(2, _)), "{:?}", got[1]);
        assert!(matches!(&got[2], Item::Record(r) if r.line == 3 && r.sightings[0].port == 443));
    }

    #[test]
    fn pretty_printed_then_truncated_at_eof() {
        let text = "{\n\t\"ip\": \"192.0.2.9\",\n\t\"data\": {}\n}\n{\n\t\"ip\": \"x\",\n";
        let got = items(text);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(matches!(&got[0], Item::Record(r) if r.line == 1 && r.sightings.is_empty()));
        assert!(matches!(&got[1], Item::Problem(5, _)));
    }

    #[test]
    fn garbage_and_bad_base64() {
        let bad = line("192.0.2.1").replace(CERT_B64, "!!!");
        let got = items(&format!("hello\n{bad}\n"));
        assert!(matches!(&got[0], Item::Problem(1, m) if m.contains("not a JSON object")));
        assert!(matches!(&got[1], Item::Problem(2, m) if m.contains("base64")));
    }
}
