//! Reading certificate files: formats, gzip, directories, problems with file and line.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use certhist_files::certfile::{CertReader, FoundCert, ProblemKind, ReadProblem};

use crate::{data_dir, read_one};

const GOOGLE_DER: &str = "certificate-transparency/python/ct/crypto/testdata/google_cert.der";
const V1_DER: &str = "x509-parser/assets/v1.der";

fn read(paths: &[&Path]) -> (Vec<FoundCert>, Vec<ReadProblem>, CertReader) {
    let mut reader = CertReader::new(paths.iter().map(|p| p.to_path_buf()));
    let mut certs = Vec::new();
    let mut problems = Vec::new();
    for item in reader.by_ref() {
        match item {
            Ok(c) => certs.push(c),
            Err(p) => problems.push(p),
        }
    }
    (certs, problems, reader)
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[test]
fn pem_bundle_with_text_keys_and_legacy_labels() {
    let google = read_one(GOOGLE_DER);
    let v1 = read_one(V1_DER);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bundle.txt");
    // TRUSTED CERTIFICATE = certificate followed by OpenSSL's trust settings (here a dummy SEQUENCE).
    let trusted = [v1.clone(), vec![0x30, 0x03, 0x06, 0x01, 0x00]].concat();
    let text = format!(
        "Bag Attributes\n    friendlyName: google\nsubject=/CN=*.google.com\n{}\nsome text\n{}{}\r\n{}",
        pem("CERTIFICATE", &google),
        pem("PRIVATE KEY", &[0x30, 0x01, 0x00]),
        pem("X509 CERTIFICATE", &v1).replace('\n', "\r\n"),
        pem("TRUSTED CERTIFICATE", &trusted),
    );
    std::fs::write(&path, &text).unwrap();
    let (certs, problems, reader) = read(&[&path]);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(certs.len(), 3);
    assert_eq!(certs[0].der, google);
    assert_eq!(certs[1].der, v1);
    assert_eq!(certs[2].der, v1, "trust settings cut off");
    // Lines of the BEGIN lines: 4, then after 1 + ~N lines.
    assert_eq!(certs[0].origin.line, Some(4));
    assert_eq!(certs[0].origin.to_string(), format!("{}:4", path.display()));
    assert_eq!(
        certs.iter().map(|c| c.origin.index).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    let stats = reader.stats();
    assert_eq!(
        (
            stats.files,
            stats.certificates,
            stats.skipped_blocks,
            stats.problems
        ),
        (1, 3, 1, 0)
    );
}

#[test]
fn der_base64_lines_and_gzip() {
    let google = read_one(GOOGLE_DER);
    let v1 = read_one(V1_DER);
    let dir = tempfile::tempdir().unwrap();
    // DER, concatenated DER, base64 lines, gzip of base64 lines.
    std::fs::write(dir.path().join("a.der"), &google).unwrap();
    std::fs::write(
        dir.path().join("b.der"),
        [v1.clone(), google.clone()].concat(),
    )
    .unwrap();
    let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
    let lines = format!("# export\n{}\n\n{}\n", b64(&google), b64(&v1));
    std::fs::write(dir.path().join("c.b64"), &lines).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(lines.as_bytes()).unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/d.gz"), gz.finish().unwrap()).unwrap();
    let (certs, problems, _) = read(&[dir.path()]);
    assert!(problems.is_empty(), "{problems:?}");
    let got: Vec<(String, Option<u64>, usize, bool)> = certs
        .iter()
        .map(|c| {
            let rel = c
                .origin
                .path
                .strip_prefix(dir.path())
                .unwrap()
                .display()
                .to_string();
            (rel, c.origin.line, c.origin.index, c.der == google)
        })
        .collect();
    assert_eq!(
        got,
        [
            ("a.der".to_owned(), None, 0, true),
            ("b.der".to_owned(), None, 0, false),
            ("b.der".to_owned(), None, 1, true),
            ("c.b64".to_owned(), Some(2), 0, true),
            ("c.b64".to_owned(), Some(4), 1, false),
            ("sub/d.gz".to_owned(), Some(2), 0, true),
            ("sub/d.gz".to_owned(), Some(4), 1, false),
        ]
    );
    assert_eq!(
        certs[2].origin.to_string(),
        format!("{}#1", dir.path().join("b.der").display())
    );
}

#[test]
fn problems_are_reported_and_reading_goes_on() {
    let google = read_one(GOOGLE_DER);
    let dir = tempfile::tempdir().unwrap();
    // x509-parser's no_end.pem: a CERTIFICATE block without END line.
    let no_end = data_dir().join("x509-parser/assets/no_end.pem");
    let bad_b64 = dir.path().join("bad.pem");
    std::fs::write(
        &bad_b64,
        format!(
            "-----BEGIN CERTIFICATE-----\nMIIB!!notbase64\n-----END CERTIFICATE-----\n{}",
            pem("CERTIFICATE", &google)
        ),
    )
    .unwrap();
    let empty = dir.path().join("notes.txt");
    std::fs::write(&empty, "nothing to see here\n").unwrap();
    let missing = dir.path().join("missing.pem");
    let junk = dir.path().join("junk.der");
    std::fs::write(&junk, [0x30, 0x82, 0x01, 0x00, 0x01]).unwrap();
    let (certs, problems, reader) = read(&[&no_end, &bad_b64, &empty, &missing, &junk]);
    let kinds: Vec<String> = problems
        .iter()
        .map(|p| {
            format!(
                "{}:{:?}:{}",
                p.path.file_name().unwrap().to_string_lossy(),
                p.line,
                match &p.kind {
                    ProblemKind::TruncatedPem { label } => format!("truncated {label}"),
                    ProblemKind::BadBase64(_) => "base64".to_owned(),
                    ProblemKind::NoCertificate => "none".to_owned(),
                    ProblemKind::Io(e) => format!("io {:?}", e.kind()),
                    other => format!("{other}"),
                }
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "no_end.pem:Some(1):truncated CERTIFICATE",
            "bad.pem:Some(1):base64",
            "notes.txt:None:none",
            "missing.pem:None:io NotFound",
        ]
    );
    assert!(problems[0]
        .to_string()
        .contains("no_end.pem:1: PEM block \"CERTIFICATE\" is not terminated"));
    // The good certificate after the bad block, and the junk DER (yielded: it will be stored
    // with its parse error, not dropped).
    assert_eq!(certs.len(), 2);
    assert_eq!(certs[0].der, google);
    assert_eq!(certs[1].der, [0x30, 0x82, 0x01, 0x00, 0x01]);
    assert!(certhist_x509::parse_der(&certs[1].der)
        .parse_error
        .is_some());
    assert_eq!(reader.stats().problems, 4);
}

#[test]
fn whole_fixture_tree_reads_in_sorted_order() {
    let (certs, problems, reader) = read(&[&data_dir()]);
    // The inventory's 218 certificates; the other files (README, TSV, tile, proofs, no_end.pem)
    // are reported as problems.
    let names: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert!(names.iter().any(|p| p.contains("no_end.pem")), "{names:?}");
    let paths: Vec<_> = certs
        .iter()
        .map(|c| (c.origin.path.clone(), c.origin.index))
        .collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);
    assert_eq!(certs.len(), 218, "{names:?}");
    assert!(reader.stats().files > 170);
    let batch_reader = CertReader::new([data_dir()]);
    let mut batches = batch_reader;
    let mut total = 0;
    loop {
        let (batch, _) = batches.next_batch(50);
        if batch.is_empty() {
            break;
        }
        assert!(batch.len() <= 50);
        total += batch.len();
    }
    assert_eq!(total, 218);
}

/// Issue 11: certificates are found anywhere in text — PEM with its newlines escaped in JSON
/// strings (`\n`, and `\\n` when encoded twice), percent-encoded PEM, PEM with spaces for
/// newlines, chains on one line, base64 DER in JSON fields with `\/` escapes — each at its line;
/// base64 that is not a certificate (a public key) is left alone.
#[test]
fn certificates_in_json_strings_log_lines_and_fields() {
    let google = read_one(GOOGLE_DER);
    let v1 = read_one(V1_DER);
    let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
    let escaped = |label: &str, der: &[u8]| pem(label, der).replace('\n', "\\n");
    let spki = rcgen::KeyPair::generate().unwrap().public_key_der();
    let trusted = [v1.clone(), vec![0x30, 0x03, 0x06, 0x01, 0x00]].concat();
    let lines = [
        format!(
            "{{\"pem\": \"{}\", \"port\": 443}}",
            escaped("CERTIFICATE", &google)
        ),
        format!(
            "2025-01-02 INFO cert=\"{}\"",
            escaped("CERTIFICATE", &v1).replace("\\n", "\\\\n")
        ),
        format!(
            "GET /?cert={} HTTP/1.1",
            pem("CERTIFICATE", &google)
                .replace(' ', "%20")
                .replace('\n', "%0A")
                .replace('+', "%2B")
                .replace('/', "%2F")
                .replace('=', "%3D")
        ),
        format!(
            "  {{\"raw\": \"{}\", \"key\": \"{}\"}},",
            b64(&v1).replace('/', "\\/"),
            b64(&spki)
        ),
        pem("CERTIFICATE", &google).replace('\n', " "),
        format!(
            "\"chain\": \"{}{}\"",
            escaped("CERTIFICATE", &google),
            escaped("TRUSTED CERTIFICATE", &trusted)
        ),
        // Unpadded base64 (some tools strip the `=`).
        escaped("CERTIFICATE", &v1).replace('=', ""),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.json");
    std::fs::write(&path, lines.join("\n")).unwrap();
    let (certs, problems, reader) = read(&[&path]);
    assert!(problems.is_empty(), "{problems:?}");
    let got: Vec<(Option<u64>, bool)> = certs
        .iter()
        .map(|c| (c.origin.line, c.der == google))
        .collect();
    assert_eq!(
        got,
        [
            (Some(1), true),
            (Some(2), false),
            (Some(3), true),
            (Some(4), false),
            (Some(5), true),
            (Some(6), true),
            (Some(6), false),
            (Some(7), false),
        ]
    );
    assert!(certs.iter().all(|c| c.der == google || c.der == v1));
    assert_eq!(reader.stats().certificates, 8);
}

/// Issue 11: bad blocks in escaped text are reported with file and line, and the rest is read.
#[test]
fn bad_escaped_blocks_are_reported_with_their_lines() {
    let google = read_one(GOOGLE_DER);
    let escaped = pem("CERTIFICATE", &google).replace('\n', "\\n");
    let text = [
        "{".to_owned(),
        "  \"a\": \"-----BEGIN CERTIFICATE-----\\nMIIB!!notbase64\\n-----END CERTIFICATE-----\\n\",".to_owned(),
        format!("  \"b\": \"{escaped}\","),
        // Cut off: the next BEGIN comes first.
        format!("  \"c\": \"-----BEGIN CERTIFICATE-----\\nMIIBCgKCAQEA\", \"d\": \"{escaped}\""),
        "}".to_owned(),
    ]
    .join("\n");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.json");
    std::fs::write(&path, text).unwrap();
    let (certs, problems, _) = read(&[&path]);
    let lines: Vec<(Option<u64>, bool)> = problems
        .iter()
        .map(|p| (p.line, matches!(p.kind, ProblemKind::BadBase64(_))))
        .collect();
    assert_eq!(lines, [(Some(2), true), (Some(4), false)], "{problems:?}");
    assert!(matches!(problems[1].kind, ProblemKind::TruncatedPem { .. }));
    assert!(problems[0]
        .to_string()
        .starts_with(&format!("{}:2: invalid base64", path.display())));
    let got: Vec<Option<u64>> = certs.iter().map(|c| c.origin.line).collect();
    assert_eq!(got, [Some(3), Some(4)]);
    assert!(certs.iter().all(|c| c.der == google));
}
