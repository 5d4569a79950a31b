//! Binding a precert entry's stored certificates to its Merkle leaf.
//!
//! A `precert_entry` leaf (RFC 6962 §3.4) covers only `PreCert { issuer_key_hash,
//! tbs_certificate }` (§3.2); the precertificate DER and its chain come in `extra_data` (§4.6,
//! `PrecertChainEntry`) or the static-ct-api `TileLeaf.pre_certificate` / `certificate_chain`,
//! which the leaf hash does not cover. So before an entry is stored as verified, its
//! precertificate and issuer are checked against the leaf:
//! - the precertificate's TBSCertificate without the poison extension must be the leaf's
//!   `tbs_certificate` (§3.2);
//! - the leaf's `issuer_key_hash` must be SHA-256 of the issuer's SubjectPublicKeyInfo (§3.2),
//!   the issuer being `chain[0]`, or `chain[1]` when `chain[0]` is a Precertificate Signing
//!   Certificate (§3.1).
//!
//! When a Precertificate Signing Certificate issued the precertificate, §3.2 has the log change
//! the TBS's `issuer` and Authority Key Identifier extension to those of the final issuer. The
//! exact encoding of the rewritten AKI is the log's choice (key identifier only, or with issuer
//! and serial), so rather than rebuilding it, both TBSs are compared with `issuer` and the AKI
//! extension removed. That is still a binding check: every other field (serial, validity,
//! subject, key, all other extensions) must match byte for byte, and the final issuer itself is
//! bound by `issuer_key_hash`, checked against `chain[1]`.

use certhist_x509::der::{self, children, read_tlv, Tlv};
use sha2::{Digest, Sha256};

use crate::Hash;

/// Content octets of OID 1.3.6.1.4.1.11129.2.4.4, the Precertificate Signing Certificate
/// extended key usage (RFC 6962 §3.1).
const OID_PRECERT_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x04];
/// Content octets of OID 2.5.29.37, extendedKeyUsage (RFC 5280 §4.2.1.12).
const OID_EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
/// Content octets of OID 2.5.29.35, authorityKeyIdentifier (RFC 5280 §4.2.1.1).
const OID_AUTHORITY_KEY_ID: &[u8] = &[0x55, 0x1d, 0x23];

/// What the check needs from a chain certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IssuerInfo {
    /// SHA-256 of the certificate's SubjectPublicKeyInfo (what `issuer_key_hash` holds).
    pub spki_sha256: Hash,
    /// The certificate has the Precertificate Signing Certificate EKU (RFC 6962 §3.1).
    pub precert_signing: bool,
}

impl IssuerInfo {
    /// Reads a chain certificate's DER. `None` when it is not a well-formed certificate with a
    /// SubjectPublicKeyInfo.
    pub fn from_der(cert_der: &[u8]) -> Option<Self> {
        let tbs = tbs_of(cert_der)?;
        let fields = tbs_fields(tbs.content)?;
        let spki = fields.spki?;
        let mut precert_signing = false;
        if let Some(exts) = fields.extensions {
            for ext in exts {
                let (oid, value) = extension_oid_value(ext.content)?;
                if oid == OID_EXT_KEY_USAGE {
                    // ExtKeyUsageSyntax ::= SEQUENCE SIZE (1..MAX) OF KeyPurposeId
                    let (seq, _) = read_tlv(value)?;
                    precert_signing = children(seq.content)?
                        .iter()
                        .any(|p| p.tag == [0x06] && p.content == OID_PRECERT_SIGNING);
                }
            }
        }
        Some(IssuerInfo {
            spki_sha256: Sha256::digest(spki.raw).into(),
            precert_signing,
        })
    }
}

/// Checks one precert entry: `leaf_tbs` and `issuer_key_hash` from its leaf, the stored
/// precertificate's DER and the SHA-256 of its TBS without CT extensions (as computed by
/// `certhist_x509::parse_der`; `None` → computed here), and the first chain
/// certificates. Returns what differed.
pub fn check_precert(
    leaf_tbs: &[u8],
    issuer_key_hash: &Hash,
    precert_der: &[u8],
    precert_tbs_noct_sha256: Option<Hash>,
    chain: &[IssuerInfo],
) -> Result<(), String> {
    let Some(first) = chain.first() else {
        return Err("precertificate chain is empty: no issuer to check issuer_key_hash".into());
    };
    let issuer = if first.precert_signing {
        chain.get(1).ok_or_else(|| {
            "chain ends at a Precertificate Signing Certificate: no final issuer".to_owned()
        })?
    } else {
        first
    };
    if issuer.spki_sha256 != *issuer_key_hash {
        return Err(format!(
            "leaf issuer_key_hash {} is not the SHA-256 {} of the {} issuer's key",
            hex::encode(issuer_key_hash),
            hex::encode(issuer.spki_sha256),
            if first.precert_signing {
                "chain[1]"
            } else {
                "chain[0]"
            }
        ));
    }
    let precert_tbs = certhist_x509::tbs_noct(precert_der);
    if first.precert_signing {
        let ours = precert_tbs.as_deref().and_then(tbs_without_issuer_and_aki);
        let theirs = tbs_without_issuer_and_aki(leaf_tbs);
        if ours.is_none() || ours != theirs {
            return Err(
                "pre_certificate's TBS (poison, issuer and AKI removed) differs from the leaf's \
                 tbs_certificate (issuer and AKI removed; Precertificate Signing Certificate)"
                    .into(),
            );
        }
        return Ok(());
    }
    let ours = precert_tbs_noct_sha256
        .or_else(|| precert_tbs.map(|t| Sha256::digest(&t).into()))
        .ok_or_else(|| "pre_certificate has no TBSCertificate".to_owned())?;
    let theirs: Hash = Sha256::digest(leaf_tbs).into();
    if ours != theirs {
        return Err(format!(
            "pre_certificate's TBS without poison hashes to {}, the leaf's tbs_certificate to {}",
            hex::encode(ours),
            hex::encode(theirs)
        ));
    }
    Ok(())
}

/// A TBSCertificate re-encoded without its `issuer` field and without the authorityKeyIdentifier
/// extension (the two fields RFC 6962 §3.2 rewrites for a Precertificate Signing Certificate).
/// `None` when `tbs` is not a well-formed TBSCertificate.
pub fn tbs_without_issuer_and_aki(tbs: &[u8]) -> Option<Vec<u8>> {
    let (seq, rest) = read_tlv(tbs)?;
    if seq.tag != [0x30] || !rest.is_empty() {
        return None;
    }
    let fields = children(seq.content)?;
    let issuer_at = tbs_fields(seq.content)?.issuer_at;
    let mut body = Vec::with_capacity(seq.content.len());
    for (i, f) in fields.iter().enumerate() {
        if i == issuer_at {
            continue;
        }
        if f.tag != [0xa3] {
            body.extend_from_slice(f.raw);
            continue;
        }
        let (list, _) = read_tlv(f.content)?;
        let mut kept = Vec::with_capacity(list.content.len());
        for ext in children(list.content)? {
            let (oid, _) = extension_oid_value(ext.content)?;
            if oid != OID_AUTHORITY_KEY_ID {
                kept.extend_from_slice(ext.raw);
            }
        }
        let mut inner = Vec::with_capacity(kept.len() + 4);
        push_tlv(&mut inner, 0x30, &kept);
        push_tlv(&mut body, 0xa3, &inner);
    }
    let mut out = Vec::with_capacity(body.len() + 4);
    push_tlv(&mut out, 0x30, &body);
    Some(out)
}

/// The TBSCertificate element of a Certificate (RFC 5280 §4.1).
fn tbs_of(cert_der: &[u8]) -> Option<Tlv<'_>> {
    let (cert, _) = read_tlv(cert_der)?;
    if cert.tag != [0x30] {
        return None;
    }
    let (tbs, _) = read_tlv(cert.content)?;
    (tbs.tag == [0x30]).then_some(tbs)
}

/// Positions of the TBSCertificate fields this module needs (RFC 5280 §4.1).
struct TbsFields<'a> {
    /// Index of `issuer` among the TBS elements.
    issuer_at: usize,
    spki: Option<Tlv<'a>>,
    extensions: Option<Vec<Tlv<'a>>>,
}

fn tbs_fields(tbs_content: &[u8]) -> Option<TbsFields<'_>> {
    let fields = children(tbs_content)?;
    // version [0] EXPLICIT is optional; then serialNumber, signature, issuer, validity,
    // subject, subjectPublicKeyInfo.
    let base = usize::from(fields.first()?.tag == [0xa0]);
    let issuer_at = base + 2;
    if fields.get(issuer_at)?.tag != [0x30] {
        return None;
    }
    let spki = fields.get(base + 5).copied().filter(|t| t.tag == [0x30]);
    let extensions = match fields.iter().find(|f| f.tag == [0xa3]) {
        Some(f) => Some(children(read_tlv(f.content)?.0.content)?),
        None => None,
    };
    Some(TbsFields {
        issuer_at,
        spki,
        extensions,
    })
}

/// `Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }`:
/// the OID's content octets and the extnValue's content octets.
fn extension_oid_value(ext_content: &[u8]) -> Option<(&[u8], &[u8])> {
    let parts = children(ext_content)?;
    let oid = parts.first().filter(|t| t.tag == [0x06])?;
    let value = parts.last().filter(|t| t.tag == [0x04])?;
    Some((oid.content, value.content))
}

/// Appends a one-octet tag, a minimal DER length (X.690 §10.1) and the contents.
fn push_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    der::push_tlv(out, &[tag], content);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_input_is_none_not_a_panic() {
        for bad in [
            &[][..],
            &[0x30],
            &[0x30, 0x85, 0, 0, 0, 0, 1],
            &[0x30, 0x05, 0x02, 0x01],
            &[0x1f, 0x01, 0x00],
        ] {
            assert!(IssuerInfo::from_der(bad).is_none());
            assert!(tbs_without_issuer_and_aki(bad).is_none());
        }
    }

    #[test]
    fn empty_chain_and_bad_precert_are_reported() {
        let e = check_precert(&[0x30, 0], &[0; 32], &[], None, &[]).unwrap_err();
        assert!(e.contains("chain is empty"), "{e}");
        let info = IssuerInfo {
            spki_sha256: [7; 32],
            precert_signing: false,
        };
        let e = check_precert(&[0x30, 0], &[7; 32], &[1, 2], None, &[info]).unwrap_err();
        assert!(e.contains("no TBSCertificate"), "{e}");
    }
}
