//! The normalised certificate record: one per distinct DER.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Serial, Sha1, Sha256};

/// A certificate as stored: hashes and DER always, parsed fields when the DER parses.
///
/// Every text field is attacker-controlled (it comes from the certificate): never trust it for
/// markup, shell or SQL without escaping or parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertRecord {
    /// SHA-1 of the DER: the passive-SSL key.
    pub sha1: Sha1,
    /// SHA-256 of the DER.
    pub sha256: Sha256,
    /// The certificate exactly as received.
    pub der: Vec<u8>,
    /// Why the DER did not parse (the record then has hashes and DER only). `None` when it parsed.
    pub parse_error: Option<String>,
    /// Serial number, normalised (big-endian magnitude, no leading zero bytes).
    pub serial: Option<Serial>,
    /// True when the DER INTEGER was negative (malformed but seen in the wild).
    pub serial_negative: bool,
    /// Subject distinguished name.
    pub subject: DistinguishedName,
    /// Issuer distinguished name.
    pub issuer: DistinguishedName,
    /// Start of validity.
    pub not_before: Option<DateTime<Utc>>,
    /// End of validity.
    pub not_after: Option<DateTime<Utc>>,
    /// SHA-256 of the DER SubjectPublicKeyInfo (pivot "same key").
    pub spki_sha256: Option<Sha256>,
    /// SHA-1 of the subjectPublicKey BIT STRING contents: the OCSP `issuerKeyHash` (RFC 6960 §4.1.1)
    /// of certificates this one issued.
    pub key_sha1: Option<Sha1>,
    /// Public key algorithm: `rsa`, `ec`, `ed25519`, `ed448`, `dsa`, or the dotted OID.
    pub key_algorithm: Option<String>,
    /// Key size in bits (RSA modulus, EC field size).
    pub key_bits: Option<i32>,
    /// Signature algorithm name (`sha256WithRSAEncryption`, `ecdsa-with-SHA256`, …) or dotted OID.
    pub signature_algorithm: Option<String>,
    /// basicConstraints cA = TRUE.
    pub is_ca: bool,
    /// Has the CT poison extension (1.3.6.1.4.1.11129.2.4.3, RFC 6962 §3.1).
    pub is_precert: bool,
    /// SHA-1 of the issuer Name DER: the OCSP `issuerNameHash`.
    pub issuer_name_hash: Option<Sha1>,
    /// SHA-1 of the subject Name DER: equals `issuer_name_hash` of certificates this one issued.
    pub subject_name_hash: Option<Sha1>,
    /// authorityKeyIdentifier keyIdentifier.
    pub authority_key_id: Option<Vec<u8>>,
    /// subjectKeyIdentifier.
    pub subject_key_id: Option<Vec<u8>>,
    /// SHA-1 of the issuer's public key (the OCSP `issuerKeyHash`), when the issuer is known.
    pub issuer_key_hash: Option<Sha1>,
    /// SHA-256 of the TBSCertificate with the CT poison and SCT-list extensions removed: equal for
    /// a precertificate and its final certificate (RFC 6962 §3.2), so it links and deduplicates them.
    pub tbs_noct_sha256: Option<Sha256>,
    /// Names the certificate is for: subject CNs and emails, SAN DNS/IP/email/URI. Lower-cased,
    /// deduplicated.
    pub names: Vec<CertName>,
}

/// A distinguished name as one RFC 4514-style string plus the parts analysts pivot on.
/// Multi-valued parts keep the first value in its field (all CNs are also in `names`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DistinguishedName {
    /// The whole name in RFC 4514 form (last RDN first, `,` separators, unknown attribute types as
    /// dotted OIDs), e.g. `CN=example.com,O=Example Inc,C=US`.
    pub dn: Option<String>,
    /// commonName.
    pub cn: Option<String>,
    /// organizationName.
    pub o: Option<String>,
    /// organizationalUnitName.
    pub ou: Option<String>,
    /// countryName.
    pub c: Option<String>,
    /// localityName.
    pub l: Option<String>,
    /// stateOrProvinceName.
    pub st: Option<String>,
    /// emailAddress (PKCS #9).
    pub email: Option<String>,
}

/// One name of a certificate.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
pub struct CertName {
    /// Lower-cased name (IP addresses in canonical text form).
    pub name: String,
    /// Where in the certificate the name came from.
    pub kind: NameKind,
    /// eTLD+1 of a DNS-like name (`www.example.co.uk` → `example.co.uk`); `None` for IPs, URIs,
    /// emails' non-domain parts and names without a public suffix.
    pub registered_domain: Option<String>,
}

/// Kind of a certificate name. Stored as one bit of `certificate_names.kinds` (a name that is
/// both the subject CN and a SAN dNSName is one row); the view `certificate_name_kinds` and
/// [`NameKind::as_str`] give the text form.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum NameKind {
    /// Subject commonName.
    Cn,
    /// SAN dNSName.
    Dns,
    /// SAN iPAddress.
    Ip,
    /// SAN rfc822Name or subject emailAddress.
    Email,
    /// SAN uniformResourceIdentifier.
    Uri,
}

impl NameKind {
    /// The text stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            NameKind::Cn => "cn",
            NameKind::Dns => "dns",
            NameKind::Ip => "ip",
            NameKind::Email => "email",
            NameKind::Uri => "uri",
        }
    }

    /// Every kind, in [`NameKind::as_str`] order.
    pub const ALL: [NameKind; 5] = [
        NameKind::Cn,
        NameKind::Dns,
        NameKind::Email,
        NameKind::Ip,
        NameKind::Uri,
    ];

    /// Its bit in `certificate_names.kinds`.
    pub fn bit(self) -> i16 {
        match self {
            NameKind::Cn => 1,
            NameKind::Dns => 2,
            NameKind::Ip => 4,
            NameKind::Email => 8,
            NameKind::Uri => 16,
        }
    }

    /// Reads the stored text.
    pub fn from_db(text: &str) -> Option<Self> {
        Some(match text {
            "cn" => NameKind::Cn,
            "dns" => NameKind::Dns,
            "ip" => NameKind::Ip,
            "email" => NameKind::Email,
            "uri" => NameKind::Uri,
            _ => return None,
        })
    }
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl CertRecord {
    /// A record for DER that could not be parsed: hashes and DER only, with the error.
    pub fn unparsed(sha1: Sha1, sha256: Sha256, der: Vec<u8>, error: String) -> Self {
        CertRecord {
            sha1,
            sha256,
            der,
            parse_error: Some(error),
            ..CertRecord::default()
        }
    }
}
