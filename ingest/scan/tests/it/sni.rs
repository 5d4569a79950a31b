//! Host-name targets and SNI as the servers receive it: the local servers record the
//! `server_name` of every ClientHello (RFC 6066 §3) and choose their certificate by it.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use certhist_scan::localtls::{
    bind_same_port, serve, server_config, Behaviour, Identity, LocalServer, SniLog, SniServer,
    TestCa,
};
use certhist_scan::scanner::{scan, FailureCounts, ScanOptions, SniMode};
use certhist_test_support::TestDb;
use sha1::Digest;

use crate::common::{client, observations, scalar};

fn sha1_hex(der: &[u8]) -> String {
    hex::encode(sha1::Sha1::digest(der))
}

fn v4(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// A TLS server on `listener` presenting `id` whatever the SNI, recording names in `log`.
fn recording(listener: tokio::net::TcpListener, id: &Identity, log: &SniLog) -> LocalServer {
    let server = SniServer {
        default: server_config(id, false).unwrap(),
        by_name: Vec::new(),
        log: log.clone(),
    };
    serve(listener, Behaviour::TlsBySni(Arc::new(server))).unwrap()
}

fn scan_options(port: u16) -> ScanOptions {
    ScanOptions {
        ports: vec![port],
        concurrency: 8,
        timeout: Duration::from_secs(3),
        ..ScanOptions::default()
    }
}

/// What `localhost` resolves to here (127.0.0.1 and/or ::1), asserted to be loopback only.
fn localhost_addrs() -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = ("localhost", 0)
        .to_socket_addrs()
        .expect("localhost resolves")
        .map(|a| a.ip())
        .collect();
    ips.sort();
    ips.dedup();
    assert!(!ips.is_empty());
    assert!(ips.iter().all(IpAddr::is_loopback), "{ips:?}");
    ips
}

#[tokio::test]
async fn host_names_resolve_and_are_sent_as_sni() {
    let db = TestDb::new().await;
    let store = db.store();
    let c = client(&db).await;
    let ca = TestCa::new("certhist SNI test CA").unwrap();
    let local_ips = localhost_addrs();
    // localhost's addresses, then 127.0.0.21 (IP), .22/.23 (CIDR), .24/.25 (range).
    let mut ips = local_ips.clone();
    ips.extend((21..=25).map(v4));
    let log = SniLog::new();
    let mut want: BTreeMap<IpAddr, String> = BTreeMap::new();
    let mut servers = Vec::new();
    let lh = ca.issue(&["localhost"]).unwrap();
    for (ip, listener) in ips.iter().zip(bind_same_port(&ips).await.unwrap()) {
        let id = if local_ips.contains(ip) {
            lh.clone()
        } else {
            ca.issue(&[&format!("host-{ip}.demo.test")]).unwrap()
        };
        want.insert(*ip, sha1_hex(&id.chain[0]));
        servers.push(recording(listener, &id, &log));
    }
    let port = servers[0].addr.port();

    // 1. The bare host name.
    let options = ScanOptions {
        ports: vec![port],
        timeout: Duration::from_secs(3),
        concurrency: 8,
        ..ScanOptions::default()
    };
    let s = scan(&store, vec!["localhost".to_owned()], &options)
        .await
        .unwrap();
    let n_local = local_ips.len() as u64;
    assert_eq!(
        (s.attempts, s.handshakes_ok, s.sightings),
        (n_local, n_local, n_local),
        "{s:?}"
    );
    assert_eq!(s.failures, FailureCounts::default());
    assert!(s.bad_targets.is_empty(), "{:?}", s.bad_targets);
    for ip in &local_ips {
        let obs = observations(&c, &ip.to_string()).await;
        assert_eq!(obs.len(), 1, "{obs:?}");
        assert_eq!(
            (obs[0].port, obs[0].sha1.as_str(), obs[0].times_seen),
            (i32::from(port), sha1_hex(&lh.chain[0]).as_str(), 1)
        );
        assert_eq!(
            log.names_at(SocketAddr::new(*ip, port)),
            vec![Some("localhost".to_owned())]
        );
    }
    assert_eq!(log.entries().len(), local_ips.len());

    // 2. A file mixing a host name, an IP, a CIDR block and a range.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets.txt");
    std::fs::write(
        &file,
        "LocalHost.   # host name, any case, trailing dot\n127.0.0.21\n127.0.0.22/31\n127.0.0.24-127.0.0.25\n",
    )
    .unwrap();
    let s = scan(
        &store,
        vec![format!("@{}", file.display())],
        &scan_options(port),
    )
    .await
    .unwrap();
    let n_all = ips.len() as u64;
    assert_eq!(
        (s.attempts, s.handshakes_ok, s.sightings),
        (n_all, n_all, n_all),
        "{s:?}"
    );
    assert_eq!(s.failures, FailureCounts::default());
    assert!(s.bad_targets.is_empty(), "{:?}", s.bad_targets);
    for (ip, sha1) in &want {
        let obs = observations(&c, &ip.to_string()).await;
        assert_eq!(obs.len(), 1, "{ip}: {obs:?}");
        let times = if local_ips.contains(ip) { 2 } else { 1 };
        assert_eq!(
            (
                obs[0].ip.as_str(),
                obs[0].port,
                obs[0].sha1.as_str(),
                obs[0].times_seen
            ),
            (
                ip.to_string().as_str(),
                i32::from(port),
                sha1.as_str(),
                times
            )
        );
        // Host-name targets send the (normalised) name; address targets send no SNI.
        let sent = log.names_at(SocketAddr::new(*ip, port));
        if local_ips.contains(ip) {
            assert_eq!(sent, vec![Some("localhost".to_owned()); 2], "{ip}");
        } else {
            assert_eq!(sent, vec![None], "{ip}");
        }
    }
    assert_eq!(
        scalar(&c, "SELECT count(*) FROM observations").await,
        ips.len() as i64
    );
    drop(servers);
}

/// A virtual host on one address: `default` without SNI or for unknown names, `api` for
/// `api.demo.test`.
struct VHost {
    server: LocalServer,
    log: SniLog,
    default: Identity,
    api: Identity,
    ca: Vec<u8>,
}

async fn vhost(last: u8) -> VHost {
    let ca = TestCa::new("certhist vhost CA").unwrap();
    let default = ca
        .issue(&["www.demo.test", "api.demo.test", "*.demo.test"])
        .unwrap();
    let api = ca.issue(&["api.demo.test"]).unwrap();
    let log = SniLog::new();
    let sni = SniServer {
        default: server_config(&default, false).unwrap(),
        by_name: vec![(
            "api.demo.test".to_owned(),
            server_config(&api, true).unwrap(),
        )],
        log: log.clone(),
    };
    let listener = bind_same_port(&[v4(last)]).await.unwrap().remove(0);
    VHost {
        server: serve(listener, Behaviour::TlsBySni(Arc::new(sni))).unwrap(),
        log,
        default,
        api,
        ca: ca.der(),
    }
}

#[tokio::test]
async fn fixed_sni_reaches_the_server() {
    let db = TestDb::new().await;
    let store = db.store();
    let c = client(&db).await;
    let v = vhost(31).await;
    let port = v.server.addr.port();
    let options = ScanOptions {
        sni: SniMode::Fixed("api.demo.test".to_owned()),
        ..scan_options(port)
    };
    let s = scan(&store, vec!["127.0.0.31".to_owned()], &options)
        .await
        .unwrap();
    assert_eq!((s.attempts, s.handshakes_ok), (1, 1), "{s:?}");
    assert_eq!(
        v.log.names_at(v.server.addr),
        vec![Some("api.demo.test".to_owned())]
    );
    // The server chose its certificate by the name it received.
    let obs = observations(&c, "127.0.0.31").await;
    assert_eq!(obs.len(), 1, "{obs:?}");
    assert_eq!(obs[0].sha1, sha1_hex(&v.api.chain[0]));

    // Without --sni the same address sends none and gets the default certificate.
    let s = scan(&store, vec!["127.0.0.31".to_owned()], &scan_options(port))
        .await
        .unwrap();
    assert_eq!((s.attempts, s.handshakes_ok), (1, 1), "{s:?}");
    assert_eq!(
        v.log.names_at(v.server.addr),
        vec![Some("api.demo.test".to_owned()), None]
    );
    let mut got: Vec<String> = observations(&c, "127.0.0.31")
        .await
        .into_iter()
        .map(|o| o.sha1)
        .collect();
    got.sort();
    let mut want = vec![sha1_hex(&v.api.chain[0]), sha1_hex(&v.default.chain[0])];
    want.sort();
    assert_eq!(got, want);
}

#[tokio::test]
async fn sni_from_names_finds_the_other_virtual_host() {
    let db = TestDb::new().await;
    let store = db.store();
    let c = client(&db).await;
    let v = vhost(32).await;
    let port = v.server.addr.port();
    let options = ScanOptions {
        ports: vec![port],
        sni: SniMode::FromNames,
        timeout: Duration::from_secs(3),
        concurrency: 4,
        ..ScanOptions::default()
    };
    let s = scan(&store, vec!["127.0.0.32".to_owned()], &options)
        .await
        .unwrap();
    // One handshake without SNI (default certificate), then one per non-wildcard DNS name of it.
    assert_eq!(
        (s.attempts, s.handshakes_ok, s.sightings),
        (3, 3, 3),
        "{s:?}"
    );
    assert_eq!(s.failures, FailureCounts::default());
    let mut sent = v.log.names_at(v.server.addr);
    assert_eq!(
        sent.first(),
        Some(&None),
        "the first handshake sends no SNI: {sent:?}"
    );
    sent.sort();
    assert_eq!(
        sent,
        vec![
            None,
            Some("api.demo.test".to_owned()),
            Some("www.demo.test".to_owned())
        ]
    );
    // Default leaf (no SNI, www) ×2, api leaf ×1; both leaves and the CA stored.
    let obs = observations(&c, "127.0.0.32").await;
    let got: BTreeMap<String, i64> = obs.iter().map(|o| (o.sha1.clone(), o.times_seen)).collect();
    let want: BTreeMap<String, i64> = [
        (sha1_hex(&v.default.chain[0]), 2),
        (sha1_hex(&v.api.chain[0]), 1),
    ]
    .into();
    assert_eq!(got, want, "{obs:?}");
    assert!(obs.iter().all(|o| o.port == i32::from(port)));
    assert_eq!((s.certs_seen, s.certs_new), (6, 3));
    for der in [&v.default.chain[0], &v.api.chain[0], &v.ca] {
        assert!(crate::common::cert_exists(&c, &sha1_hex(der)).await);
    }
}
