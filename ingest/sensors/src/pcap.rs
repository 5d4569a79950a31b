//! Packet captures (pcap / pcapng; plain, gzip, bzip2 or xz) read by `certhist_pcap` as a
//! [`certhist_files::FileFormat`]: each server Certificate message becomes a passive sighting
//! (server address and port, the time of the packet completing it, the leaf by SHA-1, the
//! connection's SNI) with its chain stored as certificates; a TLS 1.3 handshake (no certificate
//! in clear) keeps only its SNI; a client certificate is not a server observation and is passed
//! over; a broken Certificate message and a capture that ends early are problems. Client
//! addresses are never kept.

use std::io;
use std::path::Path;

use certhist_files::input::Input;
use certhist_files::{FileFormat, Item, ItemReader};
use certhist_model::{CertRef, PassiveSighting};
use certhist_pcap::{Event, Reader};
use sha1::Digest;

/// `certhist import pcap`: captures through the import driver.
#[derive(Debug, Clone)]
pub struct PcapCapture {
    /// Label stored with the sightings.
    pub source: String,
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
        }))
    }
}

/// The items of one capture, in capture order.
struct PcapItems {
    reader: Reader<'static>,
    ended: bool,
}

impl ItemReader for PcapItems {
    fn next_item(&mut self) -> io::Result<Option<Item>> {
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
        Ok(Some(item(event)))
    }
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
        Event::Tls13Handshake(h) => match h.sni {
            Some(name) => Item::Passive {
                certs: Vec::new(),
                sighting: Box::new(PassiveSighting {
                    time: h.ts,
                    ip: h.server.ip(),
                    port: h.server.port(),
                    leaf: None,
                    stub: None,
                    sni: Some(name.to_ascii_lowercase()),
                }),
            },
            None => Item::Ignored(0),
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
