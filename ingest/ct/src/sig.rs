//! Log public keys and `digitally-signed` structures (RFC 5246 §4.7) over RFC 6962 §3.5 tree heads.

use base64::Engine as _;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::SubjectPublicKeyInfoDer;
use sha2::{Digest, Sha256};

use crate::tls::Reader;
use crate::{CtError, Hash};

/// A log's public key (ECDSA P-256 or RSA, per RFC 6962 §2.1.4).
#[derive(Debug, Clone)]
pub struct PublicKey {
    spki_der: Vec<u8>,
    key: KeyKind,
}

#[derive(Debug, Clone)]
enum KeyKind {
    P256(p256::ecdsa::VerifyingKey),
    Rsa(rsa::RsaPublicKey),
}

impl PublicKey {
    /// Decodes a DER SubjectPublicKeyInfo.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, CtError> {
        use p256::pkcs8::DecodePublicKey as _;
        if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_der(der) {
            return Ok(PublicKey {
                spki_der: der.to_vec(),
                key: KeyKind::P256(k),
            });
        }
        match rsa::RsaPublicKey::from_public_key_der(der) {
            Ok(k) => Ok(PublicKey {
                spki_der: der.to_vec(),
                key: KeyKind::Rsa(k),
            }),
            Err(e) => Err(CtError::BadKey(format!(
                "not a P-256 or RSA SubjectPublicKeyInfo ({e})"
            ))),
        }
    }

    /// Decodes a key given as DER, as a PEM `PUBLIC KEY` block, or as base64 of the DER (the
    /// form of v3 log lists).
    pub fn from_text_or_der(data: &[u8]) -> Result<Self, CtError> {
        if data.first() == Some(&0x30) {
            if let Ok(k) = Self::from_spki_der(data) {
                return Ok(k);
            }
        }
        if data.windows(11).any(|w| w == b"-----BEGIN ") {
            let spki = SubjectPublicKeyInfoDer::from_pem_slice(data)
                .map_err(|e| CtError::BadKey(format!("no PEM PUBLIC KEY block: {e}")))?;
            return Self::from_spki_der(&spki);
        }
        let b64: Vec<u8> = data
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(&b64)
            .map_err(|e| CtError::BadKey(format!("not base64, PEM or DER: {e}")))?;
        Self::from_spki_der(&der)
    }

    /// Reads the key from the file `arg` names if there is one (DER, PEM or base64), else
    /// decodes `arg` itself (base64 DER or PEM text).
    pub fn from_file_or_text(arg: &str) -> Result<Self, CtError> {
        let path = std::path::Path::new(arg);
        if path.is_file() {
            let data = std::fs::read(path).map_err(|source| CtError::Io {
                path: arg.to_owned(),
                source,
            })?;
            return Self::from_text_or_der(&data);
        }
        Self::from_text_or_der(arg.as_bytes())
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The RFC 6962 §3.2 log ID: SHA-256 of the SPKI.
    pub fn log_id(&self) -> Hash {
        Sha256::digest(&self.spki_der).into()
    }

    /// Verifies a TLS `digitally-signed` struct (hash 4 = SHA-256; signature 1 = RSA PKCS#1 v1.5,
    /// 3 = ECDSA) over `message`.
    pub fn verify_digitally_signed(&self, message: &[u8], ds: &[u8]) -> Result<(), String> {
        let mut r = Reader::new(ds);
        let hash_alg = r.uint(1, "hash").map_err(|e| e.to_string())?;
        let sig_alg = r.uint(1, "signature").map_err(|e| e.to_string())?;
        let sig = r.vec(2, "signature").map_err(|e| e.to_string())?;
        r.finish("digitally-signed").map_err(|e| e.to_string())?;
        if hash_alg != 4 {
            return Err(format!("unsupported hash algorithm {hash_alg}"));
        }
        use p256::ecdsa::signature::Verifier as _;
        match (&self.key, sig_alg) {
            (KeyKind::P256(k), 3) => {
                let s = p256::ecdsa::DerSignature::from_bytes(sig)
                    .map_err(|e| format!("bad ECDSA signature: {e}"))?;
                k.verify(message, &s)
                    .map_err(|_| "ECDSA signature does not verify".to_owned())
            }
            (KeyKind::Rsa(k), 1) => {
                let vk = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(k.clone());
                let s = rsa::pkcs1v15::Signature::try_from(sig)
                    .map_err(|e| format!("bad RSA signature: {e}"))?;
                vk.verify(message, &s)
                    .map_err(|_| "RSA signature does not verify".to_owned())
            }
            (_, a) => Err(format!(
                "signature algorithm {a} does not match the key type"
            )),
        }
    }
}

/// The RFC 6962 §3.5 `TreeHeadSignature` input: version v1, signature_type tree_hash, timestamp,
/// tree_size, root.
pub fn tree_head_signature_input(timestamp_ms: u64, tree_size: u64, root: &Hash) -> Vec<u8> {
    let mut m = Vec::with_capacity(50);
    m.push(0);
    m.push(1);
    m.extend_from_slice(&timestamp_ms.to_be_bytes());
    m.extend_from_slice(&tree_size.to_be_bytes());
    m.extend_from_slice(root);
    m
}
