//! Read queries: CIDR and time windows, paging, name match modes, serial notations, CertIDs,
//! precertificate links.

use std::collections::HashSet;

use certhist_model::{CertHash, Serial};
use certhist_store::read::{self, MatchPattern, TimeWindow};
use certhist_store::Store;
use certhist_test_support::TestDb;

use crate::support::{cert, certs, obs, sha1, t};

const GOOGLE: &str = "certificate-transparency/python/ct/crypto/testdata/google_cert.pem";
const WIKIPEDIA: &str = "rustls/rustls-test/benches/data/cert-wikipedia.0.der";
const GITHUB: &str = "rustls/rustls-test/benches/data/cert-github.0.der";
const EMBEDDED: &str = "certificate-transparency/test/testdata/test-embedded-cert.pem";

async fn loaded() -> (TestDb, Store) {
    let db = TestDb::new().await;
    let store = db.store();
    let mut batch = Vec::new();
    for f in [
        GOOGLE,
        WIKIPEDIA,
        GITHUB,
        "certificate-transparency/python/ct/crypto/testdata/null_chars.pem",
        EMBEDDED,
        "certificate-transparency/test/testdata/test-embedded-pre-cert.pem",
    ] {
        batch.extend(certs(f));
    }
    let mut conn = store.conn().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    tx.write_certs(&batch).await.unwrap();
    let g = hex::encode(cert(GOOGLE).sha1);
    let w = hex::encode(cert(WIKIPEDIA).sha1);
    tx.write_observations(&[
        obs(
            "192.0.2.1",
            443,
            &g,
            "2024-01-01T00:00:00Z",
            "2024-01-31T00:00:00Z",
            3,
            "scan",
        ),
        obs(
            "192.0.2.200",
            443,
            &g,
            "2024-03-01T00:00:00Z",
            "2024-03-31T00:00:00Z",
            1,
            "scan",
        ),
        obs(
            "192.0.2.200",
            8443,
            &w,
            "2024-02-01T00:00:00Z",
            "2024-02-02T00:00:00Z",
            1,
            "scan",
        ),
        obs(
            "198.51.100.1",
            443,
            &w,
            "2024-01-01T00:00:00Z",
            "2024-06-01T00:00:00Z",
            9,
            "sonar",
        ),
        obs(
            "2001:db8::1",
            443,
            &w,
            "2024-05-01T00:00:00Z",
            "2024-05-02T00:00:00Z",
            1,
            "scan",
        ),
    ])
    .await
    .unwrap();
    tx.commit().await.unwrap();
    (db, store)
}

#[tokio::test]
async fn ip_and_cidr_history_with_windows() {
    let (_db, store) = loaded().await;
    let conn = store.conn().await.unwrap();
    let all = TimeWindow::default();
    let q = |net: &str| net.parse::<ipnet::IpNet>().unwrap();
    let block = read::ip_history(&conn, &q("192.0.2.0/24"), &all, None, 100)
        .await
        .unwrap();
    let keys: Vec<(String, u16)> = block.iter().map(|r| (r.ip.to_string(), r.port)).collect();
    assert_eq!(
        keys,
        vec![
            ("192.0.2.1".into(), 443),
            ("192.0.2.200".into(), 443),
            ("192.0.2.200".into(), 8443)
        ]
    );
    assert_eq!(
        block[0].cert.as_ref().unwrap().subject_cn.as_deref(),
        Some("*.google.com")
    );
    // Host bits set in the block are ignored (192.0.2.77/25 = 192.0.2.0/25).
    let half = read::ip_history(&conn, &q("192.0.2.77/25"), &all, None, 100)
        .await
        .unwrap();
    assert_eq!(half.len(), 1);
    let v6 = read::ip_history(&conn, &q("2001:db8::/32"), &all, None, 100)
        .await
        .unwrap();
    assert_eq!(v6.len(), 1);
    // Window: periods overlapping [2024-02-15, 2024-03-05].
    let w = TimeWindow {
        since: Some(t("2024-02-15T00:00:00Z")),
        until: Some(t("2024-03-05T00:00:00Z")),
    };
    let windowed = read::ip_history(&conn, &q("0.0.0.0/0"), &w, None, 100)
        .await
        .unwrap();
    let ips: Vec<String> = windowed
        .iter()
        .map(|r| format!("{}:{}", r.ip, r.port))
        .collect();
    assert_eq!(ips, vec!["192.0.2.200:443", "198.51.100.1:443"]);
}

#[tokio::test]
async fn paging_loses_and_repeats_nothing() {
    let (_db, store) = loaded().await;
    let conn = store.conn().await.unwrap();
    let net: ipnet::IpNet = "0.0.0.0/0".parse().unwrap();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = read::ip_history(&conn, &net, &TimeWindow::default(), after.as_ref(), 1)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some((last.ip, last.port, last.sha1));
        seen.push(format!("{}:{}", last.ip, last.port));
    }
    assert_eq!(seen.len(), 4);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 4);
    // Reverse search pages the same way.
    let w = cert(WIKIPEDIA).sha1;
    let first = read::cert_hosts(&conn, &w, &TimeWindow::default(), None, 2)
        .await
        .unwrap();
    let last = first.last().unwrap();
    let rest = read::cert_hosts(
        &conn,
        &w,
        &TimeWindow::default(),
        Some((last.ip, last.port)),
        10,
    )
    .await
    .unwrap();
    let mut all: Vec<String> = first
        .iter()
        .chain(rest.iter())
        .map(|h| h.ip.to_string())
        .collect();
    all.sort();
    assert_eq!(all, vec!["192.0.2.200", "198.51.100.1", "2001:db8::1"]);
    assert!(
        read::ip_history(&conn, &net, &TimeWindow::default(), None, 0)
            .await
            .is_err()
    );
    assert!(
        read::ip_history(&conn, &net, &TimeWindow::default(), None, 1_000_000)
            .await
            .is_err()
    );
}

async fn names_found(store: &Store, field: &str, value: &str) -> Vec<String> {
    let conn = store.conn().await.unwrap();
    let hits = read::search(
        &conn,
        read::search::parse_field(field).unwrap(),
        &MatchPattern::parse(value).unwrap(),
        None,
        1000,
    )
    .await
    .unwrap();
    let mut cns: Vec<String> = hits
        .into_iter()
        .map(|h| h.cert.subject_cn.unwrap_or_default())
        .collect();
    cns.dedup();
    cns
}

#[tokio::test]
async fn name_search_match_modes() {
    let (_db, store) = loaded().await;
    assert_eq!(
        names_found(&store, "name", "github.com").await,
        vec!["github.com"]
    );
    assert_eq!(
        names_found(&store, "name", "GitHub.COM").await,
        vec!["github.com"]
    );
    // Suffix: subdomains of wikipedia.org (and the wildcard name), not other certificates.
    assert_eq!(
        names_found(&store, "name", "*.wikipedia.org").await,
        vec!["*.wikipedia.org"]
    );
    assert_eq!(
        names_found(&store, "san", "*.youtube.com").await,
        vec!["*.google.com"]
    );
    // Prefix and substring.
    assert_eq!(
        names_found(&store, "name", "*.google.c*").await,
        vec!["*.google.com"]
    );
    assert_eq!(
        names_found(&store, "cn", "*wikiped*").await,
        vec!["*.wikipedia.org"]
    );
    // LIKE metacharacters are literal.
    assert!(names_found(&store, "name", "*%%%*").await.is_empty());
    assert!(names_found(&store, "name", "*.___").await.is_empty());
    // Attacker text with a NUL byte, stored visibly.
    assert_eq!(names_found(&store, "cn", "null.python.org*").await.len(), 1);
    assert_eq!(
        names_found(&store, "registered-domain", "wikipedia.org").await,
        vec!["*.wikipedia.org"]
    );
    // Registered-domain searches go through the name indexes (v2 has no registered_domain
    // index), then match the registered domain itself in every mode.
    assert_eq!(
        names_found(&store, "registered-domain", "WIKIPEDIA.org").await,
        vec!["*.wikipedia.org"]
    );
    assert!(names_found(&store, "registered-domain", "m.wikipedia.org")
        .await
        .is_empty());
    assert!(names_found(&store, "registered-domain", "wikipedia_org")
        .await
        .is_empty());
    assert_eq!(
        names_found(&store, "registered-domain", "wikiped*").await,
        vec!["*.wikipedia.org"]
    );
    assert_eq!(
        names_found(&store, "registered-domain", "*ikipedia.o*").await,
        vec!["*.wikipedia.org"]
    );
    assert!(names_found(&store, "registered-domain", "*.org")
        .await
        .contains(&"*.wikipedia.org".to_owned()));
    assert!(!names_found(&store, "registered-domain", "*.org")
        .await
        .contains(&"github.com".to_owned()));
    assert_eq!(
        names_found(&store, "issuer-o", "google*").await,
        vec!["*.google.com"]
    );
    assert!(read::search::parse_field("bogus").is_err());
    assert!(MatchPattern::parse("**").is_err());
    assert!(MatchPattern::parse("*ab*").is_err());
}

#[tokio::test]
async fn serial_notations_and_cert_ids() {
    let (_db, store) = loaded().await;
    // google_cert: serial 454887626504608315115709 = 0x605381f50001000088bd (fixture README).
    for notation in [
        "605381f50001000088bd",
        "60:53:81:F5:00:01:00:00:88:BD",
        "00605381F50001000088BD",
        "454887626504608315115709",
    ] {
        assert_eq!(
            names_found(&store, "serial", notation).await,
            vec!["*.google.com"],
            "{notation}"
        );
    }
    let conn = store.conn().await.unwrap();
    let g = cert(GOOGLE);
    let serial = Serial::parse_hex("605381f50001000088bd").unwrap();
    let exact = read::certs_by_serial(
        &conn,
        std::slice::from_ref(&serial),
        g.issuer_name_hash.as_ref().map(|h| &h[..]),
        None,
        None,
        10,
    )
    .await
    .unwrap();
    assert_eq!(exact.len(), 1);
    let wrong_issuer =
        read::certs_by_serial(&conn, &[serial], Some(&[0u8; 20][..]), None, None, 10)
            .await
            .unwrap();
    assert!(wrong_issuer.is_empty());
    let spki = hex::encode(g.spki_sha256.unwrap());
    assert_eq!(
        names_found(&store, "spki", &spki).await,
        vec!["*.google.com"]
    );
}

#[tokio::test]
async fn record_lookup_and_precert_link() {
    let (_db, store) = loaded().await;
    let conn = store.conn().await.unwrap();
    let g = cert(GOOGLE);
    let by_sha256 = read::cert_by_hash(&conn, &CertHash::Sha256(g.sha256))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        by_sha256.summary.sha1,
        sha1("570fe2e3bfee986ed4a158aed8770f2e21614659")
    );
    assert_eq!(by_sha256.commonness.distinct_ips, 2);
    // The Erw Wen final certificate and its precertificate share the TBS minus CT extensions.
    let fin = cert("certificate-transparency/test/testdata/test-embedded-cert.pem");
    let pre = cert("certificate-transparency/test/testdata/test-embedded-pre-cert.pem");
    let rec = read::cert_by_hash(&conn, &CertHash::Sha1(fin.sha1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.ct_siblings.len(), 1);
    assert_eq!(rec.ct_siblings[0].sha1, pre.sha1);
    assert!(rec.ct_siblings[0].is_precert);
    assert!(read::cert_by_hash(&conn, &CertHash::Sha1([7u8; 20]))
        .await
        .unwrap()
        .is_none());
}

/// Schema V7 pages an address's history in its primary key's order (ip, port, compact key): the
/// certificates of one ip:port come in the order certhist first saw them, and the page key (the
/// last row's SHA-1) resumes exactly after its row. Reverse search pages in (ip, port) order.
#[tokio::test]
async fn one_port_with_many_certificates_pages_in_first_seen_order() {
    let (_db, store) = loaded().await;
    let mut conn = store.conn().await.unwrap();
    let hex_of = |f: &str| hex::encode(cert(f).sha1);
    // Three transactions on 203.0.113.5:443: GitHub (new), then the embedded-SCT test
    // certificate (new; its SHA-1 0a45… sorts first), then Google and Wikipedia (first seen in
    // `loaded`); Wikipedia also on :8443 and on 203.0.113.4.
    let at = |ip: &str, port: u16, f: &str| {
        obs(
            ip,
            port,
            &hex_of(f),
            "2024-07-01T00:00:00Z",
            "2024-07-02T00:00:00Z",
            1,
            "scan",
        )
    };
    for batch in [
        vec![at("203.0.113.5", 443, GITHUB)],
        vec![at("203.0.113.5", 443, EMBEDDED)],
        vec![
            at("203.0.113.5", 443, GOOGLE),
            at("203.0.113.5", 443, WIKIPEDIA),
            at("203.0.113.5", 8443, WIKIPEDIA),
            at("203.0.113.4", 443, WIKIPEDIA),
        ],
    ] {
        let mut tx = conn.begin().await.unwrap();
        tx.write_observations(&batch).await.unwrap();
        tx.commit().await.unwrap();
    }
    // First seen: Google and Wikipedia in `loaded` (one batch: SHA-1 order), then GitHub, then
    // the embedded-SCT certificate — not SHA-1 order.
    let (g, w) = (cert(GOOGLE).sha1, cert(WIKIPEDIA).sha1);
    let (gh, emb) = (cert(GITHUB).sha1, cert(EMBEDDED).sha1);
    let mut first_two = [g, w];
    first_two.sort();
    let expected_443 = vec![first_two[0], first_two[1], gh, emb];
    let mut by_sha1 = expected_443.clone();
    by_sha1.sort();
    assert_ne!(expected_443, by_sha1);
    let net: ipnet::IpNet = "203.0.113.5/32".parse().unwrap();
    let all = TimeWindow::default();
    let whole = read::ip_history(&conn, &net, &all, None, 100)
        .await
        .unwrap();
    let order: Vec<_> = whole.iter().map(|r| (r.port, r.sha1)).collect();
    let mut expected: Vec<_> = expected_443.iter().map(|s| (443, *s)).collect();
    expected.push((8443, w));
    assert_eq!(order, expected);
    for size in [1, 2, 3] {
        let mut paged = Vec::new();
        let mut after = None;
        loop {
            let page = read::ip_history(&conn, &net, &all, after.as_ref(), size)
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            after = Some((last.ip, last.port, last.sha1));
            paged.extend(page.iter().map(|r| (r.port, r.sha1)));
        }
        assert_eq!(paged, expected, "pages of {size}");
    }
    // A page key whose SHA-1 certhist never saw resumes at the start of that ip:port (no
    // error, nothing before the key's ip:port repeated).
    let unknown = read::ip_history(&conn, &net, &all, Some(&(whole[0].ip, 443, [7u8; 20])), 100)
        .await
        .unwrap();
    assert_eq!(unknown.len(), 5);
    // Reverse search of Wikipedia: every ip:port, in (ip, port) order, one row per page.
    let mut hosts = Vec::new();
    let mut after = None;
    loop {
        let page = read::cert_hosts(&conn, &w, &all, after, 1).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some((last.ip, last.port));
        hosts.push(format!("{}:{}", last.ip, last.port));
    }
    assert_eq!(
        hosts,
        vec![
            "192.0.2.200:8443",
            "198.51.100.1:443",
            "203.0.113.4:443",
            "203.0.113.5:443",
            "203.0.113.5:8443",
            "2001:db8::1:443"
        ]
    );
}

async fn setting(c: &certhist_store::Conn, name: &str) -> String {
    c.setting(name).await.unwrap()
}

/// The request pool (`Store::for_requests`) carries its settings from the startup packet:
/// the statement timeout, and no parallel plans; the ordinary pool keeps the server's defaults.
#[tokio::test]
async fn the_request_pool_times_out_statements_and_plans_without_workers() {
    let (_db, store) = loaded().await;
    let requests = store
        .for_requests(std::time::Duration::from_millis(2500))
        .unwrap();
    let rc = requests.conn().await.unwrap();
    assert_eq!(setting(&rc, "statement_timeout").await, "2500ms");
    assert_eq!(setting(&rc, "max_parallel_workers_per_gather").await, "0");
    let oc = store.conn().await.unwrap();
    assert_eq!(setting(&oc, "statement_timeout").await, "0");
    assert_eq!(setting(&oc, "max_parallel_workers_per_gather").await, "2");
}
