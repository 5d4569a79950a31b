//! TLS scanner and scan-data importers (ZGrab2, Rapid7 Sonar, nmap, masscan) for certhist: the
//! passive IP ↔ certificate history.
//!
//! Every source ends up as certificates (DER, leaf and chain) and sightings
//! `(ip, port, leaf SHA-1, time)`. Scan files are imported through the import driver of
//! `certhist-files` ([`certhist_files::driver`]): the formats here ([`formats`]) are its
//! [`certhist_files::FileFormat`]s, so opening, decompression, hashing, the per-file lock, the
//! resume cursor and progress events are the driver's. The live scanner ([`scanner`]) writes the
//! chains it receives in TLS handshakes in batches. This crate never parses flags and never
//! prints: it takes typed settings ([`ScanImport`], [`scanner::ScanOptions`]) and reports
//! progress as events.

pub mod demo;
mod error;
pub mod formats;
pub mod input;
pub mod localtls;
pub mod masscan;
mod record;
pub mod scanner;
pub mod sonar;
pub mod targets;
pub mod xml;
pub mod zgrab;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use certhist_files::{import_files, FileFormat, NoProgress, ProgressSink};
use certhist_store::Store;
use chrono::{DateTime, Utc};

pub use certhist_files::{FileSummary as ImportSummary, ImportError, ImportOptions};
pub use error::ScanError;
pub use record::{Item, ItemReader, Problem, Record, Sighting};

use crate::formats::{MasscanFiles, NmapFiles, SonarCertsFile, SonarHostsFile, Zgrab2Files};

/// A scan-file import: the format, the files, and the settings that change what is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScanImport {
    /// ZGrab2 JSON (tls, http over TLS, other modules with a tls block), pretty-printed JSON,
    /// 2015 ZGrab logs; see [`Zgrab2Files`].
    Zgrab2 {
        /// Files or directories.
        files: Vec<PathBuf>,
        /// Port for records that state none and whose file name does not end in `_<port>`.
        port: Option<u16>,
    },
    /// Rapid7 Project Sonar: a certs file and/or a hosts file (certs first, so the sightings
    /// find their certificates); see [`SonarHostsFile`].
    Sonar {
        /// Certificates file (`sha1,base64-DER` lines).
        certs: Option<PathBuf>,
        /// Hosts file (`ip,sha1` lines).
        hosts: Option<PathBuf>,
        /// Scan date of the hosts (default: from the file name).
        date: Option<DateTime<Utc>>,
        /// Port of the sightings (default: from the file name, else 443).
        port: Option<u16>,
    },
    /// nmap XML with the ssl-cert script.
    Nmap {
        /// Files or directories.
        files: Vec<PathBuf>,
    },
    /// masscan -oX / -oJ / -oD / -oL output with X509 banners.
    Masscan {
        /// Files or directories.
        files: Vec<PathBuf>,
    },
}

impl ScanImport {
    /// The format's name, the default label of its sightings.
    pub fn name(&self) -> &'static str {
        match self {
            ScanImport::Zgrab2 { .. } => "zgrab2",
            ScanImport::Sonar { .. } => "sonar",
            ScanImport::Nmap { .. } => "nmap",
            ScanImport::Masscan { .. } => "masscan",
        }
    }
}

/// Imports scan files; `source` labels the sightings (`observations.sources`). One summary per
/// file, in the order imported. Stops at the first error (what was committed before stays, and a
/// re-run resumes); bad records are problems in the summaries (and events), not errors.
pub async fn import(
    store: &Store,
    request: &ScanImport,
    source: &str,
    options: &ImportOptions,
    progress: &dyn ProgressSink,
) -> Result<Vec<ImportSummary>, ImportError> {
    let source = source.to_owned();
    let run = |format: Arc<dyn FileFormat>, files: Vec<PathBuf>| async move {
        import_files(store, format, &files, options, progress)
            .await
            .map(|r| r.files)
    };
    match request {
        ScanImport::Zgrab2 { files, port } => {
            let format = Zgrab2Files {
                port: *port,
                source,
            };
            run(Arc::new(format), files.clone()).await
        }
        ScanImport::Nmap { files } => run(Arc::new(NmapFiles { source }), files.clone()).await,
        ScanImport::Masscan { files } => {
            run(Arc::new(MasscanFiles { source }), files.clone()).await
        }
        ScanImport::Sonar {
            certs,
            hosts,
            date,
            port,
        } => {
            let hosts_format = SonarHostsFile {
                date: *date,
                port: *port,
                source: source.clone(),
            };
            // Settings first: a hosts file without a date fails before the certs are imported.
            if let Some(h) = hosts {
                hosts_format.settings(h)?;
            }
            let mut out = Vec::new();
            if let Some(c) = certs {
                let format = SonarCertsFile { source };
                out.extend(run(Arc::new(format), vec![c.clone()]).await?);
            }
            if let Some(h) = hosts {
                out.extend(run(Arc::new(hosts_format), vec![h.clone()]).await?);
            }
            Ok(out)
        }
    }
}

/// The summary of a one-file import.
fn one(mut summaries: Vec<ImportSummary>, path: &Path) -> Result<ImportSummary, ImportError> {
    if summaries.is_empty() {
        return Err(ImportError::InvalidArgument(format!(
            "{}: no file to import",
            path.display()
        )));
    }
    Ok(summaries.remove(0))
}

/// Imports one ZGrab2 file ([`ScanImport::Zgrab2`]) without progress events.
pub async fn import_zgrab2(
    store: &Store,
    path: &Path,
    port: Option<u16>,
    source: &str,
    options: &ImportOptions,
) -> Result<ImportSummary, ImportError> {
    let request = ScanImport::Zgrab2 {
        files: vec![path.to_owned()],
        port,
    };
    one(
        import(store, &request, source, options, &NoProgress).await?,
        path,
    )
}

/// Imports a Sonar certs and/or hosts file ([`ScanImport::Sonar`]) without progress events.
pub async fn import_sonar(
    store: &Store,
    certs: Option<&Path>,
    hosts: Option<&Path>,
    date: Option<DateTime<Utc>>,
    port: Option<u16>,
    source: &str,
    options: &ImportOptions,
) -> Result<Vec<ImportSummary>, ImportError> {
    let request = ScanImport::Sonar {
        certs: certs.map(Path::to_owned),
        hosts: hosts.map(Path::to_owned),
        date,
        port,
    };
    import(store, &request, source, options, &NoProgress).await
}

/// Imports one nmap XML file ([`ScanImport::Nmap`]) without progress events.
pub async fn import_nmap(
    store: &Store,
    path: &Path,
    source: &str,
    options: &ImportOptions,
) -> Result<ImportSummary, ImportError> {
    let request = ScanImport::Nmap {
        files: vec![path.to_owned()],
    };
    one(
        import(store, &request, source, options, &NoProgress).await?,
        path,
    )
}

/// Imports one masscan file ([`ScanImport::Masscan`]) without progress events.
pub async fn import_masscan(
    store: &Store,
    path: &Path,
    source: &str,
    options: &ImportOptions,
) -> Result<ImportSummary, ImportError> {
    let request = ScanImport::Masscan {
        files: vec![path.to_owned()],
    };
    one(
        import(store, &request, source, options, &NoProgress).await?,
        path,
    )
}
