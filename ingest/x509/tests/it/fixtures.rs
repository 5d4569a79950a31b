//! Targeted checks on single fixtures. Expected values come from tests/data/certs/README.md
//! (upstream tests and independent recomputation) or from OpenSSL 3 output, noted per value.

use base64::Engine;
use certhist_model::{CertName, CertRecord, NameKind, Serial};
use certhist_x509::{parse_der, parse_many, tbs_noct};
use sha2::Digest;

use crate::{data_dir, read_all, read_one};

const PY: &str = "certificate-transparency/python/ct/crypto/testdata";
const ERW: &str = "certificate-transparency/test/testdata";

fn parse_file(rel: &str) -> CertRecord {
    let rec = parse_der(&read_one(rel));
    assert_eq!(rec.parse_error, None, "{rel}");
    rec
}

fn names_of(rec: &CertRecord, kind: NameKind) -> Vec<&str> {
    rec.names
        .iter()
        .filter(|n| n.kind == kind)
        .map(|n| n.name.as_str())
        .collect()
}

fn name<'a>(rec: &'a CertRecord, kind: NameKind, text: &str) -> &'a CertName {
    rec.names
        .iter()
        .find(|n| n.kind == kind && n.name == text)
        .unwrap_or_else(|| panic!("no {kind} name {text:?} in {:?}", rec.names))
}

fn hex_upper(bytes: &[u8]) -> String {
    hex::encode_upper(bytes)
}

#[test]
fn google_cert() {
    let rec = parse_file(&format!("{PY}/google_cert.pem"));
    assert_eq!(
        hex::encode(rec.sha1),
        "570fe2e3bfee986ed4a158aed8770f2e21614659"
    );
    assert_eq!(
        hex::encode(rec.sha256),
        "6d4106b4544e9e5e7a0924ee86a577ffefaadae8b8dad73413a7d874747a81d1"
    );
    assert_eq!(
        rec.serial.as_ref().unwrap().to_string(),
        "605381F50001000088BD"
    );
    assert_eq!(
        rec.serial,
        Some(Serial::parse_decimal("454887626504608315115709").unwrap())
    );
    assert!(!rec.serial_negative);
    assert_eq!(rec.subject.cn.as_deref(), Some("*.google.com"));
    let dns = names_of(&rec, NameKind::Dns);
    assert_eq!(dns.len(), 44);
    assert!(dns.contains(&"*.youtube.com"));
    assert_eq!(names_of(&rec, NameKind::Cn), ["*.google.com"]);
    // eTLD+1 by the Public Suffix List, wildcard label dropped.
    let rd = |n: &str| name(&rec, NameKind::Dns, n).registered_domain.as_deref();
    assert_eq!(rd("*.google.co.uk"), Some("google.co.uk"));
    assert_eq!(rd("*.google.com.au"), Some("google.com.au"));
    assert_eq!(rd("*.youtube.com"), Some("youtube.com"));
    assert_eq!(
        name(&rec, NameKind::Cn, "*.google.com")
            .registered_domain
            .as_deref(),
        Some("google.com")
    );
    assert!(!rec.is_ca);
    assert!(!rec.is_precert);
    // The DER copy of the same certificate reads to the same record.
    assert_eq!(parse_file(&format!("{PY}/google_cert.der")), rec);
}

#[test]
fn negative_serial() {
    let rec = parse_file(&format!("{PY}/negative_serial.pem"));
    // upstream cert_test.py: serial -218943125988803304701934765446014018
    assert!(rec.serial_negative);
    assert_eq!(
        rec.serial,
        Some(Serial::parse_decimal("218943125988803304701934765446014018").unwrap())
    );
}

#[test]
fn null_chars_are_made_visible() {
    let rec = parse_file(&format!("{PY}/null_chars.pem"));
    assert_eq!(
        rec.subject.cn.as_deref(),
        Some("null.python.org\u{2400}example.org")
    );
    assert_eq!(
        names_of(&rec, NameKind::Cn),
        ["null.python.org\u{2400}example.org"]
    );
    // A NUL-split name has no registered domain (it is not a host name).
    assert_eq!(
        name(&rec, NameKind::Cn, "null.python.org\u{2400}example.org").registered_domain,
        None
    );
    assert_eq!(names_of(&rec, NameKind::Ip), ["192.0.2.1", "2001:db8::1"]);
    assert_eq!(
        names_of(&rec, NameKind::Dns),
        ["altnull.python.org\u{2400}example.com"]
    );
    assert_eq!(
        names_of(&rec, NameKind::Uri),
        ["http://null.python.org\u{2400}http://example.org"]
    );
    let spoof = name(
        &rec,
        NameKind::Email,
        "null@python.org\u{2400}user@example.org",
    );
    assert_eq!(spoof.registered_domain, None);
    assert_eq!(
        name(&rec, NameKind::Email, "python-dev@python.org")
            .registered_domain
            .as_deref(),
        Some("python.org")
    );
    // No NUL anywhere in the stored text (PostgreSQL text cannot hold it).
    let dn_texts = [&rec.subject, &rec.issuer].into_iter().flat_map(|d| {
        [&d.dn, &d.cn, &d.o, &d.ou, &d.c, &d.l, &d.st, &d.email]
            .into_iter()
            .flatten()
    });
    for text in dn_texts.chain(rec.names.iter().map(|n| &n.name)) {
        assert!(!text.contains('\0'), "{text:?}");
    }
}

#[test]
fn multiple_alternative_names() {
    let rec = parse_file(&format!("{PY}/multiple_an.pem"));
    // OpenSSL: DNS:spires.wpafb.af.mil, DirName:/C=US/…, IP Address:129.48.105.104, URI:spires.wpafb.af.mil
    assert_eq!(names_of(&rec, NameKind::Dns), ["spires.wpafb.af.mil"]);
    assert_eq!(names_of(&rec, NameKind::Ip), ["129.48.105.104"]);
    assert_eq!(names_of(&rec, NameKind::Uri), ["spires.wpafb.af.mil"]);
    assert_eq!(
        name(&rec, NameKind::Uri, "spires.wpafb.af.mil").registered_domain,
        None
    );
    assert_eq!(
        name(&rec, NameKind::Dns, "spires.wpafb.af.mil")
            .registered_domain
            .as_deref(),
        Some("af.mil")
    );
    assert_eq!(
        rec.names.len(),
        4,
        "the DirName is not a name: {:?}",
        rec.names
    );
}

#[test]
fn invalid_ip_san_is_skipped() {
    let rec = parse_file(&format!("{PY}/invalid_ip.pem"));
    assert!(names_of(&rec, NameKind::Ip).is_empty());
}

#[test]
fn utf8_and_multiple_common_names() {
    let rec = parse_file(&format!("{PY}/cn_utf8.pem"));
    assert_eq!(
        rec.subject.cn.as_deref(),
        Some("ñeco ñýáěšžěšžřěčíě+ščýáíéřáíÚ")
    );
    assert_eq!(
        rec.subject.dn.as_deref(),
        Some("CN=ñeco ñýáěšžěšžřěčíě\\+ščýáíéřáíÚ")
    );
    assert_eq!(
        names_of(&rec, NameKind::Cn),
        ["ñeco ñýáěšžěšžřěčíě+ščýáíéřáíú"]
    );

    let rec = parse_file(&format!("{PY}/multiple_cn.pem"));
    // Six CNs (OpenSSL, RFC 2253 order: CN=www.rdio.com,…,CN=www.rd.io). In certificate order
    // www.rd.io comes first: that is the one kept in `cn`; all six are names.
    assert_eq!(rec.subject.cn.as_deref(), Some("www.rd.io"));
    let mut cns = names_of(&rec, NameKind::Cn);
    cns.sort_unstable();
    assert_eq!(
        cns,
        [
            "api.rd.io",
            "api.rdio.com",
            "rd.io",
            "rdio.com",
            "www.rd.io",
            "www.rdio.com"
        ]
    );
    assert_eq!(rec.subject.o.as_deref(), Some("Rdio, Inc."));
}

#[test]
fn version_1_certificates() {
    let rec = parse_file(&format!("{PY}/v1_cert.pem"));
    // OpenSSL: Version 1, serial 70:ba:e4:1d:…, md2WithRSAEncryption, no extensions.
    assert_eq!(
        rec.serial.as_ref().unwrap().to_string(),
        "70BAE41D10D92934B638CA7B03CCBABF"
    );
    assert_eq!(
        rec.signature_algorithm.as_deref(),
        Some("md2WithRSAEncryption")
    );
    assert!(rec.names.is_empty());
    assert_eq!(rec.subject_key_id, None);
    assert_eq!(rec.authority_key_id, None);
    assert!(!rec.is_ca);
    assert_eq!(
        rec.subject.ou.as_deref(),
        Some("Class 3 Public Primary Certification Authority")
    );
    // Self-signed: subject and issuer Name DER are the same.
    assert_eq!(rec.subject_name_hash, rec.issuer_name_hash);

    let rec = parse_file("x509-parser/assets/v1.der");
    assert_eq!(rec.subject.cn.as_deref(), Some("marquee"));
    assert_eq!(rec.serial.as_ref().unwrap().to_string(), "016EAD5BE792");
}

#[test]
fn igc_a() {
    let rec = parse_file("x509-parser/assets/IGC_A.der");
    // x509-parser's test: serial 39:11:45:10:94, CN IGC/A, 2002-12-13 .. 2020-10-17, sha1WithRSA.
    assert_eq!(
        rec.serial,
        Some(Serial::parse_hex("39:11:45:10:94").unwrap())
    );
    assert_eq!(rec.subject.cn.as_deref(), Some("IGC/A"));
    assert_eq!(rec.subject.email.as_deref(), Some("igca@sgdn.pm.gouv.fr"));
    assert_eq!(rec.subject.c.as_deref(), Some("FR"));
    assert_eq!(rec.subject.st.as_deref(), Some("France"));
    assert_eq!(rec.subject.l.as_deref(), Some("Paris"));
    assert_eq!(rec.subject.o.as_deref(), Some("PM/SGDN"));
    assert_eq!(rec.subject.ou.as_deref(), Some("DCSSI"));
    assert_eq!(
        rec.not_before.unwrap().to_rfc3339(),
        "2002-12-13T14:29:23+00:00"
    );
    assert_eq!(
        rec.not_after.unwrap().to_rfc3339(),
        "2020-10-17T14:29:22+00:00"
    );
    assert_eq!(
        rec.signature_algorithm.as_deref(),
        Some("sha1WithRSAEncryption")
    );
    assert_eq!(
        name(&rec, NameKind::Email, "igca@sgdn.pm.gouv.fr")
            .registered_domain
            .as_deref(),
        // The Public Suffix List has gouv.fr as a public suffix.
        Some("pm.gouv.fr")
    );
    assert!(rec.is_ca);
}

#[test]
fn key_hashes_link_issuer_and_child() {
    // lets-encrypt-x3-cross-signed.der: SKI A8:4A:… (RFC 5280 §4.2.1.2 method 1, i.e. the SHA-1 of
    // the subjectPublicKey bits) and AKI C4:A7:… (OpenSSL -ext).
    let x3 = parse_file("x509-parser/assets/lets-encrypt-x3-cross-signed.der");
    assert_eq!(
        hex_upper(x3.subject_key_id.as_deref().unwrap()),
        "A84A6A63047DDDBAE6D139B7A64565EFF3A8ECA1"
    );
    assert_eq!(
        hex_upper(&x3.key_sha1.unwrap()),
        "A84A6A63047DDDBAE6D139B7A64565EFF3A8ECA1"
    );
    assert_eq!(
        hex_upper(x3.authority_key_id.as_deref().unwrap()),
        "C4A7B1A47B2C71FADBE14B9075FFC41560858910"
    );
    assert!(x3.is_ca);
    // Its issuer, DST Root CA X3: key_sha1 = the child's AKI (the OCSP issuerKeyHash), subject
    // Name hash = the child's issuerNameHash.
    let root = parse_file("certificate-transparency-go/submission/testdata/another.cert");
    assert_eq!(root.subject.cn.as_deref(), Some("DST Root CA X3"));
    assert_eq!(
        root.key_sha1.unwrap().as_slice(),
        x3.authority_key_id.as_deref().unwrap()
    );
    assert_eq!(root.subject_name_hash, x3.issuer_name_hash);
    assert_ne!(x3.subject_name_hash, x3.issuer_name_hash);
    assert_eq!(
        x3.issuer_name_hash.unwrap(),
        <[u8; 20]>::from(sha1::Sha1::digest(
            // The DER of the Name "O=Digital Signature Trust Co., CN=DST Root CA X3"
            // (SEQUENCE of two RDNs), written out by hand.
            [
                &[0x30, 0x3f, 0x31, 0x24, 0x30, 0x22, 0x06, 0x03, 0x55, 0x04, 0x0a, 0x13, 0x1b][..],
                b"Digital Signature Trust Co.",
                &[0x31, 0x17, 0x30, 0x15, 0x06, 0x03, 0x55, 0x04, 0x03, 0x13, 0x0e],
                b"DST Root CA X3",
            ]
            .concat()
        ))
    );
}

#[test]
fn key_and_signature_algorithms() {
    let ed = parse_file("x509-parser/assets/ed25519.der");
    assert_eq!(ed.key_algorithm.as_deref(), Some("ed25519"));
    assert_eq!(ed.key_bits, Some(256));
    assert_eq!(ed.signature_algorithm.as_deref(), Some("ED25519"));
    assert_eq!(ed.subject.dn.as_deref(), Some("CN=www.example.com,C=DE"));

    // OpenSSL: (521 bit), ecdsa-with-SHA512
    let p521 = parse_file("x509-parser/assets/p521-selfsigned.der");
    assert_eq!(
        (p521.key_algorithm.as_deref(), p521.key_bits),
        (Some("ec"), Some(521))
    );
    assert_eq!(
        p521.signature_algorithm.as_deref(),
        Some("ecdsa-with-SHA512")
    );

    // OpenSSL: prime256v1, ecdsa-with-SHA256
    let ec = parse_file(&format!("{PY}/ecdsa_cert.pem"));
    assert_eq!(
        (ec.key_algorithm.as_deref(), ec.key_bits),
        (Some("ec"), Some(256))
    );
    assert_eq!(ec.signature_algorithm.as_deref(), Some("ecdsa-with-SHA256"));

    // OpenSSL: DSA (2048 bit), dsa_with_SHA256
    let dsa = parse_file(&format!("{PY}/dsa_with_sha256.der"));
    assert_eq!(
        (dsa.key_algorithm.as_deref(), dsa.key_bits),
        (Some("dsa"), Some(2048))
    );
    assert_eq!(dsa.signature_algorithm.as_deref(), Some("dsa_with_SHA256"));

    // OpenSSL: rsaEncryption (2048 bit), rsassaPss
    let pss = parse_file("x509-parser/assets/rsa-pss/self_signed_sha256.der");
    assert_eq!(
        (pss.key_algorithm.as_deref(), pss.key_bits),
        (Some("rsa"), Some(2048))
    );
    assert_eq!(pss.signature_algorithm.as_deref(), Some("rsassaPss"));

    // OpenSSL: id-ecPublicKey (256 bit) signed with sha1WithRSAEncryption.
    let google = parse_file(&format!("{PY}/google_cert.pem"));
    assert_eq!(
        (google.key_algorithm.as_deref(), google.key_bits),
        (Some("ec"), Some(256))
    );
    assert_eq!(
        google.signature_algorithm.as_deref(),
        Some("sha1WithRSAEncryption")
    );
}

#[test]
fn subject_alternative_name_kinds() {
    // x509-parser's extension1.der: SAN with email, URI, IP 192.168.7.1, DirName, DNS, …
    let rec = parse_file("x509-parser/assets/extension1.der");
    assert_eq!(names_of(&rec, NameKind::Email), ["foo@example.com"]);
    assert_eq!(names_of(&rec, NameKind::Uri), ["http://my.url.here/"]);
    assert_eq!(names_of(&rec, NameKind::Ip), ["192.168.7.1"]);
    assert_eq!(names_of(&rec, NameKind::Dns), ["localhost"]);
    assert_eq!(
        name(&rec, NameKind::Dns, "localhost").registered_domain,
        None
    );
    assert_eq!(
        name(&rec, NameKind::Ip, "192.168.7.1").registered_domain,
        None
    );
}

#[test]
fn precert_poison_flag() {
    let pre = parse_file("certificate-transparency-go/submission/hammer/testdata/precert.der");
    assert!(pre.is_precert);
    let pre = parse_file(&format!("{ERW}/test-embedded-pre-cert.pem"));
    assert!(pre.is_precert);
    let fin = parse_file(&format!("{ERW}/test-embedded-cert.pem"));
    assert!(!fin.is_precert);
    let plain = parse_file(&format!("{ERW}/test-cert.pem"));
    assert!(!plain.is_precert);
}

/// RFC 6962 §3.4 MerkleTreeLeaf of a precert entry, hashed as §2.1 asks (0x00 prefix).
fn precert_leaf_hash(
    timestamp_ms: u64,
    issuer_key_hash: &[u8; 32],
    tbs: &[u8],
    exts: &[u8],
) -> [u8; 32] {
    let mut leaf = vec![0u8, 0u8]; // version v1, leaf_type timestamped_entry
    leaf.extend_from_slice(&timestamp_ms.to_be_bytes());
    leaf.extend_from_slice(&1u16.to_be_bytes()); // precert_entry
    leaf.extend_from_slice(issuer_key_hash);
    leaf.extend_from_slice(&u32::try_from(tbs.len()).unwrap().to_be_bytes()[1..]);
    leaf.extend_from_slice(tbs);
    leaf.extend_from_slice(&u16::try_from(exts.len()).unwrap().to_be_bytes());
    leaf.extend_from_slice(exts);
    let mut h = sha2::Sha256::new();
    h.update([0u8]);
    h.update(&leaf);
    h.finalize().into()
}

#[test]
fn tbs_noct_links_precert_and_final_certificate() {
    let pre_der = read_one(&format!("{ERW}/test-embedded-pre-cert.pem"));
    let fin_der = read_one(&format!("{ERW}/test-embedded-cert.pem"));
    let pre = parse_der(&pre_der);
    let fin = parse_der(&fin_der);
    assert!(pre.tbs_noct_sha256.is_some());
    assert_eq!(pre.tbs_noct_sha256, fin.tbs_noct_sha256);
    assert_ne!(pre.sha256, fin.sha256);
    let other = parse_file(&format!("{ERW}/test-cert.pem"));
    assert_ne!(other.tbs_noct_sha256, pre.tbs_noct_sha256);
    // The re-encoded TBS is byte-exact: with the CA key hash and the SCT of the precert it gives
    // the leaf hash the upstream test asserts (ctutil_test.go), from either certificate.
    let ca = parse_file(&format!("{ERW}/ca-cert.pem"));
    let sct = std::fs::read(data_dir().join(ERW).join("test-embedded-pre-cert.proof")).unwrap();
    // SignedCertificateTimestamp (RFC 6962 §3.2): version(1) log_id(32) timestamp(8) extensions<2>
    let ts = u64::from_be_bytes(sct[33..41].try_into().unwrap());
    let ext_len = usize::from(u16::from_be_bytes([sct[41], sct[42]]));
    let exts = &sct[43..43 + ext_len];
    let want = base64::engine::general_purpose::STANDARD
        .decode("mbk+d5FDW3oNZJCbOi828rqC3hf+qhigTWVGcXEZq1U=")
        .unwrap();
    for der in [&pre_der, &fin_der] {
        let tbs = tbs_noct(der).unwrap();
        assert_eq!(
            <[u8; 32]>::from(sha2::Sha256::digest(&tbs)),
            pre.tbs_noct_sha256.unwrap()
        );
        let leaf = precert_leaf_hash(ts, &ca.spki_sha256.unwrap(), &tbs, exts);
        assert_eq!(leaf.as_slice(), want.as_slice());
    }
}

/// The `(pre_certificate, tbs_certificate, issuer_key_hash)` of every precert entry of a
/// static-CT data tile (c2sp.org/static-ct-api TileLeaf).
fn tile_precerts(tile: &[u8]) -> Vec<(Vec<u8>, Vec<u8>, [u8; 32])> {
    fn take<'a>(buf: &mut &'a [u8], n: usize) -> &'a [u8] {
        let (head, tail) = buf.split_at(n);
        *buf = tail;
        head
    }
    fn len(bytes: &[u8]) -> usize {
        bytes.iter().fold(0, |acc, b| acc << 8 | usize::from(*b))
    }
    let mut rest = tile;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let _timestamp = take(&mut rest, 8);
        let entry_type = len(take(&mut rest, 2));
        assert_eq!(entry_type, 1, "precert_entry");
        let ikh: [u8; 32] = take(&mut rest, 32).try_into().unwrap();
        let n = len(take(&mut rest, 3));
        let tbs = take(&mut rest, n).to_vec();
        let n = len(take(&mut rest, 2));
        take(&mut rest, n); // CtExtensions
        let n = len(take(&mut rest, 3));
        let pre = take(&mut rest, n).to_vec();
        let n = len(take(&mut rest, 2));
        take(&mut rest, n); // certificate_chain fingerprints
        out.push((pre, tbs, ikh));
    }
    out
}

#[test]
fn tbs_noct_matches_real_static_ct_log_entries() {
    // navigli2025h2 tile/data/000: 256 real precert entries; README: removing the poison from each
    // pre_certificate's TBS gives exactly the logged tbs_certificate.
    let tile =
        std::fs::read(data_dir().join("sunlight/testdata/navigli2025h2/tile/data/000")).unwrap();
    let entries = tile_precerts(&tile);
    assert_eq!(entries.len(), 256);
    let ders: Vec<Vec<u8>> = entries.iter().map(|(pre, _, _)| pre.clone()).collect();
    let records = parse_many(&ders);
    for (i, ((pre, tbs, _), rec)) in entries.iter().zip(&records).enumerate() {
        assert_eq!(rec.parse_error, None, "entry {i}");
        assert_eq!(rec.der, *pre, "entry {i}: parse_many keeps order");
        assert!(rec.is_precert, "entry {i}");
        assert_eq!(tbs_noct(pre).as_ref(), Some(tbs), "entry {i}");
        assert_eq!(
            rec.tbs_noct_sha256,
            Some(sha2::Sha256::digest(tbs).into()),
            "entry {i}"
        );
    }
    // README: entry 0.
    let first = &records[0];
    assert_eq!(
        hex::encode(first.sha1),
        "7cf01be9117755a7268ddc2dbf2bace7752488a4"
    );
    assert_eq!(
        hex::encode(first.sha256),
        "f404aa5dd1f97b07be342d17f6db14cd5a3c35bf7057d9431a9cd996f723aff6"
    );
    assert_eq!(
        first.subject.cn.as_deref(),
        Some("*.gated.dev-euw1.x0a839b.drive-platform.io")
    );
    assert_eq!(
        first.issuer.cn.as_deref(),
        Some("(STAGING) Counterfeit Cashew R10")
    );
    assert_eq!(
        first.serial.as_ref().unwrap().to_string(),
        "2CD9F1FA9D6BDF32183A294D63683152AA60"
    );
    assert_eq!(names_of(first, NameKind::Dns).len(), 8);
    assert_eq!(
        name(
            first,
            NameKind::Cn,
            "*.gated.dev-euw1.x0a839b.drive-platform.io"
        )
        .registered_domain
        .as_deref(),
        // drive-platform.io is in the PSL's private section: each customer label is a domain.
        Some("x0a839b.drive-platform.io")
    );
    // Its issuer_key_hash is SHA-256 of R10's SPKI (README: b3e49ac8…), which we compute.
    let r10 = parse_file("letsencrypt-website/static/certs/staging/2024/r10.der");
    assert!(hex::encode(r10.spki_sha256.unwrap()).starts_with("b3e49ac8"));
    assert_eq!(entries[0].2, r10.spki_sha256.unwrap());
    // e5 and e5-cross: same key, different issuer (README §12).
    let e5 = parse_file("letsencrypt-website/static/certs/staging/2024/e5.der");
    let e5x = parse_file("letsencrypt-website/static/certs/staging/2024/e5-cross.der");
    assert_eq!(e5.spki_sha256, e5x.spki_sha256);
    assert!(hex::encode(e5.spki_sha256.unwrap()).starts_with("a03d32b4"));
    assert_eq!(e5.key_sha1, e5x.key_sha1);
    assert_ne!(e5.sha256, e5x.sha256);
}

#[test]
fn parse_many_keeps_order_across_files() {
    let ders = read_all("certificate-transparency-go/trillian/testdata/subleaf-pre.chain");
    assert_eq!(ders.len(), 4);
    let recs = parse_many(&ders);
    for (der, rec) in ders.iter().zip(&recs) {
        assert_eq!(&rec.der, der);
        assert_eq!(rec, &parse_der(der));
    }
    // A chain: each certificate's issuer Name is the next one's subject Name.
    for pair in recs.windows(2) {
        assert_eq!(pair[0].issuer_name_hash, pair[1].subject_name_hash);
    }
}
