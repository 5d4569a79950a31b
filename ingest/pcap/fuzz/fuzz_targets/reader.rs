//! Arbitrary bytes through the whole reader: capture formats, link layers, TCP reassembly and
//! TLS parsing must never panic. Run: `cd ingest/pcap/fuzz && cargo +nightly fuzz run reader`
//! (seed corpus: the capture fixtures, `-- ../../../tests/data/passive/pcap`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // As given, and behind a valid pcap header (so that the packet paths are reached often).
    if let Ok(reader) = certhist_pcap::Reader::new(std::io::Cursor::new(data.to_vec())) {
        let _ = reader.finish();
    }
    let mut framed = vec![
        0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0,
    ];
    framed.extend_from_slice(data);
    if let Ok(reader) = certhist_pcap::Reader::new(std::io::Cursor::new(framed)) {
        let _ = reader.finish();
    }
});
