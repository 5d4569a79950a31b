//! `certhist user …`, `certhist audit` and the secure-by-default `serve` (issue 12), against a
//! real database and the real server over HTTP.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};

use certhist_test_support::TestDb;

use crate::support::{certhist, ok, stderr, stdout, url};

/// The `chk_…` key printed by `user add` / `user key new`.
fn key_in(text: &str) -> String {
    let keys: Vec<&str> = text
        .split_whitespace()
        .filter(|w| w.starts_with("chk_"))
        .collect();
    assert_eq!(keys.len(), 1, "exactly one key printed: {text}");
    keys[0].to_owned()
}

/// `certhist ARGS` with `stdin` as its standard input.
fn with_stdin(db: &TestDb, args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_certhist"))
        .args(args)
        .env("DATABASE_URL", url(db))
        .env("USER", "tester")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run certhist");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// `certhist serve ARGS` on the test database; stopped on drop.
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
        BufReader::new(child.stderr.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .and_then(|w| w.strip_suffix("/api/v1"))
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_owned();
        assert!(line.contains("authentication required"), "{line}");
        Server { child, base }
    }

    async fn status(&self, path: &str, key: Option<&str>) -> u16 {
        let mut req = reqwest::Client::new().get(format!("{}{path}", self.base));
        if let Some(k) = key {
            req = req.header("Authorization", format!("Bearer {k}"));
        }
        req.send().await.expect("request").status().as_u16()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn user_add_prints_the_key_once_and_list_never_shows_it() {
    let db = TestDb::new().await;
    let out = with_stdin(
        &db,
        &[
            "user",
            "add",
            "alice",
            "--role",
            "analyst",
            "--password-stdin",
        ],
        "a long enough password\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let key = key_in(&stdout(&out));
    assert_eq!(key.len(), 44, "chk_ + 40 hex digits");

    let list = ok(&db, &["user", "list"]);
    assert!(list.contains("alice"), "{list}");
    assert!(list.contains("analyst"), "{list}");
    assert!(list.contains(&key[..12]), "the prefix is listed: {list}");
    assert!(!list.contains(&key), "{list}");
    let json = ok(&db, &["user", "list", "--json"]);
    assert!(!json.contains(&key), "{json}");
    let users: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["name"], "alice");
    assert_eq!(users[0]["role"], "analyst");
    assert_eq!(users[0]["has_password"], true);
    assert_eq!(users[0]["keys"][0]["prefix"], &key[..12]);

    // The stored hash is the SHA-256 of the printed key.
    let client = crate::support::client(&db).await;
    let row = client
        .query_one("SELECT key_hash FROM api_keys", &[])
        .await
        .unwrap();
    use sha2::Digest;
    assert_eq!(
        row.get::<_, Vec<u8>>(0),
        sha2::Sha256::digest(key.as_bytes()).to_vec()
    );

    // A label is free text: shown escaped.
    ok(
        &db,
        &[
            "user",
            "key",
            "new",
            "alice",
            "--label",
            "\u{1b}[31mred\u{202e}",
        ],
    );
    let list = ok(&db, &["user", "list"]);
    assert!(
        !list.contains('\u{1b}') && !list.contains('\u{202e}'),
        "{list:?}"
    );
    assert!(list.contains("\\u{1b}[31mred\\u{202e}"), "{list}");

    // Bad input: a clear error, exit 2.
    let o = certhist(&db, &["user", "add", "alice", "--role", "reader"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    let o = certhist(&db, &["user", "add", "Bad Name", "--role", "reader"]);
    assert_eq!(o.status.code(), Some(2));
    let o = with_stdin(&db, &["user", "passwd", "alice"], "short\n");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("too short"));
    let o = certhist(&db, &["user", "disable", "nobody"]);
    assert_eq!(o.status.code(), Some(3));
}

#[tokio::test]
async fn disable_revoke_and_passwd_reach_the_api_and_the_audit_log() {
    let db = TestDb::new().await;
    let key = key_in(&ok(&db, &["user", "add", "bob", "--role", "reader"]));
    let server = Server::start(&db);
    assert_eq!(server.status("/api/v1/stats", None).await, 401);
    assert_eq!(server.status("/api/v1/stats", Some(&key)).await, 200);
    assert_eq!(server.status("/healthz", None).await, 200);

    ok(&db, &["user", "disable", "bob"]);
    assert_eq!(server.status("/api/v1/stats", Some(&key)).await, 401);
    ok(&db, &["user", "enable", "bob"]);
    assert_eq!(server.status("/api/v1/stats", Some(&key)).await, 200);

    let second = key_in(&ok(
        &db,
        &["user", "key", "new", "bob", "--label", "laptop"],
    ));
    assert_ne!(second, key);
    ok(&db, &["user", "key", "revoke", "bob", &key[..12]]);
    assert_eq!(server.status("/api/v1/stats", Some(&key)).await, 401);
    assert_eq!(server.status("/api/v1/stats", Some(&second)).await, 200);
    let list = ok(&db, &["user", "list"]);
    assert!(list.contains("1 active / 2"), "{list}");
    assert!(list.contains("laptop"), "{list}");

    let o = with_stdin(&db, &["user", "passwd", "bob"], "bobs new password\n");
    assert!(o.status.success(), "{}", stderr(&o));
    let resp = reqwest::Client::new()
        .get(format!("{}/api/v1/stats", server.base))
        .basic_auth("bob", Some("bobs new password"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let audit = ok(&db, &["audit", "--json"]);
    let actions: Vec<String> = audit
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["action"].as_str().unwrap().to_owned()
        })
        .collect();
    // Newest first; the wrong-key request after the revocation is a failed login.
    assert_eq!(
        actions,
        [
            "user.passwd",
            "login.failed",
            "key.revoke",
            "key.new",
            "user.enable",
            "login.failed",
            "user.disable",
            "user.add"
        ],
        "{audit}"
    );
    assert!(!audit.contains(&key) && !audit.contains(&second) && !audit.contains("bobs new"));
    // The real server records where requests came from, the CLI who ran it.
    for line in audit.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["action"] == "login.failed" {
            assert_eq!(v["source"], "127.0.0.1", "{line}");
            assert_eq!(v["detail"]["via"], "key", "{line}");
        } else {
            assert_eq!(v["source"], "cli", "{line}");
            assert!(v["actor"].as_str().unwrap().starts_with("cli:"), "{line}");
        }
    }
    let table = ok(&db, &["audit", "--since", "1h", "--limit", "2"]);
    assert!(table.contains("ACTION"), "{table}");
    assert!(table.contains("user.passwd"), "{table}");
    assert_eq!(table.lines().count(), 3, "{table}");
    let o = certhist(&db, &["audit", "--since", "yesterday"]);
    assert_eq!(o.status.code(), Some(2));
}

#[tokio::test]
async fn serve_refuses_a_wide_listener_without_accounts() {
    let db = TestDb::new().await;
    let o = certhist(&db, &["serve", "--listen", "0.0.0.0:0"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("certhist user add NAME --role admin"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("--no-auth"));
}
