//! Live scans of local servers on 127.0.0.x: exact sightings, periods and failure counts, and a
//! certificate rotation between two scans.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use certhist_scan::localtls::{
    bind_same_port, serve, server_config, Behaviour, Identity, LocalServer, TestCa,
};
use certhist_scan::scanner::{scan, FailureCounts, ScanOptions, ScanSummary};
use certhist_test_support::TestDb;
use sha1::Digest;

use crate::common::{cert_exists, client, observations, scalar, Obs};

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

fn sha1_hex(der: &[u8]) -> String {
    hex::encode(sha1::Sha1::digest(der))
}

async fn rebind(addr: SocketAddr) -> tokio::net::TcpListener {
    for _ in 0..100 {
        if let Ok(l) = tokio::net::TcpListener::bind(addr).await {
            return l;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("cannot rebind {addr}")
}

/// The scan's start in whole seconds: observation times are stored in whole seconds (schema V7).
fn whole_second(t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    use chrono::Timelike;
    t.with_nanosecond(0).unwrap()
}

fn within(o: &Obs, s: &ScanSummary) -> bool {
    o.first_seen >= whole_second(s.started_at) && o.first_seen <= s.finished_at
}

#[tokio::test]
async fn scan_records_chains_rotation_and_failures() {
    let db = TestDb::new().await;
    let store = db.store();
    let c = client(&db).await;
    let ca = TestCa::new("certhist test CA").unwrap();
    let shared = ca.issue(&["shared.test", "www.shared.test"]).unwrap();
    let before = ca.issue(&["rotate.test"]).unwrap();
    let after = ca.issue(&["rotate.test"]).unwrap();
    let legacy = ca.issue(&["legacy.test"]).unwrap();
    // .2 .3 shared cert (TLS 1.3) · .4 rotated · .5 TLS 1.2 only · .6 closes · .7 stalls ·
    // .8 plain HTTP · .9 resets · .10 nothing listening (refused).
    let ips: Vec<IpAddr> = (2..=9).map(ip).collect();
    let mut listeners = bind_same_port(&ips).await.unwrap().into_iter();
    let mut servers: Vec<Option<LocalServer>> = Vec::new();
    let behaviours = [
        Behaviour::Tls(server_config(&shared, false).unwrap()),
        Behaviour::Tls(server_config(&shared, false).unwrap()),
        Behaviour::Tls(server_config(&before, false).unwrap()),
        Behaviour::Tls(server_config(&legacy, true).unwrap()),
        Behaviour::Close,
        Behaviour::Stall,
        Behaviour::PlainHttp,
        Behaviour::Reset,
    ];
    for b in behaviours {
        servers.push(Some(serve(listeners.next().unwrap(), b).unwrap()));
    }
    let port = servers[0].as_ref().unwrap().addr.port();
    let options = ScanOptions {
        ports: vec![port],
        timeout: Duration::from_millis(1500),
        concurrency: 16,
        ..ScanOptions::default()
    };
    let targets = vec!["127.0.0.2-127.0.0.10".to_owned()];
    let want_failures = FailureCounts {
        refused: 1,
        timeout: 1,
        reset: 1,
        closed: 1,
        not_tls: 1,
        ..FailureCounts::default()
    };

    let first = scan(&store, targets.clone(), &options).await.unwrap();
    assert_eq!(first.attempts, 9);
    assert_eq!(first.handshakes_ok, 4, "{first:?}");
    assert_eq!(first.failures, want_failures, "{first:?}");
    assert_eq!(first.sightings, 4);
    // leaf certs shared/before/legacy + the CA, each stored once
    assert_eq!((first.certs_seen, first.certs_new), (8, 4));

    // Rotate .4 to a new certificate, then scan again.
    let addr4 = servers[2].take().unwrap().addr;
    servers[2] = Some(
        serve(
            rebind(addr4).await,
            Behaviour::Tls(server_config(&after, false).unwrap()),
        )
        .unwrap(),
    );
    let second = scan(&store, targets, &options).await.unwrap();
    assert_eq!(second.handshakes_ok, 4, "{second:?}");
    assert_eq!(second.failures, want_failures, "{second:?}");
    assert_eq!(second.certs_new, 1);

    let sh = sha1_hex(&shared.chain[0]);
    for last in [2, 3] {
        let obs = observations(&c, &ip(last).to_string()).await;
        assert_eq!(obs.len(), 1, "{obs:?}");
        let o = &obs[0];
        assert_eq!(
            (o.port, o.sha1.as_str(), o.times_seen),
            (i32::from(port), sh.as_str(), 2)
        );
        assert!(within(o, &first), "{o:?}");
        assert!(
            o.last_seen >= whole_second(second.started_at) && o.last_seen <= second.finished_at,
            "{o:?}"
        );
        assert_eq!(o.sources, vec!["scan".to_owned()]);
    }
    let rotated = observations(&c, "127.0.0.4").await;
    assert_eq!(rotated.len(), 2, "{rotated:?}");
    let old = rotated
        .iter()
        .find(|o| o.sha1 == sha1_hex(&before.chain[0]))
        .unwrap();
    let new = rotated
        .iter()
        .find(|o| o.sha1 == sha1_hex(&after.chain[0]))
        .unwrap();
    assert!(
        within(old, &first) && old.last_seen == old.first_seen && old.times_seen == 1,
        "{old:?}"
    );
    assert!(
        within(new, &second) && new.last_seen == new.first_seen && new.times_seen == 1,
        "{new:?}"
    );
    assert!(old.last_seen < new.first_seen);
    let tls12 = observations(&c, "127.0.0.5").await;
    assert_eq!((tls12.len(), tls12[0].times_seen), (1, 2));
    assert_eq!(tls12[0].sha1, sha1_hex(&legacy.chain[0]));
    for last in 6..=10 {
        assert!(observations(&c, &ip(last).to_string()).await.is_empty());
    }
    assert_eq!(scalar(&c, "SELECT count(*) FROM observations").await, 5);
    for id in [&shared, &before, &after, &legacy] {
        assert!(cert_exists(&c, &sha1_hex(&id.chain[0])).await);
    }
    assert!(cert_exists(&c, &sha1_hex(&ca.der())).await);
    assert_eq!(scalar(&c, "SELECT count(*) FROM certificates").await, 5);
    drop(servers);
}

#[tokio::test]
async fn target_files_excludes_and_sni() {
    let db = TestDb::new().await;
    let store = db.store();
    let c = client(&db).await;
    let ca = TestCa::new("certhist test CA 2").unwrap();
    let a: Identity = ca.issue(&["a.test"]).unwrap();
    let ips: Vec<IpAddr> = (11..=13).map(ip).collect();
    let servers: Vec<LocalServer> = bind_same_port(&ips)
        .await
        .unwrap()
        .into_iter()
        .map(|l| serve(l, Behaviour::Tls(server_config(&a, false).unwrap())).unwrap())
        .collect();
    let port = servers[0].addr.port();
    let dir = tempfile::tempdir().unwrap();
    let targets = dir.path().join("targets.txt");
    std::fs::write(
        &targets,
        "# lab\n127.0.0.11\n127.0.0.12-127.0.0.13 # range\nnot a target!\n",
    )
    .unwrap();
    let exclude = dir.path().join("exclude.txt");
    std::fs::write(&exclude, "127.0.0.12/32\n").unwrap();
    let options = ScanOptions {
        ports: vec![port],
        sni: certhist_scan::scanner::SniMode::Fixed("a.test".to_owned()),
        concurrency: 4,
        rate_per_s: Some(200.0),
        timeout: Duration::from_secs(2),
        exclude: certhist_scan::targets::read_excludes(&exclude).unwrap(),
        source: "lab".to_owned(),
        ..ScanOptions::default()
    };
    let s = scan(&store, vec![format!("@{}", targets.display())], &options)
        .await
        .unwrap();
    assert_eq!(
        (s.attempts, s.handshakes_ok, s.excluded),
        (2, 2, 1),
        "{s:?}"
    );
    assert_eq!(s.bad_targets.len(), 1, "{:?}", s.bad_targets);
    assert!(observations(&c, "127.0.0.12").await.is_empty());
    let o = observations(&c, "127.0.0.13").await;
    assert_eq!(o[0].sources, vec!["lab".to_owned()]);
    assert_eq!(o[0].sha1, sha1_hex(&a.chain[0]));
    drop(servers);
}

#[tokio::test]
async fn demo_scans_its_servers_twice_with_a_rotation() {
    let db = TestDb::new().await;
    let store = db.store();
    let c = client(&db).await;
    let rounds = certhist_scan::demo::demo(&store).await.unwrap();
    assert_eq!(rounds.len(), 2);
    for r in &rounds {
        assert_eq!(
            (
                r.attempts,
                r.handshakes_ok,
                r.failures.closed,
                r.failures.total()
            ),
            (5, 4, 1, 1),
            "{r:?}"
        );
    }
    // .2/.3 share one certificate; .4 rotated between the rounds; .5 is TLS 1.2 only.
    let two = observations(&c, "127.0.0.2").await;
    let three = observations(&c, "127.0.0.3").await;
    assert_eq!(two.len(), 1);
    assert_eq!(three.len(), 1);
    assert_eq!(two[0].sha1, three[0].sha1);
    assert_eq!(observations(&c, "127.0.0.4").await.len(), 2);
    assert_eq!(observations(&c, "127.0.0.5").await.len(), 1);
    assert!(observations(&c, "127.0.0.6").await.is_empty());
}
