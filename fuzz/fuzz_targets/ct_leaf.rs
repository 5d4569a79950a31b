//! Certificate Transparency entries: RFC 6962 `MerkleTreeLeaf`, `extra_data` chains and a whole
//! `get-entries` element (leaf and extra data split at the first `\0\0EXTRA`), plus the precert
//! check against the chain.
#![no_main]

use certhist_ct::leaf::{
    entry_from_rfc6962, parse_cert_chain, parse_merkle_tree_leaf, parse_precert_chain_entry, Chain,
};
use certhist_ct::precert::{check_precert, IssuerInfo};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(te) = parse_merkle_tree_leaf(data) {
        let _ = te.leaf_index_extension();
    }
    let _ = parse_cert_chain(data);
    let _ = parse_precert_chain_entry(data);
    let parts = certhist_fuzz::split(data, b"\0\0EXTRA", 2);
    let extra = parts.get(1).copied().unwrap_or_default();
    if let Ok(entry) = entry_from_rfc6962(7, parts[0], extra) {
        if let (Some(tbs), Some(ikh), Chain::Certs(chain)) =
            (&entry.precert_tbs, &entry.issuer_key_hash, &entry.chain)
        {
            let infos: Vec<IssuerInfo> = chain
                .iter()
                .filter_map(|c| IssuerInfo::from_der(c))
                .collect();
            let _ = check_precert(tbs, ikh, &entry.cert_der, None, &infos);
        }
    }
});
