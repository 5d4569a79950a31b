//! Suricata EVE JSON (`eve.json`): `event_type: tls` records.
//!
//! A line is parsed only if it holds `"event_type":"tls"` (a byte search first: most events of
//! an EVE file are flows, DNS, HTTP, alerts). The server is `dest_ip`:`dest_port`: Suricata logs
//! a TLS transaction with the flow's client as `src` (checked on every tls event of the fixtures:
//! sources are the private addresses of the monitored clients, ports ephemeral). The leaf is the
//! DER of `tls.certificate` when the sensor logs it (`chain` adds the rest), else
//! `tls.fingerprint` (SHA-1, colon-separated hex); events without either (TLS 1.3, resumed
//! sessions) still give their SNI name.

use std::borrow::Cow;
use std::net::IpAddr;
use std::path::Path;

use base64::Engine;
use certhist_files::{FileFormat, ImportError, Item, ItemReader};
use certhist_model::{CertRef, CertStub, PassiveSighting};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;

use crate::{dn, LineParser, LineReader};

/// `certhist import suricata`: EVE JSON files.
#[derive(Clone, Debug)]
pub struct SuricataEve {
    /// Label stored with the sightings.
    pub source: String,
}

impl FileFormat for SuricataEve {
    fn name(&self) -> &str {
        "suricata"
    }

    fn source(&self) -> &str {
        &self.source
    }

    fn kind(&self, _path: &Path) -> Result<String, ImportError> {
        Ok("suricata-eve".to_owned())
    }

    fn follow_kind(&self) -> Option<&str> {
        Some("suricata-eve")
    }

    fn reader(
        &self,
        _path: &Path,
        input: certhist_files::input::Input,
    ) -> std::io::Result<Box<dyn ItemReader>> {
        Ok(Box::new(LineReader::new(input, EveParser)))
    }
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(borrow)]
    event_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    dest_ip: Option<Cow<'a, str>>,
    dest_port: Option<u16>,
    #[serde(borrow)]
    tls: Option<Tls<'a>>,
}

#[derive(Deserialize)]
struct Tls<'a> {
    #[serde(borrow)]
    subject: Option<Cow<'a, str>>,
    #[serde(borrow)]
    issuerdn: Option<Cow<'a, str>>,
    #[serde(borrow)]
    serial: Option<Cow<'a, str>>,
    #[serde(borrow)]
    fingerprint: Option<Cow<'a, str>>,
    #[serde(borrow)]
    sni: Option<Cow<'a, str>>,
    #[serde(borrow)]
    notbefore: Option<Cow<'a, str>>,
    #[serde(borrow)]
    notafter: Option<Cow<'a, str>>,
    #[serde(borrow)]
    certificate: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    chain: Vec<Cow<'a, str>>,
}

/// Does the line hold `"event_type"` with the value `"tls"` (any spacing)? A SIMD substring
/// search (memchr::memmem) for the key, then a look at the value.
pub fn is_tls_event(line: &[u8]) -> bool {
    const KEY: &[u8] = b"\"event_type\"";
    static FINDER: std::sync::OnceLock<memchr::memmem::Finder<'static>> =
        std::sync::OnceLock::new();
    let finder = FINDER.get_or_init(|| memchr::memmem::Finder::new(KEY));
    let mut from = 0;
    while let Some(at) = finder.find(&line[from..]) {
        let rest = line[from + at + KEY.len()..].trim_ascii_start();
        if let Some(r) = rest.strip_prefix(b":") {
            if r.trim_ascii_start().starts_with(b"\"tls\"") {
                return true;
            }
        }
        from += at + KEY.len();
    }
    false
}

/// `2023-11-01T00:46:41.186828+0100` (EVE timestamps) or RFC 3339.
fn eve_time(text: &str) -> Option<DateTime<Utc>> {
    fast_eve_time(text.as_bytes()).or_else(|| slow_eve_time(text))
}

/// The fixed layout Suricata writes, `YYYY-MM-DDTHH:MM:SS.ffffff±hhmm`, without a format parser.
fn fast_eve_time(b: &[u8]) -> Option<DateTime<Utc>> {
    if b.len() != 31 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || b[19] != b'.' || !(b[26] == b'+' || b[26] == b'-') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let date = chrono::NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
    let t = date.and_hms_micro_opt(num(11..13)?, num(14..16)?, num(17..19)?, num(20..26)?)?;
    let offset = i64::from(num(27..29)? * 3600 + num(29..31)? * 60);
    let offset = if b[26] == b'-' { -offset } else { offset };
    Some(t.and_utc() - chrono::Duration::seconds(offset))
}

fn slow_eve_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(text))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `notbefore` / `notafter`: `2023-04-27T19:46:04` (UTC).
fn validity_time(text: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
        .ok()
        .map(|t| t.and_utc())
        .or_else(|| eve_time(text))
}

fn der_of(b64: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| format!("tls.certificate is not base64: {e}"))
}

/// The DER certificates and the sighting of one record.
type Handshake = (Vec<Vec<u8>>, PassiveSighting);

/// Parses EVE lines.
#[derive(Clone, Copy, Debug, Default)]
pub struct EveParser;

impl EveParser {
    fn event(line: &[u8]) -> Result<Option<Handshake>, String> {
        let ev: Event<'_> = serde_json::from_slice(line).map_err(|e| format!("bad JSON: {e}"))?;
        if ev.event_type.as_deref() != Some("tls") {
            return Ok(None);
        }
        let time = ev
            .timestamp
            .as_deref()
            .and_then(eve_time)
            .ok_or("no valid timestamp")?;
        let ip: IpAddr = ev
            .dest_ip
            .as_deref()
            .ok_or("no dest_ip")?
            .parse()
            .map_err(|_| "dest_ip is not an address")?;
        let port = ev.dest_port.unwrap_or(certhist_model::PORT_UNKNOWN);
        let tls = ev.tls.ok_or("no tls object")?;
        let mut certs = Vec::new();
        if let Some(c) = tls.certificate.as_deref() {
            certs.push(der_of(c)?);
        }
        for c in &tls.chain {
            certs.push(der_of(c)?);
        }
        let leaf = if let Some(der) = certs.first() {
            Some(CertRef::Sha1(crate::sha1_of(der)))
        } else if let Some(fp) = tls.fingerprint.as_deref() {
            let hexed: String = fp.chars().filter(|c| *c != ':').collect();
            let bytes = hex::decode(&hexed).map_err(|_| "tls.fingerprint is not hex")?;
            Some(match bytes.len() {
                20 => CertRef::Sha1(bytes.try_into().map_err(|_| "fingerprint")?),
                32 => CertRef::Sha256(bytes.try_into().map_err(|_| "fingerprint")?),
                n => return Err(format!("tls.fingerprint has {n} bytes")),
            })
        } else {
            None
        };
        // The log's certificate text matters only for a leaf known by SHA-256 alone (it becomes
        // the stub's); a SHA-1 leaf is written as an observation, its text is not stored.
        let subject_dn = tls.subject.map(Cow::into_owned);
        let stub = matches!(leaf, Some(CertRef::Sha256(_))).then(|| CertStub {
            subject_cn: subject_dn.as_deref().and_then(dn::common_name),
            subject_dn,
            issuer_dn: tls.issuerdn.map(Cow::into_owned),
            serial_text: tls.serial.map(|s| s.replace(':', "")),
            not_before: tls.notbefore.as_deref().and_then(validity_time),
            not_after: tls.notafter.as_deref().and_then(validity_time),
            san_dns: Vec::new(),
        });
        let sni = tls
            .sni
            .filter(|s| !s.is_empty())
            .map(|s| s.to_ascii_lowercase());
        Ok(Some((
            certs,
            PassiveSighting {
                time,
                ip,
                port,
                leaf,
                stub,
                sni,
            },
        )))
    }
}

impl LineParser for EveParser {
    fn line(&mut self, line: &[u8], number: u64) -> Option<Item> {
        if !is_tls_event(line) {
            return None;
        }
        match Self::event(line) {
            Ok(Some((certs, sighting))) => Some(Item::Passive {
                certs,
                sighting: Box::new(sighting),
            }),
            Ok(None) => None,
            Err(e) => Some(Item::Problem(number, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_events_found_by_bytes() {
        assert!(is_tls_event(br#"{"a":1,"event_type":"tls","x":2}"#));
        assert!(is_tls_event(br#"{"event_type" : "tls"}"#));
        assert!(!is_tls_event(br#"{"event_type":"tlsx"}"#));
        assert!(!is_tls_event(br#"{"event_type":"flow","app_proto":"tls"}"#));
        assert!(!is_tls_event(b""));
    }

    #[test]
    fn times() {
        assert_eq!(
            eve_time("2023-11-01T00:46:41.186828+0100")
                .unwrap()
                .to_rfc3339(),
            "2023-10-31T23:46:41.186828+00:00"
        );
        for t in [
            "2023-11-01T00:46:41.186828+0100",
            "2023-11-01T00:46:41.186828-0530",
            "2024-02-29T23:59:59.999999+0000",
        ] {
            assert_eq!(fast_eve_time(t.as_bytes()), slow_eve_time(t), "{t}");
        }
        assert_eq!(fast_eve_time(b"2023-13-01T00:46:41.186828+0100"), None);
    }

    #[test]
    fn bad_events_are_problems() {
        let mut p = EveParser;
        assert!(matches!(
            p.line(br#"{"event_type":"tls","timestamp":"x"#, 7),
            Some(Item::Problem(7, _))
        ));
        assert!(matches!(
            p.line(
                br#"{"event_type":"tls","timestamp":"2023-11-01T00:46:41.186828+0100","dest_ip":"192.0.2.1","dest_port":443,"tls":{"fingerprint":"zz"}}"#,
                8
            ),
            Some(Item::Problem(8, _))
        ));
        assert!(p.line(br#"{"event_type":"dns"}"#, 9).is_none());
    }
}
