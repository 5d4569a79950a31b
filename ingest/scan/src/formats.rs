//! The scan-file formats as [`FileFormat`]s of the import driver ([`certhist_files::driver`]):
//! every one is counted (sightings add to `times_seen`), so the driver holds the per-file lock,
//! keeps the cursor and skips complete files. The kind carries the settings that change what is
//! stored (a fallback port, a scan date), so the same bytes imported with other settings are
//! another import.

use std::io::{self, BufRead};
use std::path::Path;

use certhist_files::input::Input;
use certhist_files::{FileFormat, ImportError, ItemReader};
use chrono::{DateTime, Utc};

use crate::input::port_from_file_name;
use crate::zgrab::PortHints;
use crate::{masscan, sonar, xml, zgrab};

/// ZGrab2 JSON (lines or pretty-printed) or 2015 ZGrab log JSON. The port of a sighting comes
/// from the record, else the file name (`…_443.json`), else `port`, else the module's default
/// (`tls`/`http` 443, `ftp` 21, `amqp091` 5671, …), else 0 (unknown).
#[derive(Clone, Debug)]
pub struct Zgrab2Files {
    /// Port for records that state none and whose file name does not end in `_<port>`.
    pub port: Option<u16>,
    /// Label of the sightings.
    pub source: String,
}

impl FileFormat for Zgrab2Files {
    fn name(&self) -> &str {
        "zgrab2"
    }

    fn kind(&self, _path: &Path) -> Result<String, ImportError> {
        // The fallback port changes the data, so it is part of the import's identity.
        Ok(match self.port {
            Some(p) => format!("zgrab2:{p}"),
            None => "zgrab2".to_owned(),
        })
    }

    fn source(&self) -> &str {
        &self.source
    }

    fn reader(&self, path: &Path, input: Input) -> io::Result<Box<dyn ItemReader>> {
        let hints = PortHints {
            from_file_name: port_from_file_name(path),
            from_user: self.port,
        };
        Ok(Box::new(zgrab::ZgrabReader::new(input, hints)))
    }
}

/// A Rapid7 Sonar `certs` file (`sha1,base64-DER` lines).
#[derive(Clone, Debug)]
pub struct SonarCertsFile {
    /// Label of the sightings (a certs file has none; kept for symmetry).
    pub source: String,
}

impl FileFormat for SonarCertsFile {
    fn name(&self) -> &str {
        "sonar-certs"
    }

    fn source(&self) -> &str {
        &self.source
    }

    fn reader(&self, _path: &Path, input: Input) -> io::Result<Box<dyn ItemReader>> {
        Ok(Box::new(sonar::CertsReader::new(input)))
    }
}

/// A Rapid7 Sonar `hosts` file (`ip,sha1` lines). The scan time is `date`, else the file name's
/// date; the port is `port`, else the file name's (`…_443_hosts.gz`), else 443.
#[derive(Clone, Debug)]
pub struct SonarHostsFile {
    /// Scan date of the sightings (default: from the file name).
    pub date: Option<DateTime<Utc>>,
    /// Port of the sightings (default: from the file name, else 443).
    pub port: Option<u16>,
    /// Label of the sightings.
    pub source: String,
}

impl SonarHostsFile {
    /// The scan time and port for `path`, or why they cannot be known.
    pub fn settings(&self, path: &Path) -> Result<(DateTime<Utc>, u16), ImportError> {
        let time = self.date.or_else(|| sonar::date_from_file_name(path)).ok_or_else(|| {
            ImportError::InvalidArgument(format!(
                "{}: the scan date is not in the file name (like 20170102_ssl_hosts.gz); pass --date YYYYMMDD",
                path.display()
            ))
        })?;
        let port = self
            .port
            .or_else(|| sonar::port_from_file_name(path))
            .unwrap_or(443);
        Ok((time, port))
    }
}

impl FileFormat for SonarHostsFile {
    fn name(&self) -> &str {
        "sonar-hosts"
    }

    fn kind(&self, path: &Path) -> Result<String, ImportError> {
        let (time, port) = self.settings(path)?;
        // Scan time and port change the data, so they are part of the import's identity.
        Ok(format!(
            "sonar-hosts:{}:{port}",
            time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ))
    }

    fn source(&self) -> &str {
        &self.source
    }

    fn reader(&self, path: &Path, input: Input) -> io::Result<Box<dyn ItemReader>> {
        let (time, port) = self
            .settings(path)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        Ok(Box::new(sonar::HostsReader::new(input, time, port)))
    }
}

/// nmap XML with `ssl-cert` script output.
#[derive(Clone, Debug)]
pub struct NmapFiles {
    /// Label of the sightings.
    pub source: String,
}

impl FileFormat for NmapFiles {
    fn name(&self) -> &str {
        "nmap"
    }

    fn source(&self) -> &str {
        &self.source
    }

    fn reader(&self, _path: &Path, input: Input) -> io::Result<Box<dyn ItemReader>> {
        Ok(Box::new(xml::XmlReader::new(input)))
    }
}

/// masscan output: XML (`-oX`), JSON (`-oJ`), NDJSON (`-oD`) or list (`-oL`), told apart by the
/// first non-blank byte.
#[derive(Clone, Debug)]
pub struct MasscanFiles {
    /// Label of the sightings.
    pub source: String,
}

impl FileFormat for MasscanFiles {
    fn name(&self) -> &str {
        "masscan"
    }

    fn source(&self) -> &str {
        &self.source
    }

    fn reader(&self, _path: &Path, mut input: Input) -> io::Result<Box<dyn ItemReader>> {
        let first = input
            .fill_buf()?
            .iter()
            .copied()
            .find(|b| !b.is_ascii_whitespace());
        Ok(if first == Some(b'<') {
            Box::new(xml::XmlReader::new(input))
        } else {
            Box::new(masscan::MasscanTextReader::new(input))
        })
    }
}
