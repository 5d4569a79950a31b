//! Who may connect, and how: the managed `pg_hba.conf` and the password of the `certhist` role
//! for TCP clients (issue 18).
//!
//! - The Unix socket keeps `trust`: its directory is mode 0700, so only the owner (and the server
//!   account) can reach it.
//! - TCP never uses `trust`. Every `host` line (loopback, the server's own addresses, and the
//!   networks of [`StartOptions::allow_remote`](super::StartOptions::allow_remote)), replication
//!   included, asks for the password with SCRAM-SHA-256.
//! - The password is 256 bits from the OS random number generator, generated once and kept only
//!   in `<home>/pgpass` (libpq password-file format, mode 0600, owned by the user running
//!   certhist), so that `psql "…?passfile=<home>/pgpass"` works without the password on a command
//!   line. The server receives only its SCRAM-SHA-256 verifier (`ALTER ROLE … PASSWORD
//!   'SCRAM-SHA-256$…'`, computed here), over the Unix socket: the clear password never reaches
//!   the server, its log or `ps`.
//!
//! `pg_hba.conf` is rewritten before every start. A cluster already running when certhist starts
//! (e.g. one started by an older certhist with `trust` TCP lines) is upgraded in place: the file
//! is rewritten, the password set and the configuration reloaded.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use nix::unistd::Uid;
use secrecy::{ExposeSecret, SecretString};

use super::account::{chown_to, Account};
use super::layout::Layout;
use super::{io_err, ClusterError, ClusterInfo, DB_USER};

/// Random bytes in a generated password (256 bits; hex-encoded, 64 characters).
const PASSWORD_BYTES: usize = 32;
/// First line of a `pg_hba.conf` written by [`write_hba`].
const HBA_MARKER: &str =
    "# Written by certhist before every start of the managed cluster; do not edit (it is rewritten).";
/// How long an upgrade waits for the server to reload its configuration.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// Generates a new password: [`PASSWORD_BYTES`] from the OS random number generator, hex.
fn generate_password() -> Result<SecretString, ClusterError> {
    let mut bytes = [0u8; PASSWORD_BYTES];
    getrandom::getrandom(&mut bytes).map_err(|e| {
        ClusterError::Other(format!(
            "cannot read the OS random number generator for the database password: {e}"
        ))
    })?;
    let password = hex::encode(bytes);
    bytes.fill(0);
    Ok(SecretString::from(password))
}

/// The libpq password-file line of `password` (any host, port and database; user certhist).
fn passfile_line(password: &SecretString) -> String {
    format!("*:*:*:{DB_USER}:{}", password.expose_secret())
}

/// The password stored in `path`, when the file is a regular file of ours, private (no group or
/// other permission bits) and holds a well-formed line. Anything else gives `None` (a password
/// that others could have read is replaced, not reused).
pub(super) fn read_passfile(path: &Path) -> Result<Option<SecretString>, ClusterError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ClusterError::Io {
                what: "cannot inspect",
                path: path.to_owned(),
                source: e,
            })
        }
    };
    if !meta.is_file()
        || meta.uid() != Uid::effective().as_raw()
        || meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(cluster.passfile = %path.display(), "password file is not a private file of ours; replacing it with a new password");
        return Ok(None);
    }
    let text = SecretString::from(fs::read_to_string(path).map_err(io_err("cannot read", path))?);
    let prefix = format!("*:*:*:{DB_USER}:");
    let found = text
        .expose_secret()
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .find(|pw| pw.len() == 2 * PASSWORD_BYTES && pw.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|pw| SecretString::from(pw.to_owned()));
    if found.is_none() {
        tracing::warn!(cluster.passfile = %path.display(), "password file holds no password of role certhist; replacing it");
    }
    Ok(found)
}

/// Writes `password` to `path` (mode 0600, through a temporary file renamed into place).
fn write_passfile(path: &Path, password: &SecretString) -> Result<(), ClusterError> {
    let tmp = path.with_extension("tmp");
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(ClusterError::Io {
                what: "cannot remove leftover",
                path: tmp,
                source: e,
            })
        }
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io_err("cannot create", &tmp))?;
    let text = SecretString::from(format!(
        "# certhist: password of database role {DB_USER} for TCP connections to the managed cluster\n# (libpq password file: use `passfile=` in the connection string or PGPASSFILE). Keep it private.\n{}\n",
        passfile_line(password)
    ));
    file.write_all(text.expose_secret().as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_err("cannot write", &tmp))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))
        .map_err(io_err("cannot chmod", &tmp))?;
    fs::rename(&tmp, path).map_err(io_err("cannot rename password file to", path))?;
    Ok(())
}

/// The password in `<home>/pgpass`, generated and stored first when there is none (or the file
/// is not private).
pub(super) fn ensure_password(layout: &Layout) -> Result<SecretString, ClusterError> {
    if let Some(pw) = read_passfile(&layout.passfile)? {
        return Ok(pw);
    }
    let pw = generate_password()?;
    write_passfile(&layout.passfile, &pw)?;
    tracing::info!(cluster.passfile = %layout.passfile.display(), "generated the password of role certhist for TCP connections");
    Ok(pw)
}

/// The managed `pg_hba.conf`: `trust` on the Unix socket only; SCRAM-SHA-256 for every TCP line
/// (loopback, the server's own addresses, then `allow_remote`), replication included.
pub(super) fn hba_text(allow_remote: &[IpNet]) -> String {
    let mut text = format!(
        "{HBA_MARKER}\n\
         # Unix socket: trust (its directory is mode 0700: only the owner reaches it).\n\
         # TCP: never trust; the password of role {DB_USER} (SCRAM-SHA-256), kept in the certhist home\n\
         # in the file `pgpass` (mode 0600); `certhist db url --tcp` prints a URL that uses it.\n\
         # TYPE  DATABASE     USER  ADDRESS                  METHOD\n"
    );
    let mut line = |kind: &str, db: &str, addr: &str, method: &str| {
        text.push_str(&format!("{kind:<7} {db:<12} all   {addr:<24} {method}\n"));
    };
    line("local", "all", "", "trust");
    line("local", "replication", "", "trust");
    let mut addresses = vec![
        "127.0.0.1/32".to_owned(),
        "::1/128".to_owned(),
        "samehost".to_owned(),
    ];
    addresses.extend(allow_remote.iter().map(|n| n.trunc().to_string()));
    for db in ["all", "replication"] {
        for addr in &addresses {
            line("host", db, addr, "scram-sha-256");
        }
    }
    text
}

/// Writes [`hba_text`] to the data directory's `pg_hba.conf` (mode 0600, owned by the server
/// account, renamed into place). Returns whether the content changed.
pub(super) fn write_hba(
    layout: &Layout,
    acct: Option<&Account>,
    allow_remote: &[IpNet],
) -> Result<bool, ClusterError> {
    let path = layout.data_dir.join("pg_hba.conf");
    let text = hba_text(allow_remote);
    if fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
        return Ok(false);
    }
    let tmp = layout.data_dir.join("pg_hba.conf.certhist-tmp");
    fs::write(&tmp, &text).map_err(io_err("cannot write", &tmp))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))
        .map_err(io_err("cannot chmod", &tmp))?;
    chown_to(&tmp, acct)?;
    fs::rename(&tmp, &path).map_err(io_err("cannot rename to", &path))?;
    Ok(true)
}

/// One rule of `pg_hba.conf`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct HbaRule {
    /// `local` (Unix socket) or `host`, `hostssl`, … (TCP).
    pub connection_type: String,
    /// Databases the rule is for (`all`, `replication`, names).
    pub database: String,
    /// Database users the rule is for.
    pub user: String,
    /// Client addresses (TCP rules): a CIDR, an address and mask, `samehost`, a host name.
    pub address: Option<String>,
    /// Authentication method (`trust`, `scram-sha-256`, `peer`, …).
    pub method: String,
}

impl HbaRule {
    /// True for rules about TCP connections.
    pub fn is_tcp(&self) -> bool {
        self.connection_type.starts_with("host")
    }
}

/// The rules of a `pg_hba.conf` text (comments, blank and `include` lines skipped; quoting and
/// line continuations are not needed for the files certhist or initdb write).
pub fn parse_hba(text: &str) -> Vec<HbaRule> {
    let mut rules = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default();
        let f: Vec<&str> = line.split_whitespace().collect();
        let rule = match f.as_slice() {
            ["local", db, user, method, ..] => HbaRule {
                connection_type: "local".into(),
                database: (*db).into(),
                user: (*user).into(),
                address: None,
                method: (*method).into(),
            },
            [kind, db, user, addr, rest @ ..] if kind.starts_with("host") => {
                // An address without a prefix length is followed by a separate mask.
                let (address, method) = match (addr.parse::<std::net::IpAddr>(), rest) {
                    (Ok(_), [mask, method, ..]) => (format!("{addr} {mask}"), *method),
                    (_, [method, ..]) => ((*addr).to_owned(), *method),
                    _ => continue,
                };
                HbaRule {
                    connection_type: (*kind).into(),
                    database: (*db).into(),
                    user: (*user).into(),
                    address: Some(address),
                    method: method.into(),
                }
            }
            _ => continue,
        };
        rules.push(rule);
    }
    rules
}

/// The rules of the cluster's `pg_hba.conf` (empty when it cannot be read).
pub(super) fn read_hba(layout: &Layout) -> Vec<HbaRule> {
    fs::read_to_string(layout.data_dir.join("pg_hba.conf"))
        .map(|t| parse_hba(&t))
        .unwrap_or_default()
}

/// True when `pg_hba.conf` was not written by certhist or lets any TCP client in with `trust`.
pub(super) fn hba_needs_upgrade(layout: &Layout) -> bool {
    let text = fs::read_to_string(layout.data_dir.join("pg_hba.conf")).unwrap_or_default();
    !text.starts_with(HBA_MARKER)
        || parse_hba(&text)
            .iter()
            .any(|r| r.is_tcp() && r.method == "trust")
}

/// `ALTER ROLE certhist PASSWORD '<SCRAM-SHA-256 verifier>'` over the Unix socket (the verifier is
/// computed here: the clear password never reaches the server). With `reload`, then
/// `pg_reload_conf()`, waiting until new connections see the reloaded configuration.
pub(super) fn apply_password(
    info: &ClusterInfo,
    password: &SecretString,
    reload: bool,
) -> Result<(), ClusterError> {
    let verifier = postgres_protocol::password::scram_sha_256(password.expose_secret().as_bytes());
    // The verifier holds only `SCRAM-SHA-256$`, digits, `:` and base64; quote it anyway.
    let sql = format!(
        "ALTER ROLE \"{DB_USER}\" PASSWORD '{}'",
        verifier.replace('\'', "''")
    );
    let config = info.pg_config("postgres");
    // A runtime of our own on a thread of our own: callers may be inside a runtime.
    let work = std::thread::spawn(move || -> Result<(), String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start a runtime: {e}"))?;
        rt.block_on(async {
            let connect = || async {
                let (client, conn) = config
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map_err(|e| format!("cannot connect over the Unix socket: {e}"))?;
                tokio::spawn(conn);
                Ok::<_, String>(client)
            };
            let client = connect().await?;
            client
                .batch_execute(&sql)
                .await
                .map_err(|e| format!("cannot set the password of role {DB_USER}: {e}"))?;
            if !reload {
                return Ok(());
            }
            let load_time = "SELECT pg_conf_load_time()";
            let before: chrono::DateTime<chrono::Utc> = client
                .query_one(load_time, &[])
                .await
                .map_err(|e| e.to_string())?
                .get(0);
            client
                .execute("SELECT pg_reload_conf()", &[])
                .await
                .map_err(|e| format!("cannot reload the configuration: {e}"))?;
            // A new session reports the postmaster's last load time; once it moved, the
            // postmaster has reloaded pg_hba.conf too (same signal handler, before it forks).
            let deadline = Instant::now() + RELOAD_TIMEOUT;
            loop {
                let fresh = connect().await?;
                let now: chrono::DateTime<chrono::Utc> = fresh
                    .query_one(load_time, &[])
                    .await
                    .map_err(|e| e.to_string())?
                    .get(0);
                if now > before {
                    return Ok(());
                }
                if Instant::now() > deadline {
                    return Err(format!(
                        "the server did not reload its configuration within {} s",
                        RELOAD_TIMEOUT.as_secs()
                    ));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    });
    work.join()
        .map_err(|_| ClusterError::Other("setting the database password panicked".into()))?
        .map_err(|e| ClusterError::Other(format!("{}: {e}", info.data_dir.display())))
}

/// Upgrades the authentication of a running server when it needs it (a `pg_hba.conf` not
/// written by certhist or with `trust` TCP lines, or no usable password file): rewrites
/// `pg_hba.conf`, sets the password and reloads.
pub(super) fn upgrade_running(
    layout: &Layout,
    info: &ClusterInfo,
    acct: Option<&Account>,
    allow_remote: &[IpNet],
) -> Result<(), ClusterError> {
    let hba_ok = !hba_needs_upgrade(layout);
    let password_ok = read_passfile(&layout.passfile)?.is_some();
    if hba_ok && password_ok {
        return Ok(());
    }
    tracing::warn!(cluster.data_dir = %layout.data_dir.display(), "upgrading the authentication of the running cluster: no trust over TCP, password of role certhist");
    let password = ensure_password(layout)?;
    let changed = write_hba(layout, acct, allow_remote)?;
    if super::replica::is_standby(layout) {
        // Read-only: the password arrives by replication; only reload the new pg_hba.conf.
        return Ok(());
    }
    apply_password(info, &password, changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managed_hba_never_trusts_tcp() {
        let nets: Vec<IpNet> = vec!["192.0.2.7/24".parse().unwrap()];
        let rules = parse_hba(&hba_text(&nets));
        assert!(rules
            .iter()
            .filter(|r| r.is_tcp())
            .all(|r| r.method == "scram-sha-256"));
        assert!(rules
            .iter()
            .filter(|r| !r.is_tcp())
            .all(|r| r.method == "trust"));
        let remote: Vec<_> = rules
            .iter()
            .filter(|r| r.address.as_deref() == Some("192.0.2.0/24"))
            .map(|r| r.database.as_str())
            .collect();
        assert_eq!(remote, ["all", "replication"]);
    }

    #[test]
    fn hba_parsing() {
        let text = "local all all trust\n# host all all 0.0.0.0/0 trust\nhost all all 127.0.0.1/32 trust # c\nhostssl db u 10.0.0.0 255.0.0.0 md5\ninclude x.conf\n";
        let rules = parse_hba(text);
        assert_eq!(rules.len(), 3);
        assert_eq!(rules[1].address.as_deref(), Some("127.0.0.1/32"));
        assert_eq!(rules[1].method, "trust");
        assert_eq!(rules[2].address.as_deref(), Some("10.0.0.0 255.0.0.0"));
        assert_eq!(rules[2].method, "md5");
    }

    #[test]
    fn generated_passwords_are_long_and_distinct() {
        let a = generate_password().unwrap();
        let b = generate_password().unwrap();
        assert_eq!(a.expose_secret().len(), 64);
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert!(!format!("{a:?}").contains(a.expose_secret()));
    }
}
