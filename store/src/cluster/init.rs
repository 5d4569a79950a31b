//! `initdb`: creating the data directory of a new cluster, atomically.

use std::fs;
use std::os::unix::fs::DirBuilderExt;

use super::account::{chown_to, output_text, run, server_command, Account};
use super::binaries::Binaries;
use super::layout::Layout;
use super::{io_err, ClusterError, DB_USER};

/// Creates the cluster's data directory: `initdb -U certhist --auth-local=trust
/// --auth-host=scram-sha-256 -E UTF8` (locale
/// `C.UTF-8`, else `C`) in a scratch directory, then `include_if_exists = 'certhist.conf'`
/// appended to its `postgresql.conf`, then renamed into place.
pub(super) fn initdb(
    layout: &Layout,
    bins: &Binaries,
    acct: Option<&Account>,
) -> Result<(), ClusterError> {
    // initdb runs in a scratch directory renamed into place only on success, so that a crash
    // mid-initdb never leaves a half-made `pgdata` behind.
    let tmp = layout.init_tmp_dir();
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(io_err("cannot remove leftover", &tmp))?;
    }
    if layout.data_dir.exists() {
        let empty = fs::read_dir(&layout.data_dir)
            .map_err(io_err("cannot read", &layout.data_dir))?
            .next()
            .is_none();
        if !empty {
            return Err(ClusterError::Other(format!(
                "{} exists but is not a PostgreSQL data directory (no PG_VERSION); move it away or choose another CERTHIST_HOME",
                layout.data_dir.display()
            )));
        }
        fs::remove_dir(&layout.data_dir).map_err(io_err("cannot remove", &layout.data_dir))?;
    }
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&tmp)
        .map_err(io_err("cannot create", &tmp))?;
    chown_to(&tmp, acct)?;
    tracing::info!(cluster.data_dir = %layout.data_dir.display(), cluster.version = %bins.version, "initialising PostgreSQL cluster");
    let mut last = String::new();
    let mut ok = false;
    for locale in ["C.UTF-8", "C"] {
        let mut cmd = server_command(&bins.bindir.join("initdb"), acct, &layout.home);
        cmd.arg("-D")
            .arg(&tmp)
            .args([
                "-U",
                DB_USER,
                // The socket only; TCP asks for the password (`auth::write_hba` rewrites the
                // file before every start).
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-instructions",
            ])
            .arg(format!("--locale={locale}"));
        let out = run(&mut cmd, "initdb")?;
        if out.status.success() {
            ok = true;
            break;
        }
        last = output_text(&out);
        // initdb removes what it created on failure; make sure the directory is empty again.
        if let Ok(entries) = fs::read_dir(&tmp) {
            for e in entries.flatten() {
                let p = e.path();
                let _ = if p.is_dir() {
                    fs::remove_dir_all(&p)
                } else {
                    fs::remove_file(&p)
                };
            }
        }
    }
    if !ok {
        let _ = fs::remove_dir_all(&tmp);
        return Err(ClusterError::Other(format!(
            "initdb failed in {}: {last}",
            layout.data_dir.display()
        )));
    }
    // Our settings live in certhist.conf (rewritten at every start), included last.
    let conf = tmp.join("postgresql.conf");
    let mut text = fs::read_to_string(&conf).map_err(io_err("cannot read", &conf))?;
    text.push_str("\n# Added by certhist: settings of the managed cluster (rewritten at every start).\ninclude_if_exists = 'certhist.conf'\n");
    fs::write(&conf, text).map_err(io_err("cannot write", &conf))?;
    fs::rename(&tmp, &layout.data_dir).map_err(io_err(
        "cannot rename initialised cluster to",
        &layout.data_dir,
    ))?;
    Ok(())
}
