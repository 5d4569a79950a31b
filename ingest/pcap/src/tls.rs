//! TLS record and handshake parsing for one direction of a TCP connection (RFC 5246 §6.2, §7.4;
//! RFC 8446 §4). Input arrives as in-order stream bytes; output is the handshake messages the
//! reader cares about (ClientHello's SNI, ServerHello's version, Certificate's chain).

/// Largest TLS record payload accepted: 2^14 plus the 2048 bytes of expansion TLS 1.2 allows.
pub(crate) const MAX_RECORD: usize = (1 << 14) + 2048;
/// Largest handshake message buffered (a Certificate message with a long chain fits easily).
pub(crate) const MAX_HANDSHAKE: usize = 512 * 1024;
/// Bytes of a direction scanned for a first TLS record before giving the direction up
/// (STARTTLS dialogues, SOCKS, MySQL and RDP preambles are far shorter).
pub(crate) const SEEK_LIMIT: usize = 64 * 1024;

const CT_CHANGE_CIPHER_SPEC: u8 = 20;
const CT_ALERT: u8 = 21;
const CT_HANDSHAKE: u8 = 22;
const CT_APPLICATION_DATA: u8 = 23;
const CT_HEARTBEAT: u8 = 24;

pub(crate) const HS_CLIENT_HELLO: u8 = 1;
pub(crate) const HS_SERVER_HELLO: u8 = 2;
pub(crate) const HS_CERTIFICATE: u8 = 11;
pub(crate) const HS_SERVER_HELLO_DONE: u8 = 14;

/// What one direction's parser has to say to its connection.
#[derive(Debug)]
pub(crate) enum Message {
    ClientHello {
        sni: Option<String>,
    },
    ServerHello {
        /// Negotiated version: supported_versions when present, else the legacy field.
        version: u16,
    },
    /// A Certificate message: the chain, and why its framing is broken if it is.
    Certificate(Vec<Vec<u8>>, Option<String>),
    ServerHelloDone,
    /// The stream is not (or no longer) parseable TLS.
    Desync(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Seeking,
    Records,
    Done,
}

/// One direction's TLS parser.
#[derive(Debug)]
pub(crate) struct TlsStream {
    state: State,
    /// Stream bytes not yet consumed: a partial record (or, while seeking, a possible header).
    buf: Vec<u8>,
    /// Handshake bytes not yet consumed (messages span records).
    hs: Vec<u8>,
    scanned: usize,
}

impl TlsStream {
    pub(crate) fn new() -> Self {
        TlsStream {
            state: State::Seeking,
            buf: Vec::new(),
            hs: Vec::new(),
            scanned: 0,
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Stops parsing this direction and frees its buffers.
    pub(crate) fn finish(&mut self) {
        self.state = State::Done;
        self.buf = Vec::new();
        self.hs = Vec::new();
    }

    /// Bytes buffered by this direction (for the memory bound).
    pub(crate) fn buffered(&self) -> usize {
        self.buf.capacity() + self.hs.capacity()
    }

    /// Feeds in-order stream bytes; messages found are pushed to `out`.
    pub(crate) fn feed(&mut self, data: &[u8], out: &mut Vec<Message>) {
        if self.state == State::Done || data.is_empty() {
            return;
        }
        if self.state == State::Seeking {
            self.seek(data);
            if self.state != State::Records {
                return;
            }
            let pending = std::mem::take(&mut self.buf);
            self.records(&pending, out);
            return;
        }
        if self.buf.is_empty() {
            self.records(data, out);
        } else {
            let mut joined = std::mem::take(&mut self.buf);
            joined.extend_from_slice(data);
            self.records(&joined, out);
        }
    }

    /// Looks for the first plausible TLS hello record; on success `buf` holds the stream from
    /// its header on and the state is `Records`.
    fn seek(&mut self, data: &[u8]) {
        let joined;
        let hay: &[u8] = if self.buf.is_empty() {
            data
        } else {
            self.buf.extend_from_slice(data);
            joined = std::mem::take(&mut self.buf);
            &joined
        };
        let mut i = 0;
        while i < hay.len() {
            let Some(rel) = hay[i..].iter().position(|&b| b == CT_HANDSHAKE) else {
                break;
            };
            let at = i + rel;
            match plausible_hello(&hay[at..]) {
                Some(true) => {
                    self.buf = hay[at..].to_vec();
                    self.state = State::Records;
                    return;
                }
                // Not enough bytes to decide: keep them for the next segment.
                None => {
                    self.scanned += at;
                    self.buf = hay[at..].to_vec();
                    self.check_seek_limit();
                    return;
                }
                Some(false) => i = at + 1,
            }
        }
        self.scanned += hay.len();
        self.buf.clear();
        self.check_seek_limit();
    }

    fn check_seek_limit(&mut self) {
        if self.scanned > SEEK_LIMIT {
            self.finish();
        }
    }

    /// Parses whole records from `data`, keeping a trailing partial record in `buf`.
    fn records(&mut self, data: &[u8], out: &mut Vec<Message>) {
        let mut at = 0;
        loop {
            if self.state == State::Done {
                return;
            }
            let Some(header) = data.get(at..at + 5) else {
                break;
            };
            let (kind, major, minor) = (header[0], header[1], header[2]);
            let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
            let known = matches!(
                kind,
                CT_CHANGE_CIPHER_SPEC
                    | CT_ALERT
                    | CT_HANDSHAKE
                    | CT_APPLICATION_DATA
                    | CT_HEARTBEAT
            );
            if !known || major != 3 || minor > 4 || len > MAX_RECORD {
                out.push(Message::Desync(format!(
                    "not a TLS record header: {:02x} {:02x} {:02x} length {len}",
                    kind, major, minor
                )));
                self.finish();
                return;
            }
            let Some(body) = data.get(at + 5..at + 5 + len) else {
                break;
            };
            at += 5 + len;
            match kind {
                CT_HANDSHAKE => self.handshake(body, out),
                // After ChangeCipherSpec the rest of this direction is encrypted; application data
                // means the handshake is over.
                CT_CHANGE_CIPHER_SPEC | CT_APPLICATION_DATA => self.finish(),
                _ => {}
            }
        }
        if self.state != State::Done {
            let rest = data.get(at..).unwrap_or_default();
            self.buf.clear();
            self.buf.extend_from_slice(rest);
        }
    }

    fn handshake(&mut self, fragment: &[u8], out: &mut Vec<Message>) {
        self.hs.extend_from_slice(fragment);
        let mut at = 0;
        while let Some(head) = self.hs.get(at..at + 4) {
            let kind = head[0];
            let len = usize::from(head[1]) << 16 | usize::from(head[2]) << 8 | usize::from(head[3]);
            if len > MAX_HANDSHAKE {
                out.push(Message::Desync(format!(
                    "handshake message type {kind} of {len} bytes: over the {MAX_HANDSHAKE}-byte limit"
                )));
                self.finish();
                return;
            }
            let Some(body) = self.hs.get(at + 4..at + 4 + len) else {
                break;
            };
            at += 4 + len;
            match kind {
                HS_CLIENT_HELLO => out.push(Message::ClientHello {
                    sni: client_hello_sni(body),
                }),
                HS_SERVER_HELLO => {
                    let version = server_hello_version(body).unwrap_or(0);
                    out.push(Message::ServerHello { version });
                    if version == 0x0304 {
                        // Everything after a TLS 1.3 ServerHello is encrypted.
                        self.finish();
                        return;
                    }
                }
                HS_CERTIFICATE => {
                    let (chain, error) = certificate_list(body);
                    out.push(Message::Certificate(chain, error));
                }
                HS_SERVER_HELLO_DONE => out.push(Message::ServerHelloDone),
                _ => {}
            }
        }
        self.hs.drain(..at.min(self.hs.len()));
    }
}

/// Is `data` the start of a TLS record carrying a ClientHello or ServerHello? `None`: too short
/// to say.
fn plausible_hello(data: &[u8]) -> Option<bool> {
    let head = match data.get(..10) {
        Some(head) => head,
        None => {
            // Reject early what can already be rejected.
            let ok = data.iter().enumerate().all(|(i, &b)| match i {
                0 => b == CT_HANDSHAKE,
                1 => b == 3,
                2 => b <= 4,
                5 => b == HS_CLIENT_HELLO || b == HS_SERVER_HELLO,
                _ => true,
            });
            return if ok { None } else { Some(false) };
        }
    };
    let record_len = usize::from(u16::from_be_bytes([head[3], head[4]]));
    let hs_len = usize::from(head[6]) << 16 | usize::from(head[7]) << 8 | usize::from(head[8]);
    Some(
        head[0] == CT_HANDSHAKE
            && head[1] == 3
            && head[2] <= 4
            && (4 + 34..=MAX_RECORD).contains(&record_len)
            && (head[5] == HS_CLIENT_HELLO || head[5] == HS_SERVER_HELLO)
            && (34..=MAX_HANDSHAKE).contains(&hs_len)
            && head[9] == 3,
    )
}

/// A bounds-checked cursor over a handshake message body.
struct Cursor<'a> {
    data: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.data.get(..n)?, self.data.get(n..)?);
        self.data = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<usize> {
        Some(usize::from(self.take(1)?[0]))
    }
    fn u16(&mut self) -> Option<usize> {
        let b = self.take(2)?;
        Some(usize::from(b[0]) << 8 | usize::from(b[1]))
    }
    fn u24(&mut self) -> Option<usize> {
        let b = self.take(3)?;
        Some(usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]))
    }
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(n)
    }
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(n)
    }
}

const EXT_SERVER_NAME: usize = 0;
const EXT_SUPPORTED_VERSIONS: usize = 43;

/// The host_name of the server_name extension (RFC 6066 §3), if any.
fn client_hello_sni(body: &[u8]) -> Option<String> {
    let mut c = Cursor { data: body };
    c.take(2 + 32)?; // client_version, random
    c.vec8()?; // session_id
    c.vec16()?; // cipher_suites
    c.vec8()?; // compression_methods
    let mut exts = Cursor { data: c.vec16()? };
    while !exts.data.is_empty() {
        let kind = exts.u16()?;
        let data = exts.vec16()?;
        if kind != EXT_SERVER_NAME {
            continue;
        }
        let mut list = Cursor {
            data: Cursor { data }.vec16()?,
        };
        while !list.data.is_empty() {
            let name_type = list.u8()?;
            let name = list.vec16()?;
            if name_type == 0 {
                return std::str::from_utf8(name).ok().map(str::to_owned);
            }
        }
    }
    None
}

/// The negotiated version of a ServerHello: supported_versions (RFC 8446 §4.2.1) when present.
fn server_hello_version(body: &[u8]) -> Option<u16> {
    let mut c = Cursor { data: body };
    let legacy = c.u16()? as u16;
    c.take(32)?; // random
    c.vec8()?; // session_id
    c.take(2 + 1)?; // cipher_suite, compression_method
    let Some(ext_block) = c.vec16() else {
        return Some(legacy);
    };
    let mut exts = Cursor { data: ext_block };
    while !exts.data.is_empty() {
        let kind = exts.u16()?;
        let data = exts.vec16()?;
        if kind == EXT_SUPPORTED_VERSIONS {
            return Cursor { data }.u16().map(|v| v as u16);
        }
    }
    Some(legacy)
}

/// The DER certificates of a TLS 1.0–1.2 Certificate message body, leaf first. A framing error
/// keeps the certificates read before it (a malformed message is reported with what it holds).
fn certificate_list(body: &[u8]) -> (Vec<Vec<u8>>, Option<String>) {
    let mut chain = Vec::new();
    let mut c = Cursor { data: body };
    let Some(total) = c.u24() else {
        return (
            chain,
            Some("Certificate message shorter than its length field".to_owned()),
        );
    };
    let mut error = None;
    if total != c.data.len() {
        error = Some(format!(
            "certificate_list length {total} but {} bytes follow",
            c.data.len()
        ));
    }
    let mut list = Cursor {
        data: c.data.get(..total.min(c.data.len())).unwrap_or_default(),
    };
    while !list.data.is_empty() {
        let Some(len) = list.u24() else {
            error.get_or_insert_with(|| "truncated certificate length".to_owned());
            break;
        };
        let Some(der) = list.take(len) else {
            error.get_or_insert_with(|| {
                format!(
                    "certificate {} says {len} bytes, {} left",
                    chain.len(),
                    list.data.len()
                )
            });
            // Reported as it is: the bytes that are there.
            chain.push(list.data.to_vec());
            break;
        };
        chain.push(der.to_vec());
    }
    (chain, error)
}

/// Is `der` framed like an X.509 certificate: SEQUENCE { SEQUENCE tbs, SEQUENCE algorithm,
/// BIT STRING signature } with every length exact? Cheap and independent of key algorithms (a
/// post-quantum key passes); anything less is not a certificate.
pub(crate) fn looks_like_certificate(der: &[u8]) -> bool {
    fn tlv(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let tag = *data.first()?;
        let first = *data.get(1)?;
        let (len, head) = if first < 0x80 {
            (usize::from(first), 2)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 {
                return None;
            }
            let mut len = 0usize;
            for b in data.get(2..2 + n)? {
                len = len << 8 | usize::from(*b);
            }
            (len, 2 + n)
        };
        let content = data.get(head..head.checked_add(len)?)?;
        let rest = data.get(head + len..)?;
        Some((tag, content, rest))
    }
    let Some((0x30, content, rest)) = tlv(der) else {
        return false;
    };
    if !rest.is_empty() {
        return false;
    }
    let Some((0x30, _tbs, after_tbs)) = tlv(content) else {
        return false;
    };
    let Some((0x30, _alg, after_alg)) = tlv(after_tbs) else {
        return false;
    };
    matches!(tlv(after_alg), Some((0x03, _, [])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeking_skips_a_preamble_and_garbage_never_panics() {
        let mut s = TlsStream::new();
        let mut out = Vec::new();
        s.feed(b"220 mx ESMTP\r\n\x16\x03", &mut out);
        assert!(out.is_empty());
        for n in 0..300u32 {
            let mut t = TlsStream::new();
            let bytes: Vec<u8> = (0..n).map(|i| (i * 7 + n) as u8 ^ 0x16).collect();
            t.feed(&bytes, &mut out);
        }
    }

    #[test]
    fn der_shape_check() {
        // SEQUENCE { SEQUENCE {}, SEQUENCE {}, BIT STRING 00 }
        let good = [0x30, 0x07, 0x30, 0x00, 0x30, 0x00, 0x03, 0x01, 0x00];
        assert!(looks_like_certificate(&good));
        assert!(!looks_like_certificate(&good[..8]));
        assert!(!looks_like_certificate(&[
            0x30, 0x84, 0xff, 0xff, 0xff, 0xff
        ]));
        assert!(!looks_like_certificate(&[]));
    }
}
