//! Field search: which certificates have this name, serial, issuer or key.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::views::CertSummary;

/// One search hit: the value that matched and the certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct SearchItem {
    /// The value that matched (a name, an issuer CN, a serial in hex, …).
    pub matched: String,
    /// The certificate.
    pub cert: CertSummary,
}

/// A field certificates can be searched by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SearchField {
    /// Subject CN or any SAN.
    Name,
    /// Subject CN only.
    Cn,
    /// SAN entries (DNS, IP, email, URI).
    San,
    /// Email (subject emailAddress or SAN rfc822Name).
    Email,
    /// eTLD+1 of a name.
    RegisteredDomain,
    /// Serial number (any notation).
    Serial,
    /// Issuer CN.
    IssuerCn,
    /// Issuer O.
    IssuerO,
    /// Subject O.
    SubjectO,
    /// Subject OU.
    SubjectOu,
    /// SHA-256 of the SubjectPublicKeyInfo.
    Spki,
}

impl SearchField {
    /// Every field, in the order help texts list them.
    pub const ALL: [SearchField; 11] = [
        SearchField::Name,
        SearchField::Cn,
        SearchField::San,
        SearchField::Email,
        SearchField::RegisteredDomain,
        SearchField::Serial,
        SearchField::IssuerCn,
        SearchField::IssuerO,
        SearchField::SubjectO,
        SearchField::SubjectOu,
        SearchField::Spki,
    ];

    /// The user-facing name (`registered-domain`, `issuer-cn`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            SearchField::Name => "name",
            SearchField::Cn => "cn",
            SearchField::San => "san",
            SearchField::Email => "email",
            SearchField::RegisteredDomain => "registered-domain",
            SearchField::Serial => "serial",
            SearchField::IssuerCn => "issuer-cn",
            SearchField::IssuerO => "issuer-o",
            SearchField::SubjectO => "subject-o",
            SearchField::SubjectOu => "subject-ou",
            SearchField::Spki => "spki",
        }
    }

    /// Reads a user-facing name, case-insensitively; `None` when unknown.
    pub fn from_name(text: &str) -> Option<SearchField> {
        SearchField::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

impl std::fmt::Display for SearchField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a search value is read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MatchMode {
    /// Read the notation: `*.suffix`, `prefix*`, `*contains*`, otherwise exact.
    #[default]
    Auto,
    /// The whole value.
    Exact,
    /// Values starting with it.
    Prefix,
    /// Values ending with it.
    Suffix,
    /// Values containing it (at least 3 characters).
    Contains,
    /// A POSIX regular expression (case-insensitive).
    Regex,
}

impl MatchMode {
    /// Every mode.
    pub const ALL: [MatchMode; 6] = [
        MatchMode::Auto,
        MatchMode::Exact,
        MatchMode::Prefix,
        MatchMode::Suffix,
        MatchMode::Contains,
        MatchMode::Regex,
    ];

    /// The user-facing name.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchMode::Auto => "auto",
            MatchMode::Exact => "exact",
            MatchMode::Prefix => "prefix",
            MatchMode::Suffix => "suffix",
            MatchMode::Contains => "contains",
            MatchMode::Regex => "regex",
        }
    }

    /// Reads a user-facing name; `None` when unknown.
    pub fn from_name(text: &str) -> Option<MatchMode> {
        MatchMode::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(text.trim()))
    }
}
