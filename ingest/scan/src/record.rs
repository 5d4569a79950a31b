//! What the format readers produce: records (certificates plus sightings) and problems.

use std::net::IpAddr;

use certhist_model::Sha1;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// One sighting: `ip:port` served the certificate with SHA-1 `leaf_sha1` at `time`.
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

/// One record of a scan file: certificates (leaf first, then the chain as sent) and the sightings
/// it gives. A record may hold certificates and no sighting (a Sonar certs line, a masscan
/// `X509CA` banner) or a sighting without certificates (a Sonar hosts line).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// Line the record starts on (1-based).
    pub line: u64,
    /// DER certificates, leaf first.
    pub certs: Vec<Vec<u8>>,
    /// Sightings.
    pub sightings: Vec<Sighting>,
}

/// A record that was skipped, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The file (as given on the command line).
    pub file: String,
    /// 1-based line number where the bad record starts.
    pub line: u64,
    /// What is wrong with it.
    pub message: String,
}

/// One item of a format reader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// A usable record (possibly without certificates, e.g. a failed ZGrab2 handshake).
    Record(Record),
    /// A skipped record: (line, message).
    Problem(u64, String),
}

/// A streaming reader of one scan-file format. Every call consumes exactly one item, so the
/// number of items read is a stable resume position for the same file.
pub trait ItemReader: Send {
    /// The next item, `Ok(None)` at the end of the file. `Err` only when reading stops (I/O,
    /// corrupt compression); bad records are `Item::Problem`.
    fn next_item(&mut self) -> std::io::Result<Option<Item>>;
}

/// Cuts attacker-controlled text for messages.
pub(crate) fn excerpt(bytes: &[u8]) -> String {
    const MAX: usize = 60;
    let text = String::from_utf8_lossy(bytes.get(..MAX.min(bytes.len())).unwrap_or_default());
    let mut s: String = text.chars().filter(|c| !c.is_control()).collect();
    if bytes.len() > MAX {
        s.push('…');
    }
    s
}

/// SHA-1 of a DER.
pub(crate) fn sha1_of(der: &[u8]) -> Sha1 {
    use sha1::Digest;
    sha1::Sha1::digest(der).into()
}
