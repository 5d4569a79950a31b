//! The scanner against servers that send absurd certificate chains, and against a large block
//! of addresses where nothing listens: failures are counted, unparsable certificates stored,
//! nothing panics.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use certhist_scan::localtls::{
    bind_same_port, serve, server_config_any_chain, Behaviour, LocalServer, TestCa,
};
use certhist_scan::scanner::{
    client_config, grab_chain, scan, FailureCounts, FailureKind, ScanOptions,
};
use certhist_test_support::TestDb;
use sha1::Digest;

use crate::common::{client, handshake_record, observations, scalar, server_hello, u24};

fn sha1_hex(der: &[u8]) -> String {
    hex::encode(sha1::Sha1::digest(der))
}

fn v4(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// Certificate (§7.4.2) with `certs` as its entries, each with a correct u24 length.
fn certificate(certs: &[&[u8]]) -> Vec<u8> {
    let mut list = Vec::new();
    for c in certs {
        list.extend(u24(c.len()));
        list.extend(*c);
    }
    let mut body = u24(list.len()).to_vec();
    body.extend(list);
    handshake_record(11, &body)
}

/// ServerHelloDone (§7.4.5).
fn server_hello_done() -> Vec<u8> {
    handshake_record(14, &[])
}

fn flight(parts: &[Vec<u8>]) -> Behaviour {
    Behaviour::Raw(Arc::new(parts.concat()))
}

/// Kinds each server's handshake must end with, one connection each.
async fn kinds(ips: &[IpAddr], port: u16) -> Vec<Result<usize, FailureKind>> {
    let connector = tokio_rustls::TlsConnector::from(client_config().unwrap());
    let mut out = Vec::new();
    for ip in ips {
        let r = grab_chain(
            &connector,
            SocketAddr::new(*ip, port),
            None,
            Duration::from_secs(3),
        )
        .await;
        out.push(r.map(|chain| chain.len()));
    }
    out
}

#[tokio::test]
async fn absurd_certificate_chains_are_failures_or_unparsable_certs() {
    let db = TestDb::new().await;
    let store = db.store();
    let c = client(&db).await;
    // A SEQUENCE header claiming 65535 bytes, then text.
    let garbage: &[u8] = b"\x30\x82\xff\xffnot a certificate";
    // A Certificate entry claiming 256 bytes inside a list of 3.
    let lying_entry = handshake_record(11, &[0, 0, 3, 0, 1, 0]);
    // A certificate list claiming 16 MiB inside a 6-byte message.
    let lying_list = handshake_record(11, &[0xff, 0xff, 0xff, 0, 0, 0]);
    // A record header claiming 65535 bytes (more than RFC 5246 §6.2.3 allows), then nothing.
    let huge_record = vec![22, 3, 3, 0xff, 0xff];
    let raw = [
        // .41 – .47: hand-built TLS 1.2 flights, never a complete handshake.
        flight(&[server_hello(), certificate(&[b""]), server_hello_done()]),
        flight(&[server_hello(), certificate(&[garbage]), server_hello_done()]),
        flight(&[server_hello(), certificate(&[]), server_hello_done()]),
        flight(&[server_hello(), lying_entry]),
        flight(&[server_hello(), lying_list]),
        flight(&[server_hello(), certificate(&[b"", garbage, b"\x00"])]),
        flight(&[server_hello(), huge_record]),
    ];
    let want_kinds = [
        // ServerHelloDone where ServerKeyExchange is due, after a Certificate message that
        // decoded: the bad entries never reach certificate parsing.
        Err(FailureKind::Handshake),
        Err(FailureKind::Handshake),
        Err(FailureKind::Handshake),
        // Certificate messages whose lengths do not add up.
        Err(FailureKind::Handshake),
        Err(FailureKind::Handshake),
        // Closed after the Certificate message.
        Err(FailureKind::Closed),
        // Not a TLS record at all.
        Err(FailureKind::NotTls),
        // .48 – .51: complete handshakes (the key signs; the scanner accepts any chain).
        Ok(2),
        Ok(1),
        Ok(1),
        Ok(2),
    ];
    let ca = TestCa::new("certhist robustness CA").unwrap();
    let real = ca.issue(&["real.test"]).unwrap();
    let key = &real.key_pkcs8;
    let tls = [
        // Garbage leaf + real CA over TLS 1.3; garbage leaf alone over TLS 1.2.
        server_config_any_chain(&[garbage.to_vec(), ca.der()], key, false).unwrap(),
        server_config_any_chain(&[garbage.to_vec()], key, true).unwrap(),
        // A zero-length leaf.
        server_config_any_chain(&[Vec::new()], key, false).unwrap(),
        // A real leaf with a two-byte "intermediate".
        server_config_any_chain(&[real.chain[0].clone(), b"\x01\x02".to_vec()], key, false)
            .unwrap(),
    ];
    let n = raw.len() + tls.len();
    let ips: Vec<IpAddr> = (41..).take(n).map(v4).collect();
    let mut listeners = bind_same_port(&ips).await.unwrap().into_iter();
    let mut servers: Vec<LocalServer> = Vec::new();
    for b in raw {
        servers.push(serve(listeners.next().unwrap(), b).unwrap());
    }
    for cfg in tls {
        servers.push(serve(listeners.next().unwrap(), Behaviour::Tls(cfg)).unwrap());
    }
    let port = servers[0].addr.port();
    assert_eq!(kinds(&ips, port).await, want_kinds);

    let options = ScanOptions {
        ports: vec![port],
        timeout: Duration::from_secs(3),
        concurrency: 16,
        ..ScanOptions::default()
    };
    let s = scan(&store, vec!["127.0.0.41-127.0.0.51".to_owned()], &options)
        .await
        .unwrap();
    assert_eq!(
        (s.attempts, s.handshakes_ok, s.sightings),
        (11, 4, 4),
        "{s:?}"
    );
    assert_eq!(
        s.failures,
        FailureCounts {
            handshake: 5,
            closed: 1,
            not_tls: 1,
            ..FailureCounts::default()
        }
    );
    // garbage ×2, empty, CA, real leaf, "\x01\x02"; new: all but the second garbage.
    assert_eq!((s.certs_seen, s.certs_new), (6, 5), "{s:?}");

    for ip in &ips[..7] {
        assert!(observations(&c, &ip.to_string()).await.is_empty(), "{ip}");
    }
    let leaf_at = |o: Vec<crate::common::Obs>| {
        assert_eq!(o.len(), 1, "{o:?}");
        assert_eq!(o[0].port, i32::from(port));
        o[0].sha1.clone()
    };
    assert_eq!(
        leaf_at(observations(&c, "127.0.0.48").await),
        sha1_hex(garbage)
    );
    assert_eq!(
        leaf_at(observations(&c, "127.0.0.49").await),
        sha1_hex(garbage)
    );
    assert_eq!(leaf_at(observations(&c, "127.0.0.50").await), sha1_hex(b""));
    assert_eq!(
        leaf_at(observations(&c, "127.0.0.51").await),
        sha1_hex(&real.chain[0])
    );

    // Every certificate stored with its DER; the bad ones with a parse error.
    let rows = c
        .query(
            "SELECT encode(sha1, 'hex'), length(der), parse_error IS NOT NULL FROM certificates",
            &[],
        )
        .await
        .unwrap();
    let got: BTreeMap<String, (i32, bool)> = rows
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
    let len = |d: &[u8]| i32::try_from(d.len()).unwrap();
    let want: BTreeMap<String, (i32, bool)> = [
        (sha1_hex(garbage), (len(garbage), true)),
        (sha1_hex(b""), (0, true)),
        (sha1_hex(b"\x01\x02"), (2, true)),
        (sha1_hex(&ca.der()), (len(&ca.der()), false)),
        (sha1_hex(&real.chain[0]), (len(&real.chain[0]), false)),
    ]
    .into();
    assert_eq!(got, want);
    // Unparsable for the right reason: malformed DER, not a parser panic that `parse_der`
    // caught and stored as a parse error (issue 11: before, this test passed either way).
    let panicked: Vec<String> = c
        .query(
            "SELECT parse_error FROM certificates WHERE parse_error IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .filter(|e| certhist_x509::is_parser_panic(e))
        .collect();
    assert!(panicked.is_empty(), "the parser panicked: {panicked:?}");
    drop(servers);
}

#[tokio::test]
async fn a_thousand_closed_addresses_are_counted_as_refused() {
    let db = TestDb::new().await;
    let store = db.store();
    let c = client(&db).await;
    // A port nothing listens on: taken from the system, then released. No other test binds
    // 127.0.4.0/22.
    let port = {
        let l = std::net::TcpListener::bind("127.0.4.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let options = ScanOptions {
        ports: vec![port],
        timeout: Duration::from_secs(3),
        concurrency: 128,
        // 1024 addresses minus the last 24 = 1000 connections.
        exclude: vec![
            "127.0.7.232/29".parse().unwrap(),
            "127.0.7.240/28".parse().unwrap(),
        ],
        batch_rows: 100,
        ..ScanOptions::default()
    };
    let s = scan(&store, vec!["127.0.4.0/22".to_owned()], &options)
        .await
        .unwrap();
    assert_eq!((s.attempts, s.excluded), (1000, 24), "{s:?}");
    assert_eq!(
        s.failures,
        FailureCounts {
            refused: 1000,
            ..FailureCounts::default()
        }
    );
    assert_eq!((s.handshakes_ok, s.sightings, s.certs_seen), (0, 0, 0));
    assert!(s.bad_targets.is_empty());
    assert_eq!(scalar(&c, "SELECT count(*) FROM observations").await, 0);
}
