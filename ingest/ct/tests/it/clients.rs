//! Clients against local servers without a database: Icarus proof, Pilot short read, kind detection.

use std::sync::Arc;

use certhist_ct::client::{detect_kind, LogClient, LogKind, Rfc6962Client};
use certhist_ct::merkle;
use certhist_ct::sig::PublicKey;
use certhist_ct::FetchConfig;
use sha1::Digest as _;

use crate::read;
use crate::server;

#[tokio::test]
async fn icarus_leaf_proven_against_signed_sth_over_http() {
    let sth = read("hash-tree/icarus.get-sth.tree_size=129721434.json");
    let eap =
        read("hash-tree/icarus.get-entry-and-proof.leaf_index=120000000.tree_size=129721434.json");
    let ep: serde_json::Value = serde_json::from_slice(&eap).unwrap();
    let srv = server::start(Arc::new(move |p: &str| {
        if p.starts_with("/ct/v1/get-sth") {
            Some(sth.clone())
        } else if p.starts_with("/ct/v1/get-entries?start=120000000&end=120000000") {
            Some(serde_json::json!({"entries": [{"leaf_input": ep["leaf_input"], "extra_data": ep["extra_data"]}]}).to_string().into_bytes())
        } else if p.starts_with("/ct/v1/get-proof-by-hash") && p.contains("tree_size=129721434") {
            Some(serde_json::json!({"leaf_index": 120000000u64, "audit_path": ep["audit_path"]}).to_string().into_bytes())
        } else {
            None
        }
    }))
    .await;
    let key = PublicKey::from_spki_der(&read("hash-tree/icarus.pubkey.der")).unwrap();
    let c = Rfc6962Client::new(&srv.url, Some(key), FetchConfig::default()).unwrap();
    let th = c.tree_head().await.unwrap();
    assert_eq!(th.tree_size, 129721434);
    let e = c.entries(120000000, 120000001, th.tree_size).await.unwrap();
    assert_eq!(e.len(), 1);
    assert_eq!(
        hex::encode(sha1::Sha1::digest(&e[0].cert_der)),
        "80b6ccb8f1933c0483e38621e19da8d30dfedb4a"
    );
    let proof = c
        .inclusion_proof(120000000, &e[0].leaf_hash, th.tree_size)
        .await
        .unwrap();
    merkle::verify_inclusion(120000000, th.tree_size, &e[0].leaf_hash, &proof, &th.root).unwrap();
    assert_eq!(
        detect_kind(&srv.url, &FetchConfig::default())
            .await
            .unwrap(),
        LogKind::Rfc6962
    );
}

#[tokio::test]
async fn pilot_short_read_of_six_entries() {
    let body = read("certificate-transparency-client-rb/spec/fixtures/ok_entries");
    let srv = server::start(Arc::new(move |p: &str| {
        p.starts_with("/ct/v1/get-entries?start=1000&end=1045")
            .then(|| body.clone())
    }))
    .await;
    let c = Rfc6962Client::new(&srv.url, None, FetchConfig::default()).unwrap();
    let e = c.entries(1000, 1046, 7872977).await.unwrap();
    assert_eq!(e.len(), 6);
    assert_eq!(
        e.iter().map(|x| x.index).collect::<Vec<_>>(),
        [1000, 1001, 1002, 1003, 1004, 1005]
    );
    assert!(hex::encode(e[0].leaf_hash).starts_with("996631b6"));
    assert!(hex::encode(e[5].leaf_hash).ends_with("19ec"));
}

#[tokio::test]
async fn auto_detects_static_by_checkpoint() {
    let srv = server::start(crate::logs::navigli_handler(
        1024,
        crate::logs::NAVIGLI_ROOT_1024,
        None,
    ))
    .await;
    assert_eq!(
        detect_kind(&srv.url, &FetchConfig::default())
            .await
            .unwrap(),
        LogKind::Static
    );
}
