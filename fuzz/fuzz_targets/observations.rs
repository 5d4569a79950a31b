//! Observation files: CSV, TSV and NDJSON sighting lines (layout and header detected from the
//! first line).
#![no_main]

use certhist_files::ObservationFiles;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    certhist_fuzz::read_as(&ObservationFiles::default(), "fuzz.csv", data);
});
