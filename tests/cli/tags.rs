//! Tags and notes shared between analysts (issue 12): two analysts (two login names, `USER`)
//! tag the same certificate from the command line; both tags show in `query cert`, in the API's
//! record (the real `certhist serve` over HTTP) and in a tag search, on the command line and in
//! the API alike. Notes show with author and time, escaped.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

use certhist_test_support::TestDb;
use serde_json::Value;

use crate::support::{demo_db, stderr, stdout, url};

/// *.wikipedia.org of the demo data: on 198.51.100.20–22.
const WIKI: &str = "390917308a9acfd9af6fbe16586c31eaf62a3bd5";
/// github.com of the demo data.
const GITHUB: &str = "e3b32dab1e685b16945d1499824f6569583a9a61";

/// `certhist ARGS` run by the login `user`.
fn run_as(db: &TestDb, user: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_certhist"))
        .args(args)
        .env("DATABASE_URL", url(db))
        .env("USER", user)
        .env_remove("RUST_LOG")
        .output()
        .expect("run certhist")
}

fn ok_as(db: &TestDb, user: &str, args: &[&str]) -> String {
    let o = run_as(db, user, args);
    assert!(
        o.status.success(),
        "certhist {args:?} failed: {}\n{}",
        stderr(&o),
        stdout(&o)
    );
    stdout(&o)
}

/// `certhist serve` on a loopback port; stopped on drop.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(db: &TestDb) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_certhist"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("DATABASE_URL", url(db))
            .env_remove("RUST_LOG")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start certhist serve");
        let mut line = String::new();
        BufReader::new(child.stderr.take().expect("stderr"))
            .read_line(&mut line)
            .expect("read the serving line");
        let base = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .and_then(|w| w.strip_suffix("/api/v1"))
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_owned();
        Server { child, base }
    }

    async fn get(&self, path: &str, ndjson: bool) -> String {
        let mut req = reqwest::Client::new().get(format!("{}{path}", self.base));
        if ndjson {
            req = req.header("Accept", "application/x-ndjson");
        }
        let resp = req.send().await.expect("request");
        assert_eq!(resp.status(), 200, "{path}");
        resp.text().await.expect("body")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn names(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn two_analysts_tag_one_certificate_and_everyone_sees_both_tags() {
    let db = demo_db().await;
    let added = ok_as(&db, "alice", &["tag", "add", "certificate", WIKI, "APT28"]);
    assert_eq!(added, format!("tagged certificate:{WIKI} apt28\n"));
    ok_as(
        &db,
        "bob",
        &["tag", "add", "certificate", WIKI, "fancy-bear"],
    );
    // Bob tags it apt28 too: nothing changes, alice stays the author.
    let again = ok_as(
        &db,
        "bob",
        &["tag", "add", "cert", &WIKI.to_uppercase(), "apt28"],
    );
    assert!(
        again.contains("already has tag apt28 (added by cli:alice"),
        "{again}"
    );
    ok_as(
        &db,
        "bob",
        &["tag", "add", "cidr", "198.51.100.0/24", "bulletproof"],
    );
    ok_as(
        &db,
        "carol",
        &["tag", "add", "name", "evil.example", "apt28"],
    );
    ok_as(
        &db,
        "alice",
        &[
            "note",
            "add",
            "certificate",
            WIKI,
            "from the \u{1b}[31mMarch\u{202e} report",
        ],
    );

    // query cert: both tags with their authors, the note escaped, the hosts' tags.
    let cert = ok_as(&db, "dave", &["query", "cert", WIKI]);
    assert!(cert.contains("apt28 (by cli:alice, "), "{cert}");
    assert!(cert.contains("fancy-bear (by cli:bob, "), "{cert}");
    assert!(
        cert.contains("from the \\u{1b}[31mMarch\\u{202e} report"),
        "{cert}"
    );
    assert!(cert.contains("by cli:alice at "), "{cert}");
    assert!(!cert.contains('\u{1b}') && !cert.contains('\u{202e}'));
    let host_rows: Vec<&str> = cert
        .lines()
        .filter(|l| l.starts_with("198.51.100."))
        .collect();
    assert_eq!(host_rows.len(), 3, "{cert}");
    assert!(
        host_rows
            .iter()
            .all(|l| l.trim_end().ends_with("bulletproof")),
        "{cert}"
    );

    // query ip: the rows' tags (address block + certificate), then the block's tags.
    let ip = ok_as(&db, "dave", &["query", "ip", "198.51.100.20"]);
    let row = ip.lines().find(|l| l.contains(WIKI)).expect("wiki row");
    assert!(row.contains("apt28,bulletproof,fancy-bear"), "{ip}");
    assert!(ip.contains("bulletproof (by cli:bob, "), "{ip}");

    // The API's record (the real server over HTTP) has both tags with their authors.
    let server = Server::start(&db);
    let record: Value = serde_json::from_str(
        &server
            .get(&format!("/api/v1/certificates/{WIKI}"), false)
            .await,
    )
    .unwrap();
    assert_eq!(names(&record["tags"]), vec!["apt28", "fancy-bear"]);
    let authors: Vec<&str> = record["tag_details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["author"].as_str().unwrap())
        .collect();
    assert_eq!(authors, vec!["cli:alice", "cli:bob"]);
    assert_eq!(record["notes"][0]["author"], "cli:alice");
    // ... and the CLI's JSON record is the API's, byte for byte.
    let cli = ok_as(&db, "dave", &["--json", "query", "cert", WIKI]);
    assert_eq!(
        cli,
        format!(
            "{}\n",
            server
                .get(&format!("/api/v1/certificates/{WIKI}"), false)
                .await
        )
    );

    // A tag search: the table, the NDJSON, and the API's stream (the same bytes).
    let table = ok_as(&db, "dave", &["query", "search", "tag", "apt28"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("TAG"), "{table}");
    assert!(
        lines[1].contains("certificate") && lines[1].contains(WIKI),
        "{table}"
    );
    assert!(
        lines[1].contains("cli:alice") && lines[1].contains("*.wikipedia.org"),
        "{table}"
    );
    assert!(
        lines[2].contains("name") && lines[2].contains("evil.example"),
        "{table}"
    );
    let json = ok_as(&db, "dave", &["--json", "query", "search", "tag", "apt28"]);
    let api = server.get("/api/v1/search?field=tag&q=apt28", true).await;
    assert_eq!(json, api);
    let first: Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(first["kind"], "certificate");
    assert_eq!(first["value"], WIKI);
    assert_eq!(names(&first["cert"]["tags"]), vec!["apt28", "fancy-bear"]);
    // `tag list TAG` is the same list.
    assert_eq!(
        ok_as(&db, "dave", &["--json", "tag", "list", "apt28"]),
        json
    );
}

#[tokio::test]
async fn tag_rm_list_and_notes_from_the_command_line() {
    let db = demo_db().await;
    ok_as(&db, "alice", &["tag", "add", "ip", "2001:db8::10", "c2"]);
    ok_as(
        &db,
        "alice",
        &["tag", "add", "certificate", GITHUB, "watched"],
    );
    ok_as(
        &db,
        "bob",
        &["note", "add", "ip", "2001:db8::10", "answers on 443 only"],
    );

    let target = ok_as(&db, "x", &["tag", "list", "--target", "ip", "2001:db8::10"]);
    assert!(target.contains("c2 (by cli:alice, "), "{target}");
    assert!(target.contains("answers on 443 only"), "{target}");
    assert!(target.contains("by cli:bob at "), "{target}");
    let json: Value = serde_json::from_str(&ok_as(
        &db,
        "x",
        &["--json", "tag", "list", "--target", "ip", "2001:db8::10"],
    ))
    .unwrap();
    assert_eq!(json["tags"][0]["tag"], "c2");
    assert_eq!(json["notes"][0]["author"], "cli:bob");
    let note_id = json["notes"][0]["id"].as_i64().unwrap().to_string();

    let all = ok_as(&db, "x", &["--json", "tag", "list"]);
    assert_eq!(all.lines().count(), 2, "{all}");
    let notes = ok_as(&db, "x", &["--json", "note", "list", "ip", "2001:db8::10"]);
    assert_eq!(notes.lines().count(), 1, "{notes}");

    // Removal, then nothing to remove (exit 3).
    let out = ok_as(&db, "bob", &["tag", "rm", "ip", "2001:db8::10", "C2"]);
    assert_eq!(out, "removed tag c2 from ip:2001:db8::10\n");
    let again = run_as(&db, "bob", &["tag", "rm", "ip", "2001:db8::10", "c2"]);
    assert_eq!(again.status.code(), Some(3), "{}", stderr(&again));
    let none = run_as(&db, "bob", &["tag", "list", "c2"]);
    assert_eq!(none.status.code(), Some(3));
    ok_as(&db, "bob", &["note", "rm", &note_id]);
    let gone = run_as(&db, "bob", &["note", "list", "ip", "2001:db8::10"]);
    assert_eq!(gone.status.code(), Some(3));

    // Bad input: exit 2 with a message naming what is wrong; nothing written.
    for (args, word) in [
        (vec!["tag", "add", "host", "x", "t"], "KIND"),
        (vec!["tag", "add", "ip", "10.0.0.0/8", "t"], "VALUE"),
        (vec!["tag", "add", "name", "a b", "t"], "VALUE"),
        (
            vec!["tag", "add", "name", "example.com", "no spaces"],
            "TAG",
        ),
        (vec!["note", "add", "name", "example.com", "  "], "BODY"),
    ] {
        let o = run_as(&db, "bob", &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(word), "{args:?}: {}", stderr(&o));
    }
    let all = ok_as(&db, "x", &["--json", "tag", "list"]);
    assert_eq!(all.lines().count(), 1, "{all}");
}
