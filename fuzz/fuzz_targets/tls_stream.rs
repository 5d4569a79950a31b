//! The TLS record and handshake parser of passive capture (one direction of a TCP stream, fed in
//! segments: every `\xff\xfe\xfd` in the input ends a segment).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let segments = certhist_fuzz::split(data, b"\xff\xfe\xfd", usize::MAX);
    let (_, most) = certhist_pcap::fuzz_tls_direction(&segments);
    // What one direction holds: at most a record and a handshake message (plus growth slack)
    // beyond what it was given.
    assert!(
        most <= 2 * data.len() + 4 * 1024 * 1024,
        "{most} bytes buffered for {} bytes of input",
        data.len()
    );
});
