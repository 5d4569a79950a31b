//! RFC 6962 JSON answers (`get-sth`, `get-entries`, `get-sth-consistency`, `get-proof-by-hash`,
//! `get-entry-and-proof`) and the v3 log list.
#![no_main]

use certhist_ct::sth::{
    parse_consistency, parse_entry_and_proof, parse_get_entries, parse_get_sth, parse_proof_by_hash,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_get_sth(data);
    let _ = parse_get_entries(data);
    let _ = parse_consistency(data);
    let _ = parse_proof_by_hash(data);
    let _ = parse_entry_and_proof(data);
    let _ = certhist_ct::loglist::parse(data);
});
