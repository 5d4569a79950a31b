//! TLS scanner and scan-data importers (ZGrab2, Rapid7 Sonar, nmap, masscan) for certhist: the
//! passive IP ↔ certificate history.
//!
//! Every source ends up as certificates (DER, leaf and chain) and sightings
//! `(ip, port, leaf SHA-1, time)`, written in batches through [`certhist_store::StoreTx`]
//! together with the file's cursor ([`import`]). The live scanner ([`scanner`]) does the same with
//! the chains it receives in TLS handshakes. [`cli`] holds the command-line arguments and runners.

pub mod cli;
pub mod demo;
mod error;
pub mod import;
pub mod input;
pub mod localtls;
pub mod masscan;
mod record;
pub mod scanner;
pub mod sonar;
pub mod targets;
pub mod xml;
pub mod zgrab;

use std::io::BufRead;
use std::path::Path;

use chrono::{DateTime, Utc};

pub use error::ScanError;
pub use import::{ImportOptions, ImportSummary};
pub use record::{Item, ItemReader, Problem, Record, Sighting};

use crate::import::import_file;
use crate::zgrab::PortHints;

/// Imports ZGrab2 JSON (lines or pretty-printed) or 2015 ZGrab log JSON. The port of a sighting
/// comes from the record, else the file name (`…_443.json`), else `port`, else the module's
/// default (`tls`/`http` 443, `ftp` 21, `amqp091` 5671, …), else 0 (unknown).
pub async fn import_zgrab2(
    store: &certhist_store::Store,
    path: &Path,
    port: Option<u16>,
    source: &str,
    options: &ImportOptions,
) -> Result<ImportSummary, ScanError> {
    let hints = PortHints {
        from_file_name: input::port_from_file_name(path),
        from_user: port,
    };
    // The fallback port changes the data, so it is part of the import's identity.
    let kind = match port {
        Some(p) => format!("zgrab2:{p}"),
        None => "zgrab2".to_owned(),
    };
    import_file(
        store,
        path,
        &kind,
        source,
        Box::new(move |i| Box::new(zgrab::ZgrabReader::new(i, hints))),
        options,
    )
    .await
}

/// Imports a Sonar `certs` file and/or a `hosts` file (certs first, so the sightings find their
/// certificates). The hosts' scan time is `date`, else the file name's date; the port is `port`,
/// else the file name's (`…_443_hosts.gz`), else 443.
pub async fn import_sonar(
    store: &certhist_store::Store,
    certs: Option<&Path>,
    hosts: Option<&Path>,
    date: Option<DateTime<Utc>>,
    port: Option<u16>,
    source: &str,
    options: &ImportOptions,
) -> Result<Vec<ImportSummary>, ScanError> {
    let mut out = Vec::new();
    let hosts_time = match hosts {
        Some(h) => Some(date.or_else(|| sonar::date_from_file_name(h)).ok_or_else(|| {
            ScanError::InvalidArgument(format!(
                "{}: the scan date is not in the file name (like 20170102_ssl_hosts.gz); pass --date YYYYMMDD",
                h.display()
            ))
        })?),
        None => None,
    };
    if let Some(c) = certs {
        out.push(
            import_file(
                store,
                c,
                "sonar-certs",
                source,
                Box::new(|i| Box::new(sonar::CertsReader::new(i))),
                options,
            )
            .await?,
        );
    }
    if let (Some(h), Some(time)) = (hosts, hosts_time) {
        let port = port
            .or_else(|| sonar::port_from_file_name(h))
            .unwrap_or(443);
        // Scan time and port change the data, so they are part of the import's identity.
        let kind = format!(
            "sonar-hosts:{}:{port}",
            time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        out.push(
            import_file(
                store,
                h,
                &kind,
                source,
                Box::new(move |i| Box::new(sonar::HostsReader::new(i, time, port))),
                options,
            )
            .await?,
        );
    }
    Ok(out)
}

/// Imports nmap XML with `ssl-cert` script output.
pub async fn import_nmap(
    store: &certhist_store::Store,
    path: &Path,
    source: &str,
    options: &ImportOptions,
) -> Result<ImportSummary, ScanError> {
    import_file(
        store,
        path,
        "nmap",
        source,
        Box::new(|i| Box::new(xml::XmlReader::new(i))),
        options,
    )
    .await
}

/// Imports masscan output: XML (`-oX`), JSON (`-oJ`), NDJSON (`-oD`) or list (`-oL`), told apart
/// by the first non-blank byte.
pub async fn import_masscan(
    store: &certhist_store::Store,
    path: &Path,
    source: &str,
    options: &ImportOptions,
) -> Result<ImportSummary, ScanError> {
    import_file(
        store,
        path,
        "masscan",
        source,
        Box::new(|mut i| {
            if first_non_blank(&mut i) == Some(b'<') {
                Box::new(xml::XmlReader::new(i))
            } else {
                Box::new(masscan::MasscanTextReader::new(i))
            }
        }),
        options,
    )
    .await
}

fn first_non_blank(input: &mut input::Input) -> Option<u8> {
    let buf = input.fill_buf().ok()?;
    buf.iter().copied().find(|b| !b.is_ascii_whitespace())
}
