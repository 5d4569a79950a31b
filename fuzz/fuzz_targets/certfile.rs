//! The certificate-file reader: certificates found anywhere in text (PEM, PEM with escaped
//! newlines inside JSON or logs, base64 DER lines and fields) or a DER file, after the same
//! decompression by magic bytes (gzip, bzip2, xz) as an import.
#![no_main]

use certhist_files::certfile::{CertFileReader, FileItem};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = certhist_files::input::decompress(std::io::Cursor::new(data.to_vec())) else {
        return;
    };
    let Ok(mut reader) = CertFileReader::new(std::path::Path::new("fuzz.pem"), input) else {
        return;
    };
    while let Some(item) = reader.next_found() {
        if let FileItem::Cert(c) = item {
            assert!(!c.der.is_empty());
        }
    }
});
