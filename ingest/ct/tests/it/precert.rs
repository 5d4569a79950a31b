//! A precert entry's stored precertificate and chain are not covered by its leaf hash: they are
//! checked against the leaf (RFC 6962 §3.2) before anything of the batch is written.

use std::sync::Arc;
use std::time::Duration;

use certhist_ct::client::{Rfc6962Client, StaticClient};
use certhist_ct::ingest::{ingest_log, IngestOptions};
use certhist_ct::CtError;
use certhist_ct::FetchConfig;
use certhist_test_support::TestDb;
use sha1::Digest as _;

use crate::linking::{pem_der, spki_sha256, tbs_without, tbs_without_poison, testdata, u24};
use crate::logs::*;
use crate::server::{self, Handler};

/// DER-encoded OID 1.3.6.1.4.1.11129.2.4.2 (embedded SCT list, RFC 6962 §3.3).
const SCT_LIST_OID: &[u8] = &[
    0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x02,
];

fn fast() -> FetchConfig {
    FetchConfig {
        backoff_base: Duration::from_millis(20),
        ..FetchConfig::default()
    }
}

fn sha1(d: &[u8]) -> Vec<u8> {
    sha1::Sha1::digest(d).to_vec()
}

async fn sql(db: &TestDb) -> tokio_postgres::Client {
    let (c, conn) = db.pg_config().connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    c
}

/// (ct_entries rows, verified_position, certificates rows).
async fn counts(db: &TestDb) -> (i64, i64, i64) {
    let c = sql(db).await;
    let n = |q: &'static str| {
        let c = &c;
        async move { c.query_one(q, &[]).await.unwrap().get::<_, i64>(0) }
    };
    (
        n("SELECT count(*) FROM ct_entries").await,
        n("SELECT coalesce(max(verified_position), 0) FROM ct_logs").await,
        n("SELECT count(*) FROM certificates").await,
    )
}

/// One static-ct-api `TileLeaf` split into (bytes up to the pre_certificate, pre_certificate,
/// the rest), read here independently of the crate's parser.
fn split_tile(tile: &[u8]) -> Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> {
    let be = |b: &[u8]| b.iter().fold(0usize, |a, x| (a << 8) | *x as usize);
    let mut out = Vec::new();
    let mut p = 0;
    while p < tile.len() {
        let start = p;
        p += 8;
        assert_eq!(
            &tile[p..p + 2],
            [0, 1],
            "navigli holds precert entries only"
        );
        p += 2 + 32;
        p += 3 + be(&tile[p..p + 3]);
        p += 2 + be(&tile[p..p + 2]);
        let head = tile[start..p].to_vec();
        let pre_len = be(&tile[p..p + 3]);
        let pre = tile[p + 3..p + 3 + pre_len].to_vec();
        p += 3 + pre_len;
        let chain_end = p + 2 + be(&tile[p..p + 2]);
        out.push((head, pre, tile[p..chain_end].to_vec()));
        p = chain_end;
    }
    out
}

/// Data tile 001 (entries 256..512) with the pre_certificates of entries 300 and 301 swapped.
fn swapped_tile_001() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let tile = crate::read(&format!("{}/tile/data/001", crate::NAVIGLI));
    let mut leaves = split_tile(&tile);
    assert_eq!(leaves.len(), 256);
    let (a, b) = (leaves[300 - 256].1.clone(), leaves[301 - 256].1.clone());
    assert_ne!(a, b);
    leaves[300 - 256].1 = b;
    leaves[301 - 256].1 = a;
    let mut out = Vec::new();
    for (head, pre, rest) in &leaves {
        out.extend_from_slice(head);
        u24(&mut out, pre);
        out.extend_from_slice(rest);
    }
    (tile, out, leaves[300 - 256].1.clone())
}

#[tokio::test]
async fn static_tile_with_swapped_pre_certificate_is_refused_naming_the_entry() {
    let (original, swapped, served_at_300) = swapped_tile_001();
    // The leaf hashes do not cover pre_certificate: Merkle verification alone would pass.
    let hashes = |t: &[u8]| -> Vec<_> {
        certhist_ct::leaf::parse_data_tile(t, 256)
            .unwrap()
            .into_iter()
            .map(|e| e.leaf_hash)
            .collect()
    };
    assert_eq!(hashes(&original), hashes(&swapped));
    let inner = navigli_handler(1024, NAVIGLI_ROOT_1024, None);
    let handler: Handler = Arc::new(move |path: &str| {
        if path.trim_start_matches('/') == "tile/data/001" {
            return Some(swapped.clone());
        }
        inner(path)
    });
    let srv = server::start(handler).await;
    let db = TestDb::new().await;
    let client = Arc::new(StaticClient::new(&srv.url, Some(test_public_key()), fast()).unwrap());
    let opts = IngestOptions {
        batch_entries: 256,
        ..IngestOptions::default()
    };
    let err = ingest_log(client, &db.store(), &opts).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, CtError::Inconsistent { .. }), "{msg}");
    assert!(msg.contains("precert entry 300:"), "{msg}");
    assert!(msg.contains("tbs_certificate"), "{msg}");
    // Tile 0 committed; nothing of tile 1: no entry, no cursor, not the swapped certificate.
    let (entries, verified, _) = counts(&db).await;
    assert_eq!((entries, verified), (256, 256));
    let c = sql(&db).await;
    let stored: i64 = c
        .query_one(
            "SELECT count(*) FROM certificates WHERE sha1 = $1",
            &[&sha1(&served_at_300)],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 0, "the swapped precertificate is not stored");
}

/// A PrecertChainEntry-carrying RFC 6962 log of `entries` (leaf_input, extra_data).
async fn ingest_rfc6962(entries: Vec<(Vec<u8>, Vec<u8>)>, db: &TestDb) -> Result<u64, CtError> {
    let srv = server::start(rfc6962_handler(entries, 1_700_000_000_000, 1000, None)).await;
    let client = Arc::new(Rfc6962Client::new(&srv.url, Some(test_public_key()), fast()).unwrap());
    ingest_log(client, &db.store(), &IngestOptions::default())
        .await
        .map(|s| s.verified_position)
}

/// (leaf_input, extra_data) of a precert entry: the leaf from `leaf_tbs` and `ikh`, the extra
/// data from `pre` and `chain`.
fn precert_entry(
    leaf_tbs: &[u8],
    ikh: &[u8; 32],
    pre: &[u8],
    chain: &[&[u8]],
) -> (Vec<u8>, Vec<u8>) {
    let mut leaf = vec![0u8, 0];
    leaf.extend_from_slice(&1_600_000_000_000u64.to_be_bytes());
    leaf.extend_from_slice(&[0, 1]);
    leaf.extend_from_slice(ikh);
    u24(&mut leaf, leaf_tbs);
    leaf.extend_from_slice(&[0, 0]);
    let mut list = Vec::new();
    for c in chain {
        u24(&mut list, c);
    }
    let mut extra = Vec::new();
    u24(&mut extra, pre);
    u24(&mut extra, &list);
    (leaf, extra)
}

#[tokio::test]
async fn rfc6962_swapped_pre_certificate_or_wrong_issuer_is_refused() {
    let ca = pem_der(&testdata("ca-cert.pem"));
    let pre = pem_der(&testdata("test-embedded-pre-cert.pem"));
    let other = pem_der(&testdata("test-embedded-with-intermediate-pre-cert.pem"));
    let intermediate = pem_der(&testdata("intermediate-cert.pem"));
    let good = precert_entry(&tbs_without_poison(&pre), &spki_sha256(&ca), &pre, &[&ca]);

    // Entry 1 serves another precertificate in extra_data: one batch, nothing written.
    let swapped = precert_entry(&tbs_without_poison(&pre), &spki_sha256(&ca), &other, &[&ca]);
    let db = TestDb::new().await;
    let err = ingest_rfc6962(vec![good.clone(), swapped], &db)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, CtError::Inconsistent { .. }), "{msg}");
    assert!(msg.contains("precert entry 1:"), "{msg}");
    assert!(msg.contains("tbs_certificate"), "{msg}");
    assert_eq!(counts(&db).await, (0, 0, 0));

    // Entry 1 names another issuer in its chain than the leaf's issuer_key_hash.
    let wrong_chain = precert_entry(
        &tbs_without_poison(&pre),
        &spki_sha256(&ca),
        &pre,
        &[&intermediate, &ca],
    );
    let db = TestDb::new().await;
    let err = ingest_rfc6962(vec![good.clone(), wrong_chain], &db)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, CtError::Inconsistent { .. }), "{msg}");
    assert!(msg.contains("precert entry 1:"), "{msg}");
    assert!(msg.contains("issuer_key_hash"), "{msg}");
    assert_eq!(counts(&db).await, (0, 0, 0));

    // The honest entry alone is accepted.
    let db = TestDb::new().await;
    assert_eq!(ingest_rfc6962(vec![good], &db).await.unwrap(), 1);
    assert_eq!(counts(&db).await, (1, 1, 2));
}

#[tokio::test]
async fn precert_from_a_precertificate_signing_certificate_is_accepted() {
    let ca = pem_der(&testdata("ca-cert.pem"));
    let psc = pem_der(&testdata("ca-pre-cert.pem"));
    let pre = pem_der(&testdata("test-embedded-with-preca-pre-cert.pem"));
    let fin = pem_der(&testdata("test-embedded-with-preca-cert.pem"));
    // What the log puts in the leaf (RFC 6962 §3.2): the final certificate's TBS without its SCT
    // list, i.e. the precertificate's TBS with issuer (and AKI) of the final issuer, the CA.
    let leaf_tbs = tbs_without(&fin, SCT_LIST_OID);
    assert_ne!(
        leaf_tbs,
        tbs_without_poison(&pre),
        "the PSC case: the logged TBS differs from the precertificate's"
    );
    let entry = precert_entry(&leaf_tbs, &spki_sha256(&ca), &pre, &[&psc, &ca]);
    let db = TestDb::new().await;
    assert_eq!(ingest_rfc6962(vec![entry], &db).await.unwrap(), 1);
    let c = sql(&db).await;
    let row = c
        .query_one(
            "SELECT e.sha1, c.is_precert FROM ct_entries e JOIN certificates c ON c.sha1 = e.sha1",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Vec<u8>>(0), sha1(&pre));
    assert!(row.get::<_, bool>(1));
    assert_eq!(counts(&db).await, (1, 1, 3), "precert, PSC and CA stored");

    // The same leaf with the PSC's key as issuer_key_hash is refused: the final issuer is chain[1].
    let entry = precert_entry(&leaf_tbs, &spki_sha256(&psc), &pre, &[&psc, &ca]);
    let db = TestDb::new().await;
    let msg = ingest_rfc6962(vec![entry], &db)
        .await
        .unwrap_err()
        .to_string();
    assert!(msg.contains("chain[1]"), "{msg}");
    assert_eq!(counts(&db).await, (0, 0, 0));
}
