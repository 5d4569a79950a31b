//! The API's query-string parsers: every error is a 400 naming its parameter, nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    certhist_api::fuzzing::query_params(text);
    let _ = certhist_model::parse_timestamp(text);
    let _ = certhist_model::parse_cert_hash(text);
    let _ = certhist_model::Serial::parse_candidates(text);
});
