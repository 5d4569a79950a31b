//! Packet-capture reader: the TLS server certificates seen on the wire.
//!
//! [`Reader`] reads a pcap or pcapng capture (told apart by magic bytes, gzip- or xz-compressed
//! too), decodes Ethernet (with VLAN tags), raw IP, Linux SLL/SLL2 and loopback frames down to
//! TCP over IPv4 or IPv6, reassembles each direction of each connection by sequence number
//! (out-of-order segments buffered, retransmissions and overlaps dropped), finds TLS by content
//! on any port and yields an [`Event`] for every Certificate message of TLS 1.0–1.2 and every
//! TLS 1.3 handshake (whose certificates are encrypted). A direction stops being reassembled once
//! its handshake is over, so bulk traffic costs a table lookup per packet.
//!
//! Nothing here panics on input: a truncated or corrupt capture ends the iteration with the
//! records read so far and [`Stats::truncated`] saying where it broke.
//!
//! Timestamp convention (as tshark's Certificate frame and Zeek's x509.log): an event carries
//! the time of the packet that completed the TLS record holding the end of the message.

mod decode;
mod flow;
mod tls;

use std::collections::VecDeque;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;

use chrono::{DateTime, Utc};
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{Block, PcapBlockOwned, PcapError};

/// Read buffer of the capture parser; grown for larger packets up to [`MAX_BLOCK`].
const BUFFER: usize = 256 << 10;
/// Largest capture block (packet record) accepted.
const MAX_BLOCK: usize = 16 << 20;

/// A certificate chain seen in one Certificate message, with its connection.
#[derive(Clone, PartialEq, Eq)]
pub struct Observation {
    /// Time of the packet completing the TLS record that carries the end of the message.
    pub ts: DateTime<Utc>,
    /// The TLS server (the endpoint that sent the ServerHello).
    pub server: SocketAddr,
    /// The TLS client.
    pub client: SocketAddr,
    /// DER certificates in the order sent (leaf first).
    pub chain: Vec<Vec<u8>>,
    /// The version the ServerHello chose (0x0301 = TLS 1.0 … 0x0303 = TLS 1.2; 0 if unseen).
    pub version: u16,
    /// The server_name of the connection's ClientHello.
    pub sni: Option<String>,
}

impl fmt::Debug for Observation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Observation")
            .field("ts", &self.ts)
            .field("server", &self.server)
            .field("client", &self.client)
            .field(
                "chain",
                &format_args!("[{} certificates]", self.chain.len()),
            )
            .field("version", &format_args!("{:#06x}", self.version))
            .field("sni", &self.sni)
            .finish()
    }
}

/// A TLS 1.3 handshake (certificates encrypted): who talked to whom, under which name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// Time of the packet completing the ServerHello's record.
    pub ts: DateTime<Utc>,
    pub server: SocketAddr,
    pub client: SocketAddr,
    pub sni: Option<String>,
}

/// A Certificate message that gives no observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// What could be read (the chain is empty when the message framing itself is broken).
    pub observation: Observation,
    /// Sent by the TLS server (false: by the client).
    pub from_server: bool,
    pub reason: String,
}

/// What a capture shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A server's certificate chain: the observation to store.
    ServerCertificate(Observation),
    /// A certificate message sent by the TLS client (mutual TLS; the chain may be empty). Not a
    /// server observation; `server`/`client` keep their roles.
    ClientCertificate(Observation),
    /// A TLS 1.3 handshake: no certificate in clear.
    Tls13Handshake(Handshake),
    /// A Certificate message whose framing or leaf is broken.
    Malformed(Malformed),
}

/// Counters of one capture.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Capture format: "pcap", "pcap-ns" or "pcapng" (with a compression suffix).
    pub format: String,
    /// Bytes of capture read (after decompression).
    pub bytes: u64,
    pub packets: u64,
    /// Packets that are not TCP over IP.
    pub non_tcp: u64,
    /// IP fragments (not reassembled, skipped).
    pub ip_fragments: u64,
    /// Frames shorter than their headers say.
    pub short_frames: u64,
    /// Frames of a link type this reader does not decode.
    pub unknown_link: u64,
    /// TCP connections tracked.
    pub tcp_flows: u64,
    /// Flows dropped for being idle (or for table space).
    pub flows_expired: u64,
    pub retransmissions: u64,
    pub out_of_order: u64,
    /// Directions given up because a gap was never filled.
    pub gaps: u64,
    pub segments_ignored: u64,
    /// ServerHello messages (TLS handshakes of any version).
    pub tls_handshakes: u64,
    pub tls13_handshakes: u64,
    /// Server Certificate messages yielding an observation.
    pub certificate_messages: u64,
    pub client_certificates: u64,
    /// Certificate messages that are broken.
    pub malformed: u64,
    /// TLS streams that stopped parsing as TLS.
    pub desyncs: u64,
    /// Where and why the capture could not be read to its end.
    pub truncated: Option<String>,
}

/// The capture could not be opened.
#[derive(Debug)]
pub enum Error {
    Io(std::io::Error),
    /// The input is neither pcap nor pcapng.
    NotACapture(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "reading the capture: {e}"),
            Error::NotACapture(why) => write!(f, "not a pcap or pcapng capture: {why}"),
        }
    }
}

impl std::error::Error for Error {}

/// A packet timestamp.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Ts {
    secs: i64,
    nanos: u32,
}

impl Ts {
    fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.secs, self.nanos).unwrap_or_default()
    }
}

/// Counts bytes read through it.
struct Counting<R> {
    inner: R,
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

#[derive(Debug, Clone, Copy)]
struct Interface {
    link: i32,
    /// Units per second of the timestamps.
    resolution: u64,
    offset: i64,
}

/// Reads a capture, yielding [`Event`]s; [`Reader::stats`] after the end.
pub struct Reader<'a> {
    inner: Box<dyn PcapReaderIterator + Send + 'a>,
    bytes: std::sync::Arc<std::sync::atomic::AtomicU64>,
    legacy_link: i32,
    legacy_nanos: bool,
    interfaces: Vec<Interface>,
    flows: flow::Flows,
    events: VecDeque<Event>,
    stats: Stats,
    ended: bool,
}

impl fmt::Debug for Reader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader")
            .field("stats", &self.stats)
            .finish()
    }
}

/// Wraps `input` so that gzip (`1f 8b`) or xz (`fd 37 7a 58 5a 00`) compression, told apart by
/// magic bytes, is undone. Returns the reader and the compression's name.
pub fn decompress<'a, R: Read + Send + 'a>(
    input: R,
) -> std::io::Result<(Box<dyn Read + Send + 'a>, &'static str)> {
    let mut buffered = BufReader::with_capacity(1 << 16, input);
    let head = buffered.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok((
            Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
            "gzip",
        ))
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Ok((Box::new(lzma_rust2::XzReader::new(buffered, true)), "xz"))
    } else {
        Ok((Box::new(buffered), ""))
    }
}

impl<'a> Reader<'a> {
    /// Opens a capture (pcap or pcapng, plain, gzip or xz) from any reader.
    pub fn new<R: Read + Send + 'a>(input: R) -> Result<Self, Error> {
        let (plain, compression) = decompress(input).map_err(Error::Io)?;
        let bytes = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counting = Counting {
            inner: plain,
            count: bytes.clone(),
        };
        let inner = pcap_parser::create_reader(BUFFER, counting).map_err(|e| match e {
            PcapError::Eof => Error::NotACapture("empty input".to_owned()),
            PcapError::ReadError => {
                Error::Io(std::io::Error::other("read error in the capture header"))
            }
            PcapError::HeaderNotRecognized => Error::NotACapture("unknown magic number".to_owned()),
            other => Error::NotACapture(format!("{other}")),
        })?;
        let stats = Stats {
            format: compression.to_owned(),
            ..Stats::default()
        };
        Ok(Reader {
            inner,
            bytes,
            legacy_link: decode::linktype::ETHERNET,
            legacy_nanos: false,
            interfaces: Vec::new(),
            flows: flow::Flows::default(),
            events: VecDeque::new(),
            stats,
            ended: false,
        })
    }

    /// Opens a capture file (pcap or pcapng, plain, gzip or xz).
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Reader<'static>, Error> {
        let file = std::fs::File::open(path).map_err(Error::Io)?;
        Reader::new(file)
    }

    /// Counters so far (complete once the iteration has ended).
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Consumes the reader, reading to the end, and returns the counters.
    pub fn finish(mut self) -> Stats {
        while self.next().is_some() {}
        self.stats
    }

    /// Flows still tracked and the bytes they buffer (a memory check for tests and benches).
    pub fn footprint(&self) -> (usize, usize) {
        self.flows.footprint()
    }

    fn end(&mut self, why: Option<String>) {
        self.ended = true;
        self.stats.bytes = self.bytes.load(std::sync::atomic::Ordering::Relaxed);
        if let Some(why) = why {
            self.stats.truncated = Some(why);
        }
        let format = match (self.interfaces.is_empty(), self.legacy_nanos) {
            (false, _) => "pcapng",
            (true, true) => "pcap-ns",
            (true, false) => "pcap",
        };
        self.stats.format = if self.stats.format.is_empty() {
            format.to_owned()
        } else {
            format!("{format}+{}", self.stats.format)
        };
    }

    /// Reads blocks until at least one event is queued or the capture ends.
    fn pump(&mut self) {
        while self.events.is_empty() && !self.ended {
            let consumed_before = self.inner.consumed();
            match self.inner.next() {
                Ok((offset, block)) => {
                    match block {
                        PcapBlockOwned::LegacyHeader(header) => {
                            // The upper bits may carry FCS information (pcap LINKTYPE_ field).
                            self.legacy_link = header.network.0 & 0xffff;
                            self.legacy_nanos = header.is_nanosecond_precision();
                        }
                        PcapBlockOwned::Legacy(packet) => {
                            let frac = if self.legacy_nanos {
                                packet.ts_usec
                            } else {
                                packet.ts_usec.saturating_mul(1000)
                            };
                            let ts = Ts {
                                secs: i64::from(packet.ts_sec),
                                nanos: frac.min(999_999_999),
                            };
                            let link = self.legacy_link;
                            packet_in(
                                link,
                                packet.data,
                                ts,
                                &mut self.stats,
                                &mut self.flows,
                                &mut self.events,
                            );
                        }
                        PcapBlockOwned::NG(Block::SectionHeader(_)) => self.interfaces.clear(),
                        PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                            self.interfaces.push(Interface {
                                link: idb.linktype.0,
                                resolution: idb.ts_resolution().unwrap_or(1_000_000).max(1),
                                offset: idb.ts_offset(),
                            });
                        }
                        PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                            let iface = self.interfaces.get(epb.if_id as usize).copied();
                            let iface = iface.unwrap_or(Interface {
                                link: decode::linktype::ETHERNET,
                                resolution: 1_000_000,
                                offset: 0,
                            });
                            let raw = u64::from(epb.ts_high) << 32 | u64::from(epb.ts_low);
                            let secs = (raw / iface.resolution) as i64 + iface.offset;
                            let frac = raw % iface.resolution;
                            let nanos = (u128::from(frac) * 1_000_000_000
                                / u128::from(iface.resolution))
                                as u32;
                            let ts = Ts { secs, nanos };
                            let caplen = (epb.caplen as usize).min(epb.data.len());
                            let data = epb.data.get(..caplen).unwrap_or(epb.data);
                            packet_in(
                                iface.link,
                                data,
                                ts,
                                &mut self.stats,
                                &mut self.flows,
                                &mut self.events,
                            );
                        }
                        PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                            let link = self
                                .interfaces
                                .first()
                                .map_or(decode::linktype::ETHERNET, |i| i.link);
                            packet_in(
                                link,
                                spb.data,
                                Ts::default(),
                                &mut self.stats,
                                &mut self.flows,
                                &mut self.events,
                            );
                        }
                        PcapBlockOwned::NG(_) => {}
                    }
                    self.inner.consume(offset);
                }
                Err(PcapError::Eof) => self.end(None),
                Err(PcapError::Incomplete(_)) => {
                    if let Err(e) = self.inner.refill().map_err(|e| e.to_string()) {
                        let at = self.inner.consumed();
                        self.end(Some(format!("read error at byte {at}: {e}")));
                    }
                }
                Err(PcapError::BufferTooSmall) => {
                    let size = self.inner.data().len().max(BUFFER) * 2;
                    if size > MAX_BLOCK || !self.inner.grow(size) {
                        let at = self.inner.consumed();
                        self.end(Some(format!(
                            "capture block at byte {at} larger than {MAX_BLOCK} bytes"
                        )));
                    } else if let Err(e) = self.inner.refill().map_err(|e| e.to_string()) {
                        let at = self.inner.consumed();
                        self.end(Some(format!("read error at byte {at}: {e}")));
                    }
                }
                Err(PcapError::UnexpectedEof) => {
                    let at = consumed_before;
                    let left = self.inner.data().len();
                    self.end(Some(format!(
                        "file ends inside a block: {left} bytes at byte {at} (after packet {}) are an incomplete packet record",
                        self.stats.packets
                    )));
                }
                Err(e) => {
                    let at = consumed_before;
                    let what = format!("{e}");
                    self.end(Some(format!(
                        "corrupt capture at byte {at} (after packet {}): {what}",
                        self.stats.packets
                    )));
                }
            }
        }
    }
}

impl Iterator for Reader<'_> {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        if self.events.is_empty() {
            self.pump();
        }
        self.events.pop_front()
    }
}

fn packet_in(
    link: i32,
    frame: &[u8],
    ts: Ts,
    stats: &mut Stats,
    flows: &mut flow::Flows,
    events: &mut VecDeque<Event>,
) {
    stats.packets += 1;
    match decode::decode(link, frame) {
        Ok(segment) => flows.segment(&segment, ts, stats, events),
        Err(decode::Skip::NotTcp) => stats.non_tcp += 1,
        Err(decode::Skip::Fragment) => stats.ip_fragments += 1,
        Err(decode::Skip::Short) => stats.short_frames += 1,
        Err(decode::Skip::UnknownLink) => stats.unknown_link += 1,
    }
}

/// "TLSv1.2" for 0x0303 and so on.
pub fn version_name(version: u16) -> String {
    match version {
        0x0300 => "SSLv3".to_owned(),
        0x0301 => "TLSv1.0".to_owned(),
        0x0302 => "TLSv1.1".to_owned(),
        0x0303 => "TLSv1.2".to_owned(),
        0x0304 => "TLSv1.3".to_owned(),
        other => format!("{other:#06x}"),
    }
}

/// Fuzzing entry point (the `tls_stream` target of `fuzz/`): feeds `segments`, the in-order bytes
/// of one TCP direction, to the TLS record and handshake parser and returns how many messages
/// it reported and the most bytes it held buffered. Not part of the API.
#[doc(hidden)]
pub fn fuzz_tls_direction(segments: &[&[u8]]) -> (usize, usize) {
    let mut stream = tls::TlsStream::new();
    let mut out = Vec::new();
    let mut most = 0;
    for segment in segments {
        stream.feed(segment, &mut out);
        most = most.max(stream.buffered());
    }
    for message in &out {
        let _ = format!("{message:?}");
    }
    (out.len(), most)
}
