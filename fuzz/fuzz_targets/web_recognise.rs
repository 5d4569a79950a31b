//! The web UI's search box: every reading of the text, with its link and description. Links are
//! built from parsed values and never carry markup or a second path.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for (href, _) in certhist_api::fuzzing::search_box(text) {
        assert!(href.starts_with('/'), "link {href:?}");
        assert!(!href.starts_with("//"), "link {href:?}");
        assert!(
            !href.contains(['<', '>', '"', '\'', ' ', '\n']),
            "link {href:?}"
        );
    }
});
