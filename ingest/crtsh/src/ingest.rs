//! `ingest crtsh`: search crt.sh, download every certificate found, check it is what was asked
//! for, and store it.

use certhist_model::{CertRecord, Serial};
use certhist_store::Store;

use crate::client::{CrtshClient, CrtshConfig, CrtshError, MatchMode, Query};

/// What to fetch from crt.sh: a search (at most one of name, serial, SHA-1, SHA-256) and/or
/// certificate ids.
#[derive(Clone, Debug, Default)]
pub struct IngestRequest {
    /// Identity (domain, name) search.
    pub name: Option<String>,
    /// Match mode of the name search.
    pub match_mode: Option<MatchMode>,
    /// Leave out expired certificates (name search).
    pub exclude_expired: bool,
    /// Serial number (hex).
    pub serial: Option<String>,
    /// Certificate SHA-1 (hex).
    pub sha1: Option<String>,
    /// Certificate SHA-256 (hex).
    pub sha256: Option<String>,
    /// crt.sh certificate ids to download.
    pub ids: Vec<u64>,
}

impl IngestRequest {
    /// The search this request makes, if any (name first, then serial, SHA-1, SHA-256).
    pub fn query(&self) -> Option<Query> {
        if let Some(q) = &self.name {
            Some(Query::Name {
                name: q.clone(),
                mode: self.match_mode,
                exclude_expired: self.exclude_expired,
            })
        } else if let Some(s) = &self.serial {
            Some(Query::Serial(s.clone()))
        } else if let Some(s) = &self.sha1 {
            Some(Query::Sha1(s.clone()))
        } else {
            self.sha256.as_ref().map(|s| Query::Sha256(s.clone()))
        }
    }
}

/// What an ingest did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct IngestSummary {
    /// JSON rows returned.
    pub rows: usize,
    /// The 10,000-row cap was hit (results incomplete).
    pub capped: bool,
    /// Certificates downloaded.
    pub downloaded: usize,
    /// Downloads that did not match what was asked (hash/serial).
    pub mismatched: usize,
    /// Downloads that failed.
    pub failed: usize,
    /// New certificates in the database.
    pub new: u64,
    /// Already known.
    pub known: u64,
}

/// Errors of [`ingest`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The request names nothing to fetch.
    #[error("give a name, serial, SHA-1, SHA-256 or crt.sh id")]
    NothingAsked,
    /// crt.sh failed.
    #[error("crt.sh: {0}")]
    Crtsh(#[from] CrtshError),
    /// The database failed.
    #[error("database: {0}")]
    Store(#[from] certhist_store::StoreError),
}

/// Searches, downloads the PEMs, checks each against what was asked, and stores the matches.
/// Idempotent: certificates are content-addressed, a re-run finds them `known`.
pub async fn ingest(
    request: &IngestRequest,
    store: &Store,
    config: CrtshConfig,
) -> Result<IngestSummary, IngestError> {
    let client = CrtshClient::new(config)?;
    let query = request.query();
    if query.is_none() && request.ids.is_empty() {
        return Err(IngestError::NothingAsked);
    }
    let mut summary = IngestSummary::default();
    let mut ids: Vec<u64> = request.ids.clone();
    if let Some(q) = &query {
        let r = client.query(q).await?;
        summary.rows = r.rows.len();
        summary.capped = r.capped;
        if r.capped {
            tracing::warn!(
                crtsh.rows = r.rows.len(),
                "crt.sh returned its row cap: results are cut; narrow the query"
            );
        }
        ids.extend(r.rows.iter().map(|r| r.id));
    }
    ids.sort_unstable();
    ids.dedup();
    let want_serial = request
        .serial
        .as_deref()
        .and_then(|s| Serial::parse_hex(s).ok());
    let want_sha1 = request
        .sha1
        .as_deref()
        .map(|s| s.trim().to_ascii_lowercase());
    let want_sha256 = request
        .sha256
        .as_deref()
        .map(|s| s.trim().to_ascii_lowercase());
    let results = futures_util::future::join_all(ids.iter().map(|id| client.download(*id))).await;
    let mut records: Vec<CertRecord> = Vec::new();
    for (id, r) in ids.iter().zip(results) {
        match r {
            Ok(der) => {
                let rec = certhist_x509::parse_der(&der);
                let ok = want_sha1
                    .as_ref()
                    .is_none_or(|h| *h == hex::encode(rec.sha1))
                    && want_sha256
                        .as_ref()
                        .is_none_or(|h| *h == hex::encode(rec.sha256))
                    && want_serial.as_ref().is_none_or(|s| {
                        x509_parser::parse_x509_certificate(&der).is_ok_and(|(_, c)| {
                            Serial::from_be_bytes(c.tbs_certificate.raw_serial()) == *s
                        })
                    });
                if ok {
                    summary.downloaded += 1;
                    records.push(rec);
                } else {
                    summary.mismatched += 1;
                    tracing::warn!(
                        crtsh.id = id,
                        "downloaded certificate does not match the query"
                    );
                }
            }
            Err(e) => {
                summary.failed += 1;
                tracing::warn!(crtsh.id = id, error = %e, "crt.sh download failed");
            }
        }
    }
    if !records.is_empty() {
        let mut conn = store.conn().await?;
        let mut tx = conn.begin().await?;
        for chunk in records.chunks(1000) {
            let s = tx.write_certs(chunk).await?;
            summary.new += s.new;
            summary.known += s.known;
        }
        tx.commit().await?;
    }
    Ok(summary)
}
