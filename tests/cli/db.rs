//! `certhist db` on a managed cluster of its own: where the server binaries come from and what
//! of the caller's environment reaches them (issue 11: no environment reads below `main`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{stderr, stdout};

/// Writes an executable shell script from a child process, so that no file descriptor of this
/// (multi-threaded, process-spawning) test binary is open on it when it runs (ETXTBSY).
fn write_script(path: &Path, body: &str) {
    let status = Command::new("/bin/sh")
        .arg("-c")
        .arg(r#"printf '%s\n' "$1" > "$2" && chmod 755 "$2""#)
        .arg("sh")
        .arg(format!("#!/bin/sh\n{body}"))
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

/// A managed home that is stopped (with the same flags) when the test ends.
struct Home {
    dir: tempfile::TempDir,
    bindir: PathBuf,
}

impl Home {
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_certhist"))
            .arg("--home")
            .arg(self.dir.path().join("home"))
            .args(args)
            .env_remove("DATABASE_URL")
            .env_remove("RUST_LOG")
            .env("CERTHIST_PG_BINDIR", &self.bindir)
            .envs(env.iter().copied())
            .output()
            .unwrap()
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = self.run(&["db", "stop"], &[]);
    }
}

/// Issue 11: `CERTHIST_PG_BINDIR` reaches the cluster through the binary's flags (the store reads
/// no environment), and `PG*` variables of the caller do not reach the server binaries (they run
/// with a cleared environment and an allow-list).
#[test]
fn db_start_uses_the_configured_bindir_and_ignores_pg_variables() {
    let found = certhist_store::cluster::status(Path::new("/nonexistent/certhist-home"))
        .unwrap()
        .bindir
        .expect("PostgreSQL server binaries installed");
    let dir = tempfile::tempdir().unwrap();
    let bindir = dir.path().join("bin");
    std::fs::create_dir(&bindir).unwrap();
    for b in ["initdb", "pg_ctl"] {
        std::os::unix::fs::symlink(found.join(b), bindir.join(b)).unwrap();
    }
    // `postgres` leaves a mark whenever certhist runs it (the version check), and records
    // whether it saw any PG* variable.
    let marker = dir.path().join("postgres-ran");
    write_script(
        &bindir.join("postgres"),
        &format!(
            "env | grep '^PG' >> {marker}.env\necho ran >> {marker}\nexec {} \"$@\"",
            found.join("postgres").display(),
            marker = marker.display()
        ),
    );
    let home = Home { dir, bindir };
    let pg_env = [
        ("PGDATA", "/nonexistent/pgdata"),
        ("PGPORT", "1"),
        ("PGHOST", "/nonexistent"),
        ("PGUSER", "nobody-here"),
        ("PGDATABASE", "nope"),
        ("PGOPTIONS", "-c work_mem=bogus"),
    ];
    let o = home.run(&["db", "start"], &pg_env);
    assert!(o.status.success(), "{}\n{}", stderr(&o), stdout(&o));
    assert!(marker.exists(), "the configured bindir was not used");
    let seen = std::fs::read_to_string(format!("{}.env", marker.display())).unwrap();
    assert_eq!(seen, "", "PG* variables reached the server binaries");

    let o = home.run(&["--json", "db", "status"], &pg_env);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["running"], true, "{v}");
    assert_eq!(v["counts"]["certificates"], 0, "{v}");
    let o = home.run(&["db", "stop"], &pg_env);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("stopped"), "{}", stdout(&o));
}

// ---- Issue 18: no `trust` over TCP ----

/// A managed home under a 0755 temporary directory (the server account reaches it when the tests
/// run as root), served by the binaries the default search finds.
fn open_home() -> Home {
    let bindir = certhist_store::cluster::status(Path::new("/nonexistent/certhist-home"))
        .unwrap()
        .bindir
        .expect("PostgreSQL server binaries installed");
    let dir = tempfile::Builder::new()
        .prefix("certhist-db-auth-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .tempdir()
        .unwrap();
    Home { dir, bindir }
}

fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().port()
}

fn ok_out(home: &Home, args: &[&str]) -> String {
    let o = home.run(args, &[]);
    assert!(
        o.status.success(),
        "certhist {args:?}: {}\n{}",
        stderr(&o),
        stdout(&o)
    );
    stdout(&o)
}

/// The password in the home's password file (`*:*:*:certhist:<password>`).
fn stored_password(home: &Home) -> String {
    let text = std::fs::read_to_string(home.dir.path().join("home/pgpass")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("*:*:*:certhist:"))
        .expect("a password line")
        .to_owned()
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// `psql CONNINFO -c 'select 1'` (never prompting), as `nobody` when `as_nobody`.
fn psql(conninfo: &str, as_nobody: bool) -> Output {
    let mut cmd = if as_nobody {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--", "psql"]);
        c
    } else {
        Command::new("psql")
    };
    cmd.arg(conninfo)
        .args(["-wXAtc", "select 1"])
        .current_dir("/")
        .env_remove("PGPASSWORD")
        .env_remove("PGPASSFILE")
        .env_remove("PGSERVICE")
        .output()
        .unwrap()
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Issue 18: `db start --listen` on loopback asks every TCP client for the password: another OS
/// account (`nobody`) is refused; the owner connects with the URL of `db url --tcp` (psql, via
/// `passfile=`) and of `db url --tcp --with-password` (tokio-postgres). `db status` names each
/// listener and its authentication. The password is in no help text, status output, server log
/// or server process command line.
#[test]
fn db_tcp_listener_needs_the_password() {
    let home = open_home();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let started = ok_out(&home, &["db", "start", "--listen", &listen]);
    let canonical_home = std::fs::canonicalize(home.dir.path().join("home")).unwrap();
    let passfile = canonical_home.join("pgpass");
    let want_tcp_url = format!(
        "postgresql://certhist@{listen}/certhist?passfile={}",
        passfile.display()
    );
    assert!(started.contains(&want_tcp_url), "{started}");
    let password = stored_password(&home);
    assert_eq!(password.len(), 64);
    assert!(!started.contains(&password));
    let mode = std::fs::metadata(&passfile).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );

    // The socket URL stays the default.
    let url = ok_out(&home, &["db", "url"]);
    assert!(
        url.trim()
            .starts_with("postgresql://certhist@/certhist?host="),
        "{url}"
    );
    let tcp_url = ok_out(&home, &["db", "url", "--tcp"]);
    assert_eq!(tcp_url.trim(), want_tcp_url);
    let with_password = ok_out(&home, &["db", "url", "--tcp", "--with-password"]);
    assert_eq!(
        with_password.trim(),
        format!("postgresql://certhist:{password}@{listen}/certhist")
    );

    // The owner, through tokio-postgres with the password URL.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let user: String = rt.block_on(async {
        let config: tokio_postgres::Config = with_password.trim().parse().unwrap();
        let (client, conn) = config.connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        client
            .query_one("SELECT current_user::text", &[])
            .await
            .unwrap()
            .get(0)
    });
    assert_eq!(user, "certhist");

    if have("psql") {
        // The owner, through psql with the passfile URL.
        let o = psql(tcp_url.trim(), false);
        assert!(o.status.success(), "owner's psql: {}", stderr(&o));
        assert_eq!(stdout(&o).trim(), "1");
        if is_root() && have("runuser") {
            // Another account, without the password: refused.
            let o = psql(
                &format!("host=127.0.0.1 port={port} user=certhist dbname=certhist"),
                true,
            );
            let err = stderr(&o);
            assert!(!o.status.success(), "nobody got in: {}", stdout(&o));
            assert!(
                err.contains("password authentication failed")
                    || err.contains("no password supplied"),
                "{err}"
            );
            // ... also with the owner's URL: the password file is not readable to it.
            let o = psql(tcp_url.trim(), true);
            assert!(!o.status.success(), "nobody got in: {}", stdout(&o));
        } else {
            eprintln!("not root or no runuser: skipping the other-account half of this test");
        }
    } else {
        eprintln!("psql not installed: skipping the psql half of this test");
    }

    // db status: the listeners and their authentication.
    let o = home.run(&["--json", "db", "status"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let json = stdout(&o);
    assert!(!json.contains(&password));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let listeners = v["listeners"].as_array().unwrap();
    assert_eq!(listeners.len(), 2, "{v}");
    assert_eq!(listeners[0]["kind"], "unix");
    assert_eq!(
        listeners[0]["address"],
        canonical_home
            .join("run")
            .join(format!(".s.PGSQL.{port}"))
            .display()
            .to_string()
    );
    assert!(listeners[0]["authentication"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["method"] == "trust" && r["connection_type"] == "local"));
    assert_eq!(listeners[1]["kind"], "tcp");
    assert_eq!(listeners[1]["address"], listen);
    let tcp_rules = listeners[1]["authentication"].as_array().unwrap();
    assert!(tcp_rules.iter().any(|r| r["address"] == "127.0.0.1/32"
        && r["database"] == "all"
        && r["method"] == "scram-sha-256"));
    assert!(tcp_rules.iter().any(|r| r["database"] == "replication"));
    assert!(
        tcp_rules.iter().all(|r| r["method"] == "scram-sha-256"),
        "{v}"
    );
    assert_eq!(v["tcp_url"], want_tcp_url);
    let human = ok_out(&home, &["db", "status"]);
    assert!(human.contains(&format!("tcp {listen}")), "{human}");
    assert!(
        human.contains("scram-sha-256: database all, user all from 127.0.0.1/32"),
        "{human}"
    );
    assert!(!human.contains(&password));

    // Not in help texts.
    for args in [
        &["--help"][..],
        &["db", "--help"],
        &["db", "start", "--help"],
        &["db", "url", "--help"],
        &["db", "status", "--help"],
    ] {
        let o = home.run(args, &[]);
        assert!(o.status.success(), "{args:?}");
        assert!(!stdout(&o).contains(&password), "{args:?}");
    }
    // Not in the server log, nor in the command line of any server process.
    let log = std::fs::read_to_string(canonical_home.join("postgres.log")).unwrap();
    assert!(!log.contains(&password));
    let data_dir = canonical_home.join("pgdata");
    let mut servers = 0;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if std::fs::read_link(e.path().join("cwd")).ok().as_deref() != Some(data_dir.as_path()) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        servers += 1;
        assert!(
            !String::from_utf8_lossy(&cmdline).contains(&password),
            "{}",
            String::from_utf8_lossy(&cmdline)
        );
    }
    assert!(servers > 0, "no server process found");
}

/// Issue 18: a non-loopback `--listen` needs `--allow-remote CIDR`; that network then gets a
/// SCRAM line. `db url --tcp` without a TCP listener says how to get one.
#[test]
fn db_start_on_a_non_loopback_address_needs_allow_remote() {
    let home = open_home();
    let port = free_port();
    let listen = format!("0.0.0.0:{port}");
    let o = home.run(&["db", "start", "--listen", &listen], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("--allow-remote CIDR"), "{err}");
    assert!(err.contains(&listen), "{err}");
    assert!(!home.dir.path().join("home/pgdata").exists());

    let o = home.run(&["db", "start", "--allow-remote", "192.0.2.0/24"], &[]);
    assert_eq!(o.status.code(), Some(2), "--allow-remote needs --listen");

    // Socket only: no TCP URL.
    ok_out(&home, &["db", "start"]);
    let o = home.run(&["db", "url", "--tcp"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("does not listen on TCP"),
        "{}",
        stderr(&o)
    );
    ok_out(&home, &["db", "stop"]);

    ok_out(
        &home,
        &[
            "db",
            "start",
            "--listen",
            &listen,
            "--allow-remote",
            "192.0.2.7/24",
        ],
    );
    let o = home.run(&["--json", "db", "status"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let tcp = &v["listeners"][1];
    assert_eq!(tcp["kind"], "tcp", "{v}");
    let rules = tcp["authentication"].as_array().unwrap();
    for db in ["all", "replication"] {
        assert!(
            rules.iter().any(|r| r["address"] == "192.0.2.0/24"
                && r["database"] == db
                && r["method"] == "scram-sha-256"),
            "{v}"
        );
    }
    assert!(rules.iter().all(|r| r["method"] == "scram-sha-256"), "{v}");
    // This host's own URL goes through loopback.
    let tcp_url = ok_out(&home, &["db", "url", "--tcp"]);
    assert!(
        tcp_url.starts_with(&format!(
            "postgresql://certhist@127.0.0.1:{port}/certhist?passfile="
        )),
        "{tcp_url}"
    );
}
