//! Passive sightings from network sensors (Zeek, Suricata, packet captures): a server address
//! presented a certificate known by its SHA-1, or only by its SHA-256 (Zeek >= 4.1), at a time,
//! possibly for a host name the client asked for (SNI).

use std::net::IpAddr;

use chrono::{DateTime, Utc};

use crate::{Sha1, Sha256};

/// How a passive sighting names its leaf certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CertRef {
    /// By the SHA-1 of its DER (the DER itself, when known, travels as a chain certificate).
    Sha1(Sha1),
    /// By SHA-256 only: stored as a sighting of a certificate stub until the DER arrives.
    Sha256(Sha256),
}

/// What a log said about a certificate it names only by hash (Zeek x509.log, Suricata fields):
/// kept with a SHA-256-only certificate until its DER arrives. Attacker-controlled text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertStub {
    /// Subject DN as the sensor wrote it.
    pub subject_dn: Option<String>,
    /// CN taken from `subject_dn`.
    pub subject_cn: Option<String>,
    /// Issuer DN as the sensor wrote it.
    pub issuer_dn: Option<String>,
    /// Serial as the sensor wrote it (hex).
    pub serial_text: Option<String>,
    /// Validity start.
    pub not_before: Option<DateTime<Utc>>,
    /// Validity end.
    pub not_after: Option<DateTime<Utc>>,
    /// SAN dNSNames the sensor listed.
    pub san_dns: Vec<String>,
}

/// One handshake seen by a sensor: `ip:port` (the server) presented `leaf` at `time`, for the
/// host name `sni` when the client sent one. Client addresses are not part of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PassiveSighting {
    /// When it was seen.
    pub time: DateTime<Utc>,
    /// Server address.
    pub ip: IpAddr,
    /// Server port.
    pub port: u16,
    /// The leaf certificate; `None` for a handshake without a certificate in clear (TLS 1.3,
    /// resumption) that still gives an SNI name.
    pub leaf: Option<CertRef>,
    /// Text fields of a SHA-256-only leaf (ignored for a SHA-1 leaf).
    pub stub: Option<CertStub>,
    /// Server name the client asked for, lower-cased.
    pub sni: Option<String>,
}

/// A client seen talking TLS to a server in a capture (`import pcap --keep-clients` only: client
/// addresses are not stored by default), with the certificate it presented, if any. Never a
/// server observation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientContact {
    /// When it was seen.
    pub time: DateTime<Utc>,
    /// Client address.
    pub client_ip: IpAddr,
    /// Server address.
    pub server_ip: IpAddr,
    /// Server port.
    pub server_port: u16,
    /// SHA-1 of the client's certificate (its DER travels with the item), when it sent one.
    pub client_cert: Option<Sha1>,
}
