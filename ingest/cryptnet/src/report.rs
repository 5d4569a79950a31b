//! Report rows (one per cache entry and CertID) and their human / JSON / CSV renderings.

use std::io::Write;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::content::ContentDetail;
use crate::entry::CacheEntry;
use crate::resolve::Resolution;

/// One report row.
#[derive(Clone, Debug, Serialize)]
pub struct ReportRow {
    /// LastDownloadTime.
    pub time: Option<DateTime<Utc>>,
    /// Where the entry was read.
    pub source: String,
    /// URL fetched.
    pub url: Option<String>,
    /// `ocsp`, `crl`, `cert`, `cab`, `other`.
    pub kind: &'static str,
    /// Content classification.
    pub content_kind: Option<&'static str>,
    /// Index of the CertID in the request.
    pub cert_index: usize,
    /// CertID hash algorithm.
    pub hash_algorithm: Option<String>,
    /// CertID serial (upper hex).
    pub serial: Option<String>,
    /// CertID issuerNameHash (hex).
    pub issuer_name_hash: Option<String>,
    /// CertID issuerKeyHash (hex).
    pub issuer_key_hash: Option<String>,
    /// Issuer: the known CA for the CertID, the CRL issuer or the certificate's issuer.
    pub issuer: Option<String>,
    /// OCSP status from the cached response (`good`, `revoked`, `unknown`).
    pub status: Option<String>,
    /// Revocation time when revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// thisUpdate (response or CRL; else MetaData).
    pub this_update: Option<DateTime<Utc>>,
    /// nextUpdate.
    pub next_update: Option<DateTime<Utc>>,
    /// Resolution of the CertID.
    pub resolution: Option<Resolution>,
    /// Problems with this entry.
    pub errors: Vec<String>,
}

/// Report rows of one entry (one per CertID; one row when there is none), with resolutions in
/// CertID order.
pub fn rows_for(entry: &CacheEntry, resolutions: &[Option<Resolution>]) -> Vec<ReportRow> {
    let content_kind = entry.content.as_ref().map(|c| c.kind.as_str());
    let (mut this_update, mut next_update) = entry
        .metadata
        .as_ref()
        .map(|m| (m.this_update, m.next_update))
        .unwrap_or_default();
    let mut issuer = None;
    match entry.content.as_ref().map(|c| &c.detail) {
        Some(ContentDetail::Crl(crl)) => {
            issuer = Some(crl.issuer.clone());
            this_update = Some(crl.this_update);
            next_update = crl.next_update;
        }
        Some(ContentDetail::Certificate(rec)) => issuer = rec.issuer.dn.clone(),
        _ => {}
    }
    let base = ReportRow {
        time: entry.time(),
        source: entry.source.clone(),
        url: entry.url.clone(),
        kind: entry.kind().as_str(),
        content_kind,
        cert_index: 0,
        hash_algorithm: None,
        serial: None,
        issuer_name_hash: None,
        issuer_key_hash: None,
        issuer,
        status: None,
        revoked_at: None,
        this_update,
        next_update,
        resolution: None,
        errors: entry.errors.clone(),
    };
    if entry.cert_ids.is_empty() {
        return vec![base];
    }
    let ocsp = match entry.content.as_ref().map(|c| &c.detail) {
        Some(ContentDetail::Ocsp(r)) => Some(r),
        _ => None,
    };
    entry
        .cert_ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let mut row = base.clone();
            row.cert_index = i;
            row.hash_algorithm = Some(id.hash_algorithm.as_str().to_owned());
            row.serial = Some(id.serial.to_hex());
            row.issuer_name_hash = Some(hex::encode(&id.issuer_name_hash));
            row.issuer_key_hash = Some(hex::encode(&id.issuer_key_hash));
            if let Some(single) = ocsp.and_then(|r| {
                r.responses.iter().find(|s| {
                    s.cert_id.serial == id.serial
                        && s.cert_id.issuer_name_hash == id.issuer_name_hash
                })
            }) {
                row.status = Some(single.status.as_str().to_owned());
                if let crate::ocsp::CertStatus::Revoked {
                    revocation_time, ..
                } = &single.status
                {
                    row.revoked_at = Some(*revocation_time);
                }
                row.this_update = Some(single.this_update);
                row.next_update = single.next_update;
            }
            let res = resolutions.get(i).cloned().flatten();
            if let Some(r) = &res {
                if r.issuer.is_some() {
                    row.issuer.clone_from(&r.issuer);
                }
            }
            row.resolution = res;
            row
        })
        .collect()
}

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Aligned text table.
    Human,
    /// A JSON array.
    Json,
    /// CSV with a header.
    Csv,
}

fn t(x: Option<DateTime<Utc>>) -> String {
    x.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

fn flat(row: &ReportRow) -> [String; 14] {
    let best = row.resolution.as_ref().and_then(|r| r.certs.first());
    let matched = row
        .resolution
        .as_ref()
        .map(|r| {
            r.certs
                .iter()
                .map(|c| format!("{} ({})", c.sha1, c.match_kind.as_str()))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let names = best.map(|c| c.names.join(" ")).unwrap_or_default();
    let ips = best
        .map(|c| {
            c.hosts
                .iter()
                .map(|h| {
                    format!(
                        "{}:{} {}..{}",
                        h.ip,
                        h.port,
                        t(Some(h.first_seen)),
                        t(Some(h.last_seen))
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default();
    [
        t(row.time),
        row.url.clone().unwrap_or_default(),
        row.kind.to_owned(),
        row.content_kind.unwrap_or_default().to_owned(),
        row.serial.clone().unwrap_or_default(),
        row.issuer.clone().unwrap_or_default(),
        row.status.clone().unwrap_or_default(),
        t(row.this_update),
        t(row.next_update),
        matched,
        names,
        ips,
        row.errors.join("; "),
        row.source.clone(),
    ]
}

const HEADERS: [&str; 14] = [
    "time",
    "url",
    "kind",
    "content",
    "serial",
    "issuer",
    "status",
    "this_update",
    "next_update",
    "matched_cert",
    "names",
    "ips",
    "errors",
    "source",
];

/// Writes the rows.
pub fn write(rows: &[ReportRow], format: Format, out: &mut dyn Write) -> std::io::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, rows)?;
            writeln!(out)
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(HEADERS).map_err(std::io::Error::other)?;
            for r in rows {
                w.write_record(flat(r)).map_err(std::io::Error::other)?;
            }
            w.flush()
        }
        Format::Human => {
            // time, kind, serial, status, matched, names, ips, url (shortened); issuer on errors line
            for r in rows {
                let f = flat(r);
                let url = r.url.as_deref().unwrap_or("-");
                let url: String = if url.chars().count() > 70 {
                    format!("{}…", url.chars().take(69).collect::<String>())
                } else {
                    url.to_owned()
                };
                let clean = |s: &str| s.replace(['\n', '\r', '\t'], " ");
                writeln!(
                    out,
                    "{:<19}  {:<5} {:<13} {:<36} {:<8} {}",
                    f[0],
                    f[2],
                    f[3],
                    if f[4].is_empty() { "-" } else { &f[4] },
                    if f[6].is_empty() { "-" } else { &f[6] },
                    clean(&url)
                )?;
                if !f[5].is_empty() {
                    writeln!(out, "    issuer:  {}", clean(&f[5]))?;
                }
                if !f[9].is_empty() {
                    writeln!(out, "    cert:    {}", clean(&f[9]))?;
                }
                if !f[10].is_empty() {
                    writeln!(out, "    names:   {}", clean(&f[10]))?;
                }
                if !f[11].is_empty() {
                    writeln!(out, "    ips:     {}", clean(&f[11]))?;
                }
                if !f[12].is_empty() {
                    writeln!(out, "    errors:  {}", clean(&f[12]))?;
                }
            }
            Ok(())
        }
    }
}
