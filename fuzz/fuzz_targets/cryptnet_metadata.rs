//! CryptnetUrlCache MetaData files: the parser, its round trip through the builder, and a whole
//! cache entry (MetaData + Content, split at the first `\0\0\0\0CONTENT` marker).
#![no_main]

use certhist_cryptnet::metadata::{build_metadata, check_name, parse_metadata};
use certhist_cryptnet::{CacheEntry, Origin};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = parse_metadata(data) {
        let again = parse_metadata(&build_metadata(&m)).expect("a built MetaData parses");
        assert_eq!(
            again,
            certhist_cryptnet::Metadata {
                trailing_bytes: 0,
                ..m.clone()
            }
        );
        let _ = check_name("D5C7DBDF0E1B3EB5A1BF6A08F4F6A3D3", &m.url);
    }
    let parts = certhist_fuzz::split(data, b"\0\0\0\0CONTENT", 2);
    let entry = CacheEntry::from_files(
        "fuzz".to_owned(),
        "D5C7DBDF0E1B3EB5A1BF6A08F4F6A3D3",
        parts[0],
        parts.get(1).copied(),
    );
    let _ = (entry.kind(), entry.time());
    let _ = Origin::Metadata;
});
