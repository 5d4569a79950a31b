//! CryptnetUrlCache Content files: classification (certificate, CRL, OCSP response, PEM, CAB…)
//! and the OCSP response and request readers.
#![no_main]

use certhist_cryptnet::content::classify;
use certhist_cryptnet::ocsp::{parse_ocsp_request, parse_ocsp_response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let c = classify(data);
    std::hint::black_box(&c);
    if let Ok(r) = parse_ocsp_response(data) {
        for s in &r.responses {
            let _ = (s.status.as_str(), s.status.kind(), s.cert_id.to_der());
        }
    }
    if let Ok(ids) = parse_ocsp_request(data) {
        for id in &ids {
            let _ = id.to_der();
        }
    }
});
