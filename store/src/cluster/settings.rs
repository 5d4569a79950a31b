//! The server's settings: `certhist.conf` (rewritten at every start), the socket directory and
//! the port that names the socket.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::unistd::Uid;

use super::account::{chown_to, Account};
use super::layout::Layout;
use super::process::{is_live_postmaster, parse_lock_file};
use super::{io_err, ClusterError, StartOptions};

/// Server settings for a local analytics database (bulk loads, few connections).
const DEFAULT_SETTINGS: &[(&str, &str)] = &[
    ("max_connections", "100"),
    ("shared_buffers", "512MB"),
    ("work_mem", "32MB"),
    ("maintenance_work_mem", "512MB"),
    ("effective_cache_size", "4GB"),
    ("max_wal_size", "4GB"),
    ("min_wal_size", "256MB"),
    ("checkpoint_timeout", "15min"),
    ("checkpoint_completion_target", "0.9"),
    ("synchronous_commit", "off"),
    ("wal_compression", "on"),
    ("huge_pages", "try"),
    ("dynamic_shared_memory_type", "posix"),
    ("log_timezone", "UTC"),
    ("timezone", "UTC"),
    ("log_min_duration_statement", "10s"),
];

/// Quotes a `postgresql.conf` string value.
fn conf_quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

fn path_str(path: &Path) -> Result<&str, ClusterError> {
    path.to_str()
        .ok_or_else(|| ClusterError::Other(format!("path is not valid UTF-8: {}", path.display())))
}

/// Creates the socket directory (mode 0700, owned by the server account), or checks that an
/// existing one is a directory of that owner.
pub(super) fn prepare_socket_dir(
    layout: &Layout,
    acct: Option<&Account>,
) -> Result<(), ClusterError> {
    let dir = &layout.socket_dir;
    match fs::symlink_metadata(dir) {
        Ok(meta) => {
            let expected_uid = acct
                .map(|a| a.uid.as_raw())
                .unwrap_or_else(|| Uid::effective().as_raw());
            if !meta.is_dir() || meta.uid() != expected_uid {
                return Err(ClusterError::Other(format!(
                    "socket directory {} exists but is not a directory owned by uid {expected_uid}; remove it",
                    dir.display()
                )));
            }
            if meta.permissions().mode() & 0o077 != 0 {
                fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                    .map_err(io_err("cannot chmod", dir))?;
            }
        }
        Err(_) => {
            fs::DirBuilder::new()
                .mode(0o700)
                .create(dir)
                .map_err(io_err("cannot create socket directory", dir))?;
            chown_to(dir, acct)?;
        }
    }
    Ok(())
}

/// The port to name the socket with: the default unless our socket directory holds a live
/// lock of another cluster for it. Stale socket lock files are removed.
pub(super) fn choose_port(layout: &Layout, wanted: u16) -> Result<u16, ClusterError> {
    for port in wanted..wanted.saturating_add(100) {
        let lock = layout.socket_dir.join(format!(".s.PGSQL.{port}.lock"));
        let Ok(text) = fs::read_to_string(&lock) else {
            return Ok(port);
        };
        let owner_dir = text.lines().nth(1).map(PathBuf::from);
        let Some(pf) = parse_lock_file(&text) else {
            let _ = fs::remove_file(&lock);
            return Ok(port);
        };
        let owner_alive = owner_dir
            .as_deref()
            .map(|d| is_live_postmaster(pf.pid, d))
            .unwrap_or(false);
        if !owner_alive {
            let _ = fs::remove_file(&lock);
            let _ = fs::remove_file(layout.socket_dir.join(format!(".s.PGSQL.{port}")));
            return Ok(port);
        }
        tracing::info!(cluster.socket_dir = %layout.socket_dir.display(), cluster.port = port, "socket name taken by another live cluster; trying the next port");
    }
    Err(ClusterError::Other(format!(
        "no free socket name in {} for ports {wanted}..{}",
        layout.socket_dir.display(),
        wanted.saturating_add(100)
    )))
}

/// Writes `certhist.conf` into the data directory: listening, socket, [`DEFAULT_SETTINGS`], then
/// the caller's [`StartOptions::settings`] (names checked, values quoted).
pub(super) fn write_settings(
    layout: &Layout,
    port: u16,
    options: &StartOptions,
) -> Result<(), ClusterError> {
    let socket_dir = path_str(&layout.socket_dir)?;
    let mut text = String::from(
        "# Written by certhist at every start of the managed cluster; do not edit (use ALTER SYSTEM).\n",
    );
    let listen = options.tcp.map(|a| a.ip().to_string()).unwrap_or_default();
    text.push_str(&format!("listen_addresses = {}\n", conf_quote(&listen)));
    text.push_str(&format!("port = {port}\n"));
    let dirs = format!("\"{}\"", socket_dir.replace('"', "\"\""));
    text.push_str(&format!(
        "unix_socket_directories = {}\n",
        conf_quote(&dirs)
    ));
    text.push_str("unix_socket_permissions = 0700\n");
    for (k, v) in DEFAULT_SETTINGS {
        text.push_str(&format!("{k} = {}\n", conf_quote(v)));
    }
    for (k, v) in &options.settings {
        if !k
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            || k.is_empty()
        {
            return Err(ClusterError::Other(format!(
                "invalid server setting name {k:?}"
            )));
        }
        text.push_str(&format!("{k} = {}\n", conf_quote(v)));
    }
    let path = layout.data_dir.join("certhist.conf");
    fs::write(&path, text).map_err(io_err("cannot write", &path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conf_quoting() {
        assert_eq!(conf_quote("it's"), "'it''s'");
        assert_eq!(conf_quote(r"a\b"), r"'a\\b'");
    }
}
