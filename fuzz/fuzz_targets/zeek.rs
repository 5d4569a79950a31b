//! Zeek / Bro `ssl.log` (TSV with `#` headers, or JSON lines) joined to `x509.log` and
//! `files.log` of the same directory. The input is the ssl log, then optionally `\n@x509\n` and
//! the x509 log, then `\n@files\n` and the files log; they are written to a directory of this
//! process and read as an import does.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use certhist_sensors::ZeekSsl;
use libfuzzer_sys::fuzz_target;

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("certhist-fuzz-zeek-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("temporary directory");
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let (ssl, rest) = match certhist_fuzz::split(data, b"\n@x509\n", 2).as_slice() {
        [ssl, rest] => (*ssl, *rest),
        _ => (data, &[][..]),
    };
    let side = certhist_fuzz::split(rest, b"\n@files\n", 2);
    let d = dir();
    std::fs::write(d.join("x509.log"), side[0]).expect("write x509.log");
    std::fs::write(
        d.join("files.log"),
        side.get(1).copied().unwrap_or_default(),
    )
    .expect("write files.log");
    let format = ZeekSsl {
        source: "fuzz".to_owned(),
    };
    certhist_fuzz::read_as(
        &format,
        d.join("ssl.log").to_str().unwrap_or("ssl.log"),
        ssl,
    );
});
