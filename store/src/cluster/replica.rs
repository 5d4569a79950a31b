//! Read replicas of the managed cluster (issue 15): a hot standby made with `pg_basebackup`,
//! kept up to date by streaming replication.
//!
//! A replica lives in a directory of its own laid out like a certhist home (`pgdata/`,
//! `postgres.log`, `run/`, `cluster.lock`, `pgpass`), so that [`super::ensure_running_with`],
//! [`super::stop_with`] and [`super::status_with`] start, stop and inspect it like the primary:
//!
//! - `pgdata/` is a base backup of the primary (`pg_basebackup -X stream`, made in a scratch
//!   directory and renamed into place only when complete), with `standby.signal` and a
//!   `primary_conninfo` appended to its `postgresql.auto.conf`: the primary's Unix socket (trust,
//!   same host), or, when the primary listens on TCP, its TCP address with the password of role
//!   certhist from the primary home's `pgpass` (SCRAM-SHA-256; the file holding it is the
//!   server account's, mode 0600, inside the 0700 data directory);
//! - `pgpass` is a copy of the primary's (the role and its password replicate; TCP clients of the
//!   replica log in with the same password);
//! - its socket directory is its own, so the default port number does not clash with the
//!   primary's socket; `--listen` gives it a TCP port of its own.
//!
//! The standby replays the primary's WAL and answers read-only queries (`hot_standby`, on by
//! default); certhist never sets the password on a standby (it arrives by replication).

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use super::account::{
    check_traversable, chown_to, output_text, run, server_account, server_command,
};
use super::binaries::find_binaries;
use super::layout::{absolute_home, lock_home, Layout};
use super::{
    ensure_running_with, io_err, tcp_password, ClusterError, ClusterInfo, StartOptions, DB_USER,
};
use secrecy::ExposeSecret;

/// The file whose presence makes a data directory start as a standby.
const STANDBY_SIGNAL: &str = "standby.signal";

/// Server settings a replica starts with, after the defaults: queries on the standby hold back
/// the primary's vacuum instead of being cancelled by replay conflicts.
pub const REPLICA_SETTINGS: &[(&str, &str)] =
    &[("hot_standby", "on"), ("hot_standby_feedback", "on")];

/// What [`create_replica`] made.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ReplicaCreated {
    /// The replica's directory.
    pub dir: std::path::PathBuf,
    /// Its data directory.
    pub data_dir: std::path::PathBuf,
    /// How the standby reaches the primary: `unix` or `tcp`.
    pub via: &'static str,
    /// The `application_name` the standby's WAL receiver uses on the primary
    /// (`pg_stat_replication.application_name`).
    pub application_name: String,
    /// Bytes copied (size of the data directory).
    pub bytes: u64,
}

/// True when `dir` holds a replica made by [`create_replica`] (a data directory with
/// `standby.signal`).
pub fn is_replica(dir: &Path) -> bool {
    dir.join("pgdata").join(STANDBY_SIGNAL).is_file()
}

/// True when the data directory of `layout` is a standby's (start and upgrade skip setting the
/// password: a standby is read-only, and the password arrives by replication).
pub(super) fn is_standby(layout: &Layout) -> bool {
    layout.data_dir.join(STANDBY_SIGNAL).is_file()
}

/// Quotes a libpq connection-string value (`'…'`, `\` and `'` escaped).
fn conninfo_quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A name for `pg_stat_replication`: `certhist-replica-` and the directory's name, ASCII
/// letters, digits, `-` and `_` only, at most 63 bytes.
fn application_name(dir: &Path) -> String {
    let base: String = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut name = format!("certhist-replica-{base}");
    name.truncate(63);
    name
}

fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Makes a hot standby of the managed cluster under `primary_home` (started when it is not
/// running, with `primary_options`) in `dir`, which must not hold a data directory yet. The
/// replica is not started (see [`super::ensure_running_with`] on `dir`).
pub fn create_replica(
    primary_home: &Path,
    primary_options: &StartOptions,
    dir: &Path,
) -> Result<ReplicaCreated, ClusterError> {
    let primary = ensure_running_with(primary_home, primary_options)?;
    let primary_home = absolute_home(primary_home)?;
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(io_err("cannot create", dir))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
            .map_err(io_err("cannot chmod", dir))?;
    }
    let dir = absolute_home(dir)?;
    if dir == primary_home {
        return Err(ClusterError::Other(format!(
            "{} is the primary's home; give the replica a directory of its own",
            dir.display()
        )));
    }
    let layout = Layout::new(&dir);
    let _lock = lock_home(&layout)?;
    if layout.data_dir.exists() {
        return Err(ClusterError::Other(format!(
            "{} already exists; a replica is created in a directory without a data directory (remove it, or start the replica that is there with `certhist db replica start {}`)",
            layout.data_dir.display(),
            dir.display()
        )));
    }
    let primary_layout = Layout::new(&primary_home);
    let bins = find_binaries(
        &primary_options.cluster,
        primary_layout.data_version().as_deref(),
        &primary_layout.data_dir,
    )?;
    // The replica runs as the account that runs the primary (root: the owner of its data).
    let account = server_account(&primary_layout)?;
    if let Some(acct) = &account {
        check_traversable(&dir, acct)?;
    }

    let tmp = dir.join("pgdata.basebackup-tmp");
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(io_err("cannot remove leftover", &tmp))?;
    }
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&tmp)
        .map_err(io_err("cannot create", &tmp))?;
    chown_to(&tmp, account.as_ref())?;
    let app_name = application_name(&dir);
    tracing::info!(replica.dir = %dir.display(), primary.data_dir = %primary.data_dir.display(), "taking a base backup of the primary");
    let mut cmd = server_command(&bins.bindir.join("pg_basebackup"), account.as_ref(), &dir);
    cmd.arg("-D")
        .arg(&tmp)
        .arg("-h")
        .arg(&primary.socket_dir)
        .arg("-p")
        .arg(primary.port.to_string())
        .args(["-U", DB_USER, "-X", "stream", "-c", "fast", "--no-password"]);
    let out = run(&mut cmd, "pg_basebackup")?;
    if !out.status.success() {
        let _ = fs::remove_dir_all(&tmp);
        return Err(ClusterError::Other(format!(
            "pg_basebackup of {} failed: {}",
            primary.data_dir.display(),
            output_text(&out)
        )));
    }

    // How the standby reaches the primary.
    let (conninfo, via) = match primary.tcp_connect_addr() {
        Some(addr) => {
            let password = tcp_password(&primary_home)?;
            (
                format!(
                    "host={} port={} user={DB_USER} password={} application_name={}",
                    conninfo_quote(&addr.ip().to_string()),
                    addr.port(),
                    conninfo_quote(password.expose_secret()),
                    conninfo_quote(&app_name)
                ),
                "tcp",
            )
        }
        None => (
            format!(
                "host={} port={} user={DB_USER} application_name={}",
                conninfo_quote(&primary.socket_dir.to_string_lossy()),
                primary.port,
                conninfo_quote(&app_name)
            ),
            "unix",
        ),
    };
    let auto = tmp.join("postgresql.auto.conf");
    let mut text = fs::read_to_string(&auto).unwrap_or_default();
    text.push_str(&format!(
        "# Added by certhist db replica create: this data directory is a standby of {}\nprimary_conninfo = '{}'\n",
        primary.data_dir.display(),
        conninfo.replace('\'', "''")
    ));
    fs::write(&auto, text).map_err(io_err("cannot write", &auto))?;
    fs::set_permissions(&auto, fs::Permissions::from_mode(0o600))
        .map_err(io_err("cannot chmod", &auto))?;
    chown_to(&auto, account.as_ref())?;
    let signal = tmp.join(STANDBY_SIGNAL);
    fs::write(&signal, "").map_err(io_err("cannot write", &signal))?;
    chown_to(&signal, account.as_ref())?;
    // The same password for TCP clients of the replica (the role replicates with its verifier).
    if primary_layout.passfile.is_file() && !layout.passfile.exists() {
        fs::copy(&primary_layout.passfile, &layout.passfile)
            .map_err(io_err("cannot copy the password file to", &layout.passfile))?;
        fs::set_permissions(&layout.passfile, fs::Permissions::from_mode(0o600))
            .map_err(io_err("cannot chmod", &layout.passfile))?;
    }
    let bytes = dir_size(&tmp);
    fs::rename(&tmp, &layout.data_dir)
        .map_err(io_err("cannot rename the base backup to", &layout.data_dir))?;
    Ok(ReplicaCreated {
        dir: dir.clone(),
        data_dir: layout.data_dir.clone(),
        via,
        application_name: app_name,
        bytes,
    })
}

/// Starts the replica in `dir` (made by [`create_replica`]); `options.tcp` gives it a TCP port.
/// [`REPLICA_SETTINGS`] are added to `options.settings`.
pub fn start_replica(dir: &Path, options: &StartOptions) -> Result<ClusterInfo, ClusterError> {
    if !is_replica(dir) {
        return Err(ClusterError::Other(format!(
            "{} holds no replica (no pgdata/{STANDBY_SIGNAL}); make one with `certhist db replica create {}`",
            dir.display(),
            dir.display()
        )));
    }
    let mut options = options.clone();
    let mut settings: Vec<(String, String)> = REPLICA_SETTINGS
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    settings.append(&mut options.settings);
    options.settings = settings;
    ensure_running_with(dir, &options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conninfo_values_are_quoted() {
        assert_eq!(conninfo_quote(r"/tmp/a b'c\d"), r"'/tmp/a b\'c\\d'");
    }

    #[test]
    fn application_names_are_plain() {
        assert_eq!(
            application_name(Path::new("/var/tmp/rep 1;x")),
            "certhist-replica-rep_1_x"
        );
        assert!(application_name(Path::new(&"x".repeat(200))).len() <= 63);
    }
}
