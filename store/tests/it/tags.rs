//! Tags and notes (issue 12): idempotent adds keeping the first author, removal, notes and who
//! may delete them, the batched lookup behind every list (addresses inherit the tags of the
//! blocks containing them), the reads that carry tags, the tag search, and the audit entries
//! written with each change.

use certhist_model::views::{parse_tag, Target, TargetKind};
use certhist_store::read::{self, MatchPattern, TimeWindow};
use certhist_store::{Author, NoteDeletion, Store};
use certhist_test_support::TestDb;
use tokio_postgres::NoTls;

use crate::support::{cert, obs};

const GOOGLE: &str = "certificate-transparency/python/ct/crypto/testdata/google_cert.pem";
const WIKIPEDIA: &str = "rustls/rustls-test/benches/data/cert-wikipedia.0.der";

fn by(name: &str) -> Author {
    Author {
        name: name.to_owned(),
        actor: Some(name.to_owned()),
        source: Some("test".to_owned()),
    }
}

fn target(kind: &str, value: &str) -> Target {
    Target::parse(kind, value).unwrap()
}

/// Two certificates; google on 192.0.2.1:443 and 198.51.100.9:443, wikipedia on 192.0.2.2:443
/// and 2001:db8::5:443.
async fn loaded() -> (TestDb, Store, String, String) {
    let db = TestDb::new().await;
    let store = db.store();
    let (g, w) = (cert(GOOGLE), cert(WIKIPEDIA));
    let (gh, wh) = (hex::encode(g.sha1), hex::encode(w.sha1));
    let mut conn = store.conn().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    tx.write_certs(&[g, w]).await.unwrap();
    let when = ("2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z");
    tx.write_observations(&[
        obs("192.0.2.1", 443, &gh, when.0, when.1, 3, "scan"),
        obs("198.51.100.9", 443, &gh, when.0, when.1, 1, "scan"),
        obs("192.0.2.2", 443, &wh, when.0, when.1, 2, "scan"),
        obs("2001:db8::5", 443, &wh, when.0, when.1, 1, "scan"),
    ])
    .await
    .unwrap();
    tx.commit().await.unwrap();
    (db, store, gh, wh)
}

async fn tag(store: &Store, kind: &str, value: &str, t: &str, author: &str) -> bool {
    let mut conn = store.conn().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    let (_, created) = tx
        .add_tag(&target(kind, value), &parse_tag(t).unwrap(), &by(author))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    created
}

/// (action, actor, target) of every audit entry, in order.
async fn audit(db: &TestDb) -> Vec<(String, Option<String>, Option<String>)> {
    let (client, connection) = db.pg_config().connect(NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .query(
            "SELECT action, actor, target FROM audit_log ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

#[tokio::test]
async fn adding_a_tag_twice_keeps_the_first_author_and_audits_once() {
    let (db, store, gh, _) = loaded().await;
    assert!(tag(&store, "certificate", &gh, "APT28", "alice").await);
    assert!(!tag(&store, "certificate", &gh.to_uppercase(), "apt28", "bob").await);
    let conn = store.conn().await.unwrap();
    let tags = read::tags_of(&conn, &target("certificate", &gh))
        .await
        .unwrap();
    assert_eq!(tags.len(), 1);
    assert_eq!(tags[0].tag, "apt28");
    assert_eq!(tags[0].author, "alice");
    assert_eq!(tags[0].kind, TargetKind::Certificate);
    assert_eq!(tags[0].value, gh);
    // Bob's own tag is a second row.
    assert!(tag(&store, "certificate", &gh, "phishing", "bob").await);
    let audit = audit(&db).await;
    assert_eq!(
        audit,
        vec![
            (
                "tag_add".to_owned(),
                Some("alice".to_owned()),
                Some(format!("certificate:{gh}"))
            ),
            (
                "tag_add".to_owned(),
                Some("bob".to_owned()),
                Some(format!("certificate:{gh}"))
            ),
        ]
    );

    // Removal: once, then nothing to remove (and nothing audited).
    let mut conn = store.conn().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    let t = target("certificate", &gh);
    let removed = tx.remove_tag(&t, "apt28", &by("bob")).await.unwrap();
    assert_eq!(removed.map(|r| r.author), Some("alice".to_owned()));
    assert_eq!(tx.remove_tag(&t, "apt28", &by("bob")).await.unwrap(), None);
    tx.commit().await.unwrap();
    let conn = store.conn().await.unwrap();
    let left: Vec<String> = read::tags_of(&conn, &t)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.tag)
        .collect();
    assert_eq!(left, vec!["phishing"]);
    assert_eq!(audit_len(&db, "tag_remove").await, 1);
}

async fn audit_len(db: &TestDb, action: &str) -> usize {
    audit(db).await.iter().filter(|a| a.0 == action).count()
}

#[tokio::test]
async fn a_rolled_back_tag_leaves_no_audit_entry() {
    let (db, store, gh, _) = loaded().await;
    let mut conn = store.conn().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    tx.add_tag(&target("certificate", &gh), "apt28", &by("alice"))
        .await
        .unwrap();
    drop(tx);
    assert!(audit(&db).await.is_empty());
    let conn = store.conn().await.unwrap();
    assert!(read::tags_of(&conn, &target("certificate", &gh))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn batched_lookup_includes_blocks_containing_each_address() {
    let (_db, store, gh, wh) = loaded().await;
    tag(&store, "ip", "192.0.2.1", "c2", "alice").await;
    tag(&store, "cidr", "192.0.2.77/24", "bulletproof", "alice").await;
    tag(&store, "cidr", "192.0.0.0/16", "wide", "bob").await;
    tag(&store, "cidr", "10.0.0.0/8", "elsewhere", "bob").await;
    // Inside the block covering the page's addresses, but containing none of them.
    tag(&store, "cidr", "192.0.2.128/25", "next-door", "bob").await;
    tag(&store, "ip", "192.0.2.3", "neighbour", "bob").await;
    tag(&store, "cidr", "2001:db8::/32", "v6-block", "bob").await;
    tag(&store, "certificate", &gh, "apt28", "alice").await;
    tag(&store, "name", "Evil.Example.", "typosquat", "bob").await;

    let conn = store.conn().await.unwrap();
    let ips = [
        "192.0.2.1".parse().unwrap(),
        "192.0.2.2".parse().unwrap(),
        "198.51.100.9".parse().unwrap(),
        "2001:db8::5".parse().unwrap(),
    ];
    let sha1s = [cert(GOOGLE).sha1, cert(WIKIPEDIA).sha1];
    let names = ["evil.example".to_owned(), "good.example".to_owned()];
    let index = read::tags_touching(&conn, &ips, &sha1s, &names)
        .await
        .unwrap();
    assert_eq!(index.ip(&ips[0]), vec!["bulletproof", "c2", "wide"]);
    assert_eq!(index.ip(&ips[1]), vec!["bulletproof", "wide"]);
    assert!(index.ip(&ips[2]).is_empty());
    assert_eq!(index.ip(&ips[3]), vec!["v6-block"]);
    assert_eq!(index.cert(&sha1s[0]), vec!["apt28"]);
    assert!(index.cert(&sha1s[1]).is_empty());
    assert_eq!(index.name("evil.example"), vec!["typosquat"]);
    assert!(index.name("good.example").is_empty());

    // The block was stored truncated to its network.
    let block = read::tags_of(&conn, &target("cidr", "192.0.2.0/24"))
        .await
        .unwrap();
    let values: Vec<(&str, &str)> = block
        .iter()
        .map(|t| (t.tag.as_str(), t.value.as_str()))
        .collect();
    assert_eq!(
        values,
        vec![("bulletproof", "192.0.2.0/24"), ("wide", "192.0.0.0/16")]
    );

    // The reads carry them: IP history (address + certificate), hosts, search, serials.
    let net = "192.0.2.0/24".parse().unwrap();
    let rows = read::ip_history(&conn, &net, &TimeWindow::default(), None, 100)
        .await
        .unwrap();
    let got: Vec<(String, Vec<String>, Vec<String>)> = rows
        .iter()
        .map(|r| {
            (
                r.ip.to_string(),
                r.tags.clone(),
                r.cert.as_ref().unwrap().tags.clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "192.0.2.1".to_owned(),
                vec![
                    "apt28".to_owned(),
                    "bulletproof".to_owned(),
                    "c2".to_owned(),
                    "wide".to_owned()
                ],
                vec!["apt28".to_owned()]
            ),
            (
                "192.0.2.2".to_owned(),
                vec!["bulletproof".to_owned(), "wide".to_owned()],
                vec![]
            ),
        ]
    );
    let hosts = read::cert_hosts(&conn, &sha1s[1], &TimeWindow::default(), None, 10)
        .await
        .unwrap();
    let got: Vec<(String, Vec<String>)> = hosts
        .iter()
        .map(|h| (h.ip.to_string(), h.tags.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "192.0.2.2".to_owned(),
                vec!["bulletproof".to_owned(), "wide".to_owned()]
            ),
            ("2001:db8::5".to_owned(), vec!["v6-block".to_owned()]),
        ]
    );
    let record = read::cert_by_hash(&conn, &certhist_model::CertHash::Sha1(sha1s[0]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.summary.tags, vec!["apt28"]);
    assert_eq!(record.tag_details.len(), 1);
    assert_eq!(record.tag_details[0].author, "alice");
    let serial = record.summary.serial.clone().unwrap();
    let by_serial = read::certs_by_serial(&conn, &[serial], None, None, None, 10)
        .await
        .unwrap();
    assert_eq!(by_serial[0].tags, vec!["apt28"]);
    let _ = wh;
}

#[tokio::test]
async fn a_record_shows_tags_on_its_names_and_its_notes() {
    let (_db, store, gh, _) = loaded().await;
    let conn = store.conn().await.unwrap();
    let record = read::cert_by_hash(&conn, &certhist_model::CertHash::Sha1(cert(GOOGLE).sha1))
        .await
        .unwrap()
        .unwrap();
    assert!(record.summary.tags.is_empty());
    assert!(record.tag_details.is_empty() && record.notes.is_empty());
    let name = record
        .names
        .iter()
        .map(|n| n.name.clone())
        .find(|n| !n.starts_with('*'))
        .expect("a name without wildcard");
    tag(&store, "name", &name, "watched", "bob").await;
    tag(&store, "certificate", &gh, "apt28", "alice").await;
    let mut c = store.conn().await.unwrap();
    let mut tx = c.begin().await.unwrap();
    let note = tx
        .add_note(
            &target("certificate", &gh),
            "seen in the March phishing wave",
            &by("bob"),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let record = read::cert_by_hash(&conn, &certhist_model::CertHash::Sha1(cert(GOOGLE).sha1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.summary.tags, vec!["apt28", "watched"]);
    let details: Vec<(&str, TargetKind, &str, &str)> = record
        .tag_details
        .iter()
        .map(|t| (t.tag.as_str(), t.kind, t.value.as_str(), t.author.as_str()))
        .collect();
    assert_eq!(
        details,
        vec![
            ("apt28", TargetKind::Certificate, gh.as_str(), "alice"),
            ("watched", TargetKind::Name, name.as_str(), "bob"),
        ]
    );
    assert_eq!(record.notes, vec![note.clone()]);
    assert_eq!(note.author, "bob");
    assert_eq!(note.body, "seen in the March phishing wave");
}

#[tokio::test]
async fn notes_are_deleted_only_by_their_author_or_an_admin() {
    let (db, store, _, _) = loaded().await;
    let t = target("cidr", "192.0.2.0/24");
    let mut conn = store.conn().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    let first = tx.add_note(&t, "first", &by("alice")).await.unwrap();
    let second = tx.add_note(&t, "second", &by("alice")).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    assert_eq!(
        tx.delete_note(first.id, &by("bob"), false).await.unwrap(),
        NoteDeletion::NotAuthor {
            author: "alice".to_owned()
        }
    );
    assert_eq!(
        tx.delete_note(first.id, &by("alice"), false).await.unwrap(),
        NoteDeletion::Deleted(first.clone())
    );
    assert_eq!(
        tx.delete_note(first.id, &by("alice"), false).await.unwrap(),
        NoteDeletion::NotFound
    );
    assert!(matches!(
        tx.delete_note(second.id, &by("root"), true).await.unwrap(),
        NoteDeletion::Deleted(_)
    ));
    tx.commit().await.unwrap();
    // An address sees the notes of the blocks containing it; none are left.
    let c = store.conn().await.unwrap();
    assert!(read::notes_of(&c, &target("ip", "192.0.2.9"))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(audit_len(&db, "note_add").await, 2);
    assert_eq!(audit_len(&db, "note_delete").await, 2);
}

#[tokio::test]
async fn tag_search_lists_targets_of_every_kind_and_pages() {
    let (_db, store, gh, wh) = loaded().await;
    tag(&store, "certificate", &gh, "apt28", "alice").await;
    tag(&store, "certificate", &wh, "apt28", "bob").await;
    tag(&store, "ip", "192.0.2.1", "apt28", "alice").await;
    tag(&store, "cidr", "10.0.0.0/8", "apt28-infra", "alice").await;
    tag(&store, "name", "evil.example", "apt28", "bob").await;
    tag(&store, "name", "evil.example", "apt29", "bob").await;
    let conn = store.conn().await.unwrap();
    let exact = MatchPattern::parse("APT28").unwrap();
    let all = read::tagged(&conn, &exact, None, 100).await.unwrap();
    let got: Vec<(TargetKind, String, Option<Vec<String>>)> = all
        .iter()
        .map(|i| {
            (
                i.tag.kind,
                i.tag.value.clone(),
                i.cert.as_ref().map(|c| c.tags.clone()),
            )
        })
        .collect();
    let mut certs = [gh.clone(), wh.clone()];
    certs.sort();
    // (tag, kind, value) order: the kinds as stored text (certificate < ip < name).
    assert_eq!(
        got,
        vec![
            (
                TargetKind::Certificate,
                certs[0].clone(),
                Some(vec!["apt28".to_owned()])
            ),
            (
                TargetKind::Certificate,
                certs[1].clone(),
                Some(vec!["apt28".to_owned()])
            ),
            (TargetKind::Ip, "192.0.2.1".to_owned(), None),
            (TargetKind::Name, "evil.example".to_owned(), None),
        ]
    );
    // Pages of one row lose and repeat nothing.
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = read::tagged(&conn, &exact, after.as_ref(), 1)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some((last.tag.tag.clone(), last.tag.kind, last.tag.value.clone()));
        paged.extend(page);
    }
    assert_eq!(paged, all);
    // Prefix: apt28, apt28-infra and apt29.
    let prefix = read::tagged(&conn, &MatchPattern::parse("apt*").unwrap(), None, 100)
        .await
        .unwrap();
    assert_eq!(prefix.len(), 6);
}

#[tokio::test]
async fn overlap_and_expand_carry_tags() {
    let (_db, store, gh, _) = loaded().await;
    tag(&store, "certificate", &gh, "apt28", "alice").await;
    tag(&store, "cidr", "198.51.100.0/24", "bulletproof", "bob").await;
    let conn = store.conn().await.unwrap();
    let ips = [
        "192.0.2.1".parse().unwrap(),
        "198.51.100.9".parse().unwrap(),
    ];
    let shared = read::overlap_by_ips(&conn, &ips, &TimeWindow::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(shared.len(), 1);
    assert_eq!(shared[0].tags, vec!["apt28"]);
    assert_eq!(shared[0].cert.as_ref().unwrap().tags, vec!["apt28"]);
    let g = cert(GOOGLE).sha1;
    let w = cert(WIKIPEDIA).sha1;
    let addrs = read::overlap_by_certs(&conn, &[g, w], &TimeWindow::default(), None, 10)
        .await
        .unwrap();
    assert!(addrs.is_empty(), "no address served both");
    let graph = read::expand(
        &conn,
        &read::ExpandRequest {
            seed_text: gh.clone(),
            seed: read::Seed::parse(&gh),
            hops: 2,
            max_nodes: 50,
            shared_threshold: 50,
            include_shared: false,
            window: TimeWindow::default(),
        },
    )
    .await
    .unwrap();
    let tags: Vec<(String, Vec<String>)> = graph
        .nodes
        .iter()
        .map(|n| (n.id.clone(), n.tags.clone()))
        .collect();
    assert_eq!(
        tags,
        vec![
            (gh.clone(), vec!["apt28".to_owned()]),
            ("192.0.2.1".to_owned(), vec![]),
            ("198.51.100.9".to_owned(), vec!["bulletproof".to_owned()]),
        ]
    );
}
