//! What format readers produce for the import driver: items, one per record, bad record or
//! ignored block, read in file order.

use std::net::IpAddr;

use certhist_model::{ObservationRow, PassiveSighting, Sha1};
use certhist_store::CacheEntryRow;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// One sighting: `ip:port` served the certificate with SHA-1 `leaf_sha1` at `time` (once).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sighting {
    /// Address that served the certificate.
    pub ip: IpAddr,
    /// TCP port, or [`certhist_model::PORT_UNKNOWN`].
    pub port: u16,
    /// SHA-1 of the leaf certificate's DER.
    pub leaf_sha1: Sha1,
    /// When it was seen.
    pub time: DateTime<Utc>,
}

impl Sighting {
    /// The observation row of this sighting, labelled `source`.
    pub fn to_row(&self, source: &str) -> ObservationRow {
        ObservationRow {
            ip: self.ip,
            port: self.port,
            sha1: self.leaf_sha1,
            first_seen: self.time,
            last_seen: self.time,
            times_seen: 1,
            source: source.to_owned(),
        }
    }
}

/// One record of a file: certificates (leaf first, then the chain as sent) and the sightings it
/// gives. A record may hold certificates and no sighting (a certificate file, a Sonar certs line,
/// a masscan `X509CA` banner) or a sighting without certificates (a Sonar hosts line).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// Line the record starts on (1-based; 0 when the file has no lines, e.g. DER).
    pub line: u64,
    /// DER certificates, leaf first.
    pub certs: Vec<Vec<u8>>,
    /// Sightings, labelled with the format's source when stored.
    pub sightings: Vec<Sighting>,
}

/// A record that was skipped, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The file (as given).
    pub file: String,
    /// 1-based line number where the bad record starts; 0 when the problem concerns the whole
    /// file (unreadable, no certificate in it) or a file without lines (DER).
    pub line: u64,
    /// What is wrong with it.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

/// One item of a format reader.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Item {
    /// A usable record (possibly without certificates, e.g. a failed ZGrab2 handshake).
    Record(Record),
    /// A complete observation row (observation files carry their own period, count and source).
    Observation(ObservationRow),
    /// A CryptnetUrlCache / certutil / URL-list entry (upserted: importing it again is harmless).
    CacheEntry(Box<CacheEntryRow>),
    /// A handshake seen by a network sensor: DER certificates when the sensor logged them (leaf
    /// first, written as certificates) and the sighting (leaf by SHA-1 or SHA-256, SNI).
    Passive {
        /// DER certificates (may be empty: Zeek and most Suricata logs carry only hashes).
        certs: Vec<Vec<u8>>,
        /// The sighting.
        sighting: Box<PassiveSighting>,
    },
    /// A client seen in a capture (`import pcap --keep-clients` only), with the DER chain of the
    /// certificate it presented (stored as certificates, never as a server observation).
    Client {
        /// DER certificates the client sent (may be empty).
        certs: Vec<Vec<u8>>,
        /// The contact.
        contact: Box<certhist_model::ClientContact>,
    },
    /// Something that holds nothing to store and is no problem either (a PEM block of a key);
    /// the line it starts on.
    Ignored(u64),
    /// A skipped record: (line, message); line 0 when it concerns the whole file.
    Problem(u64, String),
}

/// A streaming reader of one file format.
///
/// Contract: the items of the same bytes are always the same, in the same order, so the cursor
/// ([`ItemReader::cursor`]) after `n` items is a stable resume position. Bad records are
/// [`Item::Problem`]s and reading goes on; `Err` only when reading cannot go on (I/O, corrupt
/// compression). Readers never panic on input.
pub trait ItemReader: Send {
    /// The next item, `Ok(None)` at the end of the file.
    fn next_item(&mut self) -> std::io::Result<Option<Item>>;

    /// The resume cursor after the items returned so far, when the reader counts something else
    /// than items (observation files count lines, so cursors stored by earlier versions stay
    /// valid). `None`: the number of items returned is the cursor.
    fn cursor(&self) -> Option<u64> {
        None
    }

    /// For line-oriented logs read as stored (not decompressed): (bytes, lines) of the complete
    /// lines (ending in `\n`) consumed so far, for the file's sensor-log cursor
    /// ([`crate::cursor`]). `None`: the reader keeps no such position.
    fn line_position(&self) -> Option<(u64, u64)> {
        None
    }
}

/// SHA-1 of a DER.
pub fn sha1_of(der: &[u8]) -> Sha1 {
    use sha1::Digest;
    sha1::Sha1::digest(der).into()
}
