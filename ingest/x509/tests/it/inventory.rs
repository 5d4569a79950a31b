//! Every certificate of CERT_INVENTORY.tsv (issue 2, "Must show"): read through certfile, parsed,
//! and compared with the inventory's independently computed values.

use std::collections::BTreeMap;

use certhist_model::{NameKind, Serial};
use certhist_x509::parse_der;

use crate::{data_dir, read_all};

/// One row of CERT_INVENTORY.tsv.
#[derive(Debug)]
struct Row {
    file: String,
    idx: usize,
    parse: String,
    sha1: String,
    sha256: String,
    serial: String,
    subject: String,
    issuer: String,
    not_before: String,
    not_after: String,
    san_dns: usize,
    san_ip: usize,
    precert: bool,
}

fn rows() -> Vec<Row> {
    let text = std::fs::read_to_string(data_dir().join("CERT_INVENTORY.tsv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("file\tidx\tparse\tsha1\tsha256\tserial\tsubject\tissuer"));
    lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 14, "row {l}");
            Row {
                file: f[0].to_owned(),
                idx: f[1].parse().unwrap(),
                parse: f[2].to_owned(),
                sha1: f[3].to_owned(),
                sha256: f[4].to_owned(),
                serial: f[5].to_owned(),
                subject: f[6].to_owned(),
                issuer: f[7].to_owned(),
                not_before: f[8].to_owned(),
                not_after: f[9].to_owned(),
                san_dns: f[10].parse().unwrap_or(0),
                san_ip: f[11].parse().unwrap_or(0),
                precert: f[12] == "True",
            }
        })
        .collect()
}

/// The inventory writes NUL inside a DN as `\00` (RFC 4514 escaping); we store it as U+2400.
fn inventory_dn(s: &str) -> String {
    s.replace("\\00", "\u{2400}")
}

#[test]
fn every_inventory_certificate_matches() {
    let rows = rows();
    assert_eq!(rows.len(), 218);
    let mut by_file: BTreeMap<&str, Vec<Vec<u8>>> = BTreeMap::new();
    for row in &rows {
        by_file
            .entry(row.file.as_str())
            .or_insert_with(|| read_all(&row.file));
    }
    let mut failures = Vec::new();
    for row in &rows {
        let ders = &by_file[row.file.as_str()];
        let Some(der) = ders.get(row.idx) else {
            failures.push(format!(
                "{}#{}: only {} certificates read",
                row.file,
                row.idx,
                ders.len()
            ));
            continue;
        };
        let rec = parse_der(der);
        let at = format!("{}#{}", row.file, row.idx);
        // The raw bytes are what the reader found, whatever the parse.
        if hex::encode(rec.sha1) != row.sha1 {
            failures.push(format!(
                "{at}: sha1 {} != {}",
                hex::encode(rec.sha1),
                row.sha1
            ));
        }
        if hex::encode(rec.sha256) != row.sha256 {
            failures.push(format!("{at}: sha256 differs"));
        }
        if row.parse != "ok" {
            // Strictly malformed: see expected_strict_failure for what we do with each.
            match expected_strict_failure(&row.file) {
                StrictFailure::ParseError => {
                    if rec.parse_error.is_none() {
                        failures.push(format!("{at}: expected a parse error, parsed leniently"));
                    }
                }
                StrictFailure::Lenient(serial, negative, not_before) => {
                    let want = match serial.strip_prefix("dec:") {
                        Some(dec) => Serial::parse_decimal(dec).unwrap(),
                        None => Serial::parse_hex(serial).unwrap(),
                    };
                    if let Some(e) = &rec.parse_error {
                        failures.push(format!("{at}: expected a lenient parse, got {e}"));
                    } else if rec.serial.as_ref() != Some(&want) || rec.serial_negative != negative
                    {
                        failures.push(format!(
                            "{at}: serial {:?} neg {}",
                            rec.serial, rec.serial_negative
                        ));
                    }
                    let nb = rec.not_before.map(|t| t.to_rfc3339());
                    if not_before.is_some() && nb.as_deref() != not_before {
                        failures.push(format!("{at}: notBefore {nb:?} != {not_before:?}"));
                    }
                }
            }
            continue;
        }
        if let Some(e) = &rec.parse_error {
            failures.push(format!("{at}: parse error {e}"));
            continue;
        }
        // The inventory prints a negative serial as "-hex" (authority_keyid.pem).
        let (want_negative, serial_hex) = match row.serial.strip_prefix('-') {
            Some(magnitude) => (true, magnitude),
            None => (false, row.serial.as_str()),
        };
        let want_serial = Serial::parse_hex(serial_hex).unwrap();
        if rec.serial.as_ref() != Some(&want_serial) || rec.serial_negative != want_negative {
            failures.push(format!("{at}: serial {:?} != {}", rec.serial, row.serial));
        }
        if row.subject.starts_with("ERR:") {
            // cert_bad_utf8_subject.pem: streetAddress is a UTF8String holding ED AF A0 (a UTF-16
            // surrogate, invalid UTF-8 per RFC 3629 §3); the strict decoder gave up, we decode lossily.
            let want = "CN=www.alojamientocostadelsol.com,OU=HispaSSL Dominio,OU=Provided by Zirigoza.com,\
                        OU=DIRECCIÓN,O=ASOCIACION DE EMPRESARIOS HOTELEROS DE LA COSTA DEL SOL,\
                        STREET=R\u{fffd}\u{fffd}\u{fffd}Salazar\\, 9,L=TORREMOLINOS,ST=MALAGA,2.5.4.17=29620,C=ES";
            assert!(row.file.ends_with("cert_bad_utf8_subject.pem"), "{at}");
            if rec.subject.dn.as_deref() != Some(want) {
                failures.push(format!("{at}: subject {:?}", rec.subject.dn));
            }
        } else if rec.subject.dn.as_deref().unwrap_or("") != inventory_dn(&row.subject) {
            failures.push(format!(
                "{at}: subject {:?} != {:?}",
                rec.subject.dn, row.subject
            ));
        }
        if rec.issuer.dn.as_deref().unwrap_or("") != inventory_dn(&row.issuer) {
            failures.push(format!(
                "{at}: issuer {:?} != {:?}",
                rec.issuer.dn, row.issuer
            ));
        }
        let nb = rec.not_before.map(|t| t.to_rfc3339()).unwrap_or_default();
        let na = rec.not_after.map(|t| t.to_rfc3339()).unwrap_or_default();
        if nb != row.not_before || na != row.not_after {
            failures.push(format!(
                "{at}: validity {nb}..{na} != {}..{}",
                row.not_before, row.not_after
            ));
        }
        let dns = rec.names.iter().filter(|n| n.kind == NameKind::Dns).count();
        let ips = rec.names.iter().filter(|n| n.kind == NameKind::Ip).count();
        let (want_dns, want_ips) = match row.file.rsplit('/').next().unwrap_or_default() {
            // The inventory counts no SAN here, but the certificate has two dNSNames
            // (`openssl x509 -ext subjectAltName`: go-greenevents.com, www.go-greenevents.com).
            "domain_in_o_component.pem" => (2, 0),
            // The one iPAddress is 8 bytes (address + mask): not an address, so not a name.
            "invalid_ip.pem" => (0, 0),
            _ => (row.san_dns, row.san_ip),
        };
        if dns != want_dns || ips != want_ips {
            failures.push(format!(
                "{at}: SAN dns {dns} ip {ips} != {} {}",
                row.san_dns, row.san_ip
            ));
        }
        if rec.is_precert != row.precert {
            failures.push(format!("{at}: precert {}", rec.is_precert));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

enum StrictFailure {
    /// We reject it too: stored with hashes, DER and a parse error.
    ParseError,
    /// We parse it leniently: expected serial (hex, or decimal after `dec:`), sign, and
    /// notBefore (RFC 3339), as OpenSSL 3 (`openssl x509 -serial -dates`) or the upstream test
    /// reads them.
    Lenient(&'static str, bool, Option<&'static str>),
}

/// What we do with each certificate a strict DER parser rejects.
fn expected_strict_failure(file: &str) -> StrictFailure {
    use StrictFailure::*;
    let name = file.rsplit('/').next().unwrap_or(file);
    match name {
        // INTEGER 00 00 12 34 (`openssl asn1parse`: "BAD INTEGER:[00001234]").
        "xf-der-invalid-nonminimal-int.pem" => Lenient("1234", false, None),
        "xf-pubkey-rsa-param-nonnull.pem" => {
            Lenient("016FEE6ED71A4945", false, Some("2016-07-28T09:01:11+00:00"))
        }
        "xf-subject-nonprintable.pem" => {
            Lenient("019E7B2B405F9833", false, Some("2018-04-14T14:00:40+00:00"))
        }
        // UTCTime without seconds.
        "marchnetworks_com.pem" => Lenient("01", false, Some("2000-01-01T00:00:00+00:00")),
        // Non-DER BOOLEAN.
        "matrixssl_sample.pem" => Lenient("00", false, Some("2006-03-13T08:13:34+00:00")),
        // upstream cert_test.py: serial -218943125988803304701934765446014018.
        "negative_serial.pem" => Lenient("dec:218943125988803304701934765446014018", true, None),
        // UTCTime with a -1200 offset: local 15:32:48-12:00 = 03:32:48Z next day (OpenSSL agrees).
        "promise_com.pem" => Lenient(
            "210000015535C43920110629153246",
            false,
            Some("2011-06-30T03:32:48+00:00"),
        ),
        "subrigo_net.pem" => Lenient("01", false, Some("2012-12-14T09:31:07+00:00")),
        // BER indefinite length, a corrupted PEM, a duplicate AIA value: not certificates we can read.
        "asn1_indefinite_length_encoding.pem"
        | "test-corrupted.pem"
        | "duplicate_value_in_authority_info_access.der" => ParseError,
        other => panic!("no expectation for strictly malformed {other}"),
    }
}
