//! masscan output with X509 banners: XML (`-oX`), JSON (`-oJ`), NDJSON (`-oD`), list (`-oL`).
#![no_main]

use certhist_scan::formats::MasscanFiles;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let format = MasscanFiles {
        source: "fuzz".to_owned(),
    };
    certhist_fuzz::read_as(&format, "fuzz.masscan", data);
});
