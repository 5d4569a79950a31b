//! Shared record types of certhist.
//!
//! `ingest` produces these records from sources, `store` writes and reads them, `query-api` and the
//! CLI present them. Nothing here talks SQL or parses DER; this crate only holds the vocabulary the
//! other crates share (and small, pure helpers on it: hash and serial notation).

mod hash;
mod observation;
mod passive;
mod record;
pub mod serde_hex;
pub mod serde_time;
mod serial;
mod time;
pub mod views;

pub use hash::{parse_cert_hash, CertHash, HashParseError, Sha1, Sha256};
pub use observation::{ObservationRow, PORT_UNKNOWN};
pub use passive::{CertRef, CertStub, ClientContact, PassiveSighting};
pub use record::{CertName, CertRecord, DistinguishedName, NameKind};
pub use serde_hex::encode as hex_lower;
pub use serial::{Serial, SerialParseError};
pub use time::{parse_timestamp, ymd, ymd_hm, TimestampParseError};
