//! nmap XML (`-oX`) with `ssl-cert` script output.
#![no_main]

use certhist_scan::formats::NmapFiles;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let format = NmapFiles {
        source: "fuzz".to_owned(),
    };
    certhist_fuzz::read_as(&format, "fuzz.xml", data);
});
