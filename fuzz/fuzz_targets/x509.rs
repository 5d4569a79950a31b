//! Certificate DER → the stored summary (names, dates, key, extensions, hashes), the TBS without
//! CT extensions, and the DER helpers. A panic inside x509-parser is caught by `parse_der` (and
//! reported here as a crash by the panic hook); the record must never say it panicked.
#![no_main]

use certhist_x509::{der, is_parser_panic, parse_der, tbs_noct};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let record = parse_der(data);
    if let Some(e) = &record.parse_error {
        assert!(!is_parser_panic(e), "{e}");
    }
    assert_eq!(record.der, data);
    if let Some(tbs) = tbs_noct(data) {
        assert!(
            der::element_len(&tbs) == Some(tbs.len()),
            "re-encoded TBS is one element"
        );
    }
    let _ = der::children(data);
    let _ = certhist_ct::precert::IssuerInfo::from_der(data);
    let _ = certhist_ct::precert::tbs_without_issuer_and_aki(data);
});
