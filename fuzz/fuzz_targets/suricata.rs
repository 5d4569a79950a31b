//! Suricata `eve.json` lines (`event_type: tls`, with or without the certificate and chain).
#![no_main]

use certhist_sensors::SuricataEve;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let format = SuricataEve {
        source: "fuzz".to_owned(),
    };
    certhist_fuzz::read_as(&format, "eve.json", data);
});
