//! The database URL is a secret (issue 11, item 8): `--help` and failing commands never print
//! its password, not even with debug logging.

use std::process::{Command, Output};

use crate::support::{stderr, stdout};

const PASSWORD: &str = "s3cr3t-pw";

/// A loopback port nothing listens on: taken from the system, then released.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn run_with_url(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_certhist"))
        .args(args)
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "debug")
        .output()
        .expect("run certhist")
}

/// Issue 11: help output with DATABASE_URL set does not show it.
#[test]
fn help_does_not_show_the_database_url() {
    let url = format!("postgres://u:{PASSWORD}@127.0.0.1:{}/x", closed_port());
    for args in [
        &["--help"][..],
        &["db", "--help"],
        &["query", "ip", "--help"],
        &["db", "status", "--help"],
    ] {
        let o = run_with_url(&url, args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        let all = format!("{}{}", stdout(&o), stderr(&o));
        assert!(all.contains("DATABASE_URL"), "{args:?}: {all}");
        assert!(!all.contains(PASSWORD), "{args:?}: {all}");
        assert!(!all.contains("127.0.0.1"), "{args:?}: {all}");
    }
}

/// Issue 11: commands that cannot connect (connection refused on a closed loopback port) fail
/// with an error that does not hold the password, also with debug logging on; so does a URL that
/// does not parse.
#[test]
fn failing_commands_do_not_print_the_password() {
    let url = format!("postgres://u:{PASSWORD}@127.0.0.1:{}/x", closed_port());
    for args in [
        &["-vv", "db", "status"][..],
        &["-vv", "query", "ip", "192.0.2.1"],
        &["--json", "query", "cert", &"ab".repeat(20)],
    ] {
        let o = run_with_url(&url, args);
        assert!(!o.status.success(), "{args:?} succeeded");
        let err = stderr(&o);
        assert!(err.contains("refused"), "{args:?}: {err}");
        let all = format!("{}{err}", stdout(&o));
        assert!(!all.contains(PASSWORD), "{args:?}: {all}");
    }
    let bad = format!("postgres://u:{PASSWORD}@127.0.0.1:notaport/x");
    let o = run_with_url(&bad, &["-vv", "db", "status"]);
    assert!(!o.status.success());
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(all.contains("u:***@127.0.0.1:notaport"), "{all}");
    assert!(!all.contains(PASSWORD), "{all}");
}
