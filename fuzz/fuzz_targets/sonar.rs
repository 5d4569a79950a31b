//! Rapid7 Project Sonar files: `sha1,base64-DER` certificate lines and `ip,sha1` host lines.
#![no_main]

use certhist_scan::sonar::{CertsReader, HostsReader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    certhist_fuzz::drain(Box::new(CertsReader::new(certhist_fuzz::input(data))));
    let time = chrono::DateTime::from_timestamp(1_483_228_800, 0).unwrap_or_default();
    certhist_fuzz::drain(Box::new(HostsReader::new(
        certhist_fuzz::input(data),
        time,
        443,
    )));
});
