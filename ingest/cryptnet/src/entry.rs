//! One cache entry: MetaData + Content + the CertIDs decoded from its URL.

use serde::Serialize;

use certhist_model::views::cryptnet::{CacheContentKind, CacheEntryKind};

use crate::content::{classify, Content};
use crate::metadata::{check_name, parse_metadata, Metadata, NameCheck};
use crate::ocsp::{decode_get_url, CertId};

/// Where an entry came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Origin {
    /// A CryptnetUrlCache MetaData file.
    Metadata,
    /// A line of a `certutil -urlcache` dump.
    CertutilDump,
    /// A line of a plain URL list.
    UrlList,
}

/// One entry of a cache, dump or URL list.
#[derive(Clone, Debug)]
pub struct CacheEntry {
    /// File path (or `file:line`) it was read from.
    pub source: String,
    /// Kind of input.
    pub origin: Origin,
    /// The URL, when known (absent when the MetaData is unreadable).
    pub url: Option<String>,
    /// Parsed MetaData.
    pub metadata: Option<Metadata>,
    /// File-name check against the URL.
    pub name_check: Option<NameCheck>,
    /// The Content file (`None` for dumps and URL lists).
    pub content: Option<Content>,
    /// OCSP responder part of the URL, when it carries a request.
    pub responder: Option<String>,
    /// CertIDs decoded from the URL.
    pub cert_ids: Vec<CertId>,
    /// Problems found (unreadable MetaData, content/size mismatch, parse errors).
    pub errors: Vec<String>,
}

impl CacheEntry {
    /// Entry from a URL only (dump line or list line).
    pub fn from_url(source: String, origin: Origin, url: &str) -> Self {
        let mut e = CacheEntry {
            source,
            origin,
            url: Some(url.to_owned()),
            metadata: None,
            name_check: None,
            content: None,
            responder: None,
            cert_ids: Vec::new(),
            errors: Vec::new(),
        };
        e.decode_url();
        e
    }

    /// Entry from a MetaData file and its Content (`None` when the Content file is absent).
    pub fn from_files(
        source: String,
        file_name: &str,
        metadata: &[u8],
        content: Option<&[u8]>,
    ) -> Self {
        let mut e = CacheEntry {
            source,
            origin: Origin::Metadata,
            url: None,
            metadata: None,
            name_check: None,
            content: None,
            responder: None,
            cert_ids: Vec::new(),
            errors: Vec::new(),
        };
        match parse_metadata(metadata) {
            Ok(m) => {
                e.name_check = Some(check_name(file_name, &m.url));
                e.url = Some(m.url.clone());
                if m.trailing_bytes > 0 {
                    e.errors.push(format!(
                        "{} unexpected bytes after the ETag",
                        m.trailing_bytes
                    ));
                }
                e.metadata = Some(m);
            }
            Err(err) => e.errors.push(format!("MetaData: {err}")),
        }
        let c = content.map_or_else(Content::missing, classify);
        if let (Some(m), Some(bytes)) = (&e.metadata, content) {
            if u64::from(m.content_size_bytes) != bytes.len() as u64 {
                e.errors.push(format!(
                    "MetaData says Content is {} bytes, file has {}",
                    m.content_size_bytes,
                    bytes.len()
                ));
            }
        }
        if let Some(err) = &c.error {
            e.errors.push(err.clone());
        }
        e.content = Some(c);
        e.decode_url();
        e
    }

    fn decode_url(&mut self) {
        let Some(url) = &self.url else { return };
        if let Ok(d) = decode_get_url(url) {
            self.responder = Some(d.responder);
            self.cert_ids = d.cert_ids;
        }
    }

    /// The kind of object, from content, type field and URL.
    pub fn kind(&self) -> CacheEntryKind {
        if !self.cert_ids.is_empty() {
            return CacheEntryKind::Ocsp;
        }
        match self.content.as_ref().map(|c| c.kind) {
            Some(CacheContentKind::OcspResponse) => CacheEntryKind::Ocsp,
            Some(CacheContentKind::Crl) => CacheEntryKind::Crl,
            Some(CacheContentKind::Certificate) => CacheEntryKind::Cert,
            Some(CacheContentKind::Cab) => CacheEntryKind::Cab,
            _ => {
                let t = self.metadata.as_ref().map(|m| m.object_type);
                let url = self.url.as_deref().unwrap_or_default().to_ascii_lowercase();
                let path = url.split(['?', '#']).next().unwrap_or_default();
                if matches!(t, Some(5..=7)) || path.ends_with(".cab") || path.ends_with(".stl") {
                    CacheEntryKind::Cab
                } else if t == Some(2) || path.ends_with(".crl") {
                    CacheEntryKind::Crl
                } else if t == Some(3) {
                    CacheEntryKind::Ocsp
                } else if path.ends_with(".crt") || path.ends_with(".cer") || path.ends_with(".p7c")
                {
                    CacheEntryKind::Cert
                } else {
                    CacheEntryKind::Other
                }
            }
        }
    }

    /// Download time (MetaData LastDownloadTime).
    pub fn time(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.metadata.as_ref().and_then(|m| m.last_download)
    }
}
