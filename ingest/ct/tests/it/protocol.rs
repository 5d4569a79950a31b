//! Pure protocol code on the real fixtures (values from tests/data/ct/README.md).

use base64::Engine as _;
use certhist_ct::checkpoint::Checkpoint;
use certhist_ct::leaf::{self, Chain, EntryType};
use certhist_ct::merkle::{self, CompactRange};
use certhist_ct::sig::PublicKey;
use certhist_ct::sth;
use certhist_ct::tile;
use sha1::Digest as _;

use crate::{read, NAVIGLI};

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn hx(b: &[u8]) -> String {
    hex::encode(b)
}

fn navigli_entries() -> Vec<leaf::LogEntry> {
    let mut all = Vec::new();
    for t in 0..4u64 {
        let data = read(&format!("{NAVIGLI}/tile/data/{:03}", t));
        let e = leaf::parse_data_tile(&data, t * 256).unwrap();
        assert_eq!(e.len(), 256);
        all.extend(e);
    }
    all
}

#[test]
fn navigli_entry_zero_and_leaf_hashes_match_hash_tiles() {
    let entries = navigli_entries();
    let e0 = &entries[0];
    assert_eq!(e0.entry_type, EntryType::Precert);
    assert_eq!(e0.timestamp_ms, 1746292399101);
    assert_eq!(entries[1023].timestamp_ms, 1746292689102);
    assert_eq!(
        hx(&e0.leaf_hash),
        "c853d5121104135a85f8a66a9d16d62234d541473ed78424032622564baddddf"
    );
    assert_eq!(
        hx(&sha1::Sha1::digest(&e0.cert_der)),
        "7cf01be9117755a7268ddc2dbf2bace7752488a4"
    );
    assert_eq!(
        hx(&sha2::Sha256::digest(&e0.cert_der)),
        "f404aa5dd1f97b07be342d17f6db14cd5a3c35bf7057d9431a9cd996f723aff6"
    );
    // chain[1] of every entry is the staging root; chain[0] one of four intermediates.
    let root_fp = "e70570a989f8565aabdf7cae27abd1621872d6a3f811e3fef27e3dba02912198";
    let mut by_issuer = std::collections::HashMap::<String, usize>::new();
    for e in &entries {
        assert_eq!(e.entry_type, EntryType::Precert);
        let Chain::Fingerprints(fps) = &e.chain else {
            panic!("static chain")
        };
        assert_eq!(fps.len(), 2);
        assert_eq!(hx(&fps[1]), root_fp);
        *by_issuer.entry(hx(&fps[0])).or_default() += 1;
    }
    assert_eq!(
        by_issuer["a0249f0ed148f481e1c1b423dfb7e93b1e3ec8e917b7982a9b698ca786d08b92"],
        458
    );
    assert_eq!(
        by_issuer["8dbfd9adf53278fccfee54d18d60c1639986ee288f45ceaf6e27d33a3fed0842"],
        449
    );
    assert_eq!(
        by_issuer["54588456f084df53d35714fb90760edaf1d222500858b4c07d3a4d91308dec42"],
        65
    );
    assert_eq!(
        by_issuer["a9933c5ccae8726c528541bbe6176ad20f922bf139b9430077bf6036a2979d28"],
        52
    );
    // issuer_key_hash = SHA-256(SPKI of chain[0]) for R10 entries: entry 0 is R10.
    assert_eq!(hx(&e0.issuer_key_hash.unwrap())[..8], *"b3e49ac8");
    for t in 0..4usize {
        let hashes =
            tile::parse_hash_tile(&read(&format!("{NAVIGLI}/tile/0/{:03}", t)), 256).unwrap();
        for (i, h) in hashes.iter().enumerate() {
            assert_eq!(&entries[t * 256 + i].leaf_hash, h, "leaf {}", t * 256 + i);
        }
    }
    let leaves: Vec<_> = entries.iter().map(|e| e.leaf_hash).collect();
    assert_eq!(
        merkle::root_of_leaves(&leaves[..256]),
        b64("bIAheYeHkQOXeHKw0PKjttmJ2hGtGU/VDxU5b0SAb+c=")[..]
    );
    assert_eq!(
        merkle::root_of_leaves(&leaves[..778]),
        b64("+WnHOMRZl/LG1669oeskbdK9bcO4nkrY1cfVyknC52U=")[..]
    );
    assert_eq!(
        merkle::root_of_leaves(&leaves),
        b64("EMfGG85uIddeOXt5/wdQGP3IQd0COCqoLg9Q6CsPLJA=")[..]
    );
    // The partial tile holds the first 10 entries of tile 3.
    let partial =
        leaf::parse_data_tile(&read(&format!("{NAVIGLI}/tile/data/003.p/10")), 768).unwrap();
    assert_eq!(partial.len(), 10);
    assert_eq!(partial[..], entries[768..778]);
}

#[test]
fn tampered_or_misplaced_data_tile_is_an_error_not_a_panic() {
    let data = read(&format!("{NAVIGLI}/tile/data/000"));
    // leaf_index extension mismatch: parsing tile 0 as tile 1.
    assert!(leaf::parse_data_tile(&data, 256).is_err());
    for cut in [1usize, 7, 100, data.len() / 2, data.len() - 1] {
        assert!(leaf::parse_data_tile(&data[..cut], 0).is_err(), "cut {cut}");
    }
    // A flipped byte inside a certificate changes the leaf hash.
    let mut bad = data.clone();
    bad[500] ^= 1;
    let e = leaf::parse_data_tile(&bad, 0).unwrap();
    let hashes = tile::parse_hash_tile(&read(&format!("{NAVIGLI}/tile/0/000")), 256).unwrap();
    assert_ne!(e[0].leaf_hash, hashes[0]);
}

#[test]
fn pilot_four_entries_sha1s_leaf_hashes_and_mth() {
    let body = read("certificate-transparency-go/scanner/FourEntries.get-entries.json");
    let raw = sth::parse_get_entries(&body).unwrap();
    let entries: Vec<_> = raw
        .iter()
        .enumerate()
        .map(|(i, (l, x))| leaf::entry_from_rfc6962(i as u64, l, x).unwrap())
        .collect();
    let sha1s: Vec<String> = entries
        .iter()
        .map(|e| hx(&sha1::Sha1::digest(&e.cert_der)))
        .collect();
    assert_eq!(
        sha1s,
        [
            "e4b1743d5e839344a168d643e2f7bdd194ce5ab2",
            "d974f6cb6f101b6680b05208f120845eb1121336",
            "8a3adaa6df00aea321317d30d6a841d63b363014",
            "f4062300d5f4422f895760a11da1446ec1e7eafe"
        ]
    );
    assert_eq!(
        hx(&entries[0].leaf_hash),
        "c036e5ae4065859ed4aa298e6914b5f0c8eabcdcadfc5736b5ccba9d638d63ce"
    );
    assert!(
        hx(&entries[1].leaf_hash).starts_with("fcd783d9")
            && hx(&entries[1].leaf_hash).ends_with("c096")
    );
    assert!(hx(&entries[2].leaf_hash).starts_with("87a5a8eb"));
    assert!(hx(&entries[3].leaf_hash).starts_with("6504ccf2"));
    let ts: Vec<u64> = entries.iter().map(|e| e.timestamp_ms).collect();
    assert_eq!(
        ts,
        [1364258252899, 1364288407155, 1364288407155, 1364288407156]
    );
    let chain_lens: Vec<usize> = entries
        .iter()
        .map(|e| match &e.chain {
            Chain::Certs(c) => c.len(),
            Chain::Fingerprints(_) => 0,
        })
        .collect();
    assert_eq!(chain_lens, [2, 3, 3, 2]);
    let leaves: Vec<_> = entries.iter().map(|e| e.leaf_hash).collect();
    let root = merkle::root_of_leaves(&leaves);
    assert_eq!(
        hx(&root),
        "036ead9a071a509a64157169933092f1b276f5c4011201312806052fc8622791"
    );
    // The bogus STH: wrong root (no 0x00/0x01 prefixes) and a placeholder signature.
    let bogus = sth::parse_get_sth(&read(
        "certificate-transparency-go/scanner/FourEntrySTH.get-sth.json",
    ))
    .unwrap();
    assert_eq!(bogus.tree_size, 4);
    assert_ne!(bogus.root, root);
}

#[test]
fn pilot_short_read_has_six_entries_with_listed_leaf_hashes() {
    let raw = sth::parse_get_entries(&read(
        "certificate-transparency-client-rb/spec/fixtures/ok_entries",
    ))
    .unwrap();
    assert_eq!(raw.len(), 6);
    let hashes: Vec<String> = raw
        .iter()
        .enumerate()
        .map(|(i, (l, x))| {
            hx(&leaf::entry_from_rfc6962(1000 + i as u64, l, x)
                .unwrap()
                .leaf_hash)
        })
        .collect();
    let expect = [
        ("996631b6", "01f2"),
        ("c76bd455", "1bff"),
        ("6bdd66a4", "43b5"),
        ("807497fd", "af20"),
        ("23521e48", "cc6d"),
        ("c2734ad5", "19ec"),
    ];
    for (h, (a, z)) in hashes.iter().zip(expect) {
        assert!(h.starts_with(a) && h.ends_with(z), "{h}");
    }
}

#[test]
fn icarus_inclusion_and_consistency_proofs_against_signed_sths() {
    let key = PublicKey::from_spki_der(&read("hash-tree/icarus.pubkey.der")).unwrap();
    assert_eq!(
        key.log_id()[..],
        b64("KTxRllTIOWW6qlD8WAfUt2+/WHopctykwwz05UVH9Hg=")[..]
    );
    let sth1 =
        sth::parse_get_sth(&read("hash-tree/icarus.get-sth.tree_size=129596132.json")).unwrap();
    let sth2 =
        sth::parse_get_sth(&read("hash-tree/icarus.get-sth.tree_size=129721434.json")).unwrap();
    sth1.verify(&key).unwrap();
    sth2.verify(&key).unwrap();
    let mut forged = sth2.clone();
    forged.tree_size += 1;
    assert!(forged.verify(&key).is_err());

    let (li, extra, path) = sth::parse_entry_and_proof(&read(
        "hash-tree/icarus.get-entry-and-proof.leaf_index=120000000.tree_size=129721434.json",
    ))
    .unwrap();
    assert_eq!(path.len(), 27);
    let e = leaf::entry_from_rfc6962(120000000, &li, &extra).unwrap();
    assert_eq!(
        e.leaf_hash[..],
        b64("rchYy6UmVO5S3evJlutJZUx/ytdFfHxKdoJ4XAwx39w=")[..]
    );
    assert_eq!(e.timestamp_ms, 1506544952567);
    assert_eq!(e.entry_type, EntryType::X509);
    assert_eq!(
        hx(&sha1::Sha1::digest(&e.cert_der)),
        "80b6ccb8f1933c0483e38621e19da8d30dfedb4a"
    );
    // extra_data: a 3-byte list length, then the 2026-byte 2-cert chain (LE X3, DST Root CA X3).
    assert_eq!(extra.len(), 3 + 2026);
    assert!(matches!(&e.chain, Chain::Certs(c) if c.len() == 2));
    let left = merkle::verify_inclusion(120000000, sth2.tree_size, &e.leaf_hash, &path, &sth2.root)
        .unwrap();
    assert_eq!(left.end(), 120000000);
    assert!(
        merkle::verify_inclusion(120000001, sth2.tree_size, &e.leaf_hash, &path, &sth2.root)
            .is_err()
    );
    assert!(
        merkle::verify_inclusion(120000000, sth1.tree_size, &e.leaf_hash, &path, &sth1.root)
            .is_err()
    );

    let cons = sth::parse_consistency(&read(
        "hash-tree/icarus.get-sth-consistency.first=129596132.second=129721434.json",
    ))
    .unwrap();
    assert_eq!(cons.len(), 24);
    merkle::verify_consistency(
        sth1.tree_size,
        sth2.tree_size,
        &sth1.root,
        &sth2.root,
        &cons,
    )
    .unwrap();
    let mut bad = cons.clone();
    bad[3][0] ^= 1;
    assert!(merkle::verify_consistency(
        sth1.tree_size,
        sth2.tree_size,
        &sth1.root,
        &sth2.root,
        &bad
    )
    .is_err());
}

#[test]
fn sth_signatures_ecdsa_and_rsa() {
    let pilot = PublicKey::from_text_or_der(&read(
        "certificate-transparency-client-rb/spec/fixtures/pk_base64",
    ))
    .unwrap();
    assert_eq!(
        pilot.log_id()[..],
        b64("pLkJkLQYWBSHuxOizGdwCjw1mAT5G9+443fNDsgN3BA=")[..]
    );
    let s = sth::parse_get_sth(&read(
        "certificate-transparency-client-rb/spec/fixtures/ok_sth",
    ))
    .unwrap();
    assert_eq!((s.tree_size, s.timestamp_ms), (7872977, 1434016531856));
    s.verify(&pilot).unwrap();
    let rocketeer = PublicKey::from_text_or_der(&read(
        "certificate-transparency-rb/spec/fixtures/rocketeer_pk",
    ))
    .unwrap();
    let r =
        sth::parse_get_sth(&read("certificate-transparency-rb/spec/fixtures/json_sth")).unwrap();
    assert_eq!(r.tree_size, 4967961);
    r.verify(&rocketeer).unwrap();
    assert!(r.verify(&pilot).is_err());
    let rsa =
        PublicKey::from_text_or_der(&read("certificate-transparency-rb/spec/fixtures/rsa_pk"))
            .unwrap();
    let rs = sth::parse_get_sth(&read(
        "certificate-transparency-rb/spec/fixtures/rsa_signed_sth",
    ))
    .unwrap();
    rs.verify(&rsa).unwrap();
    let mut forged = rs.clone();
    forged.root[0] ^= 1;
    assert!(forged.verify(&rsa).is_err());
    // The bogus Pilot STH's placeholder signature is refused.
    let bogus = sth::parse_get_sth(&read(
        "certificate-transparency-go/scanner/FourEntrySTH.get-sth.json",
    ))
    .unwrap();
    assert!(bogus.verify(&pilot).is_err());
}

#[test]
fn rfc6962_binary_structures() {
    let d = "certificate-transparency-rb/spec/fixtures";
    let li = read(&format!("{d}/leaf_input"));
    let te = leaf::parse_merkle_tree_leaf(&li).unwrap();
    assert_eq!(
        (te.entry_type, te.timestamp_ms),
        (EntryType::X509, 1415251876119)
    );
    assert_eq!(
        hx(&leaf::leaf_hash(&li)),
        "bcd78043964e3358be5e58aaa11677f5c50cb26926b2221e9249c0fd294cb6b0"
    );
    let data = read(&format!("{d}/timestamped_entry_precert"));
    let mut r = certhist_ct::tls::Reader::new(&data);
    let pe = leaf::TimestampedEntry::read(&mut r).unwrap();
    assert_eq!(
        (pe.entry_type, pe.timestamp_ms),
        (EntryType::Precert, 1423491905275)
    );
    let ikh = pe.issuer_key_hash.unwrap();
    assert_eq!(hx(&ikh)[..8], *"52c9e169");
    assert_eq!(hx(&sha2::Sha256::digest(ikh))[..8], *"106079e8");
    assert_eq!(pe.signed_der.len(), 1055);
    assert_eq!(
        hx(&sha2::Sha256::digest(&pe.signed_der)),
        "9ec6b10b6e4a59f0ae0117b0e4a93479eced9bc55625601ad6a1c4a774eac61a"
    );
    let chain = leaf::parse_cert_chain(&read(&format!("{d}/cert_chain"))).unwrap();
    assert!(!chain.is_empty());
    assert!(leaf::parse_cert_chain(&read(&format!("{d}/cert_chain"))[..10]).is_err());
}

#[test]
fn checkpoints_parse_and_verify() {
    let cp = Checkpoint::parse(&read("certspotter/cttypes/sycamore2024h2.checkpoint")).unwrap();
    assert_eq!(cp.origin, "sycamore.ct.letsencrypt.org/2024h2");
    assert_eq!(cp.tree_size, 820495916);
    assert_eq!(
        hx(&cp.root),
        "c03a6be9f11dc9cc2089e445a73f6141ee82e80d2d83a2b66553d496d71ed212"
    );
    let log_id: [u8; 32] =
        hex::decode("494d9049b8af3e5acaba993e4c1f3056737aa9f96d00f7b0b9b25106f7be1a8f")
            .unwrap()
            .try_into()
            .unwrap();
    assert_eq!(
        hx(&certhist_ct::checkpoint::rfc6962_key_id(
            &cp.origin, &log_id
        )),
        "3dd9086a"
    );
    let th = cp.rfc6962_tree_head(Some(&log_id)).unwrap();
    assert_eq!(th.timestamp_ms, 1719511711300);

    let text = read("sunlight/cmd/skylight/testdata/tree/checkpoint");
    let cp = Checkpoint::parse(&text).unwrap();
    let list: serde_json::Value =
        serde_json::from_slice(&read("sunlight/cmd/skylight/testdata/tree/log.v3.json")).unwrap();
    let key = PublicKey::from_text_or_der(list["key"].as_str().unwrap().as_bytes()).unwrap();
    let th = cp.verify_rfc6962(&key).unwrap();
    assert_eq!((th.tree_size, th.timestamp_ms), (300, 1767139200000));
    assert_eq!(
        cp.root[..],
        b64("lCkHUpkmVBEms2r2T1K6Og69+wUuuN3MIEW1/ezu2v0=")[..]
    );
    // Changing the size breaks the signature; malformed notes are errors.
    let forged = String::from_utf8(text.clone())
        .unwrap()
        .replacen("\n300\n", "\n301\n", 1);
    assert!(Checkpoint::parse(forged.as_bytes())
        .unwrap()
        .verify_rfc6962(&key)
        .is_err());
    let dash = String::from_utf8(text.clone())
        .unwrap()
        .replace('\u{2014}', "-");
    assert!(Checkpoint::parse(dash.as_bytes()).is_err());
    assert!(Checkpoint::parse(b"origin\n01\nAAAA\n\n").is_err());
    assert!(Checkpoint::parse(&text[..text.len() - 1]).is_err());
}

#[test]
fn compact_range_from_hash_tiles_resumes_roots() {
    // [0, 778) from the partial level-0 tile + full tiles, via aligned subtrees.
    let mut cr = CompactRange::new();
    for t in 0..3 {
        let h = tile::parse_hash_tile(&read(&format!("{NAVIGLI}/tile/0/{:03}", t)), 256).unwrap();
        cr.append_subtree(8, merkle::root_of_leaves(&h));
    }
    for h in tile::parse_hash_tile(&read(&format!("{NAVIGLI}/tile/0/003.p/10")), 10).unwrap() {
        cr.push(h);
    }
    assert_eq!(
        cr.root()[..],
        b64("+WnHOMRZl/LG1669oeskbdK9bcO4nkrY1cfVyknC52U=")[..]
    );
}

/// Log keys as DER, base64, PEM (decoded by rustls-pki-types since issue 11), from a file or
/// from the argument itself.
#[test]
fn public_key_forms() {
    let b64_text = read("certificate-transparency-client-rb/spec/fixtures/pk_base64");
    let der = base64::engine::general_purpose::STANDARD
        .decode(String::from_utf8(b64_text.clone()).unwrap().trim())
        .unwrap();
    let want = PublicKey::from_spki_der(&der).unwrap().log_id();
    let mut pem = String::from("Pilot's key\n-----BEGIN PUBLIC KEY-----\n");
    for line in base64::engine::general_purpose::STANDARD
        .encode(&der)
        .as_bytes()
        .chunks(64)
    {
        pem.push_str(std::str::from_utf8(line).unwrap());
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    for form in [&der[..], &b64_text[..], pem.as_bytes()] {
        assert_eq!(PublicKey::from_text_or_der(form).unwrap().log_id(), want);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pilot.pem");
    std::fs::write(&file, &pem).unwrap();
    let from_file = PublicKey::from_file_or_text(file.to_str().unwrap()).unwrap();
    assert_eq!(from_file.log_id(), want);
    let from_arg =
        PublicKey::from_file_or_text(std::str::from_utf8(&b64_text).unwrap().trim()).unwrap();
    assert_eq!(from_arg.log_id(), want);
    // A PEM block of another kind, and text that is not base64, are refused.
    let cert_pem = pem.replace("PUBLIC KEY", "CERTIFICATE");
    assert!(matches!(
        PublicKey::from_text_or_der(cert_pem.as_bytes()),
        Err(certhist_ct::CtError::BadKey(_))
    ));
    assert!(matches!(
        PublicKey::from_file_or_text("not a key!"),
        Err(certhist_ct::CtError::BadKey(_))
    ));
}
