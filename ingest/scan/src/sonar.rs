//! Rapid7 Project Sonar SSL datasets: `certs` files (`sha1,base64-DER` per line) and `hosts`
//! files (`ip,sha1` per line, optionally a third `port` column). Neither carries a time: the scan
//! date comes from the file name (`20170102_ssl_hosts.gz`, or `2018-06-29-1530230401-…` with the
//! epoch seconds of the scan) unless given.

use std::io::BufRead;
use std::net::IpAddr;
use std::path::Path;

use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};

use crate::input::Lines;
use crate::record::{excerpt, sha1_of, Item, ItemReader, Record, Sighting};

const MAX_LINE_BYTES: usize = 1024 * 1024;

/// The scan time a Sonar file name states: `YYYYMMDD_…` (midnight UTC) or
/// `YYYY-MM-DD-<epoch seconds>-…` (the exact second).
pub fn date_from_file_name(path: &Path) -> Option<DateTime<Utc>> {
    let name = path.file_name()?.to_str()?;
    let mut parts = name.split(['_', '-', '.']);
    let first = parts.next()?;
    if first.len() == 8 && first.bytes().all(|b| b.is_ascii_digit()) {
        let date = NaiveDate::parse_from_str(first, "%Y%m%d").ok()?;
        return Some(date.and_hms_opt(0, 0, 0)?.and_utc());
    }
    if first.len() == 4 {
        let (m, d, epoch) = (parts.next()?, parts.next()?, parts.next()?);
        let date = NaiveDate::parse_from_str(&format!("{first}-{m}-{d}"), "%Y-%m-%d").ok()?;
        if let Ok(secs) = epoch.parse::<i64>() {
            let t = DateTime::from_timestamp(secs, 0)?;
            if t.date_naive() == date {
                return Some(t);
            }
        }
        return Some(date.and_hms_opt(0, 0, 0)?.and_utc());
    }
    None
}

/// The port a Sonar file name states (`…-https_get_443_hosts.gz`).
pub fn port_from_file_name(path: &Path) -> Option<u16> {
    let name = path.file_name()?.to_str()?;
    let stem = name.split('.').next()?;
    let mut parts = stem.rsplit('_');
    let kind = parts.next()?;
    if kind != "hosts" && kind != "certs" {
        return None;
    }
    parts.next()?.parse::<u16>().ok().filter(|p| *p != 0)
}

fn parse_sha1_hex(text: &[u8]) -> Option<[u8; 20]> {
    let mut out = [0u8; 20];
    hex::decode_to_slice(text.trim_ascii(), &mut out).ok()?;
    Some(out)
}

/// Reads a Sonar `certs` file: each line `sha1,base64-DER`; the SHA-1 is checked against the DER.
#[derive(Debug)]
pub struct CertsReader<R> {
    lines: Lines<R>,
}

impl<R: BufRead> CertsReader<R> {
    /// A reader over decompressed input.
    pub fn new(reader: R) -> Self {
        CertsReader {
            lines: Lines::new(reader, MAX_LINE_BYTES),
        }
    }
}

impl<R: BufRead + Send> ItemReader for CertsReader<R> {
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
            let bytes = line.bytes.trim_ascii();
            if bytes.is_empty() {
                continue;
            }
            let Some(comma) = bytes.iter().position(|b| *b == b',') else {
                return Ok(Some(Item::Problem(
                    n,
                    format!("expected `sha1,base64-DER`, got {:?}", excerpt(bytes)),
                )));
            };
            let (hash, rest) = bytes.split_at(comma);
            let b64 = rest.get(1..).unwrap_or_default().trim_ascii();
            let Some(stated) = parse_sha1_hex(hash) else {
                return Ok(Some(Item::Problem(
                    n,
                    format!("SHA-1 {:?} is not 40 hex digits", excerpt(hash)),
                )));
            };
            let der = match base64::engine::general_purpose::STANDARD.decode(b64) {
                Ok(d) => d,
                Err(e) => {
                    return Ok(Some(Item::Problem(
                        n,
                        format!("certificate {} : base64: {e}", hex::encode(stated)),
                    )))
                }
            };
            let computed = sha1_of(&der);
            if computed != stated {
                return Ok(Some(Item::Problem(
                    n,
                    format!(
                        "SHA-1 mismatch: line says {}, DER hashes to {}",
                        hex::encode(stated),
                        hex::encode(computed)
                    ),
                )));
            }
            return Ok(Some(Item::Record(Record {
                line: n,
                certs: vec![der],
                sightings: Vec::new(),
            })));
        }
    }
}

/// Reads a Sonar `hosts` file: each line `ip,sha1` (a third column, when present, is the port).
#[derive(Debug)]
pub struct HostsReader<R> {
    lines: Lines<R>,
    time: DateTime<Utc>,
    port: u16,
}

impl<R: BufRead> HostsReader<R> {
    /// A reader giving every sighting the scan `time` and `port`.
    pub fn new(reader: R, time: DateTime<Utc>, port: u16) -> Self {
        HostsReader {
            lines: Lines::new(reader, MAX_LINE_BYTES),
            time,
            port,
        }
    }
}

impl<R: BufRead + Send> ItemReader for HostsReader<R> {
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
            let bytes = line.bytes.trim_ascii();
            if bytes.is_empty() {
                continue;
            }
            let mut cols = bytes.split(|b| *b == b',');
            let (Some(ip), Some(hash)) = (cols.next(), cols.next()) else {
                return Ok(Some(Item::Problem(
                    n,
                    format!("expected `ip,sha1`, got {:?}", excerpt(bytes)),
                )));
            };
            let port = match cols.next() {
                None => self.port,
                Some(p) => match std::str::from_utf8(p)
                    .ok()
                    .and_then(|p| p.trim().parse::<u16>().ok())
                {
                    Some(p) => p,
                    None => {
                        return Ok(Some(Item::Problem(
                            n,
                            format!("invalid port {:?}", excerpt(p)),
                        )))
                    }
                },
            };
            let Some(ip) = std::str::from_utf8(ip)
                .ok()
                .and_then(|s| s.trim().parse::<IpAddr>().ok())
            else {
                return Ok(Some(Item::Problem(
                    n,
                    format!("invalid IP address {:?}", excerpt(ip)),
                )));
            };
            let Some(sha1) = parse_sha1_hex(hash) else {
                return Ok(Some(Item::Problem(
                    n,
                    format!("SHA-1 {:?} is not 40 hex digits", excerpt(hash)),
                )));
            };
            return Ok(Some(Item::Record(Record {
                line: n,
                certs: Vec::new(),
                sightings: vec![Sighting {
                    ip,
                    port,
                    leaf_sha1: sha1,
                    time: self.time,
                }],
            })));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn dates_from_names() {
        assert_eq!(
            date_from_file_name(Path::new("/x/20170102_ssl_hosts.gz")),
            Some(Utc.with_ymd_and_hms(2017, 1, 2, 0, 0, 0).unwrap())
        );
        assert_eq!(
            date_from_file_name(Path::new("2018-06-29-1530230401-https_get_443_hosts.gz")),
            Some(Utc.with_ymd_and_hms(2018, 6, 29, 0, 0, 1).unwrap())
        );
        assert_eq!(date_from_file_name(Path::new("10000-hosts.gz")), None);
        assert_eq!(
            date_from_file_name(Path::new("20171332_ssl_hosts.gz")),
            None
        );
        assert_eq!(
            port_from_file_name(Path::new("2018-06-29-1530230401-https_get_8443_hosts.gz")),
            Some(8443)
        );
        assert_eq!(
            port_from_file_name(Path::new("20170102_ssl_hosts.gz")),
            None
        );
    }

    #[test]
    fn hosts_lines() {
        let t = Utc.with_ymd_and_hms(2017, 1, 2, 0, 0, 0).unwrap();
        let text = "192.0.2.1,1f843dcbdc9961b7a26cee59df251c8ad59e77e8\nnope\n::1,zz\n\n2001:db8::1,1F843DCBDC9961B7A26CEE59DF251C8AD59E77E8,8443\n";
        let mut r = HostsReader::new(text.as_bytes(), t, 443);
        let mut got = Vec::new();
        while let Some(i) = r.next_item().unwrap() {
            got.push(i);
        }
        assert_eq!(got.len(), 4);
        assert!(
            matches!(&got[0], Item::Record(r) if r.sightings[0].port == 443 && r.sightings[0].time == t)
        );
        assert!(matches!(&got[1], Item::Problem(2, _)));
        assert!(matches!(&got[2], Item::Problem(3, m) if m.contains("SHA-1")));
        assert!(matches!(&got[3], Item::Record(r) if r.line == 5 && r.sightings[0].port == 8443));
    }
}
