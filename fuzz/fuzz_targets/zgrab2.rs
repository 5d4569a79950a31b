//! ZGrab2 output: JSON lines, pretty-printed JSON objects and 2015 ZGrab logs.
#![no_main]

use certhist_scan::formats::Zgrab2Files;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let format = Zgrab2Files {
        port: None,
        source: "fuzz".to_owned(),
    };
    certhist_fuzz::read_as(&format, "zgrab2_443.json", data);
});
