//! Running the server binaries: as an unprivileged account when we are root (initdb and postgres
//! refuse root), with a clean environment, and the checks that this account can reach the home.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use nix::unistd::{Gid, Uid, User};

use super::layout::Layout;
use super::{io_err, ClusterError};

/// `PATH` of every server binary we run (they find each other by their own location; this is
/// for the shell `pg_ctl` starts the server through).
const CHILD_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The unprivileged account the server binaries run as (when we are root).
#[derive(Clone, Debug)]
pub(super) struct Account {
    pub(super) name: String,
    pub(super) uid: Uid,
    pub(super) gid: Gid,
    home: PathBuf,
}

/// `None` when not root: the binaries run as ourselves. As root: the owner of an existing data
/// directory, else `postgres`, else `nobody`.
pub(super) fn server_account(layout: &Layout) -> Result<Option<Account>, ClusterError> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    let lookup_err =
        |e: nix::errno::Errno| ClusterError::Other(format!("cannot read the user database: {e}"));
    let user = match fs::metadata(&layout.data_dir) {
        Ok(meta) if layout.initialised() => {
            if meta.uid() == 0 {
                return Err(ClusterError::Other(format!(
                    "{} is owned by root; PostgreSQL cannot run as root: `chown -R postgres {}`",
                    layout.data_dir.display(),
                    layout.data_dir.display()
                )));
            }
            User::from_uid(Uid::from_raw(meta.uid()))
                .map_err(lookup_err)?
                .ok_or_else(|| {
                    ClusterError::Other(format!(
                        "{} is owned by uid {}, which has no account; `chown -R postgres {}`",
                        layout.data_dir.display(),
                        meta.uid(),
                        layout.data_dir.display()
                    ))
                })?
        }
        _ => match User::from_name("postgres").map_err(lookup_err)? {
            Some(u) => u,
            None => User::from_name("nobody").map_err(lookup_err)?.ok_or_else(|| {
                ClusterError::Other(
                    "running as root, but neither a `postgres` nor a `nobody` account exists to run the server (initdb/postgres refuse root); create one: `useradd --system postgres`".into(),
                )
            })?,
        },
    };
    if user.uid.is_root() {
        return Err(ClusterError::Other(format!(
            "account `{}` has uid 0; PostgreSQL needs an unprivileged account",
            user.name
        )));
    }
    Ok(Some(Account {
        name: user.name,
        uid: user.uid,
        gid: user.gid,
        home: user.dir,
    }))
}

/// Every existing ancestor of `path` (and `path` itself, when it exists) must be searchable by
/// `acct`.
pub(super) fn check_traversable(path: &Path, acct: &Account) -> Result<(), ClusterError> {
    for dir in path.ancestors() {
        let Ok(meta) = fs::metadata(dir) else {
            continue;
        };
        let mode = meta.permissions().mode();
        let bit = if meta.uid() == acct.uid.as_raw() {
            0o100
        } else if meta.gid() == acct.gid.as_raw() {
            0o010
        } else {
            0o001
        };
        if mode & bit == 0 {
            return Err(ClusterError::NotTraversable {
                dir: dir.to_owned(),
                account: acct.name.clone(),
                fix: format!(
                    "either allow it with `chmod o+x {}` or set CERTHIST_HOME to a directory every user can reach, e.g. CERTHIST_HOME=/var/tmp/certhist",
                    dir.display()
                ),
            });
        }
    }
    Ok(())
}

pub(super) fn chown_to(path: &Path, acct: Option<&Account>) -> Result<(), ClusterError> {
    if let Some(a) = acct {
        std::os::unix::fs::chown(path, Some(a.uid.as_raw()), Some(a.gid.as_raw()))
            .map_err(io_err("cannot chown", path))?;
    }
    Ok(())
}

/// A command for a PostgreSQL binary run as ourselves, with nothing of our environment:
/// `env_clear()` and then an explicit allow-list — `PATH` ([`CHILD_PATH`]) and `LC_ALL=C`. So
/// no `PG*` variable of the caller (`PGDATA`, `PGPORT`, `PGHOST`, `PGSERVICE`, …) can redirect
/// it, and the library never has to read the environment to find out which ones to remove.
pub(super) fn clean_command(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("PATH", CHILD_PATH)
        .env("LC_ALL", "C")
        .stdin(Stdio::null());
    cmd
}

/// A command for a server binary: [`clean_command`], run as `acct` when given (with its `HOME`,
/// `USER` and `LOGNAME` added to the allow-list), in a working directory the account can enter.
pub(super) fn server_command(program: &Path, acct: Option<&Account>, cwd: &Path) -> Command {
    let mut cmd = clean_command(program);
    cmd.current_dir(cwd);
    if let Some(a) = acct {
        cmd.env("HOME", &a.home)
            .env("USER", &a.name)
            .env("LOGNAME", &a.name)
            .uid(a.uid.as_raw())
            .gid(a.gid.as_raw());
    }
    cmd
}

pub(super) fn run(cmd: &mut Command, what: &str) -> Result<Output, ClusterError> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.output().map_err(|e| {
        ClusterError::Other(format!(
            "cannot run {what} ({}): {e}",
            cmd.get_program().to_string_lossy()
        ))
    })
}

pub(super) fn output_text(out: &Output) -> String {
    let mut s = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !stdout.trim().is_empty() {
        if !s.is_empty() {
            s.push('\n');
        }
        s.push_str(stdout.trim());
    }
    s
}
