//! Finding the PostgreSQL server binaries (initdb, pg_ctl, postgres) of the right major version.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::account::clean_command;
use super::{ClusterConfig, ClusterError};

/// A directory of server binaries and their version.
#[derive(Clone, Debug)]
pub(super) struct Binaries {
    pub(super) bindir: PathBuf,
    /// `postgres --version` output, e.g. `postgres (PostgreSQL) 15.13 (Debian 15.13-0+deb12u1)`.
    pub(super) version: String,
    /// Major version: `15`.
    pub(super) major: String,
}

impl Binaries {
    pub(super) fn pg_ctl(&self) -> PathBuf {
        self.bindir.join("pg_ctl")
    }
}

const SERVER_BINARIES: [&str; 3] = ["initdb", "pg_ctl", "postgres"];

fn is_executable(path: &Path) -> bool {
    fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn has_server_binaries(dir: &Path) -> bool {
    SERVER_BINARIES.iter().all(|b| is_executable(&dir.join(b)))
}

impl ClusterConfig {
    /// Directories where the server binaries are looked for, in preference order and without
    /// repeats: [`ClusterConfig::pg_bindir`], the `--bindir` of the first `pg_config` on
    /// [`ClusterConfig::search_path`], `/usr/lib/postgresql/<highest version>/bin` and the lower
    /// versions, `/usr/local/pgsql/bin`, then the directories of the search path.
    pub fn candidate_bindirs(&self) -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        dirs.extend(self.pg_bindir.iter().cloned());
        if let Some(pg_config) = self
            .search_path
            .iter()
            .map(|d| d.join("pg_config"))
            .find(|p| is_executable(p))
        {
            if let Ok(out) = clean_command(&pg_config).arg("--bindir").output() {
                if out.status.success() {
                    let s = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                    if !s.is_empty() {
                        dirs.push(PathBuf::from(s));
                    }
                }
            }
        }
        let mut versioned: Vec<(Vec<u32>, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let key: Vec<u32> = name
                    .split('.')
                    .map(|p| p.parse().ok())
                    .collect::<Option<_>>()?;
                Some((key, e.path().join("bin")))
            })
            .collect();
        versioned.sort_by(|a, b| b.0.cmp(&a.0));
        dirs.extend(versioned.into_iter().map(|(_, p)| p));
        dirs.push(PathBuf::from("/usr/local/pgsql/bin"));
        dirs.extend(self.search_path.iter().cloned());
        let mut seen = Vec::new();
        dirs.retain(|d| {
            let key = fs::canonicalize(d).unwrap_or_else(|_| d.clone());
            if seen.contains(&key) {
                false
            } else {
                seen.push(key);
                true
            }
        });
        dirs
    }
}

fn server_version(bindir: &Path) -> Option<(String, String)> {
    let out = clean_command(&bindir.join("postgres"))
        .arg("--version")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let number = text
        .split("(PostgreSQL)")
        .nth(1)?
        .split_whitespace()
        .next()?;
    let major = number
        .split('.')
        .next()?
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .to_owned();
    Some((text, major))
}

/// The first directory of [`ClusterConfig::candidate_bindirs`] holding initdb, pg_ctl and
/// postgres; with `wanted_major` (an existing cluster), the first one of that major version.
pub(super) fn find_binaries(
    config: &ClusterConfig,
    wanted_major: Option<&str>,
    data_dir: &Path,
) -> Result<Binaries, ClusterError> {
    find_binaries_in(&config.candidate_bindirs(), wanted_major, data_dir)
}

fn find_binaries_in(
    candidates: &[PathBuf],
    wanted_major: Option<&str>,
    data_dir: &Path,
) -> Result<Binaries, ClusterError> {
    let mut found = Vec::new();
    for dir in candidates {
        if !has_server_binaries(dir) {
            continue;
        }
        let Some((version, major)) = server_version(dir) else {
            continue;
        };
        let bins = Binaries {
            bindir: dir.clone(),
            version,
            major,
        };
        match wanted_major {
            Some(w) if w != bins.major => found.push(bins),
            _ => return Ok(bins),
        }
    }
    match wanted_major {
        Some(w) if !found.is_empty() => Err(ClusterError::VersionMismatch {
            data_dir: data_dir.to_owned(),
            cluster_major: w.to_owned(),
            found: found
                .iter()
                .map(|b| b.major.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
        _ => Err(ClusterError::NoBinaries {
            searched: candidates
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_binaries_says_what_to_install() {
        let empty = std::env::temp_dir();
        let err = find_binaries_in(
            std::slice::from_ref(&empty),
            None,
            Path::new("/nonexistent"),
        )
        .unwrap_err();
        assert!(matches!(err, ClusterError::NoBinaries { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("apt-get install -y postgresql"), "{msg}");
        assert!(msg.contains(&empty.display().to_string()), "{msg}");
    }
}
