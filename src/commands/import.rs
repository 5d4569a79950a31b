//! `certhist import certs|observations|zgrab2|sonar|nmap|masscan`: flags become typed settings,
//! the import driver of certhist-files (and the scan formats of certhist-scan) does the work, and
//! this module draws its progress events and prints the summaries.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use certhist_files::{
    import_files, CertificateFiles, FileSummary, ImportError, ImportEvent, ImportOptions,
    ObservationFiles, ProgressSink,
};
use certhist_scan::ScanImport;
use certhist_store::Store;
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use super::Failure;
use crate::cli::Cli;
use crate::exit;
use crate::output::{clean, ndjson};

/// `certhist import …`
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Certificates found anywhere in files or directories (recursive): PEM (also with escaped
    /// newlines inside JSON strings and log lines), base64 DER lines and JSON fields, DER.
    Certs(ImportCertsArgs),
    /// Sightings (ip, port, sha1, first_seen, last_seen[, count][, source]) from CSV, TSV or NDJSON.
    Observations(ImportObservationsArgs),
    /// ZGrab2 JSON (tls, http over TLS, other modules with a tls block), pretty-printed JSON, 2015 ZGrab logs.
    Zgrab2(Zgrab2Args),
    /// Rapid7 Project Sonar SSL certs (`sha1,base64-DER`) and hosts (`ip,sha1`) files.
    Sonar(SonarArgs),
    /// nmap XML with the ssl-cert script.
    Nmap(ScanFilesArgs),
    /// masscan -oX / -oJ / -oD / -oL output with X509 banners.
    Masscan(ScanFilesArgs),
    /// Zeek / Bro ssl.log files or directories (TSV or JSON, gzip, rotated names); the x509.log
    /// and files.log beside each are joined. Client addresses are not stored.
    Zeek(SensorArgs),
    /// Suricata eve.json files (`event_type: tls`; other events skipped). Client addresses are
    /// not stored.
    Suricata(SensorArgs),
    /// Packet captures (pcap, pcapng; gzip, bzip2 or xz): every server Certificate message (TLS
    /// 1.0–1.2, found by content on any port) is a sighting with its chain stored; TLS 1.3
    /// handshakes keep their SNI name only. Client addresses are not stored (unless
    /// --keep-clients).
    Pcap(PcapArgs),
}

/// `certhist import pcap FILE...`
#[derive(Debug, Clone, Args)]
pub struct PcapArgs {
    /// Capture files or directories (directories: every *.pcap, *.pcapng, *.cap, also gzip'd
    /// or xz'd).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Also store which client addresses contacted which servers, and the certificates clients
    /// presented (mutual TLS), in a table of their own (`client_contacts`; never as server
    /// observations). Off by default: client addresses are not stored. Applies to captures not
    /// imported before (a capture already imported without it is skipped as imported).
    #[arg(long)]
    pub keep_clients: bool,
    /// Shared import options.
    #[command(flatten)]
    pub common: CommonImportArgs,
}

/// `certhist import zeek|suricata PATH...`
#[derive(Debug, Clone, Args)]
pub struct SensorArgs {
    /// Files or directories (directories: every ssl*.log[.gz] for zeek, every file for suricata).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Keep reading each (plain-text) log as it grows and across rotation (like `tail -F`),
    /// committing every batch with the file's position; a restart resumes without counting a
    /// record twice. Stops on Ctrl-C.
    #[arg(long)]
    pub follow: bool,
    /// With --follow: stop after the logs have not grown for this many seconds.
    #[arg(long, requires = "follow", value_name = "SECONDS")]
    pub follow_exit_idle: Option<f64>,
    /// With --follow: seconds between checks of a log that is not growing.
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    pub poll: f64,
    /// Shared import options.
    #[command(flatten)]
    pub common: CommonImportArgs,
}

/// `certhist import certs`
#[derive(Debug, Args)]
pub struct ImportCertsArgs {
    /// Files or directories (gzip / bzip2 read transparently).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Certificates per database batch.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_size: u32,
    /// Database connections writing each batch (certificates split by sha1; more than the
    /// server's cores does not help).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub writers: u32,
}

/// `certhist import observations`
#[derive(Debug, Args)]
pub struct ImportObservationsArgs {
    /// The file (gzip / bzip2 read transparently).
    pub file: PathBuf,
    /// Source label for rows that do not name one (default: the file name).
    #[arg(long)]
    pub source: Option<String>,
    /// Rows per database batch (each batch commits with the file's resume cursor).
    #[arg(long, default_value_t = 50_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub batch_size: u32,
    /// Import even if this exact file was imported before (counts are added again).
    #[arg(long)]
    pub force: bool,
}

/// Options shared by the scan-file imports.
#[derive(Debug, Clone, Args)]
pub struct CommonImportArgs {
    /// Source label stored with the sightings (default: the format name).
    #[arg(long)]
    pub label: Option<String>,
    /// Records per batch (one transaction each, with the file's resume cursor).
    #[arg(long, default_value_t = 50_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub batch: u32,
    /// Import even if this exact file was imported before with the same settings (counts are
    /// added again).
    #[arg(long)]
    pub force: bool,
}

/// `certhist import zgrab2 FILE...`
#[derive(Debug, Clone, Args)]
pub struct Zgrab2Args {
    /// Files or directories (gzip / bzip2 read transparently).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Port for records that do not state one and whose file name does not end in `_<port>`.
    #[arg(long)]
    pub port: Option<u16>,
    /// Shared import options.
    #[command(flatten)]
    pub common: CommonImportArgs,
}

/// `certhist import sonar --certs FILE --hosts FILE`
#[derive(Debug, Clone, Args)]
pub struct SonarArgs {
    /// Certificates file (`sha1,base64-DER` lines).
    #[arg(long, required_unless_present = "hosts")]
    pub certs: Option<PathBuf>,
    /// Hosts file (`ip,sha1` lines).
    #[arg(long)]
    pub hosts: Option<PathBuf>,
    /// Scan date YYYYMMDD (or YYYY-MM-DD); default: from the hosts file name.
    #[arg(long, value_parser = parse_date)]
    pub date: Option<DateTime<Utc>>,
    /// Port of the sightings (default: from the file name, else 443).
    #[arg(long)]
    pub port: Option<u16>,
    /// Shared import options.
    #[command(flatten)]
    pub common: CommonImportArgs,
}

/// `certhist import nmap|masscan FILE...`
#[derive(Debug, Clone, Args)]
pub struct ScanFilesArgs {
    /// Files or directories (gzip / bzip2 read transparently).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Shared import options.
    #[command(flatten)]
    pub common: CommonImportArgs,
}

/// Parses `YYYYMMDD` or `YYYY-MM-DD` as midnight UTC.
pub fn parse_date(text: &str) -> Result<DateTime<Utc>, String> {
    let t = text.trim();
    let d = NaiveDate::parse_from_str(t, "%Y%m%d")
        .or_else(|_| NaiveDate::parse_from_str(t, "%Y-%m-%d"))
        .map_err(|_| format!("{text:?} is not a date (YYYYMMDD)"))?;
    d.and_hms_opt(0, 0, 0)
        .map(|d| d.and_utc())
        .ok_or_else(|| format!("{text:?} is not a date"))
}

impl From<ImportError> for Failure {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::InvalidArgument(m) => Failure::Usage(m),
            e @ ImportError::Busy { .. } => Failure::Usage(e.to_string()),
            ImportError::Store(s) => Failure::from(s),
            other => Failure::Other(anyhow::Error::new(other)),
        }
    }
}

pub(crate) async fn run(cli: &Cli, command: &ImportCommand) -> Result<u8, Failure> {
    let store = crate::open_store(cli).await?;
    let progress = ImportProgress::new();
    match command {
        ImportCommand::Certs(a) => {
            let options = ImportOptions {
                batch_items: a.batch_size as usize,
                writers: a.writers as usize,
                ..ImportOptions::default()
            };
            let summary = import_certs(&store, &a.paths, &options, &progress).await?;
            progress.finish();
            print_certs(cli.json, &summary)?;
            Ok(if summary.read == 0 {
                exit::FAILURE
            } else {
                exit::OK
            })
        }
        ImportCommand::Observations(a) => {
            let summary = import_observations(&store, a, &progress).await?;
            progress.finish();
            print_observations(cli.json, &a.file, &summary)?;
            Ok(if summary.rows == 0 && summary.invalid > 0 {
                exit::USAGE
            } else {
                exit::OK
            })
        }
        ImportCommand::Zgrab2(a) => {
            let request = ScanImport::Zgrab2 {
                files: a.files.clone(),
                port: a.port,
            };
            scan_files(cli, &store, &request, &a.common, &progress).await
        }
        ImportCommand::Sonar(a) => {
            let request = ScanImport::Sonar {
                certs: a.certs.clone(),
                hosts: a.hosts.clone(),
                date: a.date,
                port: a.port,
            };
            scan_files(cli, &store, &request, &a.common, &progress).await
        }
        ImportCommand::Nmap(a) => {
            let request = ScanImport::Nmap {
                files: a.files.clone(),
            };
            scan_files(cli, &store, &request, &a.common, &progress).await
        }
        ImportCommand::Masscan(a) => {
            let request = ScanImport::Masscan {
                files: a.files.clone(),
            };
            scan_files(cli, &store, &request, &a.common, &progress).await
        }
        ImportCommand::Zeek(a) => sensor_files(cli, &store, a, true, &progress).await,
        ImportCommand::Suricata(a) => sensor_files(cli, &store, a, false, &progress).await,
        ImportCommand::Pcap(a) => capture_files(cli, &store, a, &progress).await,
    }
}

/// Is `name` a capture file name (`x.pcap`, `x.pcapng`, `x.cap`, optionally `.gz` / `.xz`)?
fn is_capture_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    let base = name
        .strip_suffix(".gz")
        .or_else(|| name.strip_suffix(".xz"))
        .or_else(|| name.strip_suffix(".bz2"))
        .unwrap_or(&name);
    !base.starts_with('.')
        && (base.ends_with(".pcap") || base.ends_with(".pcapng") || base.ends_with(".cap"))
}

/// `certhist import pcap`: captures through the import driver (one summary per file).
async fn capture_files(
    cli: &Cli,
    store: &Store,
    a: &PcapArgs,
    progress: &ImportProgress,
) -> Result<u8, Failure> {
    let mut files = Vec::new();
    for p in &a.paths {
        if !p.is_dir() {
            if !p.exists() {
                return Err(Failure::Usage(format!(
                    "{}: no such file or directory",
                    clean(&p.display().to_string())
                )));
            }
            files.push(p.clone());
            continue;
        }
        for entry in certhist_files::input::Walk::new([p.clone()]) {
            let path =
                entry.map_err(|(p, e)| Failure::Other(anyhow::anyhow!("{}: {e}", p.display())))?;
            if path
                .file_name()
                .is_some_and(|n| is_capture_name(&n.to_string_lossy()))
            {
                files.push(path);
            }
        }
    }
    if files.is_empty() {
        return Err(Failure::Usage(
            "no capture files (*.pcap, *.pcapng, *.cap) found under the given paths".into(),
        ));
    }
    let source = a.common.label.clone().unwrap_or_else(|| "pcap".to_owned());
    let format: Arc<dyn certhist_files::FileFormat> = Arc::new(certhist_sensors::PcapCapture {
        source,
        keep_clients: a.keep_clients,
    });
    let options = ImportOptions {
        batch_items: a.common.batch as usize,
        force: a.common.force,
        ..ImportOptions::default()
    };
    let report = import_files(store, format, &files, &options, progress).await;
    progress.finish();
    print_scan_files(cli.json, &report?.files)?;
    Ok(exit::OK)
}

/// The logs under `paths`: files as given; in directories (recursively, sorted) the Zeek ssl
/// logs, or every regular file for Suricata.
fn sensor_paths(paths: &[PathBuf], zeek: bool) -> Result<Vec<PathBuf>, Failure> {
    let mut out = Vec::new();
    for p in paths {
        if !p.is_dir() {
            if !p.exists() {
                return Err(Failure::Usage(format!(
                    "{}: no such file or directory",
                    clean(&p.display().to_string())
                )));
            }
            out.push(p.clone());
            continue;
        }
        for entry in certhist_files::input::Walk::new([p.clone()]) {
            let path =
                entry.map_err(|(p, e)| Failure::Other(anyhow::anyhow!("{}: {e}", p.display())))?;
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            let keep = match (zeek, name) {
                (true, Some(n)) => certhist_sensors::zeek::is_ssl_log_name(&n),
                (false, Some(n)) => !n.starts_with('.'),
                (_, None) => false,
            };
            if keep {
                out.push(path);
            }
        }
    }
    Ok(out)
}

/// `certhist import zeek|suricata`: through the import driver (one summary per file), or
/// followed.
async fn sensor_files(
    cli: &Cli,
    store: &Store,
    a: &SensorArgs,
    zeek: bool,
    progress: &ImportProgress,
) -> Result<u8, Failure> {
    let files = sensor_paths(&a.paths, zeek)?;
    if files.is_empty() {
        return Err(Failure::Usage(format!(
            "no {} found under the given paths",
            if zeek { "Zeek ssl log" } else { "file" }
        )));
    }
    let name = if zeek { "zeek" } else { "suricata" };
    let source = a.common.label.clone().unwrap_or_else(|| name.to_owned());
    let (format, follower): (
        Arc<dyn certhist_files::FileFormat>,
        Arc<dyn certhist_sensors::follow::FollowFormat>,
    ) = if zeek {
        let f = Arc::new(certhist_sensors::ZeekSsl { source });
        (f.clone(), f)
    } else {
        let f = Arc::new(certhist_sensors::SuricataEve { source });
        (f.clone(), f)
    };
    if a.follow {
        if !(a.poll.is_finite() && a.poll > 0.0 && a.poll <= 3600.0) {
            return Err(Failure::Usage(
                "--poll must be between 0 and 3600 seconds".into(),
            ));
        }
        let idle = match a.follow_exit_idle {
            Some(s) if !(s.is_finite() && (0.0..=86_400.0).contains(&s)) => {
                return Err(Failure::Usage(
                    "--follow-exit-idle must be between 0 and 86400 seconds".into(),
                ))
            }
            other => other.map(Duration::from_secs_f64),
        };
        let options = certhist_sensors::follow::FollowOptions {
            batch_items: a.common.batch as usize,
            poll: Duration::from_secs_f64(a.poll),
            exit_after_idle: idle,
        };
        let stop = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        let summaries =
            certhist_sensors::follow::follow(store, follower, &files, &options, progress, stop)
                .await;
        progress.finish();
        let summaries = summaries?;
        let mut out = std::io::stdout().lock();
        for s in &summaries {
            if cli.json {
                ndjson(&mut out, s)?;
            } else {
                writeln!(
                    out,
                    "{}: followed {} file(s) (rotations included): {} records, {} sightings, {} problem(s)",
                    clean(&s.path),
                    s.files,
                    s.records,
                    s.sightings,
                    s.problems
                )?;
            }
        }
        return Ok(exit::OK);
    }
    let options = ImportOptions {
        batch_items: a.common.batch as usize,
        force: a.common.force,
        ..ImportOptions::default()
    };
    let report = import_files(store, format, &files, &options, progress).await;
    progress.finish();
    print_scan_files(cli.json, &report?.files)?;
    Ok(exit::OK)
}

/// Draws import events on stderr: one spinner (hidden when stderr is not a terminal) and every
/// problem as a line of its own, cleaned.
pub(crate) struct ImportProgress {
    bar: Mutex<Option<ProgressBar>>,
}

impl ImportProgress {
    pub(crate) fn new() -> Self {
        ImportProgress {
            bar: Mutex::new(None),
        }
    }

    fn with_bar(&self, f: impl FnOnce(&ProgressBar)) {
        let Ok(mut slot) = self.bar.lock() else {
            return;
        };
        let bar = slot.get_or_insert_with(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {elapsed_precise} {human_pos} items ({per_sec}) {wide_msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        f(bar);
    }

    /// Removes the spinner (before a summary is printed).
    pub(crate) fn finish(&self) {
        if let Ok(mut slot) = self.bar.lock() {
            if let Some(bar) = slot.take() {
                bar.finish_and_clear();
            }
        }
    }
}

impl ProgressSink for ImportProgress {
    fn event(&self, event: &ImportEvent<'_>) {
        match event {
            ImportEvent::FileStarted { path, .. } => {
                let name = clean(&path.display().to_string());
                self.with_bar(|b| b.set_message(name));
            }
            ImportEvent::Progress { items } => self.with_bar(|b| b.set_position(*items)),
            ImportEvent::Problem(p) => {
                let line = format!("certhist: {}", clean(&p.to_string()));
                self.with_bar(|b| b.suspend(|| eprintln!("{line}")));
            }
            _ => {}
        }
    }
}

/// What `import certs` did.
#[derive(Debug, Default, Serialize)]
pub(crate) struct CertImportSummary {
    pub files: u64,
    pub read: u64,
    pub new: u64,
    pub known: u64,
    pub unparsable: u64,
    pub problems: u64,
    pub skipped_blocks: u64,
    pub seconds: f64,
}

/// Imports certificates found in files and directories (reading and parsing on a blocking
/// thread while batches are written).
pub(crate) async fn import_certs(
    store: &Store,
    paths: &[PathBuf],
    options: &ImportOptions,
    progress: &dyn ProgressSink,
) -> Result<CertImportSummary, Failure> {
    let report = import_files(store, Arc::new(CertificateFiles), paths, options, progress).await?;
    let t = &report.totals;
    Ok(CertImportSummary {
        files: t.files,
        read: t.certs_seen,
        new: t.certs_new,
        known: t.certs_known,
        unparsable: t.certs_unparsable,
        problems: t.problems,
        skipped_blocks: t.ignored,
        seconds: t.elapsed_ms as f64 / 1000.0,
    })
}

fn print_certs(json: bool, summary: &CertImportSummary) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    if json {
        ndjson(&mut out, summary)?;
    } else {
        writeln!(
            out,
            "read {} certificate(s) from {} file(s): {} new, {} already known, {} unparsable (stored with their parse error); {} problem(s), {} non-certificate PEM block(s) skipped",
            summary.read,
            summary.files,
            summary.new,
            summary.known,
            summary.unparsable,
            summary.problems,
            summary.skipped_blocks
        )?;
    }
    Ok(())
}

/// What `import observations` did.
#[derive(Debug, Default, Serialize)]
pub(crate) struct ObservationImportSummary {
    pub content_sha256: String,
    pub already_imported: bool,
    pub resumed_after_line: u64,
    pub rows: u64,
    pub keys_written: u64,
    pub invalid: u64,
    pub lines: u64,
    pub seconds: f64,
}

/// Imports a sightings file in batches; each batch commits with the file's line cursor, so an
/// interrupted import resumes where it stopped and a finished one is not applied twice.
pub(crate) async fn import_observations(
    store: &Store,
    a: &ImportObservationsArgs,
    progress: &dyn ProgressSink,
) -> Result<ObservationImportSummary, Failure> {
    let options = ImportOptions {
        batch_items: a.batch_size as usize,
        force: a.force,
        ..ImportOptions::default()
    };
    let format = ObservationFiles {
        source: a.source.clone(),
    };
    let mut report = import_files(
        store,
        Arc::new(format),
        std::slice::from_ref(&a.file),
        &options,
        progress,
    )
    .await?;
    let f = report.files.pop().unwrap_or_default();
    Ok(ObservationImportSummary {
        content_sha256: f.content_sha256,
        already_imported: f.already_imported,
        resumed_after_line: f.resumed_after_items,
        rows: f.records,
        keys_written: f.observation_keys,
        invalid: f.problems_total,
        lines: f.cursor,
        seconds: f.elapsed_ms as f64 / 1000.0,
    })
}

fn print_observations(
    json: bool,
    file: &Path,
    summary: &ObservationImportSummary,
) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    let name = clean(&file.display().to_string());
    if json {
        ndjson(&mut out, summary)?;
    } else if summary.already_imported {
        writeln!(
            out,
            "{name} was already imported (same content, sha256 {}): nothing changed; use --force to add its counts again",
            summary.content_sha256
        )?;
    } else {
        writeln!(
            out,
            "{name}: {} valid row(s) stored as {} merged observation key(s){}, {} invalid row(s) skipped",
            summary.rows,
            summary.keys_written,
            if summary.resumed_after_line > 0 {
                format!(" (resumed after line {})", summary.resumed_after_line)
            } else {
                String::new()
            },
            summary.invalid
        )?;
    }
    Ok(())
}

/// `certhist import zgrab2|sonar|nmap|masscan`: one summary per file.
async fn scan_files(
    cli: &Cli,
    store: &Store,
    request: &ScanImport,
    common: &CommonImportArgs,
    progress: &ImportProgress,
) -> Result<u8, Failure> {
    let options = ImportOptions {
        batch_items: common.batch as usize,
        force: common.force,
        ..ImportOptions::default()
    };
    let label = common
        .label
        .clone()
        .unwrap_or_else(|| request.name().to_owned());
    let summaries = certhist_scan::import(store, request, &label, &options, progress).await;
    progress.finish();
    print_scan_files(cli.json, &summaries?)?;
    Ok(exit::OK)
}

fn print_scan_files(json: bool, all: &[FileSummary]) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    for s in all {
        if json {
            ndjson(&mut out, s)?;
            continue;
        }
        writeln!(out, "{} ({})", clean(&s.file), clean(&s.kind))?;
        if s.already_imported {
            writeln!(
                out,
                "  already imported (sha256 {}): nothing changed; use --force to add its counts again",
                s.content_sha256
            )?;
            continue;
        }
        if s.resumed_after_items > 0 {
            writeln!(
                out,
                "  resumed after {} records of an interrupted import",
                s.resumed_after_items
            )?;
        }
        writeln!(
            out,
            "  records {} ({} without certificate), certificates {} seen / {} new / {} known ({} unparsable), sightings {}, problems {} (reported above), {} ms",
            s.records,
            s.records_without_certificate,
            s.certs_seen,
            s.certs_new,
            s.certs_known,
            s.certs_unparsable,
            s.sightings,
            s.problems_total,
            s.elapsed_ms
        )?;
        if s.kind == "pcap" {
            // A capture's records without certificate are its TLS 1.3 handshakes.
            writeln!(
                out,
                "  TLS 1.3 handshakes (no certificate in clear; SNI names kept): {}",
                s.records_without_certificate
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(
            parse_date("20170102").unwrap().to_rfc3339(),
            "2017-01-02T00:00:00+00:00"
        );
        assert_eq!(
            parse_date("2017-01-02").unwrap().to_rfc3339(),
            "2017-01-02T00:00:00+00:00"
        );
        assert!(parse_date("20171302").is_err());
    }
}
