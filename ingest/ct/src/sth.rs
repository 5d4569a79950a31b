//! Tree heads: RFC 6962 §4.3 `get-sth` JSON and the common [`TreeHead`] type, plus the JSON bodies
//! of `get-entries` (§4.6), `get-sth-consistency` (§4.4) and `get-proof-by-hash` (§4.5).

use base64::Engine as _;
use serde::Deserialize;

use crate::sig::{tree_head_signature_input, PublicKey};
use crate::{Hash, ParseError};

/// A log's tree head (from `get-sth` or a checkpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeHead {
    /// Number of entries.
    pub tree_size: u64,
    /// Milliseconds since the epoch.
    pub timestamp_ms: u64,
    /// MTH of the tree.
    pub root: Hash,
    /// The `digitally-signed` TreeHeadSignature (empty if none).
    pub signature: Vec<u8>,
}

impl TreeHead {
    /// Checks the signature (RFC 6962 §3.5) under `key`.
    pub fn verify(&self, key: &PublicKey) -> Result<(), String> {
        key.verify_digitally_signed(
            &tree_head_signature_input(self.timestamp_ms, self.tree_size, &self.root),
            &self.signature,
        )
    }
}

pub(crate) fn b64(s: &str, what: &'static str) -> Result<Vec<u8>, ParseError> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| ParseError::invalid(what, format!("bad base64: {e}")))
}

pub(crate) fn b64_hash(s: &str, what: &'static str) -> Result<Hash, ParseError> {
    let v = b64(s, what)?;
    v.try_into()
        .map_err(|v: Vec<u8>| ParseError::invalid(what, format!("{} bytes, not 32", v.len())))
}

fn json<'a, T: Deserialize<'a>>(body: &'a [u8], what: &'static str) -> Result<T, ParseError> {
    serde_json::from_slice(body).map_err(|e| ParseError::invalid(what, format!("bad JSON: {e}")))
}

#[derive(Deserialize)]
struct SthJson {
    tree_size: u64,
    timestamp: u64,
    sha256_root_hash: String,
    tree_head_signature: String,
}

/// Parses a `get-sth` response body.
pub fn parse_get_sth(body: &[u8]) -> Result<TreeHead, ParseError> {
    let s: SthJson = json(body, "get-sth")?;
    Ok(TreeHead {
        tree_size: s.tree_size,
        timestamp_ms: s.timestamp,
        root: b64_hash(&s.sha256_root_hash, "sha256_root_hash")?,
        signature: b64(&s.tree_head_signature, "tree_head_signature")?,
    })
}

#[derive(Deserialize)]
struct EntriesJson {
    entries: Vec<EntryJson>,
}

#[derive(Deserialize)]
struct EntryJson {
    leaf_input: String,
    extra_data: String,
}

/// A decoded `get-entries` element: (leaf_input, extra_data).
pub type RawEntry = (Vec<u8>, Vec<u8>);

/// A decoded `get-entry-and-proof` body: (leaf_input, extra_data, audit_path).
pub type EntryAndProof = (Vec<u8>, Vec<u8>, Vec<Hash>);

/// Parses a `get-entries` response body into (leaf_input, extra_data) pairs.
pub fn parse_get_entries(body: &[u8]) -> Result<Vec<RawEntry>, ParseError> {
    let e: EntriesJson = json(body, "get-entries")?;
    e.entries
        .into_iter()
        .map(|x| {
            Ok((
                b64(&x.leaf_input, "leaf_input")?,
                b64(&x.extra_data, "extra_data")?,
            ))
        })
        .collect()
}

#[derive(Deserialize)]
struct ConsistencyJson {
    consistency: Vec<String>,
}

/// Parses a `get-sth-consistency` response body.
pub fn parse_consistency(body: &[u8]) -> Result<Vec<Hash>, ParseError> {
    let c: ConsistencyJson = json(body, "get-sth-consistency")?;
    c.consistency
        .iter()
        .map(|s| b64_hash(s, "consistency"))
        .collect()
}

#[derive(Deserialize)]
struct ProofJson {
    leaf_index: u64,
    audit_path: Vec<String>,
}

/// Parses a `get-proof-by-hash` response body: (leaf_index, audit_path).
pub fn parse_proof_by_hash(body: &[u8]) -> Result<(u64, Vec<Hash>), ParseError> {
    let p: ProofJson = json(body, "get-proof-by-hash")?;
    let path = p
        .audit_path
        .iter()
        .map(|s| b64_hash(s, "audit_path"))
        .collect::<Result<_, _>>()?;
    Ok((p.leaf_index, path))
}

#[derive(Deserialize)]
struct EntryAndProofJson {
    leaf_input: String,
    extra_data: String,
    audit_path: Vec<String>,
}

/// Parses a `get-entry-and-proof` body: (leaf_input, extra_data, audit_path).
pub fn parse_entry_and_proof(body: &[u8]) -> Result<EntryAndProof, ParseError> {
    let p: EntryAndProofJson = json(body, "get-entry-and-proof")?;
    let path = p
        .audit_path
        .iter()
        .map(|s| b64_hash(s, "audit_path"))
        .collect::<Result<_, _>>()?;
    Ok((
        b64(&p.leaf_input, "leaf_input")?,
        b64(&p.extra_data, "extra_data")?,
        path,
    ))
}
