//! nmap XML (`-oX`) with the `ssl-cert` NSE script, and masscan XML (`-oX --banners`) with `X509`
//! / `X509CA` service banners. Both use the `<nmaprun>` / `<host>` / `<port>` layout.
//!
//! nmap: the certificate is the PEM in `<script id="ssl-cert"><elem key="pem">`; the other fields
//! differ between nmap versions and are not used (the SHA-1 is recomputed from the PEM and checked
//! against `<elem key="sha1">` when present). The time is the host's `starttime`.
//! masscan: each banner is its own `<host endtime=…>` element; `X509` is the leaf (recorded as a
//! sighting), `X509CA` a chain certificate (stored only). The time is the host's `endtime`.

use std::collections::VecDeque;
use std::io::BufRead;
use std::net::IpAddr;

use base64::Engine;
use chrono::{DateTime, Utc};
use quick_xml::events::{BytesRef, BytesStart, Event};

use crate::input::CountingReader;
use crate::record::{excerpt, sha1_of, Item, ItemReader, Record, Sighting};

#[derive(Debug, Default)]
struct HostState {
    line: u64,
    start: Option<i64>,
    end: Option<i64>,
    ip: Option<IpAddr>,
    bad_ip: Option<String>,
    port: Option<u16>,
    found: Vec<Found>,
}

#[derive(Debug)]
enum Found {
    /// nmap ssl-cert: (port, PEM text, stated sha1)
    Pem(u16, String, Option<String>),
    /// masscan banner: (port, leaf?, base64)
    Banner(u16, bool, String),
}

#[derive(Debug, Default, PartialEq)]
enum Capture {
    #[default]
    None,
    Pem,
    Sha1,
}

/// Reads nmap or masscan XML.
pub struct XmlReader<R: BufRead> {
    reader: quick_xml::Reader<CountingReader<R>>,
    buf: Vec<u8>,
    queue: VecDeque<Item>,
    run_start: Option<i64>,
    host: Option<HostState>,
    in_ssl_cert: bool,
    capture: Capture,
    text: String,
    pem: Option<String>,
    sha1: Option<String>,
    done: bool,
}

impl<R: BufRead> std::fmt::Debug for XmlReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XmlReader").finish_non_exhaustive()
    }
}

impl<R: BufRead> XmlReader<R> {
    /// A reader over decompressed input.
    pub fn new(reader: R) -> Self {
        let mut reader = quick_xml::Reader::from_reader(CountingReader::new(reader));
        reader.config_mut().check_end_names = true;
        XmlReader {
            reader,
            buf: Vec::new(),
            queue: VecDeque::new(),
            run_start: None,
            host: None,
            in_ssl_cert: false,
            capture: Capture::None,
            text: String::new(),
            pem: None,
            sha1: None,
            done: false,
        }
    }

    fn line(&self) -> u64 {
        self.reader.get_ref().line()
    }
}

fn attr(e: &BytesStart<'_>, name: &[u8]) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name)
        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}

fn resolve_ref(r: &BytesRef<'_>) -> Option<String> {
    if r.is_char_ref() {
        return r.resolve_char_ref().ok().flatten().map(String::from);
    }
    let name = r.decode().ok()?;
    Some(
        match name.as_ref() {
            "lt" => "<",
            "gt" => ">",
            "amp" => "&",
            "apos" => "'",
            "quot" => "\"",
            _ => return None,
        }
        .to_owned(),
    )
}

/// DER from the first PEM `CERTIFICATE` block (RFC 7468 §5), read by `rustls-pki-types`.
fn pem_to_der(pem: &str) -> Result<Vec<u8>, String> {
    use rustls_pki_types::pem::{Error, PemObject};
    use rustls_pki_types::CertificateDer;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map(|der| der.to_vec())
        .map_err(|e| match e {
            Error::NoItemsFound => "PEM has no CERTIFICATE block".to_owned(),
            Error::MissingSectionEnd { end_marker } if end_marker == b"CERTIFICATE" => {
                "PEM has no END CERTIFICATE line".to_owned()
            }
            Error::MissingSectionEnd { .. } => "PEM has a block without an END line".to_owned(),
            Error::IllegalSectionStart { .. } => "PEM has a malformed BEGIN line".to_owned(),
            Error::Base64Decode(e) => format!("PEM base64: {e}"),
            other => format!("PEM: {other}"),
        })
}

fn time_of(secs: Option<i64>) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(secs?, 0)
}

impl<R: BufRead> XmlReader<R> {
    fn on_start(&mut self, e: &BytesStart<'_>, empty: bool) {
        match e.name().as_ref() {
            b"nmaprun" => {
                self.run_start = attr(e, b"start").and_then(|s| s.trim().parse().ok());
            }
            b"host" => {
                let mut h = HostState {
                    line: self.line(),
                    start: attr(e, b"starttime").and_then(|s| s.trim().parse().ok()),
                    end: attr(e, b"endtime").and_then(|s| s.trim().parse().ok()),
                    ..HostState::default()
                };
                if empty {
                    h.found.clear();
                } else {
                    self.host = Some(h);
                }
            }
            b"address" => {
                if let Some(h) = self.host.as_mut() {
                    let kind = attr(e, b"addrtype").unwrap_or_default();
                    if kind == "ipv4" || kind == "ipv6" || kind.is_empty() {
                        if let Some(a) = attr(e, b"addr") {
                            match a.trim().parse::<IpAddr>() {
                                Ok(ip) if h.ip.is_none() => h.ip = Some(ip),
                                Ok(_) => {}
                                Err(_) => h.bad_ip = Some(a),
                            }
                        }
                    }
                }
            }
            b"port" => {
                if let Some(h) = self.host.as_mut() {
                    h.port = attr(e, b"portid").and_then(|p| p.trim().parse().ok());
                }
            }
            b"service" => {
                if let Some(h) = self.host.as_mut() {
                    let name = attr(e, b"name").unwrap_or_default();
                    if name == "X509" || name == "X509CA" {
                        if let Some(banner) = attr(e, b"banner") {
                            let port = h.port.unwrap_or(certhist_model::PORT_UNKNOWN);
                            h.found.push(Found::Banner(port, name == "X509", banner));
                        }
                    }
                }
            }
            b"script" if !empty && attr(e, b"id").as_deref() == Some("ssl-cert") => {
                self.in_ssl_cert = true;
                self.pem = None;
                self.sha1 = None;
            }
            b"elem" if self.in_ssl_cert && !empty => {
                self.text.clear();
                self.capture = match attr(e, b"key").as_deref() {
                    Some("pem") => Capture::Pem,
                    Some("sha1") => Capture::Sha1,
                    _ => Capture::None,
                };
            }
            _ => {}
        }
    }

    fn on_end(&mut self, name: &[u8]) {
        match name {
            b"elem" => {
                match self.capture {
                    Capture::Pem => self.pem = Some(std::mem::take(&mut self.text)),
                    Capture::Sha1 => self.sha1 = Some(std::mem::take(&mut self.text)),
                    Capture::None => {}
                }
                self.capture = Capture::None;
            }
            b"script" if self.in_ssl_cert => {
                self.in_ssl_cert = false;
                if let (Some(h), Some(pem)) = (self.host.as_mut(), self.pem.take()) {
                    let port = h.port.unwrap_or(certhist_model::PORT_UNKNOWN);
                    h.found.push(Found::Pem(port, pem, self.sha1.take()));
                }
            }
            b"host" => {
                if let Some(h) = self.host.take() {
                    self.finish_host(h);
                }
            }
            _ => {}
        }
    }

    fn finish_host(&mut self, h: HostState) {
        if h.found.is_empty() {
            return;
        }
        let Some(ip) = h.ip else {
            let msg = match h.bad_ip {
                Some(a) => format!("invalid host address {:?}", excerpt(a.as_bytes())),
                None => "host has certificates but no IP address".to_owned(),
            };
            self.queue.push_back(Item::Problem(h.line, msg));
            return;
        };
        for found in h.found {
            let (port, der, leaf) = match found {
                Found::Pem(port, pem, stated) => {
                    let der = match pem_to_der(&pem) {
                        Ok(d) => d,
                        Err(m) => {
                            self.queue.push_back(Item::Problem(
                                h.line,
                                format!("{ip}:{port} ssl-cert: {m}"),
                            ));
                            continue;
                        }
                    };
                    if let Some(stated) = stated {
                        let want: String =
                            stated.chars().filter(|c| c.is_ascii_hexdigit()).collect();
                        let got = hex::encode(sha1_of(&der));
                        if !want.eq_ignore_ascii_case(&got) {
                            self.queue.push_back(Item::Problem(
                                h.line,
                                format!("{ip}:{port} ssl-cert: sha1 element {:?} differs from the PEM's SHA-1 {got} (PEM used)", excerpt(stated.as_bytes())),
                            ));
                        }
                    }
                    (port, der, true)
                }
                Found::Banner(port, leaf, b64) => {
                    match base64::engine::general_purpose::STANDARD.decode(b64.trim()) {
                        Ok(d) => (port, d, leaf),
                        Err(e) => {
                            self.queue.push_back(Item::Problem(
                                h.line,
                                format!("{ip}:{port} X509 banner base64: {e}"),
                            ));
                            continue;
                        }
                    }
                }
            };
            let mut record = Record {
                line: h.line,
                certs: Vec::new(),
                sightings: Vec::new(),
            };
            if leaf {
                let secs = h.start.or(h.end).or(self.run_start);
                let Some(time) = time_of(secs) else {
                    self.queue.push_back(Item::Problem(
                        h.line,
                        format!("{ip}:{port}: host has no start/end time"),
                    ));
                    continue;
                };
                record.sightings.push(Sighting {
                    ip,
                    port,
                    leaf_sha1: sha1_of(&der),
                    time,
                });
            }
            record.certs.push(der);
            self.queue.push_back(Item::Record(record));
        }
    }
}

impl<R: BufRead + Send> ItemReader for XmlReader<R> {
    fn next_item(&mut self) -> std::io::Result<Option<Item>> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                return Ok(Some(item));
            }
            if self.done {
                return Ok(None);
            }
            self.buf.clear();
            let event = match self.reader.read_event_into(&mut self.buf) {
                Ok(ev) => ev.into_owned(),
                Err(quick_xml::Error::Io(e)) => {
                    return Err(std::io::Error::new(e.kind(), e.to_string()));
                }
                Err(e) => {
                    self.done = true;
                    let line = self.line();
                    return Ok(Some(Item::Problem(
                        line,
                        format!("XML error, rest of file skipped: {e}"),
                    )));
                }
            };
            match event {
                Event::Start(e) => self.on_start(&e, false),
                Event::Empty(e) => self.on_start(&e, true),
                Event::End(e) => self.on_end(e.name().as_ref()),
                Event::Text(t) if self.capture != Capture::None => {
                    if let Ok(s) = t.decode() {
                        self.text.push_str(&s);
                    }
                }
                Event::GeneralRef(r) if self.capture != Capture::None => {
                    if let Some(s) = resolve_ref(&r) {
                        self.text.push_str(&s);
                    }
                }
                Event::Eof => {
                    self.done = true;
                    if let Some(h) = self.host.take() {
                        let line = h.line;
                        self.queue.push_back(Item::Problem(
                            line,
                            "host element cut off at end of file".to_owned(),
                        ));
                    }
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_xml_reports_the_open_host() {
        let text = "<nmaprun start=\"100\">\n<host endtime=\"200\"><address addr=\"192.0.2.1\" addrtype=\"ipv4\"/><ports><port protocol=\"tcp\" portid=\"443\"><service name=\"X509\" banner=\"MAMCAQE=\"/></port></ports></host>\n<host endtime=\"201\"><address addr=\"192.0.2.2\"";
        let mut r = XmlReader::new(text.as_bytes());
        let first = r.next_item().unwrap().unwrap();
        match first {
            Item::Record(rec) => {
                assert_eq!(rec.certs, vec![vec![0x30, 3, 2, 1, 1]]);
                assert_eq!(rec.sightings[0].port, 443);
                assert_eq!(rec.sightings[0].time.timestamp(), 200);
            }
            other => panic!("{other:?}"),
        }
        let second = r.next_item().unwrap().unwrap();
        assert!(matches!(second, Item::Problem(3, _)), "{second:?}");
        assert!(r.next_item().unwrap().is_none());
    }

    // Issue 11: the nmap ssl-cert PEM is read by rustls-pki-types.
    #[test]
    fn pem_blocks() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["pem.test".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let der = cert.der().to_vec();
        let pem = cert.pem();
        assert_eq!(pem_to_der(&pem), Ok(der.clone()));
        // Text and a block of another kind before it, CRLF line ends.
        let noisy = format!(
            "subject: pem.test\r\n-----BEGIN PUBLIC KEY-----\r\nMAMCAQE=\r\n-----END PUBLIC KEY-----\r\n{}",
            pem.replace('\n', "\r\n")
        );
        assert_eq!(pem_to_der(&noisy), Ok(der));

        assert_eq!(
            pem_to_der("sha1: 00"),
            Err("PEM has no CERTIFICATE block".to_owned())
        );
        let cut = pem.get(..pem.len() / 2).unwrap();
        assert_eq!(
            pem_to_der(cut),
            Err("PEM has no END CERTIFICATE line".to_owned())
        );
        let bad = pem_to_der("-----BEGIN CERTIFICATE-----\nMIIB!!!!\n-----END CERTIFICATE-----\n")
            .unwrap_err();
        assert!(bad.starts_with("PEM base64: "), "{bad}");
    }
}
