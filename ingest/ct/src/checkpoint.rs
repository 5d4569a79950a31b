//! Checkpoints (c2sp.org/tlog-checkpoint, signed notes per c2sp.org/signed-note) and the
//! static-ct-api `RFC6962NoteSignature`: key ID = the first 4 bytes of `SHA-256(name || "\n" || 0x05 || log ID)`;
//! signature = uint64 timestamp || TLS `digitally-signed` over the RFC 6962 §3.5 TreeHeadSignature.

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::sig::PublicKey;
use crate::sth::{b64, b64_hash, TreeHead};
use crate::tls::Reader;
use crate::{Hash, ParseError};

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// Key name.
    pub name: String,
    /// The 4-byte key ID.
    pub key_id: [u8; 4],
    /// The signature bytes after the key ID.
    pub signature: Vec<u8>,
}

/// A parsed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Origin line (the log's name).
    pub origin: String,
    /// Tree size.
    pub tree_size: u64,
    /// Root hash.
    pub root: Hash,
    /// Extension lines, if any.
    pub extensions: Vec<String>,
    /// Signature lines.
    pub signatures: Vec<NoteSignature>,
}

/// The `RFC6962NoteSignature` key ID of a log (`name` is the origin).
pub fn rfc6962_key_id(name: &str, log_id: &Hash) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([0x05]);
    h.update(log_id);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

impl Checkpoint {
    /// Parses a checkpoint note.
    pub fn parse(note: &[u8]) -> Result<Self, ParseError> {
        let text = std::str::from_utf8(note)
            .map_err(|_| ParseError::invalid("checkpoint", "not UTF-8"))?;
        let Some(split) = text.find("\n\n") else {
            return Err(ParseError::invalid(
                "checkpoint",
                "no blank line before signatures",
            ));
        };
        let (body, sigs) = (&text[..split], &text[split + 2..]);
        let mut lines = body.split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(ParseError::invalid("checkpoint", "empty origin"));
        }
        let size_line = lines.next().unwrap_or_default();
        if size_line.is_empty()
            || !size_line.bytes().all(|b| b.is_ascii_digit())
            || (size_line.len() > 1 && size_line.starts_with('0'))
        {
            return Err(ParseError::invalid(
                "checkpoint",
                format!("bad tree size {size_line:?}"),
            ));
        }
        let tree_size = size_line
            .parse()
            .map_err(|_| ParseError::invalid("checkpoint", "tree size overflows"))?;
        let root = b64_hash(lines.next().unwrap_or_default(), "checkpoint root")?;
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(ParseError::invalid("checkpoint", "empty extension line"));
        }
        if !sigs.ends_with('\n') {
            return Err(ParseError::invalid(
                "checkpoint",
                "signature block does not end with a newline",
            ));
        }
        let mut signatures = Vec::new();
        for line in sigs[..sigs.len() - 1].split('\n') {
            let Some(rest) = line.strip_prefix("\u{2014} ") else {
                return Err(ParseError::invalid(
                    "checkpoint",
                    format!("bad signature line {line:?}"),
                ));
            };
            let Some((name, b)) = rest.split_once(' ') else {
                return Err(ParseError::invalid(
                    "checkpoint",
                    "signature line without key name",
                ));
            };
            let raw = b64(b, "note signature")?;
            if raw.len() < 5 || name.is_empty() {
                return Err(ParseError::invalid("checkpoint", "signature too short"));
            }
            signatures.push(NoteSignature {
                name: name.to_owned(),
                key_id: [raw[0], raw[1], raw[2], raw[3]],
                signature: raw[4..].to_vec(),
            });
        }
        if signatures.is_empty() {
            return Err(ParseError::invalid("checkpoint", "no signatures"));
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            tree_size,
            root,
            extensions,
            signatures,
        })
    }

    /// The tree head of the log's own `RFC6962NoteSignature` (name = origin), if present: its
    /// timestamp and `digitally-signed` bytes. Not verified.
    pub fn rfc6962_tree_head(&self, log_id: Option<&Hash>) -> Result<TreeHead, String> {
        let sig = self
            .signatures
            .iter()
            .find(|s| {
                s.name == self.origin
                    && log_id.is_none_or(|id| s.key_id == rfc6962_key_id(&self.origin, id))
            })
            .ok_or_else(|| format!("no signature by {:?} with the log's key ID", self.origin))?;
        let mut r = Reader::new(&sig.signature);
        let timestamp_ms = r
            .uint(8, "RFC6962NoteSignature.timestamp")
            .map_err(|e| e.to_string())?;
        Ok(TreeHead {
            tree_size: self.tree_size,
            timestamp_ms,
            root: self.root,
            signature: sig.signature.get(8..).unwrap_or_default().to_vec(),
        })
    }

    /// Verifies the log's `RFC6962NoteSignature` under `key` and returns the tree head.
    pub fn verify_rfc6962(&self, key: &PublicKey) -> Result<TreeHead, String> {
        let th = self.rfc6962_tree_head(Some(&key.log_id()))?;
        th.verify(key)?;
        Ok(th)
    }
}

/// Writes a checkpoint signed with an `RFC6962NoteSignature` (`ds` = TLS digitally-signed bytes
/// over the TreeHeadSignature of `timestamp_ms`, `tree_size`, `root`).
pub fn encode_checkpoint(
    origin: &str,
    tree_size: u64,
    root: &Hash,
    log_id: &Hash,
    timestamp_ms: u64,
    ds: &[u8],
) -> String {
    let b = base64::engine::general_purpose::STANDARD;
    let mut sig = rfc6962_key_id(origin, log_id).to_vec();
    sig.extend_from_slice(&timestamp_ms.to_be_bytes());
    sig.extend_from_slice(ds);
    format!(
        "{origin}\n{tree_size}\n{}\n\n\u{2014} {origin} {}\n",
        b.encode(root),
        b.encode(sig)
    )
}
