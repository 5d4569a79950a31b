//! Every row of tests/data/cryptnet/EXPECTED.tsv asserted against the parser.

use std::path::{Path, PathBuf};

use certhist_cryptnet::{load_path, CacheContentKind, CacheEntry, CacheEntryKind, ContentDetail};

pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/cryptnet")
}

fn fmt_time(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
        .unwrap_or_default()
}

struct Row {
    path: String,
    url: String,
    name_check: String,
    download: String,
    last_modified: String,
    etag: String,
    size: u32,
    content_len: u64,
    content_kind: String,
    type_field: u32,
    this_update: String,
    next_update: String,
    request: String,
}

fn expected() -> Vec<Row> {
    let text = std::fs::read_to_string(data_dir().join("EXPECTED.tsv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 18, "{l}");
            Row {
                path: f[0].into(),
                url: f[6].into(),
                name_check: f[7].into(),
                download: f[8].into(),
                last_modified: f[9].into(),
                etag: f[10].into(),
                size: f[11].parse().unwrap(),
                content_len: f[12].parse().unwrap(),
                content_kind: f[13].into(),
                type_field: f[14].parse().unwrap(),
                this_update: f[15].into(),
                next_update: f[16].into(),
                request: f[17].into(),
            }
        })
        .collect()
}

fn load_all() -> Vec<CacheEntry> {
    let mut all = Vec::new();
    for folder in [
        "mohdan__codingTest/7de46a191103",
        "32204232__portfolio/81b48a9be9c1",
    ] {
        let loaded = load_path(&data_dir().join(folder)).unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        assert_eq!(loaded.caches.len(), 1);
        all.extend(loaded.entries);
    }
    all
}

#[test]
fn every_expected_row() {
    let rows = expected();
    assert_eq!(rows.len(), 105);
    let entries = load_all();
    assert_eq!(entries.len(), rows.len());
    let base = data_dir();
    for row in &rows {
        let want_source = base.join(&row.path).display().to_string();
        let e = entries
            .iter()
            .find(|e| e.source == want_source)
            .unwrap_or_else(|| panic!("no entry for {}", row.path));
        let ctx = &row.path;
        assert!(e.errors.is_empty(), "{ctx}: {:?}", e.errors);
        let m = e.metadata.as_ref().unwrap();
        assert_eq!(m.url, row.url, "{ctx}");
        assert_eq!(e.name_check.unwrap().as_str(), row.name_check, "{ctx}");
        assert_eq!(fmt_time(m.last_download), row.download, "{ctx}");
        assert_eq!(fmt_time(m.last_modified), row.last_modified, "{ctx}");
        assert_eq!(m.etag.clone().unwrap_or_default(), row.etag, "{ctx}");
        assert_eq!(m.content_size_bytes, row.size, "{ctx}");
        assert_eq!(m.object_type, row.type_field, "{ctx}");
        assert_eq!(fmt_time(m.this_update), row.this_update, "{ctx}");
        assert_eq!(fmt_time(m.next_update), row.next_update, "{ctx}");
        let c = e.content.as_ref().unwrap();
        assert_eq!(c.size_bytes, row.content_len, "{ctx}");
        let want_kind = match row.content_kind.as_str() {
            "ocsp_response" => CacheContentKind::OcspResponse,
            "crl" => CacheContentKind::Crl,
            "cert" => CacheContentKind::Certificate,
            "cab" => CacheContentKind::Cab,
            "empty" => CacheContentKind::Empty,
            other => panic!("unknown kind {other}"),
        };
        assert_eq!(c.kind, want_kind, "{ctx}");
        // "ERR": the independent decoder found no OCSPRequest in this (non-OCSP) URL.
        if row.request.is_empty() || row.request == "ERR" {
            assert!(e.cert_ids.is_empty(), "{ctx}");
        } else {
            let decoded: Vec<String> = e
                .cert_ids
                .iter()
                .map(|id| {
                    format!(
                        "{}|{}|{}",
                        id.serial.to_hex(),
                        hex::encode(&id.issuer_name_hash),
                        hex::encode(&id.issuer_key_hash)
                    )
                })
                .collect();
            assert_eq!(decoded.join(","), row.request, "{ctx}");
            assert_eq!(e.kind(), CacheEntryKind::Ocsp);
        }
        match (&c.detail, want_kind) {
            (ContentDetail::Ocsp(resp), CacheContentKind::OcspResponse) => {
                // The response answers the request in the URL, with the times the MetaData holds.
                let id = &e.cert_ids[0];
                let single = resp
                    .responses
                    .iter()
                    .find(|s| {
                        s.cert_id.serial == id.serial
                            && s.cert_id.issuer_name_hash == id.issuer_name_hash
                    })
                    .unwrap_or_else(|| panic!("{ctx}: request CertID not answered"));
                assert_eq!(fmt_time(Some(single.this_update)), row.this_update, "{ctx}");
                assert_eq!(fmt_time(single.next_update), row.next_update, "{ctx}");
                assert!(
                    resp.produced_at.is_some() && resp.responder.is_some(),
                    "{ctx}"
                );
            }
            (ContentDetail::Crl(crl), CacheContentKind::Crl) => {
                if !row.this_update.is_empty() {
                    assert_eq!(fmt_time(Some(crl.this_update)), row.this_update, "{ctx}");
                    assert_eq!(fmt_time(crl.next_update), row.next_update, "{ctx}");
                }
                assert!(!crl.issuer.is_empty());
            }
            (ContentDetail::Certificate(rec), CacheContentKind::Certificate) => {
                assert_eq!(rec.der.len() as u64, row.content_len, "{ctx}");
            }
            (ContentDetail::None, CacheContentKind::Cab | CacheContentKind::Empty) => {}
            (d, k) => panic!("{ctx}: kind {k:?} with detail {d:?}"),
        }
    }
}

#[test]
fn sixteen_response_file() {
    let dir = data_dir().join("mohdan__codingTest/7de46a191103");
    let loaded = load_path(&dir).unwrap();
    let e = loaded
        .entries
        .iter()
        .find(|e| {
            e.source
                .ends_with("40E450F7CE13419A2CCC2A5445035A0A_06F02B1F13AB4B11B8FC669BDE565AF1")
        })
        .unwrap();
    assert_eq!(
        e.responder.as_deref(),
        Some("http://ocsp.omniroot.com/baltimoreroot")
    );
    let Some(ContentDetail::Ocsp(resp)) = e.content.as_ref().map(|c| &c.detail) else {
        panic!("not an OCSP response")
    };
    assert_eq!(resp.responses.len(), 16);
    assert!(resp
        .responses
        .iter()
        .all(|s| s.status == certhist_cryptnet::CertStatus::Good && s.next_update.is_some()));
    // 16 distinct serials, all under the same issuer name hash as the request.
    let mut serials: Vec<String> = resp
        .responses
        .iter()
        .map(|s| s.cert_id.serial.to_hex())
        .collect();
    serials.sort();
    serials.dedup();
    assert_eq!(serials.len(), 16);
    assert!(serials.contains(&"727AA47".to_owned()));
}

#[test]
fn empty_content_and_cabs() {
    let dir = data_dir().join("32204232__portfolio/81b48a9be9c1");
    let loaded = load_path(&dir.join("MetaData")).unwrap();
    let empty = loaded
        .entries
        .iter()
        .find(|e| e.source.ends_with("77EC63BDA74BD0D0E0426DC8F8008506"))
        .unwrap();
    let c = empty.content.as_ref().unwrap();
    assert_eq!(c.kind, CacheContentKind::Empty);
    assert_eq!(c.size_bytes, 0);
    assert_eq!(empty.metadata.as_ref().unwrap().content_size_bytes, 0);
    // authrootstl.cab with an empty body is still a CAB entry (type field 5)
    assert_eq!(empty.kind(), CacheEntryKind::Cab);
    let cabs: Vec<&CacheEntry> = loaded
        .entries
        .iter()
        .filter(|e| {
            e.content
                .as_ref()
                .is_some_and(|c| c.kind == CacheContentKind::Cab)
        })
        .collect();
    assert_eq!(cabs.len(), 2);
    assert!(cabs
        .iter()
        .all(|e| e.kind() == CacheEntryKind::Cab && e.url.as_deref().unwrap().ends_with(".cab")));
}
