//! Precertificate ↔ final certificate linking (issue 3, "Provenance"): an RFC 6962 log serving the
//! final "Erw Wen" test certificate (x509_entry) and its precertificate (precert_entry), assembled
//! here from the PEM fixtures with an independent DER walker.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use certhist_ct::client::Rfc6962Client;
use certhist_ct::ingest::{ingest_log, IngestOptions};
use certhist_ct::FetchConfig;
use certhist_model::CertHash;
use certhist_test_support::TestDb;
use chrono::DateTime;
use sha1::Digest as _;

use crate::logs::{rfc6962_handler, test_public_key};
use crate::server;

const TESTDATA: &str = "../../tests/data/certs/certificate-transparency/test/testdata";

/// The precert leaf hash the upstream test asserts (tests/data/certs/README.md).
const PRECERT_LEAF_HASH: &str = "mbk+d5FDW3oNZJCbOi828rqC3hf+qhigTWVGcXEZq1U=";

/// CT poison extension OID 1.3.6.1.4.1.11129.2.4.3, DER-encoded.
const POISON_OID: &[u8] = &[
    0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x03,
];

pub(crate) fn testdata(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(TESTDATA)
            .join(name),
    )
    .unwrap()
}

pub(crate) fn pem_der(pem: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(pem);
    let b64: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .unwrap()
}

/// The TLVs in `content`, each as its full encoding.
fn tlvs(mut content: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (hdr, len) = match content[1] {
            n if n < 0x80 => (2, n as usize),
            n => {
                let k = (n & 0x7f) as usize;
                (
                    2 + k,
                    content[2..2 + k]
                        .iter()
                        .fold(0usize, |a, b| (a << 8) | *b as usize),
                )
            }
        };
        out.push(&content[..hdr + len]);
        content = &content[hdr + len..];
    }
    out
}

/// The content octets of one TLV.
fn inner(tlv: &[u8]) -> &[u8] {
    let hdr = if tlv[1] < 0x80 {
        2
    } else {
        2 + (tlv[1] & 0x7f) as usize
    };
    &tlv[hdr..]
}

fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// TBSCertificate of a certificate.
fn tbs(cert: &[u8]) -> Vec<u8> {
    tlvs(inner(cert))[0].to_vec()
}

/// RFC 6962 §3.2: the precertificate's TBSCertificate with the poison extension removed.
pub(crate) fn tbs_without_poison(precert: &[u8]) -> Vec<u8> {
    tbs_without(precert, POISON_OID)
}

/// The TBSCertificate of `cert` without its one extension whose DER-encoded OID is `oid`.
pub(crate) fn tbs_without(cert: &[u8], oid: &[u8]) -> Vec<u8> {
    let tbs = tbs(cert);
    let mut fields: Vec<Vec<u8>> = Vec::new();
    for f in tlvs(inner(&tbs)) {
        if f[0] == 0xa3 {
            let exts = tlvs(inner(inner(f)));
            let (poison, kept): (Vec<&[u8]>, Vec<&[u8]>) =
                exts.into_iter().partition(|e| inner(e).starts_with(oid));
            assert_eq!(poison.len(), 1, "one extension to remove");
            fields.push(encode(0xa3, &encode(0x30, &kept.concat())));
        } else {
            fields.push(f.to_vec());
        }
    }
    encode(0x30, &fields.concat())
}

/// SHA-256 of the SubjectPublicKeyInfo of a certificate (the PreCert issuer_key_hash).
pub(crate) fn spki_sha256(cert: &[u8]) -> [u8; 32] {
    let tbs = tbs(cert);
    let f = tlvs(inner(&tbs));
    let at = if f[0][0] == 0xa0 { 6 } else { 5 };
    sha2::Sha256::digest(f[at]).into()
}

pub(crate) fn u24(out: &mut Vec<u8>, d: &[u8]) {
    out.extend_from_slice(&(d.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(d);
}

#[tokio::test]
async fn precert_and_final_certificate_are_linked_with_the_earliest_ct_timestamp() {
    let ca = pem_der(&testdata("ca-cert.pem"));
    let pre = pem_der(&testdata("test-embedded-pre-cert.pem"));
    let fin = pem_der(&testdata("test-embedded-cert.pem"));
    // The precert's SCT: version(1) log_id(32) timestamp(8) extensions<2>.
    let sct = testdata("test-embedded-pre-cert.proof");
    let pre_ts = u64::from_be_bytes(sct[33..41].try_into().unwrap());
    let sct_ext_len = u16::from_be_bytes([sct[41], sct[42]]) as usize;
    let sct_ext = &sct[43..43 + sct_ext_len];
    let fin_ts = pre_ts + 3_600_000;

    // precert_entry: MerkleTreeLeaf v1 / timestamped_entry, PreCert{issuer_key_hash, tbs}.
    let leaf_tbs = tbs_without_poison(&pre);
    let mut pre_leaf = vec![0u8, 0];
    pre_leaf.extend_from_slice(&pre_ts.to_be_bytes());
    pre_leaf.extend_from_slice(&[0, 1]);
    pre_leaf.extend_from_slice(&spki_sha256(&ca));
    u24(&mut pre_leaf, &leaf_tbs);
    pre_leaf.extend_from_slice(&(sct_ext.len() as u16).to_be_bytes());
    pre_leaf.extend_from_slice(sct_ext);
    let mut h = sha2::Sha256::new();
    h.update([0u8]);
    h.update(&pre_leaf);
    assert_eq!(
        base64::engine::general_purpose::STANDARD.encode(h.finalize()),
        PRECERT_LEAF_HASH,
        "the assembled precert leaf is the one the upstream test asserts"
    );
    let mut ca_list = Vec::new();
    u24(&mut ca_list, &ca);
    // PrecertChainEntry { pre_certificate, precertificate_chain }.
    let mut pre_extra = Vec::new();
    u24(&mut pre_extra, &pre);
    u24(&mut pre_extra, &ca_list);

    // x509_entry of the final certificate, logged later.
    let mut fin_leaf = vec![0u8, 0];
    fin_leaf.extend_from_slice(&fin_ts.to_be_bytes());
    fin_leaf.extend_from_slice(&[0, 0]);
    u24(&mut fin_leaf, &fin);
    fin_leaf.extend_from_slice(&[0, 0]);
    let mut fin_extra = Vec::new();
    u24(&mut fin_extra, &ca_list);

    // The final certificate first in the log: "first seen" must come from the timestamps.
    let srv = server::start(rfc6962_handler(
        vec![(fin_leaf, fin_extra), (pre_leaf, pre_extra)],
        fin_ts + 1000,
        1000,
        None,
    ))
    .await;
    let db = TestDb::new().await;
    let store = db.store();
    let client = Arc::new(
        Rfc6962Client::new(
            &srv.url,
            Some(test_public_key()),
            FetchConfig {
                backoff_base: Duration::from_millis(20),
                ..FetchConfig::default()
            },
        )
        .unwrap(),
    );
    let stats = ingest_log(client, &store, &IngestOptions::default())
        .await
        .unwrap();
    assert_eq!((stats.entries, stats.verified_position), (2, 2));

    let sha1 = |d: &[u8]| -> [u8; 20] { sha1::Sha1::digest(d).into() };
    let (c, conn) = db.pg_config().connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let rows = c
        .query(
            "SELECT e.entry_index, e.entry_type, e.sha1, c.is_precert, c.tbs_noct_sha256
             FROM ct_entries e JOIN certificates c ON c.sha1 = e.sha1 ORDER BY e.entry_index",
            &[],
        )
        .await
        .unwrap();
    type Row = (i64, String, Vec<u8>, bool, Vec<u8>);
    let got: Vec<Row> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    // The link: SHA-256 of the TBS the precert entry logged (poison removed) — also the final
    // certificate's TBS without its SCT list (RFC 6962 §3.1).
    let link = sha2::Sha256::digest(&leaf_tbs).to_vec();
    assert_eq!(
        got,
        [
            (0, "x509".into(), sha1(&fin).to_vec(), false, link.clone()),
            (1, "precert".into(), sha1(&pre).to_vec(), true, link),
        ]
    );

    let conn = store.conn().await.unwrap();
    let detail = certhist_store::read::cert_by_hash(&conn, &CertHash::Sha1(sha1(&fin)))
        .await
        .unwrap()
        .expect("final certificate stored");
    let siblings: Vec<[u8; 20]> = detail.ct_siblings.iter().map(|s| s.sha1).collect();
    assert_eq!(siblings, [sha1(&pre)]);
    let entries: Vec<(String, i64, String, [u8; 20], i64)> = detail
        .ct_entries
        .iter()
        .map(|e| {
            (
                e.log_url.clone(),
                e.entry_index,
                e.entry_type.as_str().to_owned(),
                e.sha1,
                e.entry_timestamp.timestamp_millis(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            (
                srv.url.clone(),
                1,
                "precert".into(),
                sha1(&pre),
                pre_ts as i64
            ),
            (srv.url.clone(), 0, "x509".into(), sha1(&fin), fin_ts as i64),
        ]
    );
    assert_eq!(
        detail.first_seen_in_ct,
        DateTime::from_timestamp_millis(pre_ts as i64)
    );
    // And from the precertificate's side, the final certificate is its sibling.
    let pre_detail = certhist_store::read::cert_by_hash(&conn, &CertHash::Sha1(sha1(&pre)))
        .await
        .unwrap()
        .unwrap();
    let siblings: Vec<[u8; 20]> = pre_detail.ct_siblings.iter().map(|s| s.sha1).collect();
    assert_eq!(siblings, [sha1(&fin)]);
    assert_eq!(pre_detail.first_seen_in_ct, detail.first_seen_in_ct);
}
