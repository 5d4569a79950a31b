//! RFC 6962 log entries: `MerkleTreeLeaf` / `TimestampedEntry` (§3.4), `PreCert` (§3.2),
//! `extra_data` chains of `get-entries` (§4.6), and the static-ct-api `TileLeaf`
//! (c2sp.org/static-ct-api, "Log entries").

use sha2::{Digest, Sha256};

use crate::tls::Reader;
use crate::{Hash, ParseError};

/// `LogEntryType` (RFC 6962 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryType {
    /// `x509_entry(0)`: a final certificate.
    X509,
    /// `precert_entry(1)`: a precertificate.
    Precert,
}

impl EntryType {
    /// The `ct_entries.entry_type` label.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryType::X509 => "x509",
            EntryType::Precert => "precert",
        }
    }
}

/// A parsed `TimestampedEntry` (RFC 6962 §3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampedEntry {
    /// Milliseconds since the epoch (the SCT timestamp).
    pub timestamp_ms: u64,
    /// Entry type.
    pub entry_type: EntryType,
    /// `x509_entry`: the certificate DER. `precert_entry`: the TBSCertificate without the poison.
    pub signed_der: Vec<u8>,
    /// `precert_entry`: SHA-256 of the issuer's SubjectPublicKeyInfo.
    pub issuer_key_hash: Option<Hash>,
    /// `CtExtensions` bytes.
    pub extensions: Vec<u8>,
}

impl TimestampedEntry {
    /// Reads one `TimestampedEntry` from `r`.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, ParseError> {
        let timestamp_ms = r.uint(8, "TimestampedEntry.timestamp")?;
        let entry_type = match r.uint(2, "TimestampedEntry.entry_type")? {
            0 => EntryType::X509,
            1 => EntryType::Precert,
            t => {
                return Err(ParseError::invalid(
                    "TimestampedEntry.entry_type",
                    format!("unknown type {t}"),
                ))
            }
        };
        let (signed_der, issuer_key_hash) = match entry_type {
            EntryType::X509 => (r.vec(3, "ASN.1Cert")?.to_vec(), None),
            EntryType::Precert => {
                let ikh = r.array::<32>("PreCert.issuer_key_hash")?;
                (r.vec(3, "PreCert.tbs_certificate")?.to_vec(), Some(ikh))
            }
        };
        if signed_der.is_empty() {
            return Err(ParseError::invalid("TimestampedEntry", "empty certificate"));
        }
        let extensions = r.vec(2, "CtExtensions")?.to_vec();
        Ok(TimestampedEntry {
            timestamp_ms,
            entry_type,
            signed_der,
            issuer_key_hash,
            extensions,
        })
    }

    /// The static-ct-api `leaf_index` extension (type 0, uint40), if present.
    pub fn leaf_index_extension(&self) -> Result<Option<u64>, ParseError> {
        let mut r = Reader::new(&self.extensions);
        while r.remaining() > 0 {
            let t = r.uint(1, "Extension.extension_type")?;
            let data = r.vec(2, "Extension.extension_data")?;
            if t == 0 {
                if data.len() != 5 {
                    return Err(ParseError::invalid("leaf_index extension", "not 5 bytes"));
                }
                return Ok(Some(
                    data.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b)),
                ));
            }
        }
        Ok(None)
    }
}

/// RFC 6962 §2.1 leaf hash of a `MerkleTreeLeaf` (its TLS bytes): SHA-256(0x00 || leaf).
pub fn leaf_hash(merkle_tree_leaf: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(merkle_tree_leaf);
    h.finalize().into()
}

/// Leaf hash from the bytes of a `TimestampedEntry` (version v1 and `timestamped_entry` prepended).
pub fn leaf_hash_of_entry(timestamped_entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8, 0, 0]);
    h.update(timestamped_entry);
    h.finalize().into()
}

/// Parses a `MerkleTreeLeaf` (RFC 6962 §3.4): version v1(0), leaf_type timestamped_entry(0).
pub fn parse_merkle_tree_leaf(leaf: &[u8]) -> Result<TimestampedEntry, ParseError> {
    let mut r = Reader::new(leaf);
    let version = r.uint(1, "MerkleTreeLeaf.version")?;
    if version != 0 {
        return Err(ParseError::invalid(
            "MerkleTreeLeaf.version",
            format!("{version}"),
        ));
    }
    let leaf_type = r.uint(1, "MerkleTreeLeaf.leaf_type")?;
    if leaf_type != 0 {
        return Err(ParseError::invalid(
            "MerkleTreeLeaf.leaf_type",
            format!("{leaf_type}"),
        ));
    }
    let e = TimestampedEntry::read(&mut r)?;
    r.finish("MerkleTreeLeaf")?;
    Ok(e)
}

/// Parses `ASN.1Cert certificate_chain<0..2^24-1>` (the `extra_data` of an `x509_entry`).
pub fn parse_cert_chain(data: &[u8]) -> Result<Vec<Vec<u8>>, ParseError> {
    let mut r = Reader::new(data);
    let list = r.vec(3, "certificate_chain")?;
    r.finish("certificate_chain")?;
    read_cert_list(list)
}

fn read_cert_list(list: &[u8]) -> Result<Vec<Vec<u8>>, ParseError> {
    let mut r = Reader::new(list);
    let mut out = Vec::new();
    while r.remaining() > 0 {
        out.push(r.vec(3, "ASN.1Cert")?.to_vec());
    }
    Ok(out)
}

/// Parses a `PrecertChainEntry` (the `extra_data` of a `precert_entry`):
/// `ASN.1Cert pre_certificate; ASN.1Cert precertificate_chain<0..2^24-1>`.
pub fn parse_precert_chain_entry(data: &[u8]) -> Result<(Vec<u8>, Vec<Vec<u8>>), ParseError> {
    let mut r = Reader::new(data);
    let pre = r.vec(3, "PrecertChainEntry.pre_certificate")?.to_vec();
    let list = r.vec(3, "PrecertChainEntry.precertificate_chain")?;
    r.finish("PrecertChainEntry")?;
    Ok((pre, read_cert_list(list)?))
}

/// The certificates that come with an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chain {
    /// RFC 6962: the chain's DER certificates.
    Certs(Vec<Vec<u8>>),
    /// static-ct-api: SHA-256 fingerprints of the chain, fetched from `issuer/<hex>`.
    Fingerprints(Vec<Hash>),
}

/// One log entry, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Index in the log.
    pub index: u64,
    /// SCT timestamp.
    pub timestamp_ms: u64,
    /// Entry type.
    pub entry_type: EntryType,
    /// The certificate (x509) or the precertificate (precert) DER.
    pub cert_der: Vec<u8>,
    /// Issuer key hash of a precert entry.
    pub issuer_key_hash: Option<Hash>,
    /// `PreCert.tbs_certificate` of a precert entry (covered by the leaf hash, unlike
    /// `cert_der`): checked against `cert_der` before the entry is stored
    /// ([`crate::precert::check_precert`]).
    pub precert_tbs: Option<Vec<u8>>,
    /// Chain certificates or fingerprints.
    pub chain: Chain,
    /// RFC 6962 leaf hash recomputed from the entry's bytes.
    pub leaf_hash: Hash,
}

/// Builds a [`LogEntry`] from a `get-entries` element (decoded `leaf_input` and `extra_data`).
pub fn entry_from_rfc6962(
    index: u64,
    leaf_input: &[u8],
    extra_data: &[u8],
) -> Result<LogEntry, ParseError> {
    let te = parse_merkle_tree_leaf(leaf_input)?;
    let (cert_der, chain, precert_tbs) = match te.entry_type {
        EntryType::X509 => (te.signed_der, parse_cert_chain(extra_data)?, None),
        EntryType::Precert => {
            let (pre, chain) = parse_precert_chain_entry(extra_data)?;
            (pre, chain, Some(te.signed_der))
        }
    };
    Ok(LogEntry {
        index,
        timestamp_ms: te.timestamp_ms,
        entry_type: te.entry_type,
        cert_der,
        issuer_key_hash: te.issuer_key_hash,
        precert_tbs,
        chain: Chain::Certs(chain),
        leaf_hash: leaf_hash(leaf_input),
    })
}

/// Parses the `TileLeaf` records of a static-ct-api data tile whose first entry has index
/// `first_index`. Checks the `leaf_index` extension when present.
pub fn parse_data_tile(tile: &[u8], first_index: u64) -> Result<Vec<LogEntry>, ParseError> {
    let mut r = Reader::new(tile);
    let mut out = Vec::with_capacity(256);
    while r.remaining() > 0 {
        let index = first_index + out.len() as u64;
        let start = r.position();
        let te = TimestampedEntry::read(&mut r)?;
        let te_bytes = r.data().get(start..r.position()).unwrap_or_default();
        let leaf_hash = leaf_hash_of_entry(te_bytes);
        if let Some(li) = te.leaf_index_extension()? {
            if li != index {
                return Err(ParseError::invalid(
                    "leaf_index extension",
                    format!("entry at position {index} says {li}"),
                ));
            }
        }
        let (cert_der, precert_tbs) = match te.entry_type {
            EntryType::X509 => (te.signed_der, None),
            EntryType::Precert => (
                r.vec(3, "TileLeaf.pre_certificate")?.to_vec(),
                Some(te.signed_der),
            ),
        };
        let fps = r.vec(2, "TileLeaf.certificate_chain")?;
        if fps.len() % 32 != 0 {
            return Err(ParseError::invalid(
                "TileLeaf.certificate_chain",
                "not a list of 32-byte fingerprints",
            ));
        }
        let chain = fps
            .chunks_exact(32)
            .map(|c| {
                let mut h = [0u8; 32];
                h.copy_from_slice(c);
                h
            })
            .collect();
        out.push(LogEntry {
            index,
            timestamp_ms: te.timestamp_ms,
            entry_type: te.entry_type,
            cert_der,
            issuer_key_hash: te.issuer_key_hash,
            precert_tbs,
            chain: Chain::Fingerprints(chain),
            leaf_hash,
        });
    }
    Ok(out)
}

/// Encodes one `TileLeaf` (for generated logs: benchmarks and tests).
pub fn encode_tile_leaf(
    out: &mut Vec<u8>,
    timestamp_ms: u64,
    cert_der: &[u8],
    index: u64,
    chain: &[Hash],
) -> Hash {
    let start = out.len();
    out.extend_from_slice(&timestamp_ms.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    crate::tls::put_vec(out, 3, cert_der);
    let idx = index.to_be_bytes();
    let ext = [0u8, 0, 5, idx[3], idx[4], idx[5], idx[6], idx[7]];
    crate::tls::put_vec(out, 2, &ext);
    let hash = leaf_hash_of_entry(out.get(start..).unwrap_or_default());
    let fps: Vec<u8> = chain.iter().flatten().copied().collect();
    crate::tls::put_vec(out, 2, &fps);
    hash
}
