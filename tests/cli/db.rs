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
