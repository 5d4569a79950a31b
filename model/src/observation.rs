//! A passive sighting: this IP served this certificate on this port between two times.

use std::net::IpAddr;

use chrono::{DateTime, Utc};

use crate::Sha1;

/// Port value for sightings whose source does not say the port (Sonar hosts files, some
/// imports). Stored as 0; shown as "?".
pub const PORT_UNKNOWN: u16 = 0;

/// One observation to merge into `observations`: first_seen = least, last_seen = greatest,
/// times_seen summed, sources united.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservationRow {
    /// Address that served the certificate.
    pub ip: IpAddr,
    /// TCP port, or [`PORT_UNKNOWN`].
    pub port: u16,
    /// SHA-1 of the leaf certificate's DER. The certificate row need not exist.
    pub sha1: Sha1,
    /// Earliest sighting in this record.
    pub first_seen: DateTime<Utc>,
    /// Latest sighting in this record (≥ `first_seen`).
    pub last_seen: DateTime<Utc>,
    /// How many sightings this record stands for (≥ 1).
    pub times_seen: i64,
    /// Where it came from (`scan`, `sonar`, `zgrab2`, a file label, …).
    pub source: String,
}
