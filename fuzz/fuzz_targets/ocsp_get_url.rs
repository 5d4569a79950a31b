//! OCSP GET URLs (RFC 6960 Appendix A.1: percent-encoded base64 DER OCSPRequest after the
//! responder) and URL lists (`certutil -urlcache` output, one URL a line).
#![no_main]

use certhist_cryptnet::inputs::urls_from_text;
use certhist_cryptnet::ocsp::{build_get_url, decode_get_url};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = decode_get_url(text) {
        // What was decoded encodes again, and decodes to the same CertIDs.
        if let Some(url) = build_get_url(&d.responder, &d.cert_ids) {
            let again = decode_get_url(&url).expect("a built OCSP GET URL decodes");
            assert_eq!(again.cert_ids, d.cert_ids);
        }
    }
    for e in urls_from_text("fuzz", text) {
        let _ = e.kind();
    }
});
