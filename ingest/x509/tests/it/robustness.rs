//! Hostile input never panics (issue 2: "nothing panics"): truncations, bit flips, random bytes.
//!
//! `parse_der` catches a panic of the parser (production must not crash on one certificate) and
//! reports it as a parse error; so that these tests fail when the parser panics, every record is
//! checked for the panic marker (issue 11: before, a caught panic passed as a parse error).

use certhist_model::CertRecord;
use certhist_x509::{is_parser_panic, parse_der, tbs_noct};
use sha1::Digest;

use crate::read_one;

/// xorshift64*: deterministic pseudo-random bytes without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next() >> 56) as u8).collect()
    }
}

/// Fails when parsing panicked (caught by `parse_der`, so visible only in `parse_error`).
fn assert_no_panic(rec: &CertRecord) {
    if let Some(e) = &rec.parse_error {
        assert!(
            !is_parser_panic(e),
            "the parser panicked on {} bytes ({}): {e}",
            rec.der.len(),
            hex::encode(&rec.der)
        );
    }
}

fn check_unparsed_record(der: &[u8]) {
    let rec = parse_der(der);
    assert_no_panic(&rec);
    assert_eq!(rec.der, der);
    assert_eq!(rec.sha1, <[u8; 20]>::from(sha1::Sha1::digest(der)));
    assert!(rec.parse_error.is_some(), "{} bytes parsed", der.len());
    assert_eq!(rec.serial, None);
    assert!(rec.names.is_empty());
}

#[test]
fn every_truncation_is_a_parse_error() {
    let der = read_one("certificate-transparency/python/ct/crypto/testdata/google_cert.der");
    for len in 0..der.len() {
        check_unparsed_record(&der[..len]);
        let _ = tbs_noct(&der[..len]);
    }
    assert_eq!(parse_der(&der).parse_error, None);
}

#[test]
fn trailing_garbage_is_a_parse_error() {
    let mut der = read_one("x509-parser/assets/v1.der");
    der.push(0);
    let rec = parse_der(&der);
    assert!(rec.parse_error.unwrap().contains("trailing"));
}

#[test]
fn bit_flips_never_panic() {
    for rel in [
        "certificate-transparency/python/ct/crypto/testdata/null_chars.pem",
        "certificate-transparency/test/testdata/test-embedded-cert.pem",
        "x509-parser/assets/extension1.der",
    ] {
        let der = read_one(rel);
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        // Every byte once, with a random single-bit flip; plus random multi-byte damage.
        for pos in 0..der.len() {
            let mut d = der.clone();
            d[pos] ^= 1 << (rng.next() % 8);
            let rec = parse_der(&d);
            assert_no_panic(&rec);
            assert_eq!(rec.der, d);
            let _ = tbs_noct(&d);
        }
        for _ in 0..300 {
            let mut d = der.clone();
            for _ in 0..1 + rng.next() % 8 {
                let pos = (rng.next() % d.len() as u64) as usize;
                d[pos] = (rng.next() >> 56) as u8;
            }
            assert_no_panic(&parse_der(&d));
            let _ = tbs_noct(&d);
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(42);
    for i in 0..2000 {
        let len = (rng.next() % 600) as usize;
        let mut d = rng.bytes(len);
        // Half of them look like the start of a certificate.
        if i % 2 == 0 && d.len() > 4 {
            d[0] = 0x30;
            d[1] = 0x82;
        }
        check_unparsed_record(&d);
        let _ = tbs_noct(&d);
    }
}
