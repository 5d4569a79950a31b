//! TCP connections: per-direction reassembly by sequence number, feeding each direction's TLS
//! parser, and turning its messages into [`Event`]s with the connection's addresses and SNI.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use crate::decode::{Segment, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN};
use crate::tls::{looks_like_certificate, Message, TlsStream};
use crate::{Event, Handshake, Stats, Ts};

/// Out-of-order bytes buffered per direction before the gap is declared lost.
const MAX_PENDING_BYTES: usize = 256 * 1024;
const MAX_PENDING_SEGMENTS: usize = 128;
/// A segment further ahead than this is not from this connection's current window.
const MAX_AHEAD: i32 = 4 * 1024 * 1024;
/// Flows without a packet for this long are dropped.
pub(crate) const IDLE_SECS: i64 = 300;
/// Flow-table size at which idle and finished flows are dropped early.
pub(crate) const MAX_FLOWS: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FlowKey {
    lo: (IpAddr, u16),
    hi: (IpAddr, u16),
}

impl FlowKey {
    /// The key and the direction index of `seg` in it (0: lo → hi, 1: hi → lo).
    fn of(seg: &Segment<'_>) -> (FlowKey, usize) {
        let a = (seg.src, seg.sport);
        let b = (seg.dst, seg.dport);
        if a <= b {
            (FlowKey { lo: a, hi: b }, 0)
        } else {
            (FlowKey { lo: b, hi: a }, 1)
        }
    }
    fn endpoint(&self, dir: usize) -> SocketAddr {
        let (ip, port) = if dir == 0 { self.lo } else { self.hi };
        SocketAddr::new(ip, port)
    }
}

#[derive(Debug)]
struct Direction {
    next_seq: Option<u32>,
    /// Out-of-order segments: (sequence number, bytes).
    pending: Vec<(u32, Vec<u8>)>,
    pending_bytes: usize,
    tls: TlsStream,
    sent_client_hello: bool,
    sent_server_hello: bool,
    fin: bool,
}

impl Direction {
    fn new() -> Self {
        Direction {
            next_seq: None,
            pending: Vec::new(),
            pending_bytes: 0,
            tls: TlsStream::new(),
            sent_client_hello: false,
            sent_server_hello: false,
            fin: false,
        }
    }
    fn stop(&mut self) {
        self.tls.finish();
        self.pending = Vec::new();
        self.pending_bytes = 0;
    }
}

#[derive(Debug)]
struct Flow {
    dirs: [Direction; 2],
    /// The direction that sent a bare SYN (the TCP client), when seen.
    client_dir: Option<usize>,
    sni: Option<String>,
    version: u16,
    last_seen: i64,
    /// Both directions are past their handshake: packets are only counted.
    done: bool,
    has_data: bool,
}

impl Flow {
    fn new(now: i64) -> Self {
        Flow {
            dirs: [Direction::new(), Direction::new()],
            client_dir: None,
            sni: None,
            version: 0,
            last_seen: now,
            done: false,
            has_data: false,
        }
    }
}

/// All tracked connections.
#[derive(Debug, Default)]
pub(crate) struct Flows {
    table: HashMap<FlowKey, Flow>,
    messages: Vec<Message>,
    last_sweep: i64,
}

impl Flows {
    pub(crate) fn segment(
        &mut self,
        seg: &Segment<'_>,
        ts: Ts,
        stats: &mut Stats,
        events: &mut std::collections::VecDeque<Event>,
    ) {
        let now = ts.secs;
        if now - self.last_sweep >= 30 || self.table.len() >= MAX_FLOWS {
            self.sweep(now, stats);
        }
        let (key, d) = FlowKey::of(seg);
        let syn = seg.flags & TCP_SYN != 0;
        let flow = match self.table.get_mut(&key) {
            Some(flow) => {
                // A new connection on the same addresses and ports (port reuse).
                if syn && seg.flags & TCP_ACK == 0 && flow.has_data {
                    let expected = flow.dirs[d].next_seq;
                    if expected != Some(seg.seq.wrapping_add(1)) {
                        *flow = Flow::new(now);
                        stats.tcp_flows += 1;
                    }
                }
                flow
            }
            None => {
                if seg.payload.is_empty() && !syn {
                    return;
                }
                stats.tcp_flows += 1;
                self.table.entry(key).or_insert_with(|| Flow::new(now))
            }
        };
        flow.last_seen = now;
        if seg.flags & TCP_RST != 0 {
            self.table.remove(&key);
            return;
        }
        if flow.done {
            if seg.flags & TCP_FIN != 0 {
                flow.dirs[d].fin = true;
                if flow.dirs[1 - d].fin {
                    self.table.remove(&key);
                }
            }
            return;
        }
        if syn {
            if seg.flags & TCP_ACK == 0 {
                flow.client_dir = Some(d);
            }
            flow.dirs[d].next_seq = Some(seg.seq.wrapping_add(1));
        }
        if !seg.payload.is_empty() && !flow.dirs[d].tls.is_done() {
            flow.has_data = true;
            let data_seq = if syn {
                seg.seq.wrapping_add(1)
            } else {
                seg.seq
            };
            reassemble(flow, d, data_seq, seg.payload, stats, &mut self.messages);
            if !self.messages.is_empty() {
                let mut messages = std::mem::take(&mut self.messages);
                for message in messages.drain(..) {
                    handle(flow, &key, d, message, ts, stats, events);
                }
                self.messages = messages;
            }
            if flow.dirs[0].tls.is_done() && flow.dirs[1].tls.is_done() {
                flow.done = true;
                flow.dirs[0].stop();
                flow.dirs[1].stop();
            }
        }
        if seg.flags & TCP_FIN != 0 {
            flow.dirs[d].fin = true;
            if flow.dirs[1 - d].fin {
                self.table.remove(&key);
            }
        }
    }

    /// Drops idle flows (and, when the table is full, every finished flow).
    fn sweep(&mut self, now: i64, stats: &mut Stats) {
        self.last_sweep = now;
        let before = self.table.len();
        let full = before >= MAX_FLOWS;
        self.table.retain(|_, f| {
            let idle = now - f.last_seen > IDLE_SECS;
            !(idle || (full && (f.done || now - f.last_seen > 10)))
        });
        stats.flows_expired += (before - self.table.len()) as u64;
        if self.table.len() >= MAX_FLOWS {
            // Still full: start afresh rather than grow without bound.
            stats.flows_expired += self.table.len() as u64;
            self.table.clear();
        }
    }

    /// Flows still tracked and the bytes they buffer.
    pub(crate) fn footprint(&self) -> (usize, usize) {
        let bytes = self
            .table
            .values()
            .map(|f| {
                f.dirs
                    .iter()
                    .map(|d| d.tls.buffered() + d.pending_bytes)
                    .sum::<usize>()
            })
            .sum();
        (self.table.len(), bytes)
    }
}

/// Puts `payload` (starting at sequence number `seq`) in order and feeds the TLS parser.
fn reassemble(
    flow: &mut Flow,
    d: usize,
    seq: u32,
    payload: &[u8],
    stats: &mut Stats,
    out: &mut Vec<Message>,
) {
    let dir = &mut flow.dirs[d];
    let next = *dir.next_seq.get_or_insert(seq);
    let offset = seq.wrapping_sub(next) as i32;
    if offset <= 0 {
        let skip = offset.unsigned_abs() as usize;
        let Some(fresh) = payload.get(skip..).filter(|f| !f.is_empty()) else {
            stats.retransmissions += 1;
            return;
        };
        dir.next_seq = Some(next.wrapping_add(fresh.len() as u32));
        dir.tls.feed(fresh, out);
        drain_pending(dir, out);
        return;
    }
    if offset > MAX_AHEAD {
        stats.segments_ignored += 1;
        return;
    }
    // Ahead of the stream: keep it until the gap is filled.
    if dir.pending_bytes + payload.len() > MAX_PENDING_BYTES
        || dir.pending.len() >= MAX_PENDING_SEGMENTS
    {
        stats.gaps += 1;
        dir.stop();
        return;
    }
    if dir
        .pending
        .iter()
        .any(|(s, p)| *s == seq && p.len() >= payload.len())
    {
        stats.retransmissions += 1;
        return;
    }
    stats.out_of_order += 1;
    dir.pending_bytes += payload.len();
    dir.pending.push((seq, payload.to_vec()));
}

fn drain_pending(dir: &mut Direction, out: &mut Vec<Message>) {
    while !dir.pending.is_empty() && !dir.tls.is_done() {
        let Some(next) = dir.next_seq else { return };
        let Some(i) = dir
            .pending
            .iter()
            .position(|(s, _)| s.wrapping_sub(next) as i32 <= 0)
        else {
            return;
        };
        let (seq, bytes) = dir.pending.swap_remove(i);
        dir.pending_bytes -= bytes.len();
        let skip = next.wrapping_sub(seq) as usize;
        if let Some(fresh) = bytes.get(skip..).filter(|f| !f.is_empty()) {
            dir.next_seq = Some(next.wrapping_add(fresh.len() as u32));
            dir.tls.feed(fresh, out);
        }
    }
}

fn handle(
    flow: &mut Flow,
    key: &FlowKey,
    d: usize,
    message: Message,
    ts: Ts,
    stats: &mut Stats,
    events: &mut std::collections::VecDeque<Event>,
) {
    match message {
        Message::ClientHello { sni } => {
            flow.dirs[d].sent_client_hello = true;
            if sni.is_some() {
                flow.sni = sni;
            }
        }
        Message::ServerHello { version } => {
            flow.dirs[d].sent_server_hello = true;
            flow.version = version;
            stats.tls_handshakes += 1;
            if version == 0x0304 {
                stats.tls13_handshakes += 1;
                events.push_back(Event::Tls13Handshake(Handshake {
                    ts: ts.to_datetime(),
                    server: key.endpoint(d),
                    client: key.endpoint(1 - d),
                    sni: flow.sni.clone(),
                }));
            }
        }
        Message::ServerHelloDone => {
            // The server's first flight is over: nothing more in clear from it.
            if flow.dirs[d].sent_server_hello {
                flow.dirs[d].stop();
            }
        }
        Message::Certificate(chain, framing_error) => {
            let from_server = if flow.dirs[d].sent_server_hello {
                true
            } else if flow.dirs[1 - d].sent_server_hello || flow.dirs[d].sent_client_hello {
                false
            } else {
                flow.client_dir != Some(d)
            };
            let (server, client) = if from_server {
                (key.endpoint(d), key.endpoint(1 - d))
            } else {
                (key.endpoint(1 - d), key.endpoint(d))
            };
            let observation = |chain| Observation {
                ts: ts.to_datetime(),
                server,
                client,
                chain,
                version: flow.version,
                sni: flow.sni.clone(),
            };
            if let Some(reason) = framing_error {
                stats.malformed += 1;
                events.push_back(Event::Malformed(Malformed {
                    observation: observation(chain),
                    from_server,
                    reason,
                }));
                return;
            }
            if !from_server {
                stats.client_certificates += 1;
                events.push_back(Event::ClientCertificate(observation(chain)));
                return;
            }
            let broken = chain
                .iter()
                .position(|der| !looks_like_certificate(der))
                .filter(|&i| i == 0);
            if chain.is_empty() || broken.is_some() {
                stats.malformed += 1;
                let reason = if chain.is_empty() {
                    "server Certificate message with an empty chain".to_owned()
                } else {
                    format!(
                        "leaf certificate ({} bytes) is not DER-framed X.509",
                        chain[0].len()
                    )
                };
                events.push_back(Event::Malformed(Malformed {
                    observation: observation(chain),
                    from_server,
                    reason,
                }));
                return;
            }
            stats.certificate_messages += 1;
            events.push_back(Event::ServerCertificate(observation(chain)));
        }
        Message::Desync(reason) => {
            stats.desyncs += 1;
            let _ = reason;
        }
    }
}

use crate::{Malformed, Observation};
