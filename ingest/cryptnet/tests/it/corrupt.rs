//! Corrupted inputs are reported per entry while the rest of the folder is processed.

use std::path::Path;

use certhist_cryptnet::{load_path, CacheContentKind};

use crate::fixtures::data_dir;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

#[test]
fn corrupted_files_reported_rest_processed() {
    let tmp = tempfile::tempdir().unwrap();
    // A collected profile tree, with odd capitalisation of the cache folder names.
    let cache = tmp
        .path()
        .join("Users/alice/AppData/LocalLow/Microsoft/cryptneturlcache");
    copy_dir(&data_dir().join("mohdan__codingTest/7de46a191103"), &cache);
    std::fs::rename(cache.join("MetaData"), cache.join("metadata")).unwrap();
    let md = cache.join("metadata");
    let content = cache.join("Content");
    let good =
        std::fs::read(md.join("40E450F7CE13419A2CCC2A5445035A0A_06F02B1F13AB4B11B8FC669BDE565AF1"))
            .unwrap();
    let good_content = std::fs::read(
        content.join("40E450F7CE13419A2CCC2A5445035A0A_06F02B1F13AB4B11B8FC669BDE565AF1"),
    )
    .unwrap();
    // truncated inside the header / inside the URL
    std::fs::write(md.join("TRUNC_HEADER"), &good[..50]).unwrap();
    std::fs::write(md.join("TRUNC_URL"), &good[..good.len() - 10]).unwrap();
    // random bytes (deterministic xorshift)
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let random: Vec<u8> = (0..700)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(md.join("RANDOM"), &random).unwrap();
    // huge URL length
    let mut huge = good.clone();
    huge[0x0C..0x10].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    std::fs::write(md.join("HUGE_LEN"), &huge).unwrap();
    // odd UTF-16 length, and an unpaired surrogate in the URL
    let mut odd = good.clone();
    let url_len = u32::from_le_bytes(odd[0x0C..0x10].try_into().unwrap());
    odd[0x0C..0x10].copy_from_slice(&(url_len - 1).to_le_bytes());
    std::fs::write(md.join("ODD_UTF16"), &odd).unwrap();
    let mut surrogate = good.clone();
    surrogate[0x74..0x76].copy_from_slice(&0xDC00u16.to_le_bytes());
    std::fs::write(md.join("BAD_UTF16"), &surrogate).unwrap();
    // good MetaData whose Content is truncated DER
    std::fs::write(md.join("SHORT_CONTENT"), &good).unwrap();
    std::fs::write(
        content.join("SHORT_CONTENT"),
        &good_content[..good_content.len() / 2],
    )
    .unwrap();
    // good MetaData without a Content file
    std::fs::write(md.join("NO_CONTENT"), &good).unwrap();

    let loaded = load_path(tmp.path()).unwrap();
    assert_eq!(loaded.caches.len(), 1);
    assert_eq!(loaded.entries.len(), 12 + 8);
    let by_name = |n: &str| {
        loaded
            .entries
            .iter()
            .find(|e| e.source.ends_with(n))
            .unwrap()
    };
    for (name, needle) in [
        ("TRUNC_HEADER", "shorter than the 116-byte header"),
        ("TRUNC_URL", "only"),
        ("RANDOM", "MetaData"),
        ("HUGE_LEN", "4294967280"),
        ("ODD_UTF16", "odd"),
        ("BAD_UTF16", "not valid UTF-16LE"),
    ] {
        let e = by_name(name);
        assert!(e.metadata.is_none(), "{name}");
        assert!(
            e.errors.iter().any(|m| m.contains(needle)),
            "{name}: {:?}",
            e.errors
        );
    }
    let short = by_name("SHORT_CONTENT");
    assert_eq!(short.cert_ids.len(), 1, "URL still decodes");
    let c = short.content.as_ref().unwrap();
    assert_eq!(c.kind, CacheContentKind::OcspResponse);
    assert!(c.error.is_some());
    assert!(
        short.errors.iter().any(|m| m.contains("Content is")),
        "{:?}",
        short.errors
    );
    let missing = by_name("NO_CONTENT");
    assert_eq!(
        missing.content.as_ref().unwrap().kind,
        CacheContentKind::Missing
    );
    assert_eq!(missing.name_check.unwrap().as_str(), "mismatch");
    // the 12 real entries are intact
    let clean = loaded
        .entries
        .iter()
        .filter(|e| e.errors.is_empty() && e.metadata.is_some())
        .count();
    assert_eq!(clean, 12 + 1); // + NO_CONTENT (missing content is not an error)
}

#[test]
fn zip_of_a_profile_tree_and_url_lists() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let zip_path = tmp.path().join("collection.zip");
    let mut zw = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let src = data_dir().join("mohdan__codingTest/7de46a191103");
    for (prefix, sub) in [
        (
            "C/Users/bob/AppData/LocalLow/Microsoft/CryptnetUrlCache",
            "",
        ),
        (
            "C/Windows/System32/config/systemprofile/AppData/LocalLow/Microsoft/CRYPTNETURLCACHE",
            "",
        ),
    ] {
        let _ = sub;
        for d in ["MetaData", "Content"] {
            for e in std::fs::read_dir(src.join(d)).unwrap() {
                let e = e.unwrap();
                zw.start_file(
                    format!("{prefix}/{d}/{}", e.file_name().to_string_lossy()),
                    opts,
                )
                .unwrap();
                zw.write_all(&std::fs::read(e.path()).unwrap()).unwrap();
            }
        }
    }
    zw.finish().unwrap();
    let loaded = load_path(&zip_path).unwrap();
    assert_eq!(loaded.caches.len(), 2, "{:?}", loaded.caches);
    assert_eq!(loaded.entries.len(), 24);
    assert!(loaded.entries.iter().all(|e| e.errors.is_empty()));
    assert_eq!(
        loaded
            .entries
            .iter()
            .filter(|e| !e.cert_ids.is_empty())
            .count(),
        2 * 6
    );

    // certutil -urlcache style dump and a plain list
    let dump = tmp.path().join("urlcache.txt");
    std::fs::write(
        &dump,
        "  http://r3.o.lencr.org/MFMwUTBPME0wSzAJBgUrDgMCGgUABBRI2smg%2ByvTLU%2Fw3mjS9We3NfmzxAQUFC6zF7dYVsuuUAlA5h%2BvnYsUwsYCEgNJysJh3kjaVPgcXCDHUNNWsA%3D%3D\n  http://x1.c.lencr.org/\nWinHttp Cache entries: 2\nCertUtil: -URLCache command completed successfully.\n",
    )
    .unwrap();
    let d = load_path(&dump).unwrap();
    assert_eq!(d.entries.len(), 2);
    assert_eq!(d.entries[0].origin, certhist_cryptnet::Origin::CertutilDump);
    assert_eq!(
        d.entries[0].cert_ids[0].serial.to_hex(),
        "349CAC261DE48DA54F81C5C20C750D356B0"
    );
    assert!(d.entries[1].cert_ids.is_empty());
    let list = tmp.path().join("urls.lst");
    std::fs::write(&list, "http://ocsp.example/garbage\nnot a url\n").unwrap();
    let l = load_path(&list).unwrap();
    assert_eq!(l.entries.len(), 1);
    assert_eq!(l.entries[0].origin, certhist_cryptnet::Origin::UrlList);
    std::fs::write(&list, "nothing here\n").unwrap();
    assert!(load_path(&list).is_err());
}
