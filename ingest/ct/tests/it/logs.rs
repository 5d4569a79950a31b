//! Local test logs serving the real fixture data: the navigli static-CT tiles and the Pilot
//! `get-entries` body behind an RFC 6962 API. Tree heads are signed with a test key (the logs'
//! private keys are not public); their roots are the real roots listed in the fixture README.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use base64::Engine as _;
use certhist_ct::checkpoint::encode_checkpoint;
use certhist_ct::sig::{tree_head_signature_input, PublicKey};
use certhist_ct::{merkle, Hash};
use p256::ecdsa::signature::Signer as _;
use sha2::Digest as _;

use crate::server::Handler;
use crate::{fixture, read, NAVIGLI};

pub const NAVIGLI_ORIGIN: &str = "navigli2025h2.sunlight.geomys.org";
pub const NAVIGLI_ROOT_1024: &str = "EMfGG85uIddeOXt5/wdQGP3IQd0COCqoLg9Q6CsPLJA=";
pub const NAVIGLI_ROOT_778: &str = "+WnHOMRZl/LG1669oeskbdK9bcO4nkrY1cfVyknC52U=";
pub const NAVIGLI_ROOT_256: &str = "bIAheYeHkQOXeHKw0PKjttmJ2hGtGU/VDxU5b0SAb+c=";

pub fn b64_32(s: &str) -> Hash {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap()
        .try_into()
        .unwrap()
}

pub fn test_signing_key() -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_bytes(&[7u8; 32].into()).unwrap()
}

pub fn test_public_key() -> PublicKey {
    // SubjectPublicKeyInfo for id-ecPublicKey / prime256v1, then the uncompressed point.
    let mut der = hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200").unwrap();
    der.extend_from_slice(
        test_signing_key()
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes(),
    );
    PublicKey::from_spki_der(&der).unwrap()
}

/// TLS digitally-signed (SHA-256, ECDSA) over the TreeHeadSignature.
pub fn sign_tree_head(ts: u64, size: u64, root: &Hash) -> Vec<u8> {
    let sig: p256::ecdsa::DerSignature =
        test_signing_key().sign(&tree_head_signature_input(ts, size, root));
    let mut ds = vec![4u8, 3];
    let b = sig.as_bytes();
    ds.extend_from_slice(&(b.len() as u16).to_be_bytes());
    ds.extend_from_slice(b);
    ds
}

pub fn navigli_checkpoint(size: u64, root: &Hash) -> String {
    let ds = sign_tree_head(1746292700000, size, root);
    encode_checkpoint(
        NAVIGLI_ORIGIN,
        size,
        root,
        &test_public_key().log_id(),
        1746292700000,
        &ds,
    )
}

/// Issuer DER by SHA-256 (the letsencrypt-website staging certificates).
pub fn issuers() -> HashMap<String, Vec<u8>> {
    let dir = fixture("letsencrypt-website/static/certs/staging");
    let mut out = HashMap::new();
    for f in [
        "letsencrypt-stg-root-x1.der",
        "2024/e5.der",
        "2024/e6.der",
        "2024/e5-cross.der",
        "2024/e6-cross.der",
        "2024/r10.der",
        "2024/r11.der",
    ] {
        let der = std::fs::read(dir.join(f)).unwrap();
        out.insert(hex::encode(sha2::Sha256::digest(&der)), der);
    }
    out
}

/// Serves navigli with a checkpoint of `size` (root from the README); `tamper` flips a byte of
/// that data tile.
pub fn navigli_handler(size: u64, root_b64: &str, tamper: Option<&'static str>) -> Handler {
    let checkpoint = navigli_checkpoint(size, &b64_32(root_b64));
    navigli_serving(Arc::new(move || checkpoint.clone()), tamper)
}

/// Serves navigli with the checkpoint of the tree size currently in `size` (256, 778 or 1024:
/// the sizes whose roots the fixture README lists), so a test can make the log grow.
pub fn navigli_growing_handler(size: Arc<AtomicU64>) -> Handler {
    let cps: HashMap<u64, String> = [
        (256, NAVIGLI_ROOT_256),
        (778, NAVIGLI_ROOT_778),
        (1024, NAVIGLI_ROOT_1024),
    ]
    .into_iter()
    .map(|(n, r)| (n, navigli_checkpoint(n, &b64_32(r))))
    .collect();
    navigli_serving(
        Arc::new(move || cps[&size.load(Ordering::SeqCst)].clone()),
        None,
    )
}

/// Serves navigli with `checkpoints[current]` (tests switch checkpoints while a client follows).
pub fn navigli_switching_handler(current: Arc<AtomicU64>, checkpoints: Vec<String>) -> Handler {
    navigli_serving(
        Arc::new(move || checkpoints[current.load(Ordering::SeqCst) as usize].clone()),
        None,
    )
}

type CheckpointFn = Arc<dyn Fn() -> String + Send + Sync>;

fn navigli_serving(checkpoint: CheckpointFn, tamper: Option<&'static str>) -> Handler {
    let issuers = issuers();
    let dir = fixture(NAVIGLI);
    Arc::new(move |path: &str| {
        let p = path.trim_start_matches('/');
        if p == "checkpoint" {
            return Some(checkpoint().into_bytes());
        }
        if let Some(h) = p.strip_prefix("issuer/") {
            return issuers.get(h).cloned();
        }
        if p.starts_with("tile/") && !p.contains("..") {
            let mut d = std::fs::read(dir.join(p)).ok()?;
            if tamper == Some(p) {
                d[300] ^= 0x01;
            }
            return Some(d);
        }
        None
    })
}

fn query(path: &str, key: &str) -> Option<String> {
    let q = path.split_once('?')?.1;
    q.split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")[..]).map(str::to_owned))
}

/// The Pilot FourEntries behind an RFC 6962 API capping get-entries at `cap` entries.
/// `sth_body`: the get-sth body to serve (None: a correct one signed by the test key).
pub fn pilot_handler(cap: usize, sth_body: Option<Vec<u8>>) -> Handler {
    let body = read("certificate-transparency-go/scanner/FourEntries.get-entries.json");
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let entries = json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                b64.decode(e["leaf_input"].as_str().unwrap()).unwrap(),
                b64.decode(e["extra_data"].as_str().unwrap()).unwrap(),
            )
        })
        .collect();
    rfc6962_handler(entries, 1396877652123, cap, sth_body)
}

/// An RFC 6962 log (§4) serving `entries` (`leaf_input`, `extra_data` bytes) with a tree head of
/// all of them at `sth_timestamp_ms` signed by the test key (or `sth_body` verbatim), capping
/// get-entries at `cap`, answering get-proof-by-hash from the leaf hashes it computes itself.
pub fn rfc6962_handler(
    entries: Vec<(Vec<u8>, Vec<u8>)>,
    sth_timestamp_ms: u64,
    cap: usize,
    sth_body: Option<Vec<u8>>,
) -> Handler {
    let b64 = base64::engine::general_purpose::STANDARD;
    let leaves: Vec<Hash> = entries
        .iter()
        .map(|(l, _)| {
            let mut h = sha2::Sha256::new();
            h.update([0u8]);
            h.update(l);
            h.finalize().into()
        })
        .collect();
    let root = merkle::root_of_leaves(&leaves);
    let size = entries.len() as u64;
    let sth_body = sth_body.unwrap_or_else(|| {
        serde_json::json!({
            "tree_size": size, "timestamp": sth_timestamp_ms,
            "sha256_root_hash": b64.encode(root),
            "tree_head_signature": b64.encode(sign_tree_head(sth_timestamp_ms, size, &root)),
        })
        .to_string()
        .into_bytes()
    });
    let json_entries: Vec<serde_json::Value> = entries
        .iter()
        .map(|(l, x)| serde_json::json!({"leaf_input": b64.encode(l), "extra_data": b64.encode(x)}))
        .collect();
    Arc::new(move |path: &str| {
        if path.starts_with("/ct/v1/get-sth-consistency") {
            return None;
        }
        if path.starts_with("/ct/v1/get-sth") {
            return Some(sth_body.clone());
        }
        if path.starts_with("/ct/v1/get-entries") {
            let start: usize = query(path, "start")?.parse().ok()?;
            let end: usize = query(path, "end")?.parse().ok()?;
            let end = end.min(json_entries.len() - 1).min(start + cap - 1);
            let slice = json_entries.get(start..=end)?;
            return Some(
                serde_json::json!({ "entries": slice })
                    .to_string()
                    .into_bytes(),
            );
        }
        if path.starts_with("/ct/v1/get-proof-by-hash") {
            let h = query(path, "hash")?
                .replace("%2B", "+")
                .replace("%2F", "/")
                .replace("%3D", "=");
            let size: u64 = query(path, "tree_size")?.parse().ok()?;
            let hash: Hash = b64.decode(h).ok()?.try_into().ok()?;
            let idx = leaves.iter().position(|l| *l == hash)? as u64;
            let path = merkle::inclusion_path(idx, size, |s, e| {
                Ok::<_, ()>(merkle::root_of_leaves(&leaves[s as usize..e as usize]))
            })
            .ok()?;
            let ap: Vec<String> = path.iter().map(|p| b64.encode(p)).collect();
            return Some(
                serde_json::json!({ "leaf_index": idx, "audit_path": ap })
                    .to_string()
                    .into_bytes(),
            );
        }
        None
    })
}
