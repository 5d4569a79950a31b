//! masscan JSON (`-oJ`: an array, one host object per line with trailing commas; `-oD`: one
//! object per line) and list output (`-oL`: `banner tcp 443 192.0.2.1 1516843984 X509 <base64>`).
//! XML output is read by [`crate::xml::XmlReader`].

use std::io::BufRead;
use std::net::IpAddr;

use base64::Engine;
use chrono::DateTime;
use serde_json::Value;

use crate::input::Lines;
use crate::record::{excerpt, sha1_of, Item, ItemReader, Record, Sighting};

const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// Reads masscan `-oJ`, `-oD` and `-oL` output (told apart line by line).
#[derive(Debug)]
pub struct MasscanTextReader<R> {
    lines: Lines<R>,
}

impl<R: BufRead> MasscanTextReader<R> {
    /// A reader over decompressed input.
    pub fn new(reader: R) -> Self {
        MasscanTextReader {
            lines: Lines::new(reader, MAX_LINE_BYTES),
        }
    }
}

fn record_from(line: u64, ip: IpAddr, port: u16, secs: i64, name: &str, b64: &str) -> Item {
    let der = match base64::engine::general_purpose::STANDARD.decode(b64.trim()) {
        Ok(d) => d,
        Err(e) => return Item::Problem(line, format!("{name} banner base64: {e}")),
    };
    let mut record = Record {
        line,
        ..Record::default()
    };
    if name == "X509" {
        let Some(time) = DateTime::from_timestamp(secs, 0) else {
            return Item::Problem(line, format!("invalid timestamp {secs}"));
        };
        record.sightings.push(Sighting {
            ip,
            port,
            leaf_sha1: sha1_of(&der),
            time,
        });
    }
    record.certs.push(der);
    Item::Record(record)
}

fn parse_json(line: u64, v: &Value) -> Item {
    let empty = Item::Record(Record {
        line,
        ..Record::default()
    });
    let Some(ip) = v
        .get("ip")
        .and_then(Value::as_str)
        .and_then(|s| s.trim().parse::<IpAddr>().ok())
    else {
        return Item::Problem(line, "no valid `ip`".to_owned());
    };
    let secs = match v.get("timestamp") {
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        Some(Value::Number(n)) => n.as_i64(),
        _ => None,
    };
    let Some(ports) = v.get("ports").and_then(Value::as_array) else {
        return empty;
    };
    for p in ports {
        let Some(service) = p.get("service") else {
            continue;
        };
        let name = service
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if name != "X509" && name != "X509CA" {
            continue;
        }
        let Some(banner) = service.get("banner").and_then(Value::as_str) else {
            continue;
        };
        let Some(port) = p
            .get("port")
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
        else {
            return Item::Problem(line, "invalid port".to_owned());
        };
        let Some(secs) = secs else {
            return Item::Problem(line, "no valid `timestamp`".to_owned());
        };
        // masscan writes one banner per object.
        return record_from(line, ip, port, secs, name, banner);
    }
    empty
}

impl<R: BufRead + Send> ItemReader for MasscanTextReader<R> {
    fn next_item(&mut self) -> std::io::Result<Option<Item>> {
        loop {
            let Some(line) = self.lines.next_line()? else {
                return Ok(None);
            };
            let n = line.number;
            if line.too_long {
                return Ok(Some(Item::Problem(
                    n,
                    format!("line longer than {MAX_LINE_BYTES} bytes"),
                )));
            }
            let mut t = line.bytes.trim_ascii();
            if t.is_empty() || t.starts_with(b"#") || t == b"[" || t == b"]" {
                continue;
            }
            if let Some(rest) = t.strip_prefix(b"[") {
                t = rest.trim_ascii();
            }
            if t.starts_with(b"{") {
                let t = t.strip_suffix(b",").unwrap_or(t);
                let t = t.strip_suffix(b"]").unwrap_or(t).trim_ascii();
                let t = t.strip_suffix(b",").unwrap_or(t);
                return Ok(Some(match serde_json::from_slice::<Value>(t) {
                    Ok(v) => parse_json(n, &v),
                    Err(e) => Item::Problem(n, format!("invalid JSON: {e}")),
                }));
            }
            let Ok(text) = std::str::from_utf8(t) else {
                return Ok(Some(Item::Problem(n, "not UTF-8".to_owned())));
            };
            let cols: Vec<&str> = text.split_ascii_whitespace().collect();
            match cols.as_slice() {
                ["banner", _proto, port, ip, ts, name, banner, ..] => {
                    if *name != "X509" && *name != "X509CA" {
                        return Ok(Some(Item::Record(Record {
                            line: n,
                            ..Record::default()
                        })));
                    }
                    let (Ok(port), Ok(ip), Ok(ts)) =
                        (port.parse::<u16>(), ip.parse::<IpAddr>(), ts.parse::<i64>())
                    else {
                        return Ok(Some(Item::Problem(
                            n,
                            format!("invalid banner line {:?}", excerpt(t)),
                        )));
                    };
                    return Ok(Some(record_from(n, ip, port, ts, name, banner)));
                }
                ["open" | "closed", ..] | ["banner", ..] => {
                    return Ok(Some(Item::Record(Record {
                        line: n,
                        ..Record::default()
                    })))
                }
                _ => {
                    return Ok(Some(Item::Problem(
                        n,
                        format!("not masscan output: {:?}", excerpt(t)),
                    )))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_json_and_ndjson() {
        let text = "#masscan\nopen tcp 443 192.0.2.1 1516843984\nbanner tcp 443 192.0.2.1 1516843984 X509 MAMCAQE=\nbanner tcp 443 192.0.2.1 1516843984 X509CA MAMCAQI=\n[\n{   \"ip\": \"192.0.2.3\",   \"timestamp\": \"1516843985\", \"ports\": [ {\"port\": 8443, \"proto\": \"tcp\", \"service\": {\"name\": \"X509\", \"banner\": \"MAMCAQE=\"} } ] },\n{\"ip\":\"192.0.2.4\",\"timestamp\":\"1\",\"ports\":[{\"port\":443,\"service\":{\"name\":\"X509\",\"banner\":\"%%\"}}]}\n]\n";
        let mut r = MasscanTextReader::new(text.as_bytes());
        let mut got = Vec::new();
        while let Some(i) = r.next_item().unwrap() {
            got.push(i);
        }
        assert_eq!(got.len(), 5, "{got:?}");
        assert!(
            matches!(&got[1], Item::Record(r) if r.sightings.len() == 1 && r.sightings[0].port == 443)
        );
        assert!(matches!(&got[2], Item::Record(r) if r.sightings.is_empty() && r.certs.len() == 1));
        assert!(
            matches!(&got[3], Item::Record(r) if r.line == 6 && r.sightings[0].port == 8443 && r.sightings[0].time.timestamp() == 1516843985)
        );
        assert!(matches!(&got[4], Item::Problem(7, m) if m.contains("base64")));
    }
}
