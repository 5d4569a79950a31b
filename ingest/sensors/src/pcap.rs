//! Packet captures (pcap / pcapng; plain, gzip, bzip2 or xz) read by `certhist_pcap` as a
//! [`certhist_files::FileFormat`]: each server Certificate message becomes a passive sighting
//! (server address and port, the time of the packet completing it, the leaf by SHA-1, the
//! connection's SNI) with its chain stored as certificates; a TLS 1.3 handshake (no certificate
//! in clear) keeps only its SNI; a client certificate is not a server observation and is passed
//! over; a broken Certificate message and a capture that ends early are problems. Client
//! addresses are not kept unless asked ([`PcapCapture::keep_clients`]: then each handshake also
//! gives a client contact, and a client certificate is stored with its contact, never as a
//! server observation).

use std::io;
use std::path::Path;

use certhist_files::input::Input;
use certhist_files::{FileFormat, Item, ItemReader};
use certhist_model::{CertRef, ClientContact, PassiveSighting};
use certhist_pcap::{Event, Reader};
use sha1::Digest;

/// `certhist import pcap`: captures through the import driver.
#[derive(Debug, Clone)]
pub struct PcapCapture {
    /// Label stored with the sightings.
    pub source: String,
    /// Also store client contacts (client address → server, with the client's certificate) as
    /// [`Item::Client`]s; by default client addresses are never kept.
    pub keep_clients: bool,
}

impl FileFormat for PcapCapture {
    fn name(&self) -> &str {
        "pcap"
    }

    fn source(&self) -> &str {
        &self.source
    }

    fn reader(&self, _path: &Path, input: Input) -> io::Result<Box<dyn ItemReader>> {
        let reader = Reader::new(input)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        Ok(Box::new(PcapItems {
            reader,
            ended: false,
            keep_clients: self.keep_clients,
            held: None,
            events: 0,
        }))
    }
}

/// The items of one capture, in capture order.
struct PcapItems {
    reader: Reader<'static>,
    ended: bool,
    keep_clients: bool,
    /// The item of the last event, held back while its client contact is returned first
    /// (`keep_clients`).
    held: Option<Item>,
    /// Events of the capture read.
    events: u64,
}

impl ItemReader for PcapItems {
    fn next_item(&mut self) -> io::Result<Option<Item>> {
        if let Some(item) = self.held.take() {
            return Ok(Some(item));
        }
        if self.ended {
            return Ok(None);
        }
        let Some(event) = self.reader.next() else {
            self.ended = true;
            // A capture cut off or corrupt: what came before is kept, the rest reported.
            return Ok(self
                .reader
                .stats()
                .truncated
                .clone()
                .map(|why| Item::Problem(0, format!("capture not read to its end: {why}"))));
        };
        self.events += 1;
        if self.keep_clients {
            if let Some((contact, certs)) = client_contact(&event) {
                let client = Item::Client {
                    certs,
                    contact: Box::new(contact),
                };
                if !matches!(event, Event::ClientCertificate(_)) {
                    // The event's own item after its client contact.
                    self.held = Some(item(event));
                }
                return Ok(Some(client));
            }
        }
        Ok(Some(item(event)))
    }

    /// Two steps per event: after a client contact returned before its event's item, an odd
    /// position; after the event's item, twice the events read. The same with and without
    /// `keep_clients`, so resuming after a committed batch never skips or repeats part of an
    /// event (and every position is at least 1, past the start).
    fn cursor(&self) -> Option<u64> {
        Some(2 * self.events - u64::from(self.held.is_some()))
    }
}

/// The client side of a handshake event (`--keep-clients`): who contacted which server, and the
/// client's certificate chain when it sent one.
fn client_contact(event: &Event) -> Option<(ClientContact, Vec<Vec<u8>>)> {
    let (ts, client, server, chain) = match event {
        Event::ServerCertificate(o) => (o.ts, o.client, o.server, None),
        Event::Tls13Handshake(h) => (h.ts, h.client, h.server, None),
        Event::ClientCertificate(o) => (o.ts, o.client, o.server, Some(&o.chain)),
        Event::Malformed(_) => return None,
    };
    let certs = chain.cloned().unwrap_or_default();
    let client_cert = certs
        .first()
        .map(|leaf| -> certhist_model::Sha1 { sha1::Sha1::digest(leaf).into() });
    Some((
        ClientContact {
            time: ts,
            client_ip: client.ip(),
            server_ip: server.ip(),
            server_port: server.port(),
            client_cert,
        },
        certs,
    ))
}

fn item(event: Event) -> Item {
    match event {
        Event::ServerCertificate(o) => match o.chain.first() {
            Some(leaf) => {
                let sha1: certhist_model::Sha1 = sha1::Sha1::digest(leaf).into();
                Item::Passive {
                    sighting: Box::new(PassiveSighting {
                        time: o.ts,
                        ip: o.server.ip(),
                        port: o.server.port(),
                        leaf: Some(CertRef::Sha1(sha1)),
                        stub: None,
                        sni: o.sni.map(|n| n.to_ascii_lowercase()),
                    }),
                    certs: o.chain,
                }
            }
            None => Item::Ignored(0),
        },
        // A record without certificate (counted as such: the import reports the TLS 1.3
        // handshakes), storing only its SNI name when there is one.
        Event::Tls13Handshake(h) => Item::Passive {
            certs: Vec::new(),
            sighting: Box::new(PassiveSighting {
                time: h.ts,
                ip: h.server.ip(),
                port: h.server.port(),
                leaf: None,
                stub: None,
                sni: h.sni.map(|name| name.to_ascii_lowercase()),
            }),
        },
        Event::ClientCertificate(_) => Item::Ignored(0),
        Event::Malformed(m) => Item::Problem(
            0,
            format!(
                "{} Certificate message from {} at {}: {}",
                if m.from_server { "server" } else { "client" },
                if m.from_server {
                    m.observation.server
                } else {
                    m.observation.client
                },
                m.observation
                    .ts
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                m.reason
            ),
        ),
    }
}
