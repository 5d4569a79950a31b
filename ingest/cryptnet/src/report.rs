//! Report rows: the [`CryptnetRow`] views (one per cache entry and CertID) built from cache
//! entries and CertID resolutions. Rendering them (table, CSV, NDJSON) is the caller's business.

use certhist_model::views::cryptnet::{CertIdResolution, CryptnetRow};

use crate::content::ContentDetail;
use crate::entry::CacheEntry;
use crate::ocsp::CertStatus;

/// Report rows of one entry (one per CertID; one row when there is none), with resolutions in
/// CertID order.
pub fn rows_for(entry: &CacheEntry, resolutions: &[Option<CertIdResolution>]) -> Vec<CryptnetRow> {
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
    let base = CryptnetRow {
        time: entry.time(),
        source: entry.source.clone(),
        url: entry.url.clone(),
        kind: entry.kind(),
        content_kind: entry.content.as_ref().map(|c| c.kind),
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
            row.cert_index = u32::try_from(i).unwrap_or(u32::MAX);
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
                row.status = Some(single.status.kind());
                if let CertStatus::Revoked {
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

#[cfg(test)]
mod tests {
    use certhist_model::views::cryptnet::{
        CacheContentKind, CacheEntryKind, CertIdMatchKind, OcspStatus, ResolutionSource,
    };

    /// The JSON labels of the view enums are the labels stored in `cache_entries` (issue 11:
    /// enums replaced strings; JSON and database must keep their values).
    #[test]
    fn view_enums_serialise_as_their_stored_labels() {
        fn label<T: serde::Serialize>(v: T) -> String {
            serde_json::to_value(v)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        }
        let entry = [
            (CacheEntryKind::Ocsp, "ocsp"),
            (CacheEntryKind::Crl, "crl"),
            (CacheEntryKind::Cert, "cert"),
            (CacheEntryKind::Cab, "cab"),
            (CacheEntryKind::Other, "other"),
        ];
        for (k, want) in entry {
            assert_eq!((label(k), k.as_str()), (want.to_owned(), want));
        }
        let content = [
            (CacheContentKind::OcspResponse, "ocsp_response"),
            (CacheContentKind::Crl, "crl"),
            (CacheContentKind::Certificate, "certificate"),
            (CacheContentKind::Cab, "cab"),
            (CacheContentKind::Empty, "empty"),
            (CacheContentKind::Other, "other"),
            (CacheContentKind::Missing, "missing"),
        ];
        for (k, want) in content {
            assert_eq!((label(k), k.as_str()), (want.to_owned(), want));
        }
        let status = [
            (OcspStatus::Good, "good"),
            (OcspStatus::Revoked, "revoked"),
            (OcspStatus::Unknown, "unknown"),
        ];
        for (k, want) in status {
            assert_eq!((label(k), k.as_str()), (want.to_owned(), want));
        }
        let matches = [
            (CertIdMatchKind::Exact, "exact"),
            (
                CertIdMatchKind::SerialAndIssuerName,
                "serial_and_issuer_name",
            ),
            (CertIdMatchKind::SerialOnly, "serial_only"),
        ];
        for (k, want) in matches {
            assert_eq!((label(k), k.as_str()), (want.to_owned(), want));
        }
        for (k, want) in [
            (ResolutionSource::Local, "local"),
            (ResolutionSource::Crtsh, "crtsh"),
        ] {
            assert_eq!((label(k), k.as_str()), (want.to_owned(), want));
        }
    }
}
