//! `certhist scan` end to end, against TLS servers on loopback addresses.

use std::net::IpAddr;

use certhist_scan::localtls::{bind_same_port, serve, server_config, Behaviour, Identity};
use certhist_test_support::TestDb;

use crate::support::{certhist, hostile_cert, sha1_hex, stderr, stdout};

fn hostile_identity() -> Identity {
    let (cert, key) = hostile_cert();
    Identity {
        chain: vec![cert.der().to_vec()],
        key_pkcs8: key.serialize_der(),
    }
}

/// Issue 11 (regression): the scan summary let bidi overrides through to the terminal. A server
/// presents a certificate whose CN, O and SAN hold terminal escapes, U+202E and NUL: the human
/// summary lists the certificate with every one of them shown escaped, and no raw control or
/// bidi character reaches stdout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_summary_shows_hostile_certificate_fields_escaped() {
    let db = TestDb::new().await;
    let id = hostile_identity();
    let sha1 = sha1_hex(&id.chain[0]);
    let ip = IpAddr::from([127, 0, 0, 61]);
    let listener = bind_same_port(&[ip]).await.unwrap().remove(0);
    let server = serve(listener, Behaviour::Tls(server_config(&id, false).unwrap())).unwrap();
    let port = server.addr.port().to_string();
    let o = {
        let db_ref = &db;
        let args = [
            "scan",
            "127.0.0.61",
            "--ports",
            port.as_str(),
            "--timeout",
            "3s",
        ];
        tokio::task::block_in_place(|| certhist(db_ref, &args))
    };
    drop(server);
    assert!(o.status.success(), "{}\n{}", stderr(&o), stdout(&o));
    let out = stdout(&o);
    assert!(out.contains("handshakes    1 "), "{out}");
    let row = out
        .lines()
        .find(|l| l.starts_with(&sha1))
        .unwrap_or_else(|| panic!("no row for {sha1}:\n{out}"));
    assert!(row.contains("127.0.0.61:"), "{row}");
    // CN and O: ESC and U+202E shown as escapes; NUL is stored as U+2400 (␀), a visible sign.
    assert!(
        row.contains("evil\\u{1b}[31m\\u{202e}gpj.exe\u{2400}cn"),
        "{row}"
    );
    assert!(row.contains("Org\\u{1b}[31m\\u{202e}\u{2400}o"), "{row}");
    // SAN: names are lower-cased.
    assert!(row.contains("x\\u{1b}[31mred"), "{row}");
    assert!(row.contains("plain-hostile.example"), "{row}");
    for bad in ['\u{1b}', '\u{202e}', '\0'] {
        assert!(!out.contains(bad), "raw {bad:?} in stdout:\n{out:?}");
    }
}
